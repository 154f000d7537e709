#include "simulation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <tuple>

namespace vfabric::stp::testing {

Network::Network(Duration link_delay) : delay_(link_delay), now_(TimePoint() + seconds(1000)) {
  trace_ = std::getenv("STP_SIM_TRACE") != nullptr;
}
Network::~Network() = default;

int Network::AddBridge(const BridgeSpec& spec) {
  Node node;
  node.spec = spec;
  BridgeConfig config;
  config.address = spec.address;
  config.priority = spec.priority;
  config.mode = spec.mode;
  config.hello_time = spec.hello_time;
  config.forward_delay = spec.forward_delay;
  config.max_age = spec.max_age;
  config.tx_hold_count = spec.tx_hold_count;
  // Each bridge's one-second tick has its own phase.
  const TimePoint created = now_ - milliseconds(137 * static_cast<int>(bridges_.size() % 7));
  auto engine = Bridge::Create(config, created);
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  node.engine = std::move(engine).value();
  node.config = config;
  bridges_.push_back(std::move(node));
  return static_cast<int>(bridges_.size()) - 1;
}

Status Network::RestoreBridge(int i) {
  Node& node = bridges_[static_cast<size_t>(i)];
  Drain(i);
  const std::vector<uint8_t> state = node.engine->SaveState();
  auto restored = Bridge::Restore(node.config, state, now_);
  if (!restored.ok()) return restored.status();
  node.engine = std::move(restored).value();
  node.restored = true;
  return Status::Ok();
}

int Network::Connect(int a, int b, uint32_t cost_a, uint32_t cost_b) {
  Link link;
  link.a = a;
  link.b = b;
  Node& na = bridges_[static_cast<size_t>(a)];
  Node& nb = bridges_[static_cast<size_t>(b)];
  link.pa = na.next_port++;
  link.pb = nb.next_port++;
  link.cost_a = cost_a != 0 ? cost_a : PathCostForSpeed(10000);
  link.cost_b = cost_b != 0 ? cost_b : PathCostForSpeed(10000);
  const int index = static_cast<int>(links_.size());
  links_.push_back(link);
  na.link_of[link.pa] = index;
  nb.link_of[link.pb] = index;
  PortConfig pa;
  pa.number = link.pa;
  pa.path_cost = cost_a;
  PortConfig pb;
  pb.number = link.pb;
  pb.path_cost = cost_b;
  EXPECT_TRUE(na.engine->AddPort(pa, now_).ok());
  EXPECT_TRUE(nb.engine->AddPort(pb, now_).ok());
  Drain(a);
  Drain(b);
  SetLinkUp(index, true);
  return index;
}

void Network::SetLinkUp(int index, bool up) {
  Link& link = links_[static_cast<size_t>(index)];
  if (trace_) {
    fprintf(stderr, "t=%.3f link %d %s\n",
            std::chrono::duration<double>(now_.time_since_epoch()).count() - 1000, index,
            up ? "up" : "down");
  }
  link.up = up;
  if (!up) ++link.generation;
  EXPECT_TRUE(
      bridges_[static_cast<size_t>(link.a)].engine->SetPortEnabled(link.pa, up, 10000, now_).ok());
  Drain(link.a);
  EXPECT_TRUE(
      bridges_[static_cast<size_t>(link.b)].engine->SetPortEnabled(link.pb, up, 10000, now_).ok());
  Drain(link.b);
}

void Network::SetLinkSilent(int index, bool silent) {
  Link& link = links_[static_cast<size_t>(index)];
  link.silent = silent;
  if (silent) ++link.generation;
}

PortState Network::StateOf(int bridge, PortNumber port) const {
  const Node& node = bridges_[static_cast<size_t>(bridge)];
  auto it = node.states.find(port);
  return it == node.states.end() ? PortState::kDiscarding : it->second;
}

void Network::Drain(int index) {
  Node& node = bridges_[static_cast<size_t>(index)];
  Output out = node.engine->TakeOutput();
  // The switch applies state changes first, then sends.
  for (const StateChange& change : out.state_changes) node.states[change.port] = change.state;
  node.flushes += out.flushes.size();
  if (node.restored) node.restored_changes += out.state_changes.size() + out.flushes.size();
  for (TxBpdu& tx : out.bpdus) {
    auto it = node.link_of.find(tx.port);
    if (it == node.link_of.end()) continue;
    const Link& link = links_[static_cast<size_t>(it->second)];
    if (!link.up || link.silent) continue;
    const bool from_a = link.a == index && link.pa == tx.port;
    in_flight_.push(InFlight{now_ + delay_, seq_++, it->second, link.generation,
                             from_a ? link.b : link.a, from_a ? link.pb : link.pa,
                             std::move(tx.frame)});
  }
  CheckLoops();
}

void Network::CheckLoops() {
  std::vector<int> parent(bridges_.size());
  std::iota(parent.begin(), parent.end(), 0);
  std::function<int(int)> find = [&](int x) {
    while (parent[static_cast<size_t>(x)] != x) x = parent[static_cast<size_t>(x)];
    return x;
  };
  for (size_t i = 0; i < links_.size(); ++i) {
    const Link& link = links_[i];
    if (!link.up || link.silent) continue;
    if (StateOf(link.a, link.pa) != PortState::kForwarding ||
        StateOf(link.b, link.pb) != PortState::kForwarding) {
      continue;
    }
    const int ra = find(link.a), rb = find(link.b);
    if (ra == rb) {
      if (loop_violations_++ == 0) {
        std::ostringstream text;
        text << "loop closed by link " << i << " at t="
             << std::chrono::duration_cast<milliseconds>(now_.time_since_epoch()).count() << " ms\n"
             << Dump();
        first_loop_ = text.str();
      }
      continue;
    }
    parent[static_cast<size_t>(ra)] = rb;
  }
}

bool Network::Step(TimePoint limit) {
  const bool have_frame = !in_flight_.empty() && in_flight_.top().at <= limit;
  int timer_bridge = -1;
  TimePoint timer_at = limit;
  for (size_t i = 0; i < bridges_.size(); ++i) {
    const TimePoint deadline = bridges_[i].engine->NextDeadline();
    if (deadline <= timer_at && (timer_bridge < 0 || deadline < timer_at)) {
      timer_at = deadline;
      timer_bridge = static_cast<int>(i);
    }
  }
  if (!have_frame && timer_bridge < 0) return false;
  // Frames first when both are due at the same instant.
  if (have_frame && (timer_bridge < 0 || in_flight_.top().at <= timer_at)) {
    InFlight f = in_flight_.top();
    in_flight_.pop();
    now_ = std::max(now_, f.at);
    const Link& link = links_[static_cast<size_t>(f.link)];
    if (!link.up || link.silent || link.generation != f.generation) return true;
    ++bpdus_delivered_;
    if (trace_) {
      Bpdu b;
      DecodeBpduFrame(f.frame, &b);
      fprintf(stderr,
              "t=%.3f -> %d.%u type=%d role=%d P=%d A=%d L=%d F=%d TC=%d root=%s cost=%u br=%s "
              "port=%x\n",
              std::chrono::duration<double>(now_.time_since_epoch()).count() - 1000, f.to_bridge,
              f.to_port, static_cast<int>(b.type), static_cast<int>(b.role), b.proposal,
              b.agreement, b.learning, b.forwarding, b.topology_change,
              b.root_id.ToString().c_str(), b.root_path_cost, b.bridge_id.ToString().c_str(),
              b.port_id);
    }
    Node& node = bridges_[static_cast<size_t>(f.to_bridge)];
    EXPECT_TRUE(node.engine->ReceiveBpdu(f.to_port, f.frame, now_).ok());
    Drain(f.to_bridge);
    return true;
  }
  now_ = std::max(now_, timer_at);
  bridges_[static_cast<size_t>(timer_bridge)].engine->AdvanceTo(now_);
  Drain(timer_bridge);
  return true;
}

void Network::RunFor(Duration d) {
  const TimePoint end = now_ + d;
  while (Step(end)) {
  }
  now_ = end;
}

std::optional<Duration> Network::RunUntil(const std::function<bool()>& done, Duration limit) {
  const TimePoint start = now_;
  const TimePoint end = now_ + limit;
  if (done()) return Duration::zero();
  while (Step(end)) {
    if (done()) return now_ - start;
  }
  now_ = end;
  return std::nullopt;
}

ExpectedTree Network::Expected() const {
  const size_t n = bridges_.size();
  std::vector<BridgeId> ids(n);
  for (size_t i = 0; i < n; ++i)
    ids[i] = BridgeId{bridges_[i].spec.priority, bridges_[i].spec.address};
  auto port_id = [](PortNumber number) { return MakePortId(128, number); };
  // Components and their roots.
  ExpectedTree tree;
  tree.root_of.assign(n, BridgeId{});
  tree.root_cost.assign(n, 0);
  std::vector<int> component(n, -1);
  for (size_t s = 0; s < n; ++s) {
    if (component[s] >= 0) continue;
    std::vector<size_t> members{s};
    component[s] = static_cast<int>(s);
    for (size_t k = 0; k < members.size(); ++k) {
      for (const Link& l : links_) {
        if (!l.up || l.silent) continue;
        for (auto [x, y] : {std::pair{l.a, l.b}, std::pair{l.b, l.a}}) {
          if (static_cast<size_t>(x) == members[k] && component[static_cast<size_t>(y)] < 0) {
            component[static_cast<size_t>(y)] = static_cast<int>(s);
            members.push_back(static_cast<size_t>(y));
          }
        }
      }
    }
    BridgeId root = ids[members[0]];
    for (size_t m : members) root = std::min(root, ids[m]);
    for (size_t m : members) tree.root_of[m] = root;
  }
  // Root path costs (Bellman-Ford: a bridge's cost through neighbour Y over
  // its port p is cost(Y) + cost(p)).
  const uint64_t kInf = ~0ULL;
  std::vector<uint64_t> cost(n, kInf);
  for (size_t i = 0; i < n; ++i) {
    if (tree.root_of[i] == ids[i]) cost[i] = 0;
  }
  for (size_t round = 0; round < n; ++round) {
    for (const Link& l : links_) {
      if (!l.up || l.silent) continue;
      const size_t a = static_cast<size_t>(l.a), b = static_cast<size_t>(l.b);
      if (cost[b] != kInf) cost[a] = std::min(cost[a], cost[b] + l.cost_a);
      if (cost[a] != kInf) cost[b] = std::min(cost[b], cost[a] + l.cost_b);
    }
  }
  for (size_t i = 0; i < n; ++i) tree.root_cost[i] = static_cast<uint32_t>(cost[i]);
  // Root ports: the best root path priority vector
  // {cost(Y) + cost(p), Y's id, Y's port id, own port id}.
  using Vector = std::tuple<uint64_t, uint64_t, PortId, PortId>;
  std::vector<std::optional<Vector>> best(n);
  std::vector<PortNumber> root_port(n, 0);
  for (const Link& l : links_) {
    if (!l.up || l.silent) continue;
    for (auto [x, px, y, py, c] :
         {std::tuple{l.a, l.pa, l.b, l.pb, l.cost_a}, std::tuple{l.b, l.pb, l.a, l.pa, l.cost_b}}) {
      const size_t xs = static_cast<size_t>(x), ys = static_cast<size_t>(y);
      if (tree.root_of[xs] == ids[xs]) continue;
      Vector v{cost[ys] + c, ids[ys].ToU64(), port_id(py), port_id(px)};
      if (!best[xs] || v < *best[xs]) {
        best[xs] = v;
        root_port[xs] = px;
      }
    }
  }
  for (const Link& l : links_) {
    if (!l.up || l.silent) continue;
    using Designated = std::tuple<uint64_t, uint64_t, PortId>;
    const size_t a = static_cast<size_t>(l.a), b = static_cast<size_t>(l.b);
    const Designated da{cost[a], ids[a].ToU64(), port_id(l.pa)};
    const Designated db{cost[b], ids[b].ToU64(), port_id(l.pb)};
    const bool a_designated = da < db;
    auto other_role = [&](size_t x, PortNumber p) {
      return root_port[x] == p ? PortRole::kRoot : PortRole::kAlternate;
    };
    tree.role[{l.a, l.pa}] = a_designated ? PortRole::kDesignated : other_role(a, l.pa);
    tree.role[{l.b, l.pb}] = a_designated ? other_role(b, l.pb) : PortRole::kDesignated;
  }
  return tree;
}

bool Network::Converged() const { return Mismatches().empty(); }

std::string Network::Mismatches() const {
  const ExpectedTree tree = Expected();
  std::ostringstream text;
  for (size_t i = 0; i < bridges_.size(); ++i) {
    const BridgeStatus status = bridges_[i].engine->GetStatus(now_);
    if (status.root_id != tree.root_of[i] || status.root_path_cost != tree.root_cost[i]) {
      text << "bridge " << i << ": root " << status.root_id.ToString() << " cost "
           << status.root_path_cost << ", expected " << tree.root_of[i].ToString() << " cost "
           << tree.root_cost[i] << "\n";
    }
  }
  for (const auto& [key, role] : tree.role) {
    const auto& [bridge, port] = key;
    const PortRole actual = bridges_[static_cast<size_t>(bridge)].engine->GetPortRole(port);
    const PortState state = StateOf(bridge, port);
    const PortState want = (role == PortRole::kRoot || role == PortRole::kDesignated)
                               ? PortState::kForwarding
                               : PortState::kDiscarding;
    if (actual != role || state != want) {
      text << "bridge " << bridge << " port " << port << ": " << ToString(actual) << "/"
           << ToString(state) << ", expected " << ToString(role) << "/" << ToString(want) << "\n";
    }
  }
  return text.str();
}

std::string Network::Dump() const {
  std::ostringstream text;
  for (size_t i = 0; i < bridges_.size(); ++i) {
    const BridgeStatus s = bridges_[i].engine->GetStatus(now_);
    text << "bridge " << i << " " << s.bridge_id.ToString() << " root " << s.root_id.ToString()
         << " cost " << s.root_path_cost << " rp " << s.root_port << ":";
    for (const PortStatus& p : s.ports) {
      text << " [" << p.number << " " << ToString(p.role) << " "
           << ToString(StateOf(static_cast<int>(i), p.number))
           << (p.protocol == Protocol::kStp ? " stp" : "") << (p.oper_edge ? " edge" : "") << "]";
    }
    text << "\n";
  }
  for (size_t i = 0; i < links_.size(); ++i) {
    const Link& l = links_[i];
    text << "link " << i << ": " << l.a << "." << l.pa << " - " << l.b << "." << l.pb
         << (l.up ? "" : " DOWN") << (l.silent ? " SILENT" : "") << "\n";
  }
  return text.str();
}

}  // namespace vfabric::stp::testing
