// Port mirrors of a userspace network between the topology and its switch:
// what the plan installs (the topology's mirrors over the ports the switch
// holds), how a plan and `network show` describe them.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfabric/bridge/settings.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

// `mirrors` over the ports in `held` (those the switch has or is about to
// have), as bridge::Switch keeps them when a port leaves: a mirror whose
// output is not held goes, absent ports leave the selections, and a mirror
// that selected ports and has none left goes (rather than mirror every
// port).
std::vector<topology::MirrorConfig> EffectiveMirrors(
    const std::vector<topology::MirrorConfig>& mirrors, const std::set<std::string>& held);

// Equal in what the switch does (names, selections, output; not `where`).
bool SameMirrors(const std::vector<topology::MirrorConfig>& a,
                 const std::vector<topology::MirrorConfig>& b);

// "span0 (from a, to a,b, vlan 10 -> mon0)"; "none" for an empty list.
std::string MirrorsText(const std::vector<topology::MirrorConfig>& mirrors);

// [{"name", "select_src_port", "select_dst_port", "select_vlan" (a list
// string or null), "select_all", "output_port"}], the topology's keys.
nlohmann::json MirrorsJson(const std::vector<topology::MirrorConfig>& mirrors);

// Between the topology's names and a switch's port ids. To the switch:
// every name must have an id (EffectiveMirrors over the ports it holds
// first). From it: an id without a name is left out.
std::vector<bridge::MirrorSettings> ToSwitchMirrors(
    const std::vector<topology::MirrorConfig>& mirrors,
    const std::function<std::optional<bridge::PortId>(const std::string&)>& id_of);
std::vector<topology::MirrorConfig> FromSwitchMirrors(
    const std::vector<bridge::MirrorSettings>& mirrors,
    const std::function<std::optional<std::string>(bridge::PortId)>& name_of);

}  // namespace vfabric::netd
