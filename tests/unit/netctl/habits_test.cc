// What operators type without reading the manual: -j for --json, "net" and
// "ls", a suggestion for a mistyped command, "-" for standard input.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "fake_netd.h"
#include "vfabric/netctl/cli.h"
#include "vfabric/testing/support.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::FakeNetd;
using testing::OkReply;
using vfabric::testing::CommandResult;
using vfabric::testing::TempDir;
using vfabric::testing::WriteFile;

CommandLine Parse(const std::vector<std::string>& args) {
  CommandLine cl;
  UsageError error;
  EXPECT_TRUE(ParseCommandLine(args, "/default.sock", &cl, &error)) << error.message;
  return cl;
}

std::string ParseError(const std::vector<std::string>& args) {
  CommandLine cl;
  UsageError error;
  EXPECT_FALSE(ParseCommandLine(args, "/default.sock", &cl, &error));
  return error.message;
}

TEST(HabitsTest, DashJIsJson) {
  EXPECT_TRUE(Parse({"-j", "network", "list"}).json);
  EXPECT_TRUE(Parse({"vm", "list", "-j"}).json);
}

TEST(HabitsTest, NetAndLsAreNetworkAndList) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"net", "ls"}, {"net", "list"}, {"network", "ls"}}) {
    CommandLine cl = Parse(args);
    EXPECT_EQ(cl.command, "network");
    EXPECT_EQ(cl.sub, "list");
  }
  CommandLine show = Parse({"net", "show", "lab"});
  EXPECT_EQ(show.command, "network");
  EXPECT_EQ(show.sub, "show");
  EXPECT_EQ(show.operands, std::vector<std::string>{"lab"});
  CommandLine ports = Parse({"port", "ls", "lab"});
  EXPECT_EQ(ports.sub, "list");
  EXPECT_EQ(ports.operands, std::vector<std::string>{"lab"});
  EXPECT_EQ(Parse({"vm", "ls"}).sub, "list");
  CommandLine help = Parse({"help", "net"});
  EXPECT_TRUE(help.help);
  EXPECT_EQ(help.command, "network");
  // "ls" only where there is a "list": fdb has none.
  EXPECT_EQ(ParseError({"fdb", "ls", "lab"}),
            "fdb: unknown sub-command 'ls' (show, add, del, flush)");
}

TEST(HabitsTest, AMistypedCommandGetsASuggestion) {
  EXPECT_EQ(ParseError({"netwrok", "list"}), "unknown command 'netwrok'; did you mean 'network'?");
  EXPECT_EQ(ParseError({"vaildate", "x.json"}),
            "unknown command 'vaildate'; did you mean 'validate'?");
  EXPECT_EQ(ParseError({"hlep"}), "unknown command 'hlep'; did you mean 'help'?");
  EXPECT_EQ(ParseError({"help", "atach"}), "unknown command 'atach'; did you mean 'attach'?");
  EXPECT_EQ(ParseError({"network", "lsit"}),
            "network: unknown sub-command 'lsit' (list, show, delete); did you mean 'list'?");
  EXPECT_EQ(ParseError({"vm", "stpo", "vm1"}),
            "vm: unknown sub-command 'stpo' (list, start, stop, console-log); did you mean "
            "'stop'?");
  // Nothing close: no guess.
  EXPECT_EQ(ParseError({"frobnicate"}), "unknown command 'frobnicate'");
}

TEST(HabitsTest, HelpNamesTheHabits) {
  std::ostringstream out, err;
  EXPECT_EQ(netctl::Run({"--help"}, "/nonexistent.sock", out, err), 0);
  EXPECT_NE(out.str().find("-j, --json"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("'net' for network, 'ls' for list"), std::string::npos);
  EXPECT_NE(out.str().find("a FILE of - is standard input"), std::string::npos);
}

constexpr const char* kGood = R"({"networks": [{"name": "lab", "ports": [{"name": "vm1-eth0"}]}]})";
constexpr const char* kOther = R"({"networks": [{"name": "fast", "ports": [{"name": "t2"}]}]})";

CommandResult RunBinary(std::vector<std::string> args, const std::string& stdin_text) {
  args.insert(args.begin(), vfabric::testing::BinaryDir() + "/netctl/netctl");
  return vfabric::testing::Run(args, stdin_text);
}

TEST(HabitsTest, ValidateDashReadsStandardInput) {
  CommandResult good = RunBinary({"validate", "-"}, kGood);
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(good.out, "<stdin>: ok\n");

  CommandResult bad =
      RunBinary({"validate", "-"}, "{\"networks\": [{\"name\": \"lab\", \"brigde\": 1}]}");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err.rfind("<stdin>:1:", 0), 0u) << bad.err;
  EXPECT_NE(bad.err.find("did you mean \"bridge\"?"), std::string::npos) << bad.err;
}

TEST(HabitsTest, ValidateDashMixesWithFilesAndChecksAcrossThem) {
  TempDir dir;
  WriteFile(dir.Join("other.json"), kOther);
  CommandResult both = RunBinary({"validate", dir.Join("other.json"), "-"}, kGood);
  EXPECT_EQ(both.exit_code, 0) << both.err;
  EXPECT_EQ(both.out, dir.Join("other.json") + ": ok\n<stdin>: ok\n");
  // The same network twice: one in the file, one on standard input.
  WriteFile(dir.Join("lab.json"), kGood);
  CommandResult clash = RunBinary({"validate", dir.Join("lab.json"), "-"}, kGood);
  EXPECT_EQ(clash.exit_code, 1);
  EXPECT_NE(clash.err.find("<stdin>:"), std::string::npos) << clash.err;
}

TEST(HabitsTest, PlanDashSendsStandardInputAsAFile) {
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"operations", json::array()}});
  });
  std::istringstream in(kGood);
  std::ostringstream out, err;
  EXPECT_EQ(netctl::Run({"plan", "-", "--socket", netd.path()}, "/nonexistent.sock", in, out, err),
            0)
      << err.str();
  json request = netd.last_request();
  ASSERT_TRUE(request.is_object());
  EXPECT_EQ(request["args"]["files"], json::array({{{"name", "<stdin>"}, {"text", kGood}}}))
      << request.dump();
}

}  // namespace
}  // namespace vfabric::netctl
