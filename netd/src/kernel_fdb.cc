// fdb.add, fdb.del and fdb.flush on a kernel network: what `bridge fdb
// add/del/flush` does, through netlink (RTM_NEWNEIGH / RTM_DELNEIGH, AF_BRIDGE,
// NTF_MASTER, on the bridge port).
//
// An entry added here is part of the desired state (Controller::Desired
// lays kernel_statics_ over the topology), so drift repair keeps it like one
// of the topology's, and it is kept in kernel_fdb_dir_ so that a netd
// restart neither deletes it as drift nor forgets it. fdb.del removes only
// such entries: the topology's come back at the next pass, so deleting one
// is refused with a pointer to the topology file.
#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "overlay_plan.h"
#include "vfabric/common/atomic_file.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/controller.h"
#include "views.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using protocol::Error;
using protocol::Reply;
using protocol::StringArg;
using topology::NetworkConfig;
using topology::StaticFdbEntry;

std::string VlanText(uint16_t vlan) { return vlan ? " in VLAN " + std::to_string(vlan) : ""; }

json EntryJson(const MacAddress& mac, uint16_t vlan, const std::string& port, bool is_static) {
  return {{"mac", mac.ToString()},
          {"vlan", vlan == 0 ? json(nullptr) : json(vlan)},
          {"port", port},
          {"static", is_static},
          {"local", false}};
}

// The VLAN an entry added without --vlan goes in on a VLAN-filtering bridge:
// the port's untagged one (0 when it has none).
uint16_t UntaggedVlan(const NetworkConfig& network, const topology::PortConfig& port) {
  switch (port.vlan.mode) {
    case topology::VlanMode::kNone:
      return network.vlan.default_pvid;
    case topology::VlanMode::kAccess:
      return port.vlan.pvid;
    case topology::VlanMode::kTrunk:
      return port.vlan.native;
  }
  return 0;
}

std::string KernelStaticsPath(const std::string& dir, const std::string& network) {
  return dir + "/" + network + ".fdb.json";
}

}  // namespace

void Controller::SetKernelFdbDir(std::string dir) {
  kernel_fdb_dir_ = std::move(dir);
  kernel_statics_.clear();
  std::error_code error;
  for (const auto& file : std::filesystem::directory_iterator(kernel_fdb_dir_, error)) {
    const std::string path = file.path().string();
    if (file.path().extension() != ".json") continue;
    std::ifstream in(path);
    const json doc = json::parse(in, nullptr, false);
    if (!doc.is_object() || !doc.value("network", json()).is_string() ||
        !doc.value("entries", json()).is_array()) {
      VF_LOG(kWarning) << path << ": not a static FDB file; ignored";
      continue;
    }
    const std::string network = doc["network"].get<std::string>();
    for (const json& entry : doc["entries"]) {
      auto mac = entry.is_object() && entry.value("mac", json()).is_string()
                     ? MacAddress::Parse(entry["mac"].get<std::string>())
                     : std::nullopt;
      const json vlan = entry.is_object() ? entry.value("vlan", json()) : json();
      const json port = entry.is_object() ? entry.value("port", json()) : json();
      if (!mac || !vlan.is_number_unsigned() || vlan.get<uint64_t>() > 4094 || !port.is_string()) {
        VF_LOG(kWarning) << path << ": malformed entry " << entry.dump() << "; ignored";
        continue;
      }
      StaticFdbEntry kept;
      kept.mac = *mac;
      kept.vlan = static_cast<uint16_t>(vlan.get<uint64_t>());
      kept.port = port.get<std::string>();
      kept.where.file = path;
      kernel_statics_[network].push_back(std::move(kept));
    }
    VF_LOG(kInfo) << "network " << network << ": " << path << ": "
                  << kernel_statics_[network].size() << " static FDB entries restored";
  }
}

Status Controller::SaveKernelStatics(const std::string& network) const {
  if (kernel_fdb_dir_.empty()) return Status::Ok();
  const std::string path = KernelStaticsPath(kernel_fdb_dir_, network);
  const std::string what = "save run-time static FDB entries of network " + network;
  auto it = kernel_statics_.find(network);
  if (it == kernel_statics_.end() || it->second.empty())
    return RemoveFileDurably(path).WithContext(what);
  json entries = json::array();
  for (const StaticFdbEntry& e : it->second)
    entries.push_back({{"mac", e.mac.ToString()}, {"vlan", e.vlan}, {"port", e.port}});
  std::error_code error;
  std::filesystem::create_directories(kernel_fdb_dir_, error);
  if (error)
    return Status::Error(what + ": create " + kernel_fdb_dir_ + ": " + error.message(),
                         error.value());
  return WriteFileAtomically(path, json{{"network", network}, {"entries", entries}}.dump(1) + "\n")
      .WithContext(what);
}

void Controller::AddKernelStatics(topology::Topology& desired) const {
  for (NetworkConfig& network : desired.networks) {
    if (network.datapath != topology::Datapath::kKernel) continue;
    auto it = kernel_statics_.find(network.name);
    if (it == kernel_statics_.end()) continue;
    for (const StaticFdbEntry& entry : it->second) {
      // The topology's own entry for the address wins; an entry on a port
      // the network no longer has waits until the port is back.
      const bool taken = std::any_of(
          network.fdb.static_entries.begin(), network.fdb.static_entries.end(),
          [&](const StaticFdbEntry& e) { return e.mac == entry.mac && e.vlan == entry.vlan; });
      const bool has_port =
          std::any_of(network.ports.begin(), network.ports.end(),
                      [&](const topology::PortConfig& p) { return p.name == entry.port; });
      if (!taken && has_port) network.fdb.static_entries.push_back(entry);
    }
  }
}

Reply Controller::KernelFdbVerb(const std::string& verb, const NetworkConfig& network,
                                const json& args) {
  const std::string& name = network.name;
  VF_ASSIGN_OR_RETURN_ERROR(const std::optional<uint16_t> vlan_arg, VlanArg(args));
  if (vlan_arg && !network.vlan.filtering)
    return Error{"bad_request", "network " + name +
                                    " does not filter VLANs: its FDB entries have no VLAN "
                                    "(leave out --vlan)"};
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) return Error{"failed", state.status().message()};
  const LinkInfo* bridge = state->FindLink(network.bridge);
  if (bridge == nullptr)
    return Error{"not_found",
                 "bridge " + network.bridge + " of network " + name + " does not exist yet"};
  std::vector<StaticFdbEntry>& runtime = kernel_statics_[name];

  if (verb == protocol::verb::kFdbFlush) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", false));
    const LinkInfo* port_link = nullptr;
    if (!port.empty()) {
      port_link = state->FindLink(port);
      if (port_link == nullptr || port_link->master_ifindex != bridge->ifindex)
        return Error{"not_found", "no port " + port + " on the bridge of network " + name};
    }
    // Learned entries only, as the userspace switch's flush: the statics
    // (the topology's, fdb add's) and the links' own addresses stay.
    json removed = json::array();
    std::vector<std::string> errors;
    for (const FdbEntry& entry : state->fdb) {
      if (entry.is_static || entry.is_local) continue;
      const LinkInfo* link = state->FindLink(entry.port_ifindex);
      if (link == nullptr || link->master_ifindex != bridge->ifindex) continue;
      // Not learned here: FRR's remote MACs on an EVPN overlay's vxlan port.
      if (ControlPlaneFdbEntry(network, entry, *link)) continue;
      if (port_link != nullptr && link != port_link) continue;
      if (vlan_arg && entry.vlan != *vlan_arg) continue;
      // RTM_DELNEIGH removes a learned entry as it does a static one.
      Status status = kernel_.DeleteStaticFdb(link->name, entry.mac, entry.vlan);
      if (status.error_number() == ENOENT) continue;  // aged out meanwhile
      if (!status.ok()) {
        errors.push_back(status.message());
        continue;
      }
      removed.push_back(EntryJson(entry.mac, entry.vlan, link->name, false));
    }
    VF_LOG(kInfo) << "network " << name << ": " << removed.size()
                  << " learned FDB entries flushed on request"
                  << (port.empty() ? "" : " (port " + port + ")")
                  << (vlan_arg ? " (vlan " + std::to_string(*vlan_arg) + ")" : "");
    json result = {
        {"network", name}, {"flushed", true}, {"count", removed.size()}, {"removed", removed}};
    if (!errors.empty()) result["errors"] = errors;
    return result;
  }

  VF_ASSIGN_OR_RETURN_ERROR(const std::string text, StringArg(args, "mac", true));
  const std::optional<MacAddress> mac = MacAddress::Parse(text);
  if (!mac || mac->IsMulticast() || mac->IsZero())
    return Error{"bad_request", "argument \"mac\" must be a unicast MAC address"};
  auto is_runtime = [&](const StaticFdbEntry& e) {
    return std::any_of(runtime.begin(), runtime.end(), [&](const StaticFdbEntry& r) {
      return r.mac == e.mac && r.vlan == e.vlan && r.port == e.port;
    });
  };

  if (verb == protocol::verb::kFdbAdd) {
    VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", true));
    auto p = std::find_if(network.ports.begin(), network.ports.end(),
                          [&](const topology::PortConfig& c) { return c.name == port; });
    if (p == network.ports.end())
      return Error{"not_found", "no port \"" + port + "\" in network \"" + name + "\""};
    uint16_t vlan = vlan_arg.value_or(0);
    if (network.vlan.filtering && !vlan_arg) {
      vlan = UntaggedVlan(network, *p);
      if (vlan == 0)
        return Error{"bad_request", "port " + port + " of network " + name +
                                        " carries no untagged VLAN: say which with --vlan"};
    }
    for (const StaticFdbEntry& e : network.fdb.static_entries)
      if (e.mac == *mac && e.vlan == vlan && !is_runtime(e))
        return Error{"failed", mac->ToString() + VlanText(vlan) +
                                   " is a static entry of the topology (on " + e.port +
                                   "): change it in the topology file"};
    Status status = kernel_.AddStaticFdb(port, *mac, vlan);
    if (!status.ok()) return Error{"failed", status.message()};
    // One entry per address and VLAN: a new port replaces the old one, as the
    // kernel's NLM_F_REPLACE did (an entry left on another port is deleted).
    for (const StaticFdbEntry& e : runtime) {
      if (e.mac != *mac || e.vlan != vlan || e.port == port) continue;
      Status old = kernel_.DeleteStaticFdb(e.port, e.mac, e.vlan);
      if (!old.ok() && old.error_number() != ENOENT)
        VF_LOG(kWarning) << "network " << name << ": " << old.message();
    }
    std::erase_if(runtime,
                  [&](const StaticFdbEntry& e) { return e.mac == *mac && e.vlan == vlan; });
    StaticFdbEntry entry;
    entry.mac = *mac;
    entry.vlan = vlan;
    entry.port = port;
    runtime.push_back(entry);
    VF_LOG(kInfo) << "network " << name << ": static FDB " << mac->ToString() << VlanText(vlan)
                  << " -> " << port << " added on request";
    json result = {{"network", name},
                   {"entries", json::array({EntryJson(*mac, vlan, port, true)})}};
    Status saved = SaveKernelStatics(name);
    if (!saved.ok())
      result["errors"] =
          json::array({"static FDB entry " + mac->ToString() + " on " + port +
                       " is in effect but was not saved (it will be lost at netd's restart): " +
                       saved.message()});
    return result;
  }

  // fdb.del: every run-time entry of the address (in the VLAN, with --vlan).
  for (const StaticFdbEntry& e : network.fdb.static_entries)
    if (e.mac == *mac && (!vlan_arg || e.vlan == *vlan_arg) && !is_runtime(e))
      return Error{"failed", mac->ToString() + VlanText(e.vlan) +
                                 " is a static entry of the topology: remove it from the "
                                 "topology file (and reload netd)"};
  json removed = json::array();
  std::vector<std::string> errors;
  for (auto it = runtime.begin(); it != runtime.end();) {
    if (it->mac != *mac || (vlan_arg && it->vlan != *vlan_arg)) {
      ++it;
      continue;
    }
    Status status = kernel_.DeleteStaticFdb(it->port, it->mac, it->vlan);
    // Not there (its port was deleted with it): the entry is gone all the same.
    if (!status.ok() && status.error_number() != ENOENT && status.error_number() != ENODEV) {
      errors.push_back(status.message());
      ++it;
      continue;
    }
    removed.push_back(EntryJson(it->mac, it->vlan, it->port, true));
    it = runtime.erase(it);
  }
  if (removed.empty() && errors.empty())
    return Error{"not_found", "no static FDB entry for " + mac->ToString() +
                                  (vlan_arg ? " in VLAN " + std::to_string(*vlan_arg) : "") +
                                  " on network " + name};
  if (removed.empty()) return Error{"failed", errors.front()};
  VF_LOG(kInfo) << "network " << name << ": " << removed.size() << " static FDB entr"
                << (removed.size() == 1 ? "y" : "ies") << " of " << mac->ToString()
                << " deleted on request";
  json result = {{"network", name}, {"count", removed.size()}, {"removed", removed}};
  Status saved = SaveKernelStatics(name);
  if (!saved.ok())
    errors.push_back("static FDB entry " + mac->ToString() +
                     " is deleted but the deletion was not saved (it will be back at netd's "
                     "restart): " +
                     saved.message());
  if (!errors.empty()) result["errors"] = errors;
  return result;
}

}  // namespace vfabric::netd
