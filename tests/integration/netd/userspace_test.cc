// netd running a "datapath": "userspace" network on vfabric's own switch:
// three veths whose peers live in three named namespaces (hosts), pings
// between them, the FDB, counters, VLANs, static entries, restart adoption
// and reload.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Cmd;
using testing::CommandResult;
using testing::Request;
using testing::WaitFor;

constexpr int kHosts = 3;
const char* const kPorts[kHosts] = {"us-a", "us-b", "us-c"};
const char* const kPeers[kHosts] = {"us-a-p", "us-b-p", "us-c-p"};

class UserspaceNetdTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped()) return;
    for (int i = 0; i < kHosts; ++i) {
      hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfus"));
      ASSERT_TRUE(hosts_.back()->ok());
    }
    config_ = dir_.Join("us.json");
  }

  // The topology: every port access `vlans[i]` (0: no VLAN settings), ports
  // [0, count), and a tap "us-t0" (netd opens it for the switch).
  void WriteConfig(std::vector<int> vlans, int count = kHosts) {
    json ports = json::array();
    for (int i = 0; i < count; ++i) {
      json port = {{"name", kPorts[i]},
                   {"kind", "veth"},
                   {"peer", kPeers[i]},
                   {"peer_netns", hosts_[i]->name()},
                   // Hosts: forward at once rather than after RSTP's auto-edge delay.
                   {"edge", true}};
      if (vlans[i] != 0) port["vlan"] = {{"mode", "access"}, {"pvid", vlans[i]}};
      ports.push_back(port);
    }
    ports.push_back({{"name", "us-t0"}, {"kind", "tap"}});
    json fdb = {{"ageing_time", 300}, {"max_entries", 1024}};
    if (max_per_port_ != 0) fdb["max_per_port"] = max_per_port_;
    json doc = {{"networks",
                 {{{"name", "us"},
                   {"datapath", "userspace"},
                   {"stp", {{"enabled", true}}},
                   {"fdb", fdb},
                   {"ports", ports}}}}};
    std::ofstream(config_) << doc.dump(2);
  }

  void SetUpHosts() {
    for (int i = 0; i < kHosts; ++i) {
      const std::string& ns = hosts_[i]->name();
      CommandResult add = Cmd({"ip", "-n", ns, "addr", "add",
                               "10.66.0." + std::to_string(i + 1) + "/24", "dev", kPeers[i]});
      ASSERT_EQ(add.exit_code, 0) << add.err << "\n" << Log();
      ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", kPeers[i], "up"}).exit_code, 0);
      ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", "lo", "up"}).exit_code, 0);
    }
  }

  bool Ping(int from, int to) {
    CommandResult r = Cmd({"ip", "netns", "exec", hosts_[from]->name(), "busybox", "ping", "-c",
                           "2", "-W", "2", "10.66.0." + std::to_string(to + 1)});
    return r.exit_code == 0;
  }

  std::string PeerMac(int i) {
    json links = testing::IpJson({"ip", "-n", hosts_[i]->name(), "-j", "link", "show", kPeers[i]});
    return links.empty() ? "" : links[0].value("address", "");
  }

  int Ifindex(const std::string& name) { return testing::Link(name).value("ifindex", 0); }

  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Cmd(argv);
  }

  json Stats(const std::string& port) {
    json result = Ok(Request("port.stats", {{"network", "us"}, {"port", port}}));
    return result.is_object() && !result["ports"].empty() ? result["ports"][0]["counters"] : json();
  }

  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_;
  std::string config_;
  int max_per_port_ = 0;  // 0: not in the topology
};

TEST_F(UserspaceNetdTest, SwitchForwardsLearnsFiltersVlansAdoptsAndReloads) {
  WriteConfig({0, 0, 0});
  Start(config_);
  EXPECT_THAT(Log(), ::testing::HasSubstr("spanning tree: started (rstp"));
  // The planner made the veths, moved the peers, left the ports on no bridge.
  for (int i = 0; i < kHosts; ++i) {
    ASSERT_TRUE(testing::LinkExists(kPorts[i])) << Log();
    EXPECT_FALSE(testing::LinkExists(kPeers[i]));
    EXPECT_FALSE(testing::Link(kPorts[i]).contains("master"));
  }
  SetUpHosts();
  for (int a = 0; a < kHosts; ++a)
    for (int b = a + 1; b < kHosts; ++b) EXPECT_TRUE(Ping(a, b)) << a << "->" << b << "\n" << Log();

  // Learned MACs on the right ports, through netctl.
  CommandResult fdb = Netctl({"--json", "fdb", "show", "us"});
  ASSERT_EQ(fdb.exit_code, 0) << fdb.err;
  json entries = json::parse(fdb.out)["entries"];
  for (int i = 0; i < kHosts; ++i) {
    const std::string mac = PeerMac(i);
    bool found = false;
    for (const json& e : entries)
      if (e["mac"] == mac) {
        found = true;
        EXPECT_EQ(e["port"], kPorts[i]);
        EXPECT_EQ(e["static"], false);
        EXPECT_EQ(e["vlan"], 1);
      }
    EXPECT_TRUE(found) << mac << " not in " << entries.dump();
  }
  CommandResult table = Netctl({"fdb", "show", "us"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_THAT(table.out, ::testing::HasSubstr(PeerMac(0)));

  // Counters grow.
  json before = Stats("us-a");
  ASSERT_TRUE(before.is_object());
  EXPECT_GT(before["rx_packets"].get<uint64_t>(), 0u);
  EXPECT_GT(before["tx_packets"].get<uint64_t>(), 0u);
  EXPECT_TRUE(before["drops"].contains("vlan_not_allowed"));
  EXPECT_TRUE(Ping(0, 1));
  json after = Stats("us-a");
  EXPECT_GT(after["rx_packets"].get<uint64_t>(), before["rx_packets"].get<uint64_t>());
  EXPECT_GT(after["tx_bytes"].get<uint64_t>(), before["tx_bytes"].get<uint64_t>());

  // The other views.
  json list = Ok(Request("network.list"))["networks"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["datapath"], "userspace");
  EXPECT_EQ(list[0]["state"], "ok");
  EXPECT_GE(list[0]["ports_up"].get<int>(), 3) << list.dump();
  EXPECT_TRUE(list[0]["bridge"].is_null()) << "a userspace network has no Linux bridge";
  // The tree's settings, as configured (the defaults here), even though a
  // Linux bridge of the default name would have none of them.
  json show = Ok(Request("network.show", {{"name", "us"}}))["network"];
  EXPECT_FALSE(show.contains("ifindex")) << show.dump();
  EXPECT_EQ(show["settings"]["stp_mode"], "rstp") << show.dump();
  EXPECT_EQ(show["settings"]["priority"], 32768) << show.dump();
  EXPECT_EQ(show["settings"]["hello_time"], 2) << show.dump();
  EXPECT_EQ(show["settings"]["forward_delay"], 15) << show.dump();
  EXPECT_EQ(show["settings"]["max_age"], 20) << show.dump();
  json ports = Ok(Request("port.list", {{"network", "us"}}))["ports"];
  ASSERT_EQ(ports.size(), 4u);
  EXPECT_TRUE(ports[0]["counters"].is_object());
  // The tree's cost and priority (a virtual link counts as 10 Gb/s: 2000).
  EXPECT_EQ(ports[0]["cost"], 2000) << ports[0].dump();
  EXPECT_EQ(ports[0]["priority"], 128) << ports[0].dump();
  EXPECT_EQ(ports[0]["bpdu_guard"], false) << ports[0].dump();
  EXPECT_EQ(ports[3]["name"], "us-t0");
  EXPECT_FALSE(ports[3]["switch_port"].is_null()) << ports[3].dump();
  json tap_stats = Ok(Request("port.stats", {{"network", "us"}, {"port", "us-t0"}}));
  EXPECT_EQ(tap_stats["ports"][0]["kind"], "tap") << tap_stats.dump();
  json veth_stats = Ok(Request("port.stats", {{"network", "us"}, {"port", "us-a"}}));
  EXPECT_EQ(veth_stats["ports"][0]["kind"], "packet") << veth_stats.dump();
  // Alone, the switch is the root; the hosts' edge ports and the tap
  // (auto-edge: no BPDU arrives) are designated and forwarding.
  json stp = Ok(Request("stp.show", {{"network", "us"}}))["stp"];
  EXPECT_EQ(stp["mode"], "rstp");
  EXPECT_EQ(stp["is_root"], true);
  EXPECT_EQ(stp["root_id"], stp["bridge_id"]);
  ASSERT_EQ(stp["ports"].size(), 4u) << stp.dump();
  for (const json& port : stp["ports"]) {
    EXPECT_EQ(port["role"], "designated") << port.dump();
    if (port["name"] != "us-t0") {
      EXPECT_EQ(port["edge"], true) << port.dump();
    }
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        json now = Ok(Request("stp.show", {{"network", "us"}}))["stp"];
        return now["ports"][3]["state"] == "forwarding";
      },
      8000))
      << "the tap should forward once auto-edge (3 s without BPDUs) makes it an edge port";

  // A static entry through netctl.
  CommandResult add = Netctl({"fdb", "add", "us", "52:54:00:66:00:99", "us-b"});
  ASSERT_EQ(add.exit_code, 0) << add.err << add.out;
  EXPECT_EQ(add.out, "added static 52:54:00:66:00:99 on us-b (vlan 1)\n");
  CommandResult stats_table = Netctl({"port", "stats", "us", "us-a"});
  EXPECT_EQ(stats_table.exit_code, 0) << stats_table.err;
  EXPECT_NE(stats_table.out.find("us-a"), std::string::npos) << stats_table.out;
  bool is_static = false;
  const json with_static = Ok(Request("fdb.show", {{"network", "us"}}));
  for (const json& e : with_static["entries"])
    if (e["mac"] == "52:54:00:66:00:99") is_static = e["static"] == true && e["port"] == "us-b";
  EXPECT_TRUE(is_static) << with_static.dump();

  // Restart: netd adopts the links (none recreated), the switch comes back.
  int ifindex[kHosts];
  for (int i = 0; i < kHosts; ++i) ifindex[i] = Ifindex(kPorts[i]);
  ASSERT_EQ(Stop(), 0) << Log();
  Start(config_);
  for (int i = 0; i < kHosts; ++i) EXPECT_EQ(Ifindex(kPorts[i]), ifindex[i]) << kPorts[i];
  for (int a = 0; a < kHosts; ++a)
    for (int b = a + 1; b < kHosts; ++b) EXPECT_TRUE(Ping(a, b)) << a << "->" << b << "\n" << Log();
  // The static entry added at run time came back with the switch (kept in
  // the run directory, as the kernel keeps a Linux bridge's).
  is_static = false;
  const json after_restart = Ok(Request("fdb.show", {{"network", "us"}}));
  for (const json& e : after_restart["entries"])
    if (e["mac"] == "52:54:00:66:00:99") is_static = e["static"] == true && e["port"] == "us-b";
  EXPECT_TRUE(is_static) << after_restart.dump() << Log();
  EXPECT_THAT(Log(), ::testing::HasSubstr("1 static FDB entry restored"));
  json kept = json::parse(testing::ReadFile(run_dir() + "/userspace/us.fdb.json"), nullptr, false);
  ASSERT_TRUE(kept.is_object()) << testing::ReadFile(run_dir() + "/userspace/us.fdb.json");
  EXPECT_EQ(kept["entries"],
            json::parse(R"([{"mac": "52:54:00:66:00:99", "vlan": 1, "port": "us-b"}])"));
  // Deleted: gone from the switch and from the file.
  CommandResult del = Netctl({"fdb", "del", "us", "52:54:00:66:00:99"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(testing::ReadFile(run_dir() + "/userspace/us.fdb.json"), "");

  // A port's link deleted behind netd's back: netd recreates it (a new
  // ifindex) and the switch reopens the port.
  ASSERT_EQ(Cmd({"ip", "link", "del", "us-a"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Ifindex("us-a") != 0 && Ifindex("us-a") != ifindex[0]; }, 10000))
      << Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        json p =
            testing::Ask(socket_, Request("port.stats", {{"network", "us"}, {"port", "us-a"}}));
        return p.is_object() && p["ok"] == true && p["result"]["ports"][0]["failed"] == false &&
               testing::Link("us-a").contains("ifindex") &&
               Log().find("us-a (packet socket, ifindex " + std::to_string(Ifindex("us-a"))) !=
                   std::string::npos;
      },
      10000))
      << Log();
  // The peer came back into its namespace without an address.
  ASSERT_EQ(Cmd({"ip", "-n", hosts_[0]->name(), "addr", "add", "10.66.0.1/24", "dev", kPeers[0]})
                .exit_code,
            0);
  ASSERT_EQ(Cmd({"ip", "-n", hosts_[0]->name(), "link", "set", kPeers[0], "up"}).exit_code, 0);
  EXPECT_TRUE(Ping(0, 1)) << Log();

  // VLANs: a and b on 10, c on 20.
  WriteConfig({10, 10, 20});
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor(
      [&] {
        json vlan = testing::Ask(socket_, Request("vlan.show", {{"network", "us"}}));
        return vlan.is_object() && vlan["ok"] == true &&
               vlan["result"]["vlan"]["ports"][2]
                       .value("applied", json::object())
                       .value("pvid", 0) == 20;
      },
      10000))
      << Log();
  EXPECT_TRUE(Ping(0, 1)) << Log();
  EXPECT_FALSE(Ping(0, 2));
  EXPECT_FALSE(Ping(2, 1));
  const json vlan_fdb = Ok(Request("fdb.show", {{"network", "us"}}));
  for (const json& e : vlan_fdb["entries"])
    if (e["mac"] == PeerMac(0)) {
      EXPECT_EQ(e["vlan"], 10);
    }

  // New FDB limits: the running switch keeps what it learned (no flood to
  // relearn) and its counters (its ports are not made again).
  const uint64_t rx_before_limits = Stats("us-a")["rx_packets"].get<uint64_t>();
  max_per_port_ = 64;
  WriteConfig({10, 10, 20});
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor(
      [&] {
        return Log().find("FDB limits now max_entries 1024, max_per_port 64") != std::string::npos;
      },
      10000))
      << Log();
  EXPECT_THAT(Log(), ::testing::Not(::testing::HasSubstr("restarting its switch")));
  EXPECT_GE(Stats("us-a")["rx_packets"].get<uint64_t>(), rx_before_limits);
  bool learned_kept = false;
  const json kept_fdb = Ok(Request("fdb.show", {{"network", "us"}}));
  for (const json& e : kept_fdb["entries"])
    if (e["mac"] == PeerMac(0)) learned_kept = true;
  EXPECT_TRUE(learned_kept) << kept_fdb.dump() << "\n" << Log();

  // Reload without us-c: it leaves the switch.
  WriteConfig({10, 10, 20}, 2);
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor(
      [&] {
        json stats = testing::Ask(socket_, Request("port.stats", {{"network", "us"}}));
        return stats.is_object() && stats["ok"] == true && stats["result"]["ports"].size() == 3;
      },
      10000))
      << Log();
  json stats = Ok(Request("port.stats", {{"network", "us"}}))["ports"];
  for (const json& p : stats) EXPECT_NE(p["port"], "us-c");
  EXPECT_TRUE(Ping(0, 1));
  EXPECT_EQ(Stop(), 0) << Log();
}

TEST_F(UserspaceNetdTest, PlanListsTheSwitchChangesAndApplyMakesThem) {
  WriteConfig({0, 0, 0});
  Start(config_);
  ASSERT_EQ(Ok(Request("network.list"))["networks"][0]["state"], "ok") << Log();
  CommandResult unchanged = Netctl({"plan", config_});
  EXPECT_EQ(unchanged.exit_code, 0) << unchanged.err;
  EXPECT_EQ(unchanged.out, "no changes\n");

  // us-c leaves; us-a and us-b go to VLAN 10; new FDB limits, ageing, tree
  // priority and a static entry.
  json ports = json::array();
  for (int i = 0; i < 2; ++i)
    ports.push_back({{"name", kPorts[i]},
                     {"kind", "veth"},
                     {"peer", kPeers[i]},
                     {"peer_netns", hosts_[i]->name()},
                     {"edge", true},
                     {"vlan", {{"mode", "access"}, {"pvid", 10}}}});
  ports.push_back({{"name", "us-t0"}, {"kind", "tap"}});
  json doc = {{"networks",
               {{{"name", "us"},
                 {"datapath", "userspace"},
                 {"stp", {{"enabled", true}, {"priority", 4096}}},
                 {"fdb",
                  {{"ageing_time", 60},
                   {"max_entries", 1024},
                   {"max_per_port", 64},
                   {"static", {{{"mac", "52:54:00:66:00:42"}, {"port", "us-a"}}}}}},
                 {"ports", ports}}}}};
  const std::string next = dir_.Join("next.json");
  std::ofstream(next) << doc.dump(2);

  const std::vector<std::string> expected = {
      "set FDB limits of switch us: max_entries 1024 -> 1024, max_per_port unlimited -> 64",
      "set FDB ageing of switch us: 300 s -> 60 s",
      "remove port us-c from switch us",
      "set VLANs of port us-a on switch us: access VLAN 1 -> access VLAN 10",
      "set VLANs of port us-b on switch us: access VLAN 1 -> access VLAN 10",
      "restart spanning tree of switch us (rstp, priority 4096, hello 2 s, forward delay 15 s, "
      "max age 20 s): every port discards until it converges",
      "add static FDB entry 52:54:00:66:00:42 VLAN 10 (port us-a) to switch us"};
  CommandResult plan = Netctl({"plan", next});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  // The kernel's operations (us-c's veth goes) come first, then the switch's.
  EXPECT_THAT(plan.out, ::testing::HasSubstr("us-c"));
  const size_t switch_part = plan.out.find(expected[0]);
  ASSERT_NE(switch_part, std::string::npos) << plan.out;
  std::string want;
  for (const std::string& line : expected) want += line + "\n";
  EXPECT_EQ(plan.out.substr(switch_part), want);
  CommandResult plan_json = Netctl({"--json", "plan", next});
  ASSERT_EQ(plan_json.exit_code, 0) << plan_json.err;
  const json operations = json::parse(plan_json.out)["operations"];
  bool restart_listed = false;
  for (const json& op : operations)
    if (op["op"] == "restart_tree") restart_listed = op["network"] == "us" && op["object"] == "us";
  EXPECT_TRUE(restart_listed) << operations.dump();
  // The tree's bridge id starts with its priority, in hex.
  auto BridgePriority = [&] {
    return Ok(Request("stp.show", {{"network", "us"}}))["stp"]["bridge_id"]
        .get<std::string>()
        .substr(0, 4);
  };
  // A plan changes nothing.
  EXPECT_EQ(Ok(Request("port.stats", {{"network", "us"}}))["ports"].size(), 4u);
  EXPECT_EQ(BridgePriority(), "8000");

  CommandResult apply = Netctl({"apply", next});
  ASSERT_EQ(apply.exit_code, 0) << apply.err << "\n" << Log();
  EXPECT_EQ(apply.out.substr(apply.out.find(expected[0])),
            want + "applied " +
                std::to_string(std::count(apply.out.begin(), apply.out.end(), '\n') - 1) +
                " changes\n");
  EXPECT_EQ(Ok(Request("port.stats", {{"network", "us"}}))["ports"].size(), 3u);
  EXPECT_EQ(BridgePriority(), "1000");
  CommandResult again = Netctl({"plan", next});
  EXPECT_EQ(again.out, "no changes\n") << again.err;
  const json network = Ok(Request("network.show", {{"name", "us"}}))["network"];
  EXPECT_EQ(network["state"], "ok") << network.dump();
  EXPECT_TRUE(network["pending"].empty()) << network.dump();
  EXPECT_EQ(Stop(), 0) << Log();
}

// A tap another process holds (single-queue) cannot be opened by netd:
// apply does the rest, names the port and the cause, and exits 1; the port
// stays pending (network drifted) until a later apply opens it.
TEST_F(UserspaceNetdTest, ApplyReportsASwitchPortThatWillNotOpen) {
  WriteConfig({0, 0, 0});
  Start(config_);
  UniqueFd holder(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(holder);
  ifreq req{};
  std::snprintf(req.ifr_name, IFNAMSIZ, "%s", "us-t1");
  req.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  ASSERT_EQ(::ioctl(holder.get(), TUNSETIFF, &req), 0) << std::strerror(errno);
  ASSERT_EQ(::ioctl(holder.get(), TUNSETPERSIST, 1), 0) << std::strerror(errno);
  // Marked as the network's and made as netd makes taps, so the planner
  // adopts it as it is.
  ASSERT_EQ(Cmd({"ip", "link", "set", "us-t1", "alias", "vfabric:us"}).exit_code, 0);

  json doc = json::parse(testing::ReadFile(config_));
  doc["networks"][0]["ports"].push_back({{"name", "us-t1"}, {"kind", "tap"}});
  const std::string next = dir_.Join("next.json");
  std::ofstream(next) << doc.dump(2);
  const std::string add_line = "add port us-t1 to switch us (tap, access VLAN 1)";
  CommandResult plan = Netctl({"plan", next});
  EXPECT_THAT(plan.out, ::testing::HasSubstr(add_line)) << plan.err;

  CommandResult apply = Netctl({"apply", next});
  EXPECT_EQ(apply.exit_code, 1) << apply.out << apply.err;
  EXPECT_THAT(apply.err, ::testing::HasSubstr("userspace network us: port us-t1: open tap us-t1"))
      << apply.err;
  EXPECT_THAT(apply.out, ::testing::Not(::testing::HasSubstr(add_line)));
  json network = Ok(Request("network.show", {{"name", "us"}}))["network"];
  EXPECT_EQ(network["state"], "drifted") << network.dump();
  EXPECT_EQ(network["pending"], json::array({add_line})) << network.dump();
  // The rest of the network still forwards.
  SetUpHosts();
  EXPECT_TRUE(Ping(0, 1)) << Log();

  // Once the holder lets go, the next pass opens it: this apply, or the
  // repair that the tap's own link event arms (100 ms later; under load it
  // can run before netctl's request arrives, and then the apply has nothing
  // left to do).
  holder.Reset();
  CommandResult retry = Netctl({"apply", next});
  EXPECT_EQ(retry.exit_code, 0) << retry.out << retry.err;
  if (retry.out.find(add_line) == std::string::npos) {
    EXPECT_EQ(retry.out, "no changes\n") << retry.err;
  }
  network = Ok(Request("network.show", {{"name", "us"}}))["network"];
  EXPECT_EQ(network["state"], "ok") << network.dump();
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
