// A VXLAN overlay with BGP EVPN through FRR (configs/overlay-evpn/): three
// "hosts", each a named network namespace on a veth underlay (a plain Linux
// bridge in the test's own namespace, 192.0.2.0/24). Hosts a and b run netd
// on configs/overlay-evpn/host-X.json ("control": "evpn") plus a guest veth;
// host c is not vfabric at all -- a Linux bridge and a vxlan device made by
// hand, the interop peer. Each host runs FRR's zebra and bgpd
// (scripts/evpn-frr run, configs/overlay-evpn/frr/bgpd-X.conf; iBGP over
// the underlay). The flood lists come from type-3 routes, the guests' MACs
// from type-2 routes (extern_learn entries with their VTEP), the guests
// ping each other across hosts, netd's drift repair and fdb.flush leave
// FRR's entries alone (a peer's sticky MAC included) while netd's own static
// entry is still repaired, and a guest MAC that moves from host a to host b
// is found at b by every host.
//
// FRR drops to user frr, which clears the parent-death signal: on a hard
// kill of this test (a ctest timeout) the daemons outlive it in their
// namespaces; every other exit, failed assertions included, stops them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Ask;
using testing::Cmd;
using testing::CommandResult;
using testing::Request;
using testing::WaitFor;

constexpr int kHosts = 3;
constexpr int kNetdHosts = 2;  // a and b; c is the plain Linux peer
const char* const kLetters[kHosts] = {"a", "b", "c"};
constexpr const char* kDevice = "vfx-4242";
constexpr const char* kBridge = "vfb-stretch";
// netd's own static FDB entry on host i's guest port (topology fdb.static).
std::string OwnMac(int i) { return "52:54:00:00:0f:0" + std::to_string(i + 1); }
// Host c's sticky MAC: zebra installs it at the peers as a static + sticky
// entry on the vxlan port, without extern_learn.
constexpr const char* kStickyMac = "52:54:00:00:0e:03";

std::string Underlay(int i) { return "192.0.2." + std::to_string(i + 1); }
std::string GuestIp(int i) { return "10.77.0." + std::to_string(i + 1); }
std::string GuestMac(int i) { return "52:54:00:77:00:0" + std::to_string(i + 1); }

class EvpnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VF_REQUIRE_PRIVATE_NETNS();
    CommandResult probe =
        Cmd({"ip", "link", "add", "vfxprobe", "type", "vxlan", "id", "1", "dstport", "4789"});
    if (probe.exit_code != 0) {
      if (testing::InCi()) FAIL() << "no vxlan links: " << probe.err;
      GTEST_SKIP() << "this kernel makes no vxlan links: " << probe.err;
    }
    Cmd({"ip", "link", "del", "vfxprobe"});
    std::string missing;
    for (const char* daemon : {"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"})
      if (access(daemon, X_OK) != 0) missing += std::string(" ") + daemon;
    if (Cmd({"id", "frr"}).exit_code != 0) missing += " (user frr)";
    if (!missing.empty()) {
      const std::string why = "FRR cannot run here, missing:" + missing +
                              " (Debian's frr; scripts/install-deps installs it)";
      if (testing::InCi()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    // The daemons run as frr and must reach their run directories.
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    ASSERT_EQ(Cmd({"ip", "link", "add", "ul", "type", "bridge"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "link", "set", "ul", "up"}).exit_code, 0);
    for (int i = 0; i < kHosts; ++i) {
      hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfev-h"));
      guests_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfev-g"));
      ASSERT_TRUE(hosts_.back()->ok() && guests_.back()->ok());
    }
    mover_ = std::make_unique<testing::ScopedNamedNetns>("vfev-m");
    ASSERT_TRUE(mover_->ok());
    start_ = std::chrono::steady_clock::now();
  }

  void TearDown() override {
    if (start_.time_since_epoch().count() == 0) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::cout << "evpn test body: " << seconds << " s\n";
  }

  const std::string& Ns(int i) const { return hosts_[i]->name(); }
  const std::string& Guest(int i) const { return guests_[i]->name(); }

  // Host i's underlay link "uplink0" with Underlay(i).
  void MakeUnderlay(int i) {
    const std::string ul = "ul" + std::to_string(i);
    ASSERT_EQ(
        Cmd({"ip", "link", "add", ul, "type", "veth", "peer", "name", "uplink0", "netns", Ns(i)})
            .exit_code,
        0);
    ASSERT_EQ(Cmd({"ip", "link", "set", ul, "master", "ul", "up"}).exit_code, 0);
    ASSERT_EQ(
        Cmd({"ip", "-n", Ns(i), "addr", "add", Underlay(i) + "/24", "dev", "uplink0"}).exit_code,
        0);
    ASSERT_EQ(Cmd({"ip", "-n", Ns(i), "link", "set", "uplink0", "up"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", Ns(i), "link", "set", "lo", "up"}).exit_code, 0);
  }

  // A guest end `link` in namespace `ns`: no IPv6 (no chatter that would
  // re-learn a MAC after it moved), the given MAC and address, up.
  void GuestUp(const std::string& ns, const std::string& link, const std::string& mac,
               const std::string& ip) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return Cmd({"ip", "-n", ns, "link", "show", link}).exit_code == 0;
        },
        5000))
        << ns << " " << link;
    ASSERT_EQ(Cmd({"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"})
                  .exit_code,
              0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", link, "address", mac}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "addr", "add", ip + "/24", "dev", link}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", link, "up"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", "lo", "up"}).exit_code, 0);
  }

  // Host i (a or b): netd on configs/overlay-evpn/host-X.json, plus the
  // guest's veth with netd's own static FDB entry on it; host b also gets
  // the port a guest moves to.
  void StartNetdHost(int i) {
    ASSERT_NO_FATAL_FAILURE(MakeUnderlay(i));
    json doc = json::parse(testing::ReadFile(testing::SourceDir() + "/configs/overlay-evpn/host-" +
                                             kLetters[i] + ".json"));
    json& network = doc["networks"][0];
    network["ports"].push_back(
        {{"name", "str-g"}, {"kind", "veth"}, {"peer", "str-g-p"}, {"peer_netns", Guest(i)}});
    if (i == 1)
      network["ports"].push_back({{"name", "str-m"},
                                  {"kind", "veth"},
                                  {"peer", "str-m-p"},
                                  {"peer_netns", mover_->name()}});
    network["fdb"] = {{"static", json::array({{{"mac", OwnMac(i)}, {"port", "str-g"}}})}};
    const std::string config = dir_.Join("host" + std::to_string(i) + ".json");
    std::ofstream(config) << doc.dump(2);
    sockets_.push_back(dir_.Join("netd" + std::to_string(i) + ".sock"));
    logs_.push_back(dir_.Join("netd" + std::to_string(i) + ".log"));
    netds_.push_back(std::make_unique<testing::ScopedProcess>(
        std::vector<std::string>{"ip", "netns", "exec", Ns(i), testing::BinaryDir() + "/netd/netd",
                                 "--config", config, "--socket", sockets_[i], "--run-dir",
                                 dir_.Join("run" + std::to_string(i))},
        logs_[i]));
    ASSERT_TRUE(WaitFor(
        [&] { return !netds_[i]->running() || Ask(sockets_[i], Request("hello")).is_object(); },
        10000))
        << Log(i);
    ASSERT_TRUE(netds_[i]->running()) << Log(i);
    ASSERT_NO_FATAL_FAILURE(GuestUp(Guest(i), "str-g-p", GuestMac(i), GuestIp(i)));
  }

  // Host c: what a Linux host without vfabric has for EVPN (FRR's own
  // setup): a bridge with a nolearning vxlan port, learning off on it, and
  // a guest; a sticky static MAC on the guest port, which FRR advertises
  // with the sticky flag.
  void StartPlainHost(int i) {
    ASSERT_NO_FATAL_FAILURE(MakeUnderlay(i));
    const std::string local = Underlay(i);
    for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", kBridge, "type", "bridge"},
             {"ip", "link", "add", kDevice, "type", "vxlan", "id", "4242", "local", local,
              "dstport", "4789", "nolearning"},
             {"ip", "link", "set", kDevice, "mtu", "1450", "master", kBridge},
             {"ip", "link", "set", kDevice, "type", "bridge_slave", "learning", "off"},
             {"ip", "link", "add", "str-g", "type", "veth", "peer", "name", "str-g-p", "netns",
              Guest(i)},
             {"ip", "link", "set", "str-g", "master", kBridge, "up"},
             {"ip", "link", "set", kDevice, "up"},
             {"ip", "link", "set", kBridge, "up"},
             {"bridge", "fdb", "add", kStickyMac, "dev", "str-g", "master", "static", "sticky"},
         }) {
      std::vector<std::string> argv = {"ip", "netns", "exec", Ns(i)};
      argv.insert(argv.end(), step.begin(), step.end());
      CommandResult result = Cmd(argv);
      ASSERT_EQ(result.exit_code, 0) << result.err;
    }
    ASSERT_NO_FATAL_FAILURE(GuestUp(Guest(i), "str-g-p", GuestMac(i), GuestIp(i)));
  }

  // zebra, then bgpd, in host i's namespace from their own directory.
  void StartFrr(int i) {
    const std::string dir = dir_.Join(std::string("frr-") + kLetters[i]);
    const std::string conf =
        testing::SourceDir() + "/configs/overlay-evpn/frr/bgpd-" + kLetters[i] + ".conf";
    frr_dirs_.push_back(dir);
    for (const char* daemon : {"zebra", "bgpd"}) {
      frr_logs_.push_back(dir_.Join(std::string(daemon) + "-" + kLetters[i] + ".log"));
      frrs_.push_back(std::make_unique<testing::ScopedProcess>(
          std::vector<std::string>{"ip", "netns", "exec", Ns(i),
                                   testing::SourceDir() + "/scripts/evpn-frr", "run", dir, conf,
                                   daemon},
          frr_logs_.back()));
      const std::string ready = dir + "/" + daemon + ".vty";
      ASSERT_TRUE(WaitFor(
          [&] {
            struct stat st;
            return !frrs_.back()->running() || stat(ready.c_str(), &st) == 0;
          },
          10000))
          << testing::ReadFile(frr_logs_.back());
      ASSERT_TRUE(frrs_.back()->running()) << testing::ReadFile(frr_logs_.back());
    }
  }

  std::string Log(int i) const { return testing::ReadFile(logs_.at(i)); }

  CommandResult InHost(int i, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", Ns(i)});
    return Cmd(argv);
  }

  std::string Vtysh(int i, const std::string& command) {
    return Cmd({"vtysh", "--vty_socket", frr_dirs_.at(i), "-c", command}).out;
  }

  std::string Diagnostics(int i) {
    return "\nhost " + std::string(kLetters[i]) + ":\n" +
           InHost(i, {"bridge", "fdb", "show", "dev", kDevice}).out +
           Vtysh(i, "show bgp l2vpn evpn summary") + Vtysh(i, "show evpn mac vni all") +
           (i < kNetdHosts ? Log(i) : "");
  }

  bool Ping(int from_guest, const std::string& ip) {
    return Cmd({"ip", "netns", "exec", Guest(from_guest), "busybox", "ping", "-c", "1", "-W", "1",
                ip})
               .exit_code == 0;
  }

  // Host i's vxlan device FDB as `bridge -j fdb show dev vfx-4242` has it.
  json Fdb(int i) {
    json entries =
        json::parse(InHost(i, {"bridge", "-j", "fdb", "show", "dev", kDevice}).out, nullptr, false);
    return entries.is_array() ? entries : json::array();
  }

  static bool HasFlag(const json& entry, const char* flag) {
    if (!entry.contains("flags") || !entry["flags"].is_array()) return false;
    for (const json& f : entry["flags"])
      if (f == flag) return true;
    return false;
  }

  // The flood list (all-zero MAC, a dst) of host i.
  std::set<std::string> Flood(int i) {
    std::set<std::string> out;
    for (const json& e : Fdb(i))
      if (e.value("mac", "") == "00:00:00:00:00:00" && e.contains("dst"))
        out.insert(e["dst"].get<std::string>());
    return out;
  }

  // Where host i sends `mac`: the VTEP of the vxlan device's own entry, if
  // the bridge's entry for it is on the vxlan port too ("" otherwise).
  std::string RemoteVtep(int i, const std::string& mac) {
    std::string dst;
    bool on_port = false;
    for (const json& e : Fdb(i)) {
      if (e.value("mac", "") != mac) continue;
      if (e.contains("dst")) dst = e["dst"].get<std::string>();
      if (e.value("master", "") == kBridge) on_port = true;
    }
    return on_port ? dst : "";
  }

  // FRR's entries on host i's vxlan port, one line each as `bridge fdb`
  // would print them (the bridge's entries and the device's, the flood list).
  std::set<std::string> FrrEntries(int i) {
    std::set<std::string> out;
    for (const json& e : Fdb(i)) {
      // FRR's entries have a dst (remote MACs, the flood list). Not the
      // port's own, nor one the bridge learned while the test had the
      // port's learning on (a remote host's frame can arrive then).
      if (!e.contains("dst")) continue;
      out.insert(e.dump());
    }
    return out;
  }

  std::set<std::string> Others(int i) {
    std::set<std::string> out;
    for (int j = 0; j < kHosts; ++j)
      if (j != i) out.insert(Underlay(j));
    return out;
  }

  testing::TempDir dir_;
  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_, guests_;
  std::unique_ptr<testing::ScopedNamedNetns> mover_;
  std::vector<std::string> sockets_, logs_, frr_dirs_, frr_logs_;
  std::chrono::steady_clock::time_point start_{};
  // Declared after the namespaces: netd and FRR stop before they go (FRR
  // first).
  std::vector<std::unique_ptr<testing::ScopedProcess>> netds_;
  std::vector<std::unique_ptr<testing::ScopedProcess>> frrs_;
};

TEST_F(EvpnTest, FrrCarriesMacsAndFloodListsAndNetdLeavesThemAlone) {
  for (int i = 0; i < kNetdHosts; ++i) ASSERT_NO_FATAL_FAILURE(StartNetdHost(i));
  ASSERT_NO_FATAL_FAILURE(StartPlainHost(2));
  for (int i = 0; i < kHosts; ++i) ASSERT_NO_FATAL_FAILURE(StartFrr(i));
  // netd makes the vxlan port what zebra needs: learning off.
  for (int i = 0; i < kNetdHosts; ++i) {
    json link = json::parse(InHost(i, {"ip", "-d", "-j", "link", "show", "dev", kDevice}).out,
                            nullptr, false);
    ASSERT_TRUE(link.is_array() && !link.empty()) << Log(i);
    EXPECT_EQ(link[0]["master"], kBridge);
    EXPECT_EQ(link[0]["linkinfo"]["info_data"]["learning"], false);
    EXPECT_EQ(link[0]["linkinfo"]["info_slave_data"]["learning"], false);
    EXPECT_THAT(Vtysh(i, "show evpn vni 4242"), ::testing::HasSubstr("VxLAN interface: vfx-4242"));
  }

  // Type 3: every host floods to the two others, and only FRR put them there.
  for (int i = 0; i < kHosts; ++i)
    EXPECT_TRUE(WaitFor([&] { return Flood(i) == Others(i); }, 20000)) << Diagnostics(i);
  // The guests reach each other across hosts.
  for (int from = 0; from < kHosts; ++from)
    for (int to = 0; to < kHosts; ++to)
      if (from != to) {
        EXPECT_TRUE(WaitFor([&] { return Ping(from, GuestIp(to)); }, 5000))
            << kLetters[from] << " -> " << kLetters[to] << Diagnostics(from);
      }
  // Type 2: each guest's MAC (and netd's static entry) at every other host,
  // an extern_learn entry pointing at its VTEP; the sticky one as zebra has it.
  for (int i = 0; i < kHosts; ++i)
    for (int j = 0; j < kHosts; ++j) {
      if (i == j) continue;
      EXPECT_TRUE(WaitFor([&] { return RemoteVtep(i, GuestMac(j)) == Underlay(j); }, 5000))
          << GuestMac(j) << " at " << kLetters[i] << Diagnostics(i);
      if (j < kNetdHosts) {
        EXPECT_TRUE(WaitFor([&] { return RemoteVtep(i, OwnMac(j)) == Underlay(j); }, 5000))
            << OwnMac(j) << " at " << kLetters[i] << Diagnostics(i);
      }
    }
  for (int i = 0; i < kNetdHosts; ++i)
    EXPECT_TRUE(WaitFor([&] { return RemoteVtep(i, kStickyMac) == Underlay(2); }, 5000))
        << Diagnostics(i);
  const std::string routes = Vtysh(0, "show bgp l2vpn evpn route");
  EXPECT_THAT(routes, ::testing::HasSubstr("[2]:[0]:[48]:[" + GuestMac(1) + "]"));
  EXPECT_THAT(routes, ::testing::HasSubstr("[3]:[0]:[32]:[" + Underlay(2) + "]"));
  json remote;
  for (const json& e : Fdb(0))
    if (e.value("mac", "") == GuestMac(1) && e.value("master", "") == kBridge) remote = e;
  EXPECT_TRUE(HasFlag(remote, "extern_learn")) << remote.dump();
  json sticky;
  for (const json& e : Fdb(0))
    if (e.value("mac", "") == kStickyMac && e.value("master", "") == kBridge) sticky = e;
  EXPECT_TRUE(HasFlag(sticky, "sticky")) << sticky.dump();
  EXPECT_FALSE(HasFlag(sticky, "extern_learn")) << sticky.dump();

  // Repair passes on host a (netd's own static entry deleted by hand, the
  // vxlan port's learning turned on by hand) and fdb.flush: netd repairs
  // both, and deletes none of FRR's entries -- `bridge monitor` sees no
  // deletion on the vxlan port, and afterwards FRR's entries are the same.
  const std::set<std::string> before = FrrEntries(0);
  const std::string monitor_log = dir_.Join("monitor.log");
  auto monitor = std::make_unique<testing::ScopedProcess>(
      std::vector<std::string>{"ip", "netns", "exec", Ns(0), "bridge", "monitor", "fdb"},
      monitor_log);
  ASSERT_TRUE(WaitFor([&] { return monitor->running(); }, 1000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // subscribed
  ASSERT_EQ(InHost(0, {"bridge", "fdb", "del", OwnMac(0), "dev", "str-g", "master"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return InHost(0, {"bridge", "fdb", "show", "dev", "str-g"}).out.find(OwnMac(0)) !=
               std::string::npos;
      },
      3000))
      << Log(0);
  ASSERT_EQ(
      InHost(0, {"ip", "link", "set", kDevice, "type", "bridge_slave", "learning", "on"}).exit_code,
      0);
  EXPECT_TRUE(WaitFor(
      [&] {
        json link = json::parse(InHost(0, {"ip", "-d", "-j", "link", "show", "dev", kDevice}).out,
                                nullptr, false);
        return link.is_array() && !link.empty() &&
               link[0]["linkinfo"]["info_slave_data"]["learning"] == false;
      },
      3000))
      << Log(0);
  json flush = Ask(sockets_[0], Request("fdb.flush", {{"network", "stretch"}}));
  ASSERT_EQ(flush.value("ok", false), true) << flush.dump();
  for (const json& gone : flush["result"]["removed"]) EXPECT_NE(gone["port"], kDevice) << gone;
  // A full pass, as the 30 s resync does it.
  ASSERT_TRUE(netds_[0]->Signal(SIGHUP));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  monitor.reset();
  const std::string events = testing::ReadFile(monitor_log);
  std::istringstream lines(events);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("Deleted", 0) == 0) {
      EXPECT_EQ(line.find(kDevice), std::string::npos) << line;
    }
  EXPECT_EQ(FrrEntries(0), before) << events << Log(0);

  // Guest a's MAC moves to host b: the guest at a falls silent (its address
  // gone; its MAC stays learned at a), one with the same MAC and address appears on
  // b's port str-m and announces itself (gratuitous ARP). b learns it
  // locally, advertises it with a higher MAC mobility sequence, and a and c
  // send to b from then on.
  ASSERT_EQ(Cmd({"ip", "-n", Guest(0), "addr", "flush", "dev", "str-g-p"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(GuestUp(mover_->name(), "str-m-p", GuestMac(0), GuestIp(0)));
  const auto moved = std::chrono::steady_clock::now();
  ASSERT_EQ(Cmd({"ip", "netns", "exec", mover_->name(), "busybox", "arping", "-U", "-c", "1", "-I",
                 "str-m-p", GuestIp(0)})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor([&] { return RemoteVtep(0, GuestMac(0)) == Underlay(1); }, 10000))
      << Diagnostics(0) << Diagnostics(1);
  EXPECT_TRUE(WaitFor([&] { return RemoteVtep(2, GuestMac(0)) == Underlay(1); }, 10000))
      << Diagnostics(2);
  std::cout << "MAC move seen at a and c after "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - moved).count()
            << " s\n";
  EXPECT_THAT(Vtysh(0, "show evpn mac vni 4242 mac " + GuestMac(0)),
              ::testing::HasSubstr("Remote VTEP: " + Underlay(1)));
  EXPECT_TRUE(WaitFor([&] { return Ping(2, GuestIp(0)); }, 5000)) << Diagnostics(2);
  EXPECT_TRUE(WaitFor([&] { return Ping(1, GuestIp(0)); }, 5000)) << Diagnostics(1);
}

}  // namespace
}  // namespace vfabric
