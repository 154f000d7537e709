// netd against crashes and a failing run directory (issue 20,
// netd/DESIGN-crash.md):
// - kill -9 at points spread over an apply of 200 taps, then a restart:
//   always converges, nothing twice, nothing foreign touched, plan empty;
// - fdb add/del on a full and on a read-only run directory (a tiny tmpfs in
//   the test's own mount namespace): the failure is answered, the good file
//   stays as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Cmd;
using testing::CommandResult;
using ::testing::HasSubstr;
using testing::IpJson;
using testing::Request;
using testing::ScopedProcess;
using testing::WaitFor;

using Clock = std::chrono::steady_clock;

constexpr int kTaps = 200;
constexpr char kNetwork[] = "chaos";
constexpr char kBridge[] = "vfb-chaos";

std::string TapName(int i) { return "ch-t" + std::to_string(i); }

class CrashTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped()) return;
    config_ = dir_.Join("chaos.json");
    json ports = json::array();
    ports.push_back({{"name", "ch-up0"}, {"kind", "veth"}, {"peer", "ch-up0-p"}});
    for (int i = 0; i < kTaps; ++i) ports.push_back({{"name", TapName(i)}, {"kind", "tap"}});
    json doc = {
        {"networks",
         {{{"name", kNetwork}, {"datapath", "kernel"}, {"bridge", kBridge}, {"ports", ports}}}}};
    text_ = doc.dump(1);
    std::ofstream(config_) << text_;
  }

  std::vector<std::string> NetdArgv() const {
    return {Netd(), "--config", config_, "--socket", socket_, "--run-dir", run_dir()};
  }

  // Every link netd may make for the network, and the probe's.
  static bool Ours(const std::string& name) {
    return name == kBridge || name.rfind("ch-", 0) == 0 || name.rfind("vfprobe-", 0) == 0;
  }

  // The next kill point starts from scratch in a fresh network namespace
  // (deleting 200 taps one by one takes seconds; a namespace goes at once).
  void Reset() {
    const std::string error = testing::EnterPrivateNetns();
    ASSERT_TRUE(error.empty()) << error;
    std::error_code ignored;
    std::filesystem::remove(run_dir() + "/creating.json", ignored);
    ASSERT_EQ(Cmd({"ip", "tuntap", "add", "foreign0", "mode", "tap"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "link", "add", "fbr0", "type", "bridge"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "link", "set", "foreign0", "master", "fbr0"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "link", "set", "fbr0", "alias", "someone else's"}).exit_code, 0);
  }

  struct Progress {
    int taps = 0, marked = 0, enslaved = 0, up = 0;
    bool bridge = false, bridge_marked = false;
  };
  static Progress Count() {
    Progress p;
    for (const json& link : IpJson({"ip", "-d", "-j", "link", "show"})) {
      const std::string name = link.value("ifname", "");
      if (name == kBridge) {
        p.bridge = true;
        p.bridge_marked = link.value("ifalias", "") == "vfabric:chaos";
      }
      if (name.rfind("ch-t", 0) != 0) continue;
      ++p.taps;
      p.marked += link.value("ifalias", "") == "vfabric:chaos";
      p.enslaved += link.value("master", "") == kBridge;
      for (const json& flag : link.value("flags", json::array())) p.up += flag == "UP";
    }
    return p;
  }

  std::string config_, text_;
};

// Where to kill netd: as soon as `link` exists (`up`: is up), or, with no
// link, after `delay_ms`.
struct KillPoint {
  std::string link;
  bool up = false;
  double delay_ms = 0;
  std::string Describe() const {
    if (link.empty()) return "after " + std::to_string(static_cast<int>(delay_ms)) + " ms";
    return (up ? "when " + link + " is up" : "when " + link + " appears");
  }
};

// Polls `point` (every 50 us, by ioctl: cheap enough not to slow netd much)
// for up to 10 s; true when it was reached.
bool WaitForPoint(const KillPoint& point) {
  if (point.link.empty()) {
    std::this_thread::sleep_for(
        std::chrono::microseconds(static_cast<int64_t>(point.delay_ms * 1000)));
    return true;
  }
  UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (point.link.back() == '*') {
      // A prefix (the probe's random names): this namespace's sysfs, which
      // EnterPrivateNetns mounted.
      const std::string prefix = point.link.substr(0, point.link.size() - 1);
      std::error_code error;
      for (const auto& entry : std::filesystem::directory_iterator("/sys/class/net", error))
        if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    ifreq request{};
    std::snprintf(request.ifr_name, sizeof request.ifr_name, "%s", point.link.c_str());
    if (ioctl(fd.get(), SIOCGIFFLAGS, &request) == 0 && (!point.up || (request.ifr_flags & IFF_UP)))
      return true;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return false;
}

TEST_F(CrashTest, AKillAtAnyPointOfAnApplyOf200TapsConverges) {
  // The points, spread over the apply: netd's start (by time), its feature
  // probe's links appearing, the bridge and
  // the veth appearing (their mark is a second step: the journal's case),
  // taps appearing (the first instant a tap exists, before its mark and its
  // TUNSETPERSIST), and taps coming up (enslaving and bringing up).
  std::vector<KillPoint> points = {{"", false, 15}, {"vfprobe-*"}, {kBridge}, {"ch-up0"}};
  for (int i = 0; i <= kTaps; i += kTaps / 10) points.push_back({TapName(std::min(i, kTaps - 1))});
  for (int i = 0; i <= kTaps; i += kTaps / 10)
    points.push_back({TapName(std::min(i, kTaps - 1)), true});
  ASSERT_GE(points.size(), 20u);

  const auto test_start = Clock::now();
  std::vector<std::string> found;
  for (const KillPoint& point : points) {
    SCOPED_TRACE("kill " + point.Describe());
    Reset();
    if (HasFatalFailure()) return;
    const json foreign_before = IpJson({"ip", "-d", "-j", "link", "show", "dev", "foreign0"});
    const json fbr_before = IpJson({"ip", "-d", "-j", "link", "show", "dev", "fbr0"});
    ASSERT_EQ(foreign_before.size(), 1u);
    bool reached = false;
    {
      ScopedProcess victim(NetdArgv(), log_);
      reached = WaitForPoint(point);
      victim.Signal(SIGKILL);
      victim.Wait(5000);
    }
    EXPECT_TRUE(reached) << Log();
    const Progress at = Count();
    char line[200];
    std::snprintf(line, sizeof line,
                  "%-24s bridge %d (marked %d), taps %3d, marked %3d, enslaved %3d, up %3d",
                  point.Describe().c_str(), at.bridge, at.bridge_marked, at.taps, at.marked,
                  at.enslaved, at.up);
    found.push_back(line);
    unlink(socket_.c_str());  // as a killed netd leaves it (the next one removes it anyway)

    Start(config_);  // asserts that it runs: no "not made by vfabric"
    if (HasFatalFailure()) return;

    // Converged: exactly the network's links, each once, marked, on the
    // bridge, up; no probe leftovers.
    std::map<std::string, json> links;
    for (const json& link : IpJson({"ip", "-d", "-j", "link", "show"}))
      links[link.value("ifname", "")] = link;
    std::set<std::string> want = {"lo", "foreign0", "fbr0", kBridge, "ch-up0", "ch-up0-p"};
    for (int i = 0; i < kTaps; ++i) want.insert(TapName(i));
    std::set<std::string> have;
    for (const auto& [name, link] : links) have.insert(name);
    EXPECT_EQ(have, want) << line << "\n" << Log();
    for (int i = 0; i < kTaps; ++i) {
      const json& tap = links[TapName(i)];
      ASSERT_EQ(tap.value("ifalias", ""), "vfabric:chaos") << TapName(i);
      ASSERT_EQ(tap.value("master", ""), kBridge) << TapName(i);
      ASSERT_THAT(tap["flags"], ::testing::Contains("UP")) << TapName(i);
      ASSERT_EQ(tap["linkinfo"]["info_data"]["persist"], true) << TapName(i);
    }
    EXPECT_EQ(links[kBridge].value("ifalias", ""), "vfabric:chaos");
    EXPECT_EQ(links["ch-up0-p"].value("ifalias", ""), "vfabric:chaos");
    // Nothing foreign touched: the same links, as they were.
    for (const json* before : {&foreign_before, &fbr_before}) {
      const json& old = (*before)[0];
      const json& now = links[old.value("ifname", "")];
      EXPECT_EQ(now["ifindex"], old["ifindex"]);
      EXPECT_EQ(now.value("ifalias", ""), old.value("ifalias", ""));
      EXPECT_EQ(now.value("master", ""), old.value("master", ""));
      EXPECT_EQ(now["flags"], old["flags"]);
    }
    // Nothing left to do, and nothing left in flight.
    CommandResult plan = Cmd(
        {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_, "--json", "plan", config_});
    ASSERT_EQ(plan.exit_code, 0) << plan.err;
    EXPECT_EQ(json::parse(plan.out, nullptr, false)["operations"], json::array()) << plan.out;
    EXPECT_FALSE(std::filesystem::exists(run_dir() + "/creating.json"));
    ASSERT_EQ(Stop(), 0) << Log();
  }
  std::string summary =
      std::to_string(points.size()) + " kills in " +
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - test_start).count()) +
      " s; what each found:\n";
  for (const std::string& line : found) summary += "  " + line + "\n";
  // How often the next netd had to finish a dead one's creation (the
  // journal's case; a kill lands there by chance, so it is reported, not
  // asserted).
  const std::string log = Log();
  auto count = [&log](const std::string& text) {
    size_t n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  };
  summary += std::to_string(count("recovery: adopted")) + " links adopted from the journal, " +
             std::to_string(count("recovery: deleted")) + " probe links deleted\n";
  std::printf("%s", summary.c_str());
}

// A tiny tmpfs mounted over the run directory in the test's own mount
// namespace (the fixture's), unmounted at the end.
class ScopedTmpfs {
 public:
  ScopedTmpfs(const std::string& path, const std::string& options) : path_(path) {
    std::filesystem::create_directories(path);
    ok_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~ScopedTmpfs() {
    if (ok_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  bool Remount(unsigned long flags, const std::string& options) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT | flags, options.c_str()) == 0;
  }

 private:
  std::string path_;
  bool ok_ = false;
};

class StateFileTest : public testing::NetdFixture {};

// The error message of an answer, "" for none.
std::string ErrorMessage(const json& answer) {
  if (!answer.is_object() || !answer.contains("error") || !answer["error"].is_object()) return "";
  return answer["error"].value("message", "");
}

TEST_F(StateFileTest, FdbChangesOnAFullOrReadOnlyRunDirAreRefusedAndKeepTheGoodFile) {
  ScopedTmpfs tmpfs(run_dir(), "size=64k,mode=0755");
  ASSERT_TRUE(tmpfs.ok()) << std::strerror(errno);
  const std::string config = dir_.Join("us.json");
  std::ofstream(config) << R"({"networks": [{"name": "us", "datapath": "userspace",
      "ports": [{"name": "us-t0", "kind": "tap"}, {"name": "us-t1", "kind": "tap"}]}]})";
  Start(config);
  auto add = [&](const char* mac) {
    return testing::Ask(socket_,
                        Request("fdb.add", {{"network", "us"}, {"mac", mac}, {"port", "us-t0"}}));
  };
  const std::string file = run_dir() + "/userspace/us.fdb.json";
  ASSERT_EQ(add("52:54:00:00:00:01")["ok"], true);
  ASSERT_EQ(add("52:54:00:00:00:02")["ok"], true);
  const std::string good = testing::ReadFile(file);
  ASSERT_THAT(good, HasSubstr("52:54:00:00:00:02"));

  // Fill the file system up.
  {
    std::ofstream filler(run_dir() + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 64 && filler; ++i) filler.write(block.data(), block.size());
  }
  json full = add("52:54:00:00:00:03");
  EXPECT_EQ(full["ok"], false) << full.dump();
  EXPECT_EQ(full["error"]["code"], "failed");
  const std::string message = ErrorMessage(full);
  EXPECT_THAT(message, HasSubstr("not saved")) << full.dump();
  EXPECT_THAT(message, HasSubstr(file + ".tmp: No space left on device"));
  EXPECT_EQ(testing::ReadFile(file), good);
  EXPECT_FALSE(std::filesystem::exists(file + ".tmp"));

  json del =
      testing::Ask(socket_, Request("fdb.del", {{"network", "us"}, {"mac", "52:54:00:00:00:01"}}));
  EXPECT_EQ(del["ok"], false) << del.dump();
  EXPECT_EQ(del["error"]["code"], "failed");
  EXPECT_THAT(ErrorMessage(del), HasSubstr("No space left on device"));
  EXPECT_EQ(testing::ReadFile(file), good);

  // Read-only: the same.
  std::filesystem::remove(run_dir() + "/filler");
  ASSERT_TRUE(tmpfs.Remount(MS_RDONLY, "size=64k")) << std::strerror(errno);
  json ro = add("52:54:00:00:00:04");
  EXPECT_EQ(ro["ok"], false) << ro.dump();
  EXPECT_THAT(ErrorMessage(ro), HasSubstr("Read-only file system"));
  EXPECT_EQ(testing::ReadFile(file), good);

  // Writable again: the next change saves what is in effect, and a restart
  // brings exactly that back.
  ASSERT_TRUE(tmpfs.Remount(0, "size=64k")) << std::strerror(errno);
  ASSERT_EQ(add("52:54:00:00:00:05")["ok"], true);
  const json saved = json::parse(testing::ReadFile(file), nullptr, false);
  std::set<std::string> macs;
  if (saved.is_object() && saved["entries"].is_array())
    for (const json& e : saved["entries"]) macs.insert(e.value("mac", ""));
  EXPECT_EQ(macs, (std::set<std::string>{"52:54:00:00:00:02", "52:54:00:00:00:03",
                                         "52:54:00:00:00:04", "52:54:00:00:00:05"}));
  ASSERT_EQ(Stop(), 0) << Log();
  Start(config);
  EXPECT_THAT(Log(), HasSubstr("4 static FDB entries restored"));
}

// Issue 20: the creation journal (RUN_DIR/creating.json) on a full run
// directory. A bridge whose intent cannot be recorded is not made (a crash
// could leave it unmarked); netd says so once, naming the file, keeps
// running and what exists in place, leaves no half-written journal, and makes
// the bridge by itself (retried with back-off) once there is space again.
TEST_F(StateFileTest, AJournalWriteOnAFullRunDirIsReportedAndRetriedUntilThereIsSpace) {
  ScopedTmpfs tmpfs(run_dir(), "size=64k,mode=0755");
  ASSERT_TRUE(tmpfs.ok()) << std::strerror(errno);
  const std::string config = dir_.Join("nets");
  std::filesystem::create_directory(config);
  testing::WriteFile(config + "/a.json",
                     R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"}]}]})");
  Start(config);
  ASSERT_TRUE(testing::LinkExists("vfb-a"));
  {
    std::ofstream filler(run_dir() + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 64 && filler; ++i) filler.write(block.data(), block.size());
  }
  testing::WriteFile(config + "/b.json",
                     R"({"networks": [{"name": "b", "ports": [{"name": "b-t0"}]}]})");
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  const std::string journal = run_dir() + "/creating.json";
  ASSERT_TRUE(WaitFor([&] { return Log().find("reload: ") != std::string::npos; }, 10000)) << Log();
  EXPECT_THAT(Log(), HasSubstr("error: reload: create bridge vfb-b ("));
  EXPECT_THAT(Log(), HasSubstr("not started, its intent could not be recorded: journal " + journal +
                               ": write " + journal + ".tmp: No space left on device"));
  EXPECT_FALSE(std::filesystem::exists(journal));
  EXPECT_FALSE(std::filesystem::exists(journal + ".tmp"));
  EXPECT_FALSE(testing::LinkExists("vfb-b"));
  EXPECT_TRUE(testing::Ask(socket_, Request("hello")).is_object()) << "netd must keep serving";
  EXPECT_TRUE(testing::LinkExists("vfb-a"));
  // The failure is logged once, not at every retry.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::string log = Log();
  size_t said = 0;
  for (size_t at = log.find("its intent could not be recorded"); at != std::string::npos;
       at = log.find("its intent could not be recorded", at + 1))
    ++said;
  EXPECT_EQ(said, 1u) << log;

  std::filesystem::remove(run_dir() + "/filler");
  EXPECT_TRUE(WaitFor([] { return testing::Link("b-t0")["master"] == "vfb-b"; }, 20000)) << Log();
  EXPECT_FALSE(std::filesystem::exists(journal));
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
