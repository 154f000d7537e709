// vfabric::bridge::CaptureRing — copies of the frames a switch port sees,
// for `netctl capture` (issue 19).
//
// DESIGN
//
// The datapath must pay nothing while no capture runs, and must never wait
// for a capture's reader. So:
// - The switch keeps one std::atomic<CaptureRing*> per port (null: no
//   capture). The pipeline loads it once per batch of a port (received
//   batch, transmit batch), not per frame; only when it is set does any
//   capture code run (bridge/src/capture.cc, out of line).
// - A CaptureRing is a single-producer single-consumer byte ring of fixed
//   size (allocated once when the capture starts). The datapath thread is
//   the producer: Push() copies one frame (up to the snap length) with a
//   record header, or, when the ring has no room, counts the frame in
//   dropped() and returns. It never blocks, allocates or makes a system
//   call. The consumer (netd's capture session thread) drains it with
//   Pop().
// - Switch::SetCapture/ClearCapture install and remove the pointer through
//   the switch's command queue, so once ClearCapture returns the datapath
//   no longer touches the ring and its owner may free it.
//
// What is recorded: received frames after VLAN classification (the
// classified VLAN's 802.1Q tag in the copy, whatever the frame carried on
// the wire), frames queued to leave the port (with the tag of their VLAN),
// and received frames the switch dropped at classification (VLAN not
// allowed, STP state, malformed) as they came in, marked with the reason.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "vfabric/bridge/port.h"

namespace vfabric::bridge {

enum class CaptureDirection : uint8_t { kIn = 1, kOut = 2 };

// One record's header, as it is in the ring and on netd's capture stream
// (docs/control-protocol.md, "capture.start"). Host byte order.
struct CaptureRecordHeader {
  uint32_t type = 0;      // kFrame, kPad (ring only), kEnd (stream only)
  uint32_t caplen = 0;    // bytes that follow the header (a frame: up to the snap length)
  uint64_t time_ns = 0;   // CLOCK_REALTIME
  uint32_t wire_len = 0;  // the frame's length with the tag (it may be more than caplen)
  uint16_t tci = 0;       // the 802.1Q TCI of the VLAN the switch classified the frame into
  uint8_t direction = 0;  // CaptureDirection
  // 0: forwarded (in) or sent (out); else 1 + the DropReason the switch
  // dropped it for (the frame then is as received, tag or not; no tag
  // inserted).
  uint8_t drop = 0;

  static constexpr uint32_t kFrame = 0x43465246;  // "FRFC"
  static constexpr uint32_t kPad = 0x43444150;    // the rest of the ring is padding
  static constexpr uint32_t kEnd = 0x43444e45;    // the stream's last record: JSON follows
};
static_assert(sizeof(CaptureRecordHeader) == 24);

class CaptureRing {
 public:
  // `bytes`: the ring's size (rounded up to 8; at least 64 KiB).
  // `snaplen`: the most bytes copied per frame (at least 64).
  // `directions`: which of kIn/kOut to record (a bit mask of them).
  CaptureRing(size_t bytes, uint32_t snaplen, uint8_t directions);
  CaptureRing(const CaptureRing&) = delete;
  CaptureRing& operator=(const CaptureRing&) = delete;

  bool wants(CaptureDirection d) const { return (directions_ & static_cast<uint8_t>(d)) != 0; }
  uint32_t snaplen() const { return snaplen_; }

  // ---- producer (the datapath thread) ----
  // Copies `frame` with the tag `tci` inserted after the MACs when `tag`
  // (the frame is untagged then); `drop` as in CaptureRecordHeader. Counts
  // the frame in dropped() when the ring is full.
  void Push(CaptureDirection direction, uint64_t time_ns, std::span<const uint8_t> frame, bool tag,
            uint16_t tci, uint8_t drop);

  // ---- consumer (one other thread) ----
  // Appends whole records (header + caplen bytes, no padding) to `out`,
  // up to about `max_bytes`; returns how many.
  size_t Pop(std::vector<uint8_t>* out, size_t max_bytes);

  // Frames recorded into the ring / not recorded because it was full.
  uint64_t pushed() const { return pushed_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  const size_t size_;
  const uint32_t snaplen_;
  const uint8_t directions_;
  std::unique_ptr<uint8_t[]> data_;
  alignas(64) std::atomic<uint64_t> head_{0};  // consumer: bytes consumed
  alignas(64) std::atomic<uint64_t> tail_{0};  // producer: bytes produced
  std::atomic<uint64_t> pushed_{0};            // producer only writes
  std::atomic<uint64_t> dropped_{0};           // producer only writes
};

}  // namespace vfabric::bridge
