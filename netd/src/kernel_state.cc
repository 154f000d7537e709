// The kernel as read back (KernelState) and the mark that says which links
// netd owns (IFLA_IFALIAS "vfabric:<network>").
#include <algorithm>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

constexpr std::string_view kAliasPrefix = "vfabric:";

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
  auto addresses = kernel.ListAddresses();
  if (!addresses.ok()) return addresses.status();
  state.addresses = std::move(addresses).value();
  // The flood entries live in the devices' own FDBs: a dump of its own, made
  // only when there is a vxlan device to read.
  const bool any_vxlan = std::any_of(state.links.begin(), state.links.end(),
                                     [](const LinkInfo& link) { return link.kind == "vxlan"; });
  if (any_vxlan) {
    auto flood = kernel.ListVxlanFlood();
    if (!flood.ok()) return flood.status();
    state.vxlan_flood = std::move(flood).value();
  }
  if (features.bridge_vlan_filtering) {
    auto vlans = kernel.ListPortVlans();
    if (!vlans.ok()) return vlans.status();
    state.port_vlans = std::move(vlans).value();
  }
  return state;
}

}  // namespace vfabric::netd
