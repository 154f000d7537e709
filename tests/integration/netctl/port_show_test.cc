// netctl port show --qemu|--libvirt against a real netd in the test's own
// network namespace: what it prints is checked against the real consumers
// where they are installed: the XML with libxml2's parser (xmllint), the
// QEMU line through a shell and then QEMU itself, which must take the
// arguments and open the tap (its carrier comes up), on a kernel network's
// tap and on a userspace network's "guest" tap, while a tap the userspace
// switch holds is refused by QEMU as netctl says it would be.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;

// A tap name with every character XML escapes and the one QEMU escapes.
const std::string kOddTap = "psu&<'\",1";

class PortShowTest : public testing::NetdFixture {
 protected:
  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv);
  }

  void StartWithNetworks() {
    json topology = {
        {"networks",
         {{{"name", "k"},
           {"bridge", "vfb-psk"},
           {"ports",
            {{{"name", "psk-t0"}}, {{"name", "psk-v0"}, {"kind", "veth"}, {"peer", "psk-v0p"}}}}},
          {{"name", "u"},
           {"datapath", "userspace"},
           {"ports",
            {{{"name", "psu-g0"}, {"guest", true}},
             {{"name", kOddTap}, {"guest", true}},
             {{"name", "psu-t1"}},
             {{"name", "psu-v0"}, {"kind", "veth"}, {"peer", "psu-v0p"}}}}}}}};
    const std::string config = dir_.Join("topology.json");
    testing::WriteFile(config, topology.dump(2));
    Start(config);
    // The userspace switch has its ports once the taps exist and it opened them.
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          json ports = Ok(testing::Request("port.list", {{"network", "u"}}))["ports"];
          int in_switch = 0;
          for (const json& p : ports)
            in_switch += p.contains("switch_port") && !p["switch_port"].is_null();
          return in_switch == 4;
        },
        10000))
        << Log();
  }

  // `xml` through libxml2's parser: the value of `xpath` (a string()
  // expression). Skips the check (empty) when xmllint is not installed.
  std::string XPath(const std::string& xml, const std::string& xpath) {
    const std::string file = dir_.Join("interface.xml");
    testing::WriteFile(file, xml);
    CommandResult r = testing::Run({"xmllint", "--xpath", xpath, file});
    EXPECT_EQ(r.exit_code, 0) << r.err << "\n" << xml;
    if (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();  // xmllint ends the value so
    return r.out;
  }

  bool HaveXmllint() { return testing::Shell("command -v xmllint").exit_code == 0; }
  bool HaveQemu() { return testing::Shell("command -v qemu-system-x86_64").exit_code == 0; }

  // The printed QEMU line split by a real shell: one argument per line.
  std::vector<std::string> ShellWords(const std::string& line) {
    CommandResult r = testing::Shell("printf '%s\\n' " + line);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> words;
    size_t start = 0;
    while (start < r.out.size()) {
      size_t end = r.out.find('\n', start);
      words.push_back(r.out.substr(start, end - start));
      start = end + 1;
    }
    return words;
  }

  // QEMU with nothing but the NIC `args`, stopped before the guest runs (-S):
  // it opens its tap at start.
  std::unique_ptr<testing::ScopedProcess> Qemu(const std::vector<std::string>& args,
                                               const std::string& log) {
    std::vector<std::string> argv = {
        "qemu-system-x86_64", "-machine", "pc",   "-accel", "tcg", "-m", "64",
        "-nodefaults",        "-display", "none", "-S"};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<testing::ScopedProcess>(argv, dir_.Join(log));
  }

  // A tap's carrier is on while a process has it open.
  bool Carrier(const std::string& tap) {
    json link = testing::Link(tap);
    if (!link.contains("flags")) return false;
    for (const json& flag : link["flags"])
      if (flag == "LOWER_UP") return true;
    return false;
  }
};

TEST_F(PortShowTest, KernelTapForQemuAndBridgeForLibvirt) {
  StartWithNetworks();
  CommandResult qemu = Netctl({"port", "show", "k", "psk-t0", "--qemu"});
  ASSERT_EQ(qemu.exit_code, 0) << qemu.err;
  EXPECT_EQ(qemu.out,
            "-netdev tap,id=net-vf-psk-t0,ifname=psk-t0,script=no,downscript=no,vhost=off "
            "-device virtio-net-pci,id=vf-psk-t0,netdev=net-vf-psk-t0\n");
  EXPECT_EQ(qemu.err, "");

  CommandResult libvirt = Netctl({"port", "show", "k", "psk-t0", "--libvirt"});
  ASSERT_EQ(libvirt.exit_code, 0) << libvirt.err;
  EXPECT_EQ(libvirt.out,
            "<interface type='bridge'>\n"
            "  <source bridge='vfb-psk'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  if (HaveXmllint()) {
    EXPECT_EQ(XPath(libvirt.out, "string(/interface/@type)"), "bridge");
    EXPECT_EQ(XPath(libvirt.out, "string(/interface/source/@bridge)"), "vfb-psk");
    EXPECT_EQ(XPath(libvirt.out, "string(/interface/model/@type)"), "virtio");
  }

  // --json: the same, as netd answered it.
  CommandResult answer = Netctl({"port", "show", "k", "psk-t0", "--qemu", "--json"});
  ASSERT_EQ(answer.exit_code, 0) << answer.err;
  json result = json::parse(answer.out, nullptr, false);
  ASSERT_TRUE(result.is_object()) << answer.out;
  EXPECT_EQ(result["datapath"], "kernel");
  EXPECT_EQ(result["kind"], "tap");
  EXPECT_EQ(result["libvirt"], libvirt.out);
  EXPECT_EQ(result["qemu"], json(ShellWords(qemu.out)));

  // Both forms, for a person.
  CommandResult both = Netctl({"port", "show", "k", "psk-t0"});
  ASSERT_EQ(both.exit_code, 0) << both.err;
  EXPECT_THAT(both.out, HasSubstr("QEMU:\n  -netdev tap,id=net-vf-psk-t0"));
  EXPECT_THAT(both.out, HasSubstr("libvirt:\n  <interface type='bridge'>\n"));

  if (!HaveQemu()) GTEST_SKIP() << "qemu-system-x86_64 is not installed (Debian: qemu-system-x86)";
  ASSERT_FALSE(Carrier("psk-t0"));
  auto vm = Qemu(ShellWords(qemu.out), "qemu-k.log");
  EXPECT_TRUE(testing::WaitFor([&] { return Carrier("psk-t0") || !vm->running(); }, 20000))
      << testing::ReadFile(dir_.Join("qemu-k.log"));
  EXPECT_TRUE(vm->running()) << testing::ReadFile(dir_.Join("qemu-k.log"));
  EXPECT_EQ(testing::Link("psk-t0")["master"], "vfb-psk");
}

TEST_F(PortShowTest, UserspaceGuestTapIsOpenedByQemuAndEscapedForLibvirt) {
  StartWithNetworks();
  CommandResult libvirt = Netctl({"port", "show", "u", kOddTap, "--libvirt"});
  ASSERT_EQ(libvirt.exit_code, 0) << libvirt.err;
  EXPECT_EQ(libvirt.out,
            "<interface type='ethernet'>\n"
            "  <target dev='psu&amp;&lt;&apos;&quot;,1' managed='no'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  if (HaveXmllint()) {
    EXPECT_EQ(XPath(libvirt.out, "string(/interface/@type)"), "ethernet");
    EXPECT_EQ(XPath(libvirt.out, "string(/interface/target/@dev)"), kOddTap);
    EXPECT_EQ(XPath(libvirt.out, "string(/interface/target/@managed)"), "no");
  }

  CommandResult odd = Netctl({"port", "show", "u", kOddTap, "--qemu"});
  ASSERT_EQ(odd.exit_code, 0) << odd.err;
  const std::vector<std::string> odd_args = ShellWords(odd.out);
  EXPECT_EQ(
      odd_args,
      (std::vector<std::string>{
          "-netdev", "tap,id=net-vf-psu_____1,ifname=psu&<'\",,1,script=no,downscript=no,vhost=off",
          "-device", "virtio-net-pci,id=vf-psu_____1,netdev=net-vf-psu_____1"}));
  CommandResult plain = Netctl({"port", "show", "u", "psu-g0", "--qemu"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;

  if (!HaveQemu()) GTEST_SKIP() << "qemu-system-x86_64 is not installed (Debian: qemu-system-x86)";
  // The switch holds psu-t1 itself: QEMU cannot have it, as netctl says.
  CommandResult held = Netctl({"port", "show", "u", "psu-t1", "--qemu"});
  EXPECT_EQ(held.exit_code, 1);
  EXPECT_THAT(held.err, HasSubstr("network u: port psu-t1: netd's switch opens this tap itself"));
  CommandResult refused =
      testing::Run({"qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "64",
                    "-nodefaults", "-display", "none", "-S", "-netdev",
                    "tap,id=n0,ifname=psu-t1,script=no,downscript=no,vhost=off", "-device",
                    "virtio-net-pci,netdev=n0"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("Device or resource busy"));

  // The "guest" taps: QEMU takes the printed arguments and opens them.
  auto vm = Qemu(ShellWords(plain.out), "qemu-u.log");
  auto odd_vm = Qemu(odd_args, "qemu-odd.log");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return (Carrier("psu-g0") && Carrier(kOddTap)) || !vm->running() || !odd_vm->running();
      },
      20000));
  EXPECT_TRUE(vm->running()) << testing::ReadFile(dir_.Join("qemu-u.log"));
  EXPECT_TRUE(odd_vm->running()) << testing::ReadFile(dir_.Join("qemu-odd.log"));
  // The switch still has the port, through a packet socket on the tap.
  json ports = Ok(testing::Request("port.list", {{"network", "u"}}))["ports"];
  for (const json& p : ports) {
    if (p["name"] == "psu-g0") {
      EXPECT_FALSE(p["switch_port"].is_null()) << p.dump();
    }
  }
}

TEST_F(PortShowTest, PortsWithoutAGuestUseAndUnknownNamesAreNamed) {
  StartWithNetworks();
  CommandResult veth = Netctl({"port", "show", "k", "psk-v0", "--libvirt"});
  EXPECT_EQ(veth.exit_code, 1);
  EXPECT_EQ(veth.out, "");
  EXPECT_THAT(veth.err, HasSubstr("network k: port psk-v0 is a veth"));
  CommandResult userspace_veth = Netctl({"port", "show", "u", "psu-v0", "--qemu"});
  EXPECT_EQ(userspace_veth.exit_code, 1);
  EXPECT_THAT(userspace_veth.err, HasSubstr("network u: port psu-v0 is a veth"));
  CommandResult json_error = Netctl({"port", "show", "k", "psk-v0", "--qemu", "-j"});
  EXPECT_EQ(json_error.exit_code, 1);
  EXPECT_EQ(json::parse(json_error.out, nullptr, false)["code"], "unsupported") << json_error.out;

  // Without a form: the port, and why no guest can use it.
  CommandResult shown = Netctl({"port", "show", "k", "psk-v0"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("guest:    none (network k: port psk-v0 is a veth"));

  CommandResult network = Netctl({"port", "show", "nope", "psk-t0", "--qemu"});
  EXPECT_EQ(network.exit_code, 1);
  EXPECT_THAT(network.err, HasSubstr("no network named \"nope\""));
  CommandResult port = Netctl({"port", "show", "k", "nope", "--libvirt", "--json"});
  EXPECT_EQ(port.exit_code, 1);
  json error = json::parse(port.out, nullptr, false);
  EXPECT_EQ(error["code"], "not_found");
  EXPECT_EQ(error["message"], "no port \"nope\" in network \"k\"");

  // Usage errors: both forms, a form elsewhere, a missing PORT.
  EXPECT_EQ(Netctl({"port", "show", "k", "psk-t0", "--qemu", "--libvirt"}).exit_code, 2);
  EXPECT_EQ(Netctl({"port", "list", "--qemu"}).exit_code, 2);
  EXPECT_EQ(Netctl({"port", "show", "k"}).exit_code, 2);
}

}  // namespace
}  // namespace vfabric
