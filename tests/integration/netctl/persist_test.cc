// `netctl apply` keeps what it applies in netd's configuration files, and
// `netctl network delete` removes it (issue 18, item 4): both survive a netd
// restart, and an apply that cannot be saved changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;
using testing::Link;
using testing::LinkExists;

class PersistTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    networks_ = dir_.Join("networks");
    ASSERT_TRUE(std::filesystem::create_directory(networks_));
  }

  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }

  // The network as `network list --json` shows it; null when it is not
  // listed (a failure unless `absent` is expected).
  json Listed(const std::string& name, bool absent = false) {
    CommandResult list = Netctl({"--json", "network", "list"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    const json networks = json::parse(list.out, nullptr, false);
    if (networks.is_object() && networks.contains("networks"))
      for (const json& network : networks["networks"])
        if (network["name"] == name) return network;
    if (!absent) ADD_FAILURE() << "no network " << name << " in: " << list.out;
    return nullptr;
  }

  std::string networks_;
};

TEST_F(PersistTest, AppliedNetworksSurviveARestartAndDeletedOnesStayGone) {
  testing::WriteFile(networks_ + "/a.json",
                     R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"}]}]})");
  Start(networks_);
  const std::string request = dir_.Join("extra.json");
  testing::WriteFile(request, R"({"networks": [{"name": "extra", "ports": [{"name": "x-t0"}]}]})");
  CommandResult apply = Netctl({"--json", "apply", request});
  ASSERT_EQ(apply.exit_code, 0) << apply.err << Log();
  const std::string saved = networks_ + "/extra.json";
  EXPECT_EQ(json::parse(apply.out)["saved"], json({{"extra", saved}}));
  ASSERT_TRUE(std::filesystem::exists(saved));
  EXPECT_FALSE(std::filesystem::exists(saved + ".new"));
  EXPECT_EQ(json::parse(testing::ReadFile(saved))["networks"][0]["name"], "extra");
  json extra = Listed("extra");
  EXPECT_EQ(extra["source"], saved) << extra.dump();
  EXPECT_EQ(extra["applied"], true);
  EXPECT_EQ(extra["saved"], true);
  EXPECT_EQ(Listed("a")["source"], networks_ + "/a.json");
  EXPECT_EQ(Listed("a")["applied"], false);
  CommandResult table = Netctl({"network", "list"});
  EXPECT_THAT(table.out, HasSubstr("SOURCE"));
  EXPECT_THAT(table.out, HasSubstr("applied: " + saved));

  // A network a --config file defines is changed in that file.
  const std::string more = dir_.Join("a-more.json");
  testing::WriteFile(more, R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"},
      {"name": "a-t1"}]}]})");
  ASSERT_EQ(Netctl({"apply", more}).exit_code, 0) << Log();
  EXPECT_EQ(json::parse(testing::ReadFile(networks_ + "/a.json"))["networks"][0]["ports"].size(),
            2u);
  EXPECT_FALSE(std::filesystem::exists(networks_ + "/a-more.json"));

  // A restart (and a reload) reads back what was applied: nothing to redo.
  ASSERT_EQ(Stop(), 0) << Log();
  Start(networks_);
  EXPECT_THAT(Log(), HasSubstr(": 0 operations"));
  EXPECT_EQ(Link("x-t0")["master"], "vfb-extra");
  EXPECT_EQ(Link("a-t1")["master"], "vfb-a");
  extra = Listed("extra");
  EXPECT_EQ(extra["source"], saved) << extra.dump();
  EXPECT_EQ(extra["applied"], false);
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(testing::WaitFor([&] { return Log().find("reloaded") != std::string::npos; }, 10000));
  EXPECT_EQ(Link("a-t1")["master"], "vfb-a");

  // Deleted: off the host and out of its file, and it stays gone.
  CommandResult deleted = Netctl({"network", "delete", "extra"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err << Log();
  EXPECT_THAT(deleted.out, HasSubstr("deleted network extra (removed " + saved + ")"));
  EXPECT_FALSE(LinkExists("vfb-extra"));
  EXPECT_FALSE(LinkExists("x-t0"));
  EXPECT_FALSE(std::filesystem::exists(saved));
  CommandResult as_json = Netctl({"--json", "network", "delete", "a"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  const json result = json::parse(as_json.out);
  EXPECT_EQ(result["network"], "a");
  EXPECT_EQ(result["source"], networks_ + "/a.json");
  EXPECT_EQ(result["file_removed"], true);
  EXPECT_GE(result["changed"].get<int>(), 1);
  ASSERT_EQ(Stop(), 0) << Log();
  Start(networks_);
  EXPECT_EQ(Listed("extra", true), json(nullptr));
  EXPECT_EQ(Listed("a", true), json(nullptr));
  EXPECT_FALSE(LinkExists("vfb-extra"));
  EXPECT_FALSE(LinkExists("vfb-a"));

  CommandResult missing = Netctl({"network", "delete", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no network named \"nope\""));
  EXPECT_EQ(Stop(), 0) << Log();
}

// A deleted network's run-time static FDB entries go with it: a new network
// of the same name starts without them (they were kept in
// RUN_DIR/kernel-fdb and came back, on a port of the new network that
// happened to share the name).
TEST_F(PersistTest, ADeletedNetworksRunTimeFdbEntriesGoWithIt) {
  const std::string file = networks_ + "/k.json";
  const std::string topology =
      R"({"networks": [{"name": "k", "ports": [{"name": "k-v0", "kind": "veth",
          "peer": "k-p0"}]}]})";
  testing::WriteFile(file, topology);
  Start(networks_);
  CommandResult added = Netctl({"fdb", "add", "k", "02:00:00:00:00:5a", "k-v0"});
  ASSERT_EQ(added.exit_code, 0) << added.err << Log();
  const std::string kept = run_dir() + "/kernel-fdb/k.fdb.json";
  ASSERT_TRUE(std::filesystem::exists(kept));
  CommandResult deleted = Netctl({"network", "delete", "k"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err << Log();
  EXPECT_FALSE(std::filesystem::exists(kept)) << "the deleted network's entries stay on disk";
  // The same network again, applied: no static entry of the old one.
  const std::string again = dir_.Join("k-again.json");
  testing::WriteFile(again, topology);
  CommandResult applied = Netctl({"apply", again});
  ASSERT_EQ(applied.exit_code, 0) << applied.err << Log();
  CommandResult shown = Netctl({"fdb", "show", "k", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, ::testing::Not(HasSubstr("02:00:00:00:00:5a")));
  EXPECT_THAT(testing::Cmd({"bridge", "fdb", "show", "dev", "k-v0"}).out,
              ::testing::Not(HasSubstr("02:00:00:00:00:5a")));
  // And not after a restart either.
  ASSERT_EQ(Stop(), 0) << Log();
  Start(networks_);
  EXPECT_THAT(Netctl({"fdb", "show", "k", "--json"}).out,
              ::testing::Not(HasSubstr("02:00:00:00:00:5a")));
  EXPECT_EQ(Stop(), 0) << Log();
}

// A tiny tmpfs over the configuration directory, in the test's own mount
// namespace (the fixture's), unmounted at the end.
class ScopedTmpfs {
 public:
  ScopedTmpfs(const std::string& path, const std::string& options) : path_(path) {
    ok_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~ScopedTmpfs() {
    if (ok_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string path_;
  bool ok_ = false;
};

// A configuration directory that is full, or a file in it that was edited
// into something that is not a topology: the apply is refused before the
// host is touched, naming the file, and nothing on disk changes.
TEST_F(PersistTest, AnApplyThatCannotBeSavedChangesNothing) {
  ScopedTmpfs tmpfs(networks_, "size=16k,mode=0755");
  ASSERT_TRUE(tmpfs.ok()) << std::strerror(errno);
  testing::WriteFile(networks_ + "/a.json",
                     R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"}]}]})");
  Start(networks_);
  {
    std::ofstream fill(networks_ + "/.fill");
    const std::string block(4096, 'x');
    while (fill.write(block.data(), block.size())) {
    }
  }
  const std::string request = dir_.Join("extra.json");
  testing::WriteFile(request, R"({"networks": [{"name": "extra", "ports": [{"name": "x-t0"}]}]})");
  CommandResult full = Netctl({"apply", request});
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_THAT(full.err, HasSubstr(networks_ + "/extra.json"));
  EXPECT_THAT(full.err, HasSubstr("No space left on device"));
  EXPECT_THAT(full.err, HasSubstr("nothing was applied"));
  EXPECT_FALSE(LinkExists("vfb-extra"));
  EXPECT_EQ(Listed("extra", true), json(nullptr));
  EXPECT_FALSE(std::filesystem::exists(networks_ + "/extra.json"));
  EXPECT_FALSE(std::filesystem::exists(networks_ + "/extra.json.new"));
  EXPECT_FALSE(std::filesystem::exists(networks_ + "/extra.json.new.tmp"));
  EXPECT_THAT(Log(), HasSubstr("apply refused: "));

  // Space again: the same apply is saved.
  std::filesystem::remove(networks_ + "/.fill");
  ASSERT_EQ(Netctl({"apply", request}).exit_code, 0) << Log();
  EXPECT_TRUE(std::filesystem::exists(networks_ + "/extra.json"));

  // a.json edited by hand into something that is not a topology (not yet
  // reloaded): an apply of "a" would have to rewrite it, and refuses.
  const std::string broken = "{\"networks\": [ oops\n";
  testing::WriteFile(networks_ + "/a.json", broken);
  const std::string more = dir_.Join("a-more.json");
  testing::WriteFile(more, R"({"networks": [{"name": "a", "ports": [{"name": "a-t0"},
      {"name": "a-t1"}]}]})");
  CommandResult refused = Netctl({"apply", more});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr(networks_ + "/a.json"));
  EXPECT_FALSE(LinkExists("a-t1"));
  EXPECT_EQ(testing::ReadFile(networks_ + "/a.json"), broken);
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
