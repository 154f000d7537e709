#include "vfabric/vmm/accel.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "process.h"
#include "vfabric/common/log.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::vmm {
namespace {

std::string Seconds(std::chrono::steady_clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s",
                std::chrono::duration_cast<std::chrono::duration<double>>(d).count());
  return text;
}

// /dev/kvm opens, speaks API 12 and creates a VM.
Status CheckKvmDevice() {
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm) return Status::FromErrno("open /dev/kvm", errno);
  int version = ::ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    return Status::Error("/dev/kvm: API version " + std::to_string(version) + ", want " +
                         std::to_string(KVM_API_VERSION));
  UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (!vm) return Status::FromErrno("KVM_CREATE_VM", errno);
  return Status::Ok();
}

AccelChoice Tcg(std::string why) { return {Accel::kTcg, "tcg: " + std::move(why)}; }

}  // namespace

std::string_view ToString(Accel accel) { return accel == Accel::kKvm ? "kvm" : "tcg"; }

AccelChoice ProbeKvm(const AccelProbeOptions& options) {
  Status device = CheckKvmDevice();
  if (!device.ok()) return Tcg(device.message());
  if (options.kernel.empty()) {
    return {Accel::kKvm,
            "kvm: /dev/kvm creates VMs (not verified by a boot: no kernel to probe with)"};
  }
  if (::access(options.kernel.c_str(), R_OK) != 0) {
    return Tcg("kvm probe: kernel " + options.kernel + ": " + std::strerror(errno));
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0)
    return Tcg(std::string("kvm probe: pipe2: ") + std::strerror(errno));
  UniqueFd out_read(out[0]);
  UniqueFd out_write(out[1]);
  internal::SpawnOptions spawn;
  spawn.argv = {options.qemu_binary,
                "-accel",
                "kvm",
                "-cpu",
                "host",
                "-machine",
                "pc",
                "-m",
                "128",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-kernel",
                options.kernel,
                "-append",
                "console=ttyS0 earlyprintk=ttyS0 panic=-1 loglevel=8"};
  spawn.stdout_fd = out_write.get();
  spawn.stderr_fd = out_write.get();
  const auto start = std::chrono::steady_clock::now();
  Result<internal::ChildProcess> child = internal::Spawn(spawn);
  out_write.Reset();
  if (!child.ok()) return Tcg("kvm probe: " + child.status().message());

  std::string output;
  const auto deadline = start + options.timeout;
  while (true) {
    if (output.find("Linux version") != std::string::npos) {
      return {Accel::kKvm, "kvm: a guest kernel booted under KVM in " +
                               Seconds(std::chrono::steady_clock::now() - start)};
    }
    for (const char* failure : {"KVM internal error", "emulation failure",
                                "failed to initialize kvm", "Could not access KVM"}) {
      if (output.find(failure) != std::string::npos) {
        std::string line = output.substr(output.find(failure));
        line = line.substr(0, line.find('\n'));
        return Tcg("kvm probe: qemu: " + line + " (after " +
                   Seconds(std::chrono::steady_clock::now() - start) + ")");
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Tcg("kvm probe: no guest kernel output in " + Seconds(options.timeout) +
                 " (KVM does not run guests here)");
    }
    pollfd p{out_read.get(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
    char buffer[4096];
    ssize_t n = ::read(out_read.get(), buffer, sizeof(buffer));
    if (n > 0) {
      output.append(buffer, static_cast<size_t>(n));
      if (output.size() > (1 << 20)) output.erase(0, output.size() - 4096);
    } else if (n == 0) {  // QEMU exited
      child->WaitFor(std::chrono::milliseconds(1000));
      if (output.find("Linux version") != std::string::npos) continue;
      std::string last = output;
      while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) last.pop_back();
      if (last.rfind('\n') != std::string::npos) last = last.substr(last.rfind('\n') + 1);
      return Tcg("kvm probe: qemu " +
                 (child->exit_status() ? internal::DescribeWaitStatus(*child->exit_status())
                                       : std::string("exited")) +
                 " after " + Seconds(std::chrono::steady_clock::now() - start) +
                 (last.empty() ? "" : ": " + last));
    }
  }
}

namespace {
std::mutex cache_mutex;
std::map<std::pair<std::string, std::string>, AccelChoice>& Cache() {
  static auto* cache = new std::map<std::pair<std::string, std::string>, AccelChoice>();
  return *cache;
}
}  // namespace

Result<AccelChoice> ChooseAccelerator(std::string_view requested,
                                      const AccelProbeOptions& options) {
  if (requested == "tcg") return AccelChoice{Accel::kTcg, "tcg: asked for"};
  if (requested != "auto" && requested != "kvm")
    return Status::Error("accel \"" + std::string(requested) + "\": want auto, kvm or tcg");
  AccelChoice choice;
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto key = std::make_pair(options.qemu_binary, options.kernel);
    auto it = Cache().find(key);
    if (it != Cache().end()) {
      choice = it->second;
    } else {
      choice = ProbeKvm(options);
      VF_LOG(kInfo) << "accelerator probe: " << choice.reason;
      Cache().emplace(key, choice);
    }
  }
  if (requested == "kvm" && choice.accel != Accel::kKvm)
    return Status::Error("accel kvm: " + choice.reason.substr(5));
  return choice;
}

void ResetAcceleratorCache() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  Cache().clear();
}

}  // namespace vfabric::vmm
