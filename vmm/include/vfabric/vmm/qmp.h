// A client of QEMU's machine protocol (QMP, docs/interop/qmp-spec in QEMU):
// JSON objects over a Unix stream socket, one per line.
//
//   server: {"QMP": {"version": ..., "capabilities": [...]}}     greeting
//   client: {"execute": "qmp_capabilities"}   server: {"return": {}}
//   client: {"execute": CMD, "arguments": {...}, "id": N}
//   server: {"return": ..., "id": N} | {"error": {"class", "desc"}, "id": N}
//   server, at any time: {"event": NAME, "data": {...}, "timestamp": {...}}
//
// Commands are synchronous with a timeout: Execute() sends, then reads until
// the answer with its id arrives, keeping events that arrive in between (up
// to 1000; older ones are dropped) for WaitForEvent()/TakeEvents(). A
// descriptor can ride along a command (SCM_RIGHTS), which is how getfd hands
// QEMU a tap. Errors name the client ("qmp vm1: device_add: Duplicate ID
// 'nic1' for device"). Not thread-safe: one owner.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::vmm {

// An event's name ("SHUTDOWN"), "" when `event` is not an object with a
// string "event" (what QEMU sends is read, never trusted to have a shape).
std::string EventName(const nlohmann::json& event);
// {"event": "SHUTDOWN", "data": {"guest": true, ...}}: the guest powered
// itself off (not a quit or a signal to QEMU). False for anything else.
bool IsGuestShutdownEvent(const nlohmann::json& event);

class QmpClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  // Connects to the socket at `path`, reads the greeting and negotiates
  // capabilities, all within `timeout`. `name` prefixes errors ("qmp vm1").
  static Result<std::unique_ptr<QmpClient>> Connect(
      const std::string& path, const std::string& name,
      std::chrono::milliseconds timeout = kDefaultTimeout);
  // The same over an already connected stream socket.
  static Result<std::unique_ptr<QmpClient>> Open(
      UniqueFd socket, const std::string& name,
      std::chrono::milliseconds timeout = kDefaultTimeout);

  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs `command` with `arguments` (an object, or null for none) and returns
  // its "return" value. `pass_fd` >= 0 is sent with the command (SCM_RIGHTS).
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = kDefaultTimeout,
                                 int pass_fd = -1);

  // query-status: "running", "paused", "shutdown", ...
  Result<std::string> QueryStatus();
  Status SystemPowerdown();
  // quit: QEMU exits at once (the connection then closes).
  Status Quit();

  // Hot-plug building blocks.
  Status GetFd(const std::string& fd_name, int fd);
  Status CloseFd(const std::string& fd_name);
  Status NetdevAddTap(const std::string& netdev_id, const std::string& fd_name, bool vhost);
  Status NetdevDel(const std::string& netdev_id);
  Status DeviceAddVirtioNet(const std::string& device_id, const std::string& netdev_id,
                            const MacAddress& mac);
  // device_del only asks: the guest releases the device later, and QEMU
  // then sends DEVICE_DELETED (see WaitForDeviceDeleted).
  Status DeviceDel(const std::string& device_id);
  Status WaitForDeviceDeleted(const std::string& device_id, std::chrono::milliseconds timeout);

  // Waits for an event named `name` whose "data" satisfies `match` (or any,
  // when match is empty), first among those already received; removes and
  // returns the whole event object.
  Result<nlohmann::json> WaitForEvent(const std::string& name,
                                      const std::function<bool(const nlohmann::json&)>& match,
                                      std::chrono::milliseconds timeout);
  // Reads what is readable now without blocking (events) and returns and
  // clears the events received so far.
  std::vector<nlohmann::json> TakeEvents();

  // The socket, readable when QEMU sent something (for an event loop).
  int fd() const { return socket_.get(); }
  const std::string& name() const { return name_; }
  // The greeting's "QMP" object.
  const nlohmann::json& greeting() const { return greeting_; }

 private:
  QmpClient(UniqueFd socket, std::string name);
  Status Handshake(std::chrono::milliseconds timeout);
  Status Send(const std::string& line, int pass_fd);
  // Reads one message, waiting until `deadline`.
  Result<nlohmann::json> ReadMessage(std::chrono::steady_clock::time_point deadline);
  Status ReadAvailable(std::chrono::steady_clock::time_point deadline, bool wait);
  void KeepEvent(nlohmann::json event);
  Status Error(const std::string& what, int error_number = 0) const;

  UniqueFd socket_;
  std::string name_;
  std::string buffer_;
  nlohmann::json greeting_;
  std::deque<nlohmann::json> events_;
  uint64_t next_id_ = 1;
};

}  // namespace vfabric::vmm
