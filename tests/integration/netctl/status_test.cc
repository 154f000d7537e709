// `netctl status` against a real netd in the test's private network namespace.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;

class StatusTest : public testing::NetdFixture {
 protected:
  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }
};

TEST_F(StatusTest, SaysVersionUptimeConfigAndEachNetworksState) {
  Start(Configs());
  CommandResult status = Netctl({"status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("config:"));
  EXPECT_THAT(status.out, HasSubstr(Configs()));
  EXPECT_THAT(status.out, HasSubstr("uptime:"));
  EXPECT_THAT(status.out, HasSubstr("NAME"));
  EXPECT_THAT(status.out, HasSubstr("lab"));

  CommandResult as_json = Netctl({"status", "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  json result = json::parse(as_json.out);
  EXPECT_EQ(result["server"], "netd");
  EXPECT_EQ(result["config"], json::array({Configs()}));
  EXPECT_GE(result["uptime_seconds"].get<int64_t>(), 0);
  ASSERT_EQ(result["networks"].size(), 3u);
  for (const json& network : result["networks"]) {
    EXPECT_TRUE(network["source"].get<std::string>().rfind(Configs() + "/", 0) == 0)
        << network.dump();
    EXPECT_EQ(network["applied"], false);
  }
}

}  // namespace
}  // namespace vfabric
