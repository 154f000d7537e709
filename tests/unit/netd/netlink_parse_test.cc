// netd's netlink parsing (netd/src/nl_parse.h) on what the kernel does not
// send: the walk over a receive buffer (nl::MessageOk) and bridge VLAN
// entries out of range, as netlink_fuzzer found them.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "nl_parse.h"

namespace vfabric::netd::nl {
namespace {

// Two messages in a 48-byte buffer; the second one's header claims `length`.
std::vector<uint32_t> Buffer(uint32_t second_length) {
  std::vector<uint32_t> words(12, 0);
  nlmsghdr first{};
  first.nlmsg_len = 16;
  first.nlmsg_type = NLMSG_NOOP;
  std::memcpy(words.data(), &first, sizeof first);
  nlmsghdr second{};
  second.nlmsg_len = second_length;
  second.nlmsg_type = RTM_NEWLINK;
  std::memcpy(words.data() + 4, &second, sizeof second);
  return words;
}

int Walk(const std::vector<uint32_t>& words) {
  const auto* header = reinterpret_cast<const nlmsghdr*>(words.data());
  int remaining = static_cast<int>(words.size() * 4);
  int messages = 0;
  while (MessageOk(header, remaining)) {
    ++messages;
    header = mnl_nlmsg_next(header, &remaining);
  }
  return messages;
}

TEST(NetlinkParseTest, AMessageLongerThanTheBufferEndsTheWalk) {
  EXPECT_EQ(Walk(Buffer(32)), 2);
  EXPECT_EQ(Walk(Buffer(33)), 1);
  EXPECT_EQ(Walk(Buffer(15)), 1);
}

// libmnl's mnl_nlmsg_ok() takes (int)nlmsg_len: a length of 2^31 or more is
// negative there and passes, and mnl_nlmsg_next() then jumps 2 GiB ahead.
TEST(NetlinkParseTest, ALengthOf2GiBOrMoreIsNotAMessage) {
  std::vector<uint32_t> words = Buffer(0x82a6343b);
  const auto* second = reinterpret_cast<const nlmsghdr*>(words.data() + 4);
  EXPECT_TRUE(mnl_nlmsg_ok(second, 32));  // the hole MessageOk closes
  EXPECT_FALSE(MessageOk(second, 32));
  EXPECT_EQ(Walk(words), 1);
  EXPECT_EQ(Walk(Buffer(0xfffffff0)), 1);
}

// An RTM_NEWLINK of an AF_BRIDGE dump for ifindex 7 with these VLAN entries.
std::vector<PortVlanEntry> ParseVlans(const std::vector<bridge_vlan_info>& infos) {
  std::vector<uint32_t> words(1024, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(words.data());
  header->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_BRIDGE;
  ifi->ifi_index = 7;
  nlattr* nest = mnl_attr_nest_start(header, IFLA_AF_SPEC);
  for (const bridge_vlan_info& info : infos)
    mnl_attr_put(header, IFLA_BRIDGE_VLAN_INFO, sizeof info, &info);
  mnl_attr_nest_end(header, nest);
  std::vector<PortVlanEntry> out;
  ParsePortVlans(header, &out);
  return out;
}

TEST(NetlinkParseTest, VlanRangesAreExpanded) {
  auto vlans = ParseVlans({{BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED, 1},
                           {BRIDGE_VLAN_INFO_RANGE_BEGIN, 10},
                           {BRIDGE_VLAN_INFO_RANGE_END, 12}});
  ASSERT_EQ(vlans.size(), 4u);
  EXPECT_TRUE(vlans[0].pvid && vlans[0].untagged);
  EXPECT_EQ(vlans[0].port_ifindex, 7);
  EXPECT_EQ(vlans[3].vid, 12);
}

// Found by netlink_fuzzer: ids past 4094 (up to 65535 in a range) were
// taken as they came.
TEST(NetlinkParseTest, VlanIdsOutside1To4094AreSkipped) {
  auto vlans = ParseVlans({{BRIDGE_VLAN_INFO_RANGE_BEGIN, 4000},
                           {BRIDGE_VLAN_INFO_RANGE_END, 65535},
                           {0, 0},
                           {0, 4095},
                           {0, 20}});
  ASSERT_EQ(vlans.size(), 1u);
  EXPECT_EQ(vlans[0].vid, 20);
  // A range whose start is malformed is not a range: its end stands alone.
  vlans = ParseVlans({{BRIDGE_VLAN_INFO_RANGE_BEGIN, 5000}, {BRIDGE_VLAN_INFO_RANGE_END, 30}});
  ASSERT_EQ(vlans.size(), 1u);
  EXPECT_EQ(vlans[0].vid, 30);
}

}  // namespace
}  // namespace vfabric::netd::nl
