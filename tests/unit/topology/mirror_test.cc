// Port mirrors in the topology: the "mirror" list of a network, its keys and
// the rules the validator adds to the schema's (ports of the network, an
// output port that is not selected, not an uplink, no static FDB entry;
// unique names; something selected; userspace datapath only).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vfabric/topology/topology.h"

namespace vfabric::topology {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Errors(const LoadResult& result) {
  std::vector<std::string> out;
  for (const Diagnostic& d : result.errors) out.push_back(d.ToString());
  return out;
}

// A userspace network with ports a, b, up (an existing link) and m, and
// `mirrors` as its "mirror" value, on one line so columns are easy to read.
LoadResult Parse(const std::string& mirrors, const std::string& extra = "") {
  const std::string text =
      "{\"networks\": [{\"name\": \"n\", \"datapath\": \"userspace\", " + extra +
      "\"ports\": [{\"name\": \"a\"}, {\"name\": \"b\", \"vlan\": {\"mode\": \"trunk\", "
      "\"allowed\": \"10,20\"}}, {\"name\": \"up\", \"kind\": \"existing\"}, {\"name\": \"m\"}],\n"
      "\"mirror\": " +
      mirrors + "}]}";
  return ParseTopology(text, "t.json");
}

TEST(TopologyMirrorTest, DecodesEveryKey) {
  LoadResult r = Parse(
      R"([{"name": "x", "select_src_port": ["a"], "select_dst_port": ["b", "a"], "select_vlan": "10,20-22", "output_port": "m"},
          {"name": "y", "select_all": true, "output_port": "m"}])");
  ASSERT_THAT(Errors(r), IsEmpty());
  const std::vector<MirrorConfig>& m = r.topology.networks.at(0).mirrors;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].name, "x");
  EXPECT_THAT(m[0].select_src_port, ElementsAre("a"));
  EXPECT_THAT(m[0].select_dst_port, ElementsAre("b", "a"));
  EXPECT_EQ(FormatVlanList(m[0].select_vlan), "10,20-22");
  EXPECT_FALSE(m[0].select_all);
  EXPECT_EQ(m[0].output_port, "m");
  EXPECT_EQ(m[0].where.line, 2);
  EXPECT_TRUE(m[1].select_all);
  EXPECT_TRUE(m[1].select_vlan.none());
}

TEST(TopologyMirrorTest, PortsMustBeTheNetworks) {
  EXPECT_THAT(
      Errors(Parse(R"([{"name": "x", "select_src_port": ["aa", "c"], "output_port": "mm"}])")),
      ElementsAre("t.json:2:46: /networks/0/mirror/0/select_src_port/0: no port named \"aa\" in "
                  "network \"n\"; did you mean \"a\"?",
                  "t.json:2:52: /networks/0/mirror/0/select_src_port/1: no port named \"c\" in "
                  "network \"n\"; did you mean \"a\"?",
                  "t.json:2:73: /networks/0/mirror/0/output_port: no port named \"mm\" in network "
                  "\"n\"; did you mean \"m\"?"));
}

TEST(TopologyMirrorTest, AnOutputPortIsNoMirrorsSourceOrDestination) {
  // Also another mirror's: m would copy its own copies.
  EXPECT_THAT(
      Errors(Parse(R"([{"name": "x", "select_src_port": ["a"], "output_port": "m"},
                       {"name": "y", "select_dst_port": ["m"], "output_port": "b"}])")),
      ElementsAre("t.json:3:58: /networks/0/mirror/1/select_dst_port/0: port \"m\" is the output "
                  "port of a mirror (at t.json:2:67); an output port cannot be selected for "
                  "mirroring"));
}

TEST(TopologyMirrorTest, AnUplinkOrAStaticFdbPortIsNoOutput) {
  EXPECT_THAT(
      Errors(Parse(R"([{"name": "x", "select_all": true, "output_port": "up"}])")),
      ElementsAre("t.json:2:61: /networks/0/mirror/0/output_port: port \"up\" is an existing "
                  "link (an uplink): mirrored copies would carry the guests' MACs into the LAN "
                  "behind it; use a tap or veth port"));
  EXPECT_THAT(
      Errors(Parse(R"([{"name": "x", "select_all": true, "output_port": "m"}])",
                   R"("fdb": {"static": [{"mac": "52:54:00:00:00:01", "port": "m"}]}, )")),
      ElementsAre("t.json:2:61: /networks/0/mirror/0/output_port: port \"m\" has a static FDB "
                  "entry (at t.json:1:73), but a mirror's output port forwards nothing else"));
}

TEST(TopologyMirrorTest, NamesAreUniqueAndSomethingIsSelected) {
  EXPECT_THAT(
      Errors(Parse(R"([{"name": "x", "select_all": true, "output_port": "m"},
                       {"name": "x", "output_port": "m"}])")),
      ElementsAre("t.json:3:24: /networks/0/mirror/1: mirror \"x\" selects nothing: give "
                  "\"select_src_port\", \"select_dst_port\", \"select_vlan\" or \"select_all\": "
                  "true",
                  "t.json:3:33: /networks/0/mirror/1/name: mirror name \"x\" is already used (at "
                  "t.json:2:21)"));
}

TEST(TopologyMirrorTest, KeysAndValuesAreChecked) {
  EXPECT_THAT(
      Errors(Parse(
          R"([{"name": "x", "select_all": true, "select_src_port": ["a"], "select_vlan": [4095], "output_prt": "m"}])")),
      ElementsAre("t.json:2:12: /networks/0/mirror/0: missing required key \"output_port\"",
                  "t.json:2:40: /networks/0/mirror/0/select_all: \"select_all\": true selects "
                  "every port; leave out \"select_src_port\" and \"select_dst_port\"",
                  "t.json:2:88: /networks/0/mirror/0/select_vlan/0: expected an integer in "
                  "1..4094, got 4095",
                  "t.json:2:95: /networks/0/mirror/0/output_prt: unknown key \"output_prt\"; did "
                  "you mean \"output_port\"?"));
  EXPECT_THAT(
      Errors(Parse(R"([{"name": "x", "select_src_port": ["a", "a"], "output_port": "m"}])")),
      ElementsAre("t.json:2:51: /networks/0/mirror/0/select_src_port/1: port \"a\" is "
                  "listed twice"));
}

TEST(TopologyMirrorTest, AtMost32MirrorsPerNetwork) {
  std::string list = "[";
  for (int i = 0; i < 33; ++i)
    list += std::string(i ? ", " : "") + "{\"name\": \"x" + std::to_string(i) +
            "\", \"select_all\": true, \"output_port\": \"m\"}";
  list += "]";
  const std::vector<std::string> errors = Errors(Parse(list));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::HasSubstr("/networks/0/mirror/32: network \"n\" has 33 "
                                              "mirrors; at most 32 are allowed"));
}

}  // namespace
}  // namespace vfabric::topology
