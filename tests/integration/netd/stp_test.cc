// Kernel STP driven by netd: two kernel networks joined by two veth links
// form a loop; the kernel's STP must break it, and netd (netctl stp show)
// must report what the kernel, sysfs and an independent BPDU decoder (tshark)
// see.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::Cmd;
using ::testing::HasSubstr;
using testing::json;
using testing::WaitFor;

class KernelStpTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Two cables between the networks, made outside netd: the ports are
    // kind "existing" on both sides.
    for (const char* pair : {"0", "1"}) {
      ASSERT_EQ(Cmd({"ip", "link", "add", std::string("sa") + pair, "type", "veth", "peer", "name",
                     std::string("sb") + pair})
                    .exit_code,
                0);
      ASSERT_EQ(Cmd({"ip", "link", "set", std::string("sa") + pair, "up"}).exit_code, 0);
      ASSERT_EQ(Cmd({"ip", "link", "set", std::string("sb") + pair, "up"}).exit_code, 0);
    }
    config_ = dir_.Join("loop.json");
    testing::WriteFile(config_, R"({"networks": [
      {"name": "sa", "bridge": "vfb-sa",
       "stp": {"enabled": true, "priority": 4096, "hello_time": 1, "forward_delay": 4, "max_age": 6},
       "ports": [{"name": "sa0", "kind": "existing"}, {"name": "sa1", "kind": "existing"}]},
      {"name": "sb", "bridge": "vfb-sb",
       "stp": {"enabled": true, "priority": 8192, "hello_time": 1, "forward_delay": 4, "max_age": 6},
       "ports": [{"name": "sb0", "kind": "existing"}, {"name": "sb1", "kind": "existing", "cost": 200}]}
    ]})");
  }

  json Stp(const std::string& network) {
    json answer = Ok(testing::Request("stp.show", {{"network", network}}));
    return answer.is_object() ? answer["stp"] : json::object();
  }

  static std::string PortState(const json& stp, const std::string& port) {
    for (const json& p : stp["ports"])
      if (p["name"] == port) return p["state"];
    return "";
  }

  std::string config_;
};

TEST_F(KernelStpTest, TheLoopIsBrokenAndEveryViewAgreesOnTheRoot) {
  Start(config_);
  // Converged: 2 x forward_delay after the ports came up (8 s here).
  ASSERT_TRUE(WaitFor(
      [&] {
        json sb = Stp("sb");
        return PortState(sb, "sb0") == "forwarding" && PortState(sb, "sb1") == "blocking";
      },
      30000))
      << Stp("sb").dump(2);

  json sa = Stp("sa");
  json sb = Stp("sb");
  EXPECT_EQ(sa["is_root"], true);
  EXPECT_EQ(sb["is_root"], false);
  EXPECT_EQ(sb["root_id"], sa["bridge_id"]);
  EXPECT_THAT(sa["bridge_id"].get<std::string>(), ::testing::StartsWith("1000."));
  EXPECT_EQ(sb["root_path_cost"], 2);  // a 10 Gbit/s veth costs 2 in the kernel
  for (const json& port : sb["ports"]) {
    EXPECT_EQ(port["role"], port["name"] == "sb0" ? "root" : "alternate") << port.dump();
    EXPECT_EQ(port["designated_root"], sa["bridge_id"]) << port.dump();
  }
  EXPECT_EQ(PortState(sa, "sa0"), "forwarding");
  EXPECT_EQ(PortState(sa, "sa1"), "forwarding");

  // The kernel's own views.
  EXPECT_EQ(testing::Shell("cat /sys/class/net/vfb-sb/bridge/root_id").out,
            sa["bridge_id"].get<std::string>() + "\n");
  EXPECT_EQ(testing::BridgePort("sb1")["state"], "blocking");
  EXPECT_EQ(testing::BridgePort("sb0")["state"], "forwarding");

  // An independent decoder: tshark's STP dissector on what vfb-sa sends.
  // Configuration BPDUs only (type 0x00 at byte 20): sb sends TCNs out of
  // sb0, its root port, and tshark may start late on a loaded machine.
  auto capture = testing::Run({"timeout",
                               "25",
                               "tshark",
                               "-i",
                               "sb0",
                               "-c",
                               "1",
                               "-a",
                               "duration:20",
                               "-f",
                               "ether dst 01:80:c2:00:00:00 and ether[20] = 0",
                               "-T",
                               "fields",
                               "-e",
                               "stp.root.hw",
                               "-e",
                               "stp.root.prio",
                               "-e",
                               "stp.bridge.hw",
                               "-e",
                               "stp.root.cost",
                               "-e",
                               "stp.hello"});
  ASSERT_EQ(capture.exit_code, 0) << capture.err;
  const std::string root = sa["root_id"];  // "1000.aabbccddeeff"
  std::string mac;
  for (size_t i = 5; i + 1 < root.size(); i += 2) {
    if (!mac.empty()) mac += ':';
    mac += root.substr(i, 2);
  }
  EXPECT_THAT(capture.out, HasSubstr(mac + "\t4096\t" + mac + "\t0\t1"));

  // No storm: over two seconds only BPDUs cross the blocked link.
  auto rx = [](const std::string& port) {
    return std::stoll(testing::ReadFile("/sys/class/net/" + port + "/statistics/rx_packets"));
  };
  const long long before = rx("sb1") + rx("sb0");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_LT(rx("sb1") + rx("sb0") - before, 20);
}

TEST_F(KernelStpTest, UnpluggingTheRootPortMovesTrafficToTheBlockedLink) {
  Start(config_);
  ASSERT_TRUE(WaitFor(
      [&] {
        return PortState(Stp("sb"), "sb1") == "blocking" &&
               PortState(Stp("sb"), "sb0") == "forwarding";
      },
      30000));
  ASSERT_EQ(Cmd({"ip", "link", "set", "sa0", "down"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return PortState(Stp("sb"), "sb1") == "forwarding"; }, 30000))
      << Stp("sb").dump(2);
  json sb = Stp("sb");
  EXPECT_EQ(PortState(sb, "sb0"), "disabled");
  for (const json& port : sb["ports"]) {
    if (port["name"] == "sb1") {
      EXPECT_EQ(port["role"], "root");
    }
  }
  EXPECT_EQ(sb["root_path_cost"], 200);
}

}  // namespace
}  // namespace vfabric
