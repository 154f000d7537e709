#include "vfabric/netd/controller.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "config_store.h"
#include "netns_check.h"
#include "vfabric/common/log.h"
#include "vfabric/protocol/protocol.h"
#include "vfabric/vmm/qemu_command.h"
#include "views.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using topology::NetworkConfig;

using protocol::Error;
using protocol::Expected;
using protocol::Reply;
using protocol::StringArg;

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

void Controller::SetConfig(topology::Topology config) {
  config_ = std::move(config);
  applied_names_.clear();  // what apply saved is now just the files' content
}

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
  desired = WithGuestPorts(desired, vhost_user_dir_);
  AddKernelStatics(desired);
  // A kernel bridge's MAC is pinned, by default to one derived from the host
  // and the network: else the kernel takes the lowest port MAC and moves it
  // as ports come and go (bridge_link_plan.h).
  for (NetworkConfig& network : desired.networks)
    if (network.datapath == topology::Datapath::kKernel && !network.mac && !machine_id_.empty())
      network.mac = TreeBridgeAddress(machine_id_, network.name);
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

Result<KernelState> Controller::ReadState(const topology::Topology& desired,
                                          const std::set<std::string>* only,
                                          const std::set<std::string>& also) const {
  auto state = only != nullptr ? ReadKernelState(kernel_, features_, desired, *only, also)
                               : ReadKernelState(kernel_, features_);
  if (state.ok()) state->missing_netns = MissingPeerNetns(desired);
  return state;
}

void Controller::LogWaiting(const topology::Topology& desired, const KernelState& state,
                            const std::set<std::string>* only) {
  std::map<std::string, std::string> now;
  for (const NetworkConfig& network : desired.networks) {
    if (only != nullptr && !only->count(network.name)) {
      // Not looked at this time: as last logged.
      for (const topology::PortConfig& port : network.ports)
        if (auto logged = waiting_.find(port.name); logged != waiting_.end()) now.insert(*logged);
      continue;
    }
    for (const topology::PortConfig& port : network.ports) {
      std::string why = PortLinkWaiting(port, state);
      if (why.empty()) continue;
      auto logged = waiting_.find(port.name);
      if (logged == waiting_.end() || logged->second != why)
        VF_LOG(kWarning) << "network " << network.name << ": port " << port.name
                         << " waits: " << why;
      now.emplace(port.name, std::move(why));
    }
  }
  for (const auto& [port, why] : waiting_)
    if (!now.count(port)) VF_LOG(kInfo) << "port " << port << " no longer waits";
  waiting_ = std::move(now);
}

std::set<std::string> Controller::LinksBefore(
    const std::set<std::string>& scope, const std::map<std::string, NetworkConfig>& applied,
    const topology::Topology& desired,
    const std::map<std::string, topology::VmConfig>* applied_vms) const {
  std::set<std::string> names = Released(desired);
  auto network_names = [&](const NetworkConfig& network) {
    if (!scope.count(network.name)) return;
    if (network.datapath == topology::Datapath::kKernel) names.insert(network.bridge);
    for (const topology::PortConfig& port : network.ports) {
      names.insert(port.name);
      if (port.kind == topology::PortKind::kVeth) names.insert(port.peer);
    }
  };
  for (const NetworkConfig& network : config_.networks) network_names(network);
  for (const auto& [name, network] : applied) network_names(network);
  auto nic_names = [&](const std::vector<topology::NicConfig>& nics) {
    for (const topology::NicConfig& nic : nics)
      if (scope.count(nic.network)) names.insert(nic.port);
  };
  for (const topology::VmConfig& vm : config_.vms) nic_names(vm.nics);
  for (const auto& [name, vm] : applied_vms != nullptr ? *applied_vms : applied_vms_)
    nic_names(vm.nics);
  for (const auto& [vm, nics] : attached_nics_) nic_names(nics);
  return names;
}

Status Controller::ReconcileKernel(const topology::Topology& desired,
                                   std::vector<Operation>* applied,
                                   const std::set<std::string>* only,
                                   const std::set<std::string>& also) {
  auto state = ReadState(desired, only, also);
  if (!state.ok()) return state.status().WithContext("read kernel state");
  LogWaiting(desired, *state, only);
  auto plan = PlanKernel(desired, *state, only);
  if (!plan.ok()) return plan.status();
  Status status = ApplyPlan(kernel_, *plan, applied);
  KernelApplied(desired, status.ok());
  return status;
}

namespace {

// The "existing" ports of kernel networks: links vfabric attaches to a
// bridge but did not create.
std::set<std::string> ExistingKernelPorts(const topology::Topology& desired) {
  std::set<std::string> names;
  for (const NetworkConfig& network : desired.networks) {
    if (network.datapath == topology::Datapath::kUserspace) continue;
    for (const topology::PortConfig& port : network.ports) {
      if (port.kind == topology::PortKind::kExisting) names.insert(port.name);
    }
  }
  return names;
}

}  // namespace

std::set<std::string> Controller::Released(const topology::Topology& desired) const {
  const std::set<std::string> listed = ExistingKernelPorts(desired);
  std::set<std::string> released;
  for (const auto* from : {&listed_existing_, &releasing_}) {
    for (const std::string& name : *from) {
      if (!listed.count(name)) released.insert(name);
    }
  }
  return released;
}

void Controller::KernelApplied(const topology::Topology& desired, bool ok) {
  releasing_ = ok ? std::set<std::string>{} : Released(desired);
  listed_existing_ = ExistingKernelPorts(desired);
}

Result<std::vector<Operation>> Controller::PlanKernel(const topology::Topology& desired,
                                                      const KernelState& state,
                                                      const std::set<std::string>* only) const {
  return Plan(desired, state, AttachedPorts(), Released(desired), only);
}

Status Controller::Reconcile(std::vector<Operation>* applied) {
  // The desired state is built once per pass and read by every step.
  const topology::Topology desired = Desired();
  VF_RETURN_IF_ERROR(ReconcileKernel(desired, applied));
  if (guests_ != nullptr) {
    for (const std::string& error : guests_->Sync(desired)) VF_LOG(kError) << error;
  }
  SyncUserspace(desired);
  return Status::Ok();
}

std::set<std::string> Controller::AttachedPorts() const {
  return userspace_ != nullptr ? userspace_->AttachedPorts() : std::set<std::string>{};
}

std::vector<std::string> Controller::SyncUserspace(const topology::Topology& desired,
                                                   const std::set<std::string>* only) {
  if (userspace_ == nullptr) return {};
  // No userspace network wanted and no switch to stop: nothing to read.
  const bool wanted =
      std::any_of(desired.networks.begin(), desired.networks.end(), [&](const NetworkConfig& n) {
        return n.datapath == topology::Datapath::kUserspace &&
               (only == nullptr || only->count(n.name));
      });
  if (!wanted && userspace_->Plan(desired, nullptr, only).empty()) return {};
  // The switches open their ports on links: the links are all they read of
  // the kernel (a dump of the FDB of 10,000 bridge ports costs the kernel
  // time that grows with ports x entries).
  KernelState state;
  state.features = features_;
  auto links = kernel_.ListLinks();
  if (!links.ok()) {
    std::string error = "userspace networks: read kernel state: " + links.status().message();
    VF_LOG(kError) << error;
    return {error};
  }
  state.links = std::move(links).value();
  state.missing_netns = MissingPeerNetns(desired);
  std::vector<std::string> errors = userspace_->Sync(desired, state, only);
  for (const std::string& error : errors) VF_LOG(kError) << error;
  return errors;
}

std::vector<SwitchChange> Controller::PendingSwitchChanges(const topology::Topology& desired,
                                                           const KernelView* kernel) const {
  return userspace_ != nullptr ? SwitchChanges(userspace_->Plan(desired, kernel))
                               : std::vector<SwitchChange>{};
}

json Controller::Handle(const json& request) {
  json id;
  auto parsed = protocol::ParseRequest(request, &id);
  if (!parsed.ok()) return protocol::MakeAnswer(id, std::move(parsed).error());
  // Library calls that throw (a JSON value of an unexpected type deep in
  // args) stop here, as a bad request: no exception leaves the controller.
  try {
    Reply reply = Dispatch(parsed->verb, parsed->args);
    if (!reply.ok()) return protocol::MakeAnswer(id, reply);
    // The result moved into the answer, not copied (MakeAnswer copies): a
    // port list of 10,000 ports is a tree of 200,000 values.
    json answer = protocol::MakeAnswer(id, json(nullptr));
    answer["result"] = std::move(reply).value();
    return answer;
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
  if (verb == v::kPlan) return HandlePlanOrApply(args, false);
  if (verb == v::kApply) {
    // A refused apply is logged too: the operator's terminal is not the
    // only place to find why a change did not happen.
    Reply reply = HandlePlanOrApply(args, true);
    if (!reply.ok()) VF_LOG(kError) << "apply refused: " << reply.error().message;
    return reply;
  }
  if (verb == v::kNetworkList) return NetworkList();
  if (verb == v::kNetworkDelete) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string name, StringArg(args, "name", true));
    Reply reply = NetworkDelete(name);
    if (!reply.ok()) VF_LOG(kError) << "network delete " << name << ": " << reply.error().message;
    return reply;
  }
  if (verb == v::kStatus) return DaemonStatus();
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
  if (verb == v::kPortShow) return PortShow(args);
  if (verb == v::kLogLevel) return LogLevelVerb(args);
  if (verb == v::kCaptureStart) return CaptureStart(args);
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
  // What the request can change: its networks, and those that its guests'
  // NICs (as they were and as they are asked to be) are ports of. Only
  // these are planned: a change to one network's file among 10,000 ports
  // must not read and plan them all. The other networks converge at the
  // repair, the resync and SIGHUP, which plan everything.
  std::set<std::string> scope;
  for (const NetworkConfig& network : incoming) scope.insert(network.name);
  auto nics_of = [&](const std::vector<topology::NicConfig>& nics) {
    for (const topology::NicConfig& nic : nics) scope.insert(nic.network);
  };
  for (const topology::VmConfig& vm : loaded.topology.vms) {
    nics_of(vm.nics);
    if (auto old = applied_vms_.find(vm.name); old != applied_vms_.end()) nics_of(old->second.nics);
    for (const topology::VmConfig& old : config_.vms)
      if (old.name == vm.name) nics_of(old.nics);
    if (auto extra = attached_nics_.find(vm.name); extra != attached_nics_.end())
      nics_of(extra->second);
  }
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
  // What the request takes away is read too (its links are deleted).
  const std::set<std::string> before = LinksBefore(scope, saved, desired, &restore_vms.vms);
  auto state = ReadState(desired, &scope, before);
  if (!state.ok()) {
    applied_ = std::move(saved);
    return Error{"failed", state.status().message()};
  }
  auto plan = PlanKernel(desired, *state, &scope);
  if (!plan.ok()) {
    applied_ = std::move(saved);
    const bool unsupported = plan.status().message().find("not supported") != std::string::npos;
    return Error{unsupported ? "unsupported" : "failed", plan.status().message()};
  }
  // A veth peer's namespace that is not there would leave the port waiting
  // (a --config file's port waits for it): the operator applying it is
  // told now instead. Only the request's networks: another network's
  // waiting port does not block this apply.
  std::vector<std::string> missing = MissingNetns(incoming);
  for (std::string& m : MissingNetns(*plan))
    if (std::find(missing.begin(), missing.end(), m) == missing.end()) missing.push_back(m);
  if (!missing.empty()) {
    applied_ = std::move(saved);
    std::string message;
    for (const auto& m : missing) message += (message.empty() ? "" : "; ") + m;
    return Error{"invalid", message};
  }
  // One plan for both datapaths: the kernel operations, then the switches'
  // (which open ports on the links the kernel operations make).
  const KernelView view{&*state, CreatedLinks(*plan)};
  const std::vector<SwitchOperation> switch_plan = userspace_ != nullptr
                                                       ? userspace_->Plan(desired, &view, &scope)
                                                       : std::vector<SwitchOperation>{};
  if (!apply) {
    applied_ = std::move(saved);
    json operations = OperationsJson(*plan);
    for (json& change : SwitchChangesJson(SwitchChanges(switch_plan)))
      operations.push_back(std::move(change));
    return json{{"operations", operations}};
  }
  // The files that keep what is applied are written aside before the host
  // is touched: one that cannot be written (a full disk) refuses the apply
  // with nothing done, and one is put in place only once the host took it.
  StagedFiles staged;
  std::map<std::string, std::string> saved_in;  // network -> file
  std::vector<std::string> unsaved;
  if (auto stage = StageApply(incoming, files, staged, &saved_in, &unsaved); !stage.ok()) {
    applied_ = std::move(saved);
    return std::move(stage).error();
  }
  std::vector<Operation> done;
  Status status = ApplyPlan(kernel_, *plan, &done);
  // A failed apply was undone whole: what was listed before still is.
  if (status.ok()) KernelApplied(desired, true);
  if (!status.ok()) {
    applied_ = std::move(saved);
    return Error{"failed", status.message()};
  }
  restore_vms.keep = true;
  for (const auto& op : done) VF_LOG(kInfo) << "apply: " << op.Describe();
  std::vector<std::string> save_errors;
  if (Status committed = staged.Commit(); !committed.ok()) {
    // In effect, but a restart would not bring it back: said, not hidden.
    save_errors.push_back("applied but not saved: " + committed.message() +
                          " (kept in memory until netd stops)");
    VF_LOG(kError) << "apply: " << save_errors.back();
    saved_in.clear();
  } else {
    for (const auto& [network, file] : saved_in)
      VF_LOG(kInfo) << "apply: network " << network << " saved in " << file;
    KeepSaved(saved_in);
  }
  for (const std::string& network : unsaved)
    VF_LOG(kWarning) << "apply: network " << network
                     << " is kept in memory only: netd has no configuration directory to save it "
                        "in (--config names files only)";
  if (guests_ != nullptr) {
    for (const std::string& error : guests_->Sync(desired)) VF_LOG(kError) << error;
  }
  std::vector<std::string> errors;
  std::vector<SwitchChange> switch_done;
  if (userspace_ != nullptr && !switch_plan.empty()) {
    // The kernel read again only when this apply may have changed it (the
    // switches open ports on links it made; guests' QEMUs start above): a
    // whole dump of 10,000 links and their FDB is most of a one-port
    // change's time.
    const bool unchanged = done.empty() && desired.vms.empty();
    auto after =
        unchanged ? Result<KernelState>(std::move(*state)) : ReadState(desired, &scope, before);
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
        for (std::string& error : userspace_->Sync(desired, *after, &scope))
          errors.push_back(error);
    }
  }
  json operations = OperationsJson(done);
  for (json& change : SwitchChangesJson(switch_done)) operations.push_back(std::move(change));
  json result = {{"operations", operations}, {"changed", done.size() + switch_done.size()}};
  errors.insert(errors.end(), save_errors.begin(), save_errors.end());
  if (!errors.empty()) result["errors"] = errors;
  result["saved"] = saved_in;
  if (!unsaved.empty()) result["unsaved"] = unsaved;
  return result;
}

Expected<std::optional<uint16_t>> VlanArg(const json& args) {
  if (!args.contains("vlan") || args["vlan"].is_null()) return std::optional<uint16_t>();
  if (!args["vlan"].is_number_integer() || args["vlan"].get<int64_t>() < 1 ||
      args["vlan"].get<int64_t>() > 4094)
    return Error{"bad_request", "argument \"vlan\" must be a VLAN id 1..4094"};
  return std::optional<uint16_t>(static_cast<uint16_t>(args["vlan"].get<int64_t>()));
}

Reply Controller::FdbVerb(const std::string& verb, const json& args) {
  VF_ASSIGN_OR_RETURN_ERROR(const std::string name, StringArg(args, "network", true));
  const topology::Topology desired = Desired();
  const NetworkConfig* network = FindNetwork(desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  if (network->datapath != topology::Datapath::kUserspace)
    return KernelFdbVerb(verb, *network, args);
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
  // The switch's table before the change: what flush and del removed is
  // what the answer names.
  auto before = userspace_->FdbEntries(name);
  auto removed_entries = [&](auto&& gone) {
    json removed = json::array();
    auto after = userspace_->FdbEntries(name);
    if (!before.ok()) return removed;
    for (const json& e : (*before)["entries"]) {
      if (!gone(e)) continue;
      const bool still =
          after.ok() &&
          std::any_of((*after)["entries"].begin(), (*after)["entries"].end(), [&](const json& a) {
            return a["mac"] == e["mac"] && a["vlan"] == e["vlan"] && a["port"] == e["port"];
          });
      if (!still)
        removed.push_back({{"mac", e["mac"]},
                           {"vlan", e["vlan"]},
                           {"port", e["port"]},
                           {"static", e["static"]},
                           {"local", false}});
    }
    return removed;
  };
  Status status = Status::Ok();
  if (verb == protocol::verb::kFdbFlush) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", false));
    status = userspace_->Flush(name, port, vlan);
    if (!status.ok()) return Error{"not_found", status.message()};
    json removed = removed_entries([&](const json& e) {
      return e["static"] == false && (port.empty() || e["port"] == port) &&
             (!vlan || e["vlan"] == *vlan);
    });
    VF_LOG(kInfo) << "network " << name << ": " << removed.size()
                  << " learned FDB entries flushed on request"
                  << (port.empty() ? "" : " (port " + port + ")")
                  << (vlan ? " (vlan " + std::to_string(*vlan) + ")" : "");
    return json{
        {"network", name}, {"flushed", true}, {"count", removed.size()}, {"removed", removed}};
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
    // An entry that is not there carries no errno; a refusal (the topology's
    // entry) or a deletion not saved (the run directory full) does.
    if (!status.ok())
      return Error{status.error_number() == 0 ? "not_found" : "failed", status.message()};
    json removed = removed_entries([&](const json& e) {
      return e["static"] == true && e["mac"] == mac->ToString() && (!vlan || e["vlan"] == *vlan);
    });
    VF_LOG(kInfo) << "network " << name << ": static FDB " << mac->ToString()
                  << " deleted on request";
    return json{{"network", name}, {"count", removed.size()}, {"removed", removed}};
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
  VF_ASSIGN_OR_RETURN_ERROR(const std::string backend_name, StringArg(args, "backend", false));
  if (!backend_name.empty() && backend_name != "tap" && backend_name != "vhost-user")
    return Error{"bad_request", "argument \"backend\" must be \"tap\" or \"vhost-user\", got \"" +
                                    backend_name + "\""};
  const bool vhost_user = backend_name == "vhost-user";
  if (vhost_user && network->datapath != topology::Datapath::kUserspace)
    return Error{"unsupported", "network " + network_name +
                                    " is a kernel bridge; a vhost-user NIC needs a network with "
                                    "\"datapath\": \"userspace\""};
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
  attached_nics_[vm].push_back(
      {network_name,
       mac,
       port,
       {},
       vhost_user ? topology::NicBackend::kVhostUser : topology::NicBackend::kTap});
  if (vlan) port_vlans_[port] = vlan;
  // The NIC is a port of its network alone: only that network is planned.
  const std::set<std::string> scope{network_name};
  auto undo = [&] {
    attached_nics_[vm].pop_back();
    port_vlans_.erase(port);
    const topology::Topology without = Desired();
    Status status = ReconcileKernel(without, nullptr, &scope, {port});
    if (!status.ok()) VF_LOG(kError) << "attach " << vm << ": undo: " << status.message();
    if (vhost_user) SyncUserspace(without, &scope);
  };
  const topology::Topology with_nic = Desired();
  Status made = ReconcileKernel(with_nic, nullptr, &scope);
  if (!made.ok()) {
    undo();
    return Error{"failed", "attach " + vm + " to " + network_name + ": " + made.message()};
  }
  std::string socket;
  if (vhost_user) {
    // The switch's port listens before QEMU is told to connect: QEMU's
    // netdev_add waits for the connection (and the backend's answers).
    SyncUserspace(with_nic, &scope);
    socket = GuestNicSocket(with_nic, attached_nics_[vm].back());
    if (socket.empty() || userspace_ == nullptr ||
        userspace_->VhostUserState(network_name, port).is_null()) {
      undo();
      return Error{"failed", "attach " + vm + " to " + network_name + ": the vhost-user port " +
                                 port + " did not open (see netd's log)"};
    }
  }
  auto nic = guests_->Attach(vm, with_nic, attached_nics_[vm].back(), vlan);
  if (!nic.ok()) {
    undo();
    return Error{"failed", nic.status().message()};
  }
  SyncUserspace(with_nic, &scope);
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
  const topology::Topology without_nic = Desired();
  const std::set<std::string> scope{nic->network};  // its port's network alone
  Status removed = ReconcileKernel(without_nic, nullptr, &scope, {nic->port});
  if (!removed.ok()) VF_LOG(kError) << "detach " << vm << ": " << removed.message();
  SyncUserspace(without_nic, &scope);
  VF_LOG(kInfo) << "vm " << vm << ": detached " << nic->id << " (" << nic->port << ")";
  return json{{"vm", *guests_->Get(vm)}};
}

}  // namespace vfabric::netd
