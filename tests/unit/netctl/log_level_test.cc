// netctl log-level against the fake netd: what it sends, what it prints,
// and the levels it refuses before asking.
#include <gtest/gtest.h>

#include "fake_netd.h"
#include "run_netctl.h"
#include "vfabric/netctl/cli.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::ErrorReply;
using testing::FakeNetd;
using testing::OkReply;

testing::NetctlOutput Netctl(std::vector<std::string> args, const std::string& socket) {
  args.insert(args.begin(), {"--socket", socket});
  return testing::RunNetctl(args);
}

TEST(LogLevelTest, ShowsTheLevel) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, {{"level", "info"}}); });
  auto result = Netctl({"log-level"}, netd.path());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "info\n");
  const json request = netd.last_request();
  EXPECT_EQ(request["verb"], "log.level");
  EXPECT_FALSE(request.contains("args") && request["args"].contains("level")) << request.dump();
  result = Netctl({"log-level", "--json"}, netd.path());
  EXPECT_EQ(json::parse(result.out), json({{"level", "info"}}));
}

TEST(LogLevelTest, SetsTheLevelAndSaysWhatItWas) {
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"level", "warning"}, {"previous", "info"}});
  });
  // "warn" is netd's spelling too; it goes out as "warning".
  auto result = Netctl({"log-level", "warn"}, netd.path());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "log level warning (was info)\n");
  EXPECT_EQ(netd.last_request()["args"]["level"], "warning");
}

TEST(LogLevelTest, RefusesAnUnknownLevelWithoutAsking) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  auto result = Netctl({"log-level", "loud"}, netd.path());
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.err,
            "netctl: log-level: 'loud' is not a log level (error, warning, info, debug)\n"
            "Usage: netctl log-level [LEVEL] (see 'netctl help log-level')\n");
  EXPECT_TRUE(netd.requests().empty());
  EXPECT_EQ(Netctl({"log-level", "info", "debug"}, netd.path()).code, 2);
}

TEST(LogLevelTest, AnOlderNetdSaysItDoesNotKnowTheCommand) {
  FakeNetd netd([](const std::string& line) {
    return ErrorReply(line, {{"code", "unknown_verb"}, {"message", "unknown verb \"log.level\""}});
  });
  auto result = Netctl({"log-level"}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_NE(result.err.find("this netd does not know 'netctl log-level'"), std::string::npos)
      << result.err;
}

TEST(LogLevelTest, HelpNamesTheLevels) {
  EXPECT_NE(HelpText("").find("  log-level [LEVEL] "), std::string::npos);
  EXPECT_EQ(HelpText("log-level").rfind("Usage:\n  netctl log-level [LEVEL] [OPTIONS]\n\n", 0), 0u)
      << HelpText("log-level");
  EXPECT_NE(HelpText("log-level").find("error, warning, info or"), std::string::npos);
}

}  // namespace
}  // namespace vfabric::netctl
