// netd's parsing of VXLAN in rtnetlink (netd/src/nl_vxlan.h) on hand-built
// messages: a vxlan link's IFLA_VXLAN_* (network-order port, both address
// families, wrong sizes ignored) and which AF_BRIDGE neighbours are flood
// entries (a device's own all-zero entry with a destination; never a
// bridge's entry, a non-zero MAC, or a destination of the wrong size).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <vector>

#include "nl_vxlan.h"

namespace vfabric::netd::nl {
namespace {

TEST(NetlinkVxlanParseTest, VxlanDataReadsBack) {
  std::vector<uint32_t> words(256, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(words.data());
  nlattr* data = mnl_attr_nest_start(header, IFLA_INFO_DATA);
  mnl_attr_put_u32(header, IFLA_VXLAN_ID, 4242);
  const std::array<uint8_t, 4> local{192, 0, 2, 1};
  mnl_attr_put(header, IFLA_VXLAN_LOCAL, local.size(), local.data());
  mnl_attr_put_u16(header, IFLA_VXLAN_PORT, htons(4789));
  mnl_attr_put_u8(header, IFLA_VXLAN_LEARNING, 0);
  mnl_attr_nest_end(header, data);
  const VxlanSettings settings = ParseVxlanData(data);
  EXPECT_EQ(settings.vni, 4242u);
  EXPECT_EQ(settings.local.AddressText(), "192.0.2.1");
  EXPECT_EQ(settings.port, 4789);
  EXPECT_FALSE(settings.learning);
}

TEST(NetlinkVxlanParseTest, AnAddressOfTheWrongSizeIsLeftUnset) {
  std::vector<uint32_t> words(256, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(words.data());
  nlattr* data = mnl_attr_nest_start(header, IFLA_INFO_DATA);
  const std::array<uint8_t, 3> short_local{192, 0, 2};
  mnl_attr_put(header, IFLA_VXLAN_LOCAL, short_local.size(), short_local.data());
  mnl_attr_put_u8(header, IFLA_VXLAN_ID, 1);  // too short for a u32: ignored
  mnl_attr_nest_end(header, data);
  const VxlanSettings settings = ParseVxlanData(data);
  EXPECT_EQ(settings.local.family, 0);
  EXPECT_EQ(settings.vni, 0u);
  EXPECT_EQ(ParseVxlanData(nullptr), VxlanSettings{});
}

// An RTM_NEWNEIGH of an AF_BRIDGE dump on ifindex 9.
struct Neigh {
  std::vector<uint8_t> mac = std::vector<uint8_t>(6, 0);
  std::vector<uint8_t> dst = {192, 0, 2, 2};
  bool master = false;
};

std::optional<VxlanFloodEntry> Parse(const Neigh& n) {
  std::vector<uint32_t> words(256, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(words.data());
  header->nlmsg_type = RTM_NEWNEIGH;
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ndmsg)));
  ndm->ndm_family = AF_BRIDGE;
  ndm->ndm_ifindex = 9;
  mnl_attr_put(header, NDA_LLADDR, n.mac.size(), n.mac.data());
  if (!n.dst.empty()) mnl_attr_put(header, NDA_DST, n.dst.size(), n.dst.data());
  if (n.master) mnl_attr_put_u32(header, NDA_MASTER, 3);
  return ParseVxlanFlood(header);
}

TEST(NetlinkVxlanParseTest, OnlyADevicesOwnAllZeroEntryWithADestinationIsAFloodEntry) {
  auto entry = Parse({});
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->ifindex, 9);
  EXPECT_EQ(entry->dst.AddressText(), "192.0.2.2");
  Neigh six;
  six.dst = std::vector<uint8_t>(16, 0);
  six.dst[0] = 0x20, six.dst[1] = 0x01, six.dst[2] = 0x0d, six.dst[3] = 0xb8, six.dst[15] = 2;
  ASSERT_TRUE(Parse(six));
  EXPECT_EQ(Parse(six)->dst.AddressText(), "2001:db8::2");

  Neigh bridge_entry;
  bridge_entry.master = true;
  EXPECT_FALSE(Parse(bridge_entry));
  Neigh unicast;
  unicast.mac = {0x52, 0x54, 0, 0, 0, 1};
  EXPECT_FALSE(Parse(unicast));
  Neigh no_dst;
  no_dst.dst.clear();
  EXPECT_FALSE(Parse(no_dst));
  Neigh odd_dst;
  odd_dst.dst = {192, 0, 2};
  EXPECT_FALSE(Parse(odd_dst));
  Neigh short_mac;
  short_mac.mac = {0, 0, 0, 0};
  EXPECT_FALSE(Parse(short_mac));
}

}  // namespace
}  // namespace vfabric::netd::nl
