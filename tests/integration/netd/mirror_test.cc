// Port mirroring on a userspace network, end to end: netd runs a switch
// with hosts A, B (VLAN 10), C, D (VLAN 20) and a monitor M, each a veth
// whose peer lives in a namespace of its own; tcpdump on M's far end sees
// exactly the frames the mirror selects: a source port's, then (after a
// plan/apply to a VLAN mirror) one VLAN's, tagged with it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Cmd;
using testing::CommandResult;
using testing::Request;
using testing::WaitFor;

constexpr int kHosts = 5;  // A, B, C, D, M
const char* const kPorts[kHosts] = {"mr-a", "mr-b", "mr-c", "mr-d", "mr-m"};
const char* const kPeers[kHosts] = {"mr-a-p", "mr-b-p", "mr-c-p", "mr-d-p", "mr-m-p"};
const int kVlans[kHosts] = {10, 10, 20, 20, 0};
constexpr int kM = 4;
constexpr int kPings = 3;

class MirrorNetdTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped()) return;
    if (Cmd({"tcpdump", "--version"}).exit_code != 0) GTEST_SKIP() << "no tcpdump";
    // The switch's ends of the veths live in this (private) namespace: no
    // IPv6 there, so their kernel sends no router solicitations to the
    // hosts, and M's capture holds only what the switch sent.
    Cmd({"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"});
    Cmd({"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"});
    for (int i = 0; i < kHosts; ++i) {
      hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfmr"));
      ASSERT_TRUE(hosts_.back()->ok());
    }
  }

  // The topology with `mirror` as the network's "mirror" list.
  std::string WriteConfig(const std::string& file, const json& mirror) {
    json ports = json::array();
    for (int i = 0; i < kHosts; ++i) {
      json port = {{"name", kPorts[i]},
                   {"kind", "veth"},
                   {"peer", kPeers[i]},
                   {"peer_netns", hosts_[i]->name()}};
      if (kVlans[i] != 0) port["vlan"] = {{"mode", "access"}, {"pvid", kVlans[i]}};
      ports.push_back(port);
    }
    json doc = {
        {"networks",
         {{{"name", "mr"}, {"datapath", "userspace"}, {"ports", ports}, {"mirror", mirror}}}}};
    const std::string path = dir_.Join(file);
    std::ofstream(path) << doc.dump(2);
    return path;
  }

  void SetUpHosts() {
    for (int i = 0; i < kHosts; ++i) {
      const std::string& ns = hosts_[i]->name();
      // Only the pings: no IPv6 neighbour discovery or MLD noise.
      Cmd({"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"});
      if (i != kM) {
        ASSERT_EQ(Cmd({"ip", "-n", ns, "addr", "add", "10.67.0." + std::to_string(i + 1) + "/24",
                       "dev", kPeers[i]})
                      .exit_code,
                  0);
      }
      ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", kPeers[i], "up"}).exit_code, 0);
    }
  }

  bool Ping(int from, int to) {
    return Cmd({"ip", "netns", "exec", hosts_[from]->name(), "busybox", "ping", "-c",
                std::to_string(kPings), "-W", "2", "10.67.0." + std::to_string(to + 1)})
               .exit_code == 0;
  }

  // tcpdump on M's far end while `traffic` runs; returns its reading of
  // the frames, one line each with the link layer (-e: VLAN tags shown).
  std::vector<std::string> Capture(const std::function<void()>& traffic) {
    const std::string pcap = dir_.Join("m.pcap"), log = dir_.Join("tcpdump.log");
    std::remove(pcap.c_str());
    std::remove(log.c_str());
    {
      testing::ScopedProcess tcpdump(
          {"ip", "netns", "exec", hosts_[kM]->name(), "tcpdump", "-n", "-U", "--immediate-mode",
           "-Q", "in", "-Z", "root", "-i", kPeers[kM], "-w", pcap},
          log);
      EXPECT_TRUE(WaitFor(
          [&] { return testing::ReadFile(log).find("listening on") != std::string::npos; }, 10000))
          << testing::ReadFile(log);
      traffic();
      // Copies leave in the same batch as the frames forwarded: give the
      // last ones time to reach the capture (immediate mode: no ring block
      // waits for its timeout; -Q in: only what the switch sent to M).
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));
      tcpdump.Signal(SIGINT);
      tcpdump.Wait(5000);
    }
    CommandResult read = Cmd({"tcpdump", "-n", "-e", "-r", pcap});
    EXPECT_EQ(read.exit_code, 0) << read.err;
    std::vector<std::string> lines;
    for (size_t start = 0, end; (end = read.out.find('\n', start)) != std::string::npos;
         start = end + 1)
      lines.push_back(read.out.substr(start, end - start));
    return lines;
  }

  static int CountMatching(const std::vector<std::string>& lines,
                           const std::vector<std::string>& parts) {
    int n = 0;
    for (const std::string& line : lines) {
      bool all = true;
      for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
      n += all ? 1 : 0;
    }
    return n;
  }

  json Stats(const std::string& port) {
    json result = Ok(Request("port.stats", {{"network", "mr"}, {"port", port}}));
    return result.is_object() && !result["ports"].empty() ? result["ports"][0]["counters"] : json();
  }

  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Cmd(argv);
  }

  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_;
};

TEST_F(MirrorNetdTest, TheMonitorSeesExactlyTheMirroredFrames) {
  const std::string first = WriteConfig(
      "mr.json",
      json::array({{{"name", "from-a"}, {"select_src_port", {"mr-a"}}, {"output_port", "mr-m"}}}));
  Start(first);
  SetUpHosts();
  // Learn every host first (ARP), so the capture holds only the pings.
  ASSERT_TRUE(Ping(0, 1)) << Log();
  ASSERT_TRUE(Ping(2, 3)) << Log();

  json show = Ok(Request("network.show", {{"name", "mr"}}))["network"];
  ASSERT_EQ(show["mirrors"].size(), 1u) << show.dump();
  EXPECT_EQ(show["mirrors"][0]["output_port"], "mr-m");
  EXPECT_EQ(show["mirrors"][0]["select_src_port"], json::array({"mr-a"}));
  CommandResult table = Netctl({"network", "show", "mr"});
  EXPECT_THAT(table.out, ::testing::HasSubstr("Mirrors:")) << table.out;
  EXPECT_THAT(table.out, ::testing::HasSubstr("from-a")) << table.out;

  // A pings B: M sees A's echo requests (received on mr-a), tagged with
  // VLAN 10 (M's own VLAN is 1), and not B's replies (they leave by mr-a,
  // which this mirror does not select); C and D's pings not at all.
  std::vector<std::string> seen = Capture([&] {
    EXPECT_TRUE(Ping(0, 1));
    EXPECT_TRUE(Ping(2, 3));
  });
  const std::string all_lines = ::testing::PrintToString(seen);
  EXPECT_EQ(CountMatching(seen, {"vlan 10", "10.67.0.1 > 10.67.0.2", "echo request"}), kPings)
      << all_lines;
  EXPECT_EQ(CountMatching(seen, {"echo reply"}), 0) << all_lines;
  EXPECT_EQ(CountMatching(seen, {"10.67.0.3"}), 0) << all_lines;
  EXPECT_EQ(CountMatching(seen, {"10.67.0.4"}), 0) << all_lines;
  // The switch sent M nothing but the copies: every frame seen is A's.
  for (const std::string& line : seen)
    EXPECT_THAT(line, ::testing::HasSubstr("10.67.0.1")) << all_lines;

  // The plan to mirror VLAN 20 instead lists the one switch operation.
  const std::string second = WriteConfig(
      "next.json",
      json::array({{{"name", "vlan20"}, {"select_vlan", "20"}, {"output_port", "mr-m"}}}));
  CommandResult plan = Netctl({"plan", second});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(plan.out,
            "set port mirrors of switch mr: from-a (from mr-a -> mr-m) -> vlan20 (all ports, "
            "vlan 20 -> mr-m)\n");
  CommandResult apply = Netctl({"apply", second});
  ASSERT_EQ(apply.exit_code, 0) << apply.err << "\n" << Log();
  EXPECT_EQ(Netctl({"plan", second}).out, "no changes\n");

  // Now M sees C and D's pings both ways, tagged 20, and nothing of VLAN 10.
  seen = Capture([&] {
    EXPECT_TRUE(Ping(0, 1));
    EXPECT_TRUE(Ping(2, 3));
  });
  const std::string vlan_lines = ::testing::PrintToString(seen);
  EXPECT_EQ(CountMatching(seen, {"vlan 20", "10.67.0.3 > 10.67.0.4", "echo request"}), kPings)
      << vlan_lines;
  EXPECT_EQ(CountMatching(seen, {"vlan 20", "10.67.0.4 > 10.67.0.3", "echo reply"}), kPings)
      << vlan_lines;
  EXPECT_EQ(CountMatching(seen, {"vlan 10"}), 0) << vlan_lines;
  EXPECT_EQ(CountMatching(seen, {"10.67.0.1"}), 0) << vlan_lines;

  // What M sends itself is dropped and counted, never forwarded.
  json m = Stats("mr-m");
  ASSERT_TRUE(m.is_object());
  EXPECT_GE(m["tx_packets"].get<uint64_t>(), static_cast<uint64_t>(3 * kPings));
  EXPECT_EQ(m["drops"]["tx_queue_full"], 0) << m.dump();
  // M cannot reach A: its ARP requests are dropped at the switch.
  ASSERT_EQ(Cmd({"ip", "-n", hosts_[kM]->name(), "addr", "add", "10.67.0.5/24", "dev", kPeers[kM]})
                .exit_code,
            0);
  EXPECT_NE(Cmd({"ip", "netns", "exec", hosts_[kM]->name(), "busybox", "ping", "-c", "2", "-W", "1",
                 "10.67.0.1"})
                .exit_code,
            0);
  EXPECT_TRUE(
      WaitFor([&] { return Stats("mr-m")["drops"]["mirror_output"].get<uint64_t>() >= 1; }, 5000))
      << Stats("mr-m").dump();
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
