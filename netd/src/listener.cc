#include "listener.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>

namespace vfabric::netd {

int WatchInput(int epoll, int fd) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : errno;
}

Result<UniqueFd> NewListenerEpoll(int listener, const std::string& what) {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return Status::FromErrno("epoll for " + what, errno);
  if (int err = WatchInput(epoll.get(), listener); err != 0)
    return Status::FromErrno("epoll_ctl for " + what, err);
  return epoll;
}

void ResumeListener(int epoll, int listener, std::optional<ListenerClock::time_point>* paused_until,
                    ListenerClock::time_point now) {
  if (!*paused_until || now < **paused_until) return;
  paused_until->reset();
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  epoll_ctl(epoll, EPOLL_CTL_MOD, listener, &event);
}

int AcceptBatch(int epoll, int listener, int max, std::chrono::milliseconds pause,
                ListenerClock::time_point now,
                std::optional<ListenerClock::time_point>* paused_until,
                const std::function<void(UniqueFd)>& take) {
  for (int i = 0; i < max; ++i) {
    UniqueFd fd(accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd) {
      take(std::move(fd));
      continue;
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return 0;
    if (err == EINTR || err == ECONNABORTED) continue;
    // See the file comment: stop watching it for the pause.
    epoll_event event{};
    event.data.fd = listener;
    epoll_ctl(epoll, EPOLL_CTL_MOD, listener, &event);
    *paused_until = now + pause;
    return err;
  }
  return 0;
}

}  // namespace vfabric::netd
