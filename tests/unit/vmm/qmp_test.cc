// The QMP client against a scripted fake server on the other end of a
// socketpair, run in a thread: greeting, capabilities, answers interleaved
// with events, errors, timeouts, descriptors passed with getfd.
#include "vfabric/vmm/qmp.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

namespace vfabric::vmm {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}})";

// The server end: reads requests (with any passed descriptor) and writes raw lines.
class ServerEnd {
 public:
  explicit ServerEnd(int fd) : fd_(fd) {}

  void SendLine(const std::string& line) {
    std::string data = line + "\r\n";
    ASSERT_EQ(::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));
  }
  void SendRaw(const std::string& data) {
    ASSERT_EQ(::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));
  }
  // The next request (a JSON line); a passed descriptor lands in *passed_fd.
  json ReadRequest(int* passed_fd = nullptr) {
    while (buffer_.find('\n') == std::string::npos) {
      char data[4096];
      iovec iov{data, sizeof(data)};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
      if (n <= 0) return json();
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
          if (passed_fd != nullptr) {
            *passed_fd = fd;
          } else {
            ::close(fd);
          }
        }
      }
      buffer_.append(data, static_cast<size_t>(n));
    }
    size_t nl = buffer_.find('\n');
    std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return json::parse(line);
  }
  // Reads a request for `command` and answers {"return": ret, "id": id}.
  void Answer(const std::string& command, const json& ret = json::object()) {
    json request = ReadRequest();
    EXPECT_EQ(request.value("execute", ""), command) << request.dump();
    SendLine(json({{"return", ret}, {"id", request["id"]}}).dump());
  }
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  std::string buffer_;
};

// Runs `script` on the server end in a thread; the test talks to the client end.
class FakeQmp {
 public:
  explicit FakeQmp(std::function<void(ServerEnd&)> script) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_fd_.Reset(fds[0]);
    thread_ = std::thread([fd = fds[1], script = std::move(script)] {
      ServerEnd server(fd);
      script(server);
    });
  }
  ~FakeQmp() { thread_.join(); }
  UniqueFd TakeClientFd() { return std::move(client_fd_); }

 private:
  UniqueFd client_fd_;
  std::thread thread_;
};

void Handshake(ServerEnd& s) {
  s.SendLine(kGreeting);
  json caps = s.ReadRequest();
  EXPECT_EQ(caps.value("execute", ""), "qmp_capabilities");
  EXPECT_FALSE(caps.contains("arguments"));
  s.SendLine(json({{"return", json::object()}, {"id", caps["id"]}}).dump());
}

TEST(QmpClientTest, GreetingCapabilitiesAndQueryStatus) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    s.Answer("query-status", {{"status", "running"}, {"singlestep", false}, {"running", true}});
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().message();
  EXPECT_EQ((*client)->greeting()["version"]["qemu"]["major"], 7);
  Result<std::string> status = (*client)->QueryStatus();
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(*status, "running");
}

TEST(QmpClientTest, EventsBetweenCommandAndAnswerAreKept) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    json request = s.ReadRequest();
    EXPECT_EQ(request["execute"], "system_powerdown");
    // An event, an answer to some older command, then the answer; all in one write.
    s.SendRaw(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"})"
              "\r\n"
              R"({"return": {}, "id": 999})"
              "\r\n" +
              json({{"return", json::object()}, {"id", request["id"]}}).dump() + "\r\n" +
              R"({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})"
              "\r\n");
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().message();
  ASSERT_TRUE((*client)->SystemPowerdown().ok());
  auto shutdown = (*client)->WaitForEvent("SHUTDOWN", nullptr, milliseconds(2000));
  ASSERT_TRUE(shutdown.ok()) << shutdown.status().message();
  EXPECT_EQ((*shutdown)["data"]["reason"], "guest-shutdown");
  std::vector<json> events = (*client)->TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["event"], "POWERDOWN");
}

TEST(QmpClientTest, ErrorAnswersNameTheClientAndCommand) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    json request = s.ReadRequest();
    EXPECT_EQ(request["execute"], "device_add");
    EXPECT_EQ(request["arguments"]["driver"], "virtio-net-pci");
    EXPECT_EQ(request["arguments"]["id"], "nic1");
    EXPECT_EQ(request["arguments"]["netdev"], "net-nic1");
    EXPECT_EQ(request["arguments"]["mac"], "52:54:00:00:00:09");
    s.SendLine(
        json({{"error", {{"class", "GenericError"}, {"desc", "Duplicate ID 'nic1' for device"}}},
              {"id", request["id"]}})
            .dump());
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().message();
  Status s =
      (*client)->DeviceAddVirtioNet("nic1", "net-nic1", *MacAddress::Parse("52:54:00:00:00:09"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "qmp vm1: device_add: Duplicate ID 'nic1' for device");
}

TEST(QmpClientTest, ACommandWithoutAnswerTimesOut) {
  std::atomic<bool> done{false};
  FakeQmp fake([&done](ServerEnd& s) {
    Handshake(s);
    s.ReadRequest();  // never answered
    while (!done) std::this_thread::sleep_for(milliseconds(10));
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().message();
  const auto start = std::chrono::steady_clock::now();
  auto r = (*client)->Execute("query-status", nullptr, milliseconds(200));
  const auto took = std::chrono::steady_clock::now() - start;
  done = true;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "qmp vm1: query-status: no answer in 200 ms");
  // A timeout is told apart from every other failure by its code (the
  // qmp fuzzer relies on it instead of a wall clock).
  EXPECT_EQ(r.status().error_number(), ETIMEDOUT);
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(2000));
}

TEST(QmpClientTest, NoGreetingTimesOut) {
  std::atomic<bool> done{false};
  FakeQmp fake([&done](ServerEnd&) {
    while (!done) std::this_thread::sleep_for(milliseconds(10));
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(100));
  done = true;
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().message(), "qmp vm1: greeting: timed out");
  EXPECT_EQ(client.status().error_number(), ETIMEDOUT);
}

TEST(QmpClientTest, NotQmpIsRefused) {
  FakeQmp fake([](ServerEnd& s) { s.SendLine(R"({"hello": 1})"); });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(1000));
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("not a QMP greeting"), std::string::npos);
}

TEST(QmpClientTest, MalformedJsonIsAnError) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    s.ReadRequest();
    s.SendLine("{\"return\": ");
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(1000));
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Execute("query-status", nullptr, milliseconds(1000));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("malformed message"), std::string::npos)
      << r.status().message();
}

TEST(QmpClientTest, ClosedConnectionIsReported) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    s.ReadRequest();
    s.Close();
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(1000));
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Execute("query-status", nullptr, milliseconds(1000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "qmp vm1: query-status: connection closed by QEMU");
}

TEST(QmpClientTest, QuitToleratesTheSocketClosingFirst) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    s.ReadRequest();
    s.Close();
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(1000));
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Quit().ok());
}

TEST(QmpClientTest, HotPlugSequencePassesTheTapWithGetfd) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd pipe_read(pipe_fds[0]);
  UniqueFd pipe_write(pipe_fds[1]);
  struct stat want {};
  ASSERT_EQ(::fstat(pipe_read.get(), &want), 0);
  ino_t received_inode = 0;
  FakeQmp fake([&received_inode](ServerEnd& s) {
    Handshake(s);
    int passed = -1;
    json getfd = s.ReadRequest(&passed);
    EXPECT_EQ(getfd["execute"], "getfd");
    EXPECT_EQ(getfd["arguments"]["fdname"], "fd-nic1");
    EXPECT_GE(passed, 0);
    struct stat got {};
    if (passed >= 0 && ::fstat(passed, &got) == 0) received_inode = got.st_ino;
    if (passed >= 0) ::close(passed);
    s.SendLine(json({{"return", json::object()}, {"id", getfd["id"]}}).dump());

    json netdev = s.ReadRequest();
    EXPECT_EQ(netdev["execute"], "netdev_add");
    EXPECT_EQ(netdev["arguments"], json({{"type", "tap"}, {"id", "net-nic1"}, {"fd", "fd-nic1"}}));
    s.SendLine(json({{"return", json::object()}, {"id", netdev["id"]}}).dump());
    s.Answer("device_add");
    // Unplug: device_del is answered at once, DEVICE_DELETED comes later
    // (first for the device's backend path, then for the device).
    s.Answer("device_del");
    s.SendLine(
        R"({"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/nic1/virtio-backend"}})");
    s.SendLine(
        R"({"event": "DEVICE_DELETED", "data": {"device": "nic1", "path": "/machine/peripheral/nic1"}})");
    json del = s.ReadRequest();
    EXPECT_EQ(del["execute"], "netdev_del");
    EXPECT_EQ(del["arguments"]["id"], "net-nic1");
    s.SendLine(json({{"return", json::object()}, {"id", del["id"]}}).dump());
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().message();
  QmpClient& qmp = **client;
  ASSERT_TRUE(qmp.GetFd("fd-nic1", pipe_read.get()).ok());
  ASSERT_TRUE(qmp.NetdevAddTap("net-nic1", "fd-nic1", /*vhost=*/false).ok());
  ASSERT_TRUE(
      qmp.DeviceAddVirtioNet("nic1", "net-nic1", *MacAddress::Parse("52:54:00:00:00:02")).ok());
  ASSERT_TRUE(qmp.DeviceDel("nic1").ok());
  Status deleted = qmp.WaitForDeviceDeleted("nic1", milliseconds(2000));
  ASSERT_TRUE(deleted.ok()) << deleted.message();
  ASSERT_TRUE(qmp.NetdevDel("net-nic1").ok());
  EXPECT_EQ(received_inode, want.st_ino);
  // The backend's DEVICE_DELETED (no "device") stays queued.
  std::vector<json> rest = qmp.TakeEvents();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_FALSE(rest[0]["data"].contains("device"));
}

TEST(QmpClientTest, WaitForDeviceDeletedTimesOut) {
  std::atomic<bool> done{false};
  FakeQmp fake([&done](ServerEnd& s) {
    Handshake(s);
    s.SendLine(R"({"event": "DEVICE_DELETED", "data": {"device": "other"}})");
    while (!done) std::this_thread::sleep_for(milliseconds(10));
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok());
  Status s = (*client)->WaitForDeviceDeleted("nic1", milliseconds(150));
  done = true;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "qmp vm1: no DEVICE_DELETED event in 150 ms");
  EXPECT_EQ(s.error_number(), ETIMEDOUT);
}

// Found by qmp_fuzzer: json::value("event", "") throws on an event whose
// name is not a string, which took netd down from a QMP socket.
TEST(QmpClientTest, EventsOfAnUnexpectedShapeAreNeverTrusted) {
  FakeQmp fake([](ServerEnd& s) {
    Handshake(s);
    s.SendLine(R"({"event": 5, "data": {"device": "nic1"}})");
    s.SendLine(R"({"event": null})");
    s.SendLine(R"({"event": "SHUTDOWN", "data": {"guest": "yes"}})");
    s.SendLine(R"({"event": "DEVICE_DELETED", "data": {"device": "nic1"}})");
    s.Close();
  });
  auto client = QmpClient::Open(fake.TakeClientFd(), "qmp vm1", milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.status().message();
  EXPECT_TRUE((*client)->WaitForDeviceDeleted("nic1", milliseconds(2000)).ok());
  std::vector<json> events = (*client)->TakeEvents();
  ASSERT_EQ(events.size(), 3u);
  for (const json& event : events) EXPECT_FALSE(IsGuestShutdownEvent(event)) << event.dump();
  EXPECT_EQ(EventName(events[0]), "");
  EXPECT_EQ(EventName(events[2]), "SHUTDOWN");
  EXPECT_TRUE(
      IsGuestShutdownEvent(json::parse(R"({"event": "SHUTDOWN", "data": {"guest": true}})")));
  EXPECT_FALSE(IsGuestShutdownEvent(json::parse(R"({"event": "SHUTDOWN", "data": [true]})")));
  EXPECT_FALSE(IsGuestShutdownEvent(json::parse(R"({"event": "SHUTDOWN"})")));
  EXPECT_FALSE(IsGuestShutdownEvent(json::parse(R"([1])")));
}

TEST(QmpClientTest, ConnectNamesThePath) {
  auto client = QmpClient::Connect("/nonexistent/vfabric-qmp.sock", "qmp vm9", milliseconds(100));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().message(),
            "qmp vm9: connect /nonexistent/vfabric-qmp.sock: No such file or directory");
}

}  // namespace
}  // namespace vfabric::vmm
