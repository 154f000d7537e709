// Named network namespaces a plan needs: a veth's peer_netns must exist
// before apply, or the move fails half-way through the transaction.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {

// One message per operation of `plan` that moves a link into a named
// namespace with no entry in `netns_dir` (where `ip netns add` makes them),
// naming the network, the link and the namespace, and how to make it.
std::vector<std::string> MissingNetns(const std::vector<Operation>& plan,
                                      const std::string& netns_dir = "/run/netns");

// The same messages for the veths of `networks` whose peer_netns has no
// entry in `netns_dir`, whether or not the plan moves them now (a port that
// waits for its namespace is not in the plan): what `plan` and `apply`
// refuse, for the networks of the request.
std::vector<std::string> MissingNetns(const std::vector<topology::NetworkConfig>& networks,
                                      const std::string& netns_dir = "/run/netns");

// Every peer_netns of a veth in `desired` with no entry in `netns_dir`,
// with the path looked at: KernelState::missing_netns. Such a port waits
// (PortLinkWaiting) instead of failing every pass: a namespace that is not
// there yet is that port's problem, not every other network's.
std::map<std::string, std::string> MissingPeerNetns(const topology::Topology& desired,
                                                    const std::string& netns_dir = "/run/netns");

}  // namespace vfabric::netd
