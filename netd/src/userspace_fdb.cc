// The fdb verbs on userspace networks: fdb.add / fdb.del (static entries
// added at run time, kept on disk by the RuntimeStaticsStore) and fdb.flush.
#include <cerrno>
#include <string>
#include <vector>

#include "vfabric/netd/userspace.h"

namespace vfabric::netd {

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
  Status saved = statics_.Save(config.name, n->second.runtime_statics);
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
  Status saved = statics_.Save(config.name, n->second.runtime_statics);
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
