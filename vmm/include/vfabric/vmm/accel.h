// Choosing QEMU's accelerator: KVM only where it really runs a guest.
//
// /dev/kvm opening is not proof: on some hosts (nested or partial
// virtualization) a Linux guest under KVM hangs in early boot or dies with
// "KVM internal error ... emulation failure". So "auto" (and "kvm") probe
// once per process: boot a Linux kernel under KVM with earlyprintk on the
// serial port and wait (2.5 s by default) for its first line ("Linux version").
// The probe boots `kernel` (the guest's own kernel, or any bzImage); without
// one, only /dev/kvm and KVM_CREATE_VM are checked and the reason says so.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "vfabric/common/status.h"

namespace vfabric::vmm {

enum class Accel { kKvm, kTcg };
std::string_view ToString(Accel accel);  // "kvm", "tcg"

struct AccelChoice {
  Accel accel = Accel::kTcg;
  // Why, for logs and `netctl vm list`: "kvm: a guest kernel booted in 0.4 s",
  // "tcg: kvm probe: no kernel output in 2.5 s (KVM does not run guests here)".
  std::string reason;
};

struct AccelProbeOptions {
  std::string qemu_binary = "qemu-system-x86_64";
  std::string kernel;  // a bzImage to boot; "" skips the boot probe
  std::chrono::milliseconds timeout{2500};
};

// The result of probing KVM (not cached): kKvm when a guest kernel printed
// its first line under KVM, else kTcg with the reason.
AccelChoice ProbeKvm(const AccelProbeOptions& options);

// `requested` is "auto", "kvm" or "tcg". "tcg" needs no probe. "auto" and
// "kvm" use ProbeKvm, whose result is remembered per (qemu_binary, kernel)
// for the life of the process (thread-safe). "kvm" when the probe fails is an
// error naming the reason; an unknown value is an error.
Result<AccelChoice> ChooseAccelerator(std::string_view requested, const AccelProbeOptions& options);

// Forgets remembered probe results (tests).
void ResetAcceleratorCache();

}  // namespace vfabric::vmm
