// A libvirtd of the test's own (Debian's libvirt-daemon-system, libvirt
// 9.0), for the e2e tests that plug libvirt domains into vfabric networks.
//
// No systemd here, and the host's libvirt must not be touched: the test
// process already has its own mount namespace (EnterPrivateNetns), so
// directories of the test's bind-mounted over /etc/libvirt, /run/libvirt,
// /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt give the
// privileged daemon (whose paths are fixed at build time) its own config,
// sockets, domain state, capability cache and logs, seen only by the test
// and its children (virsh). virtlogd and libvirtd then run in the
// foreground as the test's children (ScopedProcess: killed with the test),
// in the test's network namespace, so libvirt's vnetN taps and the domains'
// QEMUs live there too. QEMU runs as libvirt-qemu, as on a real host.
//
// Cleanup (the destructor, also after a failed assertion): every domain
// defined through Define() destroyed and undefined, libvirtd and virtlogd
// stopped, the mounts undone. QEMUs left over (libvirtd killed mid-way)
// name the test's directory in their command line (the kernel they boot
// is copied there), so guest_fixture.h's TearDown ends them.
#pragma once

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::testing {

class Libvirtd {
 public:
  // `dir`: the test's directory; the daemon's live in `dir`/libvirt.
  explicit Libvirtd(std::string dir) : root_(std::move(dir) + "/libvirt") {}
  ~Libvirtd() { Stop(); }
  Libvirtd(const Libvirtd&) = delete;
  Libvirtd& operator=(const Libvirtd&) = delete;

  // Whether this machine has libvirt's daemons and virsh: "" or what is
  // missing.
  static std::string Missing() {
    for (const char* tool : {"libvirtd", "virtlogd", "virsh"}) {
      if (Shell(std::string("command -v ") + tool + " >/dev/null").exit_code != 0)
        return std::string(tool) +
               " is not installed (Debian: libvirt-daemon-system, "
               "libvirt-clients)";
    }
    return "";
  }

  // Starts virtlogd and libvirtd and waits for libvirtd's socket: "" or
  // why not. Call it from the thread that stays (the test's main thread):
  // the daemons get SIGKILL when the thread that started them ends
  // (ScopedProcess's PR_SET_PDEATHSIG).
  std::string Start() {
    std::error_code ec;
    for (const auto& [sub, target] : kDirs) {
      std::filesystem::create_directories(root_ + "/" + sub, ec);
      // /run/libvirt is made by the service on a real host; the empty
      // mount point stays.
      std::filesystem::create_directories(target, ec);
    }
    // QEMU (libvirt-qemu) reads the kernel and initrd under the test's
    // directory and connects to vhost-user sockets there.
    ::chmod(std::filesystem::path(root_).parent_path().c_str(), 0755);
    // The test's mount namespace has a fresh /sys without cgroups, and
    // QEMU needs no private /dev: neither feature is what is tested.
    WriteFile(root_ + "/etc/qemu.conf", "namespaces = [ ]\ncgroup_controllers = [ ]\n");
    WriteFile(root_ + "/etc/libvirtd.conf", "");
    WriteFile(root_ + "/etc/virtlogd.conf", "");
    for (const auto& [sub, target] : kDirs) {
      const std::string from = root_ + "/" + sub;
      if (::mount(from.c_str(), target, nullptr, MS_BIND, nullptr) != 0)
        return "bind-mount " + from + " on " + target + ": " + std::strerror(errno);
      mounted_.push_back(target);
    }
    virtlogd_ = std::make_unique<ScopedProcess>(
        std::vector<std::string>{"virtlogd", "-p", root_ + "/run/virtlogd.pid"},
        root_ + "/virtlogd.log");
    if (!WaitFor([] { return ::access("/run/libvirt/virtlogd-sock", F_OK) == 0; }, 10000))
      return "virtlogd did not start: " + ReadFile(root_ + "/virtlogd.log");
    libvirtd_ = std::make_unique<ScopedProcess>(
        std::vector<std::string>{"python3", "-c", kReaper, "libvirtd", "-p",
                                 root_ + "/run/libvirtd.pid"},
        Log());
    if (!WaitFor(
            [&] {
              return !libvirtd_->running() || ::access("/run/libvirt/libvirt-sock", F_OK) == 0;
            },
            20000))
      return "libvirtd did not start: " + ReadFile(Log());
    return "";
  }

  // Waits until libvirtd answers: "" or why not. The first call probes
  // QEMU's capabilities (seconds): any thread may wait for it.
  std::string Ready() const {
    CommandResult version = Virsh({"version"}, 60);
    if (version.exit_code != 0) return "virsh version: " + version.err + ReadFile(Log());
    return "";
  }

  // virsh on the test's libvirtd, each call bounded by `timeout_s`.
  CommandResult Virsh(const std::vector<std::string>& args, int timeout_s = 30) const {
    std::vector<std::string> argv = {"timeout", std::to_string(timeout_s), "virsh", "-q",
                                     "-c",      "qemu:///system"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv);
  }

  // `virsh define` of `xml` (kept beside the daemon's files as NAME.xml);
  // the destructor destroys and undefines the domain.
  CommandResult Define(const std::string& name, const std::string& xml) {
    const std::string path = root_ + "/" + name + ".xml";
    WriteFile(path, xml);
    domains_.push_back(name);
    return Virsh({"define", path});
  }

  std::string Log() const { return root_ + "/libvirtd.log"; }
  // QEMU's log of a domain (its command line, its errors).
  std::string QemuLog(const std::string& name) const {
    return ReadFile(root_ + "/log/qemu/" + name + ".log");
  }

  void Stop() {
    if (libvirtd_ && libvirtd_->running()) {
      for (const std::string& name : domains_) {
        Virsh({"destroy", name});
        Virsh({"undefine", name});
      }
    }
    domains_.clear();
    for (auto* daemon : {&libvirtd_, &virtlogd_}) {
      if (!*daemon) continue;
      (*daemon)->Signal(SIGTERM);
      (*daemon)->Wait(10000);
      daemon->reset();
    }
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) ::umount2(*it, MNT_DETACH);
    mounted_.clear();
  }

 private:
  // libvirtd under a reaper of its own: QEMUs (its capability probe too)
  // run daemonized, so they are reparented to the nearest subreaper, which
  // must reap them at once: libvirtd waits for a killed QEMU to be gone
  // (virProcessKillPainfully: a zombie is not gone) and gives up after
  // seconds. The test process is a subreaper (guest_fixture.h) that reaps
  // only at the end, so this Python process is libvirtd's: it reaps every
  // orphan, passes SIGTERM on to libvirtd, exits with it, and libvirtd dies
  // with it (PR_SET_PDEATHSIG).
  static constexpr const char* kReaper = R"(
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    os.execvp(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(pid, signal.SIGTERM))
while True:
    try:
        child, status = os.wait()
    except ChildProcessError:
        sys.exit(1)
    if child == pid:
        sys.exit(os.waitstatus_to_exitcode(status) & 0xff)
)";

  static constexpr std::pair<const char*, const char*> kDirs[] = {{"etc", "/etc/libvirt"},
                                                                  {"run", "/run/libvirt"},
                                                                  {"lib", "/var/lib/libvirt"},
                                                                  {"cache", "/var/cache/libvirt"},
                                                                  {"log", "/var/log/libvirt"}};

  std::string root_;
  std::unique_ptr<ScopedProcess> virtlogd_, libvirtd_;
  std::vector<const char*> mounted_;
  std::vector<std::string> domains_;
};

}  // namespace vfabric::testing
