// vfabric::stp::Bridge — one spanning tree bridge: IEEE 802.1D-2004 clause 17
// RSTP, with per-port fallback to 802.1D(-1998) STP.
//
// What it is. A pure state machine engine. The owner (the userspace switch)
// feeds it BPDU frames, link events and time, and drains its outputs: BPDU
// frames to send on ports, port state changes to apply to the forwarding
// pipeline, FDB flush requests, and notable events (bpdu_guard trips). It
// makes no system calls, reads no clock, allocates only when ports are added
// or outputs are queued, and throws nothing.
//
// How to drive it.
//   auto bridge = Bridge::Create(config, now);            // Result<>, checks config
//   bridge->AddPort(port_config);                          // port starts link-down
//   bridge->SetPortEnabled(port, true, speed_mbps, now);   // link up
//   bridge->ReceiveBpdu(port, frame, now);                 // a trapped 01:80:c2:00:00:00 frame
//   bridge->AdvanceTo(now);                                // at NextDeadline(), or any time
//   Output out = bridge->TakeOutput();                     // apply state changes, send BPDUs
// Every mutating call runs the state machines to quiescence before it returns,
// so after it the outputs are complete and consistent. Apply `state_changes`
// before sending `bpdus`: an agreement must not leave before the ports it
// relies on have stopped forwarding (17.29.3).
//
// Time. `now` is any monotonic time point (the switch passes its event loop's
// steady clock; tests pass a fake one). As the standard does, timers run in
// whole seconds: AdvanceTo() performs one 802.1D "tick" per second elapsed
// since the bridge was created. Rapid transitions (proposal/agreement, edge
// ports) do not wait for ticks: they happen within the ReceiveBpdu() or
// SetPortEnabled() call that triggers them.
//
// Threading. Not thread-safe; one owner thread (the switch's control thread).
//
// The state machines, invariants and simplifications are described in
// stp/DESIGN.md.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/stp/bpdu.h"
#include "vfabric/stp/types.h"

namespace vfabric::stp {

using TimePoint = std::chrono::steady_clock::time_point;

enum class Mode : uint8_t {
  kRstp,  // ForceProtocolVersion 2: RSTP, falling back per port to STP when a peer speaks it
  kStp,   // ForceProtocolVersion 0: 802.1D STP everywhere (Config/TCN BPDUs, timer-driven)
};

struct BridgeConfig {
  MacAddress address;         // the bridge address; must be a non-zero unicast address
  uint16_t priority = 32768;  // 0..61440, a multiple of 4096
  Mode mode = Mode::kRstp;
  // Seconds, in the ranges of 802.1D-2004 Table 17-1 (hello 1..10 as 802.1D-1998
  // allowed, as the Linux bridge does): hello 1..10, forward delay 4..30, max age
  // 6..40, and max_age >= 2 * (hello_time + 1). (max_age <= 2 * (forward_delay - 1)
  // is not enforced: the Linux bridge does not, and common setups violate it.)
  uint32_t hello_time = 2;
  uint32_t forward_delay = 15;
  uint32_t max_age = 20;
  uint32_t tx_hold_count = 6;  // 1..10 BPDUs per second per port
};

struct PortConfig {
  PortNumber number = 0;       // 1..4095, unique on the bridge; the switch's port handle
  uint8_t priority = 128;      // 0..240, a multiple of 16
  uint32_t path_cost = 0;      // 1..200000000, or 0: from link speed (17.14, Table 17-3)
  bool admin_edge = false;     // AdminEdge: starts as an edge port (a guest NIC)
  bool auto_edge = true;       // AutoEdge: becomes edge when no BPDU arrives (17.19.3)
  bool point_to_point = true;  // operPointToPointMAC: virtual links are full duplex
  bool bpdu_guard = false;     // a BPDU received here disables the port (until re-enabled)
  bool root_block = false;     // restrictedRole (802.1Q 13.25.36): never the root port
  MacAddress address;          // source address of BPDUs sent here; zero: the bridge address
};

// 17.14 Table 17-3: 20,000,000,000 / speed in kb/s, within 1..200,000,000.
// An unknown speed (0) counts as 1 Gb/s (20,000).
uint32_t PathCostForSpeed(uint64_t speed_mbps);

struct TxBpdu {
  PortNumber port = 0;
  std::vector<uint8_t> frame;  // a whole Ethernet frame, from EncodeBpduFrame()
};
struct StateChange {
  PortNumber port = 0;
  PortState state = PortState::kDiscarding;
};
struct FlushRequest {
  PortNumber port = 0;  // remove the dynamic FDB entries learned on this port
};
struct Event {
  enum class Kind : uint8_t {
    kBpduGuardTrip,     // a BPDU arrived on a bpdu_guard port; the port is now disabled
    kTopologyChange,    // this bridge detected or was told of a topology change
    kNewRoot,           // the root bridge changed
    kProtocolMigration  // a port switched between RSTP and STP BPDUs
  };
  Kind kind;
  PortNumber port = 0;  // 0 for bridge-wide events
};

// Everything produced since the last TakeOutput(), in order of occurrence.
struct Output {
  std::vector<StateChange> state_changes;
  std::vector<TxBpdu> bpdus;
  std::vector<FlushRequest> flushes;
  std::vector<Event> events;
  bool empty() const {
    return state_changes.empty() && bpdus.empty() && flushes.empty() && events.empty();
  }
};

struct PortCounters {
  uint64_t rx_config = 0;
  uint64_t rx_tcn = 0;
  uint64_t rx_rst = 0;
  uint64_t tx_config = 0;
  uint64_t tx_tcn = 0;
  uint64_t tx_rst = 0;
  // Malformed BPDUs dropped, in total and by reason (index: DecodeError).
  uint64_t rx_malformed = 0;
  std::array<uint64_t, kDecodeErrorCount> rx_malformed_by_reason{};
  uint64_t rx_while_disabled = 0;  // well-formed BPDUs dropped: port down or disabled
  uint64_t rx_own = 0;             // this port's own BPDU looped back to it, dropped (9.3.4)
  uint64_t bpdu_guard_trips = 0;
  uint64_t forward_transitions = 0;
  uint64_t proposals_rx = 0;
  uint64_t agreements_rx = 0;
  uint64_t tc_rx = 0;  // BPDUs with TC, and TCNs
};

struct PortStatus {
  PortNumber number = 0;
  PortId id = 0;
  bool enabled = false;  // link up and not disabled by bpdu_guard
  bool bpdu_guard_tripped = false;
  PortRole role = PortRole::kDisabled;
  PortState state = PortState::kDiscarding;
  uint32_t path_cost = 0;
  Protocol protocol = Protocol::kRstp;  // what the port sends now
  bool oper_edge = false;
  bool admin_edge = false;
  bool point_to_point = true;
  bool root_block = false;
  bool bpdu_guard = false;
  // The port priority vector (17.6): what this port has recorded as the best
  // information for its segment (its own, when designated).
  BridgeId designated_root;
  uint32_t designated_cost = 0;
  BridgeId designated_bridge;
  PortId designated_port = 0;
  bool topology_change_active = false;  // tcWhile running
  PortCounters counters;
};

struct BridgeStatus {
  BridgeId bridge_id;
  BridgeId root_id;
  uint32_t root_path_cost = 0;
  PortNumber root_port = 0;  // 0: this bridge is the root
  bool is_root = true;
  Mode mode = Mode::kRstp;
  // Times in use (the root's, as received), and the bridge's own.
  uint32_t max_age = 0, hello_time = 0, forward_delay = 0;
  uint32_t bridge_max_age = 0, bridge_hello_time = 0, bridge_forward_delay = 0;
  bool topology_change = false;  // some port's tcWhile is running
  uint64_t topology_change_count = 0;
  // Since the last topology change detected or received; nullopt if none yet.
  std::optional<std::chrono::nanoseconds> time_since_topology_change;
  std::vector<PortStatus> ports;  // ordered by port number
};

class Bridge {
 public:
  // Checks `config` and makes a bridge with no ports.
  static Result<std::unique_ptr<Bridge>> Create(const BridgeConfig& config, TimePoint now);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Adds a port, link down. Fails (and changes nothing) on a bad or duplicate number
  // or an out-of-range value.
  Status AddPort(const PortConfig& config, TimePoint now);
  // Removes a port (its role goes away; the other ports reselect).
  Status RemovePort(PortNumber port, TimePoint now);
  // Link up/down, with the link speed for automatic path cost (0: unknown;
  // a known speed sets the cost also for a port whose link is down).
  // Bringing up a port disabled by bpdu_guard clears the trip (the operator's
  // way to re-enable it is a down/up).
  Status SetPortEnabled(PortNumber port, bool up, uint64_t speed_mbps, TimePoint now);
  // Sets mcheck: the port sends RST BPDUs again and re-detects STP peers (17.19.13).
  Status ForceProtocolMigrationCheck(PortNumber port, TimePoint now);

  // A frame trapped on `port` (destination 01:80:c2:00:00:00). A malformed one is
  // dropped and counted; one on a down port is dropped and counted; one on a
  // bpdu_guard port disables the port. Unknown port: an error, nothing changes.
  Status ReceiveBpdu(PortNumber port, std::span<const uint8_t> frame, TimePoint now);

  // Runs the timers up to `now` (one tick per whole second since Create()).
  void AdvanceTo(TimePoint now);
  // When AdvanceTo() next has something to do.
  TimePoint NextDeadline() const;

  // Drains the outputs produced so far.
  Output TakeOutput();

  BridgeStatus GetStatus(TimePoint now) const;
  // The state of `port` as last reported (kDiscarding for an unknown port).
  PortState GetPortState(PortNumber port) const;
  PortRole GetPortRole(PortNumber port) const;

  // ---- handing the engine to a new image of the process (netd's re-exec) ----
  // The whole state (every port's variables, state machines, timers, the
  // root and the time of the next tick, as steady_clock time: the monotonic
  // clock goes on across an exec) as bytes, for Restore. Call it after
  // TakeOutput(): outputs not taken are not kept.
  std::vector<uint8_t> SaveState() const;
  // A bridge with `config` that carries on from `state` (SaveState of a
  // bridge with the same config, by a build with the same engine layout):
  // its ports keep their roles and states, no port goes through discarding
  // and learning again, timers run on from where they were. Fails, with
  // the reason, on a truncated or corrupt state (length, magic and checksum
  // are checked), another engine layout (kStateVersion or the sizes of the
  // per-port record differ: a build whose engine changed) or another config;
  // the caller then starts a fresh bridge (Create).
  static Result<std::unique_ptr<Bridge>> Restore(const BridgeConfig& config,
                                                 std::span<const uint8_t> state, TimePoint now);
  // Whether `port` is a port of this bridge.
  bool HasPort(PortNumber port) const;

  class Impl;

 private:
  explicit Bridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vfabric::stp
