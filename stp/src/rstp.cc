// The 802.1D-2004 clause 17 state machines. Each Step*() makes at most one
// transition of one machine (collapsing the standard's UCT chains into the
// state they end in) and says whether it did; Run() steps every machine until
// none moves. State names in comments are the standard's.
#include <algorithm>

#include "rstp_impl.h"

namespace vfabric::stp {
namespace {

constexpr uint64_t kMaxTicksPerAdvance = 512;  // beyond this every timer has expired
constexpr int kMaxRunIterations = 100000;      // a safeguard; never reached in tests

uint16_t Dec(uint16_t t) { return t > 0 ? static_cast<uint16_t>(t - 1) : 0; }

// Wire times (1/256 s) to whole seconds. Message age rounds down (a younger
// age is the conservative reading); the others round to nearest, at least 1.
uint16_t AgeSeconds(uint16_t units) { return static_cast<uint16_t>(units / kTimeUnitsPerSecond); }
uint16_t TimerSeconds(uint16_t units) {
  const uint32_t s = (uint32_t{units} + kTimeUnitsPerSecond / 2) / kTimeUnitsPerSecond;
  return static_cast<uint16_t>(std::max<uint32_t>(s, 1));
}
uint16_t ToUnits(uint16_t seconds) {
  return static_cast<uint16_t>(std::min<uint32_t>(uint32_t{seconds} * kTimeUnitsPerSecond, 0xffff));
}

}  // namespace

int PriorityVector::Compare(const PriorityVector& o) const {
  if (root != o.root) return root < o.root ? -1 : 1;
  if (cost != o.cost) return cost < o.cost ? -1 : 1;
  if (bridge != o.bridge) return bridge < o.bridge ? -1 : 1;
  if (port != o.port) return port < o.port ? -1 : 1;
  return 0;
}

uint32_t PathCostForSpeed(uint64_t speed_mbps) {
  if (speed_mbps == 0) return 20000;
  const uint64_t cost = 20000000ULL / speed_mbps;
  return static_cast<uint32_t>(std::clamp<uint64_t>(cost, 1, 200000000));
}

Bridge::Impl::Impl(const BridgeConfig& config, TimePoint now)
    : config_(config), next_tick_(now + std::chrono::seconds(1)), last_now_(now) {
  bridge_id_ = BridgeId{config.priority, config.address}.ToU64();
  bridge_priority_ = PriorityVector{bridge_id_, 0, bridge_id_, 0, 0};
  bridge_times_ =
      Times{0, static_cast<uint16_t>(config.max_age), static_cast<uint16_t>(config.forward_delay),
            static_cast<uint16_t>(config.hello_time)};
  root_priority_ = bridge_priority_;
  root_times_ = bridge_times_;
  reported_root_ = bridge_id_;
  Run();
}

Port* Bridge::Impl::Find(PortNumber number) {
  auto it = ports_.find(number);
  return it == ports_.end() ? nullptr : &it->second;
}
const Port* Bridge::Impl::Find(PortNumber number) const {
  auto it = ports_.find(number);
  return it == ports_.end() ? nullptr : &it->second;
}

// BEGIN for one port: every machine to its initial state (and the entry
// actions of that state, which the first Run() performs).
void Bridge::Impl::InitPort(Port& p) {
  p.designated_times = root_times_;
  p.designated_times.hello_time = HelloTime();
  p.port_times = p.designated_times;
  p.designated_priority =
      PriorityVector{root_priority_.root, root_priority_.cost, bridge_id_, p.port_id, p.port_id};
  p.port_priority = p.designated_priority;
  // PRX DISCARD
  p.prx = PrxState::kDiscard;
  p.rcvd_bpdu = p.rcvd_rstp = p.rcvd_stp = p.rcvd_msg = false;
  p.edge_delay_while = kMigrateTime;
  // PPM CHECKING_RSTP
  p.ppm = PpmState::kCheckingRstp;
  p.mcheck = false;
  p.send_rstp = RstpVersion();
  p.mdelay_while = kMigrateTime;
  p.reported_send_rstp = p.send_rstp;
  // BDM
  p.bdm = p.config.admin_edge ? BdmState::kEdge : BdmState::kNotEdge;
  p.oper_edge = p.config.admin_edge;
  // PTX TRANSMIT_INIT -> IDLE
  p.ptx = PtxState::kIdle;
  p.new_info = true;
  p.tx_count = 0;
  p.hello_when = HelloTime();
  // PIM DISABLED
  p.pim = PimState::kDisabled;
  p.proposing = p.proposed = p.agree = p.agreed = false;
  p.rcvd_info_while = 0;
  p.info_is = InfoIs::kDisabled;
  p.reselect = true;
  p.selected = false;
  // PRT INIT_PORT -> DISABLE_PORT
  p.role = PortRole::kDisabled;
  p.learn = p.forward = false;
  p.synced = false;
  p.sync = p.re_root = true;
  p.rr_while = FwdDelay(p);
  p.fd_while = MaxAge(p);
  p.rb_while = 0;
  p.prt = PrtState::kDisablePort;
  p.role = p.selected_role;
  // PST DISCARDING
  p.pst = PstState::kDiscarding;
  p.learning = p.forwarding = false;
  // TCM INACTIVE
  p.tcm = TcmState::kInactive;
  p.fdb_flush = true;
  p.tc_while = 0;
  p.tc_ack = false;
  p.rcvd_tc = p.rcvd_tcn = p.rcvd_tc_ack = p.tc_prop = false;
  p.disputed = false;
  p.updt_info = false;
}

Status Bridge::Impl::AddPort(const PortConfig& config) {
  if (config.number == 0 || config.number > 4095) {
    return Status::Error("stp: port number " + std::to_string(config.number) +
                         " is outside 1..4095");
  }
  if (ports_.count(config.number) != 0) {
    return Status::Error("stp: port " + std::to_string(config.number) + " already exists");
  }
  if (config.priority % 16 != 0 || config.priority > 240) {
    return Status::Error("stp: port " + std::to_string(config.number) + " priority " +
                         std::to_string(config.priority) + " is not a multiple of 16 in 0..240");
  }
  if (config.path_cost > 200000000) {
    return Status::Error("stp: port " + std::to_string(config.number) + " path cost " +
                         std::to_string(config.path_cost) + " is outside 1..200000000");
  }
  if (config.address.IsMulticast()) {
    return Status::Error("stp: port " + std::to_string(config.number) + " source address " +
                         config.address.ToString() + " is multicast");
  }
  Port& p = ports_[config.number];
  p.config = config;
  if (p.config.address.IsZero()) p.config.address = config_.address;
  p.port_id = MakePortId(config.priority, config.number);
  p.port_path_cost = config.path_cost != 0 ? config.path_cost : PathCostForSpeed(0);
  InitPort(p);
  // A new port is a change for every port's role selection.
  for (auto& [number, other] : ports_) other.reselect = true;
  Run();
  return Status::Ok();
}

Status Bridge::Impl::RemovePort(PortNumber number) {
  if (ports_.erase(number) == 0) {
    return Status::Error("stp: no port " + std::to_string(number));
  }
  for (auto& [n, p] : ports_) p.reselect = true;
  Run();
  return Status::Ok();
}

Status Bridge::Impl::SetPortEnabled(PortNumber number, bool up, uint64_t speed_mbps) {
  Port* p = Find(number);
  if (p == nullptr) return Status::Error("stp: no port " + std::to_string(number));
  if (up && !p->link_up) p->guard_tripped = false;  // a down/up re-arms bpdu_guard
  p->link_up = up;
  p->port_enabled = p->link_up && !p->guard_tripped;
  // A known speed sets the automatic cost even while the link is down, so a
  // port reads the cost it will run with rather than the 1 Gb/s of an
  // unknown speed.
  if (p->config.path_cost == 0 && (up || speed_mbps != 0)) {
    const uint32_t cost = PathCostForSpeed(speed_mbps);
    if (cost != p->port_path_cost) {
      p->port_path_cost = cost;
      p->selected = false;
      p->reselect = true;
    }
  }
  Run();
  return Status::Ok();
}

Status Bridge::Impl::ForceProtocolMigrationCheck(PortNumber number) {
  Port* p = Find(number);
  if (p == nullptr) return Status::Error("stp: no port " + std::to_string(number));
  p->mcheck = RstpVersion();
  Run();
  return Status::Ok();
}

Status Bridge::Impl::ReceiveBpdu(PortNumber number, std::span<const uint8_t> frame, TimePoint now) {
  Port* p = Find(number);
  if (p == nullptr) return Status::Error("stp: no port " + std::to_string(number));
  last_now_ = std::max(last_now_, now);
  Bpdu bpdu;
  const DecodeError error = DecodeBpduFrame(frame, &bpdu);
  if (error != DecodeError::kOk) {
    ++p->counters.rx_malformed;
    ++p->counters.rx_malformed_by_reason[static_cast<size_t>(error)];
    return Status::Ok();
  }
  if (p->config.bpdu_guard && p->port_enabled) {
    ++p->counters.bpdu_guard_trips;
    p->guard_tripped = true;
    p->port_enabled = false;
    out_.events.push_back(Event{Event::Kind::kBpduGuardTrip, number});
    Run();
    return Status::Ok();
  }
  if (!p->port_enabled) {
    ++p->counters.rx_while_disabled;
    return Status::Ok();
  }
  // 9.2.9: an RST BPDU with an Unknown role is treated as a Config BPDU.
  if (bpdu.type == BpduType::kRst && bpdu.role == BpduRole::kUnknown) {
    bpdu.type = BpduType::kConfig;
  }
  switch (bpdu.type) {
    case BpduType::kConfig:
      ++p->counters.rx_config;
      break;
    case BpduType::kTcn:
      ++p->counters.rx_tcn;
      break;
    case BpduType::kRst:
      ++p->counters.rx_rst;
      break;
  }
  // 9.3.4: our own BPDU looped back to the port that sent it is discarded.
  if (bpdu.type != BpduType::kTcn && bpdu.bridge_id.ToU64() == bridge_id_ &&
      bpdu.port_id == p->port_id) {
    ++p->counters.rx_own;
    return Status::Ok();
  }
  if (bpdu.type == BpduType::kTcn || bpdu.topology_change) ++p->counters.tc_rx;
  if (bpdu.type == BpduType::kRst && bpdu.proposal) ++p->counters.proposals_rx;
  if (bpdu.type == BpduType::kRst && bpdu.agreement) ++p->counters.agreements_rx;
  p->rx = bpdu;
  p->rcvd_bpdu = true;
  Run();
  return Status::Ok();
}

void Bridge::Impl::AdvanceTo(TimePoint now) {
  last_now_ = std::max(last_now_, now);
  if (now < next_tick_) return;
  const auto due = static_cast<uint64_t>((now - next_tick_) / std::chrono::seconds(1)) + 1;
  for (uint64_t i = 0; i < due && i < kMaxTicksPerAdvance; ++i) {
    next_tick_ += std::chrono::seconds(1);
    Tick();
  }
  if (due > kMaxTicksPerAdvance) {
    next_tick_ += std::chrono::seconds(due - kMaxTicksPerAdvance);
  }
}

// Port Timers (17.22), for every port at once, then the machines react.
void Bridge::Impl::Tick() {
  for (auto& [number, p] : ports_) {
    p.edge_delay_while = Dec(p.edge_delay_while);
    p.fd_while = Dec(p.fd_while);
    p.hello_when = Dec(p.hello_when);
    p.mdelay_while = Dec(p.mdelay_while);
    p.rb_while = Dec(p.rb_while);
    p.rcvd_info_while = Dec(p.rcvd_info_while);
    p.rr_while = Dec(p.rr_while);
    p.tc_while = Dec(p.tc_while);
    if (p.tx_count > 0) --p.tx_count;
  }
  Run();
}

void Bridge::Impl::Run() {
  tc_noted_in_run_ = false;
  for (int i = 0; i < kMaxRunIterations; ++i) {
    bool changed = StepPrs();
    for (auto& [number, p] : ports_) {
      changed |= StepPrx(p);
      changed |= StepPpm(p);
      changed |= StepBdm(p);
      changed |= StepPim(p);
      changed |= StepPrt(p);
      changed |= StepPst(p);
      changed |= StepTcm(p);
      changed |= StepFlush(p);
    }
    // Transmit only once everything else has settled, so one event sends one
    // BPDU per port carrying its outcome rather than each intermediate step.
    if (!changed) {
      for (auto& [number, p] : ports_) changed |= StepPtx(p);
    }
    if (!changed) break;
  }
  EmitOutputs();
}

void Bridge::Impl::EmitOutputs() {
  for (auto& [number, p] : ports_) {
    PortState state = PortState::kDiscarding;
    if (p.pst == PstState::kLearning) state = PortState::kLearning;
    if (p.pst == PstState::kForwarding) state = PortState::kForwarding;
    if (state != p.reported_state) {
      if (state == PortState::kForwarding) ++p.counters.forward_transitions;
      p.reported_state = state;
      out_.state_changes.push_back(StateChange{number, state});
    }
    if (p.send_rstp != p.reported_send_rstp) {
      p.reported_send_rstp = p.send_rstp;
      out_.events.push_back(Event{Event::Kind::kProtocolMigration, number});
    }
  }
  if (root_priority_.root != reported_root_) {
    reported_root_ = root_priority_.root;
    out_.events.push_back(Event{Event::Kind::kNewRoot, 0});
  }
}

// ---------------------------------------------------------------------------
// Port Role Selection (17.28).

bool Bridge::Impl::StepPrs() {
  if (prs_init_) {  // INIT_BRIDGE: updtRoleDisabledTree()
    prs_init_ = false;
    for (auto& [number, p] : ports_) p.selected_role = PortRole::kDisabled;
  }
  bool any_reselect = false;
  for (auto& [number, p] : ports_) any_reselect |= p.reselect;
  if (!any_reselect) return false;
  // ROLE_SELECTION: clearReselectTree(); updtRolesTree(); setSelectedTree()
  for (auto& [number, p] : ports_) p.reselect = false;
  UpdtRolesTree();
  for (auto& [number, p] : ports_) p.selected = true;
  return true;
}

// 17.21.25
void Bridge::Impl::UpdtRolesTree() {
  PriorityVector best = bridge_priority_;
  Times best_times = bridge_times_;
  const Port* root_port = nullptr;
  for (auto& [number, p] : ports_) {
    if (p.info_is != InfoIs::kReceived || p.config.root_block) continue;
    // Information from this bridge itself (a port looped to another of its
    // ports) can never make a root port.
    if ((p.port_priority.bridge & 0xffffffffffffULL) == (bridge_id_ & 0xffffffffffffULL)) {
      continue;
    }
    PriorityVector candidate = p.port_priority;
    candidate.cost = static_cast<uint32_t>(
        std::min<uint64_t>(uint64_t{candidate.cost} + p.port_path_cost, 0xffffffffULL));
    candidate.rx_port = p.port_id;
    const int c = candidate.Compare(best);
    if (c < 0 || (c == 0 && root_port != nullptr && candidate.rx_port < best.rx_port)) {
      best = candidate;
      best_times = p.port_times;
      best_times.message_age = static_cast<uint16_t>(best_times.message_age + 1);
      root_port = &p;
    }
  }
  root_priority_ = best;
  root_port_id_ = root_port ? root_port->port_id : 0;
  root_times_ = best_times;

  for (auto& [number, p] : ports_) {
    p.designated_priority =
        PriorityVector{root_priority_.root, root_priority_.cost, bridge_id_, p.port_id, p.port_id};
    p.designated_times = root_times_;
    p.designated_times.hello_time = HelloTime();
  }
  for (auto& [number, p] : ports_) {
    switch (p.info_is) {
      case InfoIs::kDisabled:
        p.selected_role = PortRole::kDisabled;
        break;
      case InfoIs::kAged:
        p.selected_role = PortRole::kDesignated;
        p.updt_info = true;
        break;
      case InfoIs::kMine:
        p.selected_role = PortRole::kDesignated;
        if (!p.port_priority.SameAs(p.designated_priority) ||
            !(p.port_times == p.designated_times)) {
          p.updt_info = true;
        }
        break;
      case InfoIs::kReceived:
        if (&p == root_port) {
          p.selected_role = PortRole::kRoot;
          p.updt_info = false;
        } else if (p.designated_priority.Compare(p.port_priority) >= 0) {
          // Our information is no better than what the segment already has.
          p.selected_role =
              (p.port_priority.bridge == bridge_id_) ? PortRole::kBackup : PortRole::kAlternate;
          p.updt_info = false;
        } else {
          p.selected_role = PortRole::kDesignated;
          p.updt_info = true;
        }
        break;
    }
  }
}

// ---------------------------------------------------------------------------
// Port Receive (17.23).

bool Bridge::Impl::StepPrx(Port& p) {
  if ((p.rcvd_bpdu || p.edge_delay_while != kMigrateTime) && !p.port_enabled) {
    if (p.prx == PrxState::kDiscard && !p.rcvd_bpdu && !p.rcvd_rstp && !p.rcvd_stp && !p.rcvd_msg &&
        p.edge_delay_while == kMigrateTime) {
      return false;
    }
    p.prx = PrxState::kDiscard;  // DISCARD
    p.rcvd_bpdu = p.rcvd_rstp = p.rcvd_stp = false;
    p.rcvd_msg = false;
    p.edge_delay_while = kMigrateTime;
    return true;
  }
  if (p.rcvd_bpdu && p.port_enabled && !p.rcvd_msg) {  // RECEIVE
    p.prx = PrxState::kReceive;
    // updtBPDUVersion()
    if (p.rx.type == BpduType::kRst) {
      p.rcvd_rstp = true;
    } else {
      p.rcvd_stp = true;
    }
    p.oper_edge = p.rcvd_bpdu = false;
    p.rcvd_msg = true;
    p.edge_delay_while = kMigrateTime;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Port Protocol Migration (17.24).

bool Bridge::Impl::StepPpm(Port& p) {
  auto checking_rstp = [&] {
    p.ppm = PpmState::kCheckingRstp;
    p.mcheck = false;
    p.send_rstp = RstpVersion();
    p.mdelay_while = kMigrateTime;
  };
  switch (p.ppm) {
    case PpmState::kCheckingRstp:
      if (p.mdelay_while == 0) {
        p.ppm = PpmState::kSensing;
        p.rcvd_rstp = p.rcvd_stp = false;
        return true;
      }
      if (p.mdelay_while != kMigrateTime && !p.port_enabled) {
        checking_rstp();
        return true;
      }
      return false;
    case PpmState::kSelectingStp:
      if (p.mdelay_while == 0 || !p.port_enabled || p.mcheck) {
        p.ppm = PpmState::kSensing;
        p.rcvd_rstp = p.rcvd_stp = false;
        return true;
      }
      return false;
    case PpmState::kSensing:
      if (!p.port_enabled || p.mcheck || (RstpVersion() && !p.send_rstp && p.rcvd_rstp)) {
        checking_rstp();
        return true;
      }
      if (p.send_rstp && p.rcvd_stp) {
        p.ppm = PpmState::kSelectingStp;
        p.send_rstp = false;
        p.mdelay_while = kMigrateTime;
        return true;
      }
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Bridge Detection (17.25).

bool Bridge::Impl::StepBdm(Port& p) {
  switch (p.bdm) {
    case BdmState::kEdge:
      if ((!p.port_enabled && !p.config.admin_edge) || !p.oper_edge) {
        p.bdm = BdmState::kNotEdge;
        p.oper_edge = false;
        return true;
      }
      return false;
    case BdmState::kNotEdge:
      if ((!p.port_enabled && p.config.admin_edge) ||
          (p.edge_delay_while == 0 && p.config.auto_edge && p.send_rstp && p.proposing)) {
        p.bdm = BdmState::kEdge;
        p.oper_edge = true;
        return true;
      }
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Port Transmit (17.26).

bool Bridge::Impl::StepPtx(Port& p) {
  if (!p.selected || p.updt_info || !p.port_enabled || p.role == PortRole::kDisabled) {
    return false;
  }
  if (p.hello_when == 0) {  // TRANSMIT_PERIODIC -> IDLE
    p.new_info = p.new_info || p.role == PortRole::kDesignated ||
                 (p.role == PortRole::kRoot && p.tc_while != 0);
    p.hello_when = HelloTime();
    return true;
  }
  if (!p.new_info || p.tx_count >= config_.tx_hold_count) return false;
  if (p.send_rstp) {  // TRANSMIT_RSTP
    p.new_info = false;
    TxRstp(p);
    ++p.tx_count;
    p.tc_ack = false;
  } else if (p.role == PortRole::kRoot) {  // TRANSMIT_TCN
    p.new_info = false;
    TxTcn(p);
    ++p.tx_count;
  } else if (p.role == PortRole::kDesignated) {  // TRANSMIT_CONFIG
    p.new_info = false;
    TxConfig(p);
    ++p.tx_count;
    p.tc_ack = false;
  } else {
    return false;
  }
  p.hello_when = HelloTime();  // IDLE
  return true;
}

void Bridge::Impl::TxConfig(Port& p) {
  Bpdu b;
  b.type = BpduType::kConfig;
  b.topology_change = p.tc_while != 0;
  b.topology_change_ack = p.tc_ack;
  b.root_id = BridgeId::FromU64(p.designated_priority.root);
  b.root_path_cost = p.designated_priority.cost;
  b.bridge_id = BridgeId::FromU64(p.designated_priority.bridge);
  b.port_id = p.designated_priority.port;
  b.message_age = ToUnits(p.designated_times.message_age);
  b.max_age = ToUnits(p.designated_times.max_age);
  b.hello_time = ToUnits(p.designated_times.hello_time);
  b.forward_delay = ToUnits(p.designated_times.forward_delay);
  ++p.counters.tx_config;
  out_.bpdus.push_back(TxBpdu{p.config.number, EncodeBpduFrame(b, p.config.address)});
}

void Bridge::Impl::TxRstp(Port& p) {
  Bpdu b;
  b.type = BpduType::kRst;
  b.version = 2;
  b.topology_change = p.tc_while != 0;
  b.proposal = p.proposing;
  switch (p.role) {
    case PortRole::kRoot:
      b.role = BpduRole::kRoot;
      break;
    case PortRole::kDesignated:
      b.role = BpduRole::kDesignated;
      break;
    case PortRole::kAlternate:
    case PortRole::kBackup:
      b.role = BpduRole::kAlternateOrBackup;
      break;
    case PortRole::kDisabled:
      return;
  }
  b.learning = p.learning;
  b.forwarding = p.forwarding;
  b.agreement = p.agree;
  b.root_id = BridgeId::FromU64(p.designated_priority.root);
  b.root_path_cost = p.designated_priority.cost;
  b.bridge_id = BridgeId::FromU64(p.designated_priority.bridge);
  b.port_id = p.designated_priority.port;
  b.message_age = ToUnits(p.designated_times.message_age);
  b.max_age = ToUnits(p.designated_times.max_age);
  b.hello_time = ToUnits(p.designated_times.hello_time);
  b.forward_delay = ToUnits(p.designated_times.forward_delay);
  ++p.counters.tx_rst;
  out_.bpdus.push_back(TxBpdu{p.config.number, EncodeBpduFrame(b, p.config.address)});
}

void Bridge::Impl::TxTcn(Port& p) {
  Bpdu b;
  b.type = BpduType::kTcn;
  ++p.counters.tx_tcn;
  out_.bpdus.push_back(TxBpdu{p.config.number, EncodeBpduFrame(b, p.config.address)});
}

// ---------------------------------------------------------------------------
// Port Information (17.27).

bool Bridge::Impl::BetterOrSameInfo(const Port& p, InfoIs new_info_is) const {
  return (new_info_is == InfoIs::kReceived && p.info_is == InfoIs::kReceived &&
          p.msg_priority.Compare(p.port_priority) <= 0) ||
         (new_info_is == InfoIs::kMine && p.info_is == InfoIs::kMine &&
          p.designated_priority.Compare(p.port_priority) <= 0);
}

// 17.21.8
RcvdInfo Bridge::Impl::RcvInfo(Port& p) {
  const Bpdu& b = p.rx;
  if (b.type == BpduType::kTcn) return RcvdInfo::kOther;
  p.msg_priority = PriorityVector{b.root_id.ToU64(), b.root_path_cost, b.bridge_id.ToU64(),
                                  b.port_id, p.port_id};
  p.msg_times = Times{AgeSeconds(b.message_age), TimerSeconds(b.max_age),
                      TimerSeconds(b.forward_delay), TimerSeconds(b.hello_time)};
  const bool designated = b.type == BpduType::kConfig || b.role == BpduRole::kDesignated;
  const int c = p.msg_priority.Compare(p.port_priority);
  // 17.6: superior = better, or sent by the same designated bridge and port
  // (bridge address and port number only) as the information held.
  const bool same_sender =
      (p.msg_priority.bridge & 0xffffffffffffULL) == (p.port_priority.bridge & 0xffffffffffffULL) &&
      PortNumberOf(p.msg_priority.port) == PortNumberOf(p.port_priority.port);
  const bool superior = c < 0 || (c != 0 && same_sender);
  if (designated) {
    if (superior || (c == 0 && !(p.msg_times == p.port_times))) {
      return RcvdInfo::kSuperiorDesignated;
    }
    if (c == 0) return RcvdInfo::kRepeatedDesignated;
    return RcvdInfo::kInferiorDesignated;
  }
  if ((b.role == BpduRole::kRoot || b.role == BpduRole::kAlternateOrBackup) && !superior) {
    return RcvdInfo::kInferiorRootAlternate;
  }
  return RcvdInfo::kOther;
}

void Bridge::Impl::RecordProposal(Port& p) {
  if (p.rx.type == BpduType::kRst && p.rx.role == BpduRole::kDesignated && p.rx.proposal) {
    p.proposed = true;
  }
}

void Bridge::Impl::RecordAgreement(Port& p) {
  if (RstpVersion() && p.config.point_to_point && p.rx.type == BpduType::kRst && p.rx.agreement) {
    p.agreed = true;
    p.proposing = false;
  } else {
    p.agreed = false;
  }
}

// 802.1Q-2005 13.26.? as corrected from 802.1D-2004 17.21.10: inferior
// designated information from a port that is learning or forwarding means the
// two ends disagree (a one-way link, say): the designated port must discard.
void Bridge::Impl::RecordDispute(Port& p) {
  if (p.rx.type == BpduType::kRst && p.rx.learning) {
    p.disputed = true;
    p.agreed = false;
  }
}

void Bridge::Impl::SetTcFlags(Port& p) {
  if (p.rx.type == BpduType::kTcn) {
    p.rcvd_tcn = true;
    return;
  }
  if (p.rx.topology_change) p.rcvd_tc = true;
  if (p.rx.topology_change_ack && p.rx.type == BpduType::kConfig) p.rcvd_tc_ack = true;
}

void Bridge::Impl::UpdtRcvdInfoWhile(Port& p) {
  if (p.port_times.message_age + 1 <= p.port_times.max_age) {
    p.rcvd_info_while = static_cast<uint16_t>(3 * p.port_times.hello_time);
  } else {
    p.rcvd_info_while = 0;
  }
}

bool Bridge::Impl::StepPim(Port& p) {
  if (!p.port_enabled && p.info_is != InfoIs::kDisabled) {
    // DISABLED
    p.pim = PimState::kDisabled;
    p.rcvd_msg = false;
    p.proposing = p.proposed = p.agree = p.agreed = false;
    p.rcvd_info_while = 0;
    p.info_is = InfoIs::kDisabled;
    p.reselect = true;
    p.selected = false;
    return true;
  }
  switch (p.pim) {
    case PimState::kDisabled:
      if (p.port_enabled) {  // AGED
        p.pim = PimState::kAged;
        p.info_is = InfoIs::kAged;
        p.reselect = true;
        p.selected = false;
        return true;
      }
      if (p.rcvd_msg) {
        p.rcvd_msg = false;
        return true;
      }
      return false;
    case PimState::kAged:
      if (p.selected && p.updt_info) break;  // to UPDATE below
      return false;
    case PimState::kUpdate:
    case PimState::kCurrent:
      if (p.selected && p.updt_info) break;  // to UPDATE below
      if (p.info_is == InfoIs::kReceived && p.rcvd_info_while == 0 && !p.updt_info &&
          !p.rcvd_msg) {  // AGED
        p.pim = PimState::kAged;
        p.info_is = InfoIs::kAged;
        p.reselect = true;
        p.selected = false;
        return true;
      }
      if (p.rcvd_msg && !p.updt_info) {  // RECEIVE
        p.rcvd_info = RcvInfo(p);
        switch (p.rcvd_info) {
          case RcvdInfo::kSuperiorDesignated:
            p.agreed = p.proposing = false;
            RecordProposal(p);
            SetTcFlags(p);
            p.agree = p.agree && BetterOrSameInfo(p, InfoIs::kReceived);
            p.port_priority = p.msg_priority;  // recordPriority()
            p.port_times = p.msg_times;        // recordTimes()
            UpdtRcvdInfoWhile(p);
            p.info_is = InfoIs::kReceived;
            p.reselect = true;
            p.selected = false;
            break;
          case RcvdInfo::kRepeatedDesignated:
            RecordProposal(p);
            SetTcFlags(p);
            UpdtRcvdInfoWhile(p);
            break;
          case RcvdInfo::kInferiorDesignated:
            RecordDispute(p);
            break;
          case RcvdInfo::kInferiorRootAlternate:  // NOT_DESIGNATED
            RecordAgreement(p);
            SetTcFlags(p);
            break;
          case RcvdInfo::kOther:
            if (p.rx.type == BpduType::kTcn) SetTcFlags(p);
            break;
        }
        p.rcvd_msg = false;
        p.pim = PimState::kCurrent;
        return true;
      }
      return false;
  }
  // UPDATE -> CURRENT
  p.pim = PimState::kCurrent;
  p.proposing = p.proposed = false;
  p.agreed = p.agreed && p.info_is == InfoIs::kMine &&
             p.designated_priority.root == p.port_priority.root &&
             BetterOrSameInfo(p, InfoIs::kMine);
  p.synced = p.synced && p.agreed;
  p.port_priority = p.designated_priority;
  p.port_times = p.designated_times;
  p.updt_info = false;
  p.info_is = InfoIs::kMine;
  p.new_info = true;
  return true;
}

// ---------------------------------------------------------------------------
// Port Role Transitions (17.29).

bool Bridge::Impl::AllSynced() const {
  for (const auto& [number, q] : ports_) {
    if (!q.selected || q.role != q.selected_role || q.updt_info) return false;
    if (q.role != PortRole::kRoot && !q.synced) return false;
  }
  return true;
}

bool Bridge::Impl::ReRooted(const Port& p) const {
  for (const auto& [number, q] : ports_) {
    if (&q != &p && q.rr_while != 0) return false;
  }
  return true;
}

void Bridge::Impl::SetSyncTree() {
  for (auto& [number, q] : ports_) q.sync = true;
}
void Bridge::Impl::SetReRootTree() {
  for (auto& [number, q] : ports_) q.re_root = true;
}

bool Bridge::Impl::StepPrt(Port& p) {
  if (!p.selected || p.updt_info) return false;

  auto root_port = [&] {  // ROOT_PORT
    p.prt = PrtState::kRootPort;
    p.role = PortRole::kRoot;
    p.rr_while = FwdDelay(p);
  };
  auto designated_port = [&] {  // DESIGNATED_PORT
    p.prt = PrtState::kDesignatedPort;
    p.role = PortRole::kDesignated;
  };
  auto alternate_port = [&] {  // ALTERNATE_PORT
    p.prt = PrtState::kAlternatePort;
    p.fd_while = FwdDelay(p);
    p.synced = true;
    p.rr_while = 0;
    p.sync = p.re_root = false;
  };
  auto disabled_port = [&] {  // DISABLED_PORT
    p.prt = PrtState::kDisabledPort;
    p.fd_while = MaxAge(p);
    p.synced = true;
    p.rr_while = 0;
    p.sync = p.re_root = false;
  };

  // Role changes, from any state but INIT_PORT.
  if (p.role != p.selected_role) {
    switch (p.selected_role) {
      case PortRole::kDisabled:  // DISABLE_PORT
        p.prt = PrtState::kDisablePort;
        p.role = p.selected_role;
        p.learn = p.forward = false;
        return true;
      case PortRole::kRoot:
        root_port();
        return true;
      case PortRole::kDesignated:
        designated_port();
        return true;
      case PortRole::kAlternate:
      case PortRole::kBackup:  // BLOCK_PORT
        p.prt = PrtState::kBlockPort;
        p.role = p.selected_role;
        p.learn = p.forward = false;
        return true;
    }
  }

  const bool rstp = RstpVersion();
  switch (p.prt) {
    case PrtState::kInitPort:
    case PrtState::kDisablePort:
      if (!p.learning && !p.forwarding) {
        disabled_port();
        return true;
      }
      return false;
    case PrtState::kDisabledPort:
      if (p.fd_while != MaxAge(p) || p.sync || p.re_root || !p.synced) {
        disabled_port();
        return true;
      }
      return false;

    case PrtState::kRootPort: {
      if (p.rr_while != FwdDelay(p)) {
        root_port();
        return true;
      }
      if (p.re_root && p.forward) {  // REROOTED
        p.re_root = false;
        root_port();
        return true;
      }
      const bool may_advance = p.fd_while == 0 || (ReRooted(p) && p.rb_while == 0 && rstp);
      if (may_advance && !p.learn) {  // ROOT_LEARN
        p.fd_while = ForwardDelay(p);
        p.learn = true;
        root_port();
        return true;
      }
      if (may_advance && p.learn && !p.forward) {  // ROOT_FORWARD
        p.fd_while = 0;
        p.forward = true;
        root_port();
        return true;
      }
      if (p.proposed && !p.agree) {  // ROOT_PROPOSED
        SetSyncTree();
        p.proposed = false;
        root_port();
        return true;
      }
      if ((AllSynced() && !p.agree) || (p.proposed && p.agree)) {  // ROOT_AGREED
        p.proposed = p.sync = false;
        p.agree = true;
        p.new_info = true;
        root_port();
        return true;
      }
      if (!p.forward && !p.re_root) {  // REROOT
        SetReRootTree();
        root_port();
        return true;
      }
      return false;
    }

    case PrtState::kDesignatedPort: {
      if (((p.sync && !p.synced) || (p.re_root && p.rr_while != 0) || p.disputed) && !p.oper_edge &&
          (p.learn || p.forward)) {  // DESIGNATED_DISCARD
        p.learn = p.forward = p.disputed = false;
        p.fd_while = ForwardDelay(p);
        designated_port();
        return true;
      }
      const bool may_advance = (p.fd_while == 0 || p.agreed || p.oper_edge) &&
                               (p.rr_while == 0 || !p.re_root) && !p.sync;
      if (may_advance && !p.learn) {  // DESIGNATED_LEARN
        p.learn = true;
        p.fd_while = ForwardDelay(p);
        designated_port();
        return true;
      }
      if (may_advance && p.learn && !p.forward) {  // DESIGNATED_FORWARD
        p.forward = true;
        p.fd_while = 0;
        p.agreed = p.send_rstp;
        designated_port();
        return true;
      }
      if (!p.forward && !p.agreed && !p.proposing && !p.oper_edge) {  // DESIGNATED_PROPOSE
        p.proposing = true;
        p.edge_delay_while = EdgeDelay(p);
        p.new_info = true;
        designated_port();
        return true;
      }
      if ((!p.learning && !p.forwarding && !p.synced) || (p.agreed && !p.synced) ||
          (p.oper_edge && !p.synced) || (p.sync && p.synced)) {  // DESIGNATED_SYNCED
        p.rr_while = 0;
        p.synced = true;
        p.sync = false;
        designated_port();
        return true;
      }
      if (p.rr_while == 0 && p.re_root) {  // DESIGNATED_RETIRED
        p.re_root = false;
        designated_port();
        return true;
      }
      return false;
    }

    case PrtState::kBlockPort:
      if (!p.learning && !p.forwarding) {
        alternate_port();
        return true;
      }
      return false;

    case PrtState::kAlternatePort:
      if (p.role == PortRole::kBackup && p.rb_while != 2 * HelloTime()) {  // BACKUP_PORT
        p.rb_while = static_cast<uint16_t>(2 * HelloTime());
        alternate_port();
        return true;
      }
      if (p.fd_while != FwdDelay(p) || p.sync || p.re_root || !p.synced) {
        alternate_port();
        return true;
      }
      if (p.proposed && !p.agree) {  // ALTERNATE_PROPOSED
        SetSyncTree();
        p.proposed = false;
        alternate_port();
        return true;
      }
      if ((AllSynced() && !p.agree) || (p.proposed && p.agree)) {  // ALTERNATE_AGREED
        p.proposed = false;
        p.agree = true;
        p.new_info = true;
        alternate_port();
        return true;
      }
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Port State Transition (17.30).

bool Bridge::Impl::StepPst(Port& p) {
  switch (p.pst) {
    case PstState::kDiscarding:
      if (p.learn) {
        p.pst = PstState::kLearning;
        p.learning = true;
        p.learned_since_flush = true;
        return true;
      }
      return false;
    case PstState::kLearning:
      if (!p.learn) {
        p.pst = PstState::kDiscarding;
        p.learning = p.forwarding = false;
        return true;
      }
      if (p.forward) {
        p.pst = PstState::kForwarding;
        p.forwarding = true;
        return true;
      }
      return false;
    case PstState::kForwarding:
      if (!p.forward) {
        p.pst = PstState::kDiscarding;
        p.learning = p.forwarding = false;
        return true;
      }
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Topology Change (17.31).

void Bridge::Impl::NewTcWhile(Port& p) {
  if (p.tc_while != 0) return;
  if (p.send_rstp) {
    p.tc_while = static_cast<uint16_t>(HelloTime() + 1);
    p.new_info = true;
  } else {
    p.tc_while = static_cast<uint16_t>(root_times_.max_age + root_times_.forward_delay);
  }
}

void Bridge::Impl::SetTcPropTree(const Port& caller) {
  for (auto& [number, q] : ports_) {
    if (&q != &caller) q.tc_prop = true;
  }
}

void Bridge::Impl::NoteTopologyChange(Port& p) {
  bool active = false;
  for (const auto& [number, q] : ports_) active |= q.tc_while != 0;
  if (!active && !tc_noted_in_run_) ++tc_count_;
  tc_noted_in_run_ = true;
  last_tc_ = last_now_;
  out_.events.push_back(Event{Event::Kind::kTopologyChange, p.config.number});
}

bool Bridge::Impl::StepTcm(Port& p) {
  const bool root_or_designated = p.role == PortRole::kRoot || p.role == PortRole::kDesignated;
  switch (p.tcm) {
    case TcmState::kInactive:
      if (p.learn && !p.fdb_flush) {  // LEARNING
        p.tcm = TcmState::kLearning;
        p.rcvd_tc = p.rcvd_tcn = p.rcvd_tc_ack = p.tc_prop = false;
        return true;
      }
      return false;
    case TcmState::kLearning:
      if (!root_or_designated && !(p.learn || p.learning) &&
          !(p.rcvd_tc || p.rcvd_tcn || p.rcvd_tc_ack || p.tc_prop)) {  // INACTIVE
        p.tcm = TcmState::kInactive;
        p.fdb_flush = true;
        p.tc_while = 0;
        p.tc_ack = false;
        return true;
      }
      if (p.rcvd_tc || p.rcvd_tcn || p.rcvd_tc_ack || p.tc_prop) {  // LEARNING again
        p.rcvd_tc = p.rcvd_tcn = p.rcvd_tc_ack = p.tc_prop = false;
        return true;
      }
      if (root_or_designated && p.forward && !p.oper_edge) {  // DETECTED -> ACTIVE
        NoteTopologyChange(p);
        NewTcWhile(p);
        SetTcPropTree(p);
        p.new_info = true;
        p.tcm = TcmState::kActive;
        return true;
      }
      return false;
    case TcmState::kActive:
      if (!root_or_designated || p.oper_edge) {  // LEARNING
        p.tcm = TcmState::kLearning;
        p.rcvd_tc = p.rcvd_tcn = p.rcvd_tc_ack = p.tc_prop = false;
        return true;
      }
      if (p.rcvd_tcn || p.rcvd_tc) {
        NoteTopologyChange(p);
        if (p.rcvd_tcn) NewTcWhile(p);  // NOTIFIED_TCN
        // NOTIFIED_TC
        p.rcvd_tcn = p.rcvd_tc = false;
        if (p.role == PortRole::kDesignated) p.tc_ack = true;
        SetTcPropTree(p);
        return true;
      }
      if (p.tc_prop && !p.oper_edge) {  // PROPAGATING
        NewTcWhile(p);
        p.fdb_flush = true;
        p.tc_prop = false;
        return true;
      }
      if (p.rcvd_tc_ack) {  // ACKNOWLEDGED
        p.tc_while = 0;
        p.rcvd_tc_ack = false;
        return true;
      }
      return false;
  }
  return false;
}

// The FDB flush is instantaneous here: the request is queued for the switch
// and fdbFlush cleared at once.
bool Bridge::Impl::StepFlush(Port& p) {
  if (!p.fdb_flush) return false;
  p.fdb_flush = false;
  if (p.learned_since_flush) {
    p.learned_since_flush = p.learning;
    const bool queued =
        std::any_of(out_.flushes.begin(), out_.flushes.end(),
                    [&](const FlushRequest& f) { return f.port == p.config.number; });
    if (!queued) out_.flushes.push_back(FlushRequest{p.config.number});
  }
  return true;
}

// ---------------------------------------------------------------------------
// Outputs and status.

Output Bridge::Impl::TakeOutput() {
  Output out = std::move(out_);
  out_ = Output();
  return out;
}

PortState Bridge::Impl::GetPortState(PortNumber number) const {
  const Port* p = Find(number);
  return p ? p->reported_state : PortState::kDiscarding;
}

PortRole Bridge::Impl::GetPortRole(PortNumber number) const {
  const Port* p = Find(number);
  return p ? p->role : PortRole::kDisabled;
}

BridgeStatus Bridge::Impl::GetStatus(TimePoint now) const {
  BridgeStatus s;
  s.bridge_id = BridgeId::FromU64(bridge_id_);
  s.root_id = BridgeId::FromU64(root_priority_.root);
  s.root_path_cost = root_priority_.cost;
  s.root_port = PortNumberOf(root_port_id_);
  s.is_root = root_priority_.root == bridge_id_;
  s.mode = config_.mode;
  s.max_age = root_times_.max_age;
  s.hello_time = HelloTime();
  s.forward_delay = root_times_.forward_delay;
  s.bridge_max_age = config_.max_age;
  s.bridge_hello_time = config_.hello_time;
  s.bridge_forward_delay = config_.forward_delay;
  s.topology_change_count = tc_count_;
  if (last_tc_) s.time_since_topology_change = now - *last_tc_;
  for (const auto& [number, p] : ports_) {
    PortStatus ps;
    ps.number = number;
    ps.id = p.port_id;
    ps.enabled = p.port_enabled;
    ps.bpdu_guard_tripped = p.guard_tripped;
    ps.role = p.role;
    ps.state = p.reported_state;
    ps.path_cost = p.port_path_cost;
    ps.protocol = p.send_rstp ? Protocol::kRstp : Protocol::kStp;
    ps.oper_edge = p.oper_edge;
    ps.admin_edge = p.config.admin_edge;
    ps.point_to_point = p.config.point_to_point;
    ps.root_block = p.config.root_block;
    ps.bpdu_guard = p.config.bpdu_guard;
    ps.designated_root = BridgeId::FromU64(p.port_priority.root);
    ps.designated_cost = p.port_priority.cost;
    ps.designated_bridge = BridgeId::FromU64(p.port_priority.bridge);
    ps.designated_port = p.port_priority.port;
    ps.topology_change_active = p.tc_while != 0;
    ps.counters = p.counters;
    s.topology_change |= p.tc_while != 0;
    s.ports.push_back(ps);
  }
  return s;
}

// ---------------------------------------------------------------------------
// The public face.

Result<std::unique_ptr<Bridge>> Bridge::Create(const BridgeConfig& config, TimePoint now) {
  if (config.address.IsZero() || config.address.IsMulticast()) {
    return Status::Error("stp: bridge address " + config.address.ToString() +
                         " is not a unicast address");
  }
  if (config.priority % 4096 != 0 || config.priority > 61440) {
    return Status::Error("stp: bridge priority " + std::to_string(config.priority) +
                         " is not a multiple of 4096 in 0..61440");
  }
  if (config.hello_time < 1 || config.hello_time > 10) {
    return Status::Error("stp: hello_time " + std::to_string(config.hello_time) +
                         " is outside 1..10 s");
  }
  if (config.forward_delay < 4 || config.forward_delay > 30) {
    return Status::Error("stp: forward_delay " + std::to_string(config.forward_delay) +
                         " is outside 4..30 s");
  }
  if (config.max_age < 6 || config.max_age > 40) {
    return Status::Error("stp: max_age " + std::to_string(config.max_age) + " is outside 6..40 s");
  }
  if (config.max_age < 2 * (config.hello_time + 1)) {
    return Status::Error("stp: max_age " + std::to_string(config.max_age) +
                         " is less than 2 * (hello_time + 1)");
  }
  if (config.tx_hold_count < 1 || config.tx_hold_count > 10) {
    return Status::Error("stp: tx_hold_count " + std::to_string(config.tx_hold_count) +
                         " is outside 1..10");
  }
  return std::unique_ptr<Bridge>(new Bridge(std::make_unique<Impl>(config, now)));
}

Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bridge::~Bridge() = default;

Status Bridge::AddPort(const PortConfig& config, TimePoint now) {
  impl_->AdvanceTo(now);
  return impl_->AddPort(config);
}
Status Bridge::RemovePort(PortNumber port, TimePoint now) {
  impl_->AdvanceTo(now);
  return impl_->RemovePort(port);
}
Status Bridge::SetPortEnabled(PortNumber port, bool up, uint64_t speed_mbps, TimePoint now) {
  impl_->AdvanceTo(now);
  return impl_->SetPortEnabled(port, up, speed_mbps);
}
Status Bridge::ForceProtocolMigrationCheck(PortNumber port, TimePoint now) {
  impl_->AdvanceTo(now);
  return impl_->ForceProtocolMigrationCheck(port);
}
Status Bridge::ReceiveBpdu(PortNumber port, std::span<const uint8_t> frame, TimePoint now) {
  impl_->AdvanceTo(now);
  return impl_->ReceiveBpdu(port, frame, now);
}
void Bridge::AdvanceTo(TimePoint now) { impl_->AdvanceTo(now); }
TimePoint Bridge::NextDeadline() const { return impl_->NextDeadline(); }
Output Bridge::TakeOutput() { return impl_->TakeOutput(); }
BridgeStatus Bridge::GetStatus(TimePoint now) const { return impl_->GetStatus(now); }
PortState Bridge::GetPortState(PortNumber port) const { return impl_->GetPortState(port); }
PortRole Bridge::GetPortRole(PortNumber port) const { return impl_->GetPortRole(port); }

}  // namespace vfabric::stp
