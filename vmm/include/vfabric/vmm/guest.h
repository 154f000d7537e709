// One supervised guest: a QEMU process built from a topology VmConfig, with
// its NICs' taps (opened by the caller, owned here), its QMP connection, its
// serial console (a log file, plus a socket to type into), its state and its
// restart policy.
//
// Event-loop shape (netd runs many guests in one epoll loop, one thread):
//   - pollfd(): a pidfd of the current QEMU process, readable when it exits
//     -> call OnChildExit(). It changes on every (re)start: re-register it
//     after Start(), Poll() and OnChildExit().
//   - NextDeadline(): when Poll() has timed work (connect QMP while
//     starting, a restart after backoff, the kill after a stop timeout).
//   - qmp_fd(): readable when QEMU sent events -> OnQmpReadable().
// Start() is quick except for the first accelerator probe of the process
// (up to ~2.5 s, see accel.h); QMP commands block for at most their timeout
// (a few ms when QEMU is healthy); DetachNic waits for the guest to release
// the device (under a second with this project's guest, bounded by its timeout).
//
// States:  stopped --Start--> starting --QMP up--> running
//          running --RequestStop--> stopping --exit--> stopped
//          running --exit--> (policy) restart-wait --delay--> starting
//                                     | stopped (clean exit) | failed (failure)
// Destruction kills QEMU (SIGTERM, then SIGKILL after 1 s) and reaps it;
// LeaveRunning() first lets it outlive its supervisor instead.
//
// Run directory: qmp.sock, console.sock, console.log, qemu.pid (QEMU's
// -pidfile) and guest.json (run_record.h), which says what a later supervisor
// needs to adopt the running QEMU (Adopt()). QEMU runs in its own session
// (setsid), its console goes to a file it writes itself, nothing ties it to
// the supervisor's life.
// Not thread-safe: one owner thread (netd's loop) calls everything.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vmm/accel.h"
#include "vfabric/vmm/qmp.h"
#include "vfabric/vmm/restart.h"
#include "vfabric/vmm/run_record.h"

namespace vfabric::vmm {

namespace internal {
class ChildProcess;
}

// One NIC of a guest: a tap the caller opened (OpenTap, O_CLOEXEC) and hands
// over, or a vhost-user socket a backend listens on (netd's switch), which
// QEMU connects to (and reconnects to every second when the backend goes).
struct GuestNic {
  std::string id;       // QEMU device id, unique in the guest ("nic0", "nic1", ...)
  std::string network;  // for status only
  std::string port;     // the tap's name, for status only
  MacAddress mac;
  UniqueFd tap;              // invalid for an adopted guest's NICs: see GuestOptions::open_tap
  bool attached = false;     // hot-attached at run time (set by AttachNic)
  uint16_t access_vlan = 0;  // recorded for the supervisor (RunRecordNic::access_vlan)
  // Not empty: a vhost-user NIC on this socket (no tap). A guest with one
  // has its RAM shared (memory-backend-memfd share=on).
  std::string vhost_user_socket{};
};

// What a NIC looks like in GuestStatus (without the fd).
struct GuestNicInfo {
  std::string id;
  std::string network;
  std::string port;
  MacAddress mac;
  std::string vhost_user_socket{};  // "" for a tap NIC
};

enum class GuestState { kStopped, kStarting, kRunning, kStopping, kRestartWait, kFailed };
std::string_view ToString(GuestState state);  // "stopped", "starting", ...

struct GuestOptions {
  using TimePoint = std::chrono::steady_clock::time_point;

  std::string qemu_binary = "qemu-system-x86_64";
  // Holds qmp.sock, console.sock and console.log (created 0700 if missing).
  std::string run_dir;
  std::chrono::milliseconds start_timeout{15000};  // exec -> QMP answering
  std::chrono::milliseconds stop_timeout{10000};   // system_powerdown -> SIGKILL
  std::chrono::milliseconds qmp_timeout{5000};
  BackoffConfig backoff;
  // vhost=on for tap NICs; unset: when /dev/vhost-net exists.
  std::optional<bool> vhost;
  // The guest's RAM shared (memory-backend-memfd share=on) even without a
  // vhost-user NIC at start, so that one can be hot-plugged later (vhost-user
  // needs the memory shared from the start: QEMU cannot share it afterwards).
  bool shared_memory = false;
  // The clock (tests inject one); default steady_clock::now.
  std::function<TimePoint()> now;
  // Opens the tap of a NIC the Guest holds no descriptor for (an adopted
  // guest's NICs, when QEMU has to be started again). Unset: such a start
  // fails, naming the NIC.
  std::function<Result<UniqueFd>(const GuestNic& nic)> open_tap;
};

struct GuestStatus {
  std::string name;
  GuestState state = GuestState::kStopped;
  pid_t pid = -1;                    // -1 when no QEMU runs
  std::optional<AccelChoice> accel;  // once started
  RestartPolicy restart = RestartPolicy::kNo;
  int restarts = 0;       // automatic restarts so far
  std::string last_exit;  // "exited with status 1", "" before the first exit
  std::string error;      // why kFailed (or the last start error)
  std::string console_log;
  std::string console_socket;
  std::vector<GuestNicInfo> nics;
  bool adopted = false;  // this QEMU was started by an earlier supervisor (Adopt)
  // Why guest.json does not describe the running QEMU (its last write failed:
  // a full or read-only run dir), "" when it does. The write is retried (1 s,
  // then twice as long each time, up to 30 s) until it takes; the record
  // before stays whole meanwhile (written atomically).
  std::string record_error;
  int record_write_failures = 0;  // writes of guest.json that failed, in all
};

class Guest {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Checks the configuration (a kernel or a disk, the restart policy, unique
  // NIC ids, socket path lengths) and creates run_dir. Starts nothing.
  static Result<std::unique_ptr<Guest>> Create(topology::VmConfig vm, std::vector<GuestNic> nics,
                                               GuestOptions options);
  // Takes over the QEMU that an earlier supervisor (netd before a restart)
  // started, as `record` (ReadRunRecord(options.run_dir)) describes it:
  // checks that the pid is that QEMU (VerifyQemuProcess: not a recycled
  // pid), opens a pidfd on it, connects QMP and reads the run state, within
  // options.qmp_timeout. The guest is then running, with the record's NICs
  // (without descriptors: options.open_tap opens them for a later start)
  // and accelerator; `vm` gives the restart policy and the configuration of
  // later starts. Nothing is signalled here; on an error the QEMU is left as
  // it was. Since the QEMU is not a child, its exit status is unknown: its
  // exit counts as a failure unless QMP reported a guest shutdown before.
  static Result<std::unique_ptr<Guest>> Adopt(topology::VmConfig vm, const RunRecord& record,
                                              GuestOptions options);
  ~Guest();
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;

  const std::string& name() const { return vm_.name; }
  GuestState state() const { return state_; }
  GuestStatus status() const;

  // stopped/failed/restart-wait -> starting: chooses the accelerator (vm.accel),
  // execs QEMU with the taps at fds 3, 4, ... Errors name the guest:
  // "start vm1: exec qemu-system-x86_64: No such file or directory".
  // An explicit start resets the restart backoff.
  Status Start();
  // Asks the guest to power down (QMP system_powerdown); Poll() kills it
  // (SIGKILL) once stop_timeout has passed. A guest not running yet is killed
  // at once. No restart follows.
  void RequestStop();
  // RequestStop() and wait (running the loop steps itself) until QEMU is gone.
  Status Stop();

  // Forgets the QEMU process without signalling it (a supervisor's exit): it
  // keeps running and guest.json stays for the next supervisor to Adopt().
  // The Guest is then stopped as far as it knows; its NICs' descriptors are
  // closed (QEMU has its own).
  void LeaveRunning();
  // Whether the current QEMU was adopted rather than started here.
  bool adopted() const;

  // The event loop's hooks (see the file comment).
  int pollfd() const;
  int qmp_fd() const;
  void OnChildExit();
  void OnQmpReadable();
  void Poll();
  std::optional<TimePoint> NextDeadline() const;

  // Runs the loop steps (poll on pollfd, Poll at deadlines) until the state is
  // `want` or the guest can no longer reach it; for tools and tests.
  Status WaitForState(GuestState want, std::chrono::milliseconds timeout);

  // Hot-plugs `nic` into the running guest: getfd (the tap, SCM_RIGHTS),
  // netdev_add tap (vhost as configured), device_add virtio-net-pci; or, for
  // a vhost-user NIC, chardev-add, netdev_add vhost-user, device_add
  // (nic_plug.h: VhostUserAttachCommands), which needs the guest's RAM
  // shared (else refused, naming why). On failure what was added is removed
  // again. The NIC is kept for restarts.
  Status AttachNic(GuestNic nic);
  // device_del, wait for DEVICE_DELETED (up to `timeout`), netdev_del (and
  // chardev-remove for a vhost-user NIC); the tap fd is closed. A NIC added at start can be
  // detached too (machine pc: ACPI hot-plug on pci.0).
  Status DetachNic(const std::string& id,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The smallest "nic<N>" no NIC of this guest uses (an id for AttachNic).
  std::string FreeNicId() const;

  // Whether the current (or next) QEMU has its RAM shared, as vhost-user needs.
  bool shared_memory() const;

  // The QMP client while running (nullptr otherwise).
  QmpClient* qmp() { return qmp_.get(); }
  const std::string& console_log_path() const { return console_log_; }
  const std::string& console_socket_path() const { return console_socket_; }
  const std::string& qmp_socket_path() const { return qmp_socket_; }

 private:
  Guest(topology::VmConfig vm, std::vector<GuestNic> nics, GuestOptions options,
        RestartPolicy policy);
  TimePoint Now() const;
  Status Spawn();
  void TryConnectQmp();
  Status AttachTap(const GuestNic& nic);  // getfd, netdev_add tap, device_add
  void Fail(std::string why);
  bool vhost() const;
  // guest.json for the current QEMU (after a start, attach, detach, and
  // from Poll() while an earlier write failed).
  void WriteRecord();
  void ForgetProcess();  // after QEMU is gone: its record and pidfile go too

  topology::VmConfig vm_;
  std::vector<GuestNic> nics_;
  GuestOptions options_;
  RestartTracker restart_;
  std::string qmp_socket_;
  std::string console_socket_;
  std::string console_log_;
  std::string pidfile_;

  GuestState state_ = GuestState::kStopped;
  std::unique_ptr<internal::ChildProcess> child_;
  std::unique_ptr<QmpClient> qmp_;
  std::optional<AccelChoice> accel_;
  TimePoint started_at_{};
  TimePoint deadline_{};  // starting: give up; stopping: SIGKILL; restart-wait: start
  TimePoint next_qmp_try_{};
  bool stop_requested_ = false;
  bool guest_shutdown_ = false;
  bool shared_memory_ = false;  // the running QEMU's RAM is shared (its argv says so)  // QMP
                                // SHUTDOWN from the guest (an adopted QEMU's clean exit)
  std::vector<std::string> argv_;
  std::vector<std::string> detached_ports_;  // NICs it started with, detached since
  std::string last_exit_;
  std::string error_;
  // guest.json not written (WriteRecord): why, when to try again, the wait
  // after that try, and how many writes failed in all.
  std::string record_error_;
  std::optional<TimePoint> record_retry_;
  std::chrono::milliseconds record_backoff_{0};
  int record_write_failures_ = 0;
};

}  // namespace vfabric::vmm
