// The switch: control-side bookkeeping, the command queue, the datapath
// turn and the forwarding pipeline. See switch.h and bridge/DESIGN.md.
#include "vfabric/bridge/switch.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "capture_hook.h"
#include "mapping.h"
#include "mirror.h"
#include "vfabric/bridge/checksum.h"
#include "vfabric/bridge/gso.h"
#include "vfabric/common/log.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vlan/tag.h"

namespace vfabric::bridge {

std::string_view ToString(StpState state) {
  switch (state) {
    case StpState::kDiscarding:
      return "discarding";
    case StpState::kLearning:
      return "learning";
    case StpState::kForwarding:
      return "forwarding";
  }
  return "unknown";
}

namespace {

constexpr size_t kMaxBatch = 256;
constexpr uint64_t kEventToken = 1ull << 32;
constexpr uint64_t kTimerToken = (1ull << 32) + 1;
constexpr uint64_t kStatsToken = (1ull << 32) + 2;
constexpr size_t kDumpChunk = 1024;
constexpr size_t kExpireBudget = 4096;

// Written by the datapath thread only (load + store, no read-modify-write
// bus lock), read by any thread.
class RelaxedCounter {
 public:
  void Add(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }
  void Reset() { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct alignas(64) AtomicPortCounters {
  RelaxedCounter rx_packets, rx_bytes, tx_packets, tx_bytes, bpdu_trapped, csum_completed,
      segmented, mac_limit_not_learned;
  RelaxedCounter drops[kDropReasonCount];

  void Drop(DropReason r, uint64_t n = 1) { drops[static_cast<size_t>(r)].Add(n); }
  void Reset() {
    rx_packets.Reset(), rx_bytes.Reset(), tx_packets.Reset(), tx_bytes.Reset();
    bpdu_trapped.Reset(), csum_completed.Reset(), segmented.Reset(), mac_limit_not_learned.Reset();
    for (auto& d : drops) d.Reset();
  }
  PortCounters Read() const {
    PortCounters c;
    c.rx_packets = rx_packets.Get();
    c.rx_bytes = rx_bytes.Get();
    c.tx_packets = tx_packets.Get();
    c.tx_bytes = tx_bytes.Get();
    c.bpdu_trapped = bpdu_trapped.Get();
    c.csum_completed = csum_completed.Get();
    c.segmented = segmented.Get();
    c.mac_limit_not_learned = mac_limit_not_learned.Get();
    for (size_t i = 0; i < kDropReasonCount; ++i) c.drops[i] = drops[i].Get();
    return c;
  }
};

// Where a frame of a VLAN floods to, and whether it leaves tagged there.
struct FloodEntry {
  PortId port;
  bool tagged;
  uint16_t group;  // PortSettings::flood_group
};

struct PortSnap {
  bool present = false;
  StpState stp = StpState::kDiscarding;
  vlan::PortVlanConfig vlan;
  // The vlan library's own decisions, asked once per VID when the snapshot
  // is built, so the hot path is a byte load with the library's semantics:
  // how an untagged frame is classified, and per VID (bits 0-1) the
  // EgressAction and (bit 2) whether a frame with one C-tag of that VID is
  // accepted.
  vlan::Ingress untagged;
  // 4096 entries. Shared between snapshots: a port's table is computed when
  // its settings change, not on every rebuild (that was 4094 classifications
  // per port per rebuild, and a rebuild per port added: quadratic).
  std::shared_ptr<const std::array<uint8_t, 4096>> vid;
  // The VIDs the port floods to when forwarding, and whether tagged there:
  // the rebuild's flood lists come from these, not from 4094 lookups.
  std::shared_ptr<const std::vector<std::pair<uint16_t, bool>>> egress;
  // A mirror's output port: in no flood list, every VID's egress kDrop
  // (so a unicast to it is dropped), and what it receives is dropped.
  bool mirror_output = false;
  uint16_t flood_group = 0;  // PortSettings::flood_group
};
constexpr uint8_t kEgressMask = 3;
constexpr uint8_t kTaggedAccepted = 4;

// An immutable configuration of the datapath, built on the control thread.
struct Snapshot {
  std::vector<PortSnap> ports;                          // by PortId (up to the highest present)
  std::vector<std::vector<FloodEntry>> flood;           // by VLAN: forwarding member ports
  std::shared_ptr<const internal::MirrorTable> mirror;  // null: no mirrors

  const PortSnap* port(PortId id) const {
    return id < ports.size() && ports[id].present ? &ports[id] : nullptr;
  }
};

struct ControlPort {
  std::string name;
  PortKind kind = PortKind::kMemory;
  PortSettings settings;
  PortSnap snap;  // settings as the datapath reads them (MakePortSnap)
};

// The datapath's view of one port's settings: the vlan library asked once
// per VID here, on the control thread, when the settings change.
PortSnap MakePortSnap(const PortSettings& settings) {
  PortSnap p;
  p.present = true;
  p.stp = settings.stp;
  p.flood_group = settings.flood_group;
  p.vlan = ToVlan(settings.vlan);
  uint8_t frame[18] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5};
  p.untagged = vlan::ClassifyIngress(p.vlan, {frame, 14});
  auto vid = std::make_shared<std::array<uint8_t, 4096>>();
  vid->fill(static_cast<uint8_t>(vlan::EgressAction::kDrop));
  auto egress = std::make_shared<std::vector<std::pair<uint16_t, bool>>>();
  frame[16] = 0x88, frame[17] = 0xb5;
  for (uint16_t v = 1; v <= vlan::kMaxVid; ++v) {
    vlan::StoreTag(frame + vlan::kMacsLen, v);
    const vlan::Ingress in = vlan::ClassifyIngress(p.vlan, {frame, 18});
    const vlan::EgressAction action = vlan::ClassifyEgress(p.vlan, v);
    (*vid)[v] =
        static_cast<uint8_t>(static_cast<uint8_t>(action) | (in.accepted() ? kTaggedAccepted : 0));
    if (action != vlan::EgressAction::kDrop)
      egress->emplace_back(v, action == vlan::EgressAction::kTagged);
  }
  p.vid = std::move(vid);
  p.egress = std::move(egress);
  return p;
}

uint64_t SteadyNowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// 01:80:c2:00:00:00 - 01:80:c2:00:00:0f, with one 8-byte load (a frame is
// at least 14 bytes): bytes 0-4 and the high nibble of byte 5 compared at
// once, in whatever byte order the machine has.
bool IsLinkLocal(const uint8_t* dst) {
  static constexpr uint8_t kPrefix[8] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0x00, 0x00};
  static constexpr uint8_t kMask[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00};
  uint64_t v, prefix, mask;
  std::memcpy(&v, dst, 8);
  std::memcpy(&prefix, kPrefix, 8);
  std::memcpy(&mask, kMask, 8);
  return (v & mask) == prefix;
}

MacAddress MacAt(const uint8_t* p) {
  MacAddress m;
  std::memcpy(m.bytes.data(), p, 6);
  return m;
}

}  // namespace

struct Switch::Impl {
  // ---- fixed at Create ----
  SwitchConfig config;
  std::unique_ptr<FramePool> pool;
  std::unique_ptr<fdb::Table> fdb;
  std::unique_ptr<AtomicPortCounters[]> counters;  // fdb.max_ports
  std::unique_ptr<std::atomic<bool>[]> failed;     // fdb.max_ports; see PortFailed()
  // fdb.max_ports; null: no capture (capture.h). Written by commands on the
  // datapath thread, loaded once per batch by the pipeline.
  std::unique_ptr<std::atomic<CaptureRing*>[]> capture;
  UniqueFd epoll;
  UniqueFd event;
  UniqueFd timer;
  UniqueFd stats_timer;  // periodic while kernel_stats_ports is not empty

  // ---- control side (control_mutex) ----
  mutable std::mutex control_mutex;
  std::vector<std::optional<ControlPort>> control_ports;    // by PortId
  std::vector<std::shared_ptr<CaptureRing>> capture_rings;  // by PortId: keeps `capture`'s alive
  std::vector<MirrorSettings> control_mirrors;

  // ---- command queue ----
  struct Command {
    std::function<Status(Impl&)> fn;
    Status result;
    std::atomic<bool> done{false};
  };
  static constexpr size_t kQueueSize = 64;
  std::mutex producer_mutex;
  std::array<Command*, kQueueSize> queue{};
  std::atomic<size_t> queue_head{0};  // consumer
  std::atomic<size_t> queue_tail{0};  // producer

  // ---- the datapath thread ----
  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<bool> stop{false};

  // ---- datapath state (datapath thread only) ----
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<std::unique_ptr<Port>> ports;    // by PortId
  std::vector<bool> takes_offload;             // by PortId
  std::vector<bool> cheap_to_poll;             // by PortId: may become busy
  std::vector<std::unique_ptr<TxItem[]>> txq;  // by PortId, batch_size each
  std::vector<uint32_t> txq_len;               // by PortId
  std::vector<PortId> active;                  // present ports
  std::vector<PortId> polled;                  // present ports without an fd
  // Busy ports polled instead of watched (Port::cheap_to_poll), out of the
  // epoll set, and how many turns each has yielded nothing in a row.
  std::vector<PortId> busy;
  std::vector<uint16_t> idle_turns;
  std::vector<PortId> dirty;               // ports with queued tx this batch
  std::vector<PortId> kernel_stats_ports;  // present ports with reports_kernel_drops()
  uint64_t timer_armed_ns = 0;             // 0: not armed
  uint64_t turn = 0;
  // Batch scratch.
  std::array<Frame*, kMaxBatch> frames{};
  std::array<Frame*, kMaxBatch> keep{};
  std::array<fdb::Key, kMaxBatch> learn_keys{};
  std::array<PortId, kMaxBatch> learn_ports{};
  std::array<fdb::LearnOutcome, kMaxBatch> outcomes{};
  std::array<fdb::Key, kMaxBatch> lookup_keys{};
  std::array<PortId, kMaxBatch> lookup_out{};
  std::array<uint16_t, kMaxBatch> vlan_of{};
  std::array<uint16_t, kMaxBatch> tci_of{};
  std::array<int16_t, kMaxBatch> lookup_slot{};  // -1: flood
  std::array<epoll_event, 64> events{};

  uint64_t Now() const { return config.clock ? config.clock() : SteadyNowNs(); }
  // The clock read once per turn, when a turn first needs it: learning
  // stamps every batch, and a clock read per batch was ~2% of the switch's
  // CPU when TCP ACKs came one or two per batch.
  uint64_t turn_now_ns = 0;  // 0: not read this turn
  uint64_t TurnNow() {
    if (turn_now_ns == 0) turn_now_ns = Now();
    return turn_now_ns;
  }

  Status Execute(std::function<Status(Impl&)> fn);
  void DrainCommands();
  size_t Turn(int timeout_ms);
  size_t ProcessPort(PortId in);
  [[gnu::always_inline]] void Enqueue(PortId out, Frame* f, bool tagged, uint16_t tci);
  void TransmitAll();
  void PortFailed(PortId id);
  void StaleFdbDrop(PortId in, PortId out);
  void MirrorCopies(const internal::MirrorTable& mirror, PortId in, PortId out, size_t i);
  bool stale_fdb_logged = false;
  bool ArmOneShot(PortId id);
  void MakeBusy(PortId id);
  size_t PollBusy();
  static constexpr uint16_t kColdAfterTurns = 128;
  void TransmitQueue(PortId out);
  void SegmentTo(PortId out, Frame* f, bool tagged, uint16_t tci);
  void Ageing();
  void ArmTimer();
  void ReadKernelDrops();
  Status ArmStatsTimer(bool on);

  std::shared_ptr<const Snapshot> BuildSnapshot() const;  // REQUIRES control_mutex
  // Snapshot rebuilds so far (SnapshotBuilds()).
  mutable std::atomic<uint64_t> snapshot_builds{0};
  // Batching (REQUIRES control_mutex for all three): inside a batch,
  // configuration changes leave the datapath's snapshot stale and queue
  // their FDB flushes; the batch's end installs one snapshot for them all.
  size_t batch_depth = 0;
  bool snapshot_stale = false;
  std::vector<PortId> pending_flush;
  // Builds and installs a snapshot, then runs the queued flushes.
  Status InstallSnapshot();  // REQUIRES control_mutex
  // InstallSnapshot() if a batch left the snapshot stale: before anything
  // the stale snapshot would get wrong (a static FDB entry to a port the
  // datapath does not know yet, a removal).
  Status InstallPendingSnapshot();  // REQUIRES control_mutex
  std::string PortName(PortId id) const;
};

// ---------------------------------------------------------------------------
// Commands

Status Switch::Impl::Execute(std::function<Status(Impl&)> fn) {
  if (!running.load(std::memory_order_acquire)) return fn(*this);
  std::lock_guard<std::mutex> lock(producer_mutex);
  if (!running.load(std::memory_order_acquire)) return fn(*this);
  Command command;
  command.fn = std::move(fn);
  const size_t tail = queue_tail.load(std::memory_order_relaxed);
  // One producer at a time and each waits for its command: never full.
  queue[tail % kQueueSize] = &command;
  queue_tail.store(tail + 1, std::memory_order_release);
  const uint64_t one = 1;
  if (::write(event.get(), &one, sizeof one) < 0 && errno != EAGAIN)
    return Status::FromErrno("switch " + config.name + ": eventfd write", errno);
  command.done.wait(false, std::memory_order_acquire);
  return command.result;
}

void Switch::Impl::DrainCommands() {
  size_t head = queue_head.load(std::memory_order_relaxed);
  const size_t tail = queue_tail.load(std::memory_order_acquire);
  while (head != tail) {
    Command* c = queue[head % kQueueSize];
    c->result = c->fn(*this);
    ++head;
    queue_head.store(head, std::memory_order_release);
    c->done.store(true, std::memory_order_release);
    c->done.notify_one();
  }
}

// ---------------------------------------------------------------------------
// Snapshots

std::shared_ptr<const Snapshot> Switch::Impl::BuildSnapshot() const {
  snapshot_builds.fetch_add(1, std::memory_order_relaxed);
  auto snap = std::make_shared<Snapshot>();
  size_t top = 0;
  for (size_t i = 0; i < control_ports.size(); ++i)
    if (control_ports[i]) top = i + 1;
  snap->ports.resize(top);
  snap->flood.resize(4096);
  const auto present = [&](PortId id) { return id < top && control_ports[id].has_value(); };
  // From the egress list computed when the port's settings changed, not
  // 4,094 classifications per mirror output per rebuild.
  const auto untagged_of = [&](PortId id) {
    VlanSet untagged;
    for (const auto& [vid, tagged] : *control_ports[id]->snap.egress)
      if (!tagged) untagged.Add(vid);
    return untagged;
  };
  snap->mirror = internal::BuildMirrorTable(control_mirrors, top, present, untagged_of);
  for (size_t i = 0; i < top; ++i) {
    if (!control_ports[i]) continue;
    PortSnap& p = snap->ports[i] = control_ports[i]->snap;
    if (snap->mirror) {
      for (size_t b = 0; b < kMaxMirrors && snap->mirror->same_output[b]; ++b)
        if (snap->mirror->output[b] == i) p.mirror_output = true;
      if (p.mirror_output) {
        // Its own table: the shared one stays the port's as configured.
        auto vids = std::make_shared<std::array<uint8_t, 4096>>(*p.vid);
        for (uint8_t& v : *vids)
          v = static_cast<uint8_t>((v & ~kEgressMask) |
                                   static_cast<uint8_t>(vlan::EgressAction::kDrop));
        p.vid = std::move(vids);
        continue;
      }
    }
    if (p.stp != StpState::kForwarding) continue;
    for (const auto& [vid, tagged] : *p.egress)
      snap->flood[vid].push_back(FloodEntry{static_cast<PortId>(i), tagged, p.flood_group});
  }
  return snap;
}

Status Switch::Impl::InstallSnapshot() {
  snapshot_stale = false;
  std::shared_ptr<const Snapshot> snap = BuildSnapshot();
  std::vector<PortId> flush;
  flush.swap(pending_flush);
  return Execute([&](Impl& dp) -> Status {
    std::swap(dp.snapshot, snap);  // the old snapshot is released by the control thread
    for (PortId id : flush)
      if (dp.ports[id]) dp.fdb->FlushPort(id);
    return Status::Ok();
  });
}

Status Switch::Impl::InstallPendingSnapshot() {
  if (!snapshot_stale && pending_flush.empty()) return Status::Ok();
  return InstallSnapshot();
}

std::string Switch::Impl::PortName(PortId id) const {
  std::lock_guard<std::mutex> lock(control_mutex);
  if (id < control_ports.size() && control_ports[id]) return control_ports[id]->name;
  // Not "#" + std::to_string(id): GCC 12 at -O3 reports a bogus -Wrestrict
  // on a one-character literal prepended to a temporary (GCC PR 105329).
  std::string name(1, '#');
  name += std::to_string(id);
  return name;
}

// ---------------------------------------------------------------------------
// The datapath turn

// The port's fd reports an error or hang-up and yields nothing (a tap whose
// device went with its namespace, a packet socket whose link was deleted):
// level-triggered epoll would report it forever, so it leaves the epoll set.
// It stays a port (transmits fail and count tx_error) until the control
// plane removes it; PortInfo::failed says so.
void Switch::Impl::PortFailed(PortId id) {
  ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, ports[id]->fd(), nullptr);
  failed[id].store(true, std::memory_order_relaxed);
  VF_LOG(kWarning) << "switch " << config.name << ": port " << ports[id]->name()
                   << ": fd reports an error; no longer polled";
}

// Counted on the ingress port (the egress port is gone); logged once per
// switch, the count says how often.
void Switch::Impl::StaleFdbDrop(PortId in, PortId out) {
  counters[in].Drop(DropReason::kStaleFdb);
  if (stale_fdb_logged) return;
  stale_fdb_logged = true;
  VF_LOG(kError) << "switch " << config.name << ": the FDB sends frames from port "
                 << ports[in]->name() << " to port #" << out
                 << ", which the switch does not have; dropped (counted as stale_fdb)";
}

void Switch::Impl::ReadKernelDrops() {
  for (PortId id : kernel_stats_ports) {
    const uint64_t dropped = ports[id]->TakeKernelDrops();
    if (dropped) counters[id].Drop(DropReason::kRxKernel, dropped);
  }
}

// Periodic every kernel_stats_interval_ms (on), or disarmed (off).
Status Switch::Impl::ArmStatsTimer(bool on) {
  itimerspec spec{};
  if (on) {
    const uint32_t ms = config.kernel_stats_interval_ms;
    spec.it_interval.tv_sec = static_cast<time_t>(ms / 1000);
    spec.it_interval.tv_nsec = static_cast<long>(ms % 1000) * 1'000'000;
    spec.it_value = spec.it_interval;
  }
  if (::timerfd_settime(stats_timer.get(), 0, &spec, nullptr) < 0)
    return Status::FromErrno("switch " + config.name + ": timerfd_settime (kernel stats)", errno);
  return Status::Ok();
}

void Switch::Impl::ArmTimer() {
  const std::optional<uint64_t> deadline = fdb->NextDeadline();
  if (!deadline) return;
  if (timer_armed_ns != 0 && timer_armed_ns <= *deadline) return;
  // The FDB's clock is steady_clock (CLOCK_MONOTONIC) unless a test injects
  // one; then the timer is only a wakeup and RunOnce() checks the deadline.
  itimerspec spec{};
  const uint64_t at = std::max<uint64_t>(*deadline, 1);
  spec.it_value.tv_sec = static_cast<time_t>(at / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(at % 1'000'000'000);
  if (::timerfd_settime(timer.get(), TFD_TIMER_ABSTIME, &spec, nullptr) == 0) timer_armed_ns = at;
}

void Switch::Impl::Ageing() {
  // An armed timer is at or before the oldest entry's deadline: refreshes
  // and new entries only move deadlines later, and the ageing-time and
  // FDB-limits commands disarm it. Until it fires, nothing can be due, and the oldest entry
  // (a cache miss) and the clock need not be read every turn. An injected
  // clock does not drive the timerfd, so it is asked every turn.
  if (timer_armed_ns != 0 && !config.clock) return;
  const std::optional<uint64_t> deadline = fdb->NextDeadline();
  if (!deadline) return;
  const uint64_t now = TurnNow();
  if (*deadline <= now) {
    fdb->Expire(now, kExpireBudget);
    timer_armed_ns = 0;
  }
  ArmTimer();
}

// A port's fd wakes the switch through epoll for every frame: the socket's
// wait queue has epoll's entry, so the kernel takes the epoll lock and
// queues a wake-up per frame it delivers (sock_def_readable, ~7% of the
// switch's CPU in a TCP run, where the receiving host's ACKs are delivered
// on that CPU). So a port that is cheap to poll is watched one-shot: its
// first event disables it in the epoll set, and the port is then polled
// every turn until it has been idle kColdAfterTurns turns in a row; then
// EPOLL_CTL_MOD arms it again (which reports a frame that came meanwhile at
// once). Taking the port out of the set and adding it back instead cost two
// syscalls, an allocation and a poll per cycle, and a TCP run cycles once
// every two or three frames.
bool Switch::Impl::ArmOneShot(PortId id) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = id;
  return ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, ports[id]->fd(), &ev) == 0;
}

void Switch::Impl::MakeBusy(PortId id) {
  busy.push_back(id);
  idle_turns[id] = 0;
}

size_t Switch::Impl::PollBusy() {
  size_t received = 0;
  for (size_t i = 0; i < busy.size();) {
    const PortId id = busy[i];
    const size_t got = ProcessPort(id);
    received += got;
    if (got != 0) {
      idle_turns[id] = 0;
    } else if (++idle_turns[id] >= kColdAfterTurns) {
      if (ArmOneShot(id)) {
        busy[i] = busy.back();
        busy.pop_back();
        continue;
      }
      idle_turns[id] = 0;  // stays polled rather than lost
    }
    ++i;
  }
  return received;
}

size_t Switch::Impl::Turn(int timeout_ms) {
  DrainCommands();
  int n = 0;
  if (!polled.empty() || !busy.empty()) {
    // Poll mode: some port has no fd, so the turn never sleeps. Commands are
    // seen through the queue itself and ageing through the clock, so epoll
    // (the other ports, and the eventfd/timerfd) is asked every 16th turn.
    if ((++turn & 15) == 0)
      n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), 0);
  } else {
    n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  }
  turn_now_ns = 0;  // after the wait, which may have slept
  size_t received = 0;
  bool commands = false;
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[static_cast<size_t>(i)].data.u64;
    if (token == kEventToken) {
      uint64_t value;
      [[maybe_unused]] ssize_t r = ::read(event.get(), &value, sizeof value);
      commands = true;
    } else if (token == kTimerToken) {
      uint64_t value;
      [[maybe_unused]] ssize_t r = ::read(timer.get(), &value, sizeof value);
      timer_armed_ns = 0;
    } else if (token == kStatsToken) {
      uint64_t value;
      [[maybe_unused]] ssize_t r = ::read(stats_timer.get(), &value, sizeof value);
      ReadKernelDrops();
    } else if (token < ports.size() && ports[token]) {
      const PortId id = static_cast<PortId>(token);
      const size_t got = ProcessPort(id);
      received += got;
      if (got == 0 && (events[static_cast<size_t>(i)].events & (EPOLLERR | EPOLLHUP)) != 0) {
        PortFailed(id);
      } else if (cheap_to_poll[id]) {
        // The event disarmed the port: polled from now on, or armed again.
        if (got != 0 || !ArmOneShot(id)) MakeBusy(id);
      }
    }
  }
  for (PortId id : polled) received += ProcessPort(id);
  received += PollBusy();
  if (commands) DrainCommands();
  Ageing();
  return received;
}

inline void Switch::Impl::Enqueue(PortId out, Frame* f, bool tagged, uint16_t tci) {
  AtomicPortCounters& oc = counters[out];
  if (f->vnet.has_offload() && !takes_offload[out]) [[unlikely]] {
    if (f->vnet.is_gso()) {
      SegmentTo(out, f, tagged, tci);
      return;
    }
    if (f->vnet.needs_csum()) {
      // Completed once, in place: every port this frame still goes to
      // (also those queued before) then sends the completed bytes.
      if (!CompleteChecksum(*f)) {
        oc.Drop(DropReason::kMalformed);
        return;
      }
      oc.csum_completed.Add(1);
    }
  }
  uint32_t& len = txq_len[out];
  if (len == 0 && !std::count(dirty.begin(), dirty.end(), out)) dirty.push_back(out);
  txq[out][len++] = TxItem{f, tci, tagged};
}

void Switch::Impl::TransmitQueue(PortId out) {
  const uint32_t len = txq_len[out];
  if (len == 0) return;
  txq_len[out] = 0;
  if (CaptureRing* cap = capture[out].load(std::memory_order_relaxed)) [[unlikely]]
    CaptureSent(*cap, {txq[out].get(), len});
  const TxResult r = ports[out]->Transmit({txq[out].get(), len});
  AtomicPortCounters& oc = counters[out];
  oc.tx_packets.Add(r.packets);
  oc.tx_bytes.Add(r.bytes);
  if (r.full) oc.Drop(DropReason::kTxQueueFull, r.full);
  if (r.errors) oc.Drop(DropReason::kTxError, r.errors);
}

void Switch::Impl::SegmentTo(PortId out, Frame* f, bool tagged, uint16_t tci) {
  AtomicPortCounters& oc = counters[out];
  // What is queued for the port leaves first, so the segments keep their
  // place in the port's order.
  TransmitQueue(out);
  GsoCursor cursor;
  std::array<Frame*, 32> segments;
  std::array<TxItem, 32> items;
  bool counted = false;
  while (!cursor.done) {
    size_t count = 0;
    const GsoError err = SegmentTcp(*f, *pool, segments, &count, &cursor);
    for (size_t i = 0; i < count; ++i) items[i] = TxItem{segments[i], tci, tagged};
    if (count) {
      if (CaptureRing* cap = capture[out].load(std::memory_order_relaxed)) [[unlikely]]
        CaptureSent(*cap, {items.data(), count});
      const TxResult r = ports[out]->Transmit({items.data(), count});
      oc.tx_packets.Add(r.packets);
      oc.tx_bytes.Add(r.bytes);
      if (r.full) oc.Drop(DropReason::kTxQueueFull, r.full);
      if (r.errors) oc.Drop(DropReason::kTxError, r.errors);
      for (size_t i = 0; i < count; ++i) pool->Free(segments[i]);
      if (!counted) oc.segmented.Add(1), counted = true;
    }
    if (err == GsoError::kOk) continue;
    if (err == GsoError::kUnsupported)
      oc.Drop(DropReason::kOffloadUnsupported);
    else if (err == GsoError::kNoBuffer)
      oc.Drop(DropReason::kNoBuffer);
    else
      oc.Drop(DropReason::kMalformed);
    return;
  }
}

void Switch::Impl::TransmitAll() {
  for (PortId out : dirty) TransmitQueue(out);
  dirty.clear();
}

// The copies of keep[i] (received on `in`, going to `out` or flooded when
// `out` is kNoPort) that the mirrors select: one per distinct output port,
// queued like any frame (counted on the output port: tx, or a tx drop).
// Which ports the frame leaves by is decided as the forwarding loop below
// decides it.
void Switch::Impl::MirrorCopies(const internal::MirrorTable& mirror, PortId in, PortId out,
                                size_t i) {
  const Snapshot& snap = *snapshot;
  const uint16_t vid = vlan_of[i];
  uint64_t tx = 0;
  if (out != fdb::kNoPort) {
    const PortSnap* os = snap.port(out);
    if (out != in && os != nullptr && os->stp == StpState::kForwarding &&
        static_cast<vlan::EgressAction>((*os->vid)[vid] & kEgressMask) != vlan::EgressAction::kDrop)
      tx = mirror.TxOf(out);
  } else {
    const uint16_t group = snap.port(in) ? snap.port(in)->flood_group : 0;
    for (const FloodEntry& e : snap.flood[vid])
      if (e.port != in && (group == 0 || e.group != group)) tx |= mirror.TxOf(e.port);
  }
  for (uint64_t selected = mirror.Select(in, tx, vid); selected != 0;) {
    const auto bit = static_cast<size_t>(__builtin_ctzll(selected));
    Enqueue(mirror.output[bit], keep[i], !mirror.untagged[bit].Contains(vid), tci_of[i]);
    selected &= ~mirror.same_output[bit];
  }
}

size_t Switch::Impl::ProcessPort(PortId in) {
  const Snapshot& snap = *snapshot;
  const PortSnap* in_snap = snap.port(in);
  Port& port = *ports[in];
  AtomicPortCounters& ic = counters[in];
  uint64_t no_buffer = 0, port_malformed = 0;
  const size_t n =
      port.Receive(*pool, {frames.data(), config.batch_size}, &no_buffer, &port_malformed);
  if (no_buffer) ic.Drop(DropReason::kNoBuffer, no_buffer);
  if (port_malformed) ic.Drop(DropReason::kMalformed, port_malformed);
  if (n == 0) return 0;
  // The port's capture, once per batch (capture.h): null unless one runs.
  CaptureRing* const cap = capture[in].load(std::memory_order_relaxed);
  if (in_snap != nullptr && in_snap->mirror_output) [[unlikely]] {
    // A mirror's output port takes no part in forwarding (as in OVS).
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; ++i) bytes += frames[i]->size, pool->Free(frames[i]);
    ic.rx_packets.Add(n);
    ic.rx_bytes.Add(bytes);
    ic.Drop(DropReason::kMirrorOutput, n);
    return n;
  }

  uint64_t rx_bytes = 0;
  uint64_t malformed = 0, vlan_drops = 0, stp_drops = 0, link_local = 0, bpdus = 0;
  size_t kept = 0;
  size_t forwarding = 0;  // keep[0..forwarding) go on; learning-only ones after
  const StpState in_state = in_snap ? in_snap->stp : StpState::kDiscarding;

  // Parse, trap, classify, strip: frames that go on move to keep[].
  for (size_t i = 0; i < n; ++i) {
    Frame* f = frames[i];
    rx_bytes += f->size;
    if (f->size < vlan::kEthHeaderLen) [[unlikely]] {
      ++malformed;
      if (cap) CaptureDropped(*cap, *f, DropReason::kMalformed);
      pool->Free(f);
      continue;
    }
    if (IsLinkLocal(f->data)) [[unlikely]] {
      if (f->data[5] == 0 && config.bpdu_hook) {
        config.bpdu_hook(in, f->bytes());
        ++bpdus;
      } else {
        ++link_local;
      }
      pool->Free(f);
      continue;
    }
    if (in_snap == nullptr) {
      ++stp_drops;
      if (cap) [[unlikely]]
        CaptureDropped(*cap, *f, DropReason::kStpState);
      pool->Free(f);
      continue;
    }
    // Untagged frames and frames with one plain C-tag take the decisions
    // precomputed from the vlan library; anything else (priority tags, S-
    // tags, double tags, truncation) asks the library itself.
    vlan::Ingress ingress;
    const uint8_t* d = f->data;
    const uint16_t ethertype = static_cast<uint16_t>(d[12] << 8 | d[13]);
    uint16_t tci = 0;
    if (!vlan::IsTagTpid(ethertype)) [[likely]] {
      ingress = in_snap->untagged;
    } else if (ethertype == vlan::kTpidCTag && f->size >= 18 &&
               !vlan::IsTagTpid(static_cast<uint16_t>(d[16] << 8 | d[17])) &&
               (tci = static_cast<uint16_t>(d[14] << 8 | d[15]), (tci & 0xfff) != 0) &&
               (tci & 0xfff) != vlan::kReservedVid) {
      const uint16_t vid = tci & 0xfff;
      if ((*in_snap->vid)[vid] & kTaggedAccepted) {
        ingress.vlan = vid;
        ingress.strip = true;
        ingress.pcp = static_cast<uint8_t>(tci >> 13);
        ingress.dei = (tci & 0x1000) != 0;
      } else {
        ingress.drop = vlan::IngressDrop::kVlanNotAllowed;
      }
    } else {
      vlan::FrameInfo info;
      const vlan::FrameError err = vlan::Parse(f->bytes(), &info);
      ingress = vlan::ClassifyIngress(in_snap->vlan, err, info);
    }
    if (!ingress.accepted()) [[unlikely]] {
      const bool bad = ingress.drop == vlan::IngressDrop::kMalformed;
      ++(bad ? malformed : vlan_drops);
      if (cap) CaptureDropped(*cap, *f, bad ? DropReason::kMalformed : DropReason::kVlanNotAllowed);
      pool->Free(f);
      continue;
    }
    if (in_state == StpState::kDiscarding) {
      ++stp_drops;
      if (cap) [[unlikely]]
        CaptureDropped(*cap, *f, DropReason::kStpState);
      pool->Free(f);
      continue;
    }
    if (ingress.strip) {
      // Pop the outermost tag (classification saw it whole): the MACs move
      // up by four bytes.
      f->data = vlan::StripTagInPlace(f->data);
      f->size -= 4;
      f->capacity += 4;
      if (f->vnet.needs_csum()) f->vnet.csum_start = static_cast<uint16_t>(f->vnet.csum_start - 4);
      if (f->vnet.is_gso() && f->vnet.hdr_len >= 4)
        f->vnet.hdr_len = static_cast<uint16_t>(f->vnet.hdr_len - 4);
    }
    // Offload metadata that points outside the frame, or a source MAC that
    // no station may have (multicast or zero): dropped as the Linux bridge
    // drops them.
    const uint8_t* src = f->data + 6;
    const bool bad_src =
        (src[0] & 1) != 0 || (src[0] | src[1] | src[2] | src[3] | src[4] | src[5]) == 0;
    bool bad_vnet = false;
    if (f->vnet.flags != 0 || f->vnet.gso_type != 0) [[unlikely]] {
      if (f->vnet.needs_csum())
        bad_vnet = f->vnet.csum_start < vlan::kEthHeaderLen ||
                   size_t{f->vnet.csum_start} + f->vnet.csum_offset + 2 > f->size;
      if (f->vnet.is_gso() && f->vnet.gso_size == 0) bad_vnet = true;
    }
    if (bad_src || bad_vnet) [[unlikely]] {
      ++malformed;
      if (cap) CaptureDropped(*cap, *f, DropReason::kMalformed);
      pool->Free(f);
      continue;
    }
    const uint16_t vid = ingress.vlan;
    learn_keys[kept] = fdb::Key{vid, MacAt(src)};
    learn_ports[kept] = in;
    vlan_of[kept] = vid;
    tci_of[kept] =
        static_cast<uint16_t>((ingress.pcp & 7u) << 13 | (ingress.dei ? 1u : 0u) << 12 | vid);
    keep[kept++] = f;
  }
  forwarding = in_state == StpState::kForwarding ? kept : 0;
  if (cap) [[unlikely]]
    CaptureReceived(*cap, {keep.data(), kept}, {tci_of.data(), kept});

  const uint64_t now = kept ? TurnNow() : 0;
  uint64_t mac_limit = 0;
  if (kept) {
    fdb->LearnBatch({learn_keys.data(), kept}, {learn_ports.data(), kept}, now,
                    {outcomes.data(), kept});
    for (size_t i = 0; i < kept; ++i)
      if (outcomes[i] == fdb::LearnOutcome::kLimitDropped) ++mac_limit;
  }
  if (in_state == StpState::kLearning) stp_drops += kept;

  // Batched lookup of the unicast destinations.
  size_t lookups = 0;
  for (size_t i = 0; i < forwarding; ++i) {
    const uint8_t* dst = keep[i]->data;
    if ((dst[0] & 1) == 0) {
      lookup_keys[lookups] = fdb::Key{vlan_of[i], MacAt(dst)};
      lookup_slot[i] = static_cast<int16_t>(lookups++);
    } else {
      lookup_slot[i] = -1;
    }
  }
  if (lookups) fdb->LookupBatch({lookup_keys.data(), lookups}, {lookup_out.data(), lookups});

  const internal::MirrorTable* mirror = snap.mirror.get();
  for (size_t i = 0; i < forwarding; ++i) {
    Frame* f = keep[i];
    const uint16_t vid = vlan_of[i];
    const PortId out =
        lookup_slot[i] >= 0 ? lookup_out[static_cast<size_t>(lookup_slot[i])] : fdb::kNoPort;
    if (mirror != nullptr) [[unlikely]]
      MirrorCopies(*mirror, in, out, i);
    if (out != fdb::kNoPort) {
      if (out == in) continue;  // the destination is behind the ingress port: filtered
      const PortSnap* os = snap.port(out);
      if (os == nullptr || !ports[out]) [[unlikely]] {
        // The FDB points at a port the switch no longer has. Removal takes
        // a port's entries with it and static entries are checked on this
        // thread, so this is a bug somewhere: counted and logged, never
        // silent.
        StaleFdbDrop(in, out);
        continue;
      }
      if (os->stp != StpState::kForwarding) {
        counters[out].Drop(DropReason::kStpState);
        continue;
      }
      if (os->flood_group != 0 && os->flood_group == in_snap->flood_group) [[unlikely]] {
        counters[out].Drop(DropReason::kSplitHorizon);
        continue;
      }
      const auto action = static_cast<vlan::EgressAction>((*os->vid)[vid] & kEgressMask);
      if (action == vlan::EgressAction::kDrop) {
        counters[out].Drop(DropReason::kVlanNotAllowed);
        continue;
      }
      Enqueue(out, f, action == vlan::EgressAction::kTagged, tci_of[i]);
      continue;
    }
    const uint16_t group = in_snap->flood_group;
    for (const FloodEntry& e : snap.flood[vid]) {
      if (e.port == in || (group != 0 && e.group == group)) continue;
      Enqueue(e.port, f, e.tagged, tci_of[i]);
    }
  }
  TransmitAll();
  for (size_t i = 0; i < kept; ++i) pool->Free(keep[i]);

  ic.rx_packets.Add(n);
  ic.rx_bytes.Add(rx_bytes);
  if (malformed) ic.Drop(DropReason::kMalformed, malformed);
  if (vlan_drops) ic.Drop(DropReason::kVlanNotAllowed, vlan_drops);
  if (stp_drops) ic.Drop(DropReason::kStpState, stp_drops);
  if (link_local) ic.Drop(DropReason::kLinkLocal, link_local);
  if (mac_limit) ic.mac_limit_not_learned.Add(mac_limit);
  if (bpdus) ic.bpdu_trapped.Add(bpdus);
  return n;
}

// ---------------------------------------------------------------------------
// Switch

Switch::Switch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Switch::~Switch() { Stop(); }

Result<std::unique_ptr<Switch>> Switch::Create(SwitchConfig config) {
  const std::string what = "switch " + config.name;
  if (config.batch_size == 0 || config.batch_size > kMaxBatch)
    return Status::Error(what + ": batch size " + std::to_string(config.batch_size) +
                         " out of range 1-" + std::to_string(kMaxBatch));
  if (config.kernel_stats_interval_ms == 0)
    return Status::Error(what + ": kernel_stats_interval_ms 0");
  if (config.fdb.max_ports == 0 || config.fdb.max_ports >= fdb::kNoPort)
    return Status::Error(what + ": max_ports " + std::to_string(config.fdb.max_ports) +
                         " out of range 1-65534");
  auto impl = std::make_unique<Impl>();
  auto table = fdb::Table::Create(ToFdb(config.fdb));
  if (!table.ok()) return table.status().WithContext(what);
  impl->fdb = std::move(table).value();
  auto pool = FramePool::Create(config.pool_frames, config.buffer_size);
  if (!pool.ok()) return pool.status().WithContext(what);
  impl->pool = std::move(pool).value();
  if (impl->pool->count() < 2 * config.batch_size)
    return Status::Error(what + ": pool of " + std::to_string(config.pool_frames) +
                         " frames is smaller than two batches");
  impl->epoll.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl->epoll) return Status::FromErrno(what + ": epoll_create1", errno);
  impl->event.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!impl->event) return Status::FromErrno(what + ": eventfd", errno);
  impl->timer.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!impl->timer) return Status::FromErrno(what + ": timerfd_create", errno);
  impl->stats_timer.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!impl->stats_timer) return Status::FromErrno(what + ": timerfd_create", errno);
  for (auto [fd, token] :
       {std::pair{impl->event.get(), kEventToken}, std::pair{impl->timer.get(), kTimerToken},
        std::pair{impl->stats_timer.get(), kStatsToken}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(impl->epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
      return Status::FromErrno(what + ": epoll_ctl", errno);
  }
  const size_t max_ports = config.fdb.max_ports;
  impl->counters = std::make_unique<AtomicPortCounters[]>(max_ports);
  impl->failed = std::make_unique<std::atomic<bool>[]>(max_ports);
  impl->capture = std::make_unique<std::atomic<CaptureRing*>[]>(max_ports);
  impl->capture_rings.resize(max_ports);
  impl->control_ports.resize(max_ports);
  impl->ports.resize(max_ports);
  impl->takes_offload.resize(max_ports);
  impl->cheap_to_poll.resize(max_ports);
  impl->txq.resize(max_ports);
  impl->txq_len.resize(max_ports);
  impl->active.reserve(max_ports);
  impl->polled.reserve(max_ports);
  impl->busy.reserve(max_ports);
  impl->idle_turns.assign(max_ports, 0);
  impl->dirty.reserve(max_ports);
  impl->kernel_stats_ports.reserve(max_ports);
  impl->config = std::move(config);
  impl->snapshot = impl->BuildSnapshot();
  return std::unique_ptr<Switch>(new Switch(std::move(impl)));
}

Result<PortId> Switch::AddPort(std::unique_ptr<Port> port, const PortSettings& settings) {
  return AddPortAt(kNoPort, std::move(port), settings);
}

Result<PortId> Switch::AddPortAt(PortId want, std::unique_ptr<Port> port,
                                 const PortSettings& settings) {
  Impl& d = *impl_;
  const std::string what = "switch " + d.config.name + ": add port " + (port ? port->name() : "");
  if (!port) return Status::Error(what + ": no port", EINVAL);
  Status valid = settings.vlan.Validate();
  if (!valid.ok()) return valid.WithContext(what);
  std::unique_lock<std::mutex> lock(d.control_mutex);
  PortId id = fdb::kNoPort;
  for (size_t i = 0; i < d.control_ports.size(); ++i) {
    if (d.control_ports[i] && d.control_ports[i]->name == port->name())
      return Status::Error(what + ": a port of that name exists", EEXIST);
    if (!d.control_ports[i] && id == fdb::kNoPort && want == kNoPort) id = static_cast<PortId>(i);
  }
  if (want != kNoPort) {
    if (want >= d.control_ports.size() || d.control_ports[want])
      return Status::Error(what + ": port id " + std::to_string(want) + " is taken or out of range",
                           EEXIST);
    id = want;
  }
  if (id == fdb::kNoPort)
    return Status::Error(
        what + ": the switch has " + std::to_string(d.control_ports.size()) + " ports already",
        ENOSPC);
  d.control_ports[id] = ControlPort{port->name(), port->kind(), settings, MakePortSnap(settings)};
  // In a batch the port is polled at once but, until the batch ends, not in
  // the snapshot: its frames are dropped as from a discarding port and
  // nothing floods to it.
  std::shared_ptr<const Snapshot> snap;
  if (d.batch_depth == 0) snap = d.BuildSnapshot();
  auto queue = std::make_unique<TxItem[]>(d.config.batch_size);
  Port* raw = port.get();
  std::unique_ptr<Port> owned = std::move(port);
  Status s = d.Execute([&](Impl& dp) -> Status {
    const int fd = raw->fd();
    const bool cheap_to_poll = fd >= 0 && raw->cheap_to_poll();
    if (fd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN | (cheap_to_poll ? EPOLLONESHOT : 0u);
      ev.data.u64 = id;
      if (::epoll_ctl(dp.epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
        return Status::FromErrno("epoll_ctl", errno);
    } else {
      dp.polled.push_back(id);
    }
    if (raw->reports_kernel_drops()) {
      if (dp.kernel_stats_ports.empty()) {
        Status armed = dp.ArmStatsTimer(true);
        if (!armed.ok()) {
          if (fd >= 0) ::epoll_ctl(dp.epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
          std::erase(dp.polled, id);
          return armed;
        }
      }
      dp.kernel_stats_ports.push_back(id);
    }
    dp.counters[id].Reset();
    dp.failed[id].store(false, std::memory_order_relaxed);
    dp.takes_offload[id] = raw->takes_offload();
    dp.cheap_to_poll[id] = cheap_to_poll;
    dp.txq[id] = std::move(queue);
    dp.txq_len[id] = 0;
    dp.ports[id] = std::move(owned);
    dp.active.push_back(id);
    if (snap) std::swap(dp.snapshot, snap);  // the old snapshot is released by the control thread
    return Status::Ok();
  });
  if (!s.ok()) {
    d.control_ports[id].reset();
    return s.WithContext(what);
  }
  if (d.batch_depth > 0) d.snapshot_stale = true;
  return id;
}

Status Switch::RemovePort(PortId id) {
  Impl& d = *impl_;
  std::unique_lock<std::mutex> lock(d.control_mutex);
  if (id >= d.control_ports.size() || !d.control_ports[id])
    return Status::Error(
        "switch " + d.config.name + ": remove port #" + std::to_string(id) + ": no such port",
        ENOENT);
  const std::string name = d.control_ports[id]->name;
  d.control_ports[id].reset();
  internal::ForgetPort(&d.control_mirrors, id);
  // Never deferred, also in a batch: the datapath must not keep a snapshot
  // that floods to a port it no longer has. The batch's other changes go
  // in with it.
  d.snapshot_stale = false;
  std::erase(d.pending_flush, id);
  std::vector<PortId> flush;
  flush.swap(d.pending_flush);
  std::shared_ptr<const Snapshot> snap = d.BuildSnapshot();
  std::unique_ptr<Port> removed;  // destroyed (fd closed) on this thread
  std::unique_ptr<TxItem[]> queue;
  Status s = d.Execute([&](Impl& dp) -> Status {
    Port& port = *dp.ports[id];
    if (port.fd() >= 0 && !dp.failed[id].load(std::memory_order_relaxed))
      ::epoll_ctl(dp.epoll.get(), EPOLL_CTL_DEL, port.fd(), nullptr);
    std::erase(dp.polled, id);
    std::erase(dp.busy, id);
    std::erase(dp.active, id);
    std::erase(dp.kernel_stats_ports, id);
    if (dp.kernel_stats_ports.empty()) {
      // Cannot fail on a valid timerfd; if it did, the timer only wakes
      // the loop to read no ports.
      Status disarmed = dp.ArmStatsTimer(false);
      if (!disarmed.ok()) VF_LOG(kWarning) << disarmed.message();
    }
    dp.fdb->FlushPort(id);
    // Static entries of the port go too (FlushPort keeps them).
    for (const fdb::Entry& e : dp.fdb->Snapshot(dp.Now()))
      if (e.is_static && e.port == id) {
        // Cannot fail (the entry was just listed, on this thread); if it
        // did, frames to it would be stale_fdb drops: say which entry.
        Status gone = dp.fdb->RemoveStatic(e.vlan, e.mac);
        if (!gone.ok())
          VF_LOG(kError) << "switch " << dp.config.name << ": remove port " << name
                         << ": static entry " << e.mac.ToString() << " vlan " << e.vlan
                         << " stays: " << gone.message();
      }
    dp.capture[id].store(nullptr, std::memory_order_relaxed);
    removed = std::move(dp.ports[id]);
    queue = std::move(dp.txq[id]);
    std::swap(dp.snapshot, snap);
    for (PortId other : flush)
      if (dp.ports[other]) dp.fdb->FlushPort(other);
    return Status::Ok();
  });
  if (s.ok()) d.capture_rings[id].reset();  // the datapath no longer has it
  return s.WithContext("switch " + d.config.name + ": remove port " + name);
}

namespace {

// Applies `change` to the port's settings and installs the new snapshot;
// flushes the port's learned entries when `flush` says so.
Status Reconfigure(Switch::Impl& d, PortId id, std::string_view what,
                   const std::function<Status(PortSettings&, bool* flush)>& change);

}  // namespace

Status Switch::SetPortVlan(PortId id, const PortVlanConfig& config) {
  return Reconfigure(*impl_, id, "set vlan", [&](PortSettings& s, bool* flush) {
    VF_RETURN_IF_ERROR(config.Validate());
    *flush = s.vlan.mode != config.mode || s.vlan.pvid != config.pvid ||
             s.vlan.native != config.native || !(s.vlan.allowed == config.allowed);
    s.vlan = config;
    return Status::Ok();
  });
}

Status Switch::SetPortStpState(PortId id, StpState state) {
  return Reconfigure(*impl_, id, "set stp state", [&](PortSettings& s, bool* flush) {
    *flush = state == StpState::kDiscarding && s.stp != StpState::kDiscarding;
    s.stp = state;
    return Status::Ok();
  });
}

namespace {

Status Reconfigure(Switch::Impl& d, PortId id, std::string_view what,
                   const std::function<Status(PortSettings&, bool* flush)>& change) {
  std::unique_lock<std::mutex> lock(d.control_mutex);
  const std::string context = "switch " + d.config.name + ": " + std::string(what) + " on port ";
  if (id >= d.control_ports.size() || !d.control_ports[id])
    return Status::Error(context + "#" + std::to_string(id) + ": no such port", ENOENT);
  PortSettings settings = d.control_ports[id]->settings;
  bool flush = false;
  Status s = change(settings, &flush);
  if (!s.ok()) return s.WithContext(context + d.control_ports[id]->name);
  d.control_ports[id]->settings = settings;
  d.control_ports[id]->snap = MakePortSnap(settings);
  if (flush &&
      std::find(d.pending_flush.begin(), d.pending_flush.end(), id) == d.pending_flush.end())
    d.pending_flush.push_back(id);
  if (d.batch_depth > 0) {
    // The flush waits for the snapshot too: flushed now, the port would
    // learn again under the old settings until the batch ends.
    d.snapshot_stale = true;
    return Status::Ok();
  }
  return d.InstallSnapshot();
}

}  // namespace

void Switch::BeginBatch() {
  std::lock_guard<std::mutex> lock(impl_->control_mutex);
  ++impl_->batch_depth;
}

Status Switch::EndBatch() {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.control_mutex);
  if (d.batch_depth == 0)
    return Status::Error("switch " + d.config.name + ": end batch: no batch begun", EINVAL);
  if (--d.batch_depth > 0) return Status::Ok();
  return d.InstallPendingSnapshot().WithContext("switch " + d.config.name + ": end batch");
}

uint64_t Switch::SnapshotBuilds() const {
  return impl_->snapshot_builds.load(std::memory_order_relaxed);
}

Switch::Batch::Batch(Switch& sw) : sw_(&sw) { sw.BeginBatch(); }

Switch::Batch::~Batch() {
  if (sw_ == nullptr) return;
  Status ended = sw_->EndBatch();
  if (!ended.ok()) VF_LOG(kError) << ended.message();
}

Status Switch::Batch::End() {
  if (sw_ == nullptr) return Status::Ok();
  Switch* sw = std::exchange(sw_, nullptr);
  return sw->EndBatch();
}

std::optional<PortId> Switch::FindPort(std::string_view name) const {
  std::lock_guard<std::mutex> lock(impl_->control_mutex);
  for (size_t i = 0; i < impl_->control_ports.size(); ++i)
    if (impl_->control_ports[i] && impl_->control_ports[i]->name == name)
      return static_cast<PortId>(i);
  return std::nullopt;
}

Status Switch::AddStaticFdb(fdb::VlanId vlan, const MacAddress& mac, PortId port) {
  Impl& d = *impl_;
  const std::string what = "switch " + d.config.name + ": static fdb " + mac.ToString() + " vlan " +
                           std::to_string(vlan);
  {
    std::lock_guard<std::mutex> lock(d.control_mutex);
    if (port >= d.control_ports.size() || !d.control_ports[port])
      return Status::Error(what + ": no port #" + std::to_string(port), ENOENT);
    // A port added in a batch is not in the datapath's snapshot yet: frames
    // sent to it would be stale_fdb drops.
    Status installed = d.InstallPendingSnapshot();
    if (!installed.ok()) return installed.WithContext(what);
  }
  // Checked again where the entry goes in: a RemovePort between the check
  // above and this command would otherwise leave an entry pointing at a
  // port the switch no longer has (the pipeline counts frames sent to one
  // as stale_fdb drops).
  return d
      .Execute([&](Impl& dp) -> Status {
        if (port >= dp.ports.size() || !dp.ports[port])
          return Status::Error("no port #" + std::to_string(port), ENOENT);
        return dp.fdb->AddStatic(vlan, mac, port);
      })
      .WithContext(what);
}

Status Switch::RemoveStaticFdb(fdb::VlanId vlan, const MacAddress& mac) {
  Impl& d = *impl_;
  const std::string what = "switch " + d.config.name + ": remove static fdb " + mac.ToString() +
                           " vlan " + std::to_string(vlan);
  return d.Execute([&](Impl& dp) { return dp.fdb->RemoveStatic(vlan, mac); }).WithContext(what);
}

Status Switch::FlushFdb(std::optional<PortId> port, std::optional<fdb::VlanId> vlan) {
  return impl_->Execute([&](Impl& dp) -> Status {
    // A port the switch does not have has nothing to flush; saying so tells
    // a caller that holds a stale id (a spanning tree whose port left the
    // switch first) instead of pretending the flush happened.
    if (port && (*port >= dp.ports.size() || !dp.ports[*port]))
      return Status::Error("switch " + dp.config.name + ": flush fdb of port #" +
                               std::to_string(*port) + ": no such port",
                           ENOENT);
    if (port && vlan)
      dp.fdb->FlushPortVlan(*port, *vlan);
    else if (port)
      dp.fdb->FlushPort(*port);
    else if (vlan)
      dp.fdb->FlushVlan(*vlan);
    else
      dp.fdb->FlushLearned();
    return Status::Ok();
  });
}

Status Switch::SendFrame(PortId port, std::span<const uint8_t> frame) {
  Impl& d = *impl_;
  const std::string what =
      "switch " + d.config.name + ": send frame on port #" + std::to_string(port);
  if (frame.size() < vlan::kEthHeaderLen)
    return Status::Error(what + ": " + std::to_string(frame.size()) + " bytes is a runt", EINVAL);
  return d.Execute([&](Impl& dp) -> Status {
    if (port >= dp.ports.size() || !dp.ports[port])
      return Status::Error(what + ": no such port", ENOENT);
    Frame* f = dp.pool->Alloc();
    if (f == nullptr) return Status::Error(what + ": no free buffer", ENOBUFS);
    if (frame.size() > f->capacity) {
      dp.pool->Free(f);
      return Status::Error(
          what + ": " + std::to_string(frame.size()) + " bytes do not fit a buffer", EMSGSIZE);
    }
    std::memcpy(f->data, frame.data(), frame.size());
    f->size = static_cast<uint32_t>(frame.size());
    const TxItem item{f, 0, false};
    if (CaptureRing* cap = dp.capture[port].load(std::memory_order_relaxed))
      CaptureSent(*cap, {&item, 1});
    const TxResult r = dp.ports[port]->Transmit({&item, 1});
    dp.pool->Free(f);
    AtomicPortCounters& c = dp.counters[port];
    c.tx_packets.Add(r.packets);
    c.tx_bytes.Add(r.bytes);
    if (r.full) c.Drop(DropReason::kTxQueueFull, r.full);
    if (r.errors) c.Drop(DropReason::kTxError, r.errors);
    if (r.packets == 0) return Status::Error(what + ": the port did not take it", EAGAIN);
    return Status::Ok();
  });
}

Status Switch::SetCapture(PortId port, std::shared_ptr<CaptureRing> ring) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.control_mutex);
  const std::string what = "switch " + d.config.name + ": capture on port #" + std::to_string(port);
  if (!ring) return Status::Error(what + ": no ring", EINVAL);
  if (port >= d.control_ports.size() || !d.control_ports[port])
    return Status::Error(what + ": no such port", ENOENT);
  if (d.capture_rings[port])
    return Status::Error("switch " + d.config.name + ": port " + d.control_ports[port]->name +
                             ": a capture runs on it already",
                         EBUSY);
  CaptureRing* raw = ring.get();
  Status s = d.Execute([&](Impl& dp) -> Status {
    dp.capture[port].store(raw, std::memory_order_relaxed);
    return Status::Ok();
  });
  if (s.ok()) d.capture_rings[port] = std::move(ring);
  return s;
}

Status Switch::ClearCapture(PortId port, const CaptureRing* ring) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.control_mutex);
  if (port >= d.capture_rings.size() || d.capture_rings[port].get() != ring || ring == nullptr)
    return Status::Ok();
  Status s = d.Execute([&](Impl& dp) -> Status {
    dp.capture[port].store(nullptr, std::memory_order_relaxed);
    return Status::Ok();
  });
  if (s.ok()) d.capture_rings[port].reset();
  return s;
}

Status Switch::SetMirrors(std::vector<MirrorSettings> mirrors) {
  Impl& d = *impl_;
  std::unique_lock<std::mutex> lock(d.control_mutex);
  const auto present = [&](PortId id) {
    return id < d.control_ports.size() && d.control_ports[id].has_value();
  };
  Status valid = internal::CheckMirrors(mirrors, present);
  if (!valid.ok()) return valid.WithContext("switch " + d.config.name + ": set mirrors");
  // Output ports that are new learn nothing from now on: what they learned
  // goes, so no unicast is sent to them by an old entry.
  std::vector<PortId> new_outputs;
  for (const MirrorSettings& m : mirrors) {
    const bool was = std::any_of(d.control_mirrors.begin(), d.control_mirrors.end(),
                                 [&](const MirrorSettings& o) { return o.output == m.output; });
    if (!was) new_outputs.push_back(m.output);
  }
  std::vector<MirrorSettings> old = std::move(d.control_mirrors);
  d.control_mirrors = std::move(mirrors);
  std::shared_ptr<const Snapshot> snap = d.BuildSnapshot();
  Status s = d.Execute([&](Impl& dp) -> Status {
    std::swap(dp.snapshot, snap);
    for (PortId p : new_outputs) dp.fdb->FlushPort(p);
    return Status::Ok();
  });
  if (!s.ok()) d.control_mirrors = std::move(old);
  return s.WithContext("switch " + d.config.name + ": set mirrors");
}

std::vector<MirrorSettings> Switch::Mirrors() const {
  std::lock_guard<std::mutex> lock(impl_->control_mutex);
  return impl_->control_mirrors;
}

size_t Switch::LearnEntries(std::span<const FdbEntry> entries) {
  size_t learned = 0;
  Status s = impl_->Execute([&](Impl& dp) {
    const uint64_t now = dp.Now();
    for (const FdbEntry& entry : entries) {
      if (entry.is_static || entry.port >= dp.ports.size() || !dp.ports[entry.port]) continue;
      const fdb::LearnOutcome outcome = dp.fdb->Learn(entry.vlan, entry.mac, entry.port, now);
      if (outcome == fdb::LearnOutcome::kLearned) ++learned;
    }
    return Status::Ok();
  });
  return s.ok() ? learned : 0;
}

Status Switch::SetAgeingTime(uint64_t ageing_time_ns) {
  return impl_->Execute([&](Impl& dp) {
    dp.fdb->SetAgeingTime(ageing_time_ns);
    dp.timer_armed_ns = 0;
    return Status::Ok();
  });
}

Status Switch::SetFdbLimits(size_t max_entries, size_t max_per_port) {
  return impl_->Execute([&](Impl& dp) -> Status {
    fdb::Config config = dp.fdb->config();
    config.max_entries = max_entries;
    config.max_per_port = max_per_port;
    const std::string what = "switch " + dp.config.name + ": FDB limits";
    auto table = fdb::Table::Create(config);
    if (!table.ok()) return Status::Error(what + ": " + table.status().message());
    Status taken = (*table)->TakeEntriesFrom(*dp.fdb, dp.Now());
    if (!taken.ok()) return Status::Error(what + ": " + taken.message());
    dp.fdb = std::move(table).value();
    dp.timer_armed_ns = 0;
    return Status::Ok();
  });
}

Result<PortCounters> Switch::Counters(PortId port) const {
  const Impl& d = *impl_;
  if (port >= d.config.fdb.max_ports)
    return Status::Error("switch " + d.config.name + ": no port #" + std::to_string(port), ENOENT);
  return d.counters[port].Read();
}

std::vector<PortInfo> Switch::Ports() const {
  const Impl& d = *impl_;
  std::vector<PortInfo> out;
  std::lock_guard<std::mutex> lock(d.control_mutex);
  for (size_t i = 0; i < d.control_ports.size(); ++i) {
    if (!d.control_ports[i]) continue;
    const ControlPort& p = *d.control_ports[i];
    out.push_back(PortInfo{static_cast<PortId>(i), p.name, p.kind, p.settings, d.counters[i].Read(),
                           d.failed[i].load(std::memory_order_relaxed)});
  }
  return out;
}

Result<PortInfo> Switch::PortInfoOf(PortId id) const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.control_mutex);
  if (id >= d.control_ports.size() || !d.control_ports[id])
    return Status::Error(
        "switch " + d.config.name + ": port #" + std::to_string(id) + ": no such port", ENOENT);
  const ControlPort& p = *d.control_ports[id];
  return PortInfo{id,
                  p.name,
                  p.kind,
                  p.settings,
                  d.counters[id].Read(),
                  d.failed[id].load(std::memory_order_relaxed)};
}

Result<std::vector<FdbEntry>> Switch::FdbEntries() {
  std::vector<FdbEntry> all;
  std::vector<fdb::Entry> chunk(kDumpChunk);
  size_t cursor = 0;
  bool done = false;
  while (!done) {
    size_t count = 0;
    VF_RETURN_IF_ERROR(impl_->Execute([&](Impl& dp) {
      const fdb::DumpChunk c = dp.fdb->Dump(cursor, chunk, dp.Now());
      count = c.count;
      cursor = c.next_cursor;
      done = c.done;
      return Status::Ok();
    }));
    for (size_t i = 0; i < count; ++i) all.push_back(FromFdb(chunk[i]));
  }
  return all;
}

Result<FdbCounters> Switch::FdbCounters() {
  bridge::FdbCounters c;
  VF_RETURN_IF_ERROR(impl_->Execute([&](Impl& dp) {
    c = FromFdb(dp.fdb->counters());
    return Status::Ok();
  }));
  return c;
}

Status Switch::Start() {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.producer_mutex);
  if (d.running.load())
    return Status::Error("switch " + d.config.name + ": already running", EBUSY);
  d.stop.store(false);
  d.running.store(true, std::memory_order_release);
  d.thread = std::thread([&d] {
    const std::string thread_name = (d.config.name + "-dp").substr(0, 15);
    pthread_setname_np(pthread_self(), thread_name.c_str());
    while (!d.stop.load(std::memory_order_relaxed)) d.Turn(-1);
    d.DrainCommands();
  });
  return Status::Ok();
}

void Switch::Stop() {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.producer_mutex);
  if (!d.running.load()) return;
  d.stop.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(d.event.get(), &one, sizeof one);
  d.thread.join();
  d.running.store(false, std::memory_order_release);
}

bool Switch::running() const { return impl_->running.load(std::memory_order_acquire); }

size_t Switch::RunOnce(int timeout_ms) {
  if (running()) return 0;  // the datapath thread owns the turn
  return impl_->Turn(timeout_ms);
}

}  // namespace vfabric::bridge
