// Port VLAN modes and the two decisions the pipeline asks of them: which
// VLAN an incoming frame belongs to (or why it is dropped), and how a frame
// of a VLAN leaves a port (untagged, tagged, or not at all).
//
// Modes (the semantics of Open vSwitch's access, native-untagged and
// native-tagged ports):
//  - access(pvid): frames arrive and leave untagged, in VLAN pvid. A
//    priority-tagged frame (VID 0) is accepted into pvid; any other tag is
//    dropped (kTaggedOnAccess).
//  - trunk(allowed): tagged frames of an allowed VLAN are accepted; they
//    leave tagged. Without a native VLAN, untagged frames are dropped.
//  - trunk(allowed, native, untagged): as above, and untagged (or priority
//    tagged) frames belong to the native VLAN, which leaves untagged.
//  - trunk(allowed, native, tagged): as above, but the native VLAN leaves
//    tagged. The native VLAN is always a member of the trunk, listed in
//    `allowed` or not.
//
// Ingress rules common to all modes (vfabric is a C-VLAN bridge):
//  - a frame too short to parse is dropped (kMalformed);
//  - an outermost S-tag (0x88a8) is dropped (kServiceTag): vfabric does not
//    tunnel 802.1ad frames, and says so instead of treating them as payload;
//  - VID 4095 is dropped (kReservedVlan);
//  - a priority tag followed by another tag is dropped (kDoubleTagged): no
//    honest sender makes one, and it is the vector of the double-tagging
//    VLAN-hopping attack (the inner tag would surface on the next trunk).
//
// The classifying C-tag (a VLAN or a priority tag) is stripped by the
// pipeline after classification (`Ingress::strip`); its PCP and DEI are kept
// in the result so that a tagged egress can carry them on.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "vfabric/common/status.h"
#include "vfabric/vlan/tag.h"
#include "vfabric/vlan/vlan_set.h"

namespace vfabric::vlan {

enum class PortMode : uint8_t { kAccess, kTrunk };
enum class NativeMode : uint8_t { kNone, kUntagged, kTagged };

struct PortVlanConfig {
  PortMode mode = PortMode::kAccess;
  VlanId pvid = 1;                        // access VLAN, or the trunk's native VLAN
  NativeMode native = NativeMode::kNone;  // trunk only
  VlanSet allowed;                        // trunk only

  static PortVlanConfig Access(VlanId pvid);
  // native_vid 0: no native VLAN.
  static PortVlanConfig Trunk(const VlanSet& allowed, VlanId native_vid = 0,
                              bool native_tagged = false);

  // OK, or why not: "access port: pvid 0 out of range 1-4094".
  Status Validate() const;
  // Whether frames of `vid` may cross this port at all.
  bool IsMember(VlanId vid) const;
};

enum class IngressDrop : uint8_t {
  kNone,
  kMalformed,           // runt or truncated tag
  kServiceTag,          // outermost tag is an 802.1ad S-tag
  kReservedVlan,        // VID 4095
  kDoubleTagged,        // a priority tag followed by another tag
  kTaggedOnAccess,      // a VLAN tag on an access port
  kUntaggedNotAllowed,  // untagged on a trunk without a native VLAN
  kVlanNotAllowed,      // a tagged VLAN the trunk does not carry
};
std::string_view ToString(IngressDrop drop);

struct Ingress {
  IngressDrop drop = IngressDrop::kNone;
  VlanId vlan = 0;     // when drop == kNone
  bool strip = false;  // the frame's outermost C-tag is to be popped
  uint8_t pcp = 0;     // from the stripped tag, else 0
  bool dei = false;

  bool accepted() const { return drop == IngressDrop::kNone; }
};

// Parses `frame` and classifies it.
Ingress ClassifyIngress(const PortVlanConfig& port, std::span<const uint8_t> frame);
// The same on a frame already parsed (`parsed` is what Parse() returned).
Ingress ClassifyIngress(const PortVlanConfig& port, FrameError parsed, const FrameInfo& info);

enum class EgressAction : uint8_t { kUntagged, kTagged, kDrop };
std::string_view ToString(EgressAction action);

// How a frame of VLAN `vid` leaves `port`.
EgressAction ClassifyEgress(const PortVlanConfig& port, VlanId vid);

std::string_view ToString(PortMode mode);

}  // namespace vfabric::vlan
