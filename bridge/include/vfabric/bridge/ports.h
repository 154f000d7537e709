// The port kinds: memory (tests, benchmarks), tap, packet socket.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vfabric/bridge/port.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::bridge {

// ---- memory ----

// Frames injected by a test (any thread) and captured on transmit. With
// `notify`, the port has an eventfd that is readable while frames wait, so
// a running datapath thread wakes for them; without it the port is polled
// every turn. Injection and capture take a mutex (the port is for tests and
// benchmarks, not production), held for a whole batch.
struct MemoryPortOptions {
  bool notify = true;         // eventfd for a running datapath thread
  bool takes_offload = true;  // false: the switch completes checksums first
  bool capture = true;        // false: transmitted frames are only counted
  size_t tx_capacity = 0;     // captured frames kept at most (0: unbounded); past it: full
  bool tx_fails = false;      // every transmit fails as a broken link's would (errors)
  // Reported as Port::cheap_to_poll (with notify, the switch then watches
  // the port one-shot and polls it while busy, as it does a packet socket).
  bool cheap_to_poll = false;
};

struct CapturedFrame {
  std::vector<uint8_t> bytes;
  VnetHdr vnet;
};

class MemoryPort final : public Port {
 public:
  static Result<std::unique_ptr<MemoryPort>> Create(std::string name,
                                                    const MemoryPortOptions& options = {});
  ~MemoryPort() override;

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kMemory; }
  int fd() const override { return event_.get(); }
  bool takes_offload() const override { return options_.takes_offload; }
  bool cheap_to_poll() const override { return options_.cheap_to_poll; }
  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override;
  TxResult Transmit(std::span<const TxItem> items) override;

  // Queues a frame to be received (any thread).
  void Inject(std::vector<uint8_t> bytes, const VnetHdr& vnet = {});
  // Frames to be received again and again, in order, after the injected
  // ones (benchmarks): Receive never runs dry.
  void SetReplay(std::vector<std::vector<uint8_t>> frames);
  // Takes the frames transmitted so far (any thread).
  std::vector<CapturedFrame> TakeCaptured();
  size_t captured_count();
  uint64_t transmitted() const { return transmitted_.load(std::memory_order_relaxed); }

 private:
  MemoryPort(std::string name, const MemoryPortOptions& options, UniqueFd event);

  std::string name_;
  MemoryPortOptions options_;
  UniqueFd event_;
  std::mutex mutex_;
  std::deque<CapturedFrame> rx_;         // guarded by mutex_
  std::vector<CapturedFrame> captured_;  // guarded by mutex_
  // Set before the datapath runs.
  std::vector<uint8_t> replay_bytes_;
  std::vector<uint32_t> replay_sizes_;
  size_t replay_stride_ = 64;
  size_t replay_next_ = 0;
  std::atomic<uint64_t> transmitted_{0};
};

// ---- tap ----

struct TapPortOptions {
  // Ask the kernel for TCP segmentation offload frames (TUN_F_TSO4/6/ECN)
  // as well as checksum offload (TUN_F_CSUM). Safe with any egress: the
  // switch segments TCP GSO frames (and completes checksums) for ports that
  // cannot take the metadata. UDP GSO (TUN_F_USO*/UFO) is never asked for.
  bool tso = true;
  // TUNSETOFFLOAD at all (false: the kernel hands over complete frames).
  bool offload = true;
};

// Takes a tap fd opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (netd's
// OpenTap); makes it non-blocking, sets TUNSETVNETHDRSZ 12 and
// TUNSETOFFLOAD. Errors name the port: "tap vm1-eth0: TUNSETVNETHDRSZ: ...".
Result<std::unique_ptr<Port>> OpenTapPort(std::string name, UniqueFd fd,
                                          const TapPortOptions& options = {});

// ---- packet socket ----

struct PacketPortOptions {
  // PACKET_VNET_HDR: frames carry offload metadata both ways (the kernel
  // hands over GSO and partial-checksum frames from a veth as they are).
  // Without it, partial checksums are located and completed by the switch,
  // but GSO frames the link receives (a veth peer with TSO, GRO on a NIC)
  // cannot be segmented without their MSS: they are dropped as malformed.
  bool vnet_hdr = true;
  // The TPACKET_V2 rx ring: block_count blocks of block_size bytes, cut into
  // slots of frame_size bytes (header, vnet header and frame). The kernel
  // hands over every frame as soon as it is in its slot (no block timer:
  // TPACKET_V3's made each frame wait up to a jiffy, see DESIGN.md). Frames
  // larger than a slot (GSO frames, jumbo frames) wait whole on the
  // socket's queue (PACKET_COPY_THRESH), bounded by socket_buffer.
  uint32_t block_size = 1u << 20;
  uint32_t block_count = 8;
  uint32_t frame_size = 1u << 11;
  // SO_RCVBUF(FORCE) of the socket: the large frames queued beside the ring.
  uint32_t socket_buffer = 8u << 20;
  // The TPACKET_V2 tx ring (with vnet_hdr only): tx_ring_frames slots of
  // tx_frame_size bytes (a multiple of 16 dividing 64 KiB; the slot holds a
  // 32-byte header, the vnet header and the frame). Frames that do not fit,
  // and GSO frames, are sent with sendmmsg(). 0 frames: no ring.
  uint32_t tx_ring_frames = 512;
  uint32_t tx_frame_size = 1u << 11;
};

// An AF_PACKET SOCK_RAW socket bound to `ifindex` (ETH_P_ALL), promiscuous,
// PACKET_IGNORE_OUTGOING, a TPACKET_V2 rx ring (with PACKET_COPY_THRESH for
// frames larger than a slot); for tx two more sockets on the link (protocol
// 0, receiving nothing): one with a TPACKET_V2 tx ring, one for sendmmsg()
// of GSO and oversized frames (see bridge/DESIGN.md, "Transmit").
// `name` is the link's name (for messages).
Result<std::unique_ptr<Port>> OpenPacketSocketPort(std::string name, int ifindex,
                                                   const PacketPortOptions& options = {});

}  // namespace vfabric::bridge
