// What the kernel planner's files share (planner.cc plans, kernel_settings.cc
// says what a network wants of the kernel, kernel_operation.cc builds and
// describes operations). Private to netd/src.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vfabric/netd/planner.h"

namespace vfabric::netd::planner_internal {

// ---- what a network asks of the kernel (kernel_settings.cc) ----

// Desired port VLANs of one port: vid -> (pvid, untagged).
struct VlanMembership {
  bool pvid = false;
  bool untagged = false;
  friend bool operator==(const VlanMembership&, const VlanMembership&) = default;
};
std::map<uint16_t, VlanMembership> DesiredPortVlans(const topology::NetworkConfig& network,
                                                    const topology::PortConfig& port);
// Whether a bridge has the settings wanted (the VLAN ones only where the
// kernel supports them).
bool SameBridgeSettings(const BridgeSettings& want, const BridgeSettings& have,
                        bool vlan_filtering_supported);
// The settings the operator configured on a bridge, as far as the kernel
// lets them be read (see kernel_settings.cc: ageing during a topology change).
BridgeSettings ConfiguredBridgeSettings(const BridgeStatus& status, const BridgeSettings& want);
// The fields of `want` that are set and differ from `have`.
BridgePortSettings PortSettingsDiff(const BridgePortSettings& want, const BridgePortSettings& have);
// The values `have` holds for each field set in `fields`.
BridgePortSettings PortSettingsRestore(const BridgePortSettings& fields,
                                       const BridgePortSettings& have);
bool AnySet(const BridgePortSettings& s);
BridgePortSettings DesiredPortSettings(const topology::PortConfig& port);
TapSettings DesiredTapSettings(const topology::PortConfig& port);

// ---- operations, each with its undo (kernel_operation.cc) ----

Operation Op(Operation::Kind kind, const std::string& network, const std::string& object);
Operation DeleteOp(const std::string& network, const std::string& name);
Operation SetUpOp(const std::string& network, const std::string& name, bool up);
Operation SetMasterOp(const std::string& network, const std::string& name,
                      const std::string& master, const std::string& old_master);
// Recreating a link we are about to delete: the undo of a deletion.
std::vector<Operation> RecreateOps(const LinkInfo& link, const KernelState& actual);

}  // namespace vfabric::netd::planner_internal
