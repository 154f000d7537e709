// The fixture of the netd e2e tests whose topologies boot QEMU guests.
// SetUp skips the test (fails it in CI) when QEMU or the guest image is
// missing; it finds or builds the image (kernel + initramfs) before entering
// the test's network namespace, since building may download a kernel.
// Guests outlive netd, so TearDown stops netd and ends every QEMU of the test
// (qemu_cleanup.h), also after a failed assertion.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "qemu_cleanup.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric::testing {

// What follows the first `marker` in `text` up to the end of its line, or
// nullopt (also while that line is incomplete).
inline std::optional<std::string> LineAfter(const std::string& text, const std::string& marker,
                                            size_t from = 0) {
  size_t pos = text.find(marker, from);
  if (pos == std::string::npos) return std::nullopt;
  size_t start = pos + marker.size();
  size_t end = text.find_first_of("\r\n", start);
  if (end == std::string::npos) return std::nullopt;
  return text.substr(start, end - start);
}

// A stream socket connected to the unix socket at `path`; invalid when the
// connect fails.
inline UniqueFd ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
  return fd;
}

class GuestFixture : public NetdFixture {
 protected:
  // `needs_tun`: also skip (fail in CI) without /dev/net/tun.
  explicit GuestFixture(bool needs_tun = false) : needs_tun_(needs_tun) {}

  void SetUp() override {
    if (Cmd({"sh", "-c", "command -v qemu-system-x86_64"}).exit_code != 0) {
      if (InCi()) FAIL() << "qemu-system-x86_64 is missing";
      GTEST_SKIP() << "qemu-system-x86_64 is not installed (Debian: qemu-system-x86)";
    }
    if (needs_tun_ && ::access("/dev/net/tun", R_OK | W_OK) != 0) {
      if (InCi()) FAIL() << "no /dev/net/tun";
      GTEST_SKIP() << "no /dev/net/tun";
    }
    const char* shared = std::getenv("VFABRIC_GUEST_DIR");
    const std::string out = shared && *shared ? shared : BinaryDir() + "/guest";
    auto image = testing::Run({SourceDir() + "/vmm/guest/build-guest-image", out});
    if (image.exit_code != 0) {
      if (InCi()) FAIL() << "guest image: " << image.err;
      GTEST_SKIP() << "no guest image: " << image.err;
    }
    kernel_ = LineAfter(image.out, "KERNEL=").value_or("");
    initrd_ = LineAfter(image.out, "INITRD=").value_or("");
    ASSERT_FALSE(kernel_.empty() || initrd_.empty()) << image.out;
    BecomeSubreaper();
    NetdFixture::SetUp();
  }

  void TearDown() override {
    if (netd_ && netd_->running()) Stop();
    KillQemusNaming(dir_.path(), run_dir(), netd_ ? netd_->pid() : -1, qemu_pids_);
    // Orphans of whatever the process runs next are not the test's to reap.
    prctl(PR_SET_CHILD_SUBREAPER, 0);
  }

  // An entry of the topology's "vms" that boots the test image, its console
  // on ttyS0; `cmdline` holds the guest's vf.* parameters.
  json GuestVm(const std::string& name, const std::string& cmdline, json nics,
               int memory_mb = 256) const {
    return {{"name", name},           {"memory_mb", memory_mb},
            {"accel", "auto"},        {"kernel", kernel_},
            {"initrd", initrd_},      {"cmdline", "console=ttyS0 quiet panic=-1 " + cmdline},
            {"nics", std::move(nics)}};
  }

  // A file of `vm` in netd's run dir (console.sock, console.log, guest.json).
  std::string VmFile(const std::string& vm, const std::string& name) const {
    return run_dir() + "/vms/" + vm + "/" + name;
  }

  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }

  // Runs `command` on the guest's serial console, through its socket (which
  // QEMU serves with or without netd), on a connection of its own: the
  // command's exit status, or -1 when no "VF-CMD-RESULT <n> <rc>" line came
  // back in time.
  int RunOnConsole(const std::string& vm, const std::string& command, int timeout_ms = 30000) {
    UniqueFd fd = ConnectUnix(VmFile(vm, "console.sock"));
    if (!fd) return -1;
    const std::string line = command + "\n";
    (void)!::write(fd.get(), line.data(), line.size());
    // Keep reading: QEMU's serial port stalls when its socket fills.
    std::string seen;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      seen.append(buffer, static_cast<size_t>(n));
      if (auto result = LineAfter(seen, "VF-CMD-RESULT ")) {
        size_t space = result->find(' ');
        if (space != std::string::npos) return std::atoi(result->c_str() + space + 1);
      }
    }
    return -1;
  }

  std::string kernel_, initrd_;
  // QEMUs the test saw, for TearDown to end too: guest.json may be gone or
  // name another pid by then (a guest that left the topology, a restart).
  std::set<pid_t> qemu_pids_;

 private:
  bool needs_tun_;
};

}  // namespace vfabric::testing
