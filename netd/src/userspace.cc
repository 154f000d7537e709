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
#include "vfabric/common/log.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/stp/types.h"

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

bool SameVlan(const vlan::PortVlanConfig& a, const vlan::PortVlanConfig& b) {
  return a.mode == b.mode && a.pvid == b.pvid && a.native == b.native && a.allowed == b.allowed;
}

json CountersJson(const bridge::PortCounters& c) {
  json drops = json::object();
  for (size_t i = 0; i < bridge::kDropReasonCount; ++i)
    drops[std::string(bridge::ToString(static_cast<bridge::DropReason>(i)))] = c.drops[i];
  return {{"rx_packets", c.rx_packets},     {"rx_bytes", c.rx_bytes},
          {"tx_packets", c.tx_packets},     {"tx_bytes", c.tx_bytes},
          {"bpdu_trapped", c.bpdu_trapped}, {"csum_completed", c.csum_completed},
          {"segmented", c.segmented},       {"drops", drops},
          {"drops_total", c.total_drops()}};
}

// The port's VLANs as the kernel view lists them: {"vid","pvid","untagged"}.
json VlanEntries(const vlan::PortVlanConfig& v) {
  json list = json::array();
  if (v.mode == vlan::PortMode::kAccess) {
    list.push_back({{"vid", v.pvid}, {"pvid", true}, {"untagged", true}});
    return list;
  }
  const bool native = v.native != vlan::NativeMode::kNone;
  for (uint16_t vid = 1; vid < 4095; ++vid) {
    const bool is_native = native && vid == v.pvid;
    if (!v.allowed.Contains(vid) && !is_native) continue;
    list.push_back({{"vid", vid},
                    {"pvid", is_native},
                    {"untagged", is_native && v.native == vlan::NativeMode::kUntagged}});
  }
  return list;
}

json SwitchVlanJson(const vlan::PortVlanConfig& v) {
  json out = {{"mode", v.mode == vlan::PortMode::kAccess ? "access" : "trunk"}};
  if (v.mode == vlan::PortMode::kAccess) {
    out["pvid"] = v.pvid;
  } else {
    out["allowed"] = v.allowed.ToString();
    out["native"] = v.native == vlan::NativeMode::kNone ? json(nullptr) : json(v.pvid);
    out["native_tagged"] = v.native == vlan::NativeMode::kTagged;
  }
  return out;
}

// Virtual links (veth, tap) report made-up speeds (10 Gb/s, 10 Mb/s); they
// all count as 10 Gb/s for automatic path costs, so a tap is not costlier
// than a veth.
constexpr uint64_t kVirtualLinkSpeedMbps = 10000;

std::string MachineId() {
  std::ifstream in("/etc/machine-id");
  std::string id;
  if (in && std::getline(in, id) && !id.empty()) return id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) return host;
  return "vfabric";
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

std::string BridgeIdText(const stp::BridgeId& id) { return FormatBridgeId(id.ToU64()); }

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

bridge::TreePortSettings TreeSettings(const topology::PortConfig& port, bool guest) {
  bridge::TreePortSettings settings;
  settings.path_cost = port.cost.value_or(0);
  settings.priority = static_cast<uint8_t>(port.priority.value_or(128));
  settings.admin_edge = port.edge.value_or(guest);
  settings.bpdu_guard = port.bpdu_guard.value_or(false);
  settings.root_block = port.root_block.value_or(false);
  return settings;
}

vlan::PortVlanConfig SwitchVlanConfig(const topology::NetworkConfig& network,
                                      const topology::PortVlanConfig& port) {
  switch (port.mode) {
    case topology::VlanMode::kNone:
      return vlan::PortVlanConfig::Access(network.vlan.default_pvid);
    case topology::VlanMode::kAccess:
      return vlan::PortVlanConfig::Access(port.pvid);
    case topology::VlanMode::kTrunk: {
      vlan::VlanSet allowed;
      for (uint16_t vid = 1; vid < 4095; ++vid)
        if (port.allowed.test(vid)) allowed.Add(vid);
      return vlan::PortVlanConfig::Trunk(allowed, port.native, port.native_tagged);
    }
  }
  return vlan::PortVlanConfig::Access(1);
}

uint16_t StaticFdbVlan(const topology::NetworkConfig& network, const topology::PortConfig& port,
                       uint16_t vlan) {
  if (vlan != 0) return vlan;
  const vlan::PortVlanConfig config = SwitchVlanConfig(network, port.vlan);
  if (config.mode == vlan::PortMode::kTrunk && config.native == vlan::NativeMode::kNone)
    return network.vlan.default_pvid;
  return config.pvid;
}

// "access VLAN 20", "trunk 10,20, native 1": a port's VLANs for messages.
std::string VlanSummary(const vlan::PortVlanConfig& port) {
  if (port.mode == vlan::PortMode::kAccess) return "access VLAN " + std::to_string(port.pvid);
  std::string text = "trunk " + (port.allowed.ToString().empty() ? "-" : port.allowed.ToString());
  if (port.native != vlan::NativeMode::kNone) text += ", native " + std::to_string(port.pvid);
  return text;
}

// The port of `network` named `name`, or nullptr.
const topology::PortConfig* FindPortConfig(const topology::NetworkConfig& network,
                                           const std::string& name) {
  for (const topology::PortConfig& port : network.ports)
    if (port.name == name) return &port;
  return nullptr;
}

// The topology's static entries of `network`: (VLAN, MAC) -> port.
std::map<std::pair<uint16_t, MacAddress>, std::string> TopologyStatics(
    const topology::NetworkConfig& network) {
  std::map<std::pair<uint16_t, MacAddress>, std::string> out;
  for (const topology::StaticFdbEntry& entry : network.fdb.static_entries) {
    const topology::PortConfig* port = FindPortConfig(network, entry.port);
    if (port == nullptr) continue;
    out[{StaticFdbVlan(network, *port, entry.vlan), entry.mac}] = entry.port;
  }
  return out;
}

// A run-time static entry (fdb.add) whose port no longer carries its VLAN:
// the topology changed since it was added, and it goes, as the kernel drops
// a port's FDB entries of a VLAN taken off the port.
bool RuntimeStaticStale(const topology::NetworkConfig& network, uint16_t vlan,
                        const std::string& port_name) {
  const topology::PortConfig* port = FindPortConfig(network, port_name);
  return port != nullptr && !SwitchVlanConfig(network, port->vlan).IsMember(vlan);
}

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

std::string LimitText(uint32_t limit) { return limit == 0 ? "unlimited" : std::to_string(limit); }

fdb::Config SwitchFdbConfig(const topology::NetworkConfig& network) {
  fdb::Config config;
  if (network.fdb.max_entries != 0) config.max_entries = network.fdb.max_entries;
  config.max_per_port = network.fdb.max_per_port;
  // 0 s: learned entries expire at once (the kernel bridge's meaning), not
  // the FDB's "do not learn".
  config.ageing_time_ns = std::max<uint64_t>(1, uint64_t{network.fdb.ageing_time} * 1'000'000'000);
  return config;
}

std::set<std::string> GuestPortNames(const topology::Topology& desired) {
  std::set<std::string> names;
  for (const topology::VmConfig& vm : desired.vms) {
    for (size_t i = 0; i < vm.nics.size(); ++i) {
      names.insert(vm.nics[i].port.empty() ? vm.name + "-eth" + std::to_string(i)
                                           : vm.nics[i].port);
    }
  }
  return names;
}

UserspaceNetworks::UserspaceNetworks(std::string state_dir) : state_dir_(std::move(state_dir)) {}

std::string UserspaceNetworks::StaticsPath(const std::string& network) const {
  return state_dir_ + "/" + network + ".fdb.json";
}

void UserspaceNetworks::LoadRuntimeStatics(const topology::NetworkConfig& config,
                                           Network& network) {
  if (state_dir_.empty()) return;
  std::ifstream in(StaticsPath(config.name));
  if (!in) return;  // none kept
  const json doc = json::parse(in, nullptr, false);
  const std::string what = "userspace network " + config.name + ": " + StaticsPath(config.name);
  if (!doc.is_object() || !doc.contains("entries") || !doc["entries"].is_array()) {
    VF_LOG(kWarning) << what << ": not a static FDB file; ignored";
    return;
  }
  size_t kept = 0;
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
    const std::string name = port.get<std::string>();
    const bool configured = std::any_of(config.ports.begin(), config.ports.end(),
                                        [&](const auto& p) { return p.name == name; });
    if (!configured) {
      VF_LOG(kInfo) << what << ": static " << mac->ToString() << " on " << name
                    << " dropped: the port left the network";
      continue;
    }
    network.runtime_statics[{static_cast<uint16_t>(vlan.get<uint64_t>()), *mac}] = name;
    ++kept;
  }
  if (kept)
    VF_LOG(kInfo) << what << ": " << kept << " static FDB entr" << (kept == 1 ? "y" : "ies")
                  << " restored";
}

void UserspaceNetworks::SaveRuntimeStatics(const std::string& name, const Network& network) const {
  if (state_dir_.empty()) return;
  const std::string path = StaticsPath(name);
  if (network.runtime_statics.empty()) {
    ::unlink(path.c_str());
    return;
  }
  json entries = json::array();
  for (const auto& [key, port] : network.runtime_statics)
    entries.push_back({{"mac", key.second.ToString()}, {"vlan", key.first}, {"port", port}});
  std::error_code error;
  std::filesystem::create_directories(state_dir_, error);
  // Written aside and renamed: a crash leaves the old file or the new one.
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << json{{"network", name}, {"entries", entries}}.dump(1) << "\n";
    if (!out) {
      VF_LOG(kWarning) << "userspace network " << name << ": cannot write " << temporary
                       << "; its run-time static FDB entries will not survive a restart";
      return;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    VF_LOG(kWarning) << "userspace network " << name << ": rename " << temporary << ": "
                     << std::strerror(errno);
}
UserspaceNetworks::~UserspaceNetworks() { StopAll(); }

void UserspaceNetworks::StopAll() {
  for (auto& [name, network] : networks_) {
    if (network.sw) network.sw->Stop();
  }
  networks_.clear();
}

std::vector<std::string> UserspaceNetworks::Sync(const topology::Topology& desired,
                                                 const KernelState& state) {
  std::vector<std::string> errors;
  std::set<std::string> wanted;
  for (const topology::NetworkConfig& config : desired.networks) {
    if (config.datapath != topology::Datapath::kUserspace) continue;
    wanted.insert(config.name);
    Network& network = networks_[config.name];
    SyncNetwork(config, desired, state, network, errors);
    if (!network.sw) networks_.erase(config.name);
  }
  for (auto it = networks_.begin(); it != networks_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    VF_LOG(kInfo) << "userspace network " << it->first << ": stopped (no longer configured)";
    if (!state_dir_.empty()) ::unlink(StaticsPath(it->first).c_str());
    it = networks_.erase(it);
  }
  return errors;
}

std::vector<SwitchChange> UserspaceNetworks::Pending(const topology::Topology& desired) const {
  std::vector<SwitchChange> out;
  const std::set<std::string> guest_ports = GuestPortNames(desired);
  std::set<std::string> wanted;
  for (const topology::NetworkConfig& config : desired.networks) {
    if (config.datapath != topology::Datapath::kUserspace) continue;
    wanted.insert(config.name);
    PendingForNetwork(config, guest_ports, out);
  }
  for (const auto& [name, network] : networks_) {
    if (!wanted.count(name))
      out.push_back({"stop_switch", name, name, "stop userspace switch " + name});
  }
  return out;
}

void UserspaceNetworks::PendingForNetwork(const topology::NetworkConfig& config,
                                          const std::set<std::string>& guest_ports,
                                          std::vector<SwitchChange>& out) const {
  const std::string& name = config.name;
  const std::string on = " on switch " + name;
  auto change = [&](const char* kind, const std::string& object, std::string description) {
    out.push_back({kind, name, object, std::move(description)});
  };
  const fdb::Config fdb_config = SwitchFdbConfig(config);
  const uint64_t ageing_s = fdb_config.ageing_time_ns / 1'000'000'000;
  auto it = networks_.find(name);
  const Network* network = it == networks_.end() ? nullptr : &it->second;
  if (network == nullptr || !network->sw) {
    change("start_switch", name,
           "start userspace switch " + name + " (FDB max_entries " +
               LimitText(fdb_config.max_entries) + ", max_per_port " +
               LimitText(fdb_config.max_per_port) + ", ageing " + std::to_string(ageing_s) + " s)");
  } else {
    if (network->fdb.max_entries != fdb_config.max_entries ||
        network->fdb.max_per_port != fdb_config.max_per_port) {
      change("set_fdb_limits", name,
             "set FDB limits of switch " + name + ": max_entries " +
                 LimitText(network->fdb.max_entries) + " -> " + LimitText(fdb_config.max_entries) +
                 ", max_per_port " + LimitText(network->fdb.max_per_port) + " -> " +
                 LimitText(fdb_config.max_per_port));
    }
    if (network->ageing_time_ns != fdb_config.ageing_time_ns) {
      change("set_fdb_ageing", name,
             "set FDB ageing of switch " + name + ": " +
                 std::to_string(network->ageing_time_ns / 1'000'000'000) + " s -> " +
                 std::to_string(ageing_s) + " s");
    }
  }
  const bool running = network != nullptr && network->sw;
  const bool tree_running = running && network->tree != nullptr;
  const bool tree_restarts =
      tree_running && (!config.stp.enabled || !SameStp(network->tree_config, config.stp));

  std::set<std::string> failed;
  if (running)
    for (const bridge::PortInfo& info : network->sw->Ports())
      if (info.failed) failed.insert(info.name);
  std::set<std::string> configured;
  for (const auto& port : config.ports) configured.insert(port.name);
  if (running)
    for (const auto& [port, state] : network->ports)
      if (!configured.count(port))
        change("remove_switch_port", port, "remove port " + port + " from switch " + name);

  std::set<std::string> joining;  // ports that (re)enter the switch
  for (const topology::PortConfig& port : config.ports) {
    const bool tap = port.kind == topology::PortKind::kTap && !guest_ports.count(port.name);
    const vlan::PortVlanConfig vlan = SwitchVlanConfig(config, port.vlan);
    const std::string how = std::string(tap ? "tap" : "packet socket") + ", " + VlanSummary(vlan);
    const PortState* state = nullptr;
    if (running) {
      auto p = network->ports.find(port.name);
      if (p != network->ports.end()) state = &p->second;
    }
    if (state == nullptr) {
      change("add_switch_port", port.name,
             "add port " + port.name + " to switch " + name + " (" + how + ")");
      joining.insert(port.name);
    } else if (failed.count(port.name) || state->tap != tap) {
      change("reopen_switch_port", port.name,
             "reopen port " + port.name + on + " (" + how + "): " +
                 (failed.count(port.name) ? "its link went away"
                  : tap                   ? "no guest holds its tap now"
                                          : "a guest's QEMU holds its tap now"));
      joining.insert(port.name);
    } else if (!SameVlan(state->vlan, vlan)) {
      change("set_switch_port_vlan", port.name,
             "set VLANs of port " + port.name + on + ": " + VlanSummary(state->vlan) + " -> " +
                 VlanSummary(vlan));
    }
  }

  if (tree_restarts && config.stp.enabled) {
    change("restart_tree", name,
           "restart spanning tree of switch " + name + " (" + StpText(config.stp) +
               "): every port discards until it converges");
  } else if (tree_restarts) {
    change("stop_tree", name, "stop spanning tree of switch " + name + ": every port forwards");
  } else if (config.stp.enabled && !tree_running) {
    change("start_tree", name,
           "start spanning tree of switch " + name + " (" + StpText(config.stp) +
               "): ports discard until it converges");
  } else if (tree_running) {
    for (const topology::PortConfig& port : config.ports) {
      if (joining.count(port.name)) continue;
      auto p = network->ports.find(port.name);
      if (p == network->ports.end()) continue;
      const bridge::TreePortSettings settings =
          TreeSettings(port, guest_ports.count(port.name) != 0);
      if (p->second.tree && SameTreeSettings(*p->second.tree, settings)) continue;
      change("set_tree_port", port.name,
             "set spanning tree port " + port.name + on + " (" + TreeSettingsText(settings) +
                 "): it discards until the tree places it again");
    }
  }

  std::map<StaticKey, std::string> want = TopologyStatics(config);
  if (running)
    for (const auto& [key, port] : network->runtime_statics)
      if (!RuntimeStaticStale(config, key.first, port)) want.emplace(key, port);
  auto entry_text = [](const StaticKey& key, const std::string& port) {
    return key.second.ToString() + " VLAN " + std::to_string(key.first) + " (port " + port + ")";
  };
  if (running) {
    for (const auto& [key, port] : network->installed_statics) {
      auto w = want.find(key);
      if (w != want.end() && w->second == port) continue;
      change("delete_switch_fdb", port,
             "delete static FDB entry " + entry_text(key, port) + " from switch " + name);
    }
  }
  for (const auto& [key, port] : want) {
    if (running) {
      auto installed = network->installed_statics.find(key);
      if (installed != network->installed_statics.end() && installed->second == port) continue;
    }
    change("add_switch_fdb", port,
           "add static FDB entry " + entry_text(key, port) + " to switch " + name);
  }
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

void UserspaceNetworks::SyncNetwork(const topology::NetworkConfig& config,
                                    const topology::Topology& desired, const KernelState& state,
                                    Network& network, std::vector<std::string>& errors) {
  const std::string what = "userspace network " + config.name;
  const fdb::Config fdb_config = SwitchFdbConfig(config);
  if (network.sw && (network.fdb.max_entries != fdb_config.max_entries ||
                     network.fdb.max_per_port != fdb_config.max_per_port)) {
    // The running switch rebuilds its table with the entries it has.
    Status limits = network.sw->SetFdbLimits(fdb_config.max_entries, fdb_config.max_per_port);
    if (limits.ok()) {
      VF_LOG(kInfo) << what << ": FDB limits now max_entries " << fdb_config.max_entries
                    << ", max_per_port " << fdb_config.max_per_port;
      network.fdb.max_entries = fdb_config.max_entries;
      network.fdb.max_per_port = fdb_config.max_per_port;
    } else {
      VF_LOG(kWarning) << what << ": " << limits.message() << "; restarting its switch";
      network.tree.reset();  // before the switch it drives
      network.sw.reset();
      network.ports.clear();
      network.installed_statics.clear();
    }
  }
  if (!network.sw) {
    auto inbox = bridge::BpduInbox::Create();
    if (!inbox.ok()) {
      errors.push_back(what + ": " + inbox.status().message());
      return;
    }
    network.inbox = std::move(inbox).value();
    network.inbox->SetAccepting(false);  // until a tree runs
    bridge::SwitchConfig sc;
    sc.name = config.name;
    sc.fdb = fdb_config;
    sc.fdb.hash_seed = RandomSeed();
    sc.bpdu_hook = network.inbox->Hook();
    auto sw = bridge::Switch::Create(std::move(sc));
    if (!sw.ok()) {
      errors.push_back(what + ": " + sw.status().message());
      return;
    }
    network.sw = std::move(sw).value();
    if (network.runtime_statics.empty()) LoadRuntimeStatics(config, network);
    network.fdb = fdb_config;
    network.ageing_time_ns = fdb_config.ageing_time_ns;
    // The datapath thread must take no signals: netd's loop reads SIGHUP,
    // SIGTERM and SIGINT from a signalfd, which needs them blocked in every
    // thread (the thread inherits the mask in force at Start()).
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    Status started = network.sw->Start();
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (!started.ok()) {
      errors.push_back(what + ": " + started.message());
      network.sw.reset();
      return;
    }
    VF_LOG(kInfo) << what << ": switch started";
  }
  if (network.ageing_time_ns != fdb_config.ageing_time_ns) {
    Status status = network.sw->SetAgeingTime(fdb_config.ageing_time_ns);
    if (status.ok())
      network.ageing_time_ns = fdb_config.ageing_time_ns;
    else
      errors.push_back(what + ": " + status.message());
  }

  // Ports whose fd failed (their link went away) are reopened below.
  for (const bridge::PortInfo& info : network.sw->Ports())
    if (info.failed) RemovePort(network, info.name);
  std::set<std::string> configured;
  for (const auto& port : config.ports) configured.insert(port.name);
  for (auto it = network.ports.begin(); it != network.ports.end();) {
    const std::string name = it->first;
    ++it;
    if (!configured.count(name)) {
      RemovePort(network, name);
      if (std::erase_if(network.runtime_statics, [&](const auto& e) { return e.second == name; }))
        SaveRuntimeStatics(config.name, network);
      VF_LOG(kInfo) << what << ": removed port " << name;
    }
  }

  const std::set<std::string> guest_ports = GuestPortNames(desired);
  for (const topology::PortConfig& port : config.ports) {
    const LinkInfo* link = state.FindLink(port.name);
    if (link == nullptr) {
      RemovePort(network, port.name);
      errors.push_back(what + ": port " + port.name + ": no such link");
      continue;
    }
    const bool tap = port.kind == topology::PortKind::kTap && !guest_ports.count(port.name);
    const vlan::PortVlanConfig vlan = SwitchVlanConfig(config, port.vlan);
    auto existing = network.ports.find(port.name);
    if (existing != network.ports.end() &&
        (existing->second.ifindex != link->ifindex || existing->second.tap != tap)) {
      VF_LOG(kInfo) << what << ": port " << port.name << " was recreated; reopening it";
      RemovePort(network, port.name);
      existing = network.ports.end();
    }
    if (existing != network.ports.end()) {
      if (!SameVlan(existing->second.vlan, vlan)) {
        Status status = network.sw->SetPortVlan(existing->second.id, vlan);
        if (status.ok())
          existing->second.vlan = vlan;
        else
          errors.push_back(what + ": " + status.message());
      }
      continue;
    }
    Result<std::unique_ptr<bridge::Port>> opened = Status::Error("not opened");
    if (tap) {
      auto fd = OpenTap(port.name, /*vnet_hdr=*/true, port.multi_queue);
      if (!fd.ok()) {
        errors.push_back(what + ": port " + port.name + ": " + fd.status().message());
        continue;
      }
      opened = bridge::OpenTapPort(port.name, std::move(fd).value());
    } else {
      opened = bridge::OpenPacketSocketPort(port.name, link->ifindex);
    }
    if (!opened.ok()) {
      errors.push_back(what + ": port " + port.name + ": " + opened.status().message());
      continue;
    }
    bridge::PortSettings settings;
    settings.vlan = vlan;
    // With a tree, a port forwards only once the tree says so.
    if (network.tree) settings.stp = bridge::StpState::kDiscarding;
    auto id = network.sw->AddPort(std::move(opened).value(), settings);
    if (!id.ok()) {
      errors.push_back(what + ": port " + port.name + ": " + id.status().message());
      continue;
    }
    network.ports[port.name] = {*id, link->ifindex, tap, vlan, false, std::nullopt};
    VF_LOG(kInfo) << what << ": port " << port.name << " (" << (tap ? "tap" : "packet socket")
                  << ", ifindex " << link->ifindex << ") added as switch port " << *id;
  }

  SyncTree(config, guest_ports, state, network, errors);

  // Static FDB entries: the topology's and the run-time ones.
  const size_t runtime_before = network.runtime_statics.size();
  std::erase_if(network.runtime_statics, [&](const auto& entry) {
    if (!RuntimeStaticStale(config, entry.first.first, entry.second)) return false;
    VF_LOG(kWarning) << what << ": static FDB entry " << entry.first.second.ToString() << " (VLAN "
                     << entry.first.first << ") removed: port " << entry.second
                     << " is no longer in that VLAN";
    return true;
  });
  if (network.runtime_statics.size() != runtime_before) SaveRuntimeStatics(config.name, network);
  std::map<StaticKey, std::string> want = TopologyStatics(config);
  for (const auto& [key, port] : network.runtime_statics) want.emplace(key, port);
  for (auto it = network.installed_statics.begin(); it != network.installed_statics.end();) {
    auto w = want.find(it->first);
    if (w != want.end() && w->second == it->second) {
      ++it;
      continue;
    }
    Status status = network.sw->RemoveStaticFdb(it->first.first, it->first.second);
    if (!status.ok()) VF_LOG(kWarning) << what << ": " << status.message();
    it = network.installed_statics.erase(it);
  }
  for (const auto& [key, port] : want) {
    if (network.installed_statics.count(key)) continue;
    auto p = network.ports.find(port);
    if (p == network.ports.end()) continue;  // reported above
    Status status = network.sw->AddStaticFdb(key.first, key.second, p->second.id);
    if (status.ok())
      network.installed_statics[key] = port;
    else
      errors.push_back(what + ": static FDB " + key.second.ToString() + ": " + status.message());
  }
}

void UserspaceNetworks::SyncTree(const topology::NetworkConfig& config,
                                 const std::set<std::string>& guest_ports, const KernelState& state,
                                 Network& network, std::vector<std::string>& errors) {
  const std::string what = "userspace network " + config.name + ": spanning tree";
  if (network.tree && (!config.stp.enabled || !SameStp(network.tree_config, config.stp))) {
    network.tree.reset();
    network.inbox->SetAccepting(false);
    for (auto& [name, port] : network.ports) {
      port.tree.reset();
      // Without a tree every port forwards; with a new one they start over.
      const auto state_now =
          config.stp.enabled ? bridge::StpState::kDiscarding : bridge::StpState::kForwarding;
      Status s = network.sw->SetPortStpState(port.id, state_now);
      if (!s.ok()) errors.push_back(what + ": " + s.message());
    }
    VF_LOG(kInfo) << what
                  << (config.stp.enabled ? ": settings changed; restarting it"
                                         : ": disabled; every port forwards");
  }
  if (config.stp.enabled && !network.tree) {
    bridge::SpanningTreeConfig tc;
    tc.name = config.name;
    tc.bridge.address = TreeBridgeAddress(MachineId(), config.name);
    tc.bridge.priority = static_cast<uint16_t>(config.stp.priority);
    tc.bridge.mode =
        config.stp.mode == topology::StpMode::kRstp ? stp::Mode::kRstp : stp::Mode::kStp;
    tc.bridge.hello_time = config.stp.hello_time;
    tc.bridge.forward_delay = config.stp.forward_delay;
    tc.bridge.max_age = config.stp.max_age;
    const std::string network_name = config.name;
    tc.on_event = [network_name](const stp::Event& event, std::string_view port) {
      const std::string where = "userspace network " + network_name + ": spanning tree" +
                                (port.empty() ? std::string() : ": port " + std::string(port));
      switch (event.kind) {
        case stp::Event::Kind::kBpduGuardTrip:
          VF_LOG(kWarning) << where
                           << ": BPDU received on a bpdu_guard port; port disabled (bring its "
                              "link down and up to re-enable it)";
          break;
        case stp::Event::Kind::kNewRoot:
          VF_LOG(kInfo) << where << ": root bridge changed";
          break;
        case stp::Event::Kind::kTopologyChange:
          VF_LOG(kDebug) << where << ": topology change";
          break;
        case stp::Event::Kind::kProtocolMigration:
          VF_LOG(kInfo) << where << ": protocol migration (RSTP <-> 802.1D STP peer)";
          break;
      }
    };
    (void)network.inbox->Drain();  // BPDUs from before this tree
    network.inbox->SetAccepting(true);
    auto tree = bridge::SpanningTree::Create(*network.sw, network.inbox, std::move(tc));
    if (!tree.ok()) {
      network.inbox->SetAccepting(false);
      errors.push_back(what + ": " + tree.status().message());
      return;
    }
    // The thread must take no signals (see the switch's Start above).
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    Status started = (*tree)->Start();
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (!started.ok()) {
      network.inbox->SetAccepting(false);
      errors.push_back(what + ": " + started.message());
      return;
    }
    network.tree = std::move(tree).value();
    network.tree_config = config.stp;
    VF_LOG(kInfo) << what << ": started (" << topology::ToString(config.stp.mode) << ", bridge id "
                  << BridgeIdText(network.tree->GetStatus().bridge_id) << ")";
  }
  if (!network.tree) return;
  for (const topology::PortConfig& port : config.ports) {
    auto p = network.ports.find(port.name);
    if (p == network.ports.end()) continue;
    PortState& ps = p->second;
    const LinkInfo* link = state.FindLink(port.name);
    const bool up = link != nullptr && link->oper_up;
    const bridge::TreePortSettings settings = TreeSettings(port, guest_ports.count(port.name) != 0);
    if (ps.tree && !SameTreeSettings(*ps.tree, settings)) {
      Status left = network.tree->RemovePort(ps.id);
      if (!left.ok()) errors.push_back(what + ": " + left.message());
      ps.tree.reset();
    }
    if (!ps.tree) {
      Status joined = network.tree->AddPort(ps.id, port.name, settings, up, kVirtualLinkSpeedMbps);
      if (!joined.ok()) {
        errors.push_back(what + ": " + joined.message());
        continue;
      }
      ps.tree = settings;
      ps.link_up = up;
      continue;
    }
    if (up != ps.link_up) {
      Status changed = network.tree->SetPortLink(ps.id, up, kVirtualLinkSpeedMbps);
      if (!changed.ok()) {
        errors.push_back(what + ": " + changed.message());
        continue;
      }
      ps.link_up = up;
      VF_LOG(kInfo) << what << ": port " << port.name << " link " << (up ? "up" : "down");
    }
  }
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
  const stp::BridgeStatus status = network.tree->GetStatus();
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
  json ports = json::array();
  for (const stp::PortStatus& port : status.ports) {
    const auto& c = port.counters;
    ports.push_back({{"name", network.tree->PortName(port.number)},
                     {"port_no", port.number},
                     {"port_id", port.id},
                     {"priority", stp::PortPriorityOf(port.id)},
                     {"role", std::string(stp::ToString(port.role))},
                     {"state", std::string(stp::ToString(port.state))},
                     {"enabled", port.enabled},
                     {"cost", port.path_cost},
                     {"designated_root", BridgeIdText(port.designated_root)},
                     {"designated_bridge", BridgeIdText(port.designated_bridge)},
                     {"designated_port", port.designated_port},
                     {"designated_cost", port.designated_cost},
                     {"protocol", std::string(stp::ToString(port.protocol))},
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
    const stp::BridgeStatus status = n->second.tree->GetStatus();
    for (const stp::PortStatus& tree_port : status.ports) {
      if (n->second.tree->PortName(tree_port.number) != port) continue;
      out["cost"] = tree_port.path_cost;
      out["priority"] = stp::PortPriorityOf(tree_port.id);
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
  for (const fdb::Entry& e : *entries) {
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
    const vlan::PortVlanConfig want = SwitchVlanConfig(config, port.vlan);
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
  const vlan::PortVlanConfig port_vlans = SwitchVlanConfig(config, pc->vlan);
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
  SaveRuntimeStatics(config.name, n->second);
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
  SaveRuntimeStatics(config.name, n->second);
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
