// netd's --config at reload (SIGHUP): what one bad port of one network may
// block (nothing else), and what an empty configuration directory means.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Cmd;
using ::testing::HasSubstr;
using testing::Link;
using testing::LinkExists;
using testing::Request;
using testing::WaitFor;

class ConfigReloadTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    networks_dir_ = dir_.Join("networks");
    ASSERT_TRUE(std::filesystem::create_directory(networks_dir_));
  }

  size_t Count(const std::string& text, const std::string& what) const {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::string networks_dir_;
};

// A --config port whose veth peer goes into a network namespace that does
// not exist used to fail every pass as a whole (the kernel transaction undone,
// retried and logged every second), so a tap deleted from another network was
// never put back. Now the port waits for its namespace, the rest is repaired,
// the wait is logged once and shown in status, and the veth is made once the
// namespace exists.
TEST_F(ConfigReloadTest, APeerNetnsThatIsNotThereWaitsAndTheRestIsRepaired) {
  testing::WriteFile(networks_dir_ + "/a.json",
                     R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"}]}]})");
  Start(networks_dir_);
  ASSERT_EQ(Link("a-t0")["master"], "vfb-a");

  // A name that is free: made, then deleted again (made for real below).
  std::string netns;
  {
    testing::ScopedNamedNetns probe("vf-nons");
    ASSERT_TRUE(probe.ok());
    netns = probe.name();
  }
  ASSERT_FALSE(std::filesystem::exists("/run/netns/" + netns));
  testing::WriteFile(networks_dir_ + "/b.json", R"({"networks": [{"name": "b", "ports": [
      {"name": "b-t0"},
      {"name": "b-v0", "kind": "veth", "peer": "b-v0-p", "peer_netns": ")" +
                                                    netns + R"("}]}]})");
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return LinkExists("vfb-b"); }, 10000)) << Log();
  EXPECT_EQ(Link("b-t0")["master"], "vfb-b");
  EXPECT_FALSE(LinkExists("b-v0"));

  // Another network's drift is repaired meanwhile.
  ASSERT_EQ(Cmd({"ip", "link", "del", "a-t0"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([] { return Link("a-t0")["master"] == "vfb-a"; }, 5000)) << Log();

  const json status = Ok(Request("status"));
  json b;
  for (const json& network : status["networks"])
    if (network["name"] == "b") b = network;
  EXPECT_EQ(b["state"], "waiting") << status.dump();
  EXPECT_EQ(b["waiting"], json::array({"b-v0"})) << status.dump();
  json port = json::object();
  const json ports = Ok(Request("port.list", {{"network", "b"}}));
  for (const json& p : ports["ports"])
    if (p["name"] == "b-v0") port = p;
  EXPECT_TRUE(port.contains("waiting")) << ports.dump();
  EXPECT_THAT(port.value("waiting", ""), HasSubstr("network namespace \"" + netns + "\""));
  EXPECT_THAT(port.value("waiting", ""), HasSubstr("does not exist"));
  // Said once, not at every pass; nothing failed.
  EXPECT_EQ(Count(Log(), "port b-v0 waits: "), 1u) << Log();
  EXPECT_EQ(Count(Log(), "error: "), 0u) << Log();

  // The namespace made: the next pass (here a reload) makes the veth.
  ASSERT_EQ(Cmd({"ip", "netns", "add", netns}).exit_code, 0);
  struct Remove {
    std::string name;
    ~Remove() { Cmd({"ip", "netns", "del", name}); }
  } remove{netns};
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  EXPECT_TRUE(WaitFor([] { return Link("b-v0")["master"] == "vfb-b"; }, 10000)) << Log();
  EXPECT_EQ(Cmd({"ip", "netns", "exec", netns, "ip", "link", "show", "b-v0-p"}).exit_code, 0);
  EXPECT_THAT(Log(), HasSubstr("port b-v0 no longer waits"));
  EXPECT_EQ(Stop(), 0) << Log();
}

// A configuration directory left empty (its files removed by mistake, or
// not there yet) used to remove every network at SIGHUP, silently. An empty
// directory is refused at reload like an invalid configuration: the old one
// is kept and the log says why and how to remove everything on purpose.
TEST_F(ConfigReloadTest, AnEmptyDirectoryAtReloadKeepsTheNetworks) {
  testing::WriteFile(networks_dir_ + "/a.json",
                     R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"}]}]})");
  Start(networks_dir_);
  ASSERT_TRUE(LinkExists("vfb-a"));
  std::filesystem::remove(networks_dir_ + "/a.json");
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(
      WaitFor([&] { return Log().find("holds no *.json file") != std::string::npos; }, 10000))
      << Log();
  EXPECT_THAT(Log(), HasSubstr("keeping the 1 network(s) of the old configuration"));
  EXPECT_TRUE(LinkExists("vfb-a"));
  EXPECT_EQ(Link("a-t0")["master"], "vfb-a");
  EXPECT_EQ(Ok(Request("network.list"))["networks"].size(), 1u);

  // Said on purpose: a file with no networks removes them.
  testing::WriteFile(networks_dir_ + "/none.json", R"({"networks": []})");
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  EXPECT_TRUE(WaitFor([] { return !LinkExists("vfb-a"); }, 10000)) << Log();
  EXPECT_FALSE(LinkExists("a-t0"));
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
