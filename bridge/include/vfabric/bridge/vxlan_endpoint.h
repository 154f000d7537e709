// A VXLAN tunnel endpoint (VTEP, RFC 7348) of the userspace switch: one UDP
// socket bound to local:port for a network's VNI, and one bridge::Port per
// remote VTEP ("peer port"), a view on that socket (bridge/DESIGN-vxlan.md).
//
// Why a port per remote VTEP: the switch's FDB, per-port limits, counters,
// STP state and VLAN classification then apply to remote MACs unchanged; a
// remote MAC is learned on the peer port its frame came from, and flooding
// to every peer port is head-end replication. Peer ports of one endpoint
// share a flood group (PortSettings::flood_group) so that the switch does
// not forward between them (split horizon: every VTEP floods to every other
// itself).
//
// Receive: whichever peer port the switch asks drains the socket with
// recvmmsg() (batches of 32) into the endpoint's own buffers and sorts the
// datagrams by source address into per-peer queues; a peer's Receive()
// then copies its queued inner frames into pool frames (one copy). A
// datagram from an address that is no peer is dropped and counted
// (Counters::rx_unknown_vtep). A datagram that is truncated, shorter than
// header + Ethernet header, has other flags than the I bit (0x08) or
// non-zero reserved bits, or another VNI, is counted `malformed` on the peer
// it came from. When the buffers run out, draining stops: datagrams wait in
// the socket (the kernel counts what it drops there).
//
// Wake-ups: each peer port's fd() is an epoll descriptor of its own that
// watches the socket and the peer's eventfd; a drain that queues frames
// for another peer signals that peer's eventfd, so frames queued for a peer
// never wait for the next datagram. (Every peer port is woken by a new
// datagram; those that find the socket empty cost one recvmmsg each.)
//
// Transmit: sendmmsg() on the shared socket, header + frame (+ an inserted
// 802.1Q tag) per datagram. The ports take no offload metadata: the switch
// completes checksums and segments TCP GSO frames first.
//
// Threading: ports are made on the control thread and used by the switch's
// datapath thread; a port can be removed (destroyed on the control thread)
// while the datapath drains through another. The endpoint's peer table,
// queues and buffers are under one mutex, taken once per Receive() (not
// per frame) and by port creation and destruction; uncontended except when
// the peer set changes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vfabric/bridge/port.h"
#include "vfabric/common/ip_prefix.h"
#include "vfabric/common/status.h"

namespace vfabric::bridge {

struct VxlanEndpointOptions {
  IpPrefix local;           // bound address (full-length prefix), IPv4 or IPv6
  uint16_t port = 4789;     // bound UDP port
  uint32_t vni = 0;         // 1..16777215
  size_t max_frame = 9216;  // largest inner frame received (bigger: malformed)
  size_t buffers = 256;     // datagrams the endpoint holds between drain and Receive
};

class VxlanEndpoint {
 public:
  struct Counters {
    uint64_t rx_datagrams = 0;     // received on the socket
    uint64_t rx_unknown_vtep = 0;  // from an address that is no peer: dropped
  };

  // Opens the UDP socket (non-blocking, close-on-exec) bound to
  // local:port. `name` names it in errors: "vxlan endpoint lab: bind
  // 192.0.2.1:4789: Address already in use".
  static Result<std::shared_ptr<VxlanEndpoint>> Open(std::string name,
                                                     const VxlanEndpointOptions& options);
  virtual ~VxlanEndpoint() = default;

  // A port (kind vxlan) to the remote VTEP `remote`, sending to its UDP
  // port `remote_port`. Errors: another family than local's, a remote
  // that is already a peer (EEXIST). The port keeps the endpoint alive.
  virtual Result<std::unique_ptr<Port>> OpenPeer(std::string port_name, const IpPrefix& remote,
                                                 uint16_t remote_port) = 0;

  virtual Counters counters() const = 0;  // any thread
  virtual const VxlanEndpointOptions& options() const = 0;
};

}  // namespace vfabric::bridge
