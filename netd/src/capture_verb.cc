// capture.start (netctl capture; docs/control-protocol.md): on a kernel
// network the answer names the interface (netctl runs tcpdump on it); on a
// userspace network the switch's port gets a capture ring and the session
// that streams it waits in pending_capture_ for the connection (capture.h).
#include <algorithm>
#include <cerrno>

#include "vfabric/netd/controller.h"
#include "views.h"

namespace vfabric::netd {

using nlohmann::json;
using protocol::Error;
using protocol::Reply;

Reply Controller::CaptureStart(const json& args) {
  pending_capture_.reset();
  VF_ASSIGN_OR_RETURN_ERROR(const std::string name, protocol::StringArg(args, "network", true));
  VF_ASSIGN_OR_RETURN_ERROR(const std::string port, protocol::StringArg(args, "port", true));
  VF_ASSIGN_OR_RETURN_ERROR(std::string direction, protocol::StringArg(args, "direction", false));
  if (direction.empty()) direction = "both";
  uint8_t directions = 0;
  if (direction == "in")
    directions = static_cast<uint8_t>(bridge::CaptureDirection::kIn);
  else if (direction == "out")
    directions = static_cast<uint8_t>(bridge::CaptureDirection::kOut);
  else if (direction == "both")
    directions = static_cast<uint8_t>(bridge::CaptureDirection::kIn) |
                 static_cast<uint8_t>(bridge::CaptureDirection::kOut);
  else
    return Error{"bad_request", "unknown direction \"" + direction + "\" (in, out or both)"};
  const topology::Topology desired = Desired();
  const topology::NetworkConfig* network = FindNetwork(desired, name);
  if (network == nullptr) return Error{"not_found", "no network named \"" + name + "\""};
  if (std::none_of(network->ports.begin(), network->ports.end(),
                   [&](const topology::PortConfig& p) { return p.name == port; }))
    return Error{"not_found", "no port \"" + port + "\" in network \"" + name + "\""};
  json answer = {{"network", name}, {"port", port}, {"direction", direction}};
  if (network->datapath != topology::Datapath::kUserspace) {
    // The kernel bridge's port is a link: whoever asked captures on it.
    answer["datapath"] = "kernel";
    answer["interface"] = port;
    return answer;
  }
  if (userspace_ == nullptr || !userspace_->Has(name))
    return Error{"not_found", "the switch of network " + name + " is not running"};
  auto ring = std::make_shared<bridge::CaptureRing>(kCaptureRingBytes, kCaptureSnaplen, directions);
  auto id = userspace_->StartCapture(name, port, ring);
  if (!id.ok())
    return Error{id.status().error_number() == ENOENT ? "not_found" : "failed",
                 id.status().message()};
  UserspaceNetworks* userspace = userspace_;
  const bridge::CaptureRing* raw = ring.get();
  const bridge::PortId switch_port = *id;
  pending_capture_ = std::make_unique<CaptureSession>(
      ring, "network " + name + " port " + port,
      [userspace, name, switch_port, raw] { userspace->StopCapture(name, switch_port, raw); });
  answer["datapath"] = "userspace";
  answer["switch_port"] = switch_port;
  answer["snaplen"] = kCaptureSnaplen;
  answer["ring_bytes"] = kCaptureRingBytes;
  json reasons = json::array();  // a record's drop is 1 + an index in this
  for (size_t r = 0; r < bridge::kDropReasonCount; ++r)
    reasons.push_back(std::string(bridge::ToString(static_cast<bridge::DropReason>(r))));
  answer["drop_reasons"] = reasons;
  return answer;
}

}  // namespace vfabric::netd
