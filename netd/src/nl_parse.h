// Parsing of rtnetlink replies into the kernel seam's types, with libmnl.
// Every attribute's length is checked before it is read; a malformed or
// unexpected attribute is ignored, never read past. A message whose
// nlmsg_len is not 4-aligned is malformed and yields nothing.
// REQUIRES: header->nlmsg_len bytes are readable (MessageOk held).
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vfabric/netd/kernel.h"

namespace vfabric::netd::nl {

// mnl_nlmsg_ok(), without its hole: libmnl compares (int)nlmsg_len with the
// bytes left, so a length of 2^31 or more passes as negative and the walk
// (mnl_nlmsg_next) then jumps outside the buffer. True when a whole message
// of at least a header starts at `header` within `remaining` bytes.
bool MessageOk(const nlmsghdr* header, int remaining);

// An RTM_NEWLINK message (AF_UNSPEC dump): ifinfomsg, IFLA_*, and from
// IFLA_LINKINFO the bridge (IFLA_BR_*), tun (IFLA_TUN_*) and bridge port
// (IFLA_INFO_SLAVE_DATA: IFLA_BRPORT_*) details. False if not a link message.
bool ParseLink(const nlmsghdr* header, LinkInfo* link);

// An RTM_NEWNEIGH message of an AF_BRIDGE dump. Only entries a bridge owns
// (NDA_MASTER present) are returned; a device's own address lists
// ("self" entries) are not.
std::optional<FdbEntry> ParseFdb(const nlmsghdr* header);

// An RTM_NEWLINK message of an AF_BRIDGE dump with RTEXT_FILTER_BRVLAN:
// appends its IFLA_AF_SPEC / IFLA_BRIDGE_VLAN_INFO entries (ranges expanded;
// an entry whose VLAN id is not 1..4094 is malformed and skipped).
void ParsePortVlans(const nlmsghdr* header, std::vector<PortVlanEntry>* out);

// The kernel's extended ack message (NLMSGERR_ATTR_MSG) of an NLMSG_ERROR or
// NLMSG_DONE message, "" when it sent none. REQUIRES: an NLMSG_ERROR holds a
// whole nlmsgerr, an NLMSG_DONE its int (NlSocket::Receive checks both).
std::string ExtackMessage(const nlmsghdr* header);

// struct ifla_bridge_id {prio[2], addr[6]} -> prio << 48 | mac.
uint64_t PackBridgeId(const void* ifla_bridge_id);

}  // namespace vfabric::netd::nl
