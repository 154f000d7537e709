// The controller's views as Prometheus metrics (docs/metrics.md). The
// numbers are read exactly where the netctl views read them: a kernel
// port's link counters (port.stats), the kernel state as dumped (fdb.show,
// stp.show), a switch's port counters, FDB counters and entries (relaxed
// loads and the commands `port stats`, `network show` and `fdb show` use),
// its tree's status (stp.show), a vhost-user port's stats and the guests'
// status (vm.list). Nothing new is counted on the datapath for them.
#include <algorithm>
#include <string>

#include "vfabric/netd/controller.h"
#include "vfabric/netd/metrics.h"
#include "views.h"

namespace vfabric::netd {
namespace {

using metrics::Labels;
using nlohmann::json;
using topology::NetworkConfig;

const std::initializer_list<std::string_view> kRoles = {"root", "designated", "alternate", "backup",
                                                        "disabled"};
const std::initializer_list<std::string_view> kKernelStates = {"disabled", "listening", "learning",
                                                               "forwarding", "blocking"};
const std::initializer_list<std::string_view> kSwitchStates = {"discarding", "learning",
                                                               "forwarding"};

// A count from a view's JSON (stored signed or unsigned); 0 when absent.
uint64_t U64(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  return 0;
}

void PortTraffic(MetricsOut& out, const Labels& labels, uint64_t rx_packets, uint64_t rx_bytes,
                 uint64_t tx_packets, uint64_t tx_bytes) {
  out.Counter("vfabric_port_receive_packets_total", "Frames received on the port.", labels,
              rx_packets);
  out.Counter("vfabric_port_receive_bytes_total", "Bytes received on the port.", labels, rx_bytes);
  out.Counter("vfabric_port_transmit_packets_total", "Frames sent on the port.", labels,
              tx_packets);
  out.Counter("vfabric_port_transmit_bytes_total", "Bytes sent on the port.", labels, tx_bytes);
}

void PortDrop(MetricsOut& out, Labels labels, const std::string& reason, uint64_t value) {
  labels.emplace_back("reason", reason);
  out.Counter("vfabric_port_drops_total",
              "Frames dropped on the port, by reason (a kernel port: the link's rx_dropped and "
              "tx_dropped; a userspace port: the switch's drop reasons).",
              labels, value);
}

void FdbEntries(MetricsOut& out, const std::string& network, uint64_t learned, uint64_t statics) {
  const char* help = "Entries in the network's forwarding database, learned or static.";
  out.Gauge("vfabric_fdb_entries", help, {{"network", network}, {"type", "learned"}},
            static_cast<double>(learned));
  out.Gauge("vfabric_fdb_entries", help, {{"network", network}, {"type", "static"}},
            static_cast<double>(statics));
}

void PortTreeState(MetricsOut& out, const Labels& labels, std::string_view role,
                   std::initializer_list<std::string_view> states, std::string_view state) {
  out.StateSet("vfabric_stp_port_role", "The port's spanning tree role (1 for the current one).",
               labels, "role", kRoles, role);
  out.StateSet("vfabric_stp_port_state",
               "The port's spanning tree state (1 for the current one; a kernel port has the "
               "802.1D states, a userspace port the RSTP ones).",
               labels, "state", states, state);
}

void TreeBridge(MetricsOut& out, const std::string& network, bool is_root, bool topology_change) {
  const Labels labels = {{"network", network}};
  out.Gauge("vfabric_stp_root_bridge", "1 when this bridge is the spanning tree's root.", labels,
            is_root ? 1 : 0);
  out.Gauge("vfabric_stp_topology_change", "1 while a topology change is in progress.", labels,
            topology_change ? 1 : 0);
}

}  // namespace

void Controller::WriteMetrics(MetricsOut& out) {
  const topology::Topology desired = Desired();
  // One dump of the kernel for every kernel network's tree and FDB.
  auto state = ReadKernelState(kernel_, features_);
  if (!state.ok()) out.Fail("read kernel state: " + state.status().message());
  for (const NetworkConfig& network : desired.networks) {
    const std::string& name = network.name;
    if (network.datapath == topology::Datapath::kUserspace) {
      if (userspace_ == nullptr || !userspace_->Has(name)) continue;
      if (auto stats = userspace_->PortStats(name, ""); stats.ok()) {
        for (const json& port : (*stats)["ports"]) {
          const Labels labels = {{"network", name}, {"port", port["port"].get<std::string>()}};
          const json& c = port["counters"];
          PortTraffic(out, labels, U64(c, "rx_packets"), U64(c, "rx_bytes"), U64(c, "tx_packets"),
                      U64(c, "tx_bytes"));
          for (const auto& [reason, value] : c["drops"].items())
            PortDrop(out, labels, reason, value.get<uint64_t>());
          out.Counter("vfabric_port_mac_limit_not_learned_total",
                      "Frames whose source MAC the FDB's limits kept from being learned (still "
                      "forwarded).",
                      labels, U64(c, "mac_limit_not_learned"));
          out.Counter("vfabric_port_bpdus_trapped_total",
                      "BPDUs received on the port and handed to the spanning tree.", labels,
                      U64(c, "bpdu_trapped"));
        }
      } else {
        out.Fail(stats.status().message());
      }
      if (auto c = userspace_->FdbCounters(name); c.ok()) {
        const Labels labels = {{"network", name}};
        out.Counter("vfabric_fdb_learned_total", "Entries the FDB learned.", labels,
                    U64(*c, "learned"));
        out.Counter("vfabric_fdb_aged_total", "Learned entries that aged out.", labels,
                    U64(*c, "expired"));
        out.Counter("vfabric_fdb_evicted_total", "Learned entries pushed out by a full table.",
                    labels, U64(*c, "evicted"));
        out.Counter("vfabric_fdb_moved_total", "Learned entries that moved to another port.",
                    labels, U64(*c, "moved"));
        out.Counter("vfabric_fdb_flushed_total",
                    "Learned entries flushed (topology changes, fdb flush, ports removed).", labels,
                    U64(*c, "flushed"));
      } else {
        out.Fail(c.status().message());
      }
      if (auto entries = userspace_->FdbEntries(name); entries.ok()) {
        uint64_t statics = 0, learned = 0;
        for (const json& e : (*entries)["entries"]) ++(e["static"] == true ? statics : learned);
        FdbEntries(out, name, learned, statics);
      } else {
        out.Fail(entries.status().message());
      }
      if (auto stp = userspace_->StpJson(network); stp.ok()) {
        const json& tree = (*stp)["stp"];
        for (const json& port : tree["ports"])
          PortTreeState(out, {{"network", name}, {"port", port["name"].get<std::string>()}},
                        port["role"].get<std::string>(), kSwitchStates,
                        port["state"].get<std::string>());
        if (tree.contains("topology_change_count")) {
          TreeBridge(out, name, tree.value("is_root", false), tree.value("topology_change", false));
          out.Counter("vfabric_stp_topology_changes_total",
                      "Topology changes the spanning tree saw (userspace networks; the kernel "
                      "bridge keeps no count).",
                      {{"network", name}}, U64(tree, "topology_change_count"));
          out.Counter("vfabric_stp_bpdus_received_total", "BPDUs the spanning tree received.",
                      {{"network", name}}, U64(tree["counters"], "bpdus_in"));
          out.Counter("vfabric_stp_bpdus_sent_total", "BPDUs the spanning tree sent.",
                      {{"network", name}}, U64(tree["counters"], "bpdus_out"));
        }
      }
      for (const topology::PortConfig& port : network.ports) {
        const json vhost = userspace_->VhostUserState(name, port.name);
        if (vhost.is_null()) continue;
        const Labels labels = {{"network", name}, {"port", port.name}};
        const json& c = vhost["counters"];
        out.Gauge("vfabric_vhost_user_connected", "1 while a vhost-user frontend is connected.",
                  labels, vhost["connected"] == true ? 1 : 0);
        out.Counter("vfabric_vhost_user_connections_total", "vhost-user frontends connected.",
                    labels, U64(c, "connections"));
        out.Counter("vfabric_vhost_user_disconnects_total", "vhost-user frontends gone.", labels,
                    U64(c, "disconnects"));
        out.Counter("vfabric_vhost_user_messages_total", "vhost-user protocol messages handled.",
                    labels, U64(c, "messages"));
        out.Counter("vfabric_vhost_user_kicks_total", "Guest kicks (virtqueue notifications).",
                    labels, U64(c, "kicks"));
        out.Counter("vfabric_vhost_user_calls_total", "Interrupts (calls) sent to the guest.",
                    labels, U64(c, "calls"));
        out.Counter("vfabric_vhost_user_calls_suppressed_total",
                    "Interrupts the guest asked not to get.", labels, U64(c, "calls_suppressed"));
        for (const char* reason :
             {"messages_refused", "tx_not_ready", "tx_no_buffers", "tx_too_big", "offload_refused",
              "rx_oversize", "rx_bad_header", "ring_errors", "memory_faults"}) {
          Labels with = labels;
          with.emplace_back("reason", reason);
          out.Counter("vfabric_vhost_user_errors_total",
                      "vhost-user messages refused and ring errors, by reason.", with,
                      U64(c, reason));
        }
      }
      continue;
    }
    // A kernel network: its ports' link counters, as port.stats reads them.
    for (const topology::PortConfig& port : network.ports) {
      auto counters = kernel_.ReadLinkCounters(port.name);
      if (!counters.ok()) continue;  // not there (yet): port.stats shows none either
      const Labels labels = {{"network", name}, {"port", port.name}};
      PortTraffic(out, labels, counters->rx_packets, counters->rx_bytes, counters->tx_packets,
                  counters->tx_bytes);
      PortDrop(out, labels, "rx_dropped", counters->rx_dropped);
      PortDrop(out, labels, "tx_dropped", counters->tx_dropped);
    }
    if (!state.ok()) continue;
    const LinkInfo* bridge = state->FindLink(network.bridge);
    if (bridge == nullptr || !bridge->bridge) continue;
    uint64_t statics = 0, learned = 0;
    for (const FdbEntry& entry : state->fdb) {
      if (entry.is_local) continue;
      const LinkInfo* port = state->FindLink(entry.port_ifindex);
      if (port == nullptr || port->master_ifindex != bridge->ifindex) continue;
      if (entry.bridge_ifindex != 0 && entry.bridge_ifindex != bridge->ifindex) continue;
      ++(entry.is_static ? statics : learned);
    }
    FdbEntries(out, name, learned, statics);
    const BridgeStatus& status = *bridge->bridge;
    for (const LinkInfo& link : state->links) {
      if (link.master_ifindex != bridge->ifindex || !link.brport) continue;
      PortTreeState(out, {{"network", name}, {"port", link.name}},
                    KernelPortRole(status, *link.brport), kKernelStates,
                    StpStateName(link.brport->state));
    }
    // Root or not as stp.show says it: sysfs over netlink where they differ.
    std::string root = kernel_.BridgeRootIdFromSysfs(network.bridge);
    if (root.empty() && status.root_id) root = FormatBridgeId(*status.root_id);
    const bool is_root =
        status.bridge_id && !root.empty() && root == FormatBridgeId(*status.bridge_id);
    TreeBridge(out, name, is_root, status.topology_change.value_or(0) != 0);
  }
  if (guests_ != nullptr) {
    for (const json& vm : guests_->List()) {
      const Labels labels = {{"vm", vm["name"].get<std::string>()}};
      out.Counter("vfabric_guest_restarts_total",
                  "Times netd restarted the guest by its restart policy.", labels,
                  U64(vm, "restarts"));
      out.Gauge("vfabric_guest_running", "1 while the guest's QEMU runs.", labels,
                vm["state"] == "running" ? 1 : 0);
      out.Counter("vfabric_guest_record_write_failures_total",
                  "Writes of the guest's guest.json that failed (a full or read-only run dir).",
                  labels, U64(vm, "record_write_failures"));
      out.Gauge("vfabric_guest_record_stale",
                "1 while the guest's guest.json does not describe its QEMU (netd retries).", labels,
                vm.value("record_error", std::string()).empty() ? 0 : 1);
    }
  }
}

}  // namespace vfabric::netd
