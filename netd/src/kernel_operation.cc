// The kernel operations: their builders (each with its undo), their names
// in the protocol (KindName) and their one line for people (Describe).
#include <sstream>

#include "planner_internal.h"
#include "settings_change.h"

namespace vfabric::netd {
namespace {

std::string OnOff(bool value) { return value ? "on" : "off"; }

}  // namespace

namespace planner_internal {

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
  } else if (link.kind == "vxlan" && link.vxlan) {
    Operation create = Op(Operation::Kind::kCreateVxlan, network, link.name);
    create.vxlan = *link.vxlan;
    create.alias = link.alias;
    ops.push_back(create);
    for (const VxlanFloodEntry& entry : actual.vxlan_flood) {
      if (entry.ifindex != link.ifindex) continue;
      Operation flood = Op(Operation::Kind::kAddVxlanFlood, network, link.name);
      flood.address = entry.dst;
      ops.push_back(flood);
    }
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

}  // namespace planner_internal

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
    case Kind::kCreateVxlan:
      return "create_vxlan";
    case Kind::kAddVxlanFlood:
      return "add_vxlan_flood";
    case Kind::kDeleteVxlanFlood:
      return "delete_vxlan_flood";
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
    case Kind::kCreateVxlan:
      out << "create vxlan " << object << " (vni " << vxlan.vni << ", local "
          << vxlan.local.AddressText() << ", dstport " << vxlan.port << ", "
          << (vxlan.learning ? "learning" : "nolearning") << ")";
      break;
    case Kind::kAddVxlanFlood:
      out << "add flood entry 00:00:00:00:00:00 dst " << address.AddressText() << " on " << object;
      break;
    case Kind::kDeleteVxlanFlood:
      out << "delete flood entry 00:00:00:00:00:00 dst " << address.AddressText() << " from "
          << object;
      break;
  }
  return out.str();
}

}  // namespace vfabric::netd
