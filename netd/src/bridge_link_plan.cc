#include "bridge_link_plan.h"

#include <algorithm>

namespace vfabric::netd {
namespace {

Operation LinkOp(Operation::Kind kind, const std::string& network, const std::string& object) {
  Operation op;
  op.kind = kind;
  op.network = network;
  op.object = object;
  return op;
}

}  // namespace

void PlanBridgeLink(const topology::NetworkConfig& network, const LinkInfo* bridge,
                    const KernelState& actual, std::vector<Operation>* setup,
                    std::vector<Operation>* removals) {
  if (network.datapath != topology::Datapath::kKernel) return;
  const std::string& name = network.bridge;
  if (network.mac && (bridge == nullptr || bridge->mac != *network.mac)) {
    Operation op = LinkOp(Operation::Kind::kSetLinkMac, network.name, name);
    op.mac = *network.mac;
    if (bridge != nullptr) {  // a new bridge is undone by its deletion
      Operation undo = op;
      undo.mac = bridge->mac;
      op.undo.push_back(undo);
    }
    setup->push_back(op);
  }
  if (network.mtu && (bridge == nullptr || bridge->mtu != *network.mtu)) {
    Operation op = LinkOp(Operation::Kind::kSetMtu, network.name, name);
    op.mtu = *network.mtu;
    if (bridge != nullptr) {
      Operation undo = op;
      undo.mtu = bridge->mtu;
      op.undo.push_back(undo);
    }
    setup->push_back(op);
  }
  if (!network.addresses) return;
  std::vector<IpPrefix> have;
  if (bridge != nullptr)
    for (const AddressEntry& entry : actual.addresses)
      if (entry.ifindex == bridge->ifindex) have.push_back(entry.prefix);
  for (const IpPrefix& want : *network.addresses) {
    if (std::find(have.begin(), have.end(), want) != have.end()) continue;
    Operation op = LinkOp(Operation::Kind::kAddAddress, network.name, name);
    op.address = want;
    Operation undo = op;
    undo.kind = Operation::Kind::kDeleteAddress;
    op.undo.push_back(undo);
    setup->push_back(op);
  }
  for (const IpPrefix& extra : have) {
    if (extra.IsIpv6LinkLocal()) continue;
    if (std::find(network.addresses->begin(), network.addresses->end(), extra) !=
        network.addresses->end())
      continue;
    Operation op = LinkOp(Operation::Kind::kDeleteAddress, network.name, name);
    op.address = extra;
    Operation undo = op;
    undo.kind = Operation::Kind::kAddAddress;
    op.undo.push_back(undo);
    removals->push_back(op);
  }
}

}  // namespace vfabric::netd
