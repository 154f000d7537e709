// What a guest's run directory (RUN_DIR/vms/NAME/guest.json) records about
// its running QEMU, so that a restarted netd can adopt the process instead of
// booting the guest again: the pid, the QMP socket, the accelerator, the
// exact command line, the NICs (also hot-attached ones, and the topology's
// NICs detached at run time) and the machine configuration it was started
// with (and its hash), to tell whether it still matches the topology.
//
// The Guest writes the record when QEMU starts and on every attach/detach,
// and removes it when QEMU is gone. Written atomically (a temporary file,
// then rename), so a reader sees the old or the new record, never half.
//
//   {"version": 1, "name": "vm1", "pid": 4242, "qmp_socket": "RUN/qmp.sock",
//    "pidfile": "RUN/qemu.pid", "accel": "tcg", "accel_reason": "...",
//    "config": {"memory_mb": 256, "vcpus": 1, "accel": "auto", "kernel": ...,
//               "initrd": ..., "cmdline": ..., "disk": ...},
//    "config_hash": "9c1d...", "argv": ["qemu-system-x86_64", ...],
//    "nics": [{"id": "nic0", "network": "lab", "port": "vm1-eth0",
//              "mac": "52:54:00:12:34:56", "attached": false},
//             {"id": "nic1", "network": "lab", "port": "vm1-eth1",
//              "mac": "52:54:00:12:34:57", "attached": true, "access_vlan": 10}],
//    "detached_ports": ["vm1-eth1"]}
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/topology/topology.h"

namespace vfabric::vmm {

struct RunRecordNic {
  std::string id;
  std::string network;
  std::string port;
  MacAddress mac;
  bool attached = false;  // hot-attached at run time (not one the guest started with)
  // `attach --vlan`: the access VLAN its port was given (0: none). Kept here
  // so a restarted netd puts the port back on that VLAN, not the default.
  uint16_t access_vlan = 0;
  // A vhost-user NIC: the socket QEMU connects to (netd's switch listens
  // there); "" for a tap NIC.
  std::string vhost_user_socket{};
};

// The part of a VmConfig that needs a new QEMU when it changes (the restart
// policy and the NICs' networks do not; NICs are compared one by one).
struct MachineConfig {
  uint32_t memory_mb = 0;
  uint32_t vcpus = 0;
  std::string accel;
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::string disk;
  bool operator==(const MachineConfig&) const = default;
};
MachineConfig MachineConfigOf(const topology::VmConfig& vm);
// A stable hex hash (FNV-1a 64) of the machine configuration.
std::string ConfigHash(const MachineConfig& config);
// What differs, for logs: "memory_mb 256 -> 512, kernel /a -> /b"; "" when equal.
std::string DescribeDifference(const MachineConfig& was, const MachineConfig& now);

struct RunRecord {
  static constexpr int kVersion = 1;
  std::string name;
  pid_t pid = -1;
  std::string qmp_socket;
  std::string pidfile;
  std::string accel;  // "kvm" | "tcg"
  std::string accel_reason;
  MachineConfig config;
  std::string config_hash;
  std::vector<std::string> argv;
  std::vector<RunRecordNic> nics;
  std::vector<std::string> detached_ports;
};

// "RUN_DIR/guest.json".
std::string RunRecordPath(const std::string& run_dir);

std::string RunRecordToJson(const RunRecord& record);
// Errors name the field: "guest.json: \"pid\": want a positive integer".
Result<RunRecord> ParseRunRecord(std::string_view text);

// Writes RUN_DIR/guest.json atomically (mode 0600).
Status WriteRunRecord(const std::string& run_dir, const RunRecord& record);
// The record, or nullopt when there is none; an unreadable or malformed one
// is an error naming the file.
Result<std::optional<RunRecord>> ReadRunRecord(const std::string& run_dir);
// Removes RUN_DIR/guest.json (no error when there is none).
void RemoveRunRecord(const std::string& run_dir);

// Ok when `pid` is a live process whose command line (/proc/PID/cmdline
// under `proc_root`) names `qmp_socket`: the QEMU the record describes and
// not a recycled pid. Else why not: "pid 4242 is gone", "pid 4242 is not
// vm1's QEMU (its command line does not name RUN/qmp.sock): sleep 30".
Status VerifyQemuProcess(pid_t pid, const std::string& qmp_socket,
                         const std::string& proc_root = "/proc");

// The live processes under `proc_root` whose command line names
// `qmp_socket` (as VerifyQemuProcess checks), in pid order. A supervisor
// killed between spawning a guest's QEMU and writing its record leaves such
// a QEMU with no record (or with a record of the QEMU before it); whoever
// starts the guest next must find it, or two QEMUs share the guest's taps.
std::vector<pid_t> FindQemuProcesses(const std::string& qmp_socket,
                                     const std::string& proc_root = "/proc");

// Kills (SIGKILL) the recorded QEMU if VerifyQemuProcess says it is that
// QEMU, and waits up to `timeout` for it to be gone. Ok when it is gone (also
// when it already was, or the pid is someone else's: then nothing is sent).
Status KillRecordedQemu(const RunRecord& record, std::chrono::milliseconds timeout);

}  // namespace vfabric::vmm
