// The topology parser and validator on good and bad documents. Every bad
// case asserts the exact "file:line:column: pointer: message".

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "vfabric/testing/support.h"
#include "vfabric/topology/topology.h"

namespace vfabric::topology {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The diagnostics of `text` as strings. With VFABRIC_TOPOLOGY_DEBUG=1 in the
// environment it also prints the text each one points at, to check positions
// by eye when writing a new case.
std::vector<std::string> ErrorsOf(std::string_view text) {
  LoadResult result = ParseTopology(text, "t.json");
  std::vector<std::string> lines;
  for (const Diagnostic& d : result.errors) {
    lines.push_back(d.ToString());
    if (std::getenv("VFABRIC_TOPOLOGY_DEBUG")) {
      std::string t(text);
      size_t at = 0;
      for (int l = 1; l < d.where.line; ++l) at = t.find('\n', at) + 1;
      at += d.where.column - 1;
      std::fprintf(stderr, "%d:%d %s  ==> [%s]\n", d.where.line, d.where.column,
                   d.where.pointer.c_str(), t.substr(at, 14).c_str());
    }
  }
  return lines;
}

// A document with one network whose body is `body` (on line 2, from column 3).
// Line 1 is `{"networks": [{"name": "n1",` so positions in `body` are easy to count.
std::string OneNetwork(const std::string& body) {
  return "{\"networks\": [{\"name\": \"n1\",\n  " + body + "\n}]}\n";
}

// ---- Good documents ----

TEST(TopologyParseTest, GoodFullDocumentFieldByField) {
  const std::string path = testing::SourceDir() + "/tests/unit/topology/data/good_full.json";
  LoadResult result = LoadTopology({path});
  ASSERT_TRUE(result.ok()) << (result.errors.empty() ? "" : result.errors[0].ToString());
  const Topology& t = result.topology;
  ASSERT_EQ(t.networks.size(), 1u);
  const NetworkConfig& n = t.networks[0];
  EXPECT_EQ(n.name, "core");
  EXPECT_EQ(n.datapath, Datapath::kKernel);
  EXPECT_EQ(n.bridge, "br-core");
  EXPECT_EQ(n.where.file, path);
  EXPECT_EQ(n.where.line, 3);
  EXPECT_EQ(n.where.column, 5);
  EXPECT_EQ(n.where.pointer, "/networks/0");
  EXPECT_TRUE(n.stp.enabled);
  EXPECT_EQ(n.stp.priority, 61440u);
  EXPECT_EQ(n.stp.hello_time, 1u);
  EXPECT_EQ(n.stp.forward_delay, 30u);
  EXPECT_EQ(n.stp.max_age, 40u);
  EXPECT_TRUE(n.vlan.filtering);
  EXPECT_EQ(n.vlan.default_pvid, 100);
  EXPECT_EQ(n.fdb.ageing_time, 0u);
  EXPECT_EQ(n.fdb.max_entries, 0u);
  ASSERT_EQ(n.fdb.static_entries.size(), 1u);
  EXPECT_EQ(n.fdb.static_entries[0].mac.ToString(), "52:54:00:aa:00:01");
  EXPECT_EQ(n.fdb.static_entries[0].port, "core-trunk");
  EXPECT_EQ(n.fdb.static_entries[0].vlan, 20);
  EXPECT_EQ(n.fdb.static_entries[0].where.pointer, "/networks/0/fdb/static/0");
  EXPECT_EQ(n.fdb.static_entries[0].where.line, 11);
  EXPECT_EQ(n.fdb.static_entries[0].where.column, 20);

  ASSERT_EQ(n.ports.size(), 3u);
  const PortConfig& access = n.ports[0];
  EXPECT_EQ(access.name, "core-acc");
  EXPECT_EQ(access.kind, PortKind::kTap);
  EXPECT_EQ(access.vlan.mode, VlanMode::kAccess);
  EXPECT_EQ(access.vlan.pvid, 10);
  EXPECT_EQ(access.owner, 0u);  // "root"
  EXPECT_EQ(access.group, 0u);
  EXPECT_FALSE(access.vnet_hdr);
  EXPECT_FALSE(access.multi_queue);
  EXPECT_FALSE(access.cost.has_value());
  EXPECT_FALSE(access.learning.has_value());
  EXPECT_EQ(access.where.pointer, "/networks/0/ports/0");

  const PortConfig& trunk = n.ports[1];
  EXPECT_EQ(trunk.kind, PortKind::kExisting);
  EXPECT_EQ(trunk.vlan.mode, VlanMode::kTrunk);
  EXPECT_EQ(FormatVlanList(trunk.vlan.allowed), "10,20-30,4094");
  EXPECT_EQ(trunk.vlan.native, 1);
  EXPECT_TRUE(trunk.vlan.native_tagged);
  EXPECT_FALSE(trunk.owner.has_value());

  const PortConfig& veth = n.ports[2];
  EXPECT_EQ(veth.kind, PortKind::kVeth);
  EXPECT_EQ(veth.peer, "core-trunk2-p");
  EXPECT_EQ(veth.peer_netns, "guest");
  EXPECT_EQ(FormatVlanList(veth.vlan.allowed), "5,7-8,4000");
  EXPECT_EQ(veth.vlan.native, 0);
  EXPECT_FALSE(veth.vlan.native_tagged);

  ASSERT_EQ(t.vms.size(), 2u);
  const VmConfig& vm1 = t.vms[0];
  EXPECT_EQ(vm1.name, "vm1");
  EXPECT_EQ(vm1.memory_mb, 512u);
  EXPECT_EQ(vm1.vcpus, 2u);
  EXPECT_EQ(vm1.accel, "tcg");
  EXPECT_EQ(vm1.kernel, "/boot/vmlinuz");
  EXPECT_EQ(vm1.initrd, "/tmp/initrd.img");
  EXPECT_EQ(vm1.cmdline, "console=ttyS0");
  EXPECT_EQ(vm1.disk, "");
  EXPECT_EQ(vm1.restart, "on-failure");
  ASSERT_EQ(vm1.nics.size(), 2u);
  EXPECT_EQ(vm1.nics[0].network, "core");
  ASSERT_TRUE(vm1.nics[0].mac.has_value());
  EXPECT_EQ(vm1.nics[0].mac->ToString(), "52:54:00:00:00:01");
  EXPECT_EQ(vm1.nics[0].port, "core-acc");  // the tap the network declares
  EXPECT_FALSE(vm1.nics[1].mac.has_value());
  EXPECT_EQ(vm1.nics[1].port, "vm1-eth1");  // the default
  EXPECT_EQ(vm1.nics[1].where.pointer, "/vms/0/nics/1");
  const VmConfig& vm2 = t.vms[1];
  EXPECT_EQ(vm2.disk, "/var/lib/vm2.qcow2");
  EXPECT_EQ(vm2.memory_mb, 256u);
  EXPECT_EQ(vm2.vcpus, 1u);
  EXPECT_EQ(vm2.accel, "auto");
  EXPECT_EQ(vm2.restart, "no");
  EXPECT_THAT(vm2.nics, IsEmpty());
}

TEST(TopologyParseTest, DefaultsAndEmptyTopology) {
  LoadResult empty = ParseTopology("{}", "e.json");
  EXPECT_TRUE(empty.ok());
  EXPECT_THAT(empty.topology.networks, IsEmpty());
  EXPECT_TRUE(ParseTopology(" {\"networks\": [], \"vms\": []} ", "e.json").ok());

  LoadResult result =
      ParseTopology(R"({"networks": [{"name": "n1", "ports": [{"name": "p1"}]}]})", "d.json");
  ASSERT_TRUE(result.ok());
  const NetworkConfig& n = result.topology.networks[0];
  EXPECT_EQ(n.bridge, "vfb-n1");
  EXPECT_EQ(n.datapath, Datapath::kKernel);
  EXPECT_FALSE(n.stp.enabled);
  EXPECT_EQ(n.stp.priority, 32768u);
  EXPECT_EQ(n.stp.hello_time, 2u);
  EXPECT_EQ(n.stp.forward_delay, 15u);
  EXPECT_EQ(n.stp.max_age, 20u);
  EXPECT_FALSE(n.vlan.filtering);
  EXPECT_EQ(n.vlan.default_pvid, 1);
  EXPECT_EQ(n.fdb.ageing_time, 300u);
  ASSERT_EQ(n.ports.size(), 1u);
  EXPECT_EQ(n.ports[0].kind, PortKind::kTap);
  EXPECT_TRUE(n.ports[0].vnet_hdr);
  EXPECT_FALSE(n.ports[0].multi_queue);
  EXPECT_EQ(n.ports[0].vlan.mode, VlanMode::kNone);
  EXPECT_EQ(n.ports[0].where.line, 1);
  EXPECT_EQ(n.ports[0].where.column, 40);
}

TEST(TopologyParseTest, DiagnosticToString) {
  Diagnostic d{{"a.json", 3, 7, "/networks/0"}, "boom"};
  EXPECT_EQ(d.ToString(), "a.json:3:7: /networks/0: boom");
  d.where.pointer = "";
  EXPECT_EQ(d.ToString(), "a.json:3:7: (root): boom");
  d.where.line = 0;
  EXPECT_EQ(d.ToString(), "a.json: boom");
}

// ---- Syntax ----

TEST(TopologyParseTest, SyntaxErrors) {
  EXPECT_THAT(ErrorsOf(""),
              ElementsAre("t.json:1:1: (root): unexpected end of input, expected a value"));
  EXPECT_THAT(ErrorsOf("{\"networks\": [\n  {\"name\": \"a\" \"bridge\": \"b\"}]}"),
              ElementsAre("t.json:2:16: /networks/0: expected ',' or '}'"));
  EXPECT_THAT(ErrorsOf("{\"networks\": [1 2]}"),
              ElementsAre("t.json:1:17: /networks: expected ',' or ']'"));
  EXPECT_THAT(ErrorsOf("{\"networks\": [],}"),
              ElementsAre("t.json:1:17: (root): expected a string key (trailing commas are not "
                          "allowed)"));
  EXPECT_THAT(ErrorsOf("{\"networks\": [{},]}"),
              ElementsAre("t.json:1:18: /networks: expected a value (trailing commas are not "
                          "allowed)"));
  EXPECT_THAT(ErrorsOf("{\"vms\"  []}"), ElementsAre("t.json:1:9: (root): expected ':'"));
  EXPECT_THAT(ErrorsOf("{\"vms\": tru}"),
              ElementsAre("t.json:1:9: /vms: invalid literal (expected \"true\")"));
  EXPECT_THAT(ErrorsOf("{\"vms\": 012}"),
              ElementsAre("t.json:1:9: /vms: invalid number (leading zeros are not allowed)"));
  EXPECT_THAT(ErrorsOf("{\"vms\": 1.}"),
              ElementsAre("t.json:1:11: /vms: invalid number (expected a digit after '.')"));
  EXPECT_THAT(ErrorsOf("{\"vms\": \"ab\\q\"}"),
              ElementsAre("t.json:1:12: /vms: invalid escape in string"));
  EXPECT_THAT(ErrorsOf("{\"vms\": \"ab"), ElementsAre("t.json:1:9: /vms: unterminated string"));
  EXPECT_THAT(ErrorsOf("{\"vms\": \"a\tb\"}"),
              ElementsAre("t.json:1:11: /vms: control character in string (use an escape)"));
  EXPECT_THAT(ErrorsOf("{\"vms\": \"\xff\"}"),
              ElementsAre("t.json:1:10: /vms: invalid UTF-8 in string"));
  EXPECT_THAT(ErrorsOf("{\"vms\": \"\\ud800\"}"),
              ElementsAre("t.json:1:16: /vms: invalid \\u escape (lone surrogate)"));
  EXPECT_THAT(ErrorsOf("{} x"),
              ElementsAre("t.json:1:4: (root): unexpected text after the top-level value"));
  EXPECT_THAT(ErrorsOf("// comment\n{}"), ElementsAre("t.json:1:1: (root): expected a value"));
  EXPECT_THAT(ErrorsOf("{\"networks\": [\n"),
              ElementsAre("t.json:2:1: /networks/0: unexpected end of input, expected a value"));
  EXPECT_THAT(ErrorsOf("[NaN]"), ElementsAre("t.json:1:2: /0: expected a value"));
}

// Columns count bytes: a tab is one column, and so is each byte of a UTF-8
// sequence; CR LF line ends count as one line break.
TEST(TopologyParseTest, ColumnsCountBytes) {
  EXPECT_THAT(ErrorsOf("{\r\n\t\"x\": 1}"), ElementsAre("t.json:2:2: /x: unknown key \"x\""));
  EXPECT_THAT(ErrorsOf("{\"$schema\": \"\xc3\xa9\", \"x\": 1}"),
              ElementsAre("t.json:1:19: /x: unknown key \"x\""));
  EXPECT_THAT(ErrorsOf("{\"a/b~c\": 1}"),
              ElementsAre("t.json:1:2: /a~1b~0c: unknown key \"a/b~c\""));
}

TEST(TopologyParseTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::vector<std::string> errors = ErrorsOf(deep);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("t.json:1:129: "));
  EXPECT_THAT(errors[0], HasSubstr("nesting deeper than 128 levels"));
}

TEST(TopologyParseTest, EscapesUtf8AndBomAreAccepted) {
  LoadResult result = ParseTopology(
      "\xEF\xBB\xBF{\"networks\": [{\"name\": \"n\\u0031\", \"bridge\": \"br\\/x\"}],"
      " \"$schema\": \"\xc3\xa9\\ud83d\\ude00\"}",
      "u.json");
  // "br/x" is not a valid interface name, but the escapes themselves were read.
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].ToString(),
            "u.json:1:45: /networks/0/bridge: invalid interface name \"br/x\": must not contain "
            "'/'");
}

TEST(TopologyParseTest, DuplicateKeys) {
  EXPECT_THAT(ErrorsOf("{\"networks\": [],\n \"networks\": [{\"bad\": 1}]}"),
              ElementsAre("t.json:2:2: /networks: duplicate key \"networks\" (first at line 1, "
                          "column 2)"));
}

// Bad input gets diagnostics, never a crash (run under ASan/UBSan too):
// thousands of random byte mutations, truncations and splices of a good file.
TEST(TopologyParseTest, RandomMutationsNeverCrash) {
  const std::string good =
      testing::ReadFile(testing::SourceDir() + "/tests/unit/topology/data/good_full.json");
  ASSERT_FALSE(good.empty());
  std::mt19937 random(12345);
  const std::string alphabet = "{}[],:\"\\-0123456789.eE truefalsn\n\x01\xff\xc3";
  size_t rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = good;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = random() % text.size();
      switch (random() % 4) {
        case 0:
          text[at] = alphabet[random() % alphabet.size()];
          break;
        case 1:
          text.erase(at, 1 + random() % 8);
          break;
        case 2:
          text.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
        default:
          text.resize(at);
          break;
      }
      if (text.empty()) text = "{";
    }
    LoadResult result = ParseTopology(text, "m.json");
    if (!result.ok()) ++rejected;
    for (const Diagnostic& d : result.errors) {
      EXPECT_GE(d.where.line, 1) << text;
      EXPECT_GE(d.where.column, 1) << text;
      EXPECT_FALSE(d.message.empty());
    }
  }
  EXPECT_GT(rejected, 1000u);
}

TEST(TopologyParseTest, NumbersAtTheEdges) {
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"priority\": -0}")), IsEmpty());
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"priority\": -4096}")),
              ElementsAre("t.json:2:23: /networks/0/stp/priority: expected an integer in "
                          "0..61440, got -4096"));
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"priority\": 18446744073709551616}")),
              ElementsAre("t.json:2:23: /networks/0/stp/priority: expected an integer in "
                          "0..61440, got 1.8446744073709552e+19"));
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"priority\": 1e999}")),
              ElementsAre("t.json:2:23: /networks/0/stp/priority: number out of range"));
}

// ---- Shapes, keys and types ----

TEST(TopologyParseTest, TopLevelMustBeAnObject) {
  EXPECT_THAT(ErrorsOf("[]"), ElementsAre("t.json:1:1: (root): expected an object, got an array"));
  EXPECT_THAT(ErrorsOf("{\"networks\": {}}"),
              ElementsAre("t.json:1:14: /networks: expected an array, got an object"));
}

TEST(TopologyParseTest, UnknownKeysWithSuggestions) {
  EXPECT_THAT(ErrorsOf(OneNetwork("\"brigde\": \"b0\", \"stp\": {\"enabeld\": true},"
                                  " \"colour\": 1, \"ports\": [{\"name\": \"p1\", \"prio\": 3}]")),
              ElementsAre("t.json:2:3: /networks/0/brigde: unknown key \"brigde\"; did you mean "
                          "\"bridge\"?",
                          "t.json:2:27: /networks/0/stp/enabeld: unknown key \"enabeld\"; did you "
                          "mean \"enabled\"?",
                          "t.json:2:45: /networks/0/colour: unknown key \"colour\"",
                          "t.json:2:83: /networks/0/ports/0/prio: unknown key \"prio\""));
  // A key the object already has is not suggested.
  EXPECT_THAT(ErrorsOf("{\"networks\": [], \"network\": []}"),
              ElementsAre("t.json:1:18: /network: unknown key \"network\""));
  EXPECT_THAT(ErrorsOf("{\"network\": []}"),
              ElementsAre("t.json:1:2: /network: unknown key \"network\"; did you mean "
                          "\"networks\"?"));
}

TEST(TopologyParseTest, WrongTypes) {
  EXPECT_THAT(
      ErrorsOf(OneNetwork("\"stp\": {\"enabled\": \"yes\", \"priority\": 4096.5, \"max_age\": "
                          "\"20\"}, \"ports\": [{\"name\": 7, \"hairpin\": 1}], \"bridge\": null")),
      ElementsAre("t.json:2:22: /networks/0/stp/enabled: expected a boolean, got a string",
                  "t.json:2:41: /networks/0/stp/priority: expected an integer in 0..61440, got "
                  "4096.5",
                  "t.json:2:60: /networks/0/stp/max_age: expected an integer, got a string",
                  "t.json:2:86: /networks/0/ports/0/name: expected a string, got an integer",
                  "t.json:2:100: /networks/0/ports/0/hairpin: expected a boolean, got an integer",
                  "t.json:2:115: /networks/0/bridge: expected a string, got null"));
}

TEST(TopologyParseTest, MissingRequiredKeys) {
  EXPECT_THAT(ErrorsOf("{\"networks\": [{\"ports\": [{\"kind\": \"tap\"}]}]}"),
              ElementsAre("t.json:1:15: /networks/0: missing required key \"name\"",
                          "t.json:1:26: /networks/0/ports/0: missing required key \"name\""));
}

// ---- Names ----

TEST(TopologyParseTest, InterfaceNames) {
  EXPECT_THAT(
      ErrorsOf(OneNetwork("\"bridge\": \"a-very-long-bridge\", \"ports\": [\n"
                          "{\"name\": \"eth0:1\"}, {\"name\": \"a b\"}, {\"name\": \"..\"},\n"
                          "{\"name\": \"x/y\"}, {\"name\": \"tap%d\"}, {\"name\": \"\"}]")),
      ElementsAre("t.json:2:13: /networks/0/bridge: invalid interface name "
                  "\"a-very-long-bridge\": is 18 bytes long; the limit is 15",
                  "t.json:3:10: /networks/0/ports/0/name: invalid interface name \"eth0:1\": "
                  "must not contain ':'",
                  "t.json:3:30: /networks/0/ports/1/name: invalid interface name \"a b\": must "
                  "not contain whitespace",
                  "t.json:3:47: /networks/0/ports/2/name: invalid interface name \"..\": must "
                  "not be \".\" or \"..\"",
                  "t.json:4:10: /networks/0/ports/3/name: invalid interface name \"x/y\": must "
                  "not contain '/'",
                  "t.json:4:27: /networks/0/ports/4/name: invalid interface name \"tap%d\": "
                  "must not contain '%' (the kernel's name template character)",
                  "t.json:4:46: /networks/0/ports/5/name: must not be empty"));
}

TEST(TopologyParseTest, DefaultBridgeNameMustFit) {
  EXPECT_THAT(ErrorsOf("{\"networks\": [{\"name\": \"twelve-chars\"}]}"),
              ElementsAre("t.json:1:24: /networks/0/name: the default bridge name "
                          "\"vfb-twelve-chars\" is longer than 15 bytes; set \"bridge\""));
  EXPECT_TRUE(
      ParseTopology("{\"networks\": [{\"name\": \"twelve-chars\", \"bridge\": \"br0\"}]}", "t.json")
          .ok());
}

// A userspace network has no Linux bridge, so no default bridge name: none
// to be too long, none to clash with an interface named like it.
TEST(TopologyParseTest, UserspaceNetworksHaveNoDefaultBridge) {
  LoadResult result = ParseTopology(
      R"({"networks": [
  {"name": "fast", "datapath": "userspace", "ports": [{"name": "vfb-slow"}]},
  {"name": "slow", "datapath": "userspace", "ports": [{"name": "vfb-fast"}]},
  {"name": "a-very-long-network-name", "datapath": "userspace"}]})",
      "t.json");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  EXPECT_EQ(result.topology.networks[0].bridge, "");
  EXPECT_EQ(result.topology.networks[2].bridge, "");
  // A kernel network still gets one, and it still clashes.
  EXPECT_THAT(ErrorsOf("{\"networks\": [{\"name\": \"k\"},\n"
                       "{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": [{\"name\": "
                       "\"vfb-k\"}]}]}"),
              ElementsAre("t.json:2:59: /networks/1/ports/0/name: interface name \"vfb-k\" is "
                          "already used by the bridge of network \"k\" (at t.json:1:24)"));
  // A bridge name given on a userspace network is kept (and reserved).
  LoadResult named = ParseTopology(
      R"({"networks": [{"name": "u", "datapath": "userspace", "bridge": "br-u"}]})", "t.json");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named.topology.networks[0].bridge, "br-u");
}

TEST(TopologyParseTest, NetworkAndVmNames) {
  EXPECT_THAT(ErrorsOf("{\"networks\": [{\"name\": \"-lab\"}, {\"name\": \"l@b\"}],\n"
                       " \"vms\": [{\"name\": \"\", \"disk\": \"d\"}]}"),
              ElementsAre("t.json:1:24: /networks/0/name: invalid network name \"-lab\": must "
                          "start with a letter or a digit",
                          "t.json:1:42: /networks/1/name: invalid network name \"l@b\": may hold "
                          "only letters, digits, '-', '_' and '.'",
                          "t.json:2:19: /vms/0/name: must not be empty"));
}

TEST(TopologyParseTest, DuplicateNamesInOneFile) {
  EXPECT_THAT(
      ErrorsOf(
          "{\"networks\": [\n"
          "{\"name\": \"a\", \"bridge\": \"br0\", \"ports\": [{\"name\": \"p1\"}]},\n"
          "{\"name\": \"a\", \"bridge\": \"br0\", \"ports\": [{\"name\": \"p1\"},\n"
          " {\"name\": \"up\", \"kind\": \"veth\", \"peer\": \"br0\"}, {\"name\": \"p2\", \"kind\":"
          " \"veth\", \"peer\": \"up\"}]},\n"
          "{\"name\": \"b\", \"ports\": [{\"name\": \"vfb-a\"}]}, {\"name\": \"a\"}]}"),
      ElementsAre(
          "t.json:3:10: /networks/1/name: duplicate network name \"a\" (first at t.json:2:10)",
          "t.json:3:25: /networks/1/bridge: interface name \"br0\" is already used by the bridge "
          "of network \"a\" (at t.json:2:25)",
          "t.json:3:51: /networks/1/ports/0/name: interface name \"p1\" is already used by a tap "
          "port of network \"a\" (at t.json:2:51)",
          "t.json:4:41: /networks/1/ports/1/peer: interface name \"br0\" is already used by the "
          "bridge of network \"a\" (at t.json:2:25)",
          "t.json:4:88: /networks/1/ports/2/peer: interface name \"up\" is already used by a veth "
          "port of network \"a\" (at t.json:4:11)",
          "t.json:5:55: /networks/3/name: duplicate network name \"a\" (first at t.json:2:10)",
          "t.json:5:55: /networks/3/name: the default bridge name \"vfb-a\" (from the network "
          "name) is already used by a tap port of network \"b\" (at t.json:5:34)"));
}

// ---- VLANs ----

TEST(TopologyParseTest, PortVlanChecks) {
  const std::string head =
      "{\"networks\": [{\"name\": \"v\", \"vlan\": {\"filtering\": true,"
      " \"default_pvid\": 4095}, \"ports\": [\n";
  EXPECT_THAT(
      ErrorsOf(head +
               "{\"name\": \"p0\", \"vlan\": {\"mode\": \"access\", \"pvid\": 0}},\n"
               "{\"name\": \"p1\", \"vlan\": {\"mode\": \"access\"}},\n"
               "{\"name\": \"p2\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"30-20\"}},\n"
               "{\"name\": \"p3\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"5-\"}},\n"
               "{\"name\": \"p4\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"a\"}},\n"
               "{\"name\": \"p5\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"1,,2\"}},\n"
               "{\"name\": \"p6\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"4095\"}},\n"
               "{\"name\": \"p7\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"\"}},\n"
               "{\"name\": \"p8\", \"vlan\": {\"mode\": \"trunk\", \"pvid\": 3}},\n"
               "{\"name\": \"p9\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": [1, 0, \"2-x\"],"
               " \"native_tagged\": true}},\n"
               "{\"name\": \"pa\", \"vlan\": {\"mode\": \"access\", \"pvid\": 2, \"native\": 3}},\n"
               "{\"name\": \"pb\", \"vlan\": {\"mode\": \"hybrid\"}}]}]}"),
      ElementsAre(
          "t.json:1:73: /networks/0/vlan/default_pvid: expected an integer in 1..4094, got 4095",
          "t.json:2:51: /networks/0/ports/0/vlan/pvid: expected an integer in 1..4094, got 0",
          "t.json:3:24: /networks/0/ports/1/vlan: missing required key \"pvid\"",
          "t.json:4:53: /networks/0/ports/2/vlan/allowed: malformed VLAN list \"30-20\": range "
          "\"30-20\" runs backwards (30 > 20)",
          "t.json:5:53: /networks/0/ports/3/vlan/allowed: malformed VLAN list \"5-\": \"5-\" is "
          "not a VLAN ID or a range LOW-HIGH",
          "t.json:6:53: /networks/0/ports/4/vlan/allowed: malformed VLAN list \"a\": \"a\" is not "
          "a VLAN ID or a range LOW-HIGH",
          "t.json:7:53: /networks/0/ports/5/vlan/allowed: malformed VLAN list \"1,,2\": empty item "
          "(two commas in a row, or a comma at an end)",
          "t.json:8:53: /networks/0/ports/6/vlan/allowed: malformed VLAN list \"4095\": VLAN ID "
          "4095 is outside 1..4094",
          "t.json:9:53: /networks/0/ports/7/vlan/allowed: malformed VLAN list \"\": the VLAN list "
          "is empty",
          "t.json:10:24: /networks/0/ports/8/vlan: missing required key \"allowed\"",
          "t.json:10:50: /networks/0/ports/8/vlan/pvid: \"pvid\" applies to access ports only; a "
          "trunk's untagged VLAN is \"native\"",
          "t.json:11:57: /networks/0/ports/9/vlan/allowed/1: expected an integer in 1..4094, got 0",
          "t.json:11:60: /networks/0/ports/9/vlan/allowed/2: malformed VLAN list \"2-x\": \"2-x\" "
          "is not a VLAN ID or a range LOW-HIGH",
          "t.json:11:85: /networks/0/ports/9/vlan/native_tagged: \"native_tagged\" needs "
          "\"native\"",
          "t.json:12:64: /networks/0/ports/10/vlan/native: \"native\" applies to trunk ports only",
          "t.json:13:33: /networks/0/ports/11/vlan/mode: unknown mode \"hybrid\"; expected "
          "\"access\" or \"trunk\""));
}

TEST(TopologyParseTest, PortVlanNeedsFilteringOnKernelNetworks) {
  EXPECT_THAT(ErrorsOf("{\"networks\": [{\"name\": \"k\", \"ports\": [\n"
                       "  {\"name\": \"p0\", \"vlan\": {\"mode\": \"access\", \"pvid\": 5}}]}]}"),
              ElementsAre("t.json:2:26: /networks/0/ports/0/vlan: port VLAN settings need "
                          "\"vlan\": {\"filtering\": true} on network \"k\""));
}

TEST(TopologyParseTest, VlanListHelpers) {
  VlanBitmap vlans;
  std::string error;
  ASSERT_TRUE(ParseVlanList(" 1, 10 - 12,4094", &vlans, &error)) << error;
  EXPECT_EQ(FormatVlanList(vlans), "1,10-12,4094");
  EXPECT_EQ(vlans.count(), 5u);
  for (const char* bad :
       {"0", "4095", "1-", "-1", "1-2-3", "x", "1,", ",1", "99999999", "+5", "010", "1-09"}) {
    VlanBitmap ignored;
    EXPECT_FALSE(ParseVlanList(bad, &ignored, &error)) << bad;
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(ignored.count(), 0u) << bad;  // nothing is added on failure
  }
  EXPECT_EQ(FormatVlanList(VlanBitmap()), "");
}

TEST(TopologyParseTest, InterfaceNameHelper) {
  EXPECT_EQ(InterfaceNameError("vfb-lab"), "");
  EXPECT_EQ(InterfaceNameError("123456789012345"), "");
  EXPECT_EQ(InterfaceNameError("1234567890123456"), "is 16 bytes long; the limit is 15");
  EXPECT_EQ(InterfaceNameError("a\tb"), "must not contain whitespace");
  EXPECT_EQ(InterfaceNameError("\xc3\xa9"), "must be printable ASCII");
  EXPECT_EQ(InterfaceNameError("."), "must not be \".\" or \"..\"");
}

// ---- STP ----

TEST(TopologyParseTest, StpRanges) {
  EXPECT_THAT(
      ErrorsOf(OneNetwork("\"stp\": {\"priority\": 1000, \"hello_time\": 0,\n"
                          "\"forward_delay\": 31, \"max_age\": 5}, \"bridge\": \"b\"}, {\"name\": "
                          "\"n2\", \"stp\": {\"priority\": 65536}")),
      ElementsAre(
          "t.json:2:23: /networks/0/stp/priority: bridge priority must be a multiple of "
          "4096, got 1000 (nearest: 0 or 4096)",
          "t.json:2:43: /networks/0/stp/hello_time: expected an integer in 1..10, got 0",
          "t.json:3:18: /networks/0/stp/forward_delay: expected an integer in 4..30, got 31",
          "t.json:3:33: /networks/0/stp/max_age: expected an integer in 6..40, got 5",
          "t.json:3:88: /networks/1/stp/priority: expected an integer in 0..61440, got "
          "65536"));
}

TEST(TopologyParseTest, StpTimerRelation) {
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"enabled\": true, \"hello_time\": 2, "
                                  "\"forward_delay\": 4, \"max_age\": 20}")),
              ElementsAre("t.json:2:10: /networks/0/stp: STP timers must satisfy "
                          "2*(forward_delay-1) >= max_age >= 2*(hello_time+1) (802.1D-2004 17.14); "
                          "got 2*(4-1) = 6, max_age = 20, 2*(2+1) = 6"));
  EXPECT_THAT(
      ErrorsOf(OneNetwork("\"stp\": {\"enabled\": true, \"hello_time\": 10, \"max_age\": 20}")),
      ElementsAre("t.json:2:10: /networks/0/stp: STP timers must satisfy "
                  "2*(forward_delay-1) >= max_age >= 2*(hello_time+1) (802.1D-2004 17.14); "
                  "got 2*(15-1) = 28, max_age = 20, 2*(10+1) = 22"));
  // The boundaries themselves are fine.
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"hello_time\": 2, \"forward_delay\": 4, "
                                  "\"max_age\": 6}")),
              IsEmpty());
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"hello_time\": 1, \"forward_delay\": 30, "
                                  "\"max_age\": 40, \"priority\": 0}")),
              IsEmpty());
}

// The relation is STP's rule: with STP off neither datapath runs STP or
// checks it, so a network may keep timers it will use only once STP is on.
// The ranges (which the kernel enforces whatever stp_state) still apply.
TEST(TopologyParseTest, StpTimerRelationOnlyWhenStpIsOn) {
  for (const char* datapath : {"kernel", "userspace"}) {
    const std::string network = std::string("\"datapath\": \"") + datapath + "\", ";
    EXPECT_THAT(ErrorsOf(OneNetwork(network + "\"stp\": {\"hello_time\": 10, \"max_age\": 20}")),
                IsEmpty())
        << datapath;
    EXPECT_THAT(ErrorsOf(OneNetwork(network + "\"stp\": {\"enabled\": false, \"forward_delay\": 4, "
                                              "\"max_age\": 40}")),
                IsEmpty())
        << datapath;
    LoadResult off = ParseTopology(
        OneNetwork(network + "\"stp\": {\"hello_time\": 10, \"max_age\": 20}"), "t.json");
    ASSERT_TRUE(off.ok());
    EXPECT_EQ(off.topology.networks[0].stp.hello_time, 10u);
    EXPECT_EQ(off.topology.networks[0].stp.max_age, 20u);
  }
  EXPECT_THAT(ErrorsOf(OneNetwork("\"stp\": {\"enabled\": false, \"max_age\": 41}")),
              ElementsAre("t.json:2:40: /networks/0/stp/max_age: expected an integer in 6..40, "
                          "got 41"));
}

// JSON Schema's "integer" is any number with a zero fraction, so the schema
// takes 4.0 where it takes 4; the validator does too (one truth; the schema
// test feeds data/good_integral_numbers.json to both).
TEST(TopologyParseTest, NumbersWithAZeroFractionAreIntegers) {
  LoadResult result = ParseTopology(
      OneNetwork(
          "\"stp\": {\"enabled\": true, \"priority\": 4096.0, \"hello_time\": 2e0, "
          "\"forward_delay\": 4.0, \"max_age\": 0.6e1},\n"
          "\"fdb\": {\"ageing_time\": 120.00, \"static\": [{\"mac\": \"52:54:00:00:00:01\", "
          "\"port\": \"p0\", \"vlan\": -0.0}]},\n"
          "\"ports\": [{\"name\": \"p0\", \"cost\": 1E2, \"priority\": 8.0, \"owner\": 0.0}]"),
      "t.json");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  const NetworkConfig& n = result.topology.networks[0];
  EXPECT_EQ(n.stp.priority, 4096u);
  EXPECT_EQ(n.stp.hello_time, 2u);
  EXPECT_EQ(n.stp.forward_delay, 4u);
  EXPECT_EQ(n.stp.max_age, 6u);
  EXPECT_EQ(n.fdb.ageing_time, 120u);
  EXPECT_EQ(n.fdb.static_entries[0].vlan, 0);
  EXPECT_EQ(n.ports[0].cost, 100u);
  EXPECT_EQ(n.ports[0].priority, 8u);
  EXPECT_EQ(n.ports[0].owner, 0u);
  LoadResult trunk = ParseTopology(
      R"({"networks": [{"name": "u", "datapath": "userspace", "ports": [{"name": "t0",
          "vlan": {"mode": "trunk", "allowed": [10.0, "20"], "native": 1.0}}]}]})",
      "t.json");
  ASSERT_TRUE(trunk.ok()) << trunk.errors[0].ToString();
  EXPECT_TRUE(trunk.topology.networks[0].ports[0].vlan.allowed.test(10));
  EXPECT_EQ(trunk.topology.networks[0].ports[0].vlan.native, 1);

  // A fraction, a negative or too large integral value, and the range, still count.
  EXPECT_THAT(
      ErrorsOf(OneNetwork("\"stp\": {\"hello_time\": 2.5, \"max_age\": -6.0, \"forward_delay\": "
                          "4e1, \"priority\": 1e300}")),
      ElementsAre(
          "t.json:2:25: /networks/0/stp/hello_time: expected an integer in 1..10, got 2.5",
          "t.json:2:41: /networks/0/stp/max_age: expected an integer in 6..40, got -6.0",
          "t.json:2:64: /networks/0/stp/forward_delay: expected an integer in 4..30, got 40.0",
          "t.json:2:81: /networks/0/stp/priority: expected an integer in 0..61440, got 1e+300"));
}

// A topology written as UTF-16 or UTF-32 (an editor's "Unicode") is named as
// such, at 1:1, instead of "expected a value" at its first NUL byte.
TEST(TopologyParseTest, Utf16AndUtf32AreNamed) {
  const std::string text = "{\"networks\": []}";
  const auto widen = [&](size_t width, bool big_endian, bool bom) {
    std::string out;
    const auto put = [&](uint32_t unit) {
      for (size_t i = 0; i < width; ++i) {
        const size_t shift = 8 * (big_endian ? width - 1 - i : i);
        out.push_back(static_cast<char>(unit >> shift & 0xff));
      }
    };
    if (bom) put(0xFEFF);
    for (char c : text) put(static_cast<unsigned char>(c));
    return out;
  };
  const std::string tail = "; a topology must be UTF-8 (convert it, e.g. with iconv -t UTF-8)";
  const struct {
    size_t width;
    bool big_endian;
    bool bom;
    const char* name;
  } cases[] = {
      {2, false, true, "UTF-16 (little-endian, with a byte order mark)"},
      {2, true, true, "UTF-16 (big-endian, with a byte order mark)"},
      {2, false, false, "UTF-16 (little-endian, no byte order mark)"},
      {2, true, false, "UTF-16 (big-endian, no byte order mark)"},
      {4, false, true, "UTF-32 (little-endian, with a byte order mark)"},
      {4, true, true, "UTF-32 (big-endian, with a byte order mark)"},
      {4, false, false, "UTF-32 (little-endian, no byte order mark)"},
      {4, true, false, "UTF-32 (big-endian, no byte order mark)"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(ErrorsOf(widen(c.width, c.big_endian, c.bom)),
                ElementsAre(std::string("t.json:1:1: (root): the file is ") + c.name + tail))
        << c.name;
  }
  // A one-character UTF-16 document, and leading whitespace, are seen too.
  EXPECT_THAT(ErrorsOf(std::string(" \0{\0}\0", 6)),
              ElementsAre("t.json:1:1: (root): the file is UTF-16 (little-endian, no byte order "
                          "mark)" +
                          tail));
  // UTF-8, with or without its byte order mark, is read as before.
  EXPECT_THAT(ErrorsOf("\xEF\xBB\xBF" + text), IsEmpty());
  EXPECT_THAT(ErrorsOf(text), IsEmpty());
}

// ---- Ports ----

TEST(TopologyParseTest, PortKindsAndKindSpecificFields) {
  EXPECT_THAT(
      ErrorsOf(
          "{\"networks\": [{\"name\": \"k\", \"ports\": [\n"
          "{\"name\": \"v0\", \"kind\": \"veth\"},\n"
          "{\"name\": \"t0\", \"peer\": \"x\", \"peer_netns\": \"ns\"},\n"
          "{\"name\": \"e0\", \"kind\": \"existing\", \"owner\": 0, \"vnet_hdr\": false},\n"
          "{\"name\": \"u0\", \"kind\": \"vhost-user\"},\n"
          "{\"name\": \"w0\", \"kind\": \"wire\"},\n"
          "{\"name\": \"v1\", \"kind\": \"veth\", \"peer\": \"v1p\", \"peer_netns\": \"a/b\"},\n"
          "{\"name\": \"t1\", \"owner\": \"no-such-user-xyz\", \"group\": -1,"
          " \"cost\": 0, \"priority\": 64}]}]}"),
      ElementsAre(
          "t.json:2:1: /networks/0/ports/0: a veth port needs \"peer\" (the name of the other "
          "end)",
          "t.json:3:24: /networks/0/ports/1/peer: \"peer\" applies to veth ports only",
          "t.json:3:43: /networks/0/ports/1/peer_netns: \"peer_netns\" applies to veth ports only",
          "t.json:4:45: /networks/0/ports/2/owner: \"owner\" applies to tap and vhost-user ports "
          "only",
          "t.json:4:60: /networks/0/ports/2/vnet_hdr: \"vnet_hdr\" applies to tap ports only",
          "t.json:5:1: /networks/0/ports/3: a vhost-user port needs \"socket\" (the path of its "
          "Unix socket)",
          "t.json:5:24: /networks/0/ports/3/kind: vhost-user ports need \"datapath\": "
          "\"userspace\" (a guest's vhost-user rings are served by vfabric's switch; the kernel "
          "bridge cannot take them) on network \"k\"",
          "t.json:6:24: /networks/0/ports/4/kind: unknown kind \"wire\"; expected \"tap\", "
          "\"veth\", \"existing\" or \"vhost-user\"",
          "t.json:7:61: /networks/0/ports/5/peer_netns: invalid network namespace name \"a/b\": "
          "must not contain '/'",
          "t.json:8:25: /networks/0/ports/6/owner: no user named \"no-such-user-xyz\" on this "
          "host",
          "t.json:8:54: /networks/0/ports/6/group: expected an integer in 0..4294967294, got -1",
          "t.json:8:66: /networks/0/ports/6/cost: expected an integer in 1..65535, got 0",
          "t.json:8:81: /networks/0/ports/6/priority: expected an integer in 0..63, got 64"));
}

// The issue's spelling, the defaults (client mode: the frontend owns the
// socket) and the server mode's socket settings.
TEST(TopologyParseTest, VhostUserPorts) {
  LoadResult result = ParseTopology(
      "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": [\n"
      "{\"name\": \"vu0\", \"kind\": \"vhost-user\", \"socket\": \"/run/vfabric/vu0.sock\","
      " \"mode\": \"server\"},\n"
      "{\"name\": \"vu1\", \"kind\": \"vhost-user\", \"socket\": \"/run/q/vu1.sock\"},\n"
      "{\"name\": \"vu2\", \"kind\": \"vhost-user\", \"socket\": \"/run/vfabric/vu2.sock\","
      " \"mode\": \"server\", \"owner\": 107, \"group\": 108, \"permissions\": \"0660\","
      " \"queues\": 1}]}]}",
      "t.json");
  ASSERT_TRUE(result.ok()) << result.errors[0].ToString();
  const std::vector<PortConfig>& ports = result.topology.networks[0].ports;
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].kind, PortKind::kVhostUser);
  EXPECT_EQ(ToString(ports[0].kind), "vhost-user");
  EXPECT_EQ(ports[0].socket, "/run/vfabric/vu0.sock");
  EXPECT_EQ(ports[0].vhost_user_mode, VhostUserMode::kServer);
  EXPECT_FALSE(ports[0].permissions.has_value());
  EXPECT_EQ(ports[0].queues, 1u);
  EXPECT_EQ(ports[1].vhost_user_mode, VhostUserMode::kClient);
  EXPECT_EQ(ToString(ports[1].vhost_user_mode), "client");
  EXPECT_EQ(ports[2].owner, 107u);
  EXPECT_EQ(ports[2].group, 108u);
  EXPECT_EQ(ports[2].permissions, 0660u);
}

TEST(TopologyParseTest, VhostUserPortRules) {
  EXPECT_THAT(
      ErrorsOf(
          "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": [\n"
          "{\"name\": \"a\", \"kind\": \"vhost-user\"},\n"
          "{\"name\": \"b\", \"kind\": \"vhost-user\", \"socket\": \"run/b.sock\"},\n"
          "{\"name\": \"c\", \"kind\": \"vhost-user\", \"socket\": \"/run/\"},\n"
          "{\"name\": \"d\", \"kind\": \"vhost-user\", \"socket\": \"/r\", \"mode\": \"listen\"},\n"
          "{\"name\": \"e\", \"kind\": \"vhost-user\", \"socket\": \"/e\", \"owner\": 0,"
          " \"permissions\": \"0600\"},\n"
          "{\"name\": \"f\", \"kind\": \"vhost-user\", \"socket\": \"/f\", \"mode\": \"server\","
          " \"permissions\": 660},\n"
          "{\"name\": \"g\", \"kind\": \"vhost-user\", \"socket\": \"/g\", \"mode\": \"server\","
          " \"permissions\": \"4755\"},\n"
          "{\"name\": \"h\", \"kind\": \"vhost-user\", \"socket\": \"/h\", \"mode\": \"server\","
          " \"permissions\": \"rw\"},\n"
          "{\"name\": \"i\", \"kind\": \"vhost-user\", \"socket\": \"/i\", \"queues\": 2},\n"
          "{\"name\": \"j\", \"kind\": \"vhost-user\", \"socket\": \"/j\", \"queues\": 0},\n"
          "{\"name\": \"k\", \"kind\": \"vhost-user\", \"socket\": \"/k\", \"guest\": true,"
          " \"multi_queue\": true},\n"
          "{\"name\": \"l\", \"kind\": \"vhost-user\", \"socket\": \"/" +
          std::string(107, 'x') +
          "\"},\n"
          "{\"name\": \"t\", \"socket\": \"/t\", \"mode\": \"server\", \"queues\": 1},\n"
          "{\"name\": \"m\", \"kind\": \"existing\", \"permissions\": \"0600\", \"owner\": 0}]}]}"),
      ElementsAre(
          "t.json:2:1: /networks/0/ports/0: a vhost-user port needs \"socket\" (the path of its "
          "Unix socket)",
          "t.json:3:47: /networks/0/ports/1/socket: the socket of a vhost-user port must be an "
          "absolute path, got \"run/b.sock\"",
          "t.json:4:47: /networks/0/ports/2/socket: the socket path \"/run/\" names a directory, "
          "not a socket",
          "t.json:5:61: /networks/0/ports/3/mode: unknown mode \"listen\"; expected \"client\" or "
          "\"server\"",
          "t.json:6:62: /networks/0/ports/4/owner: \"owner\" applies to vhost-user ports in "
          "server mode only (in client mode the frontend owns the socket)",
          "t.json:6:80: /networks/0/ports/4/permissions: \"permissions\" applies to vhost-user "
          "ports in server mode only (in client mode the frontend owns the socket)",
          "t.json:7:86: /networks/0/ports/5/permissions: expected a string of octal digits like "
          "\"0660\", got an integer",
          "t.json:8:86: /networks/0/ports/6/permissions: permissions \"4755\" set more than the "
          "read/write/execute bits (at most \"0777\")",
          "t.json:9:86: /networks/0/ports/7/permissions: expected permission bits as octal "
          "digits like \"0660\", got \"rw\"",
          "t.json:10:63: /networks/0/ports/8/queues: vhost-user ports take one queue pair for "
          "now (multiqueue is not supported yet), got 2",
          "t.json:11:63: /networks/0/ports/9/queues: expected an integer in 1..32768, got 0",
          "t.json:12:62: /networks/0/ports/10/guest: \"guest\" applies to tap ports only",
          "t.json:12:83: /networks/0/ports/10/multi_queue: \"multi_queue\" applies to tap ports "
          "only",
          "t.json:13:47: /networks/0/ports/11/socket: the socket path is 108 bytes long; a Unix "
          "socket's path takes at most 107",
          "t.json:14:25: /networks/0/ports/12/socket: \"socket\" applies to vhost-user ports only",
          "t.json:14:39: /networks/0/ports/12/mode: \"mode\" applies to vhost-user ports only",
          "t.json:14:59: /networks/0/ports/12/queues: \"queues\" applies to vhost-user ports only",
          "t.json:15:50: /networks/0/ports/13/permissions: \"permissions\" applies to vhost-user "
          "ports only",
          "t.json:15:67: /networks/0/ports/13/owner: \"owner\" applies to tap and vhost-user "
          "ports only"));
}

// A vhost-user port lives on the userspace switch only, and a socket serves
// one port across all networks (and files).
TEST(TopologyParseTest, VhostUserPortsNeedTheUserspaceDatapathAndOwnSockets) {
  EXPECT_THAT(
      ErrorsOf("{\"networks\": [{\"name\": \"k\", \"ports\": [\n"
               "{\"name\": \"a\", \"kind\": \"vhost-user\", \"socket\": \"/s/a\"}]},\n"
               "{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": [\n"
               "{\"name\": \"b\", \"kind\": \"vhost-user\", \"socket\": \"/s/a\"},\n"
               "{\"name\": \"c\", \"kind\": \"vhost-user\", \"socket\": \"/s/c\"}]},\n"
               "{\"name\": \"v\", \"datapath\": \"userspace\", \"ports\": [\n"
               "{\"name\": \"d\", \"kind\": \"vhost-user\", \"socket\": \"/s/c\","
               " \"mode\": \"server\"}]}]}"),
      ElementsAre("t.json:2:23: /networks/0/ports/0/kind: vhost-user ports need \"datapath\": "
                  "\"userspace\" (a guest's vhost-user rings are served by vfabric's switch; the "
                  "kernel bridge cannot take them) on network \"k\"",
                  "t.json:4:47: /networks/1/ports/0/socket: socket \"/s/a\" is already used by "
                  "vhost-user port \"a\" of network \"k\" (at t.json:2:47)",
                  "t.json:7:47: /networks/2/ports/0/socket: socket \"/s/c\" is already used by "
                  "vhost-user port \"c\" of network \"u\" (at t.json:5:47)"));
  // Across files too.
  LoadResult two = ParseTopologyFiles(
      {{"a.json",
        "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": [{\"name\": "
        "\"a\", \"kind\": \"vhost-user\", \"socket\": \"/s\"}]}]}"},
       {"b.json",
        "{\"networks\": [{\"name\": \"v\", \"datapath\": \"userspace\", \"ports\": [{\"name\": "
        "\"b\", \"kind\": \"vhost-user\", \"socket\": \"/s\"}]}]}"}});
  ASSERT_EQ(two.errors.size(), 1u);
  EXPECT_THAT(two.errors[0].ToString(),
              HasSubstr("b.json:1:110: /networks/0/ports/0/socket: socket \"/s\" is already used "
                        "by vhost-user port \"a\" of network \"u\" (at a.json:1:110)"));
}

TEST(TopologyParseTest, UserspaceDatapathTakesVlansLimitsAndStpWithoutFiltering) {
  EXPECT_THAT(
      ErrorsOf("{\"networks\": [{\"name\": \"f\", \"datapath\": \"userspace\"},\n"
               " {\"name\": \"g\", \"datapath\": \"dpdk\", \"fdb\": {\"max_entries\": 10}}]}"),
      ElementsAre("t.json:2:28: /networks/1/datapath: unknown datapath \"dpdk\"; expected "
                  "\"kernel\" or \"userspace\"",
                  "t.json:2:59: /networks/1/fdb/max_entries: \"max_entries\" applies to "
                  "the userspace datapath only"));
  auto result = ParseTopology(
      "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\",\n"
      " \"stp\": {\"enabled\": true},\n"
      " \"fdb\": {\"max_entries\": 100, \"max_per_port\": 10, \"ageing_time\": 60,\n"
      "  \"static\": [{\"mac\": \"52:54:00:00:00:01\", \"port\": \"a\", \"vlan\": 10}]},\n"
      " \"ports\": [{\"name\": \"a\", \"vlan\": {\"mode\": \"access\", \"pvid\": 10}},\n"
      "  {\"name\": \"b\", \"vlan\": {\"mode\": \"trunk\", \"allowed\": \"10-12\", \"native\": "
      "1}}]}]}",
      "t.json");
  ASSERT_TRUE(result.ok()) << (result.errors.empty() ? "" : result.errors[0].ToString());
  const auto& network = result.topology.networks.at(0);
  EXPECT_EQ(network.datapath, Datapath::kUserspace);
  EXPECT_FALSE(network.vlan.filtering);
  EXPECT_TRUE(network.stp.enabled);
  EXPECT_EQ(network.fdb.max_entries, 100u);
  EXPECT_EQ(network.fdb.max_per_port, 10u);
  EXPECT_EQ(network.fdb.static_entries.at(0).vlan, 10);
  EXPECT_EQ(network.ports.at(0).vlan.mode, VlanMode::kAccess);
  EXPECT_EQ(network.ports.at(0).vlan.pvid, 10);
  EXPECT_EQ(network.ports.at(1).vlan.mode, VlanMode::kTrunk);
  EXPECT_EQ(network.ports.at(1).vlan.native, 1);
  EXPECT_TRUE(network.ports.at(1).vlan.allowed.test(11));
}

// The userspace datapath's RSTP: mode (default rstp there, stp on the
// kernel's), edge, and 802.1D-2004 port cost and priority ranges.
TEST(TopologyParseTest, UserspaceStpModeEdgeAndRstpPortRanges) {
  auto result = ParseTopology(
      "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\", \"stp\": {\"enabled\": "
      "true},\n"
      " \"ports\": [{\"name\": \"a\", \"edge\": true, \"cost\": 200000000, \"priority\": 240},\n"
      "  {\"name\": \"b\"}]},\n"
      " {\"name\": \"v\", \"datapath\": \"userspace\", \"stp\": {\"mode\": \"stp\"}},\n"
      " {\"name\": \"k\", \"stp\": {\"enabled\": true}}]}",
      "t.json");
  ASSERT_TRUE(result.ok()) << (result.errors.empty() ? "" : result.errors[0].ToString());
  const auto& u = result.topology.networks.at(0);
  EXPECT_EQ(u.stp.mode, StpMode::kRstp);
  EXPECT_EQ(u.ports.at(0).edge, std::optional<bool>(true));
  EXPECT_EQ(u.ports.at(0).cost, std::optional<uint32_t>(200000000));
  EXPECT_EQ(u.ports.at(0).priority, std::optional<uint32_t>(240));
  EXPECT_EQ(u.ports.at(1).edge, std::nullopt);
  EXPECT_EQ(result.topology.networks.at(1).stp.mode, StpMode::kStp);
  EXPECT_EQ(result.topology.networks.at(2).stp.mode, StpMode::kStp);

  EXPECT_THAT(
      ErrorsOf(
          "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\",\n"
          " \"stp\": {\"mode\": \"mstp\"},\n"
          " \"ports\": [{\"name\": \"a\", \"cost\": 200000001, \"priority\": 100, \"edge\": 1}]},\n"
          " {\"name\": \"k\", \"ports\": [{\"name\": \"b\", \"cost\": 65536, \"priority\": "
          "64}]}]}"),
      ElementsAre(
          "t.json:2:18: /networks/0/stp/mode: unknown mode \"mstp\"; expected \"rstp\" or "
          "\"stp\"",
          "t.json:3:34: /networks/0/ports/0/cost: expected an integer in 1..200000000, got "
          "200000001",
          "t.json:3:57: /networks/0/ports/0/priority: port priority on the userspace datapath "
          "must be a multiple of 16 (802.1D-2004), got 100 (nearest: 96 or 112)",
          "t.json:3:70: /networks/0/ports/0/edge: expected a boolean, got an integer",
          "t.json:4:48: /networks/1/ports/0/cost: expected an integer in 1..65535, got 65536",
          "t.json:4:67: /networks/1/ports/0/priority: expected an integer in 0..63, got 64"));
}

// ---- FDB ----

TEST(TopologyParseTest, StaticFdbEntries) {
  EXPECT_THAT(
      ErrorsOf("{\"networks\": [{\"name\": \"k\", \"ports\": [{\"name\": \"p1\"}],\n"
               "\"fdb\": {\"ageing_time\": 1000001, \"static\": [\n"
               "{\"mac\": \"52:54:00:00:00:0\", \"port\": \"p1\"},\n"
               "{\"mac\": \"01:00:5e:00:00:01\", \"port\": \"p1\"},\n"
               "{\"mac\": \"ff:ff:ff:ff:ff:ff\", \"port\": \"p1\"},\n"
               "{\"mac\": \"00:00:00:00:00:00\", \"port\": \"p1\"},\n"
               "{\"mac\": \"52:54:00:00:00:01\", \"port\": \"p2\"},\n"
               "{\"mac\": \"52:54:00:00:00:01\", \"port\": \"p1\"},\n"
               "{\"mac\": \"52:54:00:00:00:02\", \"port\": \"p1\", \"vlan\": 5},\n"
               "{\"port\": \"p1\", \"vlan\": 4095}]}}]}"),
      ElementsAre(
          "t.json:2:24: /networks/0/fdb/ageing_time: expected an integer in 0..1000000, got "
          "1000001",
          "t.json:3:9: /networks/0/fdb/static/0/mac: malformed MAC address \"52:54:00:00:00:0\"; "
          "expected six colon-separated hex pairs like \"52:54:00:00:00:01\"",
          "t.json:4:9: /networks/0/fdb/static/1/mac: a static FDB entry needs a unicast MAC "
          "address; 01:00:5e:00:00:01 is multicast (the low bit of the first byte is set)",
          "t.json:5:9: /networks/0/fdb/static/2/mac: a static FDB entry needs a unicast MAC "
          "address; ff:ff:ff:ff:ff:ff is broadcast (the low bit of the first byte is set)",
          "t.json:6:9: /networks/0/fdb/static/3/mac: a static FDB entry needs a unicast MAC "
          "address; 00:00:00:00:00:00 is all-zero",
          "t.json:7:38: /networks/0/fdb/static/4/port: no port named \"p2\" in network \"k\"; did "
          "you mean \"p1\"?",
          "t.json:8:9: /networks/0/fdb/static/5/mac: duplicate static FDB entry for "
          "52:54:00:00:00:01 (first at t.json:7:9)",
          "t.json:9:52: /networks/0/fdb/static/6/vlan: a static FDB entry with a VLAN needs "
          "\"vlan\": {\"filtering\": true} on network \"k\"",
          "t.json:10:1: /networks/0/fdb/static/7: missing required key \"mac\"",
          "t.json:10:24: /networks/0/fdb/static/7/vlan: expected an integer in 0..4094, got "
          "4095"));
}

// A static entry in a VLAN its port is not in could never be used.
TEST(TopologyParseTest, StaticFdbEntriesMustBeInTheirPortsVlan) {
  EXPECT_THAT(
      ErrorsOf("{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\",\n"
               "\"ports\": [{\"name\": \"a\", \"vlan\": {\"mode\": \"access\", \"pvid\": 20}},\n"
               "{\"name\": \"t\", \"kind\": \"veth\", \"peer\": \"t-p\", \"vlan\": {\"mode\": "
               "\"trunk\", \"allowed\": \"10,20-25\", \"native\": 1}},\n"
               "{\"name\": \"n\"}],\n"
               "\"fdb\": {\"static\": [\n"
               "{\"mac\": \"52:54:00:00:00:01\", \"port\": \"a\", \"vlan\": 10},\n"
               "{\"mac\": \"52:54:00:00:00:02\", \"port\": \"a\", \"vlan\": 20},\n"
               "{\"mac\": \"52:54:00:00:00:03\", \"port\": \"t\", \"vlan\": 30},\n"
               "{\"mac\": \"52:54:00:00:00:04\", \"port\": \"t\", \"vlan\": 22},\n"
               "{\"mac\": \"52:54:00:00:00:05\", \"port\": \"t\", \"vlan\": 1},\n"
               "{\"mac\": \"52:54:00:00:00:06\", \"port\": \"n\", \"vlan\": 5},\n"
               "{\"mac\": \"52:54:00:00:00:07\", \"port\": \"n\"}]}}]}"),
      ElementsAre("t.json:6:38: /networks/0/fdb/static/0/port: port \"a\" is not in VLAN 10 "
                  "(access VLAN 20): frames for this static entry could never leave by it",
                  "t.json:8:38: /networks/0/fdb/static/2/port: port \"t\" is not in VLAN 30 "
                  "(trunk 10,20-25, native 1): frames for this static entry could never leave "
                  "by it",
                  "t.json:11:38: /networks/0/fdb/static/5/port: port \"n\" is not in VLAN 5 "
                  "(untagged VLAN 1): frames for this static entry could never leave by it"));
}

// ---- VMs ----

TEST(TopologyParseTest, VmChecks) {
  EXPECT_THAT(
      ErrorsOf(
          "{\"networks\": [{\"name\": \"lab\", \"ports\": [{\"name\": \"up\", \"kind\": "
          "\"veth\", \"peer\": \"up-p\"}]}],\n"
          "\"vms\": [\n"
          "{\"name\": \"a\", \"memory_mb\": 8, \"vcpus\": 65, \"accel\": \"hvf\"},\n"
          "{\"name\": \"b\", \"kernel\": \"k\", \"disk\": \"d\", \"restart\": \"sometimes\"},\n"
          "{\"name\": \"c\", \"disk\": \"d\", \"initrd\": \"i\", \"nics\": [{\"network\": "
          "\"lba\"}]},\n"
          "{\"name\": \"a-very-long-vm-name\", \"disk\": \"d\", \"nics\": [{\"network\": "
          "\"lab\"}]},\n"
          "{\"name\": \"e\", \"disk\": \"d\", \"nics\": [{\"network\": \"lab\", \"port\": "
          "\"up\", \"mac\": \"33:33:00:00:00:01\"},\n"
          "  {\"network\": \"lab\", \"port\": \"up-p\"}, {\"network\": \"lab\", \"port\": "
          "\"c-eth0\"}]},\n"
          "{\"name\": \"c\", \"disk\": \"d\", \"nics\": [{\"network\": \"lab\", \"mac\": "
          "\"52:54:00:00:00:09\"}, {\"network\": \"lab\", \"mac\": \"52:54:00:00:00:09\"}]}"
          "]}"),
      ElementsAre(
          "t.json:3:1: /vms/0: a VM needs \"kernel\" (direct boot) or \"disk\"",
          "t.json:3:28: /vms/0/memory_mb: expected an integer in 16..1048576, got 8",
          "t.json:3:40: /vms/0/vcpus: expected an integer in 1..64, got 65",
          "t.json:3:53: /vms/0/accel: unknown accel \"hvf\"; expected \"auto\", \"kvm\" or "
          "\"tcg\"",
          "t.json:4:38: /vms/1/disk: \"kernel\" and \"disk\" exclude each other; give one",
          "t.json:4:54: /vms/1/restart: unknown restart \"sometimes\"; expected \"no\", "
          "\"on-failure\" or \"always\"",
          "t.json:5:38: /vms/2/initrd: \"initrd\" needs \"kernel\"",
          "t.json:5:64: /vms/2/nics/0/network: no network named \"lba\"; did you mean \"lab\"?",
          "t.json:6:55: /vms/3/nics/0: the default port name \"a-very-long-vm-name-eth0\" is "
          "longer than 15 bytes; set \"port\"",
          "t.json:7:64: /vms/4/nics/0/port: port \"up\" is a veth port of network \"lab\" at "
          "t.json:1:50; a VM NIC needs a tap port",
          "t.json:7:77: /vms/4/nics/0/mac: a VM NIC needs a unicast MAC address; "
          "33:33:00:00:00:01 is multicast (the low bit of the first byte is set)",
          "t.json:8:30: /vms/4/nics/1/port: port \"up-p\" is already used by the veth peer of "
          "port \"up\" (at t.json:1:80)",
          "t.json:8:66: /vms/4/nics/2/port: port \"c-eth0\" is already used by NIC 0 of VM \"c\" "
          "(at t.json:5:52)",
          "t.json:9:10: /vms/5/name: duplicate VM name \"c\" (first at t.json:5:10)",
          "t.json:9:37: /vms/5/nics/0: port \"c-eth0\" is already used by NIC 0 of VM \"c\" (at "
          "t.json:5:52)",
          "t.json:9:111: /vms/5/nics/1/mac: MAC address 52:54:00:00:00:09 is already used by NIC 0 "
          "of VM \"c\" (at t.json:9:63)"));
  EXPECT_THAT(ErrorsOf("{\"vms\": [{\"name\": \"x\"}]}"),
              ElementsAre("t.json:1:10: /vms/0: a VM needs \"kernel\" (direct boot) or \"disk\""));
}

TEST(TopologyParseTest, VmNicBackends) {
  LoadResult ok = ParseTopology(
      "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": ["
      "{\"name\": \"vu9\", \"kind\": \"vhost-user\", \"socket\": \"/s/9\", \"mode\": "
      "\"server\"}]}],\n"
      "\"vms\": [{\"name\": \"a\", \"disk\": \"d\", \"nics\": [{\"network\": \"u\"}, "
      "{\"network\": \"u\", \"backend\": \"vhost-user\"}, {\"network\": \"u\", \"backend\": "
      "\"tap\"}, {\"network\": \"u\", \"backend\": \"vhost-user\", \"port\": \"vu9\"}]}]}",
      "t.json");
  ASSERT_TRUE(ok.errors.empty()) << ok.errors[0].ToString();
  const auto& nics = ok.topology.vms[0].nics;
  ASSERT_EQ(nics.size(), 4u);
  EXPECT_EQ(nics[0].backend, NicBackend::kTap);
  EXPECT_EQ(nics[1].backend, NicBackend::kVhostUser);
  EXPECT_EQ(nics[2].backend, NicBackend::kTap);
  EXPECT_EQ(nics[3].backend, NicBackend::kVhostUser);
  EXPECT_EQ(nics[3].port, "vu9");
  EXPECT_EQ(ToString(NicBackend::kVhostUser), "vhost-user");

  EXPECT_THAT(
      ErrorsOf("{\"networks\": [{\"name\": \"k\"}, {\"name\": \"u\", \"datapath\": "
               "\"userspace\", \"ports\": [\n"
               "{\"name\": \"t0\"}, {\"name\": \"vc\", \"kind\": \"vhost-user\", "
               "\"socket\": \"/s/c\"}]}],\n"
               "\"vms\": [{\"name\": \"a\", \"disk\": \"d\", \"nics\": [\n"
               "{\"network\": \"k\", \"backend\": \"vhost-user\"},\n"
               "{\"network\": \"u\", \"backend\": \"vhost-user\", \"port\": \"t0\"},\n"
               "{\"network\": \"u\", \"backend\": \"vhost-user\", \"port\": \"vc\"},\n"
               "{\"network\": \"u\", \"port\": \"vc\"},\n"
               "{\"network\": \"u\", \"backend\": \"virtio\"}]}]}"),
      ElementsAre(
          "t.json:4:29: /vms/0/nics/0/backend: a vhost-user NIC needs a network with "
          "\"datapath\": \"userspace\" (the switch reads the guest's rings); network \"k\" is a "
          "kernel bridge",
          "t.json:5:51: /vms/0/nics/1/port: port \"t0\" is a tap port of network \"u\" at "
          "t.json:2:10; a vhost-user VM NIC needs a vhost-user port with \"mode\": \"server\"",
          "t.json:6:51: /vms/0/nics/2/port: port \"vc\" is a vhost-user port of network \"u\" at "
          "t.json:2:26; a vhost-user VM NIC needs a vhost-user port with \"mode\": \"server\"",
          "t.json:7:26: /vms/0/nics/3/port: port \"vc\" is a vhost-user port of network \"u\" at "
          "t.json:2:26; a VM NIC needs a tap port",
          "t.json:7:26: /vms/0/nics/3/port: port \"vc\" is already used by NIC 2 of VM \"a\" (at "
          "t.json:6:51)",
          "t.json:8:29: /vms/0/nics/4/backend: unknown backend \"virtio\"; expected \"tap\" or "
          "\"vhost-user\""));
}

// Every error of a document comes out of one pass, in file order.
TEST(TopologyParseTest, AllErrorsInOnePassInFileOrder) {
  const std::string path = testing::SourceDir() + "/tests/unit/topology/data/bad_many.json";
  LoadResult result = LoadTopology({path});
  std::vector<std::string> lines;
  for (const Diagnostic& d : result.errors) {
    lines.push_back(std::to_string(d.where.line) + ":" + std::to_string(d.where.column) + " " +
                    d.where.pointer);
    EXPECT_EQ(d.where.file, path);
  }
  EXPECT_THAT(lines,
              ElementsAre("3:6 /networks/0/brigde", "4:26 /networks/0/stp/priority",
                          "5:33 /networks/0/fdb/static/0/mac", "6:25 /networks/0/ports/0/name",
                          "7:25 /networks/0/ports/1/name", "8:39 /networks/0/ports/2/vlan",
                          "9:14 /networks/1/name",  // duplicate network name
                          "9:14 /networks/1/name",  // its default bridge name "vfb-lab"
                          "11:59 /vms/0/nics/0/network"));
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.topology.networks, IsEmpty());  // no model when anything is wrong
}

// ---- Limits of the datapaths ----

// `count` ports "p0".."pN", one a line: port i is at line i + 2, column 1.
std::string ManyPorts(const std::string& datapath, size_t count, const std::string& vms = "") {
  std::string text =
      "{\"networks\": [{\"name\": \"big\", \"datapath\": \"" + datapath + "\", \"ports\": [\n";
  for (size_t i = 0; i < count; ++i) {
    text += "{\"name\": \"p" + std::to_string(i) + "\"}" + (i + 1 < count ? ",\n" : "\n");
  }
  return text + "]}]" + vms + "}\n";
}

// A Linux bridge numbers its ports 1..1023 (the 1,024th gets EXFULL): the
// first port too many is refused offline, at its position.
TEST(TopologyParseTest, KernelBridgePortLimit) {
  EXPECT_EQ(kMaxKernelBridgePorts, 1023u);
  EXPECT_THAT(ErrorsOf(ManyPorts("kernel", 1023)), IsEmpty());
  const std::string message =
      "t.json:1025:1: /networks/0/ports/1023: port 1024 of network \"big\" is one too many: a "
      "Linux bridge takes at most 1023 ports (port numbers 1..1023), VM NIC taps included";
  EXPECT_THAT(ErrorsOf(ManyPorts("kernel", 1024)), ElementsAre(message));
  // 1,025 ports: one error, at the first port too many.
  EXPECT_THAT(ErrorsOf(ManyPorts("kernel", 1025)), ElementsAre(message));
}

// VM NICs add a tap each to their network (unless they name a tap it
// declares): they count, and the first NIC too many carries the error.
TEST(TopologyParseTest, KernelBridgePortLimitCountsVmNics) {
  const std::string vms =
      ",\n\"vms\": [{\"name\": \"vm1\", \"disk\": \"d\", \"nics\": [\n"
      "{\"network\": \"big\", \"port\": \"p0\"},\n"  // a declared tap: no new port
      "{\"network\": \"big\"},\n"                    // port 1023
      "{\"network\": \"big\"}]}]";                   // port 1024: one too many
  const std::string text = ManyPorts("kernel", 1022, vms);
  EXPECT_THAT(ErrorsOf(text),
              ElementsAre("t.json:1028:1: /vms/0/nics/2: the tap of NIC 2 of VM \"vm1\" would "
                          "be port 1024 of network \"big\": a Linux bridge takes at most 1023 "
                          "ports (port numbers 1..1023), VM NIC taps included"));
  EXPECT_THAT(ErrorsOf(ManyPorts("kernel", 1021, vms)), IsEmpty());
}

// The userspace switch has 1,024 port slots (fdb::Config::max_ports).
TEST(TopologyParseTest, UserspaceSwitchPortLimit) {
  EXPECT_EQ(kMaxUserspaceSwitchPorts, 1024u);
  EXPECT_THAT(ErrorsOf(ManyPorts("userspace", 1024)), IsEmpty());
  EXPECT_THAT(ErrorsOf(ManyPorts("userspace", 1025)),
              ElementsAre("t.json:1026:1: /networks/0/ports/1024: port 1025 of network \"big\" "
                          "is one too many: vfabric's switch takes at most 1024 ports, VM NIC "
                          "taps included"));
}

// "guest": a tap a guest netd does not run opens; other kinds refuse it.
TEST(TopologyParseTest, GuestTapPorts) {
  auto loaded = ParseTopology(
      "{\"networks\": [{\"name\": \"u\", \"datapath\": \"userspace\", \"ports\": ["
      "{\"name\": \"g0\", \"guest\": true}, {\"name\": \"t0\"}]}]}",
      "t.json");
  ASSERT_TRUE(loaded.ok()) << loaded.errors[0].message;
  EXPECT_TRUE(loaded.topology.networks[0].ports[0].guest);
  EXPECT_FALSE(loaded.topology.networks[0].ports[1].guest);
  EXPECT_THAT(ErrorsOf("{\"networks\": [{\"name\": \"k\", \"ports\": ["
                       "{\"name\": \"v0\", \"kind\": \"veth\", \"peer\": \"v0p\", \"guest\": true},"
                       "{\"name\": \"t0\", \"guest\": 1}]}]}"),
              ElementsAre("t.json:1:94: /networks/0/ports/0/guest: \"guest\" applies to tap ports "
                          "only",
                          "t.json:1:124: /networks/0/ports/1/guest: expected a boolean, got an "
                          "integer"));
}

// Issue 18: a kernel network's bridge as a host link: "mac", "mtu",
// "addresses", each checked where it is written.
TEST(TopologyParseTest, BridgeMacMtuAndAddresses) {
  LoadResult good = ParseTopology(R"({"networks": [{"name": "a", "mac": "02:11:22:33:44:55",
      "mtu": 9000, "addresses": ["10.0.0.1/24", "FD00::0001/64"]}]})",
                                  "t.json");
  ASSERT_TRUE(good.ok()) << good.errors[0].ToString();
  const NetworkConfig& a = good.topology.networks[0];
  EXPECT_EQ(a.mac->ToString(), "02:11:22:33:44:55");
  EXPECT_EQ(a.mtu, 9000u);
  ASSERT_EQ(a.addresses->size(), 2u);
  EXPECT_EQ((*a.addresses)[0].ToString(), "10.0.0.1/24");
  EXPECT_EQ((*a.addresses)[1].ToString(), "fd00::1/64");
  LoadResult unset = ParseTopology(R"({"networks": [{"name": "a"}]})", "t.json");
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset.topology.networks[0].mac);
  EXPECT_FALSE(unset.topology.networks[0].mtu);
  EXPECT_FALSE(unset.topology.networks[0].addresses);

  EXPECT_THAT(ErrorsOf(R"({"networks": [{"name": "a", "mac": "02:11:22:33:44"}]})"),
              ElementsAre(HasSubstr("/networks/0/mac: malformed MAC address")));
  EXPECT_THAT(ErrorsOf(R"({"networks": [{"name": "a", "mac": "03:11:22:33:44:55"}]})"),
              ElementsAre(HasSubstr("/networks/0/mac: a bridge needs a unicast MAC address; "
                                    "03:11:22:33:44:55 is multicast")));
  EXPECT_THAT(ErrorsOf(R"({"networks": [{"name": "a", "mtu": 67}]})"),
              ElementsAre(HasSubstr("/networks/0/mtu")));
  EXPECT_THAT(ErrorsOf(R"({"networks": [{"name": "a", "mtu": 65536}]})"),
              ElementsAre(HasSubstr("/networks/0/mtu")));
  EXPECT_THAT(
      ErrorsOf(R"({"networks": [{"name": "a", "addresses": ["10.0.0.1", "10.0.0.300/24",
          "10.0.0.2/33", "fd00::1/129", "224.0.0.1/24", 5, "10.0.0.3/x"]}]})"),
      ElementsAre(HasSubstr("/networks/0/addresses/0: invalid address \"10.0.0.1\": no prefix "
                            "length"),
                  HasSubstr("/networks/0/addresses/1: invalid address \"10.0.0.300/24\": "
                            "\"10.0.0.300\" is not an IPv4 or IPv6 address"),
                  HasSubstr("/networks/0/addresses/2: invalid address \"10.0.0.2/33\": prefix "
                            "length 33 is more than 32"),
                  HasSubstr("/networks/0/addresses/3: invalid address \"fd00::1/129\": prefix "
                            "length 129 is more than 128"),
                  HasSubstr("/networks/0/addresses/4: invalid address \"224.0.0.1/24\": a host "
                            "address must be unicast, not multicast"),
                  HasSubstr("/networks/0/addresses/5"),
                  HasSubstr("/networks/0/addresses/6: invalid address \"10.0.0.3/x\": prefix "
                            "length \"x\" is not a number")));
  EXPECT_THAT(ErrorsOf(R"({"networks": [{"name": "a",
      "addresses": ["10.0.0.1/24", "10.0.0.1/16", "fd00::1/64", "fd00:0::1/64"]}]})"),
              ElementsAre(HasSubstr("/networks/0/addresses/1: address 10.0.0.1 is listed twice "
                                    "(as \"10.0.0.1/24\" before)"),
                          HasSubstr("/networks/0/addresses/3: address fd00::1 is listed twice")));
  EXPECT_THAT(ErrorsOf(R"({"networks": [{"name": "u", "datapath": "userspace",
      "mac": "02:11:22:33:44:55", "addresses": []}]})"),
              ElementsAre(HasSubstr("/networks/0/mac: \"mac\" applies to a kernel network's "
                                    "Linux bridge; a userspace network has none"),
                          HasSubstr("/networks/0/addresses: \"addresses\" applies")));
}

// A bridge's pinned MAC is unique among the host's bridges and guests' NICs,
// and a host address belongs to one network's bridge (each network checked
// alone let both through).
TEST(TopologyParseTest, BridgeMacsAndAddressesAreUniqueAcrossNetworks) {
  EXPECT_THAT(
      ErrorsOf(R"({"networks": [
  {"name": "a", "mac": "02:11:22:33:44:55", "addresses": ["10.0.0.1/24", "fd00::1/64"]},
  {"name": "b", "mac": "02:11:22:33:44:55", "addresses": ["10.0.0.1/16", "fd00:0::1/64"]}],
  "vms": [{"name": "vm", "kernel": "k", "nics": [{"network": "a", "mac": "02:11:22:33:44:55"}]}]})"),
      ElementsAre("t.json:3:24: /networks/1/mac: MAC address 02:11:22:33:44:55 is already used by "
                  "the bridge of network \"a\" (at t.json:2:24)",
                  "t.json:3:59: /networks/1/addresses/0: address 10.0.0.1 is already on the bridge "
                  "of network \"a\" (at t.json:2:59): one host address belongs to one network",
                  "t.json:3:74: /networks/1/addresses/1: address fd00::1 is already on the bridge "
                  "of network \"a\" (at t.json:2:74): one host address belongs to one network",
                  HasSubstr("/vms/0/nics/0/mac: MAC address 02:11:22:33:44:55 is already used by "
                            "the bridge of network \"a\" (at t.json:2:24)")));
  LoadResult apart = ParseTopology(R"({"networks": [
  {"name": "a", "mac": "02:11:22:33:44:55", "addresses": ["10.0.0.1/24"]},
  {"name": "b", "mac": "02:11:22:33:44:56", "addresses": ["10.0.0.2/24"]}]})",
                                   "t.json");
  EXPECT_TRUE(apart.ok()) << apart.errors[0].ToString();
}

}  // namespace
}  // namespace vfabric::topology
