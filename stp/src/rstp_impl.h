// Internal state of a Bridge: the variables of 802.1D-2004 17.17-17.20 under
// their standard names (snake_case), one struct per port.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "vfabric/stp/rstp.h"

namespace vfabric::stp {

// A priority vector (17.6): {root, root path cost, designated bridge,
// designated port}, plus the receiving port's id as the tie-breaker in root
// port selection.
struct PriorityVector {
  uint64_t root = 0;
  uint32_t cost = 0;
  uint64_t bridge = 0;
  PortId port = 0;
  PortId rx_port = 0;  // not part of the comparisons of rcvInfo()/betterorsameInfo()

  // Lexicographic on the first four components: negative when *this is better.
  int Compare(const PriorityVector& other) const;
  bool SameAs(const PriorityVector& other) const { return Compare(other) == 0; }
};

// 17.19.x timer parameter sets, in whole seconds.
struct Times {
  uint16_t message_age = 0;
  uint16_t max_age = 20;
  uint16_t forward_delay = 15;
  uint16_t hello_time = 2;
  friend bool operator==(const Times&, const Times&) = default;
};

enum class InfoIs : uint8_t { kDisabled, kMine, kAged, kReceived };
enum class RcvdInfo : uint8_t {
  kSuperiorDesignated,
  kRepeatedDesignated,
  kInferiorDesignated,
  kInferiorRootAlternate,
  kOther
};

enum class PrxState : uint8_t { kDiscard, kReceive };
enum class PpmState : uint8_t { kCheckingRstp, kSelectingStp, kSensing };
enum class BdmState : uint8_t { kEdge, kNotEdge };
enum class PtxState : uint8_t { kTransmitInit, kIdle };
enum class PimState : uint8_t { kDisabled, kAged, kUpdate, kCurrent };
enum class PrtState : uint8_t {
  kInitPort,
  kDisablePort,
  kDisabledPort,
  kRootPort,
  kDesignatedPort,
  kBlockPort,
  kAlternatePort,
};
enum class PstState : uint8_t { kDiscarding, kLearning, kForwarding };
enum class TcmState : uint8_t { kInactive, kLearning, kActive };

struct Port {
  PortConfig config;
  PortId port_id = 0;
  uint32_t port_path_cost = 20000;
  bool link_up = false;
  bool guard_tripped = false;
  bool port_enabled = false;  // link_up && !guard_tripped

  // Received BPDU awaiting processing (PRX / PIM).
  Bpdu rx;
  bool rcvd_bpdu = false;
  bool rcvd_rstp = false;
  bool rcvd_stp = false;
  bool rcvd_msg = false;

  // 17.19 per-port variables.
  bool agree = false, agreed = false, disputed = false, fdb_flush = false;
  bool forward = false, forwarding = false, learn = false, learning = false;
  bool mcheck = false, new_info = false, oper_edge = false;
  bool proposed = false, proposing = false;
  bool rcvd_tc = false, rcvd_tc_ack = false, rcvd_tcn = false;
  bool re_root = false, reselect = false, selected = false, send_rstp = false;
  bool sync = false, synced = false, tc_ack = false, tc_prop = false, updt_info = false;
  InfoIs info_is = InfoIs::kDisabled;
  RcvdInfo rcvd_info = RcvdInfo::kOther;
  PortRole role = PortRole::kDisabled;
  PortRole selected_role = PortRole::kDisabled;
  PriorityVector port_priority, designated_priority, msg_priority;
  Times port_times, designated_times, msg_times;
  uint32_t tx_count = 0;

  // 17.17 timers, in seconds.
  uint16_t edge_delay_while = 0, fd_while = 0, hello_when = 0, mdelay_while = 0;
  uint16_t rb_while = 0, rcvd_info_while = 0, rr_while = 0, tc_while = 0;

  // State machine states.
  PrxState prx = PrxState::kDiscard;
  PpmState ppm = PpmState::kCheckingRstp;
  BdmState bdm = BdmState::kNotEdge;
  PtxState ptx = PtxState::kTransmitInit;
  PimState pim = PimState::kDisabled;
  PrtState prt = PrtState::kInitPort;
  PstState pst = PstState::kDiscarding;
  TcmState tcm = TcmState::kInactive;

  // Bookkeeping for outputs.
  PortState reported_state = PortState::kDiscarding;
  bool learned_since_flush = false;
  bool reported_send_rstp = true;
  PortCounters counters;
};

class Bridge::Impl {
 public:
  Impl(const BridgeConfig& config, TimePoint now);

  Status AddPort(const PortConfig& config);
  Status RemovePort(PortNumber number);
  Status SetPortEnabled(PortNumber number, bool up, uint64_t speed_mbps);
  Status ForceProtocolMigrationCheck(PortNumber number);
  Status ReceiveBpdu(PortNumber number, std::span<const uint8_t> frame, TimePoint now);
  void AdvanceTo(TimePoint now);
  TimePoint NextDeadline() const { return next_tick_; }
  Output TakeOutput();
  BridgeStatus GetStatus(TimePoint now) const;
  PortState GetPortState(PortNumber number) const;
  PortRole GetPortRole(PortNumber number) const;
  // The engine's whole state as bytes, and back (rstp_state.cc; see
  // Bridge::SaveState). LoadState changes nothing when it fails.
  std::vector<uint8_t> SaveState() const;
  Status LoadState(std::span<const uint8_t> state);
  bool HasPort(PortNumber number) const { return ports_.count(number) != 0; }

 private:
  Port* Find(PortNumber number);
  const Port* Find(PortNumber number) const;
  void InitPort(Port& p);  // BEGIN for one port's machines
  void Tick();
  // Runs every state machine until none can make a transition, then emits
  // the outputs the run produced.
  void Run();
  void EmitOutputs();

  // One transition at most per call; true when one was made.
  bool StepPrs();
  bool StepPrx(Port& p);
  bool StepPpm(Port& p);
  bool StepBdm(Port& p);
  bool StepPtx(Port& p);
  bool StepPim(Port& p);
  bool StepPrt(Port& p);
  bool StepPst(Port& p);
  bool StepTcm(Port& p);
  bool StepFlush(Port& p);

  // 17.21 procedures.
  bool BetterOrSameInfo(const Port& p, InfoIs new_info_is) const;
  RcvdInfo RcvInfo(Port& p);
  void RecordProposal(Port& p);
  void RecordAgreement(Port& p);
  void RecordDispute(Port& p);
  void SetTcFlags(Port& p);
  void UpdtRcvdInfoWhile(Port& p);
  void UpdtRolesTree();
  void NewTcWhile(Port& p);
  void SetTcPropTree(const Port& caller);
  void SetSyncTree();
  void SetReRootTree();
  bool AllSynced() const;
  bool ReRooted(const Port& p) const;
  void TxConfig(Port& p);
  void TxRstp(Port& p);
  void TxTcn(Port& p);
  void NoteTopologyChange(Port& p);

  // 17.20 derived values.
  bool RstpVersion() const { return config_.mode == Mode::kRstp; }
  uint16_t FwdDelay(const Port& p) const { return p.designated_times.forward_delay; }
  uint16_t MaxAge(const Port& p) const { return p.designated_times.max_age; }
  uint16_t HelloTime() const { return static_cast<uint16_t>(config_.hello_time); }
  uint16_t ForwardDelay(const Port& p) const { return p.send_rstp ? HelloTime() : FwdDelay(p); }
  uint16_t EdgeDelay(const Port& p) const {
    return p.config.point_to_point ? kMigrateTime : MaxAge(p);
  }

  static constexpr uint16_t kMigrateTime = 3;

  BridgeConfig config_;
  uint64_t bridge_id_ = 0;
  PriorityVector bridge_priority_;
  Times bridge_times_;
  PriorityVector root_priority_;
  PortId root_port_id_ = 0;
  Times root_times_;
  bool prs_init_ = true;  // PRS: INIT_BRIDGE pending

  std::map<PortNumber, Port> ports_;
  TimePoint next_tick_;
  TimePoint last_now_;

  uint64_t tc_count_ = 0;
  std::optional<TimePoint> last_tc_;
  bool tc_noted_in_run_ = false;
  uint64_t reported_root_ = 0;

  Output out_;
};

}  // namespace vfabric::stp
