// The switches handed to a new image of netd and adopted by it
// (UserspaceNetworks::HandOver / Adopt; handover.h, netd/DESIGN.md
// "Restarts and upgrades without outage").
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <set>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/log.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {
namespace {

// As userspace.cc: virtual links count as 10 Gb/s.
constexpr uint64_t kSpeedMbps = 10000;

}  // namespace

HandoverState UserspaceNetworks::HandOver() {
  HandoverState state;
  for (auto& [name, network] : networks_) {
    if (!network.sw) continue;
    HandedOverNetwork out;
    out.name = name;
    // The tree first: it sets the switch's port states; then the datapath
    // stops between two turns (nothing in flight, the tx rings flushed).
    if (network.tree) out.tree = network.tree->Handover();
    network.sw->Stop();
    std::map<bridge::PortId, bridge::StpState> states;
    for (const bridge::PortInfo& info : network.sw->Ports()) states[info.id] = info.settings.stp;
    for (const auto& [port_name, port] : network.ports) {
      if (port.port == nullptr) continue;
      auto handed = port.port->Handover();
      if (!handed.ok()) {
        VF_LOG(kInfo) << "userspace network " << name << ": port " << port_name << ": "
                      << handed.status().message() << "; the new netd opens it anew";
        continue;
      }
      HandedOverPort p;
      p.name = port_name;
      p.id = port.id;
      p.backend = port.backend;
      p.identity = port.identity;
      p.stp = states.count(port.id) ? states[port.id] : bridge::StpState::kDiscarding;
      p.port = std::move(handed).value();
      out.ports.push_back(std::move(p));
    }
    auto entries = network.sw->FdbEntries();
    if (entries.ok()) {
      for (const bridge::FdbEntry& entry : *entries)
        if (!entry.is_static) out.learned.push_back(entry);
    } else {
      VF_LOG(kWarning) << "userspace network " << name << ": " << entries.status().message()
                       << "; learned FDB entries not handed over (they are learned again)";
    }
    state.networks.push_back(std::move(out));
  }
  return state;
}

void UserspaceNetworks::Adopt(HandoverState state) {
  adopting_.clear();
  for (HandedOverNetwork& network : state.networks) {
    const std::string name = network.name;
    adopting_[name] = std::move(network);
  }
}

std::optional<HandedOverPort> UserspaceNetworks::TakeHandedOver(const std::string& network,
                                                                const std::string& port,
                                                                std::string_view backend,
                                                                const std::string& identity) {
  auto n = adopting_.find(network);
  if (n == adopting_.end()) return std::nullopt;
  auto& ports = n->second.ports;
  auto it = std::find_if(ports.begin(), ports.end(),
                         [&](const HandedOverPort& p) { return p.name == port; });
  if (it == ports.end()) return std::nullopt;
  HandedOverPort handed = std::move(*it);
  ports.erase(it);
  if (handed.backend != backend || handed.identity != identity) {
    // Another link under the name (recreated meanwhile), or another kind:
    // its descriptors go (closed here), the port opens anew.
    VF_LOG(kInfo) << "userspace network " << network << ": port " << port << ": handed over as "
                  << handed.backend << " " << handed.identity << ", now " << backend << " "
                  << identity << "; opening it anew";
    return std::nullopt;
  }
  return handed;
}

bool UserspaceNetworks::RestoreTree(const SwitchOperation& op, const KernelState& state,
                                    Network& network, bridge::SpanningTreeConfig config) {
  auto n = adopting_.find(op.network);
  if (n == adopting_.end() || !n->second.tree) return false;
  const bridge::TreeHandover handed = std::move(*n->second.tree);
  n->second.tree.reset();
  const std::string what = "userspace network " + op.network + ": spanning tree";
  auto tree = bridge::SpanningTree::Restore(*network.sw, network.inbox, std::move(config), handed);
  if (!tree.ok()) {
    VF_LOG(kWarning) << what << ": not carried on: " << tree.status().message()
                     << "; starting afresh (its ports converge again)";
    return false;
  }
  // Which ports carry on: adopted ones the tree had under the same id and
  // name. The others leave the tree first (their ids may be reused below)
  // and join it afresh.
  std::set<bridge::PortId> kept;
  for (const SwitchOperation::TreePort& member : op.tree_ports) {
    auto p = network.ports.find(member.name);
    if (p == network.ports.end() || !p->second.adopted) continue;
    const bridge::PortId id = p->second.id;
    if ((*tree)->HasPort(id) && id < handed.names.size() && handed.names[id] == member.name)
      kept.insert(id);
  }
  for (size_t id = 0; id < handed.names.size(); ++id) {
    const auto port_id = static_cast<bridge::PortId>(id);
    if (kept.count(port_id) || !(*tree)->HasPort(port_id)) continue;
    Status left = (*tree)->RemovePort(port_id);
    if (!left.ok()) VF_LOG(kWarning) << what << ": " << left.message();
  }
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  Status started = (*tree)->Start();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (!started.ok()) {
    VF_LOG(kWarning) << what << ": " << started.message() << "; starting afresh";
    return false;
  }
  network.tree = std::move(tree).value();
  network.tree_config = op.stp;
  size_t carried = 0;
  for (const SwitchOperation::TreePort& member : op.tree_ports) {
    auto p = network.ports.find(member.name);
    if (p == network.ports.end()) continue;  // not opened (reported)
    const LinkInfo* link = state.FindLink(member.name);
    const bool up = p->second.no_link || (link && link->oper_up);
    if (kept.count(p->second.id)) {
      p->second.tree = member.settings;
      p->second.link_up = true;
      ++carried;
      // A link that went down meanwhile is told as any carrier change.
      if (!up) {
        Status down = network.tree->SetPortLink(p->second.id, false, kSpeedMbps);
        if (!down.ok()) VF_LOG(kWarning) << what << ": " << down.message();
        p->second.link_up = false;
      }
      continue;
    }
    Status joined = JoinTree(network, member.name, member.settings, up);
    if (!joined.ok()) VF_LOG(kError) << what << ": " << joined.message();
  }
  VF_LOG(kInfo) << what << ": carried on from the handover (" << carried << " port"
                << (carried == 1 ? "" : "s") << " kept their role and state)";
  return true;
}

void UserspaceNetworks::FinishAdoption() {
  for (auto& [name, handed] : adopting_) {
    // Adopted in their tree's states, but no tree runs (STP now disabled,
    // or the tree did not start): without a tree every port forwards.
    auto n = networks_.find(name);
    // The learned entries of the ports adopted (same ids); the others' go.
    if (n != networks_.end() && n->second.sw) {
      std::set<bridge::PortId> adopted;
      for (const auto& [port_name, port] : n->second.ports)
        if (port.adopted) adopted.insert(port.id);
      std::vector<bridge::FdbEntry> entries;
      for (const bridge::FdbEntry& entry : handed.learned)
        if (adopted.count(entry.port)) entries.push_back(entry);
      const size_t learned = n->second.sw->LearnEntries(entries);
      VF_LOG(kInfo) << "userspace network " << name << ": " << learned << " of "
                    << handed.learned.size() << " learned FDB entries carried on";
    }
    if (n != networks_.end() && n->second.sw && !n->second.tree) {
      for (const auto& [port_name, port] : n->second.ports) {
        if (!port.adopted) continue;
        Status s = n->second.sw->SetPortStpState(port.id, bridge::StpState::kForwarding);
        if (!s.ok()) VF_LOG(kWarning) << "userspace network " << name << ": " << s.message();
      }
    }
    for (const HandedOverPort& port : handed.ports)
      VF_LOG(kInfo) << "userspace network " << name << ": handed-over port " << port.name
                    << " not adopted (no longer configured or not opened); closed";
  }
  adopting_.clear();  // closes what was not adopted
}

}  // namespace vfabric::netd
