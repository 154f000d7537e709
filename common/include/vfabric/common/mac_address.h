// An Ethernet MAC address as six bytes, with the textual form
// "52:54:00:00:00:01" (lower-case hex, colon separated).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfabric {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  // Accepts exactly six colon-separated pairs of hex digits (either case).
  static std::optional<MacAddress> Parse(std::string_view text);
  std::string ToString() const;

  bool IsMulticast() const { return (bytes[0] & 0x01) != 0; }  // includes broadcast
  bool IsBroadcast() const;
  bool IsZero() const;
  // The 48 bits in the low bits of a uint64_t, bytes[0] most significant.
  uint64_t ToU64() const;
  static MacAddress FromU64(uint64_t value);

  friend bool operator==(const MacAddress&, const MacAddress&) = default;
  friend auto operator<=>(const MacAddress&, const MacAddress&) = default;
};

}  // namespace vfabric
