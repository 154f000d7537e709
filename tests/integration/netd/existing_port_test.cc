// "existing" ports whose link is not there, or is down, are that port's
// problem (issue 18, defects 1 and 6): the rest of the host converges, the
// port shows as waiting, and it is attached when its link appears.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Cmd;
using ::testing::HasSubstr;
using testing::Request;
using testing::WaitFor;

class ExistingPortTest : public testing::NetdFixture {
 protected:
  // A kernel network with one tap, and a userspace network with a veth and
  // an existing link "ex0" (made by the test, as libvirt makes vnetN).
  void WriteConfig(bool with_existing) {
    json us_ports = {{{"name", "exu-a"}, {"kind", "veth"}, {"peer", "exu-a-p"}}};
    if (with_existing) us_ports.push_back({{"name", "ex0"}, {"kind", "existing"}});
    json doc = {{"networks",
                 {{{"name", "k"}, {"bridge", "vfb-exk"}, {"ports", {{{"name", "exk-t0"}}}}},
                  {{"name", "us"}, {"datapath", "userspace"}, {"ports", us_ports}}}}};
    std::ofstream(config_) << doc.dump(2);
  }

  // "ex0", up: what libvirt makes for a guest's NIC (a veth stands in).
  bool MakeExistingLink() {
    return Cmd({"ip", "link", "add", "ex0", "type", "veth", "peer", "name", "ex0-p"}).exit_code ==
               0 &&
           Cmd({"ip", "link", "set", "ex0", "up"}).exit_code == 0;
  }

  json Network(const std::string& name) {
    return Ok(Request("network.show", {{"name", name}}))["network"];
  }

  size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::string config_ = dir_.Join("ex.json");
};

TEST_F(ExistingPortTest, AMissingExistingLinkWaitsAndTheRestConverges) {
  ASSERT_TRUE(MakeExistingLink());
  WriteConfig(true);
  Start(config_);
  ASSERT_TRUE(WaitFor([&] { return Network("us")["state"] == "ok"; }, 5000)) << Log();

  // The guest goes: its link is deleted.
  ASSERT_EQ(Cmd({"ip", "link", "del", "ex0"}).exit_code, 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        json us = Network("us");
        return us["waiting"].size() == 1 && us["pending"].empty() && us["state"] == "ok";
      },
      5000))
      << Network("us").dump() << "\n"
      << Log();
  json us = Network("us");
  EXPECT_EQ(us["waiting"][0]["port"], "ex0");
  json ports = Ok(Request("port.list", {{"network", "us"}}))["ports"];
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_THAT(ports[1].value("waiting", ""), HasSubstr("no link named ex0"));

  // Another network still gets repaired: a deleted tap comes back.
  ASSERT_EQ(Cmd({"ip", "link", "del", "exk-t0"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return testing::LinkExists("exk-t0"); }, 3000)) << Log();
  EXPECT_TRUE(WaitFor([&] { return Network("k")["state"] == "ok"; }, 3000)) << Log();

  // Quiet while it waits: passes (a resync, a reload) log no error for it.
  const size_t errors_before = Count(Log(), "error:");
  netd_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Count(Log(), "reloaded") >= 1; }, 5000)) << Log();
  EXPECT_EQ(Count(Log(), "error:"), errors_before) << Log();

  // It comes back: attached to the switch when its link appears.
  ASSERT_TRUE(MakeExistingLink());
  EXPECT_TRUE(WaitFor(
      [&] {
        json p = Ok(Request("port.list", {{"network", "us"}}))["ports"][1];
        return !p.contains("waiting") && p["switch_port"].is_number();
      },
      5000))
      << Ok(Request("port.list", {{"network", "us"}})).dump() << "\n"
      << Log();
  EXPECT_EQ(Network("us")["state"], "ok");
}

TEST_F(ExistingPortTest, AReloadAddingAnExistingPortWhoseLinkIsNotThereIsAccepted) {
  WriteConfig(false);
  Start(config_);
  WriteConfig(true);
  netd_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Network("us")["waiting"].size() == 1; }, 5000)) << Log();
  EXPECT_THAT(Log(), HasSubstr("reloaded:")) << Log();
  EXPECT_THAT(Log(), ::testing::Not(HasSubstr("reload: "))) << Log();
  EXPECT_EQ(Network("us")["ports"].size(), 2u);
}

TEST_F(ExistingPortTest, AnAdminDownExistingPortIsQuiet) {
  ASSERT_TRUE(MakeExistingLink());
  WriteConfig(true);
  Start(config_);
  ASSERT_TRUE(WaitFor([&] { return Network("us")["state"] == "ok"; }, 5000)) << Log();
  const size_t adds_before = Count(Log(), "port ex0 (");
  ASSERT_EQ(Cmd({"ip", "link", "set", "ex0", "down"}).exit_code, 0);
  // A second or so of events, repairs and a reload: the port is not reopened
  // again and again (it was, about 5 times a second).
  netd_->Signal(SIGHUP);
  usleep(1'500'000);
  EXPECT_LE(Count(Log(), "port ex0 ("), adds_before + 1) << Log();
  json ports = Ok(Request("port.list", {{"network", "us"}}))["ports"];
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[1]["admin_up"], false);
  // It stays down (the operator's), and comes back when brought up.
  ASSERT_EQ(Cmd({"ip", "link", "set", "ex0", "up"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return Ok(Request("port.list", {{"network", "us"}}))["ports"][1]["switch_port"].is_number();
      },
      5000))
      << Log();
  EXPECT_FALSE(testing::Link("ex0").empty());
}

// Issue 18: only links vfabric made or was told to attach are its to take
// off a bridge. An "existing" port dropped from the topology is released; a
// link libvirt (or anyone) put on the bridge stays there.
TEST_F(ExistingPortTest, ADroppedExistingPortIsReleasedAndAForeignOneStays) {
  ASSERT_TRUE(MakeExistingLink());
  ASSERT_EQ(Cmd({"ip", "tuntap", "add", "vnet-ex", "mode", "tap"}).exit_code, 0);
  auto write = [&](bool with_existing) {
    json ports = {{{"name", "exk-t0"}}};
    if (with_existing) ports.push_back({{"name", "ex0"}, {"kind", "existing"}});
    json doc = {{"networks", {{{"name", "k"}, {"bridge", "vfb-exk"}, {"ports", ports}}}}};
    std::ofstream(config_) << doc.dump(2);
  };
  write(true);
  Start(config_);
  ASSERT_TRUE(WaitFor([&] { return testing::Link("ex0").value("master", "") == "vfb-exk"; }, 5000))
      << Log();
  ASSERT_EQ(Cmd({"ip", "link", "set", "vnet-ex", "master", "vfb-exk"}).exit_code, 0);

  write(false);
  netd_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return !testing::Link("ex0").contains("master"); }, 5000)) << Log();
  // A later repair pass (a deleted tap comes back) leaves vnet-ex alone too.
  ASSERT_EQ(Cmd({"ip", "link", "del", "exk-t0"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return testing::Link("exk-t0").contains("ifname"); }, 5000)) << Log();
  EXPECT_EQ(testing::Link("vnet-ex").value("master", ""), "vfb-exk");
  EXPECT_THAT(Log(), ::testing::Not(HasSubstr("release vnet-ex")));
  ASSERT_EQ(Cmd({"ip", "link", "del", "vnet-ex"}).exit_code, 0);
}

}  // namespace
}  // namespace vfabric
