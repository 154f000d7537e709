#include "vfabric/netd/control_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "listener.h"
#include "vfabric/common/log.h"
#include "vfabric/protocol/protocol.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

constexpr size_t kReadChunk = 64 * 1024;
// Reads per client per Run: a client streaming a 16 MiB request takes
// turns with the rest of the loop (epoll is level-triggered: it comes back).
constexpr int kReadsPerService = 16;
// Requests answered per client per Run: a client pipelining thousands of
// cheap requests in one read takes turns too.
constexpr int kRequestsPerService = 8;
// Connections accepted per Run, for the same reason.
constexpr int kAcceptsPerRun = 64;
// An answer buffer this big is freed once sent rather than kept.
constexpr size_t kKeptOutputCapacity = 64 * 1024;

// Root, netd's own user, and members of the socket's group may connect.
bool PeerAllowed(int fd, gid_t socket_gid, std::string* who) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return false;
  *who = "pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid);
  if (cred.uid == 0 || cred.uid == geteuid() || cred.gid == socket_gid) return true;
  gid_t groups[256];
  socklen_t groups_length = sizeof groups;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &groups_length) == 0) {
    for (size_t i = 0; i < groups_length / sizeof(gid_t); ++i)
      if (groups[i] == socket_gid) return true;
  }
  return false;
}

// For a client about to be closed: one try, never a wait. What does not fit
// in the socket's buffer is lost with the connection.
void SendOnce(int fd, const json& answer) {
  const std::string line = answer.dump() + "\n";
  (void)!send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

struct ControlServer::Client {
  Client(UniqueFd client_fd, std::string peer, size_t max_line_bytes, Clock::time_point now)
      : fd(std::move(client_fd)),
        who(std::move(peer)),
        in(max_line_bytes),
        last_request(now),
        last_progress(now) {}

  UniqueFd fd;
  std::string who;  // "pid P uid U", for the log
  LineFramer in;
  std::string out;  // the answer being written
  size_t out_sent = 0;
  Clock::time_point last_request;   // connect, or the last complete request
  Clock::time_point last_progress;  // the last time `out` moved
  uint32_t events = EPOLLIN;
  bool closing = false;  // close once `out` is written

  bool writing() const { return out_sent < out.size(); }
};

Result<std::unique_ptr<ControlServer>> ControlServer::Create(UniqueFd listener, std::string name,
                                                             gid_t socket_gid, ControlLimits limits,
                                                             Handler handler) {
  auto epoll = NewListenerEpoll(listener.get(), "control socket " + name);
  if (!epoll.ok()) return epoll.status();
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(listener),
                                                          std::move(epoll).value(), std::move(name),
                                                          socket_gid, limits, std::move(handler)));
}

ControlServer::ControlServer(UniqueFd listener, UniqueFd epoll, std::string name, gid_t socket_gid,
                             ControlLimits limits, Handler handler)
    : listener_(std::move(listener)),
      epoll_(std::move(epoll)),
      name_(std::move(name)),
      socket_gid_(socket_gid),
      limits_(limits),
      handler_(std::move(handler)),
      read_buffer_(new char[kReadChunk]) {}

ControlServer::~ControlServer() = default;

void ControlServer::Run(Clock::time_point now) {
  ResumeListener(epoll_.get(), listener_.get(), &accept_paused_until_, now);
  // Those whose turn ended with requests left go first.
  const std::set<int> ready = std::move(ready_);
  ready_.clear();
  for (int fd : ready)
    if (clients_.count(fd) != 0) Service(fd, now);
  epoll_event events[64];
  const int n = epoll_wait(epoll_.get(), events, 64, 0);
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == listener_.get()) {
      Accept(now);
    } else if (clients_.count(fd) != 0) {
      Service(fd, now);
    }
  }
  // Timeouts. A client whose answer waits is judged by the writes (a slow
  // reader of a big answer lives while it reads); one with nothing to
  // write by its last request (bytes of an unfinished one do not count, so
  // trickling a request byte by byte does not hold a slot).
  std::vector<int> slow, idle;
  for (const auto& [fd, client] : clients_) {
    if (client.writing()) {
      if (now - client.last_progress >= limits_.write_timeout) slow.push_back(fd);
    } else if (now - client.last_request >= limits_.idle_timeout) {
      idle.push_back(fd);
    }
  }
  for (int fd : slow) {
    ++counters_.dropped_slow;
    Drop(fd, "its answer went unread too long");
  }
  for (int fd : idle) {
    ++counters_.timed_out_idle;
    Drop(fd, nullptr);
  }
}

std::optional<ControlServer::Clock::time_point> ControlServer::NextDeadline() const {
  if (!ready_.empty()) return Clock::time_point{};  // at once
  std::optional<Clock::time_point> next = accept_paused_until_;
  for (const auto& [fd, client] : clients_) {
    const Clock::time_point due = client.writing() ? client.last_progress + limits_.write_timeout
                                                   : client.last_request + limits_.idle_timeout;
    if (!next || due < *next) next = due;
  }
  return next;
}

void ControlServer::Accept(Clock::time_point now) {
  const int err = AcceptBatch(
      epoll_.get(), listener_.get(), kAcceptsPerRun, limits_.accept_pause, now,
      &accept_paused_until_, [&](UniqueFd fd) {
        std::string who;
        if (!PeerAllowed(fd.get(), socket_gid_, &who)) {
          ++counters_.refused_peer;
          VF_LOG(kWarning) << "control socket: refused " << who;
          SendOnce(fd.get(),
                   ErrorAnswer(protocol::code::kPermission, "not allowed to use " + name_));
          return;
        }
        if (clients_.size() >= limits_.max_clients && !MakeRoomForOne(now)) {
          ++counters_.rejected_busy;
          SendOnce(fd.get(),
                   ErrorAnswer(protocol::code::kBusy, "netd serves at most " +
                                                          std::to_string(limits_.max_clients) +
                                                          " control connections and all are busy; "
                                                          "try again"));
          return;
        }
        const int raw = fd.get();
        if (int watch_error = WatchInput(epoll_.get(), raw); watch_error != 0) {
          ++counters_.accept_errors;
          VF_LOG(kWarning) << "control socket " << name_
                           << ": epoll_ctl: " << std::strerror(watch_error);
          return;
        }
        ++counters_.accepted;
        clients_.try_emplace(raw, std::move(fd), std::move(who), limits_.max_request_bytes, now);
      });
  if (err != 0) {
    // Out of fds (or memory): paused (listener.h); the clients' own limits
    // and timeouts make room.
    ++counters_.accept_errors;
    VF_LOG(kWarning) << "control socket " << name_ << ": accept: " << std::strerror(err)
                     << "; not accepting for " << limits_.accept_pause.count() << " ms ("
                     << clients_.size() << " clients)";
  }
}

// At max_clients, the client idle the longest gives its place to a new one:
// a flood of idle connections then costs the flood its own connections,
// never netctl's access. Clients with an answer being written are not
// idle; among the rest, one without an unfinished request goes first.
bool ControlServer::MakeRoomForOne(Clock::time_point now) {
  int victim = -1;
  std::pair<bool, Clock::time_point> best{};
  for (const auto& [fd, client] : clients_) {
    if (client.writing() || client.closing) continue;
    const std::pair<bool, Clock::time_point> key{client.in.partial_bytes() > 0,
                                                 client.last_request};
    if (victim < 0 || key < best) {
      victim = fd;
      best = key;
    }
  }
  if (victim < 0) return false;
  ++counters_.evicted_idle;
  if (now - last_limit_log_ >= std::chrono::seconds(10)) {
    last_limit_log_ = now;
    VF_LOG(kWarning) << "control socket " << name_ << ": at its limit of " << limits_.max_clients
                     << " connections; closing the longest idle for new ones ("
                     << counters_.evicted_idle << " closed, " << counters_.rejected_busy
                     << " refused so far)";
  }
  SendOnce(victim, ErrorAnswer(protocol::code::kBusy,
                               "netd serves at most " + std::to_string(limits_.max_clients) +
                                   " control connections; this idle one made room "
                                   "for a new one"));
  Drop(victim, nullptr);
  return true;
}

void ControlServer::Service(int fd, Clock::time_point now) {
  Client& client = clients_.find(fd)->second;
  int reads = 0;
  int answered = 0;
  while (true) {
    if (!Flush(client, now)) return Drop(fd, nullptr);  // the peer went away
    if (client.writing()) return SetEvents(client, EPOLLOUT);
    if (client.closing) return Drop(fd, nullptr);
    if (answered == kRequestsPerService && client.in.HasLine()) {
      ready_.insert(fd);  // epoll would not say: these bytes were read already
      return;
    }
    if (std::optional<std::string> line = client.in.Next()) {
      if (line->find_first_not_of(" \t\r") == std::string::npos) continue;
      ++answered;
      ++counters_.requests;
      client.last_request = now;
      hand_off_ = nullptr;
      const json answer = AnswerRequestLine(*line, limits_.max_depth, handler_);
      line.reset();  // before the answer's text is made: one of the two at a time
      if (hand_off_) return HandOffClient(fd, EncodeAnswer(answer));
      client.out = EncodeAnswer(answer);
      client.out_sent = 0;
      client.last_progress = now;
      continue;
    }
    if (client.in.failed()) {
      ++counters_.dropped_too_long;
      VF_LOG(kWarning) << "control socket: " << client.who << ": request longer than "
                       << limits_.max_request_bytes << " bytes; closing";
      client.out = EncodeAnswer(ErrorAnswer(
          protocol::code::kBadRequest,
          "request too long (more than " + std::to_string(limits_.max_request_bytes) + " bytes)"));
      client.out_sent = 0;
      client.last_progress = now;
      client.closing = true;
      continue;
    }
    if (reads == kReadsPerService) return SetEvents(client, EPOLLIN);
    if (!FreeMemoryFor(fd)) return;  // this client held the most: dropped
    const ssize_t n = read(fd, read_buffer_.get(), kReadChunk);
    if (n > 0) {
      ++reads;
      (void)client.in.Append(std::string_view(read_buffer_.get(), static_cast<size_t>(n)));
      continue;  // a failure shows in failed() once the lines before it are answered
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return SetEvents(client, EPOLLIN);
    // End of stream (or a reset): every complete request was answered; an
    // unfinished one goes with the connection.
    return Drop(fd, nullptr);
  }
}

bool ControlServer::Flush(Client& client, Clock::time_point now) {
  while (client.writing()) {
    const ssize_t n = send(client.fd.get(), client.out.data() + client.out_sent,
                           client.out.size() - client.out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      client.out_sent += static_cast<size_t>(n);
      client.last_progress = now;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  if (client.out.capacity() > kKeptOutputCapacity) std::string().swap(client.out);
  client.out.clear();
  client.out_sent = 0;
  return true;
}

// The client's previous answer is out (a request is taken only then), so
// the connection carries nothing of the server's any more.
void ControlServer::HandOffClient(int fd, std::string answer) {
  Taker taker = std::exchange(hand_off_, nullptr);
  auto it = clients_.find(fd);
  UniqueFd client = std::move(it->second.fd);
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  clients_.erase(it);
  ready_.erase(fd);
  ++handed_off_;
  taker(std::move(client), std::move(answer));
}

void ControlServer::SetEvents(Client& client, uint32_t events) {
  if (client.events == events) return;
  client.events = events;
  epoll_event event{};
  event.events = events;
  event.data.fd = client.fd.get();
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, client.fd.get(), &event);
}

void ControlServer::Drop(int fd, const char* why) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (why != nullptr)
    VF_LOG(kWarning) << "control socket: dropped " << it->second.who << ": " << why;
  // Closing the fd takes it out of the epoll set (no one else holds it).
  clients_.erase(it);
  ready_.erase(fd);
}

size_t ControlServer::held_bytes() const {
  size_t held = 0;
  for (const auto& [fd, client] : clients_) held += client.in.held_bytes() + client.out.capacity();
  return held;
}

// Before `fd` reads another chunk: while that would take all clients over
// max_total_bytes, the client holding the most is dropped (a small request
// is then never the one refused). False when that was `fd` itself.
bool ControlServer::FreeMemoryFor(int fd) {
  while (held_bytes() + kReadChunk > limits_.max_total_bytes) {
    int victim = fd;
    size_t most = clients_.at(fd).in.held_bytes() + clients_.at(fd).out.capacity();
    for (const auto& [other, client] : clients_) {
      const size_t held = client.in.held_bytes() + client.out.capacity();
      if (held > most) {
        victim = other;
        most = held;
      }
    }
    ++counters_.dropped_memory;
    SendOnce(victim, ErrorAnswer(protocol::code::kBusy,
                                 "netd holds " + std::to_string(limits_.max_total_bytes) +
                                     " bytes of requests and answers for its clients at most; "
                                     "this connection held the most and is closed"));
    Drop(victim, "it held the most when the clients' memory bound was reached");
    if (victim == fd) return false;
  }
  return true;
}

std::string ControlServer::EncodeAnswer(const json& answer) {
  // Invalid UTF-8 in a string (the controller echoes names it was given) is
  // replaced rather than thrown on.
  std::string text = answer.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > limits_.max_answer_bytes) {
    ++counters_.answers_too_large;
    json error = ErrorAnswer(protocol::code::kFailed,
                             "the answer (" + std::to_string(text.size()) +
                                 " bytes) is larger than the control socket's limit "
                                 "of " +
                                 std::to_string(limits_.max_answer_bytes) + " bytes");
    if (answer.is_object() && answer.contains("id")) error["id"] = answer["id"];
    text = error.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  text += '\n';
  return text;
}

}  // namespace vfabric::netd
