// The VXLAN endpoint and its peer ports (vxlan_endpoint.h).
#include "vfabric/bridge/vxlan_endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "vfabric/bridge/vxlan_port.h"
#include "vfabric/common/log.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vlan/tag.h"
#include "vxlan_wire.h"

namespace vfabric::bridge {
namespace {

using internal::kEthernetHeader;
using internal::kMaxVni;
using internal::kVxlanHeader;
using internal::SocketAddress;
constexpr size_t kBatch = internal::kVxlanBatch;

// The address bytes of a received datagram's source (4 or 16), or empty.
std::span<const uint8_t> SourceBytes(const sockaddr_storage& from) {
  if (from.ss_family == AF_INET)
    return {reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in&>(from).sin_addr),
            4};
  if (from.ss_family == AF_INET6)
    return {
        reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6&>(from).sin6_addr),
        16};
  return {};
}

class PeerPort;

// One remote VTEP's receive state, owned by its port, listed in the
// endpoint's table while the port lives. Every field but `event` is
// guarded by the endpoint's mutex.
struct Peer {
  IpPrefix remote;
  UniqueFd event;               // eventfd: frames were queued by another peer's drain
  std::vector<uint16_t> queue;  // ring of buffer indexes (capacity: the endpoint's buffers)
  size_t head = 0, count = 0;
  uint64_t malformed = 0;  // refused datagrams not yet reported by Receive
  bool signalled = false;  // `event` holds a count
};

class Endpoint final : public VxlanEndpoint, public std::enable_shared_from_this<Endpoint> {
 public:
  Endpoint(std::string name, UniqueFd fd, const VxlanEndpointOptions& options)
      : name_(std::move(name)), fd_(std::move(fd)), options_(options) {
    PutVxlanHeader(options.vni, header_);
    slot_size_ = kVxlanHeader + options.max_frame;
    slab_ = std::make_unique<uint8_t[]>(slot_size_ * options.buffers);
    lengths_.assign(options.buffers, 0);
    free_.reserve(options.buffers);
    for (size_t i = options.buffers; i-- > 0;) free_.push_back(static_cast<uint16_t>(i));
  }

  Result<std::unique_ptr<Port>> OpenPeer(std::string port_name, const IpPrefix& remote,
                                         uint16_t remote_port) override;

  Counters counters() const override {
    return {rx_datagrams_.load(std::memory_order_relaxed),
            rx_unknown_vtep_.load(std::memory_order_relaxed)};
  }
  const VxlanEndpointOptions& options() const override { return options_; }

  int fd() const { return fd_.get(); }
  const uint8_t* header() const { return header_; }
  const std::string& name() const { return name_; }

  Status Register(Peer* peer) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Peer* p : peers_)
      if (p->remote.SameAddress(peer->remote))
        return Status::Error(
            "vxlan endpoint " + name_ + ": " + peer->remote.AddressText() + " is a peer already",
            EEXIST);
    peers_.push_back(peer);
    return Status::Ok();
  }

  void Unregister(Peer* peer) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase(peers_, peer);
    for (; peer->count > 0; --peer->count) {
      free_.push_back(peer->queue[peer->head]);
      peer->head = (peer->head + 1) % peer->queue.size();
    }
  }

  // Peer::Receive: drains the socket once, then hands out `self`'s frames.
  size_t Receive(Peer* self, FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed);

 private:
  Peer* Find(std::span<const uint8_t> source) {
    for (Peer* p : peers_)
      if (p->remote.AddressSize() == source.size() &&
          std::memcmp(p->remote.bytes.data(), source.data(), source.size()) == 0)
        return p;
    return nullptr;
  }

  void Signal(Peer* peer) {
    if (peer->signalled) return;
    const uint64_t one = 1;
    if (::write(peer->event.get(), &one, sizeof one) == sizeof one) peer->signalled = true;
  }
  void Unsignal(Peer* peer) {
    if (!peer->signalled) return;
    uint64_t value = 0;
    if (::read(peer->event.get(), &value, sizeof value) == sizeof value || errno == EAGAIN)
      peer->signalled = false;
  }

  // recvmmsg once into free buffers; sorts the datagrams into peer queues.
  // REQUIRES: mutex_ held.
  void Drain(Peer* self) {
    const size_t want = std::min(kBatch, free_.size());
    if (want == 0) return;  // every buffer queued: the datagrams wait in the socket
    std::array<uint16_t, kBatch> slots{};
    std::array<mmsghdr, kBatch> messages{};
    std::array<iovec, kBatch> iov{};
    std::array<sockaddr_storage, kBatch> sources{};
    for (size_t i = 0; i < want; ++i) {
      slots[i] = free_.back();
      free_.pop_back();
      iov[i] = {slab_.get() + slots[i] * slot_size_, slot_size_};
      msghdr& m = messages[i].msg_hdr;
      m.msg_iov = &iov[i];
      m.msg_iovlen = 1;
      m.msg_name = &sources[i];
      m.msg_namelen = sizeof sources[i];
    }
    const int got =
        ::recvmmsg(fd_.get(), messages.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (got < 0 && errno != EAGAIN && errno != EINTR && !logged_) {
      logged_ = true;
      VF_LOG(kWarning) << "vxlan endpoint " << name_ << ": recvmmsg: " << std::strerror(errno);
    }
    const size_t received = got > 0 ? static_cast<size_t>(got) : 0;
    rx_datagrams_.fetch_add(received, std::memory_order_relaxed);
    uint64_t unknown = 0;
    for (size_t i = 0; i < want; ++i) {
      const uint16_t slot = slots[i];
      Peer* peer = i < received ? Find(SourceBytes(sources[i])) : nullptr;
      if (peer == nullptr) {
        if (i < received) ++unknown;
        free_.push_back(slot);
        continue;
      }
      const size_t length = messages[i].msg_len;
      if (!Valid(messages[i].msg_hdr, slab_.get() + slot * slot_size_, length)) {
        ++peer->malformed;
        free_.push_back(slot);
        continue;
      }
      lengths_[slot] = static_cast<uint32_t>(length - kVxlanHeader);
      peer->queue[(peer->head + peer->count) % peer->queue.size()] = slot;
      ++peer->count;
      if (peer != self) Signal(peer);
    }
    if (unknown) rx_unknown_vtep_.fetch_add(unknown, std::memory_order_relaxed);
  }

  bool Valid(const msghdr& message, const uint8_t* h, size_t length) const {
    return internal::VxlanDatagramValid(message, length, h, header_);
  }

  const std::string name_;
  const UniqueFd fd_;
  const VxlanEndpointOptions options_;
  uint8_t header_[kVxlanHeader] = {};
  size_t slot_size_ = 0;
  std::atomic<uint64_t> rx_datagrams_{0};
  std::atomic<uint64_t> rx_unknown_vtep_{0};

  std::mutex mutex_;
  std::vector<Peer*> peers_;         // GUARDED_BY(mutex_)
  std::unique_ptr<uint8_t[]> slab_;  // buffers, slot_size_ each
  std::vector<uint32_t> lengths_;    // by buffer: the inner frame's length
  std::vector<uint16_t> free_;       // GUARDED_BY(mutex_)
  bool logged_ = false;              // GUARDED_BY(mutex_)
};

size_t Endpoint::Receive(Peer* self, FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                         uint64_t* malformed) {
  std::lock_guard<std::mutex> lock(mutex_);
  Drain(self);
  size_t n = 0;
  while (n < out.size() && self->count > 0) {
    const uint16_t slot = self->queue[self->head];
    const uint32_t length = lengths_[slot];
    Frame* f = pool.Alloc();
    if (f == nullptr) {
      ++*no_buffer;  // stays queued: taken at the next Receive
      break;
    }
    self->head = (self->head + 1) % self->queue.size();
    --self->count;
    if (length > f->capacity) {
      ++self->malformed;  // bigger than the switch's frames
      pool.Free(f);
    } else {
      std::memcpy(f->data, slab_.get() + slot * slot_size_ + kVxlanHeader, length);
      f->size = length;
      out[n++] = f;
    }
    free_.push_back(slot);
  }
  *malformed += self->malformed;
  self->malformed = 0;
  // Frames left (more than `out` took) must wake the port again, though
  // the socket may be empty by now.
  if (self->count > 0)
    Signal(self);
  else
    Unsignal(self);
  return n;
}

class PeerPort final : public Port {
 public:
  PeerPort(std::string name, std::shared_ptr<Endpoint> endpoint, std::unique_ptr<Peer> peer,
           UniqueFd epoll, uint16_t remote_port)
      : name_(std::move(name)),
        endpoint_(std::move(endpoint)),
        peer_(std::move(peer)),
        epoll_(std::move(epoll)) {
    remote_length_ = SocketAddress(peer_->remote, remote_port, &remote_);
  }
  ~PeerPort() override { endpoint_->Unregister(peer_.get()); }

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kVxlan; }
  int fd() const override { return epoll_.get(); }
  bool takes_offload() const override { return false; }

  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override {
    return endpoint_->Receive(peer_.get(), pool, out, no_buffer, malformed);
  }

  TxResult Transmit(std::span<const TxItem> items) override {
    int error = 0;
    const TxResult result = internal::SendVxlanDatagrams(endpoint_->fd(), endpoint_->header(),
                                                         remote_, remote_length_, items, &error);
    if (error != 0 && !logged_) {
      logged_ = true;
      VF_LOG(kWarning) << "vxlan " << name_ << ": sendmmsg to " << peer_->remote.AddressText()
                       << ": " << std::strerror(error);
    }
    return result;
  }

 private:
  std::string name_;
  std::shared_ptr<Endpoint> endpoint_;
  std::unique_ptr<Peer> peer_;
  UniqueFd epoll_;  // watches the endpoint's socket and peer_->event
  sockaddr_storage remote_{};
  socklen_t remote_length_ = 0;
  bool logged_ = false;
};

Result<std::unique_ptr<Port>> Endpoint::OpenPeer(std::string port_name, const IpPrefix& remote,
                                                 uint16_t remote_port) {
  const std::string what = "vxlan " + port_name;
  if (remote.family != options_.local.family)
    return Status::Error(what + ": remote " + remote.AddressText() +
                             " is not an address of the local address's family",
                         EINVAL);
  auto peer = std::make_unique<Peer>();
  peer->remote = remote;
  peer->queue.assign(options_.buffers, 0);
  peer->event.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!peer->event) return Status::FromErrno(what + ": eventfd", errno);
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return Status::FromErrno(what + ": epoll_create1", errno);
  for (int fd : {fd_.get(), peer->event.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
      return Status::FromErrno(what + ": epoll_ctl", errno);
  }
  Status registered = Register(peer.get());
  if (!registered.ok()) return registered;
  return std::unique_ptr<Port>(std::make_unique<PeerPort>(
      std::move(port_name), shared_from_this(), std::move(peer), std::move(epoll), remote_port));
}

}  // namespace

Result<std::shared_ptr<VxlanEndpoint>> VxlanEndpoint::Open(std::string name,
                                                           const VxlanEndpointOptions& options) {
  const std::string what = "vxlan endpoint " + name;
  if (options.vni == 0 || options.vni > kMaxVni)
    return Status::Error(what + ": VNI " + std::to_string(options.vni) + " is not 1..16777215",
                         EINVAL);
  if (options.local.family != AF_INET && options.local.family != AF_INET6)
    return Status::Error(what + ": no local address", EINVAL);
  if (options.buffers == 0 || options.buffers > 65535 || options.max_frame < kEthernetHeader)
    return Status::Error(what + ": buffers 1..65535 and max_frame >= 14", EINVAL);
  auto fd = internal::OpenVxlanSocket(what, options.local, options.port);
  if (!fd.ok()) return fd.status();
  return std::shared_ptr<VxlanEndpoint>(
      std::make_shared<Endpoint>(std::move(name), std::move(fd).value(), options));
}

}  // namespace vfabric::bridge
