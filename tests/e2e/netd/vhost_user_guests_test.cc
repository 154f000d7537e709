// QEMU guests with vhost-user NICs on a "datapath": "userspace" network
// (issue 16): the switch reads and writes the guests' virtio rings in their
// own memory, no tap in between.
//
// The guests are not netd's: the test starts each QEMU (TCG) itself with the
// NIC arguments `netctl port show NETWORK PORT --qemu` prints (a
// `-chardev socket,...,server=on,wait=off`, `-netdev vhost-user`, and a
// virtio-net-pci with `vectors=0`: QEMU 7.2 under TCG crashes with MSI-X on a
// vhost-user NIC, FIELD-NOTES.md) plus the shared guest memory they need
// (`-object memory-backend-memfd,...,share=on -numa node,memdev=mem`).
// The ports are in client mode (the default): QEMU owns the sockets, netd
// connects to them. One test, three guests (each TCG boot costs seconds of
// this machine's two cores):
//   - A and B on access VLAN 10 ping each other through the switch, which
//     learned their MACs on their ports and counted the frames;
//   - C on access VLAN 20 reaches neither and is sent nothing;
//   - netd stopped (SIGTERM) and started again while the guests run: the new
//     netd connects to the QEMUs' sockets, QEMU sets the rings up again
//     (SET_VRING_BASE from where the old backend stopped) and A and B ping
//     each other again; C is still isolated.
// Cleanup, also after a failed assertion: each QEMU is a ScopedProcess of the
// test and names the test's directory (guest_fixture.h's TearDown kills it);
// netd dies with the test process and the namespace.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "guest_console.h"
#include "guest_fixture.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::CommandResult;
using testing::Console;
using ::testing::HasSubstr;
using testing::json;

long ElapsedMs(steady_clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - since).count());
}

struct VhostUserGuest {
  std::string name, port, mac, ip;
  int vlan;
};

class VhostUserGuestsTest : public testing::GuestFixture {
 protected:
  void TearDown() override {
    consoles_.clear();
    qemus_.clear();  // SIGKILL and reap (ScopedProcess)
    GuestFixture::TearDown();
  }

  std::string Socket(const std::string& port) const { return dir_.Join("vu/" + port + ".sock"); }

  // The words `netctl port show NETWORK PORT --qemu` prints, split as an
  // operator's shell splits them.
  std::vector<std::string> PrintedQemuArgs(const std::string& port) {
    CommandResult printed = Netctl({"port", "show", network_, port, "--qemu"});
    EXPECT_EQ(printed.exit_code, 0) << printed.err;
    CommandResult words = testing::Shell("printf '%s\\n' " + printed.out);
    EXPECT_EQ(words.exit_code, 0) << words.err;
    std::vector<std::string> out;
    size_t start = 0;
    while (start < words.out.size()) {
      const size_t end = words.out.find('\n', start);
      out.push_back(words.out.substr(start, end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return out;
  }

  // Starts QEMU for `guest` with the printed NIC arguments (the MAC appended
  // to the device, as an operator would: the port is no topology VM's NIC,
  // so netd knows none) and shared memory; its console on a socket and a
  // log in the test's directory.
  void StartQemu(const VhostUserGuest& guest) {
    std::vector<std::string> nic = PrintedQemuArgs(guest.port);
    ASSERT_FALSE(nic.empty());
    bool device = false;
    for (size_t i = 0; i + 1 < nic.size(); ++i) {
      if (nic[i] != "-device") continue;
      EXPECT_THAT(nic[i + 1], HasSubstr("vectors=0"));
      nic[i + 1] += ",mac=" + guest.mac;
      device = true;
    }
    ASSERT_TRUE(device) << ::testing::PrintToString(nic);
    const std::string console = dir_.Join(guest.name + ".console");
    const std::string log = dir_.Join(guest.name + ".log");
    std::vector<std::string> argv = {
        "qemu-system-x86_64",
        "-name",
        guest.name,
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-m",
        "256",
        "-object",
        "memory-backend-memfd,id=mem,size=256M,share=on",
        "-numa",
        "node,memdev=mem",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-kernel",
        kernel_,
        "-initrd",
        initrd_,
        "-append",
        "console=ttyS0 quiet panic=-1 vf.ip=" + guest.ip,
        "-chardev",
        "socket,id=serial,path=" + console + ",server=on,wait=off,logfile=" + log + ",logappend=on",
        "-serial",
        "chardev:serial"};
    argv.insert(argv.end(), nic.begin(), nic.end());
    auto qemu = std::make_unique<testing::ScopedProcess>(argv, dir_.Join(guest.name + ".qemu"));
    qemu_pids_.insert(qemu->pid());
    qemus_[guest.name] = std::move(qemu);
    consoles_[guest.name] = std::make_unique<Console>(console, log);
  }

  Console& Guest(const std::string& name) { return *consoles_.at(name); }

  // port.stats counters by port name.
  std::map<std::string, json> PortCounters() {
    std::map<std::string, json> out;
    json stats = Ok(testing::Request("port.stats", {{"network", network_}}));
    for (const json& port : stats["ports"]) out[port["port"]] = port["counters"];
    return out;
  }

  json VhostUserState(const std::string& port) {
    return Ok(testing::Request("port.show", {{"network", network_}, {"port", port}}))["vhost_user"];
  }

  // Whether every port's rings are up (the guest driver set them up).
  bool AllUp() {
    for (const VhostUserGuest& g : guests_)
      if (VhostUserState(g.port)["up"] != true) return false;
    return true;
  }

  std::string QemuLogs() {
    std::string out;
    for (const VhostUserGuest& g : guests_)
      out += "\n--- " + g.name + " qemu:\n" + testing::ReadFile(dir_.Join(g.name + ".qemu")) +
             "\n--- " + g.name + " console:\n" + testing::ReadFile(dir_.Join(g.name + ".log"));
    return out;
  }

  // Pings from `from` until one answer comes back (the first frames after a
  // reconnect may find the rings not set up yet), then `count` more, which
  // must all be answered. The ping output of the last run.
  std::string PingUntilAnswered(const std::string& from, const std::string& to, int count,
                                int timeout_ms) {
    std::string out;
    const bool answered = testing::WaitFor(
        [&] { return Guest(from).Run("ping -c 1 -W 1 " + to, 5000, &out) == 0; }, timeout_ms);
    EXPECT_TRUE(answered) << from << " -> " << to << ": " << out << "\nnetd:\n"
                          << Log() << QemuLogs();
    const std::string n = std::to_string(count);
    EXPECT_EQ(Guest(from).Run("ping -c " + n + " -i 0.2 -W 2 " + to, 30000, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr(n + " packets transmitted, " + n + " packets received")) << out;
    return out;
  }

  // C on VLAN 20 reaches no guest of VLAN 10, and the switch sends C nothing.
  // Drops: none while the rings are up (frames flooded at boot to a port
  // whose guest driver had not set its rings up yet are counted as
  // tx_not_ready, rightly; those are not this check's).
  void ExpectCIsolated() {
    const std::map<std::string, json> before = PortCounters();
    std::string out;
    EXPECT_NE(Guest("a").Run("ping -c 2 -i 0.2 -W 1 10.78.0.3", 30000, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr("100% packet loss"));
    EXPECT_NE(Guest("c").Run("ping -c 2 -i 0.2 -W 1 10.78.0.1", 30000, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr("100% packet loss"));
    const std::map<std::string, json> after = PortCounters();
    EXPECT_EQ(after.at("vu-c")["tx_packets"], 0) << after.at("vu-c").dump();
    EXPECT_GT(after.at("vu-c")["rx_packets"].get<uint64_t>(),
              before.at("vu-c")["rx_packets"].get<uint64_t>());
    for (const auto& [port, c] : after)
      EXPECT_EQ(c["drops_total"], before.at(port)["drops_total"]) << port << " " << c.dump();
  }

  std::string network_ = "vu";
  std::vector<VhostUserGuest> guests_ = {{"a", "vu-a", "52:54:00:78:00:0a", "10.78.0.1/24", 10},
                                         {"b", "vu-b", "52:54:00:78:00:0b", "10.78.0.2/24", 10},
                                         {"c", "vu-c", "52:54:00:78:00:0c", "10.78.0.3/24", 20}};
  std::map<std::string, std::unique_ptr<testing::ScopedProcess>> qemus_;
  std::map<std::string, std::unique_ptr<Console>> consoles_;
};

TEST_F(VhostUserGuestsTest, GuestsPingIsolatedByVlanAndAgainAfterANetdRestart) {
  const auto t0 = steady_clock::now();
  json ports = json::array();
  for (const VhostUserGuest& g : guests_)
    ports.push_back({{"name", g.port},
                     {"kind", "vhost-user"},
                     {"socket", Socket(g.port)},
                     {"vlan", {{"mode", "access"}, {"pvid", g.vlan}}}});
  const json topology = {
      {"networks", {{{"name", network_}, {"datapath", "userspace"}, {"ports", ports}}}}};
  const std::string config = dir_.Join("topology.json");
  testing::WriteFile(config, topology.dump(2));
  ASSERT_EQ(::mkdir(dir_.Join("vu").c_str(), 0755), 0);
  Start(config);
  ASSERT_FALSE(HasFatalFailure());
  // Client mode: no QEMU listens yet, the ports wait.
  EXPECT_THAT(VhostUserState("vu-a").value("waiting", ""), HasSubstr("no socket at"));

  for (const VhostUserGuest& g : guests_) {
    StartQemu(g);
    ASSERT_FALSE(HasFatalFailure());
  }
  // QEMU makes its socket and waits for the backend before the guest runs;
  // netd connects at its next reconcile (a reload here, rather than the 30 s
  // resync).
  for (const VhostUserGuest& g : guests_) {
    struct stat st {};
    ASSERT_TRUE(testing::WaitFor(
        [&] { return ::stat(Socket(g.port).c_str(), &st) == 0 || !qemus_[g.name]->running(); },
        20000))
        << g.name << QemuLogs();
    ASSERT_TRUE(qemus_[g.name]->running()) << QemuLogs();
  }
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  for (auto& [name, console] : consoles_) {
    ASSERT_TRUE(console->WaitForLog("VF-READY ", 90000)) << name << " did not boot:\n"
                                                         << console->Log() << "\nnetd:\n"
                                                         << Log() << QemuLogs();
  }
  std::cout << "3 guests ready " << ElapsedMs(t0) << " ms after the test started\n";
  ASSERT_TRUE(testing::WaitFor([&] { return AllUp(); }, 20000))
      << VhostUserState("vu-a").dump(2) << Log();

  // Same VLAN: A and B reach each other.
  std::string out = PingUntilAnswered("a", "10.78.0.2", 5, 20000);
  if (auto rtt = testing::LineAfter(out, "round-trip min/avg/max = "))
    std::cout << "a -> b: ping rtt min/avg/max " << *rtt << " (tcg, vhost-user)\n";
  PingUntilAnswered("b", "10.78.0.1", 3, 10000);
  // Learned on their ports, in VLAN 10.
  const json entries = Ok(testing::Request("fdb.show", {{"network", network_}}))["entries"];
  for (const VhostUserGuest& g : {guests_[0], guests_[1]}) {
    bool learned = false;
    for (const json& e : entries)
      learned = learned || (e["mac"] == g.mac && e["port"] == g.port && e["vlan"] == 10);
    EXPECT_TRUE(learned) << g.mac << " " << entries.dump(2);
  }
  const std::map<std::string, json> counters = PortCounters();
  for (const std::string port : {"vu-a", "vu-b"}) {
    EXPECT_GE(counters.at(port)["rx_packets"].get<uint64_t>(), 8u) << counters.at(port).dump();
    EXPECT_GE(counters.at(port)["tx_packets"].get<uint64_t>(), 8u) << counters.at(port).dump();
  }
  const json a_state = VhostUserState("vu-a");
  EXPECT_EQ(a_state["connected"], true) << a_state.dump(2);
  EXPECT_EQ(a_state["counters"]["connections"], 1) << a_state.dump(2);
  EXPECT_EQ(a_state["counters"]["messages_refused"], 0) << a_state.dump(2);
  // Other VLAN: isolated.
  ExpectCIsolated();
  std::cout << "before the restart: " << ElapsedMs(t0) << " ms\n";

  // netd goes and comes back while the guests run.
  const auto restart = steady_clock::now();
  ASSERT_EQ(Stop(), 0) << Log();
  std::cout << "netd stopped in " << ElapsedMs(restart) << " ms\n";
  for (const auto& [name, qemu] : qemus_) ASSERT_TRUE(qemu->running()) << name << QemuLogs();
  Start(config);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return AllUp(); }, 20000))
      << VhostUserState("vu-a").dump(2) << Log() << QemuLogs();
  std::cout << "rings up again " << ElapsedMs(restart) << " ms after netd was stopped\n";
  PingUntilAnswered("a", "10.78.0.2", 5, 20000);
  PingUntilAnswered("b", "10.78.0.1", 3, 10000);
  std::cout << "traffic resumed " << ElapsedMs(restart) << " ms after netd was stopped\n";
  const json after = VhostUserState("vu-b");
  EXPECT_EQ(after["connected"], true) << after.dump(2);
  EXPECT_EQ(after["counters"]["messages_refused"], 0) << after.dump(2);
  ExpectCIsolated();
  for (const auto& [name, qemu] : qemus_) EXPECT_TRUE(qemu->running()) << name << QemuLogs();
  std::cout << "test took " << ElapsedMs(t0) << " ms\n";
  RecordProperty("duration_ms", std::to_string(ElapsedMs(t0)));
}

}  // namespace
}  // namespace vfabric
