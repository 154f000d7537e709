// The QEMU command line of a guest: a pure function of the VM's
// configuration and where its descriptors and sockets are, so it is tested
// argument by argument.
//
// Shape (machine "pc": i440fx, whose ACPI PCI hot-plug lets any NIC on pci.0
// be added and removed at run time with no extra bridges; under TCG it boots
// this project's guest as fast as q35):
//   qemu-system-x86_64 -name vm1 -machine pc -accel kvm|tcg [-cpu host] -m 256 -smp 1
//     -nodefaults -no-user-config -display none -no-reboot
//     -qmp unix:RUN/qmp.sock,server=on,wait=off [-pidfile RUN/qemu.pid]
//     -chardev socket,id=vf-serial,path=RUN/console.sock,server=on,wait=off,
//              logfile=RUN/console.log,logappend=on
//     -serial chardev:vf-serial
//     -kernel K [-initrd I] [-append "console=ttyS0 CMDLINE"] | -drive file=DISK,if=virtio
//     [-object memory-backend-memfd,id=vf-mem,size=<M>M,share=on -numa node,memdev=vf-mem]
//     per NIC (spelled by nic_plug.h): -netdev tap,id=net-ID,fd=FD[,vhost=on]
//              -device virtio-net-pci,id=ID,netdev=net-ID,mac=MAC
//       or, vhost-user: -chardev socket,id=chr-ID,path=SOCK,reconnect=1
//              -netdev vhost-user,id=net-ID,chardev=chr-ID
//              -device virtio-net-pci,id=ID,netdev=net-ID,mac=MAC,vectors=0
#pragma once

#include <string>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vmm/accel.h"

namespace vfabric::vmm {

struct QemuNic {
  std::string id;  // QEMU device id ("nic0"); the netdev is "net-" + id
  int fd = -1;     // the tap's descriptor number in QEMU's process
  MacAddress mac;
  bool vhost = false;  // vhost=on (where /dev/vhost-net exists)
  // Not empty: a vhost-user NIC whose backend listens on this socket (QEMU
  // connects, and reconnects every second); `fd` and `vhost` are unused.
  std::string vhost_user_socket{};
};

struct QemuLaunch {
  std::string qemu_binary = "qemu-system-x86_64";
  Accel accel = Accel::kTcg;
  std::string qmp_socket;      // unix socket path
  std::string pidfile;         // QEMU writes its pid there (may be "")
  std::string console_socket;  // serial console, unix socket (may be "")
  std::string console_log;     // serial console output, appended
  std::vector<QemuNic> nics;
  // The guest's RAM in a shared memfd (SharedMemoryArgs), which vhost-user
  // NICs need, also those hot-plugged later.
  bool shared_memory = false;
};

// The argv (argv[0] = qemu_binary). Pure: touches nothing.
// REQUIRES: vm has a kernel or a disk.
std::vector<std::string> BuildQemuCommand(const topology::VmConfig& vm, const QemuLaunch& launch);

// The MAC of NIC `index` of `vm` when the topology gives none: 52:54:00 (QEMU's
// prefix) followed by 24 bits of a hash of "vm/index", stable across runs.
MacAddress DefaultNicMac(const std::string& vm_name, size_t index);

// The tap name of NIC `index` when the topology gives none: "<vm>-eth<index>".
std::string DefaultNicPort(const std::string& vm_name, size_t index);

}  // namespace vfabric::vmm
