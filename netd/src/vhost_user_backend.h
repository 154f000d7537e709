// The vhost-user port backend (issue 16): a topology port of kind
// "vhost-user" is a bridge::VhostUserPort on the socket the port names,
// with no kernel link. Internal to netd (KernelPortBackends::For picks it;
// tests/unit/netd opens it on sockets of its own).
#pragma once

#include <memory>

#include "vfabric/netd/port_backend.h"

namespace vfabric::netd {

// Server mode (netd's "mode": "server"): Open() makes the socket's
// directory if it is missing (0755, root's), listens on the socket
// (replacing a stale socket there, one nothing listens on, never a live
// one nor any other kind of file) and applies the port's owner, group and
// permissions to it; the socket file goes with the port (removed from the
// topology, reopened, netd stopping). Client mode (the
// default): Open() connects to the frontend's socket; while no socket is
// there the port waits (Waiting()), and the next reconcile tries again.
std::unique_ptr<PortBackend> NewVhostUserBackend();

}  // namespace vfabric::netd
