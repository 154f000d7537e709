// netd's guests: the QEMU processes of the topology's "vms", supervised from
// netd's event loop (vfabric::vmm::Guest does the work; this keeps the set).
//
// Sync() is called after the kernel is reconciled, so every NIC's tap exists:
// it plugs the NICs in, creates and starts guests that are new, and stops and
// forgets guests that left the topology. A guest the operator stopped stays
// stopped. Single-threaded, like the rest of netd's loop.
//
// How a NIC plugs into its port is the port-backend seam's (port_backend.h),
// never decided here: the NIC's port (as WithGuestPorts made it, or a tap NIC's
// own tap) is asked of the backends of its network's datapath,
// For(port, /*guest=*/true).GuestPlug(port): a tap (whose descriptor
// OpenGuestTap opens, also when an adopted guest's QEMU is started again) or
// a vhost-user socket QEMU connects to. A new port kind is a new backend and
// no change here.
//
// Guests outlive netd: at its exit (LeaveAll, also the destructor) their
// QEMUs keep running, and each run dir's guest.json (vmm/run_record.h)
// says how to find them again. A new guest in Sync() whose recorded QEMU is
// alive (its /proc/PID/cmdline names its QMP socket) and answers QMP is
// adopted instead of started: the same process, supervised from then on
// (its exit seen on a pidfd). One whose machine configuration or NICs no
// longer match the topology is powered down (then killed) and started
// afresh; one whose QEMU is gone is started; the first Sync() powers down
// recorded QEMUs of guests the topology no longer has.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vmm/guest.h"

namespace vfabric::netd {

// Which backends a guest's NIC asks how it plugs in (not owned: they must
// outlive the GuestManager). Null: NewKernelPortBackends(), owned by it.
struct GuestPortBackends {
  // For ports of userspace networks: the daemon passes its
  // UserspaceNetworks' (Backends()), so that a guest and the switch agree on
  // who holds a port (QEMU the tap, the switch a packet socket on it).
  const PortBackends* userspace = nullptr;
  // For ports of kernel networks (the taps netd makes on their bridges).
  const PortBackends* kernel = nullptr;
};

class GuestManager {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Each guest's qmp.sock, console.sock, console.log and guest.json go to
  // run_dir/NAME. options.open_tap (an adopted guest's tap when its QEMU is
  // started again) defaults to the NIC's backend's OpenGuestTap.
  GuestManager(std::string run_dir, GuestPortBackends backends = {},
               vmm::GuestOptions options = {});
  // Leaves the guests running (as LeaveAll, without waiting).
  ~GuestManager();
  // options.open_tap refers to this object.
  GuestManager(const GuestManager&) = delete;
  GuestManager& operator=(const GuestManager&) = delete;

  // `config` with the NICs running guests have beyond it: at the first call,
  // for each VM whose recorded QEMU is alive with the same machine
  // configuration, its hot-attached NICs (on networks `config` has) are
  // added and the topology NICs it had detached removed, so that the first
  // reconcile keeps (and does not make) their taps. Remembered: later calls
  // (reloads) apply the same, less what was detached since. Every NIC of
  // such a VM gets its port and MAC spelled out.
  topology::Topology WithRunningNics(topology::Topology config);
  // The access VLANs (`attach --vlan`) of the hot-attached NICs that
  // WithRunningNics kept, by port.
  const std::map<std::string, uint16_t>& RunningPortVlans() const { return running_vlans_; }

  // Makes the set of guests match `desired.vms` (see the file comment).
  // Returns one message per guest that could not be created or started.
  std::vector<std::string> Sync(const topology::Topology& desired);

  // Event-loop hooks: every fd to watch for input, what to call when one is
  // readable, and when Poll() wants to run next.
  std::vector<int> Fds() const;
  void OnReadable(int fd);
  std::optional<TimePoint> NextDeadline() const;
  void Poll();

  nlohmann::json List() const;
  Result<nlohmann::json> Get(const std::string& name) const;
  Status Start(const std::string& name);
  Status Stop(const std::string& name);
  // The last `bytes` of the guest's serial console log.
  Result<nlohmann::json> ConsoleLog(const std::string& name, size_t bytes) const;

  // Hot-plugs `nic` (its port and MAC given) of `desired` (the topology
  // with the NIC, as WithGuestPorts made it) into the running guest `vm`,
  // plugged as its port's backend says (the tap must exist; a vhost-user
  // port must listen already); returns its id. `access_vlan` (0: none) is
  // recorded with it for RunningPortVlans after a restart.
  Result<vmm::GuestNicInfo> Attach(const std::string& vm, const topology::Topology& desired,
                                   const topology::NicConfig& nic, uint16_t access_vlan = 0);
  // Removes a NIC by id or port name; returns the NIC that went.
  Result<vmm::GuestNicInfo> Detach(const std::string& vm, const std::string& nic);
  bool Has(const std::string& name) const { return guests_.count(name) != 0; }
  std::vector<vmm::GuestNicInfo> Nics(const std::string& name) const;

  // Powers every guest down, waiting up to `timeout` in all, then kills what
  // is left (netd --stop-guests-on-exit).
  void StopAll(std::chrono::milliseconds timeout);
  // netd's exit: every QEMU keeps running for the next netd to adopt. A
  // guest being stopped (vm stop) is waited for, up to `timeout` in all,
  // then killed.
  void LeaveAll(std::chrono::milliseconds timeout);

 private:
  // `vm`'s options: its run dir, shared memory when it has a NIC on a
  // userspace network of `desired` (so a vhost-user NIC can be attached),
  // and (unless the constructor's options had one) an open_tap that opens a
  // NIC's tap through the backend of its port in `desired`.
  vmm::GuestOptions OptionsFor(const topology::VmConfig& vm,
                               const topology::Topology& desired) const;
  // Adopts vm's recorded QEMU, or cleans up after it; true when adopted.
  bool TryAdopt(const topology::VmConfig& vm, const topology::Topology& desired,
                std::vector<std::string>* errors);
  // Kills every QEMU whose command line names guest `name`'s QMP socket but
  // that its record does not name: one started by a netd killed before it
  // wrote the record.
  void KillUnrecordedQemus(const std::string& name);
  // Powers down recorded QEMUs of guests not in `wanted`.
  void StopOrphans(const std::set<std::string>& wanted);
  // A guest stopped with `vm stop` stays stopped across a netd restart
  // until `vm start`: this file in its run dir says so.
  std::string StoppedMarker(const std::string& name) const;

  // A NIC's port and the backends that answer for it.
  struct GuestPort {
    const PortBackends* backends = nullptr;
    topology::PortConfig port;
  };
  // The port of NIC `nic` (its port name given) in `desired`: the one its
  // network lists, else (a tap NIC) its own tap. Errors name the VM and NIC.
  Result<GuestPort> PortOf(const std::string& vm, const topology::Topology& desired,
                           const topology::NicConfig& nic) const;
  // `nic` plugged in as its port's backend says: a vmm::GuestNic with the
  // tap's descriptor or the vhost-user socket (id, VLAN left to the caller).
  Result<vmm::GuestNic> PlugNic(const std::string& vm, const topology::Topology& desired,
                                const topology::NicConfig& nic);

  std::string run_dir_;
  std::unique_ptr<PortBackends> own_backends_;
  GuestPortBackends backends_;
  vmm::GuestOptions options_;
  std::map<std::string, std::unique_ptr<vmm::Guest>> guests_;
  bool first_sync_ = true;
  bool running_nics_read_ = false;
  // WithRunningNics: by VM, the adopted hot-attached NICs and detached ports.
  std::map<std::string, std::vector<topology::NicConfig>> running_extra_;
  std::map<std::string, std::set<std::string>> running_detached_;
  std::map<std::string, uint16_t> running_vlans_;
};

// Why a running guest recorded as `record` does not match `vm` ("" when it
// does): its machine configuration ("memory_mb 256 -> 512"), a topology NIC
// it lacks or has with another MAC, a NIC it started with that the topology
// no longer has. Hot-attached NICs and detached ports are not differences.
std::string GuestMismatch(const topology::VmConfig& vm, const vmm::RunRecord& record);

nlohmann::json GuestStatusJson(const vmm::GuestStatus& status);

}  // namespace vfabric::netd
