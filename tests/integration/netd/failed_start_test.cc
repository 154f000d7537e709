// A first apply that fails in the kernel (issue 21): netd undoes it, keeps
// serving instead of exiting, and retries with a growing delay; a topology
// the planner refuses still stops it before it touches anything
// (netd_test.cc, ForeignLinksWithOurNamesAreRefused).
#include <gmock/gmock.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Cmd;
using ::testing::HasSubstr;
using testing::LinkExists;
using testing::Request;
using testing::WaitFor;

class FailedStartTest : public testing::NetdFixture {};

TEST_F(FailedStartTest, AKernelFailureAtStartIsUndoneAndNetdServesAndRetries) {
  // The veth's peer goes to a "namespace" that is a plain file: the kernel
  // refuses the move after the bridge and the taps were made (as in
  // NetdTest.AFailedApplyIsUndoneCompletely).
  const std::string netns = "vfabric-not-a-netns-" + std::to_string(::getpid());
  const std::string netns_path = "/run/netns/" + netns;
  ASSERT_EQ(Cmd({"mkdir", "-p", "/run/netns"}).exit_code, 0);
  testing::WriteFile(netns_path, "");
  struct RemoveFile {
    std::string path;
    ~RemoveFile() { ::unlink(path.c_str()); }
  } remove_netns{netns_path};
  const std::string config = dir_.Join("doomed.json");
  testing::WriteFile(config, R"({"networks": [{"name": "doomed", "bridge": "vfb-doomed",
      "ports": [{"name": "d-tap0"}, {"name": "d-tap1"},
                {"name": "d-up0", "kind": "veth", "peer": "d-up0-p",
                 "peer_netns": ")" +
                                 netns + R"("}]}]})");
  Start(config);
  // Serving, with the failure named and undone.
  EXPECT_THAT(Log(), HasSubstr("move d-up0-p to netns " + netns));
  EXPECT_THAT(Log(), HasSubstr("; serving anyway, retrying in 1 s"));
  json networks = Ok(Request("network.list"))["networks"];
  ASSERT_EQ(networks.size(), 1u);
  EXPECT_NE(networks[0]["state"], "ok");
  // It retries, each time later (1 s, then 2 s).
  ASSERT_TRUE(WaitFor([&] { return Log().find("retrying in 2 s") != std::string::npos; }, 10000))
      << Log();
  for (const char* name : {"vfb-doomed", "d-tap0", "d-tap1", "d-up0"})
    EXPECT_FALSE(LinkExists(name)) << name;
  EXPECT_TRUE(netd_->running());
  // Once the cause is gone, a retry applies it.
  ::unlink(netns_path.c_str());
  ASSERT_EQ(Cmd({"ip", "netns", "add", netns}).exit_code, 0);
  struct RemoveNetns {
    std::string name;
    ~RemoveNetns() { (void)Cmd({"ip", "netns", "del", name}); }
  } remove_real_netns{netns};
  ASSERT_TRUE(WaitFor([&] { return LinkExists("vfb-doomed") && LinkExists("d-up0"); }, 15000))
      << Log();
}

}  // namespace
}  // namespace vfabric
