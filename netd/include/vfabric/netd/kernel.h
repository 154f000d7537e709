// The kernel seam: everything netd asks of the host's network stack, as one
// narrow interface. NewNetlinkKernel() is the real one (libnl-3 route and
// libmnl over NETLINK_ROUTE, plus /dev/net/tun ioctls for taps); unit tests
// use a fake that keeps a KernelState in memory.
//
// Units are the kernel's: bridge timers and ageing in centiseconds, as in
// IFLA_BR_* (USER_HZ). Every failing call returns a Status that names the
// object and carries the kernel's reason, e.g.
//   "create bridge vfb-lab: File exists".
// Threading: one Kernel per thread; the object holds netlink sockets.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfabric/common/ip_prefix.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::netd {

// IFLA_BR_* settings netd manages. The kernel keeps the timers in jiffies,
// so a value that is no whole number of jiffies reads back rounded down
// (HZ=250: an odd number of centiseconds reads back one less).
struct BridgeSettings {
  bool stp_enabled = false;          // IFLA_BR_STP_STATE
  uint32_t priority = 32768;         // IFLA_BR_PRIORITY
  uint32_t hello_time_cs = 200;      // IFLA_BR_HELLO_TIME
  uint32_t forward_delay_cs = 1500;  // IFLA_BR_FORWARD_DELAY
  uint32_t max_age_cs = 2000;        // IFLA_BR_MAX_AGE
  uint32_t ageing_time_cs = 30000;   // IFLA_BR_AGEING_TIME
  bool vlan_filtering = false;       // IFLA_BR_VLAN_FILTERING
  uint16_t default_pvid = 1;         // IFLA_BR_VLAN_DEFAULT_PVID
  friend bool operator==(const BridgeSettings&, const BridgeSettings&) = default;
};

// IFLA_BRPORT_* settings; unset fields are left as the kernel has them.
struct BridgePortSettings {
  std::optional<uint32_t> cost;      // IFLA_BRPORT_COST
  std::optional<uint32_t> priority;  // IFLA_BRPORT_PRIORITY
  std::optional<bool> learning;      // IFLA_BRPORT_LEARNING
  std::optional<bool> flood;         // IFLA_BRPORT_UNICAST_FLOOD
  std::optional<bool> hairpin;       // IFLA_BRPORT_MODE
  std::optional<bool> isolated;      // IFLA_BRPORT_ISOLATED
  std::optional<bool> bpdu_guard;    // IFLA_BRPORT_GUARD (iproute2 "guard")
  std::optional<bool> root_block;    // IFLA_BRPORT_PROTECT (iproute2 "root_block")
  friend bool operator==(const BridgePortSettings&, const BridgePortSettings&) = default;
};

// What a bridge port reports (read only).
struct BridgePortStatus {
  BridgePortSettings settings;              // every field set when read back
  uint8_t state = 0;                        // IFLA_BRPORT_STATE: BR_STATE_DISABLED..BLOCKING
  std::optional<uint64_t> designated_root;  // packed bridge id (prio<<48 | mac)
  std::optional<uint64_t> designated_bridge;
  std::optional<uint16_t> designated_port;
  std::optional<uint32_t> designated_cost;
  std::optional<uint16_t> port_id;
  std::optional<uint16_t> port_no;
};

// Bridge status beyond its settings (read only).
struct BridgeStatus {
  BridgeSettings settings;
  std::optional<uint64_t> bridge_id;       // IFLA_BR_BRIDGE_ID packed
  std::optional<uint64_t> root_id;         // IFLA_BR_ROOT_ID packed
  std::optional<uint16_t> root_port;       // IFLA_BR_ROOT_PORT
  std::optional<uint32_t> root_path_cost;  // IFLA_BR_ROOT_PATH_COST
  std::optional<uint8_t> topology_change;
  std::optional<uint64_t> topology_change_timer_cs;
};

struct TapSettings {
  std::optional<uint32_t> owner;  // TUNSETOWNER; unset = none (-1)
  std::optional<uint32_t> group;  // TUNSETGROUP
  bool multi_queue = false;       // IFF_MULTI_QUEUE
  bool vnet_hdr = true;           // IFF_VNET_HDR
  friend bool operator==(const TapSettings&, const TapSettings&) = default;
};

struct TapStatus {
  TapSettings settings;
  bool is_tap = true;  // IFF_TAP (vs IFF_TUN)
  bool persistent = false;
};

// IFLA_VXLAN_* settings of a vxlan device netd makes (`ip link add NAME
// type vxlan id VNI local IP dstport PORT nolearning`).
struct VxlanSettings {
  uint32_t vni = 0;       // IFLA_VXLAN_ID
  IpPrefix local;         // IFLA_VXLAN_LOCAL / IFLA_VXLAN_LOCAL6 (full-length prefix)
  uint16_t port = 4789;   // IFLA_VXLAN_PORT (host order here)
  bool learning = false;  // IFLA_VXLAN_LEARNING
  friend bool operator==(const VxlanSettings&, const VxlanSettings&) = default;
};

// An all-zero-MAC entry of a vxlan device's own FDB (`bridge fdb append
// 00:00:00:00:00:00 dev VX dst IP`): frames to be flooded go to `dst` too.
struct VxlanFloodEntry {
  int ifindex = 0;  // the vxlan device
  IpPrefix dst;     // the remote VTEP (full-length prefix)
  friend bool operator==(const VxlanFloodEntry&, const VxlanFloodEntry&) = default;
};

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  std::string kind;        // IFLA_INFO_KIND: "bridge", "tun", "veth", "" for none
  std::string alias;       // IFLA_IFALIAS
  int master_ifindex = 0;  // IFLA_MASTER, 0 = none
  bool admin_up = false;   // IFF_UP
  bool oper_up = false;    // IFF_LOWER_UP / operstate
  uint32_t mtu = 0;
  MacAddress mac;
  int link_ifindex = 0;                // IFLA_LINK (veth: peer's ifindex when in the same netns)
  std::optional<BridgeStatus> bridge;  // kind == "bridge"
  std::optional<BridgePortStatus> brport;  // enslaved to a bridge
  std::optional<TapStatus> tap;            // kind == "tun"
  std::optional<VxlanSettings> vxlan;      // kind == "vxlan"
};

struct FdbEntry {
  int port_ifindex = 0;
  int bridge_ifindex = 0;
  MacAddress mac;
  uint16_t vlan = 0;       // 0: none
  bool is_static = false;  // NUD_NOARP (iproute2 "static")
  bool is_local = false;   // a bridge's or port's own address (NUD_PERMANENT)
  // NTF_EXT_LEARNED (iproute2 "extern_learn"): installed by a control plane
  // outside the bridge -- with an EVPN overlay, FRR's zebra puts the remote
  // MACs on the vxlan port this way. Neither learned here nor netd's: netd
  // never repairs, flushes or deletes such an entry.
  bool extern_learn = false;
  friend bool operator==(const FdbEntry&, const FdbEntry&) = default;
};

struct PortVlanEntry {
  int port_ifindex = 0;  // may be a bridge's own ifindex (self)
  uint16_t vid = 0;
  bool pvid = false;
  bool untagged = false;
  friend bool operator==(const PortVlanEntry&, const PortVlanEntry&) = default;
};

// An address on a link (RTM_GETADDR): `ip addr`'s "inet 10.0.0.1/24".
struct AddressEntry {
  int ifindex = 0;
  IpPrefix prefix;
  friend bool operator==(const AddressEntry&, const AddressEntry&) = default;
};

// A link's own counters (as /sys/class/net/NAME/statistics has them).
struct LinkCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t rx_dropped = 0;
  uint64_t tx_dropped = 0;
};

// What the running kernel can do, probed once.
struct KernelFeatures {
  bool bridge = false;
  bool bridge_vlan_filtering = false;  // IFLA_BR_VLAN_FILTERING accepted and read back
  bool veth = false;
  bool tun = false;                          // /dev/net/tun opens
  std::string bridge_vlan_filtering_reason;  // why not, when false
};

struct Operation;  // planner.h

class Kernel {
 public:
  virtual ~Kernel() = default;

  // Runs `ops[0..count)` in order and appends one Status per operation it
  // ran to `results` (cleared first). It stops after the first failure, but
  // may have run operations after it: the real kernel sends link changes in
  // netlink batches (many requests per sendmsg, each acked on its own), and
  // every request of the batch that held the failing one has run. So an
  // operation is done exactly when its Status in `results` is ok; those past
  // `results->size()` were not tried. The default runs them one by one
  // (Execute, planner.h) and stops at the first failure.
  virtual void ApplyBatch(const Operation* ops, size_t count, std::vector<Status>* results);

  virtual Result<std::vector<LinkInfo>> ListLinks() = 0;
  // The links of these names that exist (one RTM_GETLINK each, not a dump
  // of every link: a plan of one network among 10,000 links reads its own).
  // The default filters ListLinks().
  virtual Result<std::vector<LinkInfo>> ListLinksNamed(const std::vector<std::string>& names);
  virtual Result<std::vector<FdbEntry>> ListFdb() = 0;
  // The FDB of one bridge: its own entries and its ports' (`bridge fdb show
  // br NAME`). The kernel walks a bridge's whole table once per port of it,
  // so a dump of every bridge costs ports x entries of them all; a plan of
  // one network reads its own. The default filters ListFdb().
  virtual Result<std::vector<FdbEntry>> ListBridgeFdb(int bridge_ifindex);
  virtual Result<std::vector<PortVlanEntry>> ListPortVlans() = 0;
  virtual Result<KernelFeatures> ProbeFeatures() = 0;

  // Creates a bridge, down, with `settings` and IFLA_IFALIAS `alias`. Two
  // steps (the kernel ignores IFLA_IFALIAS in the RTM_NEWLINK that creates a
  // link), which is why netd journals it (create_journal.h).
  virtual Status CreateBridge(const std::string& name, const BridgeSettings& settings,
                              const std::string& alias) = 0;
  virtual Status SetBridgeSettings(const std::string& name, const BridgeSettings& settings) = 0;
  // Creates a persistent tap (/dev/net/tun) carrying `alias`. The alias is set
  // before TUNSETPERSIST, while the tap still dies with netd's fd, so a crash
  // at any point leaves no tap or a marked one.
  virtual Status CreateTap(const std::string& name, const TapSettings& settings,
                           const std::string& alias) = 0;
  // Creates a veth pair, both ends carrying `alias` (set in later steps, as
  // for a bridge).
  virtual Status CreateVeth(const std::string& name, const std::string& peer,
                            const std::string& alias) = 0;
  // Creates a vxlan device, down, carrying `alias` (set in a second step, as
  // for a bridge, hence journaled too).
  virtual Status CreateVxlan(const std::string& name, const VxlanSettings& settings,
                             const std::string& alias) = 0;
  // Every vxlan device's all-zero-MAC (flood) entries, from an AF_BRIDGE
  // neighbour dump: the devices' own ("self") entries with a destination.
  virtual Result<std::vector<VxlanFloodEntry>> ListVxlanFlood() = 0;
  // RTM_NEWNEIGH NLM_F_APPEND / RTM_DELNEIGH of 00:00:00:00:00:00 dst `dst`
  // on vxlan device `device` (NTF_SELF, permanent).
  virtual Status AddVxlanFlood(const std::string& device, const IpPrefix& dst) = 0;
  virtual Status DeleteVxlanFlood(const std::string& device, const IpPrefix& dst) = 0;
  // Deletes a link (a persistent tap is made non-persistent first, so it goes).
  virtual Status DeleteLink(const std::string& name) = 0;
  virtual Status SetAlias(const std::string& name, const std::string& alias) = 0;
  virtual Status SetLinkUp(const std::string& name, bool up) = 0;
  // Enslaves `name` to `bridge`; an empty bridge releases it (nomaster).
  virtual Status SetMaster(const std::string& name, const std::string& bridge) = 0;
  virtual Status SetBridgePortSettings(const std::string& name,
                                       const BridgePortSettings& settings) = 0;
  // Moves a link into the named network namespace (/run/netns/NAME).
  virtual Status MoveToNetns(const std::string& name, const std::string& netns) = 0;

  // Static FDB entries (NUD_NOARP, NTF_MASTER: iproute2's "master static") on
  // `port`. Not NUD_PERMANENT: the bridge would take such an address as its
  // own (local) and deliver frames to it up the stack instead of to `port`.
  // Adding an existing entry updates it (NLM_F_REPLACE).
  virtual Status AddStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) = 0;
  virtual Status DeleteStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) = 0;

  // AF_BRIDGE port VLANs (IFLA_AF_SPEC / IFLA_BRIDGE_VLAN_INFO).
  virtual Status AddPortVlan(const std::string& port, uint16_t vid, bool pvid, bool untagged) = 0;
  virtual Status DeletePortVlan(const std::string& port, uint16_t vid) = 0;

  // A link's MAC (IFLA_ADDRESS). On a bridge it pins the address: the kernel
  // no longer takes the lowest port MAC.
  virtual Status SetLinkMac(const std::string& name, const MacAddress& mac) = 0;
  virtual Status SetMtu(const std::string& name, uint32_t mtu) = 0;
  // Every link's addresses (IPv4 and IPv6).
  virtual Result<std::vector<AddressEntry>> ListAddresses() = 0;
  // RTM_NEWADDR / RTM_DELADDR of `prefix` on link `name`.
  virtual Status AddAddress(const std::string& name, const IpPrefix& prefix) = 0;
  virtual Status DeleteAddress(const std::string& name, const IpPrefix& prefix) = 0;

  // A link's counters; an error naming the link when it does not exist.
  virtual Result<LinkCounters> ReadLinkCounters(const std::string& name) = 0;
  // The root bridge id a kernel bridge reports in sysfs ("8000.525400000001"),
  // which is authoritative where netlink disagrees (seen on this kernel:
  // IFLA_BR_ROOT_ID showing the bridge's own id); "" when it cannot be read.
  virtual std::string BridgeRootIdFromSysfs(const std::string& bridge) = 0;
};

// The real kernel, in the caller's current network namespace.
Result<std::unique_ptr<Kernel>> NewNetlinkKernel();

// Watches RTNLGRP_LINK (and RTNLGRP_NEIGH for FDB statics, the address groups
// for bridges' host addresses) so the daemon can notice drift. fd() is
// readable when events wait; Drain() reads them all and says whether any
// concerned a link, FDB entry or address.
class LinkMonitor {
 public:
  virtual ~LinkMonitor() = default;
  virtual int fd() const = 0;
  virtual Result<bool> Drain() = 0;
};
Result<std::unique_ptr<LinkMonitor>> NewLinkMonitor();

// Opens an existing tap `name` for a userspace switch or a guest
// (IFF_TAP|IFF_NO_PI, plus IFF_VNET_HDR / IFF_MULTI_QUEUE as given),
// O_NONBLOCK|O_CLOEXEC.
Result<UniqueFd> OpenTap(const std::string& name, bool vnet_hdr, bool multi_queue);

// Bridge id helpers: packed = priority << 48 | mac.
std::string FormatBridgeId(uint64_t packed);  // "8000.525400000001"

}  // namespace vfabric::netd
