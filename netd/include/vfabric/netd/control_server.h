// netd's control socket server: accepts netctl (and any script) on a Unix
// stream socket, frames requests into lines, has them answered, and writes
// the answers back, all without ever blocking the event loop that also
// repairs the fabric.
//
// Hostile or broken clients are bounded (issue 20); the limits are in
// ControlLimits and documented in docs/control-protocol.md:
// - Writes never wait: answers queue per client and go out as the client
//   reads. A client's next request is taken only once its previous answer
//   is out (back-pressure), so what waits for one client is one answer. A
//   client whose answer makes no progress for write_timeout is dropped.
// - A request line is capped while it is read (LineFramer), and all the
//   bytes held for all clients (unfinished requests and unsent answers)
//   are capped: when a read would go over, the client holding the most is
//   dropped with error code `busy` (so small requests keep working).
// - Connections are capped (max_clients, well below the fd limit so that
//   repair always finds fds for netlink sockets and taps). At the cap a new
//   connection takes the place of the client idle the longest (no answer
//   being written); when every client is busy, the new one is answered
//   `busy` and closed. A client without a complete request for
//   idle_timeout is closed.
// - accept() failing for want of fds (EMFILE/ENFILE) pauses accepting for a
//   moment instead of spinning on a listener that stays readable.
//
// How to drive it: watch fd() (an epoll fd, readable when there is work)
// in the event loop, call Run(now) when it is readable and at
// NextDeadline(). Single-threaded; Run never blocks. Time comes in as an
// argument, so tests can warp it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "vfabric/common/unique_fd.h"
#include "vfabric/netd/control_line.h"

namespace vfabric::netd {

struct ControlLimits {
  size_t max_request_bytes = 16 * 1024 * 1024;  // one request line, without its '\n'
  size_t max_depth = kMaxRequestDepth;          // arrays/objects inside one another
  // One answer; a bigger one is replaced by an error (code `failed`).
  size_t max_answer_bytes = 64 * 1024 * 1024;
  // Unfinished requests plus unsent answers of all clients together.
  size_t max_total_bytes = 64 * 1024 * 1024;
  size_t max_clients = 256;
  std::chrono::milliseconds idle_timeout{60000};   // no complete request for this long: closed
  std::chrono::milliseconds write_timeout{10000};  // an answer not read for this long: dropped
  std::chrono::milliseconds accept_pause{100};     // after accept() ran out of fds
};

// Every way a client leaves or is kept out, counted.
struct ControlCounters {
  uint64_t accepted = 0;
  uint64_t refused_peer = 0;    // credentials not allowed
  uint64_t rejected_busy = 0;   // at max_clients with every client busy
  uint64_t evicted_idle = 0;    // closed at max_clients to make room
  uint64_t timed_out_idle = 0;  // no request for idle_timeout
  uint64_t dropped_slow = 0;    // answer not read for write_timeout
  uint64_t dropped_too_long = 0;
  uint64_t dropped_memory = 0;  // held the most when the total bound was reached
  uint64_t accept_errors = 0;   // accept() failed (EMFILE, ENFILE, ...)
  uint64_t requests = 0;
  uint64_t answers_too_large = 0;
};

class ControlServer {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  // Serves `listener` (a listening, non-blocking Unix stream socket; `name`
  // names it in messages). Peers must be root, netd's uid, or carry
  // `socket_gid` (SO_PEERCRED/SO_PEERGROUPS). Fails when no epoll fd can be
  // made.
  static Result<std::unique_ptr<ControlServer>> Create(UniqueFd listener, std::string name,
                                                       gid_t socket_gid, ControlLimits limits,
                                                       Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Readable when clients or the listener have something; watch it.
  int fd() const { return epoll_.get(); }
  // Accepts, reads, answers, writes and expires what is due. Never blocks.
  void Run(Clock::time_point now);
  // When Run must be called even if fd() stays quiet (timeouts, the end of
  // an accept pause, requests already read waiting for their turn: then a
  // time already past); nullopt when nothing is pending.
  std::optional<Clock::time_point> NextDeadline() const;

  // For a handler, while it answers a request: once the answer is made,
  // the connection leaves the server (out of its epoll set and its limits)
  // and `taker` gets it with the answer's bytes, which it must send first.
  // Bytes the client sent after that request are dropped. Used by
  // capture.start, whose answer is followed by a stream (capture.h).
  using Taker = std::function<void(UniqueFd client, std::string answer)>;
  void HandOff(Taker taker) { hand_off_ = std::move(taker); }
  uint64_t handed_off() const { return handed_off_; }

  size_t clients() const { return clients_.size(); }
  // Bytes held for all clients (unfinished requests, unsent answers).
  size_t held_bytes() const;
  const ControlCounters& counters() const { return counters_; }
  const ControlLimits& limits() const { return limits_; }

 private:
  struct Client;
  ControlServer(UniqueFd listener, UniqueFd epoll, std::string name, gid_t socket_gid,
                ControlLimits limits, Handler handler);

  void Accept(Clock::time_point now);
  bool MakeRoomForOne(Clock::time_point now);
  void Service(int fd, Clock::time_point now);
  bool Flush(Client& client, Clock::time_point now);
  void SetEvents(Client& client, uint32_t events);
  void Drop(int fd, const char* why);
  void HandOffClient(int fd, std::string answer);
  bool FreeMemoryFor(int fd);
  std::string EncodeAnswer(const nlohmann::json& answer);

  UniqueFd listener_;
  UniqueFd epoll_;
  const std::string name_;
  const gid_t socket_gid_;
  const ControlLimits limits_;
  Handler handler_;
  std::map<int, Client> clients_;  // by fd
  // Clients with complete requests left after their turn (see Service).
  std::set<int> ready_;
  std::unique_ptr<char[]> read_buffer_;
  std::optional<Clock::time_point> accept_paused_until_;
  ControlCounters counters_;
  Clock::time_point last_limit_log_{};
  Taker hand_off_;  // set by the handler of the request being answered
  uint64_t handed_off_ = 0;
};

}  // namespace vfabric::netd
