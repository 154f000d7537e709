// Maps the bridge's own settings and views (settings.h) onto the libraries
// that implement them: fdb, vlan and stp. Private to bridge/src: nothing
// outside the bridge sees these libraries' types through it.
#pragma once

#include "vfabric/bridge/settings.h"
#include "vfabric/fdb/fdb.h"
#include "vfabric/stp/rstp.h"
#include "vfabric/vlan/port.h"

namespace vfabric::bridge {

static_assert(kNoPort == fdb::kNoPort);
static_assert(std::is_same_v<PortId, fdb::PortIndex>);

vlan::VlanSet ToVlan(const VlanSet& set);
VlanSet FromVlan(const vlan::VlanSet& set);
vlan::PortVlanConfig ToVlan(const PortVlanConfig& config);

fdb::Config ToFdb(const FdbSettings& settings);
FdbEntry FromFdb(const fdb::Entry& entry);
FdbCounters FromFdb(const fdb::Counters& counters);

stp::BridgeConfig ToStp(const TreeSettings& settings);
TreeEvent FromStp(const stp::Event& event);
TreeStatus FromStp(const stp::BridgeStatus& status);
StpState FromStp(stp::PortState state);

}  // namespace vfabric::bridge
