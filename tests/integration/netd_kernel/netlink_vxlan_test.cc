// The netlink Kernel's VXLAN calls against the running kernel, in a private
// network namespace: the vxlan device created and read back (netd's own
// ListLinks and `ip -d -j link`), its flood entries added, listed and
// deleted (ListVxlanFlood and `bridge -j fdb`), and entries made by iproute2
// read back by netd. A kernel without vxlan skips (fails in CI).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vfabric/netd/kernel.h"
#include "vfabric/testing/support.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using vfabric::testing::CommandResult;
using vfabric::testing::Run;

CommandResult Sh(const std::vector<std::string>& argv) { return Run(argv); }

json RunJson(const std::vector<std::string>& argv) {
  auto result = Run(argv);
  EXPECT_EQ(result.exit_code, 0) << argv[0] << ": " << result.err;
  json parsed = json::parse(result.out, nullptr, false);
  return parsed.is_discarded() ? json::array() : parsed;
}

std::optional<LinkInfo> FindLink(Kernel& kernel, const std::string& name) {
  auto links = kernel.ListLinks();
  if (!links.ok()) return std::nullopt;
  for (const LinkInfo& link : *links)
    if (link.name == name) return link;
  return std::nullopt;
}

// The all-zero entries `bridge fdb` shows on `device`, as their dst.
std::vector<std::string> IprouteFlood(const std::string& device) {
  std::vector<std::string> out;
  for (const json& entry : RunJson({"bridge", "-j", "fdb", "show", "dev", device}))
    if (entry.value("mac", "") == "00:00:00:00:00:00" && entry.contains("dst"))
      out.push_back(entry["dst"].get<std::string>());
  return out;
}

std::vector<std::string> NetdFlood(Kernel& kernel, int ifindex) {
  std::vector<std::string> out;
  auto entries = kernel.ListVxlanFlood();
  EXPECT_TRUE(entries.ok()) << entries.status().message();
  if (entries.ok())
    for (const VxlanFloodEntry& e : *entries)
      if (e.ifindex == ifindex) out.push_back(e.dst.AddressText());
  return out;
}

class NetlinkVxlan : public ::testing::Test {
 protected:
  void SetUp() override {
    VF_REQUIRE_PRIVATE_NETNS();
    auto kernel = NewNetlinkKernel();
    ASSERT_TRUE(kernel.ok()) << kernel.status().message();
    kernel_ = std::move(*kernel);
    auto probe =
        Sh({"ip", "link", "add", "vfxprobe", "type", "vxlan", "id", "1", "dstport", "4789"});
    if (probe.exit_code != 0) {
      if (vfabric::testing::InCi()) FAIL() << "no vxlan links: " << probe.err;
      GTEST_SKIP() << "this kernel makes no vxlan links: " << probe.err;
    }
    Sh({"ip", "link", "del", "vfxprobe"});
  }
  std::unique_ptr<Kernel> kernel_;
};

TEST_F(NetlinkVxlan, CreateReadsBackWithItsSettingsAndAlias) {
  VxlanSettings settings;
  settings.vni = 4242;
  settings.local = *IpPrefix::ParseAddress("192.0.2.1");
  settings.port = 8472;
  Status status = kernel_->CreateVxlan("vfx-4242", settings, "vfabric:ov");
  ASSERT_TRUE(status.ok()) << status.message();
  auto link = FindLink(*kernel_, "vfx-4242");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->kind, "vxlan");
  EXPECT_EQ(link->alias, "vfabric:ov");
  ASSERT_TRUE(link->vxlan);
  EXPECT_EQ(*link->vxlan, settings);
  const json ip = RunJson({"ip", "-d", "-j", "link", "show", "dev", "vfx-4242"});
  ASSERT_EQ(ip.size(), 1u);
  const json& data = ip[0]["linkinfo"]["info_data"];
  EXPECT_EQ(data["id"], 4242);
  EXPECT_EQ(data["local"], "192.0.2.1");
  EXPECT_EQ(data["port"], 8472);
  EXPECT_EQ(data["learning"], false);
  EXPECT_EQ(ip[0]["ifalias"], "vfabric:ov");

  // IPv6, and a second one of the same VNI refused by name.
  VxlanSettings six;
  six.vni = 7;
  six.local = *IpPrefix::ParseAddress("2001:db8::1");
  ASSERT_TRUE(kernel_->CreateVxlan("vfx-7", six, "").ok());
  auto link6 = FindLink(*kernel_, "vfx-7");
  ASSERT_TRUE(link6 && link6->vxlan);
  EXPECT_EQ(link6->vxlan->local.AddressText(), "2001:db8::1");
  EXPECT_EQ(link6->vxlan->port, 4789);
  EXPECT_EQ(kernel_->CreateVxlan("vfx-4242", settings, "")
                .message()
                .rfind("create vxlan vfx-4242: File exists", 0),
            0u);
}

TEST_F(NetlinkVxlan, FloodEntriesAddListDeleteBothWays) {
  VxlanSettings settings;
  settings.vni = 100;
  settings.local = *IpPrefix::ParseAddress("192.0.2.1");
  ASSERT_TRUE(kernel_->CreateVxlan("vfx-100", settings, "").ok());
  const int ifindex = FindLink(*kernel_, "vfx-100")->ifindex;
  ASSERT_TRUE(kernel_->AddVxlanFlood("vfx-100", *IpPrefix::ParseAddress("192.0.2.2")).ok());
  ASSERT_TRUE(kernel_->AddVxlanFlood("vfx-100", *IpPrefix::ParseAddress("192.0.2.3")).ok());
  EXPECT_THAT(IprouteFlood("vfx-100"), ::testing::UnorderedElementsAre("192.0.2.2", "192.0.2.3"));
  EXPECT_THAT(NetdFlood(*kernel_, ifindex),
              ::testing::UnorderedElementsAre("192.0.2.2", "192.0.2.3"));
  // One made by iproute2 reads back here.
  ASSERT_EQ(
      Sh({"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vfx-100", "dst", "192.0.2.9"})
          .exit_code,
      0);
  EXPECT_THAT(NetdFlood(*kernel_, ifindex),
              ::testing::UnorderedElementsAre("192.0.2.2", "192.0.2.3", "192.0.2.9"));
  Status deleted = kernel_->DeleteVxlanFlood("vfx-100", *IpPrefix::ParseAddress("192.0.2.3"));
  ASSERT_TRUE(deleted.ok()) << deleted.message();
  EXPECT_THAT(IprouteFlood("vfx-100"), ::testing::UnorderedElementsAre("192.0.2.2", "192.0.2.9"));
  // The kernel takes the deletion of a destination the entry does not have
  // as done (vxlan_fdb_delete finds no rdst and returns 0).
  Status again = kernel_->DeleteVxlanFlood("vfx-100", *IpPrefix::ParseAddress("192.0.2.3"));
  EXPECT_TRUE(again.ok()) << again.message();
  EXPECT_THAT(IprouteFlood("vfx-100"), ::testing::UnorderedElementsAre("192.0.2.2", "192.0.2.9"));
  EXPECT_EQ(kernel_->AddVxlanFlood("nope0", *IpPrefix::ParseAddress("192.0.2.2")).message(),
            "add flood entry 192.0.2.2 on nope0: No such device");
  // A bridge's own FDB entries are not flood entries.
  ASSERT_TRUE(kernel_->CreateBridge("vfb-ov", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel_->SetMaster("vfx-100", "vfb-ov").ok());
  EXPECT_THAT(NetdFlood(*kernel_, ifindex),
              ::testing::UnorderedElementsAre("192.0.2.2", "192.0.2.9"));
  auto all = kernel_->ListVxlanFlood();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

}  // namespace
}  // namespace vfabric::netd
