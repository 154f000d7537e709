#include "vfabric/netd/guests.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>

#include "vfabric/common/atomic_file.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/netd/planner.h"
#include "vfabric/vmm/qemu_command.h"

namespace vfabric::netd {

using nlohmann::json;

namespace {

json NicJson(const vmm::GuestNicInfo& nic) {
  json out = {
      {"id", nic.id}, {"network", nic.network}, {"port", nic.port}, {"mac", nic.mac.ToString()}};
  // Only vhost-user NICs say so (a tap NIC's object is as it always was).
  if (!nic.vhost_user_socket.empty()) {
    out["backend"] = "vhost-user";
    out["socket"] = nic.vhost_user_socket;
  }
  return out;
}

std::string NicPort(const topology::VmConfig& vm, size_t i) {
  return vm.nics[i].port.empty() ? vmm::DefaultNicPort(vm.name, i) : vm.nics[i].port;
}

MacAddress NicMac(const topology::VmConfig& vm, size_t i) {
  return vm.nics[i].mac ? *vm.nics[i].mac : vmm::DefaultNicMac(vm.name, i);
}

}  // namespace

std::string GuestMismatch(const topology::VmConfig& vm, const vmm::RunRecord& record) {
  const vmm::MachineConfig now = vmm::MachineConfigOf(vm);
  std::string why = vmm::DescribeDifference(record.config, now);
  if (why.empty() && vmm::ConfigHash(now) != record.config_hash) why = "configuration hash differs";
  auto add = [&why](const std::string& what) { why += (why.empty() ? "" : ", ") + what; };
  std::set<std::string> ports;
  for (size_t i = 0; i < vm.nics.size(); ++i) {
    const std::string port = NicPort(vm, i);
    ports.insert(port);
    auto it = std::find_if(record.nics.begin(), record.nics.end(),
                           [&](const vmm::RunRecordNic& n) { return n.port == port; });
    if (it == record.nics.end()) {
      if (std::find(record.detached_ports.begin(), record.detached_ports.end(), port) ==
          record.detached_ports.end())
        add("NIC " + port + " is new");
    } else if (it->mac != NicMac(vm, i)) {
      add("NIC " + port + " MAC " + it->mac.ToString() + " -> " + NicMac(vm, i).ToString());
    } else if (it->vhost_user_socket.empty() !=
               (vm.nics[i].backend != topology::NicBackend::kVhostUser)) {
      add("NIC " + port + " backend " + (it->vhost_user_socket.empty() ? "tap" : "vhost-user") +
          " -> " + std::string(topology::ToString(vm.nics[i].backend)));
    }
  }
  for (const vmm::RunRecordNic& nic : record.nics)
    if (!nic.attached && !ports.count(nic.port)) add("NIC " + nic.port + " left the topology");
  return why;
}

json GuestStatusJson(const vmm::GuestStatus& status) {
  json nics = json::array();
  for (const auto& nic : status.nics) nics.push_back(NicJson(nic));
  return {{"name", status.name},
          {"state", std::string(vmm::ToString(status.state))},
          {"pid", status.pid > 0 ? json(status.pid) : json(nullptr)},
          {"accel",
           status.accel ? json(std::string(vmm::ToString(status.accel->accel))) : json(nullptr)},
          {"accel_reason", status.accel ? status.accel->reason : ""},
          {"restart", std::string(vmm::ToString(status.restart))},
          {"restarts", status.restarts},
          {"last_exit", status.last_exit},
          {"error", status.error},
          {"console_log", status.console_log},
          {"nics", nics},
          {"adopted", status.adopted},
          {"record_error", status.record_error},
          {"record_write_failures", status.record_write_failures}};
}

GuestManager::GuestManager(std::string run_dir, GuestPortBackends backends,
                           vmm::GuestOptions options)
    : run_dir_(std::move(run_dir)), backends_(backends), options_(std::move(options)) {
  if (backends_.userspace == nullptr || backends_.kernel == nullptr) {
    own_backends_ = NewKernelPortBackends();
    if (backends_.userspace == nullptr) backends_.userspace = own_backends_.get();
    if (backends_.kernel == nullptr) backends_.kernel = own_backends_.get();
  }
}

GuestManager::~GuestManager() {
  for (auto& [name, guest] : guests_) guest->LeaveRunning();
}

Result<GuestManager::GuestPort> GuestManager::PortOf(const std::string& vm,
                                                     const topology::Topology& desired,
                                                     const topology::NicConfig& nic) const {
  auto network =
      std::find_if(desired.networks.begin(), desired.networks.end(),
                   [&](const topology::NetworkConfig& n) { return n.name == nic.network; });
  if (network == desired.networks.end())
    return Status::Error(
        "vm " + vm + ": NIC " + nic.port + ": no network named \"" + nic.network + "\"", ENOENT);
  GuestPort found;
  found.backends =
      network->datapath == topology::Datapath::kUserspace ? backends_.userspace : backends_.kernel;
  auto port = std::find_if(network->ports.begin(), network->ports.end(),
                           [&](const topology::PortConfig& p) { return p.name == nic.port; });
  if (port != network->ports.end()) {
    found.port = *port;
  } else if (nic.backend == topology::NicBackend::kVhostUser) {
    return Status::Error("vm " + vm + ": NIC " + nic.port + ": no vhost-user port on network " +
                         nic.network);
  } else {
    // A tap NIC's own tap (netd makes it), as WithGuestPorts declares it.
    found.port.name = nic.port;
    found.port.kind = topology::PortKind::kTap;
  }
  return found;
}

Result<vmm::GuestNic> GuestManager::PlugNic(const std::string& vm,
                                            const topology::Topology& desired,
                                            const topology::NicConfig& nic) {
  auto found = PortOf(vm, desired, nic);
  if (!found.ok()) return found.status();
  const GuestPort& port = *found;
  const PortBackend& backend = port.backends->For(port.port, /*guest=*/true);
  auto plug = backend.GuestPlug(port.port);
  if (!plug.ok()) return plug.status().WithContext("vm " + vm);
  vmm::GuestNic guest_nic;
  guest_nic.network = nic.network;
  guest_nic.port = nic.port;
  guest_nic.mac = nic.mac ? *nic.mac : MacAddress{};
  // The NIC's "backend" and its port's agree in a valid topology
  // (topology/src/check.cc); a plug that says otherwise is refused, since a
  // guest recorded with it would not match its VM again (GuestMismatch).
  const bool wants_vhost_user = nic.backend == topology::NicBackend::kVhostUser;
  switch (plug->kind) {
    case vmm::NicPlug::Kind::kTap: {
      if (wants_vhost_user)
        return Status::Error("vm " + vm + ": NIC " + nic.port + ": no vhost-user port on network " +
                             nic.network);
      auto tap = backend.OpenGuestTap(port.port);
      if (!tap.ok()) return tap.status().WithContext("vm " + vm);
      guest_nic.tap = std::move(tap).value();
      return guest_nic;
    }
    case vmm::NicPlug::Kind::kVhostUser:
      if (!wants_vhost_user)
        return Status::Error("vm " + vm + ": NIC " + nic.port + ": port " + port.port.name +
                             " is a vhost-user socket, not a tap (\"backend\": \"vhost-user\" "
                             "on the NIC)");
      // QEMU connects (reconnect=1): only a port whose backend listens.
      if (plug->socket_server)
        return Status::Error("vm " + vm + ": NIC " + nic.port + ": port " + port.port.name +
                             " connects to a listening frontend; netd's guests connect to a "
                             "vhost-user port with \"mode\": \"server\"");
      guest_nic.vhost_user_socket = plug->socket;
      return guest_nic;
    case vmm::NicPlug::Kind::kBridge:
      break;
  }
  return Status::Error("vm " + vm + ": NIC " + nic.port + ": port " + port.port.name +
                       " plugs into a bridge through a tap of the guest's own (libvirt's way), "
                       "which netd's guests do not make");
}

vmm::GuestOptions GuestManager::OptionsFor(const topology::VmConfig& vm,
                                           const topology::Topology& desired) const {
  vmm::GuestOptions options = options_;
  options.run_dir = run_dir_ + "/" + vm.name;
  // A vhost-user NIC can only be hot-plugged into a guest whose RAM was
  // shared from the start: every guest with a NIC on a userspace network
  // gets it (memfd share=on costs nothing a private mapping does not).
  for (const topology::NicConfig& nic : vm.nics)
    for (const topology::NetworkConfig& network : desired.networks)
      if (network.name == nic.network && network.datapath == topology::Datapath::kUserspace)
        options.shared_memory = true;
  if (!options.open_tap) {
    // An adopted guest holds no descriptors: when its QEMU is started again,
    // each tap is opened through its port's backend, as the topology of its
    // adoption has the port. A NIC not there (hot-attached later, which
    // holds its descriptor anyway) is a tap NIC's own tap.
    std::map<std::string, GuestPort> ports;
    for (size_t i = 0; i < vm.nics.size(); ++i) {
      topology::NicConfig nic = vm.nics[i];
      nic.port = NicPort(vm, i);
      auto port = PortOf(vm.name, desired, nic);
      if (port.ok()) ports.emplace(nic.port, std::move(port).value());
    }
    const PortBackends* kernel = backends_.kernel;
    options.open_tap = [ports = std::move(ports), kernel](const vmm::GuestNic& nic) {
      GuestPort port;
      if (auto it = ports.find(nic.port); it != ports.end()) {
        port = it->second;
      } else {
        port.backends = kernel;
        port.port.name = nic.port;
        port.port.kind = topology::PortKind::kTap;
      }
      return port.backends->For(port.port, /*guest=*/true).OpenGuestTap(port.port);
    };
  }
  return options;
}

topology::Topology GuestManager::WithRunningNics(topology::Topology config) {
  if (!running_nics_read_) {
    running_nics_read_ = true;
    for (const topology::VmConfig& vm : config.vms) {
      auto record = vmm::ReadRunRecord(run_dir_ + "/" + vm.name);
      if (!record.ok() || !*record) continue;
      const vmm::RunRecord& r = **record;
      if (!vmm::VerifyQemuProcess(r.pid, r.qmp_socket).ok()) continue;
      if (vmm::MachineConfigOf(vm) != r.config) continue;  // to be started afresh
      std::set<std::string> ports;
      for (size_t i = 0; i < vm.nics.size(); ++i) ports.insert(NicPort(vm, i));
      for (const vmm::RunRecordNic& nic : r.nics) {
        if (!nic.attached || ports.count(nic.port)) continue;
        if (std::none_of(config.networks.begin(), config.networks.end(),
                         [&](const auto& network) { return network.name == nic.network; }))
          continue;
        running_extra_[vm.name].push_back({nic.network,
                                           nic.mac,
                                           nic.port,
                                           {},
                                           nic.vhost_user_socket.empty()
                                               ? topology::NicBackend::kTap
                                               : topology::NicBackend::kVhostUser});
        if (nic.access_vlan) running_vlans_[nic.port] = nic.access_vlan;
        VF_LOG(kInfo) << "vm " << vm.name << ": keeps its hot-attached NIC " << nic.id << " ("
                      << nic.port << " on " << nic.network << ")";
      }
      for (const std::string& port : r.detached_ports)
        if (ports.count(port)) running_detached_[vm.name].insert(port);
    }
  }
  for (topology::VmConfig& vm : config.vms) {
    auto extra = running_extra_.find(vm.name);
    auto detached = running_detached_.find(vm.name);
    if (extra == running_extra_.end() && detached == running_detached_.end()) continue;
    std::vector<topology::NicConfig> nics;
    for (size_t i = 0; i < vm.nics.size(); ++i) {
      topology::NicConfig nic = vm.nics[i];
      nic.port = NicPort(vm, i);
      nic.mac = NicMac(vm, i);
      if (detached != running_detached_.end() && detached->second.count(nic.port)) continue;
      nics.push_back(std::move(nic));
    }
    if (extra != running_extra_.end())
      for (const topology::NicConfig& nic : extra->second)
        if (std::none_of(nics.begin(), nics.end(),
                         [&](const topology::NicConfig& n) { return n.port == nic.port; }))
          nics.push_back(nic);
    vm.nics = std::move(nics);
  }
  return config;
}

void GuestManager::KillUnrecordedQemus(const std::string& name) {
  const std::string dir = run_dir_ + "/" + name;
  const std::string qmp_socket = dir + "/qmp.sock";
  pid_t recorded = 0;
  auto record = vmm::ReadRunRecord(dir);
  if (record.ok() && *record && vmm::VerifyQemuProcess((*record)->pid, qmp_socket).ok())
    recorded = (*record)->pid;
  for (pid_t pid : vmm::FindQemuProcesses(qmp_socket)) {
    if (pid == recorded) continue;
    VF_LOG(kWarning) << "vm " << name << ": qemu pid " << pid
                     << " was started by a netd that died before recording it; killing it";
    vmm::RunRecord stray;
    stray.pid = pid;
    stray.qmp_socket = qmp_socket;
    Status killed = vmm::KillRecordedQemu(stray, std::chrono::seconds(5));
    if (!killed.ok()) VF_LOG(kError) << "vm " << name << ": " << killed.message();
  }
}

bool GuestManager::TryAdopt(const topology::VmConfig& vm, const topology::Topology& desired,
                            std::vector<std::string>* errors) {
  const std::string dir = run_dir_ + "/" + vm.name;
  // A QEMU that no record names would keep the guest's taps and run beside
  // the one started now (netd/DESIGN-crash.md).
  KillUnrecordedQemus(vm.name);
  auto record = vmm::ReadRunRecord(dir);
  if (!record.ok()) {
    VF_LOG(kWarning) << "vm " << vm.name << ": " << record.status().message()
                     << "; starting it afresh";
    vmm::RemoveRunRecord(dir);
    return false;
  }
  if (!*record) return false;
  const vmm::RunRecord& r = **record;
  Status alive = vmm::VerifyQemuProcess(r.pid, r.qmp_socket);
  if (!alive.ok()) {
    VF_LOG(kInfo) << "vm " << vm.name << ": the recorded qemu " << alive.message()
                  << "; starting it again";
    vmm::RemoveRunRecord(dir);
    return false;
  }
  auto guest = vmm::Guest::Adopt(vm, r, OptionsFor(vm, desired));
  if (!guest.ok()) {
    VF_LOG(kWarning) << guest.status().message() << "; killing qemu pid " << r.pid
                     << " to start it again";
    Status killed = vmm::KillRecordedQemu(r, std::chrono::seconds(5));
    if (!killed.ok()) errors->push_back("vm " + vm.name + ": " + killed.message());
    vmm::RemoveRunRecord(dir);
    return false;
  }
  const std::string mismatch = GuestMismatch(vm, r);
  if (!mismatch.empty()) {
    VF_LOG(kInfo) << "vm " << vm.name << ": the running qemu (pid " << r.pid
                  << ") does not match the topology (" << mismatch
                  << "); powering it down to start it again";
    Status stopped = (*guest)->Stop();
    if (!stopped.ok()) VF_LOG(kWarning) << stopped.message();
    return false;  // the Guest goes, and with it the record
  }
  guests_[vm.name] = std::move(guest).value();
  return true;
}

std::string GuestManager::StoppedMarker(const std::string& name) const {
  return run_dir_ + "/" + name + "/stopped-by-operator";
}

void GuestManager::StopOrphans(const std::set<std::string>& wanted) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(run_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (wanted.count(name) || guests_.count(name)) continue;
    // Left the topology: if it comes back, it starts.
    std::filesystem::remove(StoppedMarker(name), ec);
    KillUnrecordedQemus(name);
    auto record = vmm::ReadRunRecord(entry.path().string());
    if (!record.ok() || !*record) continue;
    const vmm::RunRecord& r = **record;
    if (!vmm::VerifyQemuProcess(r.pid, r.qmp_socket).ok()) {
      vmm::RemoveRunRecord(entry.path().string());
      continue;
    }
    VF_LOG(kInfo) << "vm " << name
                  << ": left the topology while netd was down; stopping its qemu (pid " << r.pid
                  << ")";
    topology::VmConfig vm;
    vm.name = r.name;
    vmm::GuestOptions options = options_;
    options.run_dir = entry.path().string();
    auto guest = vmm::Guest::Adopt(vm, r, options);
    Status stopped = guest.ok() ? (*guest)->Stop() : guest.status();
    if (!stopped.ok()) {
      VF_LOG(kWarning) << stopped.message() << "; killing it";
      Status killed = vmm::KillRecordedQemu(r, std::chrono::seconds(5));
      if (!killed.ok()) VF_LOG(kError) << "vm " << name << ": " << killed.message();
    }
    vmm::RemoveRunRecord(entry.path().string());
  }
}

std::vector<std::string> GuestManager::Sync(const topology::Topology& desired) {
  std::vector<std::string> errors;
  std::set<std::string> wanted;
  for (const topology::VmConfig& vm : desired.vms) wanted.insert(vm.name);
  if (first_sync_) {
    first_sync_ = false;
    StopOrphans(wanted);
  }
  for (const topology::VmConfig& vm : desired.vms) {
    if (guests_.count(vm.name)) continue;
    if (TryAdopt(vm, desired, &errors)) continue;
    std::vector<vmm::GuestNic> nics;
    std::string error;
    for (size_t i = 0; i < vm.nics.size() && error.empty(); ++i) {
      topology::NicConfig nic = vm.nics[i];
      nic.port = NicPort(vm, i);
      nic.mac = NicMac(vm, i);
      auto plugged = PlugNic(vm.name, desired, nic);
      if (!plugged.ok()) {
        error = plugged.status().message();
        break;
      }
      plugged->id = "nic" + std::to_string(i);
      nics.push_back(std::move(plugged).value());
    }
    if (!error.empty()) {
      errors.push_back(error);
      continue;
    }
    auto guest = vmm::Guest::Create(vm, std::move(nics), OptionsFor(vm, desired));
    if (!guest.ok()) {
      errors.push_back(guest.status().message());
      continue;
    }
    std::error_code ec;
    if (std::filesystem::exists(StoppedMarker(vm.name), ec)) {
      VF_LOG(kInfo) << "vm " << vm.name
                    << ": stopped with vm stop before netd restarted; left stopped (vm start "
                       "starts it)";
      guests_[vm.name] = std::move(guest).value();
      continue;
    }
    Status started = (*guest)->Start();
    if (!started.ok())
      errors.push_back(started.message());
    else
      VF_LOG(kInfo) << "vm " << vm.name << ": starting";
    guests_[vm.name] = std::move(guest).value();
  }
  for (auto it = guests_.begin(); it != guests_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    VF_LOG(kInfo) << "vm " << it->first << ": left the topology; stopping it";
    std::error_code ec;
    std::filesystem::remove(StoppedMarker(it->first), ec);
    Status stopped = it->second->Stop();
    if (!stopped.ok()) VF_LOG(kWarning) << stopped.message();
    it = guests_.erase(it);
  }
  return errors;
}

std::vector<int> GuestManager::Fds() const {
  std::vector<int> fds;
  for (const auto& [name, guest] : guests_) {
    if (guest->pollfd() >= 0) fds.push_back(guest->pollfd());
    if (guest->qmp_fd() >= 0) fds.push_back(guest->qmp_fd());
  }
  return fds;
}

void GuestManager::OnReadable(int fd) {
  for (auto& [name, guest] : guests_) {
    const vmm::GuestState before = guest->state();
    if (fd == guest->pollfd())
      guest->OnChildExit();
    else if (fd == guest->qmp_fd())
      guest->OnQmpReadable();
    else
      continue;
    if (guest->state() != before) {
      vmm::GuestStatus status = guest->status();
      VF_LOG(kInfo) << "vm " << name << ": " << vmm::ToString(status.state)
                    << (status.last_exit.empty() ? "" : " (" + status.last_exit + ")")
                    << (status.error.empty() ? "" : ": " + status.error);
    }
    return;
  }
}

std::optional<GuestManager::TimePoint> GuestManager::NextDeadline() const {
  std::optional<TimePoint> next;
  for (const auto& [name, guest] : guests_) {
    auto deadline = guest->NextDeadline();
    if (deadline && (!next || *deadline < *next)) next = deadline;
  }
  return next;
}

void GuestManager::Poll() {
  for (auto& [name, guest] : guests_) guest->Poll();
}

json GuestManager::List() const {
  json vms = json::array();
  for (const auto& [name, guest] : guests_) vms.push_back(GuestStatusJson(guest->status()));
  return vms;
}

Result<json> GuestManager::Get(const std::string& name) const {
  auto it = guests_.find(name);
  if (it == guests_.end()) return Status::Error("no vm named \"" + name + "\"");
  return GuestStatusJson(it->second->status());
}

Status GuestManager::Start(const std::string& name) {
  auto it = guests_.find(name);
  if (it == guests_.end()) return Status::Error("no vm named \"" + name + "\"");
  Status started = it->second->Start();
  std::error_code ec;
  if (started.ok()) std::filesystem::remove(StoppedMarker(name), ec);
  return started;
}

Status GuestManager::Stop(const std::string& name) {
  auto it = guests_.find(name);
  if (it == guests_.end()) return Status::Error("no vm named \"" + name + "\"");
  it->second->RequestStop();
  // Kept across a netd restart, as an operator expects of a stopped VM. The
  // guest stops either way; the answer says when the next netd would start
  // it again.
  Status saved = WriteFileAtomically(StoppedMarker(name), "stopped with vm stop\n");
  if (!saved.ok())
    return Status::Error("vm " + name + " is stopping, but " + saved.message() +
                             ": the next netd would start it again",
                         saved.error_number());
  return Status::Ok();
}

Result<json> GuestManager::ConsoleLog(const std::string& name, size_t bytes) const {
  auto it = guests_.find(name);
  if (it == guests_.end()) return Status::Error("no vm named \"" + name + "\"");
  const std::string path = it->second->console_log_path();
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string text;
  bool truncated = false;
  if (in) {
    const std::streamoff size = in.tellg();
    const std::streamoff start =
        size > static_cast<std::streamoff>(bytes) ? size - static_cast<std::streamoff>(bytes) : 0;
    truncated = start > 0;
    in.seekg(start);
    text.resize(static_cast<size_t>(size - start));
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
  }
  // Console output is bytes; keep the answer valid UTF-8 JSON.
  for (char& c : text)
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  return json{{"name", name}, {"path", path}, {"text", text}, {"truncated", truncated}};
}

Result<vmm::GuestNicInfo> GuestManager::Attach(const std::string& vm,
                                               const topology::Topology& desired,
                                               const topology::NicConfig& nic,
                                               uint16_t access_vlan) {
  auto it = guests_.find(vm);
  if (it == guests_.end()) return Status::Error("no vm named \"" + vm + "\"");
  auto plugged = PlugNic(vm, desired, nic);
  if (!plugged.ok())  // "attach to vm VM: why", as ever
    return Status::Error("attach to " + plugged.status().message(),
                         plugged.status().error_number());
  vmm::GuestNic guest_nic = std::move(plugged).value();
  guest_nic.id = it->second->FreeNicId();
  guest_nic.access_vlan = access_vlan;
  vmm::GuestNicInfo info{guest_nic.id, guest_nic.network, guest_nic.port, guest_nic.mac,
                         guest_nic.vhost_user_socket};
  VF_RETURN_IF_ERROR(it->second->AttachNic(std::move(guest_nic)));
  return info;
}

Result<vmm::GuestNicInfo> GuestManager::Detach(const std::string& vm, const std::string& nic) {
  auto it = guests_.find(vm);
  if (it == guests_.end()) return Status::Error("no vm named \"" + vm + "\"");
  for (const auto& info : it->second->status().nics) {
    if (info.id != nic && info.port != nic) continue;
    VF_RETURN_IF_ERROR(it->second->DetachNic(info.id));
    if (auto extra = running_extra_.find(vm); extra != running_extra_.end())
      std::erase_if(extra->second,
                    [&](const topology::NicConfig& n) { return n.port == info.port; });
    return info;
  }
  return Status::Error("vm " + vm + " has no NIC \"" + nic + "\"");
}

std::vector<vmm::GuestNicInfo> GuestManager::Nics(const std::string& name) const {
  auto it = guests_.find(name);
  return it == guests_.end() ? std::vector<vmm::GuestNicInfo>{} : it->second->status().nics;
}

void GuestManager::StopAll(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& [name, guest] : guests_) guest->RequestStop();
  for (auto& [name, guest] : guests_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() > 0) (void)guest->WaitForState(vmm::GuestState::kStopped, left);
  }
  guests_.clear();  // whatever is still running is killed and reaped (~Guest)
}

void GuestManager::LeaveAll(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t left = 0;
  for (auto& [name, guest] : guests_) {
    if (guest->state() == vmm::GuestState::kStopping) {
      // An operator's vm stop in progress: finish it (killed after the timeout).
      auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (rest.count() > 0) (void)guest->WaitForState(vmm::GuestState::kStopped, rest);
      continue;
    }
    if (guest->status().pid > 0) ++left;
    guest->LeaveRunning();
  }
  guests_.clear();  // those being stopped and not done yet are killed
  if (left > 0)
    VF_LOG(kInfo) << "left " << left << " guest" << (left == 1 ? "" : "s")
                  << " running (a restarted netd adopts them)";
}

}  // namespace vfabric::netd
