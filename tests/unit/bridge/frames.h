// Frame builders for the bridge tests.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "vfabric/common/mac_address.h"

namespace vfabric::bridge::testing {

inline MacAddress Mac(uint64_t v) { return MacAddress::FromU64(v); }
inline const MacAddress kBroadcast = MacAddress::FromU64(0xffffffffffffull);

// dst, src, [802.1Q tag], ethertype, payload (filled to `payload_len`).
inline std::vector<uint8_t> EthFrame(const MacAddress& dst, const MacAddress& src,
                                     std::optional<uint16_t> tci = std::nullopt,
                                     uint16_t ethertype = 0x88b5, size_t payload_len = 46,
                                     uint16_t tpid = 0x8100) {
  std::vector<uint8_t> f(dst.bytes.begin(), dst.bytes.end());
  f.insert(f.end(), src.bytes.begin(), src.bytes.end());
  if (tci) {
    f.push_back(static_cast<uint8_t>(tpid >> 8));
    f.push_back(static_cast<uint8_t>(tpid & 0xff));
    f.push_back(static_cast<uint8_t>(*tci >> 8));
    f.push_back(static_cast<uint8_t>(*tci & 0xff));
  }
  f.push_back(static_cast<uint8_t>(ethertype >> 8));
  f.push_back(static_cast<uint8_t>(ethertype & 0xff));
  for (size_t i = 0; i < payload_len; ++i) f.push_back(static_cast<uint8_t>(i * 7 + 1));
  return f;
}

// The frame's 802.1Q TCI, if it carries a C-tag.
inline std::optional<uint16_t> TagOf(const std::vector<uint8_t>& f) {
  if (f.size() >= 16 && f[12] == 0x81 && f[13] == 0x00)
    return static_cast<uint16_t>(f[14] << 8 | f[15]);
  return std::nullopt;
}

}  // namespace vfabric::bridge::testing
