// netd --metrics-listen against real clients, in the test's private network
// namespace (its own loopback): a raw HTTP client, promtool's linter on a
// real scrape, and a real Prometheus server that scrapes netd and answers a
// query. Prometheus comes from Debian's `prometheus` package
// (scripts/install-deps); without it these tests skip, except in CI.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;
using ::testing::StartsWith;

constexpr int kMetricsPort = 9464;

// One HTTP request on loopback; the whole answer (until the server closes),
// or "" when nothing listens.
std::string Http(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[65536];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

std::string Get(int port, const std::string& target) {
  return Http(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

std::string Body(const std::string& answer) {
  const size_t end = answer.find("\r\n\r\n");
  return end == std::string::npos ? "" : answer.substr(end + 4);
}

// A port nothing listens on: this namespace is the test's own.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return ntohs(addr.sin_port);
}

// Skips (outside CI) or fails (in CI, which installs it) without `program`.
#define VF_REQUIRE_PROGRAM(program)                                                 \
  do {                                                                              \
    if (testing::Run({"sh", "-c", "command -v " program}).exit_code != 0) {         \
      if (testing::InCi())                                                          \
        FAIL() << program                                                           \
            " is missing (scripts/install-deps installs "                           \
            "Debian's prometheus package)";                                         \
      GTEST_SKIP() << program << " is not installed (Debian's prometheus package)"; \
    }                                                                               \
  } while (0)

class MetricsTest : public testing::NetdFixture {
 protected:
  void StartWithMetrics() {
    Start(Configs(), {"--metrics-listen", "127.0.0.1:" + std::to_string(kMetricsPort)});
  }
};

TEST_F(MetricsTest, ServesTheExpositionAndOnlyAtMetrics) {
  StartWithMetrics();
  EXPECT_THAT(Log(), HasSubstr("metrics on http://127.0.0.1:9464/metrics"));
  const std::string answer = Get(kMetricsPort, "/metrics");
  ASSERT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n")) << answer << Log();
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  const std::string text = Body(answer);
  // The configs' kernel network lab, its ports' counters and tree; netd's
  // own start pass.
  EXPECT_THAT(text, HasSubstr("# TYPE vfabric_port_receive_bytes_total counter\n"));
  EXPECT_THAT(text,
              HasSubstr("vfabric_port_receive_bytes_total{network=\"lab\",port=\"vm1-eth0\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_port_drops_total{network=\"lab\",port=\"vm1-eth0\","
                              "reason=\"rx_dropped\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_port_state{network=\"lab\",port=\"vm1-eth0\""));
  // The userspace network fabric: its switch's ports, FDB and tree.
  EXPECT_THAT(text,
              HasSubstr("vfabric_port_receive_packets_total{network=\"fabric\",port=\"fab-up0\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_port_drops_total{network=\"fabric\",port=\"fab-up0\","
                              "reason=\"vlan_not_allowed\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_learned_total{network=\"fabric\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_fdb_entries{network=\"fabric\",type=\"learned\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_topology_changes_total{network=\"fabric\"}"));
  EXPECT_THAT(text, HasSubstr("vfabric_stp_port_role{network=\"fabric\",port=\"fab-up0\""));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_reconcile_passes_total{trigger=\"start\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("vfabric_netd_reconcile_duration_seconds_count{trigger=\"start\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vfabric_netd_metrics_errors_total 0\n"));

  EXPECT_THAT(Get(kMetricsPort, "/"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Http(kMetricsPort, "DELETE /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(Http(kMetricsPort, "nonsense\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  // Those were counted, and netctl still works beside it.
  EXPECT_EQ(Ok(testing::Request("hello"))["server"], "netd");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the render interval
  const std::string later = Body(Get(kMetricsPort, "/metrics"));
  EXPECT_THAT(later,
              HasSubstr("vfabric_netd_metrics_requests_failed_total{reason=\"not_found\"} 1\n"));
  EXPECT_THAT(later,
              HasSubstr("vfabric_netd_metrics_requests_failed_total{reason=\"bad_request\"} 2\n"));
  EXPECT_THAT(later, HasSubstr("vfabric_netd_metrics_scrapes_total 2\n"));
}

TEST_F(MetricsTest, OffByDefault) {
  Start(Configs());
  EXPECT_EQ(Get(kMetricsPort, "/metrics"), "");
  EXPECT_THAT(Log(), ::testing::Not(HasSubstr("metrics on")));
}

TEST_F(MetricsTest, AHostileClientDoesNotStopRepairOrOtherScrapes) {
  StartWithMetrics();
  // Connections that send nothing, up to the cap and past it.
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(kMetricsPort);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    idle.push_back(fd);
  }
  // A scrape still gets through (an idle one makes room), and drift is
  // still repaired.
  EXPECT_THAT(Get(kMetricsPort, "/metrics"), StartsWith("HTTP/1.1 200"));
  ASSERT_EQ(testing::Cmd({"ip", "link", "del", "vm1-eth0"}).exit_code, 0);
  EXPECT_TRUE(testing::WaitFor([] { return testing::LinkExists("vm1-eth0"); }, 5000)) << Log();
  for (int fd : idle) close(fd);
}

// `promtool check metrics` (Prometheus' own linter) on a real scrape.
TEST_F(MetricsTest, PromtoolChecksARealScrape) {
  VF_REQUIRE_PROGRAM("promtool");
  StartWithMetrics();
  // A reconcile with drift first, so that repair's series are there too.
  ASSERT_EQ(testing::Cmd({"ip", "link", "del", "vm1-eth0"}).exit_code, 0);
  ASSERT_TRUE(testing::WaitFor([] { return testing::LinkExists("vm1-eth0"); }, 5000)) << Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the render interval
  const std::string text = Body(Get(kMetricsPort, "/metrics"));
  ASSERT_THAT(text, HasSubstr("vfabric_netd_repairs_total "));
  ASSERT_THAT(text, HasSubstr("trigger=\"repair\""));
  CommandResult check = testing::Run({"promtool", "check", "metrics"}, text);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "") << text;  // not even a lint warning
}

// A real Prometheus server, on its own loopback port with its storage in the
// test's directory, scrapes netd; its query API then has netd's values.
TEST_F(MetricsTest, APrometheusServerScrapesNetd) {
  VF_REQUIRE_PROGRAM("prometheus");
  StartWithMetrics();
  const std::string dir = dir_.Join("prometheus");
  std::filesystem::create_directories(dir + "/data");
  testing::WriteFile(dir + "/prometheus.yml",
                     "global:\n"
                     "  scrape_interval: 1s\n"
                     "  scrape_timeout: 1s\n"
                     "scrape_configs:\n"
                     "  - job_name: vfabric\n"
                     "    static_configs:\n"
                     "      - targets: ['127.0.0.1:" +
                         std::to_string(kMetricsPort) + "']\n");
  const int port = FreePort();
  // Killed (SIGTERM, then SIGKILL) and reaped when the test ends, also when
  // it fails; its directory goes with the test's.
  testing::ScopedProcess prometheus(
      {"prometheus", "--config.file=" + dir + "/prometheus.yml",
       "--storage.tsdb.path=" + dir + "/data",
       "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
      dir + "/prometheus.log");
  auto query = [&](const std::string& promql) {
    json answer = json::parse(Body(Get(port, "/api/v1/query?query=" + promql)), nullptr, false);
    if (!answer.is_object() || answer.value("status", "") != "success") return json::array();
    return answer["data"]["result"];
  };
  json result;
  const bool scraped = testing::WaitFor(
      [&] {
        result = query("vfabric_netd_reconcile_passes_total%7Btrigger%3D%22start%22%7D");
        return !result.empty();
      },
      60000);
  ASSERT_TRUE(scraped) << testing::ReadFile(dir + "/prometheus.log") << Log();
  ASSERT_EQ(result.size(), 1u) << result.dump();
  EXPECT_EQ(result[0]["metric"]["job"], "vfabric");
  EXPECT_EQ(result[0]["metric"]["instance"], "127.0.0.1:" + std::to_string(kMetricsPort));
  EXPECT_EQ(result[0]["value"][1], "1");  // one start pass
  // Prometheus took the whole scrape: the target is up, and the port
  // series are there too.
  json up = query("up%7Bjob%3D%22vfabric%22%7D");
  ASSERT_EQ(up.size(), 1u) << up.dump();
  EXPECT_EQ(up[0]["value"][1], "1");
  json bytes = query("vfabric_port_receive_bytes_total%7Bnetwork%3D%22lab%22%7D");
  EXPECT_FALSE(bytes.empty());
  EXPECT_TRUE(prometheus.Signal(SIGTERM));
  EXPECT_NE(prometheus.Wait(10000), -1) << testing::ReadFile(dir + "/prometheus.log");
}

}  // namespace
}  // namespace vfabric
