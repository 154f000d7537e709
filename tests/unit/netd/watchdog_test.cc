// WatchdogInterval: when netd pings systemd's watchdog, and how often.
#include "vfabric/netd/watchdog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vfabric::netd {
namespace {

using std::chrono::microseconds;
using ::testing::HasSubstr;

TEST(WatchdogTest, OffWithoutWatchdogUsec) {
  auto interval = WatchdogInterval(nullptr, nullptr, 42);
  ASSERT_TRUE(interval.ok());
  EXPECT_FALSE(interval->has_value());
}

TEST(WatchdogTest, PingsAtHalfThePeriod) {
  auto interval = WatchdogInterval("30000000", nullptr, 42);
  ASSERT_TRUE(interval.ok()) << interval.status().message();
  ASSERT_TRUE(interval->has_value());
  EXPECT_EQ(**interval, microseconds(15000000));
  // The shortest period still gives a timer that fires.
  EXPECT_EQ(**WatchdogInterval("1", nullptr, 42), microseconds(1));
}

TEST(WatchdogTest, OnlyForThePidSystemdNamed) {
  auto mine = WatchdogInterval("2000000", "42", 42);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(**mine, microseconds(1000000));
  // Inherited from a parent the watchdog was meant for: not netd's.
  auto other = WatchdogInterval("2000000", "41", 42);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
}

TEST(WatchdogTest, MalformedValuesAreErrorsThatNameTheVariable) {
  for (const char* usec : {"", "0", "-5", "1s", " 100", "100 ", "18446744073709551616"}) {
    auto interval = WatchdogInterval(usec, nullptr, 42);
    ASSERT_FALSE(interval.ok()) << usec;
    EXPECT_THAT(interval.status().message(), HasSubstr("WATCHDOG_USEC=\"")) << usec;
  }
  auto pid = WatchdogInterval("100", "x", 42);
  ASSERT_FALSE(pid.ok());
  EXPECT_THAT(pid.status().message(), HasSubstr("WATCHDOG_PID=\"x\""));
}

}  // namespace
}  // namespace vfabric::netd
