#include "netns_check.h"

#include <sys/stat.h>

namespace vfabric::netd {

std::vector<std::string> MissingNetns(const std::vector<Operation>& plan,
                                      const std::string& netns_dir) {
  std::vector<std::string> missing;
  for (const Operation& op : plan) {
    if (op.kind != Operation::Kind::kMoveToNetns) continue;
    const std::string path = netns_dir + "/" + op.netns;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) continue;
    missing.push_back("network " + op.network + ": veth peer " + op.object +
                      " goes into network namespace \"" + op.netns +
                      "\", which does not exist (no " + path + "); create it first (ip netns add " +
                      op.netns + ")");
  }
  return missing;
}

}  // namespace vfabric::netd
