// Tap device ioctls on /dev/net/tun (the tap's concern only: no netlink).
#pragma once

#include <string>

#include "vfabric/common/status.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd::nl {

// Creates the persistent tap `name`: TUNSETIFF (IFF_TAP|IFF_NO_PI, plus
// IFF_VNET_HDR / IFF_MULTI_QUEUE), TUNSETOWNER, TUNSETGROUP, TUNSETPERSIST 1.
// Fails with EEXIST if a link of that name exists (TUNSETIFF would attach to
// it instead). A failure before TUNSETPERSIST leaves nothing behind.
Status CreatePersistentTap(const std::string& name, const TapSettings& settings);

// Attaches to the tap `name` and clears TUNSETPERSIST, so it goes away when
// the last fd closes. `multi_queue` must match the device's flag.
Status ClearTapPersist(const std::string& name, bool multi_queue);

}  // namespace vfabric::netd::nl
