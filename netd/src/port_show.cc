// port.show: one port of the desired topology and what a guest needs to use
// it (docs/control-protocol.md), from the port-backend seam (GuestUseOf).
#include <cerrno>

#include "vfabric/netd/controller.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/vmm/nic_plug.h"

namespace vfabric::netd {

using nlohmann::json;
using protocol::Error;
using protocol::Reply;
using protocol::StringArg;

namespace {

// The guest's RAM must be shared with netd for a vhost-user NIC: the
// machine's setting, not the NIC's (vmm/nic_plug.h), so it is printed
// beside the NIC's arguments rather than among them.
const char* const kSharedMemoryQemu =
    "-object memory-backend-memfd,id=mem,size=RAM,share=on -numa node,memdev=mem";
const char* const kSharedMemoryLibvirt =
    "<memoryBacking>\n  <source type='memfd'/>\n  <access mode='shared'/>\n</memoryBacking>\n";

}  // namespace

// A vhost-user port: its socket, netd's side of it and, when the switch has
// it open, the connection and the backend's counters.
json Controller::VhostUserShow(const topology::NetworkConfig& network,
                               const topology::PortConfig& port) const {
  json out = {{"socket", port.socket},
              {"mode", std::string(topology::ToString(port.vhost_user_mode))},
              {"shared_memory", {{"qemu", kSharedMemoryQemu}, {"libvirt", kSharedMemoryLibvirt}}},
              // All a libvirt domain needs beside the port's <interface>
              // (which names the device for its <qemu:override>).
              {"libvirt_domain", vmm::LibvirtVhostUserDomainXml(vmm::NicIdForPort(port.name))}};
  if (userspace_ == nullptr) return out;
  json state = userspace_->VhostUserState(network.name, port.name);
  if (!state.is_null()) {
    out.update(state);
    out["negotiated"] = userspace_->VhostUserNegotiated(network.name, port.name);
    return out;
  }
  out["connected"] = false;
  out["up"] = false;
  if (std::string why = userspace_->Backends().For(port, false).Waiting(port); !why.empty())
    out["waiting"] = why;
  return out;
}

Reply Controller::PortShow(const json& args) {
  VF_ASSIGN_OR_RETURN_ERROR(const std::string network, StringArg(args, "network", true));
  VF_ASSIGN_OR_RETURN_ERROR(const std::string port, StringArg(args, "port", true));
  // "guest": "qemu" or "libvirt" asks for that form: a port without one is
  // then an error rather than a "guest_error" member.
  VF_ASSIGN_OR_RETURN_ERROR(const std::string form, StringArg(args, "guest", false));
  if (!form.empty() && form != "qemu" && form != "libvirt")
    return Error{std::string(protocol::code::kBadRequest),
                 "\"guest\" must be \"qemu\" or \"libvirt\", got \"" + form + "\""};
  const topology::Topology desired = Desired();
  // Without userspace networks running here, the backends they would use.
  std::unique_ptr<PortBackends> own;
  const PortBackends* backends = userspace_ != nullptr ? &userspace_->Backends() : nullptr;
  if (backends == nullptr) backends = (own = NewKernelPortBackends()).get();
  Result<GuestUse> use = GuestUseOf(desired, network, port, *backends);
  if (!use.ok() && use.status().error_number() == ENOENT)
    return Error{std::string(protocol::code::kNotFound), use.status().message()};
  if (!use.ok() && !form.empty())
    return Error{std::string(protocol::code::kUnsupported), use.status().message()};
  json result = {{"network", network}, {"port", port}};
  for (const topology::NetworkConfig& n : desired.networks) {
    if (n.name != network) continue;
    result["datapath"] = topology::ToString(n.datapath);
    result["kind"] = "tap";  // a VM NIC's own port unless the network declares it
    for (const topology::PortConfig& p : n.ports) {
      if (p.name != port) continue;
      result["kind"] = topology::ToString(p.kind);
      if (p.kind == topology::PortKind::kVhostUser) result["vhost_user"] = VhostUserShow(n, p);
    }
  }
  if (!use.ok()) {
    result["guest_error"] = use.status().message();
    return result;
  }
  json qemu = json::array();
  for (const std::string& arg : use->qemu) qemu.push_back(arg);
  result["vm"] = use->vm.empty() ? json(nullptr) : json(use->vm);
  result["mac"] = use->mac ? json(use->mac->ToString()) : json(nullptr);
  result["qemu"] = std::move(qemu);
  result["libvirt"] = use->libvirt;
  return result;
}

}  // namespace vfabric::netd
