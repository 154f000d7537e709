// The userspace networks: observe the switches, plan (switch_plan.h) and
// apply. Their views are in userspace_views.cc, the fdb verbs in
// userspace_fdb.cc, the run-time static entries' store in runtime_statics.cc.
#include "vfabric/netd/userspace.h"

#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd {
namespace {

uint64_t RandomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    VF_LOG(kWarning) << "getrandom: " << std::strerror(errno) << "; FDB hash seed from the clock";
    seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return seed;
}

// Virtual links (veth, tap) report made-up speeds (10 Gb/s, 10 Mb/s); they
// all count as 10 Gb/s for automatic path costs, so a tap is not costlier
// than a veth.
constexpr uint64_t kVirtualLinkSpeedMbps = 10000;

std::string Join(const std::vector<std::string>& parts, const char* separator) {
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : separator) + part;
  return text;
}

Status StartDatapath(const std::string& name, bridge::Switch& sw) {
  // The datapath thread must take no signals: netd's loop reads SIGHUP,
  // SIGTERM and SIGINT from a signalfd, which needs them blocked in every
  // thread (the thread inherits the mask in force at Start()).
  // Except SIGBUS: a vhost-user frontend that shrinks its guest memory
  // makes the datapath fault there, and a fault on a blocked SIGBUS kills
  // the process instead of reaching the guard's handler
  // (bridge/vhost_user/DESIGN.md, "A frontend that shrinks its memory").
  sigset_t all, saved;
  sigfillset(&all);
  sigdelset(&all, SIGBUS);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  Status started = sw.Start();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (!started.ok()) return started;
  VF_LOG(kInfo) << "userspace network " << name << ": switch started";
  return Status::Ok();
}

}  // namespace

MacAddress TreeBridgeAddress(const std::string& machine_id, const std::string& network) {
  // FNV-1a 64: stable across builds and platforms (std::hash is not).
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : machine_id + "/" + network) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  MacAddress mac = MacAddress::FromU64(hash & 0xffffffffffffull);
  mac.bytes[0] = static_cast<uint8_t>((mac.bytes[0] & 0xfc) | 0x02);  // local, unicast
  return mac;
}

std::string ReadMachineId() {
  std::ifstream in("/etc/machine-id");
  std::string id;
  if (in && std::getline(in, id) && !id.empty()) return id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) return host;
  return "vfabric";
}

UserspaceNetworks::UserspaceNetworks(std::string state_dir, std::unique_ptr<PortBackends> backends,
                                     std::string machine_id)
    : statics_(std::move(state_dir)),
      backends_(backends ? std::move(backends) : NewKernelPortBackends()),
      machine_id_(machine_id.empty() ? kDefaultMachineId : std::move(machine_id)) {}

UserspaceNetworks::~UserspaceNetworks() { StopAll(); }

void UserspaceNetworks::StopAll() {
  for (auto& [name, network] : networks_) {
    if (network.sw) network.sw->Stop();
  }
  networks_.clear();
}

void UserspaceNetworks::RemovePort(Network& network, const std::string& name) {
  auto it = network.ports.find(name);
  if (it == network.ports.end()) return;
  if (network.tree && it->second.tree) {
    Status left = network.tree->RemovePort(it->second.id);
    if (!left.ok()) VF_LOG(kWarning) << left.message();
  }
  Status status = network.sw->RemovePort(it->second.id);
  if (!status.ok()) VF_LOG(kError) << status.message();
  std::erase_if(network.installed_statics, [&](const auto& e) { return e.second == name; });
  network.ports.erase(it);
}

ObservedSwitches UserspaceNetworks::Observe(const topology::Topology& desired,
                                            const std::set<std::string>* only) const {
  ObservedSwitches observed;
  for (const auto& [name, network] : networks_) {
    if (only != nullptr && !only->count(name)) continue;
    ObservedSwitch& sw = observed[name];
    sw.running = network.sw != nullptr;
    sw.max_entries = network.fdb.max_entries;
    sw.max_per_port = network.fdb.max_per_port;
    sw.ageing_time_ns = network.ageing_time_ns;
    std::set<std::string> failed;
    if (network.sw)
      for (const bridge::PortInfo& info : network.sw->Ports())
        if (info.failed) failed.insert(info.name);
    const topology::NetworkConfig* config = nullptr;
    for (const topology::NetworkConfig& n : desired.networks)
      if (n.name == name) config = &n;
    // By name once: FindPortConfig per port was quadratic in the ports.
    std::map<std::string_view, const topology::PortConfig*> configs;
    if (config != nullptr)
      for (const topology::PortConfig& p : config->ports) configs.emplace(p.name, &p);
    for (const auto& [port_name, port] : network.ports) {
      ObservedPort& out = sw.ports[port_name];
      out.backend = port.backend;
      out.identity = port.identity;
      out.vlan = port.vlan;
      out.failed = failed.count(port_name) != 0;
      auto found = configs.find(port_name);
      const topology::PortConfig* port_config = found != configs.end() ? found->second : nullptr;
      if (port_config != nullptr && port.port != nullptr && port.opener != nullptr)
        out.ended = port.opener->Ended(*port_config, *port.port);
      out.tree = port.tree;
      out.link_up = port.link_up;
    }
    if (network.tree) sw.tree = network.tree_config;
    sw.installed_statics = network.installed_statics;
    sw.runtime_statics = network.runtime_statics;
    if (network.sw) sw.mirrors = ObservedMirrors(network);
  }
  // A network whose switch does not run yet starts with what was kept of it.
  for (const topology::NetworkConfig& config : desired.networks) {
    if (config.datapath != topology::Datapath::kUserspace || observed.count(config.name)) continue;
    if (only != nullptr && !only->count(config.name)) continue;
    std::map<StaticKey, std::string> kept = statics_.Read(config.name);
    if (!kept.empty()) observed[config.name].runtime_statics = std::move(kept);
  }
  return observed;
}

std::vector<SwitchOperation> UserspaceNetworks::Plan(const topology::Topology& desired,
                                                     const KernelView* kernel,
                                                     const std::set<std::string>* only) const {
  return PlanSwitches(desired, Observe(desired, only), *backends_, kernel, only);
}

std::vector<SwitchChange> UserspaceNetworks::Pending(const topology::Topology& desired) const {
  return SwitchChanges(Plan(desired));
}

std::vector<SwitchChange> SwitchChanges(const std::vector<SwitchOperation>& operations) {
  std::vector<SwitchChange> out;
  for (const SwitchOperation& op : operations)
    if (op.IsChange())
      out.push_back({std::string(op.KindName()), op.network, op.object, op.Describe()});
  return out;
}

std::vector<std::string> UserspaceNetworks::Sync(const topology::Topology& desired,
                                                 const KernelState& state,
                                                 const std::set<std::string>* only) {
  const KernelView view{&state, {}};
  SwitchApplyResult result = Apply(Plan(desired, &view, only), state);
  // A switch that had to restart (its FDB limits would not change in place)
  // is planned again from scratch.
  if (result.replan) {
    SwitchApplyResult again = Apply(Plan(desired, &view, only), state);
    result.errors.insert(result.errors.end(), again.errors.begin(), again.errors.end());
  }
  if (!adopting_.empty()) FinishAdoption();
  return result.errors;
}

namespace {

// One snapshot per switch per apply: a switch rebuilds its forwarding
// snapshot (O(its ports)) for every change made outside a batch, so adding
// 1,000 ports one by one was quadratic (96 s). The operations of one
// network come together in a plan; the batch spans them and ends before an
// operation that may destroy or replace the switch.
class SwitchBatch {
 public:
  explicit SwitchBatch(std::vector<std::string>& errors) : errors_(errors) {}
  ~SwitchBatch() { End(); }
  SwitchBatch(const SwitchBatch&) = delete;
  SwitchBatch& operator=(const SwitchBatch&) = delete;

  // Batches the changes to `sw` (nullptr: none) from now on.
  void Enter(bridge::Switch* sw, const std::string& network) {
    if (sw == sw_) return;
    End();
    if (sw == nullptr) return;
    sw_ = sw;
    network_ = network;
    sw_->BeginBatch();
  }
  void End() {
    if (sw_ == nullptr) return;
    Status ended = sw_->EndBatch();
    if (!ended.ok()) errors_.push_back("userspace network " + network_ + ": " + ended.message());
    sw_ = nullptr;
  }

 private:
  std::vector<std::string>& errors_;
  bridge::Switch* sw_ = nullptr;
  std::string network_;
};

}  // namespace

SwitchApplyResult UserspaceNetworks::Apply(const std::vector<SwitchOperation>& operations,
                                           const KernelState& state) {
  using Kind = SwitchOperation::Kind;
  SwitchApplyResult result;
  SwitchBatch batch(result.errors);
  for (const SwitchOperation& op : operations) {
    if (op.kind == Kind::kStartSwitch || op.kind == Kind::kStopSwitch ||
        op.kind == Kind::kSetFdbLimits) {
      batch.End();  // these may destroy the switch
    } else {
      auto n = networks_.find(op.network);
      batch.Enter(n != networks_.end() ? n->second.sw.get() : nullptr, op.network);
    }
    Status status = ApplyOne(op, state, result);
    if (status.ok()) {
      result.applied.push_back(op);
    } else if (!status.message().empty()) {
      result.errors.push_back("userspace network " + op.network + ": " + status.message());
    }
  }
  batch.End();
  for (auto& [name, network] : networks_) {
    // Made from a handover (StartSwitch): its ports are in now.
    if (!network.sw || network.sw->running()) continue;
    Status started = StartDatapath(name, *network.sw);
    if (!started.ok())
      result.errors.push_back("userspace network " + name + ": " + started.message());
  }
  for (const std::string& error : result.errors) VF_LOG(kError) << error;
  return result;
}

Status UserspaceNetworks::StartSwitch(const SwitchOperation& op) {
  Network& network = networks_[op.network];
  auto inbox = bridge::BpduInbox::Create();
  if (!inbox.ok()) return inbox.status();
  network.inbox = std::move(inbox).value();
  network.inbox->SetAccepting(false);  // until a tree runs
  bridge::SwitchConfig sc;
  sc.name = op.network;
  sc.fdb = op.fdb;
  sc.fdb.hash_seed = RandomSeed();
  sc.bpdu_hook = network.inbox->Hook();
  auto sw = bridge::Switch::Create(std::move(sc));
  if (!sw.ok()) return sw.status();
  network.sw = std::move(sw).value();
  if (network.runtime_statics.empty()) {
    network.runtime_statics = statics_.Read(op.network);
    if (const size_t kept = network.runtime_statics.size())
      VF_LOG(kInfo) << "userspace network " << op.network << ": " << statics_.Path(op.network)
                    << ": " << kept << " static FDB entr" << (kept == 1 ? "y" : "ies")
                    << " restored";
  }
  network.fdb = op.fdb;
  network.ageing_time_ns = op.fdb.ageing_time_ns;
  // Handed over: its datapath starts once the handed-over ports are in
  // (from Apply), or the frames that waited in the first
  // port's queue would be flooded to a switch without the others and lost.
  if (adopting_.count(op.network)) return Status::Ok();
  Status started = StartDatapath(op.network, *network.sw);
  if (!started.ok()) network.sw.reset();
  return started;
}

Status UserspaceNetworks::OpenPort(const SwitchOperation& op, const KernelState& state,
                                   Network& network) {
  const topology::PortConfig& port = op.port;
  PortBackend& backend = backends_->For(port, op.guest);
  const LinkInfo* link = state.FindLink(port.name);
  if (backend.NeedsKernelLink() && link == nullptr)
    return Status::Error("port " + port.name + ": no such link");
  bridge::PortSettings settings;
  settings.vlan = op.vlan;
  // With a tree, a port forwards only once the tree says so.
  if (network.tree) settings.stp = bridge::StpState::kDiscarding;
  // The overlay's peer ports: split horizon (bridge/DESIGN-vxlan.md).
  if (port.kind == topology::PortKind::kVxlan) settings.flood_group = 1;
  // Handed over by the image of netd before this one (Adopt): the same
  // descriptors, the same switch port id and state (the handed-over tree
  // carries on with them, userspace_handover.cc).
  const std::string identity = backend.Identity(port, link);
  std::unique_ptr<bridge::Port> opened;
  bridge::PortId want = bridge::kNoPort;
  bool adopted = false;
  if (auto handed = TakeHandedOver(op.network, port.name, backend.Name(), identity)) {
    auto taken = bridge::AdoptPort(port.name, std::move(handed->port));
    if (taken.ok()) {
      opened = std::move(taken).value();
      want = handed->id;
      adopted = true;
      auto n = adopting_.find(op.network);
      if (n != adopting_.end() && n->second.tree) settings.stp = handed->stp;
    } else {
      VF_LOG(kWarning) << "userspace network " << op.network << ": " << taken.status().message()
                       << "; opening it anew";
    }
  }
  if (!opened) {
    auto fresh = backend.Open(port, link);
    if (!fresh.ok()) return Status::Error("port " + port.name + ": " + fresh.status().message());
    opened = std::move(fresh).value();
    // Not on an id a handed-over port still waits for.
    if (auto n = adopting_.find(op.network); n != adopting_.end()) {
      std::set<bridge::PortId> taken;
      for (const auto& [name, p] : network.ports) taken.insert(p.id);
      for (const HandedOverPort& p : n->second.ports) taken.insert(p.id);
      want = 0;
      while (taken.count(want)) ++want;
    }
  }
  const bridge::Port* object = opened.get();
  auto id = network.sw->AddPortAt(want, std::move(opened), settings);
  if (!id.ok()) return Status::Error("port " + port.name + ": " + id.status().message());
  PortState& added = network.ports[port.name];
  added = PortState{};
  added.id = *id;
  added.backend = std::string(backend.Name());
  added.identity = identity;
  added.vlan = op.vlan;
  added.adopted = adopted;
  VF_LOG(kInfo) << "userspace network " << op.network << ": port " << port.name << " ("
                << backend.Name() << ", " << added.identity << ") "
                << (adopted ? "adopted from the handover" : "added") << " as switch port " << *id;
  added.no_link = !backend.NeedsKernelLink();
  added.port = object;
  added.opener = &backend;
  if (op.join_tree && network.tree) {
    const bool up = added.no_link || (link != nullptr && link->oper_up);
    VF_RETURN_IF_ERROR(JoinTree(network, port.name, op.tree_settings, up));
  }
  return Status::Ok();
}

Status UserspaceNetworks::JoinTree(Network& network, const std::string& name,
                                   const bridge::TreePortSettings& settings, bool up) {
  PortState& port = network.ports.at(name);
  Status joined = network.tree->AddPort(port.id, name, settings, up, kVirtualLinkSpeedMbps);
  if (!joined.ok()) return joined.WithContext("spanning tree");
  port.tree = settings;
  port.link_up = up;
  return Status::Ok();
}

Status UserspaceNetworks::StartTree(const SwitchOperation& op, const KernelState& state,
                                    Network& network) {
  const topology::StpConfig& stp = op.stp;
  bridge::SpanningTreeConfig tc;
  tc.name = op.network;
  tc.bridge.address = TreeBridgeAddress(machine_id_, op.network);
  tc.bridge.priority = static_cast<uint16_t>(stp.priority);
  tc.bridge.mode =
      stp.mode == topology::StpMode::kRstp ? bridge::TreeMode::kRstp : bridge::TreeMode::kStp;
  tc.bridge.hello_time = stp.hello_time;
  tc.bridge.forward_delay = stp.forward_delay;
  tc.bridge.max_age = stp.max_age;
  const std::string network_name = op.network;
  tc.on_event = [network_name](const bridge::TreeEvent& event, std::string_view port) {
    const std::string where = "userspace network " + network_name + ": spanning tree" +
                              (port.empty() ? std::string() : ": port " + std::string(port));
    switch (event.kind) {
      case bridge::TreeEvent::Kind::kBpduGuardTrip:
        VF_LOG(kWarning) << where
                         << ": BPDU received on a bpdu_guard port; port disabled (bring its "
                            "link down and up to re-enable it)";
        break;
      case bridge::TreeEvent::Kind::kNewRoot:
        VF_LOG(kInfo) << where << ": root bridge changed";
        break;
      case bridge::TreeEvent::Kind::kTopologyChange:
        VF_LOG(kDebug) << where << ": topology change";
        break;
      case bridge::TreeEvent::Kind::kProtocolMigration:
        VF_LOG(kInfo) << where << ": protocol migration (RSTP <-> 802.1D STP peer)";
        break;
    }
  };
  (void)network.inbox->Drain();  // BPDUs from before this tree
  network.inbox->SetAccepting(true);
  if (RestoreTree(op, state, network, tc)) return Status::Ok();
  auto tree = bridge::SpanningTree::Create(*network.sw, network.inbox, std::move(tc));
  if (!tree.ok()) {
    network.inbox->SetAccepting(false);
    return tree.status().WithContext("spanning tree");
  }
  // The thread must take no signals (see StartSwitch).
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  Status started = (*tree)->Start();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (!started.ok()) {
    network.inbox->SetAccepting(false);
    return started.WithContext("spanning tree");
  }
  network.tree = std::move(tree).value();
  network.tree_config = stp;
  VF_LOG(kInfo) << "userspace network " << op.network << ": spanning tree: started ("
                << topology::ToString(stp.mode) << ", bridge id "
                << FormatBridgeId(network.tree->GetStatus().bridge_id.ToU64()) << ")";
  std::vector<std::string> errors;
  for (const SwitchOperation::TreePort& member : op.tree_ports) {
    if (!network.ports.count(member.name)) continue;  // not opened (reported)
    const LinkInfo* link = state.FindLink(member.name);
    const bool up = network.ports.at(member.name).no_link || (link && link->oper_up);
    Status joined = JoinTree(network, member.name, member.settings, up);
    if (!joined.ok()) errors.push_back(joined.message());
  }
  if (!errors.empty()) return Status::Error(Join(errors, "; "));
  return Status::Ok();
}

// Stops the tree; every port forwards (`restart`: discards, for the next).
Status UserspaceNetworks::StopTree(Network& network, bool restart) {
  if (!network.tree) return Status::Ok();
  network.tree.reset();
  network.inbox->SetAccepting(false);
  std::vector<std::string> errors;
  for (auto& [name, port] : network.ports) {
    port.tree.reset();
    Status s = network.sw->SetPortStpState(
        port.id, restart ? bridge::StpState::kDiscarding : bridge::StpState::kForwarding);
    if (!s.ok()) errors.push_back("spanning tree: " + s.message());
  }
  if (!errors.empty()) return Status::Error(Join(errors, "; "));
  return Status::Ok();
}

Status UserspaceNetworks::ApplyOne(const SwitchOperation& op, const KernelState& state,
                                   SwitchApplyResult& result) {
  using Kind = SwitchOperation::Kind;
  const std::string what = "userspace network " + op.network;
  if (op.kind == Kind::kStartSwitch) {
    Status started = StartSwitch(op);
    if (!started.ok()) networks_.erase(op.network);
    return started;
  }
  auto n = networks_.find(op.network);
  if (n == networks_.end() || !n->second.sw) {
    // Its switch did not start (reported): nothing of it can be done.
    return Status::Error("");
  }
  Network& network = n->second;
  switch (op.kind) {
    case Kind::kStartSwitch:
      break;
    case Kind::kStopSwitch:
      VF_LOG(kInfo) << what << ": stopped (no longer configured)";
      statics_.Forget(op.network);
      networks_.erase(n);
      return Status::Ok();
    case Kind::kSetFdbLimits: {
      // The running switch rebuilds its table with the entries it has.
      Status limits = network.sw->SetFdbLimits(op.fdb.max_entries, op.fdb.max_per_port);
      if (!limits.ok()) {
        VF_LOG(kWarning) << what << ": " << limits.message() << "; restarting its switch";
        network.tree.reset();  // before the switch it drives
        network.sw.reset();
        networks_.erase(n);
        result.replan = true;
        return limits;
      }
      VF_LOG(kInfo) << what << ": FDB limits now max_entries " << op.fdb.max_entries
                    << ", max_per_port " << op.fdb.max_per_port;
      network.fdb.max_entries = op.fdb.max_entries;
      network.fdb.max_per_port = op.fdb.max_per_port;
      return Status::Ok();
    }
    case Kind::kSetFdbAgeing:
      VF_RETURN_IF_ERROR(network.sw->SetAgeingTime(op.fdb.ageing_time_ns));
      network.ageing_time_ns = op.fdb.ageing_time_ns;
      return Status::Ok();
    case Kind::kRemovePort:
      RemovePort(network, op.object);
      if (std::erase_if(network.runtime_statics,
                        [&](const auto& e) { return e.second == op.object; })) {
        Status saved = statics_.Save(op.network, network.runtime_statics);
        if (!saved.ok()) VF_LOG(kError) << what << ": " << saved.message();
      }
      VF_LOG(kInfo) << what << ": removed port " << op.object;
      return Status::Ok();
    case Kind::kReopenPort:
      VF_LOG(kInfo) << what << ": port " << op.object << ": reopening it (" << op.reason << ")";
      RemovePort(network, op.object);
      return OpenPort(op, state, network);
    case Kind::kDetachPort:
      // It comes back (and its statics with it) when its link does; its
      // run-time statics are kept for then.
      VF_LOG(kInfo) << what << ": port " << op.object << " detached: " << op.reason;
      RemovePort(network, op.object);
      return Status::Ok();
    case Kind::kAddPort:
      return OpenPort(op, state, network);
    case Kind::kSetPortVlan: {
      auto p = network.ports.find(op.object);
      if (p == network.ports.end())
        return Status::Error("port " + op.object + ": not in the switch");
      VF_RETURN_IF_ERROR(network.sw->SetPortVlan(p->second.id, op.vlan));
      p->second.vlan = op.vlan;
      return Status::Ok();
    }
    case Kind::kStartTree:
      // The tree's thread drives the switch: its datapath runs first.
      if (!network.sw->running()) VF_RETURN_IF_ERROR(StartDatapath(op.network, *network.sw));
      return StartTree(op, state, network);
    case Kind::kRestartTree:
      VF_LOG(kInfo) << what << ": spanning tree: settings changed; restarting it";
      VF_RETURN_IF_ERROR(StopTree(network, /*restart=*/true));
      return StartTree(op, state, network);
    case Kind::kStopTree:
      VF_LOG(kInfo) << what << ": spanning tree: disabled; every port forwards";
      return StopTree(network, /*restart=*/false);
    case Kind::kSetTreePort: {
      auto p = network.ports.find(op.object);
      if (p == network.ports.end() || !network.tree)
        return Status::Error("port " + op.object + ": not in the switch's tree");
      if (p->second.tree) {
        Status left = network.tree->RemovePort(p->second.id);
        if (!left.ok()) return left.WithContext("spanning tree");
        p->second.tree.reset();
      }
      const LinkInfo* link = state.FindLink(op.object);
      return JoinTree(network, op.object, op.tree_settings, link && link->oper_up);
    }
    case Kind::kSetTreePortLink: {
      auto p = network.ports.find(op.object);
      if (p == network.ports.end() || !network.tree)
        return Status::Error("port " + op.object + ": not in the switch's tree");
      Status changed = network.tree->SetPortLink(p->second.id, op.link_up, kVirtualLinkSpeedMbps);
      if (!changed.ok()) return changed.WithContext("spanning tree");
      p->second.link_up = op.link_up;
      VF_LOG(kInfo) << what << ": spanning tree: port " << op.object << " link "
                    << (op.link_up ? "up" : "down");
      return Status::Ok();
    }
    case Kind::kForgetRuntimeStatic:
      VF_LOG(kWarning) << what << ": static FDB entry " << op.key.second.ToString() << " (VLAN "
                       << op.key.first << ") removed: " << op.why;
      if (network.runtime_statics.erase(op.key)) {
        Status saved = statics_.Save(op.network, network.runtime_statics);
        if (!saved.ok()) VF_LOG(kError) << what << ": " << saved.message();
      }
      return Status::Ok();
    case Kind::kDeleteStatic: {
      Status status = network.sw->RemoveStaticFdb(op.key.first, op.key.second);
      network.installed_statics.erase(op.key);
      if (!status.ok()) VF_LOG(kWarning) << what << ": " << status.message();
      return Status::Ok();
    }
    case Kind::kAddStatic: {
      auto p = network.ports.find(op.static_port);
      // Its port did not open (reported): the entry waits for it.
      if (p == network.ports.end()) return Status::Error("");
      if (network.installed_statics.count(op.key)) {
        // On another port: the switch holds one entry per (VLAN, MAC).
        Status removed = network.sw->RemoveStaticFdb(op.key.first, op.key.second);
        if (!removed.ok()) VF_LOG(kWarning) << what << ": " << removed.message();
        network.installed_statics.erase(op.key);
      }
      Status status = network.sw->AddStaticFdb(op.key.first, op.key.second, p->second.id);
      if (!status.ok())
        return Status::Error("static FDB " + op.key.second.ToString() + ": " + status.message());
      network.installed_statics[op.key] = op.static_port;
      return Status::Ok();
    }
    case Kind::kSetMirrors:
      return SetMirrors(network, op.mirrors);
  }
  return Status::Error("unknown switch operation");
}

}  // namespace vfabric::netd
