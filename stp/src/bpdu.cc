#include "vfabric/stp/bpdu.h"

#include <cstdio>

namespace vfabric::stp {
namespace {

constexpr size_t kEthHeader = 14;
constexpr size_t kLlcHeader = 3;
constexpr size_t kTcnSize = 4;
constexpr size_t kConfigSize = 35;
constexpr size_t kRstSize = 36;

// Flag bits (9.3.1, 9.3.3).
constexpr uint8_t kFlagTc = 0x01;
constexpr uint8_t kFlagProposal = 0x02;
constexpr uint8_t kFlagRoleShift = 2;
constexpr uint8_t kFlagRoleMask = 0x0c;
constexpr uint8_t kFlagLearning = 0x10;
constexpr uint8_t kFlagForwarding = 0x20;
constexpr uint8_t kFlagAgreement = 0x40;
constexpr uint8_t kFlagTcAck = 0x80;

// Accepted timer ranges, in 1/256 s.
constexpr uint32_t kMinHello = 1 * kTimeUnitsPerSecond;
constexpr uint32_t kMaxHello = 10 * kTimeUnitsPerSecond;
constexpr uint32_t kMinMaxAge = 6 * kTimeUnitsPerSecond;
constexpr uint32_t kMaxMaxAge = 40 * kTimeUnitsPerSecond;
constexpr uint32_t kMinForwardDelay = 2 * kTimeUnitsPerSecond;
constexpr uint32_t kMaxForwardDelay = 30 * kTimeUnitsPerSecond;

uint16_t Get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}
uint32_t Get32(std::span<const uint8_t> b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         uint32_t{b[at + 3]};
}
BridgeId GetBridgeId(std::span<const uint8_t> b, size_t at) {
  BridgeId id;
  id.priority = Get16(b, at);
  for (size_t i = 0; i < 6; ++i) id.address.bytes[i] = b[at + 2 + i];
  return id;
}
void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void Put32(std::vector<uint8_t>& out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v));
}
void PutBridgeId(std::vector<uint8_t>& out, const BridgeId& id) {
  Put16(out, id.priority);
  out.insert(out.end(), id.address.bytes.begin(), id.address.bytes.end());
}

}  // namespace

std::string BridgeId::ToString() const {
  char prefix[8];
  std::snprintf(prefix, sizeof(prefix), "%04x.", static_cast<unsigned>(priority));
  return prefix + address.ToString();
}

std::string_view ToString(PortRole role) {
  switch (role) {
    case PortRole::kDisabled:
      return "disabled";
    case PortRole::kRoot:
      return "root";
    case PortRole::kDesignated:
      return "designated";
    case PortRole::kAlternate:
      return "alternate";
    case PortRole::kBackup:
      return "backup";
  }
  return "?";
}

std::string_view ToString(PortState state) {
  switch (state) {
    case PortState::kDiscarding:
      return "discarding";
    case PortState::kLearning:
      return "learning";
    case PortState::kForwarding:
      return "forwarding";
  }
  return "?";
}

std::string_view ToString(Protocol protocol) {
  return protocol == Protocol::kRstp ? "rstp" : "stp";
}

std::string_view ToString(DecodeError error) {
  switch (error) {
    case DecodeError::kOk:
      return "ok";
    case DecodeError::kNotBpdu:
      return "not a BPDU frame";
    case DecodeError::kLengthMismatch:
      return "802.3 length disagrees with the frame";
    case DecodeError::kTruncated:
      return "truncated BPDU";
    case DecodeError::kBadProtocolId:
      return "bad protocol identifier";
    case DecodeError::kBadType:
      return "unknown BPDU type";
    case DecodeError::kBadVersion:
      return "bad protocol version";
    case DecodeError::kBadTimers:
      return "impossible timer values";
  }
  return "?";
}

DecodeError DecodeBpduFrame(std::span<const uint8_t> frame, Bpdu* bpdu) {
  if (frame.size() < kEthHeader + kLlcHeader) return DecodeError::kNotBpdu;
  for (size_t i = 0; i < 6; ++i) {
    if (frame[i] != kBridgeGroupAddress.bytes[i]) return DecodeError::kNotBpdu;
  }
  const uint16_t length = Get16(frame, 12);
  if (length >= 0x600) return DecodeError::kNotBpdu;
  if (frame[14] != 0x42 || frame[15] != 0x42 || frame[16] != 0x03) return DecodeError::kNotBpdu;
  if (length < kLlcHeader || length > frame.size() - kEthHeader) {
    return DecodeError::kLengthMismatch;
  }
  return DecodeBpdu(frame.subspan(kEthHeader + kLlcHeader, length - kLlcHeader), bpdu);
}

DecodeError DecodeBpdu(std::span<const uint8_t> b, Bpdu* bpdu) {
  if (b.size() < kTcnSize) return DecodeError::kTruncated;
  if (Get16(b, 0) != 0) return DecodeError::kBadProtocolId;
  Bpdu out;
  out.version = b[2];
  const uint8_t type = b[3];
  if (type == static_cast<uint8_t>(BpduType::kTcn)) {
    out.type = BpduType::kTcn;
    *bpdu = out;
    return DecodeError::kOk;
  }
  if (type == static_cast<uint8_t>(BpduType::kConfig)) {
    out.type = BpduType::kConfig;
    if (b.size() < kConfigSize) return DecodeError::kTruncated;
  } else if (type == static_cast<uint8_t>(BpduType::kRst)) {
    out.type = BpduType::kRst;
    if (out.version < 2) return DecodeError::kBadVersion;
    if (b.size() < kRstSize) return DecodeError::kTruncated;
    if (b[35] != 0) return DecodeError::kBadVersion;  // Version 1 Length
  } else {
    return DecodeError::kBadType;
  }

  const uint8_t flags = b[4];
  out.topology_change = (flags & kFlagTc) != 0;
  if (out.type == BpduType::kConfig) {
    out.topology_change_ack = (flags & kFlagTcAck) != 0;
  } else {
    out.proposal = (flags & kFlagProposal) != 0;
    out.role = static_cast<BpduRole>((flags & kFlagRoleMask) >> kFlagRoleShift);
    out.learning = (flags & kFlagLearning) != 0;
    out.forwarding = (flags & kFlagForwarding) != 0;
    out.agreement = (flags & kFlagAgreement) != 0;
    out.topology_change_ack = (flags & kFlagTcAck) != 0;
  }
  out.root_id = GetBridgeId(b, 5);
  out.root_path_cost = Get32(b, 13);
  out.bridge_id = GetBridgeId(b, 17);
  out.port_id = Get16(b, 25);
  out.message_age = Get16(b, 27);
  out.max_age = Get16(b, 29);
  out.hello_time = Get16(b, 31);
  out.forward_delay = Get16(b, 33);

  if (out.hello_time < kMinHello || out.hello_time > kMaxHello || out.max_age < kMinMaxAge ||
      out.max_age > kMaxMaxAge || out.forward_delay < kMinForwardDelay ||
      out.forward_delay > kMaxForwardDelay || out.message_age > out.max_age) {
    return DecodeError::kBadTimers;
  }
  *bpdu = out;
  return DecodeError::kOk;
}

std::vector<uint8_t> EncodeBpduFrame(const Bpdu& bpdu, const MacAddress& source) {
  std::vector<uint8_t> out;
  out.reserve(kEthHeader + kLlcHeader + kRstSize);
  out.insert(out.end(), kBridgeGroupAddress.bytes.begin(), kBridgeGroupAddress.bytes.end());
  out.insert(out.end(), source.bytes.begin(), source.bytes.end());
  size_t size = kTcnSize;
  if (bpdu.type == BpduType::kConfig) size = kConfigSize;
  if (bpdu.type == BpduType::kRst) size = kRstSize;
  Put16(out, static_cast<uint16_t>(kLlcHeader + size));
  out.push_back(0x42);
  out.push_back(0x42);
  out.push_back(0x03);
  Put16(out, 0);  // protocol identifier
  switch (bpdu.type) {
    case BpduType::kTcn:
      out.push_back(0);
      out.push_back(static_cast<uint8_t>(BpduType::kTcn));
      return out;
    case BpduType::kConfig:
      out.push_back(0);
      out.push_back(static_cast<uint8_t>(BpduType::kConfig));
      out.push_back(static_cast<uint8_t>((bpdu.topology_change ? kFlagTc : 0) |
                                         (bpdu.topology_change_ack ? kFlagTcAck : 0)));
      break;
    case BpduType::kRst:
      out.push_back(2);
      out.push_back(static_cast<uint8_t>(BpduType::kRst));
      out.push_back(static_cast<uint8_t>(
          (bpdu.topology_change ? kFlagTc : 0) | (bpdu.proposal ? kFlagProposal : 0) |
          ((static_cast<uint8_t>(bpdu.role) << kFlagRoleShift) & kFlagRoleMask) |
          (bpdu.learning ? kFlagLearning : 0) | (bpdu.forwarding ? kFlagForwarding : 0) |
          (bpdu.agreement ? kFlagAgreement : 0)));
      break;
  }
  PutBridgeId(out, bpdu.root_id);
  Put32(out, bpdu.root_path_cost);
  PutBridgeId(out, bpdu.bridge_id);
  Put16(out, bpdu.port_id);
  Put16(out, bpdu.message_age);
  Put16(out, bpdu.max_age);
  Put16(out, bpdu.hello_time);
  Put16(out, bpdu.forward_delay);
  if (bpdu.type == BpduType::kRst) out.push_back(0);  // Version 1 Length
  return out;
}

}  // namespace vfabric::stp
