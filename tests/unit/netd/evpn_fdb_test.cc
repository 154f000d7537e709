// FRR's FDB entries on a kernel network with an EVPN overlay: netd reads
// NTF_EXT_LEARNED back (nl::ParseFdb), shows such entries as extern_learn,
// and fdb.flush, which removes what the bridge learned, leaves them -- and
// every entry on the vxlan port of an EVPN overlay -- to FRR.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "fake_kernel.h"
#include "nl_parse.h"
#include "vfabric/netd/controller.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using testing::FakeKernel;

// An RTM_NEWNEIGH of the bridge (NDA_MASTER 3) for a MAC on port 7.
std::vector<uint32_t> Neighbour(uint8_t flags, uint16_t state) {
  std::vector<uint32_t> words(64, 0);
  nlmsghdr* header = mnl_nlmsg_put_header(words.data());
  header->nlmsg_type = RTM_NEWNEIGH;
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ndmsg)));
  ndm->ndm_family = AF_BRIDGE;
  ndm->ndm_ifindex = 7;
  ndm->ndm_flags = flags;
  ndm->ndm_state = state;
  const std::array<uint8_t, 6> mac{0x52, 0x54, 0, 0, 2, 1};
  mnl_attr_put(header, NDA_LLADDR, mac.size(), mac.data());
  mnl_attr_put_u32(header, NDA_MASTER, 3);
  return words;
}

TEST(EvpnFdbTest, ExternLearnIsReadBack) {
  // zebra's remote MAC: NTF_MASTER | NTF_EXT_LEARNED, reachable.
  std::vector<uint32_t> frr = Neighbour(NTF_MASTER | NTF_EXT_LEARNED, NUD_REACHABLE);
  auto entry = nl::ParseFdb(reinterpret_cast<const nlmsghdr*>(frr.data()));
  ASSERT_TRUE(entry);
  EXPECT_TRUE(entry->extern_learn);
  EXPECT_FALSE(entry->is_static);
  EXPECT_EQ(entry->port_ifindex, 7);
  std::vector<uint32_t> learned = Neighbour(NTF_MASTER, NUD_REACHABLE);
  entry = nl::ParseFdb(reinterpret_cast<const nlmsghdr*>(learned.data()));
  ASSERT_TRUE(entry);
  EXPECT_FALSE(entry->extern_learn);
}

constexpr const char* kStretch = R"({"networks": [{"name": "stretch", "bridge": "vfb-stretch",
    "overlay": {"vni": 4242, "local": "192.0.2.1", "control": "evpn"},
    "ports": [{"name": "str-vm1", "kind": "tap"}]}]})";

json Request(const std::string& verb, json args = json::object()) {
  return {{"version", 1}, {"id", 1}, {"verb", verb}, {"args", std::move(args)}};
}

class EvpnFdbControllerTest : public ::testing::Test {
 protected:
  EvpnFdbControllerTest() {
    LinkInfo& uplink = kernel_.AddForeignLink("uplink0", "veth");
    kernel_.addresses.push_back({uplink.ifindex, *IpPrefix::Parse("192.0.2.1/24")});
  }

  FdbEntry Entry(const std::string& port, const char* mac) {
    FdbEntry entry;
    entry.port_ifindex = kernel_.Find(port)->ifindex;
    entry.bridge_ifindex = kernel_.Find("vfb-stretch")->ifindex;
    entry.mac = *MacAddress::Parse(mac);
    return entry;
  }

  FakeKernel kernel_;
  Controller controller_{kernel_, kernel_.features};
};

TEST_F(EvpnFdbControllerTest, FlushLeavesFrrsEntriesAndShowMarksThem) {
  ASSERT_EQ(
      controller_.Handle(Request(
          "apply", {{"files", json::array({{{"name", "s.json"}, {"text", kStretch}}})}}))["ok"],
      true);
  FdbEntry learned = Entry("str-vm1", "52:54:00:00:01:01");  // the bridge learned it
  FdbEntry remote = Entry("vfx-4242", "52:54:00:00:02:01");  // zebra's
  remote.extern_learn = true;
  FdbEntry sticky = Entry("vfx-4242", "52:54:00:00:02:02");  // zebra's, a peer's sticky MAC
  sticky.is_static = true;
  FdbEntry odd = Entry("vfx-4242", "52:54:00:00:02:03");  // on the port, neither flag
  kernel_.fdb.insert(kernel_.fdb.end(), {learned, remote, sticky, odd});

  json show = controller_.Handle(Request("fdb.show", {{"network", "stretch"}}));
  ASSERT_EQ(show["ok"], true) << show.dump();
  int marked = 0;
  for (const json& e : show["result"]["entries"])
    if (e.value("extern_learn", false)) {
      ++marked;
      EXPECT_EQ(e["mac"], "52:54:00:00:02:01");
      EXPECT_EQ(e["port"], "vfx-4242");
    }
  EXPECT_EQ(marked, 1);

  json flush = controller_.Handle(Request("fdb.flush", {{"network", "stretch"}}));
  ASSERT_EQ(flush["ok"], true) << flush.dump();
  EXPECT_EQ(flush["result"]["count"], 1) << flush.dump();
  EXPECT_EQ(flush["result"]["removed"][0]["mac"], "52:54:00:00:01:01");
  const auto has = [&](const FdbEntry& e) {
    return std::count(kernel_.fdb.begin(), kernel_.fdb.end(), e) == 1;
  };
  EXPECT_FALSE(has(learned));
  EXPECT_TRUE(has(remote));
  EXPECT_TRUE(has(sticky));
  EXPECT_TRUE(has(odd));
  // Not drift either: a repair pass changes nothing.
  ASSERT_TRUE(controller_.Reconcile().ok());
  EXPECT_TRUE(has(remote) && has(sticky) && has(odd));
}

}  // namespace
}  // namespace vfabric::netd
