// An in-process network of stp::Bridge instances for tests: point-to-point
// links with a configurable delay that can fail (link down, seen by both ends)
// or go silent (frames lost, ports stay up), a fake clock, and an
// event-driven loop that delivers BPDUs and fires each bridge's timers.
// After every event it checks that the links carrying traffic (both ends
// forwarding) form a forest: no forwarding loop at any step.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "vfabric/stp/rstp.h"

namespace vfabric::stp::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Duration = std::chrono::nanoseconds;

struct BridgeSpec {
  uint16_t priority = 32768;
  MacAddress address;
  Mode mode = Mode::kRstp;
  uint32_t hello_time = 2;
  uint32_t forward_delay = 15;
  uint32_t max_age = 20;
  uint32_t tx_hold_count = 6;
};

// The tree 802.1D defines for the links that are up, computed independently
// of the engine: root = lowest bridge id per connected component; root path
// cost by shortest path; root port and designated port by the standard's
// tie-breakers (17.6).
struct ExpectedTree {
  std::vector<BridgeId> root_of;                        // per bridge
  std::vector<uint32_t> root_cost;                      // per bridge
  std::map<std::pair<int, PortNumber>, PortRole> role;  // per (bridge, port) on an up link
};

class Network {
 public:
  explicit Network(Duration link_delay = Duration::zero());
  ~Network();

  // Adds a bridge; its clock phase is offset by a few ms per bridge.
  int AddBridge(const BridgeSpec& spec);
  // Connects a and b with a new port on each; `cost` 0 means by speed
  // (10 Gb/s: 2000). Returns the link index. The link starts up.
  int Connect(int a, int b, uint32_t cost_a = 0, uint32_t cost_b = 0);
  void SetLinkUp(int link, bool up);
  // The link stops (or resumes) delivering frames; both ports stay up.
  void SetLinkSilent(int link, bool silent);
  // Replaces bridge `i`'s engine by one restored from its SaveState(), as
  // netd's re-exec does; the new engine's state changes and flushes are
  // counted from then on (restored_changes).
  Status RestoreBridge(int i);
  uint64_t restored_changes(int i) const {
    return bridges_[static_cast<size_t>(i)].restored_changes;
  }

  // Runs the event loop for `d` of simulated time.
  void RunFor(Duration d);
  // Runs until `done` holds (checked after every event) or `limit` passes.
  // Returns the simulated time it took, or nullopt.
  std::optional<Duration> RunUntil(const std::function<bool()>& done, Duration limit);

  ExpectedTree Expected() const;
  // Roles and states match Expected(): root/designated forwarding,
  // alternate/backup discarding, and every bridge agrees on its root.
  bool Converged() const;
  std::string Mismatches() const;  // what differs from Expected(), for messages
  std::string Dump() const;

  void set_trace(bool on) { trace_ = on; }
  int loop_violations() const { return loop_violations_; }
  const std::string& first_loop() const { return first_loop_; }
  uint64_t bpdus_delivered() const { return bpdus_delivered_; }
  int bridge_count() const { return static_cast<int>(bridges_.size()); }
  int link_count() const { return static_cast<int>(links_.size()); }
  Bridge& bridge(int i) { return *bridges_[static_cast<size_t>(i)].engine; }
  TimePoint now() const { return now_; }
  PortState StateOf(int bridge, PortNumber port) const;
  uint64_t flushes(int bridge) const { return bridges_[static_cast<size_t>(bridge)].flushes; }
  // Links as (bridge a, port a, bridge b, port b).
  struct Link {
    int a = 0, b = 0;
    PortNumber pa = 0, pb = 0;
    uint32_t cost_a = 2000, cost_b = 2000;
    bool up = true;
    bool silent = false;
    uint64_t generation = 0;  // bumped when the link goes down: in-flight frames die
  };
  const Link& link(int i) const { return links_[static_cast<size_t>(i)]; }

 private:
  struct Node {
    BridgeSpec spec;
    std::unique_ptr<Bridge> engine;
    std::map<PortNumber, PortState> states;
    std::map<PortNumber, int> link_of;
    PortNumber next_port = 1;
    uint64_t flushes = 0;
    BridgeConfig config;
    bool restored = false;
    uint64_t restored_changes = 0;  // state changes and flushes since RestoreBridge
  };
  struct InFlight {
    TimePoint at;
    uint64_t seq;
    int link;
    uint64_t generation;
    int to_bridge;
    PortNumber to_port;
    std::vector<uint8_t> frame;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  void Drain(int bridge);
  void CheckLoops();
  bool Step(TimePoint limit);  // one event; false when none before `limit`

  Duration delay_;
  TimePoint now_;
  uint64_t seq_ = 0;
  std::vector<Node> bridges_;
  std::vector<Link> links_;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<InFlight>> in_flight_;
  bool trace_ = false;
  int loop_violations_ = 0;
  std::string first_loop_;
  uint64_t bpdus_delivered_ = 0;
};

}  // namespace vfabric::stp::testing
