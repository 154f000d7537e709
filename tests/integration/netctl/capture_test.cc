// netctl capture against a real netd in the test's own network namespace
// (issue 19): on a userspace network, pings through a VLAN'd access port
// appear in tshark's reading of the pcap netctl writes, with the VLAN the
// switch classified them into; Ctrl-C ends a capture and leaves nothing
// behind (a second capture on the port starts); on a kernel network netctl
// runs tcpdump on the port. Hosts are named namespaces the test makes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;
using testing::Request;
using testing::WaitFor;

class CaptureTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped()) return;
    if (testing::Shell("command -v tshark && command -v tcpdump").exit_code != 0)
      GTEST_SKIP() << "tshark and tcpdump are needed (Debian's tshark and tcpdump packages)";
    for (int i = 0; i < 2; ++i) {
      hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfcap"));
      ASSERT_TRUE(hosts_.back()->ok());
    }
  }

  std::vector<std::string> NetctlArgv(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Netctl(std::vector<std::string> args) { return testing::Run(NetctlArgv(args)); }

  // Two veth ports whose peers are the hosts (10.67.0.1, .2), on `datapath`;
  // on userspace both are access ports of VLAN 10.
  void StartNetwork(const std::string& datapath) {
    json ports = json::array();
    for (int i = 0; i < 2; ++i) {
      json port = {{"name", kPorts[i]},
                   {"kind", "veth"},
                   {"peer", kPeers[i]},
                   {"peer_netns", hosts_[i]->name()}};
      if (datapath == "userspace") port["vlan"] = {{"mode", "access"}, {"pvid", 10}};
      ports.push_back(port);
    }
    json network = {{"name", "cap"}, {"datapath", datapath}, {"ports", ports}};
    if (datapath == "kernel") network["bridge"] = "vfb-cap";
    const std::string config = dir_.Join("capture.json");
    testing::WriteFile(config, json{{"networks", {network}}}.dump(2));
    Start(config);
    for (int i = 0; i < 2; ++i) {
      const std::string& ns = hosts_[i]->name();
      // No IPv6: its router and listener messages would take the capture's frames.
      ASSERT_TRUE(WaitFor(
          [&] {
            return testing::Run({"ip", "-n", ns, "link", "show", kPeers[i]}).exit_code == 0;
          },
          10000))
          << Log();
      testing::Run({"ip", "netns", "exec", ns, "sysctl", "-qw",
                    std::string("net.ipv6.conf.") + kPeers[i] + ".disable_ipv6=1"});
      ASSERT_EQ(testing::Run({"ip", "-n", ns, "addr", "add",
                              "10.67.0." + std::to_string(i + 1) + "/24", "dev", kPeers[i]})
                    .exit_code,
                0);
      ASSERT_EQ(testing::Run({"ip", "-n", ns, "link", "set", kPeers[i], "up"}).exit_code, 0);
    }
    if (datapath == "userspace") {
      ASSERT_TRUE(WaitFor(
          [&] {
            json listed = Ok(Request("port.list", {{"network", "cap"}}))["ports"];
            int in_switch = 0;
            for (const json& p : listed)
              in_switch += p.contains("switch_port") && !p["switch_port"].is_null();
            return in_switch == 2;
          },
          10000))
          << Log();
    }
  }

  bool Ping(int count) {
    return testing::Run({"ip", "netns", "exec", hosts_[0]->name(), "busybox", "ping", "-c",
                         std::to_string(count), "-i", "0.2", "-W", "2", "10.67.0.2"})
               .exit_code == 0;
  }

  // The capture has started when netd says so (its log).
  bool WaitForCaptureStarted(int nth) {
    return WaitFor(
        [&] {
          const std::string log = Log();
          int found = 0;
          for (size_t at = log.find("capture on network cap port"); at != std::string::npos;
               at = log.find("capture on network cap port", at + 1)) {
            const size_t end = log.find('\n', at);
            found += end != std::string::npos && log.compare(end - 7, 7, "started") == 0;
          }
          return found >= nth;
        },
        10000);
  }

  static constexpr const char* kPorts[2] = {"cap-a", "cap-b"};
  static constexpr const char* kPeers[2] = {"cap-a-p", "cap-b-p"};
  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_;
};

TEST_F(CaptureTest, PingsThroughAVlanAccessPortAppearInTsharkWithTheirVlan) {
  StartNetwork("userspace");
  ASSERT_TRUE(Ping(1)) << Log();  // ARP done: the capture sees ICMP
  const std::string pcap = dir_.Join("ping.pcap");
  testing::ScopedProcess capture(NetctlArgv({"capture", "cap", "cap-a", "-w", pcap, "-c", "6"}),
                                 dir_.Join("capture.log"));
  ASSERT_TRUE(WaitForCaptureStarted(1)) << Log();
  ASSERT_TRUE(Ping(6)) << Log();
  const int status = capture.Wait(10000);
  const std::string capture_log = testing::ReadFile(dir_.Join("capture.log"));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << capture_log;
  EXPECT_THAT(capture_log, HasSubstr("6 frames captured, 0 not recorded"));

  CommandResult read = testing::Run(
      {"tshark", "-r", pcap, "-Y", "icmp", "-T", "fields", "-e", "vlan.id", "-e", "icmp.type"});
  ASSERT_EQ(read.exit_code, 0) << read.err;
  // Requests in (type 8) and replies out (type 0), all in VLAN 10 although
  // the hosts send them untagged.
  int requests = 0, replies = 0;
  std::istringstream lines(read.out);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.substr(0, 3), "10\t") << read.out;
    requests += line == "10\t8";
    replies += line == "10\t0";
  }
  EXPECT_EQ(requests, 3) << read.out;
  EXPECT_EQ(replies, 3) << read.out;
  // tcpdump reads it too.
  CommandResult dump = testing::Run({"tcpdump", "-r", pcap, "-n", "-e"});
  EXPECT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_THAT(dump.out, HasSubstr("vlan 10"));
  EXPECT_THAT(Log(), HasSubstr("capture on network cap port cap-a ended: 6 frames recorded"));
}

TEST_F(CaptureTest, CtrlCEndsATextCaptureAndLeavesNothingBehind) {
  StartNetwork("userspace");
  ASSERT_TRUE(Ping(1)) << Log();
  const std::string out = dir_.Join("text.log");
  {
    testing::ScopedProcess capture(NetctlArgv({"capture", "cap", "cap-b", "--direction", "in"}),
                                   out);
    ASSERT_TRUE(WaitForCaptureStarted(1)) << Log();
    ASSERT_TRUE(Ping(2)) << Log();
    // Replies come in on cap-b; the requests leave by it and are not wanted.
    ASSERT_TRUE(
        WaitFor([&] { return testing::ReadFile(out).find("IPv4") != std::string::npos; }, 5000))
        << testing::ReadFile(out);
    capture.Signal(SIGINT);
    const int status = capture.Wait(10000);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  const std::string text = testing::ReadFile(out);
  EXPECT_THAT(text, HasSubstr(" in  vlan 10 "));
  EXPECT_THAT(text, HasSubstr(" IPv4 len 102"));  // 98 bytes on the wire + the tag
  EXPECT_THAT(text, ::testing::Not(HasSubstr(" out ")));
  EXPECT_THAT(text, HasSubstr("frames captured, 0 not recorded"));
  // netd's session ended and its hook went: a new capture on the port starts.
  ASSERT_TRUE(WaitFor([&] { return Log().find("port cap-b ended") != std::string::npos; }, 5000))
      << Log();
  testing::ScopedProcess again(NetctlArgv({"capture", "cap", "cap-b", "--json", "-c", "1"}),
                               dir_.Join("again.log"));
  ASSERT_TRUE(WaitForCaptureStarted(2)) << Log() << testing::ReadFile(dir_.Join("again.log"));
  ASSERT_TRUE(Ping(1));
  EXPECT_EQ(again.Wait(10000), 0) << testing::ReadFile(dir_.Join("again.log"));
  EXPECT_THAT(testing::ReadFile(dir_.Join("again.log")), HasSubstr("\"vlan\":10"));
}

TEST_F(CaptureTest, ClearErrorsForUnknownNetworksPortsAndOptions) {
  StartNetwork("userspace");
  CommandResult r = Netctl({"capture", "nope", "cap-a"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no network named \"nope\""));
  r = Netctl({"capture", "cap", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no port \"nope\" in network \"cap\""));
  r = Netctl({"capture", "cap", "cap-a", "-c", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("-c '0' is not a positive integer"));
  r = Netctl({"capture", "cap", "cap-a", "--direction", "sideways"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--direction 'sideways' is not in, out or both"));
  r = Netctl({"capture", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("netctl capture NETWORK PORT [-w FILE] [-c COUNT]"));
}

TEST_F(CaptureTest, OnAKernelNetworkNetctlRunsTcpdumpOnThePort) {
  StartNetwork("kernel");
  // The bridge forwards between the two hosts; tcpdump listens on cap-a.
  ASSERT_TRUE(WaitFor([&] { return Ping(1); }, 10000)) << Log();
  const std::string pcap = dir_.Join("kernel.pcap");
  testing::ScopedProcess capture(
      NetctlArgv({"capture", "cap", "cap-a", "-w", pcap, "-c", "4", "--direction", "in"}),
      dir_.Join("tcpdump.log"));
  // tcpdump says when it listens.
  ASSERT_TRUE(WaitFor(
      [&] {
        return testing::ReadFile(dir_.Join("tcpdump.log")).find("listening on cap-a") !=
               std::string::npos;
      },
      10000))
      << testing::ReadFile(dir_.Join("tcpdump.log"));
  ASSERT_TRUE(Ping(6));
  EXPECT_EQ(capture.Wait(10000), 0) << testing::ReadFile(dir_.Join("tcpdump.log"));
  CommandResult read =
      testing::Run({"tshark", "-r", pcap, "-Y", "icmp", "-T", "fields", "-e", "icmp.type"});
  ASSERT_EQ(read.exit_code, 0) << read.err;
  // -Q in on cap-a: what host 0 sends, the requests.
  EXPECT_THAT(read.out, HasSubstr("8\n"));
  EXPECT_THAT(read.out, ::testing::Not(HasSubstr("0\n")));
}

}  // namespace
}  // namespace vfabric
