// GuestUseOf: what netctl port show --qemu|--libvirt prints, from the
// topology and the port backends alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/switch_plan.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

topology::Topology Parse(const std::string& text) {
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].message);
  return loaded.topology;
}

constexpr const char* kTopology = R"({"networks": [
  {"name": "k", "datapath": "kernel", "bridge": "vfb-k",
   "ports": [{"name": "k-t0", "kind": "tap"}, {"name": "k-v0", "kind": "veth", "peer": "k-v0p"},
             {"name": "k-x", "kind": "existing"}]},
  {"name": "u", "datapath": "userspace",
   "ports": [{"name": "u-t0", "kind": "tap"}, {"name": "u-vm", "kind": "tap"},
             {"name": "u-v0", "kind": "veth", "peer": "u-v0p"}]}],
 "vms": [{"name": "vm1", "kernel": "/boot/vmlinuz",
          "nics": [{"network": "u", "port": "u-vm", "mac": "52:54:00:12:34:56"},
                   {"network": "u"}]}]})";

TEST(GuestUseTest, KernelTapIsOpenedByQemuAndBridgedByLibvirt) {
  auto backends = NewKernelPortBackends();
  auto use = GuestUseOf(Parse(kTopology), "k", "k-t0", *backends);
  ASSERT_TRUE(use.ok()) << use.status().message();
  EXPECT_THAT(
      use->qemu,
      ElementsAre("-netdev", "tap,id=net-vf-k-t0,ifname=k-t0,script=no,downscript=no,vhost=off",
                  "-device", "virtio-net-pci,id=vf-k-t0,netdev=net-vf-k-t0"));
  EXPECT_EQ(use->libvirt,
            "<interface type='bridge'>\n"
            "  <source bridge='vfb-k'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  EXPECT_EQ(use->vm, "");
}

TEST(GuestUseTest, UserspaceVmNicTapIsEthernetWithTheVmsMac) {
  auto backends = NewKernelPortBackends();
  auto use = GuestUseOf(Parse(kTopology), "u", "u-vm", *backends);
  ASSERT_TRUE(use.ok()) << use.status().message();
  EXPECT_EQ(use->vm, "vm1");
  EXPECT_THAT(
      use->qemu,
      ElementsAre("-netdev", "tap,id=net-vf-u-vm,ifname=u-vm,script=no,downscript=no,vhost=off",
                  "-device", "virtio-net-pci,id=vf-u-vm,netdev=net-vf-u-vm,mac=52:54:00:12:34:56"));
  EXPECT_EQ(use->libvirt,
            "<interface type='ethernet'>\n"
            "  <mac address='52:54:00:12:34:56'/>\n"
            "  <target dev='u-vm' managed='no'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
}

TEST(GuestUseTest, UndeclaredVmNicPortHasTheDerivedMac) {
  auto backends = NewKernelPortBackends();
  auto use = GuestUseOf(Parse(kTopology), "u", "vm1-eth1", *backends);
  ASSERT_TRUE(use.ok()) << use.status().message();
  EXPECT_EQ(use->vm, "vm1");
  ASSERT_TRUE(use->mac.has_value());
  EXPECT_THAT(use->libvirt, HasSubstr("<mac address='" + use->mac->ToString() + "'/>"));
  EXPECT_THAT(use->libvirt, HasSubstr("<target dev='vm1-eth1' managed='no'/>"));
}

TEST(GuestUseTest, UserspaceTapTheSwitchOpensHasNoGuestUse) {
  auto backends = NewKernelPortBackends();
  auto use = GuestUseOf(Parse(kTopology), "u", "u-t0", *backends);
  ASSERT_FALSE(use.ok());
  EXPECT_THAT(use.status().message(), HasSubstr("network u: port u-t0: netd's switch opens"));
}

TEST(GuestUseTest, VethsAndExistingLinksHaveNoGuestUse) {
  auto backends = NewKernelPortBackends();
  const topology::Topology t = Parse(kTopology);
  auto veth = GuestUseOf(t, "k", "k-v0", *backends);
  ASSERT_FALSE(veth.ok());
  EXPECT_THAT(veth.status().message(), HasSubstr("network k: port k-v0 is a veth"));
  auto existing = GuestUseOf(t, "k", "k-x", *backends);
  ASSERT_FALSE(existing.ok());
  EXPECT_THAT(existing.status().message(), HasSubstr("network k: port k-x is an existing link"));
  auto userspace_veth = GuestUseOf(t, "u", "u-v0", *backends);
  ASSERT_FALSE(userspace_veth.ok());
  EXPECT_THAT(userspace_veth.status().message(), HasSubstr("network u: port u-v0 is a veth"));
}

TEST(GuestUseTest, UnknownNetworkAndPortAreNamed) {
  auto backends = NewKernelPortBackends();
  const topology::Topology t = Parse(kTopology);
  auto network = GuestUseOf(t, "nope", "k-t0", *backends);
  ASSERT_FALSE(network.ok());
  EXPECT_EQ(network.status().message(), "no network named \"nope\"");
  auto port = GuestUseOf(t, "k", "nope", *backends);
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().message(), "no port \"nope\" in network \"k\"");
  // A VM NIC's port is its network's only.
  auto elsewhere = GuestUseOf(t, "k", "u-vm", *backends);
  EXPECT_FALSE(elsewhere.ok());
}

// "guest": true hands the tap to the guest: the switch takes a packet socket
// on it (as for a VM NIC's tap) and port show answers for it.
TEST(GuestUseTest, AGuestTapReachesTheSwitchThroughAPacketSocket) {
  const topology::Topology t = Parse(R"({"networks": [{"name": "u", "datapath": "userspace",
      "stp": {"enabled": true},
      "ports": [{"name": "g0", "guest": true}, {"name": "t0"}]}]})");
  auto backends = NewKernelPortBackends();
  std::map<std::string, const SwitchOperation*> adds;
  const std::vector<SwitchOperation> ops = PlanSwitches(t, {}, *backends);
  for (const SwitchOperation& op : ops)
    if (op.kind == SwitchOperation::Kind::kAddPort) adds[op.object] = &op;
  ASSERT_EQ(adds.size(), 2u);
  EXPECT_THAT(adds["g0"]->Describe(), HasSubstr("(packet socket"));
  EXPECT_TRUE(adds["g0"]->guest);
  EXPECT_TRUE(adds["g0"]->tree_settings.admin_edge);
  EXPECT_THAT(adds["t0"]->Describe(), HasSubstr("(tap"));
  auto use = GuestUseOf(t, "u", "g0", *backends);
  ASSERT_TRUE(use.ok()) << use.status().message();
  EXPECT_EQ(use->plug.kind, vmm::NicPlug::Kind::kTap);
  EXPECT_EQ(use->plug.tap, "g0");
  EXPECT_FALSE(use->mac.has_value());
  EXPECT_THAT(use->libvirt, HasSubstr("<target dev='g0' managed='no'/>"));
}

// port.show through the controller (no switches: the kernel backends
// answer): the error codes a client tells apart.
TEST(GuestUseTest, PortShowVerbAnswersAndItsErrorCodes) {
  testing::FakeKernel kernel;
  Controller controller(kernel, kernel.features);
  auto request = [&](nlohmann::json args) {
    return controller.Handle(
        {{"version", 1}, {"id", 1}, {"verb", "port.show"}, {"args", std::move(args)}});
  };
  nlohmann::json apply = controller.Handle(
      {{"version", 1},
       {"id", 1},
       {"verb", "apply"},
       {"args", {{"files", nlohmann::json::array({{{"name", "t.json"}, {"text", kTopology}}})}}}});
  ASSERT_EQ(apply["ok"], true) << apply.dump();

  nlohmann::json ok = request({{"network", "k"}, {"port", "k-t0"}, {"guest", "libvirt"}});
  ASSERT_EQ(ok["ok"], true) << ok.dump();
  EXPECT_EQ(ok["result"]["datapath"], "kernel");
  EXPECT_EQ(ok["result"]["kind"], "tap");
  EXPECT_EQ(ok["result"]["qemu"][0], "-netdev");
  EXPECT_THAT(ok["result"]["libvirt"].get<std::string>(), HasSubstr("<source bridge='vfb-k'/>"));
  nlohmann::json vm = request({{"network", "u"}, {"port", "u-vm"}});
  EXPECT_EQ(vm["result"]["vm"], "vm1");
  EXPECT_EQ(vm["result"]["mac"], "52:54:00:12:34:56");

  nlohmann::json veth = request({{"network", "k"}, {"port", "k-v0"}, {"guest", "qemu"}});
  EXPECT_EQ(veth["error"]["code"], "unsupported");
  EXPECT_THAT(veth["error"]["message"].get<std::string>(), HasSubstr("port k-v0 is a veth"));
  nlohmann::json shown = request({{"network", "k"}, {"port", "k-v0"}});
  EXPECT_EQ(shown["ok"], true);
  EXPECT_EQ(shown["result"]["kind"], "veth");
  EXPECT_THAT(shown["result"]["guest_error"].get<std::string>(), HasSubstr("is a veth"));
  EXPECT_EQ(request({{"network", "nope"}, {"port", "x"}})["error"]["code"], "not_found");
  EXPECT_EQ(request({{"network", "k"}, {"port", "nope"}, {"guest", "qemu"}})["error"]["code"],
            "not_found");
  EXPECT_EQ(request({{"network", "k"}, {"port", "k-t0"}, {"guest", "vmware"}})["error"]["code"],
            "bad_request");
  EXPECT_EQ(request({{"network", "k"}})["error"]["code"], "bad_request");
}

}  // namespace
}  // namespace vfabric::netd
