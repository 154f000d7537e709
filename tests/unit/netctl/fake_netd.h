// A fake netd for netctl's tests: a thread serving a Unix socket in a TempDir.
// For each request line it calls the handler, which says what bytes to send
// back (in how many pieces), or to close the connection, or to stay silent.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/support.h"

namespace vfabric::netctl::testing {

struct FakeReply {
  std::string bytes;      // written as is (include the '\n')
  size_t piece_size = 0;  // >0: write in pieces of this size, 5 ms apart
  bool close = false;     // close the connection after writing
};

using FakeHandler = std::function<FakeReply(const std::string& request_line)>;

// Answers {"version":1,"id":<request id>,"ok":true,"result":result}.
inline FakeReply OkReply(const std::string& request_line, const nlohmann::json& result) {
  nlohmann::json request = nlohmann::json::parse(request_line, nullptr, false);
  nlohmann::json answer = {{"version", 1}, {"ok", true}, {"result", result}};
  if (request.is_object() && request.contains("id")) answer["id"] = request["id"];
  return {answer.dump() + "\n"};
}

inline FakeReply ErrorReply(const std::string& request_line, const nlohmann::json& error) {
  nlohmann::json request = nlohmann::json::parse(request_line, nullptr, false);
  nlohmann::json answer = {{"version", 1}, {"ok", false}, {"error", error}};
  if (request.is_object() && request.contains("id")) answer["id"] = request["id"];
  return {answer.dump() + "\n"};
}

class FakeNetd {
 public:
  explicit FakeNetd(FakeHandler handler) : handler_(std::move(handler)) {
    path_ = dir_.Join("netd.sock");
    listener_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path_.copy(address.sun_path, sizeof address.sun_path - 1);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_.get(), 8) != 0) {
      ADD_FAILURE() << "cannot listen on " << path_;
      return;
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeNetd() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  FakeNetd(const FakeNetd&) = delete;
  FakeNetd& operator=(const FakeNetd&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  nlohmann::json last_request() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (requests_.empty()) return nullptr;
    return nlohmann::json::parse(requests_.back(), nullptr, false);
  }

 private:
  // Waits until `fd` is ready for `events` or stop_; false on stop.
  bool WaitFor(int fd, short events) {
    while (!stop_) {
      pollfd pfd{fd, events, 0};
      if (::poll(&pfd, 1, 20) > 0) return true;
    }
    return false;
  }

  void Serve() {
    while (WaitFor(listener_.get(), POLLIN)) {
      UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!connection) continue;
      ServeConnection(connection.get());
    }
  }

  void ServeConnection(int fd) {
    std::string buffer;
    char chunk[4096];
    while (WaitFor(fd, POLLIN)) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
      size_t newline;
      while ((newline = buffer.find('\n')) != std::string::npos) {
        std::string line = buffer.substr(0, newline);
        buffer.erase(0, newline + 1);
        {
          std::lock_guard<std::mutex> lock(mutex_);
          requests_.push_back(line);
        }
        FakeReply reply = handler_(line);
        size_t piece = reply.piece_size ? reply.piece_size : reply.bytes.size();
        for (size_t at = 0; at < reply.bytes.size(); at += piece) {
          std::string_view part = std::string_view(reply.bytes).substr(at, piece);
          if (::send(fd, part.data(), part.size(), MSG_NOSIGNAL) < 0) return;
          if (reply.piece_size) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (reply.close) return;
      }
    }
  }

  vfabric::testing::TempDir dir_;
  std::string path_;
  UniqueFd listener_;
  FakeHandler handler_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace vfabric::netctl::testing
