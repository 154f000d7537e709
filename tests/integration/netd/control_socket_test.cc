// netd's control socket against hostile clients (issue 20): each test runs
// netd in a private network namespace and attacks its socket the way a
// member of the socket's group could, then checks that netd still serves
// netctl and still repairs drift.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::Ask;
using testing::Request;

// A connection kept open across requests.
class Connection {
 public:
  explicit Connection(const std::string& path) {
    fd_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    connected_ = connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_.get(); }

  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = send(fd_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // The next answer line, or null when the connection ends first (or after
  // `timeout_ms` without one).
  json ReadAnswer(int timeout_ms = 10000) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t newline;
    while ((newline = pending_.find('\n')) == std::string::npos) {
      char buffer[65536];
      ssize_t n = read(fd_.get(), buffer, sizeof buffer);
      if (n <= 0) return nullptr;
      pending_.append(buffer, static_cast<size_t>(n));
    }
    json answer = json::parse(pending_.substr(0, newline), nullptr, false);
    pending_.erase(0, newline + 1);
    return answer;
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
  std::string pending_;
};

class ControlSocketTest : public testing::NetdFixture {
 protected:
  std::string Lab() const { return Configs() + "/lab.json"; }
};

// Issue 20 (1): one request nested 70,000 deep (140 KB) overflowed netd's
// stack. It is answered with an error, and the connection and netd live on.
TEST_F(ControlSocketTest, DeepNestingIsAnErrorAndNetdLives) {
  Start(Lab());
  Connection client(socket_);
  ASSERT_TRUE(client.connected());
  const std::string deep_id = R"({"version":1,"verb":"hello","id":)" + std::string(70000, '[') +
                              std::string(70000, ']') + "}\n";
  const std::string deep_args = R"({"version":1,"verb":"hello","args":{"a":)" +
                                std::string(100000, '{') + std::string(100000, '}') + "}}\n";
  for (const std::string& line : {deep_id, deep_args}) {
    ASSERT_TRUE(client.Send(line));
    json answer = client.ReadAnswer();
    ASSERT_TRUE(answer.is_object()) << "netd died or hung up\n" << Log();
    EXPECT_EQ(answer["ok"], false);
    EXPECT_EQ(answer["error"]["code"], "bad_request");
    EXPECT_THAT(answer["error"]["message"].get<std::string>(), HasSubstr("deeper than 64"));
  }
  // The same connection still works, and so does netd.
  ASSERT_TRUE(client.Send(Request("hello").dump() + "\n"));
  EXPECT_EQ(client.ReadAnswer()["ok"], true);
  EXPECT_TRUE(netd_->running()) << Log();
  EXPECT_EQ(Ask(socket_, Request("network.list"))["ok"], true);
}

}  // namespace
}  // namespace vfabric
