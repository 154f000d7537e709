// The kernel transaction: runs kernel operations in order and, when one
// fails, the undo of every one already done, newest first (planner.h:
// ApplyPlan).
#include <string>
#include <vector>

#include "vfabric/netd/planner.h"

namespace vfabric::netd {

Status Execute(Kernel& kernel, const Operation& op) {
  switch (op.kind) {
    case Operation::Kind::kCreateBridge:
      return kernel.CreateBridge(op.object, op.bridge, op.alias);
    case Operation::Kind::kSetBridgeSettings:
      return kernel.SetBridgeSettings(op.object, op.bridge);
    case Operation::Kind::kCreateTap:
      return kernel.CreateTap(op.object, op.tap, op.alias);
    case Operation::Kind::kCreateVeth:
      return kernel.CreateVeth(op.object, op.peer, op.alias);
    case Operation::Kind::kMoveToNetns:
      return kernel.MoveToNetns(op.object, op.netns);
    case Operation::Kind::kDeleteLink:
      return kernel.DeleteLink(op.object);
    case Operation::Kind::kSetAlias:
      return kernel.SetAlias(op.object, op.alias);
    case Operation::Kind::kSetMaster:
      return kernel.SetMaster(op.object, op.master);
    case Operation::Kind::kSetBridgePortSettings:
      return kernel.SetBridgePortSettings(op.object, op.bridge_port);
    case Operation::Kind::kSetLinkUp:
      return kernel.SetLinkUp(op.object, op.up);
    case Operation::Kind::kAddStaticFdb:
      return kernel.AddStaticFdb(op.object, op.mac, op.vlan);
    case Operation::Kind::kDeleteStaticFdb:
      return kernel.DeleteStaticFdb(op.object, op.mac, op.vlan);
    case Operation::Kind::kAddPortVlan:
      return kernel.AddPortVlan(op.object, op.vlan, op.pvid, op.untagged);
    case Operation::Kind::kDeletePortVlan:
      return kernel.DeletePortVlan(op.object, op.vlan);
    case Operation::Kind::kSetLinkMac:
      return kernel.SetLinkMac(op.object, op.mac);
    case Operation::Kind::kSetMtu:
      return kernel.SetMtu(op.object, op.mtu);
    case Operation::Kind::kAddAddress:
      return kernel.AddAddress(op.object, op.address);
    case Operation::Kind::kDeleteAddress:
      return kernel.DeleteAddress(op.object, op.address);
    case Operation::Kind::kCreateVxlan:
      return kernel.CreateVxlan(op.object, op.vxlan, op.alias);
    case Operation::Kind::kAddVxlanFlood:
      return kernel.AddVxlanFlood(op.object, op.address);
    case Operation::Kind::kDeleteVxlanFlood:
      return kernel.DeleteVxlanFlood(op.object, op.address);
  }
  return Status::Error("unknown operation");
}

Status ApplyPlan(Kernel& kernel, const std::vector<Operation>& plan, std::vector<Operation>* done) {
  size_t applied = 0;
  for (; applied < plan.size(); ++applied) {
    Status status = Execute(kernel, plan[applied]);
    if (status.ok()) continue;
    // Put back what was done, newest first; keep going past undo failures so
    // as much as possible is restored, and say which ones failed.
    int undone = 0;
    std::string undo_errors;
    for (size_t i = applied; i-- > 0;) {
      for (const Operation& undo : plan[i].undo) {
        Status undo_status = Execute(kernel, undo);
        if (undo_status.ok()) continue;
        undo_errors += "; undo \"" + undo.Describe() + "\" failed: " + undo_status.message();
      }
      ++undone;
    }
    // The kernel's message names the call ("move v0-p to netns ns1: open
    // ...: No such file or directory"); where that name is how the operation
    // begins, say it once.
    const std::string described = plan[applied].Describe();
    std::string reason = status.message();
    if (const size_t colon = reason.find(": ");
        colon != std::string::npos && described.compare(0, colon, reason, 0, colon) == 0 &&
        (described.size() == colon || described[colon] == ' '))
      reason.erase(0, colon + 2);
    std::string message = described + ": " + reason + " (undid " + std::to_string(undone) +
                          " operation" + (undone == 1 ? "" : "s") +
                          (undo_errors.empty() ? ")" : ")" + undo_errors);
    if (done) done->clear();
    return Status::Error(message, status.error_number());
  }
  if (done) *done = plan;
  return Status::Ok();
}

}  // namespace vfabric::netd
