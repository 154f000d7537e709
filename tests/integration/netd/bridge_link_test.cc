// A kernel network's bridge as a host link (issue 18): its MAC pinned (a
// stable default, or "mac"), its MTU and the host's addresses on it, applied,
// read back and repaired by a real netd in the test's private namespace.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::json;

constexpr const char* kTopology = R"({"networks": [
  {"name": "bl", "mtu": 1400, "addresses": ["10.77.0.1/24", "fd77::1/64"],
   "ports": [{"name": "bl-t0"}, {"name": "bl-t1"}]},
  {"name": "bm", "mac": "02:12:34:56:78:9a", "ports": [{"name": "bm-t0"}]}]})";

std::string Mac(const std::string& link) {
  return testing::Link(link).value("address", std::string("none"));
}

// The bridge's addresses as `ip -j addr` shows them, "ADDRESS/LENGTH".
std::set<std::string> Addresses(const std::string& link) {
  json shown = testing::IpJson({"ip", "-j", "addr", "show", "dev", link});
  std::set<std::string> out;
  if (!shown.is_array() || shown.empty()) return out;
  for (const json& a : shown[0].value("addr_info", json::array())) {
    if (a.value("scope", "") == "link") continue;  // the kernel's IPv6 link-local
    out.insert(a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)));
  }
  return out;
}

class BridgeLinkTest : public testing::NetdFixture {};

TEST_F(BridgeLinkTest, MacStaysMtuAndAddressesAreKept) {
  const std::string config = dir_.Join("bl.json");
  testing::WriteFile(config, kTopology);
  Start(config);
  const std::set<std::string> want = {"10.77.0.1/24", "fd77::1/64"};
  ASSERT_TRUE(testing::WaitFor([&] { return Addresses("vfb-bl") == want; }, 5000)) << Log();
  EXPECT_EQ(testing::Link("vfb-bl")["mtu"], 1400);
  EXPECT_EQ(Mac("vfb-bm"), "02:12:34:56:78:9a");

  // The default: locally administered unicast, and not a port's.
  const std::string mac = Mac("vfb-bl");
  const unsigned first = std::stoul(mac.substr(0, 2), nullptr, 16);
  EXPECT_EQ(first & 0x03, 0x02u) << mac;
  EXPECT_NE(mac, Mac("bl-t0"));
  EXPECT_NE(mac, Mac("bl-t1"));

  // A port with a MAC lower than any other joins: the kernel would take it
  // as the bridge's. A tap deleted and re-created: the same.
  ASSERT_EQ(testing::Cmd({"ip", "link", "add", "bl-x0", "address", "02:00:00:00:00:01", "type",
                          "veth", "peer", "name", "bl-x0p"})
                .exit_code,
            0);
  const std::string more = dir_.Join("more.json");
  testing::WriteFile(more, R"({"networks": [{"name": "bl", "mtu": 1400,
      "addresses": ["10.77.0.1/24", "fd77::1/64"],
      "ports": [{"name": "bl-t0"}, {"name": "bl-t1"}, {"name": "bl-x0", "kind": "existing"}]}]})");
  testing::CommandResult applied =
      testing::Run({testing::BinaryDir() + "/netctl/netctl", "--socket", socket_, "apply", more});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(testing::Link("bl-x0")["master"], "vfb-bl");
  EXPECT_EQ(Mac("vfb-bl"), mac);
  ASSERT_EQ(testing::Cmd({"ip", "link", "del", "bl-t1"}).exit_code, 0);
  ASSERT_TRUE(testing::WaitFor([] { return testing::Link("bl-t1")["master"] == "vfb-bl"; }, 5000))
      << Log();
  EXPECT_EQ(Mac("vfb-bl"), mac);

  // Drift: an address removed by hand comes back, one added by hand goes,
  // a MAC or MTU changed by hand is put back.
  ASSERT_EQ(testing::Cmd({"ip", "addr", "del", "10.77.0.1/24", "dev", "vfb-bl"}).exit_code, 0);
  ASSERT_EQ(testing::Cmd({"ip", "addr", "add", "10.78.0.1/24", "dev", "vfb-bl"}).exit_code, 0);
  ASSERT_EQ(
      testing::Cmd({"ip", "link", "set", "vfb-bl", "address", "02:00:00:00:00:02", "mtu", "1300"})
          .exit_code,
      0);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Addresses("vfb-bl") == want && Mac("vfb-bl") == mac &&
               testing::Link("vfb-bl")["mtu"] == 1400;
      },
      5000))
      << Log();

  // The default is derived, not random: a restarted netd keeps it.
  Stop();
  ASSERT_EQ(testing::Cmd({"ip", "link", "del", "vfb-bl"}).exit_code, 0);
  Start(config);
  ASSERT_TRUE(testing::WaitFor([] { return testing::LinkExists("vfb-bl"); }, 5000)) << Log();
  EXPECT_TRUE(testing::WaitFor([&] { return Mac("vfb-bl") == mac; }, 5000)) << Mac("vfb-bl");
}

}  // namespace
}  // namespace vfabric
