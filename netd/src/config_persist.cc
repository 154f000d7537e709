// What `apply` saves and `network.delete` removes: netd's configuration
// files kept the one truth (config_store.h).
#include <algorithm>
#include <filesystem>

#include "config_store.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/controller.h"
#include "views.h"

namespace vfabric::netd {

using nlohmann::json;
using protocol::Error;
using protocol::Expected;
using protocol::Reply;
using topology::NetworkConfig;

namespace {

std::string Normal(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().string();
}

std::string ParentOf(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().parent_path().string();
}

}  // namespace

std::string Controller::ConfigFileOf(const std::string& name) const {
  // A file that is not on disk (a configuration given in memory) is not
  // one to write.
  std::error_code error;
  for (const NetworkConfig& network : config_.networks)
    if (network.name == name && !network.where.file.empty() &&
        std::filesystem::exists(network.where.file, error))
      return network.where.file;
  if (config_dirs_.empty()) return "";
  // Network names are 1..64 of [A-Za-z0-9._-], starting with a letter or a
  // digit: a file name, never hidden, never a path.
  return Normal(config_dirs_.front() + "/" + name + ".json");
}

Expected<bool> Controller::StageApply(const std::vector<NetworkConfig>& incoming,
                                      const std::vector<topology::SourceFile>& files,
                                      StagedFiles& staged,
                                      std::map<std::string, std::string>* saved_in,
                                      std::vector<std::string>* unsaved) const {
  // Each file edited once with every network it keeps, from its text on disk.
  std::map<std::string, std::string> texts;
  for (const NetworkConfig& network : incoming) {
    const std::string file = ConfigFileOf(network.name);
    if (file.empty()) {
      unsaved->push_back(network.name);
      continue;
    }
    nlohmann::ordered_json object;
    for (const topology::SourceFile& source : files)
      if (source.name == network.where.file && object.is_null())
        object = NetworkObject(source.text, network.name);
    const std::string cannot = "network " + network.name + ": cannot save it in " + file + ": ";
    if (object.is_null())
      return Error{"failed", cannot + "its object was not found in " + network.where.file +
                                 "; nothing was applied"};
    if (!texts.count(file)) {
      auto text = ReadConfigText(file);
      if (!text.ok())
        return Error{"failed", cannot + text.status().message() + "; nothing was applied"};
      texts[file] = std::move(text).value();
    }
    auto edited = WithNetwork(texts[file], file, object);
    if (!edited.ok())
      return Error{"failed", cannot + edited.status().message() + "; nothing was applied"};
    texts[file] = std::move(edited).value();
    (*saved_in)[network.name] = file;
  }
  for (const auto& [file, text] : texts) {
    Status written = staged.Write(file, text);
    if (!written.ok())
      return Error{"failed",
                   "cannot save in " + file + ": " + written.message() + "; nothing was applied"};
  }
  return true;
}

void Controller::KeepSaved(const std::map<std::string, std::string>& saved_in) {
  for (const auto& [name, file] : saved_in) {
    auto applied = applied_.find(name);
    if (applied == applied_.end()) continue;
    NetworkConfig network = applied->second;
    network.where.file = file;
    bool replaced = false;
    for (NetworkConfig& existing : config_.networks) {
      if (existing.name != name) continue;
      existing = network;
      replaced = true;
    }
    if (!replaced) config_.networks.push_back(std::move(network));
    applied_.erase(applied);
    applied_names_.insert(name);
  }
}

Reply Controller::NetworkDelete(const std::string& name) {
  const topology::Topology desired = Desired();
  if (FindNetwork(desired, name) == nullptr)
    return Error{"not_found", "no network named \"" + name + "\""};
  // A guest's NIC on it would be left with no network (and the topology
  // would no longer hold together): the VM or its NIC goes first.
  for (const topology::VmConfig& vm : desired.vms)
    for (const topology::NicConfig& nic : vm.nics)
      if (nic.network == name)
        return Error{"invalid", "network " + name + " carries a NIC of vm " + vm.name + " (port " +
                                    nic.port + "): remove the vm or detach the NIC first"};
  // The file that keeps it, edited aside before the host is touched.
  std::string file;
  std::error_code error;
  for (const NetworkConfig& network : config_.networks)
    if (network.name == name && std::filesystem::exists(network.where.file, error))
      file = network.where.file;
  StagedFiles staged;
  bool remove_file = false;
  if (!file.empty()) {
    auto text = ReadConfigText(file);
    if (!text.ok())
      return Error{"failed", "network " + name + ": cannot remove it from " + file + ": " +
                                 text.status().message() + "; nothing was deleted"};
    bool empty = false;
    auto edited = WithoutNetwork(*text, file, name, &empty);
    if (!edited.ok())
      return Error{"failed", "network " + name + ": cannot remove it from " + file + ": " +
                                 edited.status().message() + "; nothing was deleted"};
    // A file of a configuration directory left with nothing goes; one named
    // by --config itself stays (netd would not start without it), empty.
    remove_file = empty && std::find(config_dirs_.begin(), config_dirs_.end(), ParentOf(file)) !=
                               config_dirs_.end();
    if (remove_file) {
      staged.Remove(file);
    } else if (Status written = staged.Write(file, *edited); !written.ok()) {
      return Error{"failed", "network " + name + ": cannot remove it from " + file + ": " +
                                 written.message() + "; nothing was deleted"};
    }
  }
  const topology::Topology old_config = config_;
  const auto old_applied = applied_;
  std::erase_if(config_.networks, [&](const NetworkConfig& n) { return n.name == name; });
  applied_.erase(name);
  std::vector<Operation> done;
  const topology::Topology without = Desired();
  Status status = ReconcileKernel(without, &done);
  if (!status.ok()) {
    config_ = old_config;
    applied_ = old_applied;
    return Error{"failed", "network " + name + ": " + status.message()};
  }
  for (const auto& op : done) VF_LOG(kInfo) << "network delete " << name << ": " << op.Describe();
  std::vector<std::string> errors = SyncUserspace(without);
  // Its run-time static FDB entries (`netctl fdb add`) go with it, as a
  // userspace network's do when its switch stops: a new network of the
  // same name starts without them.
  if (kernel_statics_.erase(name) > 0) {
    if (Status forgot = SaveKernelStatics(name); !forgot.ok()) {
      errors.push_back(forgot.message() + " (they come back at the next start)");
      VF_LOG(kError) << "network delete " << name << ": " << errors.back();
    }
  }
  if (Status committed = staged.Commit(); !committed.ok()) {
    errors.push_back("deleted from the host but " + file + " was not changed: " +
                     committed.message() + " (the network comes back at the next reload)");
    VF_LOG(kError) << "network delete " << name << ": " << errors.back();
  }
  applied_names_.erase(name);
  VF_LOG(kInfo) << "network " << name << " deleted on request"
                << (file.empty() ? "" : (remove_file ? " (removed " : " (edited ") + file + ")");
  json result = {{"network", name},
                 {"operations", json::array()},
                 {"changed", done.size()},
                 {"source", file.empty() ? json(nullptr) : json(file)},
                 {"file_removed", remove_file}};
  for (const Operation& op : done)
    result["operations"].push_back({{"op", std::string(op.KindName())},
                                    {"network", op.network},
                                    {"object", op.object},
                                    {"description", op.Describe()}});
  if (!errors.empty()) result["errors"] = errors;
  return result;
}

}  // namespace vfabric::netd
