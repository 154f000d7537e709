// What netd shows of a vhost-user port beyond the switch's counters: its
// connection and the backend's own counters (bridge::VhostUserPort reads
// them from any thread).
#include <cstdio>

#include "vfabric/bridge/vhost_user_port.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {

using nlohmann::json;

namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

const bridge::VhostUserPort* UserspaceNetworks::FindVhostUserPort(
    const std::string& network_name, const std::string& port_name) const {
  auto n = networks_.find(network_name);
  if (n == networks_.end()) return nullptr;
  auto p = n->second.ports.find(port_name);
  if (p == n->second.ports.end()) return nullptr;
  if (p->second.port == nullptr || p->second.port->kind() != bridge::PortKind::kVhostUser)
    return nullptr;
  return static_cast<const bridge::VhostUserPort*>(p->second.port);
}

json UserspaceNetworks::VhostUserNegotiated(const std::string& network_name,
                                            const std::string& port_name) const {
  const bridge::VhostUserPort* port = FindVhostUserPort(network_name, port_name);
  if (port == nullptr) return nullptr;
  const bridge::VhostUserNegotiated v = port->negotiated();
  json rings = json::array();
  for (size_t i = 0; i < vhost_user::Backend::kRings; ++i) {
    const bridge::VhostUserRingState& r = v.rings[i];
    rings.push_back({{"index", i},
                     {"direction", i == vhost_user::Backend::kRxRing ? "to_guest" : "from_guest"},
                     {"started", r.started},
                     {"enabled", r.enabled},
                     {"ready", r.ready},
                     {"broken", r.broken},
                     {"size", r.size},
                     {"last_avail_idx", r.last_avail_idx},
                     {"used_idx", r.used_idx}});
  }
  return {{"features", vhost_user::FeatureNames(v.features)},
          {"features_bits", Hex(v.features)},
          {"protocol_features", vhost_user::ProtocolFeatureNames(v.protocol_features)},
          {"protocol_features_bits", Hex(v.protocol_features)},
          {"queue_pairs", v.queue_pairs},
          {"mtu", v.mtu},
          {"memory_regions", v.memory_regions},
          {"memory_regions_sealed", v.memory_regions_sealed},
          {"rings", rings}};
}

json UserspaceNetworks::VhostUserState(const std::string& network_name,
                                       const std::string& port_name) const {
  const bridge::VhostUserPort* port = FindVhostUserPort(network_name, port_name);
  if (port == nullptr) return nullptr;
  const bridge::VhostUserStats s = port->stats();
  uint64_t ring_errors = 0;
  for (uint64_t count : s.ring_errors) ring_errors += count;
  return {{"connected", port->connected()},
          {"up", port->up()},
          {"counters",
           {{"connections", s.connections},
            {"disconnects", s.disconnects},
            {"messages", s.messages},
            {"messages_refused", s.messages_refused},
            {"refused_multiqueue", s.refused_multiqueue},
            {"refused_packed_ring", s.refused_packed_ring},
            {"kicks", s.kicks},
            {"calls", s.calls},
            {"calls_suppressed", s.calls_suppressed},
            {"tx_not_ready", s.tx_not_ready},
            {"tx_no_buffers", s.tx_no_buffers},
            {"tx_too_big", s.tx_too_big},
            {"offload_refused", s.offload_refused},
            {"rx_oversize", s.rx_oversize},
            {"rx_bad_header", s.rx_bad_header},
            {"ring_errors", ring_errors},
            {"memory_faults", s.memory_faults}}}};
}

}  // namespace vfabric::netd
