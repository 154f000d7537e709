#include "vfabric/netd/controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_kernel.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using testing::FakeKernel;
using ::testing::HasSubstr;

constexpr const char* kLab = R"({
  "networks": [
    {"name": "lab", "bridge": "vfb-lab",
     "stp": {"enabled": true, "priority": 4096, "hello_time": 1, "forward_delay": 4, "max_age": 6},
     "fdb": {"ageing_time": 120,
             "static": [{"mac": "52:54:00:00:00:01", "port": "vm1-eth0"}]},
     "ports": [{"name": "vm1-eth0", "kind": "tap", "cost": 10},
               {"name": "uplink0", "kind": "veth", "peer": "uplink0-p"}]}
  ]
})";

json Request(const std::string& verb, json args = json::object()) {
  return {{"version", 1}, {"id", 42}, {"verb", verb}, {"args", std::move(args)}};
}

json Files(const std::string& text, const std::string& name = "lab.json") {
  return {{"files", json::array({{{"name", name}, {"text", text}}})}};
}

class ControllerTest : public ::testing::Test {
 protected:
  FakeKernel kernel_;
  Controller controller_{kernel_, kernel_.features};
};

TEST_F(ControllerTest, Hello) {
  json answer = controller_.Handle(Request("hello"));
  EXPECT_EQ(answer["ok"], true);
  EXPECT_EQ(answer["id"], 42);
  EXPECT_EQ(answer["version"], 1);
  EXPECT_EQ(answer["result"]["server"], "netd");
  EXPECT_EQ(answer["result"]["protocol"], 1);
}

TEST_F(ControllerTest, RejectsBadRequestsWithCodes) {
  EXPECT_EQ(controller_.Handle(json::array())["error"]["code"], "bad_request");
  EXPECT_EQ(controller_.Handle({{"verb", "hello"}})["error"]["code"], "bad_request");
  json wrong_version = {{"version", 9}, {"verb", "hello"}};
  EXPECT_EQ(controller_.Handle(wrong_version)["error"]["code"], "version");
  EXPECT_EQ(controller_.Handle(Request("frobnicate"))["error"]["message"],
            "unknown verb \"frobnicate\"");
  EXPECT_EQ(controller_.Handle(Request("network.show"))["error"]["message"],
            "missing argument \"name\"");
  EXPECT_EQ(controller_.Handle(Request("network.show", {{"name", 3}}))["error"]["message"],
            "argument \"name\" must be a string");
  EXPECT_EQ(controller_.Handle(Request("fdb.show", {{"network", "nope"}}))["error"]["code"],
            "not_found");
  EXPECT_EQ(controller_.Handle(Request("plan", {{"files", "x"}}))["error"]["code"], "bad_request");
}

TEST_F(ControllerTest, PlanChangesNothingAndApplyDoes) {
  json plan = controller_.Handle(Request("plan", Files(kLab)));
  ASSERT_EQ(plan["ok"], true) << plan.dump();
  EXPECT_EQ(plan["result"]["operations"][0]["op"], "create_bridge");
  EXPECT_EQ(plan["result"]["operations"][0]["object"], "vfb-lab");
  EXPECT_TRUE(kernel_.calls.empty());
  EXPECT_EQ(controller_.Desired().networks.size(), 0u);

  json apply = controller_.Handle(Request("apply", Files(kLab)));
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  EXPECT_EQ(apply["result"]["changed"], plan["result"]["operations"].size());
  ASSERT_NE(kernel_.Find("vm1-eth0"), nullptr);
  EXPECT_EQ(controller_.Desired().networks.size(), 1u);

  json again = controller_.Handle(Request("apply", Files(kLab)));
  EXPECT_EQ(again["result"]["changed"], 0);
}

// Issue 21: `apply` of one network's file plans and applies that network
// alone: a change to one port among 10,000 must not read and plan them all.
// Drift of the network it names is repaired with it (a link deleted behind
// netd's back is made again); another network's drift waits for the full
// pass (the repair its kernel events arm, the resync).
TEST_F(ControllerTest, AnApplyPlansTheNetworksItNamesAlone) {
  constexpr const char* kEdge = R"({"networks": [{"name": "edge", "bridge": "vfb-edge",
      "ports": [{"name": "e1", "kind": "tap"}]}]})";
  constexpr const char* kEdgeTwoPorts = R"({"networks": [{"name": "edge", "bridge": "vfb-edge",
      "ports": [{"name": "e1", "kind": "tap"}, {"name": "e2", "kind": "tap"}]}]})";
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kEdge, "edge.json")))["ok"], true);
  ASSERT_TRUE(kernel_.DeleteLink("vm1-eth0").ok());  // lab's drift
  ASSERT_TRUE(kernel_.DeleteLink("e1").ok());        // edge's

  kernel_.reads.clear();
  json plan = controller_.Handle(Request("plan", Files(kEdgeTwoPorts, "edge.json")));
  ASSERT_EQ(plan["ok"], true) << plan.dump();
  // edge's links alone, and of the FDB its bridge's (the kernel walks a
  // bridge's table once per port: every bridge's is most of a dump at
  // 10,000 ports).
  EXPECT_THAT(kernel_.reads,
              ElementsAre("ListLinksNamed e1 e2 vfb-edge", "ListBridgeFdb vfb-edge"));
  json apply = controller_.Handle(Request("apply", Files(kEdgeTwoPorts, "edge.json")));
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  EXPECT_EQ(apply["result"]["operations"], plan["result"]["operations"]);
  std::vector<std::string> objects;
  for (const json& op : apply["result"]["operations"]) {
    EXPECT_EQ(op["network"], "edge") << op.dump();
    objects.push_back(op["object"]);
  }
  EXPECT_THAT(objects, ::testing::IsSupersetOf({"e1", "e2"}));
  EXPECT_NE(kernel_.Find("e1"), nullptr);
  EXPECT_NE(kernel_.Find("e2"), nullptr);
  EXPECT_EQ(kernel_.Find("vm1-eth0"), nullptr);  // not the apply's business

  ASSERT_TRUE(controller_.Reconcile().ok());  // the full pass
  EXPECT_NE(kernel_.Find("vm1-eth0"), nullptr);

  // A port the request takes away is read (it is named by the state before
  // only) and deleted.
  kernel_.reads.clear();
  apply = controller_.Handle(Request("apply", Files(kEdge, "edge.json")));
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  EXPECT_EQ(kernel_.Find("e2"), nullptr);
  ASSERT_FALSE(kernel_.reads.empty());
  EXPECT_EQ(kernel_.reads[0], "ListLinksNamed e1 e2 vfb-edge");
}

TEST_F(ControllerTest, InvalidTopologyCarriesDiagnostics) {
  json answer =
      controller_.Handle(Request("apply", Files(R"({"networks": [{"name": 5}]})", "bad.json")));
  ASSERT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["error"]["code"], "invalid");
  ASSERT_GE(answer["error"]["diagnostics"].size(), 1u);
  const json& d = answer["error"]["diagnostics"][0];
  EXPECT_EQ(d["file"], "bad.json");
  EXPECT_EQ(d["line"], 1);
  EXPECT_EQ(d["column"], 24);
  EXPECT_EQ(d["pointer"], "/networks/0/name");
  EXPECT_TRUE(kernel_.calls.empty());
}

TEST_F(ControllerTest, FailedApplyIsUndoneAndForgotten) {
  kernel_.fail = [](const std::string& call) {
    return call == "AddStaticFdb vm1-eth0 52:54:00:00:00:01"
               ? Status::FromErrno("add fdb on vm1-eth0", EINVAL)
               : Status::Ok();
  };
  json answer = controller_.Handle(Request("apply", Files(kLab)));
  ASSERT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["error"]["code"], "failed");
  EXPECT_THAT(answer["error"]["message"].get<std::string>(),
              HasSubstr("add static fdb 52:54:00:00:00:01 on vm1-eth0: add fdb on vm1-eth0: "
                        "Invalid argument (undid"));
  EXPECT_EQ(kernel_.Find("vfb-lab"), nullptr);
  EXPECT_EQ(kernel_.Find("vm1-eth0"), nullptr);
  EXPECT_EQ(controller_.Desired().networks.size(), 0u);
}

TEST_F(ControllerTest, ViewsOfAnAppliedNetwork) {
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  json list = controller_.Handle(Request("network.list"))["result"]["networks"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "lab");
  EXPECT_EQ(list[0]["state"], "ok");
  EXPECT_EQ(list[0]["ports"], 2);
  EXPECT_EQ(list[0]["ports_up"], 0);  // no carrier on the fake kernel's links
  kernel_.Find("vm1-eth0")->oper_up = true;
  EXPECT_EQ(controller_.Handle(Request("network.list"))["result"]["networks"][0]["ports_up"], 1);
  EXPECT_EQ(list[0]["stp"], true);

  json show = controller_.Handle(Request("network.show", {{"name", "lab"}}))["result"]["network"];
  EXPECT_EQ(show["settings"]["forward_delay"], 4);
  EXPECT_EQ(show["settings"]["ageing_time"], 120);
  EXPECT_EQ(show["static_fdb"][0]["mac"], "52:54:00:00:00:01");
  EXPECT_EQ(show["static_fdb"][0]["port"], "vm1-eth0");
  EXPECT_EQ(show["pending"].size(), 0u);

  json ports = controller_.Handle(Request("port.list", {{"network", "lab"}}))["result"]["ports"];
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0]["name"], "vm1-eth0");
  EXPECT_EQ(ports[0]["master"], "vfb-lab");
  EXPECT_EQ(ports[0]["cost"], 10);
  EXPECT_EQ(ports[0]["present"], true);

  // Drift shows as such until repaired.
  ASSERT_TRUE(kernel_.DeleteLink("vm1-eth0").ok());
  list = controller_.Handle(Request("network.list"))["result"]["networks"];
  EXPECT_EQ(list[0]["state"], "drifted");
  EXPECT_EQ(list[0]["ports_up"], 0);
  ASSERT_TRUE(controller_.Reconcile().ok());
  EXPECT_EQ(controller_.Handle(Request("network.list"))["result"]["networks"][0]["state"], "ok");

  json vlan = controller_.Handle(Request("vlan.show", {{"network", "lab"}}))["result"]["vlan"];
  EXPECT_EQ(vlan["supported"], false);
  EXPECT_EQ(vlan["reason"], "fake kernel without CONFIG_BRIDGE_VLAN_FILTERING");
}

// The kernel datapath's stp.show and port.stats read the kernel only
// through the Kernel seam (sysfs included), so they run on the fake.
// Issue 18: libvirt's vnetN, enslaved to a vfabric bridge by libvirt, is
// foreign: netd leaves it there, shows it in port.list and calls the network
// ok; an "existing" port dropped from the topology is still released.
TEST_F(ControllerTest, ForeignBridgePortsStayAndAreShown) {
  constexpr const char* kWithUplink = R"({"networks": [{"name": "lab", "bridge": "vfb-lab",
      "ports": [{"name": "vm1-eth0"}, {"name": "eth9", "kind": "existing"}]}]})";
  constexpr const char* kWithout = R"({"networks": [{"name": "lab", "bridge": "vfb-lab",
      "ports": [{"name": "vm1-eth0"}]}]})";
  kernel_.AddForeignLink("eth9", "veth");
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kWithUplink)))["ok"], true);
  kernel_.AddForeignLink("vnet0", "tun");
  ASSERT_TRUE(kernel_.SetMaster("vnet0", "vfb-lab").ok());
  const int bridge = kernel_.Find("vfb-lab")->ifindex;

  ASSERT_TRUE(controller_.Reconcile().ok());
  EXPECT_EQ(kernel_.Find("vnet0")->master_ifindex, bridge);
  EXPECT_EQ(controller_.Handle(Request("network.list"))["result"]["networks"][0]["state"], "ok");
  json ports = controller_.Handle(Request("port.list", {{"network", "lab"}}))["result"]["ports"];
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[2]["name"], "vnet0");
  EXPECT_EQ(ports[2]["kind"], "foreign");
  EXPECT_EQ(ports[2]["foreign"], true);
  EXPECT_EQ(ports[2]["master"], "vfb-lab");
  EXPECT_EQ(controller_.Handle(Request("plan", Files(kWithUplink)))["result"]["operations"].size(),
            0u);

  ASSERT_EQ(controller_.Handle(Request("apply", Files(kWithout)))["ok"], true);
  EXPECT_EQ(kernel_.Find("eth9")->master_ifindex, 0);
  EXPECT_EQ(kernel_.Find("vnet0")->master_ifindex, bridge);
  ASSERT_TRUE(controller_.Reconcile().ok());
  EXPECT_EQ(kernel_.Find("vnet0")->master_ifindex, bridge);
}

TEST_F(ControllerTest, KernelStpShowPrefersSysfsRootId) {
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  LinkInfo* bridge = kernel_.Find("vfb-lab");
  ASSERT_NE(bridge, nullptr);
  bridge->bridge->bridge_id = (uint64_t{0x1000} << 48) | 0x525400000001ull;
  bridge->bridge->root_id = bridge->bridge->bridge_id;  // what netlink says here
  json stp = controller_.Handle(Request("stp.show", {{"network", "lab"}}))["result"]["stp"];
  EXPECT_EQ(stp["enabled"], true);
  EXPECT_EQ(stp["forward_delay"], 4);
  EXPECT_EQ(stp["bridge_id"], "1000.525400000001");
  EXPECT_EQ(stp["source"], "netlink");
  EXPECT_EQ(stp["is_root"], true);

  // sysfs disagrees: it wins, and netlink's view is kept beside it.
  kernel_.sysfs_root_ids["vfb-lab"] = "0800.525400000009";
  stp = controller_.Handle(Request("stp.show", {{"network", "lab"}}))["result"]["stp"];
  EXPECT_EQ(stp["root_id"], "0800.525400000009");
  EXPECT_EQ(stp["netlink_root_id"], "1000.525400000001");
  EXPECT_EQ(stp["source"], "sysfs");
  EXPECT_EQ(stp["is_root"], false);
}

TEST_F(ControllerTest, KernelPortStatsAreTheLinksCounters) {
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  LinkCounters counters;
  counters.rx_packets = 7;
  counters.rx_bytes = 700;
  counters.tx_packets = 3;
  counters.tx_bytes = 300;
  counters.rx_dropped = 2;
  counters.tx_dropped = 1;
  kernel_.counters["uplink0"] = counters;
  json ports = controller_.Handle(Request("port.stats", {{"network", "lab"}}))["result"]["ports"];
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0]["port"], "vm1-eth0");
  EXPECT_EQ(ports[0]["counters"]["rx_packets"], 0);
  EXPECT_EQ(ports[1]["counters"]["rx_packets"], 7);
  EXPECT_EQ(ports[1]["counters"]["tx_bytes"], 300);
  EXPECT_EQ(ports[1]["counters"]["drops"]["rx_dropped"], 2);
  EXPECT_EQ(ports[1]["counters"]["drops_total"], 3);

  // A port whose link is gone has no counters to show; one asked for by a
  // name the network lacks is an error.
  ASSERT_TRUE(kernel_.DeleteLink("vm1-eth0").ok());
  ports = controller_.Handle(Request("port.stats", {{"network", "lab"}}))["result"]["ports"];
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0]["port"], "uplink0");
  EXPECT_EQ(controller_.Handle(
                Request("port.stats", {{"network", "lab"}, {"port", "x"}}))["error"]["code"],
            "not_found");
}

TEST_F(ControllerTest, NamesMustBeUniqueAcrossNetworks) {
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  json answer = controller_.Handle(Request(
      "apply", Files(R"({"networks": [{"name": "other", "ports": [{"name": "vm1-eth0"}]}]})",
                     "other.json")));
  ASSERT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["error"]["code"], "invalid");
  EXPECT_EQ(answer["error"]["message"],
            "interface name vm1-eth0 is used twice: as a port of network lab and as a port of "
            "network other");
}

// Issue 18: a veth peer's namespace that does not exist is named by plan
// and apply, before anything is done (it used to fail half-way through apply).
TEST_F(ControllerTest, PlanAndApplySayAPeerNetnsIsMissing) {
  const std::string topology = R"({"networks": [{"name": "ns", "ports": [
      {"name": "ns-v0", "kind": "veth", "peer": "ns-p0",
       "peer_netns": "vfabric-test-no-such-netns"}]}]})";
  for (const char* verb : {"plan", "apply"}) {
    json answer = controller_.Handle(Request(verb, Files(topology)));
    ASSERT_EQ(answer["ok"], false) << verb << ": " << answer.dump();
    EXPECT_EQ(answer["error"]["code"], "invalid");
    EXPECT_EQ(answer["error"]["message"],
              "network ns: veth peer ns-p0 goes into network namespace "
              "\"vfabric-test-no-such-netns\", which does not exist (no "
              "/run/netns/vfabric-test-no-such-netns); create it first (ip netns add "
              "vfabric-test-no-such-netns)");
  }
  EXPECT_TRUE(kernel_.calls.empty());
  EXPECT_EQ(controller_.Desired().networks.size(), 0u);
}

// Issue 18: network.delete takes a network off the host; it is refused
// while a VM has a NIC on it and for a network that is not there. Without a
// configuration directory an applied network is kept in memory only, and
// apply says so ("unsaved").
TEST_F(ControllerTest, NetworkDeleteTakesANetworkOffTheHost) {
  json apply = controller_.Handle(Request("apply", Files(kLab)));
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  EXPECT_EQ(apply["result"]["unsaved"], json::array({"lab"}));
  EXPECT_EQ(apply["result"]["saved"], json::object());
  ASSERT_NE(kernel_.Find("vfb-lab"), nullptr);
  ASSERT_EQ(controller_.Handle(Request("apply", Files(R"({"networks": [{"name": "guests"}],
      "vms": [{"name": "vm9", "kernel": "/boot/vmlinuz", "nics": [{"network": "guests"}]}]})",
                                                      "guests.json")))["ok"],
            true);

  json refused = controller_.Handle(Request("network.delete", {{"name", "guests"}}));
  EXPECT_EQ(refused["error"]["code"], "invalid") << refused.dump();
  EXPECT_THAT(refused["error"]["message"].get<std::string>(), HasSubstr("vm vm9"));
  EXPECT_EQ(controller_.Handle(Request("network.delete", {{"name", "nope"}}))["error"]["code"],
            "not_found");

  json deleted = controller_.Handle(Request("network.delete", {{"name", "lab"}}));
  ASSERT_EQ(deleted["ok"], true) << deleted.dump();
  EXPECT_EQ(deleted["result"]["network"], "lab");
  EXPECT_EQ(deleted["result"]["source"], nullptr);
  EXPECT_GE(deleted["result"]["changed"].get<int>(), 1);
  EXPECT_EQ(kernel_.Find("vfb-lab"), nullptr);
  EXPECT_EQ(kernel_.Find("vm1-eth0"), nullptr);
  const json list = controller_.Handle(Request("network.list"))["result"]["networks"];
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["name"], "guests");
  EXPECT_EQ(list[0]["saved"], false);
  EXPECT_EQ(list[0]["applied"], true);
}

// Issue 18: `status` says which netd runs, since when, from which files,
// and each network's state: ok, drifted, waiting (a port's link is not there).
TEST_F(ControllerTest, StatusNamesTheDaemonAndEachNetworksState) {
  using namespace std::chrono_literals;
  controller_.SetDaemonInfo({{"/etc/vfabric/networks"},
                             std::chrono::steady_clock::now() - 3725s,
                             std::chrono::system_clock::now() - 3725s});
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  json status = controller_.Handle(Request("status"));
  ASSERT_EQ(status["ok"], true) << status.dump();
  json result = status["result"];
  EXPECT_EQ(result["server"], "netd");
  EXPECT_EQ(result["version"], std::string(protocol::ProjectVersion()));
  EXPECT_EQ(result["protocol"], 1);
  EXPECT_GE(result["uptime_seconds"].get<int64_t>(), 3725);
  EXPECT_LT(result["uptime_seconds"].get<int64_t>(), 3800);
  EXPECT_EQ(result["config"], json::array({"/etc/vfabric/networks"}));
  ASSERT_EQ(result["networks"].size(), 1u);
  EXPECT_EQ(result["networks"][0], json({{"name", "lab"},
                                         {"datapath", "kernel"},
                                         {"state", "ok"},
                                         {"source", "lab.json"},
                                         {"applied", true},
                                         {"pending", 0}}));
  EXPECT_EQ(result["counts"]["ok"], 1);

  ASSERT_TRUE(kernel_.DeleteLink("vm1-eth0").ok());
  result = controller_.Handle(Request("status"))["result"];
  EXPECT_EQ(result["networks"][0]["state"], "drifted");
  EXPECT_GE(result["networks"][0]["pending"].get<int>(), 1);
  EXPECT_EQ(result["counts"]["drifted"], 1);

  ASSERT_TRUE(controller_.Reconcile().ok());
  ASSERT_EQ(controller_.Handle(Request("apply", Files(R"({"networks": [{"name": "wait",
      "ports": [{"name": "guest-vnet0", "kind": "existing"}]}]})",
                                                      "wait.json")))["ok"],
            true);
  result = controller_.Handle(Request("status"))["result"];
  ASSERT_EQ(result["networks"].size(), 2u);
  EXPECT_EQ(result["networks"][0]["state"], "ok");
  EXPECT_EQ(result["networks"][1]["state"], "waiting");
  EXPECT_EQ(result["networks"][1]["waiting"], json::array({"guest-vnet0"}));
  EXPECT_EQ(result["counts"]["waiting"], 1);
}

// Issue 18: a kernel bridge's MAC is pinned, by default to one derived from
// the machine id and the network (as a userspace tree's bridge address is):
// locally administered unicast, the same at every start.
TEST_F(ControllerTest, AKernelBridgeGetsAStableDerivedMac) {
  controller_.SetMachineId("0123456789abcdef0123456789abcdef");
  ASSERT_EQ(controller_.Handle(Request("apply", Files(kLab)))["ok"], true);
  const MacAddress mac = kernel_.Find("vfb-lab")->mac;
  EXPECT_EQ(mac, TreeBridgeAddress("0123456789abcdef0123456789abcdef", "lab"));
  EXPECT_EQ(mac.bytes[0] & 0x03, 0x02);
  // Moved by hand (or by the kernel, as ports come and go): put back.
  kernel_.Find("vfb-lab")->mac = *MacAddress::Parse("02:00:00:00:00:01");
  std::vector<Operation> repaired;
  ASSERT_TRUE(controller_.Reconcile(&repaired).ok());
  ASSERT_EQ(repaired.size(), 1u);
  EXPECT_EQ(repaired[0].Describe(), "set mac of vfb-lab 02:00:00:00:00:01 -> " + mac.ToString());
  EXPECT_EQ(kernel_.Find("vfb-lab")->mac, mac);
  // "mac" in the topology wins.
  std::string text = kLab;
  text.replace(text.find("\"bridge\": \"vfb-lab\","), 0, "\"mac\": \"02:aa:00:00:00:01\", ");
  ASSERT_EQ(controller_.Handle(Request("apply", Files(text)))["ok"], true);
  EXPECT_EQ(kernel_.Find("vfb-lab")->mac.ToString(), "02:aa:00:00:00:01");
}

}  // namespace
}  // namespace vfabric::netd
