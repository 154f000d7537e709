// netd running the topology's guests: two QEMU guests on a kernel network
// that lists no ports of its own ping each other; a NIC hot-attached with
// netctl reaches a host on another network and, once detached, no longer does.
// Guests outlive netd, so TearDown ends the test's QEMUs (guest_fixture.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

std::string Base64Url(const std::string& text) {
  auto r = testing::Run({"sh", "-c", "base64 -w0 | tr '+/' '-_' | tr -d '='"}, text);
  return r.out;
}

class NetdGuestsTest : public testing::GuestFixture {
 protected:
  json Vm(const std::string& name, const std::string& cmdline) {
    return GuestVm(name, cmdline, json::array({{{"network", "guests"}}}));
  }

  // Through netctl: its vm console-log is part of what this test covers.
  std::string ConsoleLog(const std::string& vm) {
    auto r = Netctl({"vm", "console-log", vm});
    return r.out;
  }
};

TEST_F(NetdGuestsTest, GuestsOnANetworkWithNoPortsOfItsOwnPing) {
  const std::string ping = "ping -c 3 -W 2 10.88.0.1";
  json topology = {
      {"networks",
       json::array(
           {{{"name", "guests"}, {"bridge", "vfb-guests"}},
            {{"name", "side"},
             {"bridge", "vfb-side"},
             {"ports",
              json::array({{{"name", "side-up0"}, {"kind", "veth"}, {"peer", "side-up0-p"}}})}}})},
      {"vms",
       json::array({Vm("vm1", "vf.ip=10.88.0.1/24"),
                    Vm("vm2", "vf.ip=10.88.0.2/24 vf.run=" + Base64Url("sleep 1; " + ping))})}};
  const std::string config = dir_.Join("guests.json");
  testing::WriteFile(config, topology.dump(2));
  Start(config, {"--run-dir", dir_.Join("run")});

  // netd made each NIC's tap a port of "guests", and started both guests.
  EXPECT_EQ(testing::Link("vm1-eth0")["master"], "vfb-guests");
  EXPECT_EQ(testing::Link("vm2-eth0")["master"], "vfb-guests");
  ASSERT_TRUE(
      WaitFor([&] { return ConsoleLog("vm2").find("VF-RESULT") != std::string::npos; }, 90000))
      << ConsoleLog("vm2") << Log();
  EXPECT_THAT(ConsoleLog("vm2"), HasSubstr("VF-RESULT 0"));
  EXPECT_THAT(ConsoleLog("vm2"), HasSubstr("3 packets transmitted, 3 packets received"));

  json vms = Ok(testing::Request("vm.list"))["vms"];
  ASSERT_EQ(vms.size(), 2u);
  for (const json& vm : vms) {
    EXPECT_EQ(vm["state"], "running") << vm.dump();
    std::cout << vm["name"].get<std::string>() << " accelerator: " << vm["accel"] << " ("
              << vm["accel_reason"].get<std::string>() << ")\n";
  }
  auto table = Netctl({"vm", "list"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("nic0:guests/vm1-eth0"));

  // Hot-attach vm1 to "side", whose veth peer is a host address here.
  ASSERT_EQ(Cmd({"ip", "addr", "add", "10.89.0.254/24", "dev", "side-up0-p"}).exit_code, 0);
  ASSERT_TRUE(
      WaitFor([&] { return ConsoleLog("vm1").find("VF-READY") != std::string::npos; }, 60000));
  auto attach = Netctl({"attach", "vm1", "side", "--mac", "52:54:00:89:00:01"});
  ASSERT_EQ(attach.exit_code, 0) << attach.err << Log();
  EXPECT_THAT(attach.out, HasSubstr("port vm1-eth1"));
  EXPECT_EQ(testing::Link("vm1-eth1")["master"], "vfb-side");
  // The hot-plugged NIC appears in the guest a moment after device_add.
  ASSERT_NE(RunOnConsole("vm1",
                         "for i in $(seq 100); do [ -e /sys/class/net/eth1 ] && break; sleep 0.1;"
                         " done; ip link set eth1 up && ip addr add 10.89.0.1/24 dev eth1",
                         30000),
            -1)
      << ConsoleLog("vm1");
  EXPECT_TRUE(WaitFor(
      [&] {
        return Cmd({"busybox", "ping", "-c", "1", "-W", "1", "10.89.0.1"}).exit_code == 0;
      },
      15000))
      << ConsoleLog("vm1");

  auto detach = Netctl({"detach", "vm1", "vm1-eth1"});
  ASSERT_EQ(detach.exit_code, 0) << detach.err << Log();
  EXPECT_FALSE(testing::LinkExists("vm1-eth1"));
  EXPECT_NE(Cmd({"busybox", "ping", "-c", "2", "-W", "1", "10.89.0.1"}).exit_code, 0);

  // netctl vm stop powers the guest down.
  ASSERT_EQ(Netctl({"vm", "stop", "vm2"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        const json list = Ok(testing::Request("vm.list"));
        for (const json& vm : list["vms"])
          if (vm["name"] == "vm2") return vm["state"] == "stopped";
        return false;
      },
      30000))
      << Ok(testing::Request("vm.list")).dump(2) << ConsoleLog("vm2") << Log();
}

}  // namespace
}  // namespace vfabric
