// The vhost-user wire format (QEMU's docs/interop/vhost-user.rst): message
// header, request numbers, payload layouts, feature bits. Little-endian as
// the hosts it runs on; payloads are read with memcpy, never cast.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vfabric::vhost_user {

// ---- header ----
struct MessageHeader {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;  // payload bytes that follow
};
inline constexpr size_t kHeaderSize = 12;
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;
// No request this backend knows has a payload near this; a larger size is
// a broken or hostile frontend, and the stream cannot be trusted after it.
inline constexpr uint32_t kMaxPayload = 4096;
// fds one message may carry (SCM_RIGHTS); SET_MEM_TABLE carries up to 8.
inline constexpr size_t kMaxFds = 8;

// ---- requests, frontend to backend ----
enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kSetBackendReqFd = 21,
  kIotlbMsg = 22,
  kSetVringEndian = 23,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
  kResetDevice = 34,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
  kSetStatus = 39,
  kGetStatus = 40,
};
std::string_view RequestName(uint32_t request);  // "SET_MEM_TABLE", or "request N"
// The names of the bits set in a virtio feature word, as the virtio spec and
// vhost-user name them without their prefix ("CSUM", "MRG_RXBUF",
// "EVENT_IDX", "PROTOCOL_FEATURES", "VERSION_1"), lowest bit first; a bit
// without a name as "bit N".
std::vector<std::string> FeatureNames(uint64_t features);
// The same for vhost-user protocol features ("REPLY_ACK", "MTU", ...).
std::vector<std::string> ProtocolFeatureNames(uint64_t features);

// ---- payloads ----
// u64 (features, KICK/CALL/ERR's index and flags, replies).
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 1u << 8;  // VHOST_USER_VRING_NOFD_MASK
// struct vhost_vring_state: index u32, num u32.
inline constexpr size_t kVringStateSize = 8;
// struct vhost_vring_addr: index u32, flags u32, desc u64, used u64, avail u64, log u64.
inline constexpr size_t kVringAddrSize = 40;
// Memory table: nregions u32, padding u32, then regions of 4 u64 each
// (guest_phys_addr, memory_size, userspace_addr, mmap_offset).
inline constexpr size_t kMemoryRegionSize = 32;
inline constexpr size_t kMaxMemTableRegions = 8;  // VHOST_MEMORY_BASELINE_NREGIONS
// ADD_MEM_REG / REM_MEM_REG: padding u64, one region.
inline constexpr size_t kSingleRegionSize = 8 + kMemoryRegionSize;
// SET_LOG_BASE: mmap_size u64, mmap_offset u64.

// ---- feature bits ----
namespace feature {
inline constexpr int kCsum = 0;           // VIRTIO_NET_F_CSUM (the guest sends partial checksums)
inline constexpr int kGuestCsum = 1;      // VIRTIO_NET_F_GUEST_CSUM
inline constexpr int kMtu = 3;            // VIRTIO_NET_F_MTU
inline constexpr int kGuestTso4 = 7;      // VIRTIO_NET_F_GUEST_TSO4
inline constexpr int kGuestTso6 = 8;      // VIRTIO_NET_F_GUEST_TSO6
inline constexpr int kGuestEcn = 9;       // VIRTIO_NET_F_GUEST_ECN
inline constexpr int kGuestUfo = 10;      // VIRTIO_NET_F_GUEST_UFO
inline constexpr int kHostTso4 = 11;      // VIRTIO_NET_F_HOST_TSO4
inline constexpr int kHostTso6 = 12;      // VIRTIO_NET_F_HOST_TSO6
inline constexpr int kHostEcn = 13;       // VIRTIO_NET_F_HOST_ECN
inline constexpr int kHostUfo = 14;       // VIRTIO_NET_F_HOST_UFO
inline constexpr int kMrgRxbuf = 15;      // VIRTIO_NET_F_MRG_RXBUF
inline constexpr int kMq = 22;            // VIRTIO_NET_F_MQ
inline constexpr int kIndirectDesc = 28;  // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr int kEventIdx = 29;      // VIRTIO_RING_F_EVENT_IDX
inline constexpr int kProtocolFeatures = 30;  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr int kVersion1 = 32;          // VIRTIO_F_VERSION_1
inline constexpr int kRingPacked = 34;        // VIRTIO_F_RING_PACKED
inline constexpr int kLogAll = 26;            // VHOST_F_LOG_ALL (live migration)
}  // namespace feature

namespace protocol_feature {
inline constexpr int kMq = 0;
inline constexpr int kLogShmfd = 1;
inline constexpr int kRarp = 2;
inline constexpr int kReplyAck = 3;
inline constexpr int kMtu = 4;
inline constexpr int kBackendReq = 5;
inline constexpr int kConfig = 9;
inline constexpr int kConfigureMemSlots = 15;
inline constexpr int kStatus = 16;
}  // namespace protocol_feature

constexpr uint64_t Bit(int n) { return uint64_t{1} << n; }

}  // namespace vfabric::vhost_user
