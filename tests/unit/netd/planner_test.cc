#include "vfabric/netd/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "fake_kernel.h"

namespace vfabric::netd {
namespace {

using ::testing::ElementsAre;
using testing::FakeKernel;
using ::testing::HasSubstr;
using topology::NetworkConfig;
using topology::PortConfig;
using topology::PortKind;
using topology::Topology;

MacAddress Mac(const char* text) { return *MacAddress::Parse(text); }

PortConfig Tap(const std::string& name) {
  PortConfig port;
  port.name = name;
  port.kind = PortKind::kTap;
  return port;
}

PortConfig Veth(const std::string& name, const std::string& peer) {
  PortConfig port;
  port.name = name;
  port.kind = PortKind::kVeth;
  port.peer = peer;
  return port;
}

// A network like configs/lab.json: a bridge with STP, a veth uplink, two taps,
// a static FDB entry.
NetworkConfig Lab() {
  NetworkConfig network;
  network.name = "lab";
  network.bridge = "vfb-lab";
  network.stp.enabled = true;
  network.stp.priority = 4096;
  network.stp.forward_delay = 4;
  network.stp.max_age = 6;
  network.stp.hello_time = 1;
  network.fdb.ageing_time = 120;
  network.ports.push_back(Veth("uplink0", "uplink0-p"));
  PortConfig vm1 = Tap("vm1-eth0");
  vm1.cost = 10;
  vm1.hairpin = true;
  network.ports.push_back(vm1);
  network.ports.push_back(Tap("vm2-eth0"));
  network.fdb.static_entries.push_back({Mac("52:54:00:00:00:01"), "vm1-eth0", 0, {}});
  return network;
}

Topology With(std::vector<NetworkConfig> networks) {
  Topology topology;
  topology.networks = std::move(networks);
  return topology;
}

Result<std::vector<Operation>> PlanFor(FakeKernel& kernel, const Topology& topology) {
  auto state = ReadKernelState(kernel, kernel.features);
  if (!state.ok()) return state.status();
  return Plan(topology, *state);
}

std::vector<std::string> Describe(const std::vector<Operation>& plan) {
  std::vector<std::string> lines;
  for (const auto& op : plan) lines.push_back(op.Describe());
  return lines;
}

// The fake kernel's state by name, so that states can be compared across
// deletions and re-creations (which change ifindexes).
std::string Snapshot(FakeKernel& kernel) {
  std::map<std::string, std::string> by_name;
  for (const LinkInfo& link : kernel.links) {
    std::ostringstream out;
    const LinkInfo* master = kernel.Find(link.master_ifindex);
    out << link.kind << " alias=" << link.alias << " master=" << (master ? master->name : "-")
        << " up=" << link.admin_up;
    if (link.bridge) {
      const auto& s = link.bridge->settings;
      out << " stp=" << s.stp_enabled << " prio=" << s.priority << " fd=" << s.forward_delay_cs
          << " age=" << s.ageing_time_cs;
    }
    if (link.brport) {
      const auto& s = link.brport->settings;
      out << " cost=" << s.cost.value_or(0) << " hairpin=" << s.hairpin.value_or(false);
    }
    if (link.kind == "veth") {
      const LinkInfo* peer = kernel.Find(link.link_ifindex);
      out << " peer=" << (peer ? peer->name : "-");
    }
    by_name[link.name] = out.str();
  }
  std::ostringstream all;
  for (const auto& [name, text] : by_name) all << name << ": " << text << "\n";
  std::vector<std::string> fdb;
  for (const FdbEntry& entry : kernel.fdb) {
    const LinkInfo* port = kernel.Find(entry.port_ifindex);
    fdb.push_back("fdb " + entry.mac.ToString() + " on " + (port ? port->name : "?"));
  }
  std::sort(fdb.begin(), fdb.end());
  for (const auto& line : fdb) all << line << "\n";
  return all.str();
}

TEST(PlannerTest, FreshHostGetsEverythingInOrder) {
  FakeKernel kernel;
  auto plan = PlanFor(kernel, With({Lab()}));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_THAT(Describe(*plan),
              ElementsAre("create bridge vfb-lab (stp on, priority 4096, hello 1s, forward_delay "
                          "4s, max_age 6s, ageing 120s)",
                          "create veth uplink0 (peer uplink0-p)", "set uplink0-p up",
                          "create tap vm1-eth0 (vnet_hdr on, multi_queue off)",
                          "create tap vm2-eth0 (vnet_hdr on, multi_queue off)",
                          "attach uplink0 to bridge vfb-lab", "set uplink0 up",
                          "attach vm1-eth0 to bridge vfb-lab",
                          "set bridge port vm1-eth0 (cost 10, hairpin on)", "set vm1-eth0 up",
                          "attach vm2-eth0 to bridge vfb-lab", "set vm2-eth0 up",
                          "add static fdb 52:54:00:00:00:01 on vm1-eth0", "set vfb-lab up"));
}

TEST(PlannerTest, ApplyingTwiceDoesNothingTheSecondTime) {
  FakeKernel kernel;
  auto plan = PlanFor(kernel, With({Lab()}));
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  const size_t calls = kernel.calls.size();
  auto again = PlanFor(kernel, With({Lab()}));
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(Describe(*again), ElementsAre());
  EXPECT_EQ(kernel.calls.size(), calls);
  const LinkInfo* vm1 = kernel.Find("vm1-eth0");
  ASSERT_NE(vm1, nullptr);
  EXPECT_EQ(vm1->alias, "vfabric:lab");
  EXPECT_EQ(vm1->master_ifindex, kernel.Find("vfb-lab")->ifindex);
  EXPECT_EQ(vm1->brport->settings.cost, 10u);
  EXPECT_EQ(kernel.Find("vfb-lab")->bridge->settings.forward_delay_cs, 400u);
}

TEST(PlannerTest, RepairsDrift) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  // Someone deletes a tap, pulls another port off the bridge and drops the
  // static FDB entry with it.
  ASSERT_TRUE(kernel.DeleteLink("vm1-eth0").ok());
  ASSERT_TRUE(kernel.SetMaster("vm2-eth0", "").ok());
  ASSERT_TRUE(kernel.SetBridgeSettings("vfb-lab", BridgeSettings{}).ok());
  auto plan = PlanFor(kernel, With({Lab()}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Describe(*plan),
              ElementsAre("set bridge vfb-lab: stp off -> on, priority 32768 -> 4096, hello_time "
                          "2s -> 1s, forward_delay 15s -> 4s, max_age 20s -> 6s, ageing_time "
                          "300s -> 120s",
                          "create tap vm1-eth0 (vnet_hdr on, multi_queue off)",
                          "attach vm1-eth0 to bridge vfb-lab",
                          "set bridge port vm1-eth0 (cost 10, hairpin on)", "set vm1-eth0 up",
                          "attach vm2-eth0 to bridge vfb-lab",
                          "add static fdb 52:54:00:00:00:01 on vm1-eth0"));
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))), ElementsAre());
}

// Issue 18: a failed operation is named once, not once by the plan and
// again by the kernel's message that names the same call.
TEST(PlannerTest, AFailedOperationIsNamedOnce) {
  FakeKernel kernel;
  kernel.fail = [](const std::string& call) {
    return call == "CreateBridge vfb-lab"
               ? Status::Error("create bridge vfb-lab: File exists", EEXIST)
               : Status::Ok();
  };
  Status status = ApplyPlan(kernel, *PlanFor(kernel, With({Lab()})));
  EXPECT_EQ(status.message(),
            "create bridge vfb-lab (stp on, priority 4096, hello 1s, forward_delay 4s, max_age 6s, "
            "ageing 120s): File exists (undid 0 operations)");
  EXPECT_EQ(status.error_number(), EEXIST);
}

// Issue 18: a kernel plan line says what a setting was and what it becomes,
// as the userspace switch's lines do.
TEST(PlannerTest, SettingsChangesShowOldAndNew) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  kernel.Find("vfb-lab")->bridge->settings.forward_delay_cs = 1550;
  kernel.Find("vm1-eth0")->brport->settings.cost = 100;
  kernel.Find("vm1-eth0")->brport->settings.hairpin = false;
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))),
              ElementsAre("set bridge vfb-lab: forward_delay 15.5s -> 4s",
                          "set bridge port vm1-eth0: cost 100 -> 10, hairpin off -> on"));
}

// Issue 18: during an STP topology change the kernel ages the FDB fast and
// reports ageing_time = 2 x forward_delay; that is the kernel's STP at work,
// not drift, and writing the configured ageing back would stop it.
TEST(PlannerTest, StpFastAgeingDuringATopologyChangeIsNotDrift) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  BridgeStatus& bridge = *kernel.Find("vfb-lab")->bridge;
  bridge.settings.ageing_time_cs = 2 * bridge.settings.forward_delay_cs;  // 800 cs, not 12000
  bridge.topology_change = 1;
  bridge.topology_change_timer_cs = 350;
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))), ElementsAre());

  // Only the timer still running (the flag read between two updates): the same.
  bridge.topology_change = 0;
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))), ElementsAre());

  // Another setting that drifted meanwhile is repaired, with the configured
  // ageing (and its undo puts the configured value back, not the transient one).
  bridge.settings.priority = 32768;
  auto plan = PlanFor(kernel, With({Lab()}));
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].bridge.ageing_time_cs, 12000u);
  ASSERT_EQ((*plan)[0].undo.size(), 1u);
  EXPECT_EQ((*plan)[0].undo[0].bridge.ageing_time_cs, 12000u);
  EXPECT_EQ((*plan)[0].undo[0].bridge.priority, 32768u);
  bridge.settings.priority = 4096;

  // Once the change is over, the kernel restores the configured ageing; a
  // value that is still 2 x forward_delay then is drift and is repaired.
  bridge.topology_change_timer_cs = 0;
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))),
              ElementsAre("set bridge vfb-lab: ageing_time 8s -> 120s"));

  // Without STP the kernel never ages fast: the same value is drift.
  NetworkConfig no_stp = Lab();
  no_stp.stp.enabled = false;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({no_stp}))).ok());
  kernel.Find("vfb-lab")->bridge->settings.ageing_time_cs = 800;
  kernel.Find("vfb-lab")->bridge->topology_change = 1;
  EXPECT_EQ(PlanFor(kernel, With({no_stp}))->size(), 1u);

  // During a change, an ageing that is not 2 x forward_delay is drift too.
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  kernel.Find("vfb-lab")->bridge->settings.ageing_time_cs = 3000;
  kernel.Find("vfb-lab")->bridge->topology_change = 1;
  EXPECT_EQ(PlanFor(kernel, With({Lab()}))->size(), 1u);
}

TEST(PlannerTest, RemovedPortsAndNetworksLeaveTheHost) {
  FakeKernel kernel;
  NetworkConfig edge;
  edge.name = "edge";
  edge.bridge = "vfb-edge";
  edge.ports.push_back(Tap("e1"));
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab(), edge}))).ok());
  // A foreign link someone enslaved to our bridge.
  kernel.AddForeignLink("dummy0", "dummy");
  ASSERT_TRUE(kernel.SetMaster("dummy0", "vfb-lab").ok());

  NetworkConfig smaller = Lab();
  smaller.ports.pop_back();  // vm2-eth0
  auto plan = PlanFor(kernel, With({smaller}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Describe(*plan),
              ElementsAre("delete link vm2-eth0", "delete link e1", "delete link vfb-edge"));
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_EQ(kernel.Find("vm2-eth0"), nullptr);
  EXPECT_EQ(kernel.Find("vfb-edge"), nullptr);
  ASSERT_NE(kernel.Find("dummy0"), nullptr);  // foreign: left where it is (issue 18)
  EXPECT_EQ(kernel.Find("dummy0")->master_ifindex, kernel.Find("vfb-lab")->ifindex);
}

// Issue 21: an apply of one network's file plans that network alone (10,000
// ports of other networks are neither checked nor planned). Another
// network's drift waits for a full plan; of the marked links no network
// wants, only the named networks' are deleted, and never one another
// network lists.
TEST(PlannerTest, APlanOfSomeNetworksTouchesNothingElse) {
  FakeKernel kernel;
  NetworkConfig edge;
  edge.name = "edge";
  edge.bridge = "vfb-edge";
  edge.ports.push_back(Tap("e1"));
  edge.ports.push_back(Tap("e2"));
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab(), edge}))).ok());
  // Drift in edge: a tap deleted behind netd's back, a setting changed.
  ASSERT_TRUE(kernel.DeleteLink("e1").ok());
  ASSERT_TRUE(kernel.SetLinkUp("e2", false).ok());
  // lab loses vm2-eth0; a link of lab's mark that edge now lists stays.
  ASSERT_TRUE(kernel.CreateTap("e3", {}, OwnerAlias("lab")).ok());
  edge.ports.push_back(Tap("e3"));
  NetworkConfig smaller = Lab();
  smaller.ports.pop_back();  // vm2-eth0
  const Topology desired = With({smaller, edge});

  auto state = ReadKernelState(kernel, kernel.features);
  ASSERT_TRUE(state.ok());
  const std::set<std::string> only{"lab"};
  auto plan = Plan(desired, *state, {}, {}, &only);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_THAT(Describe(*plan), ElementsAre("delete link vm2-eth0"));
  for (const Operation& op : *plan) EXPECT_EQ(op.network, "lab") << op.Describe();

  // edge alone: its drift, e3's mark; nothing of lab's.
  const std::set<std::string> edge_only{"edge"};
  plan = Plan(desired, *state, {}, {}, &edge_only);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_THAT(Describe(*plan), ElementsAre("create tap e1 (vnet_hdr on, multi_queue off)",
                                           "attach e1 to bridge vfb-edge", "set e1 up", "set e2 up",
                                           "set alias of e3 to \"vfabric:edge\"",
                                           "attach e3 to bridge vfb-edge", "set e3 up"));

  // The full plan does both.
  plan = Plan(desired, *state);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->size(), 8u) << ::testing::PrintToString(Describe(*plan));
}

// Issue 18: libvirt's <interface type='bridge'> makes vnetN and enslaves it
// to the named bridge; netd released it within 0.1 s as drift. A link on a
// vfabric bridge that the topology does not name and vfabric did not make is
// foreign: out of the plan, shown by ForeignBridgePorts. Only an "existing"
// port that the topology listed before is released when it leaves.
TEST(PlannerTest, ForeignBridgePortsAreLeftAloneAndDroppedExistingPortsReleased) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  kernel.AddForeignLink("vnet0", "tun");
  ASSERT_TRUE(kernel.SetMaster("vnet0", "vfb-lab").ok());
  kernel.AddForeignLink("eth9", "veth");
  NetworkConfig with_uplink = Lab();
  PortConfig uplink;
  uplink.name = "eth9";
  uplink.kind = PortKind::kExisting;
  with_uplink.ports.push_back(uplink);
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({with_uplink}))).ok());
  EXPECT_EQ(kernel.Find("eth9")->master_ifindex, kernel.Find("vfb-lab")->ifindex);

  auto state = ReadKernelState(kernel, kernel.features);
  ASSERT_TRUE(state.ok());
  EXPECT_THAT(Describe(*Plan(With({with_uplink}), *state)), ElementsAre());
  std::vector<std::string> foreign;
  for (const LinkInfo* link : ForeignBridgePorts(with_uplink, *state))
    foreign.push_back(link->name);
  EXPECT_THAT(foreign, ElementsAre("vnet0"));

  // eth9 leaves the topology: released, as it was listed; vnet0 stays.
  EXPECT_THAT(Describe(*Plan(With({Lab()}), *state)), ElementsAre());
  auto release = Plan(With({Lab()}), *state, {}, {"eth9"});
  ASSERT_TRUE(release.ok());
  EXPECT_THAT(Describe(*release), ElementsAre("release eth9 from its bridge"));
  ASSERT_TRUE(ApplyPlan(kernel, *release).ok());
  EXPECT_EQ(kernel.Find("eth9")->master_ifindex, 0);
  EXPECT_EQ(kernel.Find("vnet0")->master_ifindex, kernel.Find("vfb-lab")->ifindex);
}

TEST(PlannerTest, RemovingAVethDeletesThePairOnce) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  auto plan = PlanFor(kernel, With({}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Describe(*plan), ElementsAre("delete link uplink0", "delete link vm1-eth0",
                                           "delete link vm2-eth0", "delete link vfb-lab"));
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_EQ(Snapshot(kernel), "lo: " + std::string(" alias= master=- up=1") + "\n");
}

TEST(PlannerTest, ForeignLinksAreNeverTakenOver) {
  FakeKernel kernel;
  kernel.AddForeignLink("vm2-eth0", "veth");
  auto plan = PlanFor(kernel, With({Lab()}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "port vm2-eth0 of network lab: a link named vm2-eth0 exists and was not made by "
            "vfabric (kind veth); refusing to touch it: rename the port or remove that link");

  FakeKernel other;
  other.AddForeignLink("vfb-lab", "bridge");
  auto bridge_plan = PlanFor(other, With({Lab()}));
  ASSERT_FALSE(bridge_plan.ok());
  EXPECT_THAT(bridge_plan.status().message(), HasSubstr("bridge vfb-lab of network lab"));
}

TEST(PlannerTest, ExistingPortsAreEnslavedButNeverCreatedOrDeleted) {
  FakeKernel kernel;
  kernel.AddForeignLink("eth9", "dummy");
  NetworkConfig network = Lab();
  PortConfig uplink;
  uplink.name = "eth9";
  uplink.kind = PortKind::kExisting;
  network.ports = {uplink};
  network.fdb.static_entries.clear();
  auto plan = PlanFor(kernel, With({network}));
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_EQ(kernel.Find("eth9")->alias, "");  // not marked as ours
  EXPECT_TRUE(kernel.Find("eth9")->admin_up);
  // Set down by the operator after netd attached it: that is not drift.
  ASSERT_TRUE(kernel.SetLinkUp("eth9", false).ok());
  EXPECT_THAT(Describe(*PlanFor(kernel, With({network}))), ElementsAre());
  EXPECT_EQ(kernel.Find("eth9")->master_ifindex, kernel.Find("vfb-lab")->ifindex);
  // Dropping the network deletes the bridge, which releases eth9; eth9 stays.
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({}))).ok());
  ASSERT_NE(kernel.Find("eth9"), nullptr);
  EXPECT_EQ(kernel.Find("eth9")->master_ifindex, 0);

  // A missing existing link is that port's problem (issue 18): the network
  // is planned without it, and the port waits for its link.
  network.ports[0].name = "eth8";
  auto missing = PlanFor(kernel, With({network}));
  ASSERT_TRUE(missing.ok()) << missing.status().message();
  for (const Operation& op : *missing) EXPECT_NE(op.object, "eth8") << op.Describe();
  auto state = ReadKernelState(kernel, kernel.features);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(PortLinkWaiting(network.ports[0], *state),
            "no link named eth8 exists yet; it is attached when it appears");
  EXPECT_EQ(PortLinkWaiting(network.ports[0], KernelState{}).empty(), false);
}

TEST(PlannerTest, VlanFilteringNeedsTheKernelFeature) {
  FakeKernel kernel;
  NetworkConfig network = Lab();
  network.vlan.filtering = true;
  auto plan = PlanFor(kernel, With({network}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "network lab: bridge VLAN filtering is not supported by this kernel (fake kernel "
            "without CONFIG_BRIDGE_VLAN_FILTERING); VLANs on this host need \"datapath\": "
            "\"userspace\"");
  EXPECT_TRUE(kernel.calls.empty());
}

TEST(PlannerTest, PortVlansWhenTheKernelFilters) {
  FakeKernel kernel;
  kernel.features.bridge_vlan_filtering = true;
  NetworkConfig network;
  network.name = "v";
  network.bridge = "vfb-v";
  network.vlan.filtering = true;
  PortConfig access = Tap("a0");
  access.vlan.mode = topology::VlanMode::kAccess;
  access.vlan.pvid = 10;
  PortConfig trunk = Tap("t0");
  trunk.vlan.mode = topology::VlanMode::kTrunk;
  trunk.vlan.allowed.set(20);
  trunk.vlan.allowed.set(21);
  trunk.vlan.native = 1;
  network.ports = {access, trunk};
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({network}))).ok());
  const int a0 = kernel.Find("a0")->ifindex, t0 = kernel.Find("t0")->ifindex;
  EXPECT_THAT(
      kernel.port_vlans,
      ElementsAre(PortVlanEntry{a0, 10, true, true}, PortVlanEntry{t0, 1, true, true},
                  PortVlanEntry{t0, 20, false, false}, PortVlanEntry{t0, 21, false, false}));
  // The kernel's default membership on a new port is removed when unwanted.
  kernel.port_vlans.push_back({a0, 1, false, true});
  auto plan = PlanFor(kernel, With({network}));
  EXPECT_THAT(Describe(*plan), ElementsAre("delete vlan 1 from a0"));
}

// Fails the n-th mutating call of a fresh apply, for every n: the host must
// come back exactly as it was.
TEST(PlannerTest, FailureAnywhereUndoesEverything) {
  FakeKernel probe;
  const Topology topology = With({Lab()});
  const size_t steps = PlanFor(probe, topology)->size();
  ASSERT_GT(steps, 10u);
  for (size_t n = 0; n < steps; ++n) {
    FakeKernel kernel;
    kernel.AddForeignLink("eth0", "dummy");
    const std::string before = Snapshot(kernel);
    size_t count = 0;
    kernel.fail = [&](const std::string& call) {
      return count++ == n ? Status::FromErrno("injected " + call, EIO) : Status::Ok();
    };
    auto plan = PlanFor(kernel, topology);
    ASSERT_TRUE(plan.ok());
    Status status = ApplyPlan(kernel, *plan);
    ASSERT_FALSE(status.ok()) << "step " << n;
    EXPECT_THAT(status.message(),
                HasSubstr("Input/output error (undid " + std::to_string(n) + " operation"));
    kernel.fail = nullptr;
    EXPECT_EQ(Snapshot(kernel), before) << "after failing step " << n << ": " << status.message();
  }
}

TEST(PlannerTest, FailedUpdateRestoresOldSettings) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  const std::string before = Snapshot(kernel);
  NetworkConfig changed = Lab();
  changed.stp.priority = 8192;
  changed.ports[1].cost = 50;
  changed.ports.push_back(Tap("vm3-eth0"));
  kernel.fail = [](const std::string& call) {
    return call == "SetLinkUp vm3-eth0" ? Status::FromErrno("set vm3-eth0 up", EBUSY)
                                        : Status::Ok();
  };
  auto plan = PlanFor(kernel, With({changed}));
  ASSERT_TRUE(plan.ok());
  Status status = ApplyPlan(kernel, *plan);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("set vm3-eth0 up: Device or resource busy (undid"));
  kernel.fail = nullptr;
  EXPECT_EQ(Snapshot(kernel), before);
}

TEST(PlannerTest, ChangedTapFlagsRecreateTheTap) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  NetworkConfig changed = Lab();
  changed.ports[2].multi_queue = true;
  auto plan = PlanFor(kernel, With({changed}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Describe(*plan), ElementsAre("delete link vm2-eth0",
                                           "create tap vm2-eth0 (vnet_hdr on, multi_queue on)",
                                           "attach vm2-eth0 to bridge vfb-lab", "set vm2-eth0 up"));
}

TEST(PlannerTest, AStaticFdbEntryLeavingTheConfigLeavesTheBridge) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  NetworkConfig without = Lab();
  without.fdb.static_entries.clear();
  auto plan = PlanFor(kernel, With({without}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Describe(*plan), ElementsAre("delete static fdb 52:54:00:00:00:01 on vm1-eth0"));
  ASSERT_EQ((*plan)[0].undo.size(), 1u);
  EXPECT_EQ((*plan)[0].undo[0].Describe(), "add static fdb 52:54:00:00:00:01 on vm1-eth0");
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_TRUE(kernel.fdb.empty());
}

TEST(PlannerTest, AnOpenerFlippingVnetHdrIsNotDrift) {
  FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({Lab()}))).ok());
  kernel.Find("vm1-eth0")->tap->settings.vnet_hdr = false;  // as TUNSETIFF by a guest does
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))), ElementsAre());
}

TEST(PlannerTest, OwnerAliasRoundTrips) {
  EXPECT_EQ(OwnerAlias("lab"), "vfabric:lab");
  EXPECT_EQ(NetworkFromAlias("vfabric:lab"), "lab");
  EXPECT_EQ(NetworkFromAlias("vfabric:"), "");
  EXPECT_EQ(NetworkFromAlias("something else"), "");
}

}  // namespace
}  // namespace vfabric::netd

namespace vfabric::netd {
namespace {

TEST(PlannerUserspaceTest, UserspaceNetworksGetTheirLinksButNoBridge) {
  testing::FakeKernel kernel;
  topology::NetworkConfig fast;
  fast.name = "fast";
  fast.datapath = topology::Datapath::kUserspace;
  fast.bridge = "vfb-fast";
  fast.ports.push_back(Tap("fast-t0"));
  fast.ports.push_back(Veth("fast-up0", "fast-up0-p"));
  fast.fdb.static_entries.push_back({Mac("52:54:00:00:00:09"), "fast-t0", 10, {}});
  auto plan = PlanFor(kernel, With({fast}));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_THAT(Describe(*plan),
              ElementsAre("create tap fast-t0 (vnet_hdr on, multi_queue off)",
                          "create veth fast-up0 (peer fast-up0-p)", "set fast-up0-p up",
                          "set fast-t0 up", "set fast-up0 up"));
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_EQ(kernel.Find("vfb-fast"), nullptr);
  EXPECT_EQ(kernel.Find("fast-t0")->alias, "vfabric:fast");
  EXPECT_THAT(Describe(*PlanFor(kernel, With({fast}))), ElementsAre());

  // A port someone put on a bridge is taken off it again.
  kernel.AddForeignLink("br0", "bridge");
  ASSERT_TRUE(kernel.SetMaster("fast-t0", "br0").ok());
  EXPECT_THAT(Describe(*PlanFor(kernel, With({fast}))),
              ElementsAre("release fast-t0 from its bridge"));
}

// An "existing" uplink of a userspace network is brought up when the switch
// takes it; once the switch holds it, an operator's "ip link set down"
// stands (it is how a cable is pulled), as on a kernel bridge.
TEST(PlannerUserspaceTest, ExistingPortsHeldByTheSwitchStayDownWhenSetDown) {
  testing::FakeKernel kernel;
  kernel.AddForeignLink("eth9", "dummy");
  topology::NetworkConfig fast;
  fast.name = "fast";
  fast.datapath = topology::Datapath::kUserspace;
  fast.bridge = "vfb-fast";
  PortConfig uplink;
  uplink.name = "eth9";
  uplink.kind = PortKind::kExisting;
  fast.ports = {uplink};
  ASSERT_TRUE(kernel.SetLinkUp("eth9", false).ok());
  auto KernelState = [&] { return ReadKernelState(kernel, kernel.features).value(); };
  EXPECT_THAT(Describe(*Plan(With({fast}), KernelState())), ElementsAre("set eth9 up"));
  EXPECT_THAT(Describe(*Plan(With({fast}), KernelState(), {"eth9"})), ElementsAre());
}

}  // namespace
}  // namespace vfabric::netd

namespace vfabric::netd {
namespace {

TEST(PlannerGuestTest, VmNicsBecomeTapPortsOfTheirNetworks) {
  topology::Topology topology = With({Lab()});
  topology::NetworkConfig empty;
  empty.name = "guests";
  empty.bridge = "vfb-guests";
  topology.networks.push_back(empty);
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.nics.push_back({"lab", std::nullopt, "vm1-eth0", {}});     // the tap lab lists
  vm.nics.push_back({"guests", std::nullopt, "vm1-eth1", {}});  // a port netd adds
  topology.vms.push_back(vm);
  topology::Topology expanded = WithGuestPorts(topology);
  ASSERT_EQ(expanded.networks[0].ports.size(), 3u);
  ASSERT_EQ(expanded.networks[1].ports.size(), 1u);
  EXPECT_EQ(expanded.networks[1].ports[0].name, "vm1-eth1");
  EXPECT_EQ(expanded.networks[1].ports[0].kind, topology::PortKind::kTap);

  testing::FakeKernel kernel;
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, expanded)).ok());
  ASSERT_NE(kernel.Find("vm1-eth1"), nullptr);
  EXPECT_EQ(kernel.Find("vm1-eth1")->master_ifindex, kernel.Find("vfb-guests")->ifindex);
}

// A vhost-user VM NIC becomes a server-mode vhost-user port (netd listens,
// QEMU connects) on DIR/PORT.sock, or uses the vhost-user port its network
// declares; a tap NIC has no socket.
TEST(PlannerGuestTest, VhostUserVmNicsBecomeServerModeVhostUserPorts) {
  topology::Topology topology;
  topology::NetworkConfig us;
  us.name = "us";
  us.datapath = topology::Datapath::kUserspace;
  topology::PortConfig declared;
  declared.name = "vu9";
  declared.kind = topology::PortKind::kVhostUser;
  declared.socket = "/srv/vu9.sock";
  declared.vhost_user_mode = topology::VhostUserMode::kServer;
  us.ports.push_back(declared);
  topology.networks.push_back(us);
  topology::VmConfig vm;
  vm.name = "vm1";
  vm.nics.push_back({"us", std::nullopt, "vm1-eth0", {}, topology::NicBackend::kVhostUser});
  vm.nics.push_back({"us", std::nullopt, "vm1-eth1", {}});
  vm.nics.push_back({"us", std::nullopt, "vu9", {}, topology::NicBackend::kVhostUser});
  topology.vms.push_back(vm);
  const topology::Topology expanded = WithGuestPorts(topology, "/run/x/vhost-user");
  ASSERT_EQ(expanded.networks[0].ports.size(), 3u);
  const topology::PortConfig& vu = expanded.networks[0].ports[1];
  EXPECT_EQ(vu.name, "vm1-eth0");
  EXPECT_EQ(vu.kind, topology::PortKind::kVhostUser);
  EXPECT_EQ(vu.socket, "/run/x/vhost-user/vm1-eth0.sock");
  EXPECT_EQ(vu.vhost_user_mode, topology::VhostUserMode::kServer);
  EXPECT_EQ(expanded.networks[0].ports[2].kind, topology::PortKind::kTap);
  EXPECT_EQ(GuestNicSocket(expanded, vm.nics[0]), "/run/x/vhost-user/vm1-eth0.sock");
  EXPECT_EQ(GuestNicSocket(expanded, vm.nics[1]), "") << "a tap NIC";
  EXPECT_EQ(GuestNicSocket(expanded, vm.nics[2]), "/srv/vu9.sock") << "the declared port's";
  // Default directory: /run/vfabric/vhost-user.
  EXPECT_EQ(WithGuestPorts(topology).networks[0].ports[1].socket,
            "/run/vfabric/vhost-user/vm1-eth0.sock");
}

// Issue 18: a kernel bridge's MAC, MTU and addresses are planned, read back
// and repaired like its other settings.
TEST(PlannerTest, BridgeMacMtuAndAddresses) {
  FakeKernel kernel;
  NetworkConfig lab = Lab();
  lab.mac = *MacAddress::Parse("02:00:00:00:aa:01");
  lab.mtu = 9000;
  lab.addresses = {*IpPrefix::Parse("10.0.0.1/24"), *IpPrefix::Parse("fd00::1/64")};
  auto plan = PlanFor(kernel, With({lab}));
  ASSERT_TRUE(plan.ok());
  std::vector<std::string> lines = Describe(*plan);
  EXPECT_THAT(lines,
              ::testing::IsSupersetOf(
                  {"set mac of vfb-lab 02:00:00:00:aa:01", "set mtu of vfb-lab 9000",
                   "add address 10.0.0.1/24 to vfb-lab", "add address fd00::1/64 to vfb-lab"}));
  // Before any port joins: the bridge id never takes a port's MAC.
  const auto at = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) - lines.begin();
  };
  EXPECT_LT(at("set mac of vfb-lab 02:00:00:00:aa:01"), at("attach vm1-eth0 to bridge vfb-lab"));
  ASSERT_TRUE(ApplyPlan(kernel, *plan).ok());
  EXPECT_THAT(Describe(*PlanFor(kernel, With({lab}))), ElementsAre());

  LinkInfo* bridge = kernel.Find("vfb-lab");
  bridge->mac = *MacAddress::Parse("02:00:00:00:00:07");
  bridge->mtu = 1500;
  std::erase_if(kernel.addresses, [](const AddressEntry& e) { return e.prefix.family == AF_INET; });
  kernel.addresses.push_back({bridge->ifindex, *IpPrefix::Parse("10.9.0.1/16")});
  kernel.addresses.push_back({bridge->ifindex, *IpPrefix::Parse("fe80::1/64")});  // the kernel's
  EXPECT_THAT(Describe(*PlanFor(kernel, With({lab}))),
              ElementsAre("set mac of vfb-lab 02:00:00:00:00:07 -> 02:00:00:00:aa:01",
                          "set mtu of vfb-lab 1500 -> 9000", "add address 10.0.0.1/24 to vfb-lab",
                          "delete address 10.9.0.1/16 from vfb-lab"));
  ASSERT_TRUE(ApplyPlan(kernel, *PlanFor(kernel, With({lab}))).ok());
  EXPECT_THAT(Describe(*PlanFor(kernel, With({lab}))), ElementsAre());

  // Unset keys leave the bridge alone.
  EXPECT_THAT(Describe(*PlanFor(kernel, With({Lab()}))), ElementsAre());
}

}  // namespace
}  // namespace vfabric::netd
