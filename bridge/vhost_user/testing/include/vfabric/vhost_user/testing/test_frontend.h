// A vhost-user frontend (the driver's side, what QEMU or DPDK's virtio-user
// is) for tests and benchmarks: guest memory in memfds, the frontend's
// messages over a Unix socket, and a virtio-net device's two rings filled
// and drained as a guest's driver would.
//
// Threads: one. While it waits for a reply it calls `pump` (a test that
// runs the backend on the same thread passes one: Serve(), or the
// switch's RunOnce()); without a pump it waits on the socket (the backend
// runs on a thread of its own).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vhost_user/backend.h"
#include "vfabric/vhost_user/protocol.h"
#include "vfabric/vhost_user/testing/driver.h"

namespace vfabric::vhost_user::testing {

// Message payloads as a frontend writes them: a u64 (features, a vring's
// fd-less SET_VRING_CALL/KICK) and a vring state (index, num).
std::vector<uint8_t> U64(uint64_t v);
std::vector<uint8_t> State(uint32_t index, uint32_t num);

struct TestFrontendOptions {
  size_t regions = 1;             // memfd regions (a hole between each)
  size_t region_size = 16 << 20;  // bytes each
  uint16_t queue_size = 256;
  // Features to ack (intersected with what the backend offers).
  uint64_t features = kDefaultFeatures;
  uint64_t protocol_features = kDefaultProtocolFeatures;
  bool enable = true;  // SET_VRING_ENABLE 1 on both rings at the end of Start()
};

// One packet the guest received: its virtio_net_hdr (12 bytes, or 10
// without MRG_RXBUF and VERSION_1) and the frame.
struct GuestPacket {
  std::vector<uint8_t> header;
  std::vector<uint8_t> frame;
};

class TestFrontend {
 public:
  static Result<std::unique_ptr<TestFrontend>> Create(UniqueFd socket,
                                                      const TestFrontendOptions& options,
                                                      std::function<void()> pump = nullptr);
  ~TestFrontend();

  // ---- messages ----
  // Sends one message as it is (flags: version 1 plus `flags`).
  Status Send(uint32_t request, std::span<const uint8_t> payload = {},
              std::span<const int> fds = {}, uint32_t flags = kFlagNeedReply);
  // Waits (pumping) for one message from the backend.
  Result<Reply> Receive();
  // A request the backend answers (GET_*): its u64 or raw payload.
  Result<uint64_t> GetU64(uint32_t request);
  // A set with REPLY_ACK (when negotiated): the backend's ack, 0 success.
  // Without REPLY_ACK, 0 once sent.
  Result<uint64_t> Set(uint32_t request, std::span<const uint8_t> payload = {},
                       std::span<const int> fds = {});

  // The whole setup in QEMU's order: GET_FEATURES, GET/SET_PROTOCOL_FEATURES,
  // SET_OWNER, SET_FEATURES, SET_MEM_TABLE, then per ring SET_VRING_NUM,
  // BASE, ADDR, KICK, CALL; SET_VRING_ENABLE 1 if asked. Any refusal fails.
  Status Start();
  // SET_MEM_TABLE with the current regions (a live replacement when started).
  Status SendMemTable();
  // Ring i's ring-level messages alone (NUM, BASE, ADDR, KICK, CALL).
  Status SetUpRing(uint32_t ring, uint16_t base = 0);
  Status Enable(uint32_t ring, bool on);
  // GET_VRING_BASE: stops the ring, answers the next available index.
  Result<uint32_t> GetVringBase(uint32_t ring);
  // Hangs up.
  void Disconnect() { socket_.Reset(); }

  // ---- traffic ----
  // Queues a frame on the guest's transmit ring behind `header` (12 bytes:
  // flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers)
  // and kicks unless the backend asked not to. `split`: the header in a
  // descriptor of its own. Fails when the ring is full.
  Status Transmit(std::span<const uint8_t> frame, std::span<const uint8_t> header = {},
                  bool split = false, bool indirect = false);
  // Makes `count` receive buffers of `size` bytes available.
  Status PostReceiveBuffers(size_t count, uint32_t size = 2048);
  // The packets the backend put into the receive ring since the last call
  // (mergeable buffers joined by num_buffers).
  std::vector<GuestPacket> TakeReceived();
  // Transmit chains the backend gave back (their descriptors are free again).
  size_t ReclaimTransmitted();

  // Calls the backend made on ring i's call eventfd (read and cleared).
  uint64_t TakeCalls(uint32_t ring);
  uint64_t kicks_sent() const { return kicks_; }

  uint64_t acked_features() const { return features_; }
  size_t header_size() const;
  GuestRam& ram() { return ram_; }
  DriverQueue& rx() { return *queues_[0]; }
  DriverQueue& tx() { return *queues_[1]; }
  int kick_fd(uint32_t ring) const { return kick_[ring].get(); }
  int socket() const { return socket_.get(); }
  void Kick(uint32_t ring);

 private:
  TestFrontend(UniqueFd socket, GuestRam ram, const TestFrontendOptions& options,
               std::function<void()> pump);

  UniqueFd socket_;
  GuestRam ram_;
  TestFrontendOptions options_;
  std::function<void()> pump_;
  std::unique_ptr<DriverQueue> queues_[2];
  UniqueFd kick_[2], call_[2];
  uint64_t features_ = 0;
  uint64_t protocol_features_ = 0;
  uint64_t kicks_ = 0;
  uint16_t kicked_at_[2] = {0, 0};  // avail idx at the last kick
};

}  // namespace vfabric::vhost_user::testing
