// Frames as the switch holds them: a preallocated buffer with headroom, the
// Ethernet frame in it, and the virtio_net_hdr metadata (GSO and checksum
// offload) that travels with the frame from a tap to a tap.
//
// A FramePool owns one arena of fixed-size buffers, allocated once when the
// switch is created; Alloc()/Free() are a free-list stack, so nothing on the
// datapath allocates memory. Every buffer has kFrameHeadroom bytes in front
// of the frame: room to read a virtio_net_hdr in front of it and to push a
// VLAN tag. A pool belongs to the datapath thread (no locking).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "vfabric/common/status.h"

namespace vfabric::bridge {

// struct virtio_net_hdr_v1 (12 bytes, little-endian as on x86 and in the
// virtio 1.0 layout taps use with TUNSETVNETHDRSZ 12); a 10-byte header is
// the same without num_buffers.
struct VnetHdr {
  static constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
  static constexpr uint8_t kDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
  static constexpr uint8_t kGsoNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
  static constexpr uint8_t kGsoTcpV4 = 1;   // VIRTIO_NET_HDR_GSO_TCPV4
  static constexpr uint8_t kGsoUdp = 3;     // VIRTIO_NET_HDR_GSO_UDP
  static constexpr uint8_t kGsoTcpV6 = 4;   // VIRTIO_NET_HDR_GSO_TCPV6
  static constexpr uint8_t kGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4
  static constexpr uint8_t kGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN

  uint8_t flags = 0;
  uint8_t gso_type = kGsoNone;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  uint16_t num_buffers = 0;

  bool needs_csum() const { return (flags & kNeedsCsum) != 0; }
  bool is_gso() const { return (gso_type & ~kGsoEcn) != kGsoNone; }
  bool has_offload() const { return needs_csum() || is_gso(); }
};
static_assert(sizeof(VnetHdr) == 12);

inline constexpr size_t kFrameHeadroom = 64;  // >= 12 (vnet hdr) + 4 (VLAN tag), cache aligned
inline constexpr size_t kMinFrameBuffer = 128;

struct Frame {
  uint8_t* data = nullptr;  // the destination MAC
  uint32_t size = 0;        // bytes from data (no FCS)
  uint32_t capacity = 0;    // bytes from data to the end of the buffer
  VnetHdr vnet;             // offload metadata (all zero when none)

  std::span<uint8_t> bytes() { return {data, size}; }
  std::span<const uint8_t> bytes() const { return {data, size}; }
  // Bytes available in front of data.
  size_t headroom() const { return static_cast<size_t>(data - base); }
  // Puts data back at the buffer's standard position with size 0 and no
  // metadata.
  void Reset() {
    data = base + kFrameHeadroom;
    size = 0;
    capacity = buffer_size - static_cast<uint32_t>(kFrameHeadroom);
    vnet = VnetHdr{};
  }

  uint8_t* base = nullptr;   // the buffer
  uint32_t buffer_size = 0;  // headroom included
};

class FramePool {
 public:
  // `count` buffers of `buffer_size` bytes each (kFrameHeadroom included).
  static Result<std::unique_ptr<FramePool>> Create(size_t count, size_t buffer_size);
  ~FramePool();
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  // A reset frame, or nullptr when every buffer is in use.
  Frame* Alloc() {
    if (free_count_ == 0) return nullptr;
    Frame* f = free_[--free_count_];
    f->Reset();
    return f;
  }
  // REQUIRES: `frame` came from this pool's Alloc() and is not free.
  void Free(Frame* frame) { free_[free_count_++] = frame; }

  size_t available() const { return free_count_; }
  size_t count() const { return count_; }
  size_t buffer_size() const { return buffer_size_; }

 private:
  FramePool() = default;
  size_t count_ = 0;
  size_t buffer_size_ = 0;
  uint8_t* arena_ = nullptr;
  std::unique_ptr<Frame[]> frames_;
  std::unique_ptr<Frame*[]> free_;
  size_t free_count_ = 0;
};

}  // namespace vfabric::bridge
