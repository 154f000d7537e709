// libvirt as a real client of vfabric (issue 18): a libvirtd of the test's
// own (libvirtd.h) runs TCG domains whose <interface> elements are
// `netctl port show NETWORK PORT --libvirt`'s output, verbatim:
//   lv-g1: eth0 type='bridge' on kernel network lvk (libvirt's vnetN on
//          vfb-lvk, a link netd leaves as foreign), eth1 type='vhostuser'
//          on userspace network lvu (netd's socket; the domain part that
//          `port show` prints beside it: shared memory, vectors=0);
//   lv-g2: eth0 type='ethernet' on lvu's guest tap (libvirt opens netd's
//          tap, the switch reaches it through a packet socket).
// Each network has a host: a veth port whose peer is in a named namespace.
// The guests ping each other and the hosts; `virsh attach-interface
// --live` gives lv-g2 a bridge NIC on lvk (it pings lv-g1 through the
// kernel bridge) and `detach-interface --live` takes it away while netd
// keeps the networks converged; a netd restart loses no packet on the
// kernel network, leaves libvirt's taps where they are, and the vhost-user
// NIC reconnects (libvirt's <reconnect>) so traffic on lvu resumes.
//
// One test, one libvirtd, both guests booted in parallel: libvirtd's first
// call probes QEMU (~5 s) and a TCG boot takes seconds, so the suite stays
// well under a minute on an idle machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "guest_console.h"
#include "guest_fixture.h"
#include "libvirtd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;

class LibvirtGuestsTest : public testing::GuestFixture {
 protected:
  LibvirtGuestsTest() : GuestFixture(/*needs_tun=*/true) {}

  void SetUp() override {
    if (std::string missing = testing::Libvirtd::Missing(); !missing.empty()) {
      if (testing::InCi()) FAIL() << missing;
      GTEST_SKIP() << missing;
    }
    GuestFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    libvirtd_ = std::make_unique<testing::Libvirtd>(dir_.path());
    // Started now, its capability probe running while the test sets up
    // netd.
    libvirtd_started_ = libvirtd_->Start();
    if (libvirtd_started_.empty())
      libvirtd_ready_ = std::async(std::launch::async, [this] { return libvirtd_->Ready(); });
  }

  void TearDown() override {
    if (libvirtd_ready_.valid()) libvirtd_ready_.wait();
    consoles_.clear();
    libvirtd_.reset();  // domains destroyed and undefined, daemons stopped
    GuestFixture::TearDown();
  }

  // A domain booting the test image under TCG with `interfaces` (and
  // `extra`, children of <domain>), its serial console on a socket and a
  // log in the test's directory.
  std::string Domain(const std::string& name, const std::string& cmdline,
                     const std::string& interfaces, const std::string& extra = "") {
    const std::string console = dir_.Join(name + ".console");
    return "<domain type='qemu'>\n"
           "<name>" +
           name +
           "</name>\n"
           "<memory unit='MiB'>256</memory>\n"
           "<vcpu>1</vcpu>\n" +
           extra +
           "<os><type arch='x86_64' machine='pc'>hvm</type>\n"
           "<kernel>" +
           kernel_copy_ + "</kernel><initrd>" + initrd_copy_ +
           "</initrd>\n"
           "<cmdline>console=ttyS0 quiet panic=-1 " +
           cmdline +
           "</cmdline></os>\n"
           "<features><acpi/></features>\n"
           "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>"
           "<on_crash>destroy</on_crash>\n"
           "<devices>\n"
           "<serial type='unix'><source mode='bind' path='" +
           console + "'/><log file='" + dir_.Join(name + ".log") +
           "'/><target port='0'/></serial>\n" + interfaces +
           "<memballoon model='none'/>\n"
           "</devices>\n"
           "</domain>\n";
  }

  testing::Console& ConsoleOf(const std::string& name) {
    auto& console = consoles_[name];
    if (!console)
      console = std::make_unique<testing::Console>(dir_.Join(name + ".console"),
                                                   dir_.Join(name + ".log"));
    return *console;
  }

  // `command` in the guest until it succeeds, at most `tries` times.
  bool GuestRuns(const std::string& name, const std::string& command, int tries = 10) {
    for (int i = 0; i < tries; ++i) {
      if (ConsoleOf(name).Run(command, 15000) == 0) return true;
      usleep(300000);
    }
    return false;
  }

  // One ping from a namespace host, retried (ARP, learning) a few times.
  static bool HostPings(const std::string& netns, const std::string& address, int tries = 10) {
    for (int i = 0; i < tries; ++i) {
      if (testing::Cmd(
              {"ip", "netns", "exec", netns, "busybox", "ping", "-c", "1", "-W", "2", address})
              .exit_code == 0)
        return true;
    }
    return false;
  }

  // The networks are converged: every one "ok", nothing pending.
  ::testing::AssertionResult Converged() {
    const json status = Ok(testing::Request("status"));
    for (const json& network : status["networks"]) {
      if (network["state"] != "ok" || network["pending"] != 0)
        return ::testing::AssertionFailure() << status.dump();
    }
    return ::testing::AssertionSuccess();
  }

  // lvk's ports that netd shows as foreign (libvirt's vnetN).
  std::vector<json> ForeignPorts() {
    const json ports = Ok(testing::Request("port.list", {{"network", "lvk"}}))["ports"];
    std::vector<json> foreign;
    for (const json& port : ports)
      if (port.value("foreign", false)) foreign.push_back(port);
    return foreign;
  }

  std::string PortShow(const std::string& network, const std::string& port) {
    CommandResult shown = Netctl({"port", "show", network, port, "--libvirt"});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    return shown.out;
  }

  std::unique_ptr<testing::Libvirtd> libvirtd_;
  std::string libvirtd_started_;
  std::future<std::string> libvirtd_ready_;
  std::map<std::string, std::unique_ptr<testing::Console>> consoles_;
  std::string kernel_copy_, initrd_copy_;
};

TEST_F(LibvirtGuestsTest, DomainsOnKernelAndUserspaceNetworksWithHotPlugAndNetdRestart) {
  if (!libvirtd_started_.empty()) {
    if (testing::InCi()) FAIL() << libvirtd_started_;
    GTEST_SKIP() << "libvirtd cannot run here: " << libvirtd_started_;
  }
  testing::ScopedNamedNetns host_k("lvk"), host_u("lvu");
  ASSERT_TRUE(host_k.ok() && host_u.ok());
  // The guest image where libvirt-qemu can read it (and libvirt may label it).
  kernel_copy_ = dir_.Join("vmlinuz");
  initrd_copy_ = dir_.Join("initrd.img");
  ASSERT_EQ(testing::Cmd({"cp", "-L", kernel_, kernel_copy_}).exit_code, 0);
  ASSERT_EQ(testing::Cmd({"cp", "-L", initrd_, initrd_copy_}).exit_code, 0);
  const std::string socket = dir_.Join("vu/lvu-vu0.sock");
  const json topology = {{"networks",
                          {{{"name", "lvk"},
                            {"ports",
                             {{{"name", "lvk-t0"}},
                              {{"name", "lvk-h0"},
                               {"kind", "veth"},
                               {"peer", "lvk-h0p"},
                               {"peer_netns", host_k.name()}}}}},
                           {{"name", "lvu"},
                            {"datapath", "userspace"},
                            {"ports",
                             {{{"name", "lvu-g0"}, {"guest", true}},
                              // netd listens; QEMU (libvirt-qemu) connects.
                              {{"name", "lvu-vu0"},
                               {"kind", "vhost-user"},
                               {"socket", socket},
                               {"mode", "server"},
                               {"owner", "libvirt-qemu"},
                               {"permissions", "0660"}},
                              {{"name", "lvu-h0"},
                               {"kind", "veth"},
                               {"peer", "lvu-h0p"},
                               {"peer_netns", host_u.name()}}}}}}}};
  const std::string config = dir_.Join("topology.json");
  testing::WriteFile(config, topology.dump(2));
  Start(config);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::LinkExists("lvu-g0") && ::access(socket.c_str(), F_OK) == 0 &&
               testing::Cmd({"ip", "-n", host_k.name(), "link", "show", "lvk-h0p"}).exit_code ==
                   0 &&
               testing::Cmd({"ip", "-n", host_u.name(), "link", "show", "lvu-h0p"}).exit_code == 0;
      },
      10000))
      << Log();
  for (const auto& [netns, link, address] :
       {std::tuple{host_k.name(), "lvk-h0p", "10.81.1.1/24"},
        std::tuple{host_u.name(), "lvu-h0p", "10.81.2.1/24"}}) {
    ASSERT_EQ(testing::Shell("ip -n " + netns + " addr add " + address + " dev " + link +
                             " && ip -n " + netns + " link set " + link + " up")
                  .exit_code,
              0);
  }

  // What libvirt gets, verbatim (README.md documents these).
  const std::string bridge_nic = PortShow("lvk", "lvk-t0");
  const std::string ethernet_nic = PortShow("lvu", "lvu-g0");
  const std::string vhost_user_nic = PortShow("lvu", "lvu-vu0");
  EXPECT_EQ(bridge_nic,
            "<interface type='bridge'>\n"
            "  <source bridge='vfb-lvk'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  EXPECT_EQ(ethernet_nic,
            "<interface type='ethernet'>\n"
            "  <target dev='lvu-g0' managed='no'/>\n"
            "  <model type='virtio'/>\n"
            "</interface>\n");
  EXPECT_EQ(vhost_user_nic,
            "<interface type='vhostuser'>\n"
            "  <source type='unix' path='" +
                socket +
                "' mode='client'>\n"
                "    <reconnect enabled='yes' timeout='1'/>\n"
                "  </source>\n"
                "  <model type='virtio'/>\n"
                "  <alias name='ua-vf-lvu-vu0'/>\n"
                "</interface>\n");
  CommandResult shown = Netctl({"--json", "port", "show", "lvu", "lvu-vu0"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const json vhost_user = json::parse(shown.out, nullptr, false)["vhost_user"];
  ASSERT_TRUE(vhost_user.is_object() && vhost_user["libvirt_domain"].is_string()) << shown.out;
  const std::string vhost_user_domain = vhost_user["libvirt_domain"].get<std::string>();

  const std::string started = libvirtd_ready_.get();
  if (!started.empty()) {
    if (testing::InCi()) FAIL() << started;
    GTEST_SKIP() << "libvirtd cannot run here: " << started;
  }
  const std::vector<std::pair<std::string, std::string>> domains = {
      {"lv-g1", Domain("lv-g1", "vf.ip=10.81.1.2/24 vf.ip1=10.81.2.3/24",
                       bridge_nic + vhost_user_nic, vhost_user_domain)},
      {"lv-g2", Domain("lv-g2", "vf.ip=10.81.2.2/24", ethernet_nic)}};
  for (const auto& [name, xml] : domains) {
    CommandResult defined = libvirtd_->Define(name, xml);
    ASSERT_EQ(defined.exit_code, 0) << defined.err << xml;
  }
  // Both boot at once.
  std::vector<std::future<CommandResult>> starts;
  for (const auto& [name, xml] : domains)
    starts.push_back(std::async(std::launch::async, [&, name = name] {
      return libvirtd_->Virsh({"start", name});
    }));
  for (size_t i = 0; i < starts.size(); ++i) {
    CommandResult result = starts[i].get();
    ASSERT_EQ(result.exit_code, 0) << result.err << libvirtd_->QemuLog(domains[i].first);
  }
  for (const auto& [name, xml] : domains) {
    ASSERT_TRUE(ConsoleOf(name).WaitForLog("VF-READY", 90000))
        << name << ": " << ConsoleOf(name).Log() << libvirtd_->QemuLog(name);
  }

  // libvirt's tap is on the kernel bridge, and netd leaves it there.
  const CommandResult g1_nics = libvirtd_->Virsh({"domiflist", "lv-g1"});
  std::string g1_vnet;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (const json& port : ForeignPorts()) g1_vnet = port["name"].get<std::string>();
        return !g1_vnet.empty();
      },
      5000));
  ASSERT_FALSE(g1_vnet.empty()) << g1_nics.out << Log();
  EXPECT_THAT(g1_nics.out, HasSubstr(g1_vnet));

  // Guests and hosts reach each other: bridge NIC to its host, vhost-user
  // NIC to the ethernet guest through vfabric's switch, and the hosts.
  EXPECT_TRUE(GuestRuns("lv-g1", "ping -c 1 -W 2 10.81.1.1")) << ConsoleOf("lv-g1").Log();
  EXPECT_TRUE(GuestRuns("lv-g1", "ping -c 1 -W 2 10.81.2.2")) << ConsoleOf("lv-g1").Log();
  EXPECT_TRUE(GuestRuns("lv-g2", "ping -c 1 -W 2 10.81.2.1")) << ConsoleOf("lv-g2").Log();
  EXPECT_TRUE(HostPings(host_k.name(), "10.81.1.2"));
  EXPECT_TRUE(HostPings(host_u.name(), "10.81.2.3"));
  EXPECT_TRUE(HostPings(host_u.name(), "10.81.2.2"));
  EXPECT_TRUE(Converged());

  // A bridge NIC hot-plugged into lv-g2: it reaches lv-g1 through vfb-lvk.
  CommandResult attached = libvirtd_->Virsh(
      {"attach-interface", "lv-g2", "bridge", "vfb-lvk", "--model", "virtio", "--live"});
  ASSERT_EQ(attached.exit_code, 0) << attached.err;
  std::string g2_vnet, g2_mac;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (const json& port : ForeignPorts())
          if (port["name"] != g1_vnet) g2_vnet = port["name"].get<std::string>();
        return !g2_vnet.empty();
      },
      5000));
  ASSERT_FALSE(g2_vnet.empty()) << testing::Cmd({"ip", "link"}).out;
  EXPECT_TRUE(GuestRuns("lv-g2", "ip link set eth1 up && ip addr add 10.81.1.3/24 dev eth1", 3))
      << ConsoleOf("lv-g2").Log();
  EXPECT_TRUE(GuestRuns("lv-g2", "ping -c 1 -W 2 10.81.1.2")) << ConsoleOf("lv-g2").Log();
  EXPECT_TRUE(HostPings(host_k.name(), "10.81.1.3"));
  usleep(1500000);  // past netd's periodic pass: the foreign tap stays
  EXPECT_EQ(testing::Link(g2_vnet).value("master", ""), "vfb-lvk");
  EXPECT_TRUE(Converged());
  // The hot-plugged NIC's MAC: its line in `virsh domiflist`.
  const CommandResult g2_nics = libvirtd_->Virsh({"domiflist", "lv-g2"});
  if (const size_t at = g2_nics.out.find(g2_vnet); at != std::string::npos) {
    const size_t mac = g2_nics.out.find("52:54:00:", at);
    if (mac != std::string::npos) g2_mac = g2_nics.out.substr(mac, 17);
  }
  ASSERT_FALSE(g2_mac.empty()) << g2_nics.out;
  CommandResult detached =
      libvirtd_->Virsh({"detach-interface", "lv-g2", "bridge", "--mac", g2_mac, "--live"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  EXPECT_TRUE(testing::WaitFor([&] { return !testing::LinkExists(g2_vnet); }, 10000));
  EXPECT_TRUE(Converged());
  EXPECT_TRUE(GuestRuns("lv-g1", "ping -c 1 -W 2 10.81.1.1"));

  // netd restarted under running domains: the kernel network loses nothing
  // (a ping every 0.1 s for 6 s across it), libvirt's tap stays on the
  // bridge, and the vhost-user NIC reconnects to the new netd's socket.
  testing::ScopedProcess pinger({"ip", "netns", "exec", host_k.name(), "busybox", "ping", "-i",
                                 "0.1", "-c", "60", "-W", "1", "10.81.1.2"},
                                dir_.Join("restart-ping.log"));
  usleep(500000);
  ASSERT_EQ(Stop(), 0) << Log();
  Start(config);
  const int ping_status = pinger.Wait(15000);
  const std::string ping_log = testing::ReadFile(dir_.Join("restart-ping.log"));
  EXPECT_THAT(ping_log, HasSubstr("60 packets transmitted, 60 packets received")) << ping_log;
  EXPECT_EQ(ping_status, 0) << ping_log;
  EXPECT_EQ(testing::Link(g1_vnet).value("master", ""), "vfb-lvk");
  EXPECT_TRUE(GuestRuns("lv-g1", "ping -c 1 -W 2 10.81.2.2", 20)) << ConsoleOf("lv-g1").Log();
  EXPECT_TRUE(GuestRuns("lv-g2", "ping -c 1 -W 2 10.81.2.1")) << ConsoleOf("lv-g2").Log();
  EXPECT_TRUE(HostPings(host_u.name(), "10.81.2.3"));
  EXPECT_TRUE(testing::WaitFor([&] { return bool(Converged()); }, 5000));
}

}  // namespace
}  // namespace vfabric
