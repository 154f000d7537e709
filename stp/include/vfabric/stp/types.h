// Identifiers and enumerations shared by the BPDU codec and the RSTP engine
// (IEEE 802.1D-2004 clause 9 encoding, clause 17 semantics).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vfabric/common/mac_address.h"

namespace vfabric::stp {

// A Bridge Identifier (9.2.5): 4 bits of priority, 12 bits of system ID
// extension (always 0 here: one spanning tree), and the bridge's MAC address.
// Ordered as the 64-bit number the standard compares: lower is better.
struct BridgeId {
  uint16_t priority = 0x8000;  // priority | system id extension, as on the wire
  MacAddress address;

  uint64_t ToU64() const { return (uint64_t{priority} << 48) | address.ToU64(); }
  static BridgeId FromU64(uint64_t value) {
    return BridgeId{static_cast<uint16_t>(value >> 48), MacAddress::FromU64(value)};
  }
  // "8000.52:54:00:00:00:01" (priority in hex, as brctl and tcpdump print it).
  std::string ToString() const;

  friend bool operator==(const BridgeId& a, const BridgeId& b) { return a.ToU64() == b.ToU64(); }
  friend auto operator<=>(const BridgeId& a, const BridgeId& b) { return a.ToU64() <=> b.ToU64(); }
};

// A Port Identifier (9.2.7): 4 bits of priority (a multiple of 16 in the
// high byte) and a 12-bit port number 1..4095.
using PortId = uint16_t;
using PortNumber = uint16_t;
constexpr PortId MakePortId(uint8_t priority, PortNumber number) {
  return static_cast<PortId>(((priority & 0xF0u) << 8) | (number & 0x0FFFu));
}
constexpr PortNumber PortNumberOf(PortId id) { return static_cast<PortNumber>(id & 0x0FFFu); }
constexpr uint8_t PortPriorityOf(PortId id) { return static_cast<uint8_t>((id >> 8) & 0xF0u); }

// 17.7 port roles. kAlternate and kBackup are sent on the wire as one code.
enum class PortRole : uint8_t { kDisabled, kRoot, kDesignated, kAlternate, kBackup };
// 17.5 port states as the forwarding process sees them. (802.1D "listening"
// and "blocking" are both kDiscarding.)
enum class PortState : uint8_t { kDiscarding, kLearning, kForwarding };
// What a port speaks: RST BPDUs, or 802.1D-1998 Config/TCN BPDUs.
enum class Protocol : uint8_t { kRstp, kStp };

std::string_view ToString(PortRole role);
std::string_view ToString(PortState state);
std::string_view ToString(Protocol protocol);

}  // namespace vfabric::stp
