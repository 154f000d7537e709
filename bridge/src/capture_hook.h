// The switch's side of a capture (capture.h): what the pipeline calls when
// a port's capture pointer is set. Out of line and cold, so that the
// pipeline itself holds only the pointer load and a branch per batch.
#pragma once

#include <cstdint>
#include <span>

#include "vfabric/bridge/capture.h"
#include "vfabric/bridge/frame.h"
#include "vfabric/bridge/port.h"

namespace vfabric::bridge {

// Frames a port received and the switch accepted, after classification:
// frames[i] untagged, tcis[i] the TCI of the VLAN they were classified into.
[[gnu::cold, gnu::noinline]] void CaptureReceived(CaptureRing& ring, std::span<Frame* const> frames,
                                                  std::span<const uint16_t> tcis);
// A frame the port received that the switch dropped for `reason`, as received.
[[gnu::cold, gnu::noinline]] void CaptureDropped(CaptureRing& ring, const Frame& frame,
                                                 DropReason reason);
// Frames about to be transmitted on the port, each recorded with the tag of
// its VLAN (item.tci; none when its VID is 0, e.g. a BPDU from SendFrame).
[[gnu::cold, gnu::noinline]] void CaptureSent(CaptureRing& ring, std::span<const TxItem> items);

}  // namespace vfabric::bridge
