#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vfabric::vmm::internal {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// In the child only: async-signal-safe steps, errors reported through `report`.
[[noreturn]] void ExecChild(const SpawnOptions& options, char* const* argv, int report) {
  auto fail = [report](int err) {
    ssize_t n = ::write(report, &err, sizeof(err));
    (void)n;
    ::_exit(127);
  };
  // First move every inherited fd (and the report pipe) above all targets,
  // so the dup2 onto targets below cannot clobber a source.
  int high = 3;
  for (const InheritedFd& f : options.fds) high = std::max(high, f.child_fd + 1);
  high = std::max(high, 64);
  int moved_report = ::fcntl(report, F_DUPFD_CLOEXEC, high + static_cast<int>(options.fds.size()));
  if (moved_report < 0) fail(errno);
  report = moved_report;
  int next = high;
  int temp[256];
  size_t count = options.fds.size() < 256 ? options.fds.size() : 256;
  for (size_t i = 0; i < count; ++i) {
    temp[i] = ::fcntl(options.fds[i].parent_fd, F_DUPFD_CLOEXEC, next);
    if (temp[i] < 0) fail(errno);
    next = temp[i] + 1;
  }
  auto redirect = [&](int from, int to, int flags) {
    int fd = from;
    if (fd < 0) {
      fd = ::open("/dev/null", flags | O_CLOEXEC);
      if (fd < 0) fail(errno);
    }
    if (::dup2(fd, to) < 0) fail(errno);
  };
  redirect(options.stdin_fd, 0, O_RDONLY);
  redirect(options.stdout_fd, 1, O_WRONLY);
  redirect(options.stderr_fd, 2, O_WRONLY);
  for (size_t i = 0; i < count; ++i) {
    if (::dup2(temp[i], options.fds[i].child_fd) < 0) fail(errno);  // dup2 clears CLOEXEC
  }
  // Everything else closes on exec (the report pipe too, which tells the
  // parent that the exec succeeded).
  for (int fd = 3; fd < high; ++fd) {
    bool keep = false;
    for (size_t i = 0; i < count; ++i) keep = keep || options.fds[i].child_fd == fd;
    if (!keep) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::syscall(SYS_close_range, static_cast<unsigned>(high), ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
  if (options.new_session && ::setsid() < 0) fail(errno);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  ::execvp(argv[0], argv);
  int err = errno;
  ssize_t n = ::write(report, &err, sizeof(err));
  (void)n;
  ::_exit(127);
}

}  // namespace

ChildProcess::~ChildProcess() { KillAndReap(); }

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      exit_status_(std::exchange(other.exit_status_, std::nullopt)),
      adopted_(std::exchange(other.adopted_, false)) {}

Result<ChildProcess> ChildProcess::Adopt(pid_t pid) {
  ChildProcess process;
  process.pidfd_.Reset(PidfdOpen(pid));
  if (!process.pidfd_) return Status::FromErrno("pidfd_open " + std::to_string(pid), errno);
  process.pid_ = pid;
  process.adopted_ = true;
  return process;
}

void ChildProcess::Release() {
  pid_ = -1;
  pidfd_.Reset();
  exit_status_.reset();
  adopted_ = false;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    exit_status_ = std::exchange(other.exit_status_, std::nullopt);
    adopted_ = std::exchange(other.adopted_, false);
  }
  return *this;
}

bool ChildProcess::TryReap() {
  if (pid_ <= 0) return true;
  if (exit_status_) return true;
  if (adopted_) {
    // Not our child: the pidfd is readable once it has exited.
    struct ::pollfd p {
      pidfd_.get(), POLLIN, 0
    };
    if (pidfd_.valid() && ::poll(&p, 1, 0) == 0) return false;
    exit_status_ = 0;
    pidfd_.Reset();
    return true;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    pidfd_.Reset();
    return true;
  }
  if (r < 0 && errno == ECHILD) {  // reaped by someone else
    exit_status_ = 0;
    pidfd_.Reset();
    return true;
  }
  return false;
}

bool ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!TryReap()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (pidfd_.valid()) {
      struct ::pollfd p {
        pidfd_.get(), POLLIN, 0
      };
      ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    } else {
      ::usleep(10000);
    }
  }
  return true;
}

bool ChildProcess::Signal(int sig) {
  if (pid_ <= 0 || exit_status_) return false;
  if (pidfd_.valid()) return ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0;
  return ::kill(pid_, sig) == 0;
}

void ChildProcess::KillAndReap() {
  if (pid_ <= 0 || exit_status_) return;
  Signal(SIGKILL);
  if (adopted_) {
    WaitFor(std::chrono::milliseconds(5000));
    exit_status_ = 0;
    pidfd_.Reset();
    return;
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_status_ = status;
  pidfd_.Reset();
}

Result<ChildProcess> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::Error("exec: empty command");
  if (options.fds.size() > 200)
    return Status::Error("exec " + options.argv[0] + ": more than 200 descriptors to pass");
  for (const InheritedFd& f : options.fds) {
    if (f.child_fd < 3 || f.parent_fd < 0)
      return Status::Error("exec " + options.argv[0] + ": bad descriptor mapping " +
                           std::to_string(f.parent_fd) + " -> " + std::to_string(f.child_fd));
  }
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);

  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) ExecChild(options, argv.data(), report_write.get());

  ChildProcess child;
  child.pid_ = pid;
  child.pidfd_.Reset(PidfdOpen(pid));
  report_write.Reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report_read.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    child.WaitFor(std::chrono::milliseconds(5000));
    child.KillAndReap();
    return Status::FromErrno("exec " + options.argv[0], child_errno);
  }
  return child;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
  }
  return "stopped (status " + std::to_string(status) + ")";
}

}  // namespace vfabric::vmm::internal
