// `netctl validate` end to end: the built binary on files in a TempDir.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

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

// A directory entry that cannot be read is an error (as for netd and
// `netctl apply`), never "ok": netd would read the same directory.
TEST(ValidateTest, ADanglingSymlinkInADirectoryIsAnError) {
  TempDir dir;
  WriteFile(dir.Join("lab.json"), kGood);
  ASSERT_EQ(symlink("moved-away.json", dir.Join("fast.json").c_str()), 0);
  CommandResult result = RunNetctl({"validate", dir.path()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, dir.Join("fast.json") +
                            ": dangling symbolic link to \"moved-away.json\" (No such file or "
                            "directory)\n");
}

// A FIFO is refused at once (`timeout` ends a netctl that would block).
TEST(ValidateTest, AFifoIsAnErrorAndDoesNotBlock) {
  TempDir dir;
  const std::string fifo = dir.Join("pipe.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  CommandResult result = vfabric::testing::Run({"timeout", "10", Netctl(), "validate", fifo});
  EXPECT_EQ(result.exit_code, 1) << "124 means it blocked";
  EXPECT_EQ(result.err, fifo + ": not a regular file (a FIFO)\n");
}

// UTF-16 is named, not reported as "expected a value".
TEST(ValidateTest, Utf16IsNamed) {
  TempDir dir;
  const std::string file = dir.Join("wide.json");
  std::string text = "\xFF\xFE";
  for (char c : std::string("{\"networks\": []}\n")) text += std::string{c, '\0'};
  WriteFile(file, text);
  CommandResult result = RunNetctl({"validate", file});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, file +
                            ":1:1: (root): the file is UTF-16 (little-endian, with a byte order "
                            "mark); a topology must be UTF-8 (convert it, e.g. with iconv -t "
                            "UTF-8)\n");
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
