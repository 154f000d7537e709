#include "vfabric/vmm/qmp.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vfabric::vmm {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxEvents = 1000;
constexpr size_t kMaxMessage = 16 << 20;

int MillisLeft(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

}  // namespace

// Not json::value("event", ""): it throws when "event" is there but not a
// string, and what QEMU writes must never take netd down.
std::string EventName(const nlohmann::json& event) {
  if (!event.is_object()) return "";
  auto it = event.find("event");
  return it != event.end() && it->is_string() ? it->get<std::string>() : "";
}

bool IsGuestShutdownEvent(const nlohmann::json& event) {
  if (EventName(event) != "SHUTDOWN") return false;
  auto data = event.find("data");
  if (data == event.end() || !data->is_object()) return false;
  auto guest = data->find("guest");
  return guest != data->end() && guest->is_boolean() && guest->get<bool>();
}

QmpClient::QmpClient(UniqueFd socket, std::string name)
    : socket_(std::move(socket)), name_(std::move(name)) {}

Status QmpClient::Error(const std::string& what, int error_number) const {
  return Status::Error(name_ + ": " + what, error_number);
}

Result<std::unique_ptr<QmpClient>> QmpClient::Connect(const std::string& path,
                                                      const std::string& name,
                                                      std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return Status::Error(name + ": socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Status::FromErrno(name + ": socket", errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Status::FromErrno(name + ": connect " + path, errno);
  return Open(std::move(fd), name, timeout);
}

Result<std::unique_ptr<QmpClient>> QmpClient::Open(UniqueFd socket, const std::string& name,
                                                   std::chrono::milliseconds timeout) {
  int flags = ::fcntl(socket.get(), F_GETFL);
  if (flags < 0 || ::fcntl(socket.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return Status::FromErrno(name + ": fcntl O_NONBLOCK", errno);
  std::unique_ptr<QmpClient> client(new QmpClient(std::move(socket), name));
  VF_RETURN_IF_ERROR(client->Handshake(timeout));
  return client;
}

Status QmpClient::Handshake(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Result<nlohmann::json> greeting = ReadMessage(deadline);
  if (!greeting.ok()) {
    const std::string& m = greeting.status().message();
    return Status::Error(
        name_ + ": greeting: " + (m.rfind(name_ + ": ", 0) == 0 ? m.substr(name_.size() + 2) : m),
        greeting.status().error_number());
  }
  if (!greeting->is_object() || !greeting->contains("QMP"))
    return Error("greeting: not a QMP greeting: " + greeting->dump());
  greeting_ = (*greeting)["QMP"];
  Result<nlohmann::json> caps =
      Execute("qmp_capabilities", nullptr, std::chrono::milliseconds(MillisLeft(deadline)));
  if (!caps.ok()) return caps.status();
  return Status::Ok();
}

Status QmpClient::Send(const std::string& line, int pass_fd) {
  size_t sent = 0;
  const auto deadline = Clock::now() + kDefaultTimeout;
  while (sent < line.size()) {
    iovec iov{const_cast<char*>(line.data() + sent), line.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0 && sent == 0) {
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{socket_.get(), POLLOUT, 0};
        if (::poll(&p, 1, MillisLeft(deadline)) == 0) return Error("send: timed out", ETIMEDOUT);
        continue;
      }
      return Status::FromErrno(name_ + ": send", errno);
    }
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status QmpClient::ReadAvailable(Clock::time_point deadline, bool wait) {
  if (wait) {
    pollfd p{socket_.get(), POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, MillisLeft(deadline));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Status::FromErrno(name_ + ": poll", errno);
    if (r == 0) return Status::Error(name_ + ": timed out", ETIMEDOUT);
  }
  while (true) {
    char chunk[8192];
    ssize_t n = ::recv(socket_.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      if (buffer_.size() > kMaxMessage) return Error("message longer than 16 MiB");
      continue;
    }
    if (n == 0) return Status::Error(name_ + ": connection closed by QEMU", ECONNRESET);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Status::Ok();
    return Status::FromErrno(name_ + ": recv", errno);
  }
}

Result<nlohmann::json> QmpClient::ReadMessage(Clock::time_point deadline) {
  while (true) {
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty()) continue;
      nlohmann::json message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded() || !message.is_object())
        return Error("malformed message: " + line.substr(0, 200));
      return message;
    }
    Status read = ReadAvailable(deadline, true);
    if (!read.ok()) {
      // Keep a message that arrived together with the close.
      if (buffer_.find('\n') != std::string::npos) continue;
      return read;
    }
  }
}

void QmpClient::KeepEvent(nlohmann::json event) {
  if (events_.size() >= kMaxEvents) events_.pop_front();
  events_.push_back(std::move(event));
}

Result<nlohmann::json> QmpClient::Execute(const std::string& command,
                                          const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout, int pass_fd) {
  if (!socket_) return Error(command + ": not connected");
  const auto deadline = Clock::now() + timeout;
  const uint64_t id = next_id_++;
  nlohmann::json request = {{"execute", command}, {"id", id}};
  if (!arguments.is_null()) request["arguments"] = arguments;
  Status sent = Send(request.dump() + "\n", pass_fd);
  if (!sent.ok()) return sent.WithContext(command);
  while (true) {
    Result<nlohmann::json> message = ReadMessage(deadline);
    if (!message.ok()) {
      Status s = message.status();
      if (s.error_number() == ETIMEDOUT)
        return Error(command + ": no answer in " + std::to_string(timeout.count()) + " ms",
                     ETIMEDOUT);
      const std::string& m = s.message();
      return Status::Error(name_ + ": " + command + ": " +
                               (m.rfind(name_ + ": ", 0) == 0 ? m.substr(name_.size() + 2) : m),
                           s.error_number());
    }
    if (message->contains("event")) {
      KeepEvent(std::move(*message));
      continue;
    }
    auto id_it = message->find("id");
    if (id_it == message->end() || *id_it != id) continue;  // an answer to an abandoned command
    if (auto ret = message->find("return"); ret != message->end()) return *ret;
    if (auto err = message->find("error"); err != message->end()) {
      std::string desc = err->is_object() && err->contains("desc") && (*err)["desc"].is_string()
                             ? (*err)["desc"].get<std::string>()
                             : err->dump();
      return Error(command + ": " + desc);
    }
    return Error(command + ": answer without return or error: " + message->dump());
  }
}

Result<std::string> QmpClient::QueryStatus() {
  Result<nlohmann::json> r = Execute("query-status");
  if (!r.ok()) return r.status();
  if (!r->is_object() || !r->contains("status") || !(*r)["status"].is_string())
    return Error("query-status: unexpected answer " + r->dump());
  return (*r)["status"].get<std::string>();
}

Status QmpClient::SystemPowerdown() {
  Result<nlohmann::json> r = Execute("system_powerdown");
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::Quit() {
  Result<nlohmann::json> r = Execute("quit");
  if (r.ok()) return Status::Ok();
  // QEMU may close the socket before the answer gets out.
  if (r.status().error_number() == ECONNRESET) return Status::Ok();
  return r.status();
}

Status QmpClient::GetFd(const std::string& fd_name, int fd) {
  Result<nlohmann::json> r = Execute("getfd", {{"fdname", fd_name}}, kDefaultTimeout, fd);
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::CloseFd(const std::string& fd_name) {
  Result<nlohmann::json> r = Execute("closefd", {{"fdname", fd_name}});
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::NetdevAddTap(const std::string& netdev_id, const std::string& fd_name,
                               bool vhost) {
  nlohmann::json args = {{"type", "tap"}, {"id", netdev_id}, {"fd", fd_name}};
  if (vhost) args["vhost"] = true;
  Result<nlohmann::json> r = Execute("netdev_add", args);
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::NetdevDel(const std::string& netdev_id) {
  Result<nlohmann::json> r = Execute("netdev_del", {{"id", netdev_id}});
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::DeviceAddVirtioNet(const std::string& device_id, const std::string& netdev_id,
                                     const MacAddress& mac) {
  Result<nlohmann::json> r = Execute("device_add", {{"driver", "virtio-net-pci"},
                                                    {"id", device_id},
                                                    {"netdev", netdev_id},
                                                    {"mac", mac.ToString()}});
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::DeviceDel(const std::string& device_id) {
  Result<nlohmann::json> r = Execute("device_del", {{"id", device_id}});
  return r.ok() ? Status::Ok() : r.status();
}

Status QmpClient::WaitForDeviceDeleted(const std::string& device_id,
                                       std::chrono::milliseconds timeout) {
  Result<nlohmann::json> event = WaitForEvent(
      "DEVICE_DELETED",
      [&device_id](const nlohmann::json& data) {
        return data.is_object() && data.contains("device") && data["device"] == device_id;
      },
      timeout);
  return event.ok() ? Status::Ok() : event.status();
}

Result<nlohmann::json> QmpClient::WaitForEvent(
    const std::string& name, const std::function<bool(const nlohmann::json&)>& match,
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto matches = [&](const nlohmann::json& event) {
    if (EventName(event) != name) return false;
    if (!match) return true;
    auto data = event.find("data");
    return match(data == event.end() ? nlohmann::json() : *data);
  };
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (matches(*it)) {
      nlohmann::json event = std::move(*it);
      events_.erase(it);
      return event;
    }
  }
  while (true) {
    Result<nlohmann::json> message = ReadMessage(deadline);
    if (!message.ok()) {
      if (message.status().error_number() == ETIMEDOUT)
        return Error("no " + name + " event in " + std::to_string(timeout.count()) + " ms",
                     ETIMEDOUT);
      return message.status();
    }
    if (!message->contains("event")) continue;  // a stray answer
    if (matches(*message)) return std::move(*message);
    KeepEvent(std::move(*message));
  }
}

std::vector<nlohmann::json> QmpClient::TakeEvents() {
  if (socket_) {
    (void)ReadAvailable(Clock::now(), false);
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      nlohmann::json message = nlohmann::json::parse(line, nullptr, false);
      if (!message.is_discarded() && message.is_object() && message.contains("event"))
        KeepEvent(std::move(message));
    }
  }
  std::vector<nlohmann::json> events(std::make_move_iterator(events_.begin()),
                                     std::make_move_iterator(events_.end()));
  events_.clear();
  return events;
}

}  // namespace vfabric::vmm
