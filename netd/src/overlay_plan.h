// A kernel network's VXLAN overlay (topology key "overlay"): the vxlan
// device "vfx-<vni>" as a port of the network's bridge, and, with static
// control, its flood list as all-zero-MAC entries of the device's own FDB.
//
// The device is netd's like a tap (alias "vfabric:<network>"): one whose
// VNI, local address, port or learning differ is deleted and made anew (the
// kernel changes none of them on a live device), one deleted by hand is made
// again, one taken off its bridge is put back. Flood entries: with
// "control": "static" the topology's list is the whole list -- a missing
// entry is added, one added by hand that the file does not list is deleted;
// with "evpn" FRR owns the list and netd touches no entry.
#pragma once

#include <string>
#include <vector>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {

// Why `network`'s overlay cannot be applied on this host, or OK: a link of
// the device's name that netd did not make, or a local address that no link
// has (nor will have: `desired`'s bridges' "addresses" count).
Status OverlayPreflight(const topology::NetworkConfig& network, const topology::Topology& desired,
                        const KernelState& actual);

struct OverlayPhases {
  std::vector<Operation>* links;         // create/delete the device
  std::vector<Operation>* config;        // mtu, alias, master, bridge port, up
  std::vector<Operation>* fdb_adds;      // flood entries added
  std::vector<Operation>* fdb_removals;  // flood entries removed
};

// Whether a bridge FDB entry of `network` on `port` belongs to a control
// plane rather than to netd or the bridge's learning: one marked
// extern_learn (NTF_EXT_LEARNED), or any entry on the vxlan device of an
// overlay with "control": "evpn" -- zebra installs remote MACs there, as
// extern_learn entries or, for a peer's sticky MAC, as static + sticky
// ones without extern_learn. Netd's repair never deletes such an entry and
// fdb.flush leaves it: zebra would put it back, and the peer's MAC would
// be flooded meanwhile.
bool ControlPlaneFdbEntry(const topology::NetworkConfig& network, const FdbEntry& entry,
                          const LinkInfo& port);

// Plans `network`'s overlay (REQUIRES: network.overlay) onto its bridge
// (`bridge`: as read, null when it is to be created).
void PlanOverlay(const topology::NetworkConfig& network, const LinkInfo* bridge,
                 const KernelState& actual, const OverlayPhases& phases);

}  // namespace vfabric::netd
