#include "vfabric/netd/create_journal.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fake_kernel.h"
#include "vfabric/netd/planner.h"

namespace vfabric::netd {
namespace {

using ::testing::ElementsAre;
using testing::FakeKernel;
using ::testing::HasSubstr;
using topology::NetworkConfig;
using topology::PortConfig;
using topology::PortKind;

class CreateJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vfabric-journal-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/run/creating.json";  // run/ made on first use
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  bool JournalExists() const { return ::access(path_.c_str(), F_OK) == 0; }
  std::string ReadJournal() const {
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_, path_;
};

TEST_F(CreateJournalTest, TheIntentIsOnDiskWhileTheCreationRuns) {
  FakeKernel kernel;
  CreateJournal journal(path_);
  JournaledKernel journaled(kernel, journal);
  std::vector<std::string> seen;
  kernel.fail = [&](const std::string& call) {
    seen.push_back(call + ": " + ReadJournal());
    return Status::Ok();
  };
  ASSERT_TRUE(journaled.CreateBridge("vfb-lab", BridgeSettings{}, "vfabric:lab").ok());
  ASSERT_TRUE(journaled.CreateVeth("up0", "up0-p", "vfabric:lab").ok());
  ASSERT_TRUE(journaled.CreateTap("vm1-eth0", TapSettings{}, "vfabric:lab").ok());
  EXPECT_THAT(
      seen,
      ElementsAre(
          "CreateBridge vfb-lab: "
          R"({"creating":[{"alias":"vfabric:lab","kind":"bridge","name":"vfb-lab"}],"version":1})"
          "\n",
          "CreateVeth up0: "
          R"({"creating":[{"alias":"vfabric:lab","kind":"veth","name":"up0","peer":"up0-p"}],"version":1})"
          "\n",
          // A tap marks itself before it can outlive netd: no journal.
          "CreateTap vm1-eth0: "));
  EXPECT_FALSE(JournalExists()) << "nothing in flight, no file";
}

TEST_F(CreateJournalTest, NoIntentOnDiskNoCreation) {
  FakeKernel kernel;
  FileCalls calls;
  calls.open = [](const char*, int, mode_t) {
    errno = ENOSPC;
    return -1;
  };
  CreateJournal journal(path_, calls);
  JournaledKernel journaled(kernel, journal);
  Status status = journaled.CreateBridge("vfb-lab", BridgeSettings{}, "vfabric:lab");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error_number(), ENOSPC);
  EXPECT_EQ(status.message(),
            "create bridge vfb-lab: not started, its intent could not be recorded: journal " +
                path_ + ": open " + path_ + ".tmp: No space left on device");
  EXPECT_TRUE(kernel.calls.empty());
  // The probe goes ahead: netd must start on a full run directory.
  EXPECT_TRUE(journaled.ProbeFeatures().ok());
}

TEST_F(CreateJournalTest, ProbeNames) {
  EXPECT_TRUE(IsProbeLinkName("vfprobe-1a2b"));
  EXPECT_TRUE(IsProbeLinkName("vfprobe-1a2bp"));
  EXPECT_FALSE(IsProbeLinkName("vfprobe-1A2B"));
  EXPECT_FALSE(IsProbeLinkName("vfprobe-1a2"));
  EXPECT_FALSE(IsProbeLinkName("vfprobe-1a2bq"));
  EXPECT_FALSE(IsProbeLinkName("xvfprobe-1a2b"));
}

// What a netd killed between creating links and marking them left behind
// is adopted (or, for the feature probe, deleted); nothing else is touched.
TEST_F(CreateJournalTest, RecoveryAdoptsWhatWasBeingMadeAndNothingElse) {
  {
    CreateJournal dead(path_);
    ASSERT_TRUE(dead.Begin({"bridge", "vfb-lab", "", "vfabric:lab"}).ok());
    ASSERT_TRUE(dead.Begin({"veth", "up0", "up0-p", "vfabric:lab"}).ok());
    ASSERT_TRUE(dead.Begin({"bridge", "vfb-x", "", "vfabric:x"}).ok());
    ASSERT_TRUE(dead.Begin({"probe", "", "", ""}).ok());
  }
  FakeKernel kernel;
  ASSERT_TRUE(kernel.CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel.CreateVeth("up0", "up0-p", "").ok());
  kernel.AddForeignLink("vfb-x", "dummy");  // not what was being made
  ASSERT_TRUE(kernel.CreateBridge("vfprobe-00ff", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel.CreateVeth("vfprobe-12ab", "vfprobe-12abp", "").ok());
  ASSERT_TRUE(kernel.CreateBridge("vfprobe-beef", BridgeSettings{}, "someone's").ok());
  kernel.AddForeignLink("vfprobe-cafe", "dummy");
  kernel.AddForeignLink("foreign0", "");
  kernel.calls.clear();

  CreateJournal journal(path_);
  auto done = RecoverCreations(kernel, journal);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_THAT(*done, ElementsAre("adopted bridge vfb-lab (its creation was interrupted)",
                                 "adopted veth up0 (its creation was interrupted)",
                                 "adopted veth up0-p (its creation was interrupted)",
                                 "deleted bridge vfprobe-00ff (left by an interrupted feature "
                                 "probe)",
                                 "deleted veth vfprobe-12ab (left by an interrupted feature "
                                 "probe)"));
  EXPECT_THAT(kernel.calls, ElementsAre("SetAlias vfb-lab", "SetAlias up0", "SetAlias up0-p",
                                        "DeleteLink vfprobe-00ff", "DeleteLink vfprobe-12ab"));
  EXPECT_EQ(kernel.Find("vfb-lab")->alias, "vfabric:lab");
  EXPECT_EQ(kernel.Find("up0-p")->alias, "vfabric:lab");
  EXPECT_EQ(kernel.Find("vfb-x")->alias, "");
  EXPECT_NE(kernel.Find("vfprobe-beef"), nullptr);
  EXPECT_NE(kernel.Find("vfprobe-cafe"), nullptr);
  EXPECT_EQ(kernel.Find("vfprobe-12abp"), nullptr);
  EXPECT_FALSE(JournalExists());

  // Without a journal nothing is looked at, probe-like names included.
  ASSERT_TRUE(kernel.CreateBridge("vfprobe-0001", BridgeSettings{}, "").ok());
  kernel.calls.clear();
  done = RecoverCreations(kernel, journal);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->empty());
  EXPECT_TRUE(kernel.calls.empty());
}

// A vxlan device (an overlay's, overlay_plan.h) is marked in a second step
// like a bridge: journaled, and adopted after a crash in between; one that
// is not a vxlan device is not the one being made.
TEST_F(CreateJournalTest, AVxlanDeviceIsJournaledAndAdopted) {
  {
    FakeKernel kernel;
    CreateJournal journal(path_);
    JournaledKernel journaled(kernel, journal);
    std::string seen;
    kernel.fail = [&](const std::string& call) {
      seen = call + ": " + ReadJournal();
      return Status::Ok();
    };
    VxlanSettings settings;
    settings.vni = 100;
    ASSERT_TRUE(journaled.CreateVxlan("vfx-100", settings, "vfabric:ov").ok());
    EXPECT_EQ(seen,
              "CreateVxlan vfx-100: "
              R"({"creating":[{"alias":"vfabric:ov","kind":"vxlan","name":"vfx-100"}],"version":1})"
              "\n");
    EXPECT_FALSE(JournalExists());
  }
  {
    CreateJournal dead(path_);
    ASSERT_TRUE(dead.Begin({"vxlan", "vfx-100", "", "vfabric:ov"}).ok());
    ASSERT_TRUE(dead.Begin({"vxlan", "vfx-200", "", "vfabric:other"}).ok());
  }
  FakeKernel kernel;
  ASSERT_TRUE(kernel.CreateVxlan("vfx-100", VxlanSettings{}, "").ok());
  kernel.AddForeignLink("vfx-200", "bridge");
  CreateJournal journal(path_);
  auto done = RecoverCreations(kernel, journal);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_THAT(*done, ElementsAre("adopted vxlan vfx-100 (its creation was interrupted)"));
  EXPECT_EQ(kernel.Find("vfx-100")->alias, "vfabric:ov");
  EXPECT_EQ(kernel.Find("vfx-200")->alias, "");
}

TEST_F(CreateJournalTest, AJournalThatIsNotOneIsReportedAndKept) {
  std::filesystem::create_directories(dir_ + "/run");
  std::ofstream(path_) << "{\"version\": 7}\n";
  FakeKernel kernel;
  CreateJournal journal(path_);
  auto done = RecoverCreations(kernel, journal);
  ASSERT_FALSE(done.ok());
  EXPECT_THAT(done.status().message(), HasSubstr(path_ + ": not a version 1 journal"));
  EXPECT_TRUE(JournalExists());
}

// Found by state_file_fuzzer: json::value("version", 0) throws on a version
// that is not a number (null, a string), which stopped netd at every start.
TEST_F(CreateJournalTest, AVersionOfAnotherTypeIsNotAJournalAndNeverThrows) {
  std::filesystem::create_directories(dir_ + "/run");
  for (const char* text :
       {R"({"version": null, "creating": []})", R"({"version": "1", "creating": []})",
        R"({"version": [1], "creating": []})", R"({"version": 1.5, "creating": []})"}) {
    std::ofstream(path_) << text << "\n";
    CreateJournal journal(path_);
    auto intents = journal.Read();
    ASSERT_FALSE(intents.ok()) << text;
    EXPECT_THAT(intents.status().message(), HasSubstr(path_ + ": not a version 1 journal")) << text;
  }
}

// A kernel whose bridge and veth creations take the steps the real one
// takes (create, then mark each end), and that "dies" after `budget`
// mutating calls: every call after that fails, undo included, so the state
// stays as the crash left it.
class DyingKernel : public FakeKernel {
 public:
  explicit DyingKernel(int budget) : budget_(budget) {
    fail = [this](const std::string&) {
      if (dead_ || budget_-- <= 0) {
        dead_ = true;
        return Status::Error("killed", EINTR);
      }
      return Status::Ok();
    };
  }
  bool dead() const { return dead_; }

  Status CreateBridge(const std::string& name, const BridgeSettings& settings,
                      const std::string& alias) override {
    VF_RETURN_IF_ERROR(FakeKernel::CreateBridge(name, settings, ""));
    return SetAlias(name, alias);
  }
  Status CreateVeth(const std::string& name, const std::string& peer,
                    const std::string& alias) override {
    VF_RETURN_IF_ERROR(FakeKernel::CreateVeth(name, peer, ""));
    VF_RETURN_IF_ERROR(SetAlias(name, alias));
    return SetAlias(peer, alias);
  }

 private:
  int budget_;
  bool dead_ = false;
};

NetworkConfig Lab() {
  NetworkConfig network;
  network.name = "lab";
  network.bridge = "vfb-lab";
  network.stp.enabled = true;
  network.fdb.ageing_time = 120;
  PortConfig uplink;
  uplink.name = "up0";
  uplink.kind = PortKind::kVeth;
  uplink.peer = "up0-p";
  network.ports.push_back(uplink);
  PortConfig moved = uplink;  // its peer lives in another namespace
  moved.name = "up1";
  moved.peer = "up1-p";
  moved.peer_netns = "host1";
  network.ports.push_back(moved);
  for (const char* name : {"vm1-eth0", "vm2-eth0"}) {
    PortConfig tap;
    tap.name = name;
    tap.kind = PortKind::kTap;
    network.ports.push_back(tap);
  }
  return network;
}

// netd killed at every step of a first apply, then restarted: it always
// converges to the same host, and the foreign link stays as it was.
TEST_F(CreateJournalTest, AKillAtAnyStepConverges) {
  topology::Topology desired;
  desired.networks = {Lab()};
  int steps = 0;
  for (int budget = 0;; ++budget) {
    SCOPED_TRACE("killed after " + std::to_string(budget) + " kernel calls");
    DyingKernel kernel(budget);
    kernel.AddForeignLink("foreign0", "dummy");
    {
      auto state = ReadKernelState(kernel, kernel.features);
      ASSERT_TRUE(state.ok());
      auto plan = Plan(desired, *state);
      ASSERT_TRUE(plan.ok());
      // The dead process's journal is as the kill left it: its later
      // writes would fail, so the last End did not happen.
      FileCalls dead_calls;
      dead_calls.open = [&kernel](const char* path, int flags, mode_t mode) {
        if (kernel.dead()) {
          errno = EIO;
          return -1;
        }
        return ::open(path, flags, mode);
      };
      dead_calls.unlink = [&kernel](const char* path) {
        if (kernel.dead()) {
          errno = EIO;
          return -1;
        }
        return ::unlink(path);
      };
      CreateJournal dying(path_, dead_calls);
      JournaledKernel dying_kernel(kernel, dying);
      Status applied = ApplyPlan(dying_kernel, *plan);
      if (applied.ok() && !kernel.dead()) {
        steps = budget;
        break;  // the whole apply fits: every step has been a kill point
      }
    }
    kernel.fail = nullptr;  // the next netd's kernel calls work
    kernel.calls.clear();
    CreateJournal journal(path_);
    auto recovered = RecoverCreations(kernel, journal);
    ASSERT_TRUE(recovered.ok()) << recovered.status().message();
    JournaledKernel journaled(kernel, journal);
    auto state = ReadKernelState(journaled, kernel.features);
    ASSERT_TRUE(state.ok());
    auto plan = Plan(desired, *state);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    ASSERT_TRUE(ApplyPlan(journaled, *plan).ok());
    state = ReadKernelState(journaled, kernel.features);
    auto again = Plan(desired, *state);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->empty()) << again->front().Describe();
    for (const char* name : {"vfb-lab", "up0", "up0-p", "up1", "vm1-eth0", "vm2-eth0"})
      EXPECT_EQ(kernel.Find(name)->alias, "vfabric:lab") << name;
    EXPECT_EQ(kernel.Find("up1-p"), nullptr) << "moved to its namespace";
    EXPECT_EQ(kernel.Find("foreign0")->alias, "");
    EXPECT_EQ(kernel.links.size(), 8u) << "lo, foreign0 and the six of lab, nothing twice";
    EXPECT_FALSE(JournalExists());
  }
  EXPECT_GE(steps, 10) << "the apply should have taken a dozen steps";
}

}  // namespace
}  // namespace vfabric::netd
