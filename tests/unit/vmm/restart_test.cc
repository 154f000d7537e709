#include "vfabric/vmm/restart.h"

#include <gtest/gtest.h>

namespace vfabric::vmm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = RestartTracker::TimePoint;

const TimePoint kT0 = TimePoint() + std::chrono::hours(1);

BackoffConfig Config() {
  BackoffConfig c;
  c.initial = milliseconds(1000);
  c.max = milliseconds(8000);
  c.factor = 2.0;
  c.stable = seconds(60);
  return c;
}

TEST(RestartPolicyTest, ParsesTheTopologyWords) {
  EXPECT_EQ(*ParseRestartPolicy("no"), RestartPolicy::kNo);
  EXPECT_EQ(*ParseRestartPolicy(""), RestartPolicy::kNo);
  EXPECT_EQ(*ParseRestartPolicy("on-failure"), RestartPolicy::kOnFailure);
  EXPECT_EQ(*ParseRestartPolicy("always"), RestartPolicy::kAlways);
  Result<RestartPolicy> bad = ParseRestartPolicy("sometimes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "restart \"sometimes\": want no, on-failure or always");
  EXPECT_EQ(ToString(RestartPolicy::kOnFailure), "on-failure");
}

TEST(RestartTrackerTest, NoNeverRestarts) {
  RestartTracker t(RestartPolicy::kNo, Config());
  EXPECT_FALSE(t.OnExit(kT0, kT0 + seconds(1), /*failed=*/true, false));
  EXPECT_FALSE(t.OnExit(kT0, kT0 + seconds(1), false, false));
  EXPECT_EQ(t.restarts(), 0);
}

TEST(RestartTrackerTest, OnFailureRestartsOnlyFailures) {
  RestartTracker t(RestartPolicy::kOnFailure, Config());
  EXPECT_FALSE(t.OnExit(kT0, kT0 + seconds(5), /*failed=*/false, false));
  auto again = t.OnExit(kT0, kT0 + seconds(5), /*failed=*/true, false);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, kT0 + seconds(6));
  EXPECT_EQ(t.restarts(), 1);
}

TEST(RestartTrackerTest, AlwaysRestartsCleanExitsToo) {
  RestartTracker t(RestartPolicy::kAlways, Config());
  EXPECT_TRUE(t.OnExit(kT0, kT0 + seconds(1), false, false));
  EXPECT_TRUE(t.OnExit(kT0, kT0 + seconds(1), true, false));
}

TEST(RestartTrackerTest, AskedForStopsNeverRestart) {
  RestartTracker t(RestartPolicy::kAlways, Config());
  EXPECT_FALSE(t.OnExit(kT0, kT0 + seconds(1), true, /*stop_requested=*/true));
  EXPECT_EQ(t.restarts(), 0);
}

TEST(RestartTrackerTest, BackoffDoublesUpToTheCap) {
  RestartTracker t(RestartPolicy::kOnFailure, Config());
  TimePoint now = kT0;
  std::vector<long long> delays;
  for (int i = 0; i < 6; ++i) {
    TimePoint started = now;
    now += seconds(1);  // crashed after a second: not stable
    auto again = t.OnExit(started, now, true, false);
    ASSERT_TRUE(again);
    delays.push_back(std::chrono::duration_cast<milliseconds>(*again - now).count());
    now = *again;
  }
  EXPECT_EQ(delays, (std::vector<long long>{1000, 2000, 4000, 8000, 8000, 8000}));
  EXPECT_EQ(t.restarts(), 6);
}

TEST(RestartTrackerTest, AStableRunResetsTheBackoff) {
  RestartTracker t(RestartPolicy::kOnFailure, Config());
  TimePoint now = kT0;
  for (int i = 0; i < 3; ++i) now = *t.OnExit(now, now + seconds(1), true, false);
  EXPECT_EQ(t.consecutive(), 3);
  // Ran for the stable time: the next delay is the initial one again.
  TimePoint started = now;
  now += seconds(60);
  auto again = t.OnExit(started, now, true, false);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again - now, milliseconds(1000));
}

TEST(RestartTrackerTest, ResetForgetsTheBackoffButNotTheCount) {
  RestartTracker t(RestartPolicy::kAlways, Config());
  TimePoint now = kT0;
  for (int i = 0; i < 4; ++i) now = *t.OnExit(now, now + seconds(1), true, false);
  t.Reset();
  auto again = t.OnExit(now, now + seconds(1), true, false);
  EXPECT_EQ(*again - (now + seconds(1)), milliseconds(1000));
  EXPECT_EQ(t.restarts(), 5);
}

TEST(RestartTrackerTest, HugeFactorsSaturateAtTheCap) {
  BackoffConfig c = Config();
  c.factor = 1e300;
  RestartTracker t(RestartPolicy::kAlways, c);
  TimePoint now = kT0;
  for (int i = 0; i < 100; ++i) {
    TimePoint exit = now + seconds(1);
    auto again = t.OnExit(now, exit, true, false);
    ASSERT_TRUE(again);
    EXPECT_LE(*again - exit, milliseconds(8000));
    now = *again;
  }
}

}  // namespace
}  // namespace vfabric::vmm
