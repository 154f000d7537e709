// A userspace network's VXLAN overlay across "hosts" (issue 17): hosts a and
// b are named network namespaces, each with its own netd on
// configs/overlay-userspace/host-X.json (the switch's own VXLAN endpoint on
// 192.0.2.X:4789, a peer port per flood address) plus a veth port whose
// peer is a "guest" namespace on 10.77.0.0/24. Host c is not vfabric: a plain
// Linux bridge with a kernel vxlan device and a guest veth, the interop
// peer. The underlay is a veth per host into a Linux bridge in the test's
// own namespace (192.0.2.0/24, the documentation range). Guests ping each
// other across all three hosts; a broadcast from any guest reaches each
// other guest exactly once (split horizon: no host forwards a peer's frame
// to another peer); netd lists the peer ports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
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

constexpr int kHosts = 3;  // a and b run netd, c is the kernel's vxlan
constexpr const char* kNetwork = "ustretch";

std::string Underlay(int i) { return "192.0.2." + std::to_string(i + 1); }
std::string GuestIp(int i) { return "10.77.0." + std::to_string(i + 1); }

class UserspaceOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VF_REQUIRE_PRIVATE_NETNS();
    CommandResult probe =
        Cmd({"ip", "link", "add", "vfxprobe", "type", "vxlan", "id", "1", "dstport", "4789"});
    if (probe.exit_code != 0) {
      if (testing::InCi()) FAIL() << "no vxlan links: " << probe.err;
      GTEST_SKIP() << "this kernel makes no vxlan links (host c needs one): " << probe.err;
    }
    Cmd({"ip", "link", "del", "vfxprobe"});
    ASSERT_EQ(Cmd({"ip", "link", "add", "ul", "type", "bridge"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "link", "set", "ul", "up"}).exit_code, 0);
    for (int i = 0; i < kHosts; ++i) {
      hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfuo-h"));
      guests_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfuo-g"));
      ASSERT_TRUE(hosts_.back()->ok() && guests_.back()->ok());
      ASSERT_NO_FATAL_FAILURE(Underlay0(i));
    }
  }

  // Host i's underlay link "uplink0" with Underlay(i).
  void Underlay0(int i) {
    const std::string& ns = hosts_[i]->name();
    const std::string ul = "ul" + std::to_string(i);
    ASSERT_EQ(Cmd({"ip", "link", "add", ul, "type", "veth", "peer", "name", "uplink0", "netns", ns})
                  .exit_code,
              0);
    ASSERT_EQ(Cmd({"ip", "link", "set", ul, "master", "ul", "up"}).exit_code, 0);
    ASSERT_EQ(InHost(i, {"ip", "addr", "add", Underlay(i) + "/24", "dev", "uplink0"}).exit_code, 0);
    ASSERT_EQ(InHost(i, {"ip", "link", "set", "uplink0", "up"}).exit_code, 0);
    ASSERT_EQ(InHost(i, {"ip", "link", "set", "lo", "up"}).exit_code, 0);
  }

  // The guest end "g-p" in guest namespace i: address, MTU (room for the
  // 50 bytes of VXLAN in the underlay's 1500), up.
  void SetUpGuest(int i) {
    const std::string& guest = guests_[i]->name();
    ASSERT_EQ(Cmd({"ip", "-n", guest, "addr", "add", GuestIp(i) + "/24", "dev", "g-p"}).exit_code,
              0);
    ASSERT_EQ(Cmd({"ip", "-n", guest, "link", "set", "g-p", "mtu", "1450", "up"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", guest, "link", "set", "lo", "up"}).exit_code, 0);
  }

  // Host i (0 or 1): netd on its example file plus the guest's veth.
  void StartNetd(int i) {
    const char* file = i == 0 ? "host-a.json" : "host-b.json";
    json doc =
        json::parse(testing::ReadFile(testing::SourceDir() + "/configs/overlay-userspace/" + file));
    doc["networks"][0]["ports"].push_back(
        {{"name", "ust-g"}, {"kind", "veth"}, {"peer", "g-p"}, {"peer_netns", guests_[i]->name()}});
    const std::string config = dir_.Join("host" + std::to_string(i) + ".json");
    std::ofstream(config) << doc.dump(2);
    sockets_.push_back(dir_.Join("netd" + std::to_string(i) + ".sock"));
    logs_.push_back(dir_.Join("netd" + std::to_string(i) + ".log"));
    netds_.push_back(std::make_unique<testing::ScopedProcess>(
        std::vector<std::string>{"ip", "netns", "exec", hosts_[i]->name(),
                                 testing::BinaryDir() + "/netd/netd", "--config", config,
                                 "--socket", sockets_[i], "--run-dir",
                                 dir_.Join("run" + std::to_string(i))},
        logs_[i]));
    ASSERT_TRUE(WaitFor(
        [&] { return !netds_[i]->running() || Ask(sockets_[i], Request("hello")).is_object(); },
        10000))
        << Log(i);
    ASSERT_TRUE(netds_[i]->running()) << Log(i);
    ASSERT_TRUE(WaitFor(
        [&] {
          return Cmd({"ip", "-n", guests_[i]->name(), "link", "show", "g-p"}).exit_code == 0;
        },
        5000))
        << Log(i);
    ASSERT_NO_FATAL_FAILURE(SetUpGuest(i));
  }

  // Host c: a Linux bridge, a kernel vxlan device of the same VNI flooding
  // to a and b, and the guest's veth on the bridge.
  void StartKernelHost(int i) {
    const std::string& guest = guests_[i]->name();
    for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0"},
             {"ip", "link", "add", "vx0", "type", "vxlan", "id", "4343", "local", Underlay(i),
              "dstport", "4789"},
             {"ip", "link", "set", "vx0", "master", "br0", "up"},
             {"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", Underlay(0)},
             {"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", Underlay(1)},
             {"ip", "link", "add", "g", "type", "veth", "peer", "name", "g-p", "netns", guest},
             {"ip", "link", "set", "g", "master", "br0", "up"},
             {"ip", "link", "set", "br0", "up"},
         }) {
      CommandResult r = InHost(i, step);
      ASSERT_EQ(r.exit_code, 0) << step[0] << " " << step[1] << " " << step[2] << ": " << r.err;
    }
    // Host c's underlay link computes the checksums it is handed (as a NIC
    // does on the wire). Over veths nothing else would: the kernel hands
    // the vxlan device's datagram to a's and b's sockets with the inner
    // UDP/TCP checksum still to be filled in (CHECKSUM_PARTIAL survives
    // veth and bridge), the switch forwards the bytes as received, and the
    // guests drop them. (ICMP is checksummed in software anyway.)
    CommandResult off = InHost(i, {"ethtool", "-K", "uplink0", "tx", "off"});
    ASSERT_EQ(off.exit_code, 0) << off.err;
    ASSERT_NO_FATAL_FAILURE(SetUpGuest(i));
  }

  std::string Log(int i) const { return testing::ReadFile(logs_.at(i)); }

  // What the hosts say, for a failure's message.
  std::string Diagnostics() {
    std::string out = InHost(2, {"ip", "link"}).out +
                      Cmd({"ip", "-n", guests_[2]->name(), "addr"}).out +
                      InHost(2, {"bridge", "-d", "link", "show"}).out +
                      InHost(2, {"bridge", "fdb", "show", "dev", "vx0"}).out +
                      InHost(2, {"ip", "-s", "-d", "link", "show", "vx0"}).out;
    for (size_t i = 0; i < sockets_.size(); ++i)
      out += Ask(sockets_[i], Request("port.stats", {{"network", kNetwork}})).dump() + "\n";
    return out;
  }

  std::string GuestMac(int i) {
    json links = json::parse(Cmd({"ip", "-n", guests_[i]->name(), "-j", "link", "show", "g-p"}).out,
                             nullptr, false);
    return links.is_array() && !links.empty() ? links[0].value("address", "") : "";
  }

  CommandResult InHost(int i, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", hosts_[i]->name()});
    return Cmd(argv);
  }

  bool Ping(int from, int to) {
    return Cmd({"ip", "netns", "exec", guests_[from]->name(), "busybox", "ping", "-c", "2", "-W",
                "2", GuestIp(to)})
               .exit_code == 0;
  }

  testing::TempDir dir_;
  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_, guests_;
  std::vector<std::string> sockets_, logs_;
  // Declared last: netd stops before the namespaces go.
  std::vector<std::unique_ptr<testing::ScopedProcess>> netds_;
};

TEST_F(UserspaceOverlayTest, TwoNetdHostsAndAKernelVxlanHostReachEachOtherOnce) {
  ASSERT_NO_FATAL_FAILURE(StartNetd(0));
  ASSERT_NO_FATAL_FAILURE(StartNetd(1));
  ASSERT_NO_FATAL_FAILURE(StartKernelHost(2));

  // netd lists the peer ports: one per flood address but its own.
  for (int i = 0; i < 2; ++i) {
    json ports = Ask(sockets_[i], Request("port.list", {{"network", kNetwork}}));
    ASSERT_EQ(ports.value("ok", false), true) << ports.dump();
    std::set<std::string> vxlan;
    for (const json& p : ports["result"]["ports"])
      if (p.value("kind", "") == "vxlan") {
        vxlan.insert(p["name"].get<std::string>());
        EXPECT_EQ(p["vni"], 4343);
        EXPECT_EQ(p["local"], Underlay(i));
      }
    std::set<std::string> want;
    for (int j = 0; j < kHosts; ++j)
      if (j != i) want.insert("vx4343:" + Underlay(j));
    EXPECT_EQ(vxlan, want) << ports.dump();
  }

  for (int from = 0; from < kHosts; ++from)
    for (int to = 0; to < kHosts; ++to)
      if (from != to) {
        EXPECT_TRUE(Ping(from, to)) << from << " -> " << to << "\n" << Log(0) << "\n" << Log(1);
      }

  // Remote MACs were learned on the peer port they came from.
  json fdb = Ask(sockets_[0], Request("fdb.show", {{"network", kNetwork}}));
  ASSERT_EQ(fdb.value("ok", false), true) << fdb.dump();
  for (int j = 1; j < kHosts; ++j) {
    std::string port;
    for (const json& e : fdb["result"]["entries"])
      if (e.value("mac", "") == GuestMac(j)) port = e.value("port", "");
    EXPECT_EQ(port, "vx4343:" + Underlay(j)) << fdb.dump() << "\n" << Diagnostics();
  }

  // A broadcast from each guest arrives once at each other guest.
  const std::string listen =
      "import socket,sys,time,collections\n"
      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
      "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
      "s.bind(('0.0.0.0',5555)); s.settimeout(0.2)\n"
      "print('ready',flush=True)\n"
      "c=collections.Counter(); end=time.time()+4\n"
      "while time.time()<end:\n"
      "  try: d,_=s.recvfrom(100); c[d.decode()]+=1\n"
      "  except socket.timeout: pass\n"
      "print(' '.join(f'{k}={v}' for k,v in sorted(c.items())),flush=True)\n";
  for (int from = 0; from < kHosts; ++from) {
    std::vector<std::unique_ptr<testing::ScopedProcess>> listeners;
    std::vector<std::string> outputs;
    for (int i = 0; i < kHosts; ++i) {
      if (i == from) continue;
      outputs.push_back(dir_.Join("listen" + std::to_string(from) + std::to_string(i)));
      listeners.push_back(std::make_unique<testing::ScopedProcess>(
          std::vector<std::string>{"ip", "netns", "exec", guests_[i]->name(), "/usr/bin/python3",
                                   "-c", listen},
          outputs.back()));
    }
    for (const std::string& out : outputs)
      ASSERT_TRUE(
          WaitFor([&] { return testing::ReadFile(out).find("ready") != std::string::npos; }, 5000));
    const std::string send =
        "import socket\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)\n"
        "for i in range(5): s.sendto(f'b{i}'.encode(),('10.77.0.255',5555))\n";
    ASSERT_EQ(Cmd({"ip", "netns", "exec", guests_[from]->name(), "/usr/bin/python3", "-c", send})
                  .exit_code,
              0);
    for (size_t l = 0; l < listeners.size(); ++l) {
      ASSERT_EQ(listeners[l]->Wait(10000), 0) << testing::ReadFile(outputs[l]);
      EXPECT_EQ(testing::ReadFile(outputs[l]), "ready\nb0=1 b1=1 b2=1 b3=1 b4=1\n")
          << "from guest " << from << ", listener " << l << "\n"
          << Diagnostics();
    }
  }
}

}  // namespace
}  // namespace vfabric
