// The run directory's guest.json: written and read back, malformed records
// refused with the field named, the configuration hash and its difference,
// and the pid check that tells a live QEMU from a recycled pid.
#include "vfabric/vmm/run_record.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::vmm {
namespace {

using std::chrono::milliseconds;

RunRecord Sample(const std::string& dir) {
  RunRecord r;
  r.name = "vm1";
  r.pid = 4242;
  r.qmp_socket = dir + "/qmp.sock";
  r.pidfile = dir + "/qemu.pid";
  r.accel = "tcg";
  r.accel_reason = "tcg: asked for";
  r.config = {256, 1, "auto", "/img/vmlinuz", "/img/initrd.img", "quiet", ""};
  r.config_hash = ConfigHash(r.config);
  r.argv = {"qemu-system-x86_64", "-name", "vm1"};
  r.nics = {{"nic0", "lab", "vm1-eth0", *MacAddress::Parse("52:54:00:00:00:01"), false},
            {"nic1", "side", "vm1-eth1", *MacAddress::Parse("52:54:00:00:00:02"), true, 10}};
  r.detached_ports = {"vm1-eth2"};
  return r;
}

TEST(RunRecordTest, WrittenAndReadBack) {
  testing::TempDir dir;
  const RunRecord r = Sample(dir.path());
  ASSERT_TRUE(WriteRunRecord(dir.path(), r).ok());
  struct stat st {};
  ASSERT_EQ(::stat(RunRecordPath(dir.path()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(::access((RunRecordPath(dir.path()) + ".tmp").c_str(), F_OK), 0);

  auto read = ReadRunRecord(dir.path());
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_TRUE(read->has_value());
  const RunRecord& back = **read;
  EXPECT_EQ(back.name, "vm1");
  EXPECT_EQ(back.pid, 4242);
  EXPECT_EQ(back.qmp_socket, r.qmp_socket);
  EXPECT_EQ(back.pidfile, r.pidfile);
  EXPECT_EQ(back.accel, "tcg");
  EXPECT_EQ(back.accel_reason, "tcg: asked for");
  EXPECT_EQ(back.config, r.config);
  EXPECT_EQ(back.config_hash, r.config_hash);
  EXPECT_EQ(back.argv, r.argv);
  ASSERT_EQ(back.nics.size(), 2u);
  EXPECT_EQ(back.nics[1].id, "nic1");
  EXPECT_EQ(back.nics[1].network, "side");
  EXPECT_EQ(back.nics[1].port, "vm1-eth1");
  EXPECT_EQ(back.nics[1].mac.ToString(), "52:54:00:00:00:02");
  EXPECT_TRUE(back.nics[1].attached);
  EXPECT_FALSE(back.nics[0].attached);
  EXPECT_EQ(back.nics[1].access_vlan, 10);
  EXPECT_EQ(back.nics[0].access_vlan, 0);
  EXPECT_EQ(back.detached_ports, std::vector<std::string>{"vm1-eth2"});

  RemoveRunRecord(dir.path());
  auto gone = ReadRunRecord(dir.path());
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST(RunRecordTest, MalformedRecordsNameTheField) {
  nlohmann::json good = nlohmann::json::parse(RunRecordToJson(Sample("/run/vm1")));
  ASSERT_TRUE(ParseRunRecord(good.dump()).ok());
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    std::string want;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& j) { j["pid"] = "4242"; }, "guest.json: \"pid\": want an integer"},
      {[](nlohmann::json& j) { j["pid"] = 0; }, "guest.json: \"pid\": want a positive integer"},
      {[](nlohmann::json& j) { j.erase("qmp_socket"); }, "guest.json: \"qmp_socket\": missing"},
      {[](nlohmann::json& j) { j["accel"] = "xen"; }, "guest.json: \"accel\": want kvm or tcg"},
      {[](nlohmann::json& j) { j["version"] = 2; }, "guest.json: version 2: want 1"},
      {[](nlohmann::json& j) { j["config"]["vcpus"] = "one"; },
       "guest.json: config: \"vcpus\": want an integer"},
      {[](nlohmann::json& j) { j["nics"][1]["mac"] = "52:54"; },
       "guest.json: nics[1]: \"mac\": not a MAC address: 52:54"},
      {[](nlohmann::json& j) { j["nics"][0]["attached"] = 1; },
       "guest.json: nics[0]: \"attached\": want true or false"},
      {[](nlohmann::json& j) { j["nics"][1]["access_vlan"] = 4095; },
       "guest.json: nics[1]: \"access_vlan\": want a VLAN id 1..4094 or null"},
      {[](nlohmann::json& j) { j["nics"][1]["access_vlan"] = "10"; },
       "guest.json: nics[1]: \"access_vlan\": want an integer"},
  };
  for (const Case& c : cases) {
    nlohmann::json j = good;
    c.edit(j);
    auto parsed = ParseRunRecord(j.dump());
    ASSERT_FALSE(parsed.ok()) << j.dump();
    EXPECT_EQ(parsed.status().message(), c.want);
  }
  EXPECT_EQ(ParseRunRecord("{").status().message(), "guest.json: not a JSON object");
  // Records written before access_vlan existed have none.
  nlohmann::json old = good;
  for (auto& nic : old["nics"]) nic.erase("access_vlan");
  auto parsed_old = ParseRunRecord(old.dump());
  ASSERT_TRUE(parsed_old.ok()) << parsed_old.status().message();
  EXPECT_EQ(parsed_old->nics[1].access_vlan, 0);
  EXPECT_EQ(good["nics"][0]["access_vlan"], nullptr);

  testing::TempDir dir;
  testing::WriteFile(RunRecordPath(dir.path()), "[]");
  auto read = ReadRunRecord(dir.path());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), dir.path() + "/guest.json: not a JSON object");
}

TEST(RunRecordTest, TheHashAndTheDifferenceFollowTheMachineConfiguration) {
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.kernel = "/img/vmlinuz";
  const MachineConfig before = MachineConfigOf(vm);
  EXPECT_EQ(ConfigHash(before), ConfigHash(MachineConfigOf(vm)));
  EXPECT_EQ(ConfigHash(before).size(), 16u);
  vm.restart = "always";  // not part of the machine
  vm.nics.push_back({});
  EXPECT_EQ(ConfigHash(before), ConfigHash(MachineConfigOf(vm)));
  EXPECT_EQ(DescribeDifference(before, MachineConfigOf(vm)), "");
  vm.memory_mb = 512;
  vm.kernel = "/img/other";
  EXPECT_NE(ConfigHash(before), ConfigHash(MachineConfigOf(vm)));
  EXPECT_EQ(DescribeDifference(before, MachineConfigOf(vm)),
            "memory_mb 256 -> 512, kernel /img/vmlinuz -> /img/other");
}

// A live process whose command line names the QMP socket is that QEMU; a
// recycled pid (another program), a dead one or a zombie is not.
// A process whose command line names `socket` as QEMU's -qmp does, from
// its exec on and unchanged: sh runs the sleep as a child (the "; :" keeps
// it from exec'ing it). Not python3, which may be a shim (pyenv) that execs
// on, so its command line passes through other programs' and blanks
// between execs: VerifyQemuProcess then failed on a running fake.
std::vector<std::string> FakeQemu(const std::string& socket) {
  return {"/bin/sh", "-c", "sleep 30; :", "-qmp", "unix:" + socket + ",server=on,wait=off"};
}

TEST(RunRecordTest, OnlyTheProcessNamingTheQmpSocketIsTheGuestsQemu) {
  const std::string socket = "/run/vfabric/vms/vm1/qmp.sock";
  testing::ScopedProcess qemu(FakeQemu(socket));
  testing::ScopedProcess other({"sleep", "30"});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::ReadFile("/proc/" + std::to_string(qemu.pid()) + "/cmdline")
                   .find("unix:") != std::string::npos;
      },
      5000));
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::ReadFile("/proc/" + std::to_string(other.pid()) + "/cmdline")
                   .rfind("sleep", 0) == 0;
      },
      5000));
  EXPECT_TRUE(VerifyQemuProcess(qemu.pid(), socket).ok());
  Status recycled = VerifyQemuProcess(other.pid(), socket);
  ASSERT_FALSE(recycled.ok());
  EXPECT_EQ(recycled.message(), "pid " + std::to_string(other.pid()) +
                                    " is not this guest's QEMU (its command line does not name " +
                                    socket + "): sleep 30");
  // Another guest's QEMU is not this one either.
  EXPECT_FALSE(VerifyQemuProcess(qemu.pid(), "/run/vfabric/vms/vm2/qmp.sock").ok());

  // Killed: a zombie (not reaped yet), then gone.
  const pid_t pid = qemu.pid();
  ASSERT_TRUE(qemu.Signal(SIGKILL));
  ASSERT_TRUE(testing::WaitFor([&] { return !VerifyQemuProcess(pid, socket).ok(); }, 5000));
  EXPECT_EQ(VerifyQemuProcess(pid, socket).message(), "pid " + std::to_string(pid) + " is gone");
  qemu.Wait(5000);
  EXPECT_EQ(VerifyQemuProcess(pid, socket).message(), "pid " + std::to_string(pid) + " is gone");
  EXPECT_FALSE(VerifyQemuProcess(-1, socket).ok());
}

// KillRecordedQemu kills the recorded QEMU, and never a process that merely
// has its pid.
TEST(RunRecordTest, KillingARecordedQemuSparesARecycledPid) {
  const std::string socket = "/tmp/vf-test-vm1/qmp.sock";
  testing::ScopedProcess other({"sleep", "30"});
  RunRecord r = Sample("/tmp/vf-test-vm1");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::ReadFile("/proc/" + std::to_string(other.pid()) + "/cmdline")
                   .rfind("sleep", 0) == 0;
      },
      5000));
  r.pid = other.pid();
  EXPECT_TRUE(KillRecordedQemu(r, milliseconds(1000)).ok());
  EXPECT_TRUE(other.running());

  testing::ScopedProcess qemu(FakeQemu(socket));
  ASSERT_TRUE(testing::WaitFor([&] { return VerifyQemuProcess(qemu.pid(), socket).ok(); }, 5000));
  r.pid = qemu.pid();
  EXPECT_TRUE(KillRecordedQemu(r, milliseconds(5000)).ok());
  EXPECT_EQ(qemu.Wait(5000) & 0x7f, SIGKILL);
}

// A QEMU whose supervisor died before recording it is found by its
// command line: in a fake /proc and in the real one.
TEST(RunRecordTest, FindQemuProcessesByTheirQmpSocket) {
  testing::TempDir proc;
  auto process = [&](const std::string& pid, const std::string& cmdline) {
    ASSERT_EQ(::mkdir(proc.Join(pid).c_str(), 0755), 0);
    testing::WriteFile(proc.Join(pid) + "/cmdline", cmdline);
  };
  using namespace std::string_literals;
  process("310", "qemu-system-x86_64\0-qmp\0unix:/run/vf/vms/vm1/qmp.sock,server=on\0"s);
  process("42", "qemu-system-x86_64\0-qmp\0unix:/run/vf/vms/vm1/qmp.sock,server=on\0"s);
  process("77", "qemu-system-x86_64\0-qmp\0unix:/run/vf/vms/vm2/qmp.sock,server=on\0"s);
  process("88", "");  // a zombie
  process("self", "qemu\0unix:/run/vf/vms/vm1/qmp.sock\0"s);
  EXPECT_EQ(FindQemuProcesses("/run/vf/vms/vm1/qmp.sock", proc.path()),
            (std::vector<pid_t>{42, 310}));
  EXPECT_TRUE(FindQemuProcesses("/run/vf/vms/vm3/qmp.sock", proc.path()).empty());
  EXPECT_TRUE(FindQemuProcesses("/x", proc.Join("nope")).empty());

  testing::TempDir run;
  const std::string socket = run.Join("qmp.sock");
  const pid_t child = fork();
  if (child == 0) {
    // sh stays (no exec of its last command after ";"), its argv naming the socket.
    setpgid(0, 0);  // its sleep goes with it: the test kills the group at the end
    execl("/bin/sh", "sh", "-c", "sleep 30; true", ("unix:" + socket + ",server=on").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(child, 0);
  EXPECT_TRUE(testing::WaitFor(
      [&] { return FindQemuProcesses(socket) == std::vector<pid_t>{child}; }, 5000));
  RunRecord stray;
  stray.pid = child;
  stray.qmp_socket = socket;
  EXPECT_TRUE(KillRecordedQemu(stray, milliseconds(5000)).ok());
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  kill(-child, SIGKILL);  // the sleep
}

TEST(RunRecordTest, AVhostUserNicKeepsItsSocket) {
  testing::TempDir dir;
  RunRecord r = Sample(dir.path());
  r.nics[1].vhost_user_socket = "/run/vfabric/vhost-user/vm1-eth1.sock";
  ASSERT_TRUE(WriteRunRecord(dir.path(), r).ok());
  auto read = ReadRunRecord(dir.path());
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status().message();
  EXPECT_EQ((**read).nics[1].vhost_user_socket, "/run/vfabric/vhost-user/vm1-eth1.sock");
  EXPECT_EQ((**read).nics[0].vhost_user_socket, "") << "a tap NIC";
  // Records from before vhost-user NICs (no key) are tap NICs; a bad value is refused.
  nlohmann::json j = nlohmann::json::parse(RunRecordToJson(r));
  EXPECT_TRUE(j["nics"][0]["vhost_user_socket"].is_null());
  j["nics"][0].erase("vhost_user_socket");
  EXPECT_TRUE(ParseRunRecord(j.dump()).ok());
  j["nics"][1]["vhost_user_socket"] = "relative.sock";
  auto bad = ParseRunRecord(j.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "guest.json: nics[1]: \"vhost_user_socket\": want an absolute path or null");
}

}  // namespace
}  // namespace vfabric::vmm
