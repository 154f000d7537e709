// The kernel plan: desired topology + the kernel as read -> ordered
// operations, each with its undo (planner.h has the order and the rules of
// ownership). What a network wants of the kernel is in kernel_settings.cc,
// the operations' builders and descriptions in kernel_operation.cc, the
// kernel as read in kernel_state.cc, the transaction in
// kernel_transaction.cc.
#include "vfabric/netd/planner.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "bridge_link_plan.h"
#include "overlay_plan.h"
#include "planner_internal.h"

namespace vfabric::netd {

using namespace planner_internal;

namespace {

using topology::NetworkConfig;
using topology::PortConfig;
using topology::PortKind;

const PortConfig* FindPort(const NetworkConfig& network, const std::string& name) {
  for (const PortConfig& port : network.ports)
    if (port.name == name) return &port;
  return nullptr;
}

std::string ForeignLinkError(std::string_view what, const std::string& name,
                             const std::string& network, const LinkInfo& link) {
  std::ostringstream out;
  out << what << " " << name << " of network " << network << ": a link named " << name
      << " exists and was not made by vfabric (kind " << (link.kind.empty() ? "none" : link.kind)
      << (link.alias.empty() ? "" : ", alias \"" + link.alias + "\"")
      << "); refusing to touch it: rename the " << what << " or remove that link";
  return out.str();
}

class Planner {
 public:
  Planner(const topology::Topology& desired, const KernelState& actual,
          const std::set<std::string>& attached, const std::set<std::string>& released)
      : desired_(desired), actual_(actual), attached_(attached), released_(released) {}

  bool Owned(const LinkInfo& link) const { return !NetworkFromAlias(link.alias).empty(); }

  Status Preflight(const NetworkConfig& network) {
    const bool kernel = network.datapath == topology::Datapath::kKernel;
    if (kernel && network.vlan.filtering && !actual_.features.bridge_vlan_filtering) {
      std::string reason = actual_.features.bridge_vlan_filtering_reason;
      return Status::Error("network " + network.name +
                           ": bridge VLAN filtering is not supported by this kernel" +
                           (reason.empty() ? "" : " (" + reason + ")") +
                           "; VLANs on this host need \"datapath\": \"userspace\"");
    }
    if (const LinkInfo* link = kernel ? actual_.FindLink(network.bridge) : nullptr) {
      if (!Owned(*link))
        return Status::Error(ForeignLinkError("bridge", network.bridge, network.name, *link));
      if (link->kind != "bridge")
        return Status::Error("bridge " + network.bridge + " of network " + network.name +
                             ": the link of that name is a " + link->kind + ", not a bridge");
    }
    for (const PortConfig& port : network.ports) {
      const LinkInfo* link = actual_.FindLink(port.name);
      // An "existing" port without its link waits for it (PlanPort skips
      // it): that port's problem, not the host's. A vhost-user port has no
      // link at all: a link of its name is none of its business.
      if (port.kind == PortKind::kExisting || port.kind == PortKind::kVhostUser ||
          port.kind == PortKind::kVxlan)
        continue;
      if (link != nullptr && !Owned(*link))
        return Status::Error(ForeignLinkError("port", port.name, network.name, *link));
      if (port.kind == PortKind::kVeth) {
        const LinkInfo* peer = actual_.FindLink(port.peer);
        if (peer != nullptr && !Owned(*peer))
          return Status::Error(ForeignLinkError("veth peer", port.peer, network.name, *peer));
      }
    }
    VF_RETURN_IF_ERROR(OverlayPreflight(network, desired_, actual_));
    for (const auto& entry : network.fdb.static_entries) {
      if (kernel && entry.vlan != 0 && !network.vlan.filtering)
        return Status::Error("network " + network.name + ": static FDB entry " +
                             entry.mac.ToString() + " names VLAN " + std::to_string(entry.vlan) +
                             " but the bridge does not filter VLANs");
    }
    return Status::Ok();
  }

  std::string MasterName(const LinkInfo& link) const {
    if (link.master_ifindex == 0) return "";
    const LinkInfo* master = actual_.FindLink(link.master_ifindex);
    return master ? master->name : "";
  }

  // A userspace network has no kernel bridge: netd makes its taps and veths
  // and brings them up, and the userspace switch forwards between them.
  void PlanUserspaceNetwork(const NetworkConfig& network) {
    for (const PortConfig& port : network.ports) {
      // No kernel link: the switch opens its socket (the port backend).
      if (port.kind == PortKind::kVhostUser || port.kind == PortKind::kVxlan) continue;
      PlanPort(network, port, nullptr, false);
    }
  }

  void PlanNetwork(const NetworkConfig& network) {
    if (network.datapath == topology::Datapath::kUserspace) return PlanUserspaceNetwork(network);
    const std::string alias = OwnerAlias(network.name);
    const BridgeSettings settings = DesiredBridgeSettings(network);
    const LinkInfo* bridge = actual_.FindLink(network.bridge);
    wanted_.insert(network.bridge);
    if (bridge == nullptr) {
      Operation op = Op(Operation::Kind::kCreateBridge, network.name, network.bridge);
      op.bridge = settings;
      op.alias = alias;
      op.undo.push_back(DeleteOp(network.name, network.bridge));
      bridges_.push_back(op);
    } else {
      if (bridge->alias != alias) PlanAlias(network.name, *bridge, alias, bridges_);
      const BridgeSettings have =
          bridge->bridge ? ConfiguredBridgeSettings(*bridge->bridge, settings) : BridgeSettings{};
      if (!SameBridgeSettings(settings, have, actual_.features.bridge_vlan_filtering)) {
        Operation op = Op(Operation::Kind::kSetBridgeSettings, network.name, network.bridge);
        op.bridge = settings;
        Operation undo = op;
        undo.bridge = have;
        op.undo.push_back(undo);
        bridges_.push_back(op);
      }
    }

    std::set<std::string> port_names;
    for (const PortConfig& port : network.ports) {
      port_names.insert(port.name);
      PlanPort(network, port, bridge, true);
    }
    PlanStaticFdb(network, bridge);
    PlanBridgeLink(network, bridge, actual_, &bridges_, &fdb_removals_);
    if (network.overlay) {
      wanted_.insert(topology::OverlayDeviceName(network.overlay->vni));
      PlanOverlay(network, bridge, actual_,
                  {&port_links_, &port_config_, &fdb_adds_, &fdb_removals_});
    }

    if (bridge == nullptr || !bridge->admin_up)
      bridges_up_.push_back(SetUpOp(network.name, network.bridge, true));

    // Links on this bridge that the network no longer lists: vfabric's own
    // are deleted below when no network wants them; "existing" ones it
    // listed before are released; the rest are foreign and stay (see Plan).
    if (bridge != nullptr) {
      for (const LinkInfo& link : actual_.links) {
        if (link.master_ifindex != bridge->ifindex || port_names.count(link.name)) continue;
        if (Owned(link) || !released_.count(link.name)) continue;
        link_removals_.push_back(SetMasterOp(network.name, link.name, "", network.bridge));
      }
    }
  }

  void PlanAlias(const std::string& network, const LinkInfo& link, const std::string& alias,
                 std::vector<Operation>& phase) {
    Operation op = Op(Operation::Kind::kSetAlias, network, link.name);
    op.alias = alias;
    Operation undo = op;
    undo.alias = link.alias;
    op.undo.push_back(undo);
    phase.push_back(op);
  }

  void PlanPort(const NetworkConfig& network, const PortConfig& port, const LinkInfo* bridge,
                bool on_kernel_bridge) {
    const std::string alias = OwnerAlias(network.name);
    const LinkInfo* link = actual_.FindLink(port.name);
    wanted_.insert(port.name);
    bool created = false;
    // Not there (yet): nothing to do until the link monitor sees it appear
    // (or its veth peer's namespace is made). A pair left from before is
    // kept as it is, not deleted as unwanted.
    if (port.kind == PortKind::kVeth) wanted_.insert(port.peer);
    if (!PortLinkWaiting(port, actual_).empty()) return;

    if (port.kind == PortKind::kTap) {
      const TapSettings want = DesiredTapSettings(port);
      // vnet_hdr is not compared: whoever opens the tap (the switch, QEMU)
      // sets it for that open, and a tap in use must never be recreated.
      const bool matches =
          link != nullptr && link->kind == "tun" && link->tap &&
          link->tap->settings.owner == want.owner && link->tap->settings.group == want.group &&
          link->tap->settings.multi_queue == want.multi_queue && link->tap->persistent;
      if (link != nullptr && !matches) {
        // Flags such as vnet_hdr and multi_queue are fixed when a tap is made:
        // a different wish means a new tap.
        Operation remove = DeleteOp(network.name, port.name);
        remove.undo = RecreateOps(*link, actual_);
        port_links_.push_back(remove);
        link = nullptr;
      }
      if (link == nullptr) {
        Operation create = Op(Operation::Kind::kCreateTap, network.name, port.name);
        create.tap = want;
        create.alias = alias;
        create.undo.push_back(DeleteOp(network.name, port.name));
        port_links_.push_back(create);
        created = true;
      }
    } else if (port.kind == PortKind::kVeth) {
      wanted_.insert(port.peer);
      const LinkInfo* peer = actual_.FindLink(port.peer);
      const bool pair_ok =
          link != nullptr && link->kind == "veth" &&
          (peer == nullptr ? !port.peer_netns.empty() : link->link_ifindex == peer->ifindex);
      if (!pair_ok) {
        for (const LinkInfo* stale : {link, peer}) {
          if (stale == nullptr) continue;
          Operation remove = DeleteOp(network.name, stale->name);
          remove.undo = RecreateOps(*stale, actual_);
          port_links_.push_back(remove);
          if (stale->kind == "veth") break;  // deleting one end took the other
        }
        link = nullptr;
        Operation create = Op(Operation::Kind::kCreateVeth, network.name, port.name);
        create.peer = port.peer;
        create.alias = alias;
        create.undo.push_back(DeleteOp(network.name, port.name));
        port_links_.push_back(create);
        created = true;
        if (!port.peer_netns.empty()) {
          Operation move = Op(Operation::Kind::kMoveToNetns, network.name, port.peer);
          move.netns = port.peer_netns;
          port_links_.push_back(move);  // undone by deleting the pair
        } else {
          port_links_.push_back(SetUpOp(network.name, port.peer, true));
        }
      } else if (peer != nullptr && !port.peer_netns.empty()) {
        // The pair was made but its peer never moved (netd died in between,
        // or someone moved it back): finish the move.
        Operation move = Op(Operation::Kind::kMoveToNetns, network.name, port.peer);
        move.netns = port.peer_netns;
        port_links_.push_back(move);
      } else if (peer != nullptr && port.peer_netns.empty() && !peer->admin_up) {
        port_config_.push_back(SetUpOp(network.name, port.peer, true));
      }
    }

    if (!created && link != nullptr && port.kind != PortKind::kExisting && link->alias != alias)
      PlanAlias(network.name, *link, alias, port_config_);

    const std::string old_master = created || link == nullptr ? "" : MasterName(*link);
    if (!on_kernel_bridge) {
      // The userspace switch reads the port itself: it must not sit on a bridge.
      if (!old_master.empty())
        port_config_.push_back(SetMasterOp(network.name, port.name, "", old_master));
      const bool bring_up = port.kind == PortKind::kExisting
                                ? link != nullptr && !link->admin_up && !attached_.count(port.name)
                                : created || link == nullptr || !link->admin_up;
      if (bring_up) port_config_.push_back(SetUpOp(network.name, port.name, true));
      return;
    }
    const bool enslaved =
        !created && bridge != nullptr && link != nullptr && link->master_ifindex == bridge->ifindex;
    if (!enslaved)
      port_config_.push_back(SetMasterOp(network.name, port.name, network.bridge, old_master));

    const BridgePortSettings want = DesiredPortSettings(port);
    if (!enslaved || !link->brport) {
      if (AnySet(want)) {
        Operation op = Op(Operation::Kind::kSetBridgePortSettings, network.name, port.name);
        op.bridge_port = want;
        port_config_.push_back(op);  // undone by leaving the bridge
      }
    } else {
      BridgePortSettings diff = PortSettingsDiff(want, link->brport->settings);
      if (AnySet(diff)) {
        Operation op = Op(Operation::Kind::kSetBridgePortSettings, network.name, port.name);
        op.bridge_port = diff;
        Operation undo = op;
        undo.bridge_port = PortSettingsRestore(diff, link->brport->settings);
        op.undo.push_back(undo);
        port_config_.push_back(op);
      }
    }

    if (network.vlan.filtering) PlanPortVlans(network, port, enslaved ? link : nullptr);

    // An "existing" link is brought up when netd attaches it, and after that
    // its admin state is the operator's (an uplink set down stays down).
    const bool bring_up = port.kind == PortKind::kExisting
                              ? !enslaved && link != nullptr && !link->admin_up
                              : created || link == nullptr || !link->admin_up;
    if (bring_up) port_config_.push_back(SetUpOp(network.name, port.name, true));
  }

  void PlanPortVlans(const NetworkConfig& network, const PortConfig& port, const LinkInfo* link) {
    const auto want = DesiredPortVlans(network, port);
    std::map<uint16_t, VlanMembership> have;
    if (link != nullptr) {
      for (const PortVlanEntry& entry : actual_.port_vlans)
        if (entry.port_ifindex == link->ifindex) have[entry.vid] = {entry.pvid, entry.untagged};
    }
    for (const auto& [vid, membership] : want) {
      auto it = have.find(vid);
      if (it != have.end() && it->second == membership) continue;
      Operation op = Op(Operation::Kind::kAddPortVlan, network.name, port.name);
      op.vlan = vid;
      op.pvid = membership.pvid;
      op.untagged = membership.untagged;
      if (it == have.end()) {
        Operation undo = Op(Operation::Kind::kDeletePortVlan, network.name, port.name);
        undo.vlan = vid;
        op.undo.push_back(undo);
      } else {
        Operation undo = op;
        undo.pvid = it->second.pvid;
        undo.untagged = it->second.untagged;
        op.undo.push_back(undo);
      }
      port_config_.push_back(op);
    }
    for (const auto& [vid, membership] : have) {
      if (want.count(vid)) continue;
      Operation op = Op(Operation::Kind::kDeletePortVlan, network.name, port.name);
      op.vlan = vid;
      Operation undo = Op(Operation::Kind::kAddPortVlan, network.name, port.name);
      undo.vlan = vid;
      undo.pvid = membership.pvid;
      undo.untagged = membership.untagged;
      op.undo.push_back(undo);
      fdb_removals_.push_back(op);
    }
  }

  void PlanStaticFdb(const NetworkConfig& network, const LinkInfo* bridge) {
    struct Key {
      std::string port;
      MacAddress mac;
      uint16_t vlan;
      auto operator<=>(const Key&) const = default;
    };
    std::set<Key> have;
    if (bridge != nullptr) {
      for (const FdbEntry& entry : actual_.fdb) {
        if (!entry.is_static || entry.is_local) continue;
        const LinkInfo* port = actual_.FindLink(entry.port_ifindex);
        if (port == nullptr || port->master_ifindex != bridge->ifindex) continue;
        if (ControlPlaneFdbEntry(network, entry, *port)) continue;  // FRR's, not drift
        have.insert({port->name, entry.mac, entry.vlan});
      }
    }
    std::set<Key> want;
    for (const auto& entry : network.fdb.static_entries) {
      Key key{entry.port, entry.mac, entry.vlan};
      want.insert(key);
      const PortConfig* port = FindPort(network, entry.port);
      if (port != nullptr && !PortLinkWaiting(*port, actual_).empty()) continue;
      if (!have.count(key))
        fdb_adds_.push_back(StaticFdbOp(true, network.name, key.port, key.mac, key.vlan));
    }
    for (const Key& key : have) {
      if (!want.count(key))
        fdb_removals_.push_back(StaticFdbOp(false, network.name, key.port, key.mac, key.vlan));
    }
  }

  // Adds (or deletes) a static FDB entry, undone by the opposite.
  static Operation StaticFdbOp(bool add, const std::string& network, const std::string& port,
                               const MacAddress& mac, uint16_t vlan) {
    Operation op =
        Op(add ? Operation::Kind::kAddStaticFdb : Operation::Kind::kDeleteStaticFdb, network, port);
    op.mac = mac;
    op.vlan = vlan;
    Operation undo = op;
    undo.kind = add ? Operation::Kind::kDeleteStaticFdb : Operation::Kind::kAddStaticFdb;
    op.undo.push_back(undo);
    return op;
  }

  // Called after every network is planned: marked links no network wants.
  // With `only` (a plan of some networks), only those networks' links, and
  // only when no network at all lists them (wanted_ holds the planned
  // networks' names alone).
  void PlanRemovals(const std::set<std::string>* only) {
    std::set<int> gone;  // ifindexes already taken by an earlier deletion
    auto schedule = [&](const LinkInfo& link, std::vector<Operation>& phase) {
      if (gone.count(link.ifindex)) return;
      Operation op = DeleteOp(NetworkFromAlias(link.alias), link.name);
      op.undo = RecreateOps(link, actual_);
      phase.push_back(op);
      gone.insert(link.ifindex);
      if (link.kind == "veth" && link.link_ifindex != 0) gone.insert(link.link_ifindex);
    };
    auto unwanted = [&](const LinkInfo& link) {
      if (!Owned(link) || wanted_.count(link.name)) return false;
      if (only == nullptr) return true;
      return only->count(NetworkFromAlias(link.alias)) != 0 && !WantedByAny(link.name);
    };
    for (const LinkInfo& link : actual_.links) {
      if (link.kind == "bridge" || !unwanted(link)) continue;
      schedule(link, link_removals_);
    }
    for (const LinkInfo& link : actual_.links) {
      if (link.kind != "bridge" || !unwanted(link)) continue;
      schedule(link, bridge_removals_);
    }
  }

  // Whether any network of the desired state lists `name` (its bridge, a
  // port, a veth peer, its vxlan device). A scan: asked only of the few
  // links a plan of some networks would delete.
  bool WantedByAny(const std::string& name) const {
    for (const NetworkConfig& network : desired_.networks) {
      const bool kernel = network.datapath == topology::Datapath::kKernel;
      if (kernel && network.bridge == name) return true;
      if (kernel && network.overlay && topology::OverlayDeviceName(network.overlay->vni) == name)
        return true;
      for (const PortConfig& port : network.ports) {
        if (port.kind == PortKind::kVhostUser) continue;  // no link of its own
        if (port.name == name || (port.kind == PortKind::kVeth && port.peer == name)) return true;
      }
    }
    return false;
  }

 private:
  const topology::Topology& desired_;
  const KernelState& actual_;
  const std::set<std::string>& attached_;
  const std::set<std::string>& released_;

 public:
  std::set<std::string> wanted_;
  std::vector<Operation> bridges_, port_links_, port_config_, fdb_adds_, bridges_up_, fdb_removals_,
      link_removals_, bridge_removals_;
};

}  // namespace

std::string PortLinkWaiting(const topology::PortConfig& port, const KernelState& actual) {
  if (port.kind == PortKind::kVeth && !port.peer_netns.empty()) {
    auto missing = actual.missing_netns.find(port.peer_netns);
    if (missing == actual.missing_netns.end()) return "";
    return "network namespace \"" + port.peer_netns + "\" for veth peer " + port.peer +
           " does not exist (no " + missing->second +
           "); the veth is made when it does (ip netns add " + port.peer_netns + ")";
  }
  if (port.kind != PortKind::kExisting || actual.FindLink(port.name) != nullptr) return "";
  return "no link named " + port.name + " exists yet; it is attached when it appears";
}

topology::Topology WithGuestPorts(const topology::Topology& topology,
                                  const std::string& vhost_user_dir) {
  topology::Topology expanded = topology;
  for (const topology::VmConfig& vm : topology.vms) {
    for (const topology::NicConfig& nic : vm.nics) {
      for (NetworkConfig& network : expanded.networks) {
        if (network.name != nic.network) continue;
        const bool listed = std::any_of(network.ports.begin(), network.ports.end(),
                                        [&](const PortConfig& p) { return p.name == nic.port; });
        if (listed) break;
        PortConfig port;
        port.name = nic.port;
        port.kind = PortKind::kTap;
        port.where = nic.where;
        if (nic.backend == topology::NicBackend::kVhostUser) {
          // netd listens and QEMU connects (reconnect=1): QEMU started
          // before the switch opens the port waits for it, and finds a
          // restarted netd again by itself.
          port.kind = PortKind::kVhostUser;
          port.socket = vhost_user_dir + "/" + nic.port + ".sock";
          port.vhost_user_mode = topology::VhostUserMode::kServer;
        }
        network.ports.push_back(std::move(port));
        break;
      }
    }
  }
  return expanded;
}

std::string GuestNicSocket(const topology::Topology& topology, const topology::NicConfig& nic) {
  if (nic.backend != topology::NicBackend::kVhostUser) return "";
  for (const NetworkConfig& network : topology.networks) {
    if (network.name != nic.network) continue;
    for (const PortConfig& port : network.ports)
      if (port.name == nic.port && port.kind == PortKind::kVhostUser) return port.socket;
  }
  return "";
}

std::vector<const LinkInfo*> ForeignBridgePorts(const topology::NetworkConfig& network,
                                                const KernelState& actual) {
  std::vector<const LinkInfo*> foreign;
  if (network.datapath == topology::Datapath::kUserspace) return foreign;
  const LinkInfo* bridge = actual.FindLink(network.bridge);
  if (bridge == nullptr) return foreign;
  for (const LinkInfo& link : actual.links) {
    if (link.master_ifindex != bridge->ifindex || !NetworkFromAlias(link.alias).empty()) continue;
    const bool listed = std::any_of(network.ports.begin(), network.ports.end(),
                                    [&](const PortConfig& p) { return p.name == link.name; });
    if (!listed) foreign.push_back(&link);
  }
  return foreign;
}

Result<std::vector<Operation>> Plan(const topology::Topology& desired, const KernelState& actual,
                                    const std::set<std::string>& attached,
                                    const std::set<std::string>& released,
                                    const std::set<std::string>* only) {
  Planner planner(desired, actual, attached, released);
  auto planned = [&](const NetworkConfig& network) {
    return only == nullptr || only->count(network.name) != 0;
  };
  for (const NetworkConfig& network : desired.networks)
    if (planned(network)) VF_RETURN_IF_ERROR(planner.Preflight(network));
  for (const NetworkConfig& network : desired.networks)
    if (planned(network)) planner.PlanNetwork(network);
  planner.PlanRemovals(only);
  std::vector<Operation> plan;
  for (auto* phase : {&planner.bridges_, &planner.port_links_, &planner.port_config_,
                      &planner.fdb_adds_, &planner.bridges_up_, &planner.fdb_removals_,
                      &planner.link_removals_, &planner.bridge_removals_}) {
    for (Operation& op : *phase) plan.push_back(std::move(op));
  }
  return plan;
}

}  // namespace vfabric::netd
