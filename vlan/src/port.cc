#include "vfabric/vlan/port.h"

#include <string>

namespace vfabric::vlan {

std::string_view ToString(IngressDrop drop) {
  switch (drop) {
    case IngressDrop::kNone:
      return "none";
    case IngressDrop::kMalformed:
      return "malformed";
    case IngressDrop::kServiceTag:
      return "service-tag";
    case IngressDrop::kReservedVlan:
      return "reserved-vlan";
    case IngressDrop::kDoubleTagged:
      return "double-tagged";
    case IngressDrop::kTaggedOnAccess:
      return "tagged-on-access";
    case IngressDrop::kUntaggedNotAllowed:
      return "untagged-not-allowed";
    case IngressDrop::kVlanNotAllowed:
      return "vlan-not-allowed";
  }
  return "unknown";
}

std::string_view ToString(EgressAction action) {
  switch (action) {
    case EgressAction::kUntagged:
      return "untagged";
    case EgressAction::kTagged:
      return "tagged";
    case EgressAction::kDrop:
      return "drop";
  }
  return "unknown";
}

std::string_view ToString(PortMode mode) {
  switch (mode) {
    case PortMode::kAccess:
      return "access";
    case PortMode::kTrunk:
      return "trunk";
  }
  return "unknown";
}

PortVlanConfig PortVlanConfig::Access(VlanId pvid) {
  PortVlanConfig config;
  config.mode = PortMode::kAccess;
  config.pvid = pvid;
  return config;
}

PortVlanConfig PortVlanConfig::Trunk(const VlanSet& allowed, VlanId native_vid,
                                     bool native_tagged) {
  PortVlanConfig config;
  config.mode = PortMode::kTrunk;
  config.allowed = allowed;
  if (native_vid != 0) {
    config.pvid = native_vid;
    config.native = native_tagged ? NativeMode::kTagged : NativeMode::kUntagged;
  }
  return config;
}

Status PortVlanConfig::Validate() const {
  const auto bad_vid = [](VlanId vid) { return vid < 1 || vid > kMaxVid; };
  if (mode == PortMode::kAccess) {
    if (bad_vid(pvid))
      return Status::Error("access port: pvid " + std::to_string(pvid) + " out of range 1-4094");
    return Status::Ok();
  }
  if (native != NativeMode::kNone && bad_vid(pvid))
    return Status::Error("trunk port: native VLAN " + std::to_string(pvid) +
                         " out of range 1-4094");
  if (allowed.Contains(0) || allowed.Contains(kReservedVid))
    return Status::Error("trunk port: allowed VLANs \"" + allowed.ToString() +
                         "\" include 0 or 4095");
  if (allowed.Empty() && native == NativeMode::kNone)
    return Status::Error("trunk port: carries no VLAN (no allowed VLANs and no native VLAN)");
  return Status::Ok();
}

bool PortVlanConfig::IsMember(VlanId vid) const {
  if (mode == PortMode::kAccess) return vid == pvid;
  return (native != NativeMode::kNone && vid == pvid) || allowed.Contains(vid);
}

Ingress ClassifyIngress(const PortVlanConfig& port, std::span<const uint8_t> frame) {
  FrameInfo info;
  const FrameError parsed = Parse(frame, &info);
  return ClassifyIngress(port, parsed, info);
}

Ingress ClassifyIngress(const PortVlanConfig& port, FrameError parsed, const FrameInfo& info) {
  Ingress result;
  auto drop = [&](IngressDrop why) {
    result.drop = why;
    return result;
  };
  if (parsed != FrameError::kOk) return drop(IngressDrop::kMalformed);
  bool untagged = true;
  if (info.tag_count > 0) {
    const Tag& outer = info.tags[0];
    if (outer.IsSTag()) return drop(IngressDrop::kServiceTag);
    result.strip = true;
    result.pcp = outer.pcp;
    result.dei = outer.dei;
    if (outer.vid == kReservedVid) return drop(IngressDrop::kReservedVlan);
    if (outer.vid == kPriorityVid) {
      if (info.tag_count > 1) return drop(IngressDrop::kDoubleTagged);
    } else {
      untagged = false;
      result.vlan = outer.vid;
    }
  }
  if (port.mode == PortMode::kAccess) {
    if (!untagged) return drop(IngressDrop::kTaggedOnAccess);
    result.vlan = port.pvid;
    return result;
  }
  if (untagged) {
    if (port.native == NativeMode::kNone) return drop(IngressDrop::kUntaggedNotAllowed);
    result.vlan = port.pvid;
    return result;
  }
  if (!port.IsMember(result.vlan)) return drop(IngressDrop::kVlanNotAllowed);
  return result;
}

EgressAction ClassifyEgress(const PortVlanConfig& port, VlanId vid) {
  if (port.mode == PortMode::kAccess)
    return vid == port.pvid ? EgressAction::kUntagged : EgressAction::kDrop;
  if (port.native != NativeMode::kNone && vid == port.pvid)
    return port.native == NativeMode::kTagged ? EgressAction::kTagged : EgressAction::kUntagged;
  if (vid >= 1 && vid <= kMaxVid && port.allowed.Contains(vid)) return EgressAction::kTagged;
  return EgressAction::kDrop;
}

}  // namespace vfabric::vlan
