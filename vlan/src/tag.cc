#include "vfabric/vlan/tag.h"

#include <cstring>

namespace vfabric::vlan {
namespace {

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
}

}  // namespace

std::string_view ToString(FrameError error) {
  switch (error) {
    case FrameError::kOk:
      return "ok";
    case FrameError::kRunt:
      return "runt";
    case FrameError::kTruncatedTag:
      return "truncated-tag";
    case FrameError::kNoHeadroom:
      return "no-headroom";
    case FrameError::kNotTagged:
      return "not-tagged";
  }
  return "unknown";
}

FrameError Parse(std::span<const uint8_t> frame, FrameInfo* info) {
  *info = FrameInfo{};
  if (frame.size() < kEthHeaderLen) return FrameError::kRunt;
  size_t at = kMacsLen;
  uint16_t ethertype = Load16(&frame[at]);
  while (IsTagTpid(ethertype) && info->tag_count < 2) {
    // A tag is the TPID (already read), the TCI, and the next EtherType.
    if (frame.size() < at + kTagLen + 2) return FrameError::kTruncatedTag;
    info->tags[info->tag_count++] = Tag::FromTci(ethertype, Load16(&frame[at + 2]));
    at += kTagLen;
    ethertype = Load16(&frame[at]);
  }
  info->ethertype = ethertype;
  info->payload_offset = at + 2;
  return FrameError::kOk;
}

FrameError PushTag(FrameBuffer& frame, const Tag& tag) {
  if (frame.size < kEthHeaderLen) return FrameError::kRunt;
  if (frame.headroom < kTagLen) return FrameError::kNoHeadroom;
  frame.data = InsertTagInPlace(frame.data, tag.Tci(), tag.tpid);
  frame.size += kTagLen;
  frame.headroom -= kTagLen;
  return FrameError::kOk;
}

FrameError PopTag(FrameBuffer& frame, Tag* popped) {
  if (frame.size < kEthHeaderLen) return FrameError::kRunt;
  const uint16_t tpid = Load16(frame.data + kMacsLen);
  if (!IsTagTpid(tpid)) return FrameError::kNotTagged;
  if (frame.size < kEthHeaderLen + kTagLen) return FrameError::kTruncatedTag;
  if (popped) *popped = Tag::FromTci(tpid, Load16(frame.data + kMacsLen + 2));
  frame.data = StripTagInPlace(frame.data);
  frame.size -= kTagLen;
  frame.headroom += kTagLen;
  return FrameError::kOk;
}

FrameError SetOuterVid(std::span<uint8_t> frame, VlanId vid) {
  if (frame.size() < kEthHeaderLen) return FrameError::kRunt;
  if (!IsTagTpid(Load16(&frame[kMacsLen]))) return FrameError::kNotTagged;
  if (frame.size() < kEthHeaderLen + kTagLen) return FrameError::kTruncatedTag;
  const uint16_t tci = Load16(&frame[kMacsLen + 2]);
  Store16(&frame[kMacsLen + 2], static_cast<uint16_t>((tci & 0xf000u) | (vid & 0xfffu)));
  return FrameError::kOk;
}

}  // namespace vfabric::vlan
