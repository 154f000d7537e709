// The drift monitor: a nonblocking NETLINK_ROUTE socket in RTNLGRP_LINK,
// RTNLGRP_NEIGH and the address groups (a bridge's host addresses are
// desired state too). It does not interpret events beyond "a link, FDB entry
// or address changed": the daemon re-reads the state and lets the planner
// diff it.
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <memory>
#include <vector>

#include "nl_parse.h"
#include "nl_socket.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd {
namespace {

constexpr int kReceiveBufferBytes = 1 << 20;

class NetlinkLinkMonitor final : public LinkMonitor {
 public:
  explicit NetlinkLinkMonitor(nl::MnlSocketPtr socket)
      : socket_(std::move(socket)), buffer_(65536) {}

  int fd() const override { return mnl_socket_get_fd(socket_.get()); }

  Result<bool> Drain() override {
    bool changed = false;
    while (true) {
      ssize_t received = mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size());
      if (received < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return changed;
        // The socket overran and events were lost: assume everything changed.
        if (errno == ENOBUFS) {
          changed = true;
          continue;
        }
        return Status::FromErrno("read link monitor socket", errno);
      }
      auto* header = reinterpret_cast<const nlmsghdr*>(buffer_.data());
      int remaining = static_cast<int>(received);
      while (nl::MessageOk(header, remaining)) {
        switch (header->nlmsg_type) {
          case RTM_NEWLINK:
          case RTM_DELLINK:
          case RTM_NEWNEIGH:
          case RTM_DELNEIGH:
          case RTM_NEWADDR:
          case RTM_DELADDR:
            changed = true;
            break;
          default:
            break;
        }
        header = mnl_nlmsg_next(header, &remaining);
      }
    }
  }

 private:
  nl::MnlSocketPtr socket_;
  std::vector<char> buffer_;
};

}  // namespace

Result<std::unique_ptr<LinkMonitor>> NewLinkMonitor() {
  nl::MnlSocketPtr socket(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!socket) return Status::FromErrno("open link monitor socket", errno);
  // Best effort: a bigger buffer makes overruns (ENOBUFS) rarer; they are handled anyway.
  int bytes = kReceiveBufferBytes;
  setsockopt(mnl_socket_get_fd(socket.get()), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  if (mnl_socket_bind(socket.get(),
                      RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
                      MNL_SOCKET_AUTOPID) < 0)
    return Status::FromErrno(
        "bind link monitor socket to RTNLGRP_LINK|RTNLGRP_NEIGH|RTNLGRP_IPV4_IFADDR|"
        "RTNLGRP_IPV6_IFADDR",
        errno);
  return std::unique_ptr<LinkMonitor>(std::make_unique<NetlinkLinkMonitor>(std::move(socket)));
}

}  // namespace vfabric::netd
