// Any bytes as a received Ethernet frame carrying a BPDU: decoded or refused
// with a reason, never a crash or a read outside the buffer; what decodes
// re-encodes and decodes to the same BPDU (but for its version number).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "vfabric/stp/bpdu.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfabric::stp;
  // Exactly the input, in a buffer of its own size, so ASan sees any overread.
  std::vector<uint8_t> frame(data, data + size);
  Bpdu bpdu;
  if (DecodeBpduFrame(std::span<const uint8_t>(frame), &bpdu) != DecodeError::kOk) return 0;
  std::vector<uint8_t> again = EncodeBpduFrame(bpdu, vfabric::MacAddress{});
  Bpdu round_trip;
  if (DecodeBpduFrame(again, &round_trip) != DecodeError::kOk) std::abort();
  // The version is not carried: a Config BPDU is sent as version 0 whatever
  // version it arrived with (802.1D-2004 9.3.4 validates by type).
  // Nor is an RST BPDU's TC-ack bit (sent as 0, 17.21.19).
  round_trip.version = bpdu.version;
  if (bpdu.type == BpduType::kRst) round_trip.topology_change_ack = bpdu.topology_change_ack;
  if (!(round_trip == bpdu)) std::abort();
  return 0;
}
