#include "vfabric/bridge/settings.h"

#include "mapping.h"

namespace vfabric::bridge {

// ---- VLANs: through vlan::, so that parsing, printing and validation are
// the library's exactly ----

// The empty set (an access port's `allowed`) without 4,096 lookups: the
// planner converts every port's config on every pass (6% of netd's CPU
// with 10,000 ports).
vlan::VlanSet ToVlan(const VlanSet& set) {
  vlan::VlanSet out;
  if (set == VlanSet{}) return out;
  for (VlanId vid = 0; vid < 4096; ++vid)
    if (set.Contains(vid)) out.Add(vid);
  return out;
}

VlanSet FromVlan(const vlan::VlanSet& set) {
  VlanSet out;
  if (set.Empty()) return out;
  for (VlanId vid = 0; vid < 4096; ++vid)
    if (set.Contains(vid)) out.Add(vid);
  return out;
}

Result<VlanSet> VlanSet::Parse(std::string_view text) {
  auto parsed = vlan::VlanSet::Parse(text);
  if (!parsed.ok()) return parsed.status();
  return FromVlan(*parsed);
}

VlanSet VlanSet::All() { return FromVlan(vlan::VlanSet::All()); }

std::string VlanSet::ToString() const { return ToVlan(*this).ToString(); }

vlan::PortVlanConfig ToVlan(const PortVlanConfig& config) {
  vlan::PortVlanConfig out;
  out.mode = config.mode == PortMode::kAccess ? vlan::PortMode::kAccess : vlan::PortMode::kTrunk;
  out.pvid = config.pvid;
  switch (config.native) {
    case NativeMode::kNone:
      out.native = vlan::NativeMode::kNone;
      break;
    case NativeMode::kUntagged:
      out.native = vlan::NativeMode::kUntagged;
      break;
    case NativeMode::kTagged:
      out.native = vlan::NativeMode::kTagged;
      break;
  }
  out.allowed = ToVlan(config.allowed);
  return out;
}

namespace {

PortVlanConfig FromVlan(const vlan::PortVlanConfig& config) {
  PortVlanConfig out;
  out.mode = config.mode == vlan::PortMode::kAccess ? PortMode::kAccess : PortMode::kTrunk;
  out.pvid = config.pvid;
  switch (config.native) {
    case vlan::NativeMode::kNone:
      out.native = NativeMode::kNone;
      break;
    case vlan::NativeMode::kUntagged:
      out.native = NativeMode::kUntagged;
      break;
    case vlan::NativeMode::kTagged:
      out.native = NativeMode::kTagged;
      break;
  }
  out.allowed = bridge::FromVlan(config.allowed);
  return out;
}

}  // namespace

PortVlanConfig PortVlanConfig::Access(VlanId pvid) {
  return FromVlan(vlan::PortVlanConfig::Access(pvid));
}

PortVlanConfig PortVlanConfig::Trunk(const VlanSet& allowed, VlanId native_vid,
                                     bool native_tagged) {
  return FromVlan(vlan::PortVlanConfig::Trunk(ToVlan(allowed), native_vid, native_tagged));
}

Status PortVlanConfig::Validate() const { return ToVlan(*this).Validate(); }

bool PortVlanConfig::IsMember(VlanId vid) const { return ToVlan(*this).IsMember(vid); }

// ---- the FDB ----

fdb::Config ToFdb(const FdbSettings& settings) {
  fdb::Config out;
  out.max_entries = settings.max_entries;
  out.max_per_port = settings.max_per_port;
  out.max_ports = settings.max_ports;
  out.ageing_time_ns = settings.ageing_time_ns;
  out.refresh_granularity_ns = settings.refresh_granularity_ns;
  out.hash_seed = settings.hash_seed;
  return out;
}

FdbEntry FromFdb(const fdb::Entry& entry) {
  return FdbEntry{entry.vlan, entry.mac, entry.port, entry.is_static, entry.age_ns};
}

FdbCounters FromFdb(const fdb::Counters& c) {
  FdbCounters out;
  out.learned = c.learned;
  out.refreshed = c.refreshed;
  out.moved = c.moved;
  out.expired = c.expired;
  out.evicted = c.evicted;
  out.flushed = c.flushed;
  out.lookup_hits = c.lookup_hits;
  out.lookup_misses = c.lookup_misses;
  out.static_move_attempts = c.static_move_attempts;
  out.limit_drops = c.limit_drops;
  out.invalid = c.invalid;
  return out;
}

// ---- the spanning tree ----

std::string_view ToString(TreePortRole role) {
  return stp::ToString(static_cast<stp::PortRole>(role));
}
std::string_view ToString(TreeProtocol protocol) {
  return stp::ToString(static_cast<stp::Protocol>(protocol));
}
static_assert(static_cast<int>(TreePortRole::kBackup) == static_cast<int>(stp::PortRole::kBackup));
static_assert(static_cast<int>(TreePortRole::kAlternate) ==
              static_cast<int>(stp::PortRole::kAlternate));
static_assert(static_cast<int>(TreePortRole::kDesignated) ==
              static_cast<int>(stp::PortRole::kDesignated));
static_assert(static_cast<int>(TreePortRole::kRoot) == static_cast<int>(stp::PortRole::kRoot));
static_assert(static_cast<int>(TreeProtocol::kStp) == static_cast<int>(stp::Protocol::kStp));

stp::BridgeConfig ToStp(const TreeSettings& settings) {
  stp::BridgeConfig out;
  out.address = settings.address;
  out.priority = settings.priority;
  out.mode = settings.mode == TreeMode::kRstp ? stp::Mode::kRstp : stp::Mode::kStp;
  out.hello_time = settings.hello_time;
  out.forward_delay = settings.forward_delay;
  out.max_age = settings.max_age;
  out.tx_hold_count = settings.tx_hold_count;
  return out;
}

TreeEvent FromStp(const stp::Event& event) {
  TreeEvent out;
  switch (event.kind) {
    case stp::Event::Kind::kBpduGuardTrip:
      out.kind = TreeEvent::Kind::kBpduGuardTrip;
      break;
    case stp::Event::Kind::kTopologyChange:
      out.kind = TreeEvent::Kind::kTopologyChange;
      break;
    case stp::Event::Kind::kNewRoot:
      out.kind = TreeEvent::Kind::kNewRoot;
      break;
    case stp::Event::Kind::kProtocolMigration:
      out.kind = TreeEvent::Kind::kProtocolMigration;
      break;
  }
  out.port = event.port;
  return out;
}

StpState FromStp(stp::PortState state) {
  switch (state) {
    case stp::PortState::kDiscarding:
      return StpState::kDiscarding;
    case stp::PortState::kLearning:
      return StpState::kLearning;
    case stp::PortState::kForwarding:
      return StpState::kForwarding;
  }
  return StpState::kDiscarding;
}

namespace {

TreeBridgeId FromStp(const stp::BridgeId& id) { return TreeBridgeId{id.priority, id.address}; }

}  // namespace

TreeStatus FromStp(const stp::BridgeStatus& s) {
  TreeStatus out;
  out.bridge_id = FromStp(s.bridge_id);
  out.root_id = FromStp(s.root_id);
  out.root_path_cost = s.root_path_cost;
  out.root_port = s.root_port;
  out.is_root = s.is_root;
  out.mode = s.mode == stp::Mode::kRstp ? TreeMode::kRstp : TreeMode::kStp;
  out.max_age = s.max_age;
  out.hello_time = s.hello_time;
  out.forward_delay = s.forward_delay;
  out.bridge_max_age = s.bridge_max_age;
  out.bridge_hello_time = s.bridge_hello_time;
  out.bridge_forward_delay = s.bridge_forward_delay;
  out.topology_change = s.topology_change;
  out.topology_change_count = s.topology_change_count;
  out.time_since_topology_change = s.time_since_topology_change;
  for (const stp::PortStatus& p : s.ports) {
    TreePortStatus port;
    port.number = p.number;
    port.id = p.id;
    port.priority = stp::PortPriorityOf(p.id);
    port.enabled = p.enabled;
    port.bpdu_guard_tripped = p.bpdu_guard_tripped;
    port.role = static_cast<TreePortRole>(p.role);
    port.state = FromStp(p.state);
    port.path_cost = p.path_cost;
    port.protocol = static_cast<TreeProtocol>(p.protocol);
    port.oper_edge = p.oper_edge;
    port.admin_edge = p.admin_edge;
    port.point_to_point = p.point_to_point;
    port.root_block = p.root_block;
    port.bpdu_guard = p.bpdu_guard;
    port.designated_root = FromStp(p.designated_root);
    port.designated_cost = p.designated_cost;
    port.designated_bridge = FromStp(p.designated_bridge);
    port.designated_port = p.designated_port;
    port.topology_change_active = p.topology_change_active;
    const stp::PortCounters& c = p.counters;
    TreePortCounters& o = port.counters;
    o.rx_config = c.rx_config;
    o.rx_tcn = c.rx_tcn;
    o.rx_rst = c.rx_rst;
    o.tx_config = c.tx_config;
    o.tx_tcn = c.tx_tcn;
    o.tx_rst = c.tx_rst;
    o.rx_malformed = c.rx_malformed;
    o.rx_while_disabled = c.rx_while_disabled;
    o.rx_own = c.rx_own;
    o.bpdu_guard_trips = c.bpdu_guard_trips;
    o.forward_transitions = c.forward_transitions;
    o.proposals_rx = c.proposals_rx;
    o.agreements_rx = c.agreements_rx;
    o.tc_rx = c.tc_rx;
    out.ports.push_back(port);
  }
  return out;
}

}  // namespace vfabric::bridge
