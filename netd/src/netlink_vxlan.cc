// VXLAN over rtnetlink (nl_vxlan.h).
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include "nl_vxlan.h"

namespace vfabric::netd::nl {
namespace {

template <size_t N>
struct Attrs {
  std::array<const nlattr*, N> at{};
};

template <size_t N>
int Store(const nlattr* attr, void* data) {
  auto* table = static_cast<Attrs<N>*>(data);
  const uint16_t type = mnl_attr_get_type(attr);
  if (type < N) table->at[type] = attr;
  return MNL_CB_OK;
}

bool Address(const nlattr* attr, int family, IpPrefix* out) {
  const size_t size = family == AF_INET ? 4 : 16;
  if (attr == nullptr || mnl_attr_get_payload_len(attr) != size) return false;
  IpPrefix address;
  address.family = family;
  address.length = static_cast<uint8_t>(size * 8);
  std::memcpy(address.bytes.data(), mnl_attr_get_payload(attr), size);
  *out = address;
  return true;
}

void PutAddress(nlmsghdr* header, uint16_t v4_type, uint16_t v6_type, const IpPrefix& address) {
  mnl_attr_put(header, address.family == AF_INET ? v4_type : v6_type, address.AddressSize(),
               address.bytes.data());
}

}  // namespace

VxlanSettings ParseVxlanData(const nlattr* data) {
  VxlanSettings settings;
  if (data == nullptr) return settings;
  Attrs<IFLA_VXLAN_MAX + 1> tb;
  mnl_attr_parse_nested(data, Store<IFLA_VXLAN_MAX + 1>, &tb);
  if (const nlattr* id = tb.at[IFLA_VXLAN_ID]; id && mnl_attr_get_payload_len(id) >= 4)
    settings.vni = mnl_attr_get_u32(id);
  if (!Address(tb.at[IFLA_VXLAN_LOCAL], AF_INET, &settings.local))
    Address(tb.at[IFLA_VXLAN_LOCAL6], AF_INET6, &settings.local);
  // IFLA_VXLAN_PORT is in network byte order.
  if (const nlattr* port = tb.at[IFLA_VXLAN_PORT]; port && mnl_attr_get_payload_len(port) >= 2)
    settings.port = ntohs(mnl_attr_get_u16(port));
  if (const nlattr* learning = tb.at[IFLA_VXLAN_LEARNING];
      learning && mnl_attr_get_payload_len(learning) >= 1)
    settings.learning = mnl_attr_get_u8(learning) != 0;
  return settings;
}

std::optional<VxlanFloodEntry> ParseVxlanFlood(const nlmsghdr* header) {
  if (header->nlmsg_type != RTM_NEWNEIGH || header->nlmsg_len < mnl_nlmsg_size(sizeof(ndmsg)) ||
      header->nlmsg_len % MNL_ALIGNTO != 0)
    return std::nullopt;
  const auto* ndm = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(header));
  if (ndm->ndm_family != AF_BRIDGE) return std::nullopt;
  Attrs<NDA_MAX + 1> tb;
  mnl_attr_parse(header, sizeof(ndmsg), Store<NDA_MAX + 1>, &tb);
  if (tb.at[NDA_MASTER] != nullptr) return std::nullopt;  // a bridge's entry, not the device's
  const nlattr* lladdr = tb.at[NDA_LLADDR];
  if (lladdr == nullptr || mnl_attr_get_payload_len(lladdr) != 6) return std::nullopt;
  static constexpr std::array<uint8_t, 6> kZero{};
  if (std::memcmp(mnl_attr_get_payload(lladdr), kZero.data(), 6) != 0) return std::nullopt;
  VxlanFloodEntry entry;
  entry.ifindex = ndm->ndm_ifindex;
  if (!Address(tb.at[NDA_DST], AF_INET, &entry.dst) &&
      !Address(tb.at[NDA_DST], AF_INET6, &entry.dst))
    return std::nullopt;
  return entry;
}

Status CreateVxlanLink(NlSocket& socket, const std::string& name, const VxlanSettings& settings,
                       const std::string& what) {
  MessageBuffer buffer;
  nlmsghdr* header = buffer.Start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(header, IFLA_IFNAME, name.c_str());
  nlattr* linkinfo = mnl_attr_nest_start(header, IFLA_LINKINFO);
  mnl_attr_put_strz(header, IFLA_INFO_KIND, "vxlan");
  nlattr* data = mnl_attr_nest_start(header, IFLA_INFO_DATA);
  mnl_attr_put_u32(header, IFLA_VXLAN_ID, settings.vni);
  if (settings.local.family == AF_INET || settings.local.family == AF_INET6)
    PutAddress(header, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, settings.local);
  mnl_attr_put_u16(header, IFLA_VXLAN_PORT, htons(settings.port));
  mnl_attr_put_u8(header, IFLA_VXLAN_LEARNING, settings.learning ? 1 : 0);
  mnl_attr_nest_end(header, data);
  mnl_attr_nest_end(header, linkinfo);
  return socket.Transact(header, what);
}

Status VxlanFlood(NlSocket& socket, bool add, int ifindex, const IpPrefix& dst,
                  const std::string& what) {
  if (dst.family != AF_INET && dst.family != AF_INET6)
    return Status::Error(what + ": Invalid argument (no address family)", EINVAL);
  MessageBuffer buffer;
  nlmsghdr* header =
      add ? buffer.Start(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND) : buffer.Start(RTM_DELNEIGH, 0);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ndmsg)));
  ndm->ndm_family = AF_BRIDGE;
  ndm->ndm_ifindex = ifindex;
  // iproute2's default for `bridge fdb append`: permanent, on the device itself.
  ndm->ndm_state = NUD_NOARP | NUD_PERMANENT;
  ndm->ndm_flags = NTF_SELF;
  static constexpr std::array<uint8_t, 6> kZero{};
  mnl_attr_put(header, NDA_LLADDR, kZero.size(), kZero.data());
  PutAddress(header, NDA_DST, NDA_DST, dst);
  return socket.Transact(header, what);
}

}  // namespace vfabric::netd::nl
