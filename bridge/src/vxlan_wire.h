// What the single-VTEP VXLAN port (vxlan_port.cc) and the shared endpoint
// (vxlan_endpoint.cc) both need of the wire (RFC 7348): the header's
// checks, socket addresses and the bound UDP socket.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "vfabric/bridge/port.h"
#include "vfabric/common/ip_prefix.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::bridge::internal {

inline constexpr size_t kVxlanBatch = 32;  // datagrams per recvmmsg/sendmmsg
inline constexpr size_t kVxlanHeader = 8;
inline constexpr size_t kEthernetHeader = 14;
inline constexpr uint32_t kMaxVni = (1u << 24) - 1;

// sockaddr_storage for `address`:`port`; returns its length.
socklen_t SocketAddress(const IpPrefix& address, uint16_t port, sockaddr_storage* out);

// Whether a received datagram (`length` bytes, VXLAN header `header`) is
// one to take: not truncated, header + Ethernet header at least, the I
// flag alone and the reserved bits zero (RFC 7348 section 5), and the VNI
// of `own_header` (PutVxlanHeader's).
bool VxlanDatagramValid(const msghdr& message, size_t length, const uint8_t* header,
                        const uint8_t* own_header);

// A non-blocking, close-on-exec UDP socket bound to `local`:`port`, with
// the don't-fragment bit clear as the kernel's vxlan device sends. Errors
// start with `what`: "vxlan endpoint lab: bind 192.0.2.1:4789: ...".
Result<UniqueFd> OpenVxlanSocket(const std::string& what, const IpPrefix& local, uint16_t port);

// Sends each of `items` as one datagram to `remote` with sendmmsg(), in
// batches of kVxlanBatch: `header` (8 bytes), then the frame with an
// 802.1Q tag inserted where the item says so. A datagram the kernel
// refuses is counted (`full`: EAGAIN or ENOBUFS; `errors`: anything else,
// its errno left in `*error` for the caller to log) and the rest go on.
TxResult SendVxlanDatagrams(int fd, const uint8_t* header, const sockaddr_storage& remote,
                            socklen_t remote_length, std::span<const TxItem> items, int* error);

}  // namespace vfabric::bridge::internal
