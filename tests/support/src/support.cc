#include "vfabric/testing/support.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace vfabric::testing {
namespace {

std::string RandomSuffix() {
  std::random_device device;
  std::uniform_int_distribution<uint32_t> dist;
  std::ostringstream out;
  out << std::hex << (dist(device) & 0xffffff);
  return out.str();
}

}  // namespace

CommandResult Run(const std::vector<std::string>& argv, const std::string& stdin_text) {
  CommandResult result;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
    result.err = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  size_t written = 0;
  if (stdin_text.empty()) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  } else {
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  }
  pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_pipe[1], POLLOUT, 0}};
  int open_outputs = 2;
  char buffer[65536];
  while (open_outputs > 0) {
    int nfds = in_pipe[1] >= 0 ? 3 : 2;
    if (poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_outputs;
      }
    }
    if (in_pipe[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(in_pipe[1], stdin_text.data() + written, stdin_text.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == stdin_text.size()) {
        close(in_pipe[1]);
        in_pipe[1] = -1;
      }
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult Shell(const std::string& script) { return Run({"/bin/sh", "-c", script}); }

bool IsRoot() { return geteuid() == 0; }

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string SourceDir() {
  const char* dir = std::getenv("VFABRIC_SOURCE_DIR");
  return dir ? dir : VFABRIC_DEFAULT_SOURCE_DIR;
}

std::string BinaryDir() {
  const char* dir = std::getenv("VFABRIC_BINARY_DIR");
  return dir ? dir : VFABRIC_DEFAULT_BINARY_DIR;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "vfabric-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string EnterPrivateNetns() {
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0)
    return std::string("unshare(CLONE_NEWNET|CLONE_NEWNS): ") + std::strerror(errno);
  // Keep our mounts from propagating back to the host, then give this
  // namespace its own sysfs so /sys/class/net shows its links.
  if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return std::string("make / private: ") + std::strerror(errno);
  umount2("/sys", MNT_DETACH);
  if (mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0)
    return std::string("mount sysfs: ") + std::strerror(errno);
  // Loopback up, as a fresh host would have it.
  CommandResult lo = Run({"ip", "link", "set", "lo", "up"});
  if (lo.exit_code != 0) return "ip link set lo up: " + lo.err;
  return "";
}

ScopedNamedNetns::ScopedNamedNetns(std::string prefix) : name_(prefix + "-" + RandomSuffix()) {
  ok_ = Run({"ip", "netns", "add", name_}).exit_code == 0;
}

ScopedNamedNetns::~ScopedNamedNetns() {
  if (ok_) Run({"ip", "netns", "del", name_});
}

ScopedProcess::ScopedProcess(const std::vector<std::string>& argv, const std::string& log_path) {
  pid_ = fork();
  if (pid_ == 0) {
    // Dies with the test, even when the test itself is killed (a ctest
    // timeout), so nothing it started outlives it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!log_path.empty()) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
}

ScopedProcess::~ScopedProcess() {
  if (pid_ <= 0 || reaped_) return;
  kill(pid_, SIGTERM);
  if (Wait(5000) == -1) {
    kill(pid_, SIGKILL);
    Wait(5000);
  }
}

bool ScopedProcess::running() {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
    return false;
  }
  return true;
}

bool ScopedProcess::Signal(int sig) { return running() && kill(pid_, sig) == 0; }

int ScopedProcess::Wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  if (reaped_) return status_;
  bool exited = WaitFor([&] { return !running(); }, timeout_ms);
  return exited ? status_ : -1;
}

}  // namespace vfabric::testing
