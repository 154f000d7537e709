// Port mirroring inside the switch: the datapath's table of the mirrors
// (MirrorSettings, settings.h), built on the control thread into each
// snapshot, and the checks and bookkeeping the control side needs.
//
// How the pipeline uses it (switch.cc, Impl::MirrorCopies): a snapshot
// without mirrors has no table, so a switch without mirrors pays one
// predictable branch per frame. With a table, each frame that is forwarded
// gets a word of mirror bits,
//   (rx[in] | tx of the ports it leaves by | all) & vlan[vid],
// and one copy per distinct output port of those bits goes to that port's
// tx queue (the frame itself, not a new buffer: queued frames are sent
// before the batch's buffers go back to the pool). An output port gets at
// most one copy per frame and nothing else, so its tx queue (batch_size
// items) never overflows.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "vfabric/bridge/settings.h"
#include "vfabric/common/status.h"

namespace vfabric::bridge::internal {

struct MirrorTable {
  std::vector<uint64_t> rx;    // by PortId: mirrors selecting frames received on the port
  std::vector<uint64_t> tx;    // by PortId: mirrors selecting frames sent to the port
  uint64_t all = 0;            // mirrors selecting frames of every port
  std::vector<uint64_t> vlan;  // by VID (4096): mirrors whose VLAN selection passes the VID
  // By mirror bit: the output port, the mirrors sharing it (one copy for
  // all of them), and the VLANs the output port sends untagged.
  std::array<PortId, kMaxMirrors> output{};
  std::array<uint64_t, kMaxMirrors> same_output{};
  std::array<VlanSet, kMaxMirrors> untagged{};

  uint64_t TxOf(PortId port) const { return port < tx.size() ? tx[port] : 0; }
  uint64_t Select(PortId in, uint64_t tx_bits, uint16_t vid) const {
    return ((in < rx.size() ? rx[in] : 0) | tx_bits | all) & vlan[vid & 0xfff];
  }
};

// Why `mirrors` cannot be installed on a switch whose present ports
// `present` tells, or Ok: at most kMaxMirrors, every port present, no
// output port selected by any mirror.
Status CheckMirrors(const std::vector<MirrorSettings>& mirrors,
                    const std::function<bool(PortId)>& present);

// The table for `mirrors` over ports 0..ports-1; nullptr when there are
// none. Mirrors whose output is not present are left out, as are absent
// selected ports. `untagged_of` gives a port's untagged egress VLANs.
std::shared_ptr<const MirrorTable> BuildMirrorTable(
    const std::vector<MirrorSettings>& mirrors, size_t ports,
    const std::function<bool(PortId)>& present, const std::function<VlanSet(PortId)>& untagged_of);

// The mirrors without `port` (it is leaving the switch): a mirror whose
// output it is goes, and so does one that selected ports and selects none
// any more (it must not turn into a mirror of every port).
void ForgetPort(std::vector<MirrorSettings>* mirrors, PortId port);

}  // namespace vfabric::bridge::internal
