// The kernel plan of a network's VXLAN overlay (netd/src/overlay_plan.h):
// the vxlan device as a bridge port, the flood list as the device's
// all-zero-MAC entries, drift repair of both, EVPN leaving the list to FRR,
// and the refusals (a local address the host lacks, a foreign link).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>

#include "fake_kernel.h"
#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

using ::testing::ElementsAre;
using testing::FakeKernel;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using topology::NetworkConfig;
using topology::OverlayControl;
using topology::Topology;

IpPrefix Address(const char* text) { return *IpPrefix::ParseAddress(text); }

NetworkConfig Stretched(OverlayControl control = OverlayControl::kStatic) {
  NetworkConfig network;
  network.name = "ov";
  network.bridge = "vfb-ov";
  topology::OverlayConfig overlay;
  overlay.vni = 100;
  overlay.local = Address("192.0.2.1");
  overlay.control = control;
  if (control == OverlayControl::kStatic)
    overlay.flood = {Address("192.0.2.2"), Address("192.0.2.3")};
  network.overlay = overlay;
  return network;
}

Topology With(std::vector<NetworkConfig> networks) {
  Topology topology;
  topology.networks = std::move(networks);
  return topology;
}

class OverlayPlanTest : public ::testing::Test {
 protected:
  OverlayPlanTest() {
    // The underlay: a link holding the local address.
    LinkInfo& uplink = kernel_.AddForeignLink("uplink0", "veth");
    kernel_.addresses.push_back({uplink.ifindex, *IpPrefix::Parse("192.0.2.1/24")});
  }

  Result<std::vector<Operation>> PlanNow(const Topology& topology) {
    auto state = ReadKernelState(kernel_, kernel_.features);
    if (!state.ok()) return state.status();
    return Plan(topology, *state);
  }

  std::vector<std::string> Lines(const Topology& topology) {
    auto plan = PlanNow(topology);
    EXPECT_TRUE(plan.ok()) << plan.status().message();
    std::vector<std::string> lines;
    if (plan.ok())
      for (const Operation& op : *plan) lines.push_back(op.Describe());
    return lines;
  }

  void Converge(const Topology& topology) {
    auto plan = PlanNow(topology);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    ASSERT_TRUE(ApplyPlan(kernel_, *plan).ok());
    ASSERT_THAT(Lines(topology), IsEmpty());
  }

  const LinkInfo* Vxlan() { return kernel_.Find("vfx-100"); }

  std::vector<std::string> Flood() {
    std::vector<std::string> out;
    for (const VxlanFloodEntry& e : kernel_.vxlan_flood) {
      const LinkInfo* link = kernel_.Find(e.ifindex);
      out.push_back((link ? link->name : "?") + " " + e.dst.AddressText());
    }
    return out;
  }

  FakeKernel kernel_;
};

TEST_F(OverlayPlanTest, MakesTheVxlanDeviceABridgePortWithItsFloodList) {
  const Topology topology = With({Stretched()});
  EXPECT_THAT(
      Lines(topology),
      ElementsAre(HasSubstr("create bridge vfb-ov"),
                  "create vxlan vfx-100 (vni 100, local 192.0.2.1, dstport 4789, nolearning)",
                  "attach vfx-100 to bridge vfb-ov", "set vfx-100 up",
                  "add flood entry 00:00:00:00:00:00 dst 192.0.2.2 on vfx-100",
                  "add flood entry 00:00:00:00:00:00 dst 192.0.2.3 on vfx-100", "set vfb-ov up"));
  Converge(topology);
  ASSERT_NE(Vxlan(), nullptr);
  EXPECT_EQ(Vxlan()->alias, "vfabric:ov");
  EXPECT_EQ(Vxlan()->master_ifindex, kernel_.Find("vfb-ov")->ifindex);
  EXPECT_FALSE(Vxlan()->vxlan->learning);
  EXPECT_THAT(Flood(), ElementsAre("vfx-100 192.0.2.2", "vfx-100 192.0.2.3"));
}

TEST_F(OverlayPlanTest, RepairsFloodEntriesDeletedOrAddedByHand) {
  const Topology topology = With({Stretched()});
  Converge(topology);
  const int ifindex = Vxlan()->ifindex;
  // Deleted by hand: added again.
  std::erase(kernel_.vxlan_flood, VxlanFloodEntry{ifindex, Address("192.0.2.3")});
  EXPECT_THAT(Lines(topology),
              ElementsAre("add flood entry 00:00:00:00:00:00 dst 192.0.2.3 on vfx-100"));
  // Added by hand, not in the file: the file's list is the whole list.
  kernel_.vxlan_flood.push_back({ifindex, Address("192.0.2.99")});
  EXPECT_THAT(Lines(topology),
              ElementsAre("add flood entry 00:00:00:00:00:00 dst 192.0.2.3 on vfx-100",
                          "delete flood entry 00:00:00:00:00:00 dst 192.0.2.99 from vfx-100"));
  Converge(topology);
  EXPECT_THAT(Flood(), ElementsAre("vfx-100 192.0.2.2", "vfx-100 192.0.2.3"));
}

TEST_F(OverlayPlanTest, RepairsADeletedOrReleasedDevice) {
  const Topology topology = With({Stretched()});
  Converge(topology);
  ASSERT_TRUE(kernel_.SetMaster("vfx-100", "").ok());
  ASSERT_TRUE(kernel_.SetLinkUp("vfx-100", false).ok());
  EXPECT_THAT(Lines(topology), ElementsAre("attach vfx-100 to bridge vfb-ov", "set vfx-100 up"));
  ASSERT_TRUE(kernel_.DeleteLink("vfx-100").ok());
  EXPECT_THAT(Flood(), IsEmpty());
  EXPECT_THAT(
      Lines(topology),
      ElementsAre("create vxlan vfx-100 (vni 100, local 192.0.2.1, dstport 4789, nolearning)",
                  "attach vfx-100 to bridge vfb-ov", "set vfx-100 up",
                  "add flood entry 00:00:00:00:00:00 dst 192.0.2.2 on vfx-100",
                  "add flood entry 00:00:00:00:00:00 dst 192.0.2.3 on vfx-100"));
  Converge(topology);
}

TEST_F(OverlayPlanTest, ADeviceWithOtherSettingsIsMadeAnew) {
  Converge(With({Stretched()}));
  NetworkConfig moved = Stretched();
  moved.overlay->port = 8472;
  moved.overlay->mtu = 1400;
  EXPECT_THAT(
      Lines(With({moved})),
      ElementsAre("delete link vfx-100",
                  "create vxlan vfx-100 (vni 100, local 192.0.2.1, dstport 8472, nolearning)",
                  "set mtu of vfx-100 1400", "attach vfx-100 to bridge vfb-ov", "set vfx-100 up",
                  "add flood entry 00:00:00:00:00:00 dst 192.0.2.2 on vfx-100",
                  "add flood entry 00:00:00:00:00:00 dst 192.0.2.3 on vfx-100"));
  Converge(With({moved}));
  EXPECT_EQ(Vxlan()->vxlan->port, 8472);
}

TEST_F(OverlayPlanTest, EvpnLeavesTheFloodListToFrr) {
  const Topology topology = With({Stretched(OverlayControl::kEvpn)});
  EXPECT_THAT(
      Lines(topology),
      ElementsAre(HasSubstr("create bridge vfb-ov"),
                  "create vxlan vfx-100 (vni 100, local 192.0.2.1, dstport 4789, nolearning)",
                  "attach vfx-100 to bridge vfb-ov", "set bridge port vfx-100 (learning off)",
                  "set vfx-100 up", "set vfb-ov up"));
  Converge(topology);
  // What zebra installs is none of netd's business.
  kernel_.vxlan_flood.push_back({Vxlan()->ifindex, Address("192.0.2.7")});
  EXPECT_THAT(Lines(topology), IsEmpty());
}

// With EVPN, zebra installs the peers' MACs on the vxlan port: extern_learn
// entries, and a peer's sticky MAC as a static + sticky entry without
// extern_learn (measured with FRR 8.4). Neither is drift; netd's own static
// entries on its ports are still repaired.
TEST_F(OverlayPlanTest, EvpnLeavesFrrsEntriesOnTheVxlanPortAndRepairsNetdsOwn) {
  NetworkConfig network = Stretched(OverlayControl::kEvpn);
  topology::PortConfig port;
  port.name = "vm1";
  network.ports.push_back(port);
  topology::StaticFdbEntry own;
  own.mac = *MacAddress::Parse("52:54:00:00:00:01");
  own.port = "vm1";
  network.fdb.static_entries.push_back(own);
  const Topology topology = With({network});
  Converge(topology);
  const int vxlan = Vxlan()->ifindex;
  const int bridge = kernel_.Find("vfb-ov")->ifindex;
  FdbEntry remote;  // a peer's MAC, as zebra installs it
  remote.port_ifindex = vxlan;
  remote.bridge_ifindex = bridge;
  remote.mac = *MacAddress::Parse("52:54:00:00:02:01");
  remote.extern_learn = true;
  kernel_.fdb.push_back(remote);
  FdbEntry sticky = remote;  // a peer's sticky MAC: static, no extern_learn
  sticky.mac = *MacAddress::Parse("52:54:00:00:02:02");
  sticky.extern_learn = false;
  sticky.is_static = true;
  kernel_.fdb.push_back(sticky);
  EXPECT_THAT(Lines(topology), IsEmpty());
  // Netd's own entry, deleted by hand, comes back; FRR's stay untouched.
  std::erase_if(kernel_.fdb, [&](const FdbEntry& e) { return e.mac == own.mac; });
  EXPECT_THAT(Lines(topology), ElementsAre("add static fdb 52:54:00:00:00:01 on vm1"));
  Converge(topology);
  EXPECT_EQ(std::count(kernel_.fdb.begin(), kernel_.fdb.end(), remote), 1);
  EXPECT_EQ(std::count(kernel_.fdb.begin(), kernel_.fdb.end(), sticky), 1);
}

// With a static flood list netd owns the vxlan port: a static entry put
// there by hand is drift like on any other port.
TEST_F(OverlayPlanTest, StaticControlDeletesAStaticEntryAddedByHandOnTheVxlanPort) {
  const Topology topology = With({Stretched()});
  Converge(topology);
  FdbEntry by_hand;
  by_hand.port_ifindex = Vxlan()->ifindex;
  by_hand.bridge_ifindex = kernel_.Find("vfb-ov")->ifindex;
  by_hand.mac = *MacAddress::Parse("52:54:00:00:02:02");
  by_hand.is_static = true;
  kernel_.fdb.push_back(by_hand);
  EXPECT_THAT(Lines(topology), ElementsAre("delete static fdb 52:54:00:00:02:02 on vfx-100"));
  // An extern_learn entry is a control plane's whatever the overlay's mode.
  kernel_.fdb.back().extern_learn = true;
  EXPECT_THAT(Lines(topology), IsEmpty());
}

TEST_F(OverlayPlanTest, AnOverlayTakenOutDeletesItsDevice) {
  Converge(With({Stretched()}));
  NetworkConfig plain = Stretched();
  plain.overlay.reset();
  EXPECT_THAT(Lines(With({plain})), ElementsAre("delete link vfx-100"));
  Converge(With({plain}));
  EXPECT_EQ(Vxlan(), nullptr);
}

TEST_F(OverlayPlanTest, ALocalAddressTheHostLacksIsRefusedAtApply) {
  NetworkConfig elsewhere = Stretched();
  elsewhere.overlay->local = Address("192.0.2.2");
  auto plan = PlanNow(With({elsewhere}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "network ov: overlay local address 192.0.2.2 is not an address of this host (no link "
            "has it): add it to the underlay link, or give this host's own address in \"local\"");
  // One the topology puts on a bridge counts.
  NetworkConfig underlay;
  underlay.name = "under";
  underlay.bridge = "vfb-under";
  underlay.addresses = std::vector<IpPrefix>{*IpPrefix::Parse("192.0.2.2/24")};
  EXPECT_TRUE(PlanNow(With({underlay, elsewhere})).ok());
}

TEST_F(OverlayPlanTest, AForeignLinkOfTheDevicesNameIsRefused) {
  kernel_.AddForeignLink("vfx-100", "vxlan");
  auto plan = PlanNow(With({Stretched()}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(),
              HasSubstr("vxlan device vfx-100 of network ov: a link named vfx-100 exists and was "
                        "not made by vfabric"));
}

TEST_F(OverlayPlanTest, AFailedFloodEntryUndoesTheWholeApply) {
  kernel_.fail = [](const std::string& call) {
    return call == "AddVxlanFlood vfx-100 192.0.2.3" ? Status::Error("injected", EIO)
                                                     : Status::Ok();
  };
  auto plan = PlanNow(With({Stretched()}));
  ASSERT_TRUE(plan.ok());
  Status status = ApplyPlan(kernel_, *plan);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("injected"));
  EXPECT_EQ(Vxlan(), nullptr);
  EXPECT_EQ(kernel_.Find("vfb-ov"), nullptr);
  EXPECT_THAT(Flood(), IsEmpty());
}

}  // namespace
}  // namespace vfabric::netd
