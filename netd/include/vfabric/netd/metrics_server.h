// netd's metrics listener (--metrics-listen): a minimal HTTP/1.1 server that
// answers `GET /metrics` with Prometheus' text exposition format and
// anything else with an error, off by default.
//
// It runs in netd's event loop, not a thread of its own: the exposition is
// read from the controller, the kernel seam and the userspace switches,
// which live on the loop's thread and are not thread-safe (netd/DESIGN.md,
// "Threads"). A thread would have to hand every scrape to the loop and wait
// for it anyway; in the loop the server only needs never to block, which it
// does the way the control server does (control_server.h):
// - every socket is non-blocking, and a turn does a bounded amount of work
//   (accepts, reads per client);
// - a request is the request line and headers, at most max_request_bytes,
//   complete within request_timeout of the connection (so a client
//   trickling bytes holds its slot no longer than that); a body is never
//   read; one request per connection (`Connection: close`);
// - the answer is written as the client reads, and a client that has not
//   read all of it within write_timeout is dropped;
// - at most max_clients connections: at the cap the oldest one still sending
//   its request makes room, and when all are being answered the new one gets
//   503 and is closed;
// - the exposition is rendered at most once per min_render_interval and
//   shared by every answer in that time, so a flood of scrapes costs the
//   loop one render per interval, and memory one body plus
//   max_request_bytes per client;
// - every way a client leaves early is counted (MetricsServerCounters),
//   and netd exports those counters too.
// The datapath is never involved: rendering reads the counters the netctl
// views read (netd/src/metrics_views.cc).
//
// How to drive it: watch fd() (an epoll fd) in the loop, call Run(now) when
// it is readable and at NextDeadline(). Time comes in as an argument, so
// tests can warp it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::netd {

struct MetricsLimits {
  size_t max_clients = 16;
  size_t max_request_bytes = 8192;                  // request line and headers
  std::chrono::milliseconds request_timeout{5000};  // from accept to the end of the headers
  std::chrono::milliseconds write_timeout{10000};   // from the request to the answer's last byte
  std::chrono::milliseconds min_render_interval{1000};
  std::chrono::milliseconds accept_pause{100};  // after accept() ran out of fds
};

struct MetricsServerCounters {
  uint64_t accepted = 0;
  uint64_t scrapes = 0;            // 200 answers to GET or HEAD /metrics
  uint64_t renders = 0;            // times the exposition was rendered
  uint64_t not_found = 0;          // 404: another path
  uint64_t bad_requests = 0;       // 400, 405, 431: malformed, another method, too long
  uint64_t rejected_busy = 0;      // 503 at max_clients with every client being answered
  uint64_t evicted = 0;            // closed at max_clients to make room
  uint64_t timed_out = 0;          // no complete request within request_timeout
  uint64_t dropped_slow = 0;       // the answer not read within write_timeout
  uint64_t client_errors = 0;      // the client reset or closed before its answer was out
  uint64_t accept_errors = 0;      // accept() failed (EMFILE, ENFILE, ...)
  double last_render_seconds = 0;  // how long the last render took
};

class MetricsServer {
 public:
  using Clock = std::chrono::steady_clock;
  // Renders the exposition (called on the loop's thread, inside Run).
  using Render = std::function<std::string()>;

  // Serves `listener` (listening, non-blocking, a TCP or Unix stream
  // socket; `name` names it in messages). Fails when no epoll fd can be
  // made.
  static Result<std::unique_ptr<MetricsServer>> Create(UniqueFd listener, std::string name,
                                                       MetricsLimits limits, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int fd() const { return epoll_.get(); }
  // Accepts, reads, answers, writes and expires what is due. Never blocks
  // (beyond the render, when one is due).
  void Run(Clock::time_point now);
  // When Run must be called even if fd() stays quiet; nullopt when nothing
  // is pending.
  std::optional<Clock::time_point> NextDeadline() const;

  size_t clients() const { return clients_.size(); }
  const MetricsServerCounters& counters() const { return counters_; }
  const std::string& name() const { return name_; }

 private:
  struct Client;
  MetricsServer(UniqueFd listener, UniqueFd epoll, std::string name, MetricsLimits limits,
                Render render);

  void Accept(Clock::time_point now);
  bool MakeRoom();
  void Service(int fd, Clock::time_point now);
  // Parses the request in client.in and queues its answer.
  void Answer(Client& client, Clock::time_point now);
  void Respond(Client& client, int code, const std::string& body, bool head, Clock::time_point now);
  // False when the peer is gone.
  bool Flush(Client& client);
  void Drop(int fd);

  UniqueFd listener_;
  UniqueFd epoll_;
  const std::string name_;
  const MetricsLimits limits_;
  Render render_;
  std::map<int, Client> clients_;            // by fd
  std::shared_ptr<const std::string> body_;  // the last rendered exposition
  std::optional<Clock::time_point> rendered_at_;
  std::optional<Clock::time_point> accept_paused_until_;
  MetricsServerCounters counters_;
};

// A listening socket for --metrics-listen: "HOST:PORT" with a numeric IPv4
// host (empty: every address), "[IPV6]:PORT", or the path of a Unix socket
// (containing a '/'), made mode 0660 with group `unix_gid` (a stale socket
// file of a dead netd is replaced, a live one refused). Non-blocking,
// close-on-exec. `*bound` receives what it is bound to ("127.0.0.1:9464",
// with the port the kernel chose for port 0).
Result<UniqueFd> ListenMetrics(const std::string& spec, gid_t unix_gid, std::string* bound);

}  // namespace vfabric::netd
