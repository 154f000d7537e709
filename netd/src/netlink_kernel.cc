// The real Kernel: rtnetlink requests in the caller's network namespace.
//
// Who builds which message (all are sent by nl::NlSocket over libmnl, which
// keeps the kernel's errno and extended-ack text; see nl_socket.h):
//   libnl-route  RTM_NEWLINK veth (rtnl_link_veth_alloc + build_add_request),
//                RTM_NEWLINK changes: IFLA_IFALIAS, ifi_flags IFF_UP,
//                IFLA_MASTER, IFLA_NET_NS_FD (rtnl_link_build_change_request),
//                RTM_DELLINK (rtnl_link_build_delete_request),
//                RTM_NEWNEIGH / RTM_DELNEIGH AF_BRIDGE (rtnl_neigh_build_*).
//   libmnl       RTM_NEWLINK bridge with IFLA_INFO_DATA IFLA_BR_* (libnl 3.7
//                has no API for STP/timer settings), RTM_SETLINK AF_BRIDGE
//                IFLA_PROTINFO (brport settings: libnl lacks ISOLATED and has
//                set-only flag semantics), RTM_SETLINK/RTM_DELLINK AF_BRIDGE
//                IFLA_AF_SPEC (port VLANs), and every dump (RTM_GETLINK
//                AF_UNSPEC, AF_BRIDGE+RTEXT_FILTER_BRVLAN; RTM_GETNEIGH
//                AF_BRIDGE), parsed in netlink_parse.cc: libnl parses neither
//                IFLA_TUN_* nor the bridge's IFLA_BR_* read-only ids.
//   ioctl        taps (nl_tap.h).
//
// VLAN attributes: a kernel without CONFIG_BRIDGE_VLAN_FILTERING refuses
// IFLA_BR_VLAN_FILTERING even as 0 (EOPNOTSUPP), which would fail the whole
// request. CreateBridge sends the VLAN attributes only when the settings ask
// for something other than the kernel's defaults (filtering on, or a default
// pvid other than 1). SetBridgeSettings always sends them (it may have to turn
// filtering off) and, if the kernel says EOPNOTSUPP while the settings are
// the defaults, repeats the request without them.
// clang-format off
#include <net/if.h>  // IFF_UP, IFNAMSIZ; before the linux headers libnl pulls in
// clang-format on
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include "nl_parse.h"
#include "nl_socket.h"
#include "nl_tap.h"
#include "nl_vxlan.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

// The first line of a sysfs file; "" when it cannot be read.
std::string ReadSysfsLine(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

uint64_t ReadSysfsNumber(const std::string& path) {
  const std::string text = ReadSysfsLine(path);
  return text.empty() ? 0 : std::strtoull(text.c_str(), nullptr, 10);
}

using nl::MessageBuffer;
using nl::NlMsgPtr;
using nl::NlObjectPtr;
using nl::NlSocket;

Status LibnlError(const std::string& what, int error) {
  return Status::Error(what + ": libnl: " + nl_geterror(error), EINVAL);
}

ifinfomsg* PutIfinfo(nlmsghdr* header, uint8_t family, int ifindex) {
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifinfomsg)));
  ifi->ifi_family = family;
  ifi->ifi_index = ifindex;
  return ifi;
}

void PutBridgeData(nlmsghdr* header, const BridgeSettings& s, bool with_vlan) {
  nlattr* linkinfo = mnl_attr_nest_start(header, IFLA_LINKINFO);
  mnl_attr_put_strz(header, IFLA_INFO_KIND, "bridge");
  nlattr* data = mnl_attr_nest_start(header, IFLA_INFO_DATA);
  // The kernel applies these in its own order (timers, STP, priority) and
  // range-checks the timers against the STP state it ends with.
  mnl_attr_put_u32(header, IFLA_BR_FORWARD_DELAY, s.forward_delay_cs);
  mnl_attr_put_u32(header, IFLA_BR_HELLO_TIME, s.hello_time_cs);
  mnl_attr_put_u32(header, IFLA_BR_MAX_AGE, s.max_age_cs);
  mnl_attr_put_u32(header, IFLA_BR_AGEING_TIME, s.ageing_time_cs);
  mnl_attr_put_u32(header, IFLA_BR_STP_STATE, s.stp_enabled ? 1 : 0);
  mnl_attr_put_u16(header, IFLA_BR_PRIORITY, static_cast<uint16_t>(s.priority));
  if (with_vlan) {
    mnl_attr_put_u8(header, IFLA_BR_VLAN_FILTERING, s.vlan_filtering ? 1 : 0);
    mnl_attr_put_u16(header, IFLA_BR_VLAN_DEFAULT_PVID, s.default_pvid);
  }
  mnl_attr_nest_end(header, data);
  mnl_attr_nest_end(header, linkinfo);
}

bool VlanSettingsAreDefault(const BridgeSettings& s) {
  return !s.vlan_filtering && s.default_pvid == 1;
}

std::string RandomHex4() {
  std::random_device device;
  char text[8];
  std::snprintf(text, sizeof text, "%04x", static_cast<unsigned>(device() & 0xffff));
  return text;
}

class NetlinkKernel final : public Kernel {
 public:
  Result<LinkCounters> ReadLinkCounters(const std::string& name) override {
    const std::string dir = "/sys/class/net/" + name + "/statistics/";
    if (access(("/sys/class/net/" + name).c_str(), F_OK) != 0)
      return Status::FromErrno("link " + name, errno);
    LinkCounters c;
    c.rx_packets = ReadSysfsNumber(dir + "rx_packets");
    c.rx_bytes = ReadSysfsNumber(dir + "rx_bytes");
    c.tx_packets = ReadSysfsNumber(dir + "tx_packets");
    c.tx_bytes = ReadSysfsNumber(dir + "tx_bytes");
    c.rx_dropped = ReadSysfsNumber(dir + "rx_dropped");
    c.tx_dropped = ReadSysfsNumber(dir + "tx_dropped");
    return c;
  }

  std::string BridgeRootIdFromSysfs(const std::string& bridge) override {
    return ReadSysfsLine("/sys/class/net/" + bridge + "/bridge/root_id");
  }

  explicit NetlinkKernel(NlSocket socket) : socket_(std::move(socket)) {}

  // Link changes go out in netlink batches (NlSocket::TransactBatch), each
  // request naming its link by IFLA_IFNAME (no lookup first); taps are made
  // transient (TUNSETIFF, one fd each), their aliases set in a batch, and
  // made persistent once the alias took (the order CreateTap keeps: a crash
  // leaves no tap or a marked one). Other operations run one by one, after
  // what is pending. See Kernel::ApplyBatch for what `results` means.
  void ApplyBatch(const Operation* ops, size_t count, std::vector<Status>* results) override {
    results->clear();
    results->reserve(count);
    LinkBatch batch;
    // Masters by name, looked up once per call (no operation here creates
    // a bridge but one by one, after flushing; any of those clears this).
    std::map<std::string, int> masters;
    for (size_t i = 0; i < count; ++i) {
      const Operation& op = ops[i];
      results->push_back(Status::Ok());
      // Deletions happen when the batch is flushed: whatever follows them
      // (a tap made again under its name) waits for that.
      if (!batch.deletes.empty() && op.kind != Operation::Kind::kDeleteLink &&
          !FlushBatch(ops, &batch, results)) {
        results->pop_back();
        return;
      }
      Status built = Batchable(op) ? AddToBatch(op, i, &batch, &masters) : Status::Ok();
      if (!built.ok()) {
        (*results)[i] = std::move(built);
        FlushBatch(ops, &batch, results);
        return;
      }
      // "set X up" right after "attach X to B" (how the planner orders a
      // port) goes in the same request: one do_setlink and one
      // notification instead of two (ip's `link set X master B up`). The
      // kernel applies the flags first, then the master; FlushBatch sorts a
      // failure out between the two.
      if (op.kind == Operation::Kind::kSetMaster && !op.master.empty() && i + 1 < count &&
          ops[i + 1].kind == Operation::Kind::kSetLinkUp && ops[i + 1].up &&
          ops[i + 1].object == op.object) {
        auto* header = reinterpret_cast<nlmsghdr*>(batch.messages.back().data());
        auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload(header));
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = IFF_UP;
        batch.also.back() = ++i;
        results->push_back(Status::Ok());
      }
      if (!Batchable(op)) {
        if (!FlushBatch(ops, &batch, results)) return;
        masters.clear();
        (*results)[i] = Execute(*this, op);
        if (!(*results)[i].ok()) return;
        continue;
      }
      if (batch.requests.size() >= NlSocket::kMaxBatch || batch.bytes >= NlSocket::kMaxBatchBytes)
        if (!FlushBatch(ops, &batch, results)) return;
    }
    FlushBatch(ops, &batch, results);
  }

  Result<std::vector<LinkInfo>> ListLinks() override {
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETLINK, 0);
    PutIfinfo(header, AF_UNSPEC, 0);
    // Counters come from sysfs (ReadLinkCounters): without IFLA_STATS* a dump
    // of 10,000 links is a third of the bytes to make and read.
    mnl_attr_put_u32(header, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    std::vector<LinkInfo> links;
    nl::DumpCallback callback = [&links](const nlmsghdr* message) {
      LinkInfo link;
      if (nl::ParseLink(message, &link)) links.push_back(std::move(link));
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(DumpConsistent(header, "list links", callback, [&] { links.clear(); }));
    return links;
  }

  Result<std::vector<LinkInfo>> ListLinksNamed(const std::vector<std::string>& names) override {
    std::vector<LinkInfo> links;
    nl::DumpCallback callback = [&links](const nlmsghdr* message) {
      LinkInfo link;
      if (nl::ParseLink(message, &link)) links.push_back(std::move(link));
      return Status::Ok();
    };
    MessageBuffer buffer;
    for (const std::string& name : names) {
      nlmsghdr* header = buffer.Start(RTM_GETLINK, 0);
      PutIfinfo(header, AF_UNSPEC, 0);
      mnl_attr_put_strz(header, IFLA_IFNAME, name.c_str());
      mnl_attr_put_u32(header, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
      Status status = socket_.Transact(header, "read link " + name, &callback);
      // Not there: what the plan makes (or waits for).
      if (!status.ok() && status.error_number() != ENODEV) return status;
    }
    return links;
  }

  Result<std::vector<FdbEntry>> ListFdb() override {
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETNEIGH, 0);
    auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ndmsg)));
    ndm->ndm_family = AF_BRIDGE;
    std::vector<FdbEntry> entries;
    nl::DumpCallback callback = [&entries](const nlmsghdr* message) {
      if (auto entry = nl::ParseFdb(message)) entries.push_back(*entry);
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(DumpConsistent(header, "list fdb", callback, [&] { entries.clear(); }));
    return entries;
  }

  Result<std::vector<FdbEntry>> ListBridgeFdb(int bridge_ifindex) override {
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETNEIGH, 0);
    // What `bridge fdb show br NAME` sends: an ifinfomsg with IFLA_MASTER
    // (rtnl_fdb_dump's filter by bridge).
    PutIfinfo(header, AF_BRIDGE, 0);
    mnl_attr_put_u32(header, IFLA_MASTER, static_cast<uint32_t>(bridge_ifindex));
    std::vector<FdbEntry> entries;
    nl::DumpCallback callback = [&entries](const nlmsghdr* message) {
      if (auto entry = nl::ParseFdb(message)) entries.push_back(*entry);
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(DumpConsistent(header,
                                      "list fdb of bridge " + std::to_string(bridge_ifindex),
                                      callback, [&] { entries.clear(); }));
    return entries;
  }

  Result<std::vector<PortVlanEntry>> ListPortVlans() override {
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETLINK, 0);
    PutIfinfo(header, AF_BRIDGE, 0);
    mnl_attr_put_u32(header, IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN);
    std::vector<PortVlanEntry> vlans;
    nl::DumpCallback callback = [&vlans](const nlmsghdr* message) {
      nl::ParsePortVlans(message, &vlans);
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(DumpConsistent(header, "list port vlans", callback, [&] { vlans.clear(); }));
    return vlans;
  }

  Result<KernelFeatures> ProbeFeatures() override {
    KernelFeatures features;
    features.tun = ::access("/dev/net/tun", R_OK | W_OK) == 0;
    if (features.tun) {
      int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
      features.tun = fd >= 0;
      if (fd >= 0) ::close(fd);
    }
    // Throwaway links under random names, deleted again; a name that happens
    // to exist is retried with another.
    constexpr int kTries = 4;
    Status veth;
    for (int i = 0; i < kTries; ++i) {
      const std::string name = "vfprobe-" + RandomHex4();
      veth = CreateVeth(name, name + "p", "");
      if (veth.ok()) (void)DeleteLink(name);  // deleting one end takes both
      if (veth.error_number() != EEXIST) break;
    }
    features.veth = veth.ok();
    BridgeSettings settings;
    std::string probe;
    Status created;
    for (int i = 0; i < kTries; ++i) {
      probe = "vfprobe-" + RandomHex4();
      created = CreateBridge(probe, settings, "");
      if (created.error_number() != EEXIST) break;
    }
    if (!created.ok()) {
      features.bridge_vlan_filtering_reason = "bridges unsupported: " + created.message();
      return features;
    }
    features.bridge = true;
    settings.vlan_filtering = true;
    Status filtering = SetBridgeSettingsOnce(probe, settings, /*with_vlan=*/true,
                                             "IFLA_BR_VLAN_FILTERING=1 on a bridge");
    if (!filtering.ok()) {
      features.bridge_vlan_filtering_reason = filtering.message();
      if (filtering.error_number() == EOPNOTSUPP)
        features.bridge_vlan_filtering_reason += " (kernel without CONFIG_BRIDGE_VLAN_FILTERING)";
    } else {
      // Accepted; believe it only if it reads back.
      auto links = ListLinks();
      bool on = false;
      if (links.ok()) {
        for (const LinkInfo& link : *links)
          if (link.name == probe && link.bridge) on = link.bridge->settings.vlan_filtering;
      }
      features.bridge_vlan_filtering = on;
      if (!on) {
        features.bridge_vlan_filtering_reason =
            links.ok() ? "IFLA_BR_VLAN_FILTERING=1 accepted but reads back as 0"
                       : links.status().message();
      }
    }
    (void)DeleteLink(probe);
    return features;
  }

  Status CreateBridge(const std::string& name, const BridgeSettings& settings,
                      const std::string& alias) override {
    const std::string what = "create bridge " + name;
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    PutIfinfo(header, AF_UNSPEC, 0);
    mnl_attr_put_strz(header, IFLA_IFNAME, name.c_str());
    PutBridgeData(header, settings, !VlanSettingsAreDefault(settings));
    VF_RETURN_IF_ERROR(socket_.Transact(header, what));
    return AliasOrUndo(name, alias, what);
  }

  Status CreateVxlan(const std::string& name, const VxlanSettings& settings,
                     const std::string& alias) override {
    const std::string what = "create vxlan " + name;
    VF_RETURN_IF_ERROR(nl::CreateVxlanLink(socket_, name, settings, what));
    return AliasOrUndo(name, alias, what);
  }

  Result<std::vector<VxlanFloodEntry>> ListVxlanFlood() override {
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETNEIGH, 0);
    auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ndmsg)));
    ndm->ndm_family = AF_BRIDGE;
    std::vector<VxlanFloodEntry> entries;
    nl::DumpCallback callback = [&entries](const nlmsghdr* message) {
      if (auto entry = nl::ParseVxlanFlood(message)) entries.push_back(*entry);
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(
        DumpConsistent(header, "list vxlan flood entries", callback, [&] { entries.clear(); }));
    return entries;
  }

  Status AddVxlanFlood(const std::string& device, const IpPrefix& dst) override {
    const std::string what = "add flood entry " + dst.AddressText() + " on " + device;
    auto index = IfIndex(device, what);
    if (!index.ok()) return index.status();
    return nl::VxlanFlood(socket_, true, *index, dst, what);
  }

  Status DeleteVxlanFlood(const std::string& device, const IpPrefix& dst) override {
    const std::string what = "delete flood entry " + dst.AddressText() + " on " + device;
    auto index = IfIndex(device, what);
    if (!index.ok()) return index.status();
    return nl::VxlanFlood(socket_, false, *index, dst, what);
  }

  Status SetBridgeSettings(const std::string& name, const BridgeSettings& settings) override {
    const std::string what = "set bridge settings " + name;
    Status status = SetBridgeSettingsOnce(name, settings, /*with_vlan=*/true, what);
    if (status.error_number() == EOPNOTSUPP && VlanSettingsAreDefault(settings))
      status = SetBridgeSettingsOnce(name, settings, /*with_vlan=*/false, what);
    return status;
  }

  Status CreateTap(const std::string& name, const TapSettings& settings,
                   const std::string& alias) override {
    // The alias goes on while the tap still dies with our fd, before
    // TUNSETPERSIST: a netd killed at any point leaves either no tap or a
    // marked one, never an unmarked tap that the next netd must refuse
    // (netd/DESIGN-crash.md).
    auto fd = nl::CreateTransientTap(name, settings);
    if (!fd.ok()) return fd.status();
    if (!alias.empty()) {
      Status aliased = SetAlias(name, alias);
      if (!aliased.ok()) return aliased.WithContext("create tap " + name);
    }
    return nl::MakeTapPersistent(*fd, name);
  }

  Status CreateVeth(const std::string& name, const std::string& peer,
                    const std::string& alias) override {
    const std::string what = "create veth " + name + " peer " + peer;
    NlObjectPtr<rtnl_link> link(rtnl_link_veth_alloc());
    if (!link) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_link_set_name(link.get(), name.c_str());
    {
      NlObjectPtr<rtnl_link> peer_link(rtnl_link_veth_get_peer(link.get()));
      rtnl_link_set_name(peer_link.get(), peer.c_str());
    }
    nl_msg* raw = nullptr;
    int error = rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &raw);
    if (error < 0) return LibnlError(what, error);
    NlMsgPtr msg(raw);
    VF_RETURN_IF_ERROR(socket_.Transact(msg.get(), what));
    VF_RETURN_IF_ERROR(AliasOrUndo(name, alias, what));
    return AliasOrUndo(peer, alias, what, /*undo_name=*/name);
  }

  Status DeleteLink(const std::string& name) override {
    const std::string what = "delete link " + name;
    NlObjectPtr<rtnl_link> link(rtnl_link_alloc());
    if (!link) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_link_set_name(link.get(), name.c_str());
    nl_msg* raw = nullptr;
    int error = rtnl_link_build_delete_request(link.get(), &raw);
    if (error < 0) return LibnlError(what, error);
    NlMsgPtr msg(raw);
    Status status = socket_.Transact(msg.get(), what);
    if (status.error_number() == EOPNOTSUPP) {
      // Kernels before 4.x refused RTM_DELLINK on tun devices: unpersist instead.
      Status cleared = nl::ClearTapPersist(name, /*multi_queue=*/false);
      if (cleared.error_number() == EINVAL) cleared = nl::ClearTapPersist(name, true);
      if (cleared.ok()) return Status::Ok();
    }
    return status;
  }

  Status SetAlias(const std::string& name, const std::string& alias) override {
    const std::string what = "set alias " + name;
    NlObjectPtr<rtnl_link> changes(rtnl_link_alloc());
    if (!changes) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_link_set_ifalias(changes.get(), alias.c_str());
    return Change(name, changes.get(), what);
  }

  Status SetLinkUp(const std::string& name, bool up) override {
    const std::string what = std::string("set link ") + (up ? "up " : "down ") + name;
    NlObjectPtr<rtnl_link> changes(rtnl_link_alloc());
    if (!changes) return Status::Error(what + ": out of memory", ENOMEM);
    if (up) {
      rtnl_link_set_flags(changes.get(), IFF_UP);
    } else {
      rtnl_link_unset_flags(changes.get(), IFF_UP);
    }
    return Change(name, changes.get(), what);
  }

  Status SetMaster(const std::string& name, const std::string& bridge) override {
    const std::string what =
        bridge.empty() ? "set nomaster " + name : "set master " + name + " -> " + bridge;
    int master = 0;
    if (!bridge.empty()) {
      auto index = IfIndex(bridge, what);
      if (!index.ok()) return index.status();
      master = *index;
    }
    NlObjectPtr<rtnl_link> changes(rtnl_link_alloc());
    if (!changes) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_link_set_master(changes.get(), master);
    return Change(name, changes.get(), what);
  }

  Status SetBridgePortSettings(const std::string& name, const BridgePortSettings& s) override {
    const std::string what = "set bridge port settings " + name;
    if (s == BridgePortSettings{}) return Status::Ok();
    auto index = IfIndex(name, what);
    if (!index.ok()) return index.status();
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_SETLINK, 0);
    PutIfinfo(header, AF_BRIDGE, *index);
    nlattr* protinfo = mnl_attr_nest_start(header, IFLA_PROTINFO);  // sets NLA_F_NESTED
    if (s.cost) mnl_attr_put_u32(header, IFLA_BRPORT_COST, *s.cost);
    if (s.priority)
      mnl_attr_put_u16(header, IFLA_BRPORT_PRIORITY, static_cast<uint16_t>(*s.priority));
    auto put_flag = [header](uint16_t type, const std::optional<bool>& value) {
      if (value) mnl_attr_put_u8(header, type, *value ? 1 : 0);
    };
    put_flag(IFLA_BRPORT_LEARNING, s.learning);
    put_flag(IFLA_BRPORT_UNICAST_FLOOD, s.flood);
    put_flag(IFLA_BRPORT_MODE, s.hairpin);
    put_flag(IFLA_BRPORT_ISOLATED, s.isolated);
    put_flag(IFLA_BRPORT_GUARD, s.bpdu_guard);
    put_flag(IFLA_BRPORT_PROTECT, s.root_block);
    mnl_attr_nest_end(header, protinfo);
    return socket_.Transact(header, what);
  }

  Status MoveToNetns(const std::string& name, const std::string& netns) override {
    const std::string what = "move " + name + " to netns " + netns;
    if (netns.empty() || netns.find('/') != std::string::npos || netns == "." || netns == "..")
      return Status::Error(what + ": Invalid argument (bad namespace name)", EINVAL);
    const std::string path = "/run/netns/" + netns;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Status::FromErrno(what + ": open " + path, errno);
    NlObjectPtr<rtnl_link> changes(rtnl_link_alloc());
    if (!changes) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_link_set_ns_fd(changes.get(), fd.get());
    return Change(name, changes.get(), what);
  }

  Status AddStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) override {
    return Fdb(true, port, mac, vlan);
  }

  Status DeleteStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) override {
    return Fdb(false, port, mac, vlan);
  }

  Status SetLinkMac(const std::string& name, const MacAddress& mac) override {
    const std::string what = "set address of " + name + " to " + mac.ToString();
    auto index = IfIndex(name, what);
    if (!index.ok()) return index.status();
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_NEWLINK, 0);
    PutIfinfo(header, AF_UNSPEC, *index);
    mnl_attr_put(header, IFLA_ADDRESS, mac.bytes.size(), mac.bytes.data());
    return socket_.Transact(header, what);
  }

  Status SetMtu(const std::string& name, uint32_t mtu) override {
    const std::string what = "set mtu of " + name + " to " + std::to_string(mtu);
    auto index = IfIndex(name, what);
    if (!index.ok()) return index.status();
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_NEWLINK, 0);
    PutIfinfo(header, AF_UNSPEC, *index);
    mnl_attr_put_u32(header, IFLA_MTU, mtu);
    return socket_.Transact(header, what);
  }

  Result<std::vector<AddressEntry>> ListAddresses() override {
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETADDR, 0);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;
    std::vector<AddressEntry> entries;
    nl::DumpCallback callback = [&entries](const nlmsghdr* message) {
      if (message->nlmsg_type != RTM_NEWADDR) return Status::Ok();
      const auto* msg = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(message));
      if (msg->ifa_family != AF_INET && msg->ifa_family != AF_INET6) return Status::Ok();
      const size_t size = msg->ifa_family == AF_INET ? 4 : 16;
      // IPv4: IFA_LOCAL is the address itself (IFA_ADDRESS the peer's on a
      // point-to-point link); IPv6 has IFA_ADDRESS alone.
      std::array<const nlattr*, IFA_MAX + 1> attrs{};
      mnl_attr_parse(
          message, sizeof(ifaddrmsg),
          [](const nlattr* attr, void* data) {
            auto* table = static_cast<std::array<const nlattr*, IFA_MAX + 1>*>(data);
            if (mnl_attr_get_type(attr) <= IFA_MAX) (*table)[mnl_attr_get_type(attr)] = attr;
            return MNL_CB_OK;
          },
          &attrs);
      auto sized = [size](const nlattr* attr) {
        return attr != nullptr && mnl_attr_get_payload_len(attr) == size ? attr : nullptr;
      };
      const nlattr* chosen =
          sized(attrs[IFA_LOCAL]) ? sized(attrs[IFA_LOCAL]) : sized(attrs[IFA_ADDRESS]);
      if (chosen == nullptr) return Status::Ok();
      AddressEntry entry;
      entry.ifindex = static_cast<int>(msg->ifa_index);
      entry.prefix.family = msg->ifa_family;
      entry.prefix.length = msg->ifa_prefixlen;
      std::memcpy(entry.prefix.bytes.data(), mnl_attr_get_payload(chosen), size);
      entries.push_back(entry);
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(
        DumpConsistent(header, "list addresses", callback, [&] { entries.clear(); }));
    return entries;
  }

  Status AddAddress(const std::string& name, const IpPrefix& prefix) override {
    return Address(RTM_NEWADDR, "add address " + prefix.ToString() + " to " + name, name, prefix);
  }

  Status DeleteAddress(const std::string& name, const IpPrefix& prefix) override {
    return Address(RTM_DELADDR, "delete address " + prefix.ToString() + " from " + name, name,
                   prefix);
  }

  Status AddPortVlan(const std::string& port, uint16_t vid, bool pvid, bool untagged) override {
    uint16_t flags = 0;
    if (pvid) flags |= BRIDGE_VLAN_INFO_PVID;
    if (untagged) flags |= BRIDGE_VLAN_INFO_UNTAGGED;
    return PortVlan(RTM_SETLINK, "add vlan " + std::to_string(vid) + " on " + port, port, vid,
                    flags);
  }

  Status DeletePortVlan(const std::string& port, uint16_t vid) override {
    return PortVlan(RTM_DELLINK, "delete vlan " + std::to_string(vid) + " on " + port, port, vid,
                    0);
  }

 private:
  // Requests waiting to go out in one TransactBatch, each with the index of
  // the operation it serves; and the transient taps whose alias is among
  // them (made persistent once it took).
  struct LinkBatch {
    std::vector<std::vector<char>> messages;
    std::vector<const nlmsghdr*> requests;
    std::vector<std::string> whats;
    std::vector<size_t> op_index;
    // The second operation a request carries (kNone: none): "set X up"
    // rides on "attach X to B" (see ApplyBatch).
    std::vector<size_t> also;
    static constexpr size_t kNone = static_cast<size_t>(-1);
    size_t bytes = 0;
    struct PendingTap {
      size_t op_index;
      std::string name;
      UniqueFd fd;
    };
    std::vector<PendingTap> taps;
    // Deletions: each link is first moved into `delete_group` (a request
    // of the batch), then all go in one RTM_DELLINK of that group.
    std::vector<size_t> deletes;
    uint32_t delete_group = 0;
  };

  static bool Batchable(const Operation& op) {
    switch (op.kind) {
      case Operation::Kind::kCreateTap:
      case Operation::Kind::kDeleteLink:
      case Operation::Kind::kSetAlias:
      case Operation::Kind::kSetMaster:
      case Operation::Kind::kSetLinkUp:
      case Operation::Kind::kSetLinkMac:
      case Operation::Kind::kSetMtu:
        return true;
      default:
        return false;
    }
  }

  // An RTM_NEWLINK (or RTM_DELLINK) of the link named `name`, by name.
  static nlmsghdr* StartByName(std::vector<char>* message, uint16_t type, const std::string& name) {
    message->assign(1024, 0);  // a name and an alias (< 256 bytes) at most
    nlmsghdr* header = mnl_nlmsg_put_header(message->data());
    header->nlmsg_type = type;
    PutIfinfo(header, AF_UNSPEC, 0);
    mnl_attr_put_strz(header, IFLA_IFNAME, name.c_str());
    return header;
  }

  static void Queue(LinkBatch* batch, std::vector<char> message, std::string what, size_t index) {
    const auto* header = reinterpret_cast<const nlmsghdr*>(message.data());
    batch->bytes += NLMSG_ALIGN(header->nlmsg_len);
    batch->messages.push_back(std::move(message));
    batch->requests.push_back(reinterpret_cast<const nlmsghdr*>(batch->messages.back().data()));
    batch->whats.push_back(std::move(what));
    batch->op_index.push_back(index);
    batch->also.push_back(LinkBatch::kNone);
  }

  // Builds the request(s) of `op` into `batch`; an error when it cannot be
  // built or (a tap) made.
  Status AddToBatch(const Operation& op, size_t index, LinkBatch* batch,
                    std::map<std::string, int>* masters) {
    const std::string& name = op.object;
    if (name.empty() || name.size() >= IFNAMSIZ)
      return nl::ErrorStatus("link " + name,
                             op.kind == Operation::Kind::kCreateTap ? EINVAL : ENODEV);
    std::vector<char> message;
    switch (op.kind) {
      case Operation::Kind::kCreateTap: {
        auto fd = nl::CreateTransientTap(name, op.tap);
        if (!fd.ok()) return fd.status();
        if (!op.alias.empty()) {
          nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
          mnl_attr_put_str(header, IFLA_IFALIAS, op.alias.c_str());
          Queue(batch, std::move(message), "create tap " + name + ": set alias " + name, index);
        }
        batch->taps.push_back({index, name, std::move(fd).value()});
        return Status::Ok();
      }
      case Operation::Kind::kDeleteLink: {
        if (batch->deletes.empty()) batch->delete_group = DeleteGroup();
        nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
        mnl_attr_put_u32(header, IFLA_GROUP, batch->delete_group);
        Queue(batch, std::move(message), "delete link " + name, index);
        batch->deletes.push_back(index);
        return Status::Ok();
      }
      case Operation::Kind::kSetAlias: {
        nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
        mnl_attr_put_str(header, IFLA_IFALIAS, op.alias.c_str());
        Queue(batch, std::move(message), "set alias " + name, index);
        return Status::Ok();
      }
      case Operation::Kind::kSetLinkUp: {
        nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
        auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload(header));
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = op.up ? IFF_UP : 0;
        Queue(batch, std::move(message),
              std::string("set link ") + (op.up ? "up " : "down ") + name, index);
        return Status::Ok();
      }
      case Operation::Kind::kSetMaster: {
        const std::string what =
            op.master.empty() ? "set nomaster " + name : "set master " + name + " -> " + op.master;
        int master = 0;
        if (!op.master.empty()) {
          auto found = masters->find(op.master);
          if (found == masters->end()) {
            auto looked_up = IfIndex(op.master, what);
            if (!looked_up.ok()) return looked_up.status();
            found = masters->emplace(op.master, *looked_up).first;
          }
          master = found->second;
        }
        nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
        mnl_attr_put_u32(header, IFLA_MASTER, static_cast<uint32_t>(master));
        Queue(batch, std::move(message), what, index);
        return Status::Ok();
      }
      case Operation::Kind::kSetLinkMac: {
        nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
        mnl_attr_put(header, IFLA_ADDRESS, op.mac.bytes.size(), op.mac.bytes.data());
        Queue(batch, std::move(message), "set address of " + name + " to " + op.mac.ToString(),
              index);
        return Status::Ok();
      }
      case Operation::Kind::kSetMtu: {
        nlmsghdr* header = StartByName(&message, RTM_NEWLINK, name);
        mnl_attr_put_u32(header, IFLA_MTU, op.mtu);
        Queue(batch, std::move(message), "set mtu of " + name + " to " + std::to_string(op.mtu),
              index);
        return Status::Ok();
      }
      default:
        return Status::Error("not a batched operation", EINVAL);
    }
  }

  // Sends what `batch` holds, puts each ack into its operation's result
  // (the first error of an operation wins), makes the taps whose alias took
  // persistent, and empties the batch. False when any of its operations
  // failed.
  bool FlushBatch(const Operation* ops, LinkBatch* batch, std::vector<Status>* results) {
    std::vector<Status> statuses = socket_.TransactBatch(batch->requests, batch->whats);
    bool ok = true;
    for (size_t k = 0; k < statuses.size(); ++k) {
      Status& result = (*results)[batch->op_index[k]];
      if (statuses[k].ok() || !result.ok()) continue;
      ok = false;
      if (batch->also[k] != LinkBatch::kNone) {
        SortOutAttachAndUp(ops, batch->op_index[k], batch->also[k], std::move(statuses[k]),
                           results);
        continue;
      }
      result = std::move(statuses[k]);
    }
    ok = DeleteGrouped(ops, *batch, results) && ok;
    for (LinkBatch::PendingTap& tap : batch->taps) {
      Status& result = (*results)[tap.op_index];
      if (result.ok()) result = nl::MakeTapPersistent(tap.fd, tap.name);
      // A tap whose alias failed dies with its fd (closed here), unmarked.
      ok = ok && result.ok();
    }
    batch->messages.clear();
    batch->requests.clear();
    batch->whats.clear();
    batch->op_index.clear();
    batch->also.clear();
    batch->taps.clear();
    batch->deletes.clear();
    batch->bytes = 0;
    return ok;
  }

  // An "attach X to B" + "set X up" request failed: the kernel set the
  // flags first and stopped at the first error. X up: the up took, the
  // attach failed. X down: the up failed before the attach was tried, so
  // each runs again on its own, in the plan's order, for its own status.
  void SortOutAttachAndUp(const Operation* ops, size_t attach, size_t up, Status error,
                          std::vector<Status>* results) {
    const Operation& op = ops[attach];
    auto link = GetLink(op.object, "set master " + op.object + " -> " + op.master);
    if (link.ok() && link->admin_up) {
      (*results)[attach] = std::move(error);
      return;
    }
    (*results)[attach] = SetMaster(op.object, op.master);
    (*results)[up] = (*results)[attach].ok()
                         ? SetLinkUp(op.object, true)
                         : Status::Error("set link up " + op.object + ": not run", ECANCELED);
  }

  // A group no link has: the kernel numbers groups 0.. and links start in
  // 0; netd never sets one. Random in the upper half, so that two netds
  // (in two namespaces, or one after a crash) do not share it.
  static uint32_t DeleteGroup() {
    std::random_device device;
    return 0x80000000u | (static_cast<uint32_t>(device()) & 0x7fffffffu);
  }

  // Deletes the links of `batch->deletes` now in the batch's group in one
  // RTM_DELLINK of that group: the kernel unregisters them together, with
  // one wait for RCU instead of one per link (deleting 2,000 taps one by
  // one took 88 s; issue 21). If the kernel refuses it (a link kind that
  // cannot be deleted by group; before 4.x tun could not), each is
  // deleted by name. False when one could not be deleted.
  bool DeleteGrouped(const Operation* ops, const LinkBatch& batch, std::vector<Status>* results) {
    std::vector<size_t> moved;
    for (size_t index : batch.deletes)
      if ((*results)[index].ok()) moved.push_back(index);
    if (moved.empty()) return true;
    MessageBuffer buffer(256);
    nlmsghdr* header = buffer.Start(RTM_DELLINK, 0);
    PutIfinfo(header, AF_UNSPEC, 0);
    mnl_attr_put_u32(header, IFLA_GROUP, batch.delete_group);
    const std::string what = "delete links of group " + std::to_string(batch.delete_group);
    if (socket_.Transact(header, what).ok()) return true;
    bool ok = true;
    for (size_t index : moved) {
      Status& result = (*results)[index];
      result = DeleteLink(ops[index].object);
      if (result.ok()) continue;
      ok = false;
      // Out of the group again, as it was.
      MessageBuffer reset(256);
      nlmsghdr* change = reset.Start(RTM_NEWLINK, 0);
      PutIfinfo(change, AF_UNSPEC, 0);
      mnl_attr_put_strz(change, IFLA_IFNAME, ops[index].object.c_str());
      mnl_attr_put_u32(change, IFLA_GROUP, 0);
      (void)socket_.Transact(change, "reset group of " + ops[index].object);
    }
    return ok;
  }

  // Looks `name` up with RTM_GETLINK on this kernel's own socket, so names
  // resolve in the namespace the socket lives in (not the calling thread's).
  Result<LinkInfo> GetLink(const std::string& name, const std::string& what) {
    if (name.empty() || name.size() >= IFNAMSIZ) return nl::ErrorStatus(what, ENODEV);
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_GETLINK, 0);
    PutIfinfo(header, AF_UNSPEC, 0);
    mnl_attr_put_strz(header, IFLA_IFNAME, name.c_str());
    mnl_attr_put_u32(header, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    std::optional<LinkInfo> found;
    nl::DumpCallback callback = [&found](const nlmsghdr* message) {
      LinkInfo link;
      if (nl::ParseLink(message, &link)) found = std::move(link);
      return Status::Ok();
    };
    VF_RETURN_IF_ERROR(socket_.Transact(header, what, &callback));
    if (!found) return nl::ErrorStatus(what, ENODEV);
    return std::move(*found);
  }

  Result<int> IfIndex(const std::string& name, const std::string& what) {
    auto link = GetLink(name, what);
    if (!link.ok()) return link.status();
    return link->ifindex;
  }

  // Dumps until the kernel reports a consistent dump (a few tries), calling
  // `reset` before each retry.
  template <typename Reset>
  Status DumpConsistent(nlmsghdr* header, const std::string& what, const nl::DumpCallback& callback,
                        Reset reset) {
    constexpr int kTries = 5;
    Status status;
    for (int attempt = 0; attempt < kTries; ++attempt) {
      if (attempt > 0) reset();
      status = socket_.Dump(header, what, callback);
      if (status.error_number() != EAGAIN) return status;
    }
    return status;
  }

  Status SetBridgeSettingsOnce(const std::string& name, const BridgeSettings& settings,
                               bool with_vlan, const std::string& what) {
    auto index = IfIndex(name, what);
    if (!index.ok()) return index.status();
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(RTM_NEWLINK, 0);
    PutIfinfo(header, AF_UNSPEC, *index);
    PutBridgeData(header, settings, with_vlan);
    return socket_.Transact(header, what);
  }

  // Sets the alias of a link just created; on failure deletes `undo_name`
  // (default: `name`) so the create leaves nothing half-made.
  Status AliasOrUndo(const std::string& name, const std::string& alias, const std::string& what,
                     const std::string& undo_name = "") {
    if (alias.empty()) return Status::Ok();
    Status status = SetAlias(name, alias);
    if (status.ok()) return status;
    (void)DeleteLink(undo_name.empty() ? name : undo_name);
    return status.WithContext(what);
  }

  // An RTM_NEWLINK change (libnl-built) of link `name`.
  Status Change(const std::string& name, rtnl_link* changes, const std::string& what) {
    auto index = IfIndex(name, what);
    if (!index.ok()) return index.status();
    NlObjectPtr<rtnl_link> orig(rtnl_link_alloc());
    if (!orig) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_link_set_ifindex(orig.get(), *index);
    nl_msg* raw = nullptr;
    int error = rtnl_link_build_change_request(orig.get(), changes, 0, &raw);
    if (error < 0) return LibnlError(what, error);
    NlMsgPtr msg(raw);
    return socket_.Transact(msg.get(), what);
  }

  Status Fdb(bool add, const std::string& port, const MacAddress& mac, uint16_t vlan) {
    std::string what = std::string(add ? "add" : "delete") + " static fdb " + mac.ToString();
    if (vlan != 0) what += " vlan " + std::to_string(vlan);
    what += " on " + port;
    auto index = IfIndex(port, what);
    if (!index.ok()) return index.status();
    NlObjectPtr<rtnl_neigh> neigh(rtnl_neigh_alloc());
    if (!neigh) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_neigh_set_family(neigh.get(), AF_BRIDGE);
    rtnl_neigh_set_ifindex(neigh.get(), *index);
    nl_addr* lladdr = nl_addr_build(AF_LLC, mac.bytes.data(), mac.bytes.size());
    if (lladdr == nullptr) return Status::Error(what + ": out of memory", ENOMEM);
    rtnl_neigh_set_lladdr(neigh.get(), lladdr);
    nl_addr_put(lladdr);
    // iproute2's "static": NUD_NOARP alone. NUD_PERMANENT would make the
    // bridge treat the address as its own (local: delivered up, not forwarded).
    rtnl_neigh_set_state(neigh.get(), NUD_NOARP);
    rtnl_neigh_set_flags(neigh.get(), NTF_MASTER);
    if (vlan != 0) rtnl_neigh_set_vlan(neigh.get(), vlan);
    nl_msg* raw = nullptr;
    int error = add ? rtnl_neigh_build_add_request(neigh.get(), NLM_F_CREATE | NLM_F_REPLACE, &raw)
                    : rtnl_neigh_build_delete_request(neigh.get(), 0, &raw);
    if (error < 0) return LibnlError(what, error);
    NlMsgPtr msg(raw);
    return socket_.Transact(msg.get(), what);
  }

  // As `ip addr add|del ADDRESS/LENGTH dev NAME`: IFA_LOCAL and IFA_ADDRESS
  // both the address, scope global.
  Status Address(uint16_t type, const std::string& what, const std::string& name,
                 const IpPrefix& prefix) {
    if (prefix.family != AF_INET && prefix.family != AF_INET6)
      return Status::Error(what + ": Invalid argument (no address family)", EINVAL);
    auto index = IfIndex(name, what);
    if (!index.ok()) return index.status();
    MessageBuffer buffer;
    nlmsghdr* header =
        buffer.Start(type, type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : uint16_t{0});
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<uint8_t>(prefix.family);
    ifa->ifa_prefixlen = prefix.length;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<uint32_t>(*index);
    const size_t size = prefix.AddressSize();
    mnl_attr_put(header, IFA_LOCAL, size, prefix.bytes.data());
    mnl_attr_put(header, IFA_ADDRESS, size, prefix.bytes.data());
    return socket_.Transact(header, what);
  }

  Status PortVlan(uint16_t type, const std::string& what, const std::string& port, uint16_t vid,
                  uint16_t flags) {
    if (vid == 0 || vid >= 4095)
      return Status::Error(what + ": Invalid argument (vid must be 1-4094)", EINVAL);
    auto link = GetLink(port, what);
    if (!link.ok()) return link.status();
    // The bridge's own VLANs ("self") need BRIDGE_FLAGS_SELF.
    const bool is_bridge = link->kind == "bridge";
    MessageBuffer buffer;
    nlmsghdr* header = buffer.Start(type, 0);
    PutIfinfo(header, AF_BRIDGE, link->ifindex);
    nlattr* spec = mnl_attr_nest_start(header, IFLA_AF_SPEC);
    if (is_bridge) mnl_attr_put_u16(header, IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
    bridge_vlan_info info{};
    info.flags = flags;
    info.vid = vid;
    mnl_attr_put(header, IFLA_BRIDGE_VLAN_INFO, sizeof info, &info);
    mnl_attr_nest_end(header, spec);
    return socket_.Transact(header, what);
  }

  NlSocket socket_;
};

}  // namespace

Result<std::unique_ptr<Kernel>> NewNetlinkKernel() {
  auto socket = NlSocket::Open();
  if (!socket.ok()) return socket.status();
  return std::unique_ptr<Kernel>(std::make_unique<NetlinkKernel>(std::move(*socket)));
}

}  // namespace vfabric::netd
