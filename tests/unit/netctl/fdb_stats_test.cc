// netctl's userspace-switch verbs: port stats, fdb add/del/flush.
#include <gtest/gtest.h>

#include <sstream>

#include "fake_netd.h"
#include "run_netctl.h"
#include "vfabric/netctl/cli.h"
#include "vfabric/netctl/format.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::ErrorReply;
using testing::FakeNetd;
using testing::OkReply;

using Output = testing::NetctlOutput;
using testing::RunNetctl;

TEST(FdbStatsVerbsTest, MapToProtocolVerbsAndArgs) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  struct Case {
    std::vector<std::string> args;
    std::string verb;
    json args_json;
  };
  const Case cases[] = {
      {{"port", "stats", "us"}, "port.stats", {{"network", "us"}}},
      {{"port", "stats", "us", "us-a"}, "port.stats", {{"network", "us"}, {"port", "us-a"}}},
      {{"fdb", "add", "us", "52:54:00:AA:00:01", "us-a"},
       "fdb.add",
       {{"network", "us"}, {"mac", "52:54:00:aa:00:01"}, {"port", "us-a"}}},
      {{"fdb", "add", "us", "52:54:00:aa:00:01", "us-a", "--vlan", "10"},
       "fdb.add",
       {{"network", "us"}, {"mac", "52:54:00:aa:00:01"}, {"port", "us-a"}, {"vlan", 10}}},
      {{"fdb", "del", "us", "52:54:00:aa:00:01"},
       "fdb.del",
       {{"network", "us"}, {"mac", "52:54:00:aa:00:01"}}},
      {{"fdb", "del", "us", "52:54:00:aa:00:01", "--vlan=20"},
       "fdb.del",
       {{"network", "us"}, {"mac", "52:54:00:aa:00:01"}, {"vlan", 20}}},
      {{"fdb", "flush", "us"}, "fdb.flush", {{"network", "us"}}},
      {{"fdb", "flush", "us", "--port", "us-b", "--vlan", "7"},
       "fdb.flush",
       {{"network", "us"}, {"port", "us-b"}, {"vlan", 7}}},
  };
  for (const Case& c : cases) {
    Output result = RunNetctl(c.args, netd.path());
    EXPECT_EQ(result.code, 0) << c.verb << ": " << result.err;
    json request = netd.last_request();
    EXPECT_EQ(request["verb"], c.verb);
    EXPECT_EQ(request.value("args", json::object()), c.args_json) << c.verb;
  }
}

TEST(FdbStatsVerbsTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"fdb", "add", "us", "52:54:00:aa:00:01"},          // no PORT
      {"fdb", "add", "us", "01:00:5e:00:00:01", "us-a"},  // multicast
      {"fdb", "add", "us", "not-a-mac", "us-a"},
      {"fdb", "del", "us", "00:00:00:00:00:00"},
      {"fdb", "del", "us", "52:54:00:aa:00:01", "--vlan", "4095"},
      {"fdb", "flush", "us", "--port"},
      {"fdb", "flush", "us", "--port="},
      {"fdb", "show", "us", "--port", "x"},  // --port belongs to flush only
      {"fdb", "flush", "us", "extra"},
      {"port", "stats"},
      {"port", "stats", "us", "a", "b"},
  };
  for (const auto& args : bad) {
    Output result = RunNetctl(args, "/nonexistent/netd.sock");
    EXPECT_EQ(result.code, 2) << args[0] << " " << args[1] << ": " << result.err;
    EXPECT_EQ(result.err.rfind("netctl: ", 0), 0u) << result.err;
    EXPECT_TRUE(result.err.find("Usage: netctl") != std::string::npos ||
                result.err.find("Try 'netctl --help'.") != std::string::npos)
        << result.err;
  }
}

TEST(FdbStatsVerbsTest, TheHintListsEveryFdbSubCommand) {
  Output result = RunNetctl({"fdb", "show"}, "/nonexistent/netd.sock");
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.err,
            "netctl: fdb show: missing NETWORK\n"
            "Usage: netctl fdb show NETWORK | netctl fdb add NETWORK MAC PORT [--vlan VID] | "
            "netctl fdb del NETWORK MAC [--vlan VID] | netctl fdb flush NETWORK [--port PORT] "
            "[--vlan VID] (see 'netctl help fdb')\n");
}

TEST(FdbStatsVerbsTest, UnsupportedOnKernelNetworksExitsOne) {
  json error = {{"code", "unsupported"},
                {"message", "fdb.add is not supported on kernel networks yet (network lab)"}};
  FakeNetd netd([&](const std::string& line) { return ErrorReply(line, error); });
  Output result = RunNetctl({"fdb", "add", "lab", "52:54:00:aa:00:01", "p"}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "netctl: fdb.add is not supported on kernel networks yet (network lab)\n");
}

TEST(FdbStatsVerbsTest, HelpMentionsTheNewVerbs) {
  Output help = RunNetctl({"help", "fdb"}, "/nonexistent/netd.sock");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("netctl fdb add NETWORK MAC PORT [--vlan VID]"), std::string::npos);
  EXPECT_NE(help.out.find("netctl fdb flush NETWORK [--port PORT] [--vlan VID]"),
            std::string::npos);
  Output port = RunNetctl({"port", "--help"}, "/nonexistent/netd.sock");
  EXPECT_NE(port.out.find("netctl port stats NETWORK [PORT]"), std::string::npos);
}

TEST(FdbStatsFormatTest, PortStatsTable) {
  json counters = {{"rx_packets", 12},
                   {"rx_bytes", 1500},
                   {"tx_packets", 3},
                   {"tx_bytes", 200},
                   {"drops", {{"vlan_not_allowed", 2}, {"no_buffer", 0}, {"mac_limit", 1}}},
                   {"drops_total", 3}};
  json result = {{"ports",
                  {{{"network", "us"}, {"port", "us-a"}, {"counters", counters}},
                   {{"network", "us"}, {"port", "us-b"}}}}};
  EXPECT_EQ(FormatPortStats(result),
            "NETWORK  PORT  RX-PKTS  RX-BYTES  TX-PKTS  TX-BYTES  DROPS  DROP-REASONS\n"
            "us       us-a  12       1500      3        200       3      "
            "mac_limit=1,vlan_not_allowed=2\n"
            "us       us-b  -        -         -        -         -      -\n");
  EXPECT_EQ(FormatPortStats(json::object()),
            "NETWORK  PORT  RX-PKTS  RX-BYTES  TX-PKTS  TX-BYTES  DROPS  DROP-REASONS\n");
}

TEST(FdbStatsFormatTest, FdbChanges) {
  json added = {
      {"network", "us"},
      {"entries",
       {{{"mac", "52:54:00:aa:00:01"}, {"vlan", 10}, {"port", "us-a"}, {"static", true}},
        {{"mac", "52:54:00:aa:00:01"}, {"vlan", 1}, {"port", "us-b"}, {"static", false}}}}};
  EXPECT_EQ(FormatFdbAdd(added), "added static 52:54:00:aa:00:01 on us-a (vlan 10)\n");
  EXPECT_EQ(FormatFdbAdd(json::object()), "added\n");
  EXPECT_EQ(FormatFdbDel({{"network", "us"}}), "deleted static FDB entry from network us\n");
  // What del and flush removed (issue 18).
  json deleted = {{"network", "us"},
                  {"count", 1},
                  {"removed", {{{"mac", "52:54:00:aa:00:01"}, {"vlan", 10}, {"port", "us-a"}}}}};
  EXPECT_EQ(FormatFdbDel(deleted), "deleted static 52:54:00:aa:00:01 on us-a (vlan 10)\n");
  EXPECT_EQ(FormatFdbFlush({{"network", "us"}}), "flushed 0 learned FDB entries of network us\n");
  json flushed = {{"network", "us"},
                  {"count", 2},
                  {"removed",
                   {{{"mac", "52:54:00:aa:00:02"}, {"vlan", 1}, {"port", "us-b"}},
                    {{"mac", "52:54:00:aa:00:03"}, {"vlan", nullptr}, {"port", "us-a"}}}}};
  EXPECT_EQ(FormatFdbFlush(flushed),
            "flushed 2 learned FDB entries of network us\n"
            "MAC                VLAN  PORT\n"
            "52:54:00:aa:00:02  1     us-b\n"
            "52:54:00:aa:00:03  -     us-a\n");
}

}  // namespace
}  // namespace vfabric::netctl
