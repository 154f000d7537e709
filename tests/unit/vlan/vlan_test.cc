#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vfabric/vlan/port.h"
#include "vfabric/vlan/tag.h"
#include "vfabric/vlan/vlan_set.h"

namespace vfabric::vlan {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Hex(const std::string& text) {
  Bytes out;
  std::string digits;
  for (char c : text)
    if (c != ' ') digits += c;
  for (size_t i = 0; i + 1 < digits.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  return out;
}

// An ARP request from 52:54:00:00:00:01 asking for 10.0.0.2, as a guest
// sends it (42 bytes: no padding on a virtual link).
const std::string kMacs = "ffffffffffff 525400000001";
const std::string kArp = "0806 0001 0800 06 04 0001 525400000001 0a000001 000000000000 0a000002";

// A buffer with `headroom` spare bytes in front of `frame`.
struct Buffer {
  Bytes storage;
  FrameBuffer frame;
  Buffer(const Bytes& bytes, size_t headroom) : storage(headroom + bytes.size(), 0xee) {
    if (!bytes.empty()) std::memcpy(storage.data() + headroom, bytes.data(), bytes.size());
    frame = FrameBuffer{storage.data() + headroom, bytes.size(), headroom};
  }
  Bytes contents() const { return Bytes(frame.data, frame.data + frame.size); }
};

// ---- Parse ----

TEST(VlanParseTest, Untagged) {
  const Bytes frame = Hex(kMacs + kArp);
  ASSERT_EQ(frame.size(), 42u);
  FrameInfo info;
  ASSERT_EQ(Parse(frame, &info), FrameError::kOk);
  EXPECT_EQ(info.tag_count, 0);
  EXPECT_EQ(info.ethertype, 0x0806);
  EXPECT_EQ(info.payload_offset, 14u);
}

TEST(VlanParseTest, Runts) {
  FrameInfo info;
  EXPECT_EQ(Parse({}, &info), FrameError::kRunt);
  const Bytes frame = Hex(kMacs + "08");
  ASSERT_EQ(frame.size(), 13u);
  EXPECT_EQ(Parse(frame, &info), FrameError::kRunt);
  // Exactly a header is a frame with an empty payload.
  const Bytes header = Hex(kMacs + "0800");
  ASSERT_EQ(Parse(header, &info), FrameError::kOk);
  EXPECT_EQ(info.payload_offset, 14u);
}

TEST(VlanParseTest, CTagWithPcpDeiVid) {
  // PCP 5, DEI 1, VID 10: TCI 1011 0000 0000 1010 = 0xb00a.
  const Bytes frame = Hex(kMacs + "8100 b00a" + kArp);
  FrameInfo info;
  ASSERT_EQ(Parse(frame, &info), FrameError::kOk);
  ASSERT_EQ(info.tag_count, 1);
  EXPECT_EQ(info.tags[0], (Tag{kTpidCTag, 5, true, 10}));
  EXPECT_EQ(info.tags[0].Tci(), 0xb00a);
  EXPECT_EQ(info.ethertype, 0x0806);
  EXPECT_EQ(info.payload_offset, 18u);
}

TEST(VlanParseTest, TagWithoutPayload) {
  const Bytes frame = Hex(kMacs + "8100 000a 0800");
  FrameInfo info;
  ASSERT_EQ(Parse(frame, &info), FrameError::kOk);
  EXPECT_EQ(info.tag_count, 1);
  EXPECT_EQ(info.tags[0].vid, 10);
  EXPECT_EQ(info.payload_offset, frame.size());
  // A TPID and TCI without the EtherType after them, or only half a TCI.
  EXPECT_EQ(Parse(Hex(kMacs + "8100 000a"), &info), FrameError::kTruncatedTag);
  EXPECT_EQ(Parse(Hex(kMacs + "8100 00"), &info), FrameError::kTruncatedTag);
  EXPECT_EQ(Parse(Hex(kMacs + "8100"), &info), FrameError::kTruncatedTag);
}

TEST(VlanParseTest, PriorityTagged) {
  const Bytes frame = Hex(kMacs + "8100 c000" + kArp);  // PCP 6, VID 0
  FrameInfo info;
  ASSERT_EQ(Parse(frame, &info), FrameError::kOk);
  EXPECT_EQ(info.tags[0], (Tag{kTpidCTag, 6, false, 0}));
}

TEST(VlanParseTest, DoubleTags) {
  FrameInfo info;
  // 802.1ad: S-tag 100 over C-tag 10.
  ASSERT_EQ(Parse(Hex(kMacs + "88a8 0064 8100 200a" + kArp), &info), FrameError::kOk);
  ASSERT_EQ(info.tag_count, 2);
  EXPECT_EQ(info.tags[0], (Tag{kTpidSTag, 0, false, 100}));
  EXPECT_TRUE(info.tags[0].IsSTag());
  EXPECT_EQ(info.tags[1], (Tag{kTpidCTag, 1, false, 10}));
  EXPECT_EQ(info.ethertype, 0x0806);
  EXPECT_EQ(info.payload_offset, 22u);
  // Two C-tags.
  ASSERT_EQ(Parse(Hex(kMacs + "8100 0014 8100 000a 0800"), &info), FrameError::kOk);
  EXPECT_EQ(info.tag_count, 2);
  EXPECT_EQ(info.tags[1].vid, 10);
  // A third tag is left as the payload's EtherType.
  ASSERT_EQ(Parse(Hex(kMacs + "8100 0001 8100 0002 8100 0003 0800"), &info), FrameError::kOk);
  EXPECT_EQ(info.tag_count, 2);
  EXPECT_EQ(info.ethertype, kTpidCTag);
  EXPECT_EQ(info.payload_offset, 22u);
  // The inner tag cut short.
  EXPECT_EQ(Parse(Hex(kMacs + "88a8 0064 8100 20"), &info), FrameError::kTruncatedTag);
}

// ---- Push / Pop ----

TEST(VlanTagEditTest, PushWritesTheTagAfterTheMacs) {
  Buffer b(Hex(kMacs + kArp), 8);
  ASSERT_EQ(PushTag(b.frame, Tag{kTpidCTag, 5, true, 10}), FrameError::kOk);
  EXPECT_EQ(b.contents(), Hex(kMacs + "8100 b00a" + kArp));
  EXPECT_EQ(b.frame.headroom, 4u);
  EXPECT_EQ(b.frame.data, b.storage.data() + 4);
  ASSERT_EQ(PushTag(b.frame, Tag{kTpidSTag, 0, false, 100}), FrameError::kOk);
  EXPECT_EQ(b.contents(), Hex(kMacs + "88a8 0064 8100 b00a" + kArp));
  EXPECT_EQ(b.frame.headroom, 0u);
  // Out of headroom: nothing changes.
  const Bytes before = b.contents();
  EXPECT_EQ(PushTag(b.frame, Tag{}), FrameError::kNoHeadroom);
  EXPECT_EQ(b.contents(), before);
  EXPECT_EQ(b.frame.size, 50u);
}

TEST(VlanTagEditTest, PushOnARuntFails) {
  Buffer b(Hex("ffffffffffff 5254"), 4);
  EXPECT_EQ(PushTag(b.frame, Tag{}), FrameError::kRunt);
  EXPECT_EQ(b.frame.size, 8u);
  EXPECT_EQ(b.frame.headroom, 4u);
}

TEST(VlanTagEditTest, PopReturnsTheTagWithPcpAndDei) {
  Buffer b(Hex(kMacs + "8100 f00a" + kArp), 0);  // PCP 7, DEI 1, VID 10
  Tag tag;
  ASSERT_EQ(PopTag(b.frame, &tag), FrameError::kOk);
  EXPECT_EQ(tag, (Tag{kTpidCTag, 7, true, 10}));
  EXPECT_EQ(b.contents(), Hex(kMacs + kArp));
  EXPECT_EQ(b.frame.headroom, 4u);
  // Untagged now.
  EXPECT_EQ(PopTag(b.frame, &tag), FrameError::kNotTagged);
  // Pushing the popped tag back restores the frame byte for byte.
  ASSERT_EQ(PushTag(b.frame, tag), FrameError::kOk);
  EXPECT_EQ(b.contents(), Hex(kMacs + "8100 f00a" + kArp));
}

TEST(VlanTagEditTest, PopOuterOfTwo) {
  Buffer b(Hex(kMacs + "88a8 0064 8100 000a 0800"), 0);
  Tag tag;
  ASSERT_EQ(PopTag(b.frame, &tag), FrameError::kOk);
  EXPECT_TRUE(tag.IsSTag());
  EXPECT_EQ(b.contents(), Hex(kMacs + "8100 000a 0800"));
  ASSERT_EQ(PopTag(b.frame), FrameError::kOk);
  EXPECT_EQ(b.contents(), Hex(kMacs + "0800"));
}

TEST(VlanTagEditTest, PopRejectsShortFrames) {
  Buffer runt(Hex("ffffffffffff"), 0);
  EXPECT_EQ(PopTag(runt.frame), FrameError::kRunt);
  Buffer truncated(Hex(kMacs + "8100 000a"), 0);
  EXPECT_EQ(PopTag(truncated.frame), FrameError::kTruncatedTag);
  EXPECT_EQ(truncated.frame.size, 16u);
}

// The unchecked writers the switch's ports use write the same bytes as
// PushTag/PopTag.
TEST(VlanTagWriterTest, WritersMatchPushAndPop) {
  EXPECT_EQ(TagBytes(0xb00a), (std::array<uint8_t, 4>{0x81, 0x00, 0xb0, 0x0a}));
  EXPECT_EQ(TagBytes(0x0064, kTpidSTag), (std::array<uint8_t, 4>{0x88, 0xa8, 0x00, 0x64}));

  const Bytes untagged = Hex(kMacs + kArp);
  const Bytes tagged = Hex(kMacs + "8100 b00a" + kArp);
  Bytes out(untagged.size() + 4, 0xee);
  EXPECT_EQ(CopyWithTag(out.data(), untagged, 0xb00a), untagged.size() + 4);
  EXPECT_EQ(out, tagged);
  // Only the MACs: the tag goes after them, nothing follows.
  Bytes macs_only(16, 0xee);
  EXPECT_EQ(CopyWithTag(macs_only.data(), std::span(untagged).first(12), 0x0001), 16u);
  EXPECT_EQ(macs_only, Hex(kMacs + "8100 0001"));

  Buffer in_place(untagged, 4);
  uint8_t* start = InsertTagInPlace(in_place.frame.data, 0xb00a);
  EXPECT_EQ(start, in_place.storage.data());
  EXPECT_EQ(Bytes(start, start + untagged.size() + 4), tagged);
  uint8_t* stripped = StripTagInPlace(start);
  EXPECT_EQ(stripped, in_place.storage.data() + 4);
  EXPECT_EQ(Bytes(stripped, stripped + untagged.size()), untagged);

  // PushTag and PopTag (the checked forms) agree byte for byte.
  Buffer pushed(untagged, 4);
  ASSERT_EQ(PushTag(pushed.frame, Tag::FromTci(kTpidCTag, 0xb00a)), FrameError::kOk);
  EXPECT_EQ(pushed.contents(), tagged);
}

TEST(VlanTagEditTest, SetOuterVidKeepsPcpAndDei) {
  Bytes frame = Hex(kMacs + "8100 b00a" + kArp);
  ASSERT_EQ(SetOuterVid(frame, 4000), FrameError::kOk);
  EXPECT_EQ(frame, Hex(kMacs + "8100 bfa0" + kArp));
  Bytes untagged = Hex(kMacs + kArp);
  EXPECT_EQ(SetOuterVid(untagged, 1), FrameError::kNotTagged);
  Bytes short_tag = Hex(kMacs + "8100 b0");
  EXPECT_EQ(SetOuterVid(short_tag, 1), FrameError::kTruncatedTag);
  Bytes runt = Hex("0102");
  EXPECT_EQ(SetOuterVid(runt, 1), FrameError::kRunt);
}

TEST(VlanTagEditTest, ErrorNames) {
  EXPECT_EQ(ToString(FrameError::kTruncatedTag), "truncated-tag");
  EXPECT_EQ(ToString(FrameError::kNoHeadroom), "no-headroom");
}

// ---- VlanSet ----

TEST(VlanSetTest, ParsesListsAndRanges) {
  auto set = VlanSet::Parse("10,20-30");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->Count(), 12u);
  EXPECT_TRUE(set->Contains(10));
  EXPECT_TRUE(set->Contains(20));
  EXPECT_TRUE(set->Contains(30));
  EXPECT_FALSE(set->Contains(11));
  EXPECT_FALSE(set->Contains(31));
  EXPECT_EQ(set->ToString(), "10,20-30");
}

TEST(VlanSetTest, AcceptsSpacesOverlapsAndTheEdges) {
  auto set = VlanSet::Parse(" 1 , 5 - 7 ,6,4094 ");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->ToString(), "1,5-7,4094");
  auto empty = VlanSet::Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->Empty());
  EXPECT_TRUE(VlanSet::Parse("   ")->Empty());
}

TEST(VlanSetTest, ErrorsNameTheInputAndTheItem) {
  auto message = [](std::string_view text) {
    auto set = VlanSet::Parse(text);
    return set.ok() ? std::string("ok") : set.status().message();
  };
  EXPECT_EQ(message("10,,20"), "vlan set \"10,,20\": empty item at offset 3");
  EXPECT_EQ(message("10,"), "vlan set \"10,\": empty item at offset 3");
  EXPECT_EQ(message(",10"), "vlan set \",10\": empty item at offset 0");
  EXPECT_EQ(message("5-x"), "vlan set \"5-x\": \"x\" is not a VLAN ID (at offset 2)");
  EXPECT_EQ(message("abc"), "vlan set \"abc\": \"abc\" is not a VLAN ID (at offset 0)");
  EXPECT_EQ(message("-5"), "vlan set \"-5\": \"\" is not a VLAN ID (at offset 0)");
  EXPECT_EQ(message("1-2-3"), "vlan set \"1-2-3\": \"2-3\" is not a VLAN ID (at offset 2)");
  EXPECT_EQ(message("4095"), "vlan set \"4095\": VLAN ID 4095 out of range 1-4094 (at offset 0)");
  EXPECT_EQ(message("1, 0"), "vlan set \"1, 0\": VLAN ID 0 out of range 1-4094 (at offset 3)");
  EXPECT_EQ(message("99999"),
            "vlan set \"99999\": VLAN ID 99999 out of range 1-4094 (at offset 0)");
  EXPECT_EQ(message("123456"), "vlan set \"123456\": \"123456\" is not a VLAN ID (at offset 0)");
  EXPECT_EQ(message("30-20"), "vlan set \"30-20\": range 30-20 is reversed (at offset 0)");
  EXPECT_EQ(message("1;2"), "vlan set \"1;2\": \"1;2\" is not a VLAN ID (at offset 0)");
}

TEST(VlanSetTest, PrintsCompactRanges) {
  VlanSet set;
  EXPECT_EQ(set.ToString(), "");
  set.Add(1);
  set.Add(2);
  EXPECT_EQ(set.ToString(), "1,2");
  set.Add(3);
  EXPECT_EQ(set.ToString(), "1-3");
  set.Add(5);
  set.AddRange(63, 65);  // across a word boundary
  set.Add(4095);
  EXPECT_EQ(set.ToString(), "1-3,5,63-65,4095");
  set.Remove(2);
  EXPECT_EQ(set.ToString(), "1,3,5,63-65,4095");
  EXPECT_EQ(set.Count(), 7u);
  set.Add(5000);  // out of range: ignored
  set.Remove(5000);
  EXPECT_FALSE(set.Contains(5000));
  EXPECT_EQ(set.Count(), 7u);
  set.Clear();
  EXPECT_TRUE(set.Empty());
  EXPECT_EQ(VlanSet::All().ToString(), "1-4094");
  EXPECT_EQ(VlanSet::All().Count(), 4094u);
}

TEST(VlanSetTest, PrintThenParseRoundTrips) {
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    VlanSet set;
    const int items = static_cast<int>(rng() % 20);
    for (int i = 0; i < items; ++i) {
      const VlanId first = static_cast<VlanId>(1 + rng() % kMaxVid);
      const VlanId last = static_cast<VlanId>(std::min<unsigned>(kMaxVid, first + rng() % 4));
      set.AddRange(first, last);
    }
    auto parsed = VlanSet::Parse(set.ToString());
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    ASSERT_EQ(*parsed, set) << set.ToString();
  }
}

// ---- Ports ----

TEST(VlanPortTest, ValidateNamesTheProblem) {
  EXPECT_TRUE(PortVlanConfig::Access(10).Validate().ok());
  EXPECT_EQ(PortVlanConfig::Access(0).Validate().message(),
            "access port: pvid 0 out of range 1-4094");
  EXPECT_EQ(PortVlanConfig::Access(4095).Validate().message(),
            "access port: pvid 4095 out of range 1-4094");
  EXPECT_TRUE(PortVlanConfig::Trunk(*VlanSet::Parse("10,20-30"), 1).Validate().ok());
  EXPECT_TRUE(PortVlanConfig::Trunk(VlanSet(), 1).Validate().ok());
  EXPECT_EQ(PortVlanConfig::Trunk(VlanSet(), 0).Validate().message(),
            "trunk port: carries no VLAN (no allowed VLANs and no native VLAN)");
  EXPECT_EQ(PortVlanConfig::Trunk(VlanSet::All(), 4095).Validate().message(),
            "trunk port: native VLAN 4095 out of range 1-4094");
  VlanSet bad;
  bad.Add(0);
  bad.Add(7);
  EXPECT_EQ(PortVlanConfig::Trunk(bad).Validate().message(),
            "trunk port: allowed VLANs \"0,7\" include 0 or 4095");
  EXPECT_EQ(ToString(PortMode::kTrunk), "trunk");
}

Ingress Classify(const PortVlanConfig& port, const std::string& hex) {
  return ClassifyIngress(port, Hex(hex));
}

TEST(VlanPortTest, AccessIngress) {
  const PortVlanConfig port = PortVlanConfig::Access(10);
  Ingress in = Classify(port, kMacs + kArp);
  EXPECT_TRUE(in.accepted());
  EXPECT_EQ(in.vlan, 10);
  EXPECT_FALSE(in.strip);
  // Priority tagged: into the pvid, tag stripped, priority kept.
  in = Classify(port, kMacs + "8100 a000" + kArp);
  EXPECT_TRUE(in.accepted());
  EXPECT_EQ(in.vlan, 10);
  EXPECT_TRUE(in.strip);
  EXPECT_EQ(in.pcp, 5);
  EXPECT_FALSE(in.dei);
  EXPECT_EQ(Classify(port, kMacs + "8100 000a" + kArp).drop, IngressDrop::kTaggedOnAccess);
  EXPECT_EQ(Classify(port, kMacs + "8100 0014" + kArp).drop, IngressDrop::kTaggedOnAccess);
  EXPECT_EQ(Classify(port, kMacs + "88a8 000a" + kArp).drop, IngressDrop::kServiceTag);
  EXPECT_EQ(Classify(port, kMacs + "8100 0fff" + kArp).drop, IngressDrop::kReservedVlan);
  EXPECT_EQ(Classify(port, kMacs + "8100 0000 8100 0014" + kArp).drop, IngressDrop::kDoubleTagged);
  EXPECT_EQ(Classify(port, "ffffffffffff").drop, IngressDrop::kMalformed);
  EXPECT_EQ(Classify(port, kMacs + "8100 00").drop, IngressDrop::kMalformed);
  // A tag without payload is still a frame in a VLAN.
  in = Classify(port, kMacs + "8100 0000 0800");
  EXPECT_TRUE(in.accepted());
  EXPECT_EQ(in.vlan, 10);
}

TEST(VlanPortTest, TrunkWithoutNativeIngress) {
  const PortVlanConfig port = PortVlanConfig::Trunk(*VlanSet::Parse("10,20-30"));
  EXPECT_EQ(Classify(port, kMacs + kArp).drop, IngressDrop::kUntaggedNotAllowed);
  EXPECT_EQ(Classify(port, kMacs + "8100 e000" + kArp).drop, IngressDrop::kUntaggedNotAllowed);
  Ingress in = Classify(port, kMacs + "8100 3019" + kArp);  // PCP 1, DEI 1, VID 25
  EXPECT_TRUE(in.accepted());
  EXPECT_EQ(in.vlan, 25);
  EXPECT_TRUE(in.strip);
  EXPECT_EQ(in.pcp, 1);
  EXPECT_TRUE(in.dei);
  EXPECT_EQ(Classify(port, kMacs + "8100 000b" + kArp).drop, IngressDrop::kVlanNotAllowed);
  EXPECT_EQ(Classify(port, kMacs + "8100 0fff" + kArp).drop, IngressDrop::kReservedVlan);
  EXPECT_EQ(Classify(port, kMacs + "88a8 000a 8100 000a" + kArp).drop, IngressDrop::kServiceTag);
  // Two C-tags: classified by the outer one; the inner one is payload.
  in = Classify(port, kMacs + "8100 000a 8100 0014" + kArp);
  EXPECT_TRUE(in.accepted());
  EXPECT_EQ(in.vlan, 10);
}

TEST(VlanPortTest, TrunkWithNativeIngress) {
  for (bool tagged : {false, true}) {
    const PortVlanConfig port = PortVlanConfig::Trunk(*VlanSet::Parse("10,20-30"), 5, tagged);
    EXPECT_EQ(port.native, tagged ? NativeMode::kTagged : NativeMode::kUntagged);
    Ingress in = Classify(port, kMacs + kArp);
    EXPECT_TRUE(in.accepted());
    EXPECT_EQ(in.vlan, 5);
    in = Classify(port, kMacs + "8100 2000" + kArp);  // priority tagged
    EXPECT_EQ(in.vlan, 5);
    EXPECT_TRUE(in.strip);
    EXPECT_EQ(in.pcp, 1);
    in = Classify(port, kMacs + "8100 0005" + kArp);  // the native VLAN, tagged
    EXPECT_TRUE(in.accepted());
    EXPECT_EQ(in.vlan, 5);
    EXPECT_EQ(Classify(port, kMacs + "8100 0006" + kArp).drop, IngressDrop::kVlanNotAllowed);
    EXPECT_EQ(Classify(port, kMacs + "8100 0000 8100 0006" + kArp).drop,
              IngressDrop::kDoubleTagged);
  }
}

TEST(VlanPortTest, Egress) {
  const PortVlanConfig access = PortVlanConfig::Access(10);
  EXPECT_EQ(ClassifyEgress(access, 10), EgressAction::kUntagged);
  EXPECT_EQ(ClassifyEgress(access, 11), EgressAction::kDrop);

  const VlanSet allowed = *VlanSet::Parse("10,20-30");
  const PortVlanConfig plain = PortVlanConfig::Trunk(allowed);
  EXPECT_EQ(ClassifyEgress(plain, 10), EgressAction::kTagged);
  EXPECT_EQ(ClassifyEgress(plain, 30), EgressAction::kTagged);
  EXPECT_EQ(ClassifyEgress(plain, 31), EgressAction::kDrop);
  EXPECT_EQ(ClassifyEgress(plain, 1), EgressAction::kDrop);
  EXPECT_EQ(ClassifyEgress(plain, 0), EgressAction::kDrop);

  const PortVlanConfig untagged = PortVlanConfig::Trunk(allowed, 1);
  EXPECT_EQ(ClassifyEgress(untagged, 1), EgressAction::kUntagged);
  EXPECT_EQ(ClassifyEgress(untagged, 20), EgressAction::kTagged);
  EXPECT_EQ(ClassifyEgress(untagged, 2), EgressAction::kDrop);

  const PortVlanConfig tagged = PortVlanConfig::Trunk(allowed, 1, true);
  EXPECT_EQ(ClassifyEgress(tagged, 1), EgressAction::kTagged);
  EXPECT_EQ(ClassifyEgress(tagged, 20), EgressAction::kTagged);
  EXPECT_EQ(ClassifyEgress(tagged, 2), EgressAction::kDrop);
  EXPECT_EQ(ToString(EgressAction::kUntagged), "untagged");
  EXPECT_EQ(ToString(IngressDrop::kVlanNotAllowed), "vlan-not-allowed");
}

// A frame through the pipeline's VLAN steps: classify on a trunk, strip,
// switch, re-tag on another trunk; the priority bits survive the trip.
TEST(VlanPortTest, TrunkToTrunkKeepsPriority) {
  const Bytes original = Hex(kMacs + "8100 b014" + kArp);  // PCP 5, DEI 1, VID 20
  Buffer b(original, 4);
  const PortVlanConfig in_port = PortVlanConfig::Trunk(*VlanSet::Parse("20"));
  const PortVlanConfig out_port = PortVlanConfig::Trunk(*VlanSet::Parse("1-100"), 1);
  const Ingress in = ClassifyIngress(in_port, b.frame.bytes());
  ASSERT_TRUE(in.accepted());
  ASSERT_TRUE(in.strip);
  ASSERT_EQ(PopTag(b.frame), FrameError::kOk);
  EXPECT_EQ(b.contents(), Hex(kMacs + kArp));
  ASSERT_EQ(ClassifyEgress(out_port, in.vlan), EgressAction::kTagged);
  ASSERT_EQ(PushTag(b.frame, Tag{kTpidCTag, in.pcp, in.dei, in.vlan}), FrameError::kOk);
  EXPECT_EQ(b.contents(), original);
  // Onto an access port of that VLAN it leaves untagged.
  ASSERT_EQ(PopTag(b.frame), FrameError::kOk);
  EXPECT_EQ(ClassifyEgress(PortVlanConfig::Access(20), in.vlan), EgressAction::kUntagged);
  EXPECT_EQ(b.contents(), Hex(kMacs + kArp));
}

// Every prefix of every test frame: classification never reads past the end
// (the sanitizer build checks) and never accepts a frame it cannot parse.
TEST(VlanPortTest, EveryPrefixIsSafe) {
  const std::vector<std::string> frames = {
      kMacs + kArp, kMacs + "8100 b00a" + kArp, kMacs + "88a8 0064 8100 200a" + kArp,
      kMacs + "8100 0000 8100 0014" + kArp, kMacs + "8100 0001 8100 0002 8100 0003 0800"};
  const PortVlanConfig ports[] = {PortVlanConfig::Access(10),
                                  PortVlanConfig::Trunk(VlanSet::All(), 1)};
  for (const std::string& hex : frames) {
    const Bytes full = Hex(hex);
    for (size_t n = 0; n <= full.size(); ++n) {
      const Bytes prefix(full.begin(), full.begin() + n);  // its own allocation
      FrameInfo info;
      const FrameError parsed = Parse(prefix, &info);
      if (parsed == FrameError::kOk) {
        EXPECT_LE(info.payload_offset, n);
      }
      for (const PortVlanConfig& port : ports) {
        const Ingress in = ClassifyIngress(port, prefix);
        if (parsed != FrameError::kOk) {
          EXPECT_EQ(in.drop, IngressDrop::kMalformed) << hex << " " << n;
        }
      }
      Buffer b(prefix, 0);
      Tag tag;
      if (PopTag(b.frame, &tag) == FrameError::kOk) {
        EXPECT_EQ(b.frame.size + 4, n);
      }
    }
  }
}

}  // namespace
}  // namespace vfabric::vlan
