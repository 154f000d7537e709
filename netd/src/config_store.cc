#include "config_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "vfabric/common/atomic_file.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

using nlohmann::ordered_json;

namespace {

Result<ordered_json> ParseDocument(std::string_view text, const std::string& path) {
  if (text.empty()) return ordered_json::object();
  ordered_json doc = ordered_json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return Status::Error(path + ": not a topology document (a JSON object); not changed");
  if (doc.contains("networks") && !doc["networks"].is_array())
    return Status::Error(path + ": \"networks\" is not an array; not changed");
  return doc;
}

std::string Text(const ordered_json& doc) { return doc.dump(2) + "\n"; }

// So that a rename survives a power loss.
Status FsyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("open directory " + dir, errno);
  if (::fsync(fd.get()) != 0) return Status::FromErrno("fsync directory " + dir, errno);
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadConfigText(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::string();
    return Status::FromErrno("stat " + path, errno);
  }
  // The one reader of configuration files (symlinks followed, non-regular
  // files refused without blocking).
  topology::ReadResult read = topology::ReadTopologyFiles({path});
  if (!read.ok()) return Status::Error(read.errors.front().ToString());
  if (read.files.empty()) return std::string();
  std::string text = std::move(read.files.front().text);
  if (auto parsed = ParseDocument(text, path); !parsed.ok()) return parsed.status();
  return text;
}

ordered_json NetworkObject(std::string_view text, const std::string& name) {
  ordered_json doc = ordered_json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("networks") ||
      !doc["networks"].is_array())
    return nullptr;
  for (const ordered_json& network : doc["networks"])
    if (network.is_object() && network.value("name", ordered_json()) == name) return network;
  return nullptr;
}

Result<std::string> WithNetwork(std::string_view current, const std::string& path,
                                const ordered_json& network) {
  auto parsed = ParseDocument(current, path);
  if (!parsed.ok()) return parsed.status();
  ordered_json doc = std::move(parsed).value();
  if (!doc.contains("networks")) doc["networks"] = ordered_json::array();
  bool replaced = false;
  for (ordered_json& existing : doc["networks"]) {
    if (existing.is_object() && existing.value("name", ordered_json()) == network["name"]) {
      existing = network;
      replaced = true;
    }
  }
  if (!replaced) doc["networks"].push_back(network);
  return Text(doc);
}

Result<std::string> WithoutNetwork(std::string_view current, const std::string& path,
                                   const std::string& name, bool* empty) {
  auto parsed = ParseDocument(current, path);
  if (!parsed.ok()) return parsed.status();
  ordered_json doc = std::move(parsed).value();
  if (doc.contains("networks")) {
    ordered_json& networks = doc["networks"];
    networks.erase(std::remove_if(networks.begin(), networks.end(),
                                  [&](const ordered_json& n) {
                                    return n.is_object() && n.value("name", ordered_json()) == name;
                                  }),
                   networks.end());
  }
  const auto none = [&](const char* key) {
    return !doc.contains(key) || (doc[key].is_array() && doc[key].empty());
  };
  *empty = none("networks") && none("vms");
  if (!doc.contains("networks")) doc["networks"] = ordered_json::array();
  return Text(doc);
}

StagedFiles::~StagedFiles() {
  if (committed_) return;
  for (const Change& change : changes_)
    if (!change.remove) ::unlink((change.path + ".new").c_str());  // never read: best effort
}

Status StagedFiles::Write(const std::string& path, const std::string& text) {
  Status status = WriteFileAtomically(path + ".new", text, 0644);
  if (!status.ok()) return status;
  changes_.push_back({path, false});
  return Status::Ok();
}

void StagedFiles::Remove(const std::string& path) { changes_.push_back({path, true}); }

Status StagedFiles::Commit() {
  committed_ = true;
  Status first = Status::Ok();
  for (const Change& change : changes_) {
    Status status = Status::Ok();
    if (change.remove) {
      status = RemoveFileDurably(change.path);
    } else if (::rename((change.path + ".new").c_str(), change.path.c_str()) != 0) {
      status = Status::FromErrno("rename " + change.path + ".new to " + change.path, errno);
      ::unlink((change.path + ".new").c_str());
    } else {
      status = FsyncDirectoryOf(change.path);
    }
    if (!status.ok() && first.ok()) first = status;
  }
  return first;
}

}  // namespace vfabric::netd
