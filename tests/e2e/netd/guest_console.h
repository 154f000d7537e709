// A guest's serial console, for the e2e tests that type commands into the
// test image (vmm/guest/init) and read their output back.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "guest_fixture.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/support.h"

namespace vfabric::testing {

// A guest's serial console (console.sock and console.log under netd's run
// dir, or a socket and log the test gave QEMU): commands in through the
// socket (one connection for the test's life: the guest numbers its
// answers "VF-CMD-RESULT <n> <rc>"), their output read back from the same
// socket. Not from the log: when the socket is full, QEMU (7.2) logs a
// byte its serial port failed to send and logs it again when the retry
// succeeds, so the log may hold doubled characters; the socket's stream is
// exact. A thread reads the socket all the time: QEMU's serial port sends a
// byte per write, so a few hundred unread bytes fill it and stall the guest.
class Console {
 public:
  Console(std::string socket_path, std::string log_path)
      : socket_path_(std::move(socket_path)), log_path_(std::move(log_path)) {}
  ~Console() {
    stop_ = true;
    if (drain_.joinable()) drain_.join();
  }
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // The whole serial log (boot included), for messages and boot markers.
  std::string Log() const { return ReadFile(log_path_); }

  bool WaitForLog(const std::string& marker, int timeout_ms) const {
    return WaitFor([&] { return LineAfter(Log(), marker).has_value(); }, timeout_ms);
  }

  // Runs `command` in the guest: its exit status, or -1 on a timeout. The
  // console output it produced goes to *output.
  int Run(const std::string& command, int timeout_ms, std::string* output = nullptr) {
    if (!socket_ && !Connect()) return -1;
    const size_t before = Received().size();
    const int n = ++commands_;
    const std::string line = command + "\n";
    if (::send(socket_.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(line.size()))
      return -1;
    std::optional<std::string> rc;
    const std::string marker = "VF-CMD-RESULT " + std::to_string(n) + " ";
    WaitFor(
        [&] {
          rc = LineAfter(Received(), marker, before);
          return rc.has_value();
        },
        timeout_ms);
    if (output != nullptr) *output = Received().substr(before);
    return rc ? std::atoi(rc->c_str()) : -1;
  }

 private:
  std::string Received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

  bool Connect() {
    socket_ = ConnectUnix(socket_path_);
    if (!socket_) return false;
    drain_ = std::thread([this] {
      char buffer[65536];
      while (!stop_) {
        pollfd p{socket_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const ssize_t n = ::recv(socket_.get(), buffer, sizeof buffer, 0);
        if (n <= 0) break;
        std::lock_guard<std::mutex> lock(mutex_);
        received_.append(buffer, static_cast<size_t>(n));
      }
    });
    return true;
  }

  std::string socket_path_, log_path_;
  UniqueFd socket_;
  int commands_ = 0;
  std::atomic<bool> stop_{false};
  std::thread drain_;
  mutable std::mutex mutex_;
  std::string received_;
};

}  // namespace vfabric::testing
