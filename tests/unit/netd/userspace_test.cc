// The pure parts of netd's userspace networks, and the controller's answers
// for userspace networks without a running switch (no root needed).
#include "vfabric/netd/userspace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "vfabric/fdb/fdb.h"
#include "vfabric/netd/controller.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using testing::FakeKernel;
using ::testing::HasSubstr;

topology::NetworkConfig Network(const std::string& text) {
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.ok() ? loaded.topology.networks.at(0) : topology::NetworkConfig{};
}

constexpr const char* kUs = R"({"networks": [{"name": "us", "datapath": "userspace",
  "vlan": {"default_pvid": 5},
  "fdb": {"ageing_time": 0, "max_entries": 100, "max_per_port": 7,
          "static": [{"mac": "52:54:00:00:00:01", "port": "a"},
                     {"mac": "52:54:00:00:00:02", "port": "t", "vlan": 30}]},
  "ports": [{"name": "a", "kind": "veth", "peer": "a-p", "vlan": {"mode": "access", "pvid": 10}},
            {"name": "t", "kind": "veth", "peer": "t-p",
             "vlan": {"mode": "trunk", "allowed": "20-30", "native": 3, "native_tagged": true}},
            {"name": "n", "kind": "veth", "peer": "n-p",
             "vlan": {"mode": "trunk", "allowed": "40"}},
            {"name": "plain"}]}]})";

TEST(UserspaceTest, SwitchVlanConfigFromTheTopology) {
  const topology::NetworkConfig network = Network(kUs);
  ASSERT_EQ(network.ports.size(), 4u);
  bridge::PortVlanConfig access = SwitchVlanConfig(network, network.ports[0].vlan);
  EXPECT_EQ(access.mode, bridge::PortMode::kAccess);
  EXPECT_EQ(access.pvid, 10);
  bridge::PortVlanConfig trunk = SwitchVlanConfig(network, network.ports[1].vlan);
  EXPECT_EQ(trunk.mode, bridge::PortMode::kTrunk);
  EXPECT_EQ(trunk.pvid, 3);
  EXPECT_EQ(trunk.native, bridge::NativeMode::kTagged);
  EXPECT_TRUE(trunk.allowed.Contains(20));
  EXPECT_TRUE(trunk.allowed.Contains(30));
  EXPECT_FALSE(trunk.allowed.Contains(31));
  EXPECT_TRUE(trunk.Validate().ok()) << trunk.Validate().message();
  bridge::PortVlanConfig none = SwitchVlanConfig(network, network.ports[3].vlan);
  EXPECT_EQ(none.mode, bridge::PortMode::kAccess);
  EXPECT_EQ(none.pvid, 5);  // the network's default PVID
}

TEST(UserspaceTest, StaticFdbVlans) {
  const topology::NetworkConfig network = Network(kUs);
  EXPECT_EQ(StaticFdbVlan(network, network.ports[0], 0), 10);  // access PVID
  EXPECT_EQ(StaticFdbVlan(network, network.ports[0], 12), 12);
  EXPECT_EQ(StaticFdbVlan(network, network.ports[1], 0), 3);  // native
  EXPECT_EQ(StaticFdbVlan(network, network.ports[2], 0), 5);  // no native: default
  EXPECT_EQ(StaticFdbVlan(network, network.ports[3], 0), 5);
}

TEST(UserspaceTest, FdbConfigAndGuestPorts) {
  const topology::NetworkConfig network = Network(kUs);
  bridge::FdbSettings config = SwitchFdbConfig(network);
  EXPECT_EQ(config.max_entries, 100u);
  EXPECT_EQ(config.max_per_port, 7u);
  EXPECT_EQ(config.ageing_time_ns, 1u);  // 0 s: expire at once, still learn
  topology::NetworkConfig defaults;
  EXPECT_EQ(SwitchFdbConfig(defaults).max_entries, bridge::FdbSettings{}.max_entries);
  EXPECT_EQ(SwitchFdbConfig(defaults).ageing_time_ns, 300'000'000'000u);

  topology::Topology desired;
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.nics.push_back({"us", std::nullopt, "", {}});
  vm.nics.push_back({"us", std::nullopt, "custom0", {}});
  desired.vms.push_back(vm);
  EXPECT_EQ(GuestPortNames(desired), (std::set<std::string>{"vm1-eth0", "custom0"}));
}

TEST(UserspaceTest, MissingLinksAreReportedAndTheSwitchStillRuns) {
  topology::Topology desired;
  desired.networks.push_back(Network(kUs));
  UserspaceNetworks networks;
  std::vector<std::string> errors = networks.Sync(desired, KernelState{});
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "userspace network us: port a: no such link");
  EXPECT_TRUE(networks.Has("us"));
  auto stats = networks.PortStats("us", "");
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE((*stats)["ports"].empty());
  EXPECT_FALSE(networks.PortStats("us", "a").ok());
  auto fdb = networks.FdbEntries("us");
  ASSERT_TRUE(fdb.ok());
  EXPECT_TRUE((*fdb)["entries"].empty());
  json vlan = networks.VlanJson(desired.networks[0]);
  EXPECT_EQ(vlan["filtering"], true);
  EXPECT_EQ(vlan["ports"][0]["mode"], "access");
  EXPECT_EQ(vlan["ports"][0]["present"], false);
  EXPECT_EQ(vlan["ports"][1]["allowed"], "20-30");
  EXPECT_FALSE(networks.Flush("us", "a", std::nullopt).ok());
  EXPECT_TRUE(networks.Flush("us", "", 10).ok());

  desired.networks.clear();
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_FALSE(networks.Has("us"));
}

std::vector<std::string> Kinds(const std::vector<SwitchChange>& changes) {
  std::vector<std::string> kinds;
  for (const auto& change : changes) kinds.push_back(change.kind + " " + change.object);
  return kinds;
}

TEST(UserspaceTest, PendingListsWhatSyncWouldDoAndKeepsWhatFailed) {
  topology::Topology desired;
  desired.networks.push_back(Network(kUs));
  UserspaceNetworks networks;
  const std::vector<SwitchChange> before = networks.Pending(desired);
  EXPECT_EQ(Kinds(before),
            (std::vector<std::string>{"start_switch us", "add_switch_port a", "add_switch_port t",
                                      "add_switch_port n", "add_switch_port plain",
                                      "add_switch_fdb a", "add_switch_fdb t"}));
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(before[0].description,
            "start userspace switch us (FDB max_entries 100, max_per_port 7, ageing 0 s)");
  EXPECT_EQ(before[1].description, "add port a to switch us (packet socket, access VLAN 10)");
  EXPECT_EQ(before[2].description,
            "add port t to switch us (packet socket, trunk 20-30, native 3)");
  EXPECT_EQ(before[6].description,
            "add static FDB entry 52:54:00:00:00:02 VLAN 30 (port t) to switch us");
  // Pending changes nothing.
  EXPECT_FALSE(networks.Has("us"));

  // No links: the switch starts, the ports (and so their statics) do not,
  // and stay pending.
  ASSERT_EQ(networks.Sync(desired, KernelState{}).size(), 4u);
  EXPECT_EQ(
      Kinds(networks.Pending(desired)),
      (std::vector<std::string>{"add_switch_port a", "add_switch_port t", "add_switch_port n",
                                "add_switch_port plain", "add_switch_fdb a", "add_switch_fdb t"}));

  // A changed network: new limits and ageing, a tree to start.
  topology::Topology changed = desired;
  changed.networks[0].fdb.max_per_port = 9;
  changed.networks[0].fdb.ageing_time = 30;
  changed.networks[0].stp.enabled = true;
  const std::vector<SwitchChange> more = networks.Pending(changed);
  ASSERT_GE(more.size(), 3u);
  EXPECT_EQ(more[0].description,
            "set FDB limits of switch us: max_entries 100 -> 100, max_per_port 7 -> 9");
  EXPECT_EQ(more[1].description, "set FDB ageing of switch us: 0 s -> 30 s");
  EXPECT_EQ(Kinds(more)[6], "start_tree us");

  topology::Topology none;
  EXPECT_EQ(Kinds(networks.Pending(none)), (std::vector<std::string>{"stop_switch us"}));
}

json Request(const std::string& verb, json args = json::object()) {
  return {{"version", 1}, {"verb", verb}, {"args", std::move(args)}};
}

TEST(UserspaceControllerTest, VerbsOnUserspaceAndKernelNetworks) {
  FakeKernel kernel;
  Controller controller(kernel, kernel.features);
  const std::string text = R"({"networks": [
    {"name": "us", "datapath": "userspace", "stp": {"enabled": true},
     "ports": [{"name": "us-a", "kind": "veth", "peer": "us-a-p"}]},
    {"name": "lab", "ports": [{"name": "lab-t0"}]}]})";
  json apply = controller.Handle(
      Request("apply", {{"files", json::array({{{"name", "x.json"}, {"text", text}}})}}));
  ASSERT_EQ(apply["ok"], true) << apply.dump();

  // No switch manager (a dry run): stp.show says so instead of inventing a tree.
  json stp = controller.Handle(Request("stp.show", {{"network", "us"}}));
  EXPECT_EQ(stp["ok"], false);
  EXPECT_EQ(stp["error"]["code"], "unsupported");
  EXPECT_THAT(stp["error"]["message"].get<std::string>(), HasSubstr("no userspace switches"));

  // On a kernel network the fdb verbs go to the kernel (issue 18), and an
  // added entry is desired state: the next plan keeps it.
  json add = controller.Handle(
      Request("fdb.add", {{"network", "lab"}, {"mac", "52:54:00:00:00:01"}, {"port", "lab-t0"}}));
  ASSERT_EQ(add["ok"], true) << add.dump();
  EXPECT_EQ(add["result"]["entries"][0]["port"], "lab-t0");
  EXPECT_EQ(kernel.calls.back(), "AddStaticFdb lab-t0 52:54:00:00:00:01");
  auto lab_statics = [&] {
    for (const auto& network : controller.Desired().networks)
      if (network.name == "lab") return network.fdb.static_entries.size();
    return size_t{99};
  };
  ASSERT_EQ(lab_statics(), 1u);
  std::vector<Operation> repaired;
  ASSERT_TRUE(controller.Reconcile(&repaired).ok());
  EXPECT_TRUE(repaired.empty());
  // A learned entry (as the kernel learns it) goes with flush; the static stays.
  const LinkInfo* lab_t0 = kernel.Find("lab-t0");
  kernel.fdb.push_back({lab_t0->ifindex, lab_t0->master_ifindex,
                        *MacAddress::Parse("52:54:00:00:00:02"), 0, false, false});
  json flush = controller.Handle(Request("fdb.flush", {{"network", "lab"}}));
  ASSERT_EQ(flush["ok"], true) << flush.dump();
  EXPECT_EQ(flush["result"]["count"], 1);
  EXPECT_EQ(flush["result"]["removed"][0]["mac"], "52:54:00:00:00:02");
  ASSERT_EQ(kernel.fdb.size(), 1u);
  EXPECT_TRUE(kernel.fdb[0].is_static);
  json del =
      controller.Handle(Request("fdb.del", {{"network", "lab"}, {"mac", "52:54:00:00:00:01"}}));
  ASSERT_EQ(del["ok"], true) << del.dump();
  EXPECT_EQ(del["result"]["count"], 1);
  EXPECT_TRUE(kernel.fdb.empty());
  EXPECT_EQ(lab_statics(), 0u);
  // On a bridge without VLAN filtering an entry has no VLAN.
  json vlan = controller.Handle(
      Request("fdb.add",
              {{"network", "lab"}, {"mac", "52:54:00:00:00:01"}, {"port", "lab-t0"}, {"vlan", 5}}));
  EXPECT_EQ(vlan["error"]["code"], "bad_request");
  // No switch manager: the userspace network's switch is not running.
  json add_us = controller.Handle(
      Request("fdb.add", {{"network", "us"}, {"mac", "52:54:00:00:00:01"}, {"port", "us-a"}}));
  EXPECT_EQ(add_us["error"]["code"], "not_found");
  json bad_vlan = controller.Handle(
      Request("fdb.del", {{"network", "us"}, {"mac", "52:54:00:00:00:01"}, {"vlan", 4095}}));
  EXPECT_EQ(bad_vlan["error"]["code"], "bad_request");
  json bad_mac =
      controller.Handle(Request("fdb.del", {{"network", "us"}, {"mac", "ff:ff:ff:ff:ff:ff"}}));
  EXPECT_EQ(bad_mac["error"]["code"], "bad_request");
  json no_network =
      controller.Handle(Request("fdb.del", {{"network", "nope"}, {"mac", "52:54:00:00:00:01"}}));
  EXPECT_EQ(no_network["error"]["code"], "not_found");
  json stats = controller.Handle(Request("port.stats", {{"network", "lab"}, {"port", "zz"}}));
  EXPECT_EQ(stats["error"]["code"], "not_found");

  json list = controller.Handle(Request("network.list"));
  ASSERT_EQ(list["ok"], true);
  for (const json& network : list["result"]["networks"]) {
    if (network["name"] == "us") {
      EXPECT_EQ(network["datapath"], "userspace");
      EXPECT_EQ(network["state"], "missing");
    }
  }
}

// The validator refuses a userspace network's port past
// topology::kMaxUserspaceSwitchPorts: that must be the switch's own number of
// port slots (netd's switches take bridge::FdbSettings's default max_ports).
TEST(UserspaceTest, TheTopologysPortLimitIsTheSwitchs) {
  EXPECT_EQ(topology::kMaxUserspaceSwitchPorts, bridge::FdbSettings{}.max_ports);
}

}  // namespace
}  // namespace vfabric::netd
