// An interface address with its prefix length, as `ip addr` writes it:
// "10.0.0.1/24", "fd00::1/64". IPv4 or IPv6; the textual form is the
// canonical one (inet_ntop), so two spellings of one address compare equal.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfabric {

struct IpPrefix {
  int family = 0;                   // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // network byte order; AF_INET uses the first 4
  uint8_t length = 0;               // prefix length: 0..32 or 0..128

  // ADDRESS/LENGTH, both required. On failure, `why` (optional) says what is
  // wrong ("prefix length 33 is more than 32").
  static std::optional<IpPrefix> Parse(std::string_view text, std::string* why = nullptr);
  // An address alone ("192.0.2.1", "2001:db8::1"), as the full-length prefix
  // (/32, /128): a host address such as a VXLAN tunnel endpoint.
  static std::optional<IpPrefix> ParseAddress(std::string_view text, std::string* why = nullptr);
  std::string ToString() const;     // "10.0.0.1/24"
  std::string AddressText() const;  // "10.0.0.1"
  size_t AddressSize() const { return family == 2 /* AF_INET */ ? 4 : 16; }
  bool IsMulticast() const;      // 224.0.0.0/4, ff00::/8
  bool IsUnspecified() const;    // 0.0.0.0, ::
  bool IsIpv6LinkLocal() const;  // fe80::/10
  // The same address (whatever the prefix length).
  bool SameAddress(const IpPrefix& other) const {
    return family == other.family && bytes == other.bytes;
  }

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;
};

}  // namespace vfabric
