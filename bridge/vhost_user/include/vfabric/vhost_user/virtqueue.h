// A virtio split virtqueue (virtio 1.1, 2.6) seen from the device side: the
// descriptor table, the available ring the driver fills and the used ring
// the device returns buffers on, all in guest memory shared with the guest.
//
// The guest is not trusted. Everything read from the rings is copied out
// once and checked before use:
//   - avail->idx may run at most `num` ahead of what was consumed, else the
//     ring is broken (stops until reconfigured);
//   - a head or `next` index past the table, a chain longer than its table
//     (the only way a loop shows), a nested or chained indirect table, an
//     indirect table whose length is not a multiple of 16, a buffer outside
//     the memory table or past a region's end, a readable descriptor after a
//     writable one, more than kMaxSegments buffers: the chain is refused,
//     given back as used with length 0 when its head is valid, and counted
//     by RingError. Nothing is followed further.
// Every pointer handed out is into a region of the GuestMemory the queue
// was attached with; the owner re-attaches (Attach) whenever that table is
// replaced, before the old one goes.
//
// Notifications: without EVENT_IDX, VRING_USED_F_NO_NOTIFY asks the driver
// not to kick and VRING_AVAIL_F_NO_INTERRUPT asks the device not to call;
// with it, avail_event (after the used ring) and used_event (after the
// available ring) say at which index to notify.
//
// Threads: one owner (the datapath thread). The guest writes the rings
// concurrently; ring indices are read with acquire and published with
// release, as the virtio memory model requires.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "vfabric/common/status.h"
#include "vfabric/vhost_user/guest_memory.h"

namespace vfabric::vhost_user {

// Descriptor flags.
inline constexpr uint16_t kDescNext = 1;
inline constexpr uint16_t kDescWrite = 2;
inline constexpr uint16_t kDescIndirect = 4;
// Ring flags.
inline constexpr uint16_t kUsedNoNotify = 1;      // VRING_USED_F_NO_NOTIFY
inline constexpr uint16_t kAvailNoInterrupt = 1;  // VRING_AVAIL_F_NO_INTERRUPT
inline constexpr uint32_t kMaxQueueSize = 32768;

// Why a chain (or the ring) was refused.
enum class RingError : uint8_t {
  kHeadOutOfRange,   // an available entry names no descriptor
  kNextOutOfRange,   // a `next` past the table
  kLoop,             // more descriptors than the table holds
  kBadAddress,       // a buffer or table outside the memory table or across a region's end
  kBadIndirect,      // nested, chained, misdeclared or not negotiated indirect table
  kTooManySegments,  // more than kMaxSegments buffers
  kWrongDirection,   // readable after writable, or the wrong kind for the queue's use
  kAvailIndexJump,   // avail->idx more than `num` ahead: the ring is broken
  kCount
};
inline constexpr size_t kRingErrorCount = static_cast<size_t>(RingError::kCount);
std::string_view ToString(RingError error);  // "head_out_of_range", ...

// One buffer of a chain, translated.
struct Segment {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  bool writable = false;
};

// A descriptor chain as popped: its head (what goes back on the used ring)
// and its buffers, readable ones first.
struct Chain {
  static constexpr size_t kMaxSegments = 64;
  uint16_t head = 0;
  uint16_t count = 0;
  uint64_t readable = 0;  // bytes in readable segments
  uint64_t writable = 0;  // bytes in writable segments
  std::array<Segment, kMaxSegments> segments;

  // Copies up to `len` bytes of the readable buffers from byte `offset` on
  // into `out`; returns how many.
  size_t Read(uint64_t offset, uint8_t* out, size_t len) const;
  // Copies `len` bytes into the writable buffers from byte `offset` on;
  // returns how many fit.
  size_t Write(uint64_t offset, const uint8_t* in, size_t len) const;
};

struct VirtqueueConfig {
  uint32_t num = 0;        // a power of two, 1..32768
  uint64_t desc_user = 0;  // frontend addresses (SET_VRING_ADDR)
  uint64_t avail_user = 0;
  uint64_t used_user = 0;
  bool event_idx = false;  // VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;   // VIRTIO_RING_F_INDIRECT_DESC negotiated
};

class Virtqueue {
 public:
  enum class Pop : uint8_t { kChain, kEmpty, kError };
  // What the popped chain is for: the guest's transmit queue holds readable
  // buffers only, its receive queue writable ones.
  enum class Want : uint8_t { kAny, kReadable, kWritable };

  // Translates the three parts through `memory` (kept; REQUIRES it outlives
  // the attachment) and checks them: size, alignment (16, 2, 4), each part
  // wholly inside one region. The used index continues from what is in
  // the used ring (a frontend that restores a ring restores it there); the
  // next available index is `last_avail_idx` (SET_VRING_BASE).
  Status Attach(const GuestMemory* memory, const VirtqueueConfig& config, uint16_t last_avail_idx);
  void Detach();
  bool attached() const { return desc_ != nullptr; }
  // The ring saw an avail index jump: it pops nothing until attached again.
  bool broken() const { return broken_; }
  const VirtqueueConfig& config() const { return config_; }

  uint16_t last_avail_idx() const { return last_avail_; }
  uint16_t used_idx() const { return used_idx_; }

  // Entries the driver made available and not yet popped (0 when broken).
  uint16_t Available();
  // Pops the next chain into *chain. kError: a malformed chain (its head, if
  // valid, is already given back with length 0), counted in errors() and
  // stored in *error; the caller goes on with the next.
  Pop PopChain(Chain* chain, RingError* error, Want want = Want::kAny);
  // Makes the last `n` popped chains available again (they were not used:
  // REQUIRES nothing pushed for them).
  void Unpop(uint16_t n) { last_avail_ = static_cast<uint16_t>(last_avail_ - n); }
  // Puts (head, len) on the used ring; not visible until Publish().
  void Push(uint16_t head, uint32_t len);
  // Makes the pushed entries visible to the driver (release store of used->idx).
  void Publish();
  // Whether the driver wants a call (interrupt) for what was published since
  // the last call: used_event with EVENT_IDX, else !VRING_AVAIL_F_NO_INTERRUPT.
  // Resets the "since" point when it answers true.
  bool NeedCall();

  // Asks the driver to kick when it adds buffers (the device is about to
  // sleep); then the caller must look at Available() again, since buffers
  // added before the driver saw the request bring no kick.
  void EnableNotify();
  // Asks the driver not to kick (the device polls).
  void DisableNotify();

  uint64_t error_count(RingError e) const { return errors_[static_cast<size_t>(e)]; }
  uint64_t error_total() const;

 private:
  struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
  };
  Pop Fail(RingError e, RingError* out, int head);
  uint16_t* UsedFlags() const { return reinterpret_cast<uint16_t*>(used_); }
  uint16_t* UsedIdx() const { return reinterpret_cast<uint16_t*>(used_ + 2); }
  uint16_t* AvailEvent() const { return reinterpret_cast<uint16_t*>(used_ + 4 + 8 * config_.num); }
  uint16_t* UsedEvent() const { return avail_ + 2 + config_.num; }

  const GuestMemory* memory_ = nullptr;
  VirtqueueConfig config_;
  uint8_t* desc_ = nullptr;
  uint16_t* avail_ = nullptr;  // flags, idx, ring[num], used_event
  uint8_t* used_ = nullptr;    // u16 flags, u16 idx, {u32 id, u32 len}[num], u16 avail_event
  uint16_t mask_ = 0;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t published_ = 0;  // used_idx_ as last published
  uint16_t signalled_used_ = 0;
  bool signalled_valid_ = false;
  bool broken_ = false;
  uint64_t errors_[kRingErrorCount] = {};
};

// The receive side of a network device (the guest's receive queue): puts
// one packet, `header` (the virtio_net_hdr) followed by `pieces`, into the
// next available writable chains and pushes them (the caller publishes).
// Mergeable (VIRTIO_NET_F_MRG_RXBUF): as many chains as it takes, at most
// kMaxMergeBuffers, their number written as the little-endian u16 at
// `num_buffers_offset` of the header; otherwise the packet must fit one chain.
// Refused chains met on the way are counted by the queue and skipped.
enum class Put : uint8_t {
  kOk,
  kNoBuffers,  // the guest has not made enough buffers available (nothing pushed)
  kTooBig,     // the packet does not fit the buffers a packet may have
};
inline constexpr size_t kMaxMergeBuffers = 256;
Put PutPacket(Virtqueue& queue, std::span<const uint8_t> header, bool mergeable,
              size_t num_buffers_offset, std::span<const std::span<const uint8_t>> pieces,
              uint16_t* buffers_used = nullptr);

}  // namespace vfabric::vhost_user
