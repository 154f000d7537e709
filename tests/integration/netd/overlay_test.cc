// VXLAN overlays across "hosts": each host is a named network namespace with
// its own netd, joined to the others by an underlay (a veth per host into a
// plain Linux bridge in the test's own namespace, addresses 192.0.2.0/24 from
// the documentation range). Every host applies configs/overlay/host-X.json
// (the same network "stretch", VNI 4242, differing only in "local") plus a
// veth port whose peer is a "guest" namespace on 10.77.0.0/24. Guests ping
// each other across hosts, a broadcast reaches every other guest exactly
// once, and netd repairs the flood list and the vxlan device when they are
// changed by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
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

constexpr int kHosts = 3;
const char* const kHostFiles[kHosts] = {"host-a.json", "host-b.json", "host-c.json"};
constexpr const char* kDevice = "vfx-4242";
constexpr const char* kBridge = "vfb-stretch";

std::string Underlay(int i) { return "192.0.2." + std::to_string(i + 1); }
std::string GuestIp(int i) { return "10.77.0." + std::to_string(i + 1); }

class OverlayTest : public ::testing::Test {
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
    // The underlay switch, in the test's own namespace.
    ASSERT_EQ(Cmd({"ip", "link", "add", "ul", "type", "bridge"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "link", "set", "ul", "up"}).exit_code, 0);
  }

  // Host i: its namespace, underlay link "uplink0" with Underlay(i), its
  // guest namespace, and netd on its example file plus the guest's veth.
  void StartHost(int i) {
    hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfov-h"));
    guests_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfov-g"));
    ASSERT_TRUE(hosts_.back()->ok() && guests_.back()->ok());
    const std::string& ns = hosts_[i]->name();
    const std::string ul = "ul" + std::to_string(i);
    ASSERT_EQ(Cmd({"ip", "link", "add", ul, "type", "veth", "peer", "name", "uplink0", "netns", ns})
                  .exit_code,
              0);
    ASSERT_EQ(Cmd({"ip", "link", "set", ul, "master", "ul", "up"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "addr", "add", Underlay(i) + "/24", "dev", "uplink0"}).exit_code,
              0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", "uplink0", "up"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", "lo", "up"}).exit_code, 0);

    json doc =
        json::parse(testing::ReadFile(testing::SourceDir() + "/configs/overlay/" + kHostFiles[i]));
    doc["networks"][0]["ports"].push_back({{"name", "str-g"},
                                           {"kind", "veth"},
                                           {"peer", "str-g-p"},
                                           {"peer_netns", guests_[i]->name()}});
    const std::string config = dir_.Join("host" + std::to_string(i) + ".json");
    std::ofstream(config) << doc.dump(2);
    sockets_.push_back(dir_.Join("netd" + std::to_string(i) + ".sock"));
    logs_.push_back(dir_.Join("netd" + std::to_string(i) + ".log"));
    netds_.push_back(std::make_unique<testing::ScopedProcess>(
        std::vector<std::string>{"ip", "netns", "exec", ns, testing::BinaryDir() + "/netd/netd",
                                 "--config", config, "--socket", sockets_[i], "--run-dir",
                                 dir_.Join("run" + std::to_string(i))},
        logs_[i]));
    ASSERT_TRUE(WaitFor(
        [&] { return !netds_[i]->running() || Ask(sockets_[i], Request("hello")).is_object(); },
        10000))
        << Log(i);
    ASSERT_TRUE(netds_[i]->running()) << Log(i);

    const std::string& guest = guests_[i]->name();
    ASSERT_TRUE(WaitFor(
        [&] {
          return Cmd({"ip", "-n", guest, "link", "show", "str-g-p"}).exit_code == 0;
        },
        5000))
        << Log(i);
    ASSERT_EQ(
        Cmd({"ip", "-n", guest, "addr", "add", GuestIp(i) + "/24", "dev", "str-g-p"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", guest, "link", "set", "str-g-p", "up"}).exit_code, 0);
    ASSERT_EQ(Cmd({"ip", "-n", guest, "link", "set", "lo", "up"}).exit_code, 0);
  }

  std::string Log(int i) const { return testing::ReadFile(logs_.at(i)); }

  CommandResult InHost(int i, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", hosts_[i]->name()});
    return Cmd(argv);
  }

  bool Ping(int from, int to) {
    return Cmd({"ip", "netns", "exec", guests_[from]->name(), "busybox", "ping", "-c", "2", "-W",
                "2", GuestIp(to)})
               .exit_code == 0;
  }

  // The flood list of host i's vxlan device, as `bridge fdb` shows it.
  std::set<std::string> Flood(int i) {
    std::set<std::string> out;
    json entries =
        json::parse(InHost(i, {"bridge", "-j", "fdb", "show", "dev", kDevice}).out, nullptr, false);
    if (!entries.is_array()) return out;
    for (const json& e : entries)
      if (e.value("mac", "") == "00:00:00:00:00:00" && e.contains("dst"))
        out.insert(e["dst"].get<std::string>());
    return out;
  }

  std::set<std::string> OthersThan(int i, int hosts) {
    std::set<std::string> out;
    for (int j = 0; j < hosts; ++j)
      if (j != i) out.insert(Underlay(j));
    return out;
  }

  json Device(int i) {
    json links = json::parse(InHost(i, {"ip", "-d", "-j", "link", "show", "dev", kDevice}).out,
                             nullptr, false);
    return links.is_array() && !links.empty() ? links[0] : json::object();
  }

  testing::TempDir dir_;
  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_, guests_;
  std::vector<std::string> sockets_, logs_;
  // Declared last: netd stops before the namespaces go.
  std::vector<std::unique_ptr<testing::ScopedProcess>> netds_;
};

TEST_F(OverlayTest, TwoHostsPingAcrossTheOverlayAndRepairTheirFloodList) {
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(StartHost(i));
  for (int i = 0; i < 2; ++i) {
    json device = Device(i);
    ASSERT_FALSE(device.empty()) << Log(i);
    EXPECT_EQ(device["linkinfo"]["info_kind"], "vxlan");
    EXPECT_EQ(device["linkinfo"]["info_data"]["id"], 4242);
    EXPECT_EQ(device["linkinfo"]["info_data"]["local"], Underlay(i));
    EXPECT_EQ(device["linkinfo"]["info_data"]["learning"], false);
    EXPECT_EQ(device["master"], kBridge);
    EXPECT_EQ(device["mtu"], 1450);
    EXPECT_EQ(device["ifalias"], "vfabric:stretch");
    // host-X.json names all three hosts: with only two running, the third
    // address is flooded to in vain, which costs a copy and nothing else.
    EXPECT_EQ(Flood(i), OthersThan(i, kHosts));
  }
  EXPECT_TRUE(Ping(0, 1)) << Log(0) << Log(1);
  EXPECT_TRUE(Ping(1, 0));

  // A flood entry deleted by hand comes back.
  ASSERT_EQ(
      InHost(0, {"bridge", "fdb", "del", "00:00:00:00:00:00", "dev", kDevice, "dst", Underlay(1)})
          .exit_code,
      0);
  EXPECT_TRUE(WaitFor([&] { return Flood(0) == OthersThan(0, kHosts); }, 3000)) << Log(0);
  // One added by hand that the file does not list goes.
  ASSERT_EQ(InHost(0, {"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", kDevice, "dst",
                       "192.0.2.99"})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor([&] { return Flood(0) == OthersThan(0, kHosts); }, 3000)) << Log(0);
  // The device deleted by hand is made again, on its bridge, with its list.
  ASSERT_EQ(InHost(1, {"ip", "link", "del", kDevice}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] { return Device(1).value("master", "") == kBridge && Flood(1) == OthersThan(1, kHosts); },
      3000))
      << Log(1);
  EXPECT_TRUE(WaitFor([&] { return Ping(0, 1); }, 5000));

  // The other host's file applied here: its local address is not this
  // host's, and netd refuses it whole.
  json answer =
      Ask(sockets_[0],
          Request("plan",
                  {{"files", json::array({{
                                 {"name", kHostFiles[1]},
                                 {"text", testing::ReadFile(testing::SourceDir() +
                                                            "/configs/overlay/" + kHostFiles[1])},
                             }})}}));
  ASSERT_TRUE(answer.is_object()) << answer.dump();
  EXPECT_EQ(answer["ok"], false) << answer.dump();
  EXPECT_THAT(answer.dump(), ::testing::HasSubstr("overlay local address 192.0.2.2 is not an "
                                                  "address of this host"));
}

// Three hosts: every guest reaches every other, and a broadcast from one
// guest arrives once at each other guest (head-end replication to each
// remote host; no host floods back into the overlay).
TEST_F(OverlayTest, ThreeHostsBroadcastArrivesOnceEverywhere) {
  for (int i = 0; i < kHosts; ++i) ASSERT_NO_FATAL_FAILURE(StartHost(i));
  for (int from = 0; from < kHosts; ++from)
    for (int to = 0; to < kHosts; ++to)
      if (from != to) {
        EXPECT_TRUE(Ping(from, to)) << from << " -> " << to << "\n" << Log(from);
      }

  // Listeners on guests 1 and 2 count what they receive on UDP 5555 for 4 s.
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
  std::vector<std::unique_ptr<testing::ScopedProcess>> listeners;
  std::vector<std::string> outputs;
  for (int i = 1; i < kHosts; ++i) {
    outputs.push_back(dir_.Join("listen" + std::to_string(i)));
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
  ASSERT_EQ(
      Cmd({"ip", "netns", "exec", guests_[0]->name(), "/usr/bin/python3", "-c", send}).exit_code,
      0);
  for (size_t l = 0; l < listeners.size(); ++l) {
    ASSERT_EQ(listeners[l]->Wait(10000), 0) << testing::ReadFile(outputs[l]);
    EXPECT_EQ(testing::ReadFile(outputs[l]), "ready\nb0=1 b1=1 b2=1 b3=1 b4=1\n")
        << "guest " << l + 1;
  }
}

}  // namespace
}  // namespace vfabric
