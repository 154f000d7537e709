#include "vfabric/netctl/format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vfabric::netctl {
namespace {

using nlohmann::json;

json Port(const std::string& network, const std::string& name) {
  return {
      {"network", network},  {"name", name},        {"kind", "tap"},
      {"ifindex", 7},        {"present", true},     {"admin_up", true},
      {"oper_up", true},     {"master", "vfb-lab"}, {"stp_state", "forwarding"},
      {"cost", 100},         {"priority", 32},      {"learning", true},
      {"flood", true},       {"hairpin", false},    {"isolated", false},
      {"bpdu_guard", false}, {"root_block", false}, {"vlan", {{"mode", "access"}, {"pvid", 10}}}};
}

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  Table table({"A", "LONGER", "C"});
  table.AddRow({"wide-cell", "x", ""});
  table.AddRow({"y"});
  EXPECT_EQ(table.ToString(),
            "A          LONGER  C\n"
            "wide-cell  x\n"
            "y\n");
}

TEST(FormatTest, NetworkList) {
  json result = {{"networks",
                  {{{"name", "lab"},
                    {"datapath", "kernel"},
                    {"bridge", "vfb-lab"},
                    {"state", "ok"},
                    {"ports", 3},
                    {"ports_up", 2},
                    {"stp", true}},
                   {{"name", "fast"},
                    {"datapath", "userspace"},
                    {"bridge", ""},
                    {"state", "drifted"},
                    {"ports", 12},
                    {"ports_up", 0},
                    {"stp", false}}}}};
  EXPECT_EQ(FormatNetworkList(result),
            "NAME  DATAPATH   BRIDGE   STATE    PORTS  STP\n"
            "lab   kernel     vfb-lab  ok       2/3    on\n"
            "fast  userspace  -        drifted  0/12   off\n");
}

// Issue 18: where each network came from, when netd says it.
TEST(FormatTest, NetworkListWithSources) {
  json result = {{"networks",
                  {{{"name", "lab"},
                    {"datapath", "kernel"},
                    {"bridge", "vfb-lab"},
                    {"state", "ok"},
                    {"ports", 1},
                    {"ports_up", 1},
                    {"stp", false},
                    {"source", "/etc/vfabric/networks/lab.json"},
                    {"applied", false},
                    {"saved", true}},
                   {{"name", "x"},
                    {"datapath", "kernel"},
                    {"bridge", "vfb-x"},
                    {"state", "ok"},
                    {"ports", 0},
                    {"ports_up", 0},
                    {"stp", false},
                    {"source", "/etc/vfabric/networks/x.json"},
                    {"applied", true},
                    {"saved", true}},
                   {{"name", "y"},
                    {"datapath", "kernel"},
                    {"bridge", "vfb-y"},
                    {"state", "ok"},
                    {"ports", 0},
                    {"ports_up", 0},
                    {"stp", false},
                    {"source", "y.json"},
                    {"applied", true},
                    {"saved", false}}}}};
  EXPECT_EQ(FormatNetworkList(result),
            "NAME  DATAPATH  BRIDGE   STATE  PORTS  STP  SOURCE\n"
            "lab   kernel    vfb-lab  ok     1/1    off  /etc/vfabric/networks/lab.json\n"
            "x     kernel    vfb-x    ok     0/0    off  applied: /etc/vfabric/networks/x.json\n"
            "y     kernel    vfb-y    ok     0/0    off  applied, not saved\n");
  EXPECT_EQ(
      FormatNetworkDelete({{"network", "x"},
                           {"operations", json::array({{{"description", "delete bridge vfb-x"}}})},
                           {"source", "/etc/vfabric/networks/x.json"},
                           {"file_removed", true}}),
      "delete bridge vfb-x\ndeleted network x (removed /etc/vfabric/networks/x.json)\n");
}

TEST(FormatTest, EmptyListsPrintTheHeaderOnly) {
  EXPECT_EQ(FormatNetworkList({{"networks", json::array()}}),
            "NAME  DATAPATH  BRIDGE  STATE  PORTS  STP\n");
  EXPECT_EQ(FormatPortList({{"ports", json::array()}}),
            "NETWORK  PORT  KIND  STATE  STP-STATE  COST  PRIO  FLAGS  VLAN\n");
  EXPECT_EQ(FormatFdbShow({{"entries", json::array()}}), "MAC  VLAN  PORT  FLAGS\n");
}

TEST(FormatTest, PortList) {
  json down = Port("lab", "vm2-eth0");
  down["oper_up"] = false;
  down["learning"] = false;
  down["flood"] = false;
  down["vlan"] = {{"mode", "trunk"}, {"allowed", "10,20-30"}, {"native", 1}};
  json missing = {{"network", "fast"},  {"name", "uplink0"},  {"kind", "veth"},
                  {"present", false},   {"hairpin", true},    {"isolated", true},
                  {"bpdu_guard", true}, {"root_block", true}, {"vlan", {{"mode", "none"}}}};
  json result = {{"ports", {Port("lab", "vm1-eth0"), down, missing}}};
  EXPECT_EQ(FormatPortList(result),
            "NETWORK  PORT      KIND  STATE    STP-STATE   COST  PRIO  FLAGS                       "
            "      VLAN\n"
            "lab      vm1-eth0  tap   up       forwarding  100   32    learn,flood                 "
            "      access 10\n"
            "lab      vm2-eth0  tap   down     forwarding  100   32    -                           "
            "      trunk 10,20-30 native 1\n"
            "fast     uplink0   veth  missing  -           -     -     "
            "hairpin,isolated,guard,rootblock  -\n");
}

TEST(FormatTest, FdbShowWithAndWithoutAge) {
  json entries = {
      {{"mac", "52:54:00:00:00:01"},
       {"vlan", 10},
       {"port", "vm1-eth0"},
       {"static", true},
       {"local", false}},
      {{"mac", "52:54:00:00:00:02"},
       {"vlan", 0},
       {"port", "uplink0"},
       {"static", false},
       {"local", false}},
      {{"mac", "52:54:00:aa:bb:cc"}, {"port", "vfb-lab"}, {"static", true}, {"local", true}}};
  EXPECT_EQ(FormatFdbShow({{"entries", entries}}),
            "MAC                VLAN  PORT      FLAGS\n"
            "52:54:00:00:00:01  10    vm1-eth0  static\n"
            "52:54:00:00:00:02  -     uplink0   learned\n"
            "52:54:00:aa:bb:cc  -     vfb-lab   static,local\n");
  entries[1]["age"] = 12.6;
  EXPECT_EQ(FormatFdbShow({{"entries", entries}}),
            "MAC                VLAN  PORT      FLAGS         AGE\n"
            "52:54:00:00:00:01  10    vm1-eth0  static        -\n"
            "52:54:00:00:00:02  -     uplink0   learned       13s\n"
            "52:54:00:aa:bb:cc  -     vfb-lab   static,local  -\n");
}

TEST(FormatTest, NetworkShow) {
  json network = {{"name", "lab"},
                  {"datapath", "kernel"},
                  {"bridge", "vfb-lab"},
                  {"state", "ok"},
                  {"ports_up", 1},
                  {"stp", true},
                  {"ifindex", 5},
                  {"mac", "52:54:00:12:34:56"},
                  {"admin_up", true},
                  {"settings",
                   {{"stp_enabled", true},
                    {"priority", 4096},
                    {"hello_time", 2},
                    {"forward_delay", 4},
                    {"max_age", 20},
                    {"ageing_time", 300},
                    {"vlan_filtering", false},
                    {"default_pvid", 1}}},
                  {"ports", {Port("lab", "vm1-eth0")}},
                  {"static_fdb",
                   {{{"mac", "52:54:00:00:00:01"},
                     {"vlan", 10},
                     {"port", "vm1-eth0"},
                     {"static", true},
                     {"local", false}}}}};
  EXPECT_EQ(FormatNetworkShow({{"network", network}}),
            "name:            lab\n"
            "datapath:        kernel\n"
            "bridge:          vfb-lab\n"
            "state:           ok\n"
            "ifindex:         5\n"
            "mac:             52:54:00:12:34:56\n"
            "admin:           up\n"
            "ports up:        1/1\n"
            "stp:             on\n"
            "priority:        4096\n"
            "hello time:      2 s\n"
            "forward delay:   4 s\n"
            "max age:         20 s\n"
            "ageing time:     300 s\n"
            "vlan filtering:  off\n"
            "default pvid:    1\n"
            "\n"
            "Ports:\n"
            "PORT      KIND  STATE  STP-STATE   COST  PRIO  FLAGS        VLAN\n"
            "vm1-eth0  tap   up     forwarding  100   32    learn,flood  access 10\n"
            "\n"
            "Static FDB:\n"
            "MAC                VLAN  PORT      FLAGS\n"
            "52:54:00:00:00:01  10    vm1-eth0  static\n");
}

TEST(FormatTest, NetworkShowWithPendingChangesAndAnError) {
  json network = {{"name", "lab"},
                  {"ports", json::array()},
                  {"static_fdb", json::array()},
                  {"pending", {"create bridge vfb-lab", "attach vm1-eth0 to vfb-lab"}},
                  {"error", "bridge VLAN filtering is not supported"}};
  EXPECT_EQ(FormatNetworkShow({{"network", network}}),
            "name:            lab\n"
            "datapath:        -\n"
            "bridge:          -\n"
            "state:           -\n"
            "ifindex:         -\n"
            "mac:             -\n"
            "admin:           -\n"
            "ports up:        -/0\n"
            "stp:             -\n"
            "priority:        -\n"
            "hello time:      -\n"
            "forward delay:   -\n"
            "max age:         -\n"
            "ageing time:     -\n"
            "vlan filtering:  -\n"
            "default pvid:    -\n"
            "error:           bridge VLAN filtering is not supported\n"
            "\n"
            "Pending changes:\n"
            "  create bridge vfb-lab\n"
            "  attach vm1-eth0 to vfb-lab\n"
            "\n"
            "Ports:\n"
            "PORT  KIND  STATE  STP-STATE  COST  PRIO  FLAGS  VLAN\n"
            "\n"
            "Static FDB:\n"
            "MAC  VLAN  PORT  FLAGS\n");
}

TEST(FormatTest, StpShowToleratesAbsentAndExtraFields) {
  json stp = {{"enabled", true},
              {"bridge_id", "1000.525400000001"},
              {"root_id", "1000.525400000001"},
              {"root_port", 0},
              {"root_path_cost", 0},
              {"is_root", true},
              {"topology_change", false},
              {"hello_time", 2},
              {"forward_delay", 4},
              {"max_age", 20},
              {"source", "netlink"},
              {"something_new", {1, 2}},
              {"ports",
               {{{"name", "vm1-eth0"},
                 {"port_id", 0x8001},
                 {"state", "forwarding"},
                 {"role", "designated"},
                 {"cost", 100},
                 {"designated_bridge", "1000.525400000001"},
                 {"future", "x"}},
                {{"name", "trunk0"},
                 {"port_id", "8.002"},
                 {"state", "discarding"},
                 {"role", "alternate"},
                 {"cost", 2000},
                 {"designated_bridge", "8000.525400000009"},
                 {"protocol", "rstp"},
                 {"edge", false}}}}};
  EXPECT_EQ(FormatStpShow({{"stp", stp}}),
            "stp:              enabled\n"
            "bridge id:        1000.525400000001\n"
            "root id:          1000.525400000001\n"
            "root port:        -\n"
            "root path cost:   0\n"
            "this bridge is root\n"
            "topology change:  no\n"
            "hello time:       2 s\n"
            "forward delay:    4 s\n"
            "max age:          20 s\n"
            "source:           netlink\n"
            "\n"
            "PORT      ID      ROLE        STATE       COST  DESIGNATED-BRIDGE  PROTOCOL  EDGE\n"
            "vm1-eth0  0x8001  designated  forwarding  100   1000.525400000001  -         -\n"
            "trunk0    8.002   alternate   discarding  2000  8000.525400000009  rstp      no\n");
}

// A userspace network's tree: mode, the root port by name and number, the
// topology change count and age.
TEST(FormatTest, StpShowOfAUserspaceTree) {
  json stp = {{"enabled", true},
              {"mode", "rstp"},
              {"bridge_id", "2000.2e45b9c5a816"},
              {"root_id", "1000.2e45b9c5a663"},
              {"root_port", 1},
              {"root_port_name", "r12b"},
              {"root_path_cost", 2000},
              {"is_root", false},
              {"topology_change", true},
              {"topology_change_count", 3},
              {"time_since_topology_change", 1.5},
              {"hello_time", 2},
              {"forward_delay", 4},
              {"max_age", 6},
              {"source", "userspace"},
              {"ports",
               {{{"name", "r12b"},
                 {"port_id", 0x8001},
                 {"state", "forwarding"},
                 {"role", "root"},
                 {"cost", 2000},
                 {"designated_bridge", "1000.2e45b9c5a663"},
                 {"protocol", "rstp"},
                 {"edge", false}}}}};
  EXPECT_EQ(FormatStpShow({{"stp", stp}}),
            "stp:                   enabled\n"
            "mode:                  rstp\n"
            "bridge id:             2000.2e45b9c5a816\n"
            "root id:               1000.2e45b9c5a663\n"
            "root port:             r12b (1)\n"
            "root path cost:        2000\n"
            "topology change:       yes\n"
            "topology changes:      3\n"
            "last topology change:  1.5 s ago\n"
            "hello time:            2 s\n"
            "forward delay:         4 s\n"
            "max age:               6 s\n"
            "source:                userspace\n"
            "\n"
            "PORT  ID      ROLE  STATE       COST  DESIGNATED-BRIDGE  PROTOCOL  EDGE\n"
            "r12b  0x8001  root  forwarding  2000  1000.2e45b9c5a663  rstp      no\n");
}

// A switch with STP off that hears BPDUs says so: a neighbour runs STP and a
// loop through this switch would stay open. A zero count prints nothing.
TEST(FormatTest, StpShowWarnsOfBpdusIgnoredWithStpOff) {
  json stp = {{"enabled", false},
              {"mode", "rstp"},
              {"hello_time", 2},
              {"forward_delay", 15},
              {"max_age", 20},
              {"source", "userspace"},
              {"bpdus_ignored", 7},
              {"ports",
               {{{"name", "up0"},
                 {"port_id", nullptr},
                 {"role", "disabled"},
                 {"state", "forwarding"},
                 {"protocol", nullptr},
                 {"edge", nullptr}}}}};
  const std::string out = FormatStpShow({{"stp", stp}});
  EXPECT_THAT(out, ::testing::HasSubstr("bpdus ignored:"));
  EXPECT_THAT(out, ::testing::HasSubstr("  7\n"));
  EXPECT_THAT(out, ::testing::HasSubstr(
                       "warning: a neighbour sends BPDUs and STP is off here: a loop through "
                       "this switch would not be broken\n"));
  stp["bpdus_ignored"] = 0;
  EXPECT_THAT(FormatStpShow({{"stp", stp}}), ::testing::Not(::testing::HasSubstr("bpdus")));
  // With STP on, BPDUs from before the tree started are only counted.
  stp["enabled"] = true;
  stp["bpdus_ignored"] = 2;
  const std::string on = FormatStpShow({{"stp", stp}});
  EXPECT_THAT(on, ::testing::HasSubstr("bpdus ignored:"));
  EXPECT_THAT(on, ::testing::Not(::testing::HasSubstr("warning")));
}

TEST(FormatTest, VlanShow) {
  json vlan = {
      {"filtering", true},
      {"supported", true},
      {"default_pvid", 1},
      {"ports",
       {{{"port", "vm1-eth0"}, {"vlans", {{{"vid", 10}, {"pvid", true}, {"untagged", true}}}}},
        {{"port", "trunk0"},
         {"vlans",
          {{{"vid", 1}, {"pvid", true}, {"untagged", true}},
           {{"vid", 20}, {"pvid", false}, {"untagged", false}}}}}}}};
  EXPECT_EQ(FormatVlanShow({{"vlan", vlan}}),
            "PORT      VLAN  PVID  UNTAGGED\n"
            "vm1-eth0  10    yes   yes\n"
            "trunk0    1     yes   yes\n"
            "trunk0    20    no    no\n");
}

TEST(FormatTest, VlanShowUnsupportedPrintsTheReason) {
  json vlan = {
      {"filtering", false},
      {"supported", false},
      {"reason", "this kernel lacks bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)"}};
  EXPECT_EQ(FormatVlanShow({{"vlan", vlan}}),
            "vlan filtering is not supported: this kernel lacks bridge VLAN filtering "
            "(CONFIG_BRIDGE_VLAN_FILTERING)\n");
}

TEST(FormatTest, PlanAndApply) {
  json ops = {{{"op", "create_bridge"},
               {"object", "vfb-lab"},
               {"description", "create bridge vfb-lab (stp on, priority 4096)"}},
              {{"op", "create_tap"}, {"object", "vm1-eth0"}}};
  EXPECT_EQ(FormatPlan({{"operations", ops}}),
            "create bridge vfb-lab (stp on, priority 4096)\n"
            "create_tap vm1-eth0\n");
  EXPECT_EQ(FormatPlan({{"operations", json::array()}}), "no changes\n");
  EXPECT_EQ(FormatApply({{"operations", ops}, {"changed", 2}}),
            "create bridge vfb-lab (stp on, priority 4096)\n"
            "create_tap vm1-eth0\n"
            "applied 2 changes\n");
  EXPECT_EQ(FormatApply({{"operations", json::array()}, {"changed", 0}}), "no changes\n");
}

TEST(FormatTest, Diagnostic) {
  EXPECT_EQ(FormatDiagnostic({{"file", "lab.json"},
                              {"line", 3},
                              {"column", 17},
                              {"pointer", "/networks/0/bridge"},
                              {"message", "longer than 15 characters"}}),
            "lab.json:3:17: /networks/0/bridge: longer than 15 characters");
}

TEST(FormatTest, MalformedResultsNeverThrow) {
  for (const json& result : {json(nullptr), json(42), json("text"), json::array({1, 2}),
                             json({{"networks", 5},
                                   {"ports", {1, "x", nullptr}},
                                   {"entries", {{{"mac", 5}}}},
                                   {"stp", {{"ports", {{{"port_id", -1}}}}}},
                                   {"vlan", {{"ports", {{{"vlans", 3}}}}}},
                                   {"operations", "x"},
                                   {"network", {{"settings", 3}, {"ports", "x"}}}})}) {
    EXPECT_NO_THROW({
      FormatNetworkList(result);
      FormatNetworkShow(result);
      FormatPortList(result);
      FormatFdbShow(result);
      FormatStpShow(result);
      FormatVlanShow(result);
      FormatPlan(result);
      FormatApply(result);
      FormatDiagnostic(result);
      FormatJson(result);
    }) << result.dump();
  }
}

TEST(FormatTest, JsonIsIndentedTwoSpaces) {
  EXPECT_EQ(FormatJson({{"a", 1}}), "{\n  \"a\": 1\n}\n");
}

}  // namespace
}  // namespace vfabric::netctl
