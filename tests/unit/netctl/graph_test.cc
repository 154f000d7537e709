// netctl graph: the DOT text made from the views' answers, the command
// against the fake netd, and svg/png through Graphviz's dot when installed.
#include "vfabric/netctl/graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_netd.h"
#include "run_netctl.h"
#include "vfabric/netctl/cli.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::ErrorReply;
using testing::FakeNetd;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::OkReply;

json Lab() {
  return {{"name", "lab"},
          {"datapath", "kernel"},
          {"bridge", "vfb-lab"},
          {"settings", {{"stp_enabled", true}}},
          {"ports",
           {{{"name", "up0"},
             {"kind", "veth"},
             {"present", true},
             {"oper_up", true},
             {"vlan", {{"mode", "trunk"}, {"allowed", "10,20-30"}, {"native", 1}}}},
            {{"name", "vm1-eth0"},
             {"kind", "tap"},
             {"present", true},
             {"oper_up", true},
             {"vlan", {{"mode", "access"}, {"pvid", 10}}}},
            {{"name", "gone\"0"}, {"kind", "tap"}, {"present", false}}}}};
}

json LabStp() {
  return {{"is_root", true},
          {"ports",
           {{{"name", "up0"}, {"role", "designated"}, {"state", "forwarding"}},
            {{"name", "vm1-eth0"}, {"role", "alternate"}, {"state", "blocking"}}}}};
}

json Vms() {
  return json::array({{{"name", "vm1"},
                       {"state", "running"},
                       {"nics", {{{"id", "nic0"}, {"network", "lab"}, {"port", "vm1-eth0"}}}}},
                      {{"name", "elsewhere"},
                       {"state", "running"},
                       {"nics", {{{"id", "nic0"}, {"network", "other"}, {"port", "x"}}}}}});
}

TEST(GraphDotTest, DrawsNetworksPortsTreeAndGuests) {
  const std::string dot = GraphDot({{Lab(), LabStp()}}, Vms());
  EXPECT_EQ(dot.rfind("graph vfabric {\n", 0), 0u) << dot;
  EXPECT_THAT(dot, HasSubstr("subgraph \"cluster_lab\" {"));
  EXPECT_THAT(dot, HasSubstr("\"network/lab\" [shape=box, style=filled, fillcolor=lightsteelblue, "
                             "label=\"bridge vfb-lab\\nkernel datapath\\nSTP (root bridge)\"];"));
  EXPECT_THAT(dot, HasSubstr("\"port/lab/up0\" [shape=ellipse, label=\"up0\\nveth\\ntrunk "
                             "10,20-30 native 1\"];"));
  EXPECT_THAT(dot, HasSubstr("\"network/lab\" -- \"port/lab/up0\" [label=\"designated / "
                             "forwarding\"];"));
  // The blocked port: dashed and red.
  EXPECT_THAT(dot, HasSubstr("\"network/lab\" -- \"port/lab/vm1-eth0\" [label=\"alternate / "
                             "blocking\", style=dashed, color=red];"));
  // A missing port: grey, and its odd name escaped.
  EXPECT_THAT(dot, HasSubstr("\"port/lab/gone\\\"0\" [shape=ellipse, label=\"gone\\\"0\\ntap\\n"
                             "missing\", style=dashed, color=gray50, fontcolor=gray40];"));
  // The guest on lab, not the one on a network not drawn.
  EXPECT_THAT(dot, HasSubstr("\"vm/vm1\" -- \"port/lab/vm1-eth0\" [label=\"nic0\"];"));
  EXPECT_THAT(dot, Not(HasSubstr("elsewhere")));
  EXPECT_EQ(dot.substr(dot.size() - 2), "}\n");
  // The same answers, the same text.
  EXPECT_EQ(GraphDot({{Lab(), LabStp()}}, Vms()), dot);
}

TEST(GraphDotTest, WithoutATreeEdgesHaveNoLabels) {
  json lab = Lab();
  lab["settings"]["stp_enabled"] = false;
  const std::string dot = GraphDot({{lab, nullptr}}, nullptr);
  EXPECT_THAT(dot, HasSubstr("\"network/lab\" -- \"port/lab/up0\" [];"));
  EXPECT_THAT(dot, Not(HasSubstr("STP")));
}

TEST(GraphDotTest, QuotesForDot) { EXPECT_EQ(DotQuote("a\"b\\c"), "\"a\\\"b\\\\c\""); }

TEST(GraphCliTest, AsksForEveryNetworkItsTreeAndTheGuests) {
  FakeNetd netd([](const std::string& line) {
    const json request = json::parse(line);
    const std::string verb = request["verb"];
    if (verb == "network.list") return OkReply(line, {{"networks", {{{"name", "lab"}}}}});
    if (verb == "network.show") return OkReply(line, {{"network", Lab()}});
    if (verb == "stp.show") return OkReply(line, {{"stp", LabStp()}});
    if (verb == "vm.list") return OkReply(line, {{"vms", Vms()}});
    return ErrorReply(line, {{"code", "unknown_verb"}, {"message", "no"}});
  });
  auto result = testing::RunNetctl({"--socket", netd.path(), "graph"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, GraphDot({{Lab(), LabStp()}}, Vms()));
  std::vector<std::string> verbs;
  for (const std::string& line : netd.requests()) verbs.push_back(json::parse(line)["verb"]);
  EXPECT_EQ(verbs,
            (std::vector<std::string>{"network.list", "network.show", "stp.show", "vm.list"}));
}

TEST(GraphCliTest, ANetworkNetdDoesNotHaveIsAnError) {
  FakeNetd netd([](const std::string& line) {
    return ErrorReply(line, {{"code", "not_found"}, {"message", "no network named \"x\""}});
  });
  auto result = testing::RunNetctl({"--socket", netd.path(), "graph", "x"});
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "netctl: no network named \"x\"\n");
}

TEST(GraphCliTest, RefusesAnUnknownFormat) {
  auto result = testing::RunNetctl({"--socket", "/nonexistent", "graph", "--format", "gif"});
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, HasSubstr("--format 'gif' is not dot, svg or png"));
  EXPECT_EQ(testing::RunNetctl({"--socket", "/nonexistent", "status", "--format", "svg"}).code, 2);
}

TEST(GraphCliTest, RendersSvgAndPngThroughDot) {
  if (vfabric::testing::Run({"sh", "-c", "command -v dot"}).exit_code != 0) {
    if (vfabric::testing::InCi()) FAIL() << "dot is missing (scripts/install-deps: graphviz)";
    GTEST_SKIP() << "Graphviz's dot is not installed (Debian's graphviz package)";
  }
  const std::string dot = GraphDot({{Lab(), LabStp()}}, Vms());
  Result<std::string> svg = RenderDot(dot, "svg");
  ASSERT_TRUE(svg.ok()) << svg.status().message();
  EXPECT_THAT(*svg, HasSubstr("<svg"));
  EXPECT_THAT(*svg, HasSubstr("cluster_lab"));
  Result<std::string> png = RenderDot(dot, "png");
  ASSERT_TRUE(png.ok()) << png.status().message();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  Result<std::string> bad = RenderDot("graph {", "svg");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("dot -Tsvg"));
}

}  // namespace
}  // namespace vfabric::netctl
