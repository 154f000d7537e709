// The kernel bridge as a link: its MAC, MTU and host addresses (topology
// keys "mac", "mtu", "addresses" of a kernel network).
//
// The MAC is pinned because the kernel otherwise gives a bridge the lowest
// MAC among its ports and moves it whenever a port comes or goes (a
// neighbour of the host's address on the bridge then loses it until its ARP
// or ND cache expires). An address set through IFLA_ADDRESS makes the
// kernel stop that (addr_assign_type NET_ADDR_SET, net/bridge/br_stp_if.c).
#pragma once

#include <vector>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {

// Appends to `setup` what gives `network`'s bridge (`bridge`: as read back,
// null when it is to be created) the MAC, MTU and addresses it asks for, and
// to `removals` the deletion of addresses it no longer has. Unset keys are
// left alone; with "addresses" set, every other address on the bridge goes
// except IPv6 link-local ones (the kernel's own).
void PlanBridgeLink(const topology::NetworkConfig& network, const LinkInfo* bridge,
                    const KernelState& actual, std::vector<Operation>* setup,
                    std::vector<Operation>* removals);

}  // namespace vfabric::netd
