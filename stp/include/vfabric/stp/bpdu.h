// BPDU encoding and decoding (IEEE 802.1D-2004 clause 9), framed as on the
// wire: 802.3 header (DA 01:80:c2:00:00:00, SA, length < 0x600), LLC
// 42 42 03, then the BPDU.
//
// Decoding is strict: every field that can be checked is, and a frame that
// fails a check is rejected with the reason (the caller counts it) and never
// partly trusted. The checks, in order:
//   - the frame holds the 14-byte header and the LLC header, DA is the Bridge
//     Group Address, the length field is < 0x600 (an 802.3 length, not an
//     EtherType), LLC is 42 42 03                          -> kNotBpdu
//   - the length field covers the LLC header and does not claim more bytes
//     than the frame holds (bytes after it are padding)   -> kLengthMismatch
//   - the BPDU holds the fields its type needs: 4 bytes for a TCN, 35 for a
//     Config, 36 for an RST BPDU (9.3.4)                  -> kTruncated
//   - Protocol Identifier is 0                            -> kBadProtocolId
//   - type is 0x00 (Config), 0x80 (TCN) or 0x02 (RST)     -> kBadType
//   - an RST BPDU has version >= 2 (9.3.4 c; version 3, an MST BPDU, is
//     read as its CIST part, as an RSTP bridge must) and Version 1 Length 0
//                                                         -> kBadVersion
//   - timers are possible: hello time 1..10 s, max age 6..40 s, forward delay
//     2..30 s (the kernel allows 2), message age <= max age -> kBadTimers
// A message age equal to max age is possible (the sender's information is one
// hop from expiry) and is accepted here: the receiver ages such information
// out at once (17.21.23), which is how 9.3.4's "discard if message age >= max
// age" takes effect, while the frame still counts as a BPDU heard on the link
// (edge detection, protocol migration).
// Config and TCN BPDUs are accepted with any Protocol Version Identifier, as
// 9.3.4 requires for forward compatibility.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/stp/types.h"

namespace vfabric::stp {

inline constexpr MacAddress kBridgeGroupAddress{{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}};

enum class BpduType : uint8_t { kConfig = 0x00, kTcn = 0x80, kRst = 0x02 };

// The role field of an RST BPDU's flags (9.3.3).
enum class BpduRole : uint8_t { kUnknown = 0, kAlternateOrBackup = 1, kRoot = 2, kDesignated = 3 };

// Times on the wire are in units of 1/256 s.
inline constexpr uint16_t kTimeUnitsPerSecond = 256;

struct Bpdu {
  BpduType type = BpduType::kConfig;
  uint8_t version = 0;  // 0 for Config/TCN as sent; 2 for RST

  // Flags. Config: tc, tc_ack. RST: all but tc_ack (always sent 0).
  bool topology_change = false;
  bool proposal = false;
  BpduRole role = BpduRole::kUnknown;
  bool learning = false;
  bool forwarding = false;
  bool agreement = false;
  bool topology_change_ack = false;

  // Config and RST only.
  BridgeId root_id;
  uint32_t root_path_cost = 0;
  BridgeId bridge_id;
  PortId port_id = 0;
  uint16_t message_age = 0;    // 1/256 s
  uint16_t max_age = 0;        // 1/256 s
  uint16_t hello_time = 0;     // 1/256 s
  uint16_t forward_delay = 0;  // 1/256 s

  friend bool operator==(const Bpdu&, const Bpdu&) = default;
};

enum class DecodeError : uint8_t {
  kOk = 0,
  kNotBpdu,
  kLengthMismatch,
  kTruncated,
  kBadProtocolId,
  kBadType,
  kBadVersion,
  kBadTimers,
};
inline constexpr size_t kDecodeErrorCount = 8;
std::string_view ToString(DecodeError error);

// Decodes a whole Ethernet frame. On kOk fills *bpdu; otherwise leaves it
// unspecified. Never reads outside `frame`.
DecodeError DecodeBpduFrame(std::span<const uint8_t> frame, Bpdu* bpdu);
// Decodes the BPDU alone (the bytes after the LLC header).
DecodeError DecodeBpdu(std::span<const uint8_t> payload, Bpdu* bpdu);

// Encodes `bpdu` as a frame from `source`: 21 bytes for a TCN, 52 for a
// Config, 53 for an RST BPDU (not padded to 60: the NIC or tap pads, and
// the kernel and Open vSwitch send these sizes too). Fields the type does not
// carry are ignored; an RST BPDU is sent with version 2 and tc_ack clear.
std::vector<uint8_t> EncodeBpduFrame(const Bpdu& bpdu, const MacAddress& source);

}  // namespace vfabric::stp
