// Simulated networks of 3..8 bridges (ring, full mesh, line, two rings sharing
// a link): the tree is the one 802.1D defines, failed links reconverge in time,
// and no forwarding loop exists at any step.
#include "simulation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>

namespace vfabric::stp::testing {
namespace {

enum class Shape { kRing, kMesh, kLine, kTwoRings };

const char* Name(Shape shape) {
  switch (shape) {
    case Shape::kRing:
      return "ring";
    case Shape::kMesh:
      return "mesh";
    case Shape::kLine:
      return "line";
    case Shape::kTwoRings:
      return "two-rings";
  }
  return "?";
}

struct Scenario {
  Shape shape;
  int size;
  uint32_t seed;
  bool random_costs;
  Mode mode = Mode::kRstp;
  std::string ToString() const {
    std::ostringstream text;
    text << Name(shape) << " of " << size << " seed " << seed
         << (random_costs ? " random costs" : " equal costs")
         << (mode == Mode::kStp ? " stp" : " rstp");
    return text.str();
  }
};

// Bridge ids: random MACs, and in half the seeds random priorities too, so
// both the priority and the address tie-breakers are exercised.
void Build(Network& net, const Scenario& s, std::vector<Mode> modes = {}) {
  std::mt19937 rng(s.seed);
  for (int i = 0; i < s.size; ++i) {
    BridgeSpec spec;
    spec.priority = (s.seed % 2 == 0) ? 32768 : static_cast<uint16_t>(4096 * (rng() % 16));
    spec.address.bytes = {0x52,
                          0x54,
                          0x00,
                          static_cast<uint8_t>(rng()),
                          static_cast<uint8_t>(rng()),
                          static_cast<uint8_t>(i)};
    spec.mode = modes.empty() ? s.mode : modes[static_cast<size_t>(i) % modes.size()];
    net.AddBridge(spec);
  }
  auto cost = [&]() -> uint32_t {
    if (!s.random_costs) return 0;
    static const uint32_t kCosts[] = {2000, 4000, 20000, 200000};
    return kCosts[rng() % 4];
  };
  auto connect = [&](int a, int b) {
    // Drawn one by one: as arguments of one call their order was the
    // compiler's (clang built other networks from the same seeds than GCC).
    // b's first, GCC's order, so the scenarios stay the ones tested so far.
    const uint32_t cost_b = cost();
    const uint32_t cost_a = cost();
    net.Connect(a, b, cost_a, cost_b);
  };
  const int n = s.size;
  switch (s.shape) {
    case Shape::kRing:
      for (int i = 0; i < n; ++i) connect(i, (i + 1) % n);
      break;
    case Shape::kLine:
      for (int i = 0; i + 1 < n; ++i) connect(i, i + 1);
      break;
    case Shape::kMesh:
      for (int i = 0; i < n; ++i) {
        for (int j = i + 1; j < n; ++j) connect(i, j);
      }
      break;
    case Shape::kTwoRings: {
      // Ring one: 0, 1, ..., k-1; ring two: 0, 1, k, ..., n-1. Link 0-1 is shared.
      const int k = (n + 2) / 2;
      for (int i = 0; i < k; ++i) connect(i, (i + 1) % k);
      connect(1, k);
      for (int i = k; i + 1 < n; ++i) connect(i, i + 1);
      connect(n - 1, 0);
      break;
    }
  }
}

std::vector<Scenario> AllScenarios(Mode mode) {
  std::vector<Scenario> all;
  for (Shape shape : {Shape::kRing, Shape::kMesh, Shape::kLine, Shape::kTwoRings}) {
    for (int size = (shape == Shape::kTwoRings ? 4 : 3); size <= 8; ++size) {
      for (uint32_t seed : {1u, 2u}) {
        for (bool random_costs : {false, true}) {
          all.push_back(
              Scenario{shape, size, seed * 100 + static_cast<uint32_t>(size), random_costs, mode});
        }
      }
    }
  }
  return all;
}

// Seconds to let a network rest between failures.
constexpr int kSettle = 8;

double Ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

TEST(RstpSimulationTest, ConvergesToThe8021DTree) {
  for (const Scenario& s : AllScenarios(Mode::kRstp)) {
    SCOPED_TRACE(s.ToString());
    Network net;
    Build(net, s);
    auto took = net.RunUntil([&] { return net.Converged(); }, seconds(10));
    ASSERT_TRUE(took.has_value()) << net.Mismatches() << net.Dump();
    // Proposal/agreement: a fresh RSTP network settles without waiting for timers.
    EXPECT_LT(*took, seconds(1)) << net.Dump();
    net.RunFor(seconds(30));  // and stays there
    EXPECT_TRUE(net.Converged()) << net.Mismatches() << net.Dump();
    EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
  }
}

// Fails every link in turn (then restores it) and measures how long the
// network takes to reach the new 802.1D tree. Returns the worst time.
Duration FailEveryLink(const Scenario& s, Duration limit, std::vector<std::string>* slow,
                       Duration slow_threshold) {
  Network net;
  Build(net, s);
  EXPECT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(10)).has_value());
  // Let the transmit hold counts (TxHoldCount 6, one more per second) recover.
  net.RunFor(seconds(kSettle));
  Duration worst{0};
  for (int link = 0; link < net.link_count(); ++link) {
    SCOPED_TRACE("link " + std::to_string(link));
    for (bool up : {false, true}) {
      net.SetLinkUp(link, up);
      auto took = net.RunUntil([&] { return net.Converged(); }, limit);
      EXPECT_TRUE(took.has_value()) << net.Mismatches() << net.Dump();
      if (!took) return limit;
      worst = std::max(worst, *took);
      if (*took >= slow_threshold) {
        slow->push_back(s.ToString() + ": link " + std::to_string(link) + (up ? " up " : " down ") +
                        std::to_string(Ms(*took)) + " ms");
      }
      net.RunFor(seconds(kSettle));
      EXPECT_TRUE(net.Converged()) << net.Mismatches() << net.Dump();
    }
  }
  EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
  return worst;
}

TEST(RstpSimulationTest, FailedLinkReconvergesWellUnderOneSecond) {
  // Rings, lines and two rings sharing a link: every failure and repair is
  // handled by proposal/agreement alone, without waiting for a timer.
  std::vector<std::string> slow;
  Duration worst{0};
  for (const Scenario& s : AllScenarios(Mode::kRstp)) {
    if (s.shape == Shape::kMesh) continue;
    SCOPED_TRACE(s.ToString());
    worst = std::max(worst, FailEveryLink(s, seconds(1), &slow, milliseconds(100)));
  }
  EXPECT_LT(worst, milliseconds(100));
  for (const std::string& line : slow) ADD_FAILURE() << line;
}

TEST(RstpSimulationTest, FullMeshReconvergesDespiteStaleInformation) {
  // In a full mesh, a bridge that loses its root port with no alternate
  // declares itself root, and its neighbours briefly prefer each other's stale
  // paths through it: RSTP's distance-vector "count to infinity", throttled by
  // TxHoldCount. It still converges, within a few seconds, and never loops.
  std::vector<std::string> slow;
  Duration worst{0};
  for (const Scenario& s : AllScenarios(Mode::kRstp)) {
    if (s.shape != Shape::kMesh) continue;
    SCOPED_TRACE(s.ToString());
    worst = std::max(worst, FailEveryLink(s, seconds(30), &slow, seconds(1)));
  }
  RecordProperty("worst_ms", std::to_string(Ms(worst)));
  std::cout << "full mesh: worst reconvergence " << Ms(worst) << " ms; " << slow.size()
            << " events over 1 s\n";
  for (const std::string& line : slow) std::cout << "  " << line << "\n";
  EXPECT_LT(worst, seconds(10));
}

TEST(RstpSimulationTest, ReconvergesWithLinkDelay) {
  // 1 ms per hop: the handshake ripples hop by hop, still far under a second.
  for (Shape shape : {Shape::kRing, Shape::kTwoRings, Shape::kMesh}) {
    Scenario s{shape, 8, 7, true};
    SCOPED_TRACE(s.ToString());
    Network net(milliseconds(1));
    Build(net, s);
    ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(10)).has_value())
        << net.Mismatches();
    net.RunFor(seconds(kSettle));
    for (int link = 0; link < net.link_count(); link += 2) {
      net.SetLinkUp(link, false);
      auto down = net.RunUntil([&] { return net.Converged(); }, seconds(1));
      ASSERT_TRUE(down.has_value()) << net.Mismatches() << net.Dump();
      EXPECT_LT(*down, milliseconds(200));
      net.RunFor(seconds(kSettle));
      net.SetLinkUp(link, true);
      ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(1)).has_value())
          << net.Mismatches();
      net.RunFor(seconds(kSettle));
    }
    EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
  }
}

TEST(StpSimulationTest, ForcedStpConvergesAndReconvergesInTime) {
  // 802.1D timing: forward delay 15 s, max age 20 s: a failed link must be
  // repaired within 2 * forward_delay + max_age = 50 s.
  const Duration bound = seconds(2 * 15 + 20);
  for (const Scenario& base : AllScenarios(Mode::kStp)) {
    if (base.size > 6 || base.random_costs) continue;  // keep the run short
    Scenario s = base;
    SCOPED_TRACE(s.ToString());
    Network net;
    Build(net, s);
    auto took = net.RunUntil([&] { return net.Converged(); }, seconds(60));
    ASSERT_TRUE(took.has_value()) << net.Mismatches() << net.Dump();
    EXPECT_GE(*took, seconds(2 * 15 - 1));  // listening + learning, no shortcut
    for (int link = 0; link < net.link_count(); link += 2) {
      SCOPED_TRACE("link " + std::to_string(link));
      net.SetLinkUp(link, false);
      auto down = net.RunUntil([&] { return net.Converged(); }, bound);
      ASSERT_TRUE(down.has_value()) << net.Mismatches() << net.Dump();
      net.SetLinkUp(link, true);
      auto up = net.RunUntil([&] { return net.Converged(); }, bound);
      ASSERT_TRUE(up.has_value()) << net.Mismatches() << net.Dump();
    }
    EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
    for (int b = 0; b < net.bridge_count(); ++b) {
      for (const PortStatus& p : net.bridge(b).GetStatus(net.now()).ports) {
        EXPECT_EQ(p.protocol, Protocol::kStp);
        EXPECT_EQ(p.counters.tx_rst, 0u);
      }
    }
  }
}

TEST(StpSimulationTest, SilentLinkFailureAgesOut) {
  // The link stops carrying frames but both ports stay up: the information
  // received over it ages out (3 * hello in RSTP, 802.1D-2004 17.21.23) and
  // the tree reforms within 2 * forward_delay + max_age in either mode.
  for (Mode mode : {Mode::kRstp, Mode::kStp}) {
    for (Shape shape : {Shape::kRing, Shape::kTwoRings}) {
      Scenario s{shape, 6, 11, false, mode};
      SCOPED_TRACE(s.ToString());
      Network net;
      Build(net, s);
      ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(60)).has_value());
      for (int link = 0; link < net.link_count(); ++link) {
        net.SetLinkSilent(link, true);
        auto took = net.RunUntil([&] { return net.Converged(); }, seconds(2 * 15 + 20));
        ASSERT_TRUE(took.has_value()) << net.Mismatches() << net.Dump();
        if (mode == Mode::kRstp) {
          EXPECT_LE(*took, seconds(3 * 2 + 1));
        }
        // Repaired with a link flap (a silent link that starts carrying frames
        // again without one would join two designated forwarding ports until
        // the next hello: a loop no protocol can see coming).
        net.SetLinkUp(link, false);
        net.SetLinkSilent(link, false);
        net.SetLinkUp(link, true);
        ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(2 * 15 + 20)).has_value())
            << net.Mismatches() << net.Dump();
      }
      EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
    }
  }
}

TEST(StpSimulationTest, MixedRstpAndStpBridgesInteroperate) {
  // Every other bridge speaks only 802.1D: RSTP ports facing them migrate to
  // STP, and the whole network still forms the 802.1D tree without loops.
  for (Shape shape : {Shape::kRing, Shape::kMesh, Shape::kTwoRings}) {
    Scenario s{shape, 6, 21, false};
    SCOPED_TRACE(s.ToString());
    Network net;
    Build(net, s, {Mode::kRstp, Mode::kStp});
    ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(60)).has_value())
        << net.Mismatches() << net.Dump();
    // STP-only bridges never send RST BPDUs. An RSTP port migrates to STP
    // when it hears 802.1D BPDUs, i.e. when its peer is a designated STP port.
    for (int link = 0; link < net.link_count(); ++link) {
      const Network::Link& l = net.link(link);
      for (auto [b, port, peer, peer_port] :
           {std::tuple{l.a, l.pa, l.b, l.pb}, std::tuple{l.b, l.pb, l.a, l.pa}}) {
        const bool stp_bridge = b % 2 == 1, stp_peer = peer % 2 == 1;
        const bool peer_designated =
            net.bridge(peer).GetPortRole(peer_port) == PortRole::kDesignated;
        for (const PortStatus& p : net.bridge(b).GetStatus(net.now()).ports) {
          if (p.number != port) continue;
          if (stp_bridge) {
            EXPECT_EQ(p.counters.tx_rst, 0u);
          }
          if (stp_bridge || (stp_peer && peer_designated)) {
            EXPECT_EQ(p.protocol, Protocol::kStp) << "bridge " << b << " port " << port;
          }
          if (!stp_bridge && !stp_peer) {
            EXPECT_EQ(p.protocol, Protocol::kRstp) << "bridge " << b << " port " << port;
          }
        }
      }
    }
    for (int link = 0; link < net.link_count(); link += 2) {
      net.SetLinkUp(link, false);
      ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(50)).has_value())
          << net.Mismatches() << net.Dump();
      net.SetLinkUp(link, true);
      ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(50)).has_value())
          << net.Mismatches() << net.Dump();
    }
    EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
  }
}

}  // namespace
}  // namespace vfabric::stp::testing

namespace vfabric::stp::testing {
namespace {

TEST(RstpSimulationTest, RootBridgeFailureElectsTheNextRootWithoutLoops) {
  // The root disappears (all its links down at once). The survivors elect the
  // next-best bridge. Stale information about the dead root circulates until
  // it is replaced or its message age reaches max age: RSTP's known
  // count-to-infinity; what must hold is that it converges and never loops.
  Duration worst{0};
  for (const Scenario& s : AllScenarios(Mode::kRstp)) {
    if (s.shape == Shape::kLine) continue;
    SCOPED_TRACE(s.ToString());
    Network net;
    Build(net, s);
    ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(10)).has_value());
    net.RunFor(seconds(kSettle));
    const BridgeId root = net.bridge(0).GetStatus(net.now()).root_id;
    for (int link = 0; link < net.link_count(); ++link) {
      const Network::Link& l = net.link(link);
      if (net.bridge(l.a).GetStatus(net.now()).bridge_id == root ||
          net.bridge(l.b).GetStatus(net.now()).bridge_id == root) {
        net.SetLinkUp(link, false);
      }
    }
    auto took = net.RunUntil([&] { return net.Converged(); }, seconds(60));
    ASSERT_TRUE(took.has_value()) << net.Mismatches() << net.Dump();
    worst = std::max(worst, *took);
    net.RunFor(seconds(30));
    EXPECT_TRUE(net.Converged()) << net.Mismatches();
    EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
  }
  std::cout << "root failure: worst reconvergence " << Ms(worst) << " ms\n";
}

}  // namespace
}  // namespace vfabric::stp::testing

namespace vfabric::stp::testing {
namespace {

// Whether every bridge still reaches every other over the up links but `cut`.
bool StaysConnectedWithout(const Network& net, int cut) {
  std::vector<bool> seen(static_cast<size_t>(net.bridge_count()), false);
  std::vector<int> stack{0};
  seen[0] = true;
  while (!stack.empty()) {
    const int x = stack.back();
    stack.pop_back();
    for (int i = 0; i < net.link_count(); ++i) {
      const Network::Link& l = net.link(i);
      if (i == cut || !l.up) continue;
      for (auto [from, to] : {std::pair{l.a, l.b}, std::pair{l.b, l.a}}) {
        if (from == x && !seen[static_cast<size_t>(to)]) {
          seen[static_cast<size_t>(to)] = true;
          stack.push_back(to);
        }
      }
    }
  }
  return std::all_of(seen.begin(), seen.end(), [](bool b) { return b; });
}

TEST(RstpSimulationTest, RandomGraphsWithRandomFailuresNeverLoop) {
  // Random connected graphs of 3..8 bridges, then a burst of link flaps at
  // random instants (no waiting for convergence in between), 1 ms per hop.
  // No loop may form at any step, and the network must settle on the 802.1D
  // tree afterwards. Flaps never partition the network: a partition that
  // loses the root starts RSTP's count to infinity, during which stale root
  // information can chase its tail around a cycle of root ports, a known
  // flaw of the protocol (see DESIGN.md), covered separately above.
  //
  //
  // Seeds 1..60 run by default. STP_SIM_SEEDS=N runs 1..N (STP_SIM_SEED=k only
  // seed k; STP_SIM_TRACE=1 prints every delivery). Known open cases in the
  // first 1000 seeds: 212 and 343 (count to infinity between two bridges joined
  // by parallel links) and 657 (agreements crossing on parallel links flapping
  // back to back) each show a loop lasting milliseconds. See stp/DESIGN.md.
  const char* seeds_env = std::getenv("STP_SIM_SEEDS");
  const char* seed_env = std::getenv("STP_SIM_SEED");
  const uint32_t seeds = seeds_env ? static_cast<uint32_t>(std::atoi(seeds_env)) : 60;
  for (uint32_t seed = 1; seed <= seeds; ++seed) {
    if (seed_env && seed != static_cast<uint32_t>(std::atoi(seed_env))) continue;
    std::mt19937 rng(seed);
    const int n = 3 + static_cast<int>(rng() % 6);
    Network net(milliseconds(1));
    for (int i = 0; i < n; ++i) {
      BridgeSpec spec;
      spec.priority = static_cast<uint16_t>(4096 * (rng() % 16));
      spec.address.bytes = {0x52,
                            0x54,
                            0x00,
                            static_cast<uint8_t>(rng()),
                            static_cast<uint8_t>(rng()),
                            static_cast<uint8_t>(i)};
      spec.mode = (seed % 5 == 0 && i % 3 == 1) ? Mode::kStp : Mode::kRstp;
      net.AddBridge(spec);
    }
    static const uint32_t kCosts[] = {2000, 4000, 20000};
    for (int i = 1; i < n; ++i) {  // a random spanning tree...
      net.Connect(i, static_cast<int>(rng() % static_cast<uint32_t>(i)), kCosts[rng() % 3],
                  kCosts[rng() % 3]);
    }
    const int extra = 1 + static_cast<int>(rng() % static_cast<uint32_t>(n));
    for (int e = 0; e < extra; ++e) {  // ...plus redundant links
      const int a = static_cast<int>(rng() % static_cast<uint32_t>(n));
      const int b = static_cast<int>(rng() % static_cast<uint32_t>(n));
      if (a != b) net.Connect(a, b, kCosts[rng() % 3], kCosts[rng() % 3]);
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + std::to_string(n) + " bridges, " +
                 std::to_string(net.link_count()) + " links");
    ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(60)).has_value())
        << net.Mismatches() << net.Dump();
    net.RunFor(seconds(kSettle));
    for (int flap = 0; flap < 12; ++flap) {
      const int link = static_cast<int>(rng() % static_cast<uint32_t>(net.link_count()));
      if (net.link(link).up && !StaysConnectedWithout(net, link)) continue;
      net.SetLinkUp(link, !net.link(link).up);
      net.RunFor(milliseconds(rng() % 3000));
    }
    ASSERT_TRUE(net.RunUntil([&] { return net.Converged(); }, seconds(90)).has_value())
        << net.Mismatches() << net.Dump();
    EXPECT_EQ(net.loop_violations(), 0) << net.first_loop();
  }
}

}  // namespace
}  // namespace vfabric::stp::testing
