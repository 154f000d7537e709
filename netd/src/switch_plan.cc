#include "vfabric/netd/switch_plan.h"

#include <algorithm>

#include "mirror_plan.h"

namespace vfabric::netd {
namespace {

using Kind = SwitchOperation::Kind;

bool SameVlan(const bridge::PortVlanConfig& a, const bridge::PortVlanConfig& b) {
  return a.mode == b.mode && a.pvid == b.pvid && a.native == b.native && a.allowed == b.allowed;
}

bool SameStp(const topology::StpConfig& a, const topology::StpConfig& b) {
  return a.enabled == b.enabled && a.mode == b.mode && a.priority == b.priority &&
         a.hello_time == b.hello_time && a.forward_delay == b.forward_delay &&
         a.max_age == b.max_age;
}

bool SameTreeSettings(const bridge::TreePortSettings& a, const bridge::TreePortSettings& b) {
  return a.path_cost == b.path_cost && a.priority == b.priority && a.admin_edge == b.admin_edge &&
         a.bpdu_guard == b.bpdu_guard && a.root_block == b.root_block;
}

std::string LimitText(size_t limit) { return limit == 0 ? "unlimited" : std::to_string(limit); }

std::string TreeSettingsText(const bridge::TreePortSettings& s) {
  std::string text = "cost " +
                     (s.path_cost == 0 ? std::string("auto") : std::to_string(s.path_cost)) +
                     ", priority " + std::to_string(s.priority);
  if (s.admin_edge) text += ", edge";
  if (s.bpdu_guard) text += ", bpdu_guard";
  if (s.root_block) text += ", root_block";
  return text;
}

std::string StpText(const topology::StpConfig& stp) {
  return std::string(topology::ToString(stp.mode)) + ", priority " + std::to_string(stp.priority) +
         ", hello " + std::to_string(stp.hello_time) + " s, forward delay " +
         std::to_string(stp.forward_delay) + " s, max age " + std::to_string(stp.max_age) + " s";
}

std::string EntryText(const StaticKey& key, const std::string& port) {
  return key.second.ToString() + " VLAN " + std::to_string(key.first) + " (port " + port + ")";
}

uint64_t Seconds(uint64_t ns) { return ns / 1'000'000'000; }

constexpr const char* kGone = "no link of its name exists; it is attached when one appears";

// Plans one userspace network (see PlanSwitches).
class NetworkPlanner {
 public:
  NetworkPlanner(const topology::NetworkConfig& config, const ObservedSwitch* observed,
                 const std::set<std::string>& guest_ports, const PortBackends& backends,
                 const KernelView* kernel, std::vector<SwitchOperation>& out)
      : config_(config),
        observed_(observed != nullptr && observed->running ? observed : nullptr),
        kept_(observed),
        guest_ports_(guest_ports),
        backends_(backends),
        kernel_(kernel),
        out_(out) {}

  void Run() {
    PlanSwitch();
    PlanPorts();
    PlanTree();
    PlanStatics();
    PlanMirrors();
  }

 private:
  SwitchOperation& Add(Kind kind, const std::string& object) {
    SwitchOperation& op = out_.emplace_back();
    op.kind = kind;
    op.network = config_.name;
    op.object = object;
    return op;
  }

  void PlanSwitch() {
    const bridge::FdbSettings want = SwitchFdbConfig(config_);
    if (observed_ == nullptr) {
      Add(Kind::kStartSwitch, config_.name).fdb = want;
      return;
    }
    bridge::FdbSettings have;
    have.max_entries = observed_->max_entries;
    have.max_per_port = observed_->max_per_port;
    have.ageing_time_ns = observed_->ageing_time_ns;
    if (have.max_entries != want.max_entries || have.max_per_port != want.max_per_port) {
      SwitchOperation& op = Add(Kind::kSetFdbLimits, config_.name);
      op.fdb = want;
      op.old_fdb = have;
    }
    if (have.ageing_time_ns != want.ageing_time_ns) {
      SwitchOperation& op = Add(Kind::kSetFdbAgeing, config_.name);
      op.fdb = want;
      op.old_fdb = have;
    }
  }

  // Why an "existing" port waits, with a kernel view: its link is not there
  // (kGone), or the operator set it down. "" when it does not wait.
  std::string Waiting(const topology::PortConfig& port) const {
    if (kernel_ == nullptr || kernel_->state == nullptr) return "";
    // A veth whose peer's namespace is not there is not made (planner.h).
    if (port.kind == topology::PortKind::kVeth) return PortLinkWaiting(port, *kernel_->state);
    if (port.kind != topology::PortKind::kExisting) return "";
    const LinkInfo* link = kernel_->state->FindLink(port.name);
    if (link == nullptr) return kGone;
    if (!link->admin_up)
      return "its link is down (an existing link's admin state is the operator's)";
    return "";
  }

  // Why the port, in the switch as `have`, must be opened again; "" when it
  // need not.
  std::string ReopenReason(const topology::PortConfig& port, const ObservedPort& have,
                           const PortBackend& backend) const {
    if (have.failed) return "its link went away";
    if (!have.ended.empty()) return have.ended;
    if (have.backend != backend.Name()) {
      // Today's only change of backend: a tap changes hands with a guest.
      return backend.Name() == "tap" ? "no guest holds its tap now"
                                     : "a guest's QEMU holds its tap now";
    }
    if (kernel_ == nullptr || kernel_->state == nullptr) return "";
    if (kernel_->recreated.count(port.name)) return "its link is made anew";
    const LinkInfo* link = kernel_->state->FindLink(port.name);
    if (backend.NeedsKernelLink() && link == nullptr) return "its link is gone";
    if (backend.Identity(port, link) != have.identity)
      return backend.NeedsKernelLink() ? "its link was recreated"
                                       : "it is now " + backend.Identity(port, link);
    return "";
  }

  void PlanPorts() {
    std::set<std::string> configured;
    for (const auto& port : config_.ports) configured.insert(port.name);
    if (observed_ != nullptr)
      for (const auto& [name, port] : observed_->ports)
        if (!configured.count(name)) Add(Kind::kRemovePort, name);

    const bool tree_after = config_.stp.enabled;
    const bool tree_kept = tree_after && observed_ != nullptr && observed_->tree &&
                           SameStp(*observed_->tree, config_.stp);
    for (const topology::PortConfig& port : config_.ports) {
      const bool guest = guest_ports_.count(port.name) != 0;
      const PortBackend& backend = backends_.For(port, guest);
      const bridge::PortVlanConfig vlan = SwitchVlanConfig(config_, port.vlan);
      const ObservedPort* have = nullptr;
      if (observed_ != nullptr) {
        auto it = observed_->ports.find(port.name);
        if (it != observed_->ports.end()) have = &it->second;
      }
      // A port that waits for its link (an "existing" link not there yet, or
      // set down by the operator) is left alone: planning its open would
      // fail, or fail on its first poll, at every pass.
      // A port not open yet whose backend's host object is not there (a
      // vhost-user client's socket): it waits too, with nothing to detach.
      // One whose connection ended (Ended()) and whose host object is gone
      // too goes until it is back.
      std::string waiting = Waiting(port);
      if (waiting.empty() && (have == nullptr || !have->ended.empty()))
        waiting = backend.Waiting(port);
      if (!waiting.empty()) {
        // Gone: its switch port goes until the link is back. Down: it stays
        // (failed, quiet), so that the kernel planner, which brings up an
        // existing link only until a switch holds it, leaves it down.
        if (have != nullptr && (waiting == kGone || !have->ended.empty())) {
          SwitchOperation& op = Add(Kind::kDetachPort, port.name);
          op.reason = waiting;
        }
        waiting_.insert(port.name);  // its statics and tree settings wait with it
        continue;
      }
      std::string reason = have != nullptr ? ReopenReason(port, *have, backend) : "";
      if (have == nullptr || !reason.empty()) {
        SwitchOperation& op = Add(have == nullptr ? Kind::kAddPort : Kind::kReopenPort, port.name);
        op.port = port;
        op.guest = guest;
        op.backend = std::string(backend.Name());
        op.reason = std::move(reason);
        op.vlan = vlan;
        // A tree that keeps running takes the port in at once; a tree that
        // starts or restarts below takes in every port.
        op.join_tree = tree_kept;
        op.tree_settings = TreeSettings(port, guest);
        joining_.insert(port.name);
      } else if (!SameVlan(have->vlan, vlan)) {
        SwitchOperation& op = Add(Kind::kSetPortVlan, port.name);
        op.port = port;
        op.vlan = vlan;
        op.old_vlan = have->vlan;
      }
    }
  }

  void PlanTree() {
    const bool running = observed_ != nullptr && observed_->tree.has_value();
    const bool restarts =
        running && (!config_.stp.enabled || !SameStp(*observed_->tree, config_.stp));
    auto members = [&] {
      std::vector<SwitchOperation::TreePort> list;
      for (const topology::PortConfig& port : config_.ports)
        list.push_back({port.name, TreeSettings(port, guest_ports_.count(port.name) != 0)});
      return list;
    };
    if (restarts && config_.stp.enabled) {
      SwitchOperation& op = Add(Kind::kRestartTree, config_.name);
      op.stp = config_.stp;
      op.tree_ports = members();
      return;
    }
    if (restarts) {
      Add(Kind::kStopTree, config_.name).stp = config_.stp;
      return;
    }
    if (config_.stp.enabled && !running) {
      SwitchOperation& op = Add(Kind::kStartTree, config_.name);
      op.stp = config_.stp;
      op.tree_ports = members();
      return;
    }
    if (!running) return;
    for (const topology::PortConfig& port : config_.ports) {
      if (joining_.count(port.name) || waiting_.count(port.name)) continue;
      auto p = observed_->ports.find(port.name);
      if (p == observed_->ports.end()) continue;
      const bridge::TreePortSettings settings =
          TreeSettings(port, guest_ports_.count(port.name) != 0);
      if (!p->second.tree || !SameTreeSettings(*p->second.tree, settings)) {
        SwitchOperation& op = Add(Kind::kSetTreePort, port.name);
        op.port = port;
        op.tree_settings = settings;
        continue;
      }
      if (kernel_ == nullptr || kernel_->state == nullptr) continue;
      const LinkInfo* link = kernel_->state->FindLink(port.name);
      // A port with no kernel link (vhost-user) is up for the tree while it
      // is open; its frontend's comings and goings are the port's own.
      const bool up = !backends_.For(port, guest_ports_.count(port.name) != 0).NeedsKernelLink() ||
                      (link != nullptr && link->oper_up);
      if (up != p->second.link_up) Add(Kind::kSetTreePortLink, port.name).link_up = up;
    }
  }

  void PlanStatics() {
    std::map<StaticKey, std::string> want = TopologyStatics(config_);
    // The run-time entries: those of a running switch, or those kept for
    // the next start of one that is not running.
    if (kept_ != nullptr) {
      for (const auto& [key, port] : kept_->runtime_statics) {
        std::string why;
        if (FindPortConfig(config_, port) == nullptr)
          why = "port " + port + " left the network";
        else if (RuntimeStaticStale(config_, key.first, port))
          why = "port " + port + " is no longer in that VLAN";
        if (why.empty()) {
          want.emplace(key, port);
          continue;
        }
        SwitchOperation& op = Add(Kind::kForgetRuntimeStatic, port);
        op.key = key;
        op.static_port = port;
        op.why = std::move(why);
      }
    }
    if (observed_ != nullptr) {
      for (const auto& [key, port] : observed_->installed_statics) {
        if (waiting_.count(port)) continue;  // go with the port's detach
        auto w = want.find(key);
        if (w != want.end() && w->second == port) continue;
        SwitchOperation& op = Add(Kind::kDeleteStatic, port);
        op.key = key;
        op.static_port = port;
      }
    }
    for (const auto& [key, port] : want) {
      if (waiting_.count(port)) continue;
      if (observed_ != nullptr) {
        auto installed = observed_->installed_statics.find(key);
        if (installed != observed_->installed_statics.end() && installed->second == port &&
            !joining_.count(port))
          continue;
      }
      SwitchOperation& op = Add(Kind::kAddStatic, port);
      op.key = key;
      op.static_port = port;
    }
  }

  // The mirrors go in whole (bridge::Switch::SetMirrors) when they differ
  // from the switch's, or when a port they name (re)enters the switch: the
  // switch forgets a port in its mirrors when the port leaves it.
  void PlanMirrors() {
    std::set<std::string> held;
    for (const topology::PortConfig& port : config_.ports)
      if (!waiting_.count(port.name)) held.insert(port.name);
    std::vector<topology::MirrorConfig> want = EffectiveMirrors(config_.mirrors, held);
    const std::vector<topology::MirrorConfig> none;
    const std::vector<topology::MirrorConfig>& have =
        observed_ != nullptr ? observed_->mirrors : none;
    bool rejoining = false;
    for (const topology::MirrorConfig& m : want) {
      rejoining = rejoining || joining_.count(m.output_port) != 0;
      for (const auto* list : {&m.select_src_port, &m.select_dst_port})
        for (const std::string& port : *list) rejoining = rejoining || joining_.count(port) != 0;
    }
    if (SameMirrors(want, have) && !rejoining) return;
    SwitchOperation& op = Add(Kind::kSetMirrors, config_.name);
    op.mirrors = std::move(want);
    op.old_mirrors = have;
  }

  const topology::NetworkConfig& config_;
  const ObservedSwitch* observed_;  // null: not running
  const ObservedSwitch* kept_;      // its run-time statics (running or not)
  const std::set<std::string>& guest_ports_;
  const PortBackends& backends_;
  const KernelView* kernel_;
  std::vector<SwitchOperation>& out_;
  std::set<std::string> joining_;  // ports that (re)enter the switch
  std::set<std::string> waiting_;  // ports that wait for their link
};

}  // namespace

std::string_view SwitchOperation::KindName() const {
  switch (kind) {
    case Kind::kStartSwitch:
      return "start_switch";
    case Kind::kStopSwitch:
      return "stop_switch";
    case Kind::kSetFdbLimits:
      return "set_fdb_limits";
    case Kind::kSetFdbAgeing:
      return "set_fdb_ageing";
    case Kind::kRemovePort:
      return "remove_switch_port";
    case Kind::kReopenPort:
      return "reopen_switch_port";
    case Kind::kDetachPort:
      return "detach_switch_port";
    case Kind::kAddPort:
      return "add_switch_port";
    case Kind::kSetPortVlan:
      return "set_switch_port_vlan";
    case Kind::kStartTree:
      return "start_tree";
    case Kind::kRestartTree:
      return "restart_tree";
    case Kind::kStopTree:
      return "stop_tree";
    case Kind::kSetTreePort:
      return "set_tree_port";
    case Kind::kSetTreePortLink:
      return "set_tree_port_link";
    case Kind::kForgetRuntimeStatic:
      return "forget_runtime_fdb";
    case Kind::kDeleteStatic:
      return "delete_switch_fdb";
    case Kind::kAddStatic:
      return "add_switch_fdb";
    case Kind::kSetMirrors:
      return "set_switch_mirrors";
  }
  return "unknown";
}

std::string SwitchOperation::Describe() const {
  const std::string& sw = network;
  const std::string on = " on switch " + sw;
  switch (kind) {
    case Kind::kStartSwitch:
      return "start userspace switch " + sw + " (FDB max_entries " + LimitText(fdb.max_entries) +
             ", max_per_port " + LimitText(fdb.max_per_port) + ", ageing " +
             std::to_string(Seconds(fdb.ageing_time_ns)) + " s)";
    case Kind::kStopSwitch:
      return "stop userspace switch " + sw;
    case Kind::kSetFdbLimits:
      return "set FDB limits of switch " + sw + ": max_entries " + LimitText(old_fdb.max_entries) +
             " -> " + LimitText(fdb.max_entries) + ", max_per_port " +
             LimitText(old_fdb.max_per_port) + " -> " + LimitText(fdb.max_per_port);
    case Kind::kSetFdbAgeing:
      return "set FDB ageing of switch " + sw + ": " +
             std::to_string(Seconds(old_fdb.ageing_time_ns)) + " s -> " +
             std::to_string(Seconds(fdb.ageing_time_ns)) + " s";
    case Kind::kRemovePort:
      return "remove port " + object + " from switch " + sw;
    case Kind::kReopenPort:
      return "reopen port " + object + on + " (" + backend + ", " + VlanSummary(vlan) +
             "): " + reason;
    case Kind::kDetachPort:
      return "detach port " + object + " from switch " + sw + " until its link is back: " + reason;
    case Kind::kAddPort:
      return "add port " + object + " to switch " + sw + " (" + backend + ", " + VlanSummary(vlan) +
             ")";
    case Kind::kSetPortVlan:
      return "set VLANs of port " + object + on + ": " + VlanSummary(old_vlan) + " -> " +
             VlanSummary(vlan);
    case Kind::kStartTree:
      return "start spanning tree of switch " + sw + " (" + StpText(stp) +
             "): ports discard until it converges";
    case Kind::kRestartTree:
      return "restart spanning tree of switch " + sw + " (" + StpText(stp) +
             "): every port discards until it converges";
    case Kind::kStopTree:
      return "stop spanning tree of switch " + sw + ": every port forwards";
    case Kind::kSetTreePort:
      return "set spanning tree port " + object + on + " (" + TreeSettingsText(tree_settings) +
             "): it discards until the tree places it again";
    case Kind::kSetTreePortLink:
      return "tell the spanning tree of switch " + sw + ": port " + object + " link " +
             (link_up ? "up" : "down");
    case Kind::kForgetRuntimeStatic:
      return "forget run-time static FDB entry " + EntryText(key, static_port) + " of switch " +
             sw + ": " + why;
    case Kind::kDeleteStatic:
      return "delete static FDB entry " + EntryText(key, static_port) + " from switch " + sw;
    case Kind::kAddStatic:
      return "add static FDB entry " + EntryText(key, static_port) + " to switch " + sw;
    case Kind::kSetMirrors:
      return "set port mirrors of switch " + sw + ": " + MirrorsText(old_mirrors) + " -> " +
             MirrorsText(mirrors);
  }
  return "unknown switch operation";
}

std::vector<SwitchOperation> PlanSwitches(const topology::Topology& desired,
                                          const ObservedSwitches& observed,
                                          const PortBackends& backends, const KernelView* kernel,
                                          const std::set<std::string>* only) {
  std::vector<SwitchOperation> out;
  const std::set<std::string> guest_ports = GuestPortNames(desired);
  std::set<std::string> wanted;
  for (const topology::NetworkConfig& config : desired.networks) {
    if (config.datapath != topology::Datapath::kUserspace) continue;
    if (only != nullptr && !only->count(config.name)) continue;
    wanted.insert(config.name);
    auto it = observed.find(config.name);
    NetworkPlanner(config, it == observed.end() ? nullptr : &it->second, guest_ports, backends,
                   kernel, out)
        .Run();
  }
  for (const auto& [name, sw] : observed) {
    if (wanted.count(name) || !sw.running || (only != nullptr && !only->count(name))) continue;
    SwitchOperation& op = out.emplace_back();
    op.kind = Kind::kStopSwitch;
    op.network = name;
    op.object = name;
  }
  return out;
}

std::set<std::string> CreatedLinks(const std::vector<Operation>& kernel_operations) {
  std::set<std::string> names;
  for (const Operation& op : kernel_operations) {
    if (op.kind == Operation::Kind::kCreateTap || op.kind == Operation::Kind::kCreateVeth)
      names.insert(op.object);
  }
  return names;
}

std::set<std::string> HeldPorts(const ObservedSwitches& observed) {
  std::set<std::string> names;
  for (const auto& [network, sw] : observed)
    for (const auto& [name, port] : sw.ports) names.insert(name);
  return names;
}

bridge::PortVlanConfig SwitchVlanConfig(const topology::NetworkConfig& network,
                                        const topology::PortVlanConfig& port) {
  switch (port.mode) {
    case topology::VlanMode::kNone:
      return bridge::PortVlanConfig::Access(network.vlan.default_pvid);
    case topology::VlanMode::kAccess:
      return bridge::PortVlanConfig::Access(port.pvid);
    case topology::VlanMode::kTrunk: {
      bridge::VlanSet allowed;
      for (uint16_t vid = 1; vid < 4095; ++vid)
        if (port.allowed.test(vid)) allowed.Add(vid);
      return bridge::PortVlanConfig::Trunk(allowed, port.native, port.native_tagged);
    }
  }
  return bridge::PortVlanConfig::Access(1);
}

uint16_t StaticFdbVlan(const topology::NetworkConfig& network, const topology::PortConfig& port,
                       uint16_t vlan) {
  if (vlan != 0) return vlan;
  const bridge::PortVlanConfig config = SwitchVlanConfig(network, port.vlan);
  if (config.mode == bridge::PortMode::kTrunk && config.native == bridge::NativeMode::kNone)
    return network.vlan.default_pvid;
  return config.pvid;
}

std::string VlanSummary(const bridge::PortVlanConfig& port) {
  if (port.mode == bridge::PortMode::kAccess) return "access VLAN " + std::to_string(port.pvid);
  std::string text = "trunk " + (port.allowed.ToString().empty() ? "-" : port.allowed.ToString());
  if (port.native != bridge::NativeMode::kNone) text += ", native " + std::to_string(port.pvid);
  return text;
}

const topology::PortConfig* FindPortConfig(const topology::NetworkConfig& network,
                                           const std::string& name) {
  for (const topology::PortConfig& port : network.ports)
    if (port.name == name) return &port;
  return nullptr;
}

std::map<StaticKey, std::string> TopologyStatics(const topology::NetworkConfig& network) {
  std::map<StaticKey, std::string> out;
  for (const topology::StaticFdbEntry& entry : network.fdb.static_entries) {
    const topology::PortConfig* port = FindPortConfig(network, entry.port);
    if (port == nullptr) continue;
    out[{StaticFdbVlan(network, *port, entry.vlan), entry.mac}] = entry.port;
  }
  return out;
}

bool RuntimeStaticStale(const topology::NetworkConfig& network, uint16_t vlan,
                        const std::string& port_name) {
  const topology::PortConfig* port = FindPortConfig(network, port_name);
  return port != nullptr && !SwitchVlanConfig(network, port->vlan).IsMember(vlan);
}

bridge::FdbSettings SwitchFdbConfig(const topology::NetworkConfig& network) {
  bridge::FdbSettings config;
  if (network.fdb.max_entries != 0) config.max_entries = network.fdb.max_entries;
  config.max_per_port = network.fdb.max_per_port;
  // 0 s: learned entries expire at once (the kernel bridge's meaning), not
  // the FDB's "do not learn".
  config.ageing_time_ns = std::max<uint64_t>(1, uint64_t{network.fdb.ageing_time} * 1'000'000'000);
  return config;
}

std::set<std::string> GuestPortNames(const topology::Topology& desired) {
  std::set<std::string> names;
  for (const topology::NetworkConfig& network : desired.networks) {
    for (const topology::PortConfig& port : network.ports)
      if (port.guest) names.insert(port.name);
  }
  for (const topology::VmConfig& vm : desired.vms) {
    for (size_t i = 0; i < vm.nics.size(); ++i) {
      names.insert(vm.nics[i].port.empty() ? vm.name + "-eth" + std::to_string(i)
                                           : vm.nics[i].port);
    }
  }
  return names;
}

bridge::TreePortSettings TreeSettings(const topology::PortConfig& port, bool guest) {
  bridge::TreePortSettings settings;
  settings.path_cost = port.cost.value_or(0);
  settings.priority = static_cast<uint8_t>(port.priority.value_or(128));
  settings.admin_edge = port.edge.value_or(guest);
  settings.bpdu_guard = port.bpdu_guard.value_or(false);
  settings.root_block = port.root_block.value_or(false);
  return settings;
}

}  // namespace vfabric::netd
