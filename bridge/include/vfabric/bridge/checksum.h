// Software completion of offloaded checksums (virtio_net_hdr NEEDS_CSUM).
#pragma once

#include <cstdint>
#include <span>

#include "vfabric/bridge/frame.h"

namespace vfabric::bridge {

// The 16-bit ones' complement sum of `bytes` (not inverted), added to `sum`.
uint32_t OnesComplementAdd(std::span<const uint8_t> bytes, uint32_t sum = 0);
uint16_t FoldChecksum(uint32_t sum);

// Completes the checksum the sender left to offload: sums the frame from
// vnet.csum_start to its end (the checksum field holds the pseudo-header
// sum, as the kernel leaves it for CHECKSUM_PARTIAL) and stores the inverted
// result at csum_start + csum_offset; then clears NEEDS_CSUM and sets
// DATA_VALID. False (frame untouched) if the offsets do not fit the frame.
// A frame without NEEDS_CSUM is left as it is (true).
bool CompleteChecksum(Frame& frame);

}  // namespace vfabric::bridge
