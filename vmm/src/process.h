// Child processes for vmm (internal): fork/exec with chosen descriptors
// inherited at chosen numbers and every other descriptor closed on exec, an
// exec failure reported back as a Status, and a pidfd to poll for the exit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::vmm::internal {

struct InheritedFd {
  int parent_fd;  // open in the parent (may be CLOEXEC)
  int child_fd;   // the number it gets in the child
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is searched in PATH
  std::vector<InheritedFd> fds;   // child_fd must be >= 3
  int stdin_fd = -1;              // -1: /dev/null
  int stdout_fd = -1;             // -1: /dev/null
  int stderr_fd = -1;             // -1: /dev/null
  // setsid() in the child: its own session and process group, so a signal
  // to the parent's group (a terminal's ^C) does not reach it.
  bool new_session = false;
};

// A started child. Move-only; the destructor kills (SIGKILL) and reaps a
// child still running, so nothing outlives its owner.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // A process that is not our child (a QEMU a previous netd started): its
  // exit is seen through a pidfd, its exit status cannot be known.
  static Result<ChildProcess> Adopt(pid_t pid);

  pid_t pid() const { return pid_; }
  bool adopted() const { return adopted_; }
  // Readable once the child has exited (a pidfd). -1 when there is no child.
  int pollfd() const { return pidfd_.get(); }
  bool running() const { return pid_ > 0 && !exit_status_; }
  // The wait status (as waitpid) once reaped; 0 for an adopted process
  // (unknown).
  std::optional<int> exit_status() const { return exit_status_; }

  // Reaps the child if it has exited; returns true when it has (now or before).
  bool TryReap();
  // Waits up to `timeout` for the exit; returns true when reaped.
  bool WaitFor(std::chrono::milliseconds timeout);
  // Sends `sig`; false when the child is gone.
  bool Signal(int sig);
  // SIGKILL and reap (no-op when already reaped). An adopted process is
  // waited for (up to 5 s) through its pidfd.
  void KillAndReap();
  // Forgets the process without signalling it: it keeps running.
  void Release();

 private:
  friend Result<ChildProcess> Spawn(const SpawnOptions& options);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<int> exit_status_;
  bool adopted_ = false;
};

// Forks and execs options.argv. Returns after the exec succeeded, or an error
// "exec ARGV0: strerror" when it did not (the child is then reaped).
Result<ChildProcess> Spawn(const SpawnOptions& options);

// "exited with status 1", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int status);

}  // namespace vfabric::vmm::internal
