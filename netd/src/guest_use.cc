// GuestUseOf: the guest side of a port, for netctl port show --qemu|--libvirt.
#include <algorithm>
#include <cerrno>

#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/switch_plan.h"
#include "vfabric/vmm/qemu_command.h"

namespace vfabric::netd {

Result<GuestUse> GuestUseOf(const topology::Topology& desired, const std::string& network_name,
                            const std::string& port_name, const PortBackends& backends) {
  auto network =
      std::find_if(desired.networks.begin(), desired.networks.end(),
                   [&](const topology::NetworkConfig& n) { return n.name == network_name; });
  if (network == desired.networks.end())
    return Status::Error("no network named \"" + network_name + "\"", ENOENT);
  GuestUse use;
  use.network = network_name;
  use.port = port_name;
  // The topology's VM NIC on the port, if any: its MAC, and netd runs it.
  const topology::NicConfig* vm_nic = nullptr;
  for (const topology::VmConfig& vm : desired.vms) {
    for (size_t i = 0; i < vm.nics.size() && vm_nic == nullptr; ++i) {
      const topology::NicConfig& nic = vm.nics[i];
      const std::string port = nic.port.empty() ? vmm::DefaultNicPort(vm.name, i) : nic.port;
      if (port != port_name || nic.network != network_name) continue;
      vm_nic = &nic;
      use.vm = vm.name;
      use.mac = nic.mac ? *nic.mac : vmm::DefaultNicMac(vm.name, i);
    }
  }
  auto declared = std::find_if(network->ports.begin(), network->ports.end(),
                               [&](const topology::PortConfig& p) { return p.name == port_name; });
  topology::PortConfig port;
  if (declared != network->ports.end()) {
    port = *declared;
  } else if (vm_nic != nullptr) {
    port.name = port_name;  // a VM NIC's own tap, which netd makes
  } else {
    return Status::Error("no port \"" + port_name + "\" in network \"" + network_name + "\"",
                         ENOENT);
  }
  const std::string what = "network " + network_name;
  if (network->datapath == topology::Datapath::kKernel) {
    if (port.kind != topology::PortKind::kTap) return NoGuestUse(port).WithContext(what);
    // QEMU by hand opens the tap port (the bridge already has it); libvirt
    // makes its own vnetN on the bridge.
    use.plug.kind = vmm::NicPlug::Kind::kBridge;
    use.plug.bridge = network->bridge;
    use.plug.tap = port.name;
  } else {
    const bool guest = GuestPortNames(desired).count(port.name) != 0;
    auto plug = backends.For(port, guest).GuestPlug(port);
    if (!plug.ok()) return plug.status().WithContext(what);
    use.plug = std::move(plug).value();
  }
  use.qemu = vmm::QemuNicArgs(vmm::NicIdForPort(port.name), use.plug, use.mac);
  use.libvirt = vmm::LibvirtInterfaceXml(use.plug, use.mac, vmm::NicIdForPort(port.name));
  return use;
}

}  // namespace vfabric::netd
