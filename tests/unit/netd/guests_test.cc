// GuestManager and a netd that died between starting a guest's QEMU and
// recording it (netd/DESIGN-crash.md): the next netd finds that QEMU by its
// command line and kills it before starting the guest, so two QEMUs never
// share a guest's taps.
#include "vfabric/netd/guests.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>

#include "fake_port_backends.h"
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

// Says how a guest plugs into each port as the test set it, opens no switch
// port, and hands out an eventfd for a "tap" (a descriptor is all that
// GuestManager and vmm::Guest take before QEMU starts): no root, no tap.
class GuestPlugBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "guest plug"; }
  bool NeedsKernelLink() const override { return false; }
  std::string Identity(const topology::PortConfig& port, const LinkInfo*) const override {
    return "fake " + port.name;
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    return Status::Error("port " + port.name + ": no switch here");
  }
  Result<vmm::NicPlug> GuestPlug(const topology::PortConfig& port) const override {
    auto it = plugs.find(port.name);
    if (it == plugs.end()) return Status::Error("port " + port.name + ": refused by the test");
    return it->second;
  }
  Result<UniqueFd> OpenGuestTap(const topology::PortConfig& port) const override {
    taps_opened.push_back(port.name);
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
    if (!fd) return Status::FromErrno("eventfd", errno);
    return fd;
  }

  std::map<std::string, vmm::NicPlug> plugs;
  mutable std::vector<std::string> taps_opened;
};

vmm::NicPlug TapPlug(const std::string& tap) {
  vmm::NicPlug plug;
  plug.kind = vmm::NicPlug::Kind::kTap;
  plug.tap = tap;
  return plug;
}

vmm::NicPlug VhostUserPlug(const std::string& socket) {
  vmm::NicPlug plug;
  plug.kind = vmm::NicPlug::Kind::kVhostUser;
  plug.socket = socket;
  return plug;
}

topology::NicConfig Nic(const std::string& network, const std::string& port,
                        topology::NicBackend backend = topology::NicBackend::kTap) {
  topology::NicConfig nic;
  nic.network = network;
  nic.port = port;
  nic.backend = backend;
  return nic;
}

// The NICs of netd's guests plug in as the port backends say (issue 15): a
// userspace network's ports are asked of the backends the switches use, a
// kernel network's of the kernel ones; a tap's descriptor comes from the
// backend, a vhost-user NIC takes the socket the backend names (not the one
// the topology declares), and a port the backend refuses keeps the guest
// from being made, with the backend's reason.
TEST(GuestManagerTest, AGuestsNicsPlugInAsTheirPortsBackendsSay) {
  testing::TempDir run;
  GuestPlugBackend switch_side, bridge_side;
  FakePortBackends userspace(&switch_side), kernel(&bridge_side);
  switch_side.plugs["vm1-eth0"] = TapPlug("vm1-eth0");
  switch_side.plugs["vm1-eth1"] = VhostUserPlug(run.Join("backend-says.sock"));
  bridge_side.plugs["vm1-eth2"] = TapPlug("vm1-eth2");

  topology::Topology desired;
  topology::NetworkConfig us;
  us.name = "us";
  us.datapath = topology::Datapath::kUserspace;
  topology::PortConfig vu;
  vu.name = "vm1-eth1";
  vu.kind = topology::PortKind::kVhostUser;
  vu.socket = run.Join("declared.sock");
  vu.vhost_user_mode = topology::VhostUserMode::kServer;
  us.ports.push_back(vu);
  desired.networks.push_back(us);
  topology::NetworkConfig lab;
  lab.name = "lab";
  lab.datapath = topology::Datapath::kKernel;
  lab.bridge = "vfb-lab";
  desired.networks.push_back(lab);
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.kernel = run.Join("no-such-kernel");  // made, then its start fails
  vm.nics = {Nic("us", "vm1-eth0"), Nic("us", "vm1-eth1", topology::NicBackend::kVhostUser),
             Nic("lab", "vm1-eth2")};
  desired.vms.push_back(vm);
  topology::VmConfig refused;
  refused.name = "vm2";
  refused.kernel = vm.kernel;
  refused.nics = {Nic("us", "vm2-eth0")};
  desired.vms.push_back(refused);

  GuestManager guests(run.path(), {&userspace, &kernel});
  const std::vector<std::string> errors = guests.Sync(desired);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("start vm1"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[1], "vm vm2: port vm2-eth0: refused by the test");

  ASSERT_TRUE(guests.Has("vm1"));
  EXPECT_FALSE(guests.Has("vm2"));
  const std::vector<vmm::GuestNicInfo> nics = guests.Nics("vm1");
  ASSERT_EQ(nics.size(), 3u);
  EXPECT_EQ(nics[0].port, "vm1-eth0");
  EXPECT_EQ(nics[0].vhost_user_socket, "") << "a tap";
  EXPECT_EQ(nics[1].port, "vm1-eth1");
  EXPECT_EQ(nics[1].vhost_user_socket, run.Join("backend-says.sock"));
  EXPECT_EQ(nics[2].port, "vm1-eth2");
  EXPECT_EQ(nics[2].vhost_user_socket, "");
  EXPECT_EQ(switch_side.taps_opened, std::vector<std::string>{"vm1-eth0"});
  EXPECT_EQ(bridge_side.taps_opened, std::vector<std::string>{"vm1-eth2"});
  using Asked = std::vector<std::pair<std::string, bool>>;
  EXPECT_EQ(userspace.asked, (Asked{{"vm1-eth0", true}, {"vm1-eth1", true}, {"vm2-eth0", true}}));
  EXPECT_EQ(kernel.asked, (Asked{{"vm1-eth2", true}}));
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
