// Port mirroring in the switch with memory ports: which frames each kind of
// selection copies to the output port, how the copies are tagged, that the
// output port takes no part in forwarding, and the checks of SetMirrors.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "frames.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"

namespace vfabric::bridge {
namespace {

using testing::EthFrame;
using testing::kBroadcast;
using testing::Mac;
using testing::TagOf;

const MacAddress kA = Mac(0x525400000001);
const MacAddress kB = Mac(0x525400000002);
const MacAddress kC = Mac(0x525400000003);

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SwitchConfig config;
    config.name = "t";
    config.pool_frames = 256;
    config.buffer_size = 2048;
    config.fdb.hash_seed = 0x1234;
    config.fdb.max_ports = 16;
    auto sw = Switch::Create(std::move(config));
    ASSERT_TRUE(sw.ok()) << sw.status().message();
    sw_ = std::move(sw).value();
  }

  PortId Add(const std::string& name, PortSettings settings = {}, MemoryPortOptions options = {}) {
    auto port = MemoryPort::Create(name, options);
    EXPECT_TRUE(port.ok());
    ports_[name] = port->get();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    EXPECT_TRUE(id.ok()) << id.status().message();
    ids_[name] = *id;
    return *id;
  }
  void Send(const std::string& port, std::vector<uint8_t> frame) {
    ports_.at(port)->Inject(std::move(frame));
    sw_->RunOnce(0);
  }
  std::vector<CapturedFrame> Take(const std::string& port) {
    return ports_.at(port)->TakeCaptured();
  }
  size_t Count(const std::string& port) { return Take(port).size(); }
  PortCounters C(const std::string& port) { return *sw_->Counters(ids_.at(port)); }
  MirrorSettings Mirror(std::vector<std::string> src, std::vector<std::string> dst,
                        const std::string& output) {
    MirrorSettings m;
    m.name = "m-" + output;
    for (const auto& p : src) m.select_src.push_back(ids_.at(p));
    for (const auto& p : dst) m.select_dst.push_back(ids_.at(p));
    m.output = ids_.at(output);
    return m;
  }
  // a and b talk; c is a bystander; m is the output. a and b know each other.
  void ThreePortsAndAnOutput() {
    Add("a"), Add("b"), Add("c"), Add("m");
    Send("a", EthFrame(kBroadcast, kA));
    Send("b", EthFrame(kBroadcast, kB));
    for (auto p : {"a", "b", "c", "m"}) Take(p);
  }

  std::unique_ptr<Switch> sw_;
  std::map<std::string, MemoryPort*> ports_;
  std::map<std::string, PortId> ids_;
};

TEST_F(MirrorTest, SourcePortCopiesWhatItReceivesOnly) {
  ThreePortsAndAnOutput();
  ASSERT_TRUE(sw_->SetMirrors({Mirror({"a"}, {}, "m")}).ok());
  const uint64_t tx_before = C("m").tx_packets;  // the floods of the set-up
  const auto ab = EthFrame(kB, kA, std::nullopt, 0x0800, 60);
  Send("a", ab);                // a -> b: received on a, copied
  Send("b", EthFrame(kA, kB));  // b -> a: sent to a, not selected
  Send("c", EthFrame(kB, kC));  // c -> b: neither
  auto copies = Take("m");
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].bytes, ab);  // the frame as it was, untagged (m's VLAN is a's)
  EXPECT_EQ(Count("b"), 2u);       // forwarding is unchanged
  EXPECT_EQ(Count("a"), 1u);
  EXPECT_EQ(C("m").tx_packets - tx_before, 1u);
  EXPECT_EQ(C("m").total_drops(), 0u);
}

TEST_F(MirrorTest, DestinationPortCopiesWhatLeavesByIt) {
  ThreePortsAndAnOutput();
  ASSERT_TRUE(sw_->SetMirrors({Mirror({}, {"a"}, "m")}).ok());
  Send("b", EthFrame(kA, kB));          // unicast to a: copied
  Send("a", EthFrame(kB, kA));          // from a: not copied
  Send("c", EthFrame(kBroadcast, kC));  // flooded, a among the ports: copied once
  Send("a", EthFrame(kBroadcast, kA));  // flooded, never back to a: not copied
  EXPECT_EQ(Count("m"), 2u);
}

TEST_F(MirrorTest, BothDirectionsAndTwoMirrorsOnOneOutputGiveOneCopy) {
  ThreePortsAndAnOutput();
  ASSERT_TRUE(sw_->SetMirrors({Mirror({"a"}, {"a"}, "m"), Mirror({"a", "b"}, {"b"}, "m")}).ok());
  Send("a", EthFrame(kB, kA));  // rx a, tx b: selected by both mirrors, one copy
  EXPECT_EQ(Count("m"), 1u);
  Send("b", EthFrame(kA, kB));
  EXPECT_EQ(Count("m"), 1u);
  Send("c", EthFrame(kC, kC));  // c to itself (filtered): nothing
  EXPECT_EQ(Count("m"), 0u);
}

TEST_F(MirrorTest, TwoOutputsEachGetACopy) {
  ThreePortsAndAnOutput();
  Add("m2");
  ASSERT_TRUE(sw_->SetMirrors({Mirror({"a"}, {}, "m"), Mirror({}, {"b"}, "m2")}).ok());
  Send("a", EthFrame(kB, kA));
  EXPECT_EQ(Count("m"), 1u);
  EXPECT_EQ(Count("m2"), 1u);
}

TEST_F(MirrorTest, VlanSelectionCopiesThatVlanOnlyTaggedUnlessTheOutputsOwn) {
  Add("a", {PortVlanConfig::Access(10)});
  Add("b", {PortVlanConfig::Access(20)});
  Add("t", {PortVlanConfig::Trunk(*VlanSet::Parse("10,20"))});
  Add("m", {PortVlanConfig::Access(20)});  // copies of VLAN 20 leave it untagged
  Add("m10");                              // access 1: copies of VLAN 10 leave it tagged
  MirrorSettings v10;
  v10.name = "v10";
  v10.select_vlan.Add(10);
  v10.output = ids_.at("m10");
  MirrorSettings v20 = v10;
  v20.name = "v20";
  v20.select_vlan = *VlanSet::Parse("20");
  v20.output = ids_.at("m");
  ASSERT_TRUE(sw_->SetMirrors({v10, v20}).ok());
  Send("a", EthFrame(kBroadcast, kA));          // VLAN 10, to t
  Send("t", EthFrame(kBroadcast, kC, 0x2014));  // VLAN 20 (PCP 1), to b
  Send("t", EthFrame(kBroadcast, kC, 0x000a));  // VLAN 10, to a
  auto ten = Take("m10");
  ASSERT_EQ(ten.size(), 2u);
  EXPECT_EQ(TagOf(ten[0].bytes), 10);
  EXPECT_EQ(TagOf(ten[1].bytes), 10);
  auto twenty = Take("m");
  ASSERT_EQ(twenty.size(), 1u);
  EXPECT_EQ(TagOf(twenty[0].bytes), std::nullopt);
  EXPECT_EQ(twenty[0].bytes, EthFrame(kBroadcast, kC));
}

TEST_F(MirrorTest, TheOutputPortTakesNoPartInForwarding) {
  ThreePortsAndAnOutput();
  Send("m", EthFrame(kBroadcast, Mac(0x5254000000ee)));  // learned before it is an output
  EXPECT_EQ(Count("a"), 1u);
  EXPECT_EQ(Count("b"), 1u);
  ASSERT_TRUE(sw_->SetMirrors({Mirror({"c"}, {}, "m")}).ok());
  Send("a", EthFrame(kBroadcast, kA));  // flood: not to m
  EXPECT_EQ(Count("m"), 0u);
  EXPECT_EQ(Count("b"), 1u);
  Send("a", EthFrame(Mac(0x5254000000ee), kA));  // its old entry is flushed: flood, not to m
  EXPECT_EQ(Count("m"), 0u);
  EXPECT_EQ(Count("b"), 1u);
  Send("m", EthFrame(kBroadcast, Mac(0x5254000000ee)));  // dropped, counted, not learned
  Send("m", EthFrame(kA, Mac(0x5254000000ee)));
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(C("m").drop(DropReason::kMirrorOutput), 2u);
  auto fdb = sw_->FdbEntries();
  ASSERT_TRUE(fdb.ok());
  for (const FdbEntry& e : *fdb) EXPECT_NE(e.port, ids_.at("m"));
  // Without mirrors it forwards again.
  ASSERT_TRUE(sw_->SetMirrors({}).ok());
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Count("m"), 1u);
}

TEST_F(MirrorTest, CopiesThatCannotBeSentAreCountedOnTheOutput) {
  Add("a"), Add("b");
  MemoryPortOptions one;
  one.tx_capacity = 1;  // keeps one frame; the next one finds the port full
  Add("m", {}, one);
  ASSERT_TRUE(sw_->SetMirrors({Mirror({"a"}, {}, "m")}).ok());
  Send("a", EthFrame(kB, kA));
  Send("a", EthFrame(kB, kA));
  EXPECT_EQ(Count("b"), 2u);
  EXPECT_EQ(C("m").tx_packets, 1u);
  EXPECT_EQ(C("m").drop(DropReason::kTxQueueFull), 1u);
}

TEST_F(MirrorTest, SetMirrorsRefusesWhatCannotWork) {
  ThreePortsAndAnOutput();
  MirrorSettings loop = Mirror({"a", "m"}, {}, "m");
  Status s = sw_->SetMirrors({loop});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "switch t: set mirrors: mirror m-m: selects port #3, the output port of mirror m-m");
  MirrorSettings gone = Mirror({"a"}, {}, "m");
  gone.output = 9;
  s = sw_->SetMirrors({gone});
  EXPECT_EQ(s.message(), "switch t: set mirrors: mirror m-m: no output port #9");
  EXPECT_TRUE(sw_->Mirrors().empty());  // nothing changed
  std::vector<MirrorSettings> many(kMaxMirrors + 1, Mirror({"a"}, {}, "m"));
  EXPECT_FALSE(sw_->SetMirrors(many).ok());
}

TEST_F(MirrorTest, RemovingAPortForgetsItInTheMirrors) {
  ThreePortsAndAnOutput();
  ASSERT_TRUE(sw_->SetMirrors({Mirror({"a"}, {}, "m"), Mirror({"b"}, {"c"}, "m")}).ok());
  ASSERT_TRUE(sw_->RemovePort(ids_.at("a")).ok());
  // The first mirror selected only a: it goes rather than select everything.
  std::vector<MirrorSettings> left = sw_->Mirrors();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].select_src, std::vector<PortId>{ids_.at("b")});
  ASSERT_TRUE(sw_->RemovePort(ids_.at("m")).ok());
  EXPECT_TRUE(sw_->Mirrors().empty());
}

}  // namespace
}  // namespace vfabric::bridge
