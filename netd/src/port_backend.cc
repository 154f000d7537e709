#include "vfabric/netd/port_backend.h"

#include <utility>

#include "vhost_user_backend.h"
#include "vxlan_backend.h"

namespace vfabric::netd {

Status NoGuestUse(const topology::PortConfig& port) {
  if (port.kind == topology::PortKind::kVeth)
    return Status::Error("port " + port.name + " is a veth (its peer " + port.peer +
                         " is the other end), not a port a guest can use: declare a tap port");
  return Status::Error("port " + port.name +
                       " is an existing link that netd does not own, not a port a guest can use: "
                       "declare a tap port");
}

Result<vmm::NicPlug> PortBackend::GuestPlug(const topology::PortConfig& port) const {
  return Status::Error("port " + port.name + " (" + std::string(Name()) +
                       "): not a port a guest can use");
}

Result<UniqueFd> PortBackend::OpenGuestTap(const topology::PortConfig& port) const {
  return Status::Error("port " + port.name + " (" + std::string(Name()) +
                       "): no tap a guest can hold");
}

namespace {

std::string IfindexIdentity(const LinkInfo* link) {
  return link == nullptr ? std::string() : "ifindex " + std::to_string(link->ifindex);
}

// A tap the network lists and no guest holds: netd opens it (IFF_VNET_HDR,
// so guest offloads cross the switch) and the switch reads and writes it.
class TapBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "tap"; }
  bool NeedsKernelLink() const override { return true; }
  std::string Identity(const topology::PortConfig&, const LinkInfo* link) const override {
    return IfindexIdentity(link);
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    auto fd = OpenTap(port.name, /*vnet_hdr=*/true, port.multi_queue);
    if (!fd.ok()) return fd.status();
    return bridge::OpenTapPort(port.name, std::move(fd).value());
  }
  Result<vmm::NicPlug> GuestPlug(const topology::PortConfig& port) const override {
    // A tap takes one opener: QEMU's TUNSETIFF would fail with EBUSY.
    return Status::Error("port " + port.name +
                         ": netd's switch opens this tap itself, so a guest cannot (set \"guest\": "
                         "true on the port for a guest netd does not run)");
  }
};

// Any other kernel link (a veth, an existing link, a tap a guest's QEMU
// holds): a packet socket bound to its ifindex.
class PacketSocketBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "packet socket"; }
  bool NeedsKernelLink() const override { return true; }
  std::string Identity(const topology::PortConfig&, const LinkInfo* link) const override {
    return IfindexIdentity(link);
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo* link) override {
    return bridge::OpenPacketSocketPort(port.name, link->ifindex);
  }
  Result<vmm::NicPlug> GuestPlug(const topology::PortConfig& port) const override {
    if (port.kind != topology::PortKind::kTap) return NoGuestUse(port);
    // The switch reads the tap's kernel side; the guest's QEMU opens it.
    vmm::NicPlug plug;
    plug.kind = vmm::NicPlug::Kind::kTap;
    plug.tap = port.name;
    return plug;
  }
  // netd's own guest: the tap with IFF_VNET_HDR (the guest's offloads), one
  // queue, as vmm hands it to QEMU (fd=).
  Result<UniqueFd> OpenGuestTap(const topology::PortConfig& port) const override {
    if (port.kind != topology::PortKind::kTap) return NoGuestUse(port);
    return OpenTap(port.name, /*vnet_hdr=*/true, /*multi_queue=*/false);
  }
};

class KernelPortBackends final : public PortBackends {
 public:
  PortBackend& For(const topology::PortConfig& port, bool guest) const override {
    if (port.kind == topology::PortKind::kVhostUser) return *vhost_user_;
    if (port.kind == topology::PortKind::kVxlan) return *vxlan_;
    if (port.kind == topology::PortKind::kTap && !guest) return tap_;
    return packet_socket_;
  }

 private:
  mutable TapBackend tap_;
  mutable PacketSocketBackend packet_socket_;
  std::unique_ptr<PortBackend> vhost_user_ = NewVhostUserBackend();
  std::unique_ptr<PortBackend> vxlan_ = NewVxlanBackend();
};

}  // namespace

std::unique_ptr<PortBackends> NewKernelPortBackends() {
  return std::make_unique<KernelPortBackends>();
}

}  // namespace vfabric::netd
