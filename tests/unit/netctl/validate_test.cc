// `netctl validate` end to end: the built binary on files in a TempDir.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::netctl {
namespace {

using vfabric::testing::CommandResult;
using vfabric::testing::TempDir;
using vfabric::testing::WriteFile;

std::string Netctl() { return vfabric::testing::BinaryDir() + "/netctl/netctl"; }

CommandResult RunNetctl(std::vector<std::string> args) {
  args.insert(args.begin(), Netctl());
  return vfabric::testing::Run(args);
}

constexpr const char* kGood = R"({
  "networks": [
    {"name": "lab", "datapath": "kernel", "bridge": "vfb-lab",
     "stp": {"enabled": true, "priority": 4096},
     "ports": [{"name": "vm1-eth0", "kind": "tap"}]}
  ]
}
)";

constexpr const char* kOther = R"({
  "networks": [
    {"name": "fast", "bridge": "vfb-fast",
     "ports": [{"name": "vm2-eth0", "kind": "tap"}]}
  ]
}
)";

TEST(ValidateTest, GoodFilesPrintOkAndExitZero) {
  TempDir dir;
  WriteFile(dir.Join("lab.json"), kGood);
  WriteFile(dir.Join("fast.json"), kOther);
  CommandResult result = RunNetctl({"validate", dir.Join("lab.json"), dir.Join("fast.json")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, dir.Join("lab.json") + ": ok\n" + dir.Join("fast.json") + ": ok\n");
  EXPECT_EQ(result.err, "");
}

TEST(ValidateTest, NeedsNoDaemon) {
  TempDir dir;
  WriteFile(dir.Join("lab.json"), kGood);
  CommandResult result =
      RunNetctl({"--socket", dir.Join("no-such.sock"), "validate", dir.Join("lab.json")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST(ValidateTest, JsonOutput) {
  TempDir dir;
  WriteFile(dir.Join("lab.json"), kGood);
  CommandResult result = RunNetctl({"validate", "--json", dir.Join("lab.json")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "{\n  \"diagnostics\": [],\n  \"files\": [\n    \"" + dir.Join("lab.json") +
                            "\"\n  ],\n  \"ok\": true\n}\n");
}

TEST(ValidateTest, AnErrorPrintsFileLineColumnPointerAndExitsOne) {
  TempDir dir;
  std::string file = dir.Join("bad.json");
  // Line 3, column 33: the value of "datapath".
  WriteFile(file, R"({
  "networks": [
    {"name": "lab", "datapath": "kernal",
     "ports": []}
  ]
}
)");
  CommandResult result = RunNetctl({"validate", file});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, file +
                            ":3:33: /networks/0/datapath: unknown datapath \"kernal\"; "
                            "expected \"kernel\" or \"userspace\"\n");
}

TEST(ValidateTest, EveryErrorAcrossFilesIsPrinted) {
  TempDir dir;
  std::string first = dir.Join("a.json");
  std::string second = dir.Join("b.json");
  WriteFile(first, kGood);
  // The same network name again (line 3, column 14), and a bad JSON value type.
  WriteFile(second, R"({
  "networks": [
    {"name": "lab", "ports": [{"name": "vm9-eth0", "kind": "tap", "cost": "high"}]}
  ]
}
)");
  CommandResult result = RunNetctl({"validate", first, second});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  std::string lab = first + ":3:14";  // where a.json names "lab"
  EXPECT_EQ(result.err,
            second + ":3:14: /networks/0/name: duplicate network name \"lab\" (first at " + lab +
                ")\n" + second +
                ":3:14: /networks/0/name: the default bridge name \"vfb-lab\" (from the network "
                "name) is already used by the bridge of network \"lab\" (at " +
                first + ":3:53)\n" + second +
                ":3:75: /networks/0/ports/0/cost: expected an integer, got a string\n");
}

TEST(ValidateTest, SyntaxErrorIsLocated) {
  TempDir dir;
  std::string file = dir.Join("broken.json");
  WriteFile(file, "{\n  \"networks\": [\n    {\"name\": \"lab\",}\n  ]\n}\n");
  CommandResult result = RunNetctl({"validate", file});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, file +
                            ":3:20: /networks/0: expected a string key (trailing commas are "
                            "not allowed)\n");
}

TEST(ValidateTest, AMissingFileIsAnError) {
  TempDir dir;
  std::string file = dir.Join("absent.json");
  CommandResult result = RunNetctl({"validate", file});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, file + ": cannot open: No such file or directory\n");
}

TEST(ValidateTest, UsageErrorExitsTwo) {
  CommandResult result = RunNetctl({"validate"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err,
            "netctl: validate: missing FILE\n"
            "Usage: netctl validate FILE... (see 'netctl help validate')\n");
}

}  // namespace
}  // namespace vfabric::netctl
