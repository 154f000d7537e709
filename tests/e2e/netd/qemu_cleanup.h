// Guests outlive netd (a restarted netd adopts them), so a test that runs
// netd with guests must end their QEMUs itself, also after a failed
// assertion: every process whose command line names the test's directory
// (QEMU's QMP and console sockets live there) and every pid recorded in
// RUN/vms/*/guest.json that still names it gets SIGKILL, and is reaped.
// BecomeSubreaper() first makes the test process the one QEMUs are
// reparented to when netd exits, so they can be reaped (not left as
// zombies of a pid 1 that may not reap).
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "vfabric/testing/support.h"

namespace vfabric::testing {

inline void BecomeSubreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }

// `spare`: a pid not to touch (netd itself).
inline void KillQemusNaming(const std::string& dir, const std::string& run_dir, pid_t spare,
                            const std::set<pid_t>& known = {}) {
  std::set<pid_t> pids = known;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(run_dir + "/vms", ec)) {
    auto record =
        nlohmann::json::parse(ReadFile(entry.path().string() + "/guest.json"), nullptr, false);
    if (record.is_object() && record["pid"].is_number_integer())
      pids.insert(record["pid"].get<pid_t>());
  }
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (ReadFile(entry.path().string() + "/cmdline").find(dir) != std::string::npos)
      pids.insert(static_cast<pid_t>(std::stol(name)));
  }
  pids.erase(getpid());
  pids.erase(spare);
  for (pid_t pid : pids) {
    if (pid <= 0) continue;
    // Only what still names the directory: a pid recycled since is not ours.
    if (ReadFile("/proc/" + std::to_string(pid) + "/cmdline").find(dir) != std::string::npos)
      kill(pid, SIGKILL);
  }
  for (pid_t pid : pids) {
    // Our child (as subreaper) once netd is gone; ECHILD otherwise.
    for (int i = 0; i < 250 && pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0; ++i) usleep(20000);
  }
}

}  // namespace vfabric::testing
