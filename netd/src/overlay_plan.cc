#include "overlay_plan.h"

#include <algorithm>

#include "planner_internal.h"

namespace vfabric::netd {

using namespace planner_internal;

namespace {

using topology::NetworkConfig;
using topology::OverlayControl;

VxlanSettings Wanted(const topology::OverlayConfig& overlay) {
  VxlanSettings settings;
  settings.vni = overlay.vni;
  settings.local = overlay.local;
  settings.port = overlay.port;
  settings.learning = false;  // nolearning: remote MACs come from the bridge (or FRR)
  return settings;
}

Operation FloodOp(bool add, const std::string& network, const std::string& device,
                  const IpPrefix& dst) {
  Operation op = Op(add ? Operation::Kind::kAddVxlanFlood : Operation::Kind::kDeleteVxlanFlood,
                    network, device);
  op.address = dst;
  Operation undo = op;
  undo.kind = add ? Operation::Kind::kDeleteVxlanFlood : Operation::Kind::kAddVxlanFlood;
  op.undo.push_back(undo);
  return op;
}

}  // namespace

Status OverlayPreflight(const NetworkConfig& network, const topology::Topology& desired,
                        const KernelState& actual) {
  if (!network.overlay || network.datapath != topology::Datapath::kKernel) return Status::Ok();
  const topology::OverlayConfig& overlay = *network.overlay;
  const std::string name = topology::OverlayDeviceName(overlay.vni);
  if (const LinkInfo* link = actual.FindLink(name);
      link != nullptr && NetworkFromAlias(link->alias).empty()) {
    return Status::Error("vxlan device " + name + " of network " + network.name +
                         ": a link named " + name + " exists and was not made by vfabric (kind " +
                         (link->kind.empty() ? "none" : link->kind) +
                         "); refusing to touch it: remove that link or choose another VNI");
  }
  const bool has =
      std::any_of(actual.addresses.begin(), actual.addresses.end(),
                  [&](const AddressEntry& a) { return a.prefix.SameAddress(overlay.local); });
  const bool will_have = std::any_of(
      desired.networks.begin(), desired.networks.end(), [&](const NetworkConfig& other) {
        return other.datapath == topology::Datapath::kKernel && other.addresses &&
               std::any_of(other.addresses->begin(), other.addresses->end(),
                           [&](const IpPrefix& p) { return p.SameAddress(overlay.local); });
      });
  if (!has && !will_have) {
    return Status::Error("network " + network.name + ": overlay local address " +
                         overlay.local.AddressText() +
                         " is not an address of this host (no link has it): add it to the "
                         "underlay link, or give this host's own address in \"local\"");
  }
  return Status::Ok();
}

bool ControlPlaneFdbEntry(const NetworkConfig& network, const FdbEntry& entry,
                          const LinkInfo& port) {
  if (entry.extern_learn) return true;
  return network.overlay && network.overlay->control == OverlayControl::kEvpn &&
         port.name == topology::OverlayDeviceName(network.overlay->vni);
}

void PlanOverlay(const NetworkConfig& network, const LinkInfo* bridge, const KernelState& actual,
                 const OverlayPhases& phases) {
  const topology::OverlayConfig& overlay = *network.overlay;
  const std::string name = topology::OverlayDeviceName(overlay.vni);
  const std::string alias = OwnerAlias(network.name);
  const VxlanSettings want = Wanted(overlay);
  const LinkInfo* link = actual.FindLink(name);
  bool created = false;
  if (link != nullptr && !(link->kind == "vxlan" && link->vxlan && *link->vxlan == want)) {
    Operation remove = DeleteOp(network.name, name);
    remove.undo = RecreateOps(*link, actual);
    phases.links->push_back(remove);
    link = nullptr;
  }
  if (link == nullptr) {
    Operation create = Op(Operation::Kind::kCreateVxlan, network.name, name);
    create.vxlan = want;
    create.alias = alias;
    create.undo.push_back(DeleteOp(network.name, name));
    phases.links->push_back(create);
    created = true;
  } else if (link->alias != alias) {
    // Netd's, but marked for another network (the overlay moved): re-mark.
    Operation op = Op(Operation::Kind::kSetAlias, network.name, name);
    op.alias = alias;
    Operation undo = op;
    undo.alias = link->alias;
    op.undo.push_back(undo);
    phases.config->push_back(op);
  }
  if (overlay.mtu && (created || link->mtu != *overlay.mtu)) {
    Operation op = Op(Operation::Kind::kSetMtu, network.name, name);
    op.mtu = *overlay.mtu;
    if (!created) {
      Operation undo = op;
      undo.mtu = link->mtu;
      op.undo.push_back(undo);
    }
    phases.config->push_back(op);
  }
  const bool enslaved = !created && bridge != nullptr && link->master_ifindex == bridge->ifindex;
  if (!enslaved) {
    std::string old_master;
    if (!created && link->master_ifindex != 0)
      if (const LinkInfo* master = actual.FindLink(link->master_ifindex)) old_master = master->name;
    phases.config->push_back(SetMasterOp(network.name, name, network.bridge, old_master));
  }
  // EVPN: zebra wants the bridge not to learn on the vxlan port (FRR's
  // setup: `learning off`); it installs remote MACs itself.
  if (overlay.control == OverlayControl::kEvpn &&
      (!enslaved || !link->brport || link->brport->settings.learning != false)) {
    Operation op = Op(Operation::Kind::kSetBridgePortSettings, network.name, name);
    op.bridge_port.learning = false;
    phases.config->push_back(op);  // undone by leaving the bridge (or the device's deletion)
  }
  if (created || !link->admin_up) phases.config->push_back(SetUpOp(network.name, name, true));

  if (overlay.control != OverlayControl::kStatic) return;
  std::vector<IpPrefix> have;
  if (!created) {
    for (const VxlanFloodEntry& entry : actual.vxlan_flood)
      if (entry.ifindex == link->ifindex) have.push_back(entry.dst);
  }
  const auto contains = [](const std::vector<IpPrefix>& list, const IpPrefix& address) {
    return std::any_of(list.begin(), list.end(),
                       [&](const IpPrefix& p) { return p.SameAddress(address); });
  };
  for (const IpPrefix& dst : overlay.flood)
    if (!contains(have, dst)) phases.fdb_adds->push_back(FloodOp(true, network.name, name, dst));
  for (const IpPrefix& dst : have)
    if (!contains(overlay.flood, dst))
      phases.fdb_removals->push_back(FloodOp(false, network.name, name, dst));
}

}  // namespace vfabric::netd
