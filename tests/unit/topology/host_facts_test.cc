// Topology validation reaches the host's users and groups only through the
// HostFacts seam: with a fake, a name that exists only in the fake
// validates, and one the fake lacks (even "root", which every host has) is
// refused with a message naming it.

#include "vfabric/topology/host_facts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <string>

#include "vfabric/topology/topology.h"

namespace vfabric::topology {
namespace {

using ::testing::ElementsAre;

class FakeHostFacts final : public HostFacts {
 public:
  std::map<std::string, uint32_t> users, groups;
  int failure = 0;  // the lookup of a name in neither map fails with this
  mutable int lookups = 0;

  IdLookup UserId(const std::string& name) const override { return Find(users, name); }
  IdLookup GroupId(const std::string& name) const override { return Find(groups, name); }

 private:
  IdLookup Find(const std::map<std::string, uint32_t>& names, const std::string& name) const {
    ++lookups;
    auto it = names.find(name);
    if (it != names.end()) return {it->second, 0};
    return {std::nullopt, failure};
  }
};

std::string TapWith(const std::string& owner, const std::string& group) {
  return "{\"networks\": [{\"name\": \"n\", \"ports\": [\n"
         "{\"name\": \"t0\", \"owner\": \"" +
         owner + "\", \"group\": \"" + group + "\"}]}]}";
}

std::vector<std::string> Errors(const LoadResult& result) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : result.errors) lines.push_back(d.ToString());
  return lines;
}

TEST(TopologyHostFacts, ANameOnlyTheFakeKnowsValidates) {
  FakeHostFacts host;
  host.users["vfabric-fake-user"] = 4242;
  host.groups["vfabric-fake-group"] = 4343;
  LoadResult result =
      ParseTopology(TapWith("vfabric-fake-user", "vfabric-fake-group"), "t.json", host);
  ASSERT_THAT(Errors(result), ElementsAre());
  ASSERT_EQ(result.topology.networks.size(), 1u);
  EXPECT_EQ(result.topology.networks[0].ports[0].owner, 4242u);
  EXPECT_EQ(result.topology.networks[0].ports[0].group, 4343u);
  EXPECT_EQ(host.lookups, 2);
}

TEST(TopologyHostFacts, ANameTheFakeLacksIsRefusedByName) {
  FakeHostFacts host;  // no users, no groups: not even root
  EXPECT_THAT(Errors(ParseTopology(TapWith("root", "root"), "t.json", host)),
              ElementsAre("t.json:2:25: /networks/0/ports/0/owner: no user named \"root\" on "
                          "this host",
                          "t.json:2:42: /networks/0/ports/0/group: no group named \"root\" on "
                          "this host"));
}

TEST(TopologyHostFacts, AFailedLookupSaysSo) {
  FakeHostFacts host;
  host.failure = EIO;
  EXPECT_THAT(Errors(ParseTopologyFiles({{"t.json", TapWith("alice", "staff")}}, host)),
              ElementsAre("t.json:2:25: /networks/0/ports/0/owner: no user named \"alice\" on "
                          "this host (lookup failed: error " +
                              std::to_string(EIO) + ")",
                          "t.json:2:43: /networks/0/ports/0/group: no group named \"staff\" on "
                          "this host (lookup failed: error " +
                              std::to_string(EIO) + ")"));
}

// Numeric ids need no lookup at all.
TEST(TopologyHostFacts, NumericIdsAskNothing) {
  FakeHostFacts host;
  LoadResult result = ParseTopology(
      "{\"networks\": [{\"name\": \"n\", \"ports\": [{\"name\": \"t0\", \"owner\": 7, "
      "\"group\": 8}]}]}",
      "t.json", host);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.topology.networks[0].ports[0].owner, 7u);
  EXPECT_EQ(host.lookups, 0);
}

}  // namespace
}  // namespace vfabric::topology
