// The records that follow a userspace capture.start answer on its
// connection (docs/control-protocol.md, "capture.start"), for netctl. netd
// writes bridge::CaptureRecordHeader (bridge/include/vfabric/bridge/capture.h)
// as it is; netd/src/capture.cc checks that the two layouts are the same.
#pragma once

#include <cstdint>

namespace vfabric::protocol {

struct CaptureRecord {
  uint32_t type = 0;      // kFrame or kEnd
  uint32_t caplen = 0;    // bytes that follow: the frame (kFrame) or JSON (kEnd)
  uint64_t time_ns = 0;   // CLOCK_REALTIME
  uint32_t wire_len = 0;  // the frame's length (with the tag the capture inserted)
  uint16_t tci = 0;       // 802.1Q TCI of the VLAN the switch classified it into
  uint8_t direction = 0;  // 1 in (received), 2 out (sent)
  uint8_t drop = 0;       // 0, or 1 + the index of the reason in the answer's "drop_reasons"

  static constexpr uint32_t kFrame = 0x43465246;
  static constexpr uint32_t kEnd = 0x43444e45;
};
static_assert(sizeof(CaptureRecord) == 24);

}  // namespace vfabric::protocol
