#include "vfabric/vmm/qemu_command.h"

#include <cstdint>

#include "vfabric/vmm/nic_plug.h"

namespace vfabric::vmm {
namespace {
std::string Escape(const std::string& value) { return QemuOptionEscape(value); }
}  // namespace

std::vector<std::string> BuildQemuCommand(const topology::VmConfig& vm, const QemuLaunch& launch) {
  std::vector<std::string> argv = {launch.qemu_binary,
                                   "-name",
                                   vm.name,
                                   "-machine",
                                   "pc",
                                   "-accel",
                                   std::string(ToString(launch.accel))};
  if (launch.accel == Accel::kKvm) {
    argv.insert(argv.end(), {"-cpu", "host"});
  }
  argv.insert(argv.end(), {"-m", std::to_string(vm.memory_mb), "-smp", std::to_string(vm.vcpus),
                           "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"});
  if (launch.shared_memory) {
    const std::vector<std::string> memory = SharedMemoryArgs(vm.memory_mb);
    argv.insert(argv.end(), memory.begin(), memory.end());
  }
  argv.insert(argv.end(), {"-qmp", "unix:" + Escape(launch.qmp_socket) + ",server=on,wait=off"});
  if (!launch.pidfile.empty()) argv.insert(argv.end(), {"-pidfile", launch.pidfile});
  if (!launch.console_socket.empty() || !launch.console_log.empty()) {
    std::string chardev;
    if (!launch.console_socket.empty()) {
      chardev = "socket,id=vf-serial,path=" + Escape(launch.console_socket) + ",server=on,wait=off";
    } else {
      chardev = "null,id=vf-serial";
    }
    if (!launch.console_log.empty())
      chardev += ",logfile=" + Escape(launch.console_log) + ",logappend=on";
    argv.insert(argv.end(), {"-chardev", chardev, "-serial", "chardev:vf-serial"});
  }
  if (!vm.kernel.empty()) {
    argv.insert(argv.end(), {"-kernel", vm.kernel});
    if (!vm.initrd.empty()) argv.insert(argv.end(), {"-initrd", vm.initrd});
    std::string append = "console=ttyS0";
    if (!vm.cmdline.empty()) append += " " + vm.cmdline;
    argv.insert(argv.end(), {"-append", append});
  }
  if (!vm.disk.empty()) {
    argv.insert(argv.end(), {"-drive", "file=" + Escape(vm.disk) + ",if=virtio,format=raw"});
  }
  for (const QemuNic& nic : launch.nics) {
    NicPlug plug;
    if (!nic.vhost_user_socket.empty()) {
      plug.kind = NicPlug::Kind::kVhostUser;
      plug.socket = nic.vhost_user_socket;
      plug.socket_server = false;  // the backend listens; QEMU reconnects
    } else {
      plug.tap_fd = nic.fd;
      plug.vhost = nic.vhost;
    }
    const std::vector<std::string> args = QemuNicArgs(nic.id, plug, nic.mac);
    argv.insert(argv.end(), args.begin(), args.end());
  }
  return argv;
}

MacAddress DefaultNicMac(const std::string& vm_name, size_t index) {
  // FNV-1a of "name/index".
  uint32_t hash = 2166136261u;
  auto mix = [&hash](char c) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 16777619u;
  };
  for (char c : vm_name) mix(c);
  mix('/');
  for (char c : std::to_string(index)) mix(c);
  MacAddress mac;
  mac.bytes = {0x52,
               0x54,
               0x00,
               static_cast<uint8_t>(hash >> 16),
               static_cast<uint8_t>(hash >> 8),
               static_cast<uint8_t>(hash)};
  return mac;
}

std::string DefaultNicPort(const std::string& vm_name, size_t index) {
  return vm_name + "-eth" + std::to_string(index);
}

}  // namespace vfabric::vmm
