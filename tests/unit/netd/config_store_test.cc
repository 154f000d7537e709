// config_store.h: how apply and network.delete edit configuration files.
#include "config_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "vfabric/testing/support.h"

namespace vfabric::netd {
namespace {

using nlohmann::ordered_json;

TEST(ConfigStoreTest, AnAppliedNetworkReplacesItsNamesakeAndKeepsTheRest) {
  const std::string file = R"({"$schema": "x", "networks": [
      {"name": "a", "ports": [{"name": "a0"}]}, {"name": "b", "stp": {"enabled": true}}],
      "vms": [{"name": "vm1"}]})";
  auto edited = WithNetwork(file, "f.json", ordered_json::parse(R"({"name": "a", "mtu": 1400})"));
  ASSERT_TRUE(edited.ok()) << edited.status().message();
  const ordered_json doc = ordered_json::parse(*edited);
  EXPECT_EQ(doc.begin().key(), "$schema");  // the operator's order is kept
  EXPECT_EQ(doc["networks"][0], ordered_json::parse(R"({"name": "a", "mtu": 1400})"));
  EXPECT_EQ(doc["networks"][1]["stp"]["enabled"], true);
  EXPECT_EQ(doc["vms"][0]["name"], "vm1");

  auto added = WithNetwork("", "new.json", ordered_json::parse(R"({"name": "c"})"));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(ordered_json::parse(*added), ordered_json::parse(R"({"networks": [{"name": "c"}]})"));

  auto broken = WithNetwork("{\"networks\": [", "/etc/vfabric/networks/x.json",
                            ordered_json::parse(R"({"name": "c"})"));
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message(),
            "/etc/vfabric/networks/x.json: not a topology document (a JSON object); not changed");
}

TEST(ConfigStoreTest, ADeletedNetworkLeavesItsFileEmptyOnlyWhenNothingElseIsThere) {
  bool empty = true;
  auto edited = WithoutNetwork(R"({"networks": [{"name": "a"}, {"name": "b"}]})", "f", "a", &empty);
  ASSERT_TRUE(edited.ok());
  EXPECT_FALSE(empty);
  EXPECT_EQ(ordered_json::parse(*edited)["networks"], ordered_json::parse(R"([{"name": "b"}])"));
  edited = WithoutNetwork(R"({"networks": [{"name": "a"}]})", "f", "a", &empty);
  ASSERT_TRUE(edited.ok());
  EXPECT_TRUE(empty);
  EXPECT_EQ(ordered_json::parse(*edited), ordered_json::parse(R"({"networks": []})"));
  edited =
      WithoutNetwork(R"({"networks": [{"name": "a"}], "vms": [{"name": "v"}]})", "f", "a", &empty);
  EXPECT_FALSE(empty);
}

TEST(ConfigStoreTest, StagedFilesArePutInPlaceOnlyAtCommit) {
  testing::TempDir dir;
  const std::string kept = dir.Join("kept.json"), gone = dir.Join("gone.json");
  testing::WriteFile(kept, "old\n");
  testing::WriteFile(gone, "x\n");
  {
    StagedFiles staged;
    ASSERT_TRUE(staged.Write(kept, "new\n").ok());
    staged.Remove(gone);
    EXPECT_EQ(testing::ReadFile(kept), "old\n");
  }  // not committed: nothing changed, nothing left aside
  EXPECT_EQ(testing::ReadFile(kept), "old\n");
  EXPECT_TRUE(std::filesystem::exists(gone));
  EXPECT_FALSE(std::filesystem::exists(kept + ".new"));

  StagedFiles staged;
  ASSERT_TRUE(staged.Write(kept, "new\n").ok());
  staged.Remove(gone);
  ASSERT_TRUE(staged.Commit().ok());
  EXPECT_EQ(testing::ReadFile(kept), "new\n");
  EXPECT_FALSE(std::filesystem::exists(gone));
  EXPECT_FALSE(std::filesystem::exists(kept + ".new"));

  StagedFiles nowhere;
  Status status = nowhere.Write(dir.Join("no/such/dir.json"), "x");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(dir.Join("no/such/dir.json.new.tmp")), std::string::npos)
      << status.message();
}

}  // namespace
}  // namespace vfabric::netd
