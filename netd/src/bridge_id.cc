#include <cstdio>
#include <string>

#include "vfabric/netd/kernel.h"

namespace vfabric::netd {

// The kernel's sysfs form (/sys/class/net/BR/bridge/bridge_id): four hex
// digits of priority, a dot, twelve hex digits of address.
std::string FormatBridgeId(uint64_t packed) {
  char text[32];
  std::snprintf(text, sizeof text, "%04x.%012llx", static_cast<unsigned>(packed >> 48),
                static_cast<unsigned long long>(packed & 0xffffffffffffULL));
  return text;
}

}  // namespace vfabric::netd
