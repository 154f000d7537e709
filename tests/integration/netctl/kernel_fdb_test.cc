// `netctl fdb add/del/flush` on a kernel network, against a real netd in the
// test's private network namespace, compared with what `bridge fdb show`
// reads from the kernel.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;

constexpr const char* kTopology = R"({"networks": [
  {"name": "kf", "bridge": "vfb-kf",
   "ports": [{"name": "kf-v0", "kind": "veth", "peer": "kf-p0"},
             {"name": "kf-v1", "kind": "veth", "peer": "kf-p1"}]}]})";

class KernelFdbTest : public testing::NetdFixture {
 protected:
  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }

  // The test's entries (02:00:00:00:00:xx; the peers' own addresses that
  // the bridge learns from their IPv6 chatter are left out) that the kernel
  // has on the bridge's ports, as "MAC PORT STATE" (STATE: static or
  // dynamic, as `bridge fdb` says).
  std::set<std::string> KernelEntries() {
    CommandResult shown = testing::Run({"bridge", "-j", "fdb", "show", "br", "vfb-kf"});
    json entries = json::parse(shown.out, nullptr, false);
    std::set<std::string> out;
    if (!entries.is_array()) return out;
    for (const json& e : entries) {
      if (e.value("state", "") == "permanent" || !e.contains("ifname") ||
          e.value("ifname", "") == "vfb-kf" || e.value("mac", "").rfind("02:00:00:00:00:", 0) != 0)
        continue;
      const std::string state = e.value("state", "");
      out.insert(e.value("mac", "") + " " + e.value("ifname", "") + " " +
                 (state.empty() ? "dynamic" : state));
    }
    return out;
  }
};

TEST_F(KernelFdbTest, AddDelFlushWorkAsBridgeFdbDoes) {
  const std::string config = dir_.Join("kf.json");
  testing::WriteFile(config, kTopology);
  Start(config);
  ASSERT_TRUE(testing::WaitFor([] { return testing::LinkExists("kf-v1"); }, 5000)) << Log();

  CommandResult added = Netctl({"fdb", "add", "kf", "02:00:00:00:00:aa", "kf-v0"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "added static 02:00:00:00:00:aa on kf-v0 (vlan -)\n");
  EXPECT_EQ(KernelEntries(), std::set<std::string>({"02:00:00:00:00:aa kf-v0 static"}));

  // Part of the desired state: repair passes and a restart keep it.
  Stop();
  Start(config);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a repair pass or more
  CommandResult shown = Netctl({"fdb", "show", "kf", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("02:00:00:00:00:aa"));
  EXPECT_EQ(KernelEntries(), std::set<std::string>({"02:00:00:00:00:aa kf-v0 static"}));
  // Removed behind netd's back, it comes back.
  testing::Cmd({"bridge", "fdb", "del", "02:00:00:00:00:aa", "dev", "kf-v0", "master"});
  EXPECT_TRUE(testing::WaitFor(
      [&] { return KernelEntries().count("02:00:00:00:00:aa kf-v0 static") == 1; }, 5000))
      << Log();

  // Learned entries (made here as `bridge fdb` makes them: dynamic).
  for (const auto& [mac, port] :
       {std::pair{"02:00:00:00:00:b1", "kf-v1"}, std::pair{"02:00:00:00:00:b2", "kf-v1"},
        std::pair{"02:00:00:00:00:c0", "kf-v0"}})
    ASSERT_EQ(
        testing::Cmd({"bridge", "fdb", "add", mac, "dev", port, "master", "dynamic"}).exit_code, 0);
  CommandResult flushed = Netctl({"fdb", "flush", "kf", "--port", "kf-v1", "--json"});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  json result = json::parse(flushed.out);
  std::set<std::string> removed;
  for (const json& e : result["removed"]) {
    EXPECT_EQ(e["port"], "kf-v1");
    removed.insert(e["mac"].get<std::string>());
  }
  EXPECT_EQ(result["count"], removed.size());
  EXPECT_TRUE(removed.count("02:00:00:00:00:b1") && removed.count("02:00:00:00:00:b2"))
      << flushed.out;
  EXPECT_EQ(KernelEntries(), std::set<std::string>({"02:00:00:00:00:aa kf-v0 static",
                                                    "02:00:00:00:00:c0 kf-v0 dynamic"}));
  CommandResult all = Netctl({"fdb", "flush", "kf"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("learned FDB entr"));
  EXPECT_THAT(all.out, HasSubstr("02:00:00:00:00:c0  -     kf-v0"));
  EXPECT_EQ(KernelEntries(), std::set<std::string>({"02:00:00:00:00:aa kf-v0 static"}));

  CommandResult deleted = Netctl({"fdb", "del", "kf", "02:00:00:00:00:aa"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted static 02:00:00:00:00:aa on kf-v0 (vlan -)\n");
  EXPECT_EQ(KernelEntries(), std::set<std::string>());
  CommandResult again = Netctl({"fdb", "del", "kf", "02:00:00:00:00:aa"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "netctl: no static FDB entry for 02:00:00:00:00:aa on network kf\n");
  // Deleted for good: a restart does not bring it back.
  Stop();
  Start(config);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(KernelEntries(), std::set<std::string>());
}

}  // namespace
}  // namespace vfabric
