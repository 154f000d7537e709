// The metrics listener: HTTP answers, and clients that misbehave. On a real
// Unix socket in a scratch directory and on loopback TCP (no privileges),
// with warped time: nothing here sleeps.
#include "vfabric/netd/metrics_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::netd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = MetricsServer::Clock;
using std::chrono::milliseconds;

class Peer {
 public:
  explicit Peer(const std::string& path) {
    fd_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    connected_ = connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{0, 200000};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Everything until the server closes (or 200 ms pass without a byte).
  std::string ReadAll() {
    std::string text;
    char buffer[65536];
    while (true) {
      ssize_t n = read(fd_.get(), buffer, sizeof buffer);
      if (n <= 0) return text;
      text.append(buffer, static_cast<size_t>(n));
    }
  }
  // True when the server closed the connection.
  bool Closed() {
    char buffer[4096];
    while (true) {
      ssize_t n = read(fd_.get(), buffer, sizeof buffer);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  bool connected_ = false;
};

class MetricsServerTest : public ::testing::Test {
 protected:
  void Start(MetricsLimits limits = {}) {
    path_ = dir_.Join("metrics.sock");
    std::string bound;
    auto listener = ListenMetrics(path_, getegid(), &bound);
    ASSERT_TRUE(listener.ok()) << listener.status().message();
    EXPECT_EQ(bound, path_);
    auto server = MetricsServer::Create(std::move(listener).value(), path_, limits, [this] {
      ++renders_;
      return body_;
    });
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
  }
  // Runs the server a few turns at `now` (accept, read, write).
  void Turn(Clock::time_point now) {
    for (int i = 0; i < 4; ++i) server_->Run(now);
  }
  std::string Get(const std::string& request, Clock::time_point now) {
    Peer peer(path_);
    EXPECT_TRUE(peer.connected());
    EXPECT_TRUE(peer.Send(request));
    Turn(now);
    return peer.ReadAll();
  }

  testing::TempDir dir_;
  std::string path_;
  std::string body_ = "# HELP vfabric_x x\n# TYPE vfabric_x gauge\nvfabric_x 1\n";
  int renders_ = 0;
  std::unique_ptr<MetricsServer> server_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(MetricsServerTest, AnswersGetMetricsWithTheExposition) {
  Start();
  const std::string answer = Get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", t0_);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: " + std::to_string(body_.size()) + "\r\n"));
  EXPECT_THAT(answer, HasSubstr("Connection: close\r\n"));
  EXPECT_EQ(answer.substr(answer.find("\r\n\r\n") + 4), body_);
  EXPECT_EQ(server_->counters().scrapes, 1u);
  EXPECT_EQ(server_->clients(), 0u);  // closed once answered
  // A query string is not part of the path; HTTP/1.0 and bare LFs are fine.
  EXPECT_THAT(Get("GET /metrics?x=1 HTTP/1.0\n\n", t0_), StartsWith("HTTP/1.1 200 OK"));
  // HEAD: the head alone.
  const std::string head = Get("HEAD /metrics HTTP/1.1\r\n\r\n", t0_);
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
}

TEST_F(MetricsServerTest, OtherPathsAreNotFoundOtherMethodsNotAllowed) {
  Start();
  EXPECT_THAT(Get("GET / HTTP/1.1\r\n\r\n", t0_), StartsWith("HTTP/1.1 404 Not Found"));
  EXPECT_THAT(Get("GET /metricsx HTTP/1.1\r\n\r\n", t0_), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Get("POST /other HTTP/1.1\r\n\r\n", t0_), StartsWith("HTTP/1.1 404"));
  const std::string post = Get("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", t0_);
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405 Method Not Allowed"));
  EXPECT_THAT(post, HasSubstr("Allow: GET, HEAD\r\n"));
  EXPECT_EQ(server_->counters().not_found, 3u);
  EXPECT_EQ(server_->counters().bad_requests, 1u);
  EXPECT_EQ(renders_, 0);  // nothing rendered for them
}

TEST_F(MetricsServerTest, MalformedRequestsAre400) {
  Start();
  for (const char* request :
       {"GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET /metrics SPDY/3\r\n\r\n",
        "G(T /metrics HTTP/1.1\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "\r\n\r\n"}) {
    EXPECT_THAT(Get(request, t0_), StartsWith("HTTP/1.1 400 Bad Request")) << request;
  }
  EXPECT_EQ(server_->counters().bad_requests, 6u);
}

TEST_F(MetricsServerTest, AnOverlongRequestIs431AndClosed) {
  MetricsLimits limits;
  limits.max_request_bytes = 256;
  Start(limits);
  Peer peer(path_);
  ASSERT_TRUE(peer.Send("GET /metrics HTTP/1.1\r\nX-Long: " + std::string(300, 'a')));
  Turn(t0_);
  const std::string answer = peer.ReadAll();
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 431"));
  EXPECT_EQ(server_->clients(), 0u);
}

TEST_F(MetricsServerTest, RendersAtMostOncePerInterval) {
  MetricsLimits limits;
  limits.min_render_interval = milliseconds(1000);
  Start(limits);
  Get("GET /metrics HTTP/1.1\r\n\r\n", t0_);
  body_ = "# HELP vfabric_x x\n# TYPE vfabric_x gauge\nvfabric_x 2\n";
  const std::string cached = Get("GET /metrics HTTP/1.1\r\n\r\n", t0_ + milliseconds(999));
  EXPECT_THAT(cached, HasSubstr("vfabric_x 1\n"));
  EXPECT_EQ(renders_, 1);
  const std::string fresh = Get("GET /metrics HTTP/1.1\r\n\r\n", t0_ + milliseconds(1000));
  EXPECT_THAT(fresh, HasSubstr("vfabric_x 2\n"));
  EXPECT_EQ(renders_, 2);
  EXPECT_EQ(server_->counters().renders, 2u);
  EXPECT_EQ(server_->counters().scrapes, 3u);
}

TEST_F(MetricsServerTest, AClientWithoutACompleteRequestIsClosedAtTheTimeout) {
  MetricsLimits limits;
  limits.request_timeout = milliseconds(5000);
  Start(limits);
  Peer peer(path_);
  ASSERT_TRUE(peer.Send("GET /metrics HTTP/1.1\r\n"));  // and nothing more
  Turn(t0_);
  EXPECT_EQ(server_->clients(), 1u);
  ASSERT_TRUE(server_->NextDeadline().has_value());
  // Trickling bytes does not push the deadline.
  ASSERT_TRUE(peer.Send("X"));
  Turn(t0_ + milliseconds(4999));
  EXPECT_EQ(server_->clients(), 1u);
  Turn(t0_ + milliseconds(5000));
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(server_->counters().timed_out, 1u);
  EXPECT_TRUE(peer.Closed());
}

TEST_F(MetricsServerTest, AReaderThatDoesNotReadIsDroppedAtTheWriteTimeout) {
  MetricsLimits limits;
  limits.write_timeout = milliseconds(10000);
  limits.request_timeout = milliseconds(60000);
  Start(limits);
  body_ = std::string(8 << 20, 'x');  // far more than the socket buffers hold
  Peer peer(path_);
  ASSERT_TRUE(peer.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  Turn(t0_);
  EXPECT_EQ(server_->clients(), 1u);  // still writing: the peer reads nothing
  Turn(t0_ + milliseconds(9999));
  EXPECT_EQ(server_->clients(), 1u);
  Turn(t0_ + milliseconds(10000));
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(server_->counters().dropped_slow, 1u);
}

TEST_F(MetricsServerTest, AtTheCapTheOldestIdleMakesRoomAndBusyIs503) {
  MetricsLimits limits;
  limits.max_clients = 2;
  Start(limits);
  Peer idle1(path_);
  Turn(t0_);
  Peer idle2(path_);
  Turn(t0_ + milliseconds(1));
  EXPECT_EQ(server_->clients(), 2u);
  // A third: the oldest idle one goes, the new one is served.
  const std::string answer = Get("GET /metrics HTTP/1.1\r\n\r\n", t0_ + milliseconds(2));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_TRUE(idle1.Closed());

  // Two clients being answered (slowly): a third is told 503.
  body_ = std::string(8 << 20, 'x');
  Peer slow1(path_), slow2(path_);
  Turn(t0_ + milliseconds(1002));  // idle2 makes room for one of them
  ASSERT_TRUE(slow1.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(slow2.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  Turn(t0_ + milliseconds(1003));
  EXPECT_EQ(server_->clients(), 2u);
  Peer third(path_);
  Turn(t0_ + milliseconds(1004));
  EXPECT_THAT(third.ReadAll(), StartsWith("HTTP/1.1 503"));
  EXPECT_EQ(server_->counters().rejected_busy, 1u);
}

TEST_F(MetricsServerTest, AClientThatLeavesEarlyIsCounted) {
  Start();
  {
    Peer peer(path_);
    ASSERT_TRUE(peer.Send("GET /met"));
  }
  Turn(t0_);
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(server_->counters().client_errors, 1u);
}

TEST(ListenMetricsTest, ParsesAddressesAndRefusesBadOnes) {
  std::string bound;
  auto any_port = ListenMetrics("127.0.0.1:0", 0, &bound);
  ASSERT_TRUE(any_port.ok()) << any_port.status().message();
  EXPECT_THAT(bound, StartsWith("127.0.0.1:"));
  EXPECT_NE(bound, "127.0.0.1:0");  // the port the kernel chose
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x",
                          "localhost:9464", "::1:9464", "[::1:9464", "1.2.3:80"}) {
    auto listener = ListenMetrics(bad, 0, &bound);
    EXPECT_FALSE(listener.ok()) << bad;
    if (!listener.ok()) {
      EXPECT_THAT(listener.status().message(), HasSubstr(bad));
    }
  }
}

TEST(ListenMetricsTest, AUnixSocketIsMode0660AndAStaleOneIsReplaced) {
  testing::TempDir dir;
  const std::string path = dir.Join("metrics.sock");
  std::string bound;
  {
    auto first = ListenMetrics(path, getegid(), &bound);
    ASSERT_TRUE(first.ok()) << first.status().message();
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    // Live: a second one is refused.
    auto second = ListenMetrics(path, getegid(), &bound);
    EXPECT_FALSE(second.ok());
  }
  // The first is closed; its file is left (a netd killed): replaced.
  auto again = ListenMetrics(path, getegid(), &bound);
  EXPECT_TRUE(again.ok()) << again.status().message();
}

}  // namespace
}  // namespace vfabric::netd
