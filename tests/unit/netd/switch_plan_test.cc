// The userspace switches' plan as data (PlanSwitches: pure, no switch runs)
// and a full sync of UserspaceNetworks through a fake port backend that hands
// out memory ports (no root, no kernel links).
#include "vfabric/netd/switch_plan.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fake_port_backends.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {
namespace {

topology::Topology Parse(const std::string& text) {
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.topology;
}

constexpr const char* kFabric = R"({"networks": [{"name": "us", "datapath": "userspace",
  "stp": {"enabled": true, "priority": 4096},
  "fdb": {"static": [{"mac": "52:54:00:00:00:01", "port": "a"}]},
  "ports": [{"name": "a", "kind": "veth", "peer": "a-p", "vlan": {"mode": "access", "pvid": 10}},
            {"name": "b", "kind": "tap", "vlan": {"mode": "access", "pvid": 10}},
            {"name": "up", "kind": "veth", "peer": "up-p",
             "vlan": {"mode": "trunk", "allowed": "10,20"}}]}]})";

// A backend name and identity only (the plan opens nothing).
class NamedBackend final : public PortBackend {
 public:
  explicit NamedBackend(std::string name) : name_(std::move(name)) {}
  std::string_view Name() const override { return name_; }
  bool NeedsKernelLink() const override { return true; }
  std::string Identity(const topology::PortConfig&, const LinkInfo* link) const override {
    return link == nullptr ? "" : "ifindex " + std::to_string(link->ifindex);
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    return Status::Error("port " + port.name + ": the plan test opens nothing");
  }

 private:
  std::string name_;
};

class NamedBackends final : public PortBackends {
 public:
  PortBackend& For(const topology::PortConfig& port, bool guest) const override {
    return port.kind == topology::PortKind::kTap && !guest ? tap_ : packet_;
  }

 private:
  mutable NamedBackend tap_{"tap"};
  mutable NamedBackend packet_{"packet socket"};
};

std::vector<std::string> Lines(const std::vector<SwitchOperation>& ops) {
  std::vector<std::string> lines;
  for (const SwitchOperation& op : ops)
    lines.push_back(std::string(op.KindName()) + " " + op.object);
  return lines;
}

// What a switch running exactly `topology`'s network "us" would report.
ObservedSwitches Converged(const topology::Topology& topology) {
  const topology::NetworkConfig& config = topology.networks.at(0);
  ObservedSwitches observed;
  ObservedSwitch& sw = observed[config.name];
  sw.running = true;
  const bridge::FdbSettings fdb = SwitchFdbConfig(config);
  sw.max_entries = fdb.max_entries;
  sw.max_per_port = fdb.max_per_port;
  sw.ageing_time_ns = fdb.ageing_time_ns;
  int ifindex = 10;
  for (const auto& port : config.ports) {
    ObservedPort& p = sw.ports[port.name];
    p.backend = port.kind == topology::PortKind::kTap ? "tap" : "packet socket";
    p.identity = "ifindex " + std::to_string(ifindex++);
    p.vlan = SwitchVlanConfig(config, port.vlan);
    if (config.stp.enabled) p.tree = TreeSettings(port, false);
    p.link_up = true;
  }
  if (config.stp.enabled) sw.tree = config.stp;
  sw.installed_statics = TopologyStatics(config);
  return observed;
}

KernelState Links(const topology::Topology& topology) {
  KernelState state;
  int ifindex = 10;
  for (const auto& port : topology.networks.at(0).ports) {
    LinkInfo link;
    link.ifindex = ifindex++;
    link.name = port.name;
    link.admin_up = true;
    link.oper_up = true;
    state.links.push_back(link);
  }
  return state;
}

TEST(SwitchPlanTest, ANewNetworkStartsItsSwitchPortsTreeAndStatics) {
  const topology::Topology desired = Parse(kFabric);
  const std::vector<SwitchOperation> ops = PlanSwitches(desired, {}, NamedBackends());
  EXPECT_EQ(Lines(ops),
            (std::vector<std::string>{"start_switch us", "add_switch_port a", "add_switch_port b",
                                      "add_switch_port up", "start_tree us", "add_switch_fdb a"}));
  ASSERT_EQ(ops.size(), 6u);
  EXPECT_EQ(ops[2].Describe(), "add port b to switch us (tap, access VLAN 10)");
  EXPECT_EQ(ops[3].Describe(), "add port up to switch us (packet socket, trunk 10,20)");
  // The tree takes in every port when it starts.
  ASSERT_EQ(ops[4].tree_ports.size(), 3u);
  EXPECT_EQ(ops[4].tree_ports[2].name, "up");
  EXPECT_FALSE(ops[1].join_tree);
}

TEST(SwitchPlanTest, AConvergedSwitchNeedsNothing) {
  const topology::Topology desired = Parse(kFabric);
  const KernelState links = Links(desired);
  const KernelView view{&links, {}};
  EXPECT_TRUE(PlanSwitches(desired, Converged(desired), NamedBackends(), &view).empty());
  EXPECT_TRUE(PlanSwitches(desired, Converged(desired), NamedBackends()).empty());
}

TEST(SwitchPlanTest, AVlanChangeIsOneOperationWithOldAndNew) {
  const topology::Topology before = Parse(kFabric);
  topology::Topology after = before;
  after.networks[0].ports[1].vlan.pvid = 20;
  const std::vector<SwitchOperation> ops = PlanSwitches(after, Converged(before), NamedBackends());
  ASSERT_EQ(Lines(ops), (std::vector<std::string>{"set_switch_port_vlan b"}));
  EXPECT_EQ(ops[0].Describe(),
            "set VLANs of port b on switch us: access VLAN 10 -> access VLAN 20");
}

TEST(SwitchPlanTest, StaticEntriesMoveAndStaleRuntimeOnesAreForgotten) {
  const topology::Topology before = Parse(kFabric);
  topology::Topology after = before;
  after.networks[0].fdb.static_entries[0].port = "b";  // same VLAN 10, other port
  ObservedSwitches observed = Converged(before);
  const MacAddress runtime_mac = *MacAddress::Parse("52:54:00:00:00:09");
  observed["us"].runtime_statics[{20, runtime_mac}] = "b";  // b is access VLAN 10
  observed["us"].runtime_statics[{20, *MacAddress::Parse("52:54:00:00:00:0a")}] = "up";
  const std::vector<SwitchOperation> ops = PlanSwitches(after, observed, NamedBackends());
  EXPECT_EQ(Lines(ops), (std::vector<std::string>{"forget_runtime_fdb b", "delete_switch_fdb a",
                                                  "add_switch_fdb b", "add_switch_fdb up"}));
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].Describe(),
            "forget run-time static FDB entry 52:54:00:00:00:09 VLAN 20 (port b) of switch us: "
            "port b is no longer in that VLAN");
  EXPECT_EQ(ops[2].Describe(),
            "add static FDB entry 52:54:00:00:00:01 VLAN 10 (port b) to switch us");
}

TEST(SwitchPlanTest, TreeOffOnAndChangedAndPortSettings) {
  const topology::Topology on = Parse(kFabric);
  topology::Topology off = on;
  off.networks[0].stp.enabled = false;
  EXPECT_EQ(Lines(PlanSwitches(off, Converged(on), NamedBackends())),
            (std::vector<std::string>{"stop_tree us"}));
  EXPECT_EQ(Lines(PlanSwitches(on, Converged(off), NamedBackends())),
            (std::vector<std::string>{"start_tree us"}));
  topology::Topology changed = on;
  changed.networks[0].stp.priority = 8192;
  const auto restart = PlanSwitches(changed, Converged(on), NamedBackends());
  ASSERT_EQ(Lines(restart), (std::vector<std::string>{"restart_tree us"}));
  EXPECT_EQ(restart[0].tree_ports.size(), 3u);
  topology::Topology cost = on;
  cost.networks[0].ports[2].cost = 7;
  const auto set = PlanSwitches(cost, Converged(on), NamedBackends());
  ASSERT_EQ(Lines(set), (std::vector<std::string>{"set_tree_port up"}));
  EXPECT_EQ(set[0].Describe(),
            "set spanning tree port up on switch us (cost 7, priority 128): it discards until "
            "the tree places it again");
}

TEST(SwitchPlanTest, TheKernelViewReopensRecreatedLinksAndTellsCarrier) {
  const topology::Topology desired = Parse(kFabric);
  KernelState links = Links(desired);
  links.links[0].ifindex = 99;     // a recreated behind the switch's back
  links.links[2].oper_up = false;  // up lost its carrier
  KernelView view{&links, {"b"}};  // b is about to be made anew
  const std::vector<SwitchOperation> ops =
      PlanSwitches(desired, Converged(desired), NamedBackends(), &view);
  EXPECT_EQ(Lines(ops), (std::vector<std::string>{"reopen_switch_port a", "reopen_switch_port b",
                                                  "set_tree_port_link up", "add_switch_fdb a"}));
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].Describe(),
            "reopen port a on switch us (packet socket, access VLAN 10): its link was recreated");
  EXPECT_EQ(ops[1].reason, "its link is made anew");
  EXPECT_TRUE(ops[0].join_tree);  // the tree keeps running and takes it back
  EXPECT_FALSE(ops[2].link_up);
  // Carrier follows events: it is no change for people.
  EXPECT_FALSE(ops[2].IsChange());
  EXPECT_EQ(SwitchChanges(ops).size(), 3u);
}

TEST(SwitchPlanTest, AnExistingPortWaitsForItsLinkQuietly) {
  topology::Topology desired = Parse(kFabric);
  topology::PortConfig existing;
  existing.name = "ex0";
  existing.kind = topology::PortKind::kExisting;
  desired.networks[0].ports.push_back(existing);
  topology::StaticFdbEntry entry;
  entry.mac = *MacAddress::Parse("52:54:00:00:00:0e");
  entry.port = "ex0";
  desired.networks[0].fdb.static_entries.push_back(entry);
  ObservedSwitches observed = Converged(desired);
  KernelState links = Links(desired);
  links.links.pop_back();  // ex0 is gone
  const KernelView view{&links, {}};
  const auto gone = PlanSwitches(desired, observed, NamedBackends(), &view);
  ASSERT_EQ(Lines(gone), (std::vector<std::string>{"detach_switch_port ex0"}));
  EXPECT_EQ(gone[0].Describe(),
            "detach port ex0 from switch us until its link is back: no link of its name exists; "
            "it is attached when one appears");
  // Once detached, nothing more is planned for it (nor for its static entry).
  observed["us"].ports.erase("ex0");
  observed["us"].installed_statics.erase({1, entry.mac});
  EXPECT_TRUE(PlanSwitches(desired, observed, NamedBackends(), &view).empty());

  // Set down by the operator: its failed switch port stays, not reopened.
  KernelState down = Links(desired);
  down.links.back().admin_up = false;
  ObservedSwitches failed = Converged(desired);
  failed["us"].ports["ex0"].failed = true;
  const KernelView down_view{&down, {}};
  EXPECT_TRUE(PlanSwitches(desired, failed, NamedBackends(), &down_view).empty());
  // Up again: reopened.
  down.links.back().admin_up = true;
  EXPECT_EQ(Lines(PlanSwitches(desired, failed, NamedBackends(), &down_view)),
            (std::vector<std::string>{"reopen_switch_port ex0", "add_switch_fdb ex0"}));
}

TEST(SwitchPlanTest, ARemovedPortAndARemovedNetwork) {
  const topology::Topology before = Parse(kFabric);
  topology::Topology fewer = before;
  fewer.networks[0].ports.pop_back();
  EXPECT_EQ(Lines(PlanSwitches(fewer, Converged(before), NamedBackends())),
            (std::vector<std::string>{"remove_switch_port up"}));
  EXPECT_EQ(Lines(PlanSwitches(topology::Topology{}, Converged(before), NamedBackends())),
            (std::vector<std::string>{"stop_switch us"}));
}

TEST(SwitchPlanTest, CreatedLinksAreTheKernelPlansTapsAndVeths) {
  std::vector<Operation> kernel(3);
  kernel[0].kind = Operation::Kind::kCreateTap;
  kernel[0].object = "t";
  kernel[1].kind = Operation::Kind::kCreateVeth;
  kernel[1].object = "v";
  kernel[2].kind = Operation::Kind::kSetLinkUp;
  kernel[2].object = "x";
  EXPECT_EQ(CreatedLinks(kernel), (std::set<std::string>{"t", "v"}));
}

// ---- a full sync through a fake backend ----

// Hands out memory ports (no kernel link needed) and remembers them, so the
// test can inject frames and read what the switch sent.
class MemoryBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "memory"; }
  bool NeedsKernelLink() const override { return false; }
  std::string Identity(const topology::PortConfig& port, const LinkInfo*) const override {
    return "memory " + port.name;
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    if (refuse == port.name) return Status::Error("refused by the test");
    auto made = bridge::MemoryPort::Create(port.name);
    if (!made.ok()) return made.status();
    ports[port.name] = made->get();
    ++opened;
    return std::unique_ptr<bridge::Port>(std::move(made).value());
  }

  std::map<std::string, bridge::MemoryPort*> ports;  // owned by the switch
  std::string refuse;
  int opened = 0;
};

std::vector<uint8_t> Frame(const MacAddress& dst, const MacAddress& src) {
  std::vector<uint8_t> frame(60, 0);
  std::copy(dst.bytes.begin(), dst.bytes.end(), frame.begin());
  std::copy(src.bytes.begin(), src.bytes.end(), frame.begin() + 6);
  frame[12] = 0x08;  // IPv4 ethertype; the payload is zeros
  return frame;
}

// Waits (bounded) until `port` has transmitted `count` frames.
bool WaitTransmitted(bridge::MemoryPort* port, size_t count) {
  for (int i = 0; i < 400 && port->captured_count() < count; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return port->captured_count() >= count;
}

TEST(UserspaceSyncTest, AFakeBackendDrivesAFullSync) {
  MemoryBackend backend;
  UserspaceNetworks networks("", std::make_unique<FakePortBackends>(&backend), "test-machine");
  topology::Topology desired = Parse(kFabric);
  desired.networks[0].stp.enabled = false;  // forward at once

  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_TRUE(networks.Has("us"));
  EXPECT_EQ(backend.opened, 3);
  EXPECT_TRUE(networks.Pending(desired).empty());
  auto stats = networks.PortStats("us", "");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)["ports"].size(), 3u);
  auto fdb = networks.FdbEntries("us");
  ASSERT_TRUE(fdb.ok());
  ASSERT_EQ((*fdb)["entries"].size(), 1u);
  EXPECT_EQ((*fdb)["entries"][0]["port"], "a");

  // The static entry sends a frame from b (VLAN 10) to a alone, not to up.
  const MacAddress to_a = *MacAddress::Parse("52:54:00:00:00:01");
  backend.ports["b"]->Inject(Frame(to_a, *MacAddress::Parse("52:54:00:00:00:02")));
  ASSERT_TRUE(WaitTransmitted(backend.ports["a"], 1));
  EXPECT_EQ(backend.ports["up"]->captured_count(), 0u);

  // A VLAN change is applied in place (no reopen), and nothing is left.
  desired.networks[0].ports[1].vlan.pvid = 20;
  const std::vector<SwitchOperation> plan = networks.Plan(desired);
  ASSERT_EQ(Lines(plan), (std::vector<std::string>{"set_switch_port_vlan b"}));
  SwitchApplyResult result = networks.Apply(plan, KernelState{});
  EXPECT_TRUE(result.errors.empty());
  EXPECT_EQ(Lines(result.applied), Lines(plan));
  EXPECT_EQ(backend.opened, 3);
  EXPECT_TRUE(networks.Pending(desired).empty());
  // b is now in VLAN 20: its frame to a's MAC reaches no port of VLAN 10,
  // only up, the trunk that carries 20.
  backend.ports["b"]->Inject(Frame(to_a, *MacAddress::Parse("52:54:00:00:00:02")));
  ASSERT_TRUE(WaitTransmitted(backend.ports["up"], 1));
  EXPECT_EQ(backend.ports["a"]->TakeCaptured().size(), 1u);  // only the first frame

  // STP on: the tree starts and takes in every port.
  desired.networks[0].stp.enabled = true;
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_TRUE(networks.TreeRunning("us"));
  EXPECT_TRUE(networks.Pending(desired).empty());
  // Its bridge address comes from the machine id it was given, not the host's.
  auto stp = networks.StpJson(desired.networks[0]);
  ASSERT_TRUE(stp.ok());
  EXPECT_EQ((*stp)["stp"]["bridge_id"].get<std::string>().substr(5),
            FormatBridgeId(TreeBridgeAddress("test-machine", "us").ToU64()).substr(5));

  // A port that will not open is reported by name; the others stay, and it
  // stays pending until it opens.
  topology::PortConfig extra;
  extra.name = "c";
  desired.networks[0].ports.push_back(extra);
  backend.refuse = "c";
  const std::vector<std::string> errors = networks.Sync(desired, KernelState{});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "userspace network us: port c: refused by the test");
  EXPECT_EQ(SwitchChanges(networks.Plan(desired)).size(), 1u);
  backend.refuse.clear();
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_TRUE(networks.Pending(desired).empty());

  // The network goes: its switch stops.
  EXPECT_TRUE(networks.Sync(topology::Topology{}, KernelState{}).empty());
  EXPECT_FALSE(networks.Has("us"));
}

// Without a machine id, the tree's address comes from a fixed one, never from
// the host's /etc/machine-id: only the daemon reads host files.
TEST(UserspaceSyncTest, WithoutAMachineIdTheTreeAddressIsTheFixedDefault) {
  MemoryBackend backend;
  UserspaceNetworks networks("", std::make_unique<FakePortBackends>(&backend));
  topology::Topology desired = Parse(kFabric);
  desired.networks[0].stp.enabled = true;
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  auto stp = networks.StpJson(desired.networks[0]);
  ASSERT_TRUE(stp.ok());
  EXPECT_EQ((*stp)["stp"]["bridge_id"].get<std::string>().substr(5),
            FormatBridgeId(TreeBridgeAddress(kDefaultMachineId, "us").ToU64()).substr(5));
}

}  // namespace
}  // namespace vfabric::netd
