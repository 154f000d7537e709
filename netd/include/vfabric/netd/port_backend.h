// The port-backend seam: how a topology port reaches a userspace switch.
//
// One PortBackend per way of opening a switch port (a tap netd opens, a
// packet socket on a kernel link; vhost-user and VXLAN come next). The
// userspace networks ask a PortBackends for the backend of each port and
// never open a port themselves, so a unit test hands them memory ports
// (tests/unit/netd: FakePortBackends) and a new port kind is one more
// backend here (netd/DESIGN.md lists the files a port kind touches).
//
// The guest side of a port (GuestPlug, OpenGuestTap) says how a VM NIC
// plugs into it: netd's own guests (GuestManager, which asks the same
// backends as the userspace networks, and the real ones for kernel
// networks' taps) and a guest netd does not run (GuestUseOf: netctl port
// show --qemu|--libvirt). The spelling of that for QEMU and libvirt is
// vmm/nic_plug.h's, the one vmm's own guests use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vmm/nic_plug.h"

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
  // Why a port that is not open yet cannot be opened now, for a host object
  // that is not a kernel link (a vhost-user client's socket the frontend
  // has not made yet); "" when Open() may be tried. The port then waits, as
  // an existing link that is missing does, until a later reconcile.
  virtual std::string Waiting(const topology::PortConfig&) const { return ""; }
  // Why `opened` (a port this backend opened for `port`) must be opened
  // again though nothing about its host object changed: a connection the
  // port cannot get back by itself ended (a vhost-user client whose
  // frontend hung up). "" when it need not.
  virtual std::string Ended(const topology::PortConfig&, const bridge::Port&) const { return ""; }
  // How a guest plugs into the port on a userspace network: a tap it opens,
  // a socket it connects to. An error naming the port when this port cannot
  // take a guest (a veth, an existing link, a tap the switch opens itself);
  // the default, for a backend with no guest side.
  virtual Result<vmm::NicPlug> GuestPlug(const topology::PortConfig& port) const;
  // For a port whose GuestPlug() is a tap (NicPlug::Kind::kTap): opens the
  // descriptor that netd's own guest's QEMU inherits for it (GuestManager;
  // vmm::GuestNic::tap). An error naming the port when it has none; the
  // default, for a backend whose guest side is no tap.
  virtual Result<UniqueFd> OpenGuestTap(const topology::PortConfig& port) const;
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
// socket on the link's ifindex; a vhost-user port a bridge::VhostUserPort
// on its socket (netd/src/vhost_user_backend.h).
std::unique_ptr<PortBackends> NewKernelPortBackends();

// The error of a port no guest can use (a veth, an existing link), naming
// the port and why.
Status NoGuestUse(const topology::PortConfig& port);

// What a guest needs to use one port: netctl port show --qemu|--libvirt.
struct GuestUse {
  std::string network;
  std::string port;
  vmm::NicPlug plug;
  // The MAC of the topology's VM NIC on the port (given or derived), if a VM
  // of the topology has its NIC there.
  std::optional<MacAddress> mac;
  std::string vm;  // that VM: netd runs it, so its QEMU holds the port now
  // vmm::QemuNicArgs with the id vmm::NicIdForPort(port); empty when QEMU
  // started by hand has no way in.
  std::vector<std::string> qemu;
  std::string libvirt;  // vmm::LibvirtInterfaceXml
};

// The guest use of `port` of `network` in `desired`: on a kernel network a
// tap port (QEMU opens it; libvirt makes its own tap on the bridge), on a
// userspace network what backends.For(port, guest) says (GuestPlug). A port
// the network does not declare but a VM NIC of the network names is that
// NIC's tap. Errors name the network and the port: no such network, no such
// port (both with ENOENT), a port with no guest use and why.
Result<GuestUse> GuestUseOf(const topology::Topology& desired, const std::string& network,
                            const std::string& port, const PortBackends& backends);

}  // namespace vfabric::netd
