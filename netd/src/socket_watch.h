// The sockets of client-mode vhost-user ports, watched (inotify on their
// directories) so that netd connects as soon as a frontend makes its socket
// (QEMU -chardev socket,server=on starting or restarting) rather than at the
// next periodic resync. Internal to netd (the daemon's loop).
//
// A directory that does not exist yet cannot be watched: a socket there is
// found at the next resync, as before. Threads: the daemon's loop only.
#pragma once

#include <map>
#include <set>
#include <string>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

class SocketWatch {
 public:
  static Result<SocketWatch> Create();

  int fd() const { return fd_.get(); }
  // Watches the directories of these socket paths and no others.
  void Set(const std::set<std::string>& paths);
  // Reads the pending events; true if one was a watched socket appearing
  // (created, moved in, or its attributes changed).
  bool Drain();
  const std::map<std::string, int>& directories() const { return dirs_; }

 private:
  explicit SocketWatch(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::map<std::string, int> dirs_;             // directory -> watch descriptor
  std::map<int, std::set<std::string>> names_;  // watch descriptor -> socket names in it
};

// The socket paths of the client-mode vhost-user ports of `topology`.
std::set<std::string> ClientVhostUserSockets(const topology::Topology& topology);

}  // namespace vfabric::netd
