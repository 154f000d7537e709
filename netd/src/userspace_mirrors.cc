// Port mirrors of the userspace switches: read back by port name for the
// plan, installed by name (see mirror_plan.h).
#include "mirror_plan.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {

std::vector<topology::MirrorConfig> UserspaceNetworks::ObservedMirrors(const Network& network) {
  return FromSwitchMirrors(network.sw->Mirrors(),
                           [&](bridge::PortId id) -> std::optional<std::string> {
                             for (const auto& [name, port] : network.ports)
                               if (port.id == id) return name;
                             return std::nullopt;
                           });
}

Status UserspaceNetworks::SetMirrors(Network& network,
                                     const std::vector<topology::MirrorConfig>& mirrors) {
  // A port that did not open (reported with its own operation) is not in
  // the switch: the mirrors go in over the ports that are, as the plan
  // meant them to, and the next pass adds the rest when the port is there.
  std::set<std::string> held;
  for (const auto& [name, port] : network.ports) held.insert(name);
  const std::vector<bridge::MirrorSettings> settings =
      ToSwitchMirrors(EffectiveMirrors(mirrors, held),
                      [&](const std::string& name) -> std::optional<bridge::PortId> {
                        auto it = network.ports.find(name);
                        if (it == network.ports.end()) return std::nullopt;
                        return it->second.id;
                      });
  return network.sw->SetMirrors(settings);
}

}  // namespace vfabric::netd
