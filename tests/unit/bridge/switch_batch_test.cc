// Switch batching (BeginBatch/EndBatch): N changes, one snapshot rebuild,
// and the same forwarding, STP and VLAN behaviour as the changes made one
// by one.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "frames.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"

namespace vfabric::bridge {
namespace {

using testing::EthFrame;
using testing::kBroadcast;
using testing::Mac;

const MacAddress kA = Mac(0x525400000001);
const MacAddress kB = Mac(0x525400000002);

std::unique_ptr<Switch> MakeSwitch(size_t max_ports) {
  SwitchConfig config;
  config.name = "batch";
  config.pool_frames = 256;
  config.buffer_size = 2048;
  config.fdb.hash_seed = 0x1234;
  config.fdb.max_ports = max_ports;
  auto sw = Switch::Create(std::move(config));
  EXPECT_TRUE(sw.ok()) << sw.status().message();
  return sw.ok() ? std::move(sw).value() : nullptr;
}

struct Added {
  PortId id;
  MemoryPort* port;
};

Added AddTo(Switch& sw, const std::string& name, PortSettings settings = {}) {
  auto port = MemoryPort::Create(name);
  EXPECT_TRUE(port.ok());
  MemoryPort* raw = port->get();
  auto id = sw.AddPort(std::move(port).value(), settings);
  EXPECT_TRUE(id.ok()) << id.status().message();
  return {id.ok() ? *id : kNoPort, raw};
}

TEST(SwitchBatchTest, ABatchOfPortsIsOneSnapshotRebuild) {
  constexpr size_t kPorts = 500;
  auto sw = MakeSwitch(1024);
  ASSERT_NE(sw, nullptr);
  const uint64_t before = sw->SnapshotBuilds();
  std::vector<Added> ports;
  {
    Switch::Batch batch(*sw);
    for (size_t i = 0; i < kPorts; ++i) {
      PortSettings settings;
      settings.vlan = PortVlanConfig::Access(static_cast<VlanId>(i % 2 == 0 ? 10 : 20));
      ports.push_back(AddTo(*sw, "p" + std::to_string(i), settings));
    }
    EXPECT_EQ(sw->SnapshotBuilds(), before);  // nothing rebuilt inside the batch
    ASSERT_TRUE(batch.End().ok());
  }
  EXPECT_EQ(sw->SnapshotBuilds(), before + 1);
  EXPECT_EQ(sw->Ports().size(), kPorts);
  // Forwarding as if added one by one: a broadcast in VLAN 10 reaches the
  // other 249 ports of VLAN 10 and none of VLAN 20.
  ports[0].port->Inject(EthFrame(kBroadcast, kA));
  sw->RunOnce(0);
  size_t reached = 0;
  for (size_t i = 1; i < kPorts; ++i) {
    const size_t got = ports[i].port->TakeCaptured().size();
    EXPECT_EQ(got, i % 2 == 0 ? 1u : 0u) << "port " << i;
    reached += got;
  }
  EXPECT_EQ(reached, kPorts / 2 - 1);
  // A port outside a batch: one rebuild each, as before.
  AddTo(*sw, "late");
  EXPECT_EQ(sw->SnapshotBuilds(), before + 2);
}

TEST(SwitchBatchTest, OneByOneRebuildsPerChange) {
  auto sw = MakeSwitch(16);
  ASSERT_NE(sw, nullptr);
  const uint64_t before = sw->SnapshotBuilds();
  for (int i = 0; i < 5; ++i) AddTo(*sw, "p" + std::to_string(i));
  EXPECT_EQ(sw->SnapshotBuilds(), before + 5);
}

TEST(SwitchBatchTest, ChangesInABatchTakeEffectAtItsEnd) {
  auto sw = MakeSwitch(16);
  ASSERT_NE(sw, nullptr);
  Added a = AddTo(*sw, "a"), b = AddTo(*sw, "b");
  // Learn A on a.
  a.port->Inject(EthFrame(kBroadcast, kA));
  sw->RunOnce(0);
  ASSERT_EQ(b.port->TakeCaptured().size(), 1u);
  ASSERT_EQ(sw->FdbEntries()->size(), 1u);

  const uint64_t before = sw->SnapshotBuilds();
  sw->BeginBatch();
  Added c = AddTo(*sw, "c");
  ASSERT_TRUE(sw->SetPortVlan(a.id, PortVlanConfig::Trunk(*VlanSet::Parse("10"))).ok());
  ASSERT_TRUE(sw->SetPortStpState(b.id, StpState::kDiscarding).ok());
  // Not yet: a is still access VLAN 1 with its entry, b forwards, c is not
  // in the snapshot (its frames are dropped as from a discarding port).
  EXPECT_EQ(sw->FdbEntries()->size(), 1u);
  a.port->Inject(EthFrame(kBroadcast, kA));
  sw->RunOnce(0);
  EXPECT_EQ(b.port->TakeCaptured().size(), 1u);
  EXPECT_EQ(c.port->TakeCaptured().size(), 0u);
  c.port->Inject(EthFrame(kBroadcast, kB));
  sw->RunOnce(0);
  EXPECT_EQ(a.port->TakeCaptured().size(), 0u);
  EXPECT_EQ(sw->Counters(c.id)->drop(DropReason::kStpState), 1u);
  EXPECT_EQ(sw->SnapshotBuilds(), before);

  ASSERT_TRUE(sw->EndBatch().ok());
  EXPECT_EQ(sw->SnapshotBuilds(), before + 1);
  // Now: a's VLAN change flushed what it learned, b discards, and a tagged
  // VLAN 10 frame from a reaches nobody (b discarding, c in VLAN 1).
  auto entries = sw->FdbEntries();
  ASSERT_TRUE(entries.ok());
  for (const FdbEntry& e : entries.value()) EXPECT_NE(e.port, a.id);
  a.port->Inject(EthFrame(kBroadcast, kA, uint16_t{10}));
  sw->RunOnce(0);
  EXPECT_EQ(b.port->TakeCaptured().size(), 0u);
  EXPECT_EQ(c.port->TakeCaptured().size(), 0u);
  // c forwards in VLAN 1 now: its broadcast leaves b (discarding) and a
  // (VLAN 10 only) alone, and is not an STP drop any more.
  c.port->Inject(EthFrame(kBroadcast, kB));
  sw->RunOnce(0);
  EXPECT_EQ(sw->Counters(c.id)->drop(DropReason::kStpState), 1u);
  EXPECT_EQ(sw->Counters(c.id)->rx_packets, 2u);
  // Back to VLAN 1 on a, b forwarding, in one batch: c's broadcast reaches both.
  {
    Switch::Batch batch(*sw);
    ASSERT_TRUE(sw->SetPortVlan(a.id, PortVlanConfig::Access(1)).ok());
    ASSERT_TRUE(sw->SetPortStpState(b.id, StpState::kForwarding).ok());
  }
  EXPECT_EQ(sw->SnapshotBuilds(), before + 2);
  c.port->Inject(EthFrame(kBroadcast, kB));
  sw->RunOnce(0);
  EXPECT_EQ(a.port->TakeCaptured().size(), 1u);
  EXPECT_EQ(b.port->TakeCaptured().size(), 1u);
}

TEST(SwitchBatchTest, RemovePortAndStaticEntriesInstallThePendingChanges) {
  auto sw = MakeSwitch(16);
  ASSERT_NE(sw, nullptr);
  Added a = AddTo(*sw, "a");
  Switch::Batch batch(*sw);
  Added b = AddTo(*sw, "b");
  const uint64_t before = sw->SnapshotBuilds();
  // A static entry to b: b must be in the datapath's snapshot first, or
  // frames to it would be stale_fdb drops.
  ASSERT_TRUE(sw->AddStaticFdb(1, kB, b.id).ok());
  EXPECT_EQ(sw->SnapshotBuilds(), before + 1);
  a.port->Inject(EthFrame(kB, kA));
  sw->RunOnce(0);
  EXPECT_EQ(b.port->TakeCaptured().size(), 1u);
  EXPECT_EQ(sw->Counters(a.id)->drop(DropReason::kStaleFdb), 0u);
  // A removal in a batch is never deferred.
  Added c = AddTo(*sw, "c");
  ASSERT_TRUE(sw->RemovePort(b.id).ok());
  EXPECT_EQ(sw->SnapshotBuilds(), before + 2);
  a.port->Inject(EthFrame(kBroadcast, kA));
  sw->RunOnce(0);
  EXPECT_EQ(c.port->TakeCaptured().size(), 1u);  // c went in with the removal
  ASSERT_TRUE(batch.End().ok());
  EXPECT_EQ(sw->SnapshotBuilds(), before + 2);  // nothing left to install
  EXPECT_FALSE(sw->EndBatch().ok());            // no batch begun
}

TEST(SwitchBatchTest, NestedBatchesEndWithTheOutermost) {
  auto sw = MakeSwitch(16);
  ASSERT_NE(sw, nullptr);
  const uint64_t before = sw->SnapshotBuilds();
  sw->BeginBatch();
  sw->BeginBatch();
  AddTo(*sw, "a");
  ASSERT_TRUE(sw->EndBatch().ok());
  EXPECT_EQ(sw->SnapshotBuilds(), before);
  ASSERT_TRUE(sw->EndBatch().ok());
  EXPECT_EQ(sw->SnapshotBuilds(), before + 1);
}

}  // namespace
}  // namespace vfabric::bridge
