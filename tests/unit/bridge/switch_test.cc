// The forwarding pipeline with memory ports: every forwarding decision and
// every drop reason, counted exactly.
#include "vfabric/bridge/switch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "frames.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/testing/support.h"
#include "vfabric/vlan/port.h"

namespace vfabric::bridge {
namespace {

using testing::EthFrame;
using testing::kBroadcast;
using testing::Mac;
using testing::TagOf;

constexpr uint64_t kSecond = 1'000'000'000;

class SwitchTest : public ::testing::Test {
 protected:
  void Make(SwitchConfig config = {}) {
    config.name = "t";
    config.pool_frames = 256;
    config.buffer_size = 2048;
    config.clock = [this] { return now_.load(); };
    if (config.fdb.hash_seed == 0) config.fdb.hash_seed = 0x1234;
    config.fdb.max_ports = 16;
    auto sw = Switch::Create(std::move(config));
    ASSERT_TRUE(sw.ok()) << sw.status().message();
    sw_ = std::move(sw).value();
  }

  // Adds a memory port named `name`.
  PortId Add(const std::string& name, PortSettings settings = {}, MemoryPortOptions options = {}) {
    auto port = MemoryPort::Create(name, options);
    EXPECT_TRUE(port.ok());
    ports_[name] = port->get();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    EXPECT_TRUE(id.ok()) << id.status().message();
    ids_[name] = *id;
    return *id;
  }

  // Injects and runs the switch until the frame is processed.
  void Send(const std::string& port, std::vector<uint8_t> frame, const VnetHdr& vnet = {}) {
    ports_.at(port)->Inject(std::move(frame), vnet);
    sw_->RunOnce(0);
  }

  std::vector<CapturedFrame> Take(const std::string& port) {
    return ports_.at(port)->TakeCaptured();
  }
  size_t Count(const std::string& port) { return Take(port).size(); }
  PortCounters C(const std::string& port) { return *sw_->Counters(ids_.at(port)); }
  uint64_t Drops(const std::string& port, DropReason r) { return C(port).drop(r); }
  void ExpectNoDrops(const std::string& port) {
    const PortCounters c = C(port);
    for (size_t i = 0; i < kDropReasonCount; ++i)
      EXPECT_EQ(c.drops[i], 0u) << port << " " << ToString(static_cast<DropReason>(i));
  }

  std::atomic<uint64_t> now_{1000 * kSecond};
  std::unique_ptr<Switch> sw_;
  std::map<std::string, MemoryPort*> ports_;
  std::map<std::string, PortId> ids_;
};

const MacAddress kA = Mac(0x525400000001);
const MacAddress kB = Mac(0x525400000002);
const MacAddress kC = Mac(0x525400000003);

TEST_F(SwitchTest, UnknownUnicastFloodsThenLearnedUnicastGoesToOnePort) {
  Make();
  Add("a"), Add("b"), Add("c");
  Send("a", EthFrame(kB, kA));  // B unknown: flood
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Count("b"), 1u);
  EXPECT_EQ(Count("c"), 1u);
  Send("b", EthFrame(kA, kB));  // A learned on a
  EXPECT_EQ(Count("a"), 1u);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(Count("c"), 0u);
  Send("a", EthFrame(kB, kA));  // B learned on b
  EXPECT_EQ(Count("b"), 1u);
  EXPECT_EQ(Count("c"), 0u);
  const auto frame_len = EthFrame(kB, kA).size();
  EXPECT_EQ(C("a").rx_packets, 2u);
  EXPECT_EQ(C("a").rx_bytes, 2 * frame_len);
  EXPECT_EQ(C("a").tx_packets, 1u);
  EXPECT_EQ(C("b").tx_packets, 2u);
  EXPECT_EQ(C("b").tx_bytes, 2 * frame_len);
  EXPECT_EQ(C("c").tx_packets, 1u);
  for (auto p : {"a", "b", "c"}) ExpectNoDrops(p);
  auto entries = sw_->FdbEntries();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 2u);
}

TEST_F(SwitchTest, TheFrameBytesArriveUnchanged) {
  Make();
  Add("a"), Add("b");
  const auto frame = EthFrame(kB, kA, std::nullopt, 0x0800, 100);
  Send("a", frame);
  auto got = Take("b");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, frame);
}

TEST_F(SwitchTest, BroadcastAndMulticastFloodWithinTheVlanOnly) {
  Make();
  Add("a", {PortVlanConfig::Access(10)});
  Add("b", {PortVlanConfig::Access(10)});
  Add("c", {PortVlanConfig::Access(20)});
  Add("d", {PortVlanConfig::Access(10)});
  Send("a", EthFrame(kBroadcast, kA));
  Send("a", EthFrame(Mac(0x01005e000001), kA));  // IPv4 multicast
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Count("b"), 2u);
  EXPECT_EQ(Count("c"), 0u);
  EXPECT_EQ(Count("d"), 2u);
  // A unicast to a MAC learned in another VLAN floods in this one.
  Send("c", EthFrame(kBroadcast, kC));
  Send("a", EthFrame(kC, kA));
  EXPECT_EQ(Count("c"), 0u);
  EXPECT_EQ(Count("b"), 1u);
  for (auto p : {"a", "b", "c", "d"}) ExpectNoDrops(p);
}

TEST_F(SwitchTest, NeverBackToTheIngressPort) {
  Make();
  Add("a"), Add("b");
  Send("a", EthFrame(kBroadcast, kA));
  Send("a", EthFrame(kBroadcast, kB));  // B is behind a as well
  Take("b");
  Send("a", EthFrame(kB, kA));  // to B, which is on a: filtered
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(C("a").rx_packets, 3u);
  ExpectNoDrops("a");
}

TEST_F(SwitchTest, AccessAndTrunkTaggingAtEgress) {
  Make();
  Add("a10", {PortVlanConfig::Access(10)});
  Add("a20", {PortVlanConfig::Access(20)});
  Add("a1", {PortVlanConfig::Access(1)});
  Add("trunk", {PortVlanConfig::Trunk(*VlanSet::Parse("10,20"), 1, false)});
  // Access 10 -> trunk: tagged 10, PCP 0.
  Send("a10", EthFrame(kBroadcast, kA));
  auto t = Take("trunk");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(TagOf(t[0].bytes), uint16_t{10});
  EXPECT_EQ(t[0].bytes.size(), EthFrame(kBroadcast, kA).size() + 4);
  EXPECT_EQ(Count("a20"), 0u);
  EXPECT_EQ(Count("a1"), 0u);
  // Trunk tagged 20 (PCP 5) -> access 20, untagged, bytes as sent less the tag.
  const auto tagged = EthFrame(kBroadcast, kB, uint16_t{5 << 13 | 20});
  Send("trunk", tagged);
  auto a20 = Take("a20");
  ASSERT_EQ(a20.size(), 1u);
  EXPECT_EQ(a20[0].bytes, EthFrame(kBroadcast, kB));
  EXPECT_EQ(Count("a10"), 0u);
  // Untagged on the trunk: the native VLAN 1, out untagged to a1.
  Send("trunk", EthFrame(kBroadcast, kC));
  auto a1 = Take("a1");
  ASSERT_EQ(a1.size(), 1u);
  EXPECT_FALSE(TagOf(a1[0].bytes));
  // And back from a1 to the trunk: native untagged leaves untagged.
  Send("a1", EthFrame(kC, kA));
  t = Take("trunk");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(TagOf(t[0].bytes));
  for (auto p : {"a10", "a20", "a1", "trunk"}) ExpectNoDrops(p);
}

TEST_F(SwitchTest, TrunkToTrunkKeepsThePriorityAndNativeTaggedLeavesTagged) {
  Make();
  Add("t1", {PortVlanConfig::Trunk(*VlanSet::Parse("10"))});
  Add("t2", {PortVlanConfig::Trunk(*VlanSet::Parse("10"), 10, /*native_tagged=*/true)});
  Add("a", {PortVlanConfig::Access(10)});
  Send("t1", EthFrame(kBroadcast, kA, uint16_t{3 << 13 | 10}));
  auto t2 = Take("t2");
  ASSERT_EQ(t2.size(), 1u);
  EXPECT_EQ(TagOf(t2[0].bytes), uint16_t{3 << 13 | 10});
  EXPECT_EQ(Count("a"), 1u);
  // From the access port: native VLAN 10 leaves t2 tagged (PCP 0).
  Send("a", EthFrame(kBroadcast, kB));
  t2 = Take("t2");
  ASSERT_EQ(t2.size(), 1u);
  EXPECT_EQ(TagOf(t2[0].bytes), uint16_t{10});
}

TEST_F(SwitchTest, VlanNotAllowedIsDroppedAndCounted) {
  Make();
  Add("trunk", {PortVlanConfig::Trunk(*VlanSet::Parse("10"))});
  Add("a", {PortVlanConfig::Access(10)});
  Send("trunk", EthFrame(kBroadcast, kA, uint16_t{30}));  // VLAN 30 not carried
  Send("trunk", EthFrame(kBroadcast, kA));                // untagged, no native VLAN
  Send("a", EthFrame(kBroadcast, kB, uint16_t{10}));      // tagged on an access port
  Send("a", EthFrame(kBroadcast, kB, uint16_t{10}, 0x88b5, 46, 0x88a8));  // S-tag
  EXPECT_EQ(Drops("trunk", DropReason::kVlanNotAllowed), 2u);
  EXPECT_EQ(Drops("a", DropReason::kVlanNotAllowed), 2u);
  EXPECT_EQ(C("trunk").rx_packets, 2u);
  EXPECT_EQ(C("trunk").tx_packets, 0u);
  EXPECT_EQ(C("a").tx_packets, 0u);
  EXPECT_EQ(C("trunk").total_drops(), 2u);
  EXPECT_EQ(C("a").total_drops(), 2u);
  // A priority-tagged frame on an access port is accepted into its VLAN.
  Send("a", EthFrame(kBroadcast, kB, uint16_t{4 << 13 | 0}));
  auto t = Take("trunk");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(TagOf(t[0].bytes), uint16_t{4 << 13 | 10});
}

TEST_F(SwitchTest, StpStates) {
  Make();
  Add("a"), Add("b");
  const PortId a = ids_["a"];
  ASSERT_TRUE(sw_->SetPortStpState(a, StpState::kDiscarding).ok());
  Send("a", EthFrame(kB, kA));
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(Drops("a", DropReason::kStpState), 1u);
  EXPECT_TRUE(sw_->FdbEntries()->empty());  // discarding: not learned
  // Frames to a discarding port: it is out of the flood set.
  Send("b", EthFrame(kBroadcast, kB));
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Drops("b", DropReason::kStpState), 0u);

  ASSERT_TRUE(sw_->SetPortStpState(a, StpState::kLearning).ok());
  Send("a", EthFrame(kB, kA));
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(Drops("a", DropReason::kStpState), 2u);
  auto entries = sw_->FdbEntries();
  ASSERT_EQ(entries->size(), 2u);  // kA learned on a (and kB on b)
  // A known unicast to a learning port: dropped, counted on that port.
  Send("b", EthFrame(kA, kB));
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Drops("a", DropReason::kStpState), 3u);

  ASSERT_TRUE(sw_->SetPortStpState(a, StpState::kForwarding).ok());
  Send("a", EthFrame(kB, kA));
  EXPECT_EQ(Count("b"), 1u);
  Send("b", EthFrame(kA, kB));
  EXPECT_EQ(Count("a"), 1u);
  EXPECT_EQ(Drops("a", DropReason::kStpState), 3u);
  EXPECT_EQ(C("a").total_drops(), 3u);
  ExpectNoDrops("b");
  // Back to discarding flushes what a learned.
  ASSERT_TRUE(sw_->SetPortStpState(a, StpState::kDiscarding).ok());
  auto after = sw_->FdbEntries();
  ASSERT_TRUE(after.ok());
  for (const FdbEntry& e : after.value()) EXPECT_NE(e.port, a);
}

TEST_F(SwitchTest, LinkLocalFramesAreTrapped) {
  std::vector<std::pair<PortId, std::vector<uint8_t>>> bpdus;
  SwitchConfig config;
  config.bpdu_hook = [&](PortId port, std::span<const uint8_t> frame) {
    bpdus.emplace_back(port, std::vector<uint8_t>(frame.begin(), frame.end()));
  };
  Make(std::move(config));
  Add("a"), Add("b");
  const auto bpdu = EthFrame(Mac(0x0180c2000000), kA, std::nullopt, 0x0026, 38);
  Send("a", bpdu);
  ASSERT_EQ(bpdus.size(), 1u);
  EXPECT_EQ(bpdus[0].first, ids_["a"]);
  EXPECT_EQ(bpdus[0].second, bpdu);
  EXPECT_EQ(C("a").bpdu_trapped, 1u);
  Send("a", EthFrame(Mac(0x0180c200000e), kA, std::nullopt, 0x88cc));  // LLDP
  Send("a", EthFrame(Mac(0x0180c2000001), kA, std::nullopt, 0x8808));  // pause
  // Trapped even when tagged, and even on a discarding port.
  ASSERT_TRUE(sw_->SetPortStpState(ids_["a"], StpState::kDiscarding).ok());
  Send("a", EthFrame(Mac(0x0180c2000000), kA, uint16_t{10}, 0x0026, 38));
  EXPECT_EQ(bpdus.size(), 2u);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(Drops("a", DropReason::kLinkLocal), 2u);
  EXPECT_EQ(C("a").total_drops(), 2u);
  EXPECT_EQ(C("a").bpdu_trapped, 2u);
  // 01:80:c2:00:00:10 is not link-local: it floods.
  ASSERT_TRUE(sw_->SetPortStpState(ids_["a"], StpState::kForwarding).ok());
  Send("a", EthFrame(Mac(0x0180c2000010), kA));
  EXPECT_EQ(Count("b"), 1u);
}

TEST_F(SwitchTest, SendFrameTransmitsWhateverThePortState) {
  Make();
  Add("a", {PortVlanConfig::Access(10), StpState::kDiscarding});
  const auto bpdu = EthFrame(Mac(0x0180c2000000), Mac(0x020000000001), std::nullopt, 0x0026, 38);
  ASSERT_TRUE(sw_->SendFrame(ids_["a"], bpdu).ok());
  auto got = Take("a");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, bpdu);
  EXPECT_EQ(C("a").tx_packets, 1u);
  EXPECT_EQ(C("a").tx_bytes, bpdu.size());
  EXPECT_FALSE(sw_->SendFrame(7, bpdu).ok());
  EXPECT_FALSE(sw_->SendFrame(ids_["a"], std::vector<uint8_t>(5)).ok());
}

TEST_F(SwitchTest, BpduWithoutAHookIsALinkLocalDrop) {
  Make();
  Add("a"), Add("b");
  Send("a", EthFrame(Mac(0x0180c2000000), kA, std::nullopt, 0x0026, 38));
  EXPECT_EQ(Drops("a", DropReason::kLinkLocal), 1u);
  EXPECT_EQ(C("a").bpdu_trapped, 0u);
  EXPECT_EQ(Count("b"), 0u);
}

// A frame whose source MAC the limit keeps out of the FDB is forwarded all
// the same: counted as not learned, not as a drop.
TEST_F(SwitchTest, MacLimitSkipsTheLearnStillForwardsAndIsNoDrop) {
  SwitchConfig config;
  config.fdb.max_per_port = 2;
  Make(std::move(config));
  Add("a"), Add("b");
  for (uint64_t i = 1; i <= 5; ++i) Send("a", EthFrame(kC, Mac(0x020000000000 + i)));
  EXPECT_EQ(Count("b"), 5u);  // flooded (C unknown) all the same
  EXPECT_EQ(C("a").mac_limit_not_learned, 3u);
  EXPECT_EQ(C("a").total_drops(), 0u);
  ExpectNoDrops("a");
  EXPECT_EQ(sw_->FdbEntries()->size(), 2u);
  // Known MACs refresh without counting.
  Send("a", EthFrame(kC, Mac(0x020000000001)));
  EXPECT_EQ(C("a").mac_limit_not_learned, 3u);
  // Traffic to a MAC that was not learned floods.
  Send("b", EthFrame(Mac(0x020000000005), kB));
  EXPECT_EQ(Count("a"), 1u);
}

// New FDB limits apply to the switch as it is: what it learned stays (the
// newest that fit), unicast keeps going to the learned port, and the new
// per-port limit drops further learns. Invalid limits leave the table alone.
TEST_F(SwitchTest, NewFdbLimitsKeepTheLearnedEntries) {
  Make();
  Add("a"), Add("b"), Add("c");
  for (uint64_t i = 1; i <= 4; ++i) {
    now_ += kSecond;
    Send("a", EthFrame(kC, Mac(0x020000000000 + i)));
  }
  Send("b", EthFrame(kC, kB));
  ASSERT_TRUE(sw_->AddStaticFdb(1, kC, ids_["c"]).ok());
  ASSERT_EQ(sw_->FdbEntries()->size(), 6u);
  Take("a"), Take("b"), Take("c");

  ASSERT_TRUE(sw_->SetFdbLimits(64, 3).ok());
  auto entries = sw_->FdbEntries();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 5u);  // a's oldest, ...:01, left out
  for (const FdbEntry& e : *entries) EXPECT_NE(e.mac, Mac(0x020000000001));
  EXPECT_EQ(sw_->FdbCounters()->evicted, 1u);
  // Known destinations still go to their port only, not flooded.
  Send("c", EthFrame(kB, kC));
  Send("c", EthFrame(Mac(0x020000000004), kC));
  EXPECT_EQ(Count("b"), 1u);
  EXPECT_EQ(Count("a"), 1u);
  // a is at its new limit: a fifth MAC is forwarded, not learned.
  Send("a", EthFrame(kC, Mac(0x020000000009)));
  EXPECT_EQ(C("a").mac_limit_not_learned, 1u);
  EXPECT_EQ(C("a").total_drops(), 0u);

  const Status bad = sw_->SetFdbLimits(2, 3);  // max_per_port over max_entries
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("switch t: FDB limits: "), std::string::npos) << bad.message();
  EXPECT_EQ(sw_->FdbEntries()->size(), 5u);
}

TEST_F(SwitchTest, StaticEntrySteersAndIsNotMovedByLearning) {
  Make();
  Add("a"), Add("b"), Add("c");
  ASSERT_TRUE(sw_->AddStaticFdb(1, kC, ids_["c"]).ok());
  Send("a", EthFrame(kC, kA));
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(Count("c"), 1u);
  // kC appearing as a source on b does not move it.
  Send("b", EthFrame(kBroadcast, kC));
  Take("a"), Take("c");
  Send("a", EthFrame(kC, kA));
  EXPECT_EQ(Count("c"), 1u);
  EXPECT_EQ(Count("b"), 0u);
  ASSERT_TRUE(sw_->RemoveStaticFdb(1, kC).ok());
  EXPECT_FALSE(sw_->RemoveStaticFdb(1, kC).ok());
  Send("a", EthFrame(kC, kA));
  EXPECT_EQ(Count("c") + Count("b"), 2u);  // flooded again
  // A static entry for a port that does not exist is refused with the reason.
  Status bad = sw_->AddStaticFdb(1, kC, 9);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("no port #9"), std::string::npos) << bad.message();
}

TEST_F(SwitchTest, MalformedFramesAreCounted) {
  Make();
  Add("a"), Add("b");
  Send("a", std::vector<uint8_t>(10, 0x02));  // runt
  Send("a",
       {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00});  // truncated tag
  Send("a", EthFrame(kBroadcast, Mac(0x010000000001)));  // multicast source
  Send("a", EthFrame(kBroadcast, Mac(0)));               // zero source
  VnetHdr bad;
  bad.flags = VnetHdr::kNeedsCsum;
  bad.csum_start = 50;
  bad.csum_offset = 16;  // past the end of a 60-byte frame
  Send("a", EthFrame(kBroadcast, kA), bad);
  Send("a", {});  // empty (found by guest_frame_fuzzer under UBSan)
  EXPECT_EQ(Drops("a", DropReason::kMalformed), 6u);
  EXPECT_EQ(C("a").total_drops(), 6u);
  EXPECT_EQ(C("a").rx_packets, 6u);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_TRUE(sw_->FdbEntries()->empty());
}

TEST_F(SwitchTest, TxQueueFullIsCountedOnTheEgressPort) {
  Make();
  Add("a");
  MemoryPortOptions small;
  small.tx_capacity = 1;
  Add("b", {}, small);
  Add("c");
  Send("a", EthFrame(kBroadcast, kA));
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Drops("b", DropReason::kTxQueueFull), 1u);
  EXPECT_EQ(C("b").tx_packets, 1u);
  EXPECT_EQ(C("c").tx_packets, 2u);
  ExpectNoDrops("a");
}

TEST_F(SwitchTest, TxErrorsAreCountedOnTheEgressPortAndSpareTheOthers) {
  Make();
  Add("a");
  MemoryPortOptions broken;
  broken.tx_fails = true;
  Add("b", {}, broken);
  Add("c");
  Send("a", EthFrame(kBroadcast, kA));
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Drops("b", DropReason::kTxError), 2u);
  EXPECT_EQ(C("b").total_drops(), 2u);
  EXPECT_EQ(C("b").tx_packets, 0u);
  EXPECT_EQ(C("c").tx_packets, 2u);
  ExpectNoDrops("a");
  ExpectNoDrops("c");
}

TEST_F(SwitchTest, NoBufferIsCounted) {
  auto pool = FramePool::Create(1, 2048);
  ASSERT_TRUE(pool.ok());
  Frame* held = (*pool)->Alloc();
  ASSERT_NE(held, nullptr);
  auto port = MemoryPort::Create("m");
  ASSERT_TRUE(port.ok());
  (*port)->Inject(EthFrame(kBroadcast, kA));
  Frame* out[4];
  uint64_t no_buffer = 0, malformed = 0;
  EXPECT_EQ((*port)->Receive(**pool, out, &no_buffer, &malformed), 0u);
  EXPECT_EQ(no_buffer, 1u);
  (*pool)->Free(held);
}

TEST_F(SwitchTest, GsoFramePassesToOffloadPortsAndNonTcpGsoIsRefusedElsewhere) {
  Make();
  Add("a");
  MemoryPortOptions plain;
  plain.takes_offload = false;
  Add("plain", {}, plain);
  Add("tap");  // takes offload
  VnetHdr gso;
  gso.flags = VnetHdr::kNeedsCsum;
  gso.gso_type = VnetHdr::kGsoUdp;  // UFO: not segmented here
  gso.gso_size = 1448;
  gso.hdr_len = 42;
  gso.csum_start = 34;
  gso.csum_offset = 6;
  Send("a", EthFrame(kBroadcast, kA, std::nullopt, 0x0800, 1800), gso);
  EXPECT_EQ(Drops("plain", DropReason::kOffloadUnsupported), 1u);
  EXPECT_EQ(C("plain").total_drops(), 1u);
  auto t = Take("tap");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].vnet.gso_type, VnetHdr::kGsoUdp);
  EXPECT_EQ(t[0].vnet.gso_size, 1448);
  EXPECT_EQ(t[0].vnet.csum_start, 34);
  EXPECT_EQ(Count("plain"), 0u);
}

TEST_F(SwitchTest, AgeingExpiresLearnedEntries) {
  SwitchConfig config;
  config.fdb.ageing_time_ns = 10 * kSecond;
  Make(std::move(config));
  Add("a"), Add("b"), Add("c");
  Send("a", EthFrame(kBroadcast, kA));
  Take("b"), Take("c");
  Send("b", EthFrame(kA, kB));
  EXPECT_EQ(Count("c"), 0u);
  now_ += 11 * kSecond;
  sw_->RunOnce(0);
  Send("c", EthFrame(kA, kC));  // kA expired (kB too): flood
  EXPECT_EQ(Count("a"), 2u);
  EXPECT_EQ(Count("b"), 1u);
}

TEST_F(SwitchTest, RemovePortForgetsItsEntriesAndReusesTheId) {
  Make();
  Add("a"), Add("b"), Add("c");
  ASSERT_TRUE(sw_->AddStaticFdb(1, kC, ids_["c"]).ok());
  Send("b", EthFrame(kBroadcast, kB));
  ASSERT_TRUE(sw_->RemovePort(ids_["b"]).ok());
  EXPECT_FALSE(sw_->RemovePort(ids_["b"]).ok());
  ASSERT_TRUE(sw_->RemovePort(ids_["c"]).ok());
  EXPECT_TRUE(sw_->FdbEntries()->empty());
  EXPECT_EQ(sw_->Ports().size(), 1u);
  EXPECT_EQ(Add("d"), ids_["b"]);  // the lowest free id
  EXPECT_EQ(C("d").rx_packets, 0u);
  EXPECT_FALSE(sw_->FindPort("b"));
  EXPECT_EQ(sw_->FindPort("d"), ids_["d"]);
  // Duplicate names are refused.
  auto dup = MemoryPort::Create("d");
  auto r = sw_->AddPort(std::move(dup).value());
  EXPECT_FALSE(r.ok());
}

TEST_F(SwitchTest, BadConfigurationsAreRefusedWithTheReason) {
  SwitchConfig config;
  config.batch_size = 0;
  auto sw = Switch::Create(std::move(config));
  ASSERT_FALSE(sw.ok());
  EXPECT_NE(sw.status().message().find("batch size 0"), std::string::npos);
  Make();
  auto port = MemoryPort::Create("a");
  PortSettings bad;
  bad.vlan = PortVlanConfig::Access(0);
  auto r = sw_->AddPort(std::move(port).value(), bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("add port a"), std::string::npos) << r.status().message();
  Add("b");
  Status s = sw_->SetPortVlan(ids_["b"], PortVlanConfig::Access(4095));
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(sw_->SetPortStpState(7, StpState::kForwarding).ok());
}

// A port whose kernel counts the frames it dropped before the switch could
// read them (a packet socket's ring) has them read every
// kernel_stats_interval_ms into its rx_kernel drops, accumulated (the
// kernel resets its count on each read). Other ports are not asked.
TEST_F(SwitchTest, KernelDropsAreReadPeriodicallyAndAccumulate) {
  SwitchConfig config;
  config.kernel_stats_interval_ms = 5;
  Make(std::move(config));
  MemoryPortOptions kernel;
  kernel.reports_kernel_drops = true;
  Add("a", {}, kernel);
  Add("b");
  ports_["a"]->AddKernelDrops(5);
  ports_["b"]->AddKernelDrops(7);  // b does not report any: never read
  auto drops_reach = [&](uint64_t n) {
    return vfabric::testing::WaitFor(
        [&] {
          sw_->RunOnce(20);
          return Drops("a", DropReason::kRxKernel) >= n;
        },
        5000);
  };
  ASSERT_TRUE(drops_reach(5));
  EXPECT_EQ(Drops("a", DropReason::kRxKernel), 5u);
  ports_["a"]->AddKernelDrops(3);
  ASSERT_TRUE(drops_reach(8));
  EXPECT_EQ(Drops("a", DropReason::kRxKernel), 8u);
  EXPECT_EQ(C("a").total_drops(), 8u);
  ExpectNoDrops("b");
  EXPECT_EQ(ports_["b"]->TakeKernelDrops(), 7u);

  SwitchConfig bad;
  bad.kernel_stats_interval_ms = 0;
  auto refused = Switch::Create(std::move(bad));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("kernel_stats_interval_ms 0"), std::string::npos);
}

// Flushing or adding a static entry for a port the switch does not have
// (never had, or removed) is an error naming the port, not a silent no-op:
// a spanning tree holding a stale port id learns of it (and counts it).
TEST_F(SwitchTest, FdbCallsForAPortTheSwitchDoesNotHaveFail) {
  Make();
  const PortId a = Add("a");
  Add("b");
  EXPECT_TRUE(sw_->FlushFdb(a).ok());
  Status unknown = sw_->FlushFdb(PortId{7});
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("port #7: no such port"), std::string::npos)
      << unknown.message();
  ASSERT_TRUE(sw_->RemovePort(a).ok());
  EXPECT_FALSE(sw_->FlushFdb(a).ok());
  EXPECT_FALSE(sw_->FlushFdb(a, VlanId{1}).ok());
  EXPECT_FALSE(sw_->AddStaticFdb(1, kA, a).ok());
  EXPECT_TRUE(sw_->FlushFdb().ok());
  EXPECT_TRUE(sw_->FlushFdb(std::nullopt, VlanId{1}).ok());
  EXPECT_TRUE(sw_->FdbEntries()->empty());
}

// The switch's ingress classification (fast paths included) agrees with the
// vlan library on random port configurations and random frames: a frame is
// forwarded iff vlan::ClassifyIngress accepts it, in the VLAN it says, with
// its PCP and DEI.
TEST(SwitchVlanModel, ClassificationAgreesWithTheVlanLibrary) {
  std::mt19937_64 rng(20261121);
  for (int round = 0; round < 40; ++round) {
    SwitchConfig config;
    config.fdb.hash_seed = 11;
    config.fdb.max_ports = 4;
    config.buffer_size = 2048;
    auto sw = Switch::Create(std::move(config));
    ASSERT_TRUE(sw.ok());
    // The port under test, with a random mode.
    // As the vlan library takes it, and the same as the switch takes it.
    vlan::PortVlanConfig in_config;
    PortVlanConfig switch_config;
    const vlan::VlanId pvid = static_cast<vlan::VlanId>(1 + rng() % 20);
    if (rng() % 3 == 0) {
      in_config = vlan::PortVlanConfig::Access(pvid);
      switch_config = PortVlanConfig::Access(pvid);
    } else {
      vlan::VlanSet allowed;
      VlanSet switch_allowed;
      for (int k = 0; k < 8; ++k) {
        const auto vid = static_cast<vlan::VlanId>(1 + rng() % 20);
        allowed.Add(vid);
        switch_allowed.Add(vid);
      }
      const int native = static_cast<int>(rng() % 3);
      in_config = vlan::PortVlanConfig::Trunk(allowed, native ? pvid : 0, native == 2);
      switch_config = PortVlanConfig::Trunk(switch_allowed, native ? pvid : 0, native == 2);
    }
    // The observer: a trunk carrying every VLAN, everything tagged.
    PortVlanConfig observer = PortVlanConfig::Trunk(VlanSet::All());
    auto in = MemoryPort::Create("in");
    auto out = MemoryPort::Create("out");
    MemoryPort* in_p = in->get();
    MemoryPort* out_p = out->get();
    ASSERT_TRUE((*sw)->AddPort(std::move(in).value(), {switch_config}).ok());
    ASSERT_TRUE((*sw)->AddPort(std::move(out).value(), {observer}).ok());
    for (int n = 0; n < 200; ++n) {
      std::vector<uint8_t> f = EthFrame(kBroadcast, Mac(0x020000000000 + rng() % 1000));
      const int tags = static_cast<int>(rng() % 3);
      for (int t = 0; t < tags; ++t) {
        const uint16_t tpid = rng() % 5 == 0 ? 0x88a8 : 0x8100;
        uint16_t vid = static_cast<uint16_t>(rng() % 24);
        if (rng() % 10 == 0) vid = 4095;
        const uint16_t tci = static_cast<uint16_t>((rng() % 8) << 13 | (rng() % 2) << 12 | vid);
        f.insert(f.begin() + 12, {static_cast<uint8_t>(tpid >> 8), static_cast<uint8_t>(tpid),
                                  static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci)});
      }
      if (rng() % 10 == 0) f.resize(12 + rng() % 8);  // truncated somewhere in the tags
      const vlan::Ingress expected = vlan::ClassifyIngress(in_config, f);
      in_p->Inject(f);
      (*sw)->RunOnce(0);
      auto got = out_p->TakeCaptured();
      if (!expected.accepted()) {
        EXPECT_TRUE(got.empty()) << "round " << round << " frame " << n;
        continue;
      }
      ASSERT_EQ(got.size(), 1u) << "round " << round << " frame " << n;
      const uint16_t want_tci =
          static_cast<uint16_t>(expected.pcp << 13 | (expected.dei ? 1 : 0) << 12 | expected.vlan);
      EXPECT_EQ(TagOf(got[0].bytes), want_tci) << "round " << round << " frame " << n;
      // The rest of the frame: the classifying tag popped, the rest as sent.
      std::vector<uint8_t> rest(f);
      if (expected.strip) rest.erase(rest.begin() + 12, rest.begin() + 16);
      rest.insert(rest.begin() + 12, got[0].bytes.begin() + 12, got[0].bytes.begin() + 16);
      EXPECT_EQ(got[0].bytes, rest);
    }
  }
}

// A running switch with one port, "a", whose first frame (from kA) was
// learned; entries age after `ageing_ns`.
void StartSwitchThatLearnedOneEntry(uint64_t ageing_ns, std::unique_ptr<Switch>* out) {
  SwitchConfig config;
  config.fdb.hash_seed = 3;
  config.fdb.max_ports = 4;
  config.fdb.ageing_time_ns = ageing_ns;
  config.fdb.refresh_granularity_ns = 0;
  config.buffer_size = 2048;
  auto sw = Switch::Create(std::move(config));
  ASSERT_TRUE(sw.ok());
  auto a = MemoryPort::Create("a");
  MemoryPort* a_p = a->get();
  ASSERT_TRUE((*sw)->AddPort(std::move(a).value()).ok());
  ASSERT_TRUE((*sw)->Start().ok());
  a_p->Inject(EthFrame(kBroadcast, kA));
  ASSERT_TRUE(vfabric::testing::WaitFor([&] { return (*sw)->Counters(0)->rx_packets == 1; }, 5000));
  *out = std::move(sw).value();
}

// With the datapath thread asleep in epoll_wait, the ageing timerfd alone
// wakes it when the oldest entry expires (the check below is the first
// command after the sleep, and commands run before a turn's ageing).
TEST(SwitchAgeing, TheTimerWakesTheDatapathThread) {
  std::unique_ptr<Switch> sw;
  ASSERT_NO_FATAL_FAILURE(StartSwitchThatLearnedOneEntry(500'000'000, &sw));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto counters = sw->FdbCounters();
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->learned, 1u);
  EXPECT_EQ(counters->expired, 1u);
}

// The running switch reads the oldest entry's deadline only when its timer
// fires or is disarmed: shortening the ageing time must disarm it, or the
// entry would live until the old deadline (5 minutes here).
TEST(SwitchAgeing, ShorteningTheAgeingTimeWhileRunningExpiresAtTheNewDeadline) {
  std::unique_ptr<Switch> sw;
  ASSERT_NO_FATAL_FAILURE(StartSwitchThatLearnedOneEntry(300 * kSecond, &sw));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // turns with the timer armed
  ASSERT_TRUE(sw->SetAgeingTime(200'000'000).ok());
  EXPECT_TRUE(vfabric::testing::WaitFor(
      [&] {
        auto counters = sw->FdbCounters();
        return counters.ok() && counters->expired == 1;
      },
      3000));
  auto entries = sw->FdbEntries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

// A port that is cheap to poll is watched one-shot: its event disarms it.
// An event whose batch yields no frame (each one dropped in Receive) must
// arm it again at once, or the port would never wake the switch again; a
// port that yielded frames is polled until idle, then armed again.
TEST(SwitchOneShot, APortIsArmedAgainAfterAnEmptyBatchAndAfterABurst) {
  SwitchConfig config;
  config.fdb.max_ports = 4;
  config.buffer_size = 2048;
  auto sw = Switch::Create(std::move(config));
  ASSERT_TRUE(sw.ok());
  MemoryPortOptions cheap;
  cheap.cheap_to_poll = true;
  auto a = MemoryPort::Create("a", cheap);
  auto b = MemoryPort::Create("b");
  ASSERT_TRUE(a.ok() && b.ok());
  MemoryPort* a_p = a->get();
  MemoryPort* b_p = b->get();
  auto a_id = (*sw)->AddPort(std::move(a).value());
  ASSERT_TRUE(a_id.ok());
  ASSERT_TRUE((*sw)->AddPort(std::move(b).value()).ok());
  ASSERT_TRUE((*sw)->Start().ok());
  // Larger than a frame buffer: Receive drops it, the batch is empty.
  a_p->Inject(EthFrame(kBroadcast, kA, std::nullopt, 0x88b5, 3000));
  ASSERT_TRUE(vfabric::testing::WaitFor(
      [&] { return (*sw)->Counters(*a_id)->drop(DropReason::kMalformed) == 1; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // asleep in epoll_wait again
  a_p->Inject(EthFrame(kBroadcast, kA));
  EXPECT_TRUE(vfabric::testing::WaitFor([&] { return b_p->captured_count() == 1; }, 5000))
      << "the port was left disarmed after an empty batch";
  for (int i = 0; i < 100; ++i) a_p->Inject(EthFrame(kBroadcast, kA));
  ASSERT_TRUE(vfabric::testing::WaitFor([&] { return b_p->captured_count() == 101; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // idle: armed again, asleep
  a_p->Inject(EthFrame(kBroadcast, kA));
  EXPECT_TRUE(vfabric::testing::WaitFor([&] { return b_p->captured_count() == 102; }, 5000))
      << "the port was left disarmed after a burst";
  (*sw)->Stop();
  EXPECT_EQ((*sw)->Counters(*a_id)->rx_packets, 102u);
}

// The same switch on its own datapath thread: configuration changes arrive
// as snapshots and commands between batches, while frames flow.
TEST_F(SwitchTest, DatapathThreadTakesSnapshotsAndCommands) {
  Make();
  Add("a", {PortVlanConfig::Access(10)});
  Add("b", {PortVlanConfig::Access(10)});
  Add("c", {PortVlanConfig::Access(20)});
  ASSERT_TRUE(sw_->Start().ok());
  EXPECT_TRUE(sw_->running());
  EXPECT_FALSE(sw_->Start().ok());
  ports_["a"]->Inject(EthFrame(kBroadcast, kA));
  EXPECT_TRUE(vfabric::testing::WaitFor([&] { return ports_["b"]->captured_count() == 1; }, 5000));
  EXPECT_EQ(ports_["c"]->captured_count(), 0u);
  // Snapshot swap: c joins VLAN 10.
  ASSERT_TRUE(sw_->SetPortVlan(ids_["c"], PortVlanConfig::Access(10)).ok());
  ports_["a"]->Inject(EthFrame(kBroadcast, kA));
  EXPECT_TRUE(vfabric::testing::WaitFor([&] { return ports_["c"]->captured_count() == 1; }, 5000));
  // Commands: static entry, FDB read-back, a new port, counters, while running.
  ASSERT_TRUE(sw_->AddStaticFdb(10, kC, ids_["c"]).ok());
  auto entries = sw_->FdbEntries();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 2u);
  Add("d", {PortVlanConfig::Access(10)});
  Take("b"), Take("c");
  for (int i = 0; i < 100; ++i) ports_["a"]->Inject(EthFrame(kC, kA));
  EXPECT_TRUE(
      vfabric::testing::WaitFor([&] { return ports_["c"]->captured_count() == 100; }, 5000));
  EXPECT_EQ(ports_["b"]->captured_count(), 0u);
  EXPECT_EQ(ports_["d"]->captured_count(), 0u);
  auto fc = sw_->FdbCounters();
  ASSERT_TRUE(fc.ok());
  EXPECT_GE(fc->lookup_hits, 100u);
  ASSERT_TRUE(sw_->RemovePort(ids_["d"]).ok());
  sw_->Stop();
  EXPECT_FALSE(sw_->running());
  EXPECT_EQ(C("a").rx_packets, 102u);
  EXPECT_EQ(C("c").tx_packets, 101u);
  // Stopped, the switch still answers (inline) and can start again.
  EXPECT_TRUE(sw_->FdbEntries().ok());
  ASSERT_TRUE(sw_->Start().ok());
  ports_["a"]->Inject(EthFrame(kC, kA));
  EXPECT_TRUE(
      vfabric::testing::WaitFor([&] { return ports_["c"]->captured_count() == 101; }, 5000));
}

}  // namespace
}  // namespace vfabric::bridge
