// The kernel transaction at scale against the running kernel (issue 21):
// ApplyPlan through the netlink backend's batches (many requests per
// sendmsg). A failure inside a batch is named by its operation, and every
// operation that ran -- also those after the failing one in its batch -- is
// undone. Each test runs in its own network namespace.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/netd/kernel.h"
#include "vfabric/netd/planner.h"
#include "vfabric/testing/support.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using vfabric::testing::Run;

std::unique_ptr<Kernel> MakeKernel() {
  auto kernel = NewNetlinkKernel();
  EXPECT_TRUE(kernel.ok()) << kernel.status().message();
  return kernel.ok() ? std::move(*kernel) : nullptr;
}

// Links of the namespace by name, as iproute2 shows them.
json IpLinks() {
  auto result = Run({"ip", "-d", "-j", "link", "show"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  json links = json::parse(result.out, nullptr, false);
  json by_name = json::object();
  if (links.is_array())
    for (const json& link : links) by_name[link["ifname"].get<std::string>()] = link;
  return by_name;
}

Operation Op(Operation::Kind kind, const std::string& object) {
  Operation op;
  op.kind = kind;
  op.network = "lab";
  op.object = object;
  return op;
}

// As the planner makes them: create the bridge, the taps, enslave each, up.
std::vector<Operation> TapsPlan(const std::string& bridge, int taps) {
  std::vector<Operation> plan;
  Operation create = Op(Operation::Kind::kCreateBridge, bridge);
  create.alias = "vfabric:lab";
  create.undo.push_back(Op(Operation::Kind::kDeleteLink, bridge));
  plan.push_back(create);
  for (int i = 0; i < taps; ++i) {
    const std::string name = "t" + std::to_string(i);
    Operation tap = Op(Operation::Kind::kCreateTap, name);
    tap.alias = "vfabric:lab";
    tap.undo.push_back(Op(Operation::Kind::kDeleteLink, name));
    plan.push_back(tap);
  }
  for (int i = 0; i < taps; ++i) {
    const std::string name = "t" + std::to_string(i);
    Operation enslave = Op(Operation::Kind::kSetMaster, name);
    enslave.master = bridge;
    Operation release = Op(Operation::Kind::kSetMaster, name);
    enslave.undo.push_back(release);
    plan.push_back(enslave);
    Operation up = Op(Operation::Kind::kSetLinkUp, name);
    up.up = true;
    Operation down = up;
    down.up = false;
    up.undo.push_back(down);
    plan.push_back(up);
  }
  Operation up = Op(Operation::Kind::kSetLinkUp, bridge);
  up.up = true;
  plan.push_back(up);
  return plan;
}

// 300 taps: more than one batch of requests; everything applied reads back.
TEST(BatchApply, ManyTapsApplyAndReadBack) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  const std::vector<Operation> plan = TapsPlan("vfb-lab", 300);
  std::vector<Operation> done;
  Status status = ApplyPlan(*kernel, plan, &done);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(done.size(), plan.size());
  auto links = kernel->ListLinks();
  ASSERT_TRUE(links.ok()) << links.status().message();
  KernelState state;
  state.links = *links;
  const LinkInfo* bridge = state.FindLink("vfb-lab");
  ASSERT_NE(bridge, nullptr);
  EXPECT_EQ(bridge->alias, "vfabric:lab");
  json ip = IpLinks();
  for (int i = 0; i < 300; ++i) {
    const std::string name = "t" + std::to_string(i);
    const LinkInfo* tap = state.FindLink(name);
    ASSERT_NE(tap, nullptr) << name;
    EXPECT_EQ(tap->kind, "tun") << name;
    EXPECT_EQ(tap->alias, "vfabric:lab") << name;
    EXPECT_EQ(tap->master_ifindex, bridge->ifindex) << name;
    EXPECT_TRUE(tap->admin_up) << name;
    ASSERT_TRUE(tap->tap.has_value()) << name;
    EXPECT_TRUE(tap->tap->persistent) << name;
    EXPECT_EQ(ip[name]["master"], "vfb-lab") << name;
    EXPECT_EQ(ip[name]["ifalias"], "vfabric:lab") << name;
  }
}

// One operation in the middle of a batch fails (a link that is not there):
// the error names it and the kernel's reason, and every operation that ran
// is undone, also those after it in the same batch.
TEST(BatchApply, FailureInsideABatchNamesItsOperationAndUndoesAll) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  std::vector<Operation> plan = TapsPlan("vfb-lab", 40);
  // Between "attach t19" and "set t19 up" (mid-batch): a link never made.
  Operation missing = Op(Operation::Kind::kSetMaster, "nosuch0");
  missing.master = "vfb-lab";
  const size_t at = 1 + 40 + 2 * 19 + 1;
  ASSERT_EQ(plan[at - 1].object, "t19");
  plan.insert(plan.begin() + static_cast<long>(at), missing);
  std::vector<Operation> done = {missing};
  Status status = ApplyPlan(*kernel, plan, &done);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(status.error_number(), ENODEV) << status.message();
  // Everything before it (80 operations) and the rest of its batch (all 42
  // after it: 122 requests fit one batch) ran and was undone.
  EXPECT_EQ(status.message(),
            "attach nosuch0 to bridge vfb-lab: set master nosuch0 -> vfb-lab: No such device "
            "(undid 122 operations)");
  json ip = IpLinks();
  EXPECT_FALSE(ip.contains("vfb-lab")) << ip.dump();
  for (int i = 0; i < 40; ++i) EXPECT_FALSE(ip.contains("t" + std::to_string(i))) << i;
}

// A tap whose name is taken fails at its creation: the taps made before it
// in the same batch are undone (deleted), the link of that name is left.
TEST(BatchApply, TakenTapNameFailsThatTapAndUndoesTheOthers) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_EQ(
      vfabric::testing::Run({"ip", "link", "add", "t7", "type", "veth", "peer", "name", "t7-p"})
          .exit_code,
      0);
  Status status = ApplyPlan(*kernel, TapsPlan("vfb-lab", 20));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error_number(), EEXIST) << status.message();
  EXPECT_EQ(status.message(),
            "create tap t7 (vnet_hdr on, multi_queue off): File exists (undid 8 operations)");
  json ip = IpLinks();
  EXPECT_TRUE(ip.contains("t7"));
  EXPECT_EQ(ip["t7"]["linkinfo"]["info_kind"], "veth");
  EXPECT_FALSE(ip.contains("vfb-lab"));
  for (int i = 0; i < 20; ++i)
    if (i != 7) {
      EXPECT_FALSE(ip.contains("t" + std::to_string(i))) << i;
    }
}

// The case: a Linux bridge takes 1023 ports; the 1,024th enslave
// fails with EXFULL, named, and the whole apply is undone (no tap, no
// bridge left), and the caller goes on (netd must not exit after it).
TEST(BatchApply, BridgePortLimitFailsAtThe1024thPortAndUndoesEverything) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  Status status = ApplyPlan(*kernel, TapsPlan("vfb-big", 1030));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error_number(), EXFULL) << status.message();
  EXPECT_EQ(status.message().rfind("attach t1023 to bridge vfb-big: set master t1023 -> vfb-big: "
                                   "Exchange full",
                                   0),
            0u)
      << status.message();
  json ip = IpLinks();
  EXPECT_FALSE(ip.contains("vfb-big"));
  for (int i = 0; i < 1030; ++i) ASSERT_FALSE(ip.contains("t" + std::to_string(i))) << i;
  // The kernel is still usable afterwards.
  EXPECT_TRUE(ApplyPlan(*kernel, TapsPlan("vfb-lab", 3)).ok());
}

}  // namespace
}  // namespace vfabric::netd
