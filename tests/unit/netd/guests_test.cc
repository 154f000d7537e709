// GuestManager and a netd that died between starting a guest's QEMU and
// recording it (netd/DESIGN-crash.md): the next netd finds that QEMU by its
// command line and kills it before starting the guest, so two QEMUs never
// share a guest's taps.
#include "vfabric/netd/guests.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "vfabric/testing/support.h"
#include "vfabric/vmm/run_record.h"

namespace vfabric::netd {
namespace {

// A process whose command line names `qmp_socket` as QEMU's would.
pid_t FakeQemu(const std::string& qmp_socket) {
  const pid_t child = fork();
  if (child == 0) {
    setpgid(0, 0);  // its sleep goes with it: the test kills the group at the end
    execl("/bin/sh", "sh", "-c", "sleep 30; true", ("unix:" + qmp_socket + ",server=on").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return child;
}

bool KilledBySigkill(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST(GuestManagerTest, AnUnrecordedQemuOfAGuestIsKilledBeforeItStarts) {
  testing::TempDir run;
  ASSERT_EQ(::mkdir(run.Join("vm1").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(run.Join("gone").c_str(), 0755), 0);
  const pid_t stray = FakeQemu(run.Join("vm1") + "/qmp.sock");
  const pid_t orphan = FakeQemu(run.Join("gone") + "/qmp.sock");  // a guest no longer configured
  const pid_t other = FakeQemu(run.Join("vm2") + "/qmp.sock");    // not this netd's business
  ASSERT_TRUE(testing::WaitFor(
      [&] { return vmm::FindQemuProcesses(run.Join("vm1") + "/qmp.sock").size() == 1; }, 5000));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return vmm::FindQemuProcesses(run.Join("gone") + "/qmp.sock").size() == 1; }, 5000));
  {
    GuestManager guests(run.path());
    topology::Topology desired;
    topology::VmConfig vm;
    vm.name = "vm1";
    vm.kernel = run.Join("no-such-kernel");  // its start fails; the stray must go first
    desired.vms.push_back(vm);
    EXPECT_FALSE(guests.Sync(desired).empty());
  }
  EXPECT_TRUE(KilledBySigkill(stray));
  EXPECT_TRUE(KilledBySigkill(orphan));
  EXPECT_EQ(kill(other, 0), 0) << "another guest's process is left alone";
  for (pid_t group : {stray, orphan, other}) kill(-group, SIGKILL);  // with their sleeps
  waitpid(other, nullptr, 0);
}

// A running guest whose NIC changed backend (tap <-> vhost-user) while netd
// was down does not match: it is started again with the new NIC; the same
// backend matches, and a hot-attached vhost-user NIC is no difference.
TEST(GuestMismatchTest, ANicsBackendIsPartOfTheMatch) {
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.kernel = "/k";
  topology::NicConfig nic;
  nic.network = "us";
  nic.port = "vm1-eth0";
  nic.mac = *MacAddress::Parse("52:54:00:00:00:01");
  vm.nics.push_back(nic);
  vmm::RunRecord record;
  record.name = "vm1";
  record.config = vmm::MachineConfigOf(vm);
  record.config_hash = vmm::ConfigHash(record.config);
  vmm::RunRecordNic recorded;
  recorded.id = "nic0";
  recorded.network = "us";
  recorded.port = "vm1-eth0";
  recorded.mac = *nic.mac;
  record.nics.push_back(recorded);
  EXPECT_EQ(GuestMismatch(vm, record), "");

  vm.nics[0].backend = topology::NicBackend::kVhostUser;
  EXPECT_EQ(GuestMismatch(vm, record), "NIC vm1-eth0 backend tap -> vhost-user");
  record.nics[0].vhost_user_socket = "/run/vfabric/vhost-user/vm1-eth0.sock";
  EXPECT_EQ(GuestMismatch(vm, record), "");
  vm.nics[0].backend = topology::NicBackend::kTap;
  EXPECT_EQ(GuestMismatch(vm, record), "NIC vm1-eth0 backend vhost-user -> tap");

  vm.nics[0].backend = topology::NicBackend::kVhostUser;
  vmm::RunRecordNic attached = recorded;
  attached.id = "nic1";
  attached.port = "vm1-eth1";
  attached.attached = true;
  attached.vhost_user_socket = "/run/vfabric/vhost-user/vm1-eth1.sock";
  record.nics.push_back(attached);
  EXPECT_EQ(GuestMismatch(vm, record), "");
}

}  // namespace
}  // namespace vfabric::netd
