// The accept side of a listening socket served from netd's loop: the
// control socket (control_server.cc) and the metrics listener
// (metrics_server.cc) accept the same way, here.
//
// accept4 (non-blocking, close-on-exec) up to a batch per turn, so that a
// flood of connections cannot hold the loop; EAGAIN ends the turn; EINTR and
// ECONNABORTED (a client gone before it was accepted) are skipped; any other
// failure (EMFILE, ENFILE, ENOBUFS: out of descriptors or memory) leaves the
// listener readable, so waiting on it again at once would spin: it is taken
// out of the epoll set (EPOLL_CTL_MOD with no events) for a pause, and
// ResumeListener puts it back once the pause is over. The caller counts and
// logs the failure (AcceptBatch returns its errno) and decides what becomes
// of each accepted connection.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::netd {

using ListenerClock = std::chrono::steady_clock;

// Watches `fd` in `epoll` for input (EPOLL_CTL_ADD, EPOLLIN, data.fd =
// `fd`). Returns 0 or epoll_ctl's errno.
int WatchInput(int epoll, int fd);

// A new epoll set watching `listener` for input; the error names `what`
// ("control socket /run/vfabric/netd.sock").
Result<UniqueFd> NewListenerEpoll(int listener, const std::string& what);

// When `*paused_until` is set and `now` is past it: clears it and watches
// `listener` in `epoll` for input again.
void ResumeListener(int epoll, int listener, std::optional<ListenerClock::time_point>* paused_until,
                    ListenerClock::time_point now);

// Accepts up to `max` connections on `listener`, handing each to `take`.
// Returns 0, or the errno of an accept that failed for want of resources;
// then the listener is paused (out of `epoll`) and `*paused_until` is
// now + `pause`.
int AcceptBatch(int epoll, int listener, int max, std::chrono::milliseconds pause,
                ListenerClock::time_point now,
                std::optional<ListenerClock::time_point>* paused_until,
                const std::function<void(UniqueFd)>& take);

}  // namespace vfabric::netd
