// The control server against misbehaving clients, on a real Unix socket in a
// scratch directory (no privileges) with warped time: nothing here sleeps.
#include "vfabric/netd/control_server.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Clock = ControlServer::Clock;
using std::chrono::milliseconds;

// A client end; blocking, with a receive timeout so a missing answer fails
// the test instead of hanging it.
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
  int fd() const { return fd_.get(); }
  // Sends what fits without waiting; returns how much.
  size_t SendSome(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n =
          send(fd_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    return sent;
  }
  bool Send(const std::string& bytes) { return SendSome(bytes) == bytes.size(); }
  // The next line, or null on end of stream or after 200 ms without one.
  json Answer() {
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
  // True when the server closed the connection (after any answers left).
  bool Closed() {
    char buffer[65536];
    while (true) {
      ssize_t n = read(fd_.get(), buffer, sizeof buffer);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
  std::string pending_;
};

std::string Line(const json& request) { return request.dump() + "\n"; }
json Hello(int id) { return {{"version", 1}, {"verb", "hello"}, {"id", id}}; }

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(ControlLimits{}); }

  void Make(ControlLimits limits) {
    server_.reset();
    unlink(path_.c_str());
    UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(listen(listener.get(), 64), 0);
    auto made = ControlServer::Create(std::move(listener), path_, getegid(), limits,
                                      [this](const json& request) { return Handle(request); });
    ASSERT_TRUE(made.ok()) << made.status().message();
    server_ = std::move(made).value();
  }

  // Answers "hello" small and "big" with `big_bytes` of text.
  json Handle(const json& request) {
    ++handled_;
    json answer = {{"version", 1}, {"ok", true}};
    if (request.contains("id")) answer["id"] = request["id"];
    if (request.value("verb", "") == "stream")
      server_->HandOff([this](UniqueFd client, std::string line) {
        taken_ = std::move(client);
        taken_answer_ = std::move(line);
      });
    if (request.value("verb", "") == "big")
      answer["result"] = {{"text", std::string(big_bytes_, 'x')}};
    else
      answer["result"] = {{"server", "test"}};
    return answer;
  }

  // A few turns of the loop at `now` (what the daemon does as events come).
  void Run(Clock::time_point now) {
    for (int i = 0; i < 4; ++i) server_->Run(now);
  }

  testing::TempDir dir_;
  std::string path_ = dir_.Join("netd.sock");
  std::unique_ptr<ControlServer> server_;
  Clock::time_point t0_ = Clock::now();
  size_t big_bytes_ = 1 << 20;
  int handled_ = 0;
  UniqueFd taken_;  // the connection a "stream" request handed off
  std::string taken_answer_;
};

// capture.start's hand-off: once the answer is made the connection leaves
// the server (no timeouts, no limits, never read again) and the taker owns
// it and the answer, which the server has not written.
TEST_F(ControlServerTest, HandOffGivesTheConnectionAndItsAnswerAway) {
  Peer peer(path_);
  Run(t0_);
  ASSERT_TRUE(peer.Send(Line(Hello(1)) + Line({{"version", 1}, {"verb", "stream"}, {"id", 2}})));
  Run(t0_);
  EXPECT_EQ(peer.Answer()["id"], 1);
  ASSERT_TRUE(taken_);
  EXPECT_EQ(json::parse(taken_answer_)["id"], 2);
  EXPECT_EQ(taken_answer_.back(), '\n');
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(server_->handed_off(), 1u);
  EXPECT_EQ(peer.Answer(), nullptr) << "the server wrote on a connection it gave away";
  // Far past every timeout the server leaves it alone; the taker writes on it.
  ASSERT_TRUE(peer.Send(Line(Hello(3))));
  Run(t0_ + std::chrono::hours(1));
  ASSERT_EQ(write(taken_.get(), taken_answer_.data(), taken_answer_.size()),
            static_cast<ssize_t>(taken_answer_.size()));
  EXPECT_EQ(peer.Answer()["id"], 2);
  // Other requests are answered as before.
  Peer other(path_);
  Run(t0_);
  ASSERT_TRUE(other.Send(Line(Hello(4))));
  Run(t0_);
  EXPECT_EQ(other.Answer()["id"], 4);
}

TEST_F(ControlServerTest, AnswersPipelinedAndSplitRequestsInOrder) {
  Peer peer(path_);
  ASSERT_TRUE(peer.connected());
  Run(t0_);
  const std::string bytes = Line(Hello(1)) + Line(Hello(2)) + Line(Hello(3));
  ASSERT_TRUE(peer.Send(bytes.substr(0, 10)));
  Run(t0_);
  ASSERT_TRUE(peer.Send(bytes.substr(10)));
  Run(t0_);
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(peer.Answer()["id"], id);
  // Blank lines are no requests; a line that is not JSON is answered.
  ASSERT_TRUE(peer.Send("\n  \r\nnot json\n"));
  Run(t0_);
  EXPECT_EQ(peer.Answer()["error"]["message"], "the request is not valid JSON");
  EXPECT_EQ(server_->counters().requests, 4u);
}

TEST_F(ControlServerTest, DeepNestingIsAnErrorAndTheConnectionLives) {
  Peer peer(path_);
  Run(t0_);
  ASSERT_TRUE(peer.Send(R"({"version":1,"verb":"hello","id":)" + std::string(70000, '[') +
                        std::string(70000, ']') + "}\n"));
  Run(t0_);
  json answer = peer.Answer();
  EXPECT_EQ(answer["error"]["code"], "bad_request") << answer.dump();
  ASSERT_TRUE(peer.Send(Line(Hello(5))));
  Run(t0_);
  EXPECT_EQ(peer.Answer()["id"], 5);
  EXPECT_EQ(handled_, 1) << "the deep request never reached the handler";
}

// Issue 20 (5): a client that sent requests and reads no answers stalled
// netd 5 s per write. Now its answer waits in netd while everyone else is
// served, and it is dropped once the answer has gone unread write_timeout.
TEST_F(ControlServerTest, AClientThatNeverReadsIsDroppedAndDelaysNoOne) {
  Peer silent(path_);
  Run(t0_);
  std::string requests;
  for (int i = 0; i < 50; ++i) requests += Line({{"version", 1}, {"verb", "big"}, {"id", i}});
  ASSERT_TRUE(silent.Send(requests));
  const auto before = Clock::now();
  Run(t0_);
  EXPECT_LT(Clock::now() - before, std::chrono::seconds(2)) << "Run waited for the reader";
  // The socket's buffer took what it could; one answer waits, no more.
  EXPECT_LT(handled_, 50);
  EXPECT_LE(server_->held_bytes(), 2 * big_bytes_ + (256 << 10));
  Peer other(path_);
  Run(t0_ + milliseconds(100));
  ASSERT_TRUE(other.Send(Line(Hello(7))));
  Run(t0_ + milliseconds(100));
  EXPECT_EQ(other.Answer()["id"], 7);
  EXPECT_EQ(server_->clients(), 2u);
  Run(t0_ + server_->limits().write_timeout - milliseconds(1));
  EXPECT_EQ(server_->clients(), 2u);
  Run(t0_ + server_->limits().write_timeout);
  EXPECT_EQ(server_->counters().dropped_slow, 1u);
  EXPECT_EQ(server_->clients(), 1u);
  EXPECT_TRUE(silent.Closed());
}

TEST_F(ControlServerTest, ASlowReaderOfABigAnswerIsNotDropped) {
  big_bytes_ = 8 << 20;
  Peer reader(path_);
  Run(t0_);
  ASSERT_TRUE(reader.Send(Line({{"version", 1}, {"verb", "big"}, {"id", 1}})));
  auto now = t0_;
  Run(now);
  // Reads a little every 9 s (under the 10 s write timeout), and gets it all.
  std::string got;
  char buffer[1 << 20];
  while (got.find('\n') == std::string::npos) {
    ssize_t n = read(reader.fd(), buffer, sizeof buffer);
    ASSERT_GT(n, 0);
    got.append(buffer, static_cast<size_t>(n));
    now += milliseconds(9000);
    Run(now);
  }
  EXPECT_EQ(server_->counters().dropped_slow, 0u);
  EXPECT_GT(got.size(), big_bytes_);
}

// Issue 20 (6): idle connections are closed after idle_timeout; bytes of an
// unfinished request do not keep a connection alive.
TEST_F(ControlServerTest, IdleConnectionsAreClosed) {
  Peer idle(path_), trickle(path_), busy(path_);
  Run(t0_);
  const auto timeout = server_->limits().idle_timeout;
  ASSERT_TRUE(trickle.Send("{\"ver"));
  ASSERT_TRUE(busy.Send(Line(Hello(1))));
  Run(t0_ + timeout / 2);
  EXPECT_EQ(busy.Answer()["id"], 1);
  Run(t0_ + timeout - milliseconds(1));
  EXPECT_EQ(server_->clients(), 3u);
  ASSERT_TRUE(trickle.Send("sion\""));
  Run(t0_ + timeout);
  EXPECT_EQ(server_->clients(), 1u);
  EXPECT_EQ(server_->counters().timed_out_idle, 2u);
  EXPECT_TRUE(idle.Closed());
  EXPECT_TRUE(trickle.Closed());
  ASSERT_TRUE(busy.Send(Line(Hello(2))));
  Run(t0_ + timeout);
  EXPECT_EQ(busy.Answer()["id"], 2);
  ASSERT_TRUE(server_->NextDeadline().has_value());
  EXPECT_EQ(*server_->NextDeadline(), t0_ + timeout + timeout);
}

// Issue 20 (6): at max_clients a new connection takes the place of the one
// idle the longest; when all are busy writing, the new one is refused.
TEST_F(ControlServerTest, AtTheConnectionLimitTheLongestIdleMakesRoom) {
  ControlLimits limits;
  limits.max_clients = 3;
  Make(limits);
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 3; ++i) {
    peers.push_back(std::make_unique<Peer>(path_));
    Run(t0_ + milliseconds(i));
  }
  ASSERT_TRUE(peers[0]->Send(Line(Hello(1))));  // the first is the newest idle now
  Run(t0_ + milliseconds(10));
  EXPECT_EQ(peers[0]->Answer()["id"], 1);
  Peer newcomer(path_);
  Run(t0_ + milliseconds(11));
  EXPECT_EQ(server_->clients(), 3u);
  EXPECT_EQ(server_->counters().evicted_idle, 1u);
  json notice = peers[1]->Answer();
  EXPECT_EQ(notice["error"]["code"], "busy") << notice.dump();
  EXPECT_TRUE(peers[1]->Closed());
  ASSERT_TRUE(newcomer.Send(Line(Hello(2))));
  Run(t0_ + milliseconds(12));
  EXPECT_EQ(newcomer.Answer()["id"], 2);

  // Now every client has an answer it does not read: none is idle.
  for (Peer* peer : {peers[0].get(), peers[2].get(), &newcomer}) {
    std::string requests;
    for (int i = 0; i < 20; ++i) requests += Line({{"version", 1}, {"verb", "big"}, {"id", i}});
    ASSERT_TRUE(peer->Send(requests));
  }
  Run(t0_ + milliseconds(13));
  Peer refused(path_);
  Run(t0_ + milliseconds(14));
  EXPECT_EQ(server_->counters().rejected_busy, 1u);
  json answer = refused.Answer();
  EXPECT_EQ(answer["error"]["code"], "busy") << answer.dump();
  EXPECT_THAT(answer["error"]["message"].get<std::string>(), HasSubstr("at most 3"));
  EXPECT_TRUE(refused.Closed());
}

// Issue 20 (7): the cap holds while the line is read, however fast it comes
// (a 50 MB line used to be read whole, and then answered).
TEST_F(ControlServerTest, ALineOverTheCapIsRefusedWhileItIsRead) {
  ControlLimits limits;
  limits.max_request_bytes = 100000;
  Make(limits);
  Peer exact(path_), over(path_);
  Run(t0_);
  // Exactly at the cap (without the newline) is served.
  std::string at_cap = R"({"version":1,"verb":"hello","id":1,"pad":")";
  at_cap += std::string(limits.max_request_bytes - at_cap.size() - 2, 'p') + "\"}";
  ASSERT_EQ(at_cap.size(), limits.max_request_bytes);
  ASSERT_TRUE(exact.Send(at_cap + "\n"));
  Run(t0_);
  EXPECT_EQ(exact.Answer()["id"], 1);
  // A complete line one byte longer, in one write with a hello after it.
  ASSERT_TRUE(over.Send(Line(Hello(2)) + at_cap + " \n" + Line(Hello(3))));
  Run(t0_);
  EXPECT_EQ(over.Answer()["id"], 2) << "what came before the long line is answered";
  json refused = over.Answer();
  EXPECT_EQ(refused["error"]["code"], "bad_request") << refused.dump();
  EXPECT_THAT(refused["error"]["message"].get<std::string>(), HasSubstr("request too long"));
  EXPECT_TRUE(over.Closed());
  EXPECT_EQ(handled_, 2);
  // An endless line: refused once past the cap, not at its (never) end.
  Peer endless(path_);
  Run(t0_);
  const std::string chunk(16384, 'x');
  size_t sent = 0;
  for (int i = 0; i < 100 && sent <= 3 * limits.max_request_bytes; ++i) {
    sent += endless.SendSome(chunk);
    Run(t0_);
  }
  EXPECT_EQ(endless.Answer()["error"]["code"], "bad_request");
  EXPECT_LE(sent, 3 * limits.max_request_bytes);
  EXPECT_EQ(server_->counters().dropped_too_long, 2u);
}

// Issue 20 (7): 8 connections holding 15 MiB each kept 174 MB. All clients
// together hold at most max_total_bytes; the one holding the most goes, and
// small requests keep being answered.
TEST_F(ControlServerTest, AllClientsTogetherHoldAtMostTheTotalBound) {
  ControlLimits limits;
  limits.max_request_bytes = 1 << 20;
  limits.max_total_bytes = 3 << 20;
  Make(limits);
  std::vector<std::unique_ptr<Peer>> hogs;
  const std::string chunk(65536, 'h');
  for (int i = 0; i < 8; ++i) {
    hogs.push_back(std::make_unique<Peer>(path_));
    Run(t0_);
    // 15/16 of the cap, never finished.
    for (int k = 0; k < 15; ++k) {
      hogs.back()->SendSome(chunk);
      Run(t0_);
      EXPECT_LE(server_->held_bytes(), limits.max_total_bytes);
    }
  }
  EXPECT_GT(server_->counters().dropped_memory, 0u);
  Peer small(path_);
  Run(t0_);
  ASSERT_TRUE(small.Send(Line(Hello(9))));
  Run(t0_);
  EXPECT_EQ(small.Answer()["id"], 9);
  EXPECT_LE(server_->held_bytes(), limits.max_total_bytes);
}

// Issue 20 (6): with no fd left, accept() fails and the listener stays
// readable: netd spun at 66% of a core. Accepting pauses instead.
TEST_F(ControlServerTest, OutOfFdsPausesAcceptingInsteadOfSpinning) {
  Peer first(path_);
  ASSERT_TRUE(first.connected());  // in the backlog, not accepted yet
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  // Every fd number below the limit in use: the next accept4 gets EMFILE.
  std::vector<UniqueFd> fillers;
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(fcntl(first.fd(), F_DUPFD_CLOEXEC, 0));
  close(static_cast<int>(tight.rlim_cur));
  tight.rlim_cur += 8;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  while (true) {
    UniqueFd filler(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!filler) break;
    fillers.push_back(std::move(filler));
  }
  Run(t0_);
  const uint64_t errors = server_->counters().accept_errors;
  EXPECT_EQ(errors, 1u);
  EXPECT_EQ(server_->clients(), 0u);
  ASSERT_TRUE(server_->NextDeadline().has_value());
  EXPECT_EQ(*server_->NextDeadline(), t0_ + server_->limits().accept_pause);
  Run(t0_ + milliseconds(50));
  EXPECT_EQ(server_->counters().accept_errors, errors) << "tried again during the pause";
  fillers.clear();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  Run(t0_ + server_->limits().accept_pause);
  EXPECT_EQ(server_->clients(), 1u);
  ASSERT_TRUE(first.Send(Line(Hello(4))));
  Run(t0_ + server_->limits().accept_pause);
  EXPECT_EQ(first.Answer()["id"], 4);
}

}  // namespace
}  // namespace vfabric::netd
