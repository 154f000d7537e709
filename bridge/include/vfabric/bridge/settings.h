// The bridge's own vocabulary: the settings a Switch and a SpanningTree take
// and the views they give (FDB entries and counters, the tree's state).
//
// Why bridge has its own types rather than handing out fdb::, vlan:: and
// stp:: ones: those libraries are the bridge's implementation. Its users
// (netd) speak only of the bridge, so that a change inside fdb, vlan or stp
// (a field, a default, an engine's output) stops at bridge/src, which maps
// these values onto them (bridge/src/mapping.h). The fields mirror the
// libraries' on purpose: the mapping is a copy, and every limit and default
// is the library's (checked at compile time where it can be, and by
// Validate() of the library when a value is used).
//
// Plain values: no OS, no threads; copy them freely.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"

namespace vfabric::bridge {

// A switch port's number: 0 .. max_ports-1 (the FDB's port index).
using PortId = uint16_t;
inline constexpr PortId kNoPort = 0xffff;
// 802.1Q VLAN id, 1..4094.
using VlanId = uint16_t;

// ---- VLANs ----

// A set of VLAN ids (0..4095).
class VlanSet {
 public:
  VlanSet() = default;  // empty
  // "10,20-30" (as vlan::VlanSet::Parse: ids 1..4094, ranges, commas).
  static Result<VlanSet> Parse(std::string_view text);
  static VlanSet All();  // 1..4094
  bool Contains(VlanId vid) const { return vid < 4096 && (bits_[vid >> 6] >> (vid & 63) & 1) != 0; }
  void Add(VlanId vid) {
    if (vid < 4096) bits_[vid >> 6] |= uint64_t{1} << (vid & 63);
  }
  void Remove(VlanId vid) {
    if (vid < 4096) bits_[vid >> 6] &= ~(uint64_t{1} << (vid & 63));
  }
  // "10,20-30" (as vlan::VlanSet::ToString).
  std::string ToString() const;
  friend bool operator==(const VlanSet&, const VlanSet&) = default;

 private:
  std::array<uint64_t, 64> bits_{};
};

enum class PortMode : uint8_t { kAccess, kTrunk };
enum class NativeMode : uint8_t { kNone, kUntagged, kTagged };

// A port's VLAN membership, as vlan::PortVlanConfig: an access port carries
// one VLAN untagged; a trunk carries `allowed` tagged and, with a native
// VLAN (pvid), that one untagged or tagged.
struct PortVlanConfig {
  PortMode mode = PortMode::kAccess;
  VlanId pvid = 1;                        // access VLAN, or the trunk's native VLAN
  NativeMode native = NativeMode::kNone;  // trunk only
  VlanSet allowed;                        // trunk only

  static PortVlanConfig Access(VlanId pvid);
  // native_vid 0: no native VLAN.
  static PortVlanConfig Trunk(const VlanSet& allowed, VlanId native_vid = 0,
                              bool native_tagged = false);
  Status Validate() const;
  // Whether frames of `vid` may enter and leave by the port.
  bool IsMember(VlanId vid) const;
};

// ---- port mirroring ----

// A port mirror (SPAN), as Open vSwitch's Mirror table: the frames it
// selects are copied to `output`. A frame the switch accepts is selected
// when it came in by a port of `select_src`, or leaves by a port of
// `select_dst`, or `select_all`; and, when `select_vlan` is not empty, its
// VLAN is in it. `select_vlan` alone (no ports, not select_all) selects every
// frame of those VLANs. The output port is reserved for mirroring: nothing
// is forwarded or flooded to it, it learns nothing and what it receives is
// dropped (counted as mirror_output). A copy leaves it untagged when its
// VLAN is the output port's untagged one, else tagged with its VLAN.
struct MirrorSettings {
  std::string name;                  // for messages
  std::vector<uint16_t> select_src;  // PortIds
  std::vector<uint16_t> select_dst;  // PortIds
  VlanSet select_vlan;               // empty: every VLAN
  bool select_all = false;
  uint16_t output = 0xffff;  // a PortId
  friend bool operator==(const MirrorSettings&, const MirrorSettings&) = default;
};
// The most mirrors a switch holds (one bit of a word per mirror).
inline constexpr size_t kMaxMirrors = 64;

// ---- the FDB ----

// The switch's MAC table (fdb::Config: the same fields and defaults).
struct FdbSettings {
  size_t max_entries = 8192;  // static and learned together, 1 .. 2^26
  size_t max_per_port = 0;    // learned per port; 0: only max_entries limits
  size_t max_ports = 1024;    // also the switch's port limit, 1 .. 65534
  // A learned entry unseen this long expires; 0: do not learn.
  uint64_t ageing_time_ns = 300'000'000'000;
  // Learns within this of an entry's last-seen time do not refresh it.
  uint64_t refresh_granularity_ns = 1'000'000'000;
  uint64_t hash_seed = 0;  // draw it from a random source
};

struct FdbEntry {
  VlanId vlan = 0;
  MacAddress mac;
  PortId port = kNoPort;
  bool is_static = false;
  uint64_t age_ns = 0;  // now - last seen; 0 for static entries
  friend bool operator==(const FdbEntry&, const FdbEntry&) = default;
};

struct FdbCounters {
  uint64_t learned = 0;    // new learned entries
  uint64_t refreshed = 0;  // learns that refreshed an entry's time
  uint64_t moved = 0;      // learned entries that moved to another port
  uint64_t expired = 0;    // learned entries aged out
  uint64_t evicted = 0;    // learned entries pushed out by a full table
  uint64_t flushed = 0;    // learned entries flushed
  uint64_t lookup_hits = 0;
  uint64_t lookup_misses = 0;
  uint64_t static_move_attempts = 0;  // learns of a static key on another port
  uint64_t limit_drops = 0;           // learns dropped by max_per_port or a full table
  uint64_t invalid = 0;               // learns of a multicast/zero MAC, bad VLAN or port
  friend bool operator==(const FdbCounters&, const FdbCounters&) = default;
};

// ---- the spanning tree ----

// 802.1D port states as the pipeline applies them.
enum class StpState : uint8_t {
  kDiscarding,  // neither learn nor forward (BPDUs are still trapped)
  kLearning,    // learn source MACs, forward nothing
  kForwarding,  // learn and forward
};
std::string_view ToString(StpState state);

enum class TreeMode : uint8_t { kRstp, kStp };  // RSTP (falls back per port), or 802.1D only

// The tree's bridge settings (stp::BridgeConfig: same ranges, checked when
// the tree is created).
struct TreeSettings {
  MacAddress address;         // non-zero unicast
  uint16_t priority = 32768;  // 0..61440, a multiple of 4096
  TreeMode mode = TreeMode::kRstp;
  uint32_t hello_time = 2;  // seconds
  uint32_t forward_delay = 15;
  uint32_t max_age = 20;
  uint32_t tx_hold_count = 6;
};

// A port's spanning tree settings (topology: cost, priority, edge,
// bpdu_guard, root_block).
struct TreePortSettings {
  uint32_t path_cost = 0;  // 0: from the link speed
  uint8_t priority = 128;  // 0..240, a multiple of 16
  bool admin_edge = false;
  bool bpdu_guard = false;
  bool root_block = false;
  friend bool operator==(const TreePortSettings&, const TreePortSettings&) = default;
};

// A notable event of the tree, for logs.
struct TreeEvent {
  enum class Kind : uint8_t {
    kBpduGuardTrip,     // a BPDU arrived on a bpdu_guard port; the port is now disabled
    kTopologyChange,    // this bridge detected or was told of a topology change
    kNewRoot,           // the root bridge changed
    kProtocolMigration  // a port switched between RSTP and STP BPDUs
  };
  Kind kind = Kind::kTopologyChange;
  uint16_t port = 0;  // the 802.1D port number; 0 for bridge-wide events
};

enum class TreePortRole : uint8_t { kDisabled, kRoot, kDesignated, kAlternate, kBackup };
enum class TreeProtocol : uint8_t { kRstp, kStp };
// "root", "designated", ...; "discarding", ...; "rstp", "stp" (as stp::ToString).
std::string_view ToString(TreePortRole role);
std::string_view ToString(TreeProtocol protocol);

struct TreePortCounters {
  uint64_t rx_config = 0;
  uint64_t rx_tcn = 0;
  uint64_t rx_rst = 0;
  uint64_t tx_config = 0;
  uint64_t tx_tcn = 0;
  uint64_t tx_rst = 0;
  uint64_t rx_malformed = 0;
  uint64_t rx_while_disabled = 0;  // well-formed BPDUs dropped: port down or disabled
  uint64_t rx_own = 0;             // this port's own BPDU looped back to it
  uint64_t bpdu_guard_trips = 0;
  uint64_t forward_transitions = 0;
  uint64_t proposals_rx = 0;
  uint64_t agreements_rx = 0;
  uint64_t tc_rx = 0;
};

// A bridge id: priority (with the system id) and address (stp::BridgeId).
struct TreeBridgeId {
  uint16_t priority = 0;
  MacAddress address;
  // Priority in the top 16 bits, the MAC below.
  uint64_t ToU64() const { return (uint64_t{priority} << 48) | address.ToU64(); }
  friend bool operator==(const TreeBridgeId& a, const TreeBridgeId& b) {
    return a.ToU64() == b.ToU64();
  }
};

struct TreePortStatus {
  uint16_t number = 0;   // 802.1D port number (the switch PortId + 1)
  uint16_t id = 0;       // 802.1D port id: priority and number
  uint8_t priority = 0;  // the port priority in `id`
  bool enabled = false;  // link up and not disabled by bpdu_guard
  bool bpdu_guard_tripped = false;
  TreePortRole role = TreePortRole::kDisabled;
  StpState state = StpState::kDiscarding;
  uint32_t path_cost = 0;
  TreeProtocol protocol = TreeProtocol::kRstp;  // what the port sends now
  bool oper_edge = false;
  bool admin_edge = false;
  bool point_to_point = true;
  bool root_block = false;
  bool bpdu_guard = false;
  TreeBridgeId designated_root;
  uint32_t designated_cost = 0;
  TreeBridgeId designated_bridge;
  uint16_t designated_port = 0;
  bool topology_change_active = false;
  TreePortCounters counters;
};

struct TreeStatus {
  TreeBridgeId bridge_id;
  TreeBridgeId root_id;
  uint32_t root_path_cost = 0;
  uint16_t root_port = 0;  // 0: this bridge is the root
  bool is_root = true;
  TreeMode mode = TreeMode::kRstp;
  // Times in use (the root's, as received), and the bridge's own.
  uint32_t max_age = 0, hello_time = 0, forward_delay = 0;
  uint32_t bridge_max_age = 0, bridge_hello_time = 0, bridge_forward_delay = 0;
  bool topology_change = false;
  uint64_t topology_change_count = 0;
  std::optional<std::chrono::nanoseconds> time_since_topology_change;
  std::vector<TreePortStatus> ports;  // ordered by port number
};

}  // namespace vfabric::bridge
