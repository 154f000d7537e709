// UserspaceNetworks::StartCapture/StopCapture: netctl capture's hook on a
// switch port (capture.h).
#include "vfabric/common/log.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {

Result<bridge::PortId> UserspaceNetworks::StartCapture(const std::string& network,
                                                       const std::string& port,
                                                       std::shared_ptr<bridge::CaptureRing> ring) {
  auto n = networks_.find(network);
  if (n == networks_.end() || !n->second.sw)
    return Status::Error("the switch of network " + network + " is not running", ENOENT);
  const std::optional<bridge::PortId> id = n->second.sw->FindPort(port);
  if (!id)
    return Status::Error("port " + port + " of network " + network +
                             " is not in its switch (yet): its link or backend is not open",
                         ENOENT);
  Status s = n->second.sw->SetCapture(*id, std::move(ring));
  if (!s.ok()) return s;
  return *id;
}

void UserspaceNetworks::StopCapture(const std::string& network, bridge::PortId port,
                                    const bridge::CaptureRing* ring) {
  auto n = networks_.find(network);
  if (n == networks_.end() || !n->second.sw) return;  // the switch went, and the hook with it
  Status s = n->second.sw->ClearCapture(port, ring);
  if (!s.ok()) VF_LOG(kError) << "network " << network << ": stop capture: " << s.message();
}

}  // namespace vfabric::netd
