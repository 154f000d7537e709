// RSTP on a loop: three stp::Bridge engines in a triangle (optionally with a
// fourth, parallel link between bridges 0 and 1), the BPDUs each sends
// queued on its links. The input drives a first phase: time advances, queued
// BPDUs are delivered, dropped, reordered or duplicated, links go down and
// up, mcheck is set, link speeds change, and BPDUs the fuzzer makes (any
// type, flags, priority vector) are injected on any port. Bridge priorities, modes (RSTP or legacy
// STP), timers, port costs, priorities and edge settings come from the input too.
//
// Then the fuzzer stops meddling: every link comes up, every BPDU is
// delivered at once and time runs in 1 s ticks. RSTP may legitimately hold
// loops for a moment while information in flux settles (the injected BPDUs
// lie, and dropped ones break the proposal/agreement handshake), so the
// invariants are checked once the engines have had time to converge: after
// kSettle seconds, for the last kWatch seconds, after every delivery and tick.
// kSettle is far more than stale information can live: the bridges' and the
// forged BPDUs' times are small (hello 1..2 s, max age 6..12 s, forward delay
// 4..8 s; larger ones only make the fuzzer slower, and bpdu_fuzzer covers
// their decoding), received information expires after 3 hellos, information
// circulating in the loop after max age hops, and a legacy STP port forwards
// after max age + 2 forward delays.
//   - no loop: the links whose two ends both forward form a forest;
// and at the end:
//   - every bridge has the same root, the lowest bridge id of the three;
//   - the forwarding links span the three bridges (a tree, not a cut).
// A violation prints the topology and aborts.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "vfabric/stp/bpdu.h"
#include "vfabric/stp/rstp.h"

namespace {

using namespace vfabric;
using namespace vfabric::stp;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kBridges = 3;
constexpr int kMaxOps = 400;
constexpr int kSettle = 90;  // s of clean running before the checks start
constexpr int kWatch = 20;   // s during which no loop may appear
// Deliveries within one instant: tx_hold_count bounds what a port sends per
// second, so more than this is a BPDU storm.
constexpr int kMaxDeliveriesPerInstant = 20000;

MacAddress BridgeMac(int i) {
  return MacAddress{{0x02, 0x00, 0x00, 0x00, 0x00, static_cast<uint8_t>(0x10 + i)}};
}

struct End {
  int bridge = 0;
  PortNumber port = 0;
};

struct Link {
  End end[2];
  bool up = true;
  std::deque<std::vector<uint8_t>> queue[2];  // queue[d]: sent by end[d], to end[1 - d]
};

class Loop {
 public:
  explicit Loop(FuzzedDataProvider& in) : in_(in) {}

  bool Build() {
    const bool parallel = in_.ConsumeBool();
    // Timers valid for the bridge (rstp.h): hello 1..2, max age 6..40 and >= 2 * (hello + 1).
    for (int i = 0; i < kBridges; ++i) {
      BridgeConfig config;
      config.address = BridgeMac(i);
      config.priority = static_cast<uint16_t>(in_.ConsumeIntegralInRange<int>(0, 15) * 4096);
      config.mode = in_.ConsumeIntegralInRange<int>(0, 3) == 0 ? Mode::kStp : Mode::kRstp;
      config.hello_time = in_.ConsumeIntegralInRange<uint32_t>(1, 2);
      config.forward_delay = in_.ConsumeIntegralInRange<uint32_t>(4, 8);
      config.max_age = in_.ConsumeIntegralInRange<uint32_t>(
          std::max<uint32_t>(6, 2 * (config.hello_time + 1)), 12);
      config.tx_hold_count = in_.ConsumeIntegralInRange<uint32_t>(1, 10);
      auto bridge = Bridge::Create(config, now_);
      if (!bridge.ok()) std::abort();  // a valid configuration
      bridges_.push_back(std::move(*bridge));
      ids_.push_back(BridgeId{config.priority, config.address});
    }
    Connect(0, 1);
    Connect(1, 2);
    Connect(2, 0);
    if (parallel) Connect(0, 1);
    for (Link& link : links_)
      for (const End& e : link.end)
        if (!bridges_[e.bridge]->SetPortEnabled(e.port, true, 10000, now_).ok()) std::abort();
    for (int i = 0; i < kBridges; ++i) Collect(i);
    return true;
  }

  // Phase 1: the input's operations.
  void Meddle() {
    for (int op = 0; op < kMaxOps && in_.remaining_bytes() > 0; ++op) {
      switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1:
          Tick(milliseconds(in_.ConsumeIntegralInRange<int>(0, 3000)));
          break;
        case 2:
        case 3: {
          auto [link, d] = PickQueue();
          if (!link->queue[d].empty()) Deliver(*link, d);
          break;
        }
        case 4: {  // drop, reorder or duplicate the head of a queue
          auto [link, d] = PickQueue();
          auto& q = link->queue[d];
          if (q.empty()) break;
          int how = in_.ConsumeIntegralInRange<int>(0, 2);
          std::vector<uint8_t> head = std::move(q.front());
          q.pop_front();
          if (how == 1) q.push_back(std::move(head));
          if (how == 2) {
            q.push_front(head);
            q.push_front(std::move(head));
          }
          break;
        }
        case 5:
          Inject(MadeBpdu());
          break;
        case 6:  // everything in flight arrives
          DeliverAll(false);
          break;
        case 7: {  // a link goes down or up (both ends see it; in-flight BPDUs die)
          Link& link = links_[in_.ConsumeIntegralInRange<size_t>(0, links_.size() - 1)];
          SetLink(link, !link.up);
          break;
        }
        case 8: {
          const End e = PickEnd();
          (void)bridges_[e.bridge]->ForceProtocolMigrationCheck(e.port, now_);
          Collect(e.bridge);
          break;
        }
        case 9: {  // a port's cost changes with its link speed
          const End e = PickEnd();
          Link& link = links_[link_of_[e.bridge][e.port - 1]];
          if (link.up) {
            (void)bridges_[e.bridge]->SetPortEnabled(
                e.port, true, in_.ConsumeIntegralInRange<uint64_t>(1, 100000), now_);
            Collect(e.bridge);
          }
          break;
        }
      }
    }
  }

  // Phase 2: no meddling; every link up, every BPDU delivered, 1 s ticks.
  void Converge() {
    for (Link& link : links_)
      if (!link.up) SetLink(link, true);
    for (int second = 0; second < kSettle + kWatch; ++second) {
      const bool watch = second >= kSettle;
      DeliverAll(watch);
      Tick(seconds(1));
      if (watch) CheckNoLoop("after a tick");
    }
    DeliverAll(true);
    CheckTree();
  }

 private:
  void Connect(int a, int b) {
    Link link;
    link.end[0] = {a, static_cast<PortNumber>(link_of_[a].size() + 1)};
    link.end[1] = {b, static_cast<PortNumber>(link_of_[b].size() + 1)};
    for (const End& e : link.end) {
      PortConfig port;
      port.number = e.port;
      port.priority = static_cast<uint8_t>(in_.ConsumeIntegralInRange<int>(0, 15) * 16);
      port.path_cost = in_.ConsumeBool() ? 0 : in_.ConsumeIntegralInRange<uint32_t>(1, 200000000);
      port.admin_edge = in_.ConsumeIntegralInRange<int>(0, 7) == 0;
      port.auto_edge = in_.ConsumeBool();
      port.point_to_point = in_.ConsumeIntegralInRange<int>(0, 7) != 0;
      if (!bridges_[e.bridge]->AddPort(port, now_).ok()) std::abort();
      link_of_[e.bridge].push_back(links_.size());
    }
    links_.push_back(std::move(link));
  }

  std::pair<Link*, int> PickQueue() {
    Link* link = &links_[in_.ConsumeIntegralInRange<size_t>(0, links_.size() - 1)];
    return {link, in_.ConsumeIntegralInRange<int>(0, 1)};
  }

  End PickEnd() {
    const Link& link = links_[in_.ConsumeIntegralInRange<size_t>(0, links_.size() - 1)];
    return link.end[in_.ConsumeIntegralInRange<int>(0, 1)];
  }

  // A BPDU of any type with fields from the input: roots and bridges among the
  // three bridges' addresses and a stranger's, times in the bridges' ranges.
  std::vector<uint8_t> MadeBpdu() {
    Bpdu b;
    const int type = in_.ConsumeIntegralInRange<int>(0, 2);
    b.type = type == 0 ? BpduType::kConfig : type == 1 ? BpduType::kTcn : BpduType::kRst;
    b.version = b.type == BpduType::kRst ? 2 : 0;
    b.topology_change = in_.ConsumeBool();
    b.proposal = in_.ConsumeBool();
    b.role = static_cast<BpduRole>(in_.ConsumeIntegralInRange<int>(0, 3));
    b.learning = in_.ConsumeBool();
    b.forwarding = in_.ConsumeBool();
    b.agreement = in_.ConsumeBool();
    b.topology_change_ack = in_.ConsumeBool();
    auto id = [&] {
      const int who = in_.ConsumeIntegralInRange<int>(0, kBridges);
      MacAddress mac = who < kBridges ? BridgeMac(who) : MacAddress{{0x02, 0, 0, 0, 0, 0x01}};
      return BridgeId{static_cast<uint16_t>(in_.ConsumeIntegralInRange<int>(0, 15) * 4096), mac};
    };
    b.root_id = id();
    b.root_path_cost = in_.ConsumeIntegralInRange<uint32_t>(0, 400000);
    b.bridge_id = id();
    b.port_id = MakePortId(static_cast<uint8_t>(in_.ConsumeIntegralInRange<int>(0, 15) * 16),
                           in_.ConsumeIntegralInRange<PortNumber>(1, 4));
    b.max_age = static_cast<uint16_t>(in_.ConsumeIntegralInRange<int>(6, 12) * kTimeUnitsPerSecond);
    b.message_age = static_cast<uint16_t>(in_.ConsumeIntegralInRange<int>(0, b.max_age));
    b.hello_time =
        static_cast<uint16_t>(in_.ConsumeIntegralInRange<int>(1, 2) * kTimeUnitsPerSecond);
    b.forward_delay =
        static_cast<uint16_t>(in_.ConsumeIntegralInRange<int>(4, 8) * kTimeUnitsPerSecond);
    return EncodeBpduFrame(b, MacAddress{{0x02, 0, 0, 0, 0, 0x01}});
  }

  void Inject(const std::vector<uint8_t>& frame) {
    const End e = PickEnd();
    (void)bridges_[e.bridge]->ReceiveBpdu(e.port, frame, now_);
    Collect(e.bridge);
  }

  void SetLink(Link& link, bool up) {
    link.up = up;
    for (auto& q : link.queue) q.clear();
    for (const End& e : link.end) {
      if (!bridges_[e.bridge]->SetPortEnabled(e.port, up, 10000, now_).ok()) std::abort();
      Collect(e.bridge);
    }
  }

  void Deliver(Link& link, int d) {
    std::vector<uint8_t> frame = std::move(link.queue[d].front());
    link.queue[d].pop_front();
    const End& to = link.end[1 - d];
    if (!bridges_[to.bridge]->ReceiveBpdu(to.port, frame, now_).ok()) std::abort();
    Collect(to.bridge);
  }

  void DeliverAll(bool watch) {
    for (int delivered = 0;; ++delivered) {
      bool any = false;
      for (Link& link : links_)
        for (int d = 0; d < 2; ++d)
          if (!link.queue[d].empty()) {
            Deliver(link, d);
            any = true;
            if (watch) CheckNoLoop("after a delivery");
          }
      if (!any) return;
      if (delivered > kMaxDeliveriesPerInstant) Fail("a BPDU storm: no end to deliveries");
    }
  }

  void Tick(std::chrono::nanoseconds d) {
    now_ += d;
    for (int i = 0; i < kBridges; ++i) {
      bridges_[i]->AdvanceTo(now_);
      Collect(i);
    }
  }

  // Queues what bridge i sends on the links it belongs to.
  void Collect(int i) {
    Output out = bridges_[i]->TakeOutput();
    for (TxBpdu& tx : out.bpdus) {
      if (tx.port < 1 || tx.port > link_of_[i].size()) std::abort();  // a port it does not have
      Link& link = links_[link_of_[i][tx.port - 1]];
      if (!link.up) continue;  // sent on a down link: lost
      const int d = link.end[0].bridge == i && link.end[0].port == tx.port ? 0 : 1;
      link.queue[d].push_back(std::move(tx.frame));
    }
  }

  bool Forwarding(const Link& link) const {
    return link.up &&
           bridges_[link.end[0].bridge]->GetPortState(link.end[0].port) == PortState::kForwarding &&
           bridges_[link.end[1].bridge]->GetPortState(link.end[1].port) == PortState::kForwarding;
  }

  // Links with both ends forwarding, joined with union-find: false on a cycle.
  int ForwardingComponents(bool* loop) const {
    std::vector<int> parent(kBridges);
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](int x) {
      while (parent[x] != x) x = parent[x];
      return x;
    };
    int components = kBridges;
    *loop = false;
    for (const Link& link : links_) {
      if (!Forwarding(link)) continue;
      const int a = find(link.end[0].bridge), b = find(link.end[1].bridge);
      if (a == b) {
        *loop = true;
        continue;
      }
      parent[a] = b;
      --components;
    }
    return components;
  }

  void CheckNoLoop(const char* when) {
    bool loop = false;
    ForwardingComponents(&loop);
    if (loop) Fail(when);
  }

  void CheckTree() {
    const BridgeId root = *std::min_element(ids_.begin(), ids_.end());
    for (int i = 0; i < kBridges; ++i)
      if (!(bridges_[i]->GetStatus(now_).root_id == root)) Fail("the bridges disagree on the root");
    bool loop = false;
    if (ForwardingComponents(&loop) != 1) Fail("the forwarding links do not span the bridges");
  }

  [[noreturn]] void Fail(const char* what) {
    std::fprintf(stderr, "rstp_loop_fuzzer: %s at t=%lld ms\n", what,
                 static_cast<long long>(
                     std::chrono::duration_cast<milliseconds>(now_.time_since_epoch()).count()));
    for (int i = 0; i < kBridges; ++i) {
      BridgeStatus s = bridges_[i]->GetStatus(now_);
      std::fprintf(stderr, "bridge %d %s root %s cost %u root port %u mode %s\n", i,
                   s.bridge_id.ToString().c_str(), s.root_id.ToString().c_str(), s.root_path_cost,
                   s.root_port, s.mode == Mode::kStp ? "stp" : "rstp");
      for (const PortStatus& p : s.ports)
        std::fprintf(
            stderr,
            "  port %u role %s state %s cost %u edge %d p2p %d proto %s designated %s/%u/%s "
            "port %04x\n",
            p.number, std::string(ToString(p.role)).c_str(), std::string(ToString(p.state)).c_str(),
            p.path_cost, p.oper_edge, p.point_to_point, std::string(ToString(p.protocol)).c_str(),
            p.designated_root.ToString().c_str(), p.designated_cost,
            p.designated_bridge.ToString().c_str(), p.designated_port);
    }
    for (size_t l = 0; l < links_.size(); ++l)
      std::fprintf(stderr,
                   "link %zu: bridge %d port %u <-> bridge %d port %u up %d forwarding %d\n", l,
                   links_[l].end[0].bridge, links_[l].end[0].port, links_[l].end[1].bridge,
                   links_[l].end[1].port, links_[l].up, Forwarding(links_[l]));
    std::abort();
  }

  FuzzedDataProvider& in_;
  TimePoint now_{seconds(1000)};
  std::vector<std::unique_ptr<Bridge>> bridges_;
  std::vector<BridgeId> ids_;
  std::vector<Link> links_;
  std::vector<size_t> link_of_[kBridges];  // per bridge, by port number - 1
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Loop loop(in);
  if (!loop.Build()) return 0;
  loop.Meddle();
  loop.Converge();
  return 0;
}
