// The Port interface the pipeline drives, and the per-port counters.
//
// A Port moves whole Ethernet frames between the switch and one thing
// outside it: a tap (a guest NIC's host end), a packet socket (a veth or a
// NIC), memory (tests, benchmarks), or a guest's virtio rings over
// vhost-user (vhost_user_port.h).
// Ports are created on the control thread, handed to Switch::AddPort, and
// from then on used only by the datapath thread (Receive/Transmit are not
// thread-safe). Ports never allocate on Receive/Transmit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/bridge/frame.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::bridge {

enum class PortKind : uint8_t { kMemory, kTap, kPacketSocket, kVhostUser, kVxlan };
std::string_view ToString(PortKind kind);

// Why a frame was dropped. Ingress reasons are counted on the port the frame
// came in on; kTxQueueFull, kTxError and kOffloadUnsupported on the port it
// was to leave by.
enum class DropReason : uint8_t {
  kVlanNotAllowed,      // ingress classification refused it (or egress port not in the VLAN)
  kStpState,            // the port's STP state forbids forwarding (or learning)
  kNoBuffer,            // no room to receive into (the pool, a packet socket's queue)
  kMalformed,           // runt, truncated tag, bad offload metadata, multicast source MAC
  kTxQueueFull,         // the egress port's queue was full (EAGAIN/ENOBUFS)
  kLinkLocal,           // 01:80:c2:00:00:0x other than a BPDU to a hook (LLDP, pause, ...)
  kTxError,             // the egress port failed otherwise (errno logged once)
  kOffloadUnsupported,  // GSO frame for a port without offload that is not TCP (cannot be
                        // segmented)
  kStaleFdb,      // the FDB names a port the switch no longer has (a bug: also logged); on ingress
  kRxKernel,      // dropped by the kernel before the switch could read it (a packet socket's ring
                  // or queue was full: PACKET_STATISTICS); read every kernel_stats_interval_ms
  kMirrorOutput,  // received on a mirror's output port, which takes no part in forwarding
  kSplitHorizon,  // unicast between two ports of one flood group (PortSettings::flood_group:
                  // two VXLAN peers); counted on the port it was to leave by
  kCount
};
inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::kCount);
std::string_view ToString(DropReason reason);  // "vlan_not_allowed", ...

struct PortCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t bpdu_trapped = 0;    // BPDUs handed to the STP hook
  uint64_t csum_completed = 0;  // checksums completed in software for this egress
  uint64_t segmented = 0;       // GSO frames segmented in software for this egress
  // Frames whose source MAC was not learned because of the FDB's per-port
  // or table limit. Not a drop: the frame is still forwarded (flooded when
  // its destination is unknown), as the Linux bridge does past
  // fdb_max_learned; so it is counted apart from `drops`.
  uint64_t mac_limit_not_learned = 0;
  uint64_t drops[kDropReasonCount] = {};
  uint64_t drop(DropReason r) const { return drops[static_cast<size_t>(r)]; }
  uint64_t total_drops() const {
    uint64_t sum = 0;
    for (uint64_t d : drops) sum += d;
    return sum;
  }
};

// One frame to send: `frame` as it is, or with an 802.1Q tag (TCI `tci`)
// inserted after the MACs when `tagged`. The frame's vnet header is
// relative to the untagged frame; a port that inserts the tag adjusts it.
struct TxItem {
  const Frame* frame = nullptr;
  uint16_t tci = 0;
  bool tagged = false;
};

struct TxResult {
  uint32_t packets = 0;  // sent
  uint64_t bytes = 0;    // frame bytes sent (tag included, vnet header not)
  uint32_t full = 0;     // not sent: queue full
  uint32_t errors = 0;   // not sent: another error
};

// What a port hands to a new image of its process across an exec (netd's
// re-exec, netd/DESIGN.md "Restarts and upgrades without outage"): its
// descriptors, dup()ed without FD_CLOEXEC so that they survive the exec, and
// the numbers the new image needs to carry on where this one stopped (ring
// sizes and positions). AdoptPort (ports.h) makes the port again from it;
// frames that arrive meanwhile wait in the kernel's queues and rings.
struct PortHandover {
  PortKind kind = PortKind::kMemory;
  std::vector<UniqueFd> fds;
  std::map<std::string, uint64_t> values;
};

class Port {
 public:
  virtual ~Port() = default;

  virtual const std::string& name() const = 0;
  virtual PortKind kind() const = 0;
  // A descriptor that becomes readable (epoll, level-triggered) when
  // Receive() has frames, or -1: the port is polled every turn.
  virtual int fd() const = 0;
  // Whether frames may leave with checksum-offload and GSO metadata. When
  // false the switch completes checksums and segments TCP GSO frames first.
  virtual bool takes_offload() const = 0;
  // Receive() on an empty port costs no system call (a ring in memory):
  // while frames keep coming the switch polls such a port instead of being
  // woken through its fd for each one (see DESIGN.md, "Polling busy ports").
  virtual bool cheap_to_poll() const { return false; }

  // Receives up to out.size() frames into buffers from `pool`, storing them
  // in out[0..n) and returning n. Stops early when nothing is waiting.
  // Counts into *no_buffer the frames it could not take for want of a
  // buffer and into *malformed those it refused (e.g. bad vnet header).
  virtual size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                         uint64_t* malformed) = 0;
  // Sends the items in order (frames are only read). A port may batch.
  virtual TxResult Transmit(std::span<const TxItem> items) = 0;

  // Whether the kernel counts frames it dropped on their way to this port
  // before the switch could read them (a packet socket: its ring or queue
  // was full). The switch then asks TakeKernelDrops() every
  // SwitchConfig::kernel_stats_interval_ms and counts them as rx_kernel.
  virtual bool reports_kernel_drops() const { return false; }
  // Those drops since the last call (the kernel's count resets when read).
  // An error is the port's to log; it answers 0 then.
  virtual uint64_t TakeKernelDrops() { return 0; }

  // The port's handover (see PortHandover). REQUIRES: the switch's
  // datapath thread is stopped (nothing is in flight). Kinds that cannot be
  // handed over (memory, vhost-user, vxlan) say so: they are opened anew.
  virtual Result<PortHandover> Handover() const {
    return Status::Error(std::string(ToString(kind())) + " port " + name() +
                         ": cannot be handed over");
  }
};

// The bytes of `item` as they would be on the wire: frame with the tag
// inserted, copied into `out` (REQUIRES out.size() >= frame size + 4).
// Returns the length. For ports that copy (a packet socket's tx ring, the
// memory port); ports that send in pieces insert vlan::TagBytes instead.
// (Defined in port.cc so that this header, which the bridge's users see,
// does not pull in vlan/.)
size_t CopyTxItem(const TxItem& item, std::span<uint8_t> out);
// The vnet header for `item` on the wire: the frame's, with csum_start and
// hdr_len moved by 4 when a tag is inserted.
VnetHdr TxVnetHdr(const TxItem& item);

}  // namespace vfabric::bridge
