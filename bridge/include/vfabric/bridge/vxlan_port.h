// A VXLAN port (RFC 7348): the switch's frames to and from one remote VTEP,
// encapsulated in UDP by the switch itself (no kernel vxlan device). The
// first piece of bridge/DESIGN-vxlan.md: one port per remote VTEP, here with
// a socket of its own (the shared endpoint and the switch's split horizon
// come with several peers on one network).
//
// Receive: recvmmsg() in batches; each datagram's 8-byte VXLAN header lands
// apart from the frame (scatter), so the inner frame is received in place.
// A datagram is refused and counted `malformed` when it is truncated, shorter
// than header + Ethernet header, has other flags than the I bit (0x08) or
// non-zero reserved bits, carries another VNI, or comes from another address
// than the remote VTEP (any source port: senders pick it for entropy).
// Transmit: sendmmsg() with the header and the frame (and an inserted 802.1Q
// tag) as one datagram each. The port takes no offload metadata: the switch
// completes checksums and segments TCP GSO frames before they get here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vfabric/bridge/port.h"
#include "vfabric/common/ip_prefix.h"
#include "vfabric/common/status.h"

namespace vfabric::bridge {

struct VxlanPortOptions {
  IpPrefix local;               // bound address (full-length prefix), IPv4 or IPv6
  uint16_t local_port = 4789;   // bound UDP port
  IpPrefix remote;              // the remote VTEP, of local's family
  uint16_t remote_port = 4789;  // its UDP port
  uint32_t vni = 0;             // 1..16777215
};

// Opens the UDP socket (non-blocking, close-on-exec) bound to local:local_port.
// Errors name the port: "vxlan vx-b: bind 192.0.2.1:4789: Address already in use".
Result<std::unique_ptr<Port>> OpenVxlanPort(std::string name, const VxlanPortOptions& options);

// The 8-byte VXLAN header of `vni`: flags 0x08 (I), 24 reserved bits, the
// VNI, 8 reserved bits.
void PutVxlanHeader(uint32_t vni, uint8_t out[8]);

}  // namespace vfabric::bridge
