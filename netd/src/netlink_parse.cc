#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <string>

#include "nl_parse.h"
#include "nl_vxlan.h"

namespace vfabric::netd::nl {
namespace {

// Attributes by type, for types below N.
template <size_t N>
struct AttrTable {
  std::array<const nlattr*, N> at{};
  const nlattr* operator[](size_t type) const { return type < N ? at[type] : nullptr; }
};

template <size_t N>
int StoreAttr(const nlattr* attr, void* data) {
  auto* table = static_cast<AttrTable<N>*>(data);
  uint16_t type = mnl_attr_get_type(attr);
  if (type < N) table->at[type] = attr;
  return MNL_CB_OK;
}

template <size_t N>
AttrTable<N> ParseNested(const nlattr* nest) {
  AttrTable<N> table;
  if (nest != nullptr) mnl_attr_parse_nested(nest, StoreAttr<N>, &table);
  return table;
}

template <size_t N>
AttrTable<N> ParseMessage(const nlmsghdr* header, size_t family_header) {
  AttrTable<N> table;
  mnl_attr_parse(header, static_cast<unsigned int>(family_header), StoreAttr<N>, &table);
  return table;
}

std::optional<uint8_t> U8(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < 1) return std::nullopt;
  return mnl_attr_get_u8(attr);
}
std::optional<uint16_t> U16(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < 2) return std::nullopt;
  return mnl_attr_get_u16(attr);
}
std::optional<uint32_t> U32(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < 4) return std::nullopt;
  return mnl_attr_get_u32(attr);
}
std::optional<uint64_t> U64(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < 8) return std::nullopt;
  return mnl_attr_get_u64(attr);
}
std::optional<bool> Bool(const nlattr* attr) {
  auto value = U8(attr);
  if (!value) return std::nullopt;
  return *value != 0;
}
std::string Str(const nlattr* attr) {
  if (attr == nullptr) return {};
  const char* data = static_cast<const char*>(mnl_attr_get_payload(attr));
  size_t length = mnl_attr_get_payload_len(attr);
  return std::string(data, strnlen(data, length));
}
std::optional<uint64_t> BridgeId(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < sizeof(ifla_bridge_id))
    return std::nullopt;
  return PackBridgeId(mnl_attr_get_payload(attr));
}
bool Mac(const nlattr* attr, MacAddress* mac) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) != 6) return false;
  std::memcpy(mac->bytes.data(), mnl_attr_get_payload(attr), 6);
  return true;
}

BridgeStatus ParseBridge(const nlattr* data) {
  auto br = ParseNested<IFLA_BR_MAX + 1>(data);
  BridgeStatus status;
  BridgeSettings& s = status.settings;
  if (auto v = U32(br[IFLA_BR_STP_STATE])) s.stp_enabled = *v != 0;
  if (auto v = U16(br[IFLA_BR_PRIORITY])) s.priority = *v;
  if (auto v = U32(br[IFLA_BR_HELLO_TIME])) s.hello_time_cs = *v;
  if (auto v = U32(br[IFLA_BR_FORWARD_DELAY])) s.forward_delay_cs = *v;
  if (auto v = U32(br[IFLA_BR_MAX_AGE])) s.max_age_cs = *v;
  if (auto v = U32(br[IFLA_BR_AGEING_TIME])) s.ageing_time_cs = *v;
  if (auto v = Bool(br[IFLA_BR_VLAN_FILTERING])) s.vlan_filtering = *v;
  // Absent without CONFIG_BRIDGE_VLAN_FILTERING: the struct's default (1) stays.
  if (auto v = U16(br[IFLA_BR_VLAN_DEFAULT_PVID])) s.default_pvid = *v;
  status.bridge_id = BridgeId(br[IFLA_BR_BRIDGE_ID]);
  status.root_id = BridgeId(br[IFLA_BR_ROOT_ID]);
  status.root_port = U16(br[IFLA_BR_ROOT_PORT]);
  status.root_path_cost = U32(br[IFLA_BR_ROOT_PATH_COST]);
  status.topology_change = U8(br[IFLA_BR_TOPOLOGY_CHANGE]);
  status.topology_change_timer_cs = U64(br[IFLA_BR_TOPOLOGY_CHANGE_TIMER]);
  return status;
}

TapStatus ParseTun(const nlattr* data) {
  auto tun = ParseNested<IFLA_TUN_MAX + 1>(data);
  TapStatus status;
  status.settings.owner = U32(tun[IFLA_TUN_OWNER]);
  status.settings.group = U32(tun[IFLA_TUN_GROUP]);
  if (auto v = U8(tun[IFLA_TUN_TYPE])) status.is_tap = (*v & IFF_TAP) != 0;
  if (auto v = Bool(tun[IFLA_TUN_VNET_HDR])) status.settings.vnet_hdr = *v;
  if (auto v = Bool(tun[IFLA_TUN_MULTI_QUEUE])) status.settings.multi_queue = *v;
  if (auto v = Bool(tun[IFLA_TUN_PERSIST])) status.persistent = *v;
  return status;
}

BridgePortStatus ParseBridgePort(const nlattr* data) {
  auto port = ParseNested<IFLA_BRPORT_MAX + 1>(data);
  BridgePortStatus status;
  BridgePortSettings& s = status.settings;
  s.cost = U32(port[IFLA_BRPORT_COST]);
  if (auto v = U16(port[IFLA_BRPORT_PRIORITY])) s.priority = *v;
  s.learning = Bool(port[IFLA_BRPORT_LEARNING]);
  s.flood = Bool(port[IFLA_BRPORT_UNICAST_FLOOD]);
  s.hairpin = Bool(port[IFLA_BRPORT_MODE]);
  s.isolated = Bool(port[IFLA_BRPORT_ISOLATED]);
  s.bpdu_guard = Bool(port[IFLA_BRPORT_GUARD]);
  s.root_block = Bool(port[IFLA_BRPORT_PROTECT]);
  if (auto v = U8(port[IFLA_BRPORT_STATE])) status.state = *v;
  status.designated_root = BridgeId(port[IFLA_BRPORT_ROOT_ID]);
  status.designated_bridge = BridgeId(port[IFLA_BRPORT_BRIDGE_ID]);
  status.designated_port = U16(port[IFLA_BRPORT_DESIGNATED_PORT]);
  // The kernel sends the designated cost as a u16 (its field is a u32).
  if (auto v = U16(port[IFLA_BRPORT_DESIGNATED_COST])) status.designated_cost = *v;
  status.port_id = U16(port[IFLA_BRPORT_ID]);
  status.port_no = U16(port[IFLA_BRPORT_NO]);
  return status;
}

// libmnl walks attributes up to MNL_ALIGN(nlmsg_len): a message whose length
// is not 4-aligned could be read up to 3 bytes past its end. The kernel
// always pads (nla_put aligns every attribute), so such a message is malformed.
bool WellFormed(const nlmsghdr* header, size_t family_header) {
  return header->nlmsg_len >= mnl_nlmsg_size(family_header) && header->nlmsg_len % MNL_ALIGNTO == 0;
}

}  // namespace

bool MessageOk(const nlmsghdr* header, int remaining) {
  return mnl_nlmsg_ok(header, remaining) && header->nlmsg_len <= static_cast<uint32_t>(remaining);
}

uint64_t PackBridgeId(const void* ifla_bridge_id_bytes) {
  ifla_bridge_id id;
  std::memcpy(&id, ifla_bridge_id_bytes, sizeof id);
  uint64_t packed = (static_cast<uint64_t>(id.prio[0]) << 8 | id.prio[1]) << 48;
  for (int i = 0; i < 6; ++i) packed |= static_cast<uint64_t>(id.addr[i]) << (8 * (5 - i));
  return packed;
}

bool ParseLink(const nlmsghdr* header, LinkInfo* link) {
  if (header->nlmsg_type != RTM_NEWLINK || !WellFormed(header, sizeof(ifinfomsg))) return false;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(header));
  auto tb = ParseMessage<IFLA_MAX + 1>(header, sizeof(ifinfomsg));
  link->ifindex = ifi->ifi_index;
  link->name = Str(tb[IFLA_IFNAME]);
  link->alias = Str(tb[IFLA_IFALIAS]);
  link->master_ifindex = static_cast<int>(U32(tb[IFLA_MASTER]).value_or(0));
  link->admin_up = (ifi->ifi_flags & IFF_UP) != 0;
  bool lower_up = (ifi->ifi_flags & IFF_LOWER_UP) != 0;
  if (auto operstate = U8(tb[IFLA_OPERSTATE])) {
    link->oper_up = *operstate == IF_OPER_UP || (*operstate == IF_OPER_UNKNOWN && lower_up);
  } else {
    link->oper_up = lower_up;
  }
  link->mtu = U32(tb[IFLA_MTU]).value_or(0);
  Mac(tb[IFLA_ADDRESS], &link->mac);
  link->link_ifindex = static_cast<int>(U32(tb[IFLA_LINK]).value_or(0));
  if (tb[IFLA_LINKINFO] != nullptr) {
    auto info = ParseNested<IFLA_INFO_MAX + 1>(tb[IFLA_LINKINFO]);
    link->kind = Str(info[IFLA_INFO_KIND]);
    if (link->kind == "bridge") link->bridge = ParseBridge(info[IFLA_INFO_DATA]);
    if (link->kind == "tun") link->tap = ParseTun(info[IFLA_INFO_DATA]);
    if (link->kind == "vxlan") link->vxlan = ParseVxlanData(info[IFLA_INFO_DATA]);
    if (Str(info[IFLA_INFO_SLAVE_KIND]) == "bridge")
      link->brport = ParseBridgePort(info[IFLA_INFO_SLAVE_DATA]);
  }
  return true;
}

std::optional<FdbEntry> ParseFdb(const nlmsghdr* header) {
  if (header->nlmsg_type != RTM_NEWNEIGH || !WellFormed(header, sizeof(ndmsg))) return std::nullopt;
  const auto* ndm = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(header));
  if (ndm->ndm_family != AF_BRIDGE) return std::nullopt;
  auto tb = ParseMessage<NDA_MAX + 1>(header, sizeof(ndmsg));
  auto master = U32(tb[NDA_MASTER]);
  if (!master) return std::nullopt;
  FdbEntry entry;
  if (!Mac(tb[NDA_LLADDR], &entry.mac)) return std::nullopt;
  entry.port_ifindex = ndm->ndm_ifindex;
  entry.bridge_ifindex = static_cast<int>(*master);
  entry.vlan = U16(tb[NDA_VLAN]).value_or(0);
  entry.is_static = (ndm->ndm_state & NUD_NOARP) != 0;
  entry.is_local = (ndm->ndm_state & NUD_PERMANENT) != 0;
  entry.extern_learn = (ndm->ndm_flags & NTF_EXT_LEARNED) != 0;
  return entry;
}

void ParsePortVlans(const nlmsghdr* header, std::vector<PortVlanEntry>* out) {
  if (header->nlmsg_type != RTM_NEWLINK || !WellFormed(header, sizeof(ifinfomsg))) return;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(header));
  auto tb = ParseMessage<IFLA_MAX + 1>(header, sizeof(ifinfomsg));
  if (tb[IFLA_AF_SPEC] == nullptr) return;
  struct Context {
    int ifindex;
    std::vector<PortVlanEntry>* out;
    uint16_t range_begin = 0;
  } context{ifi->ifi_index, out};
  mnl_attr_parse_nested(
      tb[IFLA_AF_SPEC],
      [](const nlattr* attr, void* data) -> int {
        auto* c = static_cast<Context*>(data);
        if (mnl_attr_get_type(attr) != IFLA_BRIDGE_VLAN_INFO ||
            mnl_attr_get_payload_len(attr) < sizeof(bridge_vlan_info))
          return MNL_CB_OK;
        bridge_vlan_info info;
        std::memcpy(&info, mnl_attr_get_payload(attr), sizeof info);
        // The kernel's VLAN ids are 1..4094. Anything else is malformed, and
        // a range to 65535 would be expanded into entries no bridge has.
        if (info.vid < 1 || info.vid > 4094) {
          c->range_begin = 0;
          return MNL_CB_OK;
        }
        if (info.flags & BRIDGE_VLAN_INFO_RANGE_BEGIN) {
          c->range_begin = info.vid;
          return MNL_CB_OK;
        }
        uint16_t first = info.vid;
        if ((info.flags & BRIDGE_VLAN_INFO_RANGE_END) && c->range_begin != 0 &&
            c->range_begin <= info.vid)
          first = c->range_begin;
        c->range_begin = 0;
        for (uint32_t vid = first; vid <= info.vid; ++vid) {
          PortVlanEntry entry;
          entry.port_ifindex = c->ifindex;
          entry.vid = static_cast<uint16_t>(vid);
          entry.pvid = (info.flags & BRIDGE_VLAN_INFO_PVID) != 0;
          entry.untagged = (info.flags & BRIDGE_VLAN_INFO_UNTAGGED) != 0;
          c->out->push_back(entry);
        }
        return MNL_CB_OK;
      },
      &context);
}

}  // namespace vfabric::netd::nl
