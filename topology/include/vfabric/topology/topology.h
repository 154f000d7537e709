// The topology model: what an operator's JSON files ask the host to be.
//
// LoadTopology() reads files (or directories of *.json), checks them, and
// returns either the model or every problem found, each located as
// FILE:LINE:COLUMN: JSON-POINTER: message with LINE:COLUMN at the offending
// value (1-based). Nothing downstream ever sees a model that had an error.
// The JSON Schema in configs/schema/ describes the same format.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/ip_prefix.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/topology/host_facts.h"

namespace vfabric::topology {

// Where a value was written: the file and the 1-based line:column of its
// first character, and its JSON pointer ("/networks/0/ports/1/name").
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string pointer;
};

struct Diagnostic {
  SourceLocation where;
  std::string message;
  // "FILE:LINE:COLUMN: POINTER: message". The root pointer "" prints as
  // "(root)". A problem with a whole file (it cannot be read) has line 0 and
  // prints as "FILE: message". Columns count bytes.
  std::string ToString() const;
};

enum class Datapath { kKernel, kUserspace };
// kVxlan: a port to one remote VTEP of a userspace network's overlay. No
// file declares one: the loader makes one per "flood" address of such a
// network (VxlanPeerPortName), after the network's own ports.
enum class PortKind { kTap, kVeth, kExisting, kVhostUser, kVxlan };
// A vhost-user port's `mode`: netd's role on the socket. kClient: the
// frontend (QEMU -chardev socket,server=on; libvirt mode='server') owns and
// listens on the socket and netd connects to it -- the default, as the
// issue's "client mode is the default" means: the socket outlives a netd
// restart, so the new netd reconnects and the guest never notices. kServer:
// netd listens (creating the socket) and the frontend connects (QEMU
// reconnect=; libvirt mode='client').
enum class VhostUserMode { kClient, kServer };
enum class VlanMode { kNone, kAccess, kTrunk };
// rstp: 802.1D-2004 RSTP (falls back per port to STP when a peer speaks it);
// stp: legacy 802.1D STP only. The kernel bridge speaks only stp.
enum class StpMode { kRstp, kStp };

std::string_view ToString(Datapath datapath);
std::string_view ToString(PortKind kind);
std::string_view ToString(VhostUserMode mode);
std::string_view ToString(VlanMode mode);
std::string_view ToString(StpMode mode);

using VlanBitmap = std::bitset<4096>;

// IEEE 802.1D timers are whole seconds in the topology.
struct StpConfig {
  bool enabled = false;
  // Default: rstp on the userspace datapath, stp on the kernel's.
  StpMode mode = StpMode::kStp;
  uint32_t priority = 32768;    // 0..61440, a multiple of 4096
  uint32_t hello_time = 2;      // 1..10 s
  uint32_t forward_delay = 15;  // 4..30 s
  uint32_t max_age = 20;        // 6..40 s
};

struct BridgeVlanConfig {
  bool filtering = false;
  uint16_t default_pvid = 1;  // 1..4094
};

struct StaticFdbEntry {
  MacAddress mac;
  std::string port;   // a port of the same network
  uint16_t vlan = 0;  // 0: no VLAN
  SourceLocation where;
};

struct FdbConfig {
  // Seconds, 0..1000000. 0 makes learned entries expire at once (the kernel
  // bridge then floods like a hub); the kernel accepts it, 802.1D says 10..1000000.
  uint32_t ageing_time = 300;
  std::vector<StaticFdbEntry> static_entries;
  // Userspace datapath only (0: default).
  uint32_t max_entries = 0;
  uint32_t max_per_port = 0;
};

struct PortVlanConfig {
  VlanMode mode = VlanMode::kNone;
  uint16_t pvid = 0;           // access: the port's VLAN
  VlanBitmap allowed;          // trunk: tagged VLANs carried
  uint16_t native = 0;         // trunk: the untagged VLAN, 0 = none
  bool native_tagged = false;  // trunk: send the native VLAN tagged
};

struct PortConfig {
  std::string name;
  PortKind kind = PortKind::kTap;
  std::string peer;        // veth: the other end's name
  std::string peer_netns;  // veth: named netns to move the peer into ("" = stay)
  PortVlanConfig vlan;
  // Bridge port settings; unset means "leave the default".
  // Kernel datapath: cost 1..65535, priority 0..63 (the kernel bridge's
  // ranges). Userspace: cost 1..200000000, priority 0..240 in steps of 16
  // (802.1D-2004 17.13.10, Table 17-2).
  std::optional<uint32_t> cost;
  std::optional<uint32_t> priority;
  // Userspace datapath: an admin edge port (a host or guest NIC) forwards at
  // once; it stops being edge when a BPDU arrives. Default: true for a VM
  // NIC's port, false otherwise (auto-edge still applies).
  std::optional<bool> edge;
  std::optional<bool> learning;
  std::optional<bool> flood;
  std::optional<bool> hairpin;
  std::optional<bool> isolated;
  std::optional<bool> bpdu_guard;
  std::optional<bool> root_block;
  // Tap settings (`owner`/`group` also: the socket of a vhost-user port
  // in server mode).
  std::optional<uint32_t> owner;  // uid (names are resolved while loading)
  std::optional<uint32_t> group;  // gid
  bool multi_queue = false;
  bool vnet_hdr = true;
  // A guest netd does not run opens the tap (the userspace switch then uses
  // a packet socket on it, as for a VM NIC's tap).
  bool guest = false;
  // vhost-user settings (userspace datapath only).
  std::string socket;  // an absolute path, unique across networks
  VhostUserMode vhost_user_mode = VhostUserMode::kClient;
  // Server mode: the socket's permission bits (0..0777); unset: the umask's.
  std::optional<uint32_t> permissions;
  uint32_t queues = 1;  // queue pairs; 1 until the port supports MQ
  // kVxlan: the remote VTEP, and the overlay's local address, UDP port and
  // VNI (the network's OverlayConfig, copied so that a port is opened from
  // its own config as every other kind is).
  IpPrefix vxlan_remote;
  IpPrefix vxlan_local;
  uint16_t vxlan_port = 4789;
  uint32_t vxlan_vni = 0;
  SourceLocation where;
};

// A network stretched across hosts by VXLAN (RFC 7348). Kernel datapath:
// netd makes a vxlan device "vfx-<vni>" (nolearning, dstport `port`, local
// `local`) a port of the network's bridge, and keeps `flood` as the device's
// all-zero-MAC FDB entries (head-end replication of broadcast, unknown
// unicast and multicast to each remote VTEP).
enum class OverlayControl {
  kStatic,  // netd keeps the flood list of the topology; remote MACs are learned by the bridge
  kEvpn,    // FRR (BGP EVPN) installs remote MACs and the flood list; netd keeps the devices
};
std::string_view ToString(OverlayControl control);

struct OverlayConfig {
  uint32_t vni = 0;             // 1..16777215 (24 bits), unique across networks
  IpPrefix local;               // this host's tunnel address (full-length prefix), IPv4 or IPv6
  uint16_t port = 4789;         // UDP destination port (IANA's VXLAN port)
  std::optional<uint32_t> mtu;  // the vxlan device's MTU; unset = the kernel's
  std::vector<IpPrefix> flood;  // remote VTEPs, of `local`'s family
  OverlayControl control = OverlayControl::kStatic;
  SourceLocation where;
};

// The name of the vxlan device netd makes for an overlay: "vfx-<vni>", at
// most 12 bytes (VNIs are unique per host, so the names are too).
std::string OverlayDeviceName(uint32_t vni);
// The name of the port (kind kVxlan) of a userspace network's overlay to the
// remote VTEP `remote`: "vx<vni>:<address>", e.g. "vx4242:192.0.2.2" (not
// an interface name: the colon keeps it apart from every link's).
std::string VxlanPeerPortName(uint32_t vni, const IpPrefix& remote);
// Bytes VXLAN adds in front of the inner Ethernet frame: outer IPv4 (20) or
// IPv6 (40) header, UDP (8), VXLAN (8) and the inner Ethernet header (14).
inline constexpr uint32_t kVxlanOverheadIpv4 = 50, kVxlanOverheadIpv6 = 70;

// Port mirroring (SPAN), after Open vSwitch's Mirror table: frames that a
// mirror selects are copied, as they leave the switch, to `output_port`.
// A frame is selected when it comes in by a `select_src_port`, or goes out
// by a `select_dst_port`, or (`select_all`, or neither port list given)
// crosses any port; and, when `select_vlan` is not empty, is in one of
// those VLANs. The output port is reserved for mirroring (as in OVS): the
// switch forwards nothing else to it, learns nothing from it and drops what
// it receives. Userspace datapath only for now.
struct MirrorConfig {
  std::string name;                          // unique within the network
  std::vector<std::string> select_src_port;  // ports of the network
  std::vector<std::string> select_dst_port;  // ports of the network
  VlanBitmap select_vlan;                    // empty: every VLAN
  bool select_all = false;
  std::string output_port;  // a port of the network, no mirror's source or destination
  SourceLocation where;
};
// The most mirrors one network may have (the switch keeps one bit per mirror).
inline constexpr size_t kMaxMirrorsPerNetwork = 32;

struct NetworkConfig {
  std::string name;
  Datapath datapath = Datapath::kKernel;
  // Interface name of the Linux bridge. On the kernel datapath it defaults to
  // "vfb-" + name, which must then fit in 15 bytes (else the topology must
  // name the bridge). A userspace network has no Linux bridge: "" unless the
  // topology names one (the name is then reserved, never created).
  std::string bridge;
  StpConfig stp;
  BridgeVlanConfig vlan;
  FdbConfig fdb;
  std::vector<PortConfig> ports;
  // Kernel datapath: the bridge as a host link. `mac`: its MAC, unset = netd
  // pins one derived from the machine id and the network's name (so it does
  // not move as ports come and go); `mtu`: 68..65535, unset = the kernel's;
  // `addresses`: the host's addresses on the bridge, unset = left alone.
  std::optional<MacAddress> mac;
  std::optional<uint32_t> mtu;
  std::optional<std::vector<IpPrefix>> addresses;
  // A VXLAN overlay (see OverlayConfig). Kernel datapath: the vxlan device;
  // userspace datapath: the switch's own VXLAN endpoint, with a port (kind
  // kVxlan, appended to `ports`) per flood address.
  std::optional<OverlayConfig> overlay;
  // Userspace datapath: port mirrors (see MirrorConfig), in topology order.
  std::vector<MirrorConfig> mirrors;
  SourceLocation where;
};

// How a VM NIC reaches its network: a tap (the default), or vhost-user (on
// a userspace network only: the switch reads the guest's rings in its
// shared memory).
enum class NicBackend { kTap, kVhostUser };
std::string_view ToString(NicBackend backend);  // "tap", "vhost-user"

struct NicConfig {
  std::string network;
  std::optional<MacAddress> mac;
  // Port name; defaults to "<vm>-eth<N>" (N: the NIC's index). Either a port
  // that `network` declares (a tap; for backend vhost-user a vhost-user
  // port in server mode), or a name no other interface uses.
  std::string port;
  SourceLocation where;
  NicBackend backend = NicBackend::kTap;
};

struct VmConfig {
  std::string name;
  uint32_t memory_mb = 256;
  uint32_t vcpus = 1;
  std::string accel = "auto";  // auto | kvm | tcg
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::string disk;
  std::string restart = "no";  // no | on-failure | always
  std::vector<NicConfig> nics;
  SourceLocation where;
};

struct Topology {
  std::vector<NetworkConfig> networks;
  std::vector<VmConfig> vms;
};

struct LoadResult {
  Topology topology;               // meaningful only when errors is empty
  std::vector<Diagnostic> errors;  // in file order
  // What this host makes doubtful but another host may not (an overlay's
  // `local` address this host does not have): reported, never fatal here;
  // netd refuses to apply what it cannot.
  std::vector<Diagnostic> warnings;
  bool ok() const { return errors.empty(); }
};

// Parses one document; `file_name` is used only in diagnostics. User and
// group names (a tap's "owner", "group") are resolved through `host`.
LoadResult ParseTopology(std::string_view text, std::string_view file_name,
                         const HostFacts& host = SystemHostFacts());

// One topology document held in memory (netd's "plan"/"apply" receive files
// this way over the control socket).
struct SourceFile {
  std::string name;  // used in diagnostics
  std::string text;
};

// Parses every file, merges them into one topology in the given order and
// checks names across files, like LoadTopology without touching the disk.
LoadResult ParseTopologyFiles(const std::vector<SourceFile>& files,
                              const HostFacts& host = SystemHostFacts());

// The files a list of configuration paths names, read from the disk.
struct ReadResult {
  std::vector<SourceFile> files;   // every file read, in load order
  std::vector<Diagnostic> errors;  // "PATH: cause" (line 0), one per path that could not be read
  std::vector<std::string> paths;  // every file met, read or not, in load order
  bool ok() const { return errors.empty(); }
};

// Reads the topology files that `paths` name. This is the one rule for
// configuration entries that netd (--config, at start and on SIGHUP),
// `netctl validate` and `netctl apply` share:
//  - A path that is a directory (symlinks followed) contributes its entries
//    whose names end in ".json" and do not start with '.', in byte order of
//    their names; other entries, and subdirectories not named *.json, are
//    skipped and never entered. Any other path is a file.
//  - Every file, given or found, must be a regular file after following
//    symlinks, and readable. Each of these is an error naming the path and the
//    cause, never an empty or a skipped file: a missing file, a dangling
//    symlink (its target is named), a symlink loop, a file that cannot be
//    opened or read, one larger than 16 MiB, and anything not a regular file
//    (a directory named *.json, a FIFO, a socket, a device). A non-regular
//    file is refused from stat() without being opened, and files are opened
//    O_NONBLOCK and checked again with fstat(), so a FIFO or a device never
//    blocks the reader.
//  - An empty directory contributes nothing (no error).
// Reading goes on after an error, so every unreadable path is reported.
ReadResult ReadTopologyFiles(const std::vector<std::string>& paths);

// ReadTopologyFiles(), then ParseTopologyFiles() on every file that could be
// read: merges them into one topology and checks names across files
// (duplicates, references). A read error is reported among the files'
// diagnostics and makes the result not ok.
LoadResult LoadTopology(const std::vector<std::string>& paths,
                        const HostFacts& host = SystemHostFacts());

// ---- Helpers shared with netd, netctl and the datapaths ----

inline constexpr size_t kMaxInterfaceNameLength = 15;  // IFNAMSIZ - 1

// The most ports one network may have, counting the taps its VMs' NICs add
// (netd makes one per NIC that names no declared port; WithGuestPorts() in
// netd/src/planner.cc). The validator refuses the first port or NIC too many.
// A Linux bridge numbers its ports 1..1023: it has 1,024 port numbers
// (BR_MAX_PORTS) and 0 is reserved, so enslaving a 1,024th port fails with
// EXFULL (net/bridge/br_if.c, find_portno()).
inline constexpr size_t kMaxKernelBridgePorts = 1023;
// vfabric's switch has one slot per port, fdb::Config::max_ports (1,024) of them.
inline constexpr size_t kMaxUserspaceSwitchPorts = 1024;

// Why `name` cannot be a Linux interface name in a topology, or "" when it
// can: 1..15 bytes of printable ASCII without '/', ':', '%' (the kernel's
// name template character) or spaces, and not "." or "..".
std::string InterfaceNameError(std::string_view name);

// The candidate closest to `word` when it is close enough to be a likely typo
// (one edit or transposition for short words, two for longer), else "". The
// validator's "did you mean" for keys and names; netctl's for its commands.
std::string SuggestName(std::string_view word, const std::vector<std::string_view>& candidates);

// Parses a VLAN list such as "10,20-30" (comma-separated VLAN IDs 1..4094 and
// inclusive ranges LOW-HIGH with LOW <= HIGH; spaces around parts are
// allowed) into `vlans` (set bits are added). On error returns false, says
// why in `*error` and leaves `vlans` unchanged.
bool ParseVlanList(std::string_view text, VlanBitmap* vlans, std::string* error);

// The shortest list form of `vlans` ("1,10,20-30"); "" when empty.
std::string FormatVlanList(const VlanBitmap& vlans);

}  // namespace vfabric::topology
