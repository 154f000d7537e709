// VhostUserPort: a switch port whose other end is a guest's virtio-net
// device behind a vhost-user frontend (QEMU, DPDK's virtio-user). The
// guest's rings live in its memory, which the frontend shares with the
// port (SET_MEM_TABLE); frames move by copying between the rings and the
// switch's buffers, and only kicks and calls cross the kernel (eventfds).
//
//   Receive()  = the guest's transmit ring (ring 1) -> frames; the
//                virtio_net_hdr becomes Frame::vnet, as a tap's does.
//   Transmit() = frames -> the guest's receive ring (ring 0), with
//                MRG_RXBUF when negotiated; a call when the guest wants one.
//
// Threads: everything, the control messages included, runs on the
// datapath thread (bridge/vhost_user/DESIGN.md says why). fd() is an epoll
// descriptor of the port's own that is readable when the guest kicked its
// transmit ring, a control message arrived, or (server mode) a frontend
// is connecting; Receive() serves all three. Counters (stats()) are
// readable from any thread.
//
// The port is down (Transmit drops and counts, Receive yields nothing)
// until a frontend has set the rings up and enabled them, and again after
// the frontend disconnects; the switch keeps running. A frontend that
// shrinks a memory file under the port (SIGBUS, caught) is disconnected
// (memory_faults). In server mode the
// next frontend to connect brings it up again.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "vfabric/bridge/port.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vhost_user/backend.h"
#include "vfabric/vhost_user/connection.h"
#include "vfabric/vhost_user/virtqueue.h"

namespace vfabric::bridge {

struct VhostUserPortOptions {
  // What the backend offers the frontend (features, protocol features).
  vhost_user::BackendOptions backend;
  // Whether frames may reach the guest with checksum/GSO metadata
  // (Port::takes_offload, fixed when the port joins the switch). A guest
  // that did not accept GUEST_CSUM/GUEST_TSO4/6 gets no such frame: they
  // are dropped and counted (offload_refused). Off by default: DPDK's
  // virtio-user accepts none of them, and the switch then completes
  // checksums and segments TCP for every guest.
  bool takes_offload = false;
  // Control messages served per Receive() at most (a frontend cannot
  // hold the datapath thread with a flood of them).
  int max_messages_per_turn = 16;
  // Server mode: the path the listener is bound to (ListenUnix's). The
  // port removes that socket file when it goes, if the file there is still
  // the one it was given (same inode): a removed port, or a netd that
  // stops, leaves no socket behind for a frontend to wait on.
  std::string socket_path;
};

// Ring- and protocol-level counters, beyond the switch's PortCounters.
struct VhostUserStats {
  uint64_t connections = 0;  // frontends accepted or given
  uint64_t disconnects = 0;  // connections ended (closed, broken, refused GET)
  uint64_t messages = 0;     // control messages handled
  uint64_t messages_refused = 0;
  // Of those, refused because the frontend asked for multiqueue or packed
  // rings, which this backend does not do (vhost_user::Unsupported).
  uint64_t refused_multiqueue = 0;
  uint64_t refused_packed_ring = 0;
  uint64_t kicks = 0;             // kicks read from the transmit ring's eventfd
  uint64_t calls = 0;             // calls made (either ring)
  uint64_t calls_suppressed = 0;  // used entries published without a call (the guest asked)
  uint64_t tx_not_ready = 0;      // frames to send while the receive ring was not ready
  uint64_t tx_no_buffers = 0;     // frames to send for which the guest had no buffers
  uint64_t tx_too_big = 0;        // frames larger than the guest's buffers could take
  uint64_t offload_refused = 0;   // frames with offload metadata the guest did not accept
  uint64_t rx_oversize = 0;       // guest frames larger than a switch buffer
  uint64_t rx_bad_header = 0;     // guest frames shorter than headers, or offloads not agreed
  // Connections ended because the frontend cut a memory file short under
  // its mapping (a SIGBUS caught in guest memory; see guest_memory.h).
  uint64_t memory_faults = 0;
  uint64_t ring_errors[vhost_user::kRingErrorCount] = {};  // refused chains, both rings
};

// What the frontend negotiated and where the rings are (for netctl port
// show): a snapshot, read from any thread. Ring indices are as of the last
// batch on the ring.
struct VhostUserRingState {
  bool started = false;         // SET_VRING_KICK seen, not stopped since
  bool enabled = false;         // SET_VRING_ENABLE 1 (or no PROTOCOL_FEATURES)
  bool ready = false;           // moving frames: memory, addresses, started, enabled, not broken
  bool broken = false;          // the guest broke the ring; stopped until set up again
  uint32_t size = 0;            // SET_VRING_NUM
  uint16_t last_avail_idx = 0;  // the next available entry the port takes
  uint16_t used_idx = 0;        // the used index the port has published
};
struct VhostUserNegotiated {
  uint64_t features = 0;               // SET_FEATURES (virtio and vhost-user bits)
  uint64_t protocol_features = 0;      // SET_PROTOCOL_FEATURES
  uint32_t queue_pairs = 0;            // 1 while a frontend is connected (no MQ)
  uint32_t mtu = 0;                    // NET_SET_MTU, 0 if never sent
  uint32_t memory_regions = 0;         // the memory table's regions
  uint32_t memory_regions_sealed = 0;  // of which sealed against shrinking (F_SEAL_SHRINK)
  VhostUserRingState rings[vhost_user::Backend::kRings];  // 0: to the guest, 1: from it
};

class VhostUserPort final : public Port {
 public:
  // Server mode: `listener` is a listening Unix stream socket (see
  // ListenUnix); the port accepts one frontend at a time.
  static Result<std::unique_ptr<VhostUserPort>> Listen(std::string name, UniqueFd listener,
                                                       const VhostUserPortOptions& options = {});
  // One connection made elsewhere (client mode's connect, or a socketpair
  // in tests); when it ends the port stays down.
  static Result<std::unique_ptr<VhostUserPort>> FromConnection(
      std::string name, UniqueFd connection, const VhostUserPortOptions& options = {});
  // A listening socket at `path`, non-blocking, close-on-exec. A socket
  // file already there is replaced only if it is stale (nothing listens:
  // connect() is refused, as after a crashed netd); a live one fails with
  // EADDRINUSE, and anything that is not a socket with EEXIST.
  static Result<UniqueFd> ListenUnix(const std::string& path);
  ~VhostUserPort() override;

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kVhostUser; }
  int fd() const override { return epoll_.get(); }
  bool takes_offload() const override { return options_.takes_offload; }
  // Popping an empty ring reads memory only.
  bool cheap_to_poll() const override { return true; }
  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override;
  TxResult Transmit(std::span<const TxItem> items) override;

  // Any thread.
  VhostUserStats stats() const;
  VhostUserNegotiated negotiated() const;
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  // Both rings set up and enabled (any thread).
  bool up() const { return up_.load(std::memory_order_relaxed); }

 private:
  VhostUserPort(std::string name, const VhostUserPortOptions& options, UniqueFd epoll);
  struct Counter {
    std::atomic<uint64_t> v{0};
    void Add(uint64_t n) {
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t Get() const { return v.load(std::memory_order_relaxed); }
  };

  void ServeControl();
  void Accept();
  void Disconnect(const std::string& why);
  void Resync();  // after the backend's generation changed
  void TakeRingErrors();
  // After a batch: ends the connection if a SIGBUS was caught in this
  // port's guest memory (the frontend shrank a region's file).
  void CheckMemoryFaults();
  // The negotiated state for negotiated(): all of it after control
  // messages, a ring's indices after each batch on it.
  void PublishState();
  void PublishIndices(size_t ring, const vhost_user::Virtqueue& q) {
    ring_indices_[ring].store(static_cast<uint32_t>(q.last_avail_idx()) << 16 | q.used_idx(),
                              std::memory_order_relaxed);
  }
  void Call(size_t ring, vhost_user::Virtqueue* q);
  size_t HeaderSize() const;

  std::string name_;
  VhostUserPortOptions options_;
  // The socket file of options_.socket_path as Listen() found it (st_dev,
  // st_ino), removed by the destructor if still there; 0/0: none.
  uint64_t socket_dev_ = 0, socket_ino_ = 0;
  UniqueFd epoll_;
  UniqueFd listener_;
  std::unique_ptr<vhost_user::Connection> connection_;
  vhost_user::Backend backend_;
  uint64_t generation_ = 0;
  int watched_kick_ = -1;
  bool notify_on_ = false;  // the transmit ring asks the guest to kick
  uint64_t ring_errors_seen_[vhost_user::Backend::kRings][vhost_user::kRingErrorCount] = {};
  uint64_t messages_seen_ = 0, refused_seen_ = 0;
  uint64_t unsupported_seen_[vhost_user::kUnsupportedCount] = {};
  uint64_t busy_turns_ = 0;
  uint64_t faults_seen_ = 0;  // GuestMemory::faults() at the last check
  bool logged_tx_offload_ = false;
  bool logged_rx_header_ = false;

  std::atomic<bool> connected_{false};
  std::atomic<bool> up_{false};
  Counter connections_, disconnects_, messages_, messages_refused_, kicks_, calls_,
      calls_suppressed_, tx_not_ready_, tx_no_buffers_, tx_too_big_, offload_refused_, rx_oversize_,
      rx_bad_header_, memory_faults_;
  Counter ring_errors_[vhost_user::kRingErrorCount];
  std::atomic<uint64_t> features_{0}, protocol_features_{0};
  std::atomic<uint32_t> mtu_{0}, regions_{0}, regions_sealed_{0};
  // Per ring: flags (1 started, 2 enabled, 4 ready, 8 broken), size, and
  // last_avail_idx << 16 | used_idx.
  std::atomic<uint32_t> ring_flags_[vhost_user::Backend::kRings] = {};
  std::atomic<uint32_t> ring_size_[vhost_user::Backend::kRings] = {};
  std::atomic<uint32_t> ring_indices_[vhost_user::Backend::kRings] = {};
  Counter unsupported_[vhost_user::kUnsupportedCount];
};

}  // namespace vfabric::bridge
