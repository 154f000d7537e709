// VXLAN over rtnetlink with libmnl: the vxlan device (RTM_NEWLINK kind
// "vxlan", IFLA_VXLAN_*) and its all-zero-MAC flood entries (RTM_NEWNEIGH /
// RTM_DELNEIGH AF_BRIDGE, NTF_SELF, NDA_DST), what `ip link add ... type
// vxlan` and `bridge fdb append|del 00:00:00:00:00:00 dev VX dst IP` send.
// Parsers check every attribute's length before reading it.
#pragma once

#include <linux/netlink.h>

#include <optional>
#include <string>

#include "nl_socket.h"
#include "vfabric/netd/kernel.h"

struct nlattr;

namespace vfabric::netd::nl {

// IFLA_INFO_DATA of a link of kind "vxlan" (absent attributes keep the
// struct's defaults; a local address of the wrong size is left unset).
VxlanSettings ParseVxlanData(const nlattr* data);

// An RTM_NEWNEIGH message of an AF_BRIDGE dump that is a vxlan device's own
// flood entry: no NDA_MASTER, NDA_LLADDR all-zero, NDA_DST of 4 or 16 bytes.
std::optional<VxlanFloodEntry> ParseVxlanFlood(const nlmsghdr* header);

// Creates vxlan device `name` (down) with `settings`; `what` names it in errors.
Status CreateVxlanLink(NlSocket& socket, const std::string& name, const VxlanSettings& settings,
                       const std::string& what);

// Appends (add) or deletes the flood entry to `dst` on the vxlan device `ifindex`.
Status VxlanFlood(NlSocket& socket, bool add, int ifindex, const IpPrefix& dst,
                  const std::string& what);

}  // namespace vfabric::netd::nl
