#include "vxlan_wire.h"

#include <errno.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "vfabric/vlan/tag.h"

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

TxResult SendVxlanDatagrams(int fd, const uint8_t* header, const sockaddr_storage& remote,
                            socklen_t remote_length, std::span<const TxItem> items, int* error) {
  TxResult result;
  size_t next = 0;
  while (next < items.size()) {
    const size_t count = std::min(items.size() - next, kVxlanBatch);
    std::array<mmsghdr, kVxlanBatch> messages{};
    std::array<std::array<iovec, 4>, kVxlanBatch> iov{};
    std::array<std::array<uint8_t, vlan::kTagLen>, kVxlanBatch> tags{};
    for (size_t i = 0; i < count; ++i) {
      const TxItem& item = items[next + i];
      const Frame& f = *item.frame;
      iov[i][0] = {const_cast<uint8_t*>(header), kVxlanHeader};
      size_t parts = 2;
      if (item.tagged && f.size >= 12) {
        tags[i] = vlan::TagBytes(item.tci);
        iov[i][1] = {f.data, 12};
        iov[i][2] = {tags[i].data(), tags[i].size()};
        iov[i][3] = {f.data + 12, f.size - 12};
        parts = 4;
      } else {
        iov[i][1] = {f.data, f.size};
      }
      msghdr& m = messages[i].msg_hdr;
      m.msg_iov = iov[i].data();
      m.msg_iovlen = parts;
      m.msg_name = const_cast<sockaddr_storage*>(&remote);
      m.msg_namelen = remote_length;
    }
    const int sent = ::sendmmsg(fd, messages.data(), static_cast<unsigned>(count), 0);
    if (sent < 0) {
      // The first datagram failed: count it and go on with the rest.
      if (errno == EAGAIN || errno == ENOBUFS) {
        ++result.full;
      } else {
        ++result.errors;
        *error = errno;
      }
      ++next;
      continue;
    }
    for (int i = 0; i < sent; ++i) {
      const TxItem& item = items[next + static_cast<size_t>(i)];
      ++result.packets;
      result.bytes += item.frame->size + (item.tagged ? vlan::kTagLen : 0);
    }
    next += static_cast<size_t>(sent);
  }
  return result;
}

}  // namespace vfabric::bridge::internal
