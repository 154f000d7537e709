// The backend side of the vhost-user protocol for one virtio-net device: a
// state machine fed one message at a time (header, payload, fds), which
// answers it and keeps the device's state: negotiated features, the guest
// memory table, the vrings (size, addresses, base, kick/call/err eventfds,
// enabled). No sockets here (connection.h carries the messages), so it
// unit-tests and fuzzes without them.
//
// How to drive it:
//   Backend backend(options);
//   for each message read (Connection::ReadMessage):
//     Backend::Outcome out = backend.Handle(header, payload, fds);
//     if (out.reply) send it; if (out.close) drop the connection;
//   when the connection goes: backend.Reset();
//   on the datapath: backend.ready(i) is the ring to move frames on (or
//   nullptr), backend.kick_fd(i)/call_fd(i) its eventfds; generation()
//   changes whenever any of these may have changed.
//
// Refusals. Every message that is malformed (wrong payload size, wrong fd
// count, an index past the rings, a value out of range), asks for what was
// not offered (features, LOG_ALL, SET_LOG_BASE, a backend channel), or is
// unknown is refused: with REPLY_ACK negotiated and NEED_REPLY set, the
// reply says failure (non-zero); each kind is logged once per connection
// and counted. The fds of a refused message are closed (the caller's
// UniqueFds). A malformed GET_* (whose reply the frontend waits for and
// cannot be told "no") closes the connection. Nothing a frontend sends
// makes the backend read outside a buffer or crash.
//
// Not supported, and so neither offered nor accepted: multiqueue (VIRTIO_NET_F_MQ,
// VHOST_USER_PROTOCOL_F_MQ, any ring past the first queue pair; GET_QUEUE_NUM
// answers 1) and packed rings (VIRTIO_F_RING_PACKED). A frontend that asks
// for them anyway is refused like any other message, and the reason is
// counted apart (unsupported()) and logged saying what to change: QEMU
// then fails the NIC (its -netdev vhost-user,queues=N or packed=on) rather
// than running it in a mode the backend would misread.
//
// Rings start disabled when VHOST_USER_F_PROTOCOL_FEATURES was negotiated
// (SET_VRING_ENABLE enables them), else enabled when started; a ring is
// started by SET_VRING_KICK and stopped by GET_VRING_BASE (which answers
// the next available index to resume from).
//
// Threads: one owner. In vfabric that is the switch's datapath thread,
// which serves control messages between batches (DESIGN.md).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfabric/common/unique_fd.h"
#include "vfabric/vhost_user/guest_memory.h"
#include "vfabric/vhost_user/protocol.h"
#include "vfabric/vhost_user/virtqueue.h"

namespace vfabric::vhost_user {

// What this backend offers by default: split rings with indirect
// descriptors, EVENT_IDX, mergeable receive buffers, checksum and TSO
// offload both ways (no UFO), VERSION_1, the MTU.
inline constexpr uint64_t kDefaultFeatures =
    Bit(feature::kCsum) | Bit(feature::kGuestCsum) | Bit(feature::kMtu) | Bit(feature::kGuestTso4) |
    Bit(feature::kGuestTso6) | Bit(feature::kGuestEcn) | Bit(feature::kHostTso4) |
    Bit(feature::kHostTso6) | Bit(feature::kHostEcn) | Bit(feature::kMrgRxbuf) |
    Bit(feature::kIndirectDesc) | Bit(feature::kEventIdx) | Bit(feature::kProtocolFeatures) |
    Bit(feature::kVersion1);
inline constexpr uint64_t kDefaultProtocolFeatures = Bit(protocol_feature::kReplyAck) |
                                                     Bit(protocol_feature::kMtu) |
                                                     Bit(protocol_feature::kConfigureMemSlots);

// Why a frontend's request was refused because it asked for what this
// backend does not do (each also counts in refused()).
enum class Unsupported {
  kMultiqueue,  // VIRTIO_NET_F_MQ, PROTOCOL_F_MQ, or a ring past the first queue pair
  kPackedRing,  // VIRTIO_F_RING_PACKED
};
inline constexpr size_t kUnsupportedCount = 2;
std::string_view ToString(Unsupported reason);  // "multiqueue", "packed_ring"

struct BackendOptions {
  std::string name = "vhost-user";  // for messages
  uint64_t features = kDefaultFeatures;
  uint64_t protocol_features = kDefaultProtocolFeatures;
};

struct Reply {
  MessageHeader header;
  std::vector<uint8_t> payload;
};

class Backend {
 public:
  // One queue pair: ring 0 receives into the guest, ring 1 is the guest's
  // transmit queue.
  static constexpr size_t kRings = 2;
  static constexpr size_t kRxRing = 0;
  static constexpr size_t kTxRing = 1;

  explicit Backend(BackendOptions options = {});

  struct Outcome {
    std::optional<Reply> reply;
    bool close = false;    // the connection must go (a GET the backend cannot answer)
    bool refused = false;  // the message was refused (logged once, counted)
  };
  // Handles one message. `fds` are the message's descriptors; those the
  // backend keeps are moved out, the rest the caller closes.
  Outcome Handle(const MessageHeader& header, std::span<const uint8_t> payload,
                 std::span<UniqueFd> fds);
  // Back to a fresh connection's state: rings stopped, fds closed, memory
  // unmapped, features forgotten.
  void Reset();

  // ---- the datapath's view ----
  // The ring, if it can move frames now: memory, addresses, started and
  // enabled (and not broken); else nullptr.
  Virtqueue* ready(size_t ring);
  bool enabled(size_t ring) const { return rings_[ring].enabled; }
  // SET_VRING_KICK seen and not stopped since (GET_VRING_BASE).
  bool started(size_t ring) const { return rings_[ring].started; }
  uint32_t ring_size(size_t ring) const { return rings_[ring].num; }  // SET_VRING_NUM, or 0
  // The ring's queue whatever its state (for its counters).
  const Virtqueue* ring(size_t ring) const { return &rings_[ring].queue; }
  int kick_fd(size_t ring) const { return rings_[ring].kick.get(); }
  int call_fd(size_t ring) const { return rings_[ring].call.get(); }
  uint64_t features() const { return features_; }
  bool has(int feature_bit) const { return (features_ & Bit(feature_bit)) != 0; }
  uint64_t protocol_features() const { return protocol_features_; }
  uint32_t mtu() const { return mtu_; }
  bool owner() const { return owner_; }                // SET_OWNER seen
  bool features_set() const { return features_set_; }  // SET_FEATURES seen
  const GuestMemory* memory() const { return memory_.get(); }
  // Changes whenever ready(), kick_fd() or call_fd() may answer differently.
  uint64_t generation() const { return generation_; }

  uint64_t messages() const { return messages_; }
  uint64_t refused() const { return refused_; }
  uint64_t unsupported(Unsupported reason) const {
    return unsupported_[static_cast<size_t>(reason)];
  }

 private:
  struct Ring {
    uint32_t num = 0;
    bool has_addr = false;
    uint64_t desc = 0, avail = 0, used = 0;
    uint16_t base = 0;
    UniqueFd kick, call, err;
    bool started = false;  // SET_VRING_KICK seen, not stopped since
    bool enabled = false;
    Virtqueue queue;
  };

  // Refuses: logs once per kind per connection, counts, says failure.
  Outcome Refuse(const MessageHeader& header, const std::string& why);
  // Refuses for `reason` (counted apart), saying what the frontend must change.
  Outcome RefuseUnsupported(const MessageHeader& header, Unsupported reason,
                            const std::string& what);
  Outcome Done(const MessageHeader& header);  // success (+ REPLY_ACK if asked)
  Outcome Answer(const MessageHeader& header, std::vector<uint8_t> payload);
  Outcome AnswerU64(const MessageHeader& header, uint64_t value);
  // Attaches a started ring's queue (or detaches it); logs a failure.
  void Sync(size_t ring);
  void StopRing(size_t ring);
  Outcome SetMemTable(const MessageHeader& h, std::span<const uint8_t> p, std::span<UniqueFd> fds);
  Outcome Install(const MessageHeader& h, GuestMemory memory);
  Outcome VringFd(const MessageHeader& h, std::span<const uint8_t> p, std::span<UniqueFd> fds);

  BackendOptions options_;
  uint64_t features_ = 0;
  bool features_set_ = false;
  uint64_t protocol_features_ = 0;
  bool owner_ = false;
  uint32_t mtu_ = 0;
  std::unique_ptr<GuestMemory> memory_;
  std::array<Ring, kRings> rings_;
  uint64_t generation_ = 1;
  uint64_t messages_ = 0;
  uint64_t refused_ = 0;
  std::array<uint64_t, kUnsupportedCount> unsupported_{};
  uint64_t logged_ = 0;  // refusal kinds logged this connection (bit per request, 63: others)
};

}  // namespace vfabric::vhost_user
