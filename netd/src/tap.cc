// Taps over /dev/net/tun (man 4 tun is Documentation/networking/tuntap.rst).
// The kernel refuses to create tun devices over rtnetlink, so creation is
// TUNSETIFF on a fresh fd, made to outlive it with TUNSETPERSIST.
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cstring>
#include <string>

#include "nl_tap.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd {
namespace {

constexpr char kTunPath[] = "/dev/net/tun";

Status CheckName(const std::string& name, const std::string& what) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return Status::Error(what + ": Invalid argument (name must be 1-15 bytes)", EINVAL);
  return Status::Ok();
}

// Opens /dev/net/tun and binds it to `name` with `flags`.
Result<UniqueFd> AttachTun(const std::string& name, short flags, int open_flags,
                           const std::string& what) {
  UniqueFd fd(::open(kTunPath, O_RDWR | O_CLOEXEC | open_flags));
  if (!fd) return Status::FromErrno(what + ": open " + kTunPath, errno);
  ifreq request{};
  std::memcpy(request.ifr_name, name.data(), name.size());
  request.ifr_flags = flags;
  if (::ioctl(fd.get(), TUNSETIFF, &request) < 0)
    return Status::FromErrno(what + ": TUNSETIFF", errno);
  return fd;
}

short TapFlags(bool vnet_hdr, bool multi_queue) {
  int flags = IFF_TAP | IFF_NO_PI;
  if (vnet_hdr) flags |= IFF_VNET_HDR;
  if (multi_queue) flags |= IFF_MULTI_QUEUE;
  return static_cast<short>(flags);
}

}  // namespace

namespace nl {

Result<UniqueFd> CreateTransientTap(const std::string& name, const TapSettings& settings) {
  const std::string what = "create tap " + name;
  VF_RETURN_IF_ERROR(CheckName(name, what));
  // TUNSETIFF on an existing tap attaches to it rather than failing;
  // IFF_TUN_EXCL makes it fail (EBUSY) on any link of that name instead, in
  // the same call (no lookup before: thousands of taps cost a syscall less
  // each, and no other process can take the name in between).
  auto fd = AttachTun(
      name, static_cast<short>(TapFlags(settings.vnet_hdr, settings.multi_queue) | IFF_TUN_EXCL), 0,
      what);
  if (!fd.ok()) {
    if (fd.status().error_number() == EBUSY) return Status::FromErrno(what, EEXIST);
    return fd.status();
  }
  // Until TUNSETPERSIST the tap dies with the fd, so an error below leaves nothing.
  if (settings.owner &&
      ::ioctl(fd->get(), TUNSETOWNER, static_cast<unsigned long>(*settings.owner)) < 0)
    return Status::FromErrno(what + ": TUNSETOWNER", errno);
  if (settings.group &&
      ::ioctl(fd->get(), TUNSETGROUP, static_cast<unsigned long>(*settings.group)) < 0)
    return Status::FromErrno(what + ": TUNSETGROUP", errno);
  return fd;
}

Status MakeTapPersistent(const UniqueFd& fd, const std::string& name) {
  if (::ioctl(fd.get(), TUNSETPERSIST, 1UL) < 0)
    return Status::FromErrno("create tap " + name + ": TUNSETPERSIST", errno);
  return Status::Ok();
}

Status ClearTapPersist(const std::string& name, bool multi_queue) {
  const std::string what = "clear persist on tap " + name;
  VF_RETURN_IF_ERROR(CheckName(name, what));
  // IFF_VNET_HDR is a per-device feature the attach would overwrite; the
  // device is about to go, so it does not matter here.
  auto fd = AttachTun(name, TapFlags(false, multi_queue), 0, what);
  if (!fd.ok()) return fd.status();
  if (::ioctl(fd->get(), TUNSETPERSIST, 0UL) < 0)
    return Status::FromErrno(what + ": TUNSETPERSIST", errno);
  return Status::Ok();
}

}  // namespace nl

Result<UniqueFd> OpenTap(const std::string& name, bool vnet_hdr, bool multi_queue) {
  const std::string what = "open tap " + name;
  VF_RETURN_IF_ERROR(CheckName(name, what));
  // TUNSETIFF would create a fresh, transient tap if `name` did not exist;
  // this opens existing ones only. (A link made in between is a race the
  // caller's naming rules out.)
  if (::if_nametoindex(name.c_str()) == 0) return Status::FromErrno(what, ENODEV);
  return AttachTun(name, TapFlags(vnet_hdr, multi_queue), O_NONBLOCK, what);
}

}  // namespace vfabric::netd
