// The answers of the verbs that show state (status, network.list/show, port.list,
// port.stats, fdb.show, stp.show, vlan.show): JSON from the desired state,
// the kernel read back and the userspace switches. They change nothing.
#include "views.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "mirror_plan.h"
#include "netns_check.h"
#include "vfabric/netd/controller.h"
#include "vfabric/protocol/protocol.h"

namespace vfabric::netd {

using nlohmann::json;
using protocol::Error;
using protocol::Expected;
using protocol::Reply;
using topology::NetworkConfig;

const char* StpStateName(uint8_t state) {
  switch (state) {
    case 0:
      return "disabled";
    case 1:
      return "listening";
    case 2:
      return "learning";
    case 3:
      return "forwarding";
    case 4:
      return "blocking";
  }
  return "unknown";
}

const char* KernelPortRole(const BridgeStatus& bridge, const BridgePortStatus& port) {
  if (!bridge.settings.stp_enabled) return port.state == 0 ? "disabled" : "designated";
  if (port.state == 0) return "disabled";
  if (bridge.root_port && port.port_no && *bridge.root_port == *port.port_no) return "root";
  if (port.state == 4) return "alternate";
  return "designated";
}

json Seconds(uint64_t centiseconds) {
  if (centiseconds % 100 == 0) return centiseconds / 100;
  return static_cast<double>(centiseconds) / 100.0;
}

json VlanJson(const topology::PortVlanConfig& vlan) {
  json out = {{"mode", std::string(ToString(vlan.mode))}};
  if (vlan.mode == topology::VlanMode::kAccess) out["pvid"] = vlan.pvid;
  if (vlan.mode == topology::VlanMode::kTrunk) {
    out["allowed"] = topology::FormatVlanList(vlan.allowed);
    if (vlan.native) out["native"] = vlan.native;
  }
  return out;
}

const NetworkConfig* FindNetwork(const topology::Topology& topology, const std::string& name) {
  for (const auto& network : topology.networks)
    if (network.name == name) return &network;
  return nullptr;
}

namespace {

json PortJson(const NetworkConfig& network, const topology::PortConfig& port,
              const KernelState& state) {
  json out = {{"network", network.name},
              {"name", port.name},
              {"kind", std::string(ToString(port.kind))},
              {"vlan", VlanJson(port.vlan)}};
  if (port.kind == topology::PortKind::kVxlan) {
    // A peer port of the switch's VXLAN endpoint: no kernel link.
    out["remote"] = port.vxlan_remote.AddressText();
    out["local"] = port.vxlan_local.AddressText();
    out["udp_port"] = port.vxlan_port;
    out["vni"] = port.vxlan_vni;
    return out;
  }
  if (port.kind == topology::PortKind::kVhostUser) {
    // No kernel link: its socket is its host object, its state the
    // switch's (PortExtra, SwitchPortJson).
    out["socket"] = port.socket;
    out["mode"] = std::string(topology::ToString(port.vhost_user_mode));
    return out;
  }
  const LinkInfo* link = state.FindLink(port.name);
  out["present"] = link != nullptr;
  if (std::string why = PortLinkWaiting(port, state); !why.empty()) out["waiting"] = why;
  if (link == nullptr) return out;
  out["ifindex"] = link->ifindex;
  out["admin_up"] = link->admin_up;
  out["oper_up"] = link->oper_up;
  out["mac"] = link->mac.ToString();
  const LinkInfo* master = state.FindLink(link->master_ifindex);
  out["master"] = master ? json(master->name) : json(nullptr);
  if (link->brport) {
    const auto& s = link->brport->settings;
    out["stp_state"] = StpStateName(link->brport->state);
    out["cost"] = Optional(s.cost);
    out["priority"] = Optional(s.priority);
    out["learning"] = Optional(s.learning);
    out["flood"] = Optional(s.flood);
    out["hairpin"] = Optional(s.hairpin);
    out["isolated"] = Optional(s.isolated);
    out["bpdu_guard"] = Optional(s.bpdu_guard);
    out["root_block"] = Optional(s.root_block);
  }
  return out;
}

// The switch's side of a port of a userspace network: `extras`, the
// network's UserspaceNetworks::PortExtras (read once for all its ports),
// has it unless the port is not in the switch; a port not in the switch
// because its backend waits for its host object (a vhost-user client's
// socket) says why.
json SwitchPortJson(const UserspaceNetworks& userspace, const std::string& network,
                    const topology::PortConfig& port, std::map<std::string, json>& extras) {
  json out = {{"switch_port", nullptr}};
  // Moved out: a network's port names are unique (the validator refuses a
  // name used twice).
  if (auto extra = extras.find(port.name); extra != extras.end()) out = std::move(extra->second);
  if (out["switch_port"].is_null())
    if (std::string why = userspace.Backends().For(port, false).Waiting(port); !why.empty())
      out["waiting"] = why;
  // A vhost-user port is up while a frontend has its rings set up.
  if (json vhost_user = userspace.VhostUserState(network, port.name); !vhost_user.is_null()) {
    out["connected"] = vhost_user["connected"];
    out["oper_up"] = vhost_user["up"];
  }
  return out;
}

}  // namespace

Expected<Controller::View> Controller::MakeView(bool plan_drift) const {
  View view;
  view.desired = Desired();
  if (!plan_drift) {
    // The links only: no plan compares the FDB, addresses or VLANs, and
    // the kernel's FDB dump of 10,000 ports was the largest part of a view.
    auto links = kernel_.ListLinks();
    if (!links.ok()) return Error{"failed", links.status().message()};
    view.state.features = features_;
    view.state.links = std::move(links).value();
    view.state.missing_netns = MissingPeerNetns(view.desired);
    return view;
  }
  auto state = ReadState(view.desired);
  if (!state.ok()) return Error{"failed", state.status().message()};
  view.state = std::move(state).value();
  auto plan = PlanKernel(view.desired, view.state);
  KernelView kernel{&view.state, {}};
  if (plan.ok()) {
    for (const auto& op : *plan) ++view.drift[op.network];
    kernel.recreated = CreatedLinks(*plan);
    view.kernel_pending = std::move(plan).value();
  } else {
    view.plan_error = plan.status().message();
  }
  // The switches' part of the same plan, with the kernel as it is: a port
  // that waits for its link is not drift.
  view.switch_pending = PendingSwitchChanges(view.desired, &kernel);
  for (const auto& change : view.switch_pending) ++view.drift[change.network];
  return view;
}

Reply Controller::NetworkList() {
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  json list = json::array();
  for (const NetworkConfig& network : view.desired.networks) {
    const LinkInfo* bridge = view.state.FindLink(network.bridge);
    const bool userspace = network.datapath == topology::Datapath::kUserspace;
    const bool running = userspace && userspace_ != nullptr && userspace_->Has(network.name);
    int up = 0;
    for (const auto& port : network.ports) {
      const LinkInfo* link = view.state.FindLink(port.name);
      // "Up" as netctl's port list shows it: carrier, not just IFF_UP (a tap
      // with no guest behind it is down). On a userspace network: in the
      // switch, with carrier.
      if (userspace) {
        if (link && link->oper_up && running && userspace_->InSwitch(network.name, port.name)) ++up;
      } else if (link && link->oper_up && bridge && link->master_ifindex == bridge->ifindex) {
        ++up;
      }
    }
    std::string state = "ok";
    if (userspace ? !running : bridge == nullptr)
      state = "missing";
    else if (view.drift.count(network.name) || !view.plan_error.empty())
      state = "drifted";
    list.push_back(
        {{"name", network.name},
         {"datapath", std::string(ToString(network.datapath))},
         // A userspace network has no Linux bridge (its switch is netd's).
         {"bridge", userspace ? json(nullptr) : json(network.bridge)},
         {"state", state},
         {"ports", network.ports.size()},
         {"ports_up", up},
         {"stp", network.stp.enabled},
         // Where it came from: the file that keeps it (a --config
         // file, or the one `apply` saved it in; for a network
         // kept in memory only, the file name apply was given),
         // whether `apply` made it so since the configuration
         // was read, and whether a restart would find it.
         {"source", network.where.file.empty() ? json(nullptr) : json(network.where.file)},
         {"applied", applied_.count(network.name) != 0 || applied_names_.count(network.name) != 0},
         {"saved", applied_.count(network.name) == 0}});
  }
  return json{{"networks", list}};
}

// netd itself and a line per network: state "ok", "drifted" (operations
// pending, or the plan fails), "missing" (its bridge or switch is not there)
// or "waiting" (in order, but a port waits for its link to appear).
Reply Controller::DaemonStatus() {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  const auto uptime = duration_cast<seconds>(std::chrono::steady_clock::now() - daemon_.started);
  const auto started = duration_cast<seconds>(daemon_.started_wall.time_since_epoch());
  json status = {{"server", "netd"},
                 {"version", std::string(protocol::ProjectVersion())},
                 {"protocol", protocol::kVersion},
                 {"pid", static_cast<int64_t>(::getpid())},
                 {"started", started.count()},
                 {"uptime_seconds", uptime.count()},
                 {"config", daemon_.config_paths}};
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  VF_ASSIGN_OR_RETURN_ERROR(const json list, NetworkList());
  json networks = json::array();
  std::map<std::string, int> counts = {{"ok", 0}, {"drifted", 0}, {"missing", 0}, {"waiting", 0}};
  for (const json& item : list["networks"]) {
    const std::string name = item["name"].get<std::string>();
    const NetworkConfig* network = FindNetwork(view.desired, name);
    std::string state = item["state"].get<std::string>();
    json waiting = json::array();
    if (network != nullptr)
      for (const auto& port : network->ports)
        if (!PortLinkWaiting(port, view.state).empty()) waiting.push_back(port.name);
    if (state == "ok" && !waiting.empty()) state = "waiting";
    ++counts[state];
    json entry = {{"name", name},
                  {"datapath", item["datapath"]},
                  {"state", state},
                  // Where it came from: a --config file, or `netctl apply`.
                  {"source", item["source"]},
                  {"applied", item["applied"]},
                  {"pending", view.drift.count(name) ? view.drift.at(name) : 0}};
    if (!waiting.empty()) entry["waiting"] = waiting;
    networks.push_back(std::move(entry));
  }
  status["networks"] = networks;
  status["counts"] = counts;
  if (!view.plan_error.empty()) status["error"] = view.plan_error;
  return status;
}

Reply Controller::NetworkShow(const std::string& name) {
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  const NetworkConfig* network = FindNetwork(view.desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  json summary;
  VF_ASSIGN_OR_RETURN_ERROR(const json list, NetworkList());
  for (const json& item : list["networks"])
    if (item["name"] == name) summary = item;
  const bool userspace = network->datapath == topology::Datapath::kUserspace;
  const LinkInfo* bridge = userspace ? nullptr : view.state.FindLink(network->bridge);
  if (bridge != nullptr) {
    summary["ifindex"] = bridge->ifindex;
    summary["mac"] = bridge->mac.ToString();
    summary["admin_up"] = bridge->admin_up;
    if (bridge->bridge) {
      const BridgeSettings& s = bridge->bridge->settings;
      summary["settings"] = {
          {"stp_enabled", s.stp_enabled},           {"priority", s.priority},
          {"hello_time", Seconds(s.hello_time_cs)}, {"forward_delay", Seconds(s.forward_delay_cs)},
          {"max_age", Seconds(s.max_age_cs)},       {"ageing_time", Seconds(s.ageing_time_cs)},
          {"vlan_filtering", s.vlan_filtering},     {"default_pvid", s.default_pvid}};
    }
  }
  if (userspace) {
    // The tree's settings as configured (what the switch runs: `stp show`).
    summary["settings"] = {{"stp_enabled", network->stp.enabled},
                           {"stp_running", userspace_ != nullptr && userspace_->TreeRunning(name)},
                           {"stp_mode", std::string(topology::ToString(network->stp.mode))},
                           {"priority", network->stp.priority},
                           {"hello_time", network->stp.hello_time},
                           {"forward_delay", network->stp.forward_delay},
                           {"max_age", network->stp.max_age},
                           {"ageing_time", network->fdb.ageing_time},
                           {"max_entries", network->fdb.max_entries},
                           {"max_per_port", network->fdb.max_per_port},
                           {"vlan_filtering", true},
                           {"default_pvid", network->vlan.default_pvid}};
    if (userspace_ != nullptr && userspace_->Has(name)) {
      auto counters = userspace_->FdbCounters(name);
      if (counters.ok()) summary["fdb_counters"] = *counters;
    }
  }
  json ports = json::array();
  std::map<std::string, json> extras;
  if (userspace && userspace_ != nullptr) extras = userspace_->PortExtras(name);
  for (const auto& port : network->ports) {
    json item = PortJson(*network, port, view.state);
    if (userspace && userspace_ != nullptr)
      item.update(SwitchPortJson(*userspace_, name, port, extras));
    ports.push_back(std::move(item));
  }
  summary["ports"] = ports;
  // The port mirrors as configured (the topology's "mirror" keys).
  if (userspace) summary["mirrors"] = MirrorsJson(network->mirrors);
  VF_ASSIGN_OR_RETURN_ERROR(const json fdb, FdbShow(name));
  json statics = json::array();
  for (const json& entry : fdb["entries"])
    if (entry["static"] == true && entry["local"] == false) statics.push_back(entry);
  summary["static_fdb"] = std::move(statics);
  json pending = json::array();
  for (const auto& op : view.kernel_pending)
    if (op.network == name) pending.push_back(op.Describe());
  if (!view.plan_error.empty()) summary["error"] = view.plan_error;
  for (const auto& change : view.switch_pending)
    if (change.network == name) pending.push_back(change.description);
  summary["pending"] = pending;
  json waiting = json::array();
  for (const auto& port : network->ports)
    if (std::string why = PortLinkWaiting(port, view.state); !why.empty())
      waiting.push_back({{"port", port.name}, {"reason", why}});
  summary["waiting"] = waiting;
  return json{{"network", summary}};
}

Reply Controller::PortList(const std::string& network_name) {
  // The list shows no drift: planning all 10,000 ports of a large host was
  // most of its time.
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView(/*plan=*/false));
  if (!network_name.empty() && FindNetwork(view.desired, network_name) == nullptr)
    return Error{"not_found", "no network named \"" + network_name + "\""};
  json ports = json::array();
  for (const NetworkConfig& network : view.desired.networks) {
    if (!network_name.empty() && network.name != network_name) continue;
    const bool userspace =
        network.datapath == topology::Datapath::kUserspace && userspace_ != nullptr;
    // The switch's side of every port at once: the tree's status once per
    // network, not once per port.
    std::map<std::string, json> extras;
    if (userspace) extras = userspace_->PortExtras(network.name);
    for (const auto& port : network.ports) {
      json item = PortJson(network, port, view.state);
      if (userspace) item.update(SwitchPortJson(*userspace_, network.name, port, extras));
      ports.push_back(std::move(item));
    }
    // Links on the bridge that the network does not list and vfabric did
    // not make (libvirt's vnetN): shown, never touched.
    for (const LinkInfo* link : ForeignBridgePorts(network, view.state)) {
      topology::PortConfig port;
      port.name = link->name;
      port.kind = topology::PortKind::kExisting;
      json item = PortJson(network, port, view.state);
      item["kind"] = "foreign";
      item["foreign"] = true;
      item["vlan"] = nullptr;
      ports.push_back(std::move(item));
    }
  }
  // Moved, not copied (json{{"ports", ports}} copies every port).
  json result = json::object();
  result["ports"] = std::move(ports);
  return result;
}

Reply Controller::FdbShow(const std::string& name) {
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  const NetworkConfig* network = FindNetwork(view.desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  json entries = json::array();
  if (network->datapath == topology::Datapath::kUserspace) {
    if (userspace_ == nullptr || !userspace_->Has(name)) return json{{"entries", entries}};
    auto dump = userspace_->FdbEntries(name);
    if (!dump.ok()) return Error{"failed", dump.status().message()};
    return *dump;
  }
  const LinkInfo* bridge = view.state.FindLink(network->bridge);
  if (bridge == nullptr) return json{{"entries", entries}};
  for (const FdbEntry& entry : view.state.fdb) {
    const LinkInfo* port = view.state.FindLink(entry.port_ifindex);
    if (port == nullptr) continue;
    const bool on_bridge =
        port->ifindex == bridge->ifindex || port->master_ifindex == bridge->ifindex;
    if (!on_bridge) continue;
    if (entry.bridge_ifindex != 0 && entry.bridge_ifindex != bridge->ifindex) continue;
    json item = {{"mac", entry.mac.ToString()},
                 {"vlan", entry.vlan == 0 ? json(nullptr) : json(entry.vlan)},
                 {"port", port->name},
                 {"static", entry.is_static},
                 {"local", entry.is_local}};
    if (entry.extern_learn) item["extern_learn"] = true;  // FRR's (an EVPN overlay's remote MAC)
    entries.push_back(item);
  }
  return json{{"entries", entries}};
}

Reply Controller::StpShow(const std::string& name) {
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  const NetworkConfig* network = FindNetwork(view.desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  if (network->datapath == topology::Datapath::kUserspace) {
    if (userspace_ == nullptr) return Error{"unsupported", "this netd runs no userspace switches"};
    auto stp = userspace_->StpJson(*network);
    if (!stp.ok()) return Error{"not_found", stp.status().message()};
    return *stp;
  }
  const LinkInfo* bridge = view.state.FindLink(network->bridge);
  if (bridge == nullptr || !bridge->bridge)
    return Error{"not_found", "bridge " + network->bridge + " of network " + name +
                                  " does not exist on this host"};
  const BridgeStatus& status = *bridge->bridge;
  json stp = {{"enabled", status.settings.stp_enabled},
              {"hello_time", Seconds(status.settings.hello_time_cs)},
              {"forward_delay", Seconds(status.settings.forward_delay_cs)},
              {"max_age", Seconds(status.settings.max_age_cs)},
              {"priority", status.settings.priority},
              {"mode", "stp"},
              {"datapath", "kernel"},
              // The kernel bridge keeps no count of topology changes.
              {"topology_change_count", nullptr},
              {"source", "netlink"}};
  std::string bridge_id = status.bridge_id ? FormatBridgeId(*status.bridge_id) : "";
  std::string root_id = status.root_id ? FormatBridgeId(*status.root_id) : "";
  // The kernel's sysfs view is authoritative where it disagrees with netlink
  // (seen on this kernel: IFLA_BR_ROOT_ID showing the bridge's own id).
  const std::string sysfs_root = kernel_.BridgeRootIdFromSysfs(network->bridge);
  if (!sysfs_root.empty() && sysfs_root != root_id) {
    stp["netlink_root_id"] = root_id;
    root_id = sysfs_root;
    stp["source"] = "sysfs";
  }
  stp["bridge_id"] = bridge_id;
  stp["root_id"] = root_id;
  stp["is_root"] = !root_id.empty() && root_id == bridge_id;
  stp["root_port"] = Optional(status.root_port);
  stp["root_path_cost"] = Optional(status.root_path_cost);
  stp["topology_change"] =
      status.topology_change ? json(*status.topology_change != 0) : json(nullptr);
  json ports = json::array();
  for (const LinkInfo& link : view.state.links) {
    if (link.master_ifindex != bridge->ifindex || !link.brport) continue;
    const BridgePortStatus& port = *link.brport;
    const std::string role = KernelPortRole(status, port);
    ports.push_back(
        {{"name", link.name},
         {"port_id", port.port_id ? json(*port.port_id) : json(nullptr)},
         {"state", StpStateName(port.state)},
         {"role", role},
         {"cost", Optional(port.settings.cost)},
         {"priority", Optional(port.settings.priority)},
         {"designated_root",
          port.designated_root ? json(FormatBridgeId(*port.designated_root)) : json(nullptr)},
         {"designated_bridge",
          port.designated_bridge ? json(FormatBridgeId(*port.designated_bridge)) : json(nullptr)},
         {"designated_port", Optional(port.designated_port)},
         {"designated_cost", Optional(port.designated_cost)},
         {"protocol", "stp"},
         {"edge", false}});
  }
  stp["ports"] = ports;
  return json{{"stp", stp}};
}

Reply Controller::VlanShow(const std::string& name) {
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  const NetworkConfig* network = FindNetwork(view.desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  if (network->datapath == topology::Datapath::kUserspace) {
    if (userspace_ == nullptr) return Error{"unsupported", "this netd runs no userspace switches"};
    return json{{"vlan", userspace_->VlanJson(*network)}};
  }
  json vlan = {{"filtering", network->vlan.filtering},
               {"supported", features_.bridge_vlan_filtering},
               {"default_pvid", network->vlan.default_pvid}};
  if (!features_.bridge_vlan_filtering)
    vlan["reason"] = features_.bridge_vlan_filtering_reason.empty()
                         ? "this kernel has no bridge VLAN filtering"
                         : features_.bridge_vlan_filtering_reason;
  json ports = json::array();
  for (const auto& port : network->ports) {
    const LinkInfo* link = view.state.FindLink(port.name);
    json vlans = json::array();
    if (link != nullptr) {
      for (const PortVlanEntry& entry : view.state.port_vlans)
        if (entry.port_ifindex == link->ifindex)
          vlans.push_back({{"vid", entry.vid}, {"pvid", entry.pvid}, {"untagged", entry.untagged}});
    }
    ports.push_back({{"port", port.name}, {"config", VlanJson(port.vlan)}, {"vlans", vlans}});
  }
  vlan["ports"] = ports;
  return json{{"vlan", vlan}};
}

Reply Controller::PortStats(const std::string& name, const std::string& port) {
  const topology::Topology desired = Desired();
  const NetworkConfig* network = FindNetwork(desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  if (!port.empty() && std::none_of(network->ports.begin(), network->ports.end(),
                                    [&](const topology::PortConfig& p) { return p.name == port; }))
    return Error{"not_found", "no port \"" + port + "\" in network \"" + name + "\""};
  if (network->datapath == topology::Datapath::kUserspace) {
    if (userspace_ == nullptr || !userspace_->Has(name))
      return Error{"not_found", "the switch of network " + name + " is not running"};
    auto stats = userspace_->PortStats(name, port);
    if (!stats.ok()) return Error{"not_found", stats.status().message()};
    return *stats;
  }
  // A kernel bridge's ports: the links' own counters.
  json ports = json::array();
  for (const auto& p : network->ports) {
    if (!port.empty() && p.name != port) continue;
    auto counters = kernel_.ReadLinkCounters(p.name);
    if (!counters.ok()) continue;  // not there (yet): no counters to show
    const LinkCounters& c = *counters;
    json drops = {{"rx_dropped", c.rx_dropped}, {"tx_dropped", c.tx_dropped}};
    ports.push_back({{"network", name},
                     {"port", p.name},
                     {"counters",
                      {{"rx_packets", c.rx_packets},
                       {"rx_bytes", c.rx_bytes},
                       {"tx_packets", c.tx_packets},
                       {"tx_bytes", c.tx_bytes},
                       {"drops", drops},
                       {"drops_total", c.rx_dropped + c.tx_dropped}}}});
  }
  return json{{"ports", ports}};
}

}  // namespace vfabric::netd
