#include "vfabric/bridge/checksum.h"

#include <cstring>

namespace vfabric::bridge {

uint32_t OnesComplementAdd(std::span<const uint8_t> bytes, uint32_t sum) {
  // 64-bit accumulation of big-endian 16-bit words, 4 words at a time.
  uint64_t acc = sum;
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    // Sum the four 16-bit words in network order: byte-swap to host order.
    w = __builtin_bswap64(w);
    acc += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    acc += static_cast<uint64_t>(p[0] << 8 | p[1]);
    p += 2;
    n -= 2;
  }
  if (n == 1) acc += static_cast<uint64_t>(p[0] << 8);
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

uint16_t FoldChecksum(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

bool CompleteChecksum(Frame& frame) {
  if (!frame.vnet.needs_csum()) return true;
  const size_t start = frame.vnet.csum_start;
  const size_t field = start + frame.vnet.csum_offset;
  if (start >= frame.size || field + 2 > frame.size) return false;
  const uint32_t sum = OnesComplementAdd({frame.data + start, frame.size - start});
  uint16_t folded = static_cast<uint16_t>(~FoldChecksum(sum));
  // As the kernel's csum_fold for UDP: a computed 0 is sent as 0xffff
  // (0 means "no checksum" in UDP over IPv4); for TCP both encode the same.
  if (folded == 0) folded = 0xffff;
  frame.data[field] = static_cast<uint8_t>(folded >> 8);
  frame.data[field + 1] = static_cast<uint8_t>(folded & 0xff);
  frame.vnet.flags =
      static_cast<uint8_t>((frame.vnet.flags & ~VnetHdr::kNeedsCsum) | VnetHdr::kDataValid);
  return true;
}

}  // namespace vfabric::bridge
