#include "vfabric/netd/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "listener.h"
#include "vfabric/common/log.h"
#include "vfabric/metrics/exposition.h"

namespace vfabric::netd {
namespace {

constexpr int kAcceptsPerRun = 16;

const char* Reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

std::string Head(int code, std::string_view content_type, size_t length) {
  std::string head = "HTTP/1.1 " + std::to_string(code) + " " + Reason(code) + "\r\n";
  head += "Content-Type: " + std::string(content_type) + "\r\n";
  head += "Content-Length: " + std::to_string(length) + "\r\n";
  if (code == 405) head += "Allow: GET, HEAD\r\n";
  head += "Connection: close\r\n\r\n";
  return head;
}

// Where the headers end ("\r\n\r\n", or "\n\n" from a lenient client), or npos.
size_t HeadersEnd(const std::string& in) {
  const size_t crlf = in.find("\r\n\r\n");
  const size_t lf = in.find("\n\n");
  if (crlf == std::string::npos) return lf == std::string::npos ? lf : lf + 2;
  if (lf == std::string::npos || crlf + 2 < lf) return crlf + 4;
  return lf + 2;
}

bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

}  // namespace

struct MetricsServer::Client {
  Client(UniqueFd client_fd, Clock::time_point now) : fd(std::move(client_fd)), accepted(now) {}

  UniqueFd fd;
  Clock::time_point accepted;
  std::string in;  // the request so far (at most max_request_bytes)
  // The answer: `head`, then `body` unless HEAD; `sent` counts both.
  std::string head;
  std::shared_ptr<const std::string> body;
  size_t sent = 0;
  std::optional<Clock::time_point> answered;  // when the answer was queued

  size_t total() const { return head.size() + (body ? body->size() : 0); }
  bool answering() const { return answered.has_value(); }
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Create(UniqueFd listener, std::string name,
                                                             MetricsLimits limits, Render render) {
  auto epoll = NewListenerEpoll(listener.get(), "metrics listener " + name);
  if (!epoll.ok()) return epoll.status();
  return std::unique_ptr<MetricsServer>(new MetricsServer(
      std::move(listener), std::move(epoll).value(), std::move(name), limits, std::move(render)));
}

MetricsServer::MetricsServer(UniqueFd listener, UniqueFd epoll, std::string name,
                             MetricsLimits limits, Render render)
    : listener_(std::move(listener)),
      epoll_(std::move(epoll)),
      name_(std::move(name)),
      limits_(limits),
      render_(std::move(render)) {}

MetricsServer::~MetricsServer() = default;

void MetricsServer::Run(Clock::time_point now) {
  ResumeListener(epoll_.get(), listener_.get(), &accept_paused_until_, now);
  epoll_event events[32];
  const int n = epoll_wait(epoll_.get(), events, 32, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == listener_.get())
      Accept(now);
    else if (clients_.count(fd) != 0)
      Service(fd, now);
  }
  std::vector<int> late;
  for (const auto& [fd, client] : clients_) {
    if (client.answering() ? now - *client.answered >= limits_.write_timeout
                           : now - client.accepted >= limits_.request_timeout)
      late.push_back(fd);
  }
  for (int fd : late) {
    ++(clients_.at(fd).answering() ? counters_.dropped_slow : counters_.timed_out);
    Drop(fd);
  }
}

std::optional<MetricsServer::Clock::time_point> MetricsServer::NextDeadline() const {
  std::optional<Clock::time_point> next = accept_paused_until_;
  for (const auto& [fd, client] : clients_) {
    const Clock::time_point due = client.answering() ? *client.answered + limits_.write_timeout
                                                     : client.accepted + limits_.request_timeout;
    if (!next || due < *next) next = due;
  }
  return next;
}

void MetricsServer::Accept(Clock::time_point now) {
  const int err = AcceptBatch(
      epoll_.get(), listener_.get(), kAcceptsPerRun, limits_.accept_pause, now,
      &accept_paused_until_, [&](UniqueFd fd) {
        if (clients_.size() >= limits_.max_clients && !MakeRoom()) {
          ++counters_.rejected_busy;
          const std::string text = "busy\n";
          const std::string answer = Head(503, "text/plain; charset=utf-8", text.size()) + text;
          (void)!send(fd.get(), answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          return;
        }
        const int raw = fd.get();
        if (WatchInput(epoll_.get(), raw) != 0) {
          ++counters_.accept_errors;
          return;
        }
        ++counters_.accepted;
        clients_.try_emplace(raw, std::move(fd), now);
      });
  if (err != 0) {
    // Out of fds: paused rather than spinning (listener.h).
    ++counters_.accept_errors;
    VF_LOG(kWarning) << "metrics listener " << name_ << ": accept: " << std::strerror(err)
                     << "; not accepting for " << limits_.accept_pause.count() << " ms";
  }
}

// The oldest client still sending its request gives its place to a new one:
// a flood of idle connections costs the flood its own connections.
bool MetricsServer::MakeRoom() {
  int victim = -1;
  Clock::time_point oldest{};
  for (const auto& [fd, client] : clients_) {
    if (client.answering()) continue;
    if (victim < 0 || client.accepted < oldest) {
      victim = fd;
      oldest = client.accepted;
    }
  }
  if (victim < 0) return false;
  ++counters_.evicted;
  Drop(victim);
  return true;
}

void MetricsServer::Service(int fd, Clock::time_point now) {
  Client& client = clients_.at(fd);
  if (client.answering()) {
    if (!Flush(client)) {
      ++counters_.client_errors;
      return Drop(fd);
    }
    if (client.sent == client.total()) {
      // Connection: close. What the client sent beyond its request (a body,
      // a pipelined request) is read away first: closing with unread bytes
      // would reset the connection, and the client could lose the answer.
      shutdown(fd, SHUT_WR);
      char sink[4096];
      for (int i = 0; i < 16 && read(fd, sink, sizeof sink) > 0; ++i) {
      }
      return Drop(fd);
    }
    return;
  }
  char buffer[4096];
  // Never more than one byte past the limit is held: enough to know it was passed.
  const size_t room = limits_.max_request_bytes + 1 - client.in.size();
  const ssize_t n = read(fd, buffer, std::min(sizeof buffer, room));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    // Gone before a complete request: nothing to answer.
    ++counters_.client_errors;
    return Drop(fd);
  }
  client.in.append(buffer, static_cast<size_t>(n));
  if (HeadersEnd(client.in) != std::string::npos || client.in.size() > limits_.max_request_bytes)
    Answer(client, now);
}

void MetricsServer::Answer(Client& client, Clock::time_point now) {
  const size_t end = HeadersEnd(client.in);
  if (end == std::string::npos) {
    ++counters_.bad_requests;
    return Respond(client, 431,
                   "request line and headers longer than " +
                       std::to_string(limits_.max_request_bytes) + " bytes\n",
                   false, now);
  }
  // The request line: METHOD SP TARGET SP HTTP/1.x
  const std::string_view request(client.in.data(), end);
  std::string_view line = request.substr(0, request.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  const size_t first = line.find(' ');
  const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
    ++counters_.bad_requests;
    return Respond(client, 400, "malformed request line\n", false, now);
  }
  const std::string_view method = line.substr(0, first);
  const std::string_view target = line.substr(first + 1, second - first - 1);
  const std::string_view version = line.substr(second + 1);
  if (!IsToken(method) || target.empty() || !version.starts_with("HTTP/1.")) {
    ++counters_.bad_requests;
    return Respond(client, 400, "malformed request line\n", false, now);
  }
  const bool head = method == "HEAD";
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") {
    ++counters_.not_found;
    return Respond(client, 404, "not found; metrics are at /metrics\n", head, now);
  }
  if (method != "GET" && !head) {
    ++counters_.bad_requests;
    return Respond(client, 405, "only GET and HEAD\n", false, now);
  }
  // Counted first, so that the scrape being answered is in what it shows.
  ++counters_.scrapes;
  // One render per interval, shared by every answer in it.
  if (!body_ || !rendered_at_ || now - *rendered_at_ >= limits_.min_render_interval) {
    const auto started = Clock::now();
    body_ = std::make_shared<const std::string>(render_());
    counters_.last_render_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    rendered_at_ = now;
    ++counters_.renders;
  }
  client.head = Head(200, metrics::kContentType, body_->size());
  client.body = head ? nullptr : body_;
  client.sent = 0;
  client.answered = now;
  client.in.clear();
  Service(client.fd.get(), now);
}

void MetricsServer::Respond(Client& client, int code, const std::string& body, bool head,
                            Clock::time_point now) {
  client.head = Head(code, "text/plain; charset=utf-8", body.size());
  client.body = head ? nullptr : std::make_shared<const std::string>(body);
  client.sent = 0;
  client.answered = now;
  client.in.clear();
  Service(client.fd.get(), now);
}

bool MetricsServer::Flush(Client& client) {
  while (client.sent < client.total()) {
    const bool in_head = client.sent < client.head.size();
    const char* data = in_head ? client.head.data() + client.sent
                               : client.body->data() + (client.sent - client.head.size());
    const size_t left = in_head ? client.head.size() - client.sent : client.total() - client.sent;
    const ssize_t n = send(client.fd.get(), data, left, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      client.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      epoll_event event{};
      event.events = EPOLLOUT;
      event.data.fd = client.fd.get();
      epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, client.fd.get(), &event);
      return true;
    }
    return false;
  }
  return true;
}

void MetricsServer::Drop(int fd) {
  // Closing the fd takes it out of the epoll set (no one else holds it).
  clients_.erase(fd);
}

Result<UniqueFd> ListenMetrics(const std::string& spec, gid_t unix_gid, std::string* bound) {
  const std::string what = "metrics listener " + spec;
  if (spec.find('/') != std::string::npos) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (spec.size() >= sizeof addr.sun_path) return Status::Error(what + ": path too long");
    std::memcpy(addr.sun_path, spec.c_str(), spec.size());
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return Status::FromErrno("socket for " + what, errno);
    {
      // A socket file left by a netd that died is replaced; a live one is not.
      UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
        return Status::Error(what + ": something is listening there already");
      if (errno == ECONNREFUSED) unlink(spec.c_str());
    }
    const mode_t old_mask = umask(0117);
    const int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    const int bind_errno = errno;
    umask(old_mask);
    if (rc != 0) return Status::FromErrno("bind " + what, bind_errno);
    if (chown(spec.c_str(), static_cast<uid_t>(-1), unix_gid) != 0)
      return Status::FromErrno("chown " + what, errno);
    if (listen(fd.get(), 64) != 0) return Status::FromErrno("listen " + what, errno);
    *bound = spec;
    return fd;
  }
  // HOST:PORT or [HOST]:PORT, numeric: a daemon resolves no names at start.
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos)
    return Status::Error(what + ": expected ADDRESS:PORT, [IPV6]:PORT or a socket path");
  std::string host = spec.substr(0, colon);
  const std::string port_text = spec.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty())
    return Status::Error(what + ": port \"" + port_text + "\" is not 0..65535");
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    family = AF_INET6;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1)
      return Status::Error(what + ": \"" + host + "\" is not an IPv6 address");
    length = sizeof *in6;
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    if (host.empty()) {
      in4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1) {
      return Status::Error(what + ": \"" + host +
                           "\" is not an IPv4 address (IPv6 goes in brackets: [::1]:9464)");
    }
    length = sizeof *in4;
  }
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno("socket for " + what, errno);
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0)
    return Status::FromErrno("bind " + what, errno);
  if (listen(fd.get(), 64) != 0) return Status::FromErrno("listen " + what, errno);
  sockaddr_storage actual{};
  socklen_t actual_length = sizeof actual;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&actual), &actual_length);
  char text[INET6_ADDRSTRLEN] = {};
  uint16_t actual_port = 0;
  if (family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&actual);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    actual_port = ntohs(in6->sin6_port);
    *bound = "[" + std::string(text) + "]:" + std::to_string(actual_port);
  } else {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(&actual);
    inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
    actual_port = ntohs(in4->sin_port);
    *bound = std::string(text) + ":" + std::to_string(actual_port);
  }
  return fd;
}

}  // namespace vfabric::netd
