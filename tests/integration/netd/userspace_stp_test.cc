// Spanning tree on the userspace datapath, against itself and against the
// Linux bridge's kernel STP, through netd: loops of switches joined by veth
// pairs the test makes (ports of kind "existing"), hosts in named
// namespaces. Every view must agree on the root (netctl's for each switch,
// the kernel's through iproute2 and sysfs, tshark's decoding of the BPDUs
// on the wire), exactly the expected port blocks, broadcasts do not storm,
// and a link set down is routed around.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using testing::Cmd;
using testing::CommandResult;
using ::testing::HasSubstr;
using testing::json;
using testing::Request;
using testing::WaitFor;

class UserspaceStpTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    config_ = dir_.Join("stp.json");
  }

  // A veth pair made by the test (netd sees both ends as "existing" ports).
  void Cable(const std::string& a, const std::string& b) {
    ASSERT_EQ(Cmd({"ip", "link", "add", a, "type", "veth", "peer", "name", b}).exit_code, 0);
    for (const std::string& end : {a, b}) {
      // No IPv6 chatter: the frames counted below are the test's own.
      testing::WriteFile("/proc/sys/net/ipv6/conf/" + end + "/disable_ipv6", "1");
      ASSERT_EQ(Cmd({"ip", "link", "set", end, "up"}).exit_code, 0);
    }
  }

  // A host namespace whose interface is the peer of veth port `port`.
  json HostPort(const std::string& port) {
    hosts_.push_back(std::make_unique<testing::ScopedNamedNetns>("vfst"));
    EXPECT_TRUE(hosts_.back()->ok());
    return {{"name", port},
            {"kind", "veth"},
            {"peer", port + "-p"},
            {"peer_netns", hosts_.back()->name()}};
  }

  void SetUpHosts(const std::vector<std::string>& ports) {
    for (size_t i = 0; i < ports.size(); ++i) {
      const std::string& ns = hosts_[i]->name();
      const std::string dev = ports[i] + "-p";
      ASSERT_EQ(Cmd({"ip", "-n", ns, "addr", "add", Ip(i) + "/24", "dev", dev}).exit_code, 0)
          << Log();
      testing::Run(
          {"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"});
      ASSERT_EQ(Cmd({"ip", "-n", ns, "link", "set", dev, "up"}).exit_code, 0);
    }
  }

  static std::string Ip(size_t host) { return "10.77.0." + std::to_string(host + 1); }

  bool Ping(size_t from, size_t to, int count = 2) {
    return Cmd({"ip", "netns", "exec", hosts_[from]->name(), "busybox", "ping", "-c",
                std::to_string(count), "-W", "1", Ip(to)})
               .exit_code == 0;
  }

  json Stp(const std::string& network) {
    json answer = testing::Ask(socket_, Request("stp.show", {{"network", network}}));
    return answer.is_object() && answer["ok"] == true ? answer["result"]["stp"] : json::object();
  }

  static json Port(const json& stp, const std::string& name) {
    if (stp.contains("ports"))
      for (const json& p : stp["ports"])
        if (p["name"] == name) return p;
    return json::object();
  }
  static std::string Field(const json& stp, const std::string& port, const char* key) {
    json p = Port(stp, port);
    return p.contains(key) && p[key].is_string() ? p[key].get<std::string>() : "";
  }

  // Every frame the switches of `networks` received, on all their ports.
  long long SwitchRx(const std::vector<std::string>& networks) {
    long long total = 0;
    for (const std::string& network : networks) {
      json stats = testing::Ask(socket_, Request("port.stats", {{"network", network}}));
      if (!stats.is_object() || stats["ok"] != true) return -1;
      for (const json& port : stats["result"]["ports"])
        total += port["counters"]["rx_packets"].get<long long>();
    }
    return total;
  }
  static long long KernelRx(const std::vector<std::string>& links) {
    long long total = 0;
    for (const std::string& link : links)
      total += std::stoll(testing::ReadFile("/sys/class/net/" + link + "/statistics/rx_packets"));
    return total;
  }

  // 20 broadcast frames from host 0 (raw, so nothing answers them) while
  // counting what the switches receive: with a loop open each would circle
  // forever (millions of frames).
  long long FramesDuringBroadcasts(const std::vector<std::string>& networks,
                                   const std::vector<std::string>& kernel_links,
                                   const std::string& host_dev) {
    const long long before = SwitchRx(networks) + KernelRx(kernel_links);
    const std::string script =
        "import socket, time\n"
        "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
        "s.bind(('" +
        host_dev +
        "', 0))\n"
        "for i in range(20):\n"
        "    s.send(b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x77\\x01' + b'\\x88\\xb5' + bytes(46))\n"
        "    time.sleep(0.02)\n";
    CommandResult sent = Cmd({"ip", "netns", "exec", hosts_[0]->name(), "python3", "-c", script});
    EXPECT_EQ(sent.exit_code, 0) << sent.err;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return SwitchRx(networks) + KernelRx(kernel_links) - before;
  }

  // iproute2 prints bridge ids as "1000.76:b:cf:9:fe:bd"; netd and sysfs as
  // "1000.760bcf09febd".
  static std::string FromIproute2(const std::string& id) {
    const size_t dot = id.find('.');
    if (dot == std::string::npos) return id;
    std::string out = id.substr(0, dot + 1);
    size_t start = dot + 1;
    while (start <= id.size()) {
      size_t end = id.find(':', start);
      if (end == std::string::npos) end = id.size();
      char byte[4];
      std::snprintf(byte, sizeof byte, "%02lx",
                    std::stoul(id.substr(start, end - start), nullptr, 16));
      out += byte;
      start = end + 1;
    }
    return out;
  }

  // The BPDUs `link` receives, as tshark's STP dissector reads them.
  std::vector<std::string> TsharkBpdus(const std::string& link, int count) {
    auto capture = testing::Run({"timeout",
                                 "30",
                                 "tshark",
                                 "-i",
                                 link,
                                 "-c",
                                 std::to_string(count),
                                 "-a",
                                 "duration:25",
                                 "-f",
                                 "ether dst 01:80:c2:00:00:00",
                                 "-T",
                                 "fields",
                                 "-E",
                                 "separator=,",
                                 "-e",
                                 "stp.version",
                                 "-e",
                                 "stp.type",
                                 "-e",
                                 "stp.root.prio",
                                 "-e",
                                 "stp.root.hw",
                                 "-e",
                                 "stp.root.cost",
                                 "-e",
                                 "stp.bridge.prio",
                                 "-e",
                                 "stp.bridge.hw",
                                 "-e",
                                 "stp.port",
                                 "-e",
                                 "stp.flags.port_role",
                                 "-e",
                                 "stp.flags.forwarding",
                                 "-e",
                                 "stp.hello"});
    EXPECT_EQ(capture.exit_code, 0) << capture.err;
    std::vector<std::string> lines;
    size_t start = 0, end;
    while ((end = capture.out.find('\n', start)) != std::string::npos) {
      lines.push_back(capture.out.substr(start, end - start));
      start = end + 1;
    }
    return lines;
  }

  // "1000.0242ac110002" -> priority 4096 and "02:42:ac:11:00:02".
  static std::pair<std::string, std::string> SplitBridgeId(const std::string& id) {
    const std::string priority = std::to_string(std::stoul(id.substr(0, 4), nullptr, 16));
    std::string mac;
    for (size_t i = 5; i + 1 < id.size(); i += 2) {
      if (!mac.empty()) mac += ':';
      mac += id.substr(i, 2);
    }
    return {priority, mac};
  }

  void Write(const json& networks) {
    std::ofstream(config_) << json{{"networks", networks}}.dump(2);
  }

  std::string config_;
  std::vector<std::unique_ptr<testing::ScopedNamedNetns>> hosts_;
};

json UserspaceNetwork(const std::string& name, int priority, json ports) {
  return {{"name", name},
          {"datapath", "userspace"},
          {"stp",
           {{"enabled", true},
            {"priority", priority},
            {"hello_time", 2},
            {"forward_delay", 4},
            {"max_age", 6}}},
          {"ports", std::move(ports)}};
}

json Existing(const std::string& name) { return {{"name", name}, {"kind", "existing"}}; }

// Three userspace switches in a ring, RSTP only. r1 is root by priority;
// r2 and r3 take their ports towards r1 as root ports; on the r2-r3 link r2
// (the better bridge) is designated and r3's port is the one alternate,
// discarding. tshark reads r2's RST BPDUs as netctl reports r2's view.
// Setting the r1-r2 cable down makes r2 reach the root through r3.
TEST_F(UserspaceStpTest, RingOfThreeUserspaceSwitchesInRstp) {
  Cable("r12a", "r12b");
  Cable("r23a", "r23b");
  Cable("r31a", "r31b");
  json h1 = HostPort("h1"), h2 = HostPort("h2"), h3 = HostPort("h3");
  for (json* h : {&h1, &h2, &h3}) (*h)["edge"] = true;
  Write({UserspaceNetwork("r1", 4096, {Existing("r12a"), Existing("r31b"), h1}),
         UserspaceNetwork("r2", 8192, {Existing("r12b"), Existing("r23a"), h2}),
         UserspaceNetwork("r3", 12288, {Existing("r23b"), Existing("r31a"), h3})});
  Start(config_);
  SetUpHosts({"h1", "h2", "h3"});

  // RSTP converges by proposal/agreement: no forward-delay wait.
  const bool converged = WaitFor(
      [&] {
        return Field(Stp("r2"), "r12b", "role") == "root" &&
               Field(Stp("r3"), "r31a", "role") == "root" &&
               Field(Stp("r3"), "r23b", "role") == "alternate" &&
               Field(Stp("r2"), "r23a", "state") == "forwarding" &&
               Field(Stp("r3"), "r31a", "state") == "forwarding";
      },
      10000);
  json r1 = Stp("r1"), r2 = Stp("r2"), r3 = Stp("r3");
  ASSERT_TRUE(converged) << r1.dump(1) << r2.dump(1) << r3.dump(1) << Log();
  EXPECT_EQ(r1["is_root"], true);
  EXPECT_EQ(r1["mode"], "rstp");
  EXPECT_EQ(r2["root_id"], r1["bridge_id"]);
  EXPECT_EQ(r3["root_id"], r1["bridge_id"]);
  EXPECT_EQ(r2["root_port_name"], "r12b");
  EXPECT_EQ(r3["root_port_name"], "r31a");
  // Exactly one port of the ring discards.
  int discarding = 0;
  for (const json* stp : {&r1, &r2, &r3})
    for (const json& port : (*stp)["ports"]) {
      if (port["state"] != "forwarding") {
        ++discarding;
        EXPECT_EQ(port["name"], "r23b") << port.dump();
      }
      EXPECT_EQ(port["protocol"], "rstp") << port.dump();
    }
  EXPECT_EQ(discarding, 1);
  for (size_t a = 0; a < 3; ++a)
    for (size_t b = a + 1; b < 3; ++b) EXPECT_TRUE(Ping(a, b)) << a << "->" << b << "\n" << Log();

  // The wire, decoded independently: what r3's alternate port receives is
  // r2's designated RST BPDU on r23a.
  const std::vector<std::string> bpdus = TsharkBpdus("r23b", 1);
  ASSERT_EQ(bpdus.size(), 1u);
  r2 = Stp("r2");
  const auto [root_prio, root_mac] = SplitBridgeId(r1["bridge_id"]);
  const auto [bridge_prio, bridge_mac] = SplitBridgeId(r2["bridge_id"]);
  char port_id[8];
  std::snprintf(port_id, sizeof port_id, "0x%04x", Port(r2, "r23a")["port_id"].get<int>());
  // version 2 (RSTP), type 0x02 (RST), root, root path cost as r2 reports
  // it, r2's bridge id, r23a's port id, role designated (3), forwarding.
  EXPECT_EQ(bpdus[0], "2,0x02," + root_prio + "," + root_mac + "," +
                          std::to_string(r2["root_path_cost"].get<long long>()) + "," +
                          bridge_prio + "," + bridge_mac + "," + port_id + ",3,1,2")
      << r2.dump(1);

  // No storm: 20 broadcasts make at most a handful of frames per link.
  const long long frames = FramesDuringBroadcasts({"r1", "r2", "r3"}, {}, "h1-p");
  EXPECT_GE(frames, 20);
  EXPECT_LT(frames, 20 * 6 + 40) << "a loop is open";

  // Unplug r1-r2: r2's root port loses carrier; r2 reaches r1 through r3,
  // whose port on that link turns designated and forwarding.
  ASSERT_EQ(Cmd({"ip", "link", "set", "r12a", "down"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return Field(Stp("r2"), "r23a", "role") == "root"; }, 10000))
      << Stp("r2").dump(1) << Log();
  EXPECT_TRUE(WaitFor([&] { return Ping(1, 0, 1); }, 10000)) << Stp("r3").dump(1);
  EXPECT_EQ(Field(Stp("r3"), "r23b", "role"), "designated");
  EXPECT_THAT(Log(), HasSubstr("port r12b link down"));
}

// A loop of two userspace switches (RSTP) and a Linux bridge (kernel
// STP, the root): the userspace ports facing the kernel bridge fall back
// to 802.1D STP, both sides agree on the root, exactly the userspace port
// u2/b2 blocks, and unplugging u2's root port moves u2's traffic to b2.
TEST_F(UserspaceStpTest, LoopWithAKernelBridgeAgreesOnTheRootAndReroutes) {
  Cable("a1", "k1");  // u1 - kb
  Cable("b1", "k2");  // u2 - kb
  Cable("a2", "b2");  // u1 - u2
  json h1 = HostPort("hu1"), h2 = HostPort("hu2"), hk = HostPort("hk");
  h1["edge"] = true;
  h2["edge"] = true;
  json kernel = {{"name", "kb"},
                 {"bridge", "vfb-kb"},
                 {"stp",
                  {{"enabled", true},
                   {"priority", 4096},
                   {"hello_time", 2},
                   {"forward_delay", 4},
                   {"max_age", 6}}},
                 {"ports", {Existing("k1"), Existing("k2"), hk}}};
  Write({UserspaceNetwork("u1", 8192, {Existing("a1"), Existing("a2"), h1}),
         UserspaceNetwork("u2", 12288, {Existing("b1"), Existing("b2"), h2}), kernel});
  Start(config_);
  SetUpHosts({"hu1", "hu2", "hk"});

  // The kernel's designated ports need listening + learning (2 x 4 s).
  const bool converged = WaitFor(
      [&] {
        json kb = Stp("kb"), u2 = Stp("u2");
        return Field(kb, "k1", "state") == "forwarding" &&
               Field(kb, "k2", "state") == "forwarding" &&
               Field(kb, "hk", "state") == "forwarding" && Field(u2, "b1", "role") == "root" &&
               Field(u2, "b2", "role") == "alternate" && Field(u2, "b1", "state") == "forwarding";
      },
      30000);
  json kb = Stp("kb"), u1 = Stp("u1"), u2 = Stp("u2");
  ASSERT_TRUE(converged) << kb.dump(1) << u1.dump(1) << u2.dump(1) << Log();

  // The root, as every view has it.
  const std::string root = kb["bridge_id"];
  EXPECT_EQ(kb["is_root"], true);
  EXPECT_EQ(kb["root_id"], root);
  EXPECT_EQ(testing::ReadFile("/sys/class/net/vfb-kb/bridge/root_id"), root + "\n");
  json ip = testing::Link("vfb-kb");
  EXPECT_EQ(FromIproute2(ip["linkinfo"]["info_data"].value("root_id", "")), root) << ip.dump();
  EXPECT_EQ(u1["root_id"], root);
  EXPECT_EQ(u2["root_id"], root);
  EXPECT_EQ(u1["root_port_name"], "a1");
  EXPECT_EQ(u2["root_port_name"], "b1");
  // Towards the kernel bridge the userspace ports speak 802.1D STP; between
  // themselves RSTP.
  EXPECT_EQ(Field(u1, "a1", "protocol"), "stp");
  EXPECT_EQ(Field(u2, "b1", "protocol"), "stp");
  EXPECT_EQ(Field(u1, "a2", "protocol"), "rstp");
  EXPECT_EQ(Field(u2, "b2", "protocol"), "rstp");
  // Exactly one port blocks: u2's b2. The kernel's ports all forward.
  EXPECT_EQ(Field(u1, "a2", "role"), "designated");
  EXPECT_EQ(Field(u2, "b2", "state"), "discarding");
  for (const json* stp : {&kb, &u1, &u2})
    for (const json& port : (*stp)["ports"])
      if (port["name"] != "b2") {
        EXPECT_EQ(port["state"], "forwarding") << port.dump();
      }
  // iproute2's view of the kernel ports.
  EXPECT_EQ(testing::BridgePort("k1").value("state", ""), "forwarding");
  EXPECT_EQ(testing::BridgePort("k2").value("state", ""), "forwarding");

  // tshark on k1: u1 sends nothing there (its root port; STP root ports
  // stay quiet) but receives the kernel's Config BPDUs; on a1 we see them
  // arrive as the userspace switch does. Check the Config BPDU u1 takes
  // its root from.
  const std::vector<std::string> bpdus = TsharkBpdus("a1", 1);
  ASSERT_EQ(bpdus.size(), 1u);
  const auto [root_prio, root_mac] = SplitBridgeId(root);
  EXPECT_THAT(bpdus[0], ::testing::StartsWith("0,0x00," + root_prio + "," + root_mac + ",0," +
                                              root_prio + "," + root_mac + ","));

  for (size_t a = 0; a < 3; ++a)
    for (size_t b = a + 1; b < 3; ++b) EXPECT_TRUE(Ping(a, b)) << a << "->" << b << "\n" << Log();
  const long long frames = FramesDuringBroadcasts({"u1", "u2"}, {"k1", "k2", "hk"}, "hu1-p");
  EXPECT_GE(frames, 20);
  EXPECT_LT(frames, 20 * 6 + 40) << "a loop is open";

  // Unplug u2's root port at the kernel's end: b1 loses carrier, u2's
  // alternate b2 becomes its root port at once (RSTP), hu2 reaches hk
  // through u1.
  ASSERT_EQ(Cmd({"ip", "link", "set", "k2", "down"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return Field(Stp("u2"), "b2", "role") == "root"; }, 10000))
      << Stp("u2").dump(1) << Log();
  EXPECT_TRUE(WaitFor([&] { return Ping(1, 2, 1); }, 15000)) << Stp("u2").dump(1);
  EXPECT_EQ(Stp("u2")["root_id"], root);
}

// A userspace switch with STP off, cabled to a Linux bridge running STP: it
// forwards (nothing blocks) and counts the BPDUs it hears as ignored, which
// stp.show reports so an operator sees that a neighbour runs STP.
TEST_F(UserspaceStpTest, WithStpOffTheBpdusItHearsAreCountedAsIgnored) {
  Cable("a1", "k1");
  json kernel = {
      {"name", "kb"},
      {"bridge", "vfb-kb"},
      {"stp", {{"enabled", true}, {"hello_time", 1}, {"forward_delay", 4}, {"max_age", 6}}},
      {"ports", {Existing("k1")}}};
  json off = {{"name", "u0"}, {"datapath", "userspace"}, {"ports", {Existing("a1")}}};
  Write({off, kernel});
  Start(config_);
  // The kernel bridge sends a Config BPDU every hello time (1 s).
  ASSERT_TRUE(WaitFor([&] { return Stp("u0").value("bpdus_ignored", 0) >= 2; }, 10000))
      << Stp("u0").dump(1) << Log();
  const json u0 = Stp("u0");
  EXPECT_EQ(u0["enabled"], false);
  EXPECT_EQ(Field(u0, "a1", "state"), "forwarding");
  // Once the tree runs, BPDUs go to it: the ignored count stops growing.
  json on = off;
  on["stp"] = {{"enabled", true}, {"hello_time", 2}, {"forward_delay", 4}, {"max_age", 6}};
  Write({on, kernel});
  netd_->Signal(SIGHUP);  // re-read the config
  ASSERT_TRUE(WaitFor([&] { return Stp("u0").value("enabled", false); }, 10000)) << Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        const json now = Stp("u0");
        return now.contains("counters") && now["counters"].value("bpdus_in", 0) >= 2;
      },
      10000))
      << Stp("u0").dump(1) << Log();
  const long long ignored = Stp("u0").value("bpdus_ignored", 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(Stp("u0").value("bpdus_ignored", 0), ignored) << "BPDUs ignored while the tree runs";
}

}  // namespace
}  // namespace vfabric
