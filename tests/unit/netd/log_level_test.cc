// The log.level verb: netd's level shown and changed at run time.
#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/controller.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

json Request(json args = json::object()) {
  return {{"version", 1}, {"id", 1}, {"verb", "log.level"}, {"args", std::move(args)}};
}

class LogLevelVerbTest : public ::testing::Test {
 protected:
  void TearDown() override { SetLogLevel(saved_); }
  const LogLevel saved_ = GetLogLevel();
  testing::FakeKernel kernel_;
  Controller controller_{kernel_, kernel_.features};
};

TEST_F(LogLevelVerbTest, ShowsAndSetsTheProcesssLevel) {
  SetLogLevel(LogLevel::kInfo);
  json answer = controller_.Handle(Request());
  ASSERT_EQ(answer["ok"], true) << answer.dump();
  EXPECT_EQ(answer["result"], json({{"level", "info"}}));

  answer = controller_.Handle(Request({{"level", "debug"}}));
  ASSERT_EQ(answer["ok"], true) << answer.dump();
  EXPECT_EQ(answer["result"], json({{"level", "debug"}, {"previous", "info"}}));
  EXPECT_EQ(GetLogLevel(), LogLevel::kDebug);

  answer = controller_.Handle(Request({{"level", "warn"}}));
  EXPECT_EQ(answer["result"]["level"], "warning");
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarning);
  EXPECT_EQ(controller_.Handle(Request())["result"]["level"], "warning");
}

TEST_F(LogLevelVerbTest, RefusesWhatIsNoLevel) {
  SetLogLevel(LogLevel::kInfo);
  for (const json& level : {json("loud"), json(3), json("")}) {
    json answer = controller_.Handle(Request({{"level", level}}));
    if (level == "") {
      EXPECT_EQ(answer["result"]["level"], "info");  // "" is no level given: shown
      continue;
    }
    EXPECT_EQ(answer["ok"], false) << level.dump();
    EXPECT_EQ(answer["error"]["code"], "bad_request") << level.dump();
  }
  EXPECT_EQ(GetLogLevel(), LogLevel::kInfo);
}

}  // namespace
}  // namespace vfabric::netd
