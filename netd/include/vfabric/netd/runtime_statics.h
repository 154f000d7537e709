// The store of run-time static FDB entries (fdb.add on a userspace
// network): one file per network, DIR/NETWORK.fdb.json, so that they
// survive a restart of netd as the kernel keeps those of a Linux bridge.
//
// The entries in memory (UserspaceNetworks) are authoritative; the file
// follows them. A file that cannot be read is logged and taken as empty; one
// that cannot be written is an error for the caller to report. Writes are
// atomic (common/atomic_file.h): a crash leaves the old file or the new one.
#pragma once

#include <map>
#include <string>

#include "vfabric/common/status.h"
#include "vfabric/netd/switch_plan.h"

namespace vfabric::netd {

class RuntimeStaticsStore {
 public:
  // `dir` empty: nothing is kept (Read finds nothing, Save and Forget do
  // nothing).
  explicit RuntimeStaticsStore(std::string dir) : dir_(std::move(dir)) {}

  // The file of `network`'s entries.
  std::string Path(const std::string& network) const;
  // The entries kept for `network` (entry -> port); none when no file. A
  // file that is not a static FDB file, or a malformed entry, is logged and
  // skipped.
  std::map<StaticKey, std::string> Read(const std::string& network) const;
  // Writes `entries` for `network`, or removes its file when there are
  // none. The error names the file and the errno.
  Status Save(const std::string& network, const std::map<StaticKey, std::string>& entries) const;
  // Removes `network`'s file (the network is gone); a missing file is fine.
  void Forget(const std::string& network) const;

 private:
  std::string dir_;
};

}  // namespace vfabric::netd
