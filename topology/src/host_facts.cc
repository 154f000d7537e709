#include "vfabric/topology/host_facts.h"

#include <arpa/inet.h>
#include <grp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "vfabric/common/unique_fd.h"

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
  AddressLookup FindAddress(const IpPrefix& address) const override {
    struct ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return {};
    AddressLookup found;
    found.known = true;
    for (struct ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
      const sockaddr* sa = entry->ifa_addr;
      if (sa == nullptr || sa->sa_family != address.family) continue;
      const void* bytes =
          sa->sa_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr)
              : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
      if (std::memcmp(bytes, address.bytes.data(), address.AddressSize()) != 0) continue;
      found.present = true;
      found.link = entry->ifa_name;
      // SIOCGIFMTU on any datagram socket of this namespace.
      UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      struct ifreq request {};
      std::strncpy(request.ifr_name, entry->ifa_name, IFNAMSIZ - 1);
      if (fd && ::ioctl(fd.get(), SIOCGIFMTU, &request) == 0)
        found.mtu = static_cast<uint32_t>(request.ifr_mtu);
      break;
    }
    ::freeifaddrs(list);
    return found;
  }
};

}  // namespace

const HostFacts& SystemHostFacts() {
  static const SystemFacts facts;
  return facts;
}

}  // namespace vfabric::topology
