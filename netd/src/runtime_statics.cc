#include "vfabric/netd/runtime_statics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vfabric/common/atomic_file.h"
#include "vfabric/common/log.h"

namespace vfabric::netd {

using nlohmann::json;

std::string RuntimeStaticsStore::Path(const std::string& network) const {
  return dir_ + "/" + network + ".fdb.json";
}

std::map<StaticKey, std::string> RuntimeStaticsStore::Read(const std::string& network) const {
  std::map<StaticKey, std::string> entries;
  if (dir_.empty()) return entries;
  std::ifstream in(Path(network));
  if (!in) return entries;  // none kept
  const json doc = json::parse(in, nullptr, false);
  const std::string what = "userspace network " + network + ": " + Path(network);
  if (!doc.is_object() || !doc.contains("entries") || !doc["entries"].is_array()) {
    VF_LOG(kWarning) << what << ": not a static FDB file; ignored";
    return entries;
  }
  for (const json& entry : doc["entries"]) {
    auto mac = entry.is_object() && entry.value("mac", json()).is_string()
                   ? MacAddress::Parse(entry["mac"].get<std::string>())
                   : std::nullopt;
    const json vlan = entry.is_object() ? entry.value("vlan", json()) : json();
    const json port = entry.is_object() ? entry.value("port", json()) : json();
    if (!mac || !vlan.is_number_unsigned() || vlan.get<uint64_t>() < 1 ||
        vlan.get<uint64_t>() > 4094 || !port.is_string()) {
      VF_LOG(kWarning) << what << ": malformed entry " << entry.dump() << "; ignored";
      continue;
    }
    entries[{static_cast<uint16_t>(vlan.get<uint64_t>()), *mac}] = port.get<std::string>();
  }
  return entries;
}

Status RuntimeStaticsStore::Save(const std::string& network,
                                 const std::map<StaticKey, std::string>& runtime_statics) const {
  if (dir_.empty()) return Status::Ok();
  const std::string path = Path(network);
  const std::string what = "save run-time static FDB entries of network " + network;
  if (runtime_statics.empty()) return RemoveFileDurably(path).WithContext(what);
  json entries = json::array();
  for (const auto& [key, port] : runtime_statics)
    entries.push_back({{"mac", key.second.ToString()}, {"vlan", key.first}, {"port", port}});
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error)
    return Status::Error(what + ": create " + dir_ + ": " + error.message(), error.value());
  // A crash, a full disk or a read-only directory leaves the old file or the
  // new one, never a truncated one (common/atomic_file.h).
  return WriteFileAtomically(path, json{{"network", network}, {"entries", entries}}.dump(1) + "\n")
      .WithContext(what);
}

void RuntimeStaticsStore::Forget(const std::string& network) const {
  if (!dir_.empty()) ::unlink(Path(network).c_str());
}

}  // namespace vfabric::netd
