// The port-backend seam: how a topology port reaches a userspace switch.
//
// One PortBackend per way of opening a switch port (a tap netd opens, a
// packet socket on a kernel link; vhost-user and VXLAN come next). The
// userspace networks ask a PortBackends for the backend of each port and
// never open a port themselves, so a unit test hands them memory ports
// (tests/unit/netd: FakePortBackends) and a new port kind is one more
// backend here (netd/DESIGN.md lists the files a port kind touches).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/status.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

class PortBackend {
 public:
  virtual ~PortBackend() = default;

  // How plan lines and logs name it: "tap", "packet socket".
  virtual std::string_view Name() const = 0;
  // Whether the port needs a kernel link of its name (the kernel planner
  // makes taps and veths; an existing link must be there).
  virtual bool NeedsKernelLink() const = 0;
  // What identifies the port's host object, so that a recreated one is
  // noticed and the switch port reopened: "ifindex 12" for a link. `link`:
  // the port's link as read back, or null when it has none (yet). Empty:
  // not there.
  virtual std::string Identity(const topology::PortConfig& port, const LinkInfo* link) const = 0;
  // Opens the switch's end of the port. `link` as for Identity (never null
  // when NeedsKernelLink()).
  virtual Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                                     const LinkInfo* link) = 0;
};

// Which backend serves a port.
class PortBackends {
 public:
  virtual ~PortBackends() = default;
  // `guest`: a VM NIC uses the port (QEMU holds its tap, so the switch
  // cannot open it as a tap).
  virtual PortBackend& For(const topology::PortConfig& port, bool guest) const = 0;
};

// The real backends: a tap the network lists is opened by netd (OpenTap,
// IFF_VNET_HDR); a VM NIC's tap, a veth or an existing link gets a packet
// socket on the link's ifindex.
std::unique_ptr<PortBackends> NewKernelPortBackends();

}  // namespace vfabric::netd
