// Guests outlive netd: on SIGTERM netd leaves its QEMUs running, and a
// restarted netd adopts them (same pids, "adopted") and supervises them from
// then on: vm stop, console-log, a kill -9 restarted per policy with its tap
// opened again. A guest whose configuration changed while netd was down is
// started again with the new one; one that left the topology is stopped.
//
// QEMU outlives netd here by design, so the fixture ends every QEMU the test
// started: by the pids recorded in the run dir (guest.json), by those the
// test saw, and by any process naming the test's directory, after a failed
// assertion too. The test process is a child subreaper, so the QEMUs netd
// leaves behind are reparented to it and reaped, not left as zombies
// (guest_fixture.h, qemu_cleanup.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "guest_fixture.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::Cmd;
using ::testing::HasSubstr;
using testing::json;
using testing::WaitFor;

class NetdRestartGuestsTest : public testing::GuestFixture {
 protected:
  json Vm(const std::string& name, const std::string& ip, const std::string& restart,
          int memory_mb = 256) {
    json vm =
        GuestVm(name, "vf.ip=" + ip + "/24", json::array({{{"network", "guests"}}}), memory_mb);
    vm["restart"] = restart;
    return vm;
  }

  void WriteConfig(const json& vms) {
    json topology = {{"networks", json::array({{{"name", "guests"}, {"bridge", "vfb-guests"}},
                                               {{"name", "side"}, {"bridge", "vfb-side"}},
                                               {{"name", "uside"}, {"datapath", "userspace"}}})},
                     {"vms", vms}};
    testing::WriteFile(config_, topology.dump(2));
  }

  void StartNetd(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--run-dir", run_dir()};
    args.insert(args.end(), extra.begin(), extra.end());
    Start(config_, args);
  }

  std::string Console(const std::string& vm) {
    return testing::ReadFile(VmFile(vm, "console.log"));
  }

  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1))
      ++n;
    return n;
  }

  // Waits for the n-th VF-READY of `vm` in its console log (one per boot).
  bool WaitReady(const std::string& vm, size_t n = 1, int timeout_ms = 60000) {
    return WaitFor([&] { return Count(Console(vm), "VF-READY") >= n; }, timeout_ms);
  }

  bool HostPings(const std::string& ip) {
    return WaitFor(
        [&] {
          return Cmd({"busybox", "ping", "-c", "1", "-W", "1", ip}).exit_code == 0;
        },
        15000);
  }

  json VmStatus(const std::string& name) {
    json answer = testing::Ask(socket_, testing::Request("vm.list"));
    if (!answer.is_object() || answer["ok"] != true) return json();
    for (const json& vm : answer["result"]["vms"])
      if (vm["name"] == name) return vm;
    return json();
  }

  // The VLAN settings the userspace switch of "uside" applies to `port`.
  json UsideVlan(const std::string& port) {
    json answer = testing::Ask(socket_, testing::Request("vlan.show", {{"network", "uside"}}));
    if (!answer.is_object() || answer["ok"] != true) return answer;
    for (const json& p : answer["result"]["vlan"]["ports"])
      if (p["port"] == port) return p.value("applied", json());
    return json();
  }

  pid_t Pid(const std::string& name) {
    json vm = VmStatus(name);
    pid_t pid = vm.is_object() && vm["pid"].is_number_integer() ? vm["pid"].get<pid_t>() : -1;
    if (pid > 0) qemu_pids_.insert(pid);
    return pid;
  }

  // A live QEMU (not a zombie, not someone else's recycled pid).
  bool QemuAlive(pid_t pid) {
    return testing::ReadFile("/proc/" + std::to_string(pid) + "/cmdline").find("qemu-system") !=
           std::string::npos;
  }

  const std::string config_ = dir_.Join("guests.json");
};

TEST_F(NetdRestartGuestsTest, GuestsKeepRunningAcrossARestartAndAreAdopted) {
  const auto t0 = std::chrono::steady_clock::now();
  WriteConfig(json::array({Vm("vm1", "10.88.0.1", "on-failure"), Vm("vm2", "10.88.0.2", "no")}));
  StartNetd();
  ASSERT_EQ(Cmd({"ip", "addr", "add", "10.88.0.254/24", "dev", "vfb-guests"}).exit_code, 0);
  ASSERT_TRUE(WaitReady("vm1") && WaitReady("vm2")) << Console("vm1") << Console("vm2") << Log();
  EXPECT_EQ(RunOnConsole("vm1", "ping -c 2 -W 2 10.88.0.2"), 0) << Console("vm1");
  const pid_t pid1 = Pid("vm1"), pid2 = Pid("vm2");
  ASSERT_GT(pid1, 0);
  ASSERT_GT(pid2, 0);
  // QEMU runs in its own session: a terminal's ^C to netd's group is not its.
  EXPECT_EQ(getsid(pid1), pid1);
  json record = json::parse(testing::ReadFile(VmFile("vm1", "guest.json")), nullptr, false);
  ASSERT_TRUE(record.is_object()) << testing::ReadFile(VmFile("vm1", "guest.json"));
  EXPECT_EQ(record["pid"], pid1);
  EXPECT_EQ(record["qmp_socket"], VmFile("vm1", "qmp.sock"));
  EXPECT_EQ(record["nics"][0]["port"], "vm1-eth0");
  // A hot-attached NIC is recorded too, and kept across the restart.
  auto attach = Netctl({"attach", "vm1", "side", "--mac", "52:54:00:89:00:01"});
  ASSERT_EQ(attach.exit_code, 0) << attach.err << Log();
  record = json::parse(testing::ReadFile(VmFile("vm1", "guest.json")), nullptr, false);
  EXPECT_EQ(record["nics"][1]["port"], "vm1-eth1") << record.dump();
  EXPECT_EQ(record["nics"][1]["attached"], true) << record.dump();
  // One on VLAN 20 of a userspace network: the port must come back on VLAN
  // 20 after the restart, not on the network's default VLAN.
  attach = Netctl({"attach", "vm1", "uside", "--vlan", "20"});
  ASSERT_EQ(attach.exit_code, 0) << attach.err << Log();
  record = json::parse(testing::ReadFile(VmFile("vm1", "guest.json")), nullptr, false);
  EXPECT_EQ(record["nics"][2]["port"], "vm1-eth2") << record.dump();
  EXPECT_EQ(record["nics"][2]["access_vlan"], 20) << record.dump();
  EXPECT_EQ(UsideVlan("vm1-eth2"), (json{{"mode", "access"}, {"pvid", 20}}));

  // SIGTERM: netd goes, the guests stay and still talk.
  EXPECT_EQ(Stop(), 0) << Log();
  EXPECT_THAT(Log(), HasSubstr("left 2 guests running"));
  EXPECT_TRUE(QemuAlive(pid1) && QemuAlive(pid2));
  EXPECT_EQ(RunOnConsole("vm2", "ping -c 2 -W 2 10.88.0.1"), 0) << Console("vm2");
  EXPECT_TRUE(HostPings("10.88.0.2"));

  // The same configuration again: both adopted, nothing rebooted.
  StartNetd();
  for (auto [name, pid] : {std::pair<std::string, pid_t>{"vm1", pid1}, {"vm2", pid2}}) {
    json vm = VmStatus(name);
    EXPECT_EQ(vm["pid"], pid) << vm.dump();
    EXPECT_EQ(vm["state"], "running") << vm.dump();
    EXPECT_EQ(vm["adopted"], true) << vm.dump();
    EXPECT_EQ(vm["nics"][0]["port"], name + "-eth0") << vm.dump();
  }
  EXPECT_THAT(Log(), HasSubstr("vm vm1: adopted qemu pid " + std::to_string(pid1)));
  json nics = VmStatus("vm1")["nics"];
  ASSERT_EQ(nics.size(), 3u) << nics.dump();
  EXPECT_EQ(nics[1]["port"], "vm1-eth1");
  EXPECT_EQ(nics[1]["mac"], "52:54:00:89:00:01");
  EXPECT_EQ(testing::Link("vm1-eth1")["master"], "vfb-side");
  EXPECT_EQ(nics[2]["port"], "vm1-eth2");
  EXPECT_EQ(UsideVlan("vm1-eth2"), (json{{"mode", "access"}, {"pvid", 20}})) << Log();
  EXPECT_EQ(Count(Console("vm1"), "VF-READY"), 1u) << "vm1 booted again";
  auto table = Netctl({"vm", "list"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr(std::to_string(pid1)));
  auto log = Netctl({"vm", "console-log", "vm1"});
  EXPECT_THAT(log.out, HasSubstr("VF-READY"));
  EXPECT_TRUE(HostPings("10.88.0.1"));

  // kill -9 of an adopted QEMU: seen on its pidfd, restarted ("on-failure")
  // with its tap opened again.
  ASSERT_EQ(kill(pid1, SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        json vm = VmStatus("vm1");
        return vm.is_object() && vm["state"] == "running" && vm["pid"] != pid1 &&
               vm["pid"].is_number_integer();
      },
      20000))
      << VmStatus("vm1").dump() << Log();
  json vm1 = VmStatus("vm1");
  Pid("vm1");
  EXPECT_EQ(vm1["adopted"], false);
  EXPECT_EQ(vm1["restarts"], 1);
  EXPECT_EQ(vm1["last_exit"], "gone (adopted qemu: exit status unknown)");
  EXPECT_EQ(vm1["nics"].size(), 3u) << vm1.dump();
  EXPECT_FALSE(QemuAlive(pid1));
  ASSERT_TRUE(WaitReady("vm1", 2)) << Console("vm1");
  EXPECT_TRUE(HostPings("10.88.0.1")) << Console("vm1");
  EXPECT_EQ(RunOnConsole("vm1", "ping -c 1 -W 2 10.88.0.2"), 0) << Console("vm1");

  // vm stop powers the adopted guest down.
  ASSERT_EQ(Netctl({"vm", "stop", "vm2"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return VmStatus("vm2")["state"] == "stopped"; }, 30000))
      << VmStatus("vm2").dump() << Log();
  EXPECT_FALSE(QemuAlive(pid2));
  EXPECT_THAT(Console("vm2"), HasSubstr("VF-POWERDOWN"));

  // Stopped by the operator, it stays stopped when netd restarts, until
  // vm start.
  EXPECT_EQ(Stop(), 0) << Log();
  StartNetd();
  EXPECT_EQ(VmStatus("vm2")["state"], "stopped") << VmStatus("vm2").dump() << Log();
  EXPECT_THAT(Log(), HasSubstr("vm vm2: stopped with vm stop before netd restarted"));
  EXPECT_EQ(VmStatus("vm1")["adopted"], true) << VmStatus("vm1").dump();
  ASSERT_EQ(Netctl({"vm", "start", "vm2"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return VmStatus("vm2")["state"] == "running"; }, 20000))
      << VmStatus("vm2").dump() << Log();
  EXPECT_FALSE(std::filesystem::exists(VmFile("vm2", "stopped-by-operator")));
  std::cout << "test body: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " ms\n";
}

TEST_F(NetdRestartGuestsTest, AGuestChangedWhileNetdWasDownIsRestartedWithTheNewConfig) {
  WriteConfig(json::array({Vm("vm1", "10.88.0.1", "no"), Vm("vm2", "10.88.0.2", "no")}));
  StartNetd();
  ASSERT_TRUE(WaitReady("vm1") && WaitReady("vm2")) << Console("vm1") << Console("vm2") << Log();
  const pid_t pid1 = Pid("vm1"), pid2 = Pid("vm2");
  ASSERT_GT(pid1, 0);
  ASSERT_GT(pid2, 0);
  EXPECT_EQ(Stop(), 0) << Log();
  ASSERT_TRUE(QemuAlive(pid1) && QemuAlive(pid2));

  // While netd is down: vm1 gets less memory, vm2 leaves the topology.
  WriteConfig(json::array({Vm("vm1", "10.88.0.1", "no", 192)}));
  StartNetd({"--stop-guests-on-exit"});
  json vm1 = VmStatus("vm1");
  const pid_t fresh = Pid("vm1");
  EXPECT_GT(fresh, 0) << vm1.dump();
  EXPECT_NE(fresh, pid1);
  EXPECT_EQ(vm1["adopted"], false);
  EXPECT_FALSE(QemuAlive(pid1));
  EXPECT_FALSE(QemuAlive(pid2));
  EXPECT_TRUE(VmStatus("vm2").is_null());
  EXPECT_THAT(Log(), HasSubstr("does not match the topology (memory_mb 256 -> 192)"));
  EXPECT_THAT(Log(), HasSubstr("vm vm2: left the topology while netd was down"));
  EXPECT_THAT(testing::ReadFile("/proc/" + std::to_string(fresh) + "/cmdline"),
              HasSubstr(std::string("-m\0"
                                    "192\0",
                                    7)));
  // Both were powered down, not killed.
  EXPECT_EQ(Count(Console("vm1"), "VF-POWERDOWN"), 1u) << Console("vm1");
  EXPECT_THAT(Console("vm2"), HasSubstr("VF-POWERDOWN"));

  // --stop-guests-on-exit: the old behaviour at SIGTERM.
  ASSERT_TRUE(WaitReady("vm1", 2)) << Console("vm1");
  EXPECT_EQ(Stop(), 0) << Log();
  EXPECT_FALSE(QemuAlive(fresh));
  EXPECT_EQ(Count(Console("vm1"), "VF-POWERDOWN"), 2u) << Console("vm1");
}

}  // namespace
}  // namespace vfabric
