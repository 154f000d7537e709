#include "vxlan_wire.h"

#include <errno.h>

#include <cstring>

namespace vfabric::bridge::internal {

socklen_t SocketAddress(const IpPrefix& address, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (address.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, address.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

bool VxlanDatagramValid(const msghdr& message, size_t length, const uint8_t* header,
                        const uint8_t* own_header) {
  if (message.msg_flags & MSG_TRUNC) return false;
  if (length < kVxlanHeader + kEthernetHeader) return false;
  const uint8_t* h = header;
  if (h[0] != 0x08 || h[1] != 0 || h[2] != 0 || h[3] != 0 || h[7] != 0) return false;
  return std::memcmp(h + 4, own_header + 4, 3) == 0;  // else another VNI
}

Result<UniqueFd> OpenVxlanSocket(const std::string& what, const IpPrefix& local, uint16_t port) {
  UniqueFd fd(::socket(local.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(what + ": socket", errno);
  const int pmtu = local.family == AF_INET ? IP_PMTUDISC_DONT : IPV6_PMTUDISC_DONT;
  if (local.family == AF_INET)
    ::setsockopt(fd.get(), IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  else
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
  sockaddr_storage address{};
  const socklen_t length = SocketAddress(local, port, &address);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
    return Status::FromErrno(what + ": bind " + local.AddressText() + ":" + std::to_string(port),
                             errno);
  return fd;
}

}  // namespace vfabric::bridge::internal
