// ControlClient: the client end of netd's control socket (docs/control-protocol.md).
//
// One connection to a Unix stream socket carrying newline-delimited JSON: each
// Call() writes one request line and reads one answer line. Every Call() has a
// deadline (the client's timeout, counted from the start of the call) covering
// the write and the read; partial writes, partial reads and answers split
// across reads (or several answers in one read) are handled. An answer longer
// than max_answer_bytes is refused rather than buffered without bound.
//
// Errors are values. Transport and protocol failures (cannot connect, timeout,
// connection closed, an answer that is not a protocol answer) come back as a
// Status whose message names the socket path:
//   "cannot connect to /run/vfabric/netd.sock: No such file or directory"
//   "/run/vfabric/netd.sock: no answer from netd within 5 s"
// A request netd understood but rejected is NOT a Status error: it is an
// Answer with ok == false and the error object netd sent.
//
// Threading: a ControlClient is not thread-safe; use one per thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::netctl {

inline constexpr const char* kDefaultSocketPath = "/run/vfabric/netd.sock";
inline constexpr size_t kDefaultMaxAnswerBytes = size_t{64} << 20;  // 64 MiB

struct ClientOptions {
  std::string socket_path = kDefaultSocketPath;
  // Deadline for connecting, and for each Call() (write + read).
  std::chrono::milliseconds timeout{10000};
  // An answer line longer than this is an error (and the connection is unusable).
  size_t max_answer_bytes = kDefaultMaxAnswerBytes;
};

// One answer line, decoded.
struct Answer {
  bool ok = false;
  nlohmann::json result;  // ok: the answer's "result" (an empty object if absent)
  nlohmann::json error;   // !ok: the answer's "error" object ({"code","message",...})

  // !ok: error.code / error.message, or "" when absent or not a string.
  std::string error_code() const;
  std::string error_message() const;
};

class ControlClient {
 public:
  // Connects to options.socket_path within options.timeout.
  // On failure returns a Status "cannot connect to PATH: <strerror>" carrying errno
  // (ENOENT, ECONNREFUSED, EACCES, ETIMEDOUT for a full backlog past the deadline, ...).
  static Result<ControlClient> Connect(const ClientOptions& options);

  ControlClient(ControlClient&&) noexcept = default;
  ControlClient& operator=(ControlClient&&) noexcept = default;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ~ControlClient() = default;

  // Sends {"version":1,"id":N,"verb":verb,"args":args} (args omitted when null)
  // and waits for its answer. Returns the decoded answer, ok or not; returns a
  // Status for transport errors, a timeout, an answer that is not a JSON object
  // with a boolean "ok", or an answer whose "id" is not this request's.
  // After a Status error the connection must not be used again.
  Result<Answer> Call(std::string_view verb, const nlohmann::json& args = nullptr);
  // Call() in two halves, for a caller that may use the answer line as it
  // is (PrettyResultOf, pretty_json.h): CallLine sends the request and
  // gives the answer line and the request's id; DecodeAnswer decodes a line
  // as Call() does (and with the same errors).
  Result<std::string> CallLine(std::string_view verb, const nlohmann::json& args, int64_t* id);
  Result<Answer> DecodeAnswer(const std::string& line, int64_t id);

  // Lower level, for tests and tools: writes `line` plus '\n' / reads one line
  // (without its '\n'), each within the client's timeout from the call.
  Status SendLine(std::string_view line);
  Result<std::string> ReadLine();

  const std::string& socket_path() const { return options_.socket_path; }
  // Takes the connection out of the client (which must not be used again),
  // with the bytes already read past the last answer: for an answer that is
  // followed by a stream (capture.start).
  UniqueFd Release(std::string* buffered) {
    *buffered = std::move(buffer_);
    buffer_.clear();
    return std::move(fd_);
  }

 private:
  ControlClient(ClientOptions options, UniqueFd fd);

  Status WriteAll(std::string_view data, std::chrono::steady_clock::time_point deadline);
  Result<std::string> ReadLineUntil(std::chrono::steady_clock::time_point deadline);
  // "PATH: what", carrying error_number.
  Status Error(std::string_view what, int error_number) const;
  // "PATH: call: strerror(error_number)".
  Status SystemError(std::string_view call, int error_number) const;

  ClientOptions options_;
  UniqueFd fd_;
  std::string buffer_;  // bytes read past the last returned line
  int64_t next_id_ = 1;
};

}  // namespace vfabric::netctl
