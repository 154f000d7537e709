#include "vfabric/common/mac_address.h"

#include <cstdio>

namespace vfabric {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<MacAddress> MacAddress::Parse(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddress mac;
  for (size_t i = 0; i < 6; ++i) {
    const size_t at = i * 3;
    if (i > 0 && text[at - 1] != ':') return std::nullopt;
    const int high = HexValue(text[at]);
    const int low = HexValue(text[at + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    mac.bytes[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return mac;
}

std::string MacAddress::ToString() const {
  char buffer[18];
  std::snprintf(buffer, sizeof buffer, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1],
                bytes[2], bytes[3], bytes[4], bytes[5]);
  return buffer;
}

bool MacAddress::IsBroadcast() const {
  for (uint8_t b : bytes)
    if (b != 0xff) return false;
  return true;
}

bool MacAddress::IsZero() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

uint64_t MacAddress::ToU64() const {
  uint64_t value = 0;
  for (uint8_t b : bytes) value = value << 8 | b;
  return value;
}

MacAddress MacAddress::FromU64(uint64_t value) {
  MacAddress mac;
  for (int i = 5; i >= 0; --i) {
    mac.bytes[i] = static_cast<uint8_t>(value & 0xff);
    value >>= 8;
  }
  return mac;
}

}  // namespace vfabric
