#include "vhost_user_backend.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "vfabric/bridge/vhost_user_port.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::netd {
namespace {

using topology::VhostUserMode;

std::string ModeText(const topology::PortConfig& port) {
  return port.vhost_user_mode == VhostUserMode::kServer ? "server" : "client";
}

// mkdir -p of `dir` (0755): the socket's directory, /run/vfabric say.
Status MakeDirectories(const std::string& dir) {
  for (size_t slash = 1; slash != std::string::npos; slash = dir.find('/', slash + 1)) {
    const std::string prefix = dir.substr(0, slash);
    if (prefix.empty() || prefix == "/") continue;
    if (::mkdir(prefix.c_str(), 0755) < 0 && errno != EEXIST)
      return Status::FromErrno("mkdir " + prefix, errno);
  }
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
    return Status::FromErrno("mkdir " + dir, errno);
  struct stat st {};
  if (::stat(dir.c_str(), &st) < 0) return Status::FromErrno("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Error(dir + " is not a directory", ENOTDIR);
  return Status::Ok();
}

Result<std::unique_ptr<bridge::Port>> OpenServer(const topology::PortConfig& port) {
  const std::string& path = port.socket;
  const size_t slash = path.rfind('/');
  if (slash > 0) VF_RETURN_IF_ERROR(MakeDirectories(path.substr(0, slash)));
  // ListenUnix replaces only a stale socket (of a netd that crashed), never
  // a live one nor a file someone else put there.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    return Status::Error(path + " exists and is not a socket (netd replaces only a socket)",
                         EEXIST);
  auto listener = bridge::VhostUserPort::ListenUnix(path);
  if (!listener.ok()) return listener.status();
  // Owner, group and mode before a frontend can have a reason to connect:
  // the socket is useless to a guest of another user until they are set.
  if (port.owner || port.group) {
    const uid_t uid = port.owner ? static_cast<uid_t>(*port.owner) : static_cast<uid_t>(-1);
    const gid_t gid = port.group ? static_cast<gid_t>(*port.group) : static_cast<gid_t>(-1);
    if (::lchown(path.c_str(), uid, gid) < 0)
      return Status::FromErrno("vhost-user socket " + path + ": chown", errno);
  }
  if (port.permissions && ::chmod(path.c_str(), static_cast<mode_t>(*port.permissions)) < 0)
    return Status::FromErrno("vhost-user socket " + path + ": chmod", errno);
  bridge::VhostUserPortOptions options;
  options.socket_path = path;  // removed with the port (netd stops, the port goes)
  auto opened = bridge::VhostUserPort::Listen(port.name, std::move(listener).value(), options);
  if (!opened.ok()) return opened.status();
  return std::unique_ptr<bridge::Port>(std::move(opened).value());
}

Result<std::unique_ptr<bridge::Port>> OpenClient(const topology::PortConfig& port) {
  const std::string& path = port.socket;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status::Error("vhost-user socket " + path + ": path too long", EINVAL);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno("vhost-user socket " + path + ": socket", errno);
  // A Unix stream connect does not block on a listening peer (it fails
  // with EAGAIN when the backlog is full): no wait on netd's loop.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
    return Status::FromErrno("vhost-user socket " + path + ": connect", errno);
  auto opened = bridge::VhostUserPort::FromConnection(port.name, std::move(fd));
  if (!opened.ok()) return opened.status();
  return std::unique_ptr<bridge::Port>(std::move(opened).value());
}

class VhostUserBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "vhost-user"; }
  bool NeedsKernelLink() const override { return false; }
  // The socket and netd's role on it: a port whose socket or mode changes
  // is opened anew.
  std::string Identity(const topology::PortConfig& port, const LinkInfo*) const override {
    return "socket " + port.socket + " (" + ModeText(port) + ")";
  }
  std::string Waiting(const topology::PortConfig& port) const override {
    if (port.vhost_user_mode != VhostUserMode::kClient) return "";
    struct stat st {};
    if (::stat(port.socket.c_str(), &st) == 0) return "";
    return "no socket at " + port.socket +
           " yet (the frontend makes it); netd connects when it appears";
  }
  // A client's connection is the port's only one: when the frontend hangs
  // up (QEMU restarted, say), netd connects again (a server-mode port
  // takes the next frontend by itself).
  std::string Ended(const topology::PortConfig& port, const bridge::Port& opened) const override {
    if (port.vhost_user_mode != VhostUserMode::kClient ||
        opened.kind() != bridge::PortKind::kVhostUser)
      return "";
    const auto& vu = static_cast<const bridge::VhostUserPort&>(opened);
    return vu.connected() ? "" : "its frontend hung up; netd connects again";
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    return port.vhost_user_mode == VhostUserMode::kServer ? OpenServer(port) : OpenClient(port);
  }
  // The frontend takes the other side of the socket: it listens when netd
  // connects (QEMU server=on, libvirt mode='server') and connects when netd
  // listens.
  Result<vmm::NicPlug> GuestPlug(const topology::PortConfig& port) const override {
    vmm::NicPlug plug;
    plug.kind = vmm::NicPlug::Kind::kVhostUser;
    plug.socket = port.socket;
    plug.socket_server = port.vhost_user_mode == VhostUserMode::kClient;
    return plug;
  }
};

}  // namespace

std::unique_ptr<PortBackend> NewVhostUserBackend() { return std::make_unique<VhostUserBackend>(); }

}  // namespace vfabric::netd
