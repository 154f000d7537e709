// Checksum completion on real TCP/UDP frame bytes, against a checksum
// computed here independently (RFC 1071 byte by byte over the pseudo-header
// and the segment), through the switch to a port that cannot take offload
// metadata, and untouched to one that can.
#include "vfabric/bridge/checksum.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "frames.h"
#include "vfabric/bridge/gso.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"

namespace vfabric::bridge {
namespace {

using testing::Mac;

void Put16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
  v[at] = static_cast<uint8_t>(x >> 8);
  v[at + 1] = static_cast<uint8_t>(x & 0xff);
}
uint16_t Get16(const std::vector<uint8_t>& v, size_t at) {
  return static_cast<uint16_t>(v[at] << 8 | v[at + 1]);
}

// RFC 1071, the slow obvious way.
uint16_t ReferenceChecksum(const std::vector<uint8_t>& pseudo, const std::vector<uint8_t>& l4) {
  uint64_t sum = 0;
  auto add = [&](const std::vector<uint8_t>& b) {
    for (size_t i = 0; i < b.size(); i += 2)
      sum += static_cast<uint64_t>(b[i]) << 8 | (i + 1 < b.size() ? b[i + 1] : 0);
  };
  add(pseudo);
  add(l4);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint16_t FoldPseudo(const std::vector<uint8_t>& pseudo) {
  uint64_t sum = 0;
  for (size_t i = 0; i < pseudo.size(); i += 2)
    sum += static_cast<uint64_t>(pseudo[i]) << 8 | pseudo[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

struct Built {
  std::vector<uint8_t> frame;  // as a sender with checksum offload hands it over
  VnetHdr vnet;
  size_t field = 0;       // where the L4 checksum is
  uint16_t expected = 0;  // the right checksum
};

// An Ethernet + IPv4/IPv6 + TCP/UDP frame with `payload` bytes, its L4
// checksum field holding the folded pseudo-header sum (CHECKSUM_PARTIAL).
Built Make(bool ipv6, bool tcp, size_t payload) {
  Built b;
  std::vector<uint8_t> f = testing::EthFrame(Mac(0x525400000002), Mac(0x525400000001), std::nullopt,
                                             ipv6 ? 0x86dd : 0x0800, 0);
  const size_t l3 = f.size();
  const size_t l4_len = (tcp ? 20 : 8) + payload;
  std::vector<uint8_t> pseudo;
  if (!ipv6) {
    std::vector<uint8_t> ip(20, 0);
    ip[0] = 0x45;
    Put16(ip, 2, static_cast<uint16_t>(20 + l4_len));
    ip[8] = 64;
    ip[9] = tcp ? 6 : 17;
    const uint8_t src[4] = {10, 77, 0, 1}, dst[4] = {10, 77, 0, 2};
    std::memcpy(&ip[12], src, 4);
    std::memcpy(&ip[16], dst, 4);
    f.insert(f.end(), ip.begin(), ip.end());
    pseudo.assign(src, src + 4);
    pseudo.insert(pseudo.end(), dst, dst + 4);
    pseudo.push_back(0);
    pseudo.push_back(tcp ? 6 : 17);
    pseudo.push_back(static_cast<uint8_t>(l4_len >> 8));
    pseudo.push_back(static_cast<uint8_t>(l4_len & 0xff));
  } else {
    std::vector<uint8_t> ip(40, 0);
    ip[0] = 0x60;
    Put16(ip, 4, static_cast<uint16_t>(l4_len));
    ip[6] = tcp ? 6 : 17;
    ip[7] = 64;
    for (int i = 0; i < 16; ++i)
      ip[8 + i] = static_cast<uint8_t>(0xfd + i), ip[24 + i] = static_cast<uint8_t>(0x20 + 3 * i);
    f.insert(f.end(), ip.begin(), ip.end());
    pseudo.assign(ip.begin() + 8, ip.begin() + 40);
    for (int shift : {24, 16, 8, 0}) pseudo.push_back(static_cast<uint8_t>(l4_len >> shift));
    pseudo.insert(pseudo.end(), {0, 0, 0, static_cast<uint8_t>(tcp ? 6 : 17)});
  }
  const size_t l4 = f.size();
  std::vector<uint8_t> seg(l4_len, 0);
  Put16(seg, 0, 40000);
  Put16(seg, 2, 5201);
  if (tcp) {
    seg[4] = 0x12, seg[7] = 0x34, seg[11] = 0x99;
    seg[12] = 0x50;  // data offset 5
    seg[13] = 0x18;  // PSH ACK
    Put16(seg, 14, 64240);
  } else {
    Put16(seg, 4, static_cast<uint16_t>(l4_len));
  }
  for (size_t i = (tcp ? 20 : 8); i < l4_len; ++i) seg[i] = static_cast<uint8_t>(i * 13 + 5);
  const size_t csum_offset = tcp ? 16 : 6;
  b.expected = ReferenceChecksum(pseudo, seg);
  if (!tcp && b.expected == 0) b.expected = 0xffff;
  Put16(seg, csum_offset, FoldPseudo(pseudo));
  f.insert(f.end(), seg.begin(), seg.end());
  (void)l3;
  b.frame = std::move(f);
  b.field = l4 + csum_offset;
  b.vnet.flags = VnetHdr::kNeedsCsum;
  b.vnet.csum_start = static_cast<uint16_t>(l4);
  b.vnet.csum_offset = static_cast<uint16_t>(csum_offset);
  return b;
}

struct Case {
  bool ipv6, tcp;
  size_t payload;
};

class ChecksumTest : public ::testing::TestWithParam<Case> {};

TEST_P(ChecksumTest, CompleteChecksumMatchesTheReference) {
  const Case c = GetParam();
  Built b = Make(c.ipv6, c.tcp, c.payload);
  auto pool = FramePool::Create(1, 4096);
  ASSERT_TRUE(pool.ok());
  Frame* f = (*pool)->Alloc();
  std::memcpy(f->data, b.frame.data(), b.frame.size());
  f->size = static_cast<uint32_t>(b.frame.size());
  f->vnet = b.vnet;
  ASSERT_TRUE(CompleteChecksum(*f));
  std::vector<uint8_t> out(f->data, f->data + f->size);
  EXPECT_EQ(Get16(out, b.field), b.expected);
  EXPECT_FALSE(f->vnet.needs_csum());
  // Everything else unchanged.
  Put16(out, b.field, Get16(b.frame, b.field));
  EXPECT_EQ(out, b.frame);
  (*pool)->Free(f);
}

TEST_P(ChecksumTest, TheSwitchCompletesForPortsWithoutOffloadOnly) {
  const Case c = GetParam();
  Built b = Make(c.ipv6, c.tcp, c.payload);
  SwitchConfig config;
  config.fdb.hash_seed = 7;
  config.fdb.max_ports = 8;
  config.pool_frames = 64;
  config.buffer_size = 4096;
  auto sw = Switch::Create(std::move(config));
  ASSERT_TRUE(sw.ok());
  auto in = MemoryPort::Create("in");
  auto tap_like = MemoryPort::Create("offload");
  MemoryPortOptions plain_options;
  plain_options.takes_offload = false;
  auto plain = MemoryPort::Create("plain", plain_options);
  auto trunk = MemoryPort::Create("trunk");
  MemoryPort* in_p = in->get();
  MemoryPort* tap_p = tap_like->get();
  MemoryPort* plain_p = plain->get();
  MemoryPort* trunk_p = trunk->get();
  ASSERT_TRUE((*sw)->AddPort(std::move(in).value()).ok());
  // The offload-capable port is added first, so it is queued before the
  // plain port completes the checksum in place: it must still get a
  // consistent frame.
  ASSERT_TRUE((*sw)->AddPort(std::move(tap_like).value()).ok());
  auto plain_id = (*sw)->AddPort(std::move(plain).value());
  ASSERT_TRUE(plain_id.ok());
  PortSettings trunk_settings;
  trunk_settings.vlan = PortVlanConfig::Trunk(*VlanSet::Parse("1"), 0);
  ASSERT_TRUE((*sw)->AddPort(std::move(trunk).value(), trunk_settings).ok());
  in_p->Inject(b.frame, b.vnet);
  (*sw)->RunOnce(0);

  auto p = plain_p->TakeCaptured();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(Get16(p[0].bytes, b.field), b.expected);
  EXPECT_FALSE(p[0].vnet.needs_csum());
  EXPECT_EQ((*sw)->Counters(*plain_id)->csum_completed, 1u);

  // The offload port: either the untouched partial frame with NEEDS_CSUM, or
  // the completed one without it; never a completed checksum with NEEDS_CSUM.
  auto t = tap_p->TakeCaptured();
  ASSERT_EQ(t.size(), 1u);
  if (t[0].vnet.needs_csum()) {
    EXPECT_EQ(t[0].bytes, b.frame);
    EXPECT_EQ(t[0].vnet.csum_start, b.vnet.csum_start);
  } else {
    EXPECT_EQ(Get16(t[0].bytes, b.field), b.expected);
  }
  // Tagged egress: offsets move with the tag.
  auto tr = trunk_p->TakeCaptured();
  ASSERT_EQ(tr.size(), 1u);
  ASSERT_EQ(tr[0].bytes.size(), b.frame.size() + 4);
  if (tr[0].vnet.needs_csum())
    EXPECT_EQ(tr[0].vnet.csum_start, b.vnet.csum_start + 4);
  else
    EXPECT_EQ(Get16(tr[0].bytes, b.field + 4), b.expected);
}

TEST_P(ChecksumTest, OffloadMetadataPassesUntouchedBetweenOffloadPorts) {
  const Case c = GetParam();
  Built b = Make(c.ipv6, c.tcp, c.payload);
  SwitchConfig config;
  config.fdb.hash_seed = 7;
  config.fdb.max_ports = 8;
  config.pool_frames = 64;
  config.buffer_size = 4096;
  auto sw = Switch::Create(std::move(config));
  ASSERT_TRUE(sw.ok());
  auto in = MemoryPort::Create("in");
  auto out = MemoryPort::Create("out");
  MemoryPort* in_p = in->get();
  MemoryPort* out_p = out->get();
  ASSERT_TRUE((*sw)->AddPort(std::move(in).value()).ok());
  ASSERT_TRUE((*sw)->AddPort(std::move(out).value()).ok());
  // Arriving tagged on a trunk would move csum_start; here untagged access.
  in_p->Inject(b.frame, b.vnet);
  (*sw)->RunOnce(0);
  auto got = out_p->TakeCaptured();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, b.frame);
  EXPECT_TRUE(got[0].vnet.needs_csum());
  EXPECT_EQ(got[0].vnet.csum_start, b.vnet.csum_start);
  EXPECT_EQ(got[0].vnet.csum_offset, b.vnet.csum_offset);
}

INSTANTIATE_TEST_SUITE_P(Frames, ChecksumTest,
                         ::testing::Values(Case{false, true, 0}, Case{false, true, 1},
                                           Case{false, true, 1400}, Case{false, false, 7},
                                           Case{false, false, 1000}, Case{true, true, 333},
                                           Case{true, false, 64}, Case{true, true, 1440}));

TEST(Checksum, TaggedIngressMovesTheOffsetsBack) {
  Built b = Make(false, true, 100);
  // The same frame arriving with a VLAN tag: csum_start counts the tag.
  std::vector<uint8_t> tagged(b.frame.begin(), b.frame.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 0x0a});
  tagged.insert(tagged.end(), b.frame.begin() + 12, b.frame.end());
  VnetHdr vnet = b.vnet;
  vnet.csum_start = static_cast<uint16_t>(vnet.csum_start + 4);
  SwitchConfig config;
  config.fdb.hash_seed = 7;
  config.fdb.max_ports = 8;
  config.pool_frames = 64;
  config.buffer_size = 4096;
  auto sw = Switch::Create(std::move(config));
  ASSERT_TRUE(sw.ok());
  MemoryPortOptions plain_options;
  plain_options.takes_offload = false;
  auto in = MemoryPort::Create("trunk");
  auto plain = MemoryPort::Create("plain", plain_options);
  MemoryPort* in_p = in->get();
  MemoryPort* plain_p = plain->get();
  PortSettings trunk;
  trunk.vlan = PortVlanConfig::Trunk(*VlanSet::Parse("10"));
  PortSettings access;
  access.vlan = PortVlanConfig::Access(10);
  ASSERT_TRUE((*sw)->AddPort(std::move(in).value(), trunk).ok());
  ASSERT_TRUE((*sw)->AddPort(std::move(plain).value(), access).ok());
  in_p->Inject(tagged, vnet);
  (*sw)->RunOnce(0);
  auto got = plain_p->TakeCaptured();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].bytes.size(), b.frame.size());
  EXPECT_EQ(Get16(got[0].bytes, b.field), b.expected);
}

// A TCP GSO frame through the switch to a port without offload: segmented,
// every segment checked against the reference checksum and the headers a
// receiver needs; the payloads put together are the original payload.
struct GsoCase {
  bool ipv6;
  size_t payload;
  uint16_t mss;
  bool tagged_egress;
};
class GsoTest : public ::testing::TestWithParam<GsoCase> {};

TEST_P(GsoTest, SegmentsAreCompleteAndInOrder) {
  const GsoCase gc = GetParam();
  Built b = Make(gc.ipv6, true, gc.payload);
  const size_t l3 = 14, l4 = b.vnet.csum_start, hdr = l4 + 20;
  b.frame[l4 + 13] = 0x19;                       // FIN PSH ACK on the super-frame
  if (!gc.ipv6) Put16(b.frame, l3 + 4, 0x1234);  // IP ID
  b.vnet.gso_type = gc.ipv6 ? VnetHdr::kGsoTcpV6 : VnetHdr::kGsoTcpV4;
  b.vnet.gso_size = gc.mss;
  b.vnet.hdr_len = static_cast<uint16_t>(hdr);
  SwitchConfig config;
  config.fdb.hash_seed = 7;
  config.fdb.max_ports = 8;
  config.pool_frames = 256;
  config.buffer_size = 65536 + kFrameHeadroom;
  auto sw = Switch::Create(std::move(config));
  ASSERT_TRUE(sw.ok());
  auto in = MemoryPort::Create("in");
  MemoryPortOptions plain_options;
  plain_options.takes_offload = false;
  auto plain = MemoryPort::Create("plain", plain_options);
  MemoryPort* in_p = in->get();
  MemoryPort* plain_p = plain->get();
  PortSettings egress;
  if (gc.tagged_egress) egress.vlan = PortVlanConfig::Trunk(*VlanSet::Parse("1"), 1, true);
  ASSERT_TRUE((*sw)->AddPort(std::move(in).value()).ok());
  auto plain_id = (*sw)->AddPort(std::move(plain).value(), egress);
  ASSERT_TRUE(plain_id.ok());
  in_p->Inject(b.frame, b.vnet);
  (*sw)->RunOnce(0);
  auto segs = plain_p->TakeCaptured();
  const size_t expected = (gc.payload + gc.mss - 1) / gc.mss;
  ASSERT_EQ(segs.size(), expected);
  EXPECT_EQ((*sw)->Counters(*plain_id)->segmented, 1u);
  EXPECT_EQ((*sw)->Counters(*plain_id)->tx_packets, expected);
  EXPECT_EQ((*sw)->Counters(*plain_id)->total_drops(), 0u);
  std::vector<uint8_t> payload;
  const uint32_t seq0 =
      static_cast<uint32_t>(Get16(b.frame, l4 + 4)) << 16 | Get16(b.frame, l4 + 6);
  for (size_t i = 0; i < segs.size(); ++i) {
    std::vector<uint8_t> s = segs[i].bytes;
    if (gc.tagged_egress) {
      ASSERT_EQ(Get16(s, 12), 0x8100);
      s.erase(s.begin() + 12, s.begin() + 16);
    }
    EXPECT_EQ(segs[i].vnet.gso_type, 0);
    EXPECT_FALSE(segs[i].vnet.needs_csum());
    const size_t len = s.size() - hdr;
    EXPECT_EQ(len, std::min<size_t>(gc.mss, gc.payload - i * gc.mss));
    std::vector<uint8_t> pseudo;
    if (!gc.ipv6) {
      EXPECT_EQ(Get16(s, l3 + 2), s.size() - l3);
      EXPECT_EQ(Get16(s, l3 + 4), 0x1234 + i);
      std::vector<uint8_t> ip(s.begin() + l3, s.begin() + l3 + 20);
      EXPECT_EQ(ReferenceChecksum({}, ip), 0) << "IPv4 header checksum of segment " << i;
      pseudo.assign(s.begin() + l3 + 12, s.begin() + l3 + 20);
      pseudo.insert(pseudo.end(), {0, 6, static_cast<uint8_t>((s.size() - l4) >> 8),
                                   static_cast<uint8_t>((s.size() - l4) & 0xff)});
    } else {
      EXPECT_EQ(Get16(s, l3 + 4), s.size() - l4);
      pseudo.assign(s.begin() + l3 + 8, s.begin() + l3 + 40);
      const size_t tl = s.size() - l4;
      for (int shift : {24, 16, 8, 0}) pseudo.push_back(static_cast<uint8_t>(tl >> shift));
      pseudo.insert(pseudo.end(), {0, 0, 0, 6});
    }
    std::vector<uint8_t> tcp(s.begin() + l4, s.end());
    EXPECT_EQ(ReferenceChecksum(pseudo, tcp), 0) << "TCP checksum of segment " << i;
    const uint32_t seq = static_cast<uint32_t>(Get16(s, l4 + 4)) << 16 | Get16(s, l4 + 6);
    EXPECT_EQ(seq, seq0 + i * gc.mss);
    const bool last = i + 1 == segs.size();
    EXPECT_EQ(s[l4 + 13], last ? 0x19 : 0x10) << "flags of segment " << i;
    payload.insert(payload.end(), s.begin() + hdr, s.end());
  }
  EXPECT_EQ(payload, std::vector<uint8_t>(b.frame.begin() + hdr, b.frame.end()));
}

INSTANTIATE_TEST_SUITE_P(Frames, GsoTest,
                         ::testing::Values(GsoCase{false, 4000, 1448, false},
                                           GsoCase{false, 1448, 1448, false},
                                           GsoCase{true, 9000, 1440, false},
                                           GsoCase{false, 60000, 1448, true},
                                           GsoCase{true, 100, 7, false}));

TEST(Gso, MalformedAndUnsupportedFramesAreRefused) {
  auto pool = FramePool::Create(8, 4096);
  ASSERT_TRUE(pool.ok());
  Frame* f = (*pool)->Alloc();
  Built udp = Make(false, false, 100);
  std::memcpy(f->data, udp.frame.data(), udp.frame.size());
  f->size = static_cast<uint32_t>(udp.frame.size());
  f->vnet.gso_type = VnetHdr::kGsoTcpV4;
  f->vnet.gso_size = 10;
  Frame* out[8];
  size_t count = 0;
  GsoCursor cursor;
  EXPECT_EQ(SegmentTcp(*f, **pool, out, &count, &cursor), GsoError::kUnsupported);  // UDP inside
  f->size = 30;  // cut inside the IP header
  cursor = {};
  EXPECT_EQ(SegmentTcp(*f, **pool, out, &count, &cursor), GsoError::kMalformed);
  f->vnet.gso_size = 0;
  EXPECT_EQ(SegmentTcp(*f, **pool, out, &count, &cursor), GsoError::kMalformed);
  EXPECT_EQ(count, 0u);
  (*pool)->Free(f);
}

}  // namespace
}  // namespace vfabric::bridge
