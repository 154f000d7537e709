// The controller: netd's desired state, reconciliation, and the answers to
// control requests. It owns no sockets and no threads: the server feeds it
// requests and drift events from one event-loop thread (not thread-safe).
//
// Desired state = the networks of --config, with the networks of every
// `apply` laid over them by name. Reload() replaces the --config part.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "vfabric/netd/capture.h"
#include "vfabric/netd/guests.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/netd/planner.h"
#include "vfabric/netd/userspace.h"
#include "vfabric/protocol/protocol.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

class MetricsOut;
class StagedFiles;  // config_store.h

// Kept for netd's callers; the one definition is the protocol library's.
inline constexpr int kProtocolVersion = protocol::kVersion;

class Controller {
 public:
  // `kernel` must outlive the controller.
  Controller(Kernel& kernel, KernelFeatures features);

  // Gives the controller the guests to run (the topology's "vms"); without
  // one, the vm verbs answer "unsupported". `guests` must outlive it.
  // Also takes the access VLANs of adopted guests' hot-attached NICs
  // (GuestManager::RunningPortVlans): call after WithRunningNics.
  void SetGuests(GuestManager* guests);
  // Gives the controller the switches of userspace networks; without one,
  // userspace networks get their links but nothing forwards between them.
  // `userspace` must outlive it.
  void SetUserspace(UserspaceNetworks* userspace) { userspace_ = userspace; }
  // Where kernel networks' run-time static FDB entries (`netctl fdb add`)
  // are kept across netd restarts ("" = not kept); reads the ones kept there.
  void SetKernelFdbDir(std::string dir);
  // Where the sockets of VM NICs with "backend": "vhost-user" go (netd
  // listens on DIR/PORT.sock); default /run/vfabric/vhost-user.
  void SetVhostUserDir(std::string dir) { vhost_user_dir_ = std::move(dir); }
  // The host's identity (ReadMachineId()): a kernel network without "mac"
  // gets a bridge MAC derived from it and the network's name
  // (TreeBridgeAddress), so its MAC never moves. Empty: the kernel's MAC.
  void SetMachineId(std::string machine_id) { machine_id_ = std::move(machine_id); }

  // What `status` says of the daemon: its --config paths and when it started.
  struct DaemonInfo {
    std::vector<std::string> config_paths;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point started_wall = std::chrono::system_clock::now();
  };
  void SetDaemonInfo(DaemonInfo info) { daemon_ = std::move(info); }
  // The --config paths that are directories. `apply` saves a network that no
  // file defines yet as NAME.json in the first (none: such a network is
  // kept in memory only, and the answer says so); `network.delete` removes a
  // file of one of them that it leaves empty (config_store.h).
  void SetConfigDirs(std::vector<std::string> dirs) { config_dirs_ = std::move(dirs); }

  // Replaces the --config part of the desired state (does not apply it).
  void SetConfig(topology::Topology config);
  // The full desired state.
  topology::Topology Desired() const;

  // Plans against the kernel and applies as a transaction, then (with a
  // GuestManager) starts guests that are new and stops those that left, and
  // (with UserspaceNetworks) makes the userspace switches match.
  // `applied` (optional) receives the kernel operations done.
  Status Reconcile(std::vector<Operation>* applied = nullptr);

  // Answers one request object (see docs/control-protocol.md).
  nlohmann::json Handle(const nlohmann::json& request);

  // The views as Prometheus metrics (netd/src/metrics_views.cc): ports'
  // counters, FDB, spanning tree, vhost-user and guests, read the way the
  // netctl views read them (docs/metrics.md).
  void WriteMetrics(MetricsOut& out);

  // The capture capture.start started on a userspace port, once (null when
  // the last request started none): the caller hands it the connection
  // (capture.h), or, when it cannot, runs nothing and drops it, which
  // leaves the hook until the port goes; so it always takes it.
  std::unique_ptr<CaptureSession> TakePendingCapture() { return std::move(pending_capture_); }

 private:
  struct View {
    topology::Topology desired;
    KernelState state;
    std::map<std::string, size_t> drift;  // network -> pending operations
    std::vector<Operation> kernel_pending;
    std::vector<SwitchChange> switch_pending;
    std::string plan_error;
  };
  // The desired state, the kernel read back and the drift per network, for
  // the views. `plan` false: no drift (no plans made) and of the kernel
  // only its links (a view that shows neither, like the port list, saves
  // planning every port and dumping the FDB).
  protocol::Expected<View> MakeView(bool plan = true) const;
  protocol::Reply Dispatch(const std::string& verb, const nlohmann::json& args);
  protocol::Reply HandlePlanOrApply(const nlohmann::json& args, bool apply);
  protocol::Reply NetworkList();
  protocol::Reply DaemonStatus();
  protocol::Reply NetworkShow(const std::string& name);
  // network.delete (config_persist.cc).
  protocol::Reply NetworkDelete(const std::string& name);
  // The file that keeps network `name`: the --config file that defines it,
  // else NAME.json in the save directory; "" when there is none.
  std::string ConfigFileOf(const std::string& name) const;
  // After an apply whose files were written: the networks saved move from
  // the memory-only overlay (applied_) into config_, as a reload would read
  // them.
  void KeepSaved(const std::map<std::string, std::string>& saved_in);
  // Stages the files that keep the request's networks: `saved_in` receives
  // network -> file, `unsaved` the networks with no file to keep them. An
  // error (a file that cannot be read or written) names the file.
  protocol::Expected<bool> StageApply(const std::vector<topology::NetworkConfig>& incoming,
                                      const std::vector<topology::SourceFile>& files,
                                      StagedFiles& staged,
                                      std::map<std::string, std::string>* saved_in,
                                      std::vector<std::string>* unsaved) const;
  protocol::Reply PortList(const std::string& network);
  protocol::Reply FdbShow(const std::string& network);
  protocol::Reply StpShow(const std::string& network);
  protocol::Reply VlanShow(const std::string& network);
  protocol::Reply PortStats(const std::string& network, const std::string& port);
  // port.show (port_show.cc): the port and what a guest needs to use it.
  protocol::Reply PortShow(const nlohmann::json& args);
  nlohmann::json VhostUserShow(const topology::NetworkConfig& network,
                               const topology::PortConfig& port) const;
  protocol::Reply FdbVerb(const std::string& verb, const nlohmann::json& args);
  protocol::Reply CaptureStart(const nlohmann::json& args);  // capture_verb.cc
  std::unique_ptr<CaptureSession> pending_capture_;
  // fdb.add/del/flush on a kernel network (kernel_fdb.cc): through netlink,
  // as `bridge fdb` does.
  protocol::Reply KernelFdbVerb(const std::string& verb, const topology::NetworkConfig& network,
                                const nlohmann::json& args);
  // Saves kernel_statics_[network] under kernel_fdb_dir_.
  Status SaveKernelStatics(const std::string& network) const;
  // `desired` with each kernel network's run-time statics (on ports it has).
  void AddKernelStatics(topology::Topology& desired) const;
  // Logs and returns the userspace switches' problems (a port that would
  // not open, ...).
  // `only` (optional): the networks to make match, the others left as they
  // are (see Plan's `only`).
  std::vector<std::string> SyncUserspace(const topology::Topology& desired,
                                         const std::set<std::string>* only = nullptr);
  std::vector<SwitchChange> PendingSwitchChanges(const topology::Topology& desired,
                                                 const KernelView* kernel = nullptr) const;
  std::set<std::string> AttachedPorts() const;
  // The kernel plan for `desired` (every Plan of the controller goes
  // through it, so views, plan and apply agree).
  // `only`: of these networks alone (Plan's `only`).
  Result<std::vector<Operation>> PlanKernel(const topology::Topology& desired,
                                            const KernelState& state,
                                            const std::set<std::string>* only = nullptr) const;
  // Plan's `released`: "existing" ports of kernel networks that the last
  // applied desired state listed and `desired` does not, plus those not yet
  // released by a failed apply. Any other unlisted link on a vfabric bridge
  // is foreign (libvirt's, an operator's) and left alone.
  std::set<std::string> Released(const topology::Topology& desired) const;
  // After a kernel apply of `desired`: what it listed, what is still to be
  // released when it failed.
  void KernelApplied(const topology::Topology& desired, bool ok);
  protocol::Reply VmVerb(const std::string& verb, const nlohmann::json& args);
  protocol::Reply Attach(const nlohmann::json& args);
  protocol::Reply Detach(const nlohmann::json& args);
  // `only`: plans and applies these networks alone -- what an apply of some
  // networks, an attach or a detach changes (Plan's `only`); the full pass
  // (start, repair, resync, SIGHUP) passes none.
  Status ReconcileKernel(const topology::Topology& desired, std::vector<Operation>* applied,
                         const std::set<std::string>* only = nullptr,
                         const std::set<std::string>& also = {});
  // The kernel as read back, with the peer namespaces `desired` asks for
  // that do not exist (KernelState::missing_netns): every reader of the
  // kernel in the controller goes through it, so plans and views agree.
  // `only`: what a plan of these networks reads (ReadKernelState's `only`
  // and `also`).
  Result<KernelState> ReadState(const topology::Topology& desired,
                                const std::set<std::string>* only = nullptr,
                                const std::set<std::string>& also = {}) const;
  // The links a plan of `scope` reads beyond what the desired state names
  // in it (ReadKernelState's `also`): the bridges, ports and veth peers
  // those networks had in `applied` and the configuration (what a request
  // takes away), the ports of guests' NICs on them, and the "existing"
  // ports to release.
  // `applied_vms`: the applied VMs before the request (null: applied_vms_).
  std::set<std::string> LinksBefore(
      const std::set<std::string>& scope,
      const std::map<std::string, topology::NetworkConfig>& applied,
      const topology::Topology& desired,
      const std::map<std::string, topology::VmConfig>* applied_vms = nullptr) const;
  // Logs a port that starts or stops waiting (PortLinkWaiting) once, not at
  // every pass.
  // `only`: the networks looked at; the other ports' entries stay.
  void LogWaiting(const topology::Topology& desired, const KernelState& state,
                  const std::set<std::string>* only = nullptr);

  Kernel& kernel_;
  KernelFeatures features_;
  topology::Topology config_;
  std::map<std::string, topology::NetworkConfig> applied_;  // by network name
  std::map<std::string, topology::VmConfig> applied_vms_;   // by vm name
  GuestManager* guests_ = nullptr;
  UserspaceNetworks* userspace_ = nullptr;
  // NICs hot-plugged at run time, and NICs of the configuration detached.
  std::map<std::string, std::vector<topology::NicConfig>> attached_nics_;  // by vm
  std::map<std::string, std::set<std::string>> detached_ports_;            // by vm
  std::map<std::string, uint16_t> port_vlans_;                             // attach --vlan, by port
  // Kernel networks' static FDB entries added by fdb.add, by network; part
  // of the desired state (so drift repair keeps them) until fdb.del.
  std::map<std::string, std::vector<topology::StaticFdbEntry>> kernel_statics_;
  std::string kernel_fdb_dir_;
  std::string vhost_user_dir_ = "/run/vfabric/vhost-user";
  std::set<std::string> listed_existing_;       // see Released
  std::map<std::string, std::string> waiting_;  // port -> why it waits, as last logged
  std::set<std::string> releasing_;
  DaemonInfo daemon_;
  std::vector<std::string> config_dirs_;
  // Networks `apply` saved since the configuration was last read: still
  // "applied" (`status`, `network.list`) though config_ holds them now.
  std::set<std::string> applied_names_;
  std::string machine_id_;
};

// Names that must be unique across all networks (bridges, ports, veth peers):
// the errors, each naming both users of the name. Empty when all is well.
std::vector<std::string> CheckNamesAcrossNetworks(const topology::Topology& topology);

}  // namespace vfabric::netd
