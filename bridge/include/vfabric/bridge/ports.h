// The production port kinds: tap and packet socket. (The in-memory port of
// tests and benchmarks is in bridge/testing, a library production code does
// not link: vfabric/bridge/testing/memory_port.h.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vfabric/bridge/port.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::bridge {

// ---- tap ----

struct TapPortOptions {
  // Ask the kernel for TCP segmentation offload frames (TUN_F_TSO4/6/ECN)
  // as well as checksum offload (TUN_F_CSUM). Safe with any egress: the
  // switch segments TCP GSO frames (and completes checksums) for ports that
  // cannot take the metadata. UDP GSO (TUN_F_USO*/UFO) is never asked for.
  bool tso = true;
  // TUNSETOFFLOAD at all (false: the kernel hands over complete frames).
  bool offload = true;
};

// Takes a tap fd opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (netd's
// OpenTap); makes it non-blocking, sets TUNSETVNETHDRSZ 12 and
// TUNSETOFFLOAD. Errors name the port: "tap vm1-eth0: TUNSETVNETHDRSZ: ...".
Result<std::unique_ptr<Port>> OpenTapPort(std::string name, UniqueFd fd,
                                          const TapPortOptions& options = {});

// ---- packet socket ----

struct PacketPortOptions {
  // PACKET_VNET_HDR: frames carry offload metadata both ways (the kernel
  // hands over GSO and partial-checksum frames from a veth as they are).
  // Without it, partial checksums are located and completed by the switch,
  // but GSO frames the link receives (a veth peer with TSO, GRO on a NIC)
  // cannot be segmented without their MSS: they are dropped as malformed.
  bool vnet_hdr = true;
  // The TPACKET_V2 rx ring: block_count blocks of block_size bytes, cut into
  // slots of frame_size bytes (header, vnet header and frame). The kernel
  // hands over every frame as soon as it is in its slot (no block timer:
  // TPACKET_V3's made each frame wait up to a jiffy, see DESIGN.md). Frames
  // larger than a slot (GSO frames, jumbo frames) wait whole on the
  // socket's queue (PACKET_COPY_THRESH), bounded by socket_buffer.
  uint32_t block_size = 1u << 20;
  uint32_t block_count = 8;
  uint32_t frame_size = 1u << 11;
  // SO_RCVBUF(FORCE) of the socket: the large frames queued beside the ring.
  uint32_t socket_buffer = 8u << 20;
  // The TPACKET_V2 tx ring (with vnet_hdr only): tx_ring_frames slots of
  // tx_frame_size bytes (a multiple of 16 dividing 64 KiB; the slot holds a
  // 32-byte header, the vnet header and the frame). Frames that do not fit,
  // and GSO frames, are sent with sendmmsg(). 0 frames: no ring.
  uint32_t tx_ring_frames = 512;
  uint32_t tx_frame_size = 1u << 11;
};

// An AF_PACKET SOCK_RAW socket bound to `ifindex` (ETH_P_ALL), promiscuous,
// PACKET_IGNORE_OUTGOING, a TPACKET_V2 rx ring (with PACKET_COPY_THRESH for
// frames larger than a slot); for tx two more sockets on the link (protocol
// 0, receiving nothing): one with a TPACKET_V2 tx ring, one for sendmmsg()
// of GSO and oversized frames (see bridge/DESIGN.md, "Transmit").
// `name` is the link's name (for messages).
Result<std::unique_ptr<Port>> OpenPacketSocketPort(std::string name, int ifindex,
                                                   const PacketPortOptions& options = {});

// ---- handover ----

// The port `name` again from what Port::Handover() gave in an earlier image
// of this process (its descriptors inherited across the exec): a tap or a
// packet socket carries on with the same descriptors, rings mapped again at
// the positions where the old image stopped. Fails, naming the port, on a
// kind that cannot be adopted, missing values or descriptors the kernel
// does not know as that kind; the caller then opens the port anew.
Result<std::unique_ptr<Port>> AdoptPort(std::string name, PortHandover handover);

}  // namespace vfabric::bridge
