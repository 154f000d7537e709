// 802.1Q tags on Ethernet frames: parse, push, pop.
//
// A frame here is the bytes from the destination MAC to the end of the
// payload (no preamble, no FCS), as a tap or vhost-user port hands it over.
// A "runt" is anything shorter than the 14-byte Ethernet header; frames
// shorter than the 60-byte wire minimum are normal on virtual links (nobody
// pads them), so they are not runts here.
//
// Tags: TPID 0x8100 is a C-tag (customer VLAN tag, 802.1Q); TPID 0x88a8 is
// an S-tag (service tag, 802.1ad), recognized and reported as such. The tag
// control information (TCI) is PCP (3 bits), DEI (1 bit), VID (12 bits).
// VID 0 means "priority tagged": the frame carries a priority but no VLAN.
//
// All functions are pure: no allocation, no OS calls; errors are values.
//
// Writing tags. Every 802.1Q tag vfabric writes goes through the inline
// writers at the end of this header (StoreTag, TagBytes, CopyWithTag,
// InsertTagInPlace, StripTagInPlace): the switch's pipeline and each of its
// ports (bridge/), and PushTag/PopTag here. They check nothing: the fast
// path has already classified the frame, and a check per frame there costs
// what the helpers exist to save. PushTag/PopTag are the checked forms, for
// callers that have not.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace vfabric::vlan {

using VlanId = uint16_t;

inline constexpr uint16_t kTpidCTag = 0x8100;
inline constexpr uint16_t kTpidSTag = 0x88a8;
inline constexpr size_t kMacsLen = 12;       // destination + source MAC
inline constexpr size_t kEthHeaderLen = 14;  // MACs + EtherType
inline constexpr size_t kTagLen = 4;         // TPID + TCI
inline constexpr VlanId kPriorityVid = 0;
inline constexpr VlanId kMaxVid = 4094;  // 4095 is reserved
inline constexpr VlanId kReservedVid = 4095;

struct Tag {
  uint16_t tpid = kTpidCTag;
  uint8_t pcp = 0;  // 0..7
  bool dei = false;
  VlanId vid = 0;  // 0..4095

  uint16_t Tci() const {
    return static_cast<uint16_t>((pcp & 7u) << 13 | (dei ? 1u : 0u) << 12 | (vid & 0xfffu));
  }
  static Tag FromTci(uint16_t tpid, uint16_t tci) {
    return Tag{tpid, static_cast<uint8_t>(tci >> 13), ((tci >> 12) & 1u) != 0,
               static_cast<VlanId>(tci & 0xfffu)};
  }
  bool IsSTag() const { return tpid == kTpidSTag; }
  friend bool operator==(const Tag&, const Tag&) = default;
};

inline bool IsTagTpid(uint16_t ethertype) {
  return ethertype == kTpidCTag || ethertype == kTpidSTag;
}

enum class FrameError : uint8_t {
  kOk,
  kRunt,          // shorter than the Ethernet header
  kTruncatedTag,  // a TPID without the rest of its tag and the EtherType after it
  kNoHeadroom,    // PushTag: fewer than 4 bytes before the frame
  kNotTagged,     // PopTag: the outermost EtherType is not 0x8100 or 0x88a8
};
std::string_view ToString(FrameError error);

// What Parse() found. At most two tags are decoded (outermost first); a
// third TPID is left as `ethertype`, the start of the payload.
struct FrameInfo {
  uint8_t tag_count = 0;
  Tag tags[2];
  uint16_t ethertype = 0;     // the EtherType after the decoded tags
  size_t payload_offset = 0;  // where the bytes after that EtherType start (<= size)
};

// Decodes the Ethernet header and up to two tags of `frame` into *info.
// Returns kRunt or kTruncatedTag (with *info partly filled) on short frames.
// A tag followed by its EtherType and no payload is well formed.
FrameError Parse(std::span<const uint8_t> frame, FrameInfo* info);

// A frame in a buffer with room in front of it: bytes [data - headroom,
// data + size) are the caller's to write.
struct FrameBuffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  size_t headroom = 0;

  std::span<const uint8_t> bytes() const { return {data, size}; }
};

// Inserts `tag` after the MACs (it becomes the outermost tag), using 4 bytes
// of headroom: data -= 4, size += 4, headroom -= 4. PCP and DEI are written
// as given. Fails with kRunt (size < 14) or kNoHeadroom, changing nothing.
FrameError PushTag(FrameBuffer& frame, const Tag& tag);

// Removes the outermost tag (C or S), stores it in *popped when given, and
// gives the 4 bytes back to headroom. Fails with kRunt, kNotTagged or
// kTruncatedTag (the tag lacks the EtherType after it), changing nothing.
FrameError PopTag(FrameBuffer& frame, Tag* popped = nullptr);

// Rewrites the outermost tag's VID in place, keeping its TPID, PCP and DEI.
FrameError SetOuterVid(std::span<uint8_t> frame, VlanId vid);

// ---- The unchecked tag writers (the fast path) ----
// Inline, no allocation, no branches on the frame: the same loads and
// stores the switch's ports wrote by hand before (bench/bridge_bench).

// The tag (TPID, then TCI, big-endian) in the 4 bytes at `at`.
inline void StoreTag(uint8_t* at, uint16_t tci, uint16_t tpid = kTpidCTag) {
  at[0] = static_cast<uint8_t>(tpid >> 8);
  at[1] = static_cast<uint8_t>(tpid & 0xff);
  at[2] = static_cast<uint8_t>(tci >> 8);
  at[3] = static_cast<uint8_t>(tci & 0xff);
}

// The tag as its 4 bytes: for a port that sends a frame in pieces (an
// iovec for the MACs, one for the tag, one for the rest: writev, sendmmsg).
inline std::array<uint8_t, kTagLen> TagBytes(uint16_t tci, uint16_t tpid = kTpidCTag) {
  std::array<uint8_t, kTagLen> tag;
  StoreTag(tag.data(), tci, tpid);
  return tag;
}

// Copies `frame` to `out` with the tag inserted after the MACs (it becomes
// the outermost tag). Returns the bytes written, frame.size() + 4.
// REQUIRES: frame.size() >= kMacsLen; `out` has room for frame.size() + 4
// bytes and does not overlap `frame`.
inline size_t CopyWithTag(uint8_t* out, std::span<const uint8_t> frame, uint16_t tci,
                          uint16_t tpid = kTpidCTag) {
  std::memcpy(out, frame.data(), kMacsLen);
  StoreTag(out + kMacsLen, tci, tpid);
  std::memcpy(out + kMacsLen + kTagLen, frame.data() + kMacsLen, frame.size() - kMacsLen);
  return frame.size() + kTagLen;
}

// Inserts the tag in front of the frame at `data` by moving the MACs 4
// bytes down; returns the frame's new start (data - 4).
// REQUIRES: 4 writable bytes before `data`; at least the MACs at `data`.
inline uint8_t* InsertTagInPlace(uint8_t* data, uint16_t tci, uint16_t tpid = kTpidCTag) {
  uint8_t* start = data - kTagLen;
  std::memmove(start, data, kMacsLen);
  StoreTag(start + kMacsLen, tci, tpid);
  return start;
}

// Removes the outermost tag of the frame at `data` by moving the MACs 4
// bytes up over it; returns the frame's new start (data + 4).
// REQUIRES: the frame has a whole tag after its MACs (Parse said so).
inline uint8_t* StripTagInPlace(uint8_t* data) {
  std::memmove(data + kTagLen, data, kMacsLen);
  return data + kTagLen;
}

}  // namespace vfabric::vlan
