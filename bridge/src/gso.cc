#include "vfabric/bridge/gso.h"

#include <algorithm>
#include <cstring>

#include "vfabric/bridge/checksum.h"

namespace vfabric::bridge {
namespace {

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
}
uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void Store32(uint8_t* p, uint32_t v) {
  Store16(p, static_cast<uint16_t>(v >> 16));
  Store16(p + 2, static_cast<uint16_t>(v & 0xffff));
}

struct Layout {
  size_t l3 = 0, l4 = 0, hdr = 0;  // offsets: IP header, TCP header, payload
  bool ipv6 = false;
};

GsoError Parse(const Frame& f, Layout* out) {
  const uint8_t* b = f.data;
  if (f.size < 14) return GsoError::kMalformed;
  size_t l3 = 14;
  uint16_t type = Load16(b + 12);
  if (type == 0x8100) {
    if (f.size < 18) return GsoError::kMalformed;
    type = Load16(b + 16);
    l3 = 18;
  }
  size_t l4;
  if (type == 0x0800) {
    if (f.size < l3 + 20) return GsoError::kMalformed;
    const size_t ihl = size_t{b[l3] & 0x0fu} * 4;
    if ((b[l3] >> 4) != 4 || ihl < 20 || f.size < l3 + ihl) return GsoError::kMalformed;
    if (b[l3 + 9] != 6) return GsoError::kUnsupported;
    l4 = l3 + ihl;
  } else if (type == 0x86dd) {
    if (f.size < l3 + 40 || (b[l3] >> 4) != 6) return GsoError::kMalformed;
    if (b[l3 + 6] != 6) return GsoError::kUnsupported;
    l4 = l3 + 40;
    out->ipv6 = true;
  } else {
    return GsoError::kUnsupported;
  }
  if (f.size < l4 + 20) return GsoError::kMalformed;
  const size_t thl = static_cast<size_t>(b[l4 + 12] >> 4) * 4;
  if (thl < 20 || f.size < l4 + thl) return GsoError::kMalformed;
  out->l3 = l3;
  out->l4 = l4;
  out->hdr = l4 + thl;
  return GsoError::kOk;
}

}  // namespace

GsoError SegmentTcp(const Frame& frame, FramePool& pool, std::span<Frame*> out, size_t* count,
                    GsoCursor* cursor) {
  *count = 0;
  const uint8_t type = frame.vnet.gso_type & static_cast<uint8_t>(~VnetHdr::kGsoEcn);
  if (type != VnetHdr::kGsoTcpV4 && type != VnetHdr::kGsoTcpV6) return GsoError::kUnsupported;
  const size_t mss = frame.vnet.gso_size;
  if (mss == 0) return GsoError::kMalformed;
  Layout l;
  const GsoError parsed = Parse(frame, &l);
  if (parsed != GsoError::kOk) return parsed;
  const uint8_t* src = frame.data;
  const size_t payload = frame.size - l.hdr;
  const uint32_t seq0 = Load32(src + l.l4 + 4);
  const uint16_t id0 = l.ipv6 ? 0 : Load16(src + l.l3 + 4);
  const uint8_t flags0 = src[l.l4 + 13];
  while (*count < out.size() && !cursor->done) {
    const size_t off = cursor->offset;
    const size_t len = std::min(mss, payload - off);
    const bool first = off == 0;
    const bool last = off + len >= payload;
    Frame* s = pool.Alloc();
    if (s == nullptr) return GsoError::kNoBuffer;
    if (l.hdr + len > s->capacity) {
      pool.Free(s);
      return GsoError::kMalformed;
    }
    uint8_t* d = s->data;
    std::memcpy(d, src, l.hdr);
    std::memcpy(d + l.hdr, src + l.hdr + off, len);
    s->size = static_cast<uint32_t>(l.hdr + len);
    const size_t l4_len = s->size - l.l4;
    if (l.ipv6) {
      Store16(d + l.l3 + 4, static_cast<uint16_t>(l4_len));
    } else {
      Store16(d + l.l3 + 2, static_cast<uint16_t>(s->size - l.l3));
      Store16(d + l.l3 + 4, static_cast<uint16_t>(id0 + cursor->index));
      Store16(d + l.l3 + 10, 0);
      const size_t ihl = l.l4 - l.l3;
      Store16(d + l.l3 + 10,
              static_cast<uint16_t>(~FoldChecksum(OnesComplementAdd({d + l.l3, ihl}))));
    }
    Store32(d + l.l4 + 4, seq0 + static_cast<uint32_t>(off));
    uint8_t flags = flags0;
    if (!last) flags &= static_cast<uint8_t>(~0x09u);   // FIN, PSH
    if (!first) flags &= static_cast<uint8_t>(~0x80u);  // CWR
    d[l.l4 + 13] = flags;
    // TCP checksum: pseudo-header + segment, field zeroed.
    Store16(d + l.l4 + 16, 0);
    uint32_t sum;
    uint8_t pseudo_tail[4] = {0, 6, static_cast<uint8_t>(l4_len >> 8),
                              static_cast<uint8_t>(l4_len & 0xff)};
    if (l.ipv6) {
      sum = OnesComplementAdd({d + l.l3 + 8, 32});
      uint8_t len32[8] = {static_cast<uint8_t>(l4_len >> 24),
                          static_cast<uint8_t>(l4_len >> 16),
                          static_cast<uint8_t>(l4_len >> 8),
                          static_cast<uint8_t>(l4_len),
                          0,
                          0,
                          0,
                          6};
      sum = OnesComplementAdd({len32, 8}, sum);
    } else {
      sum = OnesComplementAdd({d + l.l3 + 12, 8});
      sum = OnesComplementAdd({pseudo_tail, 4}, sum);
    }
    sum = OnesComplementAdd({d + l.l4, l4_len}, sum);
    Store16(d + l.l4 + 16, static_cast<uint16_t>(~FoldChecksum(sum)));
    s->vnet = VnetHdr{};
    s->vnet.flags = VnetHdr::kDataValid;
    out[(*count)++] = s;
    cursor->offset = off + len;
    ++cursor->index;
    if (last) cursor->done = true;
  }
  return GsoError::kOk;
}

}  // namespace vfabric::bridge
