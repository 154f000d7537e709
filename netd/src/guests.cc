#include "vfabric/netd/guests.h"

#include <algorithm>
#include <fstream>
#include <set>

#include "vfabric/common/log.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/vmm/qemu_command.h"

namespace vfabric::netd {

using nlohmann::json;

namespace {

json NicJson(const vmm::GuestNicInfo& nic) {
  return {{"id", nic.id}, {"network", nic.network}, {"port", nic.port},
          {"mac", nic.mac.ToString()}};
}

}  // namespace

json GuestStatusJson(const vmm::GuestStatus& status) {
  json nics = json::array();
  for (const auto& nic : status.nics) nics.push_back(NicJson(nic));
  return {{"name", status.name},
          {"state", std::string(vmm::ToString(status.state))},
          {"pid", status.pid > 0 ? json(status.pid) : json(nullptr)},
          {"accel", status.accel ? json(std::string(vmm::ToString(status.accel->accel)))
                                 : json(nullptr)},
          {"accel_reason", status.accel ? status.accel->reason : ""},
          {"restart", std::string(vmm::ToString(status.restart))},
          {"restarts", status.restarts},
          {"last_exit", status.last_exit},
          {"error", status.error},
          {"console_log", status.console_log},
          {"nics", nics}};
}

GuestManager::GuestManager(std::string run_dir, vmm::GuestOptions options)
    : run_dir_(std::move(run_dir)), options_(std::move(options)) {}

GuestManager::~GuestManager() = default;

std::vector<std::string> GuestManager::Sync(const topology::Topology& desired) {
  std::vector<std::string> errors;
  std::set<std::string> wanted;
  for (const topology::VmConfig& vm : desired.vms) {
    wanted.insert(vm.name);
    if (guests_.count(vm.name)) continue;
    std::vector<vmm::GuestNic> nics;
    std::string error;
    for (size_t i = 0; i < vm.nics.size() && error.empty(); ++i) {
      const topology::NicConfig& nic = vm.nics[i];
      const std::string port = nic.port.empty() ? vmm::DefaultNicPort(vm.name, i) : nic.port;
      auto tap = OpenTap(port, /*vnet_hdr=*/true, /*multi_queue=*/false);
      if (!tap.ok()) {
        error = "vm " + vm.name + ": " + tap.status().message();
        break;
      }
      nics.push_back({"nic" + std::to_string(i), nic.network, port,
                      nic.mac ? *nic.mac : vmm::DefaultNicMac(vm.name, i),
                      std::move(tap).value()});
    }
    if (!error.empty()) {
      errors.push_back(error);
      continue;
    }
    vmm::GuestOptions options = options_;
    options.run_dir = run_dir_ + "/" + vm.name;
    auto guest = vmm::Guest::Create(vm, std::move(nics), options);
    if (!guest.ok()) {
      errors.push_back(guest.status().message());
      continue;
    }
    Status started = (*guest)->Start();
    if (!started.ok()) errors.push_back(started.message());
    else VF_LOG(kInfo) << "vm " << vm.name << ": starting";
    guests_[vm.name] = std::move(guest).value();
  }
  for (auto it = guests_.begin(); it != guests_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    VF_LOG(kInfo) << "vm " << it->first << ": left the topology; stopping it";
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
    if (fd == guest->pollfd()) guest->OnChildExit();
    else if (fd == guest->qmp_fd()) guest->OnQmpReadable();
    else continue;
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
  return it->second->Start();
}

Status GuestManager::Stop(const std::string& name) {
  auto it = guests_.find(name);
  if (it == guests_.end()) return Status::Error("no vm named \"" + name + "\"");
  it->second->RequestStop();
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
    const std::streamoff start = size > static_cast<std::streamoff>(bytes)
                                     ? size - static_cast<std::streamoff>(bytes)
                                     : 0;
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

Result<vmm::GuestNicInfo> GuestManager::Attach(const std::string& vm, const std::string& network,
                                               const std::string& port, const MacAddress& mac) {
  auto it = guests_.find(vm);
  if (it == guests_.end()) return Status::Error("no vm named \"" + vm + "\"");
  auto tap = OpenTap(port, /*vnet_hdr=*/true, /*multi_queue=*/false);
  if (!tap.ok()) return tap.status().WithContext("attach to vm " + vm);
  vmm::GuestNic nic{it->second->FreeNicId(), network, port, mac, std::move(tap).value()};
  vmm::GuestNicInfo info{nic.id, network, port, mac};
  VF_RETURN_IF_ERROR(it->second->AttachNic(std::move(nic)));
  return info;
}

Result<vmm::GuestNicInfo> GuestManager::Detach(const std::string& vm, const std::string& nic) {
  auto it = guests_.find(vm);
  if (it == guests_.end()) return Status::Error("no vm named \"" + vm + "\"");
  for (const auto& info : it->second->status().nics) {
    if (info.id != nic && info.port != nic) continue;
    VF_RETURN_IF_ERROR(it->second->DetachNic(info.id));
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
  guests_.clear();  // whatever is still running is killed and reaped
}

}  // namespace vfabric::netd
