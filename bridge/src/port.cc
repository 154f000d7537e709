#include "vfabric/bridge/port.h"

#include "vfabric/vlan/tag.h"

namespace vfabric::bridge {

std::string_view ToString(PortKind kind) {
  switch (kind) {
    case PortKind::kMemory:
      return "memory";
    case PortKind::kTap:
      return "tap";
    case PortKind::kPacketSocket:
      return "packet";
    case PortKind::kVhostUser:
      return "vhost-user";
    case PortKind::kVxlan:
      return "vxlan";
  }
  return "unknown";
}

std::string_view ToString(DropReason reason) {
  switch (reason) {
    case DropReason::kVlanNotAllowed:
      return "vlan_not_allowed";
    case DropReason::kStpState:
      return "stp_state";
    case DropReason::kNoBuffer:
      return "no_buffer";
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kTxQueueFull:
      return "tx_queue_full";
    case DropReason::kLinkLocal:
      return "link_local";
    case DropReason::kTxError:
      return "tx_error";
    case DropReason::kOffloadUnsupported:
      return "offload_unsupported";
    case DropReason::kStaleFdb:
      return "stale_fdb";
    case DropReason::kRxKernel:
      return "rx_kernel";
    case DropReason::kMirrorOutput:
      return "mirror_output";
    case DropReason::kSplitHorizon:
      return "split_horizon";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

size_t CopyTxItem(const TxItem& item, std::span<uint8_t> out) {
  const Frame& f = *item.frame;
  if (!item.tagged) {
    std::memcpy(out.data(), f.data, f.size);
    return f.size;
  }
  return vlan::CopyWithTag(out.data(), f.bytes(), item.tci);
}

VnetHdr TxVnetHdr(const TxItem& item) {
  VnetHdr h = item.frame->vnet;
  if (item.tagged) {
    if (h.needs_csum()) h.csum_start = static_cast<uint16_t>(h.csum_start + 4);
    if (h.is_gso()) h.hdr_len = static_cast<uint16_t>(h.hdr_len + 4);
  }
  return h;
}

}  // namespace vfabric::bridge
