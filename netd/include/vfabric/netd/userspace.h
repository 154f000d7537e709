// netd's userspace networks: one bridge::Switch per network with
// "datapath": "userspace", kept matching the desired topology.
//
// The reconcile of the switches is plan-as-data, as the kernel's: Observe()
// gives what the switches hold as a value, PlanSwitches (switch_plan.h)
// turns it and the desired topology into SwitchOperations, and Apply() runs
// them: the switch of each network (FDB limits, ageing time, a hash seed
// from getrandom(), its datapath thread), a port per topology port opened
// through its PortBackend (port_backend.h) with the port's VLAN config,
// ports reopened whose link was recreated or failed, ports removed that left
// the configuration, and the static FDB entries (the topology's and those
// added at run time with fdb.add). Networks that left are stopped.
// Sync() is Plan + Apply, after the kernel is reconciled (the kernel planner
// has made the network's taps and veths, up, on no bridge).
// With "stp": {"enabled": true} a bridge::SpanningTree (RSTP, or STP with
// "mode": "stp") runs beside the switch on its own thread: ports join it
// discarding, carrier changes (oper_up from the kernel state) reach it as
// link up/down, and a change of the network's STP settings restarts the
// tree (ports go discarding and converge again).
// Single-threaded (netd's event loop); each switch runs its own datapath
// thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "vfabric/bridge/spanning_tree.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/common/status.h"
#include "vfabric/netd/handover.h"
#include "vfabric/netd/planner.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/runtime_statics.h"
#include "vfabric/netd/switch_plan.h"
#include "vfabric/topology/topology.h"

namespace vfabric::bridge {
class VhostUserPort;
}  // namespace vfabric::bridge

namespace vfabric::netd {

// The spanning tree bridge address of a userspace network: a locally
// administered unicast MAC hashed from the host's machine id and the
// network's name, so it is stable across restarts and differs between
// hosts and networks.
MacAddress TreeBridgeAddress(const std::string& machine_id, const std::string& network);
// A change Sync() would make to a running switch, described for people, as
// plan/apply list the planner's kernel operations.
struct SwitchChange {
  std::string kind;     // "start_switch", "add_switch_port", ... (see Pending)
  std::string network;  // the userspace network
  std::string object;   // the port, or the network itself
  std::string description;

  bool operator==(const SwitchChange&) const = default;
};

// The operations that are changes (SwitchOperation::IsChange), for people.
std::vector<SwitchChange> SwitchChanges(const std::vector<SwitchOperation>& operations);

// What Apply did: the operations that took, one message per one that did
// not (naming the network, the object and the cause).
struct SwitchApplyResult {
  std::vector<SwitchOperation> applied;
  std::vector<std::string> errors;
  // A switch had to be restarted from scratch: plan again.
  bool replan = false;
};

// The host's identity for derived addresses: /etc/machine-id, else the
// host name. Only the daemon reads it (once, at start) and hands it down, so
// that nothing below the daemon touches the host's files.
std::string ReadMachineId();

// The identity used when none is given (unit tests, fuzzers): fixed, so that
// derived addresses are the same on every machine.
inline constexpr const char* kDefaultMachineId = "vfabric";

class UserspaceNetworks {
 public:
  // `state_dir`: where static FDB entries added at run time (fdb.add) are
  // kept, one file per network (NETWORK.fdb.json), so that they survive a
  // restart of netd as the kernel keeps those of a Linux bridge. Empty: not
  // kept.
  // `backends`: how ports are opened (null: NewKernelPortBackends()).
  // `machine_id`: what the spanning trees' bridge addresses are derived
  // from (TreeBridgeAddress); empty: kDefaultMachineId. The daemon passes
  // ReadMachineId().
  explicit UserspaceNetworks(std::string state_dir = "",
                             std::unique_ptr<PortBackends> backends = nullptr,
                             std::string machine_id = "");
  ~UserspaceNetworks();
  UserspaceNetworks(const UserspaceNetworks&) = delete;
  UserspaceNetworks& operator=(const UserspaceNetworks&) = delete;

  // What the switches hold, as a value (the run-time static entries kept
  // on disk for a network of `desired` whose switch does not run yet).
  // `only` (optional): of these networks alone (PlanSwitches' `only`).
  ObservedSwitches Observe(const topology::Topology& desired,
                           const std::set<std::string>* only = nullptr) const;
  // PlanSwitches(desired, Observe(desired, only), backends, kernel, only).
  std::vector<SwitchOperation> Plan(const topology::Topology& desired,
                                    const KernelView* kernel = nullptr,
                                    const std::set<std::string>* only = nullptr) const;
  // Runs `operations` in order on the switches; `state` is the kernel as
  // read after its own apply (the links ports open on). An operation that
  // fails is reported and the rest still run (a port that will not open
  // does not stop the others).
  SwitchApplyResult Apply(const std::vector<SwitchOperation>& operations, const KernelState& state);
  // Makes the switches match `desired` (see the file comment): Plan with
  // `state` as the kernel view, then Apply. One message per problem.
  // `only`: these networks alone (PlanSwitches' `only`).
  std::vector<std::string> Sync(const topology::Topology& desired, const KernelState& state,
                                const std::set<std::string>* only = nullptr);
  // The changes Plan(desired) lists, without changing anything. Ports are
  // taken to have links (the planner makes them); carrier changes, which
  // follow link events, are not changes. Empty when the switches match.
  std::vector<SwitchChange> Pending(const topology::Topology& desired) const;

  bool Has(const std::string& network) const { return networks_.count(network) != 0; }
  // The backends the switches' ports come from (port.show asks them too).
  const PortBackends& Backends() const { return *backends_; }
  // The network's spanning tree runs (STP enabled and started).
  bool TreeRunning(const std::string& network) const {
    auto it = networks_.find(network);
    return it != networks_.end() && it->second.tree != nullptr;
  }
  // How many forwarding snapshots the network's switch has built
  // (bridge::Switch::SnapshotBuilds; 0 without a switch): an apply batches
  // each network's changes into one.
  uint64_t SnapshotBuilds(const std::string& network) const {
    auto it = networks_.find(network);
    return it != networks_.end() && it->second.sw ? it->second.sw->SnapshotBuilds() : 0;
  }
  // Stops every switch.
  void StopAll();

  // ---- handing the switches to a new image of netd (handover.h) ----
  // Stops every tree and switch and gives what a new image needs to carry
  // on: per network the ports' descriptors (dup()ed, without FD_CLOEXEC),
  // ids and states, the tree's state, the learned FDB entries. A port whose
  // kind cannot be handed over (vhost-user, vxlan) is left out: the new
  // image opens it anew. After it the switches are stopped: exec, or
  // StopAll() and Adopt() the state back.
  HandoverState HandOver();
  // The next Sync() adopts these: a port planned to open whose name,
  // backend and identity match a handed-over one takes its descriptors, its
  // switch port id and state instead of opening anew; a tree that starts
  // with the same settings carries on from the handed-over state (its
  // forwarding ports stay forwarding); the learned FDB entries of adopted
  // ports come back with their ages. What that Sync does not adopt is closed
  // (logged).
  void Adopt(HandoverState state);

  // ---- control verbs (the network must be Has()) ----
  // What the switch adds to a Port object: "switch_port" (its id, or null
  // when not in the switch), "stp_state" and "counters".
  nlohmann::json PortExtra(const std::string& network, const std::string& port) const;
  // PortExtra of every port the switch of `network` holds, by name (a port
  // not in it is absent; its PortExtra is {"switch_port": null}). For views
  // of many ports: the tree's status is read once for all of them, where
  // PortExtra per port read it once per port (10,000 ports: quadratic).
  std::map<std::string, nlohmann::json> PortExtras(const std::string& network) const;
  // Whether the switch of `network` holds `port` (PortExtra's "switch_port"
  // is not null), without reading the tree.
  bool InSwitch(const std::string& network, const std::string& port) const;
  // How many times the views above and StpJson asked a tree for its whole
  // status (bridge::SpanningTree::GetStatus, which copies every port's): a
  // view of a network's ports asks once, whatever the number of ports.
  uint64_t TreeStatusReads() const { return tree_status_reads_; }
  // A vhost-user port in the switch: {"connected", "up", "counters":
  // VhostUserStats} (netd/src/vhost_user_views.cc); null for any other port
  // or one not open.
  nlohmann::json VhostUserState(const std::string& network, const std::string& port) const;
  // What its frontend negotiated (feature names, queues, memory regions)
  // and each ring's state, for port show only (port list stays cheap);
  // null as VhostUserState.
  nlohmann::json VhostUserNegotiated(const std::string& network, const std::string& port) const;
  // {"port", "present", "counters": {...}} for one port or all.
  Result<nlohmann::json> PortStats(const std::string& network, const std::string& port) const;
  Result<nlohmann::json> FdbEntries(const std::string& network);
  nlohmann::json VlanJson(const topology::NetworkConfig& network) const;
  Result<nlohmann::json> FdbCounters(const std::string& network);
  // stp.show: the tree's view (bridge, root, per-port role/state/...).
  Result<nlohmann::json> StpJson(const topology::NetworkConfig& network) const;
  size_t PortsUp(const std::string& network) const;
  // Every port name a switch holds (for the planner: see Plan()).
  std::set<std::string> AttachedPorts() const;

  // fdb.add / fdb.del / fdb.flush. Runtime static entries are kept across
  // Sync() until deleted (or their port leaves the network).
  Status AddStatic(const topology::NetworkConfig& network, const MacAddress& mac,
                   const std::string& port, std::optional<uint16_t> vlan);
  Status DeleteStatic(const topology::NetworkConfig& network, const MacAddress& mac,
                      std::optional<uint16_t> vlan);
  Status Flush(const std::string& network, const std::string& port, std::optional<uint16_t> vlan);

  // capture.start (userspace_capture.cc): copies of the port's frames into
  // `ring` (Switch::SetCapture); the switch's port id. StopCapture clears it
  // again if that switch still has that ring on that port.
  Result<bridge::PortId> StartCapture(const std::string& network, const std::string& port,
                                      std::shared_ptr<bridge::CaptureRing> ring);
  void StopCapture(const std::string& network, bridge::PortId port,
                   const bridge::CaptureRing* ring);

 private:
  // `port` of `network` when it is an open vhost-user port, else null.
  const bridge::VhostUserPort* FindVhostUserPort(const std::string& network,
                                                 const std::string& port) const;

  struct PortState {
    bridge::PortId id = bridge::kNoPort;
    std::string backend;   // PortBackend::Name()
    std::string identity;  // PortBackend::Identity() when opened
    bridge::PortVlanConfig vlan;
    std::optional<bridge::TreePortSettings> tree;  // in the tree with these
    bool link_up = false;                          // as last told to the tree
    // Opened by a backend with no kernel link (vhost-user): up for the tree.
    bool no_link = false;
    // The port object, owned by the switch until RemovePort (its own
    // state, such as a vhost-user port's, is read through it).
    const bridge::Port* port = nullptr;
    const PortBackend* opener = nullptr;  // the backend that opened it
    bool adopted = false;                 // from a handover (Adopt), not opened
  };
  struct Network {
    std::unique_ptr<bridge::Switch> sw;
    bridge::FdbSettings fdb;
    uint64_t ageing_time_ns = 0;
    std::map<std::string, PortState> ports;              // by name
    std::map<StaticKey, std::string> installed_statics;  // -> port
    std::map<StaticKey, std::string> runtime_statics;    // fdb.add
    std::shared_ptr<bridge::BpduInbox> inbox;
    std::unique_ptr<bridge::SpanningTree> tree;  // STP enabled
    topology::StpConfig tree_config;             // what `tree` runs
  };

  Status ApplyOne(const SwitchOperation& op, const KernelState& state, SwitchApplyResult& result);
  Status StartSwitch(const SwitchOperation& op);
  Status OpenPort(const SwitchOperation& op, const KernelState& state, Network& network);
  Status StartTree(const SwitchOperation& op, const KernelState& state, Network& network);
  Status StopTree(Network& network, bool restart);
  Status JoinTree(Network& network, const std::string& name,
                  const bridge::TreePortSettings& settings, bool up);
  void RemovePort(Network& network, const std::string& name);
  // Port mirrors (netd/src/userspace_mirrors.cc): the switch's, by port
  // name; and `mirrors` installed over the ports the switch holds.
  static std::vector<topology::MirrorConfig> ObservedMirrors(const Network& network);
  static Status SetMirrors(Network& network, const std::vector<topology::MirrorConfig>& mirrors);
  // The handed-over port for `port` of `network` (Adopt), taken out of
  // adopting_; null when there is none or it does not match.
  std::optional<HandedOverPort> TakeHandedOver(const std::string& network, const std::string& port,
                                               std::string_view backend,
                                               const std::string& identity);
  // Restores the handed-over tree of `network`; false when there is none or
  // the engine refused it (logged): the caller starts a fresh tree.
  bool RestoreTree(const SwitchOperation& op, const KernelState& state, Network& network,
                   bridge::SpanningTreeConfig config);
  // After a Sync: learned entries of adopted ports back, the rest dropped.
  void FinishAdoption();
  // The tree's status of `network` (read once, counted in
  // tree_status_reads_) and its ports by name; empty without a tree.
  struct TreeView;
  TreeView ReadTree(const Network& network) const;
  // PortExtra of `port` (named `name`), in the switch of `network`, with
  // its tree's status.
  static nlohmann::json SwitchSide(const Network& network, const PortState& port,
                                   const TreeView& tree, const std::string& name);

  // The run-time static entries of each network on disk: read when its
  // switch starts, written whenever they change (runtime_statics.h).
  RuntimeStaticsStore statics_;
  std::unique_ptr<PortBackends> backends_;
  std::string machine_id_;
  std::map<std::string, Network> networks_;
  std::map<std::string, HandedOverNetwork> adopting_;  // Adopt(), until the next Sync
  mutable uint64_t tree_status_reads_ = 0;             // TreeStatusReads()
};

}  // namespace vfabric::netd
