// JSON helpers shared by the controller's verbs and views (views.cc).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "vfabric/protocol/protocol.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

// A kernel bridge port's state (BR_STATE_*) by name: "forwarding", ...
const char* StpStateName(uint8_t state);
// A kernel bridge port's spanning tree role as `stp show` gives it ("root",
// "designated", "alternate", "disabled"): the kernel reports states, not roles.
struct BridgeStatus;
struct BridgePortStatus;
const char* KernelPortRole(const BridgeStatus& bridge, const BridgePortStatus& port);
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

// log.level (log_level_verb.cc): {"level"} shows netd's log level; with
// args {"level": LEVEL} sets it first, and says what it was ("previous").
protocol::Reply LogLevelVerb(const nlohmann::json& args);

// The optional "vlan" argument of the fdb and attach verbs: a VLAN id
// 1..4094, or none (missing or null).
protocol::Expected<std::optional<uint16_t>> VlanArg(const nlohmann::json& args);

}  // namespace vfabric::netd
