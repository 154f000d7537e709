#include "vfabric/netd/controller.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "vfabric/common/log.h"
#include "vfabric/protocol/protocol.h"
#include "vfabric/vmm/qemu_command.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using topology::NetworkConfig;

using protocol::Error;
using protocol::Expected;
using protocol::Reply;
using protocol::StringArg;

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

json Seconds(uint64_t centiseconds) {
  if (centiseconds % 100 == 0) return centiseconds / 100;
  return static_cast<double>(centiseconds) / 100.0;
}

json Optional(const auto& value) {
  if (!value) return nullptr;
  return *value;
}

json DiagnosticsJson(const std::vector<topology::Diagnostic>& diagnostics) {
  json list = json::array();
  for (const auto& d : diagnostics) {
    list.push_back({{"file", d.where.file},
                    {"line", d.where.line},
                    {"column", d.where.column},
                    {"pointer", d.where.pointer},
                    {"message", d.message}});
  }
  return list;
}

json OperationsJson(const std::vector<Operation>& operations) {
  json list = json::array();
  for (const auto& op : operations) {
    list.push_back({{"op", std::string(op.KindName())},
                    {"network", op.network},
                    {"object", op.object},
                    {"description", op.Describe()}});
  }
  return list;
}

// Switch changes in the shape of OperationsJson's items.
json SwitchChangesJson(const std::vector<SwitchChange>& changes) {
  json list = json::array();
  for (const auto& change : changes) {
    list.push_back({{"op", change.kind},
                    {"network", change.network},
                    {"object", change.object},
                    {"description", change.description}});
  }
  return list;
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

std::string ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

}  // namespace

std::vector<std::string> CheckNamesAcrossNetworks(const topology::Topology& topology) {
  std::map<std::string, std::string> users;  // interface name -> "port of network lab"
  std::vector<std::string> errors;
  auto claim = [&](const std::string& name, const std::string& user) {
    if (name.empty()) return;
    auto [it, inserted] = users.emplace(name, user);
    if (!inserted)
      errors.push_back("interface name " + name + " is used twice: as " + it->second + " and as " +
                       user);
  };
  for (const NetworkConfig& network : topology.networks) {
    claim(network.bridge, "the bridge of network " + network.name);
    for (const auto& port : network.ports) {
      claim(port.name, "a port of network " + network.name);
      if (port.kind == topology::PortKind::kVeth)
        claim(port.peer, "a veth peer in network " + network.name);
    }
  }
  return errors;
}

Controller::Controller(Kernel& kernel, KernelFeatures features)
    : kernel_(kernel), features_(std::move(features)) {}

void Controller::SetConfig(topology::Topology config) { config_ = std::move(config); }

void Controller::SetGuests(GuestManager* guests) {
  guests_ = guests;
  // Ports of adopted guests' hot-attached NICs go back on the VLAN that
  // `attach --vlan` gave them before the restart.
  if (guests_ != nullptr)
    for (const auto& [port, vid] : guests_->RunningPortVlans()) port_vlans_.emplace(port, vid);
}

topology::Topology Controller::Desired() const {
  topology::Topology desired = config_;
  for (const auto& [name, network] : applied_) {
    bool replaced = false;
    for (auto& existing : desired.networks) {
      if (existing.name == name) {
        existing = network;
        replaced = true;
      }
    }
    if (!replaced) desired.networks.push_back(network);
  }
  for (const auto& [vm_name, vm] : applied_vms_) {
    // (clang 14 cannot capture a structured binding in a lambda.)
    const std::string& name = vm_name;
    auto it = std::find_if(desired.vms.begin(), desired.vms.end(),
                           [&](const topology::VmConfig& v) { return v.name == name; });
    if (it == desired.vms.end())
      desired.vms.push_back(vm);
    else
      *it = vm;
  }
  for (topology::VmConfig& vm : desired.vms) {
    if (auto gone = detached_ports_.find(vm.name); gone != detached_ports_.end())
      std::erase_if(vm.nics,
                    [&](const topology::NicConfig& n) { return gone->second.count(n.port); });
    if (auto extra = attached_nics_.find(vm.name); extra != attached_nics_.end())
      vm.nics.insert(vm.nics.end(), extra->second.begin(), extra->second.end());
  }
  desired = WithGuestPorts(desired);
  for (NetworkConfig& network : desired.networks) {
    for (auto& port : network.ports) {
      auto vlan = port_vlans_.find(port.name);
      if (vlan == port_vlans_.end()) continue;
      port.vlan.mode = topology::VlanMode::kAccess;
      port.vlan.pvid = vlan->second;
    }
  }
  return desired;
}

Status Controller::ReconcileKernel(std::vector<Operation>* applied) {
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) return state.status().WithContext("read kernel state");
  auto plan = Plan(Desired(), *state, AttachedPorts());
  if (!plan.ok()) return plan.status();
  return ApplyPlan(kernel_, *plan, applied);
}

Status Controller::Reconcile(std::vector<Operation>* applied) {
  VF_RETURN_IF_ERROR(ReconcileKernel(applied));
  if (guests_ != nullptr) {
    for (const std::string& error : guests_->Sync(Desired())) VF_LOG(kError) << error;
  }
  SyncUserspace();
  return Status::Ok();
}

std::set<std::string> Controller::AttachedPorts() const {
  return userspace_ != nullptr ? userspace_->AttachedPorts() : std::set<std::string>{};
}

std::vector<std::string> Controller::SyncUserspace() {
  if (userspace_ == nullptr) return {};
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) {
    std::string error = "userspace networks: read kernel state: " + state.status().message();
    VF_LOG(kError) << error;
    return {error};
  }
  std::vector<std::string> errors = userspace_->Sync(Desired(), *state);
  for (const std::string& error : errors) VF_LOG(kError) << error;
  return errors;
}

std::vector<SwitchChange> Controller::PendingSwitchChanges(
    const topology::Topology& desired) const {
  return userspace_ != nullptr ? userspace_->Pending(desired) : std::vector<SwitchChange>{};
}

bool Controller::IsUserspace(const std::string& name) const {
  const topology::Topology desired = Desired();
  for (const auto& network : desired.networks)
    if (network.name == name) return network.datapath == topology::Datapath::kUserspace;
  return false;
}

json Controller::Handle(const json& request) {
  json id;
  auto parsed = protocol::ParseRequest(request, &id);
  if (!parsed.ok()) return protocol::MakeAnswer(id, std::move(parsed).error());
  // Library calls that throw (a JSON value of an unexpected type deep in
  // args) stop here, as a bad request: no exception leaves the controller.
  try {
    return protocol::MakeAnswer(id, Dispatch(parsed->verb, parsed->args));
  } catch (const json::exception& error) {
    return protocol::MakeAnswer(id, Error{"bad_request", error.what()});
  }
}

Reply Controller::Dispatch(const std::string& verb, const json& args) {
  namespace v = protocol::verb;
  if (verb == v::kHello)
    return json{{"server", "netd"},
                {"version", std::string(protocol::ProjectVersion())},
                {"protocol", protocol::kVersion}};
  if (verb == v::kPlan || verb == v::kApply) return HandlePlanOrApply(args, verb == v::kApply);
  if (verb == v::kNetworkList) return NetworkList();
  if (verb == v::kNetworkShow) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string name, StringArg(args, "name", true));
    return NetworkShow(name);
  }
  if (verb == v::kPortList) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string network, StringArg(args, "network", false));
    return PortList(network);
  }
  if (verb == v::kFdbShow || verb == v::kStpShow || verb == v::kVlanShow) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string network, StringArg(args, "network", true));
    if (verb == v::kFdbShow) return FdbShow(network);
    if (verb == v::kStpShow) return StpShow(network);
    return VlanShow(network);
  }
  if (verb == v::kPortStats) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string network, StringArg(args, "network", true));
    VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", false));
    return PortStats(network, port);
  }
  if (verb == v::kFdbAdd || verb == v::kFdbDel || verb == v::kFdbFlush) return FdbVerb(verb, args);
  // Every vm.* verb: without guests they are all "unsupported".
  if (verb.rfind("vm.", 0) == 0 || verb == v::kAttach || verb == v::kDetach)
    return VmVerb(verb, args);
  return Error{"unknown_verb", "unknown verb \"" + verb + "\""};
}

Reply Controller::HandlePlanOrApply(const json& args, bool apply) {
  if (!args.contains("files") || !args["files"].is_array() || args["files"].empty())
    return Error{"bad_request", "missing \"files\": [{\"name\", \"text\"}, ...]"};
  std::vector<topology::SourceFile> files;
  for (const json& file : args["files"]) {
    if (!file.is_object() || !file.contains("text") || !file["text"].is_string())
      return Error{"bad_request", "each file needs a string \"text\""};
    files.push_back(
        {file.value("name", std::string("<request>")), file["text"].get<std::string>()});
  }
  topology::LoadResult loaded = topology::ParseTopologyFiles(files);
  if (!loaded.ok()) {
    const size_t count = loaded.errors.size();
    return Error{"invalid",
                 std::to_string(count) + " error" + (count == 1 ? "" : "s") + " in the topology",
                 {{"diagnostics", DiagnosticsJson(loaded.errors)}}};
  }
  std::vector<NetworkConfig>& incoming = loaded.topology.networks;
  std::map<std::string, NetworkConfig> next = applied_;
  for (auto& network : incoming) next[network.name] = network;
  std::map<std::string, NetworkConfig> saved = std::exchange(applied_, next);
  std::map<std::string, topology::VmConfig> saved_vms = applied_vms_;
  for (auto& vm : loaded.topology.vms) applied_vms_[vm.name] = vm;
  struct Restore {
    Controller* self;
    std::map<std::string, topology::VmConfig> vms;
    bool keep = false;
    ~Restore() {
      if (!keep) self->applied_vms_ = std::move(vms);
    }
  } restore_vms{this, std::move(saved_vms)};
  topology::Topology desired = Desired();
  std::vector<std::string> clashes = CheckNamesAcrossNetworks(desired);
  if (!clashes.empty()) {
    applied_ = std::move(saved);
    std::string message;
    for (const auto& c : clashes) message += (message.empty() ? "" : "; ") + c;
    return Error{"invalid", message};
  }
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) {
    applied_ = std::move(saved);
    return Error{"failed", state.status().message()};
  }
  auto plan = Plan(desired, *state, AttachedPorts());
  if (!plan.ok()) {
    applied_ = std::move(saved);
    const bool unsupported = plan.status().message().find("not supported") != std::string::npos;
    return Error{unsupported ? "unsupported" : "failed", plan.status().message()};
  }
  // One plan for both datapaths: the kernel operations, then the switches'
  // (which open ports on the links the kernel operations make).
  const KernelView view{&*state, CreatedLinks(*plan)};
  const std::vector<SwitchOperation> switch_plan =
      userspace_ != nullptr ? userspace_->Plan(desired, &view) : std::vector<SwitchOperation>{};
  if (!apply) {
    applied_ = std::move(saved);
    json operations = OperationsJson(*plan);
    for (json& change : SwitchChangesJson(SwitchChanges(switch_plan)))
      operations.push_back(std::move(change));
    return json{{"operations", operations}};
  }
  std::vector<Operation> done;
  Status status = ApplyPlan(kernel_, *plan, &done);
  if (!status.ok()) {
    applied_ = std::move(saved);
    return Error{"failed", status.message()};
  }
  restore_vms.keep = true;
  for (const auto& op : done) VF_LOG(kInfo) << "apply: " << op.Describe();
  if (guests_ != nullptr) {
    for (const std::string& error : guests_->Sync(Desired())) VF_LOG(kError) << error;
  }
  std::vector<std::string> errors;
  std::vector<SwitchChange> switch_done;
  if (userspace_ != nullptr) {
    auto after = ReadKernelState(kernel_, features_);
    if (!after.ok()) {
      errors.push_back("userspace networks: read kernel state: " + after.status().message());
      VF_LOG(kError) << errors.back();
    } else {
      SwitchApplyResult result = userspace_->Apply(switch_plan, *after);
      errors = std::move(result.errors);
      switch_done = SwitchChanges(result.applied);
      // A switch that restarted (limits that would not change in place)
      // converges in a second pass.
      if (result.replan)
        for (std::string& error : userspace_->Sync(Desired(), *after)) errors.push_back(error);
    }
  }
  json operations = OperationsJson(done);
  for (json& change : SwitchChangesJson(switch_done)) operations.push_back(std::move(change));
  json result = {{"operations", operations}, {"changed", done.size() + switch_done.size()}};
  if (!errors.empty()) result["errors"] = errors;
  return result;
}

namespace {

const NetworkConfig* FindNetwork(const topology::Topology& topology, const std::string& name) {
  for (const auto& network : topology.networks)
    if (network.name == name) return &network;
  return nullptr;
}

json PortJson(const NetworkConfig& network, const topology::PortConfig& port,
              const KernelState& state) {
  json out = {{"network", network.name},
              {"name", port.name},
              {"kind", std::string(ToString(port.kind))},
              {"vlan", VlanJson(port.vlan)}};
  const LinkInfo* link = state.FindLink(port.name);
  out["present"] = link != nullptr;
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

}  // namespace

Expected<Controller::View> Controller::MakeView() const {
  View view;
  view.desired = Desired();
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) return Error{"failed", state.status().message()};
  view.state = std::move(state).value();
  auto plan = Plan(view.desired, view.state, AttachedPorts());
  if (plan.ok()) {
    for (const auto& op : *plan) ++view.drift[op.network];
  } else {
    view.plan_error = plan.status().message();
  }
  for (const auto& change : PendingSwitchChanges(view.desired)) ++view.drift[change.network];
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
        if (link && link->oper_up && running &&
            !userspace_->PortExtra(network.name, port.name)["switch_port"].is_null())
          ++up;
      } else if (link && link->oper_up && bridge && link->master_ifindex == bridge->ifindex) {
        ++up;
      }
    }
    std::string state = "ok";
    if (userspace ? !running : bridge == nullptr)
      state = "missing";
    else if (view.drift.count(network.name) || !view.plan_error.empty())
      state = "drifted";
    list.push_back({{"name", network.name},
                    {"datapath", std::string(ToString(network.datapath))},
                    // A userspace network has no Linux bridge (its switch is netd's).
                    {"bridge", userspace ? json(nullptr) : json(network.bridge)},
                    {"state", state},
                    {"ports", network.ports.size()},
                    {"ports_up", up},
                    {"stp", network.stp.enabled}});
  }
  return json{{"networks", list}};
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
  for (const auto& port : network->ports) {
    json item = PortJson(*network, port, view.state);
    if (userspace && userspace_ != nullptr) item.update(userspace_->PortExtra(name, port.name));
    ports.push_back(std::move(item));
  }
  summary["ports"] = ports;
  VF_ASSIGN_OR_RETURN_ERROR(const json fdb, FdbShow(name));
  json statics = json::array();
  for (const json& entry : fdb["entries"])
    if (entry["static"] == true && entry["local"] == false) statics.push_back(entry);
  summary["static_fdb"] = std::move(statics);
  json pending = json::array();
  if (view.plan_error.empty()) {
    auto plan = Plan(view.desired, view.state, AttachedPorts());
    if (plan.ok())
      for (const auto& op : *plan)
        if (op.network == name) pending.push_back(op.Describe());
  } else {
    summary["error"] = view.plan_error;
  }
  for (const auto& change : PendingSwitchChanges(view.desired))
    if (change.network == name) pending.push_back(change.description);
  summary["pending"] = pending;
  return json{{"network", summary}};
}

Reply Controller::PortList(const std::string& network_name) {
  VF_ASSIGN_OR_RETURN_ERROR(const View view, MakeView());
  if (!network_name.empty() && FindNetwork(view.desired, network_name) == nullptr)
    return Error{"not_found", "no network named \"" + network_name + "\""};
  json ports = json::array();
  for (const NetworkConfig& network : view.desired.networks) {
    if (!network_name.empty() && network.name != network_name) continue;
    const bool userspace =
        network.datapath == topology::Datapath::kUserspace && userspace_ != nullptr;
    for (const auto& port : network.ports) {
      json item = PortJson(network, port, view.state);
      if (userspace) item.update(userspace_->PortExtra(network.name, port.name));
      ports.push_back(std::move(item));
    }
  }
  return json{{"ports", ports}};
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
  const std::string sysfs = "/sys/class/net/" + network->bridge + "/bridge/";
  const std::string sysfs_root = ReadSysfs(sysfs + "root_id");
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
    std::string role = "disabled";
    if (!status.settings.stp_enabled)
      role = port.state == 0 ? "disabled" : "designated";
    else if (port.state == 0)
      role = "disabled";
    else if (status.root_port && port.port_no && *status.root_port == *port.port_no)
      role = "root";
    else if (port.state == 4)
      role = "alternate";
    else
      role = "designated";
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

namespace {

Expected<std::optional<uint16_t>> VlanArg(const json& args) {
  if (!args.contains("vlan") || args["vlan"].is_null()) return std::optional<uint16_t>();
  if (!args["vlan"].is_number_integer() || args["vlan"].get<int64_t>() < 1 ||
      args["vlan"].get<int64_t>() > 4094)
    return Error{"bad_request", "argument \"vlan\" must be a VLAN id 1..4094"};
  return std::optional<uint16_t>(static_cast<uint16_t>(args["vlan"].get<int64_t>()));
}

uint64_t ReadCounter(const std::string& link, const char* name) {
  const std::string text = ReadSysfs("/sys/class/net/" + link + "/statistics/" + name);
  return text.empty() ? 0 : std::strtoull(text.c_str(), nullptr, 10);
}

}  // namespace

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
    if (access(("/sys/class/net/" + p.name).c_str(), F_OK) != 0) continue;
    json drops = {{"rx_dropped", ReadCounter(p.name, "rx_dropped")},
                  {"tx_dropped", ReadCounter(p.name, "tx_dropped")}};
    ports.push_back({{"network", name},
                     {"port", p.name},
                     {"counters",
                      {{"rx_packets", ReadCounter(p.name, "rx_packets")},
                       {"rx_bytes", ReadCounter(p.name, "rx_bytes")},
                       {"tx_packets", ReadCounter(p.name, "tx_packets")},
                       {"tx_bytes", ReadCounter(p.name, "tx_bytes")},
                       {"drops", drops},
                       {"drops_total", drops["rx_dropped"].get<uint64_t>() +
                                           drops["tx_dropped"].get<uint64_t>()}}}});
  }
  return json{{"ports", ports}};
}

Reply Controller::FdbVerb(const std::string& verb, const json& args) {
  VF_ASSIGN_OR_RETURN_ERROR(const std::string name, StringArg(args, "network", true));
  const topology::Topology desired = Desired();
  const NetworkConfig* network = FindNetwork(desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  if (network->datapath != topology::Datapath::kUserspace)
    return Error{"unsupported", verb + " is not supported on kernel networks yet (network " + name +
                                    "); use \"fdb.static\" in the topology"};
  VF_ASSIGN_OR_RETURN_ERROR(const std::optional<uint16_t> vlan, VlanArg(args));
  std::optional<MacAddress> mac;
  if (verb != protocol::verb::kFdbFlush) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string text, StringArg(args, "mac", true));
    mac = MacAddress::Parse(text);
    if (!mac || mac->IsMulticast() || mac->IsZero())
      return Error{"bad_request", "argument \"mac\" must be a unicast MAC address"};
  }
  if (userspace_ == nullptr || !userspace_->Has(name))
    return Error{"not_found", "the switch of network " + name + " is not running"};
  Status status = Status::Ok();
  if (verb == protocol::verb::kFdbFlush) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", false));
    status = userspace_->Flush(name, port, vlan);
    if (!status.ok()) return Error{"not_found", status.message()};
    VF_LOG(kInfo) << "network " << name << ": FDB flushed on request"
                  << (port.empty() ? "" : " (port " + port + ")")
                  << (vlan ? " (vlan " + std::to_string(*vlan) + ")" : "");
    return json{{"network", name}, {"flushed", true}};
  }
  if (verb == protocol::verb::kFdbAdd) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", true));
    if (std::none_of(network->ports.begin(), network->ports.end(),
                     [&](const topology::PortConfig& p) { return p.name == port; }))
      return Error{"not_found", "no port \"" + port + "\" in network \"" + name + "\""};
    status = userspace_->AddStatic(*network, *mac, port, vlan);
    if (!status.ok()) return Error{"failed", status.message()};
    VF_LOG(kInfo) << "network " << name << ": static FDB " << mac->ToString() << " -> " << port
                  << " added on request";
  } else {
    status = userspace_->DeleteStatic(*network, *mac, vlan);
    if (!status.ok()) return Error{"not_found", status.message()};
    VF_LOG(kInfo) << "network " << name << ": static FDB " << mac->ToString()
                  << " deleted on request";
  }
  json entries = json::array();
  auto dump = userspace_->FdbEntries(name);
  if (dump.ok())
    for (const json& e : (*dump)["entries"])
      if (e["mac"] == mac->ToString()) entries.push_back(e);
  return json{{"network", name}, {"entries", entries}};
}

Reply Controller::VmVerb(const std::string& verb, const json& args) {
  if (guests_ == nullptr) return Error{"unsupported", "this netd runs no guests"};
  if (verb == protocol::verb::kAttach) return Attach(args);
  if (verb == protocol::verb::kDetach) return Detach(args);
  if (verb == protocol::verb::kVmList) return json{{"vms", guests_->List()}};
  VF_ASSIGN_OR_RETURN_ERROR(const std::string name, StringArg(args, "name", true));
  if (!guests_->Has(name)) return Error{"not_found", "no vm named \"" + name + "\""};
  if (verb == protocol::verb::kVmStart || verb == protocol::verb::kVmStop) {
    Status status = verb == protocol::verb::kVmStart ? guests_->Start(name) : guests_->Stop(name);
    if (!status.ok()) return Error{"failed", status.message()};
    VF_LOG(kInfo) << "vm " << name << ": "
                  << (verb == protocol::verb::kVmStart ? "started" : "stopping") << " on request";
    return json{{"vm", *guests_->Get(name)}};
  }
  if (verb == protocol::verb::kVmConsoleLog) {
    int64_t bytes = 65536;
    if (args.contains("bytes")) {
      if (!args["bytes"].is_number_integer() || args["bytes"].get<int64_t>() <= 0)
        return Error{"bad_request", "argument \"bytes\" must be a positive integer"};
      bytes = std::min<int64_t>(args["bytes"].get<int64_t>(), 16 << 20);
    }
    auto log = guests_->ConsoleLog(name, static_cast<size_t>(bytes));
    if (!log.ok()) return Error{"failed", log.status().message()};
    return *log;
  }
  return Error{"unknown_verb", "unknown verb \"" + verb + "\""};
}

Reply Controller::Attach(const json& args) {
  VF_ASSIGN_OR_RETURN_ERROR(const std::string vm, StringArg(args, "vm", true));
  VF_ASSIGN_OR_RETURN_ERROR(const std::string network_name, StringArg(args, "network", true));
  if (!guests_->Has(vm)) return Error{"not_found", "no vm named \"" + vm + "\""};
  const topology::Topology desired = Desired();
  const NetworkConfig* network = FindNetwork(desired, network_name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + network_name + "\""};
  uint16_t vlan = 0;
  if (args.contains("vlan") && !args["vlan"].is_null()) {
    if (!args["vlan"].is_number_integer() || args["vlan"].get<int64_t>() < 1 ||
        args["vlan"].get<int64_t>() > 4094)
      return Error{"bad_request", "argument \"vlan\" must be a VLAN id 1..4094"};
    vlan = static_cast<uint16_t>(args["vlan"].get<int64_t>());
    if (network->datapath == topology::Datapath::kKernel && !network->vlan.filtering)
      return Error{"unsupported", "network " + network_name +
                                      " does not filter VLANs; --vlan needs a network "
                                      "with \"vlan\": {\"filtering\": true}"};
  }
  // The NIC's index and port: the first "<vm>-eth<N>" nothing uses yet.
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) return Error{"failed", state.status().message()};
  std::set<std::string> used;
  for (const auto& n : desired.networks)
    for (const auto& p : n.ports) used.insert(p.name);
  for (const auto& nic : guests_->Nics(vm)) used.insert(nic.port);
  size_t index = 0;
  std::string port;
  for (;; ++index) {
    port = vmm::DefaultNicPort(vm, index);
    if (!used.count(port) && state->FindLink(port) == nullptr) break;
  }
  if (port.size() > 15)
    return Error{"failed",
                 "vm " + vm + ": the next NIC's port name " + port + " is longer than 15 bytes"};
  MacAddress mac = vmm::DefaultNicMac(vm, index);
  if (args.contains("mac") && !args["mac"].is_null()) {
    auto parsed =
        args["mac"].is_string() ? MacAddress::Parse(args["mac"].get<std::string>()) : std::nullopt;
    if (!parsed || parsed->IsMulticast() || parsed->IsZero())
      return Error{"bad_request", "argument \"mac\" must be a unicast MAC address"};
    mac = *parsed;
  }
  attached_nics_[vm].push_back({network_name, mac, port, {}});
  if (vlan) port_vlans_[port] = vlan;
  auto undo = [&] {
    attached_nics_[vm].pop_back();
    port_vlans_.erase(port);
    Status status = ReconcileKernel(nullptr);
    if (!status.ok()) VF_LOG(kError) << "attach " << vm << ": undo: " << status.message();
  };
  Status made = ReconcileKernel(nullptr);
  if (!made.ok()) {
    undo();
    return Error{"failed", "attach " + vm + " to " + network_name + ": " + made.message()};
  }
  auto nic = guests_->Attach(vm, network_name, port, mac, vlan);
  if (!nic.ok()) {
    undo();
    return Error{"failed", nic.status().message()};
  }
  SyncUserspace();
  VF_LOG(kInfo) << "vm " << vm << ": attached " << nic->id << " (" << port << ", " << mac.ToString()
                << ") to network " << network_name;
  return json{{"vm", *guests_->Get(vm)},
              {"nic",
               {{"id", nic->id},
                {"network", nic->network},
                {"port", nic->port},
                {"mac", nic->mac.ToString()}}}};
}

Reply Controller::Detach(const json& args) {
  VF_ASSIGN_OR_RETURN_ERROR(const std::string vm, StringArg(args, "vm", true));
  VF_ASSIGN_OR_RETURN_ERROR(const std::string nic_name, StringArg(args, "nic", true));
  if (!guests_->Has(vm)) return Error{"not_found", "no vm named \"" + vm + "\""};
  auto nic = guests_->Detach(vm, nic_name);
  if (!nic.ok()) return Error{"failed", nic.status().message()};
  auto& extra = attached_nics_[vm];
  const auto before = extra.size();
  std::erase_if(extra, [&](const topology::NicConfig& n) { return n.port == nic->port; });
  if (extra.size() == before) detached_ports_[vm].insert(nic->port);
  port_vlans_.erase(nic->port);
  Status removed = ReconcileKernel(nullptr);
  if (!removed.ok()) VF_LOG(kError) << "detach " << vm << ": " << removed.message();
  SyncUserspace();
  VF_LOG(kInfo) << "vm " << vm << ": detached " << nic->id << " (" << nic->port << ")";
  return json{{"vm", *guests_->Get(vm)}};
}

}  // namespace vfabric::netd
