// SpanningTree on real Switches: rings of switches with in-memory ports,
// wired by the test, with a fake clock. BPDUs travel through each switch's
// pipeline (trap -> inbox -> engine -> SendFrame), frames obey the states
// the engine sets.
#include "vfabric/bridge/spanning_tree.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "frames.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/stp/bpdu.h"

namespace vfabric::bridge {
namespace {

using testing::Mac;

class Fabric {
 public:
  struct Node {
    std::shared_ptr<BpduInbox> inbox;
    std::unique_ptr<Switch> sw;
    std::unique_ptr<SpanningTree> tree;
    std::vector<MemoryPort*> ports;  // owned by the switch
    std::vector<PortId> ids;
    std::vector<TreeEvent> events;
  };
  struct Link {
    size_t a, pa, b, pb;
    bool up = true;
  };

  size_t AddNode(uint16_t priority, uint64_t mac, TreeMode mode = TreeMode::kRstp) {
    auto node = std::make_unique<Node>();
    node->inbox = BpduInbox::Create().value();
    SwitchConfig sc;
    sc.name = "s" + std::to_string(nodes_.size());
    sc.fdb.max_entries = 1024;
    sc.fdb.max_ports = 8;
    sc.buffer_size = 2048;
    sc.bpdu_hook = node->inbox->Hook();
    sc.clock = [this] { return now_ns_; };
    node->sw = Switch::Create(std::move(sc)).value();
    SpanningTreeConfig tc;
    tc.name = "s" + std::to_string(nodes_.size());
    tc.bridge.address = Mac(mac);
    tc.bridge.priority = priority;
    tc.bridge.mode = mode;
    tc.bridge.hello_time = 2;
    tc.bridge.forward_delay = 4;
    tc.bridge.max_age = 6;
    tc.clock = [this] { return Now(); };
    Node* raw = node.get();
    tc.on_event = [raw](const TreeEvent& e, std::string_view) { raw->events.push_back(e); };
    auto tree = SpanningTree::Create(*node->sw, node->inbox, std::move(tc));
    EXPECT_TRUE(tree.ok()) << tree.status().message();
    node->tree = std::move(tree).value();
    nodes_.push_back(std::move(node));
    return nodes_.size() - 1;
  }

  size_t AddPort(size_t n, const TreePortSettings& settings = {}, bool link_up = true) {
    Node& node = *nodes_[n];
    auto port = MemoryPort::Create("p" + std::to_string(node.ports.size())).value();
    MemoryPort* raw = port.get();
    PortSettings ps;
    ps.stp = StpState::kDiscarding;
    auto id = node.sw->AddPort(std::move(port), ps);
    EXPECT_TRUE(id.ok()) << id.status().message();
    Status joined = node.tree->AddPort(*id, raw->name(), settings, link_up, 10000);
    EXPECT_TRUE(joined.ok()) << joined.message();
    node.ports.push_back(raw);
    node.ids.push_back(*id);
    return node.ports.size() - 1;
  }

  size_t Connect(size_t a, size_t b) {
    const size_t pa = AddPort(a), pb = AddPort(b);
    links_.push_back({a, pa, b, pb});
    return links_.size() - 1;
  }

  // Link down on both ends: no more frames cross, both engines told.
  void Cut(size_t link) {
    Link& l = links_[link];
    l.up = false;
    ASSERT_TRUE(nodes_[l.a]->tree->SetPortLink(nodes_[l.a]->ids[l.pa], false, 0).ok());
    ASSERT_TRUE(nodes_[l.b]->tree->SetPortLink(nodes_[l.b]->ids[l.pb], false, 0).ok());
  }

  // One step of `step_ms`: every switch runs until idle, frames cross the
  // links that are up, every tree is serviced. Returns frames moved across
  // links.
  size_t Step(uint64_t step_ms = 10) {
    now_ns_ += step_ms * 1'000'000;
    size_t moved = 0;
    for (int round = 0; round < 8; ++round) {
      size_t work = 0;
      for (auto& node : nodes_) {
        node->tree->Service();
        work += node->sw->RunOnce(0);
      }
      for (const Link& l : links_) {
        MemoryPort* pa = nodes_[l.a]->ports[l.pa];
        MemoryPort* pb = nodes_[l.b]->ports[l.pb];
        auto ab = pa->TakeCaptured();
        auto ba = pb->TakeCaptured();
        if (!l.up) continue;
        for (auto& f : ab) pb->Inject(std::move(f.bytes));
        for (auto& f : ba) pa->Inject(std::move(f.bytes));
        work += ab.size() + ba.size();
        moved += ab.size() + ba.size();
      }
      if (work == 0) break;
    }
    return moved;
  }
  void Run(uint64_t ms) {
    for (uint64_t t = 0; t < ms; t += 10) Step(10);
  }

  TreePortRole Role(size_t n, size_t port) const {
    return nodes_[n]->tree->GetStatus().ports.at(nodes_[n]->ids[port]).role;
  }
  StpState SwitchState(size_t n, size_t port) const {
    for (const PortInfo& info : nodes_[n]->sw->Ports())
      if (info.id == nodes_[n]->ids[port]) return info.settings.stp;
    return StpState::kDiscarding;
  }
  Node& node(size_t n) { return *nodes_[n]; }
  TreeClock Now() const { return TreeClock(std::chrono::nanoseconds(now_ns_)); }

 private:
  uint64_t now_ns_ = 1'000'000'000;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Link> links_;
};

// A broadcast from `src`: ff.. dst, src, ethertype 0x88b5, 46 bytes.
std::vector<uint8_t> Broadcast(uint64_t src) {
  std::vector<uint8_t> f(60, 0);
  for (size_t i = 0; i < 6; ++i) {
    f[i] = 0xff;
    f[6 + i] = static_cast<uint8_t>(src >> (8 * (5 - i)));
  }
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

size_t CountFrom(MemoryPort* port, uint64_t src) {
  size_t n = 0;
  for (const CapturedFrame& f : port->TakeCaptured()) {
    if (f.bytes.size() < 12) continue;
    uint64_t source = 0;
    for (size_t i = 6; i < 12; ++i) source = source << 8 | f.bytes[i];
    if (source == src) ++n;
  }
  return n;
}

// Three switches in a ring, s0 the root by priority: s1 and s2 take their
// port towards s0 as root port, the s1-s2 link is designated at s1 (lower
// bridge id) and alternate (discarding) at s2. A broadcast reaches every
// host once, and a cut link is routed around well within a second.
TEST(SpanningTree, RingOfThreeBlocksOnePortAndReroutesAroundACut) {
  Fabric f;
  const size_t s0 = f.AddNode(4096, 0x020000000001);
  const size_t s1 = f.AddNode(32768, 0x020000000002);
  const size_t s2 = f.AddNode(32768, 0x020000000003);
  const size_t l01 = f.Connect(s0, s1);  // s0 port 0, s1 port 0
  f.Connect(s1, s2);                     // s1 port 1, s2 port 0
  f.Connect(s2, s0);                     // s2 port 1, s0 port 1
  TreePortSettings edge;
  edge.admin_edge = true;
  const size_t h0 = f.AddPort(s0, edge), h1 = f.AddPort(s1, edge), h2 = f.AddPort(s2, edge);
  f.Run(900);  // RSTP proposal/agreement: no forward delay wait

  EXPECT_TRUE(f.node(s0).tree->GetStatus().is_root);
  EXPECT_EQ(f.Role(s0, 0), TreePortRole::kDesignated);
  EXPECT_EQ(f.Role(s0, 1), TreePortRole::kDesignated);
  EXPECT_EQ(f.Role(s1, 0), TreePortRole::kRoot);
  EXPECT_EQ(f.Role(s1, 1), TreePortRole::kDesignated);
  EXPECT_EQ(f.Role(s2, 1), TreePortRole::kRoot);
  EXPECT_EQ(f.Role(s2, 0), TreePortRole::kAlternate);
  for (size_t n : {s0, s1, s2}) {
    EXPECT_EQ(f.node(n).tree->GetStatus().root_id.address, Mac(0x020000000001)) << "s" << n;
    EXPECT_EQ(f.SwitchState(n, 2), StpState::kForwarding) << "host port of s" << n;
  }
  EXPECT_EQ(f.SwitchState(s2, 0), StpState::kDiscarding);
  EXPECT_EQ(f.SwitchState(s1, 1), StpState::kForwarding);
  EXPECT_EQ(f.SwitchState(s0, 0), StpState::kForwarding);

  // One broadcast: each other host gets exactly one copy, none loops.
  for (size_t n : {s0, s1, s2}) (void)f.node(n).ports[2]->TakeCaptured();
  f.node(s1).ports[h1]->Inject(Broadcast(0x0a0000000001));
  size_t moved = 0;
  for (int i = 0; i < 50; ++i) moved += f.Step(10);
  EXPECT_EQ(CountFrom(f.node(s0).ports[h0], 0x0a0000000001), 1u);
  EXPECT_EQ(CountFrom(f.node(s2).ports[h2], 0x0a0000000001), 1u);
  EXPECT_EQ(CountFrom(f.node(s1).ports[h1], 0x0a0000000001), 0u);
  // BPDUs cross too; the broadcast itself crosses at most 3 links once each.
  EXPECT_LT(moved, 3u + 6 * 6);

  // Cut s0-s1: s1 must reach the root through s2, whose alternate port
  // becomes designated and forwarding through proposal/agreement.
  f.Cut(l01);
  f.Run(500);
  EXPECT_EQ(f.Role(s1, 1), TreePortRole::kRoot);
  EXPECT_EQ(f.Role(s2, 0), TreePortRole::kDesignated);
  EXPECT_EQ(f.SwitchState(s2, 0), StpState::kForwarding);
  for (size_t n : {s0, s2}) (void)f.node(n).ports[2]->TakeCaptured();
  f.node(s1).ports[h1]->Inject(Broadcast(0x0a0000000001));
  for (int i = 0; i < 20; ++i) f.Step(10);
  EXPECT_EQ(CountFrom(f.node(s0).ports[h0], 0x0a0000000001), 1u);
  EXPECT_EQ(CountFrom(f.node(s2).ports[h2], 0x0a0000000001), 1u);
}

// A port that is not forwarding neither forwards nor learns: while the
// tree holds s2's alternate port, frames arriving there go nowhere.
TEST(SpanningTree, AlternatePortDropsDataFramesAndLearnsNothing) {
  Fabric f;
  const size_t s0 = f.AddNode(4096, 0x020000000001);
  const size_t s1 = f.AddNode(32768, 0x020000000002);
  const size_t s2 = f.AddNode(32768, 0x020000000003);
  f.Connect(s0, s1);
  f.Connect(s1, s2);
  f.Connect(s2, s0);
  TreePortSettings edge;
  edge.admin_edge = true;
  const size_t h2 = f.AddPort(s2, edge);
  f.Run(900);
  ASSERT_EQ(f.SwitchState(s2, 0), StpState::kDiscarding);
  (void)f.node(s2).ports[h2]->TakeCaptured();
  // A frame straight into the alternate port (as if s1 had sent it).
  f.node(s2).ports[0]->Inject(Broadcast(0x0b0000000001));
  f.node(s2).sw->RunOnce(0);
  EXPECT_EQ(CountFrom(f.node(s2).ports[h2], 0x0b0000000001), 0u);
  auto counters = f.node(s2).sw->Counters(f.node(s2).ids[0]).value();
  EXPECT_EQ(counters.drops[static_cast<size_t>(DropReason::kStpState)], 1u);
  const auto entries = f.node(s2).sw->FdbEntries();
  ASSERT_TRUE(entries.ok());
  for (const FdbEntry& e : *entries)
    EXPECT_NE(e.mac, Mac(0x0b0000000001)) << "learned on a discarding port";
}

// A BPDU on a bpdu_guard port disables it: its state goes discarding and
// stays so; a link down/up re-enables it.
TEST(SpanningTree, BpduGuardDisablesThePortUntilALinkBounce) {
  Fabric f;
  const size_t s0 = f.AddNode(32768, 0x020000000001);
  TreePortSettings guarded;
  guarded.admin_edge = true;
  guarded.bpdu_guard = true;
  const size_t p = f.AddPort(s0, guarded);
  f.Run(100);
  ASSERT_EQ(f.SwitchState(s0, p), StpState::kForwarding);

  stp::Bpdu bpdu;
  bpdu.type = stp::BpduType::kConfig;
  bpdu.root_id = stp::BridgeId{0x1000, Mac(0x020000000009)};
  bpdu.bridge_id = bpdu.root_id;
  bpdu.port_id = stp::MakePortId(128, 1);
  bpdu.max_age = 20 * 256;
  bpdu.hello_time = 2 * 256;
  bpdu.forward_delay = 15 * 256;
  f.node(s0).ports[p]->Inject(stp::EncodeBpduFrame(bpdu, Mac(0x020000000009)));
  f.Run(100);
  EXPECT_EQ(f.SwitchState(s0, p), StpState::kDiscarding);
  const TreeStatus status = f.node(s0).tree->GetStatus();
  EXPECT_TRUE(status.ports.at(0).bpdu_guard_tripped);
  bool tripped = false;
  for (const TreeEvent& e : f.node(s0).events) tripped |= e.kind == TreeEvent::Kind::kBpduGuardTrip;
  EXPECT_TRUE(tripped);
  EXPECT_EQ(f.node(s0).tree->Counters().bpdus_in, 1u);

  ASSERT_TRUE(f.node(s0).tree->SetPortLink(f.node(s0).ids[p], false, 0).ok());
  ASSERT_TRUE(f.node(s0).tree->SetPortLink(f.node(s0).ids[p], true, 10000).ok());
  f.Run(100);
  EXPECT_EQ(f.SwitchState(s0, p), StpState::kForwarding);
}

// A port that joins with its link down (a tap before its carrier is known)
// already has the automatic cost of its speed, not that of an unknown one.
TEST(SpanningTree, APortJoiningLinkDownHasTheCostOfItsSpeed) {
  Fabric f;
  const size_t s0 = f.AddNode(32768, 0x020000000001);
  const size_t p = f.AddPort(s0, {}, /*link_up=*/false);
  TreeStatus status = f.node(s0).tree->GetStatus();
  ASSERT_EQ(status.ports.size(), 1u);
  EXPECT_EQ(status.ports[0].path_cost, 2000u);  // 10 Gb/s
  EXPECT_EQ(status.ports[0].role, TreePortRole::kDisabled);
  ASSERT_TRUE(f.node(s0).tree->SetPortLink(f.node(s0).ids[p], true, 10000).ok());
  f.Run(100);
  EXPECT_EQ(f.node(s0).tree->GetStatus().ports[0].path_cost, 2000u);
}

// A port that leaves the switch before it leaves the tree: the state
// change and the FDB flush the tree then asks for are refused by the
// switch, and each refusal is counted, not discarded.
TEST(SpanningTree, StateChangesAndFlushesTheSwitchRefusesAreCounted) {
  Fabric f;
  const size_t s0 = f.AddNode(32768, 0x020000000001);
  TreePortSettings edge;
  edge.admin_edge = true;
  const size_t p = f.AddPort(s0, edge);
  const size_t q = f.AddPort(s0, edge);
  f.Run(100);
  ASSERT_EQ(f.SwitchState(s0, p), StpState::kForwarding);
  SpanningTreeCounters before = f.node(s0).tree->Counters();
  EXPECT_EQ(before.state_change_failures, 0u);
  EXPECT_EQ(before.flush_failures, 0u);

  const PortId gone = f.node(s0).ids[p];
  ASSERT_TRUE(f.node(s0).sw->RemovePort(gone).ok());
  // Link down: the tree disables the port (discarding) and flushes what it
  // learned there; the switch has neither.
  ASSERT_TRUE(f.node(s0).tree->SetPortLink(gone, false, 0).ok());
  const SpanningTreeCounters after = f.node(s0).tree->Counters();
  EXPECT_EQ(after.state_changes, before.state_changes + 1);
  EXPECT_EQ(after.state_change_failures, 1u);
  EXPECT_EQ(after.flushes, before.flushes + 1);
  EXPECT_EQ(after.flush_failures, 1u);

  // The other port goes on: its own changes are applied, not counted.
  ASSERT_TRUE(f.node(s0).tree->SetPortLink(f.node(s0).ids[q], false, 0).ok());
  EXPECT_EQ(f.SwitchState(s0, q), StpState::kDiscarding);
  EXPECT_EQ(f.node(s0).tree->Counters().state_change_failures, 1u);
  EXPECT_EQ(f.node(s0).tree->Counters().flush_failures, 1u);
}

// A BPDU queued for a port that leaves the tree before the tree reads it
// is refused by the engine: counted, not discarded.
TEST(SpanningTree, ABpduWhosePortLeftTheTreeIsCountedAsRefused) {
  Fabric f;
  const size_t s0 = f.AddNode(32768, 0x020000000001);
  const size_t p = f.AddPort(s0);
  f.Run(100);
  stp::Bpdu bpdu;
  bpdu.type = stp::BpduType::kConfig;
  bpdu.root_id = stp::BridgeId{0x1000, Mac(0x020000000009)};
  bpdu.bridge_id = bpdu.root_id;
  bpdu.port_id = stp::MakePortId(128, 1);
  bpdu.max_age = 20 * 256;
  bpdu.hello_time = 2 * 256;
  bpdu.forward_delay = 15 * 256;
  f.node(s0).ports[p]->Inject(stp::EncodeBpduFrame(bpdu, Mac(0x020000000009)));
  f.node(s0).sw->RunOnce(0);  // trapped into the inbox
  ASSERT_EQ(f.node(s0).sw->Counters(f.node(s0).ids[p])->bpdu_trapped, 1u);
  ASSERT_TRUE(f.node(s0).tree->RemovePort(f.node(s0).ids[p]).ok());
  f.node(s0).tree->Service();
  const SpanningTreeCounters c = f.node(s0).tree->Counters();
  EXPECT_EQ(c.bpdus_in, 1u);
  EXPECT_EQ(c.bpdus_refused, 1u);
}

// The inbox keeps at most `capacity` BPDUs and counts the rest; a frame
// longer than a BPDU slot is kept truncated (the decoder then rejects it).
TEST(BpduInbox, BoundedAndTruncating) {
  auto inbox = BpduInbox::Create(2).value();
  std::vector<uint8_t> frame(200, 0xab);
  inbox->Push(1, frame);
  inbox->Push(2, std::vector<uint8_t>(60, 1));
  inbox->Push(3, std::vector<uint8_t>(60, 1));
  EXPECT_EQ(inbox->dropped(), 1u);
  auto items = inbox->Drain();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].port, 1);
  EXPECT_EQ(items[0].length, 200u);
  EXPECT_EQ(items[0].size, BpduInbox::kMaxFrame);
  EXPECT_EQ(items[1].port, 2);
  EXPECT_EQ(items[1].size, 60u);
  EXPECT_TRUE(inbox->Drain().empty());
}

}  // namespace
}  // namespace vfabric::bridge
