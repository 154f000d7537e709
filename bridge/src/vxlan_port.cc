// VXLAN ports (vxlan_port.h): one UDP socket per port, recvmmsg/sendmmsg.
#include "vfabric/bridge/vxlan_port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "vfabric/common/log.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vlan/tag.h"
#include "vxlan_wire.h"

namespace vfabric::bridge {
namespace {

using internal::kMaxVni;
using internal::kVxlanHeader;
using internal::SocketAddress;
constexpr size_t kBatch = internal::kVxlanBatch;

// Whether `from` (a received datagram's source) is `address`, any port.
bool FromAddress(const sockaddr_storage& from, const IpPrefix& address) {
  if (from.ss_family != address.family) return false;
  if (from.ss_family == AF_INET)
    return std::memcmp(&reinterpret_cast<const sockaddr_in&>(from).sin_addr, address.bytes.data(),
                       4) == 0;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(from).sin6_addr, address.bytes.data(),
                     16) == 0;
}

class VxlanPort final : public Port {
 public:
  VxlanPort(std::string name, UniqueFd fd, const VxlanPortOptions& options)
      : name_(std::move(name)), fd_(std::move(fd)), options_(options) {
    PutVxlanHeader(options.vni, header_);
    remote_length_ = SocketAddress(options.remote, options.remote_port, &remote_);
  }

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kVxlan; }
  int fd() const override { return fd_.get(); }
  bool takes_offload() const override { return false; }

  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override {
    const size_t want = std::min(out.size(), kBatch);
    std::array<Frame*, kBatch> frames{};
    size_t have = 0;
    while (have < want) {
      Frame* f = pool.Alloc();
      if (f == nullptr) break;
      frames[have++] = f;
    }
    if (have == 0) {
      if (want > 0) ++*no_buffer;  // datagrams wait in the socket (or the kernel drops them)
      return 0;
    }
    std::array<mmsghdr, kBatch> messages{};
    std::array<std::array<iovec, 2>, kBatch> iov{};
    for (size_t i = 0; i < have; ++i) {
      iov[i][0] = {headers_[i], kVxlanHeader};
      iov[i][1] = {frames[i]->data, frames[i]->capacity};
      msghdr& m = messages[i].msg_hdr;
      m.msg_iov = iov[i].data();
      m.msg_iovlen = 2;
      m.msg_name = &sources_[i];
      m.msg_namelen = sizeof sources_[i];
    }
    const int got =
        ::recvmmsg(fd_.get(), messages.data(), static_cast<unsigned>(have), MSG_DONTWAIT, nullptr);
    if (got < 0 && errno != EAGAIN && errno != EINTR) LogOnce("recvmmsg", errno);
    const size_t received = got > 0 ? static_cast<size_t>(got) : 0;
    size_t n = 0;
    for (size_t i = 0; i < have; ++i) {
      Frame* f = frames[i];
      if (i >= received) {
        pool.Free(f);
        continue;
      }
      const size_t length = messages[i].msg_len;
      if (!Valid(messages[i].msg_hdr, length, i)) {
        pool.Free(f);
        ++*malformed;
        continue;
      }
      f->size = static_cast<uint32_t>(length - kVxlanHeader);
      out[n++] = f;
    }
    return n;
  }

  TxResult Transmit(std::span<const TxItem> items) override {
    int error = 0;
    const TxResult result =
        internal::SendVxlanDatagrams(fd_.get(), header_, remote_, remote_length_, items, &error);
    if (error != 0) LogOnce("sendmmsg", error);
    return result;
  }

 private:
  bool Valid(const msghdr& message, size_t length, size_t index) const {
    return internal::VxlanDatagramValid(message, length, headers_[index], header_) &&
           FromAddress(sources_[index], options_.remote);
  }

  void LogOnce(const char* op, int error) {
    if (logged_) return;
    logged_ = true;
    VF_LOG(kWarning) << "vxlan " << name_ << ": " << op << ": " << std::strerror(error);
  }

  std::string name_;
  UniqueFd fd_;
  VxlanPortOptions options_;
  uint8_t header_[kVxlanHeader] = {};
  sockaddr_storage remote_{};
  socklen_t remote_length_ = 0;
  // Receive's per-datagram scratch (the datapath thread only).
  uint8_t headers_[kBatch][kVxlanHeader] = {};
  sockaddr_storage sources_[kBatch] = {};
  bool logged_ = false;
};

}  // namespace

void PutVxlanHeader(uint32_t vni, uint8_t out[8]) {
  out[0] = 0x08;
  out[1] = out[2] = out[3] = 0;
  out[4] = static_cast<uint8_t>(vni >> 16);
  out[5] = static_cast<uint8_t>(vni >> 8);
  out[6] = static_cast<uint8_t>(vni);
  out[7] = 0;
}

Result<std::unique_ptr<Port>> OpenVxlanPort(std::string name, const VxlanPortOptions& options) {
  const std::string what = "vxlan " + name;
  if (options.vni == 0 || options.vni > kMaxVni)
    return Status::Error(what + ": VNI " + std::to_string(options.vni) + " is not 1..16777215",
                         EINVAL);
  if ((options.local.family != AF_INET && options.local.family != AF_INET6) ||
      options.remote.family != options.local.family)
    return Status::Error(what + ": local and remote addresses must be of one IP family", EINVAL);
  auto fd = internal::OpenVxlanSocket(what, options.local, options.local_port);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<Port>(
      std::make_unique<VxlanPort>(std::move(name), std::move(fd).value(), options));
}

}  // namespace vfabric::bridge
