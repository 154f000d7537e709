// The kernel as read back (KernelState) and the mark that says which links
// netd owns (IFLA_IFALIAS "vfabric:<network>").
#include <algorithm>
#include <set>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

constexpr std::string_view kAliasPrefix = "vfabric:";

// The host's addresses, and the vxlan devices' flood entries: these live in
// the devices' own FDBs, a dump of its own, made only when there is a vxlan
// device to read. For the full read and the read of named networks alike.
Status ReadAddressesAndFlood(Kernel& kernel, KernelState* state) {
  auto addresses = kernel.ListAddresses();
  if (!addresses.ok()) return addresses.status();
  state->addresses = std::move(addresses).value();
  const bool any_vxlan = std::any_of(state->links.begin(), state->links.end(),
                                     [](const LinkInfo& link) { return link.kind == "vxlan"; });
  if (any_vxlan) {
    auto flood = kernel.ListVxlanFlood();
    if (!flood.ok()) return flood.status();
    state->vxlan_flood = std::move(flood).value();
  }
  return Status::Ok();
}

}  // namespace

std::string OwnerAlias(const std::string& network) { return std::string(kAliasPrefix) + network; }

std::string NetworkFromAlias(const std::string& alias) {
  if (alias.size() <= kAliasPrefix.size() || alias.compare(0, kAliasPrefix.size(), kAliasPrefix))
    return "";
  return alias.substr(kAliasPrefix.size());
}

void KernelState::IndexLinks() const {
  if (indexed_data_ == links.data() && indexed_size_ == links.size() && !links.empty()) return;
  by_name_.clear();
  by_ifindex_.clear();
  by_name_.reserve(links.size());
  by_ifindex_.reserve(links.size());
  // The first of equal names or ifindexes wins, as the scan did.
  for (size_t i = 0; i < links.size(); ++i) {
    by_name_.emplace(links[i].name, i);
    by_ifindex_.emplace(links[i].ifindex, i);
  }
  indexed_data_ = links.data();
  indexed_size_ = links.size();
}

const LinkInfo* KernelState::FindLink(const std::string& name) const {
  IndexLinks();
  auto found = by_name_.find(name);
  return found == by_name_.end() ? nullptr : &links[found->second];
}

const LinkInfo* KernelState::FindLink(int ifindex) const {
  if (ifindex == 0) return nullptr;
  IndexLinks();
  auto found = by_ifindex_.find(ifindex);
  return found == by_ifindex_.end() ? nullptr : &links[found->second];
}

Result<KernelState> ReadKernelState(Kernel& kernel, const KernelFeatures& features) {
  KernelState state;
  state.features = features;
  auto links = kernel.ListLinks();
  if (!links.ok()) return links.status();
  state.links = std::move(links).value();
  auto fdb = kernel.ListFdb();
  if (!fdb.ok()) return fdb.status();
  state.fdb = std::move(fdb).value();
  VF_RETURN_IF_ERROR(ReadAddressesAndFlood(kernel, &state));
  if (features.bridge_vlan_filtering) {
    auto vlans = kernel.ListPortVlans();
    if (!vlans.ok()) return vlans.status();
    state.port_vlans = std::move(vlans).value();
  }
  return state;
}

Result<std::vector<LinkInfo>> Kernel::ListLinksNamed(const std::vector<std::string>& names) {
  auto all = ListLinks();
  if (!all.ok()) return all.status();
  const std::set<std::string> wanted(names.begin(), names.end());
  std::erase_if(*all, [&](const LinkInfo& link) { return !wanted.count(link.name); });
  return all;
}

Result<std::vector<FdbEntry>> Kernel::ListBridgeFdb(int bridge_ifindex) {
  auto all = ListFdb();
  if (!all.ok()) return all.status();
  std::erase_if(*all,
                [&](const FdbEntry& entry) { return entry.bridge_ifindex != bridge_ifindex; });
  return all;
}

Result<KernelState> ReadKernelState(Kernel& kernel, const KernelFeatures& features,
                                    const topology::Topology& desired,
                                    const std::set<std::string>& only,
                                    const std::set<std::string>& also) {
  KernelState state;
  state.features = features;
  std::vector<const topology::NetworkConfig*> bridged;  // kernel networks of `only`
  bool vlans = false;
  bool overlay = false;
  std::set<std::string> names = also;
  for (const topology::NetworkConfig& network : desired.networks) {
    if (!only.count(network.name)) continue;
    for (const topology::PortConfig& port : network.ports) {
      if (port.kind == topology::PortKind::kVhostUser) continue;  // no link
      names.insert(port.name);
      if (port.kind == topology::PortKind::kVeth) names.insert(port.peer);
    }
    if (network.datapath != topology::Datapath::kKernel) continue;
    bridged.push_back(&network);
    names.insert(network.bridge);
    vlans = vlans || network.vlan.filtering;
    overlay = overlay || network.overlay.has_value();
  }
  // An overlay's plan looks at more of the host (the underlay, other
  // networks' VTEPs): it reads every link.
  auto links = overlay
                   ? kernel.ListLinks()
                   : kernel.ListLinksNamed(std::vector<std::string>(names.begin(), names.end()));
  if (!links.ok()) return links.status();
  state.links = std::move(links).value();
  if (bridged.empty()) return state;  // a switch's ports read their links alone
  for (const topology::NetworkConfig* network : bridged) {
    const LinkInfo* bridge = state.FindLink(network->bridge);
    if (bridge == nullptr || bridge->kind != "bridge") continue;  // made by the plan: no FDB yet
    auto fdb = kernel.ListBridgeFdb(bridge->ifindex);
    if (!fdb.ok()) return fdb.status();
    state.fdb.insert(state.fdb.end(), fdb->begin(), fdb->end());
  }
  VF_RETURN_IF_ERROR(ReadAddressesAndFlood(kernel, &state));
  if (features.bridge_vlan_filtering && vlans) {
    auto port_vlans = kernel.ListPortVlans();
    if (!port_vlans.ok()) return port_vlans.status();
    state.port_vlans = std::move(port_vlans).value();
  }
  return state;
}

}  // namespace vfabric::netd
