#include "socket_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vfabric/common/log.h"

namespace vfabric::netd {

Result<SocketWatch> SocketWatch::Create() {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) return Status::FromErrno("inotify_init1", errno);
  return SocketWatch(std::move(fd));
}

void SocketWatch::Set(const std::set<std::string>& paths) {
  std::map<std::string, std::set<std::string>> wanted;  // directory -> names
  for (const std::string& path : paths) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash + 1 == path.size()) continue;
    wanted[slash == 0 ? "/" : path.substr(0, slash)].insert(path.substr(slash + 1));
  }
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    ::inotify_rm_watch(fd_.get(), it->second);
    names_.erase(it->second);
    it = dirs_.erase(it);
  }
  for (auto& [dir, names] : wanted) {
    // Adding a watch again is cheap and also catches a directory that was
    // removed and made anew (its watch went with it).
    const int wd = ::inotify_add_watch(fd_.get(), dir.c_str(),
                                       IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR);
    if (wd < 0) {
      // Missing (the frontend makes it later) or not ours to read: the
      // periodic resync finds the socket.
      if (auto old = dirs_.find(dir); old != dirs_.end()) {
        names_.erase(old->second);
        dirs_.erase(old);
      }
      VF_LOG(kDebug) << "socket watch: " << dir << ": " << std::strerror(errno);
      continue;
    }
    if (auto old = dirs_.find(dir); old != dirs_.end() && old->second != wd)
      names_.erase(old->second);
    dirs_[dir] = wd;
    names_[wd] = std::move(names);
  }
}

bool SocketWatch::Drain() {
  bool appeared = false;
  alignas(inotify_event) char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (ssize_t at = 0; at + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->len == 0) continue;
      auto names = names_.find(event->wd);
      if (names != names_.end() && names->second.count(event->name)) appeared = true;
    }
  }
  return appeared;
}

std::set<std::string> ClientVhostUserSockets(const topology::Topology& topology) {
  std::set<std::string> out;
  for (const topology::NetworkConfig& network : topology.networks)
    for (const topology::PortConfig& port : network.ports)
      if (port.kind == topology::PortKind::kVhostUser &&
          port.vhost_user_mode == topology::VhostUserMode::kClient && !port.socket.empty())
        out.insert(port.socket);
  return out;
}

}  // namespace vfabric::netd
