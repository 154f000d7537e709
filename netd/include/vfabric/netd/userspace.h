// netd's userspace networks: one bridge::Switch per network with
// "datapath": "userspace", kept matching the desired topology.
//
// Sync() runs after the kernel is reconciled (the planner has made the
// network's taps and veths, up, on no bridge). For each userspace network it
// creates the switch (FDB limits, ageing time, a hash seed from getrandom())
// and starts its datapath thread; opens a port per topology port -- a tap
// the network lists: netd opens the tap (OpenTap) for a tap port; a VM NIC's
// tap (QEMU holds it), a veth or an existing link: a packet socket on the
// link's ifindex -- with the port's VLAN config; reopens ports whose link
// was recreated (its ifindex changed) or failed; removes ports that left the
// configuration; installs the static FDB entries (the topology's and those
// added at run time with fdb.add). Networks that left are stopped.
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
#include "vfabric/netd/planner.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vlan/port.h"

namespace vfabric::netd {

// The switch's VLAN config for a topology port: "none" is an access port on
// the network's default PVID; access and trunk map one to one.
vlan::PortVlanConfig SwitchVlanConfig(const topology::NetworkConfig& network,
                                      const topology::PortVlanConfig& port);
// The VLAN a static FDB entry with `vlan` (0: none) on `port` lives in: the
// given VLAN, else the port's untagged VLAN (access PVID, trunk native, or
// the network's default PVID).
uint16_t StaticFdbVlan(const topology::NetworkConfig& network, const topology::PortConfig& port,
                       uint16_t vlan);
// The switch's FDB config for a network (hash_seed left 0).
fdb::Config SwitchFdbConfig(const topology::NetworkConfig& network);
// Every port name a VM NIC of `desired` uses (a tap QEMU holds).
std::set<std::string> GuestPortNames(const topology::Topology& desired);
// The spanning tree bridge address of a userspace network: a locally
// administered unicast MAC hashed from the host's machine id and the
// network's name, so it is stable across restarts and differs between
// hosts and networks.
MacAddress TreeBridgeAddress(const std::string& machine_id, const std::string& network);
// A port's tree settings from the topology (`guest`: a VM NIC's port, which
// is an admin edge port unless the topology says otherwise).
bridge::TreePortSettings TreeSettings(const topology::PortConfig& port, bool guest);

// A change Sync() would make to a running switch, described for people, as
// plan/apply list the planner's kernel operations.
struct SwitchChange {
  std::string kind;     // "start_switch", "add_switch_port", ... (see Pending)
  std::string network;  // the userspace network
  std::string object;   // the port, or the network itself
  std::string description;

  bool operator==(const SwitchChange&) const = default;
};

class UserspaceNetworks {
 public:
  // `state_dir`: where static FDB entries added at run time (fdb.add) are
  // kept, one file per network (NETWORK.fdb.json), so that they survive a
  // restart of netd as the kernel keeps those of a Linux bridge. Empty: not
  // kept.
  explicit UserspaceNetworks(std::string state_dir = "");
  ~UserspaceNetworks();
  UserspaceNetworks(const UserspaceNetworks&) = delete;
  UserspaceNetworks& operator=(const UserspaceNetworks&) = delete;

  // Makes the switches match `desired` (see the file comment); `state` is
  // the kernel as read after reconciling. One message per problem.
  std::vector<std::string> Sync(const topology::Topology& desired, const KernelState& state);

  // What Sync(desired, ...) would change, without changing anything, in the
  // order Sync makes the changes: start_switch / stop_switch,
  // set_fdb_limits, set_fdb_ageing, remove_switch_port, reopen_switch_port,
  // add_switch_port, set_switch_port_vlan, start_tree / restart_tree /
  // stop_tree, set_tree_port, delete_switch_fdb, add_switch_fdb. Ports are
  // taken to have links (the planner makes them); carrier changes, which
  // follow link events, are not changes. Empty when the switches match.
  std::vector<SwitchChange> Pending(const topology::Topology& desired) const;

  bool Has(const std::string& network) const { return networks_.count(network) != 0; }
  // The network's spanning tree runs (STP enabled and started).
  bool TreeRunning(const std::string& network) const {
    auto it = networks_.find(network);
    return it != networks_.end() && it->second.tree != nullptr;
  }
  // Stops every switch.
  void StopAll();

  // ---- control verbs (the network must be Has()) ----
  // What the switch adds to a Port object: "switch_port" (its id, or null
  // when not in the switch), "stp_state" and "counters".
  nlohmann::json PortExtra(const std::string& network, const std::string& port) const;
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

 private:
  struct PortState {
    bridge::PortId id = fdb::kNoPort;
    int ifindex = 0;
    bool tap = false;  // opened by netd as a tap (else a packet socket)
    vlan::PortVlanConfig vlan;
    bool link_up = false;                          // as last told to the tree
    std::optional<bridge::TreePortSettings> tree;  // in the tree with these
  };
  using StaticKey = std::pair<uint16_t, MacAddress>;  // vlan, mac
  struct Network {
    std::unique_ptr<bridge::Switch> sw;
    fdb::Config fdb;
    uint64_t ageing_time_ns = 0;
    std::map<std::string, PortState> ports;              // by name
    std::map<StaticKey, std::string> installed_statics;  // -> port
    std::map<StaticKey, std::string> runtime_statics;    // fdb.add
    std::shared_ptr<bridge::BpduInbox> inbox;
    std::unique_ptr<bridge::SpanningTree> tree;  // STP enabled
    topology::StpConfig tree_config;             // what `tree` runs
  };

  void PendingForNetwork(const topology::NetworkConfig& config,
                         const std::set<std::string>& guest_ports,
                         std::vector<SwitchChange>& out) const;
  void SyncNetwork(const topology::NetworkConfig& config, const topology::Topology& desired,
                   const KernelState& state, Network& network, std::vector<std::string>& errors);
  void RemovePort(Network& network, const std::string& name);
  // The run-time static entries of a network: read when its switch starts,
  // written whenever they change. A file that cannot be read or written is
  // logged; the entries in memory stay authoritative.
  std::string StaticsPath(const std::string& network) const;
  void LoadRuntimeStatics(const topology::NetworkConfig& config, Network& network);
  void SaveRuntimeStatics(const std::string& name, const Network& network) const;
  // Starts, restarts or stops the network's tree to match `config.stp`, and
  // joins ports, tells it carrier changes and port setting changes.
  void SyncTree(const topology::NetworkConfig& config, const std::set<std::string>& guest_ports,
                const KernelState& state, Network& network, std::vector<std::string>& errors);

  std::string state_dir_;
  std::map<std::string, Network> networks_;
};

}  // namespace vfabric::netd
