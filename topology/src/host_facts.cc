#include "vfabric/topology/host_facts.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

namespace vfabric::topology {
namespace {

class SystemFacts final : public HostFacts {
 public:
  IdLookup UserId(const std::string& name) const override {
    std::vector<char> buffer(16384);
    struct passwd entry {};
    struct passwd* found = nullptr;
    const int rc = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc == 0 && found) return {static_cast<uint32_t>(found->pw_uid), 0};
    return {std::nullopt, rc};
  }
  IdLookup GroupId(const std::string& name) const override {
    std::vector<char> buffer(16384);
    struct group entry {};
    struct group* found = nullptr;
    const int rc = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc == 0 && found) return {static_cast<uint32_t>(found->gr_gid), 0};
    return {std::nullopt, rc};
  }
};

}  // namespace

const HostFacts& SystemHostFacts() {
  static const SystemFacts facts;
  return facts;
}

}  // namespace vfabric::topology
