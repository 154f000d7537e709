#include "vfabric/vmm/qemu_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace vfabric::vmm {
namespace {

using ::testing::ElementsAreArray;

MacAddress Mac(const char* text) { return *MacAddress::Parse(text); }

topology::VmConfig KernelVm() {
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.memory_mb = 256;
  vm.vcpus = 2;
  vm.kernel = "/img/vmlinuz";
  vm.initrd = "/img/initrd.img";
  vm.cmdline = "quiet vf.ip=10.0.0.1/24";
  return vm;
}

TEST(QemuCommandTest, KernelGuestWithTwoTapNicsUnderTcg) {
  QemuLaunch launch;
  launch.accel = Accel::kTcg;
  launch.qmp_socket = "/run/vm1/qmp.sock";
  launch.pidfile = "/run/vm1/qemu.pid";
  launch.console_socket = "/run/vm1/console.sock";
  launch.console_log = "/run/vm1/console.log";
  launch.nics = {{"nic0", 3, Mac("52:54:00:00:00:01"), false},
                 {"nic1", 4, Mac("52:54:00:00:00:02"), true}};
  std::vector<std::string> want = {
      "qemu-system-x86_64",
      "-name",
      "vm1",
      "-machine",
      "pc",
      "-accel",
      "tcg",
      "-m",
      "256",
      "-smp",
      "2",
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-qmp",
      "unix:/run/vm1/qmp.sock,server=on,wait=off",
      "-pidfile",
      "/run/vm1/qemu.pid",
      "-chardev",
      "socket,id=vf-serial,path=/run/vm1/console.sock,server=on,wait=off,"
      "logfile=/run/vm1/console.log,logappend=on",
      "-serial",
      "chardev:vf-serial",
      "-kernel",
      "/img/vmlinuz",
      "-initrd",
      "/img/initrd.img",
      "-append",
      "console=ttyS0 quiet vf.ip=10.0.0.1/24",
      "-netdev",
      "tap,id=net-nic0,fd=3",
      "-device",
      "virtio-net-pci,id=nic0,netdev=net-nic0,mac=52:54:00:00:00:01",
      "-netdev",
      "tap,id=net-nic1,fd=4,vhost=on",
      "-device",
      "virtio-net-pci,id=nic1,netdev=net-nic1,mac=52:54:00:00:00:02"};
  EXPECT_THAT(BuildQemuCommand(KernelVm(), launch), ElementsAreArray(want));
}

TEST(QemuCommandTest, KvmUsesTheHostCpu) {
  QemuLaunch launch;
  launch.qemu_binary = "/opt/qemu/bin/qemu-system-x86_64";
  launch.accel = Accel::kKvm;
  launch.qmp_socket = "/q.sock";
  std::vector<std::string> argv = BuildQemuCommand(KernelVm(), launch);
  std::vector<std::string> head(argv.begin(), argv.begin() + 11);
  EXPECT_THAT(
      head, ElementsAreArray({"/opt/qemu/bin/qemu-system-x86_64", "-name", "vm1", "-machine", "pc",
                              "-accel", "kvm", "-cpu", "host", "-m", "256"}));
}

TEST(QemuCommandTest, DiskGuestWithoutConsoleOrNics) {
  topology::VmConfig vm;
  vm.name = "disk1";
  vm.disk = "/var/lib/vm/disk1.img";
  QemuLaunch launch;
  launch.qmp_socket = "/q.sock";
  std::vector<std::string> want = {"qemu-system-x86_64",
                                   "-name",
                                   "disk1",
                                   "-machine",
                                   "pc",
                                   "-accel",
                                   "tcg",
                                   "-m",
                                   "256",
                                   "-smp",
                                   "1",
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-qmp",
                                   "unix:/q.sock,server=on,wait=off",
                                   "-drive",
                                   "file=/var/lib/vm/disk1.img,if=virtio,format=raw"};
  EXPECT_THAT(BuildQemuCommand(vm, launch), ElementsAreArray(want));
}

TEST(QemuCommandTest, LogWithoutConsoleSocketUsesANullChardev) {
  QemuLaunch launch;
  launch.qmp_socket = "/q.sock";
  launch.console_log = "/log";
  std::vector<std::string> argv = BuildQemuCommand(KernelVm(), launch);
  auto it = std::find(argv.begin(), argv.end(), "-chardev");
  ASSERT_NE(it, argv.end());
  EXPECT_EQ(*(it + 1), "null,id=vf-serial,logfile=/log,logappend=on");
}

TEST(QemuCommandTest, CommasInPathsAreDoubled) {
  topology::VmConfig vm = KernelVm();
  vm.disk = "/a,b.img";
  vm.kernel.clear();
  QemuLaunch launch;
  launch.qmp_socket = "/run/x,y/qmp.sock";
  launch.console_log = "/run/x,y/log";
  std::vector<std::string> argv = BuildQemuCommand(vm, launch);
  EXPECT_NE(std::find(argv.begin(), argv.end(), "unix:/run/x,,y/qmp.sock,server=on,wait=off"),
            argv.end());
  EXPECT_NE(
      std::find(argv.begin(), argv.end(), "null,id=vf-serial,logfile=/run/x,,y/log,logappend=on"),
      argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "file=/a,,b.img,if=virtio,format=raw"), argv.end());
}

TEST(QemuCommandTest, EmptyCmdlineStillSetsTheConsole) {
  topology::VmConfig vm = KernelVm();
  vm.cmdline.clear();
  vm.initrd.clear();
  QemuLaunch launch;
  launch.qmp_socket = "/q.sock";
  std::vector<std::string> argv = BuildQemuCommand(vm, launch);
  auto it = std::find(argv.begin(), argv.end(), "-append");
  ASSERT_NE(it, argv.end());
  EXPECT_EQ(*(it + 1), "console=ttyS0");
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-initrd"), argv.end());
}

TEST(QemuCommandTest, DefaultMacsAreStableLocalAndDistinct) {
  EXPECT_EQ(DefaultNicMac("vm1", 0), DefaultNicMac("vm1", 0));
  std::set<MacAddress> seen;
  for (const char* name : {"vm1", "vm2", "vm10", "web"}) {
    for (size_t i = 0; i < 4; ++i) {
      MacAddress mac = DefaultNicMac(name, i);
      EXPECT_EQ(mac.bytes[0], 0x52);
      EXPECT_EQ(mac.bytes[1], 0x54);
      EXPECT_EQ(mac.bytes[2], 0x00);
      EXPECT_FALSE(mac.IsMulticast());
      seen.insert(mac);
    }
  }
  EXPECT_EQ(seen.size(), 16u);
  EXPECT_EQ(DefaultNicPort("vm1", 2), "vm1-eth2");
}

TEST(QemuCommandTest, VhostUserNicsGetSharedMemoryAndConnectToTheBackend) {
  QemuLaunch launch;
  launch.qmp_socket = "/run/vm1/qmp.sock";
  launch.shared_memory = true;
  launch.nics = {{"nic0", 3, Mac("52:54:00:00:00:01"), false},
                 {"nic1", -1, Mac("52:54:00:00:00:02"), false, "/run/vu/vm1-eth1.sock"}};
  const std::vector<std::string> argv = BuildQemuCommand(KernelVm(), launch);
  // Shared RAM right after -m, as the backend maps it.
  auto m = std::find(argv.begin(), argv.end(), "-no-reboot");
  ASSERT_NE(m, argv.end());
  EXPECT_THAT(std::vector<std::string>(m + 1, m + 5),
              ElementsAreArray({"-object", "memory-backend-memfd,id=vf-mem,size=256M,share=on",
                                "-numa", "node,memdev=vf-mem"}));
  // The tap NIC as before, then the vhost-user one, in order.
  auto nic0 = std::find(argv.begin(), argv.end(), "tap,id=net-nic0,fd=3");
  ASSERT_NE(nic0, argv.end());
  EXPECT_THAT(
      std::vector<std::string>(nic0 + 1, argv.end()),
      ElementsAreArray({"-device", "virtio-net-pci,id=nic0,netdev=net-nic0,mac=52:54:00:00:00:01",
                        "-chardev", "socket,id=chr-nic1,path=/run/vu/vm1-eth1.sock,reconnect=1",
                        "-netdev", "vhost-user,id=net-nic1,chardev=chr-nic1", "-device",
                        "virtio-net-pci,id=nic1,netdev=net-nic1,mac=52:54:00:00:00:02,"
                        "vectors=0"}));
  launch.shared_memory = false;
  for (const std::string& arg : BuildQemuCommand(KernelVm(), launch))
    EXPECT_EQ(arg.find("memory-backend"), std::string::npos) << arg;
}

}  // namespace
}  // namespace vfabric::vmm
