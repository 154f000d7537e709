// vfabric::bridge::Switch — the userspace software switch.
//
// DESIGN (bridge/DESIGN.md has the long form)
//
// Threads. A Switch has one datapath thread (Start() makes it; or a caller
// drives RunOnce() itself: tests and benchmarks) and is configured from a
// control thread (netd's). The datapath thread owns the ports, the frame
// pool, the FDB (fdb::Table) and the pipeline; nothing else touches them.
// The control thread never touches frames.
//
// Configuration. The control thread holds the authoritative configuration
// (ports' VLAN modes, STP states) and, on each change, builds a new
// immutable snapshot (std::shared_ptr<const Snapshot>: per-port settings and
// per-VLAN flood lists precomputed) and sends it to the datapath thread as a
// command. Commands (add/remove port, install snapshot, static FDB add/del,
// flush, ageing time, FDB dump chunks) go through a bounded queue: a
// producer-side mutex (control threads only), a lock-free consumer. The
// datapath thread drains it at the start of each turn, woken by an eventfd.
// Each control call waits for its command to run and returns its Status, so
// control calls are synchronous and ordered. When the datapath thread is not
// running, control calls run inline on the calling thread (which then must
// be the one calling RunOnce()).
//
// Datapath turn. epoll_wait on the ports' fds, the command eventfd and a
// timerfd armed at the FDB's next ageing deadline; then for each ready port
// one batch (up to batch_size frames): parse -> trap link-local -> ingress
// VLAN -> STP state -> learn (batched) -> lookup (batched) -> unicast or
// flood within the VLAN, never back to the ingress port -> egress tagging ->
// transmit per port -> buffers back to the pool. Nothing on that path
// allocates or locks.
//
// Counters. Per port, in a fixed array sized at Create(): single-writer
// relaxed atomics written by the datapath thread, read by any thread
// (Counters()). FDB counters and entries are read through commands.
//
// Errors are Status values naming the switch, the port and the cause.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vfabric/bridge/capture.h"
#include "vfabric/bridge/port.h"
#include "vfabric/bridge/settings.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"

namespace vfabric::bridge {

// PortId, StpState, PortVlanConfig, FdbSettings, FdbEntry, FdbCounters:
// settings.h (the bridge's own types, mapped onto fdb and vlan inside).

// Called on the datapath thread with a BPDU (a frame to 01:80:c2:00:00:00,
// exactly as received, tag included) and the port it came in on. It must be
// quick and must not call back into the Switch: copy the frame to the
// control thread's queue (the STP slice does that).
using BpduHook = std::function<void(PortId port, std::span<const uint8_t> frame)>;

struct SwitchConfig {
  std::string name = "switch";  // for messages
  FdbSettings fdb;              // fdb.max_ports is also the switch's port limit
  size_t batch_size = 32;       // frames per port per turn, 1..256
  // Frame buffers. A turn holds at most batch_size + 32 (GSO segments) at
  // once: every frame is sent (ports copy) before the next batch, so a few
  // hundred suffice; at least 2 * batch_size.
  size_t pool_frames = 256;
  // Bytes per frame buffer, headroom included. 2048 suits MTU 1500 ports
  // without GSO; taps with TSO need 65536 + kFrameHeadroom.
  size_t buffer_size = 65536 + kFrameHeadroom;
  BpduHook bpdu_hook;  // none: BPDUs are dropped as link_local
  // The clock (ns) for FDB learning and ageing; default steady_clock.
  std::function<uint64_t()> clock;
  // How often (ms, > 0) the datapath thread reads the kernel's drop counts
  // of the ports that have one (Port::reports_kernel_drops: packet sockets)
  // into their rx_kernel drops: one getsockopt per such port, on a timerfd
  // armed only while such a port exists. Counters() lags by up to this.
  uint32_t kernel_stats_interval_ms = 1000;
};

struct PortSettings {
  PortVlanConfig vlan = PortVlanConfig::Access(1);
  StpState stp = StpState::kForwarding;
  // Split horizon: a frame that came in by a port of a non-zero group is
  // flooded to no other port of that group, and unicast between two ports
  // of one group is dropped (split_horizon, on the egress port). The peer
  // ports of one VXLAN endpoint share a group (vxlan_endpoint.h): every
  // VTEP floods to every other itself.
  uint16_t flood_group = 0;
};

struct PortInfo {
  PortId id = kNoPort;
  std::string name;
  PortKind kind = PortKind::kMemory;
  PortSettings settings;
  PortCounters counters;
  // The port's fd reported an error or hang-up (its link is gone): it is no
  // longer polled; remove it.
  bool failed = false;
};

class Switch {
 public:
  // Validates `config`, builds the FDB and the frame pool (the only large
  // allocations), the eventfd, timerfd and epoll descriptor.
  static Result<std::unique_ptr<Switch>> Create(SwitchConfig config);
  ~Switch();  // stops the datapath thread
  Switch(const Switch&) = delete;
  Switch& operator=(const Switch&) = delete;

  // ---- control (any one thread at a time; not the datapath thread) ----

  // Adds `port` with `settings`; returns its id (the lowest free one).
  // Fails on a duplicate name, a full switch or an invalid VLAN config.
  Result<PortId> AddPort(std::unique_ptr<Port> port, const PortSettings& settings = {});
  // AddPort at id `id` (the one the port had in the switch an earlier image
  // of netd handed over: the spanning tree's port numbers are ids + 1).
  // Fails when that id is taken or beyond the switch's limit; kNoPort: as
  // AddPort.
  Result<PortId> AddPortAt(PortId id, std::unique_ptr<Port> port,
                           const PortSettings& settings = {});
  // Removes the port, its learned and static FDB entries; the Port (and its
  // fd) is destroyed.
  Status RemovePort(PortId port);
  Status SetPortVlan(PortId port,
                     const PortVlanConfig& config);  // flushes the port's learned entries
  Status SetPortStpState(PortId port,
                         StpState state);  // leaving forwarding/learning flushes the port
  std::optional<PortId> FindPort(std::string_view name) const;

  // Batching. Every change above builds a new snapshot (O(ports)) and
  // installs it; adding N ports one by one was O(N^2). Between BeginBatch()
  // and EndBatch() (nested: the outermost end counts), AddPort, SetPortVlan
  // and SetPortStpState change the configuration and take effect on the
  // datapath at EndBatch(), with one snapshot for them all: until then a
  // port added in the batch is polled but treated as discarding (its
  // frames dropped, counted as stp drops; nothing floods to it), a changed
  // port keeps its old settings and its learned entries (flushed at the
  // end). RemovePort and AddStaticFdb install the pending changes at once
  // (the datapath must never hold a snapshot naming a port it does not
  // have, nor an FDB entry to a port its snapshot lacks). EndBatch fails
  // without a BeginBatch, or when the snapshot cannot be installed.
  void BeginBatch();
  Status EndBatch();
  // BeginBatch() now, EndBatch() at End() or destruction (an error there is
  // logged).
  class Batch {
   public:
    explicit Batch(Switch& sw);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    Status End();

   private:
    Switch* sw_;
  };
  // Snapshots built since Create() (one there): what batching saves shows here.
  uint64_t SnapshotBuilds() const;

  Status AddStaticFdb(VlanId vlan, const MacAddress& mac, PortId port);
  Status RemoveStaticFdb(VlanId vlan, const MacAddress& mac);
  // Flushes learned entries: of one port and/or one VLAN, or all.
  Status FlushFdb(std::optional<PortId> port = std::nullopt,
                  std::optional<VlanId> vlan = std::nullopt);
  Status SetAgeingTime(uint64_t ageing_time_ns);
  // Replaces the switch's port mirrors (MirrorSettings) with `mirrors`; an
  // empty list removes them all, and then the pipeline pays one
  // predictable branch per frame for them. Fails, changing nothing, on more
  // than kMaxMirrors, a port the switch does not have, or an output port
  // that some mirror selects. Flushes what the new output ports had learned.
  Status SetMirrors(std::vector<MirrorSettings> mirrors);
  std::vector<MirrorSettings> Mirrors() const;
  // Learns `entries` (learned ones, on ports the switch has) as if their
  // frames had just been seen: the learned FDB an earlier image of netd
  // handed over, so that the new one does not flood what the old one knew.
  // Their age starts again (the table's ageing list is ordered by time).
  // Returns how many were learned.
  size_t LearnEntries(std::span<const FdbEntry> entries);
  // New FDB limits (FdbSettings' max_entries, max_per_port) on a switch that
  // keeps running: the table is rebuilt with its entries, ages and counters.
  // Learned entries beyond the limits go, the oldest first (counted as
  // evicted). On an error (invalid limits, static entries that do not fit)
  // the old table stays.
  Status SetFdbLimits(size_t max_entries, size_t max_per_port);

  // Sends `frame` (a whole Ethernet frame, e.g. a BPDU from STP) out of
  // `port` as it is, whatever the port's STP state and VLAN config. Counted
  // in the port's tx counters. Fails if the frame does not fit a buffer or
  // the port does not take it.
  Status SendFrame(PortId port, std::span<const uint8_t> frame);

  // Capture (capture.h): from the return on, the port's frames are copied
  // into `ring` until ClearCapture (or the port's removal). One capture per
  // port: fails (EBUSY) when one runs, ENOENT for no such port. The switch
  // keeps a reference to the ring while it is set.
  Status SetCapture(PortId port, std::shared_ptr<CaptureRing> ring);
  // Stops the capture into `ring` on `port` (nothing when another ring or
  // none is set there: a port removed and added again meanwhile). Once it
  // returns, the datapath no longer touches `ring`.
  Status ClearCapture(PortId port, const CaptureRing* ring);

  // Counters of one port (any thread; cheap: relaxed loads).
  Result<PortCounters> Counters(PortId port) const;
  std::vector<PortInfo> Ports() const;
  // One port's entry of Ports(), without listing them all (a view of N
  // ports asking Ports() per port was quadratic).
  Result<PortInfo> PortInfoOf(PortId port) const;
  // The FDB, copied in bounded chunks between batches.
  Result<std::vector<FdbEntry>> FdbEntries();
  Result<bridge::FdbCounters> FdbCounters();

  // ---- the datapath thread ----

  // Starts the datapath thread (named "<name>-dp"). Fails if running.
  Status Start();
  // Stops it and joins; the switch keeps its ports and FDB.
  void Stop();
  bool running() const;

  // One turn on the calling thread: commands, then epoll_wait up to
  // `timeout_ms` (0: poll; ports without an fd are always polled), then one
  // batch per ready port, then ageing if due. Returns frames received.
  // REQUIRES: the caller acts as the datapath thread (returns 0 at once
  // while the datapath thread runs).
  size_t RunOnce(int timeout_ms = 0);

  struct Impl;

 private:
  explicit Switch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vfabric::bridge
