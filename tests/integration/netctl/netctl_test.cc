// netctl against a real netd in the test's private network namespace: every
// verb as a table and as --json, and the exit status of each kind of failure.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;
using ::testing::StartsWith;

class NetctlTest : public testing::NetdFixture {
 protected:
  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }

  json NetctlJson(std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult result = Netctl(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    json parsed = json::parse(result.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << result.out;
    return parsed;
  }
};

// The port limit `validate` enforces is the kernel's own: in this namespace a
// Linux bridge takes 1023 ports and refuses the 1,024th (EXFULL), and
// `validate` passes 1023 ports and refuses the 1,024th at its position.
TEST_F(NetctlTest, ValidateRefusesThePortTheKernelBridgeWouldRefuse) {
  std::string batch = "link add vfb-big type bridge\n";
  for (int i = 1; i <= 1024; ++i) {
    const std::string n = std::to_string(i);
    batch +=
        "link add v" + n + " type veth peer name p" + n + "\nlink set v" + n + " master vfb-big\n";
  }
  testing::WriteFile(dir_.Join("ports.batch"), batch);
  CommandResult added = testing::Cmd({"ip", "-force", "-batch", dir_.Join("ports.batch")});
  EXPECT_NE(added.exit_code, 0);
  EXPECT_THAT(added.err, HasSubstr("Exchange full"));
  EXPECT_EQ(testing::IpJson({"ip", "-j", "link", "show", "master", "vfb-big"}).size(), 1023u);

  // Port i on line i + 2, column 1.
  const auto topology = [&](int ports) {
    std::string text = "{\"networks\": [{\"name\": \"big\", \"bridge\": \"br-big\", \"ports\": [\n";
    for (int i = 1; i <= ports; ++i)
      text += "{\"name\": \"t" + std::to_string(i) + "\"}" + (i < ports ? ",\n" : "\n");
    const std::string path = dir_.Join(std::to_string(ports) + ".json");
    testing::WriteFile(path, text + "]}]}\n");
    return path;
  };
  CommandResult fits = Netctl({"validate", topology(1023)});
  EXPECT_EQ(fits.exit_code, 0) << fits.err;
  const std::string too_many = topology(1024);
  CommandResult refused = Netctl({"validate", too_many});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, too_many +
                             ":1025:1: /networks/0/ports/1023: port 1024 of network \"big\" is one "
                             "too many: a Linux bridge takes at most 1023 ports (port numbers "
                             "1..1023), VM NIC taps included\n");
}

TEST_F(NetctlTest, EveryVerbAsATableAndAsJson) {
  Start(Configs());
  CommandResult list = Netctl({"network", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, StartsWith("NAME"));
  EXPECT_THAT(list.out, HasSubstr("lab"));
  EXPECT_THAT(list.out, HasSubstr("vfb-edge"));
  json networks = NetctlJson({"network", "list"})["networks"];
  ASSERT_EQ(networks.size(), 3u);
  // The userspace example: no Linux bridge, the tree's settings as configured.
  CommandResult fabric = Netctl({"network", "show", "fabric"});
  ASSERT_EQ(fabric.exit_code, 0) << fabric.err;
  EXPECT_THAT(fabric.out, HasSubstr("stp mode:"));
  EXPECT_THAT(fabric.out, HasSubstr("8192"));
  EXPECT_THAT(fabric.out, ::testing::Not(HasSubstr("vfb-fabric")));

  json show = NetctlJson({"network", "show", "lab"})["network"];
  EXPECT_EQ(show["bridge"], "vfb-lab");
  EXPECT_EQ(show["settings"]["forward_delay"], 4);
  EXPECT_EQ(show["ifindex"], testing::Link("vfb-lab")["ifindex"]);
  EXPECT_THAT(Netctl({"network", "show", "lab"}).out, HasSubstr("52:54:00:00:01:01"));

  json ports = NetctlJson({"port", "list", "lab"})["ports"];
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0]["name"], "lab-up0");
  CommandResult port_table = Netctl({"port", "list"});
  EXPECT_THAT(port_table.out, HasSubstr("edge-tap2"));
  EXPECT_THAT(port_table.out, HasSubstr("vm2-eth0"));

  json fdb = NetctlJson({"fdb", "show", "lab"})["entries"];
  int statics = 0;
  for (const json& entry : fdb) statics += entry["static"] == true && entry["local"] == false;
  EXPECT_EQ(statics, 2);

  json stp = NetctlJson({"stp", "show", "lab"})["stp"];
  EXPECT_EQ(stp["enabled"], true);
  // The bridge id netd reports is the kernel's (sysfs form "8000.xxxxxxxxxxxx").
  const std::string sysfs_id = testing::Shell("cat /sys/class/net/vfb-lab/bridge/bridge_id").out;
  EXPECT_EQ(stp["bridge_id"].get<std::string>() + "\n", sysfs_id);
  EXPECT_THAT(Netctl({"stp", "show", "lab"}).out, HasSubstr("this bridge is root"));

  json vlan = NetctlJson({"vlan", "show", "lab"})["vlan"];
  EXPECT_EQ(vlan["filtering"], false);
}

TEST_F(NetctlTest, PlanThenApplyThenNothingToDo) {
  Start(Configs());
  const std::string file = dir_.Join("extra.json");
  testing::WriteFile(file, R"({"networks": [{"name": "extra", "ports": [{"name": "x-tap0"}]}]})");
  CommandResult plan = Netctl({"plan", file});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("create bridge vfb-extra"));
  EXPECT_THAT(plan.out, HasSubstr("create tap x-tap0"));
  EXPECT_FALSE(testing::LinkExists("vfb-extra"));

  CommandResult apply = Netctl({"apply", file});
  ASSERT_EQ(apply.exit_code, 0) << apply.err;
  EXPECT_TRUE(testing::LinkExists("vfb-extra"));
  EXPECT_EQ(testing::Link("x-tap0")["master"], "vfb-extra");

  CommandResult again = Netctl({"apply", file});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_THAT(again.out, HasSubstr("no changes"));
  EXPECT_EQ(NetctlJson({"network", "list"})["networks"].size(), 4u);
}

TEST_F(NetctlTest, FailuresExitOneWithTheReasonAndUsageErrorsExitTwo) {
  Start(Configs());
  CommandResult missing = Netctl({"fdb", "show", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no network named \"nope\""));

  const std::string bad = dir_.Join("bad.json");
  testing::WriteFile(bad, "{\"networks\": [{\"name\": \"b\", \"stp\": {\"priority\": 4097}}]}");
  CommandResult invalid = Netctl({"apply", bad});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_THAT(invalid.err, HasSubstr(bad + ":1:"));
  EXPECT_THAT(invalid.err, HasSubstr("/networks/0/stp/priority"));
  EXPECT_FALSE(testing::LinkExists("vfb-b"));

  EXPECT_EQ(Netctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Netctl({"fdb", "show"}).exit_code, 2);

  CommandResult unreachable = testing::Run({testing::BinaryDir() + "/netctl/netctl", "--socket",
                                            dir_.Join("nothing.sock"), "network", "list"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("is netd running?"));
}

// dist/bash-completion/netctl completes names from the running netd: what
// `netctl <words> <TAB>` offers, through bash-completion's own machinery.
TEST_F(NetctlTest, BashCompletionOffersTheNamesNetdHas) {
  const std::string library = "/usr/share/bash-completion/bash_completion";
  ASSERT_TRUE(std::filesystem::exists(library)) << "bash-completion is in scripts/install-deps";
  Start(Configs());
  auto complete = [&](const std::string& words) {
    // The last word is the one being completed ("" for a new one).
    const std::string script =
        "PATH=" + testing::BinaryDir() + "/netctl:$PATH; source " + library + "; source " +
        testing::SourceDir() + "/dist/bash-completion/netctl; COMP_WORDS=(netctl --socket " +
        socket_ + " " + words + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); " +
        "COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}; _netctl; " +
        "echo \"${COMPREPLY[*]}\"";
    CommandResult result = testing::Run({"bash", "-c", script});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.out;
  };
  EXPECT_EQ(complete("net show ''"), "edge fabric lab\n");
  EXPECT_EQ(complete("port stats lab ''"), "lab-up0 vm1-eth0 vm2-eth0\n");
  EXPECT_EQ(complete("stp show f"), "fabric\n");
  EXPECT_EQ(complete("vm s"), "start stop\n");
  EXPECT_EQ(complete("fdb flush lab --p"), "--port\n");
  EXPECT_EQ(complete("log"), "log-level\n");
  EXPECT_EQ(complete("log-level d"), "debug\n");
  EXPECT_EQ(complete("graph f"), "fabric\n");
  EXPECT_EQ(complete("graph --format s"), "svg\n");
  EXPECT_EQ(complete("attach vm1 lab --b"), "--backend\n");
  EXPECT_EQ(complete("attach vm1 lab --backend ''"), "tap vhost-user\n");
  EXPECT_EQ(complete("cap"), "capture\n");
  EXPECT_EQ(complete("capture l"), "lab\n");
  EXPECT_EQ(complete("capture lab v"), "vm1-eth0 vm2-eth0\n");
  EXPECT_EQ(complete("capture lab vm1-eth0 --d"), "--direction\n");
  EXPECT_EQ(complete("capture lab vm1-eth0 --direction o"), "out\n");
}

}  // namespace
}  // namespace vfabric
