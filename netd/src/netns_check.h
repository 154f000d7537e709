// Named network namespaces a plan needs: a veth's peer_netns must exist
// before apply, or the move fails half-way through the transaction.
#pragma once

#include <string>
#include <vector>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {

// One message per operation of `plan` that moves a link into a named
// namespace with no entry in `netns_dir` (where `ip netns add` makes them),
// naming the network, the link and the namespace, and how to make it.
std::vector<std::string> MissingNetns(const std::vector<Operation>& plan,
                                      const std::string& netns_dir = "/run/netns");

}  // namespace vfabric::netd
