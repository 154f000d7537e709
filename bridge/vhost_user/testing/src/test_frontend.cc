#include "vfabric/vhost_user/testing/test_frontend.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

namespace vfabric::vhost_user::testing {

std::vector<uint8_t> U64(uint64_t v) {
  std::vector<uint8_t> out(8);
  std::memcpy(out.data(), &v, 8);
  return out;
}
std::vector<uint8_t> State(uint32_t index, uint32_t num) {
  std::vector<uint8_t> out(8);
  std::memcpy(out.data(), &index, 4);
  std::memcpy(out.data() + 4, &num, 4);
  return out;
}

namespace {

bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

Result<std::unique_ptr<TestFrontend>> TestFrontend::Create(UniqueFd socket,
                                                           const TestFrontendOptions& options,
                                                           std::function<void()> pump) {
  auto ram = GuestRam::Create(options.regions, options.region_size);
  if (!ram.ok()) return ram.status();
  std::unique_ptr<TestFrontend> f(
      new TestFrontend(std::move(socket), std::move(ram).value(), options, std::move(pump)));
  for (int i = 0; i < 2; ++i) {
    f->kick_[i].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    f->call_[i].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!f->kick_[i] || !f->call_[i]) return Status::FromErrno("eventfd", errno);
  }
  return f;
}

TestFrontend::TestFrontend(UniqueFd socket, GuestRam ram, const TestFrontendOptions& options,
                           std::function<void()> pump)
    : socket_(std::move(socket)), ram_(std::move(ram)), options_(options), pump_(std::move(pump)) {}

TestFrontend::~TestFrontend() = default;

size_t TestFrontend::header_size() const {
  return (features_ & (Bit(feature::kMrgRxbuf) | Bit(feature::kVersion1))) != 0 ? 12 : 10;
}

Status TestFrontend::Send(uint32_t request, std::span<const uint8_t> payload,
                          std::span<const int> fds, uint32_t flags) {
  uint8_t head[kHeaderSize];
  const uint32_t f = kVersion | flags;
  const uint32_t size = static_cast<uint32_t>(payload.size());
  std::memcpy(head, &request, 4);
  std::memcpy(head + 4, &f, 4);
  std::memcpy(head + 8, &size, 4);
  iovec iov[2] = {{head, kHeaderSize}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 64)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const ssize_t sent = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
  if (sent < 0) return Status::FromErrno("frontend: sendmsg", errno);
  if (static_cast<size_t>(sent) != kHeaderSize + payload.size())
    return Status::Error("frontend: short sendmsg");
  return Status::Ok();
}

Result<Reply> TestFrontend::Receive() {
  std::vector<uint8_t> buf;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  size_t want = kHeaderSize;
  while (buf.size() < want) {
    uint8_t chunk[4096];
    const ssize_t got =
        ::recv(socket_.get(), chunk, std::min(sizeof chunk, want - buf.size()), MSG_DONTWAIT);
    if (got == 0) return Status::Error("frontend: the backend closed the connection", EPIPE);
    if (got < 0) {
      if (errno != EAGAIN && errno != EINTR) return Status::FromErrno("frontend: recv", errno);
      if (std::chrono::steady_clock::now() > deadline)
        return Status::Error("frontend: no reply within 5 s", ETIMEDOUT);
      if (pump_) {
        pump_();
      } else {
        pollfd p{socket_.get(), POLLIN, 0};
        ::poll(&p, 1, 10);
      }
      continue;
    }
    buf.insert(buf.end(), chunk, chunk + got);
    if (buf.size() == kHeaderSize) {
      uint32_t size;
      std::memcpy(&size, buf.data() + 8, 4);
      if (size > kMaxPayload) return Status::Error("frontend: reply too large");
      want = kHeaderSize + size;
    }
  }
  Reply r;
  std::memcpy(&r.header.request, buf.data(), 4);
  std::memcpy(&r.header.flags, buf.data() + 4, 4);
  std::memcpy(&r.header.size, buf.data() + 8, 4);
  r.payload.assign(buf.begin() + kHeaderSize, buf.end());
  return r;
}

Result<uint64_t> TestFrontend::GetU64(uint32_t request) {
  VF_RETURN_IF_ERROR(Send(request, {}, {}, 0));
  auto r = Receive();
  if (!r.ok()) return r.status();
  if (r->header.request != request || r->payload.size() != 8)
    return Status::Error("frontend: unexpected reply to " + std::string(RequestName(request)));
  uint64_t v;
  std::memcpy(&v, r->payload.data(), 8);
  return v;
}

Result<uint64_t> TestFrontend::Set(uint32_t request, std::span<const uint8_t> payload,
                                   std::span<const int> fds) {
  const bool ack = (protocol_features_ & Bit(protocol_feature::kReplyAck)) != 0;
  VF_RETURN_IF_ERROR(Send(request, payload, fds, ack ? kFlagNeedReply : 0));
  if (!ack) return uint64_t{0};
  auto r = Receive();
  if (!r.ok()) return r.status();
  if (r->header.request != request || r->payload.size() != 8)
    return Status::Error("frontend: unexpected ack to " + std::string(RequestName(request)));
  uint64_t v;
  std::memcpy(&v, r->payload.data(), 8);
  return v;
}

namespace {
Status Acked(Result<uint64_t> r, uint32_t request) {
  if (!r.ok()) return r.status();
  if (*r != 0) return Status::Error("backend refused " + std::string(RequestName(request)));
  return Status::Ok();
}
}  // namespace

Status TestFrontend::SendMemTable() {
  const auto& regions = ram_.regions();
  std::vector<uint8_t> p(8 + kMemoryRegionSize * regions.size(), 0);
  const uint32_t n = static_cast<uint32_t>(regions.size());
  std::memcpy(p.data(), &n, 4);
  std::vector<int> fds;
  for (size_t i = 0; i < regions.size(); ++i) {
    std::memcpy(p.data() + 8 + kMemoryRegionSize * i, &regions[i], kMemoryRegionSize);
    fds.push_back(ram_.fds()[i].get());
  }
  return Acked(Set(kSetMemTable, p, fds), kSetMemTable);
}

Status TestFrontend::SetUpRing(uint32_t ring, uint16_t base) {
  DriverQueue& q = *queues_[ring];
  VF_RETURN_IF_ERROR(Acked(Set(kSetVringNum, State(ring, q.num())), kSetVringNum));
  VF_RETURN_IF_ERROR(Acked(Set(kSetVringBase, State(ring, base)), kSetVringBase));
  const VirtqueueConfig c = q.config();
  std::vector<uint8_t> addr(kVringAddrSize, 0);
  std::memcpy(addr.data(), &ring, 4);
  std::memcpy(addr.data() + 8, &c.desc_user, 8);
  std::memcpy(addr.data() + 16, &c.used_user, 8);
  std::memcpy(addr.data() + 24, &c.avail_user, 8);
  VF_RETURN_IF_ERROR(Acked(Set(kSetVringAddr, addr), kSetVringAddr));
  const int kick = kick_[ring].get();
  VF_RETURN_IF_ERROR(Acked(Set(kSetVringKick, U64(ring), {&kick, 1}), kSetVringKick));
  const int call = call_[ring].get();
  VF_RETURN_IF_ERROR(Acked(Set(kSetVringCall, U64(ring), {&call, 1}), kSetVringCall));
  return Status::Ok();
}

Status TestFrontend::Enable(uint32_t ring, bool on) {
  return Acked(Set(kSetVringEnable, State(ring, on ? 1 : 0)), kSetVringEnable);
}

Result<uint32_t> TestFrontend::GetVringBase(uint32_t ring) {
  VF_RETURN_IF_ERROR(Send(kGetVringBase, State(ring, 0), {}, 0));
  auto r = Receive();
  if (!r.ok()) return r.status();
  if (r->payload.size() != 8) return Status::Error("frontend: bad GET_VRING_BASE reply");
  uint32_t base;
  std::memcpy(&base, r->payload.data() + 4, 4);
  return base;
}

Status TestFrontend::Start() {
  auto offered = GetU64(kGetFeatures);
  if (!offered.ok()) return offered.status();
  features_ = *offered & options_.features;
  if ((features_ & Bit(feature::kProtocolFeatures)) != 0) {
    auto protocol = GetU64(kGetProtocolFeatures);
    if (!protocol.ok()) return protocol.status();
    const uint64_t want = *protocol & options_.protocol_features;
    // SET_PROTOCOL_FEATURES itself is sent before REPLY_ACK is in force.
    VF_RETURN_IF_ERROR(Send(kSetProtocolFeatures, U64(want), {}, 0));
    protocol_features_ = want;
  }
  VF_RETURN_IF_ERROR(Acked(Set(kSetOwner), kSetOwner));
  VF_RETURN_IF_ERROR(Acked(Set(kSetFeatures, U64(features_)), kSetFeatures));
  VF_RETURN_IF_ERROR(SendMemTable());
  const bool event_idx = (features_ & Bit(feature::kEventIdx)) != 0;
  const bool indirect = (features_ & Bit(feature::kIndirectDesc)) != 0;
  for (uint32_t i = 0; i < 2; ++i) {
    if (!queues_[i])
      queues_[i] = std::make_unique<DriverQueue>(&ram_, options_.queue_size, event_idx, indirect);
    VF_RETURN_IF_ERROR(SetUpRing(i));
  }
  if (options_.enable && (features_ & Bit(feature::kProtocolFeatures)) != 0) {
    VF_RETURN_IF_ERROR(Enable(0, true));
    VF_RETURN_IF_ERROR(Enable(1, true));
  }
  return Status::Ok();
}

void TestFrontend::Kick(uint32_t ring) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(kick_[ring].get(), &one, sizeof one);
  ++kicks_;
  kicked_at_[ring] = queues_[ring]->avail_idx();
}

Status TestFrontend::Transmit(std::span<const uint8_t> frame, std::span<const uint8_t> header,
                              bool split, bool indirect) {
  if (!queues_[1]) return Status::Error("frontend: not started");
  ReclaimTransmitted();
  std::vector<uint8_t> hdr(header_size(), 0);
  if (!header.empty()) std::memcpy(hdr.data(), header.data(), std::min(header.size(), hdr.size()));
  std::vector<std::vector<uint8_t>> buffers;
  if (split) {
    buffers.push_back(hdr);
    buffers.emplace_back(frame.begin(), frame.end());
  } else {
    hdr.insert(hdr.end(), frame.begin(), frame.end());
    buffers.push_back(std::move(hdr));
  }
  DriverQueue& q = *queues_[1];
  const uint16_t old_idx = q.avail_idx();
  if (!q.AddOut(buffers, indirect)) return Status::Error("frontend: transmit ring full", ENOBUFS);
  // Kick unless the backend asked not to (VRING_USED_F_NO_NOTIFY, or
  // avail_event with EVENT_IDX).
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  const bool event_idx = (features_ & Bit(feature::kEventIdx)) != 0;
  const bool kick = event_idx ? NeedEvent(q.avail_event(), q.avail_idx(), old_idx)
                              : (q.used_flags() & kUsedNoNotify) == 0;
  if (kick) Kick(1);
  return Status::Ok();
}

size_t TestFrontend::ReclaimTransmitted() {
  size_t n = 0;
  while (queues_[1] && queues_[1]->TakeUsed()) ++n;
  return n;
}

Status TestFrontend::PostReceiveBuffers(size_t count, uint32_t size) {
  if (!queues_[0]) return Status::Error("frontend: not started");
  for (size_t i = 0; i < count; ++i) {
    const uint32_t sizes[] = {size};
    if (!queues_[0]->AddIn(sizes)) return Status::Error("frontend: receive ring full", ENOBUFS);
  }
  return Status::Ok();
}

std::vector<GuestPacket> TestFrontend::TakeReceived() {
  std::vector<GuestPacket> out;
  if (!queues_[0]) return out;
  DriverQueue& q = *queues_[0];
  const size_t hs = header_size();
  const bool mergeable = (features_ & Bit(feature::kMrgRxbuf)) != 0;
  while (auto u = q.TakeUsed()) {
    std::vector<uint8_t> bytes = q.ReadIn(static_cast<uint16_t>(u->id), u->len);
    if (bytes.size() < hs) {  // a runt (a refused chain given back): the driver drops it
      out.push_back(GuestPacket{bytes, {}});
      continue;
    }
    uint16_t buffers = 1;
    if (mergeable) std::memcpy(&buffers, bytes.data() + 10, 2);
    for (uint16_t i = 1; i < buffers; ++i) {
      auto more = q.TakeUsed();
      if (!more) break;
      auto part = q.ReadIn(static_cast<uint16_t>(more->id), more->len);
      bytes.insert(bytes.end(), part.begin(), part.end());
    }
    GuestPacket p;
    p.header.assign(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(hs));
    p.frame.assign(bytes.begin() + static_cast<ptrdiff_t>(hs), bytes.end());
    out.push_back(std::move(p));
  }
  return out;
}

uint64_t TestFrontend::TakeCalls(uint32_t ring) {
  uint64_t v = 0;
  if (::read(call_[ring].get(), &v, sizeof v) != sizeof v) return 0;
  return v;
}

}  // namespace vfabric::vhost_user::testing
