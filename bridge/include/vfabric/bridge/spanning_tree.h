// vfabric::bridge::SpanningTree — runs an stp::Bridge (RSTP with 802.1D
// fallback) for a Switch.
//
// Data flow. The switch's datapath thread traps each BPDU and hands it to a
// BpduInbox (a bounded queue of fixed slots: no allocation on the datapath;
// a full inbox drops and counts). The tree's own thread (Start()), or a
// caller of Service() (tests), drains the inbox into the engine, runs its
// timers at NextDeadline(), and applies the engine's output to the switch:
// port states first (SetPortStpState), then FDB flushes, then BPDUs
// (SendFrame) -- the order stp::Bridge requires, so an agreement never leaves
// before the ports it vouches for have stopped forwarding.
//
// Why a thread of its own and not the owner's event loop: a bridge that stops
// sending BPDUs for 3 hello times loses its designated role on its segments
// and its neighbours unblock their alternate ports -- a loop. netd's control
// thread may block for seconds (netlink transactions, guest start-up); the
// tree must not.
//
// Threading. Every public call is thread-safe (one mutex around the engine).
// Calls into the Switch are made with that mutex held; the Switch's control
// calls never call back into the tree, and the datapath thread only touches
// the inbox, so there is no lock cycle.
//
// Ports. A switch port joins the tree with AddPort() after it was added to
// the switch in the discarding state; the tree owns its state from then on.
// The 802.1D port number is the switch PortId + 1.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/bridge/settings.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::stp {
class Bridge;  // the engine (stp/rstp.h), private to bridge/src
}  // namespace vfabric::stp

namespace vfabric::bridge {

// BPDUs from the datapath thread to the tree. Push() is wait-free for the
// datapath apart from a short mutex with Drain(); nothing allocates after
// Create().
class BpduInbox {
 public:
  // A BPDU is at most 64 bytes (RST: 14 + 3 + 36, a tag adds 4); longer
  // frames are kept truncated to this, which the decoder then rejects as
  // malformed rather than trusting a cut-off BPDU.
  static constexpr size_t kMaxFrame = 128;
  struct Item {
    PortId port = 0;
    uint16_t size = 0;    // bytes kept (<= kMaxFrame)
    uint32_t length = 0;  // bytes received
    std::array<uint8_t, kMaxFrame> bytes{};
  };

  static Result<std::shared_ptr<BpduInbox>> Create(size_t capacity = 256);

  // The datapath thread's hook (SwitchConfig::bpdu_hook).
  BpduHook Hook();
  void Push(PortId port, std::span<const uint8_t> frame);
  // While not accepting (no tree runs: STP disabled), BPDUs are counted as
  // ignored and not queued. Accepting from Create().
  void SetAccepting(bool accepting) { accepting_.store(accepting, std::memory_order_relaxed); }
  uint64_t ignored() const { return ignored_.load(std::memory_order_relaxed); }
  // Everything queued so far, oldest first; clears the eventfd.
  std::vector<Item> Drain();
  // Readable while something is queued.
  int fd() const { return event_.get(); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  BpduInbox(size_t capacity, UniqueFd event);
  std::mutex mutex_;
  std::vector<Item> ring_;
  size_t head_ = 0, count_ = 0;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> ignored_{0};
  std::atomic<bool> accepting_{true};
  UniqueFd event_;
};

// TreeSettings, TreePortSettings, TreeEvent, TreeStatus: settings.h (the
// bridge's own types; mapped onto stp's in bridge/src).
using TreeClock = std::chrono::steady_clock::time_point;

struct SpanningTreeConfig {
  std::string name = "switch";  // for messages and the thread's name
  TreeSettings bridge;
  // The clock; default steady_clock. Tests inject a fake one and call
  // Service() themselves.
  std::function<TreeClock()> clock;
  // Called (with the tree's mutex held, on the tree's thread) for each
  // notable event: bpdu_guard trips, new root, topology changes, protocol
  // migrations. For logs; must not call back into the tree.
  std::function<void(const TreeEvent&, std::string_view port_name)> on_event;
};

// Every call into the switch or the engine that can fail is counted here
// (and logged): none is discarded.
struct SpanningTreeCounters {
  uint64_t bpdus_in = 0;       // drained from the inbox
  uint64_t inbox_dropped = 0;  // inbox full
  // Drained BPDUs the engine refused: their port left the tree after they
  // were queued (logged at info).
  uint64_t bpdus_refused = 0;
  uint64_t bpdus_out = 0;      // sent
  uint64_t send_failures = 0;  // SendFrame refused (port gone, tx full)
  uint64_t state_changes = 0;
  // Port states the switch refused (Switch::SetPortStpState failed: the
  // switch port is gone while the tree still has it). Logged as warnings.
  uint64_t state_change_failures = 0;
  uint64_t flushes = 0;
  // FDB flushes the switch refused (Switch::FlushFdb failed, as above).
  uint64_t flush_failures = 0;
};

// A running tree as handed to a new image of netd across an exec (netd's
// re-exec): the engine's state (stp::Bridge::SaveState) and the ports'
// names by switch PortId.
struct TreeHandover {
  std::vector<uint8_t> engine;
  std::vector<std::string> names;
};

class SpanningTree {
 public:
  // `sw` must outlive the tree and must have been created with
  // `inbox->Hook()` as its bpdu_hook.
  static Result<std::unique_ptr<SpanningTree>> Create(Switch& sw, std::shared_ptr<BpduInbox> inbox,
                                                      SpanningTreeConfig config);
  // A tree that carries on from `handover` (see TreeHandover): its ports
  // are in it already, with their roles and states; the switch's ports of
  // those ids should have the states the tree had (netd adds them so).
  // Fails (the caller then Creates a fresh tree) when the engine refuses the
  // state: corrupt, another engine layout, other bridge settings.
  static Result<std::unique_ptr<SpanningTree>> Restore(Switch& sw, std::shared_ptr<BpduInbox> inbox,
                                                       SpanningTreeConfig config,
                                                       const TreeHandover& handover);
  ~SpanningTree();  // stops the thread
  SpanningTree(const SpanningTree&) = delete;
  SpanningTree& operator=(const SpanningTree&) = delete;

  // Joins switch port `id` (named `name` in messages) to the tree and
  // brings it up or leaves it down. The switch port should be discarding.
  Status AddPort(PortId id, std::string name, const TreePortSettings& settings, bool link_up,
                 uint64_t speed_mbps);
  // Leaves the tree (before the port leaves the switch).
  Status RemovePort(PortId id);
  // Link up/down (carrier); a down/up also clears a bpdu_guard trip.
  Status SetPortLink(PortId id, bool up, uint64_t speed_mbps);

  // Drains the inbox, runs due timers, applies the output. The thread calls
  // it; tests driving a fake clock call it instead of Start().
  void Service();
  TreeClock NextDeadline() const;

  Status Start();
  void Stop();
  // Stops the thread, applies what the engine has produced, and gives its
  // state. The tree is then only to be destroyed.
  TreeHandover Handover();
  // Whether switch port `id` is in the tree.
  bool HasPort(PortId id) const;

  TreeStatus GetStatus() const;
  // The port's name as given to AddPort (empty when unknown); `number`: the
  // 802.1D port number (TreePortStatus::number).
  std::string PortName(uint16_t number) const;
  SpanningTreeCounters Counters() const;

  static uint16_t NumberOf(PortId id) { return static_cast<uint16_t>(id + 1); }
  static PortId IdOf(uint16_t number) { return static_cast<PortId>(number - 1); }

 private:
  SpanningTree(Switch& sw, std::shared_ptr<BpduInbox> inbox, SpanningTreeConfig config,
               std::unique_ptr<stp::Bridge> engine, UniqueFd wake);
  TreeClock Now() const;
  void ApplyOutput();  // REQUIRES mutex_
  // The port's name for messages, or "#id" (REQUIRES mutex_).
  std::string PortNameLocked(PortId id) const;
  void Loop();

  Switch& switch_;
  std::shared_ptr<BpduInbox> inbox_;
  SpanningTreeConfig config_;
  mutable std::mutex mutex_;
  std::unique_ptr<stp::Bridge> engine_;
  std::vector<std::string> names_;  // by PortId
  SpanningTreeCounters counters_;
  UniqueFd wake_;  // eventfd: Stop()
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace vfabric::bridge
