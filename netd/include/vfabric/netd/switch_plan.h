// The userspace switches' plan, as data: what the switches hold (observed,
// a value) + the desired topology -> ordered switch operations. Pure: no
// switch, file or kernel is touched, so it is unit-tested without root, and
// `plan`, `apply` and `netd --dry-run` print the very operations that
// UserspaceNetworks::Apply then runs (see netd/DESIGN.md).
//
// Order (as the kernel planner's: new things first, so what a step needs
// exists):
//   start_switch | stop_switch, set_fdb_limits, set_fdb_ageing,
//   remove_switch_port, reopen_switch_port | detach_switch_port |
//   add_switch_port,
//   set_switch_port_vlan, start_tree | restart_tree | stop_tree,
//   set_tree_port, set_tree_port_link, forget_runtime_fdb,
//   delete_switch_fdb, add_switch_fdb, set_switch_mirrors (last: the
//   mirrors name ports, which are all in by then).
// set_tree_port_link (a carrier change told to the tree) follows link
// events: Apply runs it, but it is no change for people (IsChange()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vfabric/bridge/spanning_tree.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/netd/planner.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

using StaticKey = std::pair<uint16_t, MacAddress>;  // (VLAN, MAC)

// One port as a running switch holds it.
struct ObservedPort {
  std::string backend;   // PortBackend::Name() it was opened with
  std::string identity;  // PortBackend::Identity() when it was opened
  bridge::PortVlanConfig vlan;
  bool failed = false;  // its fd failed (the link went away)
  std::string ended;    // PortBackend::Ended(): why it must be opened again
  std::optional<bridge::TreePortSettings> tree;  // in the tree with these
  bool link_up = false;                          // as last told to the tree
};

// One userspace network's switch as it runs (or, not running, what is kept
// of it: the run-time static entries saved for its next start).
struct ObservedSwitch {
  bool running = false;
  size_t max_entries = 0;  // the FDB limits it runs with
  size_t max_per_port = 0;
  uint64_t ageing_time_ns = 0;
  std::map<std::string, ObservedPort> ports;           // by name
  std::optional<topology::StpConfig> tree;             // the tree it runs
  std::map<StaticKey, std::string> installed_statics;  // -> port
  std::map<StaticKey, std::string> runtime_statics;    // fdb.add, -> port
  std::vector<topology::MirrorConfig> mirrors;         // the port mirrors it runs
};

using ObservedSwitches = std::map<std::string, ObservedSwitch>;  // by network

struct SwitchOperation {
  enum class Kind {
    kStartSwitch,
    kStopSwitch,
    kSetFdbLimits,
    kSetFdbAgeing,
    kRemovePort,
    kReopenPort,
    kDetachPort,
    kAddPort,
    kSetPortVlan,
    kStartTree,
    kRestartTree,
    kStopTree,
    kSetTreePort,
    kSetTreePortLink,
    kForgetRuntimeStatic,
    kDeleteStatic,
    kAddStatic,
    kSetMirrors,
  };
  struct TreePort {
    std::string name;
    bridge::TreePortSettings settings;
  };

  Kind kind = Kind::kStartSwitch;
  std::string network;
  std::string object;  // the port, or the network itself
  // Parameters; which ones matter depends on kind.
  bridge::FdbSettings fdb;                 // kStartSwitch, kSetFdbLimits (and old_fdb)
  bridge::FdbSettings old_fdb;             // kSetFdbLimits, kSetFdbAgeing
  topology::PortConfig port;               // k*Port: the port as configured
  bool guest = false;                      // k*Port: a VM NIC uses it
  std::string backend;                     // kAddPort, kReopenPort
  std::string reason;                      // kReopenPort, kDetachPort
  bridge::PortVlanConfig vlan;             // kAddPort, kReopenPort, kSetPortVlan
  bridge::PortVlanConfig old_vlan;         // kSetPortVlan
  topology::StpConfig stp;                 // k*Tree
  std::vector<TreePort> tree_ports;        // kStartTree, kRestartTree: who joins
  bridge::TreePortSettings tree_settings;  // kSetTreePort, kAddPort, kReopenPort
  bool join_tree = false;                  // kAddPort, kReopenPort: a tree runs
  bool link_up = false;                    // kSetTreePortLink
  StaticKey key;                           // k*Static
  std::string static_port;                 // k*Static: the entry's port
  std::string why;                         // kForgetRuntimeStatic
  // kSetMirrors: the whole new list (the topology's mirrors over the ports
  // the switch will hold) and the one it replaces.
  std::vector<topology::MirrorConfig> mirrors, old_mirrors;

  std::string_view KindName() const;
  // One line for people, as the kernel planner's Operation::Describe().
  std::string Describe() const;
  // False for what follows events rather than configuration (carrier).
  bool IsChange() const { return kind != Kind::kSetTreePortLink; }
};

// What the kernel tells the switch plan: the links (their identity, carrier)
// and which of them the kernel plan is about to make anew. Without it
// (PlanSwitches' `kernel` null) every port is taken to have its link as it
// had, and carrier is left alone: what `Pending` predicts.
struct KernelView {
  const KernelState* state = nullptr;
  std::set<std::string> recreated;  // links the kernel plan creates
};

// Computes the switch operations that make `observed` match `desired`'s
// userspace networks. `backends` says how each port is opened (its Name and
// Identity only: nothing is opened). `only` (optional): the networks to
// plan, as the kernel Plan's `only` (a switch of another network is neither
// changed nor stopped).
std::vector<SwitchOperation> PlanSwitches(const topology::Topology& desired,
                                          const ObservedSwitches& observed,
                                          const PortBackends& backends,
                                          const KernelView* kernel = nullptr,
                                          const std::set<std::string>* only = nullptr);

// The links the kernel operations create (so a switch port on one of them
// is reopened).
std::set<std::string> CreatedLinks(const std::vector<Operation>& kernel_operations);

// Every port a switch holds (for the kernel planner: an "existing" link a
// switch holds is not brought up again).
std::set<std::string> HeldPorts(const ObservedSwitches& observed);

// Helpers shared with the views.
bridge::PortVlanConfig SwitchVlanConfig(const topology::NetworkConfig& network,
                                        const topology::PortVlanConfig& port);
uint16_t StaticFdbVlan(const topology::NetworkConfig& network, const topology::PortConfig& port,
                       uint16_t vlan);
bridge::FdbSettings SwitchFdbConfig(const topology::NetworkConfig& network);
// The ports a guest's QEMU holds: every VM NIC's, and every port with
// "guest": true (a guest netd does not run).
std::set<std::string> GuestPortNames(const topology::Topology& desired);
bridge::TreePortSettings TreeSettings(const topology::PortConfig& port, bool guest);
std::map<StaticKey, std::string> TopologyStatics(const topology::NetworkConfig& network);
// A run-time static entry whose port no longer carries its VLAN.
bool RuntimeStaticStale(const topology::NetworkConfig& network, uint16_t vlan,
                        const std::string& port);
const topology::PortConfig* FindPortConfig(const topology::NetworkConfig& network,
                                           const std::string& name);
std::string VlanSummary(const bridge::PortVlanConfig& port);

}  // namespace vfabric::netd
