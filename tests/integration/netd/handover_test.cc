// netd re-executed (SIGUSR2) with a userspace network carrying traffic: the
// switch's descriptors and its spanning tree are handed to the new image,
// so a ping every 10 ms between two namespace hosts loses at most 10 (100 ms;
// 25 under a sanitizer, whose runtime slows the new image's start)
// across a restart of the same binary and across an in-place upgrade (the
// binary at netd's path replaced, as a package does), and the tree's ports
// never leave forwarding. Before the handover, a netd restart was an outage
// of seconds (the switch died with netd, then RSTP converged again).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::Cmd;
using testing::json;
using testing::Request;
using testing::WaitFor;

class HandoverTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (int i = 0; i < 2; ++i) {
      hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfho"));
      ASSERT_TRUE(hosts_.back()->ok());
    }
    json ports = json::array();
    for (int i = 0; i < 2; ++i)
      ports.push_back({{"name", Port(i)},
                       {"kind", "veth"},
                       {"peer", Port(i) + "-p"},
                       {"peer_netns", hosts_[i]->name()}});
    ports.push_back({{"name", "ho-t0"}, {"kind", "tap"}});  // a tap handed over too
    json doc = {
        {"networks",
         {{{"name", "ho"},
           {"datapath", "userspace"},
           {"stp", {{"enabled", true}, {"hello_time", 1}, {"forward_delay", 4}, {"max_age", 6}}},
           {"ports", ports}}}}};
    config_ = dir_.Join("handover.json");
    testing::WriteFile(config_, doc.dump(2));
  }

  static std::string Port(int i) { return "ho-h" + std::to_string(i); }
  static std::string Ip(int i) { return "10.78.0." + std::to_string(i + 1); }

  void SetUpHosts() {
    for (int i = 0; i < 2; ++i) {
      const std::string& ns = hosts_[static_cast<size_t>(i)]->name();
      const std::string dev = Port(i) + "-p";
      testing::Run(
          {"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"});
      ASSERT_EQ(Cmd({"ip", "-n", ns, "addr", "add", Ip(i) + "/24", "dev", dev}).exit_code, 0)
          << Log();
      ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", dev, "up"}).exit_code, 0);
    }
  }

  // netd started from `binary` (not the fixture's Start: the upgrade runs a
  // copy whose file the test replaces).
  void StartFrom(const std::string& binary) {
    netd_ = std::make_unique<testing::ScopedProcess>(
        std::vector<std::string>{binary, "--config", config_, "--socket", socket_, "--run-dir",
                                 run_dir()},
        log_);
    ASSERT_TRUE(WaitFor(
        [&] { return !netd_->running() || testing::Ask(socket_, Request("hello")).is_object(); },
        10000))
        << Log();
    ASSERT_TRUE(netd_->running()) << Log();
  }

  json Stp() {
    json answer = testing::Ask(socket_, Request("stp.show", {{"network", "ho"}}));
    return answer.is_object() && answer["ok"] == true ? answer["result"]["stp"] : json();
  }
  // Both host ports forwarding (null: netd not answering, e.g. mid-exec).
  std::optional<bool> HostsForwarding() {
    json stp = Stp();
    if (!stp.is_object() || !stp.contains("ports")) return std::nullopt;
    int forwarding = 0;
    for (const json& p : stp["ports"])
      if ((p["name"] == Port(0) || p["name"] == Port(1)) && p["state"] == "forwarding")
        ++forwarding;
    return forwarding == 2;
  }

  struct Outcome {
    int sent = -1, received = -1;
    // stp.show answers seen after the signal, and those with a host port
    // not forwarding (a tree started afresh: discarding, learning).
    int stp_samples = 0, stp_not_forwarding = 0;
    std::string ping_output;
  };

  // Pings host 1 from host 0 every 10 ms for `count` pings while `trigger`
  // re-executes netd after 0.5 s; watches the tree's port states meanwhile.
  Outcome PingAcross(int count, const std::function<void()>& trigger) {
    Outcome out;
    std::atomic<bool> done{false};
    std::thread pinger([&] {
      testing::CommandResult r =
          Cmd({"ip", "netns", "exec", hosts_[0]->name(), "busybox", "ping", "-q", "-i", "0.01",
               "-c", std::to_string(count), "-W", "2", Ip(1)});
      out.ping_output = r.out + r.err;
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    trigger();
    while (!done) {
      if (std::optional<bool> forwarding = HostsForwarding()) {
        ++out.stp_samples;
        if (!*forwarding) ++out.stp_not_forwarding;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pinger.join();
    std::smatch m;
    if (std::regex_search(out.ping_output, m,
                          std::regex(R"((\d+) packets transmitted, (\d+) packets received)"))) {
      out.sent = std::stoi(m[1]);
      out.received = std::stoi(m[2]);
    }
    return out;
  }

  // SIGUSR2, then the same PID serving again from its new image.
  void Reexec() {
    const size_t before = Occurrences(Log(), "handover: switches forwarding again");
    ASSERT_TRUE(netd_->Signal(SIGUSR2));
    ASSERT_TRUE(WaitFor(
        [&] {
          return !netd_->running() ||
                 Occurrences(Log(), "handover: switches forwarding again") > before;
        },
        10000))
        << Log();
    ASSERT_TRUE(netd_->running()) << Log();
  }

  static size_t Occurrences(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  void ExpectNoOutage(const Outcome& o, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_GT(o.sent, 0) << o.ping_output;
    // 100 ms; a sanitized netd's new image spends tens of ms more in its
    // runtime's start before it can adopt anything.
    const int allowed = testing::kSanitizedBuild ? 25 : 10;
    EXPECT_LE(o.sent - o.received, allowed)
        << "lost " << (o.sent - o.received) << " of " << o.sent << " pings at 10 ms\n"
        << o.ping_output << "\n"
        << Log();
    EXPECT_GT(o.stp_samples, 5);
    EXPECT_EQ(o.stp_not_forwarding, 0) << "a host port left forwarding (the tree started afresh)\n"
                                       << Log();
  }

  std::string config_;
  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_;
};

TEST_F(HandoverTest, RestartAndUpgradeLoseAtMost100msAndKeepTheTree) {
  // netd runs from a copy the "upgrade" below replaces.
  const std::string bin = dir_.Join("bin");
  std::filesystem::create_directory(bin);
  const std::string netd = bin + "/netd";
  std::filesystem::copy_file(Netd(), netd);
  ASSERT_NO_FATAL_FAILURE(StartFrom(netd));
  ASSERT_NO_FATAL_FAILURE(SetUpHosts());
  // Hosts' ports forward once edge (3 s without BPDUs).
  ASSERT_TRUE(WaitFor([&] { return HostsForwarding().value_or(false); }, 10000)) << Stp().dump();
  const json tap_before = Ok(Request("port.stats", {{"network", "ho"}, {"port", "ho-t0"}}));
  const pid_t pid = netd_->pid();

  // (a) the same binary re-executed. The new image takes the kernel
  // features the old one probed: the probe's throwaway links (a veth pair
  // and a bridge, ~70 ms to create and delete) would keep the switches
  // stopped -- under TSan that alone lost 11 pings.
  const std::string link_events = dir_.Join("link-monitor.log");
  auto link_monitor = std::make_unique<testing::ScopedProcess>(
      std::vector<std::string>{"ip", "-o", "monitor", "link"}, link_events);
  ASSERT_TRUE(WaitFor([&] { return link_monitor->running(); }, 1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // subscribed
  Outcome same = PingAcross(300, [&] { Reexec(); });
  link_monitor.reset();
  EXPECT_THAT(testing::ReadFile(link_events), ::testing::Not(::testing::HasSubstr("vfprobe-")))
      << "the new image probed the kernel again while the switches waited";
  ExpectNoOutage(same, "re-exec of the same binary");
  EXPECT_EQ(netd_->pid(), pid);
  EXPECT_THAT(Log(), ::testing::HasSubstr("spanning tree: carried on from the handover (3 ports"));
  EXPECT_THAT(Log(), ::testing::HasSubstr("port ho-t0 (tap, "));
  EXPECT_THAT(Log(), ::testing::HasSubstr("adopted from the handover as switch port"));
  const json tap_after = Ok(Request("port.stats", {{"network", "ho"}, {"port", "ho-t0"}}));
  EXPECT_EQ(tap_after["ports"][0]["switch_port"], tap_before["ports"][0]["switch_port"])
      << tap_before.dump() << " / " << tap_after.dump();

  // (b) an upgrade: the file at netd's path replaced (a new inode, as a
  // package manager renames it into place), then SIGUSR2. The new image is
  // the new file, not the old inode.
  const std::string staged = bin + "/netd.new";
  std::filesystem::copy_file(Netd(), staged);
  struct stat st {};
  ASSERT_EQ(stat(staged.c_str(), &st), 0);
  const ino_t new_inode = st.st_ino;
  ASSERT_EQ(rename(staged.c_str(), netd.c_str()), 0);
  Outcome upgrade = PingAcross(300, [&] { Reexec(); });
  ExpectNoOutage(upgrade, "upgrade in place");
  EXPECT_EQ(netd_->pid(), pid);
  ASSERT_EQ(stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, new_inode) << "netd re-executed the old binary";
  EXPECT_TRUE(HostsForwarding().value_or(false)) << Stp().dump();
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
