// `netctl graph` against a real netd on configs/: the DOT text names every
// network, port and tree role netd has, and Graphviz's dot (Debian's
// graphviz; skipped without it, except in CI) draws it as svg and png.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;

class GraphTest : public testing::NetdFixture {
 protected:
  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }
};

TEST_F(GraphTest, DrawsWhatNetdHas) {
  Start(Configs());
  CommandResult dot = Netctl({"graph"});
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  for (const char* network : {"lab", "fabric", "edge"})
    EXPECT_THAT(dot.out, HasSubstr(std::string("subgraph \"cluster_") + network + "\""));
  EXPECT_THAT(dot.out, HasSubstr("\"port/lab/vm1-eth0\""));
  EXPECT_THAT(dot.out, HasSubstr("\"port/fabric/fab-vm1\" [shape=ellipse, label=\"fab-vm1\\ntap\\n"
                                 "access 10\"]"));
  EXPECT_THAT(dot.out, HasSubstr("label=\"bridge vfb-lab\\nkernel datapath\\nSTP"));
  // One network.
  CommandResult one = Netctl({"graph", "fabric"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_THAT(one.out, HasSubstr("cluster_fabric"));
  EXPECT_EQ(one.out.find("cluster_lab"), std::string::npos);
  EXPECT_EQ(Netctl({"graph", "nope"}).exit_code, 1);

  if (testing::Run({"sh", "-c", "command -v dot"}).exit_code != 0) {
    if (testing::InCi()) FAIL() << "dot is missing (scripts/install-deps installs graphviz)";
    GTEST_SKIP() << "Graphviz's dot is not installed (Debian's graphviz package)";
  }
  // What netctl prints is what dot reads.
  CommandResult check = testing::Run({"dot", "-Tcanon"}, dot.out);
  EXPECT_EQ(check.exit_code, 0) << check.err;
  CommandResult svg = Netctl({"graph", "--format", "svg"});
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  EXPECT_THAT(svg.out, HasSubstr("<svg"));
  EXPECT_THAT(svg.out, HasSubstr("cluster_fabric"));
  CommandResult png = Netctl({"graph", "lab", "--format=png"});
  ASSERT_EQ(png.exit_code, 0) << png.err;
  EXPECT_EQ(png.out.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

}  // namespace
}  // namespace vfabric
