// What a network asks of the kernel, in the kernel's units: the bridge's
// settings (STP, ageing, VLAN filtering), a port's bridge-port settings,
// VLANs and tap settings, and how what the kernel reports compares with
// them. Pure functions, for the kernel planner (planner.cc).
#include <algorithm>
#include <map>

#include "planner_internal.h"

namespace vfabric::netd {
namespace planner_internal {

using topology::NetworkConfig;
using topology::PortConfig;

std::map<uint16_t, VlanMembership> DesiredPortVlans(const NetworkConfig& network,
                                                    const PortConfig& port) {
  std::map<uint16_t, VlanMembership> vlans;
  switch (port.vlan.mode) {
    case topology::VlanMode::kNone:
      vlans[network.vlan.default_pvid] = {true, true};
      break;
    case topology::VlanMode::kAccess:
      vlans[port.vlan.pvid] = {true, true};
      break;
    case topology::VlanMode::kTrunk:
      for (uint16_t vid = 1; vid < 4095; ++vid)
        if (port.vlan.allowed.test(vid)) vlans[vid] = {false, false};
      if (port.vlan.native != 0) vlans[port.vlan.native] = {true, !port.vlan.native_tagged};
      break;
  }
  return vlans;
}

bool SameBridgeSettings(const BridgeSettings& want, const BridgeSettings& have,
                        bool vlan_filtering_supported) {
  BridgeSettings a = want, b = have;
  if (!vlan_filtering_supported) {
    // The kernel neither takes nor reports these; comparing them would make
    // every bridge look drifted forever.
    a.vlan_filtering = b.vlan_filtering = false;
    a.default_pvid = b.default_pvid = 1;
  }
  return a == b;
}

// The settings the operator configured on a bridge, as far as the kernel
// lets them be read. While the kernel's own STP runs a topology change it
// ages the FDB fast: br->ageing_time becomes 2 x forward_delay, which is what
// IFLA_BR_AGEING_TIME reports, while the configured value waits in
// br->bridge_ageing_time (not exported) to be restored when the change ends
// (net/bridge/br_stp.c, __br_set_topology_change). Writing the configured
// ageing back then would end the fast ageing STP asked for, so during a
// change the ageing is taken to be what `want` says; a real difference shows
// once the change is over (the next repair or resync).
BridgeSettings ConfiguredBridgeSettings(const BridgeStatus& status, const BridgeSettings& want) {
  BridgeSettings have = status.settings;
  const bool changing =
      status.topology_change.value_or(0) != 0 || status.topology_change_timer_cs.value_or(0) != 0;
  // Both are read back rounded to whole jiffies and converted on their own:
  // allow one centisecond either way.
  const int64_t fast = 2 * int64_t{have.forward_delay_cs};
  const int64_t ageing = have.ageing_time_cs;
  if (have.stp_enabled && changing && ageing >= fast - 1 && ageing <= fast + 1)
    have.ageing_time_cs = want.ageing_time_cs;
  return have;
}

// The fields of `want` that are set and differ from `have`.
BridgePortSettings PortSettingsDiff(const BridgePortSettings& want,
                                    const BridgePortSettings& have) {
  BridgePortSettings diff;
  auto pick = [](const auto& w, const auto& h, auto& out) {
    if (w.has_value() && w != h) out = w;
  };
  pick(want.cost, have.cost, diff.cost);
  pick(want.priority, have.priority, diff.priority);
  pick(want.learning, have.learning, diff.learning);
  pick(want.flood, have.flood, diff.flood);
  pick(want.hairpin, have.hairpin, diff.hairpin);
  pick(want.isolated, have.isolated, diff.isolated);
  pick(want.bpdu_guard, have.bpdu_guard, diff.bpdu_guard);
  pick(want.root_block, have.root_block, diff.root_block);
  return diff;
}

// The values `have` holds for each field set in `fields`.
BridgePortSettings PortSettingsRestore(const BridgePortSettings& fields,
                                       const BridgePortSettings& have) {
  BridgePortSettings old;
  if (fields.cost) old.cost = have.cost;
  if (fields.priority) old.priority = have.priority;
  if (fields.learning) old.learning = have.learning;
  if (fields.flood) old.flood = have.flood;
  if (fields.hairpin) old.hairpin = have.hairpin;
  if (fields.isolated) old.isolated = have.isolated;
  if (fields.bpdu_guard) old.bpdu_guard = have.bpdu_guard;
  if (fields.root_block) old.root_block = have.root_block;
  return old;
}

bool AnySet(const BridgePortSettings& s) { return s != BridgePortSettings{}; }

BridgePortSettings DesiredPortSettings(const PortConfig& port) {
  BridgePortSettings s;
  s.cost = port.cost;
  s.priority = port.priority;
  s.learning = port.learning;
  s.flood = port.flood;
  s.hairpin = port.hairpin;
  s.isolated = port.isolated;
  s.bpdu_guard = port.bpdu_guard;
  s.root_block = port.root_block;
  return s;
}

TapSettings DesiredTapSettings(const PortConfig& port) {
  TapSettings s;
  s.owner = port.owner;
  s.group = port.group;
  s.multi_queue = port.multi_queue;
  s.vnet_hdr = port.vnet_hdr;
  return s;
}

}  // namespace planner_internal

BridgeSettings DesiredBridgeSettings(const topology::NetworkConfig& network) {
  BridgeSettings s;
  s.stp_enabled = network.stp.enabled;
  s.priority = network.stp.priority;
  s.hello_time_cs = network.stp.hello_time * 100;
  s.forward_delay_cs = network.stp.forward_delay * 100;
  s.max_age_cs = network.stp.max_age * 100;
  s.ageing_time_cs = network.fdb.ageing_time * 100;
  s.vlan_filtering = network.vlan.filtering;
  s.default_pvid = network.vlan.default_pvid;
  return s;
}

}  // namespace vfabric::netd
