// The supervisor against fake_qemu.py (a Python stand-in that speaks QMP):
// start, state, descriptors handed to the child, restart policy, stop with
// system_powerdown and with the kill after the timeout, hot-plug calls.
#include "vfabric/vmm/guest.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "vfabric/testing/support.h"

namespace vfabric::vmm {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

// Sets an environment variable for the test's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

// A pipe standing in for a tap: any descriptor will do for the fake.
GuestNic PipeNic(const std::string& id, const char* mac, UniqueFd* other_end = nullptr) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  GuestNic nic;
  nic.id = id;
  nic.network = "lab";
  nic.port = "vm1-" + id;
  nic.mac = *MacAddress::Parse(mac);
  nic.tap.Reset(fds[0]);
  if (other_end != nullptr) {
    other_end->Reset(fds[1]);
  } else {
    ::close(fds[1]);
  }
  return nic;
}

std::string Inode(int fd) {
  char link[64];
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof(link) - 1);
  return n > 0 ? std::string(link, static_cast<size_t>(n)) : "";
}

class GuestTest : public ::testing::Test {
 protected:
  topology::VmConfig Vm(const std::string& restart = "no") {
    topology::VmConfig vm;
    vm.name = "vm1";
    vm.accel = "tcg";
    vm.kernel = Kernel();  // the fake does not read it
    vm.restart = restart;
    return vm;
  }
  GuestOptions Options() {
    GuestOptions o;
    o.qemu_binary = testing::SourceDir() + "/tests/unit/vmm/fake_qemu.py";
    o.run_dir = dir_.Join("vm1");
    o.backoff.initial = milliseconds(100);
    o.backoff.max = milliseconds(400);
    o.stop_timeout = milliseconds(2000);
    o.vhost = false;
    return o;
  }
  std::unique_ptr<Guest> Make(topology::VmConfig vm, std::vector<GuestNic> nics,
                              GuestOptions options) {
    auto guest = Guest::Create(std::move(vm), std::move(nics), std::move(options));
    EXPECT_TRUE(guest.ok()) << guest.status().message();
    return guest.ok() ? std::move(*guest) : nullptr;
  }
  std::string Log() { return testing::ReadFile(dir_.Join("vm1/console.log")); }
  std::string Kernel() {
    const std::string path = dir_.Join("vmlinuz");
    testing::WriteFile(path, "not a kernel");
    return path;
  }

  TempDir dir_;
};

TEST_F(GuestTest, StartsWithTheTapsAtFd3AndStopsWithPowerdown) {
  std::vector<GuestNic> nics;
  nics.push_back(PipeNic("nic0", "52:54:00:00:00:01"));
  nics.push_back(PipeNic("nic1", "52:54:00:00:00:02"));
  const std::string tap0 = Inode(nics[0].tap.get());
  const std::string tap1 = Inode(nics[1].tap.get());
  // A descriptor of ours without CLOEXEC must not reach QEMU.
  UniqueFd leak(::fcntl(0, F_DUPFD, 77));
  ASSERT_EQ(leak.get(), 77);

  auto guest = Make(Vm(), std::move(nics), Options());
  ASSERT_TRUE(guest);
  EXPECT_EQ(guest->state(), GuestState::kStopped);
  ASSERT_TRUE(guest->Start().ok());
  EXPECT_EQ(guest->state(), GuestState::kStarting);
  EXPECT_GE(guest->pollfd(), 0);
  Status running = guest->WaitForState(GuestState::kRunning, milliseconds(10000));
  ASSERT_TRUE(running.ok()) << running.message() << "\n" << Log();
  GuestStatus s = guest->status();
  EXPECT_GT(s.pid, 0);
  ASSERT_TRUE(s.accel);
  EXPECT_EQ(s.accel->accel, Accel::kTcg);
  ASSERT_EQ(s.nics.size(), 2u);
  EXPECT_EQ(s.nics[1].mac.ToString(), "52:54:00:00:00:02");
  EXPECT_NE(guest->qmp(), nullptr);
  EXPECT_GE(guest->qmp_fd(), 0);

  std::string log = Log();
  EXPECT_NE(log.find("fd 3: " + tap0), std::string::npos) << log;
  EXPECT_NE(log.find("fd 4: " + tap1), std::string::npos) << log;
  EXPECT_EQ(log.find(" 77"), std::string::npos) << log;

  Status stopped = guest->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.message();
  EXPECT_EQ(guest->state(), GuestState::kStopped);
  EXPECT_EQ(guest->status().last_exit, "exited with status 0");
  EXPECT_EQ(guest->pollfd(), -1);
  EXPECT_NE(Log().find("fake-qemu: powerdown"), std::string::npos);
}

TEST_F(GuestTest, ExecFailureNamesTheGuestAndTheBinary) {
  GuestOptions o = Options();
  o.qemu_binary = "/nonexistent/qemu-system-x86_64";
  auto guest = Make(Vm(), {}, o);
  ASSERT_TRUE(guest);
  Status s = guest->Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "start vm1: exec /nonexistent/qemu-system-x86_64: No such file or directory");
  EXPECT_EQ(guest->state(), GuestState::kFailed);
  EXPECT_EQ(guest->status().error, s.message());
}

TEST_F(GuestTest, AMissingKernelIsAnErrorAtStart) {
  topology::VmConfig vm = Vm();
  vm.initrd = dir_.Join("no-initrd.img");
  auto guest = Make(vm, {}, Options());
  ASSERT_TRUE(guest);
  Status s = guest->Start();
  EXPECT_EQ(s.message(), "start vm1: initrd " + vm.initrd + ": No such file or directory");
  EXPECT_EQ(guest->state(), GuestState::kFailed);
}

TEST_F(GuestTest, OnFailureRestartsAfterABackoff) {
  ScopedEnv exit_after("FAKE_QEMU_EXIT_AFTER_MS", "400");
  auto guest = Make(Vm("on-failure"), {}, Options());
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  const pid_t first = guest->status().pid;
  ASSERT_TRUE(guest->WaitForState(GuestState::kRestartWait, milliseconds(5000)).ok()) << Log();
  EXPECT_EQ(guest->status().last_exit, "exited with status 1");
  EXPECT_EQ(guest->status().restarts, 1);
  ASSERT_TRUE(guest->NextDeadline());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  EXPECT_NE(guest->status().pid, first);
  ASSERT_TRUE(guest->Stop().ok());
}

TEST_F(GuestTest, OnFailureLeavesACleanExitStopped) {
  ScopedEnv exit_after("FAKE_QEMU_EXIT_AFTER_MS", "300");
  ScopedEnv exit_code("FAKE_QEMU_EXIT_CODE", "0");
  auto guest = Make(Vm("on-failure"), {}, Options());
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  ASSERT_TRUE(guest->WaitForState(GuestState::kStopped, milliseconds(5000)).ok()) << Log();
  EXPECT_EQ(guest->status().restarts, 0);
}

TEST_F(GuestTest, NoPolicyLeavesAFailureFailed) {
  ScopedEnv exit_after("FAKE_QEMU_EXIT_AFTER_MS", "300");
  auto guest = Make(Vm("no"), {}, Options());
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  Status s = guest->WaitForState(GuestState::kStopped, milliseconds(5000));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(guest->state(), GuestState::kFailed);
  EXPECT_NE(
      guest->status().error.find("qemu exited with status 1: fake-qemu: exiting with 1 (see "),
      std::string::npos)
      << guest->status().error;
}

TEST_F(GuestTest, RestartWaitsForTheInjectedClock) {
  ScopedEnv exit_after("FAKE_QEMU_EXIT_AFTER_MS", "200");
  // Real time plus an offset the test warps forward.
  auto offset = std::make_shared<std::chrono::steady_clock::duration>(0);
  GuestOptions o = Options();
  o.backoff.initial = std::chrono::seconds(30);
  o.backoff.max = std::chrono::seconds(30);
  o.now = [offset] { return std::chrono::steady_clock::now() + *offset; };
  auto guest = Make(Vm("always"), {}, o);
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  ASSERT_TRUE(guest->WaitForState(GuestState::kRestartWait, milliseconds(5000)).ok()) << Log();
  const auto due = *guest->NextDeadline();
  EXPECT_GT(due, o.now() + std::chrono::seconds(29));
  EXPECT_LE(due, o.now() + std::chrono::seconds(30));
  *offset += std::chrono::seconds(25);
  guest->Poll();
  EXPECT_EQ(guest->state(), GuestState::kRestartWait);
  *offset += std::chrono::seconds(5);
  guest->Poll();
  EXPECT_EQ(guest->state(), GuestState::kStarting);
  EXPECT_EQ(guest->status().restarts, 1);
  guest->RequestStop();
  ASSERT_TRUE(guest->WaitForState(GuestState::kStopped, milliseconds(5000)).ok());
}

TEST_F(GuestTest, StopKillsAGuestThatIgnoresPowerdown) {
  ScopedEnv ignore("FAKE_QEMU_IGNORE_POWERDOWN", "1");
  GuestOptions o = Options();
  o.stop_timeout = milliseconds(300);
  auto guest = Make(Vm("always"), {}, o);
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(guest->Stop().ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  EXPECT_EQ(guest->state(), GuestState::kStopped);
  EXPECT_EQ(guest->status().last_exit, "killed by signal 9 (Killed)");
  EXPECT_EQ(guest->status().restarts, 0);  // an asked-for stop is not restarted
}

TEST_F(GuestTest, QmpThatNeverComesFailsTheStart) {
  ScopedEnv no_qmp("FAKE_QEMU_NO_QMP", "1");
  GuestOptions o = Options();
  o.start_timeout = milliseconds(500);
  auto guest = Make(Vm(), {}, o);
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  Status s = guest->WaitForState(GuestState::kRunning, milliseconds(5000));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(guest->state(), GuestState::kFailed);
  EXPECT_NE(guest->status().error.find("start vm1: QMP not answering after 500 ms"),
            std::string::npos)
      << guest->status().error;
  EXPECT_EQ(guest->pollfd(), -1);  // killed and reaped
}

TEST_F(GuestTest, DestroyingTheGuestKillsAndReapsQemu) {
  pid_t pid;
  {
    auto guest = Make(Vm(), {}, Options());
    ASSERT_TRUE(guest);
    ASSERT_TRUE(guest->Start().ok());
    ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
    pid = guest->status().pid;
    ASSERT_GT(pid, 0);
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(GuestTest, AttachAndDetachANicThroughQmp) {
  auto guest = Make(Vm(), {}, Options());
  ASSERT_TRUE(guest);
  GuestNic early = PipeNic("nic1", "52:54:00:00:00:09");
  Status not_running = guest->AttachNic(std::move(early));
  EXPECT_EQ(not_running.message(), "attach nic1 to vm1: guest is stopped");

  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  EXPECT_EQ(guest->FreeNicId(), "nic0");
  GuestNic nic = PipeNic("nic1", "52:54:00:00:00:09");
  const std::string inode = Inode(nic.tap.get());
  Status attached = guest->AttachNic(std::move(nic));
  ASSERT_TRUE(attached.ok()) << attached.message() << "\n" << Log();
  EXPECT_EQ(guest->status().nics.size(), 1u);
  EXPECT_EQ(guest->FreeNicId(), "nic0");  // nic1 is taken, nic0 is not
  std::string log = Log();
  EXPECT_NE(log.find("getfd fd-nic1: " + inode), std::string::npos) << log;
  EXPECT_NE(log.find("netdev_add net-nic1 fd=fd-nic1 vhost=False"), std::string::npos) << log;
  EXPECT_NE(log.find("device_add virtio-net-pci nic1 netdev=net-nic1 mac=52:54:00:00:00:09"),
            std::string::npos)
      << log;

  Status twice = guest->AttachNic(PipeNic("nic1", "52:54:00:00:00:0a"));
  EXPECT_EQ(twice.message(), "attach nic1 to vm1: the guest already has a NIC nic1");

  Status detached = guest->DetachNic("nic1", milliseconds(2000));
  ASSERT_TRUE(detached.ok()) << detached.message();
  EXPECT_TRUE(guest->status().nics.empty());
  log = Log();
  EXPECT_NE(log.find("device_del nic1"), std::string::npos) << log;
  EXPECT_NE(log.find("netdev_del net-nic1"), std::string::npos) << log;
  EXPECT_EQ(guest->DetachNic("nic1").message(), "detach nic1 from vm1: no such NIC");
  ASSERT_TRUE(guest->Stop().ok());
}

TEST(GuestCreateTest, RejectsBadConfigurations) {
  TempDir dir;
  GuestOptions o;
  o.run_dir = dir.Join("x");
  topology::VmConfig vm;
  vm.name = "vm1";
  auto none = Guest::Create(vm, {}, o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "vm vm1: needs a kernel or a disk");

  vm.kernel = "/k";
  vm.restart = "sometimes";
  auto restart = Guest::Create(vm, {}, o);
  ASSERT_FALSE(restart.ok());
  EXPECT_EQ(restart.status().message(),
            "vm vm1: restart \"sometimes\": want no, on-failure or always");

  vm.restart = "no";
  vm.accel = "hvf";
  auto accel = Guest::Create(vm, {}, o);
  ASSERT_FALSE(accel.ok());
  EXPECT_EQ(accel.status().message(), "vm vm1: accel \"hvf\": want auto, kvm or tcg");

  vm.accel = "auto";
  std::vector<GuestNic> nics;
  nics.push_back(PipeNic("nic0", "52:54:00:00:00:01"));
  nics.push_back(PipeNic("nic0", "52:54:00:00:00:02"));
  auto dup = Guest::Create(vm, std::move(nics), o);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "vm vm1: NIC id \"nic0\" empty or used twice");

  o.run_dir = "/tmp/" + std::string(120, 'x');
  auto longdir = Guest::Create(vm, {}, o);
  ASSERT_FALSE(longdir.ok());
  EXPECT_NE(longdir.status().message().find("too long for a unix socket"), std::string::npos);
}

// A QEMU left running by one supervisor (LeaveRunning) is adopted by the
// next through guest.json: same pid, running, its own session; the record
// follows attach and detach; a kill -9 is seen on the pidfd and restarts it
// per policy, with its tap opened by open_tap.
TEST_F(GuestTest, ALeftRunningQemuIsAdoptedAndRestartedAfterAKill) {
  std::vector<GuestNic> nics;
  nics.push_back(PipeNic("nic0", "52:54:00:00:00:01"));
  auto first = Make(Vm("on-failure"), std::move(nics), Options());
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Start().ok());
  ASSERT_TRUE(first->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  const pid_t pid = first->status().pid;
  EXPECT_EQ(::getsid(pid), pid) << "QEMU runs in its own session";
  ASSERT_TRUE(first->AttachNic(PipeNic("nic1", "52:54:00:00:00:02")).ok());
  ASSERT_TRUE(first->DetachNic("nic0", milliseconds(2000)).ok());
  first->LeaveRunning();
  EXPECT_EQ(first->state(), GuestState::kStopped);
  first.reset();
  ASSERT_EQ(::kill(pid, 0), 0) << "LeaveRunning and the destructor leave QEMU running";

  auto record = ReadRunRecord(dir_.Join("vm1"));
  ASSERT_TRUE(record.ok()) << record.status().message();
  ASSERT_TRUE(record->has_value());
  const RunRecord& r = **record;
  EXPECT_EQ(r.pid, pid);
  EXPECT_EQ(r.qmp_socket, dir_.Join("vm1/qmp.sock"));
  EXPECT_EQ(r.accel, "tcg");
  EXPECT_EQ(r.config_hash, ConfigHash(MachineConfigOf(Vm())));
  ASSERT_EQ(r.nics.size(), 1u);
  EXPECT_EQ(r.nics[0].id, "nic1");
  EXPECT_TRUE(r.nics[0].attached);
  EXPECT_EQ(r.detached_ports, std::vector<std::string>{"vm1-nic0"});
  ASSERT_FALSE(r.argv.empty());
  EXPECT_NE(std::find(r.argv.begin(), r.argv.end(), "-pidfile"), r.argv.end());

  int opened = 0;
  GuestOptions options = Options();
  options.open_tap = [&opened](const GuestNic& nic) -> Result<UniqueFd> {
    ++opened;
    EXPECT_EQ(nic.port, "vm1-nic1");
    return PipeNic(nic.id, "52:54:00:00:00:02").tap;
  };
  auto adopted = Guest::Adopt(Vm("on-failure"), r, options);
  ASSERT_TRUE(adopted.ok()) << adopted.status().message();
  Guest& guest = **adopted;
  EXPECT_EQ(guest.state(), GuestState::kRunning);
  EXPECT_TRUE(guest.adopted());
  GuestStatus s = guest.status();
  EXPECT_EQ(s.pid, pid);
  EXPECT_TRUE(s.adopted);
  ASSERT_EQ(s.nics.size(), 1u);
  EXPECT_EQ(s.nics[0].id, "nic1");
  EXPECT_GE(guest.pollfd(), 0);
  EXPECT_GE(guest.qmp_fd(), 0);
  EXPECT_EQ(opened, 0);

  // kill -9: not our child, so no wait status; the pidfd tells, and
  // "on-failure" restarts it with its tap opened again.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(guest.WaitForState(GuestState::kRestartWait, milliseconds(5000)).ok()) << Log();
  EXPECT_EQ(guest.status().last_exit, "gone (adopted qemu: exit status unknown)");
  EXPECT_FALSE(ReadRunRecord(dir_.Join("vm1"))->has_value());
  ASSERT_TRUE(guest.WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  EXPECT_EQ(opened, 1);
  EXPECT_NE(guest.status().pid, pid);
  EXPECT_FALSE(guest.adopted());
  EXPECT_EQ(guest.status().restarts, 1);
  EXPECT_EQ(ReadRunRecord(dir_.Join("vm1"))->value().pid, guest.status().pid);
  ASSERT_TRUE(guest.Stop().ok());
  EXPECT_FALSE(ReadRunRecord(dir_.Join("vm1"))->has_value());
  ::waitpid(pid, nullptr, WNOHANG);  // the first QEMU is still this test's child
}

TEST_F(GuestTest, AnAdoptedQemuStopsWithPowerdownAndItsRecordGoes) {
  auto first = Make(Vm(), {}, Options());
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Start().ok());
  ASSERT_TRUE(first->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  const pid_t pid = first->status().pid;
  first->LeaveRunning();
  auto record = ReadRunRecord(dir_.Join("vm1"));
  ASSERT_TRUE(record.ok() && record->has_value());
  auto adopted = Guest::Adopt(Vm(), **record, Options());
  ASSERT_TRUE(adopted.ok()) << adopted.status().message();
  ASSERT_TRUE((*adopted)->Stop().ok()) << Log();
  EXPECT_EQ((*adopted)->state(), GuestState::kStopped);
  EXPECT_NE(Log().find("fake-qemu: powerdown"), std::string::npos);
  EXPECT_FALSE(ReadRunRecord(dir_.Join("vm1"))->has_value());
  EXPECT_NE(::access(dir_.Join("vm1/qemu.pid").c_str(), F_OK), 0);
  ::waitpid(pid, nullptr, 0);
}

// A recycled pid (another program) or a record of another guest is not adopted.
TEST_F(GuestTest, AdoptRefusesARecycledPid) {
  testing::ScopedProcess other({"sleep", "30"});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::ReadFile("/proc/" + std::to_string(other.pid()) + "/cmdline")
                   .rfind("sleep", 0) == 0;
      },
      5000));
  RunRecord r;
  r.name = "vm1";
  r.pid = other.pid();
  r.qmp_socket = dir_.Join("vm1/qmp.sock");
  r.accel = "tcg";
  auto adopted = Guest::Adopt(Vm(), r, Options());
  ASSERT_FALSE(adopted.ok());
  EXPECT_EQ(adopted.status().message(),
            "adopt vm vm1: pid " + std::to_string(other.pid()) +
                " is not this guest's QEMU (its command line does not name " + r.qmp_socket +
                "): sleep 30");
  EXPECT_TRUE(other.running());
  r.name = "vm2";
  EXPECT_EQ(Guest::Adopt(Vm(), r, Options()).status().message(),
            "adopt vm vm1: the record is of vm \"vm2\"");
}

TEST(AccelTest, TcgNeedsNoProbeAndUnknownIsAnError) {
  auto tcg = ChooseAccelerator("tcg", {});
  ASSERT_TRUE(tcg.ok());
  EXPECT_EQ(tcg->accel, Accel::kTcg);
  auto bad = ChooseAccelerator("xen", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "accel \"xen\": want auto, kvm or tcg");
}

// A shell script standing in for QEMU during the KVM probe.
std::string FakeProbeQemu(const TempDir& dir, const std::string& body) {
  const std::string path = dir.Join("qemu");
  testing::WriteFile(path, "#!/bin/sh\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

class AccelProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) GTEST_SKIP() << "no usable /dev/kvm here: the probe stops before booting";
    ::close(fd);
    kernel_ = dir_.Join("bzImage");
    testing::WriteFile(kernel_, "x");
  }
  AccelChoice Probe(const std::string& body, milliseconds timeout = milliseconds(2500)) {
    AccelProbeOptions o;
    o.qemu_binary = FakeProbeQemu(dir_, body);
    o.kernel = kernel_;
    o.timeout = timeout;
    return ProbeKvm(o);
  }
  TempDir dir_;
  std::string kernel_;
};

TEST_F(AccelProbeTest, AKernelLineMeansKvmWorks) {
  AccelChoice c = Probe(
      "echo 'Probing EDD (edd=off to disable)... ok'; sleep 0.1; "
      "echo '[    0.000000] Linux version 6.1.0-56-cloud-amd64'; sleep 30");
  EXPECT_EQ(c.accel, Accel::kKvm) << c.reason;
  EXPECT_EQ(c.reason.rfind("kvm: a guest kernel booted under KVM in ", 0), 0u) << c.reason;
}

TEST_F(AccelProbeTest, AnEmulationFailureMeansTcg) {
  AccelChoice c =
      Probe("echo 'KVM internal error. Suberror: 1' >&2; echo 'emulation failure' >&2; sleep 30");
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_EQ(c.reason.rfind("tcg: kvm probe: qemu: KVM internal error. Suberror: 1 (after ", 0), 0u)
      << c.reason;
}

TEST_F(AccelProbeTest, SilenceMeansTcgAfterTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  AccelChoice c =
      Probe("echo 'Probing EDD (edd=off to disable)... ok'; sleep 30", milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));  // the fake was killed
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_EQ(c.reason,
            "tcg: kvm probe: no guest kernel output in 0.3 s (KVM does not run guests here)");
}

TEST_F(AccelProbeTest, AnAbortedQemuMeansTcgWithItsLastLine) {
  AccelChoice c = Probe("echo 'qemu: error: failed to set MSR 0x10a to 0x69' >&2; kill -ABRT $$");
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_NE(c.reason.find("qemu killed by signal 6 (Aborted) after "), std::string::npos)
      << c.reason;
  EXPECT_NE(c.reason.find(": qemu: error: failed to set MSR 0x10a to 0x69"), std::string::npos)
      << c.reason;
}

TEST_F(AccelProbeTest, TheResultIsRememberedAndKvmOnlyWhenItWorks) {
  ResetAcceleratorCache();
  AccelProbeOptions o;
  o.qemu_binary = FakeProbeQemu(dir_, "sleep 30");
  o.kernel = kernel_;
  o.timeout = milliseconds(200);
  auto first = ChooseAccelerator("auto", o);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->accel, Accel::kTcg);
  // Now the fake would boot, but the answer is remembered.
  FakeProbeQemu(dir_, "echo 'Linux version 6.1'; sleep 30");
  const auto start = std::chrono::steady_clock::now();
  auto again = ChooseAccelerator("auto", o);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(100));
  EXPECT_EQ(again->reason, first->reason);
  auto kvm = ChooseAccelerator("kvm", o);
  ASSERT_FALSE(kvm.ok());
  EXPECT_EQ(kvm.status().message(),
            "accel kvm: kvm probe: no guest kernel output in 0.2 s (KVM does not run guests here)");
  ResetAcceleratorCache();
  auto fresh = ChooseAccelerator("kvm", o);
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_EQ(fresh->accel, Accel::kKvm);
  ResetAcceleratorCache();
}

TEST(AccelTest, AProbeWhoseQemuCannotStartFallsBackToTcg) {
  AccelProbeOptions o;
  o.qemu_binary = "/nonexistent/qemu";
  o.kernel = "/proc/self/exe";  // readable; never booted
  AccelChoice c = ProbeKvm(o);
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_EQ(c.reason.rfind("tcg: ", 0), 0u) << c.reason;
}

// A vhost-user NIC: no tap; QEMU gets shared RAM and a vhost-user netdev
// whose chardev connects to the socket; hot-plug and unplug through QMP.
GuestNic VhostUserNic(const std::string& id, const char* mac, const std::string& socket) {
  GuestNic nic;
  nic.id = id;
  nic.network = "us";
  nic.port = "vm1-" + id;
  nic.mac = *MacAddress::Parse(mac);
  nic.vhost_user_socket = socket;
  return nic;
}

TEST_F(GuestTest, AVhostUserNicAtStartSharesTheMemoryAndConnectsToTheSocket) {
  std::vector<GuestNic> nics;
  nics.push_back(PipeNic("nic0", "52:54:00:00:00:01"));
  nics.push_back(VhostUserNic("nic1", "52:54:00:00:00:02", "/run/vu/vm1-nic1.sock"));
  auto guest = Make(Vm(), std::move(nics), Options());
  ASSERT_TRUE(guest);
  EXPECT_TRUE(guest->shared_memory());
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  const std::string log = Log();
  EXPECT_NE(log.find("memory: memory-backend-memfd,id=vf-mem,size=256M,share=on"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("vhost-user net-nic1: chardev chr-nic1"), std::string::npos) << log;
  EXPECT_NE(log.find("fd 3: "), std::string::npos) << "the tap is still at fd 3\n" << log;
  EXPECT_EQ(log.find("fd 4: "), std::string::npos) << "no descriptor for vhost-user\n" << log;
  const GuestStatus status = guest->status();
  ASSERT_EQ(status.nics.size(), 2u);
  EXPECT_EQ(status.nics[1].vhost_user_socket, "/run/vu/vm1-nic1.sock");
  EXPECT_EQ(status.nics[0].vhost_user_socket, "");
  auto record = ReadRunRecord(dir_.Join("vm1"));
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((**record).nics[1].vhost_user_socket, "/run/vu/vm1-nic1.sock");
  ASSERT_TRUE(guest->Stop().ok());
}

TEST_F(GuestTest, AttachAndDetachAVhostUserNicThroughQmp) {
  GuestOptions options = Options();
  options.shared_memory = true;
  auto guest = Make(Vm(), {}, options);
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  Status attached =
      guest->AttachNic(VhostUserNic("nic1", "52:54:00:00:00:09", "/run/vu/vm1-eth1.sock"));
  ASSERT_TRUE(attached.ok()) << attached.message() << "\n" << Log();
  std::string log = Log();
  const size_t chardev =
      log.find("chardev-add chr-nic1 socket path=/run/vu/vm1-eth1.sock server=False reconnect=1");
  const size_t netdev = log.find("netdev_add net-nic1 vhost-user chardev=chr-nic1");
  const size_t device =
      log.find("device_add virtio-net-pci nic1 netdev=net-nic1 mac=52:54:00:00:00:09 vectors=0");
  ASSERT_NE(chardev, std::string::npos) << log;
  ASSERT_NE(netdev, std::string::npos) << log;
  ASSERT_NE(device, std::string::npos) << log;
  EXPECT_LT(chardev, netdev);
  EXPECT_LT(netdev, device);
  ASSERT_EQ(guest->status().nics.size(), 1u);
  auto record = ReadRunRecord(dir_.Join("vm1"));
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((**record).nics[0].vhost_user_socket, "/run/vu/vm1-eth1.sock");
  EXPECT_TRUE((**record).nics[0].attached);

  Status detached = guest->DetachNic("nic1", milliseconds(2000));
  ASSERT_TRUE(detached.ok()) << detached.message();
  log = Log();
  const size_t del = log.find("device_del nic1");
  const size_t netdev_del = log.find("netdev_del net-nic1");
  ASSERT_NE(del, std::string::npos) << log;
  ASSERT_NE(netdev_del, std::string::npos) << log;
  EXPECT_LT(del, netdev_del);
  // The netdev took its chardev with it (as QEMU's does): nothing more to
  // remove, and the same NIC id can be attached again.
  EXPECT_EQ(log.find("chardev-remove"), std::string::npos) << log;
  EXPECT_TRUE(guest->status().nics.empty());
  Status again =
      guest->AttachNic(VhostUserNic("nic1", "52:54:00:00:00:09", "/run/vu/vm1-eth1.sock"));
  EXPECT_TRUE(again.ok()) << again.message() << "\n" << Log();
  ASSERT_TRUE(guest->Stop().ok());
}

TEST_F(GuestTest, AFailedVhostUserHotPlugIsUndoneInReverse) {
  ScopedEnv fail("FAKE_QEMU_FAIL", "device_add");
  GuestOptions options = Options();
  options.shared_memory = true;
  auto guest = Make(Vm(), {}, options);
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  Status attached =
      guest->AttachNic(VhostUserNic("nic1", "52:54:00:00:00:09", "/run/vu/vm1-eth1.sock"));
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.message().find("attach nic1 to vm1: "), std::string::npos)
      << attached.message();
  EXPECT_NE(attached.message().find("device_add failed"), std::string::npos) << attached.message();
  const std::string log = Log();
  // Undone: the netdev (and with it its chardev; no chardev-remove after it).
  EXPECT_NE(log.find("netdev_del net-nic1"), std::string::npos) << log;
  EXPECT_EQ(log.find("chardev-remove"), std::string::npos) << log;
  EXPECT_TRUE(guest->status().nics.empty());
  // Nothing left behind: the same ids can be added again (failing at
  // device_add again, not at a duplicate chardev).
  Status again =
      guest->AttachNic(VhostUserNic("nic1", "52:54:00:00:00:09", "/run/vu/vm1-eth1.sock"));
  EXPECT_NE(again.message().find("device_add failed"), std::string::npos) << again.message();
  ASSERT_TRUE(guest->Stop().ok());
}

TEST_F(GuestTest, AFailedVhostUserNetdevRemovesTheChardevAgain) {
  ScopedEnv fail("FAKE_QEMU_FAIL", "netdev_add");
  GuestOptions options = Options();
  options.shared_memory = true;
  auto guest = Make(Vm(), {}, options);
  ASSERT_TRUE(guest);
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  Status attached =
      guest->AttachNic(VhostUserNic("nic1", "52:54:00:00:00:09", "/run/vu/vm1-eth1.sock"));
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.message().find("netdev_add failed"), std::string::npos) << attached.message();
  const std::string log = Log();
  EXPECT_NE(log.find("chardev-remove chr-nic1"), std::string::npos) << log;
  EXPECT_EQ(log.find("device_add"), std::string::npos) << log;
  EXPECT_TRUE(guest->status().nics.empty());
  ASSERT_TRUE(guest->Stop().ok());
}

TEST_F(GuestTest, AVhostUserNicNeedsMemorySharedFromTheStart) {
  auto guest = Make(Vm(), {}, Options());
  ASSERT_TRUE(guest);
  EXPECT_FALSE(guest->shared_memory());
  ASSERT_TRUE(guest->Start().ok());
  ASSERT_TRUE(guest->WaitForState(GuestState::kRunning, milliseconds(10000)).ok()) << Log();
  Status attached =
      guest->AttachNic(VhostUserNic("nic1", "52:54:00:00:00:09", "/run/vu/vm1-eth1.sock"));
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.message().find("needs the guest's memory shared"), std::string::npos)
      << attached.message();
  EXPECT_EQ(Log().find("chardev-add"), std::string::npos) << "nothing was sent";
  EXPECT_EQ(Log().find("memory-backend"), std::string::npos);
  ASSERT_TRUE(guest->Stop().ok());
}

}  // namespace
}  // namespace vfabric::vmm
