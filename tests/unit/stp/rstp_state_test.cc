// Bridge::SaveState / Bridge::Restore: the spanning tree handed to a new
// image of netd keeps every port's role and state, and goes on with its
// peers; a state that is truncated, corrupt, of another engine layout or of
// other bridge settings is refused with the reason (the caller starts a
// fresh bridge then).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "simulation.h"
#include "vfabric/stp/rstp.h"

namespace vfabric::stp {
namespace {

using std::chrono::seconds;
using testing::BridgeSpec;
using testing::Network;

MacAddress MacOf(uint8_t last) {
  MacAddress mac;
  mac.bytes = {0x02, 0, 0, 0, 0, last};
  return mac;
}

BridgeConfig Config() {
  BridgeConfig config;
  config.address = MacOf(1);
  config.forward_delay = 4;
  return config;
}

// A bridge whose two ports have converged (designated, forwarding).
std::unique_ptr<Bridge> Converged(TimePoint* now) {
  auto bridge = Bridge::Create(Config(), *now);
  EXPECT_TRUE(bridge.ok()) << bridge.status().message();
  for (PortNumber n : {PortNumber{1}, PortNumber{2}}) {
    PortConfig port;
    port.number = n;
    EXPECT_TRUE((*bridge)->AddPort(port, *now).ok());
    EXPECT_TRUE((*bridge)->SetPortEnabled(n, true, 10000, *now).ok());
  }
  for (int i = 0; i < 20; ++i) {
    *now += seconds(1);
    (*bridge)->AdvanceTo(*now);
  }
  (void)(*bridge)->TakeOutput();
  EXPECT_EQ((*bridge)->GetPortState(1), PortState::kForwarding);
  EXPECT_EQ((*bridge)->GetPortState(2), PortState::kForwarding);
  return std::move(bridge).value();
}

TEST(StpStateTest, RoundTripKeepsRolesStatesAndTimers) {
  TimePoint now = TimePoint() + seconds(1000);
  auto before = Converged(&now);
  const std::vector<uint8_t> state = before->SaveState();
  auto after = Bridge::Restore(Config(), state, now);
  ASSERT_TRUE(after.ok()) << after.status().message();
  Bridge& restored = **after;
  EXPECT_TRUE(restored.HasPort(1));
  EXPECT_TRUE(restored.HasPort(2));
  EXPECT_FALSE(restored.HasPort(3));
  // (Not byte for byte: records are saved with their padding, which a copy
  // need not keep.)
  EXPECT_EQ(restored.SaveState().size(), state.size());
  const BridgeStatus sa = before->GetStatus(now), sb = restored.GetStatus(now);
  EXPECT_EQ(sa.root_id.ToU64(), sb.root_id.ToU64());
  EXPECT_EQ(sa.topology_change_count, sb.topology_change_count);
  ASSERT_EQ(sa.ports.size(), sb.ports.size());
  for (size_t i = 0; i < sa.ports.size(); ++i) {
    EXPECT_EQ(sa.ports[i].role, sb.ports[i].role);
    EXPECT_EQ(sa.ports[i].state, sb.ports[i].state);
    EXPECT_EQ(sa.ports[i].oper_edge, sb.ports[i].oper_edge);
    EXPECT_EQ(sa.ports[i].designated_bridge.ToU64(), sb.ports[i].designated_bridge.ToU64());
    EXPECT_EQ(sa.ports[i].counters.forward_transitions, sb.ports[i].counters.forward_transitions);
  }
  EXPECT_EQ(restored.NextDeadline(), before->NextDeadline());
  for (PortNumber n : {PortNumber{1}, PortNumber{2}}) {
    EXPECT_EQ(restored.GetPortState(n), PortState::kForwarding);
    EXPECT_EQ(restored.GetPortRole(n), PortRole::kDesignated);
  }
  // It goes on as the old one would: the same outputs for the same time
  // (hellos), and no port passes through discarding or learning.
  for (int i = 0; i < 30; ++i) {
    now += seconds(1);
    before->AdvanceTo(now);
    restored.AdvanceTo(now);
    Output a = before->TakeOutput(), b = restored.TakeOutput();
    EXPECT_TRUE(b.state_changes.empty()) << "second " << i;
    EXPECT_TRUE(b.flushes.empty()) << "second " << i;
    ASSERT_EQ(a.bpdus.size(), b.bpdus.size()) << "second " << i;
    for (size_t k = 0; k < a.bpdus.size(); ++k) EXPECT_EQ(a.bpdus[k].frame, b.bpdus[k].frame);
  }
  // Unlike a fresh bridge, whose ports start discarding.
  auto fresh = Bridge::Create(Config(), now);
  PortConfig port;
  port.number = 1;
  ASSERT_TRUE((*fresh)->AddPort(port, now).ok());
  ASSERT_TRUE((*fresh)->SetPortEnabled(1, true, 10000, now).ok());
  EXPECT_NE((*fresh)->GetPortState(1), PortState::kForwarding);
}

TEST(StpStateTest, RefusesTruncatedCorruptForeignAndOtherSettings) {
  TimePoint now = TimePoint() + seconds(1000);
  auto bridge = Converged(&now);
  const std::vector<uint8_t> state = bridge->SaveState();
  auto refused = [&](std::vector<uint8_t> bytes, BridgeConfig config = Config()) {
    auto r = Bridge::Restore(config, bytes, now);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(refused({}).find("truncated"), std::string::npos);
  EXPECT_NE(refused({state.begin(), state.begin() + 11}).find("truncated"), std::string::npos);
  // Cut anywhere: the checksum (the last 8 bytes) no longer matches.
  for (size_t cut : {state.size() / 2, state.size() - 1})
    EXPECT_NE(
        refused({state.begin(), state.begin() + static_cast<ptrdiff_t>(cut)}).find("checksum"),
        std::string::npos)
        << cut;
  std::vector<uint8_t> flipped = state;
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_NE(refused(flipped).find("checksum"), std::string::npos);
  std::vector<uint8_t> not_ours = state;
  not_ours[0] = 'X';
  EXPECT_NE(refused(not_ours).find("magic"), std::string::npos);
  // Another engine layout (a build whose Port record differs), checksum
  // made right: refused by the layout, not by chance.
  // The layout's Port size is at offset 12 (after the magic and the version).
  std::vector<uint8_t> other_layout(state.begin(), state.end() - 8);
  other_layout[12] = static_cast<uint8_t>(other_layout[12] + 8);
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t b : other_layout) {
    hash ^= b;
    hash *= 0x100000001b3ull;
  }
  for (int k = 0; k < 8; ++k) other_layout.push_back(static_cast<uint8_t>(hash >> (8 * k)));
  EXPECT_NE(refused(other_layout).find("engine layout"), std::string::npos);
  BridgeConfig other = Config();
  other.forward_delay = 5;
  EXPECT_NE(refused(state, other).find("other bridge settings"), std::string::npos);
}

// Three bridges in a loop converge; each in turn is replaced by a restored
// copy of itself (netd re-executed on that host): the tree stays as it was
// -- no state change, no flush, no loop -- while BPDUs keep flowing.
TEST(StpStateTest, RestoredBridgeCarriesOnWithItsPeers) {
  Network net(std::chrono::milliseconds(1));
  for (uint8_t i = 1; i <= 3; ++i) {
    BridgeSpec spec;
    spec.address = MacOf(i);
    spec.forward_delay = 4;
    net.AddBridge(spec);
  }
  net.Connect(0, 1);
  net.Connect(1, 2);
  net.Connect(2, 0);
  net.RunFor(seconds(30));
  ASSERT_TRUE(net.Converged()) << net.Mismatches();
  for (int b = 0; b < 3; ++b) {
    ASSERT_TRUE(net.RestoreBridge(b).ok());
    net.RunFor(seconds(30));
    EXPECT_TRUE(net.Converged()) << net.Mismatches();
    EXPECT_EQ(net.restored_changes(b), 0u) << "bridge " << b;
  }
  EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
}

}  // namespace
}  // namespace vfabric::stp
