// Guests netd runs with vhost-user NICs (a topology VM NIC with
// "backend": "vhost-user", and `netctl attach --backend vhost-user`): netd
// makes a server-mode vhost-user port for the NIC and starts QEMU (TCG here)
// with shared RAM and a vhost-user netdev connecting to it.
//   - vm1 has vhost-user NICs on two userspace networks, vm2 a tap NIC on the
//     first: they ping each other (a vhost-user guest to a tap guest);
//   - a vhost-user NIC hot-attached to vm2 on the second network (QMP
//     chardev-add, netdev_add vhost-user, device_add) reaches vm1 there, and
//     once detached no longer does.
// Cleanup, also after a failed assertion: guests outlive netd, so TearDown
// stops netd and kills every QEMU of the test (guest_fixture.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>

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

class VhostUserVmNicsTest : public testing::GuestFixture {
 protected:
  VhostUserVmNicsTest() : GuestFixture(/*needs_tun=*/true) {}

  void TearDown() override {
    consoles_.clear();
    GuestFixture::TearDown();
  }

  Console& Guest(const std::string& name) { return *consoles_.at(name); }

  json VhostUserState(const std::string& network, const std::string& port) {
    return Ok(testing::Request("port.show", {{"network", network}, {"port", port}}))["vhost_user"];
  }

  // Pings until one answer comes back, then `count` more that must all be
  // answered.
  void Ping(const std::string& from, const std::string& to, int count, int timeout_ms) {
    std::string out;
    const bool answered = testing::WaitFor(
        [&] { return Guest(from).Run("ping -c 1 -W 1 " + to, 5000, &out) == 0; }, timeout_ms);
    ASSERT_TRUE(answered) << from << " -> " << to << ": " << out << "\nnetd:\n" << Log();
    const std::string n = std::to_string(count);
    EXPECT_EQ(Guest(from).Run("ping -c " + n + " -i 0.2 -W 2 " + to, 30000, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr(n + " packets transmitted, " + n + " packets received")) << out;
  }

  std::map<std::string, std::unique_ptr<Console>> consoles_;
};

TEST_F(VhostUserVmNicsTest, VhostUserNicsAtStartAndHotAttachedCarryTraffic) {
  const auto t0 = steady_clock::now();
  auto nic = [](const std::string& network, const std::string& mac, bool vhost_user) {
    json out = {{"network", network}, {"mac", mac}};
    if (vhost_user) out["backend"] = "vhost-user";
    return out;
  };
  const json topology = {
      {"networks",
       {{{"name", "u"}, {"datapath", "userspace"}}, {{"name", "w"}, {"datapath", "userspace"}}}},
      {"vms",
       {GuestVm("vm1", "vf.ip=10.80.0.1/24 vf.ip1=10.81.0.1/24",
                {nic("u", "52:54:00:80:00:01", true), nic("w", "52:54:00:81:00:01", true)}),
        GuestVm("vm2", "vf.ip=10.80.0.2/24",
                json::array({nic("u", "52:54:00:80:00:02", false)}))}}};
  const std::string config = dir_.Join("topology.json");
  testing::WriteFile(config, topology.dump(2));
  Start(config);
  ASSERT_FALSE(HasFatalFailure());
  for (const std::string name : {"vm1", "vm2"})
    consoles_[name] =
        std::make_unique<Console>(VmFile(name, "console.sock"), VmFile(name, "console.log"));
  for (auto& [name, console] : consoles_)
    ASSERT_TRUE(console->WaitForLog("VF-READY ", 90000)) << name << " did not boot:\n"
                                                         << console->Log() << "\nnetd:\n"
                                                         << Log();
  std::cout << "guests ready " << ElapsedMs(t0) << " ms after the test started\n";

  // netd made a server-mode vhost-user port per vhost-user NIC, in its run
  // dir, and QEMU (shared RAM, vectors=0) is connected to it.
  const json vm1_eth0 = VhostUserState("u", "vm1-eth0");
  EXPECT_EQ(vm1_eth0["socket"], run_dir() + "/vhost-user/vm1-eth0.sock") << vm1_eth0.dump(2);
  EXPECT_EQ(vm1_eth0["mode"], "server");
  EXPECT_EQ(vm1_eth0["connected"], true) << vm1_eth0.dump(2);
  const std::string argv = testing::ReadFile(VmFile("vm1", "guest.json"));
  EXPECT_THAT(argv, HasSubstr("memory-backend-memfd,id=vf-mem,size=256M,share=on"));
  EXPECT_THAT(argv, HasSubstr("vectors=0"));
  const json vms = Ok(testing::Request("vm.list"))["vms"];
  for (const json& vm : vms) {
    if (vm["name"] != "vm1") continue;
    ASSERT_EQ(vm["nics"].size(), 2u) << vm.dump(2);
    EXPECT_EQ(vm["nics"][0]["backend"], "vhost-user") << vm.dump(2);
  }

  // A vhost-user guest and a tap guest on one switch.
  Ping("vm1", "10.80.0.2", 3, 30000);
  Ping("vm2", "10.80.0.1", 3, 10000);
  std::cout << "vm1 (vhost-user) <-> vm2 (tap): " << ElapsedMs(t0) << " ms\n";

  // Hot-attach a vhost-user NIC to vm2 on network w, where vm1 is.
  CommandResult attached =
      Netctl({"attach", "vm2", "w", "--backend", "vhost-user", "--mac", "52:54:00:81:00:02"});
  ASSERT_EQ(attached.exit_code, 0) << attached.err << attached.out << Log();
  EXPECT_THAT(attached.out, HasSubstr("attached NIC nic1 (port vm2-eth1"));
  EXPECT_EQ(VhostUserState("w", "vm2-eth1")["connected"], true) << Log();
  std::string out;
  ASSERT_EQ(Guest("vm2").Run("i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 100 ]; do"
                             " sleep 0.1; i=$((i+1)); done; ip addr add 10.81.0.2/24 dev eth1 &&"
                             " ip link set eth1 up",
                             20000, &out),
            0)
      << out;
  Ping("vm2", "10.81.0.1", 3, 30000);
  std::cout << "hot-attached vhost-user NIC pinged: " << ElapsedMs(t0) << " ms\n";

  // Detached: the port goes and vm1 is out of reach on w.
  CommandResult detached = Netctl({"detach", "vm2", "nic1"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err << Log();
  EXPECT_NE(Guest("vm2").Run("ping -c 2 -i 0.2 -W 1 10.81.0.1", 20000, &out), 0) << out;
  const json ports = Ok(testing::Request("port.list", {{"network", "w"}}))["ports"];
  for (const json& port : ports) EXPECT_NE(port["name"], "vm2-eth1") << ports.dump(2);
  // Still fine on u.
  Ping("vm1", "10.80.0.2", 2, 10000);
  std::cout << "test took " << ElapsedMs(t0) << " ms\n";
  RecordProperty("duration_ms", std::to_string(ElapsedMs(t0)));
}

}  // namespace
}  // namespace vfabric
