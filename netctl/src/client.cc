#include "vfabric/netctl/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "vfabric/protocol/protocol.h"

namespace vfabric::netctl {
namespace {

using Clock = std::chrono::steady_clock;

// "5 s", "0.5 s".
std::string FormatDuration(std::chrono::milliseconds timeout) {
  char text[64];
  if (timeout.count() % 1000 == 0) {
    std::snprintf(text, sizeof text, "%lld s", static_cast<long long>(timeout.count() / 1000));
  } else {
    std::snprintf(text, sizeof text, "%g s", static_cast<double>(timeout.count()) / 1000.0);
  }
  return text;
}

// Milliseconds left until `deadline`, rounded up, for poll(2); 0 when past.
int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

std::string JsonString(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

std::string Answer::error_code() const { return JsonString(error, "code"); }
std::string Answer::error_message() const { return JsonString(error, "message"); }

ControlClient::ControlClient(ClientOptions options, UniqueFd fd)
    : options_(std::move(options)), fd_(std::move(fd)) {}

Status ControlClient::Error(std::string_view what, int error_number) const {
  std::string message = options_.socket_path;
  message += ": ";
  message += what;
  return Status::Error(std::move(message), error_number);
}

Status ControlClient::SystemError(std::string_view call, int error_number) const {
  std::string message(call);
  message += ": ";
  message += std::strerror(error_number);
  return Error(message, error_number);
}

Result<ControlClient> ControlClient::Connect(const ClientOptions& options) {
  const std::string context = "cannot connect to " + options.socket_path;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options.socket_path.empty()) {
    return Status::Error(context + ": empty socket path", EINVAL);
  }
  if (options.socket_path.size() >= sizeof address.sun_path) {
    return Status::Error(context + ": socket path longer than " +
                             std::to_string(sizeof address.sun_path - 1) + " bytes",
                         ENAMETOOLONG);
  }
  std::memcpy(address.sun_path, options.socket_path.data(), options.socket_path.size());

  // @see man 7 unix: a blocking connect() waits while the listener's backlog is
  // full, bounded by SO_SNDTIMEO (then fails with EAGAIN). Connecting is
  // otherwise immediate, so the socket becomes non-blocking only afterwards.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(context + ": socket", errno);
  timeval send_timeout{};
  auto timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(options.timeout);
  if (timeout_us.count() <= 0) timeout_us = std::chrono::microseconds(1);
  send_timeout.tv_sec = static_cast<time_t>(timeout_us.count() / 1000000);
  send_timeout.tv_usec = static_cast<suseconds_t>(timeout_us.count() % 1000000);
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout) != 0) {
    return Status::FromErrno(context + ": setsockopt(SO_SNDTIMEO)", errno);
  }
  const auto deadline = Clock::now() + options.timeout;
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    int error = errno;
    if (error == EINTR && Clock::now() < deadline) continue;
    if (error == EAGAIN || error == EINPROGRESS) {
      return Status::Error(context + ": netd did not accept the connection within " +
                               FormatDuration(options.timeout),
                           ETIMEDOUT);
    }
    return Status::FromErrno(context, error);
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return Status::FromErrno(context + ": fcntl(O_NONBLOCK)", errno);
  }
  return ControlClient(options, std::move(fd));
}

Status ControlClient::WriteAll(std::string_view data, Clock::time_point deadline) {
  if (!fd_) return Error("connection is closed", EBADF);
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::send(fd_.get(), data.data() + written, data.size() - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    int error = errno;
    if (n < 0 && error == EINTR) continue;
    if (n < 0 && (error == EAGAIN || error == EWOULDBLOCK)) {
      pollfd pfd{fd_.get(), POLLOUT, 0};
      int ready = ::poll(&pfd, 1, RemainingMs(deadline));
      if (ready < 0 && errno != EINTR) return SystemError("poll", errno);
      if (ready == 0) {
        fd_.Reset();
        return Error("netd did not take the request within " + FormatDuration(options_.timeout),
                     ETIMEDOUT);
      }
      continue;
    }
    fd_.Reset();
    if (n < 0 && (error == EPIPE || error == ECONNRESET)) {
      return Error("connection closed by netd while sending the request", error);
    }
    return SystemError("send", n < 0 ? error : EIO);
  }
  return Status::Ok();
}

Result<std::string> ControlClient::ReadLineUntil(Clock::time_point deadline) {
  if (!fd_) return Error("connection is closed", EBADF);
  size_t scanned = 0;  // bytes of buffer_ known to hold no '\n'
  char chunk[65536];
  while (true) {
    size_t newline = buffer_.find('\n', scanned);
    size_t line_length = newline != std::string::npos ? newline : buffer_.size();
    if (line_length > options_.max_answer_bytes) {
      fd_.Reset();
      buffer_.clear();
      return Error(
          "answer longer than " + std::to_string(options_.max_answer_bytes) + " bytes; giving up",
          EMSGSIZE);
    }
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    scanned = buffer_.size();
    ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      bool partial = !buffer_.empty();
      fd_.Reset();
      buffer_.clear();
      return Error(partial ? "connection closed by netd in the middle of an answer"
                           : "connection closed by netd before it answered",
                   ECONNRESET);
    }
    int error = errno;
    if (error == EINTR) continue;
    if (error != EAGAIN && error != EWOULDBLOCK) {
      fd_.Reset();
      return SystemError("read", error);
    }
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, RemainingMs(deadline));
    if (ready < 0 && errno != EINTR) return SystemError("poll", errno);
    if (ready == 0) {
      fd_.Reset();
      return Error("no answer from netd within " + FormatDuration(options_.timeout), ETIMEDOUT);
    }
  }
}

Status ControlClient::SendLine(std::string_view line) {
  std::string data(line);
  data += '\n';
  return WriteAll(data, Clock::now() + options_.timeout);
}

Result<std::string> ControlClient::ReadLine() {
  return ReadLineUntil(Clock::now() + options_.timeout);
}

Result<Answer> ControlClient::Call(std::string_view verb, const nlohmann::json& args) {
  int64_t id = 0;
  Result<std::string> line = CallLine(verb, args, &id);
  if (!line.ok()) return line.status();
  return DecodeAnswer(*line, id);
}

Result<std::string> ControlClient::CallLine(std::string_view verb, const nlohmann::json& args,
                                            int64_t* id_out) {
  const auto deadline = Clock::now() + options_.timeout;
  const int64_t id = next_id_++;
  *id_out = id;
  const nlohmann::json request = protocol::MakeRequest(id, verb, args);
  std::string line;
  try {
    line = request.dump();
  } catch (const nlohmann::json::exception& e) {
    // Only invalid UTF-8 in a string makes dump() throw.
    return Error("cannot encode the request: " + std::string(e.what()), EINVAL);
  }
  line += '\n';
  VF_RETURN_IF_ERROR(WriteAll(line, deadline));

  return ReadLineUntil(deadline);
}

Result<Answer> ControlClient::DecodeAnswer(const std::string& line, int64_t id) {
  nlohmann::json answer = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded()) {
    fd_.Reset();
    return Error("malformed answer from netd (not JSON)", EPROTO);
  }
  if (!answer.is_object() || !answer.contains("ok") || !answer["ok"].is_boolean()) {
    fd_.Reset();
    return Error("malformed answer from netd (not an object with a boolean \"ok\")", EPROTO);
  }
  if (auto it = answer.find("id");
      it != answer.end() && !it->is_null() && !(it->is_number_integer() && *it == id)) {
    fd_.Reset();
    return Error("answer for request id " + it->dump() + ", expected " + std::to_string(id),
                 EPROTO);
  }
  Answer decoded;
  decoded.ok = answer["ok"].get<bool>();
  if (decoded.ok) {
    auto it = answer.find("result");
    decoded.result = it != answer.end() ? std::move(*it) : nlohmann::json::object();
  } else {
    auto it = answer.find("error");
    decoded.error =
        (it != answer.end() && it->is_object()) ? std::move(*it) : nlohmann::json::object();
  }
  return decoded;
}

}  // namespace vfabric::netctl
