// VXLAN overlays in the topology: the "overlay" keys of a network, their
// rules (VNI range, addresses and their family, duplicate VNIs, flood and
// EVPN, room for the encapsulation in the MTU) and the warning for a local
// address this host does not have, asked through the HostFacts seam.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vfabric/topology/host_facts.h"
#include "vfabric/topology/topology.h"

namespace vfabric::topology {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A host whose addresses are a list; asked for one it does not hold, it says
// so (known, not present). `answers` false: a host that cannot be asked.
class FakeHost final : public HostFacts {
 public:
  struct Address {
    std::string text;
    std::string link;
    uint32_t mtu = 1500;
  };
  std::vector<Address> addresses;
  bool answers = true;
  mutable int lookups = 0;

  IdLookup UserId(const std::string&) const override { return {}; }
  IdLookup GroupId(const std::string&) const override { return {}; }
  AddressLookup FindAddress(const IpPrefix& address) const override {
    ++lookups;
    if (!answers) return {};
    for (const Address& a : addresses) {
      auto mine = IpPrefix::ParseAddress(a.text);
      if (mine && mine->SameAddress(address)) return {true, true, a.link, a.mtu};
    }
    return {true, false, "", std::nullopt};
  }
};

std::vector<std::string> Lines(const std::vector<Diagnostic>& list) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : list) lines.push_back(d.ToString());
  return lines;
}

// One network "n" (kernel datapath) with `overlay` as its overlay object.
std::string Net(const std::string& overlay, const std::string& extra = "") {
  return "{\"networks\": [{\"name\": \"n\"" + extra + ",\n \"overlay\": " + overlay + "}]}";
}

FakeHost HostWith192() {
  FakeHost host;
  host.addresses.push_back({"192.0.2.1", "uplink0", 1500});
  host.addresses.push_back({"2001:db8::1", "uplink0", 1500});
  return host;
}

TEST(TopologyOverlayTest, EveryKeyIsRead) {
  const FakeHost host = HostWith192();
  LoadResult result =
      ParseTopology(Net("{\"vni\": 100, \"local\": \"192.0.2.1\", \"port\": 8472, \"mtu\": 1400,"
                        " \"flood\": [\"192.0.2.2\", \"192.0.2.3\"], \"control\": \"static\"}"),
                    "t.json", host);
  ASSERT_THAT(Lines(result.errors), IsEmpty());
  EXPECT_THAT(Lines(result.warnings), IsEmpty());
  const auto& overlay = result.topology.networks.at(0).overlay;
  ASSERT_TRUE(overlay.has_value());
  EXPECT_EQ(overlay->vni, 100u);
  EXPECT_EQ(overlay->local.AddressText(), "192.0.2.1");
  EXPECT_EQ(overlay->port, 8472);
  EXPECT_EQ(overlay->mtu, 1400u);
  ASSERT_EQ(overlay->flood.size(), 2u);
  EXPECT_EQ(overlay->flood[1].AddressText(), "192.0.2.3");
  EXPECT_EQ(overlay->control, OverlayControl::kStatic);
  EXPECT_EQ(OverlayDeviceName(overlay->vni), "vfx-100");
}

TEST(TopologyOverlayTest, DefaultsAndIpv6) {
  const FakeHost host = HostWith192();
  LoadResult result =
      ParseTopology(Net("{\"vni\": 16777215, \"local\": \"2001:db8::1\", \"control\": \"evpn\"}"),
                    "t.json", host);
  ASSERT_THAT(Lines(result.errors), IsEmpty());
  const auto& overlay = result.topology.networks.at(0).overlay;
  ASSERT_TRUE(overlay.has_value());
  EXPECT_EQ(overlay->port, 4789);
  EXPECT_FALSE(overlay->mtu.has_value());
  EXPECT_THAT(overlay->flood, IsEmpty());
  EXPECT_EQ(overlay->control, OverlayControl::kEvpn);
  EXPECT_EQ(OverlayDeviceName(overlay->vni), "vfx-16777215");  // 12 bytes: always fits
  EXPECT_FALSE(result.topology.networks.at(0).overlay->local.AddressText().empty());
}

TEST(TopologyOverlayTest, VniRangeAndRequiredKeys) {
  const FakeHost host = HostWith192();
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 0, \"local\": \"192.0.2.1\"}"), "t.json", host).errors),
      ElementsAre("t.json:2:21: /networks/0/overlay/vni: expected an integer in "
                  "1..16777215, got 0"));
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 16777216, \"local\": \"192.0.2.1\"}"), "t.json", host)
                .errors),
      ElementsAre("t.json:2:21: /networks/0/overlay/vni: expected an integer in 1..16777215, got "
                  "16777216"));
  EXPECT_THAT(Lines(ParseTopology(Net("{}"), "t.json", host).errors),
              ElementsAre("t.json:2:13: /networks/0/overlay: missing required key \"vni\"",
                          "t.json:2:13: /networks/0/overlay: missing required key \"local\""));
}

TEST(TopologyOverlayTest, UnknownKeySuggestsTheRightOne) {
  const FakeHost host = HostWith192();
  EXPECT_THAT(
      Lines(
          ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"flod\": []}"), "t.json", host)
              .errors),
      ElementsAre("t.json:2:46: /networks/0/overlay/flod: unknown key \"flod\"; did you mean "
                  "\"flood\"?"));
}

TEST(TopologyOverlayTest, AddressesAreUnicastHostAddressesOfOneFamily) {
  const FakeHost host = HostWith192();
  const auto errors = [&](const std::string& overlay) {
    return Lines(ParseTopology(Net(overlay), "t.json", host).errors);
  };
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"192.0.2.1/24\"}"),
              ElementsAre("t.json:2:33: /networks/0/overlay/local: invalid local address "
                          "\"192.0.2.1/24\": \"192.0.2.1/24\" is not an IPv4 or IPv6 address (an "
                          "address alone, no /LENGTH)"));
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"239.1.1.1\"}"),
              ElementsAre("t.json:2:33: /networks/0/overlay/local: invalid local address "
                          "\"239.1.1.1\": a tunnel endpoint must be a unicast address, not "
                          "multicast (multicast groups are not supported)"));
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"fe80::1\"}"),
              ElementsAre("t.json:2:33: /networks/0/overlay/local: invalid local address "
                          "\"fe80::1\": an IPv6 link-local address needs a link, which an overlay "
                          "cannot name; use a global or unique local address"));
  EXPECT_THAT(
      errors("{\"vni\": 5, \"local\": \"192.0.2.1\", \"flood\": [\"2001:db8::2\", \"192.0.2.1\","
             " \"192.0.2.9\", \"192.0.2.9\", \"0.0.0.0\", 7]}"),
      ElementsAre("t.json:2:56: /networks/0/overlay/flood/0: flood address 2001:db8::2 is IPv6 "
                  "but the local address 192.0.2.1 is not: one overlay speaks one IP family",
                  "t.json:2:97: /networks/0/overlay/flood/3: flood address 192.0.2.9 is listed "
                  "twice",
                  "t.json:2:110: /networks/0/overlay/flood/4: invalid flood address "
                  "\"0.0.0.0\": a tunnel endpoint must be a unicast address, not unspecified",
                  "t.json:2:121: /networks/0/overlay/flood/5: expected a string (an IPv4 or "
                  "IPv6 address, like \"192.0.2.1\"), got an integer"));
}

// One file for every host of an overlay: the flood list may name this host
// too, and is kept without it.
TEST(TopologyOverlayTest, TheFloodListMayNameThisHostItself) {
  const FakeHost host = HostWith192();
  LoadResult result = ParseTopology(
      Net("{\"vni\": 5, \"local\": \"192.0.2.2\", \"flood\": [\"192.0.2.1\", \"192.0.2.2\","
          " \"192.0.2.3\"]}"),
      "t.json", host);
  ASSERT_THAT(Lines(result.errors), IsEmpty());
  std::vector<std::string> flood;
  for (const IpPrefix& p : result.topology.networks.at(0).overlay->flood)
    flood.push_back(p.AddressText());
  EXPECT_THAT(flood, ElementsAre("192.0.2.1", "192.0.2.3"));
}

TEST(TopologyOverlayTest, FloodAndEvpnExcludeEachOther) {
  const FakeHost host = HostWith192();
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"control\": \"evpn\","
                              " \"flood\": [\"192.0.2.2\"]}"),
                          "t.json", host)
                .errors),
      ElementsAre("t.json:2:74: /networks/0/overlay/flood: \"flood\" and \"control\": \"evpn\" "
                  "exclude each other: with EVPN, FRR installs the flood list from its peers' "
                  "routes (type 3), and netd leaves it to FRR"));
}

TEST(TopologyOverlayTest, MtuMustLeaveRoomForTheEncapsulation) {
  const FakeHost host = HostWith192();
  const auto errors = [&](const std::string& overlay, const std::string& extra = "") {
    return Lines(ParseTopology(Net(overlay, extra), "t.json", host).errors);
  };
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"192.0.2.1\", \"mtu\": 65485}"), IsEmpty());
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"192.0.2.1\", \"mtu\": 65486}"),
              ElementsAre("t.json:2:53: /networks/0/overlay/mtu: overlay mtu 65486 leaves no "
                          "room for the 50-byte VXLAN encapsulation over IPv4: the outer packet "
                          "would exceed 65535 bytes (at most 65485)"));
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"2001:db8::1\", \"mtu\": 65466}"),
              ElementsAre("t.json:2:55: /networks/0/overlay/mtu: overlay mtu 65466 leaves no "
                          "room for the 70-byte VXLAN encapsulation over IPv6: the outer packet "
                          "would exceed 65535 bytes (at most 65465)"));
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"192.0.2.1\", \"mtu\": 67}"),
              ElementsAre("t.json:2:53: /networks/0/overlay/mtu: expected an integer in "
                          "68..65485, got 67"));
  EXPECT_THAT(errors("{\"vni\": 5, \"local\": \"192.0.2.1\", \"mtu\": 1450}", ", \"mtu\": 1500"),
              ElementsAre("t.json:2:53: /networks/0/overlay/mtu: overlay mtu 1450 is smaller "
                          "than the bridge's \"mtu\" 1500: frames that big would be dropped at "
                          "the vxlan port"));
}

TEST(TopologyOverlayTest, UserspaceOverlayIsAPortPerFloodAddress) {
  const FakeHost host = HostWith192();
  LoadResult result = ParseTopology(
      Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"port\": 8472,\n"
          " \"flood\": [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]}",
          ", \"datapath\": \"userspace\", \"ports\": [{\"name\": \"g0\", \"kind\": \"tap\"}]"),
      "t.json", host);
  ASSERT_THAT(Lines(result.errors), IsEmpty());
  const NetworkConfig& network = result.topology.networks.at(0);
  ASSERT_TRUE(network.overlay.has_value());
  // The network's own port, then one per flood address but this host's.
  ASSERT_EQ(network.ports.size(), 3u);
  EXPECT_EQ(network.ports[0].name, "g0");
  const PortConfig& peer = network.ports[1];
  EXPECT_EQ(peer.name, "vx5:192.0.2.2");
  EXPECT_EQ(peer.kind, PortKind::kVxlan);
  EXPECT_EQ(ToString(peer.kind), "vxlan");
  EXPECT_EQ(peer.vxlan_remote.AddressText(), "192.0.2.2");
  EXPECT_EQ(peer.vxlan_local.AddressText(), "192.0.2.1");
  EXPECT_EQ(peer.vxlan_port, 8472);
  EXPECT_EQ(peer.vxlan_vni, 5u);
  EXPECT_EQ(peer.where.line, 3);  // where its flood address is written
  EXPECT_EQ(network.ports[2].name, "vx5:192.0.2.3");
  // A kernel network's overlay makes no ports (its vxlan device is netd's).
  LoadResult kernel = ParseTopology(
      Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"flood\": [\"192.0.2.2\"]}"), "t.json", host);
  ASSERT_THAT(Lines(kernel.errors), IsEmpty());
  EXPECT_TRUE(kernel.topology.networks.at(0).ports.empty());
}

TEST(TopologyOverlayTest, UserspaceEvpnAndStpAreRefusedForNow) {
  const FakeHost host = HostWith192();
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"control\": \"evpn\"}",
                              ", \"datapath\": \"userspace\""),
                          "t.json", host)
                .errors),
      ElementsAre("t.json:2:57: /networks/0/overlay/control: \"control\": \"evpn\" needs "
                  "\"datapath\": \"kernel\" for now on network \"n\" (the userspace switch's "
                  "VXLAN takes a static \"flood\" list; the shadow devices FRR's zebra would "
                  "read are not there yet)"));
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\"}",
                              ", \"datapath\": \"userspace\", \"stp\": {\"enabled\": true}"),
                          "t.json", host)
                .errors),
      ElementsAre("t.json:2:13: /networks/0/overlay: a VXLAN overlay on a userspace network "
                  "with \"stp\" enabled is not supported yet on network \"n\" (the overlay's "
                  "peer ports are a full mesh with split horizon, which a spanning tree would "
                  "cut)"));
}

TEST(TopologyOverlayTest, DuplicateVniAcrossFilesAndDeviceNameClash) {
  const FakeHost host = HostWith192();
  LoadResult result = ParseTopologyFiles(
      {{"a.json",
        "{\"networks\": [{\"name\": \"a\", \"overlay\": {\"vni\": 7, \"local\": \"192.0.2.1\"}}]}"},
       {"b.json",
        "{\"networks\": [{\"name\": \"b\", \"overlay\": {\"vni\": 7, \"local\": \"192.0.2.1\"}},\n"
        " {\"name\": \"c\", \"ports\": [{\"name\": \"vfx-7\"}]}]}"}},
      host);
  EXPECT_THAT(Lines(result.errors),
              ElementsAre("b.json:1:48: /networks/0/overlay/vni: VNI 7 is already the overlay of "
                          "network \"a\" (at a.json:1:48): one VNI is one network",
                          "b.json:2:35: /networks/1/ports/0/name: interface name \"vfx-7\" is "
                          "already used by the vxlan device of network \"a\" (at a.json:1:48)"));
  LoadResult clash = ParseTopology(
      "{\"networks\": [{\"name\": \"c\", \"ports\": [{\"name\": \"vfx-9\"}]},\n"
      " {\"name\": \"d\", \"overlay\": {\"vni\": 9, \"local\": \"192.0.2.1\"}}]}",
      "t.json", host);
  EXPECT_THAT(Lines(clash.errors),
              ElementsAre("t.json:2:35: /networks/1/overlay/vni: the vxlan device name \"vfx-9\" "
                          "(from the VNI) is already used by a tap port of network \"c\" (at "
                          "t.json:1:48)"));
}

TEST(TopologyOverlayTest, ALocalAddressTheHostLacksIsAWarningNotAnError) {
  FakeHost host;  // has no addresses at all
  LoadResult result = ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\"}"), "t.json", host);
  EXPECT_TRUE(result.ok());
  EXPECT_THAT(Lines(result.warnings),
              ElementsAre("t.json:2:33: /networks/0/overlay/local: this host has no address "
                          "192.0.2.1: netd refuses to apply this overlay here (fine if the file "
                          "is meant for the host that has it)"));
  EXPECT_EQ(host.lookups, 1);
  // A host that cannot be asked: nothing concluded, nothing said.
  host.answers = false;
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\"}"), "t.json", host).warnings),
      IsEmpty());
  // The host has it: no warning.
  const FakeHost has = HostWith192();
  EXPECT_THAT(
      Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\"}"), "t.json", has).warnings),
      IsEmpty());
}

TEST(TopologyOverlayTest, AnMtuTheUnderlayCannotCarryIsAWarning) {
  const FakeHost host = HostWith192();  // uplink0, MTU 1500
  EXPECT_THAT(Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"mtu\": 1450}"),
                                  "t.json", host)
                        .warnings),
              IsEmpty());
  EXPECT_THAT(Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"192.0.2.1\", \"mtu\": 1451}"),
                                  "t.json", host)
                        .warnings),
              ElementsAre("t.json:2:53: /networks/0/overlay/mtu: overlay mtu 1451 plus 50 bytes "
                          "of VXLAN encapsulation exceeds the MTU 1500 of uplink0, which holds "
                          "192.0.2.1: full-size frames would be fragmented or dropped"));
  EXPECT_THAT(Lines(ParseTopology(Net("{\"vni\": 5, \"local\": \"2001:db8::1\", \"mtu\": 1431}"),
                                  "t.json", host)
                        .warnings),
              ElementsAre("t.json:2:55: /networks/0/overlay/mtu: overlay mtu 1431 plus 70 bytes "
                          "of VXLAN encapsulation exceeds the MTU 1500 of uplink0, which holds "
                          "2001:db8::1: full-size frames would be fragmented or dropped"));
}

}  // namespace
}  // namespace vfabric::topology
