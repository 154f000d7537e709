// What topology validation asks of the host: the one seam between the
// loader and the OS (ReadTopologyFiles aside, which reads the files it is
// given). Today: user and group names (a tap's "owner" and "group" may name
// them), resolved with getpwnam_r/getgrnam_r by SystemHostFacts(). Unit
// tests hand the loader a fake, so a name that exists only there validates
// and a host's own users do not leak into the tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vfabric::topology {

class HostFacts {
 public:
  virtual ~HostFacts() = default;

  // A name looked up: its id, or none; `error` is the lookup's errno-style
  // code when the lookup itself failed (not merely found nothing).
  struct IdLookup {
    std::optional<uint32_t> id;
    int error = 0;
  };
  virtual IdLookup UserId(const std::string& name) const = 0;
  virtual IdLookup GroupId(const std::string& name) const = 0;
};

// This host's users and groups (getpwnam_r(3), getgrnam_r(3): /etc/passwd,
// /etc/group or NSS). One instance for the process; thread-safe.
const HostFacts& SystemHostFacts();

}  // namespace vfabric::topology
