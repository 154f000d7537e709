// A gtest fixture that runs the netd binary in the test's private network
// namespace, plus helpers to ask it things and to read the host through
// iproute2's JSON output. Used by the netd and netctl integration tests.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::testing {

using json = nlohmann::json;

inline CommandResult Cmd(const std::vector<std::string>& argv) { return Run(argv); }

// One request on a fresh connection; the answer, or null on a broken socket.
inline nlohmann::json Ask(const std::string& socket_path, const json& request) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return nullptr;
  }
  // A refused peer is answered and dropped before it may have written: the
  // send can then fail, and the answer is still there to read.
  std::string line = request.dump() + "\n";
  (void)!send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[65536];
  while (answer.find('\n') == std::string::npos) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return json::parse(answer, nullptr, false);
}

inline nlohmann::json Request(const std::string& verb, json args = json::object()) {
  return {{"version", 1}, {"verb", verb}, {"args", std::move(args)}};
}

inline nlohmann::json IpJson(const std::vector<std::string>& argv) {
  auto result = Run(argv);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  json parsed = json::parse(result.out, nullptr, false);
  return parsed.is_discarded() ? json::array() : parsed;
}

// The link as `ip -d -j link` shows it, or an empty object when there is none.
inline nlohmann::json Link(const std::string& name) {
  auto result = Run({"ip", "-d", "-j", "link", "show", "dev", name});
  json links = json::parse(result.out, nullptr, false);
  return links.is_array() && !links.empty() ? links[0] : json::object();
}

inline bool LinkExists(const std::string& name) {
  return Cmd({"ip", "link", "show", "dev", name}).exit_code == 0;
}

inline nlohmann::json BridgePort(const std::string& name) {
  auto result = Run({"bridge", "-d", "-j", "link", "show", "dev", name});
  json ports = json::parse(result.out, nullptr, false);
  return ports.is_array() && !ports.empty() ? ports[0] : json::object();
}

class NetdFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    VF_REQUIRE_PRIVATE_NETNS();
    socket_ = dir_.Join("netd.sock");
    log_ = dir_.Join("netd.log");
    // A copy of configs/: `netctl apply` and `network delete` write to the
    // files netd reads, and the tests' must not be the source tree's.
    // Subdirectories too (overlay/: one file per host), which netd does not
    // read from a --config directory but tests name by path.
    configs_ = dir_.Join("example-configs");
    std::filesystem::create_directory(configs_);
    for (const auto& entry : std::filesystem::directory_iterator(SourceDir() + "/configs")) {
      const std::string to = configs_ + "/" + entry.path().filename().string();
      if (entry.is_directory() && entry.path().filename() != "schema")
        std::filesystem::copy(entry.path(), to, std::filesystem::copy_options::recursive);
      else if (entry.path().extension() == ".json")
        std::filesystem::copy_file(entry.path(), to);
    }
  }

  std::string Netd() const { return BinaryDir() + "/netd/netd"; }
  // The example topologies (configs/*.json), copied for this test.
  std::string Configs() const { return configs_; }

  // Starts netd on `config` and waits until it serves (or exits).
  void Start(const std::string& config, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {Netd(), "--config", config, "--socket", socket_};
    // netd's state (guests, run-time static FDB entries) stays in the test's
    // own directory, never in the host's /run/vfabric.
    if (std::find(extra.begin(), extra.end(), "--run-dir") == extra.end())
      argv.insert(argv.end(), {"--run-dir", run_dir()});
    argv.insert(argv.end(), extra.begin(), extra.end());
    netd_ = std::make_unique<ScopedProcess>(argv, log_);
    ASSERT_TRUE(WaitFor(
        [&] { return !netd_->running() || Ask(socket_, Request("hello")).is_object(); }, 10000))
        << Log();
    ASSERT_TRUE(netd_->running()) << Log();
  }

  int Stop() {
    netd_->Signal(SIGTERM);
    return netd_->Wait(10000);
  }

  std::string Log() const { return ReadFile(log_); }
  std::string run_dir() const { return dir_.Join("run"); }

  json Ok(const nlohmann::json& request) {
    json answer = Ask(socket_, request);
    EXPECT_TRUE(answer.is_object() && answer["ok"] == true) << answer.dump() << "\n" << Log();
    return answer.is_object() ? answer["result"] : json();
  }

  TempDir dir_;
  std::string socket_, log_;
  std::string configs_;
  std::unique_ptr<ScopedProcess> netd_;
};

}  // namespace vfabric::testing
