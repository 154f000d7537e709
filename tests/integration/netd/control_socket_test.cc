// netd's control socket against hostile clients (issue 20): each test runs
// netd in a private network namespace and attacks its socket the way a
// member of the socket's group could, then checks that netd still serves
// netctl and still repairs drift.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Ask;
using testing::Cmd;
using ::testing::HasSubstr;
using testing::Link;
using testing::Request;
using testing::WaitFor;
using Clock = std::chrono::steady_clock;

long long MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// A connection kept open across requests.
class Connection {
 public:
  explicit Connection(const std::string& path) {
    fd_.Reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    // A netd that does not accept leaves connect() waiting in a full
    // backlog: bounded (SO_SNDTIMEO bounds an AF_UNIX connect) to fail, not hang.
    timeval tv{5, 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
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

  // `netctl network list` answers, and how long it took (ms).
  long long TimeNetworkList() {
    const auto start = Clock::now();
    auto result = Cmd({testing::BinaryDir() + "/netctl/netctl", "--socket", socket_, "--timeout",
                       "20", "network", "list"});
    const long long ms = MsSince(start);
    EXPECT_EQ(result.exit_code, 0) << result.err << "\n" << Log();
    EXPECT_THAT(result.out, HasSubstr("vfb-lab"));
    return ms;
  }

  // Deletes a tap of lab.json; how long until netd made it again (ms), or
  // -1 after 20 s.
  long long TimeTapRepair() {
    EXPECT_EQ(Cmd({"ip", "link", "del", "vm1-eth0"}).exit_code, 0);
    const auto start = Clock::now();
    if (!WaitFor([&] { return Link("vm1-eth0").value("master", "") == "vfb-lab"; }, 20000))
      return -1;
    return MsSince(start);
  }

  // From /proc/PID/status: "VmRSS" or "VmHWM" (peak), in KiB.
  long StatusKiB(const std::string& field) {
    const std::string status =
        testing::ReadFile("/proc/" + std::to_string(netd_->pid()) + "/status");
    const size_t at = status.find(field + ":");
    return at == std::string::npos ? -1 : std::stol(status.substr(at + field.size() + 1));
  }
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

// Issue 20 (5): a client that sends requests and reads no answers stalled
// netd 5 s per blocked answer; six of them made `network list` take 30 s
// and repair of a deleted tap 30 s instead of 0.1 s. Requirement: both
// under 1 s; the bound asserted is looser (a shared machine), the figures
// are printed.
TEST_F(ControlSocketTest, ClientsThatNeverReadDelayNeitherNetctlNorRepair) {
  Start(Lab());
  std::vector<std::unique_ptr<Connection>> silent;
  std::string requests;
  for (int i = 0; i < 2000; ++i) requests += Request("network.list").dump() + "\n";
  for (int i = 0; i < 6; ++i) {
    silent.push_back(std::make_unique<Connection>(socket_));
    ASSERT_TRUE(silent.back()->connected());
    ASSERT_TRUE(silent.back()->Send(requests));
  }
  const auto attacked = Clock::now();
  const long long list_ms = TimeNetworkList();
  const long long repair_ms = TimeTapRepair();
  std::printf("with 6 clients not reading: network list %lld ms, tap repaired in %lld ms\n",
              list_ms, repair_ms);
  EXPECT_LT(list_ms, 3000);
  EXPECT_GE(repair_ms, 0) << Log();
  EXPECT_LT(repair_ms, 3000);
  // They are dropped once their answers went unread for 10 s: their
  // sockets then end after what netd had written.
  auto dropped = [&] {
    const std::string log = Log();
    int count = 0;
    for (size_t at = 0; (at = log.find("its answer went unread too long", at)) != std::string::npos;
         ++at)
      ++count;
    return count;
  };
  ASSERT_TRUE(WaitFor([&] { return dropped() == 6; }, 30000)) << Log();
  const long long dropped_ms = MsSince(attacked);
  std::printf("non-reading clients dropped after %lld ms\n", dropped_ms);
  EXPECT_GE(dropped_ms, 9000);
  for (auto& client : silent) {
    int answers = 0;
    while (client->ReadAnswer(5000).is_object()) ++answers;
    EXPECT_GT(answers, 0);
    EXPECT_LT(answers, 2000);
  }
  EXPECT_TRUE(netd_->running());
}

// Issue 20 (6): 996 idle connections used up netd's 1024 files: netd spun,
// netctl could not connect, repair failed with "Too many open files". netd
// starts here with the usual 1024 and gets 2,000 connections.
TEST_F(ControlSocketTest, ThousandsOfIdleConnectionsStopNeitherNetctlNorRepair) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 2200) GTEST_SKIP() << "needs 2200 fds, the hard limit is " << saved.rlim_max;
  rlimit usual = saved;
  usual.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &usual), 0);
  Start(Lab());  // netd inherits 1024
  rlimit raised = saved;
  raised.rlim_cur = saved.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &raised), 0);
  std::vector<std::unique_ptr<Connection>> idle;
  for (int i = 0; i < 2000; ++i) {
    idle.push_back(std::make_unique<Connection>(socket_));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  const long long list_ms = TimeNetworkList();
  const long long repair_ms = TimeTapRepair();
  std::printf("with 2000 idle connections: network list %lld ms, tap repaired in %lld ms\n",
              list_ms, repair_ms);
  EXPECT_LT(list_ms, 3000);
  EXPECT_GE(repair_ms, 0) << Log();
  EXPECT_LT(repair_ms, 3000);
  EXPECT_THAT(Log(), ::testing::Not(HasSubstr("Too many open files")));
  // netd holds at most its cap of them, not 2,000.
  int fds = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(netd_->pid()) + "/fd"))
    ++fds;
  std::printf("netd has %d fds open\n", fds);
  EXPECT_LT(fds, 400);
  EXPECT_TRUE(netd_->running());
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

// Issue 20 (7): a 50 MB request line was read whole (and once accepted);
// 8 connections holding 15 MiB each kept 174 MB resident. The 16 MiB cap
// holds while the line arrives, and all clients together hold 64 MiB at most.
TEST_F(ControlSocketTest, HugeLinesAreCutOffAndMemoryStaysBounded) {
  Start(Lab());
  {
    Connection huge(socket_);
    const std::string chunk(1 << 20, 'x');
    size_t sent = 0;
    std::string line = R"({"version":1,"verb":"plan","args":{"files":[{"name":"a.json","text":")";
    ASSERT_TRUE(huge.Send(line));
    sent += line.size();
    while (sent < 50u * 1000 * 1000 && huge.Send(chunk)) sent += chunk.size();
    std::printf("netd stopped taking the line after %zu bytes\n", sent);
    EXPECT_LT(sent, 20u << 20);
    json answer = huge.ReadAnswer();
    ASSERT_TRUE(answer.is_object()) << Log();
    EXPECT_EQ(answer["error"]["code"], "bad_request");
    EXPECT_THAT(answer["error"]["message"].get<std::string>(), HasSubstr("request too long"));
  }
  std::vector<std::unique_ptr<Connection>> hogs;
  const std::string chunk(1 << 20, 'h');
  for (int i = 0; i < 8; ++i) {
    hogs.push_back(std::make_unique<Connection>(socket_));
    for (int mib = 0; mib < 15; ++mib)
      if (!hogs.back()->Send(chunk)) break;  // dropped: netd held too much
  }
  // Everything sent has been read (or refused) once a small request is answered.
  EXPECT_EQ(Ask(socket_, Request("hello"))["ok"], true);
  const long rss = StatusKiB("VmRSS"), peak = StatusKiB("VmHWM");
  std::printf("netd resident: %ld KiB now, %ld KiB at peak\n", rss, peak);
  // A sanitizer's netd (this test's build) keeps shadow memory and freed
  // blocks in quarantine: its resident size says nothing of netd's bound.
  if (!testing::kSanitizedBuild) {
    EXPECT_LT(rss, 140 * 1024) << "174 MB before the total bound";
  }
  EXPECT_THAT(Log(), HasSubstr("clients' memory bound"));
  EXPECT_TRUE(netd_->running());
}

}  // namespace
}  // namespace vfabric
