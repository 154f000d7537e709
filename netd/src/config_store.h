// Where `apply` keeps what it applies and `network.delete` removes it from:
// netd's configuration files, so that they stay the one truth (a restart, a
// reboot and a SIGHUP read back exactly what was applied, and an operator can
// read and edit them, as virsh net-define keeps a network's XML).
//
// A network lives in one file: the --config file that defines it, or, for a
// network no file defines yet, NAME.json in netd's first --config directory
// (the save directory). Files are edited as JSON (the network's object put in
// place of the old one, or appended; taken out for a delete), every other
// member kept as it is on disk. A change is staged first (written aside as
// FILE.new, fsynced: a full disk fails here, before anything is applied) and
// put in place (renamed, the directory fsynced) only once the host took it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/status.h"

namespace vfabric::netd {

// The text of topology file `path` as it is on disk ("" when there is no
// file), so that an edit keeps what the file holds besides the network.
// Fails (naming the file) for a file that cannot be read or is not a
// topology object.
Result<std::string> ReadConfigText(const std::string& path);

// `current` (a topology document's text, "" for a new file) with `network`
// (a JSON object with a "name") in place of its network of that name, or
// appended to its "networks". `path` names the file in errors.
Result<std::string> WithNetwork(std::string_view current, const std::string& path,
                                const nlohmann::ordered_json& network);

// `current` without its network named `name`; `*empty` says whether the
// document then holds no network and no vm.
Result<std::string> WithoutNetwork(std::string_view current, const std::string& path,
                                   const std::string& name, bool* empty);

// The JSON object of the network named `name` in the document `text` (as the
// operator wrote it, members in their order), or null.
nlohmann::ordered_json NetworkObject(std::string_view text, const std::string& name);

// File changes written aside and put in place together. Not committed by
// destruction time: the staged copies are removed and the files are as they
// were.
class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();

  // Writes `text` to PATH.new (atomically, fsynced). The error names the
  // file and the system's reason ("write /etc/.../lab.json.new.tmp: No
  // space left on device"); a failed write leaves nothing behind.
  Status Write(const std::string& path, const std::string& text);
  // Marks `path` for removal at Commit.
  void Remove(const std::string& path);
  // Renames each PATH.new over PATH (fsyncing the directory) and removes
  // the files marked. Goes on after a failure; returns the first.
  Status Commit();

 private:
  struct Change {
    std::string path;
    bool remove = false;
  };
  std::vector<Change> changes_;
  bool committed_ = false;
};

}  // namespace vfabric::netd
