// BPDU codec against frames captured from the Linux bridge and Open vSwitch
// (data/*.pcap, hand-checked with `tshark -V`), and against malformed frames.
#include "vfabric/stp/bpdu.h"

#include <gtest/gtest.h>

#include <random>

#include "pcap.h"

namespace vfabric::stp {
namespace {

using testing::Frame;
using testing::ReadVector;

std::vector<Frame> MustRead(const std::string& name) {
  std::string error;
  std::vector<Frame> frames = ReadVector(name, &error);
  EXPECT_FALSE(frames.empty()) << error;
  return frames;
}

MacAddress Mac(const char* text) { return *MacAddress::Parse(text); }
BridgeId Id(uint16_t priority, const char* mac) { return BridgeId{priority, Mac(mac)}; }
MacAddress SourceOf(const Frame& frame) {
  MacAddress mac;
  for (size_t i = 0; i < 6; ++i) mac.bytes[i] = frame[6 + i];
  return mac;
}

// Decodes `frame`, expects success, and expects re-encoding to give the same bytes.
Bpdu DecodeAndRoundTrip(const Frame& frame) {
  Bpdu bpdu;
  EXPECT_EQ(DecodeBpduFrame(frame, &bpdu), DecodeError::kOk);
  EXPECT_EQ(EncodeBpduFrame(bpdu, SourceOf(frame)), frame);
  return bpdu;
}

TEST(StpBpduTest, KernelConfigBpdus) {
  // tshark: STP version 0, type 0x00, flags 0x00, root 4096/0/ba:ef:c4:55:55:a5,
  // cost 0, bridge 4096/0/ba:ef:c4:55:55:a5, port 0x8001, age 0, max age 10,
  // hello 1, forward delay 4.
  std::vector<Frame> frames = MustRead("kernel-stp-bpdus.pcap");
  ASSERT_EQ(frames.size(), 3u);
  for (const Frame& frame : frames) {
    EXPECT_EQ(frame.size(), 52u);
    Bpdu bpdu = DecodeAndRoundTrip(frame);
    EXPECT_EQ(bpdu.type, BpduType::kConfig);
    EXPECT_EQ(bpdu.version, 0);
    EXPECT_FALSE(bpdu.topology_change);
    EXPECT_FALSE(bpdu.topology_change_ack);
    EXPECT_EQ(bpdu.root_id, Id(0x1000, "ba:ef:c4:55:55:a5"));
    EXPECT_EQ(bpdu.root_id.ToString(), "1000.ba:ef:c4:55:55:a5");
    EXPECT_EQ(bpdu.root_path_cost, 0u);
    EXPECT_EQ(bpdu.bridge_id, Id(0x1000, "ba:ef:c4:55:55:a5"));
    EXPECT_EQ(bpdu.port_id, 0x8001);
    EXPECT_EQ(PortNumberOf(bpdu.port_id), 1);
    EXPECT_EQ(PortPriorityOf(bpdu.port_id), 128);
    EXPECT_EQ(bpdu.message_age, 0);
    EXPECT_EQ(bpdu.max_age, 10 * 256);
    EXPECT_EQ(bpdu.hello_time, 1 * 256);
    EXPECT_EQ(bpdu.forward_delay, 4 * 256);
  }
}

TEST(StpBpduTest, KernelTopologyChangeSequence) {
  // Frames 1-4: Config, no flags; 5-8: TC; 9: TCN from 92:95:d8:31:c0:a8;
  // 10: TC + TC ack (the root acknowledging the TCN); 11-14: TC.
  std::vector<Frame> frames = MustRead("kernel-stp-tcn.pcap");
  ASSERT_EQ(frames.size(), 14u);
  for (size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(i + 1);
    Bpdu bpdu = DecodeAndRoundTrip(frames[i]);
    if (i == 8) {
      EXPECT_EQ(frames[i].size(), 21u);
      EXPECT_EQ(bpdu.type, BpduType::kTcn);
      EXPECT_EQ(SourceOf(frames[i]), Mac("92:95:d8:31:c0:a8"));
      continue;
    }
    EXPECT_EQ(bpdu.type, BpduType::kConfig);
    EXPECT_EQ(bpdu.topology_change, i >= 4);
    EXPECT_EQ(bpdu.topology_change_ack, i == 9);
    EXPECT_EQ(bpdu.bridge_id, Id(0x1000, "ba:ef:c4:55:55:a5"));
  }
}

TEST(StpBpduTest, OvsRstBpdus) {
  // tshark: version 2, type 0x02, flags 0x3e: Designated, Proposal, Learning,
  // Forwarding; root = bridge = 8192/0/aa:e5:4d:6a:10:4e, port 0x8001,
  // max age 20, hello 2, forward delay 15, Version 1 Length 0.
  std::vector<Frame> frames = MustRead("ovs-rstp-bpdus.pcap");
  ASSERT_EQ(frames.size(), 2u);
  for (const Frame& frame : frames) {
    EXPECT_EQ(frame.size(), 53u);
    Bpdu bpdu = DecodeAndRoundTrip(frame);
    EXPECT_EQ(bpdu.type, BpduType::kRst);
    EXPECT_EQ(bpdu.version, 2);
    EXPECT_EQ(bpdu.role, BpduRole::kDesignated);
    EXPECT_TRUE(bpdu.proposal);
    EXPECT_TRUE(bpdu.learning);
    EXPECT_TRUE(bpdu.forwarding);
    EXPECT_FALSE(bpdu.agreement);
    EXPECT_FALSE(bpdu.topology_change);
    EXPECT_FALSE(bpdu.topology_change_ack);
    EXPECT_EQ(bpdu.root_id, Id(0x2000, "aa:e5:4d:6a:10:4e"));
    EXPECT_EQ(bpdu.bridge_id, bpdu.root_id);
    EXPECT_EQ(bpdu.port_id, 0x8001);
    EXPECT_EQ(bpdu.max_age, 20 * 256);
    EXPECT_EQ(bpdu.hello_time, 2 * 256);
    EXPECT_EQ(bpdu.forward_delay, 15 * 256);
  }
}

TEST(StpBpduTest, OvsHandshake) {
  std::vector<Frame> frames = MustRead("ovs-rstp-handshake.pcap");
  ASSERT_EQ(frames.size(), 10u);
  const uint8_t expected_flags[] = {0x0e, 0x0e, 0x0e, 0x0e, 0x39, 0x79, 0x3d, 0x3d, 0x79, 0x3c};
  for (size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(i + 1);
    EXPECT_EQ(frames[i][21], expected_flags[i]);
    DecodeAndRoundTrip(frames[i]);
  }
  // Frame 6 (flags 0x79): the 32768 bridge's root port agreeing: Root role,
  // TC, Learning, Forwarding, Agreement; root 8192/5a:41:9e:b8:28:4a at cost
  // 2000 (a 10 Gb/s veth), message age 1 s.
  Bpdu agree = DecodeAndRoundTrip(frames[5]);
  EXPECT_EQ(agree.role, BpduRole::kRoot);
  EXPECT_TRUE(agree.agreement);
  EXPECT_TRUE(agree.topology_change);
  EXPECT_TRUE(agree.learning);
  EXPECT_TRUE(agree.forwarding);
  EXPECT_FALSE(agree.proposal);
  EXPECT_EQ(agree.root_id, Id(0x2000, "5a:41:9e:b8:28:4a"));
  EXPECT_EQ(agree.root_path_cost, 2000u);
  EXPECT_EQ(agree.bridge_id, Id(0x8000, "7a:13:4c:43:a7:41"));
  EXPECT_EQ(agree.port_id, 0x8001);
  EXPECT_EQ(agree.message_age, 256);
  // Frame 1 (0x0e): Designated + Proposal only.
  Bpdu propose = DecodeAndRoundTrip(frames[0]);
  EXPECT_EQ(propose.role, BpduRole::kDesignated);
  EXPECT_TRUE(propose.proposal);
  EXPECT_FALSE(propose.learning || propose.forwarding || propose.agreement ||
               propose.topology_change);
}

TEST(StpBpduTest, EncodesWhatWasBuilt) {
  Bpdu bpdu;
  bpdu.type = BpduType::kRst;
  bpdu.version = 2;
  bpdu.role = BpduRole::kAlternateOrBackup;
  bpdu.agreement = true;
  bpdu.root_id = Id(0x1000, "52:54:00:00:00:01");
  bpdu.root_path_cost = 0x01020304;
  bpdu.bridge_id = Id(0x8000, "52:54:00:00:00:02");
  bpdu.port_id = MakePortId(0x90, 0x123);
  bpdu.message_age = 2 * 256;
  bpdu.max_age = 20 * 256;
  bpdu.hello_time = 2 * 256;
  bpdu.forward_delay = 15 * 256;
  Frame frame = EncodeBpduFrame(bpdu, Mac("52:54:00:00:00:02"));
  const Frame expected = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0x52, 0x54, 0x00, 0x00, 0x00,
                          0x02, 0x00, 0x27, 0x42, 0x42, 0x03, 0x00, 0x00, 0x02, 0x02, 0x44,
                          0x10, 0x00, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03,
                          0x04, 0x80, 0x00, 0x52, 0x54, 0x00, 0x00, 0x00, 0x02, 0x91, 0x23,
                          0x02, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00, 0x00};
  EXPECT_EQ(frame, expected);
  Bpdu back;
  ASSERT_EQ(DecodeBpduFrame(frame, &back), DecodeError::kOk);
  EXPECT_EQ(back, bpdu);
}

// A valid frame of each type to break.
Frame ValidConfig() { return MustRead("kernel-stp-bpdus.pcap").at(0); }
Frame ValidRst() { return MustRead("ovs-rstp-bpdus.pcap").at(0); }
Frame ValidTcn() { return MustRead("kernel-stp-tcn.pcap").at(8); }

DecodeError Decode(const Frame& frame) {
  Bpdu bpdu;
  return DecodeBpduFrame(frame, &bpdu);
}

TEST(StpBpduTest, AcceptsPadding) {
  for (Frame frame : {ValidConfig(), ValidRst(), ValidTcn()}) {
    frame.resize(60, 0);
    EXPECT_EQ(Decode(frame), DecodeError::kOk);
  }
}

TEST(StpBpduTest, RejectsEveryTruncation) {
  for (const Frame& frame : {ValidConfig(), ValidRst(), ValidTcn()}) {
    for (size_t size = 0; size < frame.size(); ++size) {
      Frame cut(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(size));
      const DecodeError error = Decode(cut);
      // Too short for the headers, or the length field claims what is missing.
      EXPECT_EQ(error, size < 17 ? DecodeError::kNotBpdu : DecodeError::kLengthMismatch) << size;
      // The same cut with an honest length field: the BPDU itself is short.
      if (size >= 17) {
        cut[12] = 0;
        cut[13] = static_cast<uint8_t>(size - 14);
        EXPECT_EQ(Decode(cut), DecodeError::kTruncated) << size;
      }
    }
  }
}

TEST(StpBpduTest, RejectsLyingLength) {
  Frame frame = ValidConfig();
  frame[13] = 39;  // one byte more than the frame holds
  EXPECT_EQ(Decode(frame), DecodeError::kLengthMismatch);
  frame[12] = 0x05;
  frame[13] = 0xff;  // 1535: still a length, far beyond the frame
  EXPECT_EQ(Decode(frame), DecodeError::kLengthMismatch);
  frame[13] = 2;  // shorter than the LLC header
  frame[12] = 0;
  EXPECT_EQ(Decode(frame), DecodeError::kLengthMismatch);
  frame[13] = 3 + 34;  // one short of a Config BPDU
  EXPECT_EQ(Decode(frame), DecodeError::kTruncated);
  frame[12] = 0x88;  // an EtherType, not a length
  frame[13] = 0x09;
  EXPECT_EQ(Decode(frame), DecodeError::kNotBpdu);
}

TEST(StpBpduTest, RejectsWrongAddressOrLlc) {
  Frame frame = ValidConfig();
  frame[5] = 0x0e;  // 01:80:c2:00:00:0e (LLDP), not the Bridge Group Address
  EXPECT_EQ(Decode(frame), DecodeError::kNotBpdu);
  frame = ValidConfig();
  frame[15] = 0xaa;
  EXPECT_EQ(Decode(frame), DecodeError::kNotBpdu);
  frame = ValidConfig();
  frame[16] = 0x13;
  EXPECT_EQ(Decode(frame), DecodeError::kNotBpdu);
}

TEST(StpBpduTest, RejectsBadProtocolTypeAndVersion) {
  Frame frame = ValidConfig();
  frame[18] = 0x01;  // protocol identifier 0x0001
  EXPECT_EQ(Decode(frame), DecodeError::kBadProtocolId);
  frame = ValidTcn();
  frame[17] = 0x80;
  EXPECT_EQ(Decode(frame), DecodeError::kBadProtocolId);
  for (uint8_t type : {0x01, 0x03, 0x81, 0xff}) {
    frame = ValidConfig();
    frame[20] = type;
    EXPECT_EQ(Decode(frame), DecodeError::kBadType) << int{type};
  }
  for (uint8_t version : {0, 1}) {
    frame = ValidRst();
    frame[19] = version;  // an RST BPDU claiming to be STP
    EXPECT_EQ(Decode(frame), DecodeError::kBadVersion) << int{version};
  }
  frame = ValidRst();
  frame[52] = 1;  // Version 1 Length must be 0
  EXPECT_EQ(Decode(frame), DecodeError::kBadVersion);
  frame = ValidRst();
  frame[19] = 3;  // an MST BPDU: its CIST part is an RST BPDU
  EXPECT_EQ(Decode(frame), DecodeError::kOk);
  frame = ValidConfig();
  frame[19] = 2;  // 9.3.4: a Config BPDU of any version is a Config BPDU
  EXPECT_EQ(Decode(frame), DecodeError::kOk);
}

TEST(StpBpduTest, RejectsImpossibleTimers) {
  // Offsets in the frame: message age 44, max age 46, hello 48, forward delay 50.
  struct Case {
    size_t offset;
    uint16_t value;
    DecodeError expected;
  };
  const Case cases[] = {
      {44, 10 * 256 + 1, DecodeError::kBadTimers},  // message age > max age
      {44, 10 * 256, DecodeError::kOk},             // at max age: expired, not malformed
      {44, 0xffff, DecodeError::kBadTimers},
      {44, 9 * 256 + 255, DecodeError::kOk},
      {46, 0, DecodeError::kBadTimers},
      {46, 5 * 256 + 255, DecodeError::kBadTimers},
      {46, 41 * 256, DecodeError::kBadTimers},
      {46, 40 * 256, DecodeError::kOk},
      {48, 0, DecodeError::kBadTimers},
      {48, 255, DecodeError::kBadTimers},
      {48, 11 * 256, DecodeError::kBadTimers},
      {48, 2 * 256, DecodeError::kOk},
      {50, 0, DecodeError::kBadTimers},
      {50, 1 * 256, DecodeError::kBadTimers},
      {50, 31 * 256, DecodeError::kBadTimers},
      {50, 30 * 256, DecodeError::kOk},
  };
  for (const Case& c : cases) {
    Frame frame = ValidConfig();
    frame[c.offset] = static_cast<uint8_t>(c.value >> 8);
    frame[c.offset + 1] = static_cast<uint8_t>(c.value);
    EXPECT_EQ(Decode(frame), c.expected) << c.offset << " " << c.value;
  }
}

TEST(StpBpduTest, RandomMutationsNeverReadOutside) {
  // Under ASan this proves the decoder stays inside the buffer; everywhere it
  // proves a decoded BPDU re-encodes to something that decodes the same.
  std::mt19937 rng(5);
  const std::vector<Frame> seeds = {ValidConfig(), ValidRst(), ValidTcn()};
  for (int i = 0; i < 20000; ++i) {
    Frame frame = seeds[static_cast<size_t>(i) % seeds.size()];
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 3) {
        case 0:
          frame[rng() % frame.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          frame.resize(rng() % (frame.size() + 8));
          break;
        default:
          frame[12 + rng() % 2] = static_cast<uint8_t>(rng());
          break;
      }
      if (frame.empty()) break;
    }
    Bpdu bpdu;
    if (DecodeBpduFrame(frame, &bpdu) != DecodeError::kOk) continue;
    Bpdu again;
    ASSERT_EQ(DecodeBpduFrame(EncodeBpduFrame(bpdu, SourceOf(frame)), &again), DecodeError::kOk);
    if (bpdu.type == BpduType::kRst) bpdu.version = 2;  // sent as version 2
    if (bpdu.type != BpduType::kRst) bpdu.version = 0;
    if (bpdu.type == BpduType::kTcn) continue;
    EXPECT_EQ(again.root_id, bpdu.root_id);
    EXPECT_EQ(again.max_age, bpdu.max_age);
  }
}

}  // namespace
}  // namespace vfabric::stp
