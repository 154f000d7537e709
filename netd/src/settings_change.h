// "old -> new" text for the kernel plan's settings changes, as the
// userspace switch's plan lines have it ("forward_delay 15s -> 4s").
#pragma once

#include <string>

#include "vfabric/netd/kernel.h"

namespace vfabric::netd {

// The fields that differ, "name old -> new" joined by ", "; "" when none do.
// Timers and ageing in seconds ("1.5s" when not whole).
std::string BridgeSettingsChange(const BridgeSettings& from, const BridgeSettings& to);
// The fields set in `to`, each "name old -> new" (old "-" when `from` lacks it).
std::string PortSettingsChange(const BridgePortSettings& from, const BridgePortSettings& to);

}  // namespace vfabric::netd
