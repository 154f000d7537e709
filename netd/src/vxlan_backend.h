// The VXLAN port backend (issue 17, userspace datapath): a topology port of
// kind "vxlan" -- one the loader makes per "flood" address of a userspace
// network's overlay -- is a peer port of the network's bridge::VxlanEndpoint
// (bridge/vxlan_endpoint.h), with no kernel link. Internal to netd
// (KernelPortBackends::For picks it).
#pragma once

#include <memory>

#include "vfabric/netd/port_backend.h"

namespace vfabric::netd {

// One endpoint (UDP socket on the overlay's local:port) per overlay, shared
// by its peer ports: the first port opened makes it, the last one closed
// closes it (the ports own it; the backend only remembers it). A port whose
// overlay (local address, UDP port, VNI) or remote changed has another
// Identity() and is opened anew.
std::unique_ptr<PortBackend> NewVxlanBackend();

}  // namespace vfabric::netd
