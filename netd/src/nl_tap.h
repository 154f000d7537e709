// Tap device ioctls on /dev/net/tun (the tap's concern only: no netlink).
#pragma once

#include <string>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd::nl {

// Creates the tap `name`, bound to the returned fd and not yet persistent:
// TUNSETIFF (IFF_TAP|IFF_NO_PI, plus IFF_VNET_HDR / IFF_MULTI_QUEUE),
// TUNSETOWNER, TUNSETGROUP. The kernel deletes it when that fd closes, also
// when the process dies, so whatever is done to it before MakeTapPersistent
// (its vfabric alias) is atomic with its creation as far as anyone after a
// crash can see. Fails with EEXIST if a link of that name exists (TUNSETIFF
// would attach to it instead). A failure leaves nothing behind.
Result<UniqueFd> CreateTransientTap(const std::string& name, const TapSettings& settings);

// TUNSETPERSIST 1 on the tap bound to `fd`: it then outlives the fd.
Status MakeTapPersistent(const UniqueFd& fd, const std::string& name);

// Attaches to the tap `name` and clears TUNSETPERSIST, so it goes away when
// the last fd closes. `multi_queue` must match the device's flag.
Status ClearTapPersist(const std::string& name, bool multi_queue);

}  // namespace vfabric::netd::nl
