// What topology validation asks of the host: the one seam between the
// loader and the OS (ReadTopologyFiles aside, which reads the files it is
// given). Today: user and group names (a tap's "owner" and "group" may name
// them), resolved with getpwnam_r/getgrnam_r by SystemHostFacts(). Unit
// tests hand the loader a fake, so a name that exists only there validates
// and a host's own users do not leak into the tests.
// Also: whether this host has an IP address (an overlay's `local`), with
// getifaddrs(3); a fake that does not answer says "unknown" (no warning).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vfabric/common/ip_prefix.h"

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

  // An address of this host looked up: `known` false when the host could not
  // be asked (then nothing is concluded); else whether a link holds it, and
  // that link's name and MTU.
  struct AddressLookup {
    bool known = false;
    bool present = false;
    std::string link;
    std::optional<uint32_t> mtu;
  };
  virtual AddressLookup FindAddress(const IpPrefix& /*address*/) const { return {}; }
};

// This host's users and groups (getpwnam_r(3), getgrnam_r(3): /etc/passwd,
// /etc/group or NSS). One instance for the process; thread-safe.
const HostFacts& SystemHostFacts();

}  // namespace vfabric::topology
