// Port mirrors of userspace networks in netd: the plan's set_switch_mirrors
// (when, and what it installs over the ports the switch holds), and a full
// sync through memory ports whose mirror output sees the copies.
#include "mirror_plan.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/netd/switch_plan.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {
namespace {

topology::Topology Parse(const std::string& text) {
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.topology;
}

constexpr const char* kSpan = R"({"networks": [{"name": "us", "datapath": "userspace",
  "ports": [{"name": "a", "kind": "tap"}, {"name": "b", "kind": "tap"}, {"name": "m", "kind": "tap"}],
  "mirror": [{"name": "span", "select_src_port": ["a"], "select_vlan": "1", "output_port": "m"}]}]})";

// Hands out memory ports and keeps them, so the test can inject frames and
// read what the switch sent.
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
    return std::unique_ptr<bridge::Port>(std::move(made).value());
  }
  std::map<std::string, bridge::MemoryPort*> ports;  // owned by the switch
  std::string refuse;
};

class Backends final : public PortBackends {
 public:
  explicit Backends(MemoryBackend* backend) : backend_(backend) {}
  PortBackend& For(const topology::PortConfig&, bool) const override { return *backend_; }

 private:
  MemoryBackend* backend_;
};

std::vector<std::string> Lines(const std::vector<SwitchOperation>& ops) {
  std::vector<std::string> lines;
  for (const SwitchOperation& op : ops)
    lines.push_back(std::string(op.KindName()) + " " + op.object);
  return lines;
}

std::vector<uint8_t> Frame(uint8_t dst_last, uint8_t src_last) {
  std::vector<uint8_t> frame(60, 0);
  const uint8_t dst[6] = {0x52, 0x54, 0, 0, 0, dst_last}, src[6] = {0x52, 0x54, 0, 0, 0, src_last};
  std::copy(dst, dst + 6, frame.begin());
  std::copy(src, src + 6, frame.begin() + 6);
  frame[12] = 0x08;
  return frame;
}

bool WaitTransmitted(bridge::MemoryPort* port, size_t count) {
  for (int i = 0; i < 400 && port->captured_count() < count; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return port->captured_count() >= count;
}

TEST(MirrorPlanTest, EffectiveMirrorsAreOverTheHeldPortsOnly) {
  const topology::Topology t = Parse(R"({"networks": [{"name": "us", "datapath": "userspace",
    "ports": [{"name": "a"}, {"name": "b"}, {"name": "m"}, {"name": "n"}],
    "mirror": [{"name": "one", "select_src_port": ["a", "b"], "output_port": "m"},
               {"name": "two", "select_dst_port": ["a"], "select_vlan": "5", "output_port": "n"},
               {"name": "three", "select_all": true, "output_port": "n"}]}]})");
  const auto& mirrors = t.networks[0].mirrors;
  EXPECT_EQ(MirrorsText(EffectiveMirrors(mirrors, {"a", "b", "m", "n"})),
            "one (from a,b -> m); two (to a, vlan 5 -> n); three (all ports -> n)");
  // a is not there: "two" selected only a and goes; "one" keeps b.
  EXPECT_EQ(MirrorsText(EffectiveMirrors(mirrors, {"b", "m", "n"})),
            "one (from b -> m); three (all ports -> n)");
  // m is not there: "one" has no output.
  EXPECT_EQ(MirrorsText(EffectiveMirrors(mirrors, {"a", "b", "n"})),
            "two (to a, vlan 5 -> n); three (all ports -> n)");
  EXPECT_EQ(MirrorsText({}), "none");
  EXPECT_EQ(MirrorsJson(EffectiveMirrors(mirrors, {"a", "b", "m", "n"}))[1].dump(),
            R"({"name":"two","output_port":"n","select_all":false,"select_dst_port":["a"],)"
            R"("select_src_port":[],"select_vlan":"5"})");
}

TEST(MirrorPlanTest, ANewNetworkSetsItsMirrorsLastAndAConvergedOneNothing) {
  const topology::Topology desired = Parse(kSpan);
  MemoryBackend backend;
  const Backends backends(&backend);
  std::vector<SwitchOperation> ops = PlanSwitches(desired, {}, backends);
  ASSERT_EQ(Lines(ops),
            (std::vector<std::string>{"start_switch us", "add_switch_port a", "add_switch_port b",
                                      "add_switch_port m", "set_switch_mirrors us"}));
  EXPECT_EQ(ops.back().Describe(),
            "set port mirrors of switch us: none -> span (from a, vlan 1 -> m)");
}

TEST(UserspaceMirrorSyncTest, TheOutputPortSeesTheCopiesAndChangesArePlanned) {
  MemoryBackend backend;
  UserspaceNetworks networks("", std::make_unique<Backends>(&backend), "test-machine");
  topology::Topology desired = Parse(kSpan);
  ASSERT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_TRUE(networks.Pending(desired).empty());

  backend.ports["a"]->Inject(Frame(2, 1));  // a -> b (flooded: b unknown)
  ASSERT_TRUE(WaitTransmitted(backend.ports["b"], 1));
  ASSERT_TRUE(WaitTransmitted(backend.ports["m"], 1));
  backend.ports["b"]->Inject(Frame(1, 2));  // b -> a: not selected
  ASSERT_TRUE(WaitTransmitted(backend.ports["a"], 1));
  EXPECT_EQ(backend.ports["m"]->TakeCaptured().size(), 1u);

  // A port a mirror names is opened again (its link was recreated): the
  // switch forgets it, so the mirrors go in again after it.
  KernelState state;
  KernelView view;
  view.state = &state;
  view.recreated = {"a"};
  std::vector<SwitchOperation> plan = networks.Plan(desired, &view);
  EXPECT_EQ(Lines(plan),
            (std::vector<std::string>{"reopen_switch_port a", "set_switch_mirrors us"}));

  // Without the mirror: one operation, and m forwards like any port again.
  desired.networks[0].mirrors.clear();
  plan = networks.Plan(desired);
  ASSERT_EQ(Lines(plan), (std::vector<std::string>{"set_switch_mirrors us"}));
  EXPECT_EQ(plan[0].Describe(),
            "set port mirrors of switch us: span (from a, vlan 1 -> m) -> none");
  SwitchApplyResult result = networks.Apply(plan, KernelState{});
  EXPECT_TRUE(result.errors.empty());
  EXPECT_TRUE(networks.Pending(desired).empty());
  backend.ports["a"]->Inject(Frame(0xff, 1));  // to an unknown MAC: flooded, to m too
  ASSERT_TRUE(WaitTransmitted(backend.ports["m"], 1));
}

}  // namespace
}  // namespace vfabric::netd
