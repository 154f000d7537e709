// Capture (bridge/include/vfabric/bridge/capture.h): the ring alone (records,
// wrap-around, a slow reader's frames counted, never waited for), and the
// switch's hook: frames with the classified VLAN's tag, in and out, drops
// marked, nothing once cleared or when the port goes.
#include "vfabric/bridge/capture.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
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
using testing::TagOf;

struct Record {
  CaptureRecordHeader header;
  std::vector<uint8_t> frame;
};

std::vector<Record> Drain(CaptureRing& ring) {
  std::vector<uint8_t> bytes;
  while (ring.Pop(&bytes, 1 << 20) != 0) {
  }
  std::vector<Record> records;
  size_t at = 0;
  while (at < bytes.size()) {
    Record r;
    EXPECT_GE(bytes.size() - at, sizeof r.header);
    std::memcpy(&r.header, bytes.data() + at, sizeof r.header);
    at += sizeof r.header;
    EXPECT_LE(at + r.header.caplen, bytes.size());
    r.frame.assign(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                   bytes.begin() + static_cast<std::ptrdiff_t>(at + r.header.caplen));
    at += r.header.caplen;
    records.push_back(std::move(r));
  }
  return records;
}

constexpr uint8_t kBoth =
    static_cast<uint8_t>(CaptureDirection::kIn) | static_cast<uint8_t>(CaptureDirection::kOut);

TEST(CaptureRingTest, RecordsFramesWithTheTagAndTruncatesAtTheSnapLength) {
  CaptureRing ring(64 << 10, 64, kBoth);
  const std::vector<uint8_t> frame =
      EthFrame(kBroadcast, Mac(0x525400000001), std::nullopt, 0x0800, 100);
  ring.Push(CaptureDirection::kIn, 42, frame, true, 10, 0);
  ring.Push(CaptureDirection::kOut, 43, frame, false, 0, 3);
  std::vector<Record> records = Drain(ring);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].header.type, CaptureRecordHeader::kFrame);
  EXPECT_EQ(records[0].header.time_ns, 42u);
  EXPECT_EQ(records[0].header.wire_len, frame.size() + 4);
  EXPECT_EQ(records[0].header.caplen, 64u);
  EXPECT_EQ(TagOf(records[0].frame), 10);
  EXPECT_EQ(records[0].frame[16], 0x08);  // the ethertype after the tag
  EXPECT_EQ(records[1].header.direction, static_cast<uint8_t>(CaptureDirection::kOut));
  EXPECT_EQ(records[1].header.drop, 3);
  EXPECT_EQ(records[1].header.wire_len, frame.size());
  EXPECT_EQ(TagOf(records[1].frame), std::nullopt);
  EXPECT_EQ(ring.pushed(), 2u);
  EXPECT_EQ(ring.dropped(), 0u);
}

// The slow reader: the producer never waits; what does not fit is counted,
// and what was recorded comes out whole and in order, across many
// wrap-arounds of the ring.
TEST(CaptureRingTest, SlowReaderLosesCountedFramesNeverWholeRecords) {
  CaptureRing ring(64 << 10, 2048, kBoth);
  uint64_t pushed_total = 0, seen = 0, next_expected = 0;
  for (int round = 0; round < 50; ++round) {
    // 200 frames of 1000 bytes per round: about three times the ring.
    for (uint32_t i = 0; i < 200; ++i) {
      std::vector<uint8_t> frame =
          EthFrame(kBroadcast, Mac(0x525400000001), std::nullopt, 0x88b5, 1000 - 14 + (i % 7));
      const uint64_t seq = pushed_total++;
      std::memcpy(frame.data() + 14, &seq, sizeof seq);
      ring.Push(CaptureDirection::kIn, seq, frame, false, 0, 0);
    }
    for (const Record& r : Drain(ring)) {
      uint64_t seq;
      std::memcpy(&seq, r.frame.data() + 14, sizeof seq);
      EXPECT_EQ(seq, r.header.time_ns);
      EXPECT_GE(seq, next_expected);  // in order; gaps are the dropped ones
      next_expected = seq + 1;
      EXPECT_EQ(r.header.caplen, r.frame.size());
      ++seen;
    }
  }
  EXPECT_EQ(ring.pushed(), seen);
  EXPECT_EQ(ring.pushed() + ring.dropped(), pushed_total);
  EXPECT_GT(ring.dropped(), 0u);
  EXPECT_GT(seen, 50u * 60);  // each round fills the ring before it drops
}

class SwitchCaptureTest : public ::testing::Test {
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
  PortId Add(const std::string& name, PortSettings settings) {
    auto port = MemoryPort::Create(name, {});
    EXPECT_TRUE(port.ok());
    ports_[name] = port->get();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return *id;
  }
  void Send(const std::string& port, std::vector<uint8_t> frame) {
    ports_.at(port)->Inject(std::move(frame), {});
    sw_->RunOnce(0);
  }
  std::unique_ptr<Switch> sw_;
  std::map<std::string, MemoryPort*> ports_;
};

TEST_F(SwitchCaptureTest, FramesCarryTheClassifiedVlanInAndOutAndDropsAreMarked) {
  const PortId a = Add("a", {PortVlanConfig::Access(10)});
  Add("b", {PortVlanConfig::Access(10)});
  auto ring = std::make_shared<CaptureRing>(1 << 20, 65535, kBoth);
  ASSERT_TRUE(sw_->SetCapture(a, ring).ok());
  EXPECT_EQ(sw_->SetCapture(a, std::make_shared<CaptureRing>(1 << 20, 64, kBoth)).error_number(),
            EBUSY);
  EXPECT_EQ(sw_->SetCapture(9, ring).error_number(), ENOENT);

  // In on a: untagged on the wire, recorded in VLAN 10. Out on a: b's reply.
  Send("a", EthFrame(kBroadcast, Mac(0x525400000001)));
  Send("b", EthFrame(Mac(0x525400000001), Mac(0x525400000002)));
  // A tagged frame the access port refuses: recorded as received, marked.
  Send("a", EthFrame(kBroadcast, Mac(0x525400000001), uint16_t{20}));
  std::vector<Record> records = Drain(*ring);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].header.direction, static_cast<uint8_t>(CaptureDirection::kIn));
  EXPECT_EQ(TagOf(records[0].frame), 10);
  EXPECT_EQ(records[0].header.drop, 0);
  EXPECT_EQ(records[1].header.direction, static_cast<uint8_t>(CaptureDirection::kOut));
  EXPECT_EQ(TagOf(records[1].frame), 10);
  EXPECT_EQ(records[1].header.tci & 0xfff, 10);
  EXPECT_EQ(records[2].header.direction, static_cast<uint8_t>(CaptureDirection::kIn));
  EXPECT_EQ(records[2].header.drop, 1 + static_cast<int>(DropReason::kVlanNotAllowed));
  EXPECT_EQ(TagOf(records[2].frame), 20);  // as it came

  // Cleared: nothing more, and another capture may start.
  ASSERT_TRUE(sw_->ClearCapture(a, ring.get()).ok());
  Send("a", EthFrame(kBroadcast, Mac(0x525400000001)));
  EXPECT_TRUE(Drain(*ring).empty());
  EXPECT_TRUE(sw_->SetCapture(a, std::make_shared<CaptureRing>(1 << 20, 64, kBoth)).ok());
}

TEST_F(SwitchCaptureTest, DirectionsAndRemovalStopIt) {
  const PortId a = Add("a", {PortVlanConfig::Access(10)});
  Add("b", {PortVlanConfig::Access(10)});
  auto in_only =
      std::make_shared<CaptureRing>(1 << 20, 65535, static_cast<uint8_t>(CaptureDirection::kIn));
  ASSERT_TRUE(sw_->SetCapture(a, in_only).ok());
  Send("a", EthFrame(kBroadcast, Mac(0x525400000001)));
  Send("b", EthFrame(kBroadcast, Mac(0x525400000002)));
  EXPECT_EQ(Drain(*in_only).size(), 1u);
  ASSERT_TRUE(sw_->RemovePort(a).ok());
  // A new port with the same id has no capture; clearing the old one is a no-op.
  const PortId again = Add("c", {PortVlanConfig::Access(10)});
  EXPECT_EQ(again, a);
  Send("c", EthFrame(kBroadcast, Mac(0x525400000003)));
  EXPECT_TRUE(Drain(*in_only).empty());
  EXPECT_TRUE(sw_->ClearCapture(a, in_only.get()).ok());
  EXPECT_TRUE(sw_->SetCapture(a, in_only).ok());
}

// The switch never waits for a capture's reader: with a ring nobody drains,
// every frame is still forwarded and the ring counts what it could not take.
TEST_F(SwitchCaptureTest, AFullRingCostsTheDatapathNothingButACount) {
  const PortId a = Add("a", {PortVlanConfig::Access(10)});
  Add("b", {PortVlanConfig::Access(10)});
  auto ring = std::make_shared<CaptureRing>(64 << 10, 65535, kBoth);
  ASSERT_TRUE(sw_->SetCapture(a, ring).ok());
  constexpr int kFrames = 500;
  for (int i = 0; i < kFrames; ++i)
    Send("a", EthFrame(kBroadcast, Mac(0x525400000001), std::nullopt, 0x88b5, 1000));
  EXPECT_EQ(ports_.at("b")->TakeCaptured().size(), static_cast<size_t>(kFrames));
  EXPECT_EQ(ring->pushed() + ring->dropped(), static_cast<uint64_t>(kFrames));
  EXPECT_GT(ring->dropped(), 0u);
  EXPECT_EQ(Drain(*ring).size(), ring->pushed());
}

}  // namespace
}  // namespace vfabric::bridge
