// Issue 18: the kernel's STP ages the FDB fast during a topology change
// (ageing_time = 2 x forward_delay, reported as such); netd must not take
// that for drift and write the configured ageing back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using ::testing::HasSubstr;
using testing::json;
using ::testing::Not;
using testing::WaitFor;

class StpAgeingTest : public testing::NetdFixture {};

int64_t AgeingTime(const std::string& bridge) {
  json link = testing::Link(bridge);
  if (!link.is_object() || !link.contains("linkinfo")) return -1;
  return link["linkinfo"]["info_data"].value("ageing_time", int64_t{-1});
}

TEST_F(StpAgeingTest, FastAgeingDuringATopologyChangeIsLeftToTheKernel) {
  const std::string config = dir_.Join("fa.json");
  // The shortest timers the schema allows: the port forwards after
  // 2 x forward_delay = 8 s, which is a topology change on the root bridge
  // lasting max_age + forward_delay = 10 s, with ageing 2 x 4 s.
  testing::WriteFile(config, R"({"networks": [{"name": "fa", "bridge": "vfb-fa",
      "stp": {"enabled": true, "hello_time": 1, "forward_delay": 4, "max_age": 6},
      "fdb": {"ageing_time": 120},
      "ports": [{"name": "fa0", "kind": "veth", "peer": "fa0-p"}]}]})");
  Start(config);
  EXPECT_EQ(AgeingTime("vfb-fa"), 12000);
  // The kernel ages fast once the port forwards...
  ASSERT_TRUE(WaitFor([] { return AgeingTime("vfb-fa") == 800; }, 20000))
      << AgeingTime("vfb-fa") << "\n"
      << Log();
  // ...and netd, which hears of the port's state change, leaves it so.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(AgeingTime("vfb-fa"), 800) << Log();
  // The kernel puts the configured value back when the change is over.
  EXPECT_TRUE(WaitFor([] { return AgeingTime("vfb-fa") == 12000; }, 20000)) << Log();
  EXPECT_THAT(Log(), Not(HasSubstr("drift: set bridge vfb-fa")));
}

}  // namespace
}  // namespace vfabric
