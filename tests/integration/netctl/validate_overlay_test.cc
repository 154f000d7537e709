// `netctl validate` of an overlay on a real host (a private namespace): the
// local address the host does not have is a warning on stderr, the check
// still succeeds (exit 0), --json carries it in "warnings"; once a link has
// the address, nothing is said. This is the real HostFacts (getifaddrs).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::CommandResult;

class ValidateOverlayTest : public testing::NetdFixture {
 protected:
  CommandResult Netctl(std::vector<std::string> args) {
    args.insert(args.begin(), testing::BinaryDir() + "/netctl/netctl");
    return testing::Cmd(args);
  }
};

TEST_F(ValidateOverlayTest, ALocalAddressTheHostLacksIsAWarningUntilALinkHasIt) {
  const std::string file = Configs() + "/overlay/host-b.json";
  CommandResult lacking = Netctl({"validate", file});
  EXPECT_EQ(lacking.exit_code, 0) << lacking.err;
  EXPECT_EQ(lacking.out, file + ": ok\n");
  EXPECT_EQ(lacking.err, file +
                             ":4:40: /networks/0/overlay/local: warning: this host has no address "
                             "192.0.2.2: netd refuses to apply this overlay here (fine if the "
                             "file is meant for the host that has it)\n");
  CommandResult as_json = Netctl({"--json", "validate", file});
  EXPECT_EQ(as_json.exit_code, 0);
  json answer = json::parse(as_json.out, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << as_json.out;
  EXPECT_EQ(answer["ok"], true);
  ASSERT_EQ(answer["warnings"].size(), 1u);
  EXPECT_EQ(answer["warnings"][0]["pointer"], "/networks/0/overlay/local");
  EXPECT_EQ(answer["warnings"][0]["line"], 4);

  ASSERT_EQ(
      testing::Cmd({"ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul1"}).exit_code,
      0);
  ASSERT_EQ(testing::Cmd({"ip", "addr", "add", "192.0.2.2/24", "dev", "ul0"}).exit_code, 0);
  CommandResult has = Netctl({"validate", file});
  EXPECT_EQ(has.exit_code, 0);
  EXPECT_EQ(has.err, "");  // ul0's MTU 1500 carries 1450 + 50
  ASSERT_EQ(testing::Cmd({"ip", "link", "set", "ul0", "mtu", "1400"}).exit_code, 0);
  CommandResult small = Netctl({"validate", file});
  EXPECT_EQ(small.exit_code, 0);
  EXPECT_EQ(small.err, file +
                           ":4:74: /networks/0/overlay/mtu: warning: overlay mtu 1450 plus 50 "
                           "bytes of VXLAN encapsulation exceeds the MTU 1400 of ul0, which holds "
                           "192.0.2.2: full-size frames would be fragmented or dropped\n");
}

}  // namespace
}  // namespace vfabric
