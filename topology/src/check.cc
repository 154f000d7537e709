// Pass 2 of loading: names and references across every file. See decode.h.

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "decode.h"

namespace vfabric::topology::internal {
namespace {

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Whether frames of VLAN `vid` may cross `port` (its VLAN settings, or the
// network's default PVID untagged when it has none).
bool PortCarries(const NetworkConfig& network, const PortConfig& port, uint16_t vid) {
  switch (port.vlan.mode) {
    case VlanMode::kNone:
      return vid == network.vlan.default_pvid;
    case VlanMode::kAccess:
      return vid == port.vlan.pvid;
    case VlanMode::kTrunk:
      return port.vlan.allowed.test(vid) || (port.vlan.native != 0 && vid == port.vlan.native);
  }
  return false;
}

// "access VLAN 20", "trunk 10,20-30, native 1", "untagged VLAN 1".
std::string PortVlansText(const NetworkConfig& network, const PortConfig& port) {
  switch (port.vlan.mode) {
    case VlanMode::kNone:
      return "untagged VLAN " + std::to_string(network.vlan.default_pvid);
    case VlanMode::kAccess:
      return "access VLAN " + std::to_string(port.vlan.pvid);
    case VlanMode::kTrunk: {
      const std::string list = FormatVlanList(port.vlan.allowed);
      std::string text = "trunk " + (list.empty() ? std::string("-") : list);
      if (port.vlan.native != 0) text += ", native " + std::to_string(port.vlan.native);
      return text;
    }
  }
  return "";
}

// Orders sites as the files were given, then by position.
struct SiteOrder {
  size_t file_index;
  int line;
  int column;
  friend bool operator<(const SiteOrder& a, const SiteOrder& b) {
    return std::tie(a.file_index, a.line, a.column) < std::tie(b.file_index, b.line, b.column);
  }
};

struct InterfaceSite {
  std::string name;
  SourceLocation where;
  SiteOrder order;
  std::string what;    // "the bridge of network \"lab\""
  size_t network = 0;  // index into topology.networks
  long port = -1;      // index into that network's ports, -1 for a bridge or a peer
  bool defaulted = false;
};

// Reports the second and later occurrences of each name among `sites`.
template <typename Site, typename Describe>
void ReportDuplicates(std::vector<Site> sites, Describe describe, std::vector<Diagnostic>* errors,
                      std::map<std::string, Site>* first_out = nullptr) {
  std::stable_sort(sites.begin(), sites.end(),
                   [](const Site& a, const Site& b) { return a.order < b.order; });
  std::map<std::string, Site> first;
  for (Site& site : sites) {
    auto [it, inserted] = first.emplace(site.name, site);
    if (!inserted) errors->push_back({site.where, describe(site, it->second)});
  }
  if (first_out) *first_out = std::move(first);
}

SiteOrder OrderOf(size_t file_index, const SourceLocation& where) {
  return {file_index, where.line, where.column};
}

// One host address on two networks' bridges: the kernel takes the second
// (it is another link), and the host's replies leave by whichever route
// wins, so one of the networks silently loses its host. Refused, whatever
// the prefix lengths.
void CheckBridgeAddresses(const Decoded& decoded, std::vector<Diagnostic>* errors) {
  struct AddressSite {
    std::string name;  // the address alone, "10.0.0.1"
    SourceLocation where;
    SiteOrder order;
    std::string network;
  };
  std::vector<AddressSite> sites;
  for (size_t n = 0; n < decoded.topology.networks.size(); ++n) {
    const NetworkConfig& network = decoded.topology.networks[n];
    const NetworkSites& network_sites = decoded.networks[n];
    if (!network.addresses) continue;
    for (size_t a = 0; a < network.addresses->size() && a < network_sites.addresses.size(); ++a) {
      const SourceLocation& where = network_sites.addresses[a];
      sites.push_back({(*network.addresses)[a].AddressText(), where,
                       OrderOf(network_sites.file_index, where), network.name});
    }
  }
  ReportDuplicates(
      sites,
      [](const AddressSite& site, const AddressSite& first_site) {
        return "address " + site.name + " is already on the bridge of network " +
               Quoted(first_site.network) + " (at " + LocationText(first_site.where) +
               "): one host address belongs to one network";
      },
      errors);
}

// Refuses the first port too many on each network (kMaxKernelBridgePorts,
// kMaxUserspaceSwitchPorts), counting as netd does: the declared ports in
// order, then the tap of each VM NIC (VMs and NICs in order) that names no
// port the network declares.
void CheckPortCounts(const Decoded& decoded, const std::map<std::string, size_t>& network_index,
                     std::vector<Diagnostic>* errors) {
  const Topology& topology = decoded.topology;
  std::vector<std::set<std::string>> names(topology.networks.size());
  std::vector<size_t> counts(topology.networks.size());
  const auto limit_of = [&](size_t n) {
    return topology.networks[n].datapath == Datapath::kKernel ? kMaxKernelBridgePorts
                                                              : kMaxUserspaceSwitchPorts;
  };
  const auto limit_text = [&](size_t n) {
    const std::string limit = std::to_string(limit_of(n));
    return topology.networks[n].datapath == Datapath::kKernel
               ? "a Linux bridge takes at most " + limit + " ports (port numbers 1.." + limit +
                     "), VM NIC taps included"
               : "vfabric's switch takes at most " + limit + " ports, VM NIC taps included";
  };
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    for (const PortConfig& port : network.ports) names[n].insert(port.name);
    counts[n] = network.ports.size();
    if (counts[n] > limit_of(n)) {
      errors->push_back({network.ports[limit_of(n)].where,
                         "port " + std::to_string(limit_of(n) + 1) + " of network " +
                             Quoted(network.name) + " is one too many: " + limit_text(n)});
    }
  }
  for (const VmConfig& vm : topology.vms) {
    for (size_t i = 0; i < vm.nics.size(); ++i) {
      const NicConfig& nic = vm.nics[i];
      auto network = network_index.find(nic.network);
      if (network == network_index.end()) continue;
      const size_t n = network->second;
      if (!names[n].insert(nic.port).second) continue;  // a declared tap, or a duplicate
      if (++counts[n] == limit_of(n) + 1) {
        errors->push_back(
            {nic.where, "the tap of NIC " + std::to_string(i) + " of VM " + Quoted(vm.name) +
                            " would be port " + std::to_string(counts[n]) + " of network " +
                            Quoted(topology.networks[n].name) + ": " + limit_text(n)});
      }
    }
  }
}

}  // namespace

std::string LocationText(const SourceLocation& where) {
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
}

std::string Suggest(std::string_view word, const std::vector<std::string_view>& candidates) {
  // Optimal string alignment distance: edits plus adjacent transpositions
  // ("brigde" is one step from "bridge").
  const auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
      }
    }
    return d[a.size()][b.size()];
  };
  if (word.size() > 64) return "";
  std::string best;
  size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    const size_t limit = std::min(word.size(), candidate.size()) <= 4 ? 1 : 2;
    const size_t d = distance(word, candidate);
    if (d <= limit && (best.empty() || d < best_distance)) {
      best = std::string(candidate);
      best_distance = d;
    }
  }
  return best;
}

void CheckAcross(Decoded* decoded) {
  Topology& topology = decoded->topology;
  std::vector<Diagnostic>* errors = &decoded->errors;

  // Network names.
  struct NameSite {
    std::string name;
    SourceLocation where;
    SiteOrder order;
  };
  std::vector<NameSite> network_names;
  std::map<std::string, size_t> network_index;
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    const NetworkSites& sites = decoded->networks[n];
    if (network.name.empty()) continue;
    network_names.push_back({network.name, sites.name, OrderOf(sites.file_index, sites.name)});
  }
  {
    std::map<std::string, NameSite> first;
    ReportDuplicates(
        network_names,
        [](const NameSite& site, const NameSite& first_site) {
          return "duplicate network name " + Quoted(site.name) + " (first at " +
                 LocationText(first_site.where) + ")";
        },
        errors, &first);
    for (size_t n = 0; n < topology.networks.size(); ++n) {
      const auto& name = topology.networks[n].name;
      if (!name.empty()) network_index.emplace(name, n);  // the first network of that name
    }
  }

  // VM names.
  std::vector<NameSite> vm_names;
  for (size_t v = 0; v < topology.vms.size(); ++v) {
    const VmSites& sites = decoded->vms[v];
    if (topology.vms[v].name.empty()) continue;
    vm_names.push_back({topology.vms[v].name, sites.name, OrderOf(sites.file_index, sites.name)});
  }
  ReportDuplicates(
      vm_names,
      [](const NameSite& site, const NameSite& first_site) {
        return "duplicate VM name " + Quoted(site.name) + " (first at " +
               LocationText(first_site.where) + ")";
      },
      errors);

  // Interface names: bridges, ports and veth peers share the host's namespace.
  std::vector<InterfaceSite> interfaces;
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    const NetworkSites& sites = decoded->networks[n];
    if (!network.bridge.empty()) {
      interfaces.push_back({network.bridge, sites.bridge, OrderOf(sites.file_index, sites.bridge),
                            "the bridge of network " + Quoted(network.name), n, -1,
                            sites.bridge_defaulted});
    }
    for (size_t p = 0; p < network.ports.size(); ++p) {
      const PortConfig& port = network.ports[p];
      const PortSites& port_sites = sites.ports[p];
      if (!port.name.empty()) {
        interfaces.push_back(
            {port.name, port_sites.name, OrderOf(sites.file_index, port_sites.name),
             "a " + std::string(ToString(port.kind)) + " port of network " + Quoted(network.name),
             n, static_cast<long>(p), false});
      }
      if (!port.peer.empty()) {
        interfaces.push_back({port.peer, port_sites.peer,
                              OrderOf(sites.file_index, port_sites.peer),
                              "the veth peer of port " + Quoted(port.name), n, -1, false});
      }
    }
  }
  // Overlays: the vxlan device netd makes ("vfx-<vni>") is one more
  // interface name; a VNI is one network per host.
  constexpr long kVxlanDevice = -2;  // InterfaceSite::port of a vxlan device
  struct VniSite {
    std::string name;  // the VNI as text
    SourceLocation where;
    SiteOrder order;
    std::string network;
  };
  std::vector<VniSite> vnis;
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    const NetworkSites& sites = decoded->networks[n];
    if (!network.overlay) continue;
    const SiteOrder order = OrderOf(sites.file_index, sites.overlay_vni);
    // A duplicate VNI is reported as such below, not a second time as a name.
    const bool first_of_vni = std::none_of(vnis.begin(), vnis.end(), [&](const VniSite& v) {
      return v.name == std::to_string(network.overlay->vni);
    });
    if (first_of_vni)
      interfaces.push_back({topology::OverlayDeviceName(network.overlay->vni), sites.overlay_vni,
                            order, "the vxlan device of network " + Quoted(network.name), n,
                            kVxlanDevice, false});
    vnis.push_back({std::to_string(network.overlay->vni), sites.overlay_vni, order, network.name});
  }
  ReportDuplicates(
      vnis,
      [](const VniSite& site, const VniSite& first_site) {
        return "VNI " + site.name + " is already the overlay of network " +
               Quoted(first_site.network) + " (at " + LocationText(first_site.where) +
               "): one VNI is one network";
      },
      errors);
  std::map<std::string, InterfaceSite> interface_owner;
  ReportDuplicates(
      interfaces,
      [](const InterfaceSite& site, const InterfaceSite& first_site) {
        std::string message =
            site.defaulted ? "the default bridge name " + Quoted(site.name) +
                                 " (from the network name) is already used"
            : site.port == kVxlanDevice
                ? "the vxlan device name " + Quoted(site.name) + " (from the VNI) is already used"
                : "interface name " + Quoted(site.name) + " is already used";
        return message + " by " + first_site.what + " (at " + LocationText(first_site.where) + ")";
      },
      errors, &interface_owner);

  // vhost-user sockets: one port per socket, across networks (two ports on
  // one path would steal each other's frontend, or each other's socket).
  std::vector<InterfaceSite> sockets;
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    const NetworkSites& sites = decoded->networks[n];
    for (size_t p = 0; p < network.ports.size(); ++p) {
      const PortConfig& port = network.ports[p];
      if (port.kind != PortKind::kVhostUser || port.socket.empty()) continue;
      const PortSites& port_sites = sites.ports[p];
      sockets.push_back({port.socket, port_sites.socket,
                         OrderOf(sites.file_index, port_sites.socket),
                         "port " + Quoted(port.name) + " of network " + Quoted(network.name), n,
                         static_cast<long>(p), false});
    }
  }
  ReportDuplicates(
      sockets,
      [](const InterfaceSite& site, const InterfaceSite& first_site) {
        return "socket " + Quoted(site.name) + " is already used by vhost-user " + first_site.what +
               " (at " + LocationText(first_site.where) + ")";
      },
      errors);

  // Static FDB entries name a port of their own network.
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    const NetworkSites& sites = decoded->networks[n];
    std::vector<std::string_view> port_names;
    for (const PortConfig& port : network.ports) port_names.push_back(port.name);
    for (size_t e = 0; e < network.fdb.static_entries.size(); ++e) {
      const StaticFdbEntry& entry = network.fdb.static_entries[e];
      if (entry.port.empty()) continue;
      auto port = std::find_if(network.ports.begin(), network.ports.end(),
                               [&](const PortConfig& p) { return p.name == entry.port; });
      if (port != network.ports.end()) {
        // An entry in a VLAN the port is not in could never be used (the
        // kernel bridge refuses one).
        const bool vlans_apply = network.datapath == Datapath::kUserspace || network.vlan.filtering;
        if (entry.vlan != 0 && vlans_apply && !PortCarries(network, *port, entry.vlan)) {
          errors->push_back({sites.fdb_ports[e],
                             "port " + Quoted(entry.port) + " is not in VLAN " +
                                 std::to_string(entry.vlan) + " (" + PortVlansText(network, *port) +
                                 "): frames for this static entry could never leave by it"});
        }
        continue;
      }
      std::string message =
          "no port named " + Quoted(entry.port) + " in network " + Quoted(network.name);
      const std::string suggestion = Suggest(entry.port, port_names);
      if (!suggestion.empty()) message += "; did you mean " + Quoted(suggestion) + "?";
      errors->push_back({sites.fdb_ports[e], std::move(message)});
    }
  }

  // VM NICs: the network exists; the port is either a tap port declared in
  // that network (a vhost-user port in server mode for backend vhost-user)
  // or a name no other interface uses; ports and MACs are unique; a
  // vhost-user NIC is on a userspace network.
  std::vector<std::string_view> network_names_view;
  for (const auto& [name, index] : network_index) network_names_view.push_back(name);
  struct NicSite {
    std::string name;
    SourceLocation where;
    SiteOrder order;
    std::string what;
  };
  std::vector<NicSite> nic_ports;
  std::vector<NicSite> nic_macs;
  for (size_t v = 0; v < topology.vms.size(); ++v) {
    const VmConfig& vm = topology.vms[v];
    const VmSites& sites = decoded->vms[v];
    for (size_t i = 0; i < vm.nics.size(); ++i) {
      const NicConfig& nic = vm.nics[i];
      const NicSites& nic_sites = sites.nics[i];
      const std::string what = "NIC " + std::to_string(i) + " of VM " + Quoted(vm.name);
      if (nic.mac) {
        nic_macs.push_back(
            {nic.mac->ToString(), nic_sites.mac, OrderOf(sites.file_index, nic_sites.mac), what});
      }
      auto network = network_index.end();
      if (!nic.network.empty()) {
        network = network_index.find(nic.network);
        if (network == network_index.end()) {
          std::string message = "no network named " + Quoted(nic.network);
          const std::string suggestion = Suggest(nic.network, network_names_view);
          if (!suggestion.empty()) message += "; did you mean " + Quoted(suggestion) + "?";
          errors->push_back({nic_sites.network, std::move(message)});
        }
      }
      if (nic.backend == NicBackend::kVhostUser && network != network_index.end() &&
          topology.networks[network->second].datapath != Datapath::kUserspace) {
        errors->push_back(
            {nic_sites.backend.line > 0 ? nic_sites.backend : nic.where,
             "a vhost-user NIC needs a network with \"datapath\": \"userspace\" (the switch reads "
             "the guest's rings); network " +
                 Quoted(nic.network) + " is a kernel bridge"});
      }
      if (nic.port.empty()) continue;
      nic_ports.push_back(
          {nic.port, nic_sites.port, OrderOf(sites.file_index, nic_sites.port), what});
      auto owner = interface_owner.find(nic.port);
      if (owner == interface_owner.end()) continue;
      const InterfaceSite& site = owner->second;
      const std::string name_text =
          (nic_sites.port_defaulted ? "the default port name " : "port ") + Quoted(nic.port);
      if (site.port >= 0 && network != network_index.end() && site.network == network->second) {
        const PortConfig& port = topology.networks[site.network].ports[site.port];
        if (nic.backend == NicBackend::kVhostUser) {
          // netd's QEMU connects to the port's socket: netd must listen there.
          if (port.kind != PortKind::kVhostUser || port.vhost_user_mode != VhostUserMode::kServer)
            errors->push_back({nic_sites.port, name_text + " is " + site.what + " at " +
                                                   LocationText(site.where) +
                                                   "; a vhost-user VM NIC needs a vhost-user "
                                                   "port with \"mode\": \"server\""});
        } else if (port.kind != PortKind::kTap) {
          errors->push_back({nic_sites.port, name_text + " is " + site.what + " at " +
                                                 LocationText(site.where) +
                                                 "; a VM NIC needs a tap port"});
        }
        continue;  // the NIC uses the tap its network declares
      }
      errors->push_back({nic_sites.port, name_text + " is already used by " + site.what + " (at " +
                                             LocationText(site.where) + ")"});
    }
  }
  ReportDuplicates(
      nic_ports,
      [](const NicSite& site, const NicSite& first_site) {
        return "port " + Quoted(site.name) + " is already used by " + first_site.what + " (at " +
               LocationText(first_site.where) + ")";
      },
      errors);
  CheckPortCounts(*decoded, network_index, errors);
  // A kernel bridge's pinned MAC is one more host MAC on the same wire as
  // the guests': two bridges, or a bridge and a NIC, with one MAC would
  // steal each other's frames wherever their networks meet (an uplink, an
  // overlay).
  for (size_t n = 0; n < topology.networks.size(); ++n) {
    const NetworkConfig& network = topology.networks[n];
    const NetworkSites& sites = decoded->networks[n];
    if (!network.mac) continue;
    nic_macs.push_back({network.mac->ToString(), sites.mac, OrderOf(sites.file_index, sites.mac),
                        "the bridge of network " + Quoted(network.name)});
  }
  CheckBridgeAddresses(*decoded, errors);
  ReportDuplicates(
      nic_macs,
      [](const NicSite& site, const NicSite& first_site) {
        return "MAC address " + site.name + " is already used by " + first_site.what + " (at " +
               LocationText(first_site.where) + ")";
      },
      errors);
}

}  // namespace vfabric::topology::internal
