// Helpers shared by vfabric's tests: running commands, network namespaces,
// and locating the source and build trees.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace vfabric::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when it did not exit normally
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv[0] (searched in PATH) with the given arguments, capturing output.
CommandResult Run(const std::vector<std::string>& argv, const std::string& stdin_text = "");
// Runs "/bin/sh -c `script`".
CommandResult Shell(const std::string& script);

bool IsRoot();
// True when CI=true is in the environment.
bool InCi();
// The source tree (VFABRIC_SOURCE_DIR, set by ctest) and the build tree.
std::string SourceDir();
std::string BinaryDir();
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text);

// A scratch directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Moves the calling process into a new, anonymous network namespace (and a new
// mount namespace with its own /sys, so sysfs shows this namespace's links).
// Everything made in it disappears when the process exits, also on a crash.
// Returns an empty string on success, else why not.
std::string EnterPrivateNetns();

// A named network namespace ("ip netns add"), deleted on destruction.
class ScopedNamedNetns {
 public:
  explicit ScopedNamedNetns(std::string prefix);
  ~ScopedNamedNetns();
  ScopedNamedNetns(const ScopedNamedNetns&) = delete;
  ScopedNamedNetns& operator=(const ScopedNamedNetns&) = delete;
  const std::string& name() const { return name_; }
  bool ok() const { return ok_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// A child process killed (SIGTERM, then SIGKILL) and reaped on destruction.
class ScopedProcess {
 public:
  // stdout and stderr go to `log_path` when given.
  explicit ScopedProcess(const std::vector<std::string>& argv, const std::string& log_path = "");
  ~ScopedProcess();
  ScopedProcess(const ScopedProcess&) = delete;
  ScopedProcess& operator=(const ScopedProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig`; returns false if the process is gone.
  bool Signal(int sig);
  // Waits up to `timeout_ms` for exit; returns the exit status (as waitpid) or -1.
  int Wait(int timeout_ms);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Whether this build (and so the binaries it tests) runs under ASan or
// TSan: their runtimes slow a process's start and every frame, which
// bounds that measure time (a handover's gap) allow for.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

// Polls `predicate` every 20 ms until it holds or `timeout_ms` passes.
template <typename Predicate>
bool WaitFor(Predicate predicate, int timeout_ms);

}  // namespace vfabric::testing

#include <chrono>
#include <thread>

template <typename Predicate>
bool vfabric::testing::WaitFor(Predicate predicate, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Puts the test process in a fresh private network namespace. Without root the
// test is skipped with the reason, except under CI (CI=true), where it fails:
// in CI nothing the machine can do may be skipped.
#define VF_REQUIRE_PRIVATE_NETNS()                                         \
  do {                                                                     \
    if (!::vfabric::testing::IsRoot()) {                                   \
      if (::vfabric::testing::InCi()) FAIL() << "CI must run as root";     \
      GTEST_SKIP() << "needs root (network namespaces)";                   \
    }                                                                      \
    std::string vf_netns_error_ = ::vfabric::testing::EnterPrivateNetns(); \
    ASSERT_TRUE(vf_netns_error_.empty()) << vf_netns_error_;               \
  } while (0)
