// JSON helpers shared by the controller's verbs and views (views.cc).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "vfabric/topology/topology.h"

namespace vfabric::netd {

// A kernel bridge port's state (BR_STATE_*) by name: "forwarding", ...
const char* StpStateName(uint8_t state);
// Centiseconds as seconds: an integer when whole.
nlohmann::json Seconds(uint64_t centiseconds);
// A value, or null.
nlohmann::json Optional(const auto& value) {
  if (!value) return nullptr;
  return *value;
}
// A topology port's VLAN config as the views show it.
nlohmann::json VlanJson(const topology::PortVlanConfig& vlan);
// The network of `topology` named `name`, or null.
const topology::NetworkConfig* FindNetwork(const topology::Topology& topology,
                                           const std::string& name);

}  // namespace vfabric::netd
