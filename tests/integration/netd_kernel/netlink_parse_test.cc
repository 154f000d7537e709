// The rtnetlink parsers (netd/src/nl_parse.h) on messages built here: the
// values come out right, and every truncation or short attribute is ignored
// rather than read past (each case runs in a buffer of exactly its size, so
// the sanitizer build catches a stray read).
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <vector>

#include "nl_parse.h"

namespace vfabric::netd {
namespace {

class Builder {
 public:
  Builder(uint16_t type, size_t family_header) : buffer_(8192) {
    header_ = mnl_nlmsg_put_header(buffer_.data());
    header_->nlmsg_type = type;
    mnl_nlmsg_put_extra_header(header_, family_header);
  }
  nlmsghdr* header() { return header_; }
  template <typename T>
  T* family() {
    return static_cast<T*>(mnl_nlmsg_get_payload(header_));
  }
  std::vector<char> bytes() const {
    return std::vector<char>(buffer_.data(), buffer_.data() + header_->nlmsg_len);
  }

 private:
  std::vector<char> buffer_;
  nlmsghdr* header_;
};

// Runs `parse` on every prefix of `message` (nlmsg_len adjusted), each in a
// heap block of exactly that size.
template <typename Parse>
void ForEveryTruncation(const std::vector<char>& message, Parse parse) {
  for (size_t length = sizeof(nlmsghdr); length <= message.size(); ++length) {
    auto copy = std::make_unique<char[]>(length);
    std::memcpy(copy.get(), message.data(), length);
    reinterpret_cast<nlmsghdr*>(copy.get())->nlmsg_len = static_cast<uint32_t>(length);
    parse(reinterpret_cast<const nlmsghdr*>(copy.get()));
  }
}

std::vector<char> BridgePortLink() {
  Builder b(RTM_NEWLINK, sizeof(ifinfomsg));
  auto* ifi = b.family<ifinfomsg>();
  ifi->ifi_index = 7;
  ifi->ifi_flags = IFF_UP | IFF_LOWER_UP;
  nlmsghdr* h = b.header();
  mnl_attr_put_strz(h, IFLA_IFNAME, "vm1-eth0");
  mnl_attr_put_strz(h, IFLA_IFALIAS, "vfabric:vm1");
  mnl_attr_put_u32(h, IFLA_MTU, 1500);
  mnl_attr_put_u32(h, IFLA_MASTER, 3);
  mnl_attr_put_u8(h, IFLA_OPERSTATE, IF_OPER_UNKNOWN);
  const uint8_t mac[6] = {0x52, 0x54, 0, 0, 0, 1};
  mnl_attr_put(h, IFLA_ADDRESS, 6, mac);
  nlattr* info = mnl_attr_nest_start(h, IFLA_LINKINFO);
  mnl_attr_put_strz(h, IFLA_INFO_KIND, "tun");
  nlattr* data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
  mnl_attr_put_u32(h, IFLA_TUN_OWNER, 1000);
  mnl_attr_put_u8(h, IFLA_TUN_TYPE, IFF_TAP);
  mnl_attr_put_u8(h, IFLA_TUN_VNET_HDR, 1);
  mnl_attr_put_u8(h, IFLA_TUN_PERSIST, 1);
  mnl_attr_put_u8(h, IFLA_TUN_MULTI_QUEUE, 0);
  mnl_attr_nest_end(h, data);
  mnl_attr_put_strz(h, IFLA_INFO_SLAVE_KIND, "bridge");
  nlattr* slave = mnl_attr_nest_start(h, IFLA_INFO_SLAVE_DATA);
  mnl_attr_put_u8(h, IFLA_BRPORT_STATE, BR_STATE_FORWARDING);
  mnl_attr_put_u16(h, IFLA_BRPORT_PRIORITY, 32);
  mnl_attr_put_u32(h, IFLA_BRPORT_COST, 100);
  mnl_attr_put_u8(h, IFLA_BRPORT_GUARD, 1);
  mnl_attr_put_u8(h, IFLA_BRPORT_PROTECT, 0);
  ifla_bridge_id id{{0x10, 0x00}, {0x52, 0x54, 0, 0, 0, 9}};
  mnl_attr_put(h, IFLA_BRPORT_ROOT_ID, sizeof id, &id);
  mnl_attr_put_u16(h, IFLA_BRPORT_DESIGNATED_COST, 4);
  mnl_attr_nest_end(h, slave);
  mnl_attr_nest_end(h, info);
  return b.bytes();
}

TEST(NetlinkParse, LinkWithTapAndBridgePort) {
  std::vector<char> message = BridgePortLink();
  LinkInfo link;
  ASSERT_TRUE(nl::ParseLink(reinterpret_cast<const nlmsghdr*>(message.data()), &link));
  EXPECT_EQ(link.ifindex, 7);
  EXPECT_EQ(link.name, "vm1-eth0");
  EXPECT_EQ(link.alias, "vfabric:vm1");
  EXPECT_EQ(link.mtu, 1500u);
  EXPECT_EQ(link.master_ifindex, 3);
  EXPECT_TRUE(link.admin_up);
  EXPECT_TRUE(link.oper_up);  // UNKNOWN with carrier, as a tap reports it
  EXPECT_EQ(link.mac.ToString(), "52:54:00:00:00:01");
  EXPECT_EQ(link.kind, "tun");
  ASSERT_TRUE(link.tap);
  EXPECT_EQ(link.tap->settings.owner, 1000u);
  EXPECT_FALSE(link.tap->settings.group);
  EXPECT_TRUE(link.tap->settings.vnet_hdr);
  EXPECT_FALSE(link.tap->settings.multi_queue);
  EXPECT_TRUE(link.tap->persistent);
  EXPECT_TRUE(link.tap->is_tap);
  ASSERT_TRUE(link.brport);
  EXPECT_EQ(link.brport->state, BR_STATE_FORWARDING);
  EXPECT_EQ(link.brport->settings.priority, 32u);
  EXPECT_EQ(link.brport->settings.cost, 100u);
  EXPECT_EQ(link.brport->settings.bpdu_guard, true);
  EXPECT_EQ(link.brport->settings.root_block, false);
  EXPECT_EQ(link.brport->designated_root, 0x1000525400000009ULL);
  EXPECT_EQ(link.brport->designated_cost, 4u);
  EXPECT_FALSE(link.brport->settings.learning);  // absent stays unset
}

TEST(NetlinkParse, TruncatedLinkMessagesAreNeverReadPast) {
  int parsed = 0;
  ForEveryTruncation(BridgePortLink(), [&](const nlmsghdr* header) {
    LinkInfo link;
    if (nl::ParseLink(header, &link)) ++parsed;
  });
  EXPECT_GT(parsed, 0);
}

TEST(NetlinkParse, ShortAttributesAreIgnored) {
  Builder b(RTM_NEWLINK, sizeof(ifinfomsg));
  nlmsghdr* h = b.header();
  const uint8_t two[2] = {1, 2};
  mnl_attr_put(h, IFLA_MTU, sizeof two, two);      // u32 wanted
  mnl_attr_put(h, IFLA_ADDRESS, sizeof two, two);  // 6 bytes wanted
  mnl_attr_put(h, IFLA_IFNAME, 3, "abc");          // no NUL
  nlattr* info = mnl_attr_nest_start(h, IFLA_LINKINFO);
  mnl_attr_put_strz(h, IFLA_INFO_KIND, "bridge");
  nlattr* data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
  mnl_attr_put(h, IFLA_BR_BRIDGE_ID, sizeof two, two);  // 8 bytes wanted
  mnl_attr_put(h, IFLA_BR_TOPOLOGY_CHANGE_TIMER, sizeof two, two);
  mnl_attr_put(h, IFLA_BR_PRIORITY, 0, nullptr);
  mnl_attr_nest_end(h, data);
  mnl_attr_nest_end(h, info);
  std::vector<char> message = b.bytes();
  LinkInfo link;
  ASSERT_TRUE(nl::ParseLink(reinterpret_cast<const nlmsghdr*>(message.data()), &link));
  EXPECT_EQ(link.mtu, 0u);
  EXPECT_TRUE(link.mac.IsZero());
  EXPECT_EQ(link.name, "abc");
  ASSERT_TRUE(link.bridge);
  EXPECT_FALSE(link.bridge->bridge_id);
  EXPECT_FALSE(link.bridge->topology_change_timer_cs);
  EXPECT_EQ(link.bridge->settings.priority, 32768u);  // left at the default
}

TEST(NetlinkParse, FdbEntries) {
  Builder b(RTM_NEWNEIGH, sizeof(ndmsg));
  auto* ndm = b.family<ndmsg>();
  ndm->ndm_family = AF_BRIDGE;
  ndm->ndm_ifindex = 7;
  ndm->ndm_state = NUD_NOARP;
  const uint8_t mac[6] = {0x52, 0x54, 0, 0, 0, 1};
  mnl_attr_put(b.header(), NDA_LLADDR, 6, mac);
  mnl_attr_put_u16(b.header(), NDA_VLAN, 10);
  std::vector<char> self_entry = b.bytes();  // no NDA_MASTER yet
  EXPECT_FALSE(nl::ParseFdb(reinterpret_cast<const nlmsghdr*>(self_entry.data())));
  mnl_attr_put_u32(b.header(), NDA_MASTER, 3);
  std::vector<char> message = b.bytes();
  auto entry = nl::ParseFdb(reinterpret_cast<const nlmsghdr*>(message.data()));
  ASSERT_TRUE(entry);
  EXPECT_EQ(*entry, (FdbEntry{7, 3, *MacAddress::Parse("52:54:00:00:00:01"), 10, true, false}));
  ForEveryTruncation(message, [](const nlmsghdr* header) { (void)nl::ParseFdb(header); });
}

TEST(NetlinkParse, PortVlansWithRanges) {
  Builder b(RTM_NEWLINK, sizeof(ifinfomsg));
  b.family<ifinfomsg>()->ifi_index = 7;
  nlmsghdr* h = b.header();
  nlattr* spec = mnl_attr_nest_start(h, IFLA_AF_SPEC);
  bridge_vlan_info pvid{BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED, 1};
  bridge_vlan_info begin{BRIDGE_VLAN_INFO_RANGE_BEGIN, 10};
  bridge_vlan_info end{BRIDGE_VLAN_INFO_RANGE_END, 12};
  mnl_attr_put(h, IFLA_BRIDGE_VLAN_INFO, sizeof pvid, &pvid);
  mnl_attr_put(h, IFLA_BRIDGE_VLAN_INFO, sizeof begin, &begin);
  mnl_attr_put(h, IFLA_BRIDGE_VLAN_INFO, sizeof end, &end);
  mnl_attr_put(h, IFLA_BRIDGE_VLAN_INFO, 2, &pvid);  // short: ignored
  mnl_attr_nest_end(h, spec);
  std::vector<char> message = b.bytes();
  std::vector<PortVlanEntry> vlans;
  nl::ParsePortVlans(reinterpret_cast<const nlmsghdr*>(message.data()), &vlans);
  ASSERT_EQ(vlans.size(), 4u);
  EXPECT_EQ(vlans[0], (PortVlanEntry{7, 1, true, true}));
  EXPECT_EQ(vlans[1], (PortVlanEntry{7, 10, false, false}));
  EXPECT_EQ(vlans[3], (PortVlanEntry{7, 12, false, false}));
  ForEveryTruncation(message, [](const nlmsghdr* header) {
    std::vector<PortVlanEntry> out;
    nl::ParsePortVlans(header, &out);
  });
}

}  // namespace
}  // namespace vfabric::netd
