#include "vfabric/netd/planner.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "bridge_link_plan.h"
#include "settings_change.h"

namespace vfabric::netd {
namespace {

constexpr std::string_view kAliasPrefix = "vfabric:";

using topology::NetworkConfig;
using topology::PortConfig;
using topology::PortKind;

std::string OnOff(bool value) { return value ? "on" : "off"; }

// Desired port VLANs of one port: vid -> (pvid, untagged).
struct VlanMembership {
  bool pvid = false;
  bool untagged = false;
  friend bool operator==(const VlanMembership&, const VlanMembership&) = default;
};

std::map<uint16_t, VlanMembership> DesiredPortVlans(const NetworkConfig& network,
                                                    const PortConfig& port) {
  std::map<uint16_t, VlanMembership> vlans;
  switch (port.vlan.mode) {
    case topology::VlanMode::kNone:
      vlans[network.vlan.default_pvid] = {true, true};
      break;
    case topology::VlanMode::kAccess:
      vlans[port.vlan.pvid] = {true, true};
      break;
    case topology::VlanMode::kTrunk:
      for (uint16_t vid = 1; vid < 4095; ++vid)
        if (port.vlan.allowed.test(vid)) vlans[vid] = {false, false};
      if (port.vlan.native != 0) vlans[port.vlan.native] = {true, !port.vlan.native_tagged};
      break;
  }
  return vlans;
}

bool SameBridgeSettings(const BridgeSettings& want, const BridgeSettings& have,
                        bool vlan_filtering_supported) {
  BridgeSettings a = want, b = have;
  if (!vlan_filtering_supported) {
    // The kernel neither takes nor reports these; comparing them would make
    // every bridge look drifted forever.
    a.vlan_filtering = b.vlan_filtering = false;
    a.default_pvid = b.default_pvid = 1;
  }
  return a == b;
}

// The settings the operator configured on a bridge, as far as the kernel
// lets them be read. While the kernel's own STP runs a topology change it
// ages the FDB fast: br->ageing_time becomes 2 x forward_delay, which is what
// IFLA_BR_AGEING_TIME reports, while the configured value waits in
// br->bridge_ageing_time (not exported) to be restored when the change ends
// (net/bridge/br_stp.c, __br_set_topology_change). Writing the configured
// ageing back then would end the fast ageing STP asked for, so during a
// change the ageing is taken to be what `want` says; a real difference shows
// once the change is over (the next repair or resync).
BridgeSettings ConfiguredBridgeSettings(const BridgeStatus& status, const BridgeSettings& want) {
  BridgeSettings have = status.settings;
  const bool changing =
      status.topology_change.value_or(0) != 0 || status.topology_change_timer_cs.value_or(0) != 0;
  // Both are read back rounded to whole jiffies and converted on their own:
  // allow one centisecond either way.
  const int64_t fast = 2 * int64_t{have.forward_delay_cs};
  const int64_t ageing = have.ageing_time_cs;
  if (have.stp_enabled && changing && ageing >= fast - 1 && ageing <= fast + 1)
    have.ageing_time_cs = want.ageing_time_cs;
  return have;
}

// The fields of `want` that are set and differ from `have`.
BridgePortSettings PortSettingsDiff(const BridgePortSettings& want,
                                    const BridgePortSettings& have) {
  BridgePortSettings diff;
  auto pick = [](const auto& w, const auto& h, auto& out) {
    if (w.has_value() && w != h) out = w;
  };
  pick(want.cost, have.cost, diff.cost);
  pick(want.priority, have.priority, diff.priority);
  pick(want.learning, have.learning, diff.learning);
  pick(want.flood, have.flood, diff.flood);
  pick(want.hairpin, have.hairpin, diff.hairpin);
  pick(want.isolated, have.isolated, diff.isolated);
  pick(want.bpdu_guard, have.bpdu_guard, diff.bpdu_guard);
  pick(want.root_block, have.root_block, diff.root_block);
  return diff;
}

// The values `have` holds for each field set in `fields`.
BridgePortSettings PortSettingsRestore(const BridgePortSettings& fields,
                                       const BridgePortSettings& have) {
  BridgePortSettings old;
  if (fields.cost) old.cost = have.cost;
  if (fields.priority) old.priority = have.priority;
  if (fields.learning) old.learning = have.learning;
  if (fields.flood) old.flood = have.flood;
  if (fields.hairpin) old.hairpin = have.hairpin;
  if (fields.isolated) old.isolated = have.isolated;
  if (fields.bpdu_guard) old.bpdu_guard = have.bpdu_guard;
  if (fields.root_block) old.root_block = have.root_block;
  return old;
}

bool AnySet(const BridgePortSettings& s) { return s != BridgePortSettings{}; }

BridgePortSettings DesiredPortSettings(const PortConfig& port) {
  BridgePortSettings s;
  s.cost = port.cost;
  s.priority = port.priority;
  s.learning = port.learning;
  s.flood = port.flood;
  s.hairpin = port.hairpin;
  s.isolated = port.isolated;
  s.bpdu_guard = port.bpdu_guard;
  s.root_block = port.root_block;
  return s;
}

TapSettings DesiredTapSettings(const PortConfig& port) {
  TapSettings s;
  s.owner = port.owner;
  s.group = port.group;
  s.multi_queue = port.multi_queue;
  s.vnet_hdr = port.vnet_hdr;
  return s;
}

// Builders for operations, each with its undo.
Operation Op(Operation::Kind kind, const std::string& network, const std::string& object) {
  Operation op;
  op.kind = kind;
  op.network = network;
  op.object = object;
  return op;
}

Operation DeleteOp(const std::string& network, const std::string& name) {
  return Op(Operation::Kind::kDeleteLink, network, name);
}

Operation SetUpOp(const std::string& network, const std::string& name, bool up) {
  Operation op = Op(Operation::Kind::kSetLinkUp, network, name);
  op.up = up;
  Operation undo = Op(Operation::Kind::kSetLinkUp, network, name);
  undo.up = !up;
  op.undo.push_back(undo);
  return op;
}

Operation SetMasterOp(const std::string& network, const std::string& name,
                      const std::string& master, const std::string& old_master) {
  Operation op = Op(Operation::Kind::kSetMaster, network, name);
  op.master = master;
  Operation undo = Op(Operation::Kind::kSetMaster, network, name);
  undo.master = old_master;
  op.undo.push_back(undo);
  return op;
}

// Recreating a link we are about to delete: the undo of a deletion.
std::vector<Operation> RecreateOps(const LinkInfo& link, const KernelState& actual) {
  std::vector<Operation> ops;
  const std::string network = NetworkFromAlias(link.alias);
  if (link.kind == "bridge" && link.bridge) {
    Operation create = Op(Operation::Kind::kCreateBridge, network, link.name);
    create.bridge = link.bridge->settings;
    create.alias = link.alias;
    ops.push_back(create);
  } else if (link.kind == "tun" && link.tap) {
    Operation create = Op(Operation::Kind::kCreateTap, network, link.name);
    create.tap = link.tap->settings;
    create.alias = link.alias;
    ops.push_back(create);
  } else if (link.kind == "veth") {
    const LinkInfo* peer = actual.FindLink(link.link_ifindex);
    if (peer == nullptr) return ops;
    Operation create = Op(Operation::Kind::kCreateVeth, network, link.name);
    create.peer = peer->name;
    create.alias = link.alias;
    ops.push_back(create);
  } else {
    return ops;
  }
  if (link.master_ifindex != 0) {
    if (const LinkInfo* master = actual.FindLink(link.master_ifindex)) {
      Operation enslave = Op(Operation::Kind::kSetMaster, network, link.name);
      enslave.master = master->name;
      ops.push_back(enslave);
    }
  }
  if (link.admin_up) {
    Operation up = Op(Operation::Kind::kSetLinkUp, network, link.name);
    up.up = true;
    ops.push_back(up);
  }
  return ops;
}

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
          const std::set<std::string>& attached)
      : desired_(desired), actual_(actual), attached_(attached) {}

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
      // it): that port's problem, not the host's.
      if (port.kind == PortKind::kExisting) continue;
      if (link != nullptr && !Owned(*link))
        return Status::Error(ForeignLinkError("port", port.name, network.name, *link));
      if (port.kind == PortKind::kVeth) {
        const LinkInfo* peer = actual_.FindLink(port.peer);
        if (peer != nullptr && !Owned(*peer))
          return Status::Error(ForeignLinkError("veth peer", port.peer, network.name, *peer));
      }
    }
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
    for (const PortConfig& port : network.ports) PlanPort(network, port, nullptr, false);
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

    if (bridge == nullptr || !bridge->admin_up)
      bridges_up_.push_back(SetUpOp(network.name, network.bridge, true));

    // Links on this bridge that the network no longer lists.
    if (bridge != nullptr) {
      for (const LinkInfo& link : actual_.links) {
        if (link.master_ifindex != bridge->ifindex || port_names.count(link.name)) continue;
        if (Owned(link)) continue;  // deleted below when no network wants it
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
    // Not there (yet): nothing to do until the link monitor sees it appear.
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
  void PlanRemovals() {
    std::set<int> gone;  // ifindexes already taken by an earlier deletion
    auto schedule = [&](const LinkInfo& link, std::vector<Operation>& phase) {
      if (gone.count(link.ifindex)) return;
      Operation op = DeleteOp(NetworkFromAlias(link.alias), link.name);
      op.undo = RecreateOps(link, actual_);
      phase.push_back(op);
      gone.insert(link.ifindex);
      if (link.kind == "veth" && link.link_ifindex != 0) gone.insert(link.link_ifindex);
    };
    for (const LinkInfo& link : actual_.links) {
      if (!Owned(link) || wanted_.count(link.name) || link.kind == "bridge") continue;
      schedule(link, link_removals_);
    }
    for (const LinkInfo& link : actual_.links) {
      if (!Owned(link) || wanted_.count(link.name) || link.kind != "bridge") continue;
      schedule(link, bridge_removals_);
    }
  }

 private:
  const topology::Topology& desired_;
  const KernelState& actual_;
  const std::set<std::string>& attached_;

 public:
  std::set<std::string> wanted_;
  std::vector<Operation> bridges_, port_links_, port_config_, fdb_adds_, bridges_up_, fdb_removals_,
      link_removals_, bridge_removals_;
};

}  // namespace

std::string PortLinkWaiting(const topology::PortConfig& port, const KernelState& actual) {
  if (port.kind != PortKind::kExisting || actual.FindLink(port.name) != nullptr) return "";
  return "no link named " + port.name + " exists yet; it is attached when it appears";
}

std::string OwnerAlias(const std::string& network) { return std::string(kAliasPrefix) + network; }

std::string NetworkFromAlias(const std::string& alias) {
  if (alias.size() <= kAliasPrefix.size() || alias.compare(0, kAliasPrefix.size(), kAliasPrefix))
    return "";
  return alias.substr(kAliasPrefix.size());
}

const LinkInfo* KernelState::FindLink(const std::string& name) const {
  for (const LinkInfo& link : links)
    if (link.name == name) return &link;
  return nullptr;
}

const LinkInfo* KernelState::FindLink(int ifindex) const {
  if (ifindex == 0) return nullptr;
  for (const LinkInfo& link : links)
    if (link.ifindex == ifindex) return &link;
  return nullptr;
}

topology::Topology WithGuestPorts(const topology::Topology& topology) {
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
        network.ports.push_back(std::move(port));
        break;
      }
    }
  }
  return expanded;
}

Result<KernelState> ReadKernelState(Kernel& kernel, const KernelFeatures& features) {
  KernelState state;
  state.features = features;
  auto links = kernel.ListLinks();
  if (!links.ok()) return links.status();
  state.links = std::move(links).value();
  auto fdb = kernel.ListFdb();
  if (!fdb.ok()) return fdb.status();
  state.fdb = std::move(fdb).value();
  auto addresses = kernel.ListAddresses();
  if (!addresses.ok()) return addresses.status();
  state.addresses = std::move(addresses).value();
  if (features.bridge_vlan_filtering) {
    auto vlans = kernel.ListPortVlans();
    if (!vlans.ok()) return vlans.status();
    state.port_vlans = std::move(vlans).value();
  }
  return state;
}

BridgeSettings DesiredBridgeSettings(const topology::NetworkConfig& network) {
  BridgeSettings s;
  s.stp_enabled = network.stp.enabled;
  s.priority = network.stp.priority;
  s.hello_time_cs = network.stp.hello_time * 100;
  s.forward_delay_cs = network.stp.forward_delay * 100;
  s.max_age_cs = network.stp.max_age * 100;
  s.ageing_time_cs = network.fdb.ageing_time * 100;
  s.vlan_filtering = network.vlan.filtering;
  s.default_pvid = network.vlan.default_pvid;
  return s;
}

Result<std::vector<Operation>> Plan(const topology::Topology& desired, const KernelState& actual,
                                    const std::set<std::string>& attached) {
  Planner planner(desired, actual, attached);
  for (const NetworkConfig& network : desired.networks)
    VF_RETURN_IF_ERROR(planner.Preflight(network));
  for (const NetworkConfig& network : desired.networks) planner.PlanNetwork(network);
  planner.PlanRemovals();
  std::vector<Operation> plan;
  for (auto* phase : {&planner.bridges_, &planner.port_links_, &planner.port_config_,
                      &planner.fdb_adds_, &planner.bridges_up_, &planner.fdb_removals_,
                      &planner.link_removals_, &planner.bridge_removals_}) {
    for (Operation& op : *phase) plan.push_back(std::move(op));
  }
  return plan;
}

std::string_view Operation::KindName() const {
  switch (kind) {
    case Kind::kCreateBridge:
      return "create_bridge";
    case Kind::kSetBridgeSettings:
      return "set_bridge";
    case Kind::kCreateTap:
      return "create_tap";
    case Kind::kCreateVeth:
      return "create_veth";
    case Kind::kMoveToNetns:
      return "move_to_netns";
    case Kind::kDeleteLink:
      return "delete_link";
    case Kind::kSetAlias:
      return "set_alias";
    case Kind::kSetMaster:
      return "set_master";
    case Kind::kSetBridgePortSettings:
      return "set_bridge_port";
    case Kind::kSetLinkUp:
      return "set_link_up";
    case Kind::kAddStaticFdb:
      return "add_static_fdb";
    case Kind::kDeleteStaticFdb:
      return "delete_static_fdb";
    case Kind::kAddPortVlan:
      return "add_port_vlan";
    case Kind::kDeletePortVlan:
      return "delete_port_vlan";
    case Kind::kSetLinkMac:
      return "set_link_mac";
    case Kind::kSetMtu:
      return "set_mtu";
    case Kind::kAddAddress:
      return "add_address";
    case Kind::kDeleteAddress:
      return "delete_address";
  }
  return "?";
}

std::string Operation::Describe() const {
  std::ostringstream out;
  auto port_settings = [&](const BridgePortSettings& s) {
    const char* sep = "";
    auto item = [&](const char* name, const auto& value) {
      if (!value) return;
      out << sep << name << " ";
      if constexpr (std::is_same_v<std::decay_t<decltype(*value)>, bool>)
        out << OnOff(*value);
      else
        out << *value;
      sep = ", ";
    };
    item("cost", s.cost);
    item("priority", s.priority);
    item("learning", s.learning);
    item("flood", s.flood);
    item("hairpin", s.hairpin);
    item("isolated", s.isolated);
    item("bpdu_guard", s.bpdu_guard);
    item("root_block", s.root_block);
  };
  auto bridge_settings = [&](const BridgeSettings& s) {
    out << "stp " << OnOff(s.stp_enabled) << ", priority " << s.priority << ", hello "
        << s.hello_time_cs / 100 << "s, forward_delay " << s.forward_delay_cs / 100 << "s, max_age "
        << s.max_age_cs / 100 << "s, ageing " << s.ageing_time_cs / 100 << "s";
    if (s.vlan_filtering) out << ", vlan_filtering on, default_pvid " << s.default_pvid;
  };
  switch (kind) {
    case Kind::kCreateBridge:
      out << "create bridge " << object << " (";
      bridge_settings(bridge);
      out << ")";
      break;
    case Kind::kSetBridgeSettings:
      // With what it replaces (its undo): old -> new, as the switches' lines.
      if (!undo.empty() && undo[0].kind == kind) {
        out << "set bridge " << object << ": " << BridgeSettingsChange(undo[0].bridge, bridge);
        break;
      }
      out << "set bridge " << object << " (";
      bridge_settings(bridge);
      out << ")";
      break;
    case Kind::kCreateTap:
      out << "create tap " << object << " (vnet_hdr " << OnOff(tap.vnet_hdr) << ", multi_queue "
          << OnOff(tap.multi_queue);
      if (tap.owner) out << ", owner " << *tap.owner;
      if (tap.group) out << ", group " << *tap.group;
      out << ")";
      break;
    case Kind::kCreateVeth:
      out << "create veth " << object << " (peer " << peer << ")";
      break;
    case Kind::kMoveToNetns:
      out << "move " << object << " to netns " << netns;
      break;
    case Kind::kDeleteLink:
      out << "delete link " << object;
      break;
    case Kind::kSetAlias:
      out << "set alias of " << object << " to \"" << alias << "\"";
      break;
    case Kind::kSetMaster:
      if (master.empty())
        out << "release " << object << " from its bridge";
      else
        out << "attach " << object << " to bridge " << master;
      break;
    case Kind::kSetBridgePortSettings:
      if (!undo.empty() && undo[0].kind == kind) {
        out << "set bridge port " << object << ": "
            << PortSettingsChange(undo[0].bridge_port, bridge_port);
        break;
      }
      out << "set bridge port " << object << " (";
      port_settings(bridge_port);
      out << ")";
      break;
    case Kind::kSetLinkUp:
      out << "set " << object << (up ? " up" : " down");
      break;
    case Kind::kAddStaticFdb:
      out << "add static fdb " << mac.ToString() << (vlan ? " vlan " + std::to_string(vlan) : "")
          << " on " << object;
      break;
    case Kind::kDeleteStaticFdb:
      out << "delete static fdb " << mac.ToString() << (vlan ? " vlan " + std::to_string(vlan) : "")
          << " on " << object;
      break;
    case Kind::kAddPortVlan:
      out << "add vlan " << vlan << " to " << object << (pvid ? " (pvid" : " (tagged")
          << (untagged ? ", untagged)" : ")");
      break;
    case Kind::kDeletePortVlan:
      out << "delete vlan " << vlan << " from " << object;
      break;
    case Kind::kSetLinkMac:
      out << "set mac of " << object << " " << (undo.empty() ? "" : undo[0].mac.ToString() + " -> ")
          << mac.ToString();
      break;
    case Kind::kSetMtu:
      out << "set mtu of " << object << " "
          << (undo.empty() ? "" : std::to_string(undo[0].mtu) + " -> ") << mtu;
      break;
    case Kind::kAddAddress:
      out << "add address " << address.ToString() << " to " << object;
      break;
    case Kind::kDeleteAddress:
      out << "delete address " << address.ToString() << " from " << object;
      break;
  }
  return out.str();
}

Status Execute(Kernel& kernel, const Operation& op) {
  switch (op.kind) {
    case Operation::Kind::kCreateBridge:
      return kernel.CreateBridge(op.object, op.bridge, op.alias);
    case Operation::Kind::kSetBridgeSettings:
      return kernel.SetBridgeSettings(op.object, op.bridge);
    case Operation::Kind::kCreateTap:
      return kernel.CreateTap(op.object, op.tap, op.alias);
    case Operation::Kind::kCreateVeth:
      return kernel.CreateVeth(op.object, op.peer, op.alias);
    case Operation::Kind::kMoveToNetns:
      return kernel.MoveToNetns(op.object, op.netns);
    case Operation::Kind::kDeleteLink:
      return kernel.DeleteLink(op.object);
    case Operation::Kind::kSetAlias:
      return kernel.SetAlias(op.object, op.alias);
    case Operation::Kind::kSetMaster:
      return kernel.SetMaster(op.object, op.master);
    case Operation::Kind::kSetBridgePortSettings:
      return kernel.SetBridgePortSettings(op.object, op.bridge_port);
    case Operation::Kind::kSetLinkUp:
      return kernel.SetLinkUp(op.object, op.up);
    case Operation::Kind::kAddStaticFdb:
      return kernel.AddStaticFdb(op.object, op.mac, op.vlan);
    case Operation::Kind::kDeleteStaticFdb:
      return kernel.DeleteStaticFdb(op.object, op.mac, op.vlan);
    case Operation::Kind::kAddPortVlan:
      return kernel.AddPortVlan(op.object, op.vlan, op.pvid, op.untagged);
    case Operation::Kind::kDeletePortVlan:
      return kernel.DeletePortVlan(op.object, op.vlan);
    case Operation::Kind::kSetLinkMac:
      return kernel.SetLinkMac(op.object, op.mac);
    case Operation::Kind::kSetMtu:
      return kernel.SetMtu(op.object, op.mtu);
    case Operation::Kind::kAddAddress:
      return kernel.AddAddress(op.object, op.address);
    case Operation::Kind::kDeleteAddress:
      return kernel.DeleteAddress(op.object, op.address);
  }
  return Status::Error("unknown operation");
}

Status ApplyPlan(Kernel& kernel, const std::vector<Operation>& plan, std::vector<Operation>* done) {
  size_t applied = 0;
  for (; applied < plan.size(); ++applied) {
    Status status = Execute(kernel, plan[applied]);
    if (status.ok()) continue;
    // Put back what was done, newest first; keep going past undo failures so
    // as much as possible is restored, and say which ones failed.
    int undone = 0;
    std::string undo_errors;
    for (size_t i = applied; i-- > 0;) {
      for (const Operation& undo : plan[i].undo) {
        Status undo_status = Execute(kernel, undo);
        if (undo_status.ok()) continue;
        undo_errors += "; undo \"" + undo.Describe() + "\" failed: " + undo_status.message();
      }
      ++undone;
    }
    // The kernel's message names the call ("move v0-p to netns ns1: open
    // ...: No such file or directory"); where that name is how the operation
    // begins, say it once.
    const std::string described = plan[applied].Describe();
    std::string reason = status.message();
    if (const size_t colon = reason.find(": ");
        colon != std::string::npos && described.compare(0, colon, reason, 0, colon) == 0 &&
        (described.size() == colon || described[colon] == ' '))
      reason.erase(0, colon + 2);
    std::string message = described + ": " + reason + " (undid " + std::to_string(undone) +
                          " operation" + (undone == 1 ? "" : "s") +
                          (undo_errors.empty() ? ")" : ")" + undo_errors);
    if (done) done->clear();
    return Status::Error(message, status.error_number());
  }
  if (done) *done = plan;
  return Status::Ok();
}

}  // namespace vfabric::netd
