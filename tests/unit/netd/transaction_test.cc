// ApplyPlan over a kernel that batches (Kernel::ApplyBatch): operations a
// batch ran after the failing one are done, so they are undone too, newest
// first, and the undo itself goes on past its own failures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_kernel.h"
#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

using ::testing::ElementsAre;

// Runs operations in batches of `batch` as netlink does: every operation of
// a batch runs, whatever the ones before it did; the next batch is not sent
// once one of them failed.
class BatchingKernel : public testing::FakeKernel {
 public:
  explicit BatchingKernel(size_t batch) : batch_(batch) {}
  void ApplyBatch(const Operation* ops, size_t count, std::vector<Status>* results) override {
    results->clear();
    ++batches;
    for (size_t start = 0; start < count; start += batch_) {
      bool failed = false;
      for (size_t i = start; i < count && i < start + batch_; ++i) {
        results->push_back(Execute(*this, ops[i]));
        failed = failed || !results->back().ok();
      }
      if (failed) return;
    }
  }
  int batches = 0;

 private:
  size_t batch_;
};

Operation Up(const std::string& name) {
  Operation op;
  op.kind = Operation::Kind::kSetLinkUp;
  op.object = name;
  op.up = true;
  Operation undo = op;
  undo.up = false;
  op.undo.push_back(undo);
  return op;
}

TEST(TransactionTest, OperationsAfterTheFailureInItsBatchAreUndoneToo) {
  BatchingKernel kernel(4);
  std::vector<Operation> plan;
  for (int i = 0; i < 8; ++i) {
    kernel.AddForeignLink("l" + std::to_string(i), "tun");
    plan.push_back(Up("l" + std::to_string(i)));
  }
  kernel.fail = [](const std::string& call) {
    return call == "SetLinkUp l5" ? Status::Error("set link l5: Exchange full", EXFULL)
                                  : Status::Ok();
  };
  std::vector<Operation> done = plan;
  Status status = ApplyPlan(kernel, plan, &done);
  EXPECT_EQ(status.message(), "set l5 up: set link l5: Exchange full (undid 7 operations)");
  EXPECT_EQ(status.error_number(), EXFULL);
  EXPECT_TRUE(done.empty());
  // l6 and l7 ran in l5's batch (l5 failed, so it is not in `calls`); the
  // undo goes newest first.
  EXPECT_THAT(kernel.calls,
              ElementsAre("SetLinkUp l0", "SetLinkUp l1", "SetLinkUp l2", "SetLinkUp l3",
                          "SetLinkUp l4", "SetLinkUp l6", "SetLinkUp l7", "SetLinkDown l7",
                          "SetLinkDown l6", "SetLinkDown l4", "SetLinkDown l3", "SetLinkDown l2",
                          "SetLinkDown l1", "SetLinkDown l0"));
}

// An undo that fails is named, and the undo goes on in the next batch.
TEST(TransactionTest, UndoGoesOnPastItsOwnFailures) {
  BatchingKernel kernel(2);
  std::vector<Operation> plan;
  for (int i = 0; i < 5; ++i) {
    kernel.AddForeignLink("l" + std::to_string(i), "tun");
    plan.push_back(Up("l" + std::to_string(i)));
  }
  kernel.fail = [](const std::string& call) {
    if (call == "SetLinkUp l4") return Status::Error("set link l4: No buffer space", ENOBUFS);
    if (call == "SetLinkDown l2") return Status::Error("set link l2: Busy", EBUSY);
    return Status::Ok();
  };
  Status status = ApplyPlan(kernel, plan);
  EXPECT_EQ(status.message(),
            "set l4 up: set link l4: No buffer space (undid 4 operations); undo \"set l2 "
            "down\" failed: set link l2: Busy");
  EXPECT_THAT(kernel.calls,
              ElementsAre("SetLinkUp l0", "SetLinkUp l1", "SetLinkUp l2", "SetLinkUp l3",
                          "SetLinkDown l3", "SetLinkDown l1", "SetLinkDown l0"));
}

}  // namespace
}  // namespace vfabric::netd
