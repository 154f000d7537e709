// A guest that netd does not run, plugged into a userspace network with what
// `netctl port show NETWORK PORT --qemu` prints: QEMU started by hand (TCG)
// on a "guest" tap, booting the test image, answers pings from a host on
// the same network (a veth port whose peer stays in the test's namespace;
// busybox's ping, which the guest image needs anyway, as the host has none)
// through vfabric's switch, which learned the guest's MAC on that port.
// Cleanup, also after a failed assertion: the QEMU is the test's own
// process (ScopedProcess) and its command line names the test's directory
// (guest_fixture.h's TearDown kills it too).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "guest_fixture.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using testing::json;

class PortShowGuestTest : public testing::GuestFixture {
 protected:
  PortShowGuestTest() : GuestFixture(/*needs_tun=*/true) {}
};

TEST_F(PortShowGuestTest, HandStartedQemuOnAGuestTapCarriesTraffic) {
  const json topology = {{"networks",
                          {{{"name", "u"},
                            {"datapath", "userspace"},
                            {"ports",
                             {{{"name", "psg-g0"}, {"guest", true}},
                              {{"name", "psg-h0"}, {"kind", "veth"}, {"peer", "psg-h0p"}}}}}}}};
  const std::string config = dir_.Join("topology.json");
  testing::WriteFile(config, topology.dump(2));
  Start(config);
  ASSERT_TRUE(testing::WaitFor([] { return testing::LinkExists("psg-g0"); }, 10000)) << Log();
  ASSERT_EQ(
      testing::Shell("ip addr add 10.79.0.1/24 dev psg-h0p && ip link set psg-h0p up").exit_code,
      0);

  CommandResult printed = Netctl({"port", "show", "u", "psg-g0", "--qemu"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  // The arguments as an operator's shell splits the printed line.
  CommandResult words = testing::Shell("printf '%s\\n' " + printed.out);
  ASSERT_EQ(words.exit_code, 0) << words.err;
  std::vector<std::string> argv = {"qemu-system-x86_64",
                                   "-machine",
                                   "pc",
                                   "-accel",
                                   "tcg",
                                   "-m",
                                   "256",
                                   "-nodefaults",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-kernel",
                                   kernel_,
                                   "-initrd",
                                   initrd_,
                                   "-append",
                                   "console=ttyS0 quiet panic=-1 vf.ip=10.79.0.2/24",
                                   "-serial",
                                   "file:" + dir_.Join("guest-console.log")};
  size_t start = 0;
  while (start < words.out.size()) {
    const size_t end = words.out.find('\n', start);
    argv.push_back(words.out.substr(start, end - start));
    start = end + 1;
  }
  // The MAC QEMU gives its first NIC when none is set.
  const std::string guest_mac = "52:54:00:12:34:56";
  testing::ScopedProcess qemu(argv, dir_.Join("qemu.log"));
  qemu_pids_.insert(qemu.pid());

  // TCG boots the image in a few seconds; allow for a loaded machine.
  const bool answered = testing::WaitFor(
      [&] {
        return !qemu.running() ||
               testing::Cmd({"busybox", "ping", "-c", "1", "-W", "1", "10.79.0.2"}).exit_code == 0;
      },
      90000);
  ASSERT_TRUE(qemu.running()) << testing::ReadFile(dir_.Join("qemu.log"));
  ASSERT_TRUE(answered) << testing::ReadFile(dir_.Join("guest-console.log")) << Log();
  CommandResult ping = testing::Cmd({"busybox", "ping", "-c", "5", "-W", "2", "10.79.0.2"});
  EXPECT_EQ(ping.exit_code, 0) << ping.out;

  // Through the switch: it learned the guest's MAC on the guest tap's port.
  const json entries = Ok(testing::Request("fdb.show", {{"network", "u"}}))["entries"];
  bool learned = false;
  for (const json& entry : entries)
    learned = learned || (entry["mac"] == guest_mac && entry["port"] == "psg-g0");
  EXPECT_TRUE(learned) << entries.dump();
}

}  // namespace
}  // namespace vfabric
