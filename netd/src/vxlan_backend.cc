#include "vxlan_backend.h"

#include <map>
#include <tuple>
#include <utility>

#include "vfabric/bridge/vxlan_endpoint.h"

namespace vfabric::netd {
namespace {

class VxlanBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "vxlan"; }
  bool NeedsKernelLink() const override { return false; }
  std::string Identity(const topology::PortConfig& port, const LinkInfo*) const override {
    return "vni " + std::to_string(port.vxlan_vni) + " " + port.vxlan_local.AddressText() + ":" +
           std::to_string(port.vxlan_port) + " -> " + port.vxlan_remote.AddressText();
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    const Key key{port.vxlan_local, port.vxlan_port};
    std::shared_ptr<bridge::VxlanEndpoint> endpoint = endpoints_[key].lock();
    if (endpoint && endpoint->options().vni != port.vxlan_vni) {
      return Status::Error("vxlan endpoint " + port.vxlan_local.AddressText() + ":" +
                               std::to_string(port.vxlan_port) + " carries VNI " +
                               std::to_string(endpoint->options().vni) + " still",
                           EBUSY);
    }
    if (!endpoint) {
      bridge::VxlanEndpointOptions options;
      options.local = port.vxlan_local;
      options.port = port.vxlan_port;
      options.vni = port.vxlan_vni;
      auto opened = bridge::VxlanEndpoint::Open("vni " + std::to_string(port.vxlan_vni), options);
      if (!opened.ok()) return opened.status();
      endpoint = std::move(opened).value();
      endpoints_[key] = endpoint;
    }
    // Peers send from their own address to our port (RFC 7348: the
    // destination port is the VXLAN port; the kernel's vxlan device does
    // the same): the overlay's port is every host's.
    return endpoint->OpenPeer(port.name, port.vxlan_remote, port.vxlan_port);
  }

 private:
  using Key = std::pair<IpPrefix, uint16_t>;
  std::map<Key, std::weak_ptr<bridge::VxlanEndpoint>> endpoints_;
};

}  // namespace

std::unique_ptr<PortBackend> NewVxlanBackend() { return std::make_unique<VxlanBackend>(); }

}  // namespace vfabric::netd
