// The userspace networks' views: the JSON the control verbs answer with
// (stp.show, port stats, fdb show, vlan show, a port's switch side). They
// read the switches and trees; they change nothing.
#include <map>
#include <string>

#include "vfabric/netd/userspace.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

json CountersJson(const bridge::PortCounters& c) {
  json drops = json::object();
  for (size_t i = 0; i < bridge::kDropReasonCount; ++i)
    drops[std::string(bridge::ToString(static_cast<bridge::DropReason>(i)))] = c.drops[i];
  return {{"rx_packets", c.rx_packets},     {"rx_bytes", c.rx_bytes},
          {"tx_packets", c.tx_packets},     {"tx_bytes", c.tx_bytes},
          {"bpdu_trapped", c.bpdu_trapped}, {"csum_completed", c.csum_completed},
          {"segmented", c.segmented},       {"drops", drops},
          {"drops_total", c.total_drops()}, {"mac_limit_not_learned", c.mac_limit_not_learned}};
}

// The port's VLANs as the kernel view lists them: {"vid","pvid","untagged"}.
json VlanEntries(const bridge::PortVlanConfig& v) {
  json list = json::array();
  if (v.mode == bridge::PortMode::kAccess) {
    list.push_back({{"vid", v.pvid}, {"pvid", true}, {"untagged", true}});
    return list;
  }
  const bool native = v.native != bridge::NativeMode::kNone;
  for (uint16_t vid = 1; vid < 4095; ++vid) {
    const bool is_native = native && vid == v.pvid;
    if (!v.allowed.Contains(vid) && !is_native) continue;
    list.push_back({{"vid", vid},
                    {"pvid", is_native},
                    {"untagged", is_native && v.native == bridge::NativeMode::kUntagged}});
  }
  return list;
}

json SwitchVlanJson(const bridge::PortVlanConfig& v) {
  json out = {{"mode", v.mode == bridge::PortMode::kAccess ? "access" : "trunk"}};
  if (v.mode == bridge::PortMode::kAccess) {
    out["pvid"] = v.pvid;
  } else {
    out["allowed"] = v.allowed.ToString();
    out["native"] = v.native == bridge::NativeMode::kNone ? json(nullptr) : json(v.pvid);
    out["native_tagged"] = v.native == bridge::NativeMode::kTagged;
  }
  return out;
}

std::string BridgeIdText(const bridge::TreeBridgeId& id) { return FormatBridgeId(id.ToU64()); }

}  // namespace

Result<json> UserspaceNetworks::StpJson(const topology::NetworkConfig& config) const {
  const auto& s = config.stp;
  json stp = {{"enabled", s.enabled},
              {"mode", std::string(topology::ToString(s.mode))},
              {"priority", s.priority},
              {"hello_time", s.hello_time},
              {"forward_delay", s.forward_delay},
              {"max_age", s.max_age},
              {"datapath", "userspace"},
              {"source", "userspace"}};
  auto n = networks_.find(config.name);
  if (n == networks_.end())
    return Status::Error("network " + config.name + " has no switch running");
  const Network& network = n->second;
  // BPDUs that arrived while no tree ran: a neighbour speaks STP to a switch
  // that does not (a loop through it would not be broken).
  stp["bpdus_ignored"] = network.inbox->ignored();
  if (!network.tree) {
    // No tree: every port forwards (the kernel bridge with STP off says the same).
    json ports = json::array();
    for (const auto& [name, port] : network.ports) {
      ports.push_back({{"name", name},
                       {"port_id", nullptr},
                       {"role", "disabled"},
                       {"state", "forwarding"},
                       {"protocol", nullptr},
                       {"edge", nullptr}});
    }
    stp["ports"] = ports;
    return json{{"stp", stp}};
  }
  ++tree_status_reads_;
  const bridge::TreeStatus status = network.tree->GetStatus();
  stp["bridge_id"] = BridgeIdText(status.bridge_id);
  stp["root_id"] = BridgeIdText(status.root_id);
  stp["is_root"] = status.is_root;
  stp["root_port"] = status.root_port;
  stp["root_port_name"] =
      status.root_port == 0 ? json(nullptr) : json(network.tree->PortName(status.root_port));
  stp["root_path_cost"] = status.root_path_cost;
  stp["topology_change"] = status.topology_change;
  stp["topology_change_count"] = status.topology_change_count;
  stp["time_since_topology_change"] =
      status.time_since_topology_change
          ? json(static_cast<double>(status.time_since_topology_change->count() / 1'000'000) /
                 1000.0)
          : json(nullptr);
  stp["times_in_use"] = {{"hello_time", status.hello_time},
                         {"forward_delay", status.forward_delay},
                         {"max_age", status.max_age}};
  const bridge::SpanningTreeCounters tc = network.tree->Counters();
  stp["counters"] = {{"bpdus_in", tc.bpdus_in},           {"bpdus_out", tc.bpdus_out},
                     {"inbox_dropped", tc.inbox_dropped}, {"send_failures", tc.send_failures},
                     {"state_changes", tc.state_changes}, {"flushes", tc.flushes}};
  stp["counters"]["bpdus_refused"] = tc.bpdus_refused;
  stp["counters"]["state_change_failures"] = tc.state_change_failures;
  stp["counters"]["flush_failures"] = tc.flush_failures;
  json ports = json::array();
  for (const bridge::TreePortStatus& port : status.ports) {
    const auto& c = port.counters;
    ports.push_back({{"name", network.tree->PortName(port.number)},
                     {"port_no", port.number},
                     {"port_id", port.id},
                     {"priority", port.priority},
                     {"role", std::string(bridge::ToString(port.role))},
                     {"state", std::string(bridge::ToString(port.state))},
                     {"enabled", port.enabled},
                     {"cost", port.path_cost},
                     {"designated_root", BridgeIdText(port.designated_root)},
                     {"designated_bridge", BridgeIdText(port.designated_bridge)},
                     {"designated_port", port.designated_port},
                     {"designated_cost", port.designated_cost},
                     {"protocol", std::string(bridge::ToString(port.protocol))},
                     {"edge", port.oper_edge},
                     {"admin_edge", port.admin_edge},
                     {"bpdu_guard", port.bpdu_guard},
                     {"bpdu_guard_tripped", port.bpdu_guard_tripped},
                     {"root_block", port.root_block},
                     {"point_to_point", port.point_to_point},
                     {"counters",
                      {{"rx_config", c.rx_config},
                       {"rx_tcn", c.rx_tcn},
                       {"rx_rst", c.rx_rst},
                       {"tx_config", c.tx_config},
                       {"tx_tcn", c.tx_tcn},
                       {"tx_rst", c.tx_rst},
                       {"rx_malformed", c.rx_malformed},
                       {"rx_while_disabled", c.rx_while_disabled},
                       {"bpdu_guard_trips", c.bpdu_guard_trips},
                       {"forward_transitions", c.forward_transitions}}}});
  }
  stp["ports"] = ports;
  return json{{"stp", stp}};
}

// A tree's status and its ports' names, read once for a whole view.
struct UserspaceNetworks::TreeView {
  bridge::TreeStatus status;
  // Index in status.ports by the port's name (the last one, as PortExtra
  // took it, should a name come twice).
  std::map<std::string, size_t> by_name;
};

UserspaceNetworks::TreeView UserspaceNetworks::ReadTree(const Network& network) const {
  TreeView view;
  if (!network.tree) return view;
  ++tree_status_reads_;
  view.status = network.tree->GetStatus();
  for (size_t i = 0; i < view.status.ports.size(); ++i)
    view.by_name[network.tree->PortName(view.status.ports[i].number)] = i;
  return view;
}

json UserspaceNetworks::SwitchSide(const Network& network, const PortState& port,
                                   const TreeView& tree, const std::string& name) {
  json out = {{"switch_port", port.id}, {"stp_state", "forwarding"}};
  if (auto info = network.sw->PortInfoOf(port.id); info.ok()) {
    out["stp_state"] = std::string(bridge::ToString(info->settings.stp));
    out["counters"] = CountersJson(info->counters);
  }
  // With a tree: the port's path cost and priority as it runs them (the
  // kernel bridge's ports report theirs), and its guards.
  if (auto in_tree = tree.by_name.find(name); in_tree != tree.by_name.end()) {
    const bridge::TreePortStatus& tree_port = tree.status.ports[in_tree->second];
    out["cost"] = tree_port.path_cost;
    out["priority"] = tree_port.priority;
    out["bpdu_guard"] = tree_port.bpdu_guard;
    out["root_block"] = tree_port.root_block;
  }
  return out;
}

json UserspaceNetworks::PortExtra(const std::string& network_name, const std::string& port) const {
  auto n = networks_.find(network_name);
  if (n == networks_.end()) return {{"switch_port", nullptr}};
  auto p = n->second.ports.find(port);
  if (p == n->second.ports.end()) return {{"switch_port", nullptr}};
  return SwitchSide(n->second, p->second, ReadTree(n->second), port);
}

std::map<std::string, json> UserspaceNetworks::PortExtras(const std::string& network_name) const {
  std::map<std::string, json> extras;
  auto n = networks_.find(network_name);
  if (n == networks_.end()) return extras;
  const TreeView tree = ReadTree(n->second);
  for (const auto& [name, port] : n->second.ports)
    extras.emplace_hint(extras.end(), name, SwitchSide(n->second, port, tree, name));
  return extras;
}

bool UserspaceNetworks::InSwitch(const std::string& network_name, const std::string& port) const {
  auto n = networks_.find(network_name);
  return n != networks_.end() && n->second.ports.count(port) != 0;
}

std::set<std::string> UserspaceNetworks::AttachedPorts() const {
  std::set<std::string> names;
  for (const auto& [network_name, network] : networks_)
    for (const auto& [name, port] : network.ports) names.insert(name);
  return names;
}

size_t UserspaceNetworks::PortsUp(const std::string& network) const {
  auto n = networks_.find(network);
  if (n == networks_.end()) return 0;
  size_t up = 0;
  for (const bridge::PortInfo& info : n->second.sw->Ports())
    if (!info.failed) ++up;
  return up;
}

Result<json> UserspaceNetworks::PortStats(const std::string& network_name,
                                          const std::string& port) const {
  auto n = networks_.find(network_name);
  if (n == networks_.end())
    return Status::Error("network " + network_name + " has no switch running");
  json ports = json::array();
  bool found = port.empty();
  for (const bridge::PortInfo& info : n->second.sw->Ports()) {
    if (!port.empty() && info.name != port) continue;
    found = true;
    ports.push_back({{"network", network_name},
                     {"port", info.name},
                     {"switch_port", info.id},
                     {"kind", std::string(bridge::ToString(info.kind))},
                     {"failed", info.failed},
                     {"counters", CountersJson(info.counters)}});
  }
  if (!found) return Status::Error("no port " + port + " in the switch of network " + network_name);
  return json{{"ports", ports}};
}

Result<json> UserspaceNetworks::FdbEntries(const std::string& network_name) {
  auto n = networks_.find(network_name);
  if (n == networks_.end())
    return Status::Error("network " + network_name + " has no switch running");
  std::map<bridge::PortId, std::string> names;
  for (const bridge::PortInfo& info : n->second.sw->Ports()) names[info.id] = info.name;
  auto entries = n->second.sw->FdbEntries();
  if (!entries.ok()) return entries.status();
  json list = json::array();
  for (const bridge::FdbEntry& e : *entries) {
    auto name = names.find(e.port);
    list.push_back(
        {{"mac", e.mac.ToString()},
         {"vlan", e.vlan},
         {"port", name == names.end() ? json(nullptr) : json(name->second)},
         {"static", e.is_static},
         {"local", false},
         {"age",
          e.is_static ? json(nullptr) : json(static_cast<double>(e.age_ns / 1'000'000) / 1000.0)}});
  }
  return json{{"entries", list}};
}

Result<json> UserspaceNetworks::FdbCounters(const std::string& network_name) {
  auto n = networks_.find(network_name);
  if (n == networks_.end())
    return Status::Error("network " + network_name + " has no switch running");
  auto c = n->second.sw->FdbCounters();
  if (!c.ok()) return c.status();
  return json{{"learned", c->learned}, {"refreshed", c->refreshed}, {"moved", c->moved},
              {"expired", c->expired}, {"evicted", c->evicted},     {"flushed", c->flushed}};
}

json UserspaceNetworks::VlanJson(const topology::NetworkConfig& config) const {
  json vlan = {{"filtering", true},
               {"supported", true},
               {"datapath", "userspace"},
               {"default_pvid", config.vlan.default_pvid}};
  json ports = json::array();
  auto n = networks_.find(config.name);
  for (const auto& port : config.ports) {
    const bridge::PortVlanConfig want = SwitchVlanConfig(config, port.vlan);
    json item = SwitchVlanJson(want);
    item["port"] = port.name;
    bool present = false;
    if (n != networks_.end()) {
      auto p = n->second.ports.find(port.name);
      if (p != n->second.ports.end()) {
        present = true;
        item["applied"] = SwitchVlanJson(p->second.vlan);
        item["vlans"] = VlanEntries(p->second.vlan);
      }
    }
    item["present"] = present;
    if (!present) item["vlans"] = json::array();
    ports.push_back(item);
  }
  vlan["ports"] = ports;
  return vlan;
}

}  // namespace vfabric::netd
