#include "vfabric/vhost_user/backend.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "vfabric/common/log.h"

namespace vfabric::vhost_user {
namespace {

uint64_t U64(std::span<const uint8_t> p, size_t at = 0) {
  uint64_t v;
  std::memcpy(&v, p.data() + at, 8);
  return v;
}
uint32_t U32(std::span<const uint8_t> p, size_t at) {
  uint32_t v;
  std::memcpy(&v, p.data() + at, 4);
  return v;
}
void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  const auto* b = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), b, b + 4);
}
std::vector<uint8_t> FromU64(uint64_t v) {
  std::vector<uint8_t> out(8);
  std::memcpy(out.data(), &v, 8);
  return out;
}
std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
MemoryRegion RegionAt(std::span<const uint8_t> p, size_t at) {
  return MemoryRegion{U64(p, at), U64(p, at + 8), U64(p, at + 16), U64(p, at + 24)};
}
// Whether a request always has a reply (REPLY_ACK does not apply to it).
bool HasReply(uint32_t request) {
  switch (request) {
    case kGetFeatures:
    case kGetProtocolFeatures:
    case kGetVringBase:
    case kGetQueueNum:
    case kGetMaxMemSlots:
    case kGetConfig:
    case kGetInflightFd:
    case kGetStatus:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view RequestName(uint32_t request) {
  switch (request) {
    case kGetFeatures:
      return "GET_FEATURES";
    case kSetFeatures:
      return "SET_FEATURES";
    case kSetOwner:
      return "SET_OWNER";
    case kResetOwner:
      return "RESET_OWNER";
    case kSetMemTable:
      return "SET_MEM_TABLE";
    case kSetLogBase:
      return "SET_LOG_BASE";
    case kSetLogFd:
      return "SET_LOG_FD";
    case kSetVringNum:
      return "SET_VRING_NUM";
    case kSetVringAddr:
      return "SET_VRING_ADDR";
    case kSetVringBase:
      return "SET_VRING_BASE";
    case kGetVringBase:
      return "GET_VRING_BASE";
    case kSetVringKick:
      return "SET_VRING_KICK";
    case kSetVringCall:
      return "SET_VRING_CALL";
    case kSetVringErr:
      return "SET_VRING_ERR";
    case kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum:
      return "GET_QUEUE_NUM";
    case kSetVringEnable:
      return "SET_VRING_ENABLE";
    case kSendRarp:
      return "SEND_RARP";
    case kNetSetMtu:
      return "NET_SET_MTU";
    case kSetBackendReqFd:
      return "SET_BACKEND_REQ_FD";
    case kIotlbMsg:
      return "IOTLB_MSG";
    case kSetVringEndian:
      return "SET_VRING_ENDIAN";
    case kGetConfig:
      return "GET_CONFIG";
    case kSetConfig:
      return "SET_CONFIG";
    case kGetInflightFd:
      return "GET_INFLIGHT_FD";
    case kSetInflightFd:
      return "SET_INFLIGHT_FD";
    case kResetDevice:
      return "RESET_DEVICE";
    case kGetMaxMemSlots:
      return "GET_MAX_MEM_SLOTS";
    case kAddMemReg:
      return "ADD_MEM_REG";
    case kRemMemReg:
      return "REM_MEM_REG";
    case kSetStatus:
      return "SET_STATUS";
    case kGetStatus:
      return "GET_STATUS";
    default:
      return "unknown request";
  }
}

namespace {

std::vector<std::string> Names(uint64_t bits, std::string_view (*name)(int)) {
  std::vector<std::string> out;
  for (int bit = 0; bit < 64; ++bit) {
    if ((bits & (uint64_t{1} << bit)) == 0) continue;
    const std::string_view known = name(bit);
    out.push_back(known.empty() ? "bit " + std::to_string(bit) : std::string(known));
  }
  return out;
}

std::string_view FeatureName(int bit) {
  static constexpr std::pair<int, std::string_view> kNames[] = {
      {0, "CSUM"},
      {1, "GUEST_CSUM"},
      {2, "CTRL_GUEST_OFFLOADS"},
      {3, "MTU"},
      {5, "MAC"},
      {6, "GSO"},
      {7, "GUEST_TSO4"},
      {8, "GUEST_TSO6"},
      {9, "GUEST_ECN"},
      {10, "GUEST_UFO"},
      {11, "HOST_TSO4"},
      {12, "HOST_TSO6"},
      {13, "HOST_ECN"},
      {14, "HOST_UFO"},
      {15, "MRG_RXBUF"},
      {16, "STATUS"},
      {17, "CTRL_VQ"},
      {18, "CTRL_RX"},
      {19, "CTRL_VLAN"},
      {20, "CTRL_RX_EXTRA"},
      {21, "GUEST_ANNOUNCE"},
      {22, "MQ"},
      {23, "CTRL_MAC_ADDR"},
      {24, "NOTIFY_ON_EMPTY"},
      {26, "LOG_ALL"},
      {27, "ANY_LAYOUT"},
      {28, "INDIRECT_DESC"},
      {29, "EVENT_IDX"},
      {30, "PROTOCOL_FEATURES"},
      {32, "VERSION_1"},
      {33, "ACCESS_PLATFORM"},
      {34, "RING_PACKED"},
      {35, "IN_ORDER"},
      {36, "ORDER_PLATFORM"},
      {37, "SR_IOV"},
      {40, "RING_RESET"},
      {53, "NOTF_COAL"},
      {57, "HASH_REPORT"},
      {60, "RSS"},
      {61, "RSC_EXT"},
      {62, "STANDBY"},
      {63, "SPEED_DUPLEX"},
  };
  for (const auto& [b, name] : kNames)
    if (b == bit) return name;
  return "";
}

std::string_view ProtocolFeatureName(int bit) {
  static constexpr std::string_view kNames[] = {"MQ",
                                                "LOG_SHMFD",
                                                "RARP",
                                                "REPLY_ACK",
                                                "MTU",
                                                "BACKEND_REQ",
                                                "CROSS_ENDIAN",
                                                "CRYPTO_SESSION",
                                                "PAGEFAULT",
                                                "CONFIG",
                                                "BACKEND_SEND_FD",
                                                "HOST_NOTIFIER",
                                                "INFLIGHT_SHMFD",
                                                "RESET_DEVICE",
                                                "INBAND_NOTIFICATIONS",
                                                "CONFIGURE_MEM_SLOTS",
                                                "STATUS",
                                                "XEN_MMAP",
                                                "SHARED_OBJECT",
                                                "DEVICE_STATE"};
  return bit >= 0 && static_cast<size_t>(bit) < std::size(kNames) ? kNames[bit] : "";
}

}  // namespace

std::vector<std::string> FeatureNames(uint64_t features) { return Names(features, FeatureName); }
std::vector<std::string> ProtocolFeatureNames(uint64_t features) {
  return Names(features, ProtocolFeatureName);
}

std::string_view ToString(Unsupported reason) {
  switch (reason) {
    case Unsupported::kMultiqueue:
      return "multiqueue";
    case Unsupported::kPackedRing:
      return "packed_ring";
  }
  return "unknown";
}

Backend::Backend(BackendOptions options) : options_(std::move(options)) {}

void Backend::Reset() {
  for (size_t i = 0; i < kRings; ++i) {
    rings_[i].queue.Detach();
    rings_[i] = Ring();
  }
  memory_.reset();
  features_ = 0;
  features_set_ = false;
  protocol_features_ = 0;
  owner_ = false;
  mtu_ = 0;
  logged_ = 0;
  ++generation_;
}

Virtqueue* Backend::ready(size_t ring) {
  Ring& r = rings_[ring];
  if (!r.enabled || !r.queue.attached() || r.queue.broken()) return nullptr;
  return &r.queue;
}

Backend::Outcome Backend::Refuse(const MessageHeader& h, const std::string& why) {
  ++refused_;
  const uint64_t bit = uint64_t{1} << (h.request < 63 ? h.request : 63);
  if ((logged_ & bit) == 0) {
    logged_ |= bit;
    VF_LOG(kWarning) << options_.name << ": " << RequestName(h.request) << " (" << h.request
                     << ") refused: " << why;
  }
  Outcome out;
  out.refused = true;
  if (HasReply(h.request)) {
    // The frontend waits for an answer it cannot be denied: hang up.
    out.close = true;
  } else if ((h.flags & kFlagNeedReply) != 0 &&
             (protocol_features_ & Bit(protocol_feature::kReplyAck)) != 0) {
    out.reply = Reply{{h.request, kVersion | kFlagReply, 8}, FromU64(1)};
  }
  return out;
}

Backend::Outcome Backend::RefuseUnsupported(const MessageHeader& h, Unsupported reason,
                                            const std::string& what) {
  ++unsupported_[static_cast<size_t>(reason)];
  const std::string fix = reason == Unsupported::kMultiqueue
                              ? "one queue pair only: give the frontend queues=1 (QEMU: "
                                "-netdev vhost-user,queues=1, no mq=on on the device)"
                              : "split rings only: turn packed rings off in the frontend "
                                "(QEMU: packed=off on the device; DPDK: packed_vq=0)";
  return Refuse(h, what + " is not supported (" + std::string(ToString(reason)) + "): " + fix);
}

Backend::Outcome Backend::Done(const MessageHeader& h) {
  Outcome out;
  if ((h.flags & kFlagNeedReply) != 0 &&
      (protocol_features_ & Bit(protocol_feature::kReplyAck)) != 0)
    out.reply = Reply{{h.request, kVersion | kFlagReply, 8}, FromU64(0)};
  return out;
}

Backend::Outcome Backend::Answer(const MessageHeader& h, std::vector<uint8_t> payload) {
  Outcome out;
  const uint32_t size = static_cast<uint32_t>(payload.size());
  out.reply = Reply{{h.request, kVersion | kFlagReply, size}, std::move(payload)};
  return out;
}

Backend::Outcome Backend::AnswerU64(const MessageHeader& h, uint64_t value) {
  return Answer(h, FromU64(value));
}

void Backend::Sync(size_t i) {
  Ring& r = rings_[i];
  ++generation_;
  if (!r.started || !r.has_addr || r.num == 0 || !memory_) {
    if (r.queue.attached()) r.base = r.queue.last_avail_idx();
    r.queue.Detach();
    return;
  }
  const uint16_t base = r.queue.attached() ? r.queue.last_avail_idx() : r.base;
  VirtqueueConfig c;
  c.num = r.num;
  c.desc_user = r.desc;
  c.avail_user = r.avail;
  c.used_user = r.used;
  c.event_idx = has(feature::kEventIdx);
  c.indirect = has(feature::kIndirectDesc);
  const Status s = r.queue.Attach(memory_.get(), c, base);
  if (!s.ok()) {
    r.base = base;
    VF_LOG(kWarning) << options_.name << ": ring " << i << " stopped: " << s.message();
  }
}

void Backend::StopRing(size_t i) {
  Ring& r = rings_[i];
  if (r.queue.attached()) {
    r.queue.Publish();
    r.base = r.queue.last_avail_idx();
  }
  r.queue.Detach();
  r.started = false;
  r.kick.Reset();
  ++generation_;
}

Backend::Outcome Backend::Install(const MessageHeader& h, GuestMemory memory) {
  // The rings move to the new table before the old one goes: between
  // batches on the owning thread, so no pointer into the old table is held
  // anywhere else.
  auto next = std::make_unique<GuestMemory>(std::move(memory));
  std::swap(memory_, next);
  for (size_t i = 0; i < kRings; ++i) {
    if (rings_[i].queue.attached()) rings_[i].base = rings_[i].queue.last_avail_idx();
    rings_[i].queue.Detach();
    Sync(i);
  }
  next.reset();  // the old table (mappings the new one does not share) goes
  return Done(h);
}

Backend::Outcome Backend::SetMemTable(const MessageHeader& h, std::span<const uint8_t> p,
                                      std::span<UniqueFd> fds) {
  if (p.size() < 8) return Refuse(h, "payload of " + std::to_string(p.size()) + " bytes");
  const uint32_t n = U32(p, 0);
  if (n > kMaxMemTableRegions)
    return Refuse(h,
                  std::to_string(n) + " regions, at most " + std::to_string(kMaxMemTableRegions));
  if (p.size() != 8 + n * kMemoryRegionSize)
    return Refuse(h, "payload of " + std::to_string(p.size()) + " bytes for " + std::to_string(n) +
                         " regions");
  if (fds.size() != n)
    return Refuse(h, std::to_string(fds.size()) + " fds for " + std::to_string(n) + " regions");
  std::vector<MemoryRegion> regions;
  for (uint32_t i = 0; i < n; ++i) regions.push_back(RegionAt(p, 8 + i * kMemoryRegionSize));
  auto memory = GuestMemory::Map(regions, {fds.data(), fds.size()});
  if (!memory.ok()) return Refuse(h, memory.status().message());
  return Install(h, std::move(memory).value());
}

Backend::Outcome Backend::VringFd(const MessageHeader& h, std::span<const uint8_t> p,
                                  std::span<UniqueFd> fds) {
  if (p.size() != 8) return Refuse(h, "payload of " + std::to_string(p.size()) + " bytes");
  const uint64_t v = U64(p);
  const uint64_t index = v & kVringIndexMask;
  if (index >= kRings || (v & ~(kVringIndexMask | kVringNoFd)) != 0)
    return Refuse(h, "ring " + std::to_string(index) + " (value " + std::to_string(v) + ")");
  const bool no_fd = (v & kVringNoFd) != 0;
  if (fds.size() != (no_fd ? 0u : 1u))
    return Refuse(h, std::to_string(fds.size()) + " fds" + (no_fd ? " with NOFD" : ""));
  Ring& r = rings_[index];
  UniqueFd fd = no_fd ? UniqueFd() : std::move(fds[0]);
  switch (h.request) {
    case kSetVringKick:
      // Without a kick fd the ring would have to be polled always: not
      // offered (no VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS), refused.
      if (no_fd) return Refuse(h, "no kick fd (polling mode is not supported)");
      r.kick = std::move(fd);
      r.started = true;
      if (!has(feature::kProtocolFeatures)) r.enabled = true;
      Sync(index);
      break;
    case kSetVringCall:
      r.call = std::move(fd);
      ++generation_;
      break;
    default:
      r.err = std::move(fd);
      break;
  }
  return Done(h);
}

Backend::Outcome Backend::Handle(const MessageHeader& h, std::span<const uint8_t> p,
                                 std::span<UniqueFd> fds) {
  ++messages_;
  if ((h.flags & kVersionMask) != kVersion || (h.flags & kFlagReply) != 0)
    return Refuse(h, "flags " + Hex(h.flags) + " (version 1, no REPLY bit)");
  if (h.size != p.size()) return Refuse(h, "size field disagrees with the payload");
  // Requests that carry fds say so below; any other with fds is refused.
  const bool takes_fds = h.request == kSetMemTable || h.request == kSetVringKick ||
                         h.request == kSetVringCall || h.request == kSetVringErr ||
                         h.request == kAddMemReg || h.request == kRemMemReg ||
                         h.request == kSetLogBase || h.request == kSetLogFd ||
                         h.request == kSetBackendReqFd || h.request == kSetInflightFd;
  if (!takes_fds && !fds.empty()) return Refuse(h, std::to_string(fds.size()) + " unexpected fds");
  auto ring_state = [&](uint32_t* index, uint32_t* num) {
    if (p.size() != kVringStateSize) return false;
    *index = U32(p, 0);
    *num = U32(p, 4);
    return *index < kRings;
  };
  // A ring of a second queue pair (indices 2..255, as a multiqueue frontend
  // numbers them): refused as multiqueue rather than as a bad index.
  const bool other_queue_pair = [&] {
    switch (h.request) {
      case kSetVringNum:
      case kSetVringBase:
      case kGetVringBase:
      case kSetVringEnable:
      case kSetVringAddr:
        return p.size() >= 4 && U32(p, 0) >= kRings && U32(p, 0) <= kVringIndexMask;
      case kSetVringKick:
      case kSetVringCall:
      case kSetVringErr:
        return p.size() == 8 && (U64(p) & ~(kVringIndexMask | kVringNoFd)) == 0 &&
               (U64(p) & kVringIndexMask) >= kRings;
      default:
        return false;
    }
  }();
  if (other_queue_pair) {
    const uint64_t index =
        h.request == kSetVringKick || h.request == kSetVringCall || h.request == kSetVringErr
            ? (U64(p) & kVringIndexMask)
            : U32(p, 0);
    return RefuseUnsupported(h, Unsupported::kMultiqueue, "ring " + std::to_string(index));
  }
  switch (h.request) {
    case kGetFeatures:
      if (!p.empty()) return Refuse(h, "payload");
      return AnswerU64(h, options_.features);
    case kSetFeatures: {
      if (p.size() != 8) return Refuse(h, "payload of " + std::to_string(p.size()) + " bytes");
      const uint64_t f = U64(p);
      if ((f & ~options_.features & Bit(feature::kRingPacked)) != 0)
        return RefuseUnsupported(h, Unsupported::kPackedRing, "VIRTIO_F_RING_PACKED");
      if ((f & ~options_.features & Bit(feature::kMq)) != 0)
        return RefuseUnsupported(h, Unsupported::kMultiqueue, "VIRTIO_NET_F_MQ");
      if ((f & ~options_.features) != 0)
        return Refuse(h, "features " + Hex(f & ~options_.features) + " were not offered");
      features_ = f;
      features_set_ = true;
      for (size_t i = 0; i < kRings; ++i) Sync(i);  // EVENT_IDX, INDIRECT_DESC may change
      return Done(h);
    }
    case kGetProtocolFeatures:
      if (!p.empty()) return Refuse(h, "payload");
      return AnswerU64(h, options_.protocol_features);
    case kSetProtocolFeatures: {
      if (p.size() != 8) return Refuse(h, "payload of " + std::to_string(p.size()) + " bytes");
      const uint64_t f = U64(p);
      if ((f & ~options_.protocol_features & Bit(protocol_feature::kMq)) != 0)
        return RefuseUnsupported(h, Unsupported::kMultiqueue, "VHOST_USER_PROTOCOL_F_MQ");
      if ((f & ~options_.protocol_features) != 0)
        return Refuse(
            h, "protocol features " + Hex(f & ~options_.protocol_features) + " were not offered");
      protocol_features_ = f;
      return Done(h);
    }
    case kSetOwner:
      owner_ = true;
      return Done(h);
    case kResetOwner: {
      // Like a new connection, but the protocol features stay (REPLY_ACK).
      const uint64_t protocol = protocol_features_;
      const uint64_t logged = logged_;
      Reset();
      protocol_features_ = protocol;
      logged_ = logged;
      return Done(h);
    }
    case kSetMemTable:
      return SetMemTable(h, p, fds);
    case kGetMaxMemSlots:
      if (!p.empty()) return Refuse(h, "payload");
      return AnswerU64(h, GuestMemory::kMaxRegions);
    case kAddMemReg: {
      if (p.size() != kSingleRegionSize) return Refuse(h, "payload size");
      if (fds.size() != 1) return Refuse(h, std::to_string(fds.size()) + " fds");
      const GuestMemory empty;
      const GuestMemory& current = memory_ ? *memory_ : empty;
      auto memory = current.WithRegion(RegionAt(p, 8), fds[0]);
      if (!memory.ok()) return Refuse(h, memory.status().message());
      return Install(h, std::move(memory).value());
    }
    case kRemMemReg: {
      if (p.size() != kSingleRegionSize) return Refuse(h, "payload size");
      if (fds.size() > 1) return Refuse(h, std::to_string(fds.size()) + " fds");
      if (!memory_) return Refuse(h, "no memory table");
      auto memory = memory_->WithoutRegion(RegionAt(p, 8));
      if (!memory.ok()) return Refuse(h, memory.status().message());
      return Install(h, std::move(memory).value());
    }
    case kSetVringNum: {
      uint32_t index, num;
      if (!ring_state(&index, &num)) return Refuse(h, "payload or ring index");
      if (num == 0 || num > kMaxQueueSize || (num & (num - 1)) != 0)
        return Refuse(h, "ring size " + std::to_string(num));
      rings_[index].num = num;
      Sync(index);
      return Done(h);
    }
    case kSetVringAddr: {
      if (p.size() != kVringAddrSize) return Refuse(h, "payload size");
      const uint32_t index = U32(p, 0);
      if (index >= kRings) return Refuse(h, "ring " + std::to_string(index));
      if ((U32(p, 4) & 1) != 0) return Refuse(h, "dirty logging (VHOST_VRING_F_LOG)");
      Ring& r = rings_[index];
      // Checked now (where a REPLY_ACK can say no), attached when started.
      if (!memory_) return Refuse(h, "before SET_MEM_TABLE");
      VirtqueueConfig c;
      c.num = r.num == 0 ? 1 : r.num;
      c.desc_user = U64(p, 8);
      c.used_user = U64(p, 16);
      c.avail_user = U64(p, 24);
      Virtqueue probe;
      const Status s = probe.Attach(memory_.get(), c, 0);
      if (!s.ok()) return Refuse(h, "ring " + std::to_string(index) + ": " + s.message());
      r.desc = c.desc_user;
      r.used = c.used_user;
      r.avail = c.avail_user;
      r.has_addr = true;
      Sync(index);
      return Done(h);
    }
    case kSetVringBase: {
      uint32_t index, num;
      if (!ring_state(&index, &num)) return Refuse(h, "payload or ring index");
      if (num > 0xffff) return Refuse(h, "base " + std::to_string(num));
      rings_[index].base = static_cast<uint16_t>(num);
      if (rings_[index].queue.attached()) {
        rings_[index].queue.Detach();
        Sync(index);
      }
      return Done(h);
    }
    case kGetVringBase: {
      uint32_t index, num;
      if (!ring_state(&index, &num)) return Refuse(h, "payload or ring index");
      StopRing(index);
      std::vector<uint8_t> out;
      PutU32(&out, index);
      PutU32(&out, rings_[index].base);
      return Answer(h, std::move(out));
    }
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr:
      return VringFd(h, p, fds);
    case kGetQueueNum:
      if (!p.empty()) return Refuse(h, "payload");
      return AnswerU64(h, kRings / 2);
    case kSetVringEnable: {
      uint32_t index, num;
      if (!ring_state(&index, &num) || num > 1) return Refuse(h, "payload or ring index");
      rings_[index].enabled = num == 1;
      ++generation_;
      return Done(h);
    }
    case kNetSetMtu: {
      if (p.size() != 8) return Refuse(h, "payload size");
      const uint64_t mtu = U64(p);
      if (mtu < 68 || mtu > 65535) return Refuse(h, "MTU " + std::to_string(mtu));
      mtu_ = static_cast<uint32_t>(mtu);
      return Done(h);
    }
    case kSetLogBase:
    case kSetLogFd:
      return Refuse(h, "live migration (dirty page logging) is not supported");
    default:
      return Refuse(h, "not supported by this backend");
  }
}

}  // namespace vfabric::vhost_user
