// netctl graph: netd's networks drawn with Graphviz. GraphDot() turns what
// the views answer (network.show, stp.show, vm.list) into a DOT graph; the
// CLI asks netd for them and hands the text to `dot` for svg or png.
//
// The drawing: one cluster per network with its bridge or switch as a box
// (label: the bridge, datapath, STP), one node per port (its kind and VLAN
// mode), an edge from the bridge to each port labelled with the port's
// spanning tree role and state; a port the tree blocks (state blocking or
// discarding, role alternate or backup) is drawn dashed and red, a port
// that is down or missing grey. Guests are boxes joined to their NICs'
// ports. Pure: the same answers give the same text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/common/status.h"

namespace vfabric::netctl {

struct GraphNetwork {
  nlohmann::json show;  // network.show's "network"
  nlohmann::json stp;   // stp.show's "stp", or null when the network has none
};

// The DOT text of `networks` and the guests of `vms` (vm.list's "vms"; null
// or empty when netd runs none). Guests' NICs on networks not drawn are
// left out, and so are guests with no NIC on a drawn network.
std::string GraphDot(const std::vector<GraphNetwork>& networks, const nlohmann::json& vms);

// A DOT string literal: the text in quotes, `"` and `\` escaped.
std::string DotQuote(const std::string& text);

// Runs Graphviz's `dot -T<format>` on `dot_text` and returns what it
// wrote; an error naming dot and its message (or that it is not installed).
Result<std::string> RenderDot(const std::string& dot_text, const std::string& format);

}  // namespace vfabric::netctl
