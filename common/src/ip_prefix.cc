#include "vfabric/common/ip_prefix.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

namespace vfabric {

static_assert(AF_INET == 2, "IpPrefix::AddressSize assumes AF_INET is 2");

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text, std::string* why) {
  auto fail = [&](std::string message) -> std::optional<IpPrefix> {
    if (why != nullptr) *why = std::move(message);
    return std::nullopt;
  };
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos)
    return fail("no prefix length: expected ADDRESS/LENGTH, like \"10.0.0.1/24\"");
  const std::string address(text.substr(0, slash));
  const std::string_view length_text = text.substr(slash + 1);
  IpPrefix prefix;
  if (inet_pton(AF_INET, address.c_str(), prefix.bytes.data()) == 1) {
    prefix.family = AF_INET;
  } else if (inet_pton(AF_INET6, address.c_str(), prefix.bytes.data()) == 1) {
    prefix.family = AF_INET6;
  } else {
    return fail("\"" + address + "\" is not an IPv4 or IPv6 address");
  }
  const unsigned max = prefix.family == AF_INET ? 32 : 128;
  unsigned length = 0;
  auto [end, error] =
      std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
  if (length_text.empty() || error != std::errc() || end != length_text.data() + length_text.size())
    return fail("prefix length \"" + std::string(length_text) + "\" is not a number");
  if (length > max)
    return fail("prefix length " + std::to_string(length) + " is more than " + std::to_string(max));
  prefix.length = static_cast<uint8_t>(length);
  return prefix;
}

std::optional<IpPrefix> IpPrefix::ParseAddress(std::string_view text, std::string* why) {
  const std::string address(text);
  IpPrefix prefix;
  if (inet_pton(AF_INET, address.c_str(), prefix.bytes.data()) == 1) {
    prefix.family = AF_INET;
    prefix.length = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), prefix.bytes.data()) == 1) {
    prefix.family = AF_INET6;
    prefix.length = 128;
  } else {
    if (why != nullptr) *why = "\"" + address + "\" is not an IPv4 or IPv6 address";
    return std::nullopt;
  }
  return prefix;
}

std::string IpPrefix::AddressText() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family == AF_INET ? AF_INET : AF_INET6, bytes.data(), text, sizeof text) == nullptr)
    return "?";
  return text;
}

std::string IpPrefix::ToString() const { return AddressText() + "/" + std::to_string(length); }

bool IpPrefix::IsMulticast() const {
  return family == AF_INET ? (bytes[0] & 0xf0) == 0xe0 : bytes[0] == 0xff;
}

bool IpPrefix::IsUnspecified() const {
  for (size_t i = 0; i < AddressSize(); ++i)
    if (bytes[i] != 0) return false;
  return true;
}

bool IpPrefix::IsIpv6LinkLocal() const {
  return family == AF_INET6 && bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
}

}  // namespace vfabric
