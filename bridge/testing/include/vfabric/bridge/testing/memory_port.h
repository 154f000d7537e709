// MemoryPort: the in-memory port of tests, fuzzers and benchmarks.
//
// Not a production port: it lives in its own library (vfabric_bridge_testing,
// bridge/testing/) that tests, fuzzers and benchmarks link and netd does not,
// so production code cannot include it by accident. It implements the same
// Port interface as the tap and packet-socket ports (bridge/ports.h).
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
  // Reported as Port::reports_kernel_drops: the port then answers
  // TakeKernelDrops() with what AddKernelDrops() added since, as a packet
  // socket answers with its ring's drops.
  bool reports_kernel_drops = false;
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
  bool reports_kernel_drops() const override { return options_.reports_kernel_drops; }
  uint64_t TakeKernelDrops() override { return kernel_drops_.exchange(0); }

  // Frames "the kernel dropped" before the port (any thread).
  void AddKernelDrops(uint64_t n) { kernel_drops_.fetch_add(n); }

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
  std::atomic<uint64_t> kernel_drops_{0};
};

}  // namespace vfabric::bridge
