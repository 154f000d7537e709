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

void Kernel::ApplyBatch(const Operation* ops, size_t count, std::vector<Status>* results) {
  results->clear();
  for (size_t i = 0; i < count; ++i) {
    results->push_back(Execute(*this, ops[i]));
    if (!results->back().ok()) return;
  }
}

namespace {

// Runs every operation of `ops` through the kernel's batches, going on past
// failures (an undo puts back as much as it can); returns one line per
// failure.
std::string RunAll(Kernel& kernel, const std::vector<Operation>& ops) {
  std::string errors;
  std::vector<Status> results;
  for (size_t next = 0; next < ops.size();) {
    kernel.ApplyBatch(ops.data() + next, ops.size() - next, &results);
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].ok()) continue;
      errors += "; undo \"" + ops[next + i].Describe() + "\" failed: " + results[i].message();
    }
    // A batch that ran nothing would loop forever: count the op as failed.
    if (results.empty()) {
      errors += "; undo \"" + ops[next].Describe() + "\" was not run";
      results.resize(1);
    }
    next += results.size();
  }
  return errors;
}

}  // namespace

Status ApplyPlan(Kernel& kernel, const std::vector<Operation>& plan, std::vector<Operation>* done) {
  std::vector<Status> results;
  kernel.ApplyBatch(plan.data(), plan.size(), &results);
  size_t failed = 0;
  while (failed < results.size() && results[failed].ok()) ++failed;
  if (failed == plan.size()) {
    if (done) *done = plan;
    return Status::Ok();
  }
  Status status = failed < results.size()
                      ? results[failed]
                      : Status::Error("not run: the kernel stopped before it", EINVAL);
  // Put back what was done, newest first (in a batch, operations after the
  // failed one may have run too: they are undone as well); keep going past
  // undo failures so as much as possible is restored, and say which ones
  // failed. The undos run in batches too: undoing N operations costs about
  // what doing them did.
  int undone = 0;
  std::vector<Operation> undo;
  for (size_t i = results.size(); i-- > 0;) {
    if (!results[i].ok()) continue;
    for (const Operation& op : plan[i].undo) undo.push_back(op);
    ++undone;
  }
  const std::string undo_errors = RunAll(kernel, undo);
  // The kernel's message names the call ("move v0-p to netns ns1: open
  // ...: No such file or directory"); where that name is how the operation
  // begins, say it once.
  const std::string described = plan[failed].Describe();
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

}  // namespace vfabric::netd
