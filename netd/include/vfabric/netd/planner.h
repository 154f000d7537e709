// The planner: desired topology + what the kernel reports -> ordered operations.
//
// Ownership: every link netd creates carries IFLA_IFALIAS "vfabric:<network>".
// A link without that mark is foreign and is never created over, changed or
// deleted, except that a port of kind "existing" is enslaved and configured as
// asked. A marked link that no network wants any more is deleted; a foreign
// link left on a vfabric bridge is released (nomaster).
//
// Order of operations (so that a failure part-way leaves the least to undo
// and nothing is deleted before everything new is in place):
//   1. bridges: create or update settings
//   2. ports: create taps and veths (and move veth peers to their netns)
//   3. ports: enslave, bridge-port settings, VLANs, link up
//   4. static FDB entries and vxlan flood entries: add
//   5. bridges up
//   6. removals: stale FDB statics and flood entries, stale port VLANs, ports
//      (and vxlan devices), then bridges
// Each operation carries its undo (a list of operations), so ApplyPlan can put
// back everything already done when a later step fails.
#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/netd/kernel.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {

// The mark netd puts in IFLA_IFALIAS of links it created for `network`.
std::string OwnerAlias(const std::string& network);
// The network a mark names, or "" when `alias` is not a vfabric mark.
std::string NetworkFromAlias(const std::string& alias);

struct Operation {
  enum class Kind {
    kCreateBridge,
    kSetBridgeSettings,
    kCreateTap,
    kCreateVeth,
    kMoveToNetns,
    kDeleteLink,
    kSetAlias,
    kSetMaster,
    kSetBridgePortSettings,
    kSetLinkUp,
    kAddStaticFdb,
    kDeleteStaticFdb,
    kAddPortVlan,
    kDeletePortVlan,
    kSetLinkMac,
    kSetMtu,
    kAddAddress,
    kDeleteAddress,
    kCreateVxlan,
    kAddVxlanFlood,
    kDeleteVxlanFlood,
  };
  Kind kind = Kind::kCreateBridge;
  std::string network;  // the network this serves ("" for none)
  std::string object;   // the link it acts on
  // Parameters; which ones matter depends on kind.
  std::string peer;                // kCreateVeth
  std::string master;              // kSetMaster ("" = nomaster)
  std::string netns;               // kMoveToNetns
  std::string alias;               // kCreate*, kSetAlias
  BridgeSettings bridge;           // kCreateBridge, kSetBridgeSettings
  BridgePortSettings bridge_port;  // kSetBridgePortSettings
  TapSettings tap;                 // kCreateTap
  bool up = true;                  // kSetLinkUp
  MacAddress mac;                  // k*StaticFdb
  uint16_t vlan = 0;               // k*StaticFdb, k*PortVlan (the vid)
  bool pvid = false;               // kAddPortVlan
  bool untagged = false;           // kAddPortVlan
  uint32_t mtu = 0;                // kSetMtu
  IpPrefix address;                // k*Address, k*VxlanFlood (the remote VTEP)
  VxlanSettings vxlan;             // kCreateVxlan
  // What puts the host back as it was before this operation.
  std::vector<Operation> undo;

  // The short name of the kind ("create_bridge").
  std::string_view KindName() const;
  // One line for people: "create bridge vfb-lab (stp on, priority 4096)".
  std::string Describe() const;
};

// What the kernel looks like, as read back in one go.
struct KernelState {
  std::vector<LinkInfo> links;
  std::vector<FdbEntry> fdb;
  std::vector<PortVlanEntry> port_vlans;
  std::vector<AddressEntry> addresses;
  std::vector<VxlanFloodEntry> vxlan_flood;  // read only when a vxlan link exists
  KernelFeatures features;
  // Named network namespaces (`ip netns add`) that a veth's peer_netns asks
  // for and that do not exist, with the path looked at. Not read from the
  // kernel: the controller fills it (MissingPeerNetns, netns_check.h).
  std::map<std::string, std::string> missing_netns;

  // By name or ifindex, through an index built at the first lookup (and
  // again when `links` was replaced or resized): planning 10,000 ports
  // against 10,000 links must not compare every pair. A link changed in
  // place after a lookup is found under the name it had then.
  const LinkInfo* FindLink(const std::string& name) const;
  const LinkInfo* FindLink(int ifindex) const;

 private:
  void IndexLinks() const;
  mutable const LinkInfo* indexed_data_ = nullptr;
  mutable size_t indexed_size_ = 0;
  mutable std::unordered_map<std::string, size_t> by_name_;
  mutable std::unordered_map<int, size_t> by_ifindex_;
};

// `topology` with each VM NIC as a tap port of its network (named by the
// NIC's "port"), unless the network already lists a port of that name: a
// network may list no ports of its own and still carry guests. A NIC with
// "backend": "vhost-user" becomes a vhost-user port in server mode on
// `vhost_user_dir`/PORT.sock instead (netd listens, QEMU connects).
topology::Topology WithGuestPorts(const topology::Topology& topology,
                                  const std::string& vhost_user_dir = "/run/vfabric/vhost-user");
// The socket a VM NIC uses: its vhost-user port's in `topology` (as
// WithGuestPorts made it), or "" for a tap NIC.
std::string GuestNicSocket(const topology::Topology& topology, const topology::NicConfig& nic);

// Why `port` waits instead of being planned, or "" when it does not: an
// "existing" port whose link is not there (a libvirt guest's vnet that is
// down), or a veth whose peer_netns is in `actual.missing_netns` (the pair is
// made once the namespace exists). Such a port is left out of the plan (kernel and switch alike)
// and shown as waiting; the rest of the host converges, and the port is attached when the link
// monitor sees its link appear.
std::string PortLinkWaiting(const topology::PortConfig& port, const KernelState& actual);

// Reads links, FDB, port VLANs and features through `kernel`.
Result<KernelState> ReadKernelState(Kernel& kernel, const KernelFeatures& features);
// What a plan of the networks `only` names reads (Plan's `only`), not the
// whole host: the links those networks name (their bridges, ports, veth
// peers; ListLinksNamed) and those in `also` (what the plan must see
// beyond them: the ports the request takes away, "existing" ports to
// release), every link when one of them has an overlay; none of FDB,
// addresses, port VLANs and vxlan flood entries when they are all
// userspace networks, else their bridges' FDB (ListBridgeFdb), the
// addresses, the port VLANs when one of them filters VLANs, the flood
// entries when a vxlan device was read. A marked link of theirs that none
// of these names is left to a full plan.
Result<KernelState> ReadKernelState(Kernel& kernel, const KernelFeatures& features,
                                    const topology::Topology& desired,
                                    const std::set<std::string>& only,
                                    const std::set<std::string>& also = {});

// The bridge settings a network asks for, in kernel units.
BridgeSettings DesiredBridgeSettings(const topology::NetworkConfig& network);

// Computes the operations that make `actual` match `desired`: for kernel
// networks the bridge and its ports, for userspace networks their taps and
// veths (up, on no bridge; the userspace switch forwards between them). Fails without operations
// when the topology cannot be applied at all (a feature the kernel lacks, a name taken by a foreign
// link); the message names the object and says why. `attached`: ports that a userspace switch holds
// already; an "existing" link among them is not brought up again (its admin state is then the
// operator's, as it is for an existing link enslaved to a kernel bridge).
//
// A link on a network's bridge that the network does not list and vfabric did not create (no
// "vfabric:" alias: libvirt's vnetN for an <interface type='bridge'>, an operator's `ip link set
// master`) is foreign: left where it is and out of the plan. Only the links in `released` are
// taken off their bridge: "existing" ports that an earlier desired state listed and this one does
// not (the controller knows them; see Controller::Released).
//
// `only` (optional): plan the networks it names and nothing else -- what an
// apply of one network's file, an attach or a detach changes. The other
// networks of `desired` are neither checked nor planned (their links need
// not be in `actual`), and of the marked links no network wants only those
// of the networks named are deleted (a link is wanted when any network of
// `desired` lists it); the rest wait for a full plan (the resync, a
// SIGHUP). Without `only` every network is planned.
Result<std::vector<Operation>> Plan(const topology::Topology& desired, const KernelState& actual,
                                    const std::set<std::string>& attached = {},
                                    const std::set<std::string>& released = {},
                                    const std::set<std::string>* only = nullptr);

// The links on `network`'s kernel bridge that it does not list and vfabric
// did not create (see Plan): what `port list` shows as foreign.
std::vector<const LinkInfo*> ForeignBridgePorts(const topology::NetworkConfig& network,
                                                const KernelState& actual);

// Runs one operation.
Status Execute(Kernel& kernel, const Operation& operation);

// Runs `plan` in order as a transaction: if an operation fails, the undo of
// every operation already done runs, newest first, and the returned error
// names the failed operation, the kernel's reason, and how the undo went.
// `done` (optional) receives the operations that were applied and kept.
Status ApplyPlan(Kernel& kernel, const std::vector<Operation>& plan,
                 std::vector<Operation>* done = nullptr);

}  // namespace vfabric::netd
