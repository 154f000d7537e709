#include "vfabric/vmm/nic_plug.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vfabric::vmm {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

MacAddress Mac(const char* text) { return *MacAddress::Parse(text); }

TEST(NicPlugTest, TapByDescriptorIsVmmsOwnSpelling) {
  NicPlug plug;
  plug.tap_fd = 3;
  EXPECT_THAT(QemuNicArgs("nic0", plug, Mac("52:54:00:00:00:01")),
              ElementsAre("-netdev", "tap,id=net-nic0,fd=3", "-device",
                          "virtio-net-pci,id=nic0,netdev=net-nic0,mac=52:54:00:00:00:01"));
  plug.vhost = true;
  EXPECT_THAT(QemuNicArgs("nic1", plug, Mac("52:54:00:00:00:02")),
              ElementsAre("-netdev", "tap,id=net-nic1,fd=3,vhost=on", "-device",
                          "virtio-net-pci,id=nic1,netdev=net-nic1,mac=52:54:00:00:00:02"));
}

TEST(NicPlugTest, TapByNameRunsNoScriptAndSaysVhost) {
  NicPlug plug;
  plug.tap = "us-tap,1";
  EXPECT_THAT(
      QemuNicArgs("vf-us-tap_1", plug, std::nullopt),
      ElementsAre("-netdev",
                  "tap,id=net-vf-us-tap_1,ifname=us-tap,,1,script=no,downscript=no,vhost=off",
                  "-device", "virtio-net-pci,id=vf-us-tap_1,netdev=net-vf-us-tap_1"));
}

TEST(NicPlugTest, BridgeIsOpenedByQemuThroughItsTapPort) {
  NicPlug plug;
  plug.kind = NicPlug::Kind::kBridge;
  plug.bridge = "vfb-lab";
  EXPECT_THAT(QemuNicArgs("vf-x", plug, std::nullopt), IsEmpty());
  plug.tap = "lab-t0";
  EXPECT_THAT(
      QemuNicArgs("vf-lab-t0", plug, Mac("02:00:00:00:00:0a")),
      ElementsAre("-netdev", "tap,id=net-vf-lab-t0,ifname=lab-t0,script=no,downscript=no,vhost=off",
                  "-device",
                  "virtio-net-pci,id=vf-lab-t0,netdev=net-vf-lab-t0,mac=02:00:00:00:00:0a"));
}

TEST(NicPlugTest, VhostUserHasItsChardevAndNoMsix) {
  NicPlug plug;
  plug.kind = NicPlug::Kind::kVhostUser;
  plug.socket = "/run/vfabric/a,b.sock";
  plug.socket_server = true;
  EXPECT_THAT(
      QemuNicArgs("vf-vu0", plug, Mac("52:54:00:00:00:03")),
      ElementsAre("-chardev", "socket,id=chr-vf-vu0,path=/run/vfabric/a,,b.sock,server=on,wait=off",
                  "-netdev", "vhost-user,id=net-vf-vu0,chardev=chr-vf-vu0", "-device",
                  "virtio-net-pci,id=vf-vu0,netdev=net-vf-vu0,mac=52:54:00:00:00:03,vectors=0"));
  plug.socket_server = false;
  EXPECT_EQ(QemuNicArgs("vf-vu0", plug, std::nullopt)[1],
            "socket,id=chr-vf-vu0,path=/run/vfabric/a,,b.sock,reconnect=1");
}

TEST(NicPlugTest, NicIdReplacesWhatQemuRefusesInIds) {
  EXPECT_EQ(NicIdForPort("vm1-eth0"), "vf-vm1-eth0");
  EXPECT_EQ(NicIdForPort("a@b,c=d"), "vf-a_b_c_d");
  EXPECT_EQ(NicIdForPort("t.1_x"), "vf-t.1_x");
}

TEST(NicPlugTest, LibvirtEthernetForATap) {
  NicPlug plug;
  plug.tap = "us-t0";
  EXPECT_EQ(LibvirtInterfaceXml(plug, Mac("52:54:00:00:00:01")),
            "<interface type='ethernet'>\n"
            "  <mac address='52:54:00:00:00:01'/>\n"
            "  <target dev='us-t0' managed='no'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  plug.tap.clear();
  plug.tap_fd = 4;
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt), "");
}

TEST(NicPlugTest, LibvirtBridgeWithoutMac) {
  NicPlug plug;
  plug.kind = NicPlug::Kind::kBridge;
  plug.bridge = "vfb-lab";
  plug.tap = "lab-t0";  // libvirt makes its own tap: the port is not named
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt),
            "<interface type='bridge'>\n"
            "  <source bridge='vfb-lab'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
}

TEST(NicPlugTest, LibvirtVhostUserModeIsQemusRole) {
  NicPlug plug;
  plug.kind = NicPlug::Kind::kVhostUser;
  plug.socket = "/run/vu.sock";
  // QEMU the client: it reconnects, as QEMU's reconnect=1 does, so that a
  // restarted netd is found again.
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt),
            "<interface type='vhostuser'>\n"
            "  <source type='unix' path='/run/vu.sock' mode='client'>\n"
            "    <reconnect enabled='yes' timeout='1'/>\n"
            "  </source>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  plug.socket_server = true;
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt),
            "<interface type='vhostuser'>\n"
            "  <source type='unix' path='/run/vu.sock' mode='server'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
}

// The device id names the device for the domain's <qemu:override>, which
// gives it vectors=0 (QEMU 7.2 under TCG segfaults without it).
TEST(NicPlugTest, LibvirtVhostUserAliasAndDomainPart) {
  NicPlug plug;
  plug.kind = NicPlug::Kind::kVhostUser;
  plug.socket = "/run/vu.sock";
  plug.socket_server = true;
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt, "vf-lab.vu0"),
            "<interface type='vhostuser'>\n"
            "  <source type='unix' path='/run/vu.sock' mode='server'/>\n"
            "  <model type='virtio'/>\n"
            "  <alias name='ua-vf-lab_vu0'/>\n"
            "</interface>\n");
  EXPECT_EQ(LibvirtAlias("vf-lab.vu0"), "ua-vf-lab_vu0");
  EXPECT_EQ(LibvirtVhostUserDomainXml("vf-lab.vu0"),
            "<memoryBacking>\n"
            "  <source type='memfd'/>\n"
            "  <access mode='shared'/>\n"
            "</memoryBacking>\n"
            "<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
            "  <qemu:device alias='ua-vf-lab_vu0'>\n"
            "    <qemu:frontend>\n"
            "      <qemu:property name='vectors' type='unsigned' value='0'/>\n"
            "    </qemu:frontend>\n"
            "  </qemu:device>\n"
            "</qemu:override>\n");
  // Taps and bridges need no alias: only vhost-user has a domain part.
  plug.kind = NicPlug::Kind::kTap;
  plug.tap = "t0";
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt, "vf-t0").find("alias"), std::string::npos);
}

TEST(NicPlugTest, LibvirtEscapesNamesAndPaths) {
  NicPlug plug;
  plug.tap = "a&b<c'd\"e>";
  EXPECT_EQ(LibvirtInterfaceXml(plug, std::nullopt),
            "<interface type='ethernet'>\n"
            "  <target dev='a&amp;b&lt;c&apos;d&quot;e&gt;' managed='no'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  plug.kind = NicPlug::Kind::kVhostUser;
  plug.socket = "/tmp/x'y&z.sock";
  EXPECT_NE(LibvirtInterfaceXml(plug, std::nullopt).find("path='/tmp/x&apos;y&amp;z.sock'"),
            std::string::npos);
}

TEST(NicPlugTest, SharedMemoryIsAMemfdNumaNode) {
  EXPECT_THAT(SharedMemoryArgs(384),
              ElementsAre("-object", "memory-backend-memfd,id=vf-mem,size=384M,share=on", "-numa",
                          "node,memdev=vf-mem"));
}

TEST(NicPlugTest, HotPlugOfAVhostUserNicIsThreeQmpCommandsEachWithItsUndo) {
  const std::vector<QmpStep> steps = VhostUserAttachCommands(
      "nic1", "/run/vfabric/vhost-user/vm1-eth1.sock", Mac("52:54:00:00:00:09"));
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].run.execute, "chardev-add");
  EXPECT_EQ(steps[0].run.arguments, nlohmann::json::parse(R"({"id": "chr-nic1", "backend": {
      "type": "socket", "data": {"addr": {"type": "unix", "data": {
      "path": "/run/vfabric/vhost-user/vm1-eth1.sock"}}, "server": false, "reconnect": 1}}})"));
  ASSERT_TRUE(steps[0].undo);
  EXPECT_EQ(steps[0].undo->execute, "chardev-remove");
  EXPECT_EQ(steps[0].undo->arguments, nlohmann::json::parse(R"({"id": "chr-nic1"})"));
  EXPECT_EQ(steps[1].run.execute, "netdev_add");
  EXPECT_EQ(steps[1].run.arguments, nlohmann::json::parse(
                                        R"({"type": "vhost-user", "id": "net-nic1",
                                            "chardev": "chr-nic1"})"));
  ASSERT_TRUE(steps[1].undo);
  EXPECT_FALSE(steps[0].undo_covers_earlier);
  EXPECT_TRUE(steps[1].undo_covers_earlier) << "the netdev takes its chardev with it";
  EXPECT_EQ(steps[1].undo->execute, "netdev_del");
  EXPECT_EQ(steps[1].undo->arguments, nlohmann::json::parse(R"({"id": "net-nic1"})"));
  EXPECT_EQ(steps[2].run.execute, "device_add");
  // vectors=0: QEMU 7.2 under TCG crashes with MSI-X on a vhost-user NIC.
  EXPECT_EQ(steps[2].run.arguments,
            nlohmann::json::parse(R"({"driver": "virtio-net-pci", "id": "nic1",
                "netdev": "net-nic1", "mac": "52:54:00:00:00:09", "vectors": 0})"));
  EXPECT_FALSE(steps[2].undo) << "the last step: nothing after it can fail";

  const std::vector<QmpCommand> detach = VhostUserDetachCommands("nic1");
  ASSERT_EQ(detach.size(), 1u) << "netdev_del deletes the vhost-user netdev's chardev too";
  EXPECT_EQ(detach[0].execute, "netdev_del");
  EXPECT_EQ(detach[0].arguments, nlohmann::json::parse(R"({"id": "net-nic1"})"));
}

}  // namespace
}  // namespace vfabric::vmm
