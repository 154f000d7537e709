// Tap ports: the host end of a guest's virtio-net NIC (man 4 tun is
// Documentation/networking/tuntap.rst). One read()/write() is one frame,
// prefixed by a 12-byte virtio_net_hdr (TUNSETVNETHDRSZ).
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/log.h"
#include "vfabric/vlan/tag.h"

namespace vfabric::bridge {
namespace {

class TapPort final : public Port {
 public:
  TapPort(std::string name, UniqueFd fd) : name_(std::move(name)), fd_(std::move(fd)) {}

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kTap; }
  int fd() const override { return fd_.get(); }
  Result<PortHandover> Handover() const override {
    PortHandover handover;
    handover.kind = PortKind::kTap;
    UniqueFd copy(::dup(fd_.get()));  // dup: no FD_CLOEXEC
    if (!copy) return Status::FromErrno("tap " + name_ + ": dup", errno);
    handover.fds.push_back(std::move(copy));
    return handover;
  }
  bool takes_offload() const override { return true; }

  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override {
    size_t n = 0;
    while (n < out.size()) {
      Frame* f = pool.Alloc();
      if (f == nullptr) {
        ++*no_buffer;  // the frame waits in the tap's queue (or the kernel drops it)
        break;
      }
      iovec iov[2] = {{&f->vnet, sizeof(VnetHdr)}, {f->data, f->capacity}};
      const ssize_t got = ::readv(fd_.get(), iov, 2);
      if (got < 0) {
        pool.Free(f);
        if (errno != EAGAIN && errno != EINTR) LogOnce("read", errno);
        break;
      }
      if (static_cast<size_t>(got) < sizeof(VnetHdr) + 1) {
        pool.Free(f);
        ++*malformed;
        continue;
      }
      f->size = static_cast<uint32_t>(got - static_cast<ssize_t>(sizeof(VnetHdr)));
      f->vnet.num_buffers = 0;
      out[n++] = f;
    }
    return n;
  }

  TxResult Transmit(std::span<const TxItem> items) override {
    TxResult result;
    for (const TxItem& item : items) {
      const Frame& f = *item.frame;
      VnetHdr h = TxVnetHdr(item);
      std::array<uint8_t, vlan::kTagLen> tag = vlan::TagBytes(item.tci);
      iovec iov[4];
      int count;
      iov[0] = {&h, sizeof h};
      if (item.tagged) {
        iov[1] = {f.data, 12};
        iov[2] = {tag.data(), tag.size()};
        iov[3] = {f.data + 12, f.size - 12};
        count = 4;
      } else {
        iov[1] = {f.data, f.size};
        count = 2;
      }
      const ssize_t wrote = ::writev(fd_.get(), iov, count);
      if (wrote < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) {
          ++result.full;
        } else {
          ++result.errors;
          if (errno != EIO) LogOnce("write", errno);  // EIO: the tap is down
        }
        continue;
      }
      ++result.packets;
      result.bytes += f.size + (item.tagged ? 4 : 0);
    }
    return result;
  }

 private:
  void LogOnce(const char* op, int error) {
    if (logged_) return;
    logged_ = true;
    VF_LOG(kWarning) << "tap " << name_ << ": " << op << ": " << std::strerror(error);
  }

  std::string name_;
  UniqueFd fd_;
  bool logged_ = false;
};

}  // namespace

Result<std::unique_ptr<Port>> OpenTapPort(std::string name, UniqueFd fd,
                                          const TapPortOptions& options) {
  const std::string what = "tap " + name;
  if (!fd) return Status::Error(what + ": no fd", EBADF);
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return Status::FromErrno(what + ": O_NONBLOCK", errno);
  const int fd_flags = ::fcntl(fd.get(), F_GETFD);
  if (fd_flags < 0 || ::fcntl(fd.get(), F_SETFD, fd_flags | FD_CLOEXEC) < 0)
    return Status::FromErrno(what + ": FD_CLOEXEC", errno);
  ifreq request{};
  if (::ioctl(fd.get(), TUNGETIFF, &request) < 0)
    return Status::FromErrno(what + ": TUNGETIFF", errno);
  if ((request.ifr_flags & IFF_TAP) == 0 || (request.ifr_flags & IFF_NO_PI) == 0 ||
      (request.ifr_flags & IFF_VNET_HDR) == 0)
    return Status::Error(what + ": not opened IFF_TAP | IFF_NO_PI | IFF_VNET_HDR", EINVAL);
  int hdr_size = sizeof(VnetHdr);
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_size) < 0)
    return Status::FromErrno(what + ": TUNSETVNETHDRSZ", errno);
  unsigned long offload = 0;
  if (options.offload) {
    offload = TUN_F_CSUM;
    if (options.tso) offload |= TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  }
  if (::ioctl(fd.get(), TUNSETOFFLOAD, offload) < 0)
    return Status::FromErrno(what + ": TUNSETOFFLOAD", errno);
  return std::unique_ptr<Port>(new TapPort(std::move(name), std::move(fd)));
}

// packet_port.cc
Result<std::unique_ptr<Port>> AdoptPacketSocketPort(std::string name, PortHandover handover);

Result<std::unique_ptr<Port>> AdoptPort(std::string name, PortHandover handover) {
  switch (handover.kind) {
    case PortKind::kTap:
      if (handover.fds.size() != 1)
        return Status::Error(
            "tap " + name + ": adopt: " + std::to_string(handover.fds.size()) + " descriptors",
            EINVAL);
      // OpenTapPort checks it is a tap (TUNGETIFF) and sets FD_CLOEXEC again.
      return OpenTapPort(std::move(name), std::move(handover.fds[0]));
    case PortKind::kPacketSocket:
      return AdoptPacketSocketPort(std::move(name), std::move(handover));
    default:
      return Status::Error(
          std::string(ToString(handover.kind)) + " port " + name + ": cannot be adopted", EINVAL);
  }
}

}  // namespace vfabric::bridge
