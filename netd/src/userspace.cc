#include "vfabric/netd/userspace.h"

#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/atomic_file.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

uint64_t RandomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    VF_LOG(kWarning) << "getrandom: " << std::strerror(errno) << "; FDB hash seed from the clock";
    seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return seed;
}

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

// Virtual links (veth, tap) report made-up speeds (10 Gb/s, 10 Mb/s); they
// all count as 10 Gb/s for automatic path costs, so a tap is not costlier
// than a veth.
constexpr uint64_t kVirtualLinkSpeedMbps = 10000;

std::string BridgeIdText(const bridge::TreeBridgeId& id) { return FormatBridgeId(id.ToU64()); }

std::string Join(const std::vector<std::string>& parts, const char* separator) {
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : separator) + part;
  return text;
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
    : state_dir_(std::move(state_dir)),
      backends_(backends ? std::move(backends) : NewKernelPortBackends()),
      machine_id_(machine_id.empty() ? ReadMachineId() : std::move(machine_id)) {}

std::string UserspaceNetworks::StaticsPath(const std::string& network) const {
  return state_dir_ + "/" + network + ".fdb.json";
}

std::map<StaticKey, std::string> UserspaceNetworks::ReadRuntimeStatics(
    const std::string& network) const {
  std::map<StaticKey, std::string> entries;
  if (state_dir_.empty()) return entries;
  std::ifstream in(StaticsPath(network));
  if (!in) return entries;  // none kept
  const json doc = json::parse(in, nullptr, false);
  const std::string what = "userspace network " + network + ": " + StaticsPath(network);
  if (!doc.is_object() || !doc.contains("entries") || !doc["entries"].is_array()) {
    VF_LOG(kWarning) << what << ": not a static FDB file; ignored";
    return entries;
  }
  for (const json& entry : doc["entries"]) {
    auto mac = entry.is_object() && entry.value("mac", json()).is_string()
                   ? MacAddress::Parse(entry["mac"].get<std::string>())
                   : std::nullopt;
    const json vlan = entry.is_object() ? entry.value("vlan", json()) : json();
    const json port = entry.is_object() ? entry.value("port", json()) : json();
    if (!mac || !vlan.is_number_unsigned() || vlan.get<uint64_t>() < 1 ||
        vlan.get<uint64_t>() > 4094 || !port.is_string()) {
      VF_LOG(kWarning) << what << ": malformed entry " << entry.dump() << "; ignored";
      continue;
    }
    entries[{static_cast<uint16_t>(vlan.get<uint64_t>()), *mac}] = port.get<std::string>();
  }
  return entries;
}

Status UserspaceNetworks::SaveRuntimeStatics(const std::string& name,
                                             const Network& network) const {
  if (state_dir_.empty()) return Status::Ok();
  const std::string path = StaticsPath(name);
  const std::string what = "save run-time static FDB entries of network " + name;
  if (network.runtime_statics.empty()) return RemoveFileDurably(path).WithContext(what);
  json entries = json::array();
  for (const auto& [key, port] : network.runtime_statics)
    entries.push_back({{"mac", key.second.ToString()}, {"vlan", key.first}, {"port", port}});
  std::error_code error;
  std::filesystem::create_directories(state_dir_, error);
  if (error)
    return Status::Error(what + ": create " + state_dir_ + ": " + error.message(), error.value());
  // A crash, a full disk or a read-only directory leaves the old file or the
  // new one, never a truncated one (common/atomic_file.h).
  return WriteFileAtomically(path, json{{"network", name}, {"entries", entries}}.dump(1) + "\n")
      .WithContext(what);
}
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

ObservedSwitches UserspaceNetworks::Observe(const topology::Topology& desired) const {
  ObservedSwitches observed;
  for (const auto& [name, network] : networks_) {
    ObservedSwitch& sw = observed[name];
    sw.running = network.sw != nullptr;
    sw.max_entries = network.fdb.max_entries;
    sw.max_per_port = network.fdb.max_per_port;
    sw.ageing_time_ns = network.ageing_time_ns;
    std::set<std::string> failed;
    if (network.sw)
      for (const bridge::PortInfo& info : network.sw->Ports())
        if (info.failed) failed.insert(info.name);
    for (const auto& [port_name, port] : network.ports) {
      ObservedPort& out = sw.ports[port_name];
      out.backend = port.backend;
      out.identity = port.identity;
      out.vlan = port.vlan;
      out.failed = failed.count(port_name) != 0;
      out.tree = port.tree;
      out.link_up = port.link_up;
    }
    if (network.tree) sw.tree = network.tree_config;
    sw.installed_statics = network.installed_statics;
    sw.runtime_statics = network.runtime_statics;
  }
  // A network whose switch does not run yet starts with what was kept of it.
  for (const topology::NetworkConfig& config : desired.networks) {
    if (config.datapath != topology::Datapath::kUserspace || observed.count(config.name)) continue;
    std::map<StaticKey, std::string> kept = ReadRuntimeStatics(config.name);
    if (!kept.empty()) observed[config.name].runtime_statics = std::move(kept);
  }
  return observed;
}

std::vector<SwitchOperation> UserspaceNetworks::Plan(const topology::Topology& desired,
                                                     const KernelView* kernel) const {
  return PlanSwitches(desired, Observe(desired), *backends_, kernel);
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
                                                 const KernelState& state) {
  const KernelView view{&state, {}};
  SwitchApplyResult result = Apply(Plan(desired, &view), state);
  // A switch that had to restart (its FDB limits would not change in place)
  // is planned again from scratch.
  if (result.replan) {
    SwitchApplyResult again = Apply(Plan(desired, &view), state);
    result.errors.insert(result.errors.end(), again.errors.begin(), again.errors.end());
  }
  return result.errors;
}

SwitchApplyResult UserspaceNetworks::Apply(const std::vector<SwitchOperation>& operations,
                                           const KernelState& state) {
  SwitchApplyResult result;
  for (const SwitchOperation& op : operations) {
    Status status = ApplyOne(op, state, result);
    if (status.ok()) {
      result.applied.push_back(op);
    } else if (!status.message().empty()) {
      result.errors.push_back("userspace network " + op.network + ": " + status.message());
    }
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
    network.runtime_statics = ReadRuntimeStatics(op.network);
    if (const size_t kept = network.runtime_statics.size())
      VF_LOG(kInfo) << "userspace network " << op.network << ": " << StaticsPath(op.network) << ": "
                    << kept << " static FDB entr" << (kept == 1 ? "y" : "ies") << " restored";
  }
  network.fdb = op.fdb;
  network.ageing_time_ns = op.fdb.ageing_time_ns;
  // The datapath thread must take no signals: netd's loop reads SIGHUP,
  // SIGTERM and SIGINT from a signalfd, which needs them blocked in every
  // thread (the thread inherits the mask in force at Start()).
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  Status started = network.sw->Start();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (!started.ok()) {
    network.sw.reset();
    return started;
  }
  VF_LOG(kInfo) << "userspace network " << op.network << ": switch started";
  return Status::Ok();
}

Status UserspaceNetworks::OpenPort(const SwitchOperation& op, const KernelState& state,
                                   Network& network) {
  const topology::PortConfig& port = op.port;
  PortBackend& backend = backends_->For(port, op.guest);
  const LinkInfo* link = state.FindLink(port.name);
  if (backend.NeedsKernelLink() && link == nullptr)
    return Status::Error("port " + port.name + ": no such link");
  auto opened = backend.Open(port, link);
  if (!opened.ok()) return Status::Error("port " + port.name + ": " + opened.status().message());
  bridge::PortSettings settings;
  settings.vlan = op.vlan;
  // With a tree, a port forwards only once the tree says so.
  if (network.tree) settings.stp = bridge::StpState::kDiscarding;
  auto id = network.sw->AddPort(std::move(opened).value(), settings);
  if (!id.ok()) return Status::Error("port " + port.name + ": " + id.status().message());
  PortState& added = network.ports[port.name];
  added = PortState{};
  added.id = *id;
  added.backend = std::string(backend.Name());
  added.identity = backend.Identity(port, link);
  added.vlan = op.vlan;
  VF_LOG(kInfo) << "userspace network " << op.network << ": port " << port.name << " ("
                << backend.Name() << ", " << added.identity << ") added as switch port " << *id;
  if (op.join_tree && network.tree) {
    const bool up = link != nullptr && link->oper_up;
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
                << BridgeIdText(network.tree->GetStatus().bridge_id) << ")";
  std::vector<std::string> errors;
  for (const SwitchOperation::TreePort& member : op.tree_ports) {
    if (!network.ports.count(member.name)) continue;  // not opened (reported)
    const LinkInfo* link = state.FindLink(member.name);
    Status joined = JoinTree(network, member.name, member.settings, link && link->oper_up);
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
      if (!state_dir_.empty()) ::unlink(StaticsPath(op.network).c_str());
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
        Status saved = SaveRuntimeStatics(op.network, network);
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
        Status saved = SaveRuntimeStatics(op.network, network);
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
  }
  return Status::Error("unknown switch operation");
}

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

json UserspaceNetworks::PortExtra(const std::string& network_name, const std::string& port) const {
  json out = {{"switch_port", nullptr}};
  auto n = networks_.find(network_name);
  if (n == networks_.end()) return out;
  auto p = n->second.ports.find(port);
  if (p == n->second.ports.end()) return out;
  out["switch_port"] = p->second.id;
  out["stp_state"] = "forwarding";
  for (const bridge::PortInfo& info : n->second.sw->Ports())
    if (info.id == p->second.id)
      out["stp_state"] = std::string(bridge::ToString(info.settings.stp));
  if (auto counters = n->second.sw->Counters(p->second.id); counters.ok())
    out["counters"] = CountersJson(*counters);
  // With a tree: the port's path cost and priority as it runs them (the
  // kernel bridge's ports report theirs), and its guards.
  if (n->second.tree) {
    const bridge::TreeStatus status = n->second.tree->GetStatus();
    for (const bridge::TreePortStatus& tree_port : status.ports) {
      if (n->second.tree->PortName(tree_port.number) != port) continue;
      out["cost"] = tree_port.path_cost;
      out["priority"] = tree_port.priority;
      out["bpdu_guard"] = tree_port.bpdu_guard;
      out["root_block"] = tree_port.root_block;
    }
  }
  return out;
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

Status UserspaceNetworks::AddStatic(const topology::NetworkConfig& config, const MacAddress& mac,
                                    const std::string& port, std::optional<uint16_t> vid) {
  auto n = networks_.find(config.name);
  if (n == networks_.end())
    return Status::Error("network " + config.name + " has no switch running");
  const topology::PortConfig* pc = FindPortConfig(config, port);
  auto p = n->second.ports.find(port);
  if (pc == nullptr || p == n->second.ports.end())
    return Status::Error("no port " + port + " in the switch of network " + config.name);
  const StaticKey key{StaticFdbVlan(config, *pc, vid.value_or(0)), mac};
  // An entry the port's VLANs can never use, or one that the next resync
  // would put back as the topology has it, is refused rather than kept.
  const bridge::PortVlanConfig port_vlans = SwitchVlanConfig(config, pc->vlan);
  if (!port_vlans.IsMember(key.first))
    return Status::Error("port " + port + " of network " + config.name + " is not in VLAN " +
                             std::to_string(key.first) + " (" + VlanSummary(port_vlans) +
                             "): frames for that entry could never leave by it",
                         EINVAL);
  const auto topology_statics = TopologyStatics(config);
  if (auto t = topology_statics.find(key); t != topology_statics.end())
    return Status::Error(mac.ToString() + " in VLAN " + std::to_string(key.first) +
                             " is a static entry of the topology (on " + t->second +
                             "): change it in the topology file",
                         EEXIST);
  if (auto installed = n->second.installed_statics.find(key);
      installed != n->second.installed_statics.end()) {
    VF_RETURN_IF_ERROR(n->second.sw->RemoveStaticFdb(key.first, key.second));
    n->second.installed_statics.erase(installed);
  }
  VF_RETURN_IF_ERROR(n->second.sw->AddStaticFdb(key.first, mac, p->second.id));
  n->second.installed_statics[key] = port;
  n->second.runtime_statics[key] = port;
  // The entry forwards now either way; the answer says when it would not
  // come back after a restart.
  Status saved = SaveRuntimeStatics(config.name, n->second);
  if (!saved.ok())
    return Status::Error("static FDB entry " + mac.ToString() + " on " + port +
                             " is in effect but was not saved (it will be lost at netd's "
                             "restart): " +
                             saved.message(),
                         saved.error_number());
  return Status::Ok();
}

Status UserspaceNetworks::DeleteStatic(const topology::NetworkConfig& config, const MacAddress& mac,
                                       std::optional<uint16_t> vid) {
  auto n = networks_.find(config.name);
  if (n == networks_.end())
    return Status::Error("network " + config.name + " has no switch running");
  // Without a VLAN: every static entry of that MAC.
  std::vector<StaticKey> keys;
  for (const auto& [key, port] : n->second.installed_statics)
    if (key.second == mac && (!vid || key.first == *vid)) keys.push_back(key);
  if (keys.empty())
    return Status::Error("no static FDB entry for " + mac.ToString() +
                         (vid ? " in VLAN " + std::to_string(*vid) : "") + " on network " +
                         config.name);
  // The topology's entries would be back at the next resync.
  const auto topology_statics = TopologyStatics(config);
  for (const StaticKey& key : keys)
    if (topology_statics.count(key))
      return Status::Error(mac.ToString() + " in VLAN " + std::to_string(key.first) +
                               " is a static entry of the topology: remove it from the topology "
                               "file (and reload netd)",
                           EPERM);
  for (const StaticKey& key : keys) {
    VF_RETURN_IF_ERROR(n->second.sw->RemoveStaticFdb(key.first, key.second));
    n->second.installed_statics.erase(key);
    n->second.runtime_statics.erase(key);
  }
  Status saved = SaveRuntimeStatics(config.name, n->second);
  if (!saved.ok())
    return Status::Error("static FDB entry " + mac.ToString() +
                             " is deleted but the deletion was not saved (it will be back at "
                             "netd's restart): " +
                             saved.message(),
                         saved.error_number());
  return Status::Ok();
}

Status UserspaceNetworks::Flush(const std::string& network_name, const std::string& port,
                                std::optional<uint16_t> vid) {
  auto n = networks_.find(network_name);
  if (n == networks_.end())
    return Status::Error("network " + network_name + " has no switch running");
  std::optional<bridge::PortId> id;
  if (!port.empty()) {
    auto p = n->second.ports.find(port);
    if (p == n->second.ports.end())
      return Status::Error("no port " + port + " in the switch of network " + network_name);
    id = p->second.id;
  }
  return n->second.sw->FlushFdb(id, vid);
}

}  // namespace vfabric::netd
