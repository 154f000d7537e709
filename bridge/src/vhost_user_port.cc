// vhost-user ports (bridge/vhost_user/ has the protocol, the memory table
// and the rings; this file joins them to the switch's Port interface).
#include "vfabric/bridge/vhost_user_port.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <optional>

#include "vfabric/common/log.h"
#include "vfabric/vlan/tag.h"

namespace vfabric::bridge {

using vhost_user::Backend;
using vhost_user::Chain;
using vhost_user::Connection;
using vhost_user::Put;
using vhost_user::RingError;
using vhost_user::Virtqueue;
namespace feature = vhost_user::feature;

namespace {

bool Watch(int epoll, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  return ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST;
}
void Unwatch(int epoll, int fd) {
  if (fd >= 0) ::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
}

}  // namespace

VhostUserPort::VhostUserPort(std::string name, const VhostUserPortOptions& options, UniqueFd epoll)
    : name_(std::move(name)), options_(options), epoll_(std::move(epoll)), backend_([&] {
        vhost_user::BackendOptions b = options.backend;
        b.name = "vhost-user " + name_;
        return b;
      }()) {}

VhostUserPort::~VhostUserPort() {
  // The socket file this port listened on, unless something else has
  // taken the path since (a new port's socket: another inode).
  if (socket_ino_ == 0) return;
  struct stat st {};
  if (::lstat(options_.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      static_cast<uint64_t>(st.st_dev) == socket_dev_ &&
      static_cast<uint64_t>(st.st_ino) == socket_ino_ &&
      ::unlink(options_.socket_path.c_str()) < 0 && errno != ENOENT)
    VF_LOG(kWarning) << "vhost-user " << name_ << ": unlink " << options_.socket_path << ": "
                     << std::strerror(errno);
}

namespace {

// Whether a process listens on the Unix socket at `addr`: a stale socket
// file (its listener gone) refuses the connection. A connection that is
// accepted or waits in a full backlog is live; it is closed at once.
Result<bool> SomeoneListens(const sockaddr_un& addr, const std::string& path) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) return Status::FromErrno("vhost-user socket " + path + ": socket", errno);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return true;
  if (errno == ECONNREFUSED) return false;
  if (errno == EAGAIN || errno == EINPROGRESS) return true;
  return Status::FromErrno("vhost-user socket " + path + ": connect to the socket there", errno);
}

}  // namespace

Result<UniqueFd> VhostUserPort::ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::Error("vhost-user socket " + path + ": path empty or too long", EINVAL);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    // Only a socket left by a process that is gone (a crashed netd) is
    // replaced; a live one belongs to someone (another netd, a frontend in
    // server mode), and any other file is not ours to remove.
    if (!S_ISSOCK(st.st_mode))
      return Status::Error("vhost-user socket " + path + ": exists and is not a socket", EEXIST);
    auto live = SomeoneListens(addr, path);
    if (!live.ok()) return live.status();
    if (*live)
      return Status::Error("vhost-user socket " + path + ": a process listens there already",
                           EADDRINUSE);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT)
      return Status::FromErrno("vhost-user socket " + path + ": unlink the stale socket", errno);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno("vhost-user socket " + path + ": socket", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
    return Status::FromErrno("vhost-user socket " + path + ": bind", errno);
  if (::listen(fd.get(), 4) < 0)
    return Status::FromErrno("vhost-user socket " + path + ": listen", errno);
  return fd;
}

Result<std::unique_ptr<VhostUserPort>> VhostUserPort::Listen(std::string name, UniqueFd listener,
                                                             const VhostUserPortOptions& options) {
  if (!listener) return Status::Error("vhost-user " + name + ": no listening socket", EBADF);
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return Status::FromErrno("vhost-user " + name + ": epoll_create1", errno);
  const int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return Status::FromErrno("vhost-user " + name + ": O_NONBLOCK", errno);
  if (!Watch(epoll.get(), listener.get()))
    return Status::FromErrno("vhost-user " + name + ": epoll_ctl", errno);
  std::unique_ptr<VhostUserPort> port(
      new VhostUserPort(std::move(name), options, std::move(epoll)));
  port->listener_ = std::move(listener);
  struct stat st {};
  if (!options.socket_path.empty() && ::lstat(options.socket_path.c_str(), &st) == 0 &&
      S_ISSOCK(st.st_mode)) {
    port->socket_dev_ = static_cast<uint64_t>(st.st_dev);
    port->socket_ino_ = static_cast<uint64_t>(st.st_ino);
  }
  return port;
}

Result<std::unique_ptr<VhostUserPort>> VhostUserPort::FromConnection(
    std::string name, UniqueFd connection, const VhostUserPortOptions& options) {
  if (!connection) return Status::Error("vhost-user " + name + ": no connection", EBADF);
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return Status::FromErrno("vhost-user " + name + ": epoll_create1", errno);
  if (!Watch(epoll.get(), connection.get()))
    return Status::FromErrno("vhost-user " + name + ": epoll_ctl", errno);
  std::unique_ptr<VhostUserPort> port(
      new VhostUserPort(std::move(name), options, std::move(epoll)));
  port->connection_ = std::make_unique<Connection>(std::move(connection));
  port->connected_.store(true, std::memory_order_relaxed);
  port->connections_.Add(1);
  return port;
}

VhostUserStats VhostUserPort::stats() const {
  VhostUserStats s;
  s.connections = connections_.Get();
  s.disconnects = disconnects_.Get();
  s.messages = messages_.Get();
  s.messages_refused = messages_refused_.Get();
  s.refused_multiqueue =
      unsupported_[static_cast<size_t>(vhost_user::Unsupported::kMultiqueue)].Get();
  s.refused_packed_ring =
      unsupported_[static_cast<size_t>(vhost_user::Unsupported::kPackedRing)].Get();
  s.kicks = kicks_.Get();
  s.calls = calls_.Get();
  s.calls_suppressed = calls_suppressed_.Get();
  s.tx_not_ready = tx_not_ready_.Get();
  s.tx_no_buffers = tx_no_buffers_.Get();
  s.tx_too_big = tx_too_big_.Get();
  s.offload_refused = offload_refused_.Get();
  s.rx_oversize = rx_oversize_.Get();
  s.rx_bad_header = rx_bad_header_.Get();
  s.memory_faults = memory_faults_.Get();
  for (size_t i = 0; i < vhost_user::kRingErrorCount; ++i) s.ring_errors[i] = ring_errors_[i].Get();
  return s;
}

VhostUserNegotiated VhostUserPort::negotiated() const {
  VhostUserNegotiated n;
  n.features = features_.load(std::memory_order_relaxed);
  n.protocol_features = protocol_features_.load(std::memory_order_relaxed);
  n.queue_pairs = connected() ? 1 : 0;
  n.mtu = mtu_.load(std::memory_order_relaxed);
  n.memory_regions = regions_.load(std::memory_order_relaxed);
  n.memory_regions_sealed = regions_sealed_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < Backend::kRings; ++i) {
    const uint32_t flags = ring_flags_[i].load(std::memory_order_relaxed);
    const uint32_t indices = ring_indices_[i].load(std::memory_order_relaxed);
    VhostUserRingState& r = n.rings[i];
    r.started = (flags & 1) != 0;
    r.enabled = (flags & 2) != 0;
    r.ready = (flags & 4) != 0;
    r.broken = (flags & 8) != 0;
    r.size = ring_size_[i].load(std::memory_order_relaxed);
    r.last_avail_idx = static_cast<uint16_t>(indices >> 16);
    r.used_idx = static_cast<uint16_t>(indices & 0xffff);
  }
  return n;
}

void VhostUserPort::PublishState() {
  features_.store(backend_.features(), std::memory_order_relaxed);
  protocol_features_.store(backend_.protocol_features(), std::memory_order_relaxed);
  mtu_.store(backend_.mtu(), std::memory_order_relaxed);
  const vhost_user::GuestMemory* memory = backend_.memory();
  uint32_t sealed = 0;
  if (memory != nullptr)
    for (size_t i = 0; i < memory->size(); ++i) sealed += memory->shrink_sealed(i) ? 1 : 0;
  regions_.store(memory != nullptr ? static_cast<uint32_t>(memory->size()) : 0,
                 std::memory_order_relaxed);
  regions_sealed_.store(sealed, std::memory_order_relaxed);
  for (size_t i = 0; i < Backend::kRings; ++i) {
    const Virtqueue* q = backend_.ring(i);
    const uint32_t flags = (backend_.started(i) ? 1u : 0u) | (backend_.enabled(i) ? 2u : 0u) |
                           (backend_.ready(i) != nullptr ? 4u : 0u) | (q->broken() ? 8u : 0u);
    ring_flags_[i].store(flags, std::memory_order_relaxed);
    ring_size_[i].store(backend_.ring_size(i), std::memory_order_relaxed);
    PublishIndices(i, *q);
  }
}

size_t VhostUserPort::HeaderSize() const {
  return backend_.has(feature::kMrgRxbuf) || backend_.has(feature::kVersion1) ? 12 : 10;
}

void VhostUserPort::Accept() {
  if (!listener_ || connection_) return;
  UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!fd) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      VF_LOG(kWarning) << "vhost-user " << name_ << ": accept: " << std::strerror(errno);
    return;
  }
  if (!Watch(epoll_.get(), fd.get())) {
    VF_LOG(kWarning) << "vhost-user " << name_ << ": epoll_ctl: " << std::strerror(errno);
    return;
  }
  // One frontend at a time: others wait in the backlog until this one goes.
  Unwatch(epoll_.get(), listener_.get());
  connection_ = std::make_unique<Connection>(std::move(fd));
  connected_.store(true, std::memory_order_relaxed);
  connections_.Add(1);
  VF_LOG(kInfo) << "vhost-user " << name_ << ": frontend connected";
}

void VhostUserPort::Disconnect(const std::string& why) {
  VF_LOG(kWarning) << "vhost-user " << name_ << ": frontend gone (" << why
                   << "); the port is down until one connects";
  TakeRingErrors();
  Unwatch(epoll_.get(), connection_->fd());
  connection_.reset();
  backend_.Reset();
  // Reset() starts the rings' counts afresh.
  std::memset(ring_errors_seen_, 0, sizeof ring_errors_seen_);
  connected_.store(false, std::memory_order_relaxed);
  disconnects_.Add(1);
  Resync();
  PublishState();
  if (listener_) Watch(epoll_.get(), listener_.get());
}

void VhostUserPort::ServeControl() {
  if (!connection_) {
    Accept();
    if (!connection_) return;
  }
  std::string why;
  const uint64_t messages_before = backend_.messages();
  const vhost_user::Served served =
      vhost_user::Serve(*connection_, backend_, options_.max_messages_per_turn, &why);
  messages_.Add(backend_.messages() - messages_seen_);
  messages_seen_ = backend_.messages();
  messages_refused_.Add(backend_.refused() - refused_seen_);
  refused_seen_ = backend_.refused();
  for (size_t i = 0; i < vhost_user::kUnsupportedCount; ++i) {
    const uint64_t now = backend_.unsupported(static_cast<vhost_user::Unsupported>(i));
    unsupported_[i].Add(now - unsupported_seen_[i]);
    unsupported_seen_[i] = now;
  }
  if (served == vhost_user::Served::kClosed) {
    Disconnect(why);
    return;
  }
  if (backend_.generation() != generation_) Resync();
  if (backend_.messages() != messages_before) PublishState();
}

void VhostUserPort::Resync() {
  generation_ = backend_.generation();
  const int kick = backend_.kick_fd(Backend::kTxRing);
  if (kick != watched_kick_) {
    Unwatch(epoll_.get(), watched_kick_);
    watched_kick_ = -1;
    if (kick >= 0) {
      if (Watch(epoll_.get(), kick)) {
        watched_kick_ = kick;
      } else {
        VF_LOG(kWarning) << "vhost-user " << name_ << ": epoll_ctl kick: " << std::strerror(errno);
      }
    }
  }
  notify_on_ = false;
  up_.store(
      backend_.ready(Backend::kTxRing) != nullptr && backend_.ready(Backend::kRxRing) != nullptr,
      std::memory_order_relaxed);
}

void VhostUserPort::TakeRingErrors() {
  for (size_t r = 0; r < Backend::kRings; ++r) {
    const Virtqueue* q = backend_.ring(r);
    for (size_t e = 0; e < vhost_user::kRingErrorCount; ++e) {
      const uint64_t now = q->error_count(static_cast<RingError>(e));
      if (now != ring_errors_seen_[r][e]) {
        ring_errors_[e].Add(now - ring_errors_seen_[r][e]);
        ring_errors_seen_[r][e] = now;
      }
    }
  }
}

void VhostUserPort::CheckMemoryFaults() {
  // One relaxed load per batch while nothing faulted anywhere.
  const uint64_t faults = vhost_user::GuestMemory::faults();
  if (faults == faults_seen_) return;
  faults_seen_ = faults;
  const vhost_user::GuestMemory* memory = backend_.memory();
  if (memory == nullptr || !connection_) return;
  const std::optional<size_t> region = memory->FaultedRegion();
  if (!region) return;  // another port's memory
  memory_faults_.Add(1);
  const vhost_user::MemoryRegion& r = memory->region(*region);
  char where[96];
  std::snprintf(where, sizeof where, "memory region %zu (guest 0x%llx, size 0x%llx)", *region,
                static_cast<unsigned long long>(r.guest_phys_addr),
                static_cast<unsigned long long>(r.memory_size));
  // Its mapping reads zeros now; the rings in it are garbage. Dropping the
  // connection drops the table (Backend::Reset) with it.
  Disconnect(std::string(where) +
             " was cut short under its mapping: the frontend shrank the memory file it passed "
             "(SIGBUS caught)");
}

void VhostUserPort::Call(size_t ring, Virtqueue* q) {
  if (!q->NeedCall()) {
    calls_suppressed_.Add(1);
    return;
  }
  const int fd = backend_.call_fd(ring);
  if (fd < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  calls_.Add(1);
}

size_t VhostUserPort::Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                              uint64_t* malformed) {
  Virtqueue* q = backend_.ready(Backend::kTxRing);
  size_t n = 0;
  bool drained = false;
  const size_t hs = HeaderSize();
  const uint64_t errors_before = q != nullptr ? q->error_total() : 0;
  const uint16_t used_before = q != nullptr ? q->used_idx() : 0;
  while (q != nullptr && n < out.size()) {
    Chain chain;
    RingError error;
    const Virtqueue::Pop pop = q->PopChain(&chain, &error, Virtqueue::Want::kReadable);
    if (pop == Virtqueue::Pop::kEmpty) {
      if (drained) break;
      // Empty: ask for kicks, clear the kick eventfd, and look once more
      // (a buffer added before the guest saw the request brings no kick).
      drained = true;
      uint64_t kicks = 0;
      if (::read(backend_.kick_fd(Backend::kTxRing), &kicks, sizeof kicks) == sizeof kicks)
        kicks_.Add(kicks);
      if (!notify_on_) {
        q->EnableNotify();
        notify_on_ = true;
      }
      continue;
    }
    if (pop == Virtqueue::Pop::kError) {
      ++*malformed;
      continue;
    }
    if (notify_on_) {  // frames flow: the switch polls, the guest need not kick
      q->DisableNotify();
      notify_on_ = false;
    }
    Frame* f = pool.Alloc();
    if (f == nullptr) {
      q->Unpop(1);
      ++*no_buffer;
      break;
    }
    uint8_t raw[12] = {};
    if (chain.readable < hs + 14 || chain.Read(0, raw, hs) != hs) {
      q->Push(chain.head, 0);
      pool.Free(f);
      ++*malformed;
      rx_bad_header_.Add(1);
      continue;
    }
    if (chain.readable - hs > f->capacity) {
      q->Push(chain.head, 0);
      pool.Free(f);
      ++*malformed;
      rx_oversize_.Add(1);
      continue;
    }
    std::memcpy(static_cast<void*>(&f->vnet), raw, 10);  // the 10-byte virtio_net_hdr
    f->vnet.num_buffers = 0;
    // Offloads the guest may use only if it accepted them.
    const bool csum_ok = !f->vnet.needs_csum() || backend_.has(feature::kCsum);
    const uint8_t gso = f->vnet.gso_type & ~VnetHdr::kGsoEcn;
    const bool gso_ok = gso == VnetHdr::kGsoNone ||
                        (gso == VnetHdr::kGsoTcpV4 && backend_.has(feature::kHostTso4)) ||
                        (gso == VnetHdr::kGsoTcpV6 && backend_.has(feature::kHostTso6));
    if (!csum_ok || !gso_ok) {
      q->Push(chain.head, 0);
      pool.Free(f);
      ++*malformed;
      rx_bad_header_.Add(1);
      if (!logged_rx_header_) {
        logged_rx_header_ = true;
        VF_LOG(kWarning) << "vhost-user " << name_
                         << ": the guest sent offload metadata it did not negotiate (dropped)";
      }
      continue;
    }
    f->size = static_cast<uint32_t>(chain.Read(hs, f->data, chain.readable - hs));
    q->Push(chain.head, 0);
    out[n++] = f;
  }
  if (q == nullptr && backend_.kick_fd(Backend::kTxRing) >= 0) {
    // Kicks for a ring that is not enabled: cleared, or the port's fd would
    // stay readable and the switch would spin on it.
    uint64_t kicks = 0;
    if (::read(backend_.kick_fd(Backend::kTxRing), &kicks, sizeof kicks) == sizeof kicks)
      kicks_.Add(kicks);
  }
  if (q != nullptr) {
    q->Publish();
    PublishIndices(Backend::kTxRing, *q);
    // Only what was given back is worth a call (or counts as suppressed):
    // an empty poll publishes nothing.
    if (q->used_idx() != used_before) Call(Backend::kTxRing, q);
    if (q->error_total() != errors_before || q->broken()) TakeRingErrors();
    if (q->broken()) PublishState();  // once: a broken ring is not ready() again
  }
  // Control messages (and a connecting frontend) when the ring ran dry,
  // or every so often while it does not.
  if (q == nullptr || drained || n < out.size()) {
    ServeControl();
  } else if ((++busy_turns_ & 63) == 0) {
    ServeControl();
  }
  CheckMemoryFaults();
  return n;
}

TxResult VhostUserPort::Transmit(std::span<const TxItem> items) {
  TxResult result;
  Virtqueue* q = backend_.ready(Backend::kRxRing);
  if (q == nullptr) {
    // Down, or the ring not enabled (yet): dropped, as a link that is down.
    result.errors = static_cast<uint32_t>(items.size());
    tx_not_ready_.Add(items.size());
    return result;
  }
  const uint64_t errors_before = q->error_total();
  const uint16_t used_before = q->used_idx();
  const size_t hs = HeaderSize();
  const bool mergeable = backend_.has(feature::kMrgRxbuf);
  const bool guest_csum = backend_.has(feature::kGuestCsum);
  bool full = false;
  for (const TxItem& item : items) {
    if (full) {  // no buffers for the one before: none for these either
      ++result.full;
      tx_no_buffers_.Add(1);
      continue;
    }
    const Frame& f = *item.frame;
    VnetHdr h = TxVnetHdr(item);
    const uint8_t gso = h.gso_type & ~VnetHdr::kGsoEcn;
    const bool ok = (!h.needs_csum() || guest_csum) &&
                    (gso == VnetHdr::kGsoNone ||
                     (gso == VnetHdr::kGsoTcpV4 && backend_.has(feature::kGuestTso4)) ||
                     (gso == VnetHdr::kGsoTcpV6 && backend_.has(feature::kGuestTso6))) &&
                    ((h.gso_type & VnetHdr::kGsoEcn) == 0 || backend_.has(feature::kGuestEcn));
    if (!ok) {
      ++result.errors;
      offload_refused_.Add(1);
      if (!logged_tx_offload_) {
        logged_tx_offload_ = true;
        VF_LOG(kWarning) << "vhost-user " << name_
                         << ": a frame with offload metadata the guest did not accept (dropped; "
                            "give the port takes_offload=false)";
      }
      continue;
    }
    if (!guest_csum) h.flags = 0;  // DATA_VALID only for a guest that accepted GUEST_CSUM
    h.num_buffers = 1;
    uint8_t raw[12];
    std::memcpy(raw, static_cast<const void*>(&h), 12);
    std::array<uint8_t, vlan::kTagLen> tag = vlan::TagBytes(item.tci);
    std::span<const uint8_t> pieces[3];
    size_t count;
    if (item.tagged) {
      pieces[0] = {f.data, 12};
      pieces[1] = {tag.data(), tag.size()};
      pieces[2] = {f.data + 12, f.size - 12};
      count = 3;
    } else {
      pieces[0] = {f.data, f.size};
      count = 1;
    }
    switch (vhost_user::PutPacket(*q, {raw, hs}, mergeable, 10, {pieces, count})) {
      case Put::kOk:
        ++result.packets;
        result.bytes += f.size + (item.tagged ? 4 : 0);
        break;
      case Put::kNoBuffers:
        ++result.full;
        tx_no_buffers_.Add(1);
        full = true;
        break;
      case Put::kTooBig:
        ++result.errors;
        tx_too_big_.Add(1);
        break;
    }
  }
  q->Publish();
  PublishIndices(Backend::kRxRing, *q);
  if (q->used_idx() != used_before) Call(Backend::kRxRing, q);  // refused chains too
  if (q->error_total() != errors_before || q->broken()) TakeRingErrors();
  if (q->broken()) PublishState();
  CheckMemoryFaults();
  return result;
}

}  // namespace vfabric::bridge
