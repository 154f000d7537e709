#include "vfabric/netd/port_backend.h"

#include <utility>

namespace vfabric::netd {
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
};

class KernelPortBackends final : public PortBackends {
 public:
  PortBackend& For(const topology::PortConfig& port, bool guest) const override {
    if (port.kind == topology::PortKind::kTap && !guest) return tap_;
    return packet_socket_;
  }

 private:
  mutable TapBackend tap_;
  mutable PacketSocketBackend packet_socket_;
};

}  // namespace

std::unique_ptr<PortBackends> NewKernelPortBackends() {
  return std::make_unique<KernelPortBackends>();
}

}  // namespace vfabric::netd
