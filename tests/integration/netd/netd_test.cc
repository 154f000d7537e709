// netd against the real kernel: each test runs in a private network namespace
// of its own, starts the netd binary there, and checks the host twice over:
// through netd's control socket and through iproute2's JSON output.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"

namespace vfabric {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ScopedProcess;
using testing::TempDir;
using testing::WaitFor;

using testing::Ask;
using testing::BridgePort;
using testing::Cmd;
using testing::IpJson;
using testing::Link;
using testing::LinkExists;
using testing::Request;

class NetdTest : public testing::NetdFixture {};

TEST_F(NetdTest, AppliesTheExamplesAndIproute2AgreesWithNetctl) {
  Start(Configs());
  json bridge = Link("vfb-lab");
  ASSERT_TRUE(bridge.is_object());
  EXPECT_EQ(bridge["ifalias"], "vfabric:lab");
  const json& info = bridge["linkinfo"]["info_data"];
  EXPECT_EQ(bridge["linkinfo"]["info_kind"], "bridge");
  EXPECT_EQ(info["stp_state"], 1);
  EXPECT_EQ(info["priority"], 4096);
  EXPECT_EQ(info["hello_time"], 200);
  EXPECT_EQ(info["forward_delay"], 400);
  EXPECT_EQ(info["max_age"], 600);
  EXPECT_EQ(info["ageing_time"], 12000);
  EXPECT_THAT(bridge["flags"], ::testing::Contains("UP"));

  json tap = Link("vm2-eth0");
  EXPECT_EQ(tap["linkinfo"]["info_kind"], "tun");
  EXPECT_EQ(tap["linkinfo"]["info_data"]["type"], "tap");
  EXPECT_EQ(tap["linkinfo"]["info_data"]["persist"], true);
  EXPECT_EQ(tap["linkinfo"]["info_data"]["multi_queue"], true);
  EXPECT_EQ(tap["linkinfo"]["info_data"]["vnet_hdr"], true);
  EXPECT_EQ(tap["linkinfo"]["info_data"]["user"], "root");
  EXPECT_EQ(tap["master"], "vfb-lab");

  json uplink = BridgePort("lab-up0");
  EXPECT_EQ(uplink["master"], "vfb-lab");
  EXPECT_EQ(uplink["cost"], 4);
  EXPECT_EQ(uplink["priority"], 8);
  EXPECT_EQ(uplink["root_block"], true);
  EXPECT_EQ(BridgePort("vm1-eth0")["guard"], true);
  EXPECT_EQ(BridgePort("edge-tap0")["hairpin"], true);
  EXPECT_EQ(BridgePort("edge-tap2")["learning"], false);
  EXPECT_EQ(BridgePort("edge-tap2")["isolated"], true);

  int statics = 0;
  for (const json& entry : IpJson({"bridge", "-j", "fdb", "show", "br", "vfb-lab"})) {
    if (entry.value("state", "") != "static") continue;
    ++statics;
    if (entry["mac"] == "52:54:00:00:01:01") {
      EXPECT_EQ(entry["ifname"], "vm1-eth0");
    } else {
      EXPECT_EQ(entry["mac"], "52:54:00:00:01:02");
      EXPECT_EQ(entry["ifname"], "vm2-eth0");
    }
  }
  EXPECT_EQ(statics, 2);

  // netd's own read-back says the same.
  json ports = Ok(Request("port.list", {{"network", "lab"}}))["ports"];
  ASSERT_EQ(ports.size(), 3u);
  for (const json& port : ports) {
    json kernel = BridgePort(port["name"]);
    EXPECT_EQ(port["master"], kernel["master"]) << port.dump();
    EXPECT_EQ(port["cost"], kernel["cost"]) << port.dump();
    EXPECT_EQ(port["priority"], kernel["priority"]) << port.dump();
    EXPECT_EQ(port["stp_state"], kernel["state"]) << port.dump();
    EXPECT_EQ(port["bpdu_guard"], kernel["guard"]) << port.dump();
    EXPECT_EQ(port["root_block"], kernel["root_block"]) << port.dump();
  }
  json networks = Ok(Request("network.list"))["networks"];
  ASSERT_EQ(networks.size(), 3u);
  for (const json& network : networks) EXPECT_EQ(network["state"], "ok") << network.dump();

  json fdb = Ok(Request("fdb.show", {{"network", "lab"}}))["entries"];
  int netd_statics = 0;
  for (const json& entry : fdb) netd_statics += entry["static"] == true && entry["local"] == false;
  EXPECT_EQ(netd_statics, 2);

  // And netctl, the operator's view, prints it.
  auto table =
      Cmd({testing::BinaryDir() + "/netctl/netctl", "--socket", socket_, "network", "list"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("vfb-lab"));
  EXPECT_THAT(table.out, HasSubstr("vfb-edge"));

  // The userspace example: its switch runs the links netd made, with the
  // VLANs and the static entry of configs/fabric.json.
  EXPECT_EQ(Link("fab-vm1")["linkinfo"]["info_data"]["type"], "tap");
  EXPECT_FALSE(Link("fab-up0").contains("master")) << "a userspace port is on no bridge";
  json fabric_ports = Ok(Request("port.list", {{"network", "fabric"}}))["ports"];
  ASSERT_EQ(fabric_ports.size(), 3u);
  for (const json& port : fabric_ports) EXPECT_FALSE(port["switch_port"].is_null()) << port.dump();
  json fabric_vlans = Ok(Request("vlan.show", {{"network", "fabric"}}));
  EXPECT_THAT(fabric_vlans.dump(), HasSubstr("\"pvid\":20")) << fabric_vlans.dump();
  // Static entries only: the taps' host sides send frames of their own
  // (IPv6 multicast), which the switch may have learned by now.
  const json fabric_fdb = Ok(Request("fdb.show", {{"network", "fabric"}}));
  json fabric_statics = json::array();
  for (const json& entry : fabric_fdb["entries"])
    if (entry["static"] == true) fabric_statics.push_back(entry);
  ASSERT_EQ(fabric_statics.size(), 1u) << fabric_fdb.dump();
  EXPECT_EQ(fabric_statics[0]["mac"], "52:54:00:00:0a:01");
  EXPECT_EQ(fabric_statics[0]["port"], "fab-vm1");
  EXPECT_EQ(fabric_statics[0]["vlan"], 10) << "the port's untagged VLAN";
}

// The taps of a userspace network get carrier when its switch opens them,
// during the first apply; the spanning tree must learn that then (an edge
// port forwards at once), not at the next full resync 30 s later. Alone,
// the userspace example makes no other link event that would hide a lost
// one (the kernel examples' bridges do, as their ports change STP state).
// Before netd listened for link events from the start, the VM ports
// dropped everything until that resync.
TEST_F(NetdTest, AUserspaceNetworkForwardsOnItsTapsFromTheStart) {
  Start(Configs() + "/fabric.json");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        json stp = Ok(Request("stp.show", {{"network", "fabric"}}))["stp"];
        for (const json& port : stp["ports"])
          if (port["state"] != "forwarding") return false;
        return true;
      },
      10000))
      << Ok(Request("stp.show", {{"network", "fabric"}})).dump();
}

// Static entries added at run time (netctl fdb add/del) on a userspace
// network: one the port's VLANs could never use is refused, and so are
// changes to the topology's own entries, which the next resync would undo.
TEST_F(NetdTest, RuntimeStaticEntriesFitThePortAndLeaveTheTopologysAlone) {
  Start(Configs() + "/fabric.json");
  auto add = [&](const std::string& mac, const std::string& port, int vlan) {
    json args = {{"network", "fabric"}, {"mac", mac}, {"port", port}};
    if (vlan != 0) args["vlan"] = vlan;
    return testing::Ask(socket_, Request("fdb.add", args));
  };
  json access = add("52:54:00:00:0b:01", "fab-vm2", 10);
  EXPECT_EQ(access["ok"], false) << access.dump();
  EXPECT_THAT(access["error"]["message"].get<std::string>(),
              HasSubstr("fab-vm2 of network fabric is not in VLAN 10 (access VLAN 20)"));
  json trunk = add("52:54:00:00:0b:01", "fab-up0", 30);
  EXPECT_THAT(trunk["error"]["message"].get<std::string>(),
              HasSubstr("not in VLAN 30 (trunk 10,20, native 1)"));
  EXPECT_EQ(add("52:54:00:00:0b:01", "fab-up0", 20)["ok"], true);
  EXPECT_EQ(add("52:54:00:00:0b:02", "fab-up0", 0)["ok"], true) << "the native VLAN";
  // The topology's entry (52:54:00:00:0a:01, VLAN 10, fab-vm1) stays as it is.
  json moved = add("52:54:00:00:0a:01", "fab-up0", 10);
  EXPECT_EQ(moved["ok"], false) << moved.dump();
  EXPECT_THAT(moved["error"]["message"].get<std::string>(),
              HasSubstr("is a static entry of the topology (on fab-vm1)"));
  json del = testing::Ask(
      socket_, Request("fdb.del", {{"network", "fabric"}, {"mac", "52:54:00:00:0a:01"}}));
  EXPECT_EQ(del["ok"], false) << del.dump();
  EXPECT_THAT(del["error"]["message"].get<std::string>(), HasSubstr("remove it from the topology"));
  int kept = 0;
  const json fdb = Ok(Request("fdb.show", {{"network", "fabric"}}));
  for (const json& e : fdb["entries"])
    kept += e["mac"] == "52:54:00:00:0a:01" && e["port"] == "fab-vm1" && e["vlan"] == 10;
  EXPECT_EQ(kept, 1);
  // The same MAC in another VLAN is an entry of its own, the operator's.
  EXPECT_EQ(add("52:54:00:00:0a:01", "fab-up0", 20)["ok"], true);
  json del20 = testing::Ask(
      socket_,
      Request("fdb.del", {{"network", "fabric"}, {"mac", "52:54:00:00:0a:01"}, {"vlan", 20}}));
  EXPECT_EQ(del20["ok"], true) << del20.dump();
  // It says what it removed (issue 18).
  EXPECT_EQ(del20["result"]["count"], 1) << del20.dump();
  EXPECT_EQ(del20["result"]["removed"], json::array({{{"mac", "52:54:00:00:0a:01"},
                                                      {"vlan", 20},
                                                      {"port", "fab-up0"},
                                                      {"static", true},
                                                      {"local", false}}}));
  // The topology changes under a run-time entry: the uplink stops carrying
  // VLAN 20, and the entry added there in VLAN 20 goes with it.
  std::string text = testing::ReadFile(Configs() + "/fabric.json");
  const std::string trunk_vlans = "\"allowed\": \"10,20\"";
  ASSERT_NE(text.find(trunk_vlans), std::string::npos);
  text.replace(text.find(trunk_vlans), trunk_vlans.size(), "\"allowed\": \"10\"");
  Ok(Request("apply", {{"files", json::array({{{"name", "fabric.json"}, {"text", text}}})}}));
  int in_vlan20 = 0, native = 0;
  const json after = Ok(Request("fdb.show", {{"network", "fabric"}}));
  for (const json& e : after["entries"]) {
    in_vlan20 += e["mac"] == "52:54:00:00:0b:01";
    native += e["mac"] == "52:54:00:00:0b:02";
  }
  EXPECT_EQ(in_vlan20, 0) << after.dump();
  EXPECT_EQ(native, 1) << "the native VLAN is still carried" << after.dump();
  EXPECT_THAT(Log(), HasSubstr("static FDB entry 52:54:00:00:0b:01 (VLAN 20) removed: port fab-up0 "
                               "is no longer in that VLAN"));
}

TEST_F(NetdTest, ARestartAdoptsWhatExistsAndChangesNothing) {
  Start(Configs());
  const int bridge_index = Link("vfb-lab")["ifindex"];
  const int tap_index = Link("vm1-eth0")["ifindex"];
  EXPECT_EQ(Stop(), 0);
  // SIGTERM leaves persistent taps and bridges in place, and the socket goes.
  EXPECT_TRUE(LinkExists("vm1-eth0"));
  EXPECT_FALSE(std::filesystem::exists(socket_));

  Start(Configs());
  EXPECT_THAT(Log(), HasSubstr("applied " + Configs() + ": 0 operations"));
  EXPECT_EQ(Link("vfb-lab")["ifindex"], bridge_index);
  EXPECT_EQ(Link("vm1-eth0")["ifindex"], tap_index);
  json plan = Ok(Request(
      "plan", {{"files", json::array({{{"name", "lab.json"},
                                       {"text", testing::ReadFile(Configs() + "/lab.json")}}})}}));
  EXPECT_EQ(plan["operations"].size(), 0u) << plan.dump();
}

TEST_F(NetdTest, RepairsDriftWithinASecond) {
  Start(Configs());
  ASSERT_EQ(Cmd({"ip", "link", "del", "vm1-eth0"}).exit_code, 0);
  ASSERT_EQ(Cmd({"ip", "link", "set", "vm2-eth0", "nomaster"}).exit_code, 0);
  const auto start = std::chrono::steady_clock::now();
  // The requirement is "within a second"; the bound here is loose on purpose
  // (tests never assert wall-clock times); the figure is printed.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Link("vm1-eth0").value("master", "") == "vfb-lab" &&
               Link("vm2-eth0").value("master", "") == "vfb-lab" &&
               BridgePort("vm2-eth0").value("cost", 0) == 100;
      },
      10000))
      << Log();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::printf("drift repaired in %lld ms\n", static_cast<long long>(ms));
  EXPECT_THAT(Log(), HasSubstr("repair: drift: create tap vm1-eth0"));
  EXPECT_THAT(Log(), HasSubstr("repair: drift: attach vm2-eth0 to bridge vfb-lab"));
  // The static FDB entries that went with the ports are back too.
  ASSERT_TRUE(WaitFor(
      [&] {
        int statics = 0;
        for (const json& entry : IpJson({"bridge", "-j", "fdb", "show", "br", "vfb-lab"}))
          statics += entry.value("state", "") == "static";
        return statics == 2;
      },
      5000));
}

TEST_F(NetdTest, ReloadRemovesWhatLeftTheConfigAndNeverTouchesForeignLinks) {
  const std::string config = dir_.Join("lab.json");
  std::filesystem::copy_file(Configs() + "/lab.json", config);
  ASSERT_EQ(Cmd({"ip", "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign0-p"})
                .exit_code,
            0);
  Start(config);
  ASSERT_TRUE(LinkExists("vm2-eth0"));
  // Someone else puts their own link on our bridge.
  ASSERT_EQ(Cmd({"ip", "link", "set", "foreign0", "master", "vfb-lab"}).exit_code, 0);

  json lab = json::parse(testing::ReadFile(config));
  auto& ports = lab["networks"][0]["ports"];
  ports.erase(2);  // vm2-eth0
  lab["networks"][0]["fdb"]["static"].erase(1);
  testing::WriteFile(config, lab.dump(2));
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return !LinkExists("vm2-eth0"); }, 10000)) << Log();
  // Theirs, not ours (issue 18: libvirt's vnetN): left on the bridge, shown
  // as foreign, even after another pass.
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_EQ(Cmd({"ip", "link", "del", "vm1-eth0"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return LinkExists("vm1-eth0"); }, 10000)) << Log();
  EXPECT_EQ(Link("foreign0").value("master", ""), "vfb-lab");
  json listed = Ok(Request("port.list", {{"network", "lab"}}))["ports"];
  ASSERT_FALSE(listed.empty());
  EXPECT_EQ(listed.back()["name"], "foreign0");
  EXPECT_EQ(listed.back()["kind"], "foreign");

  // An empty configuration takes everything netd made away.
  testing::WriteFile(config, R"({"networks": []})");
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return !LinkExists("vfb-lab"); }, 10000)) << Log();
  EXPECT_TRUE(LinkExists("foreign0"));  // off the deleted bridge, never deleted
  EXPECT_FALSE(Link("foreign0").contains("master"));
  EXPECT_FALSE(LinkExists("vm1-eth0"));
  EXPECT_FALSE(LinkExists("lab-up0"));
  EXPECT_FALSE(LinkExists("lab-up0-p"));
  EXPECT_TRUE(LinkExists("foreign0"));
}

// A config file that became a dangling symlink (moved away mid-deployment)
// is an error at SIGHUP like any invalid configuration: the old one is kept
// and the networks that file held stay, instead of being deleted as if the
// file were not there.
TEST_F(NetdTest, ReloadWithADanglingSymlinkKeepsTheNetworks) {
  const std::string configs = dir_.Join("configs");
  ASSERT_TRUE(std::filesystem::create_directory(configs));
  std::filesystem::copy_file(Configs() + "/lab.json", configs + "/lab.json");
  std::filesystem::copy_file(Configs() + "/edge.json", configs + "/edge.json");
  Start(configs);
  ASSERT_TRUE(LinkExists("vfb-edge"));
  ASSERT_TRUE(LinkExists("edge-tap0"));

  const std::string edge = configs + "/edge.json";
  ASSERT_EQ(unlink(edge.c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/edge.json", edge.c_str()), 0);
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return Log().find("reload: ") != std::string::npos; }, 10000)) << Log();
  EXPECT_THAT(Log(),
              HasSubstr(edge + ": dangling symbolic link to \"/nonexistent/edge.json\" (No such "
                               "file or directory)"));
  EXPECT_THAT(Log(), HasSubstr("keeping the old configuration"));
  EXPECT_TRUE(LinkExists("vfb-edge"));
  EXPECT_TRUE(LinkExists("edge-tap0"));
  EXPECT_EQ(Ok(Request("network.list"))["networks"].size(), 2u);

  // Removing the file for real is a change netd then applies.
  ASSERT_EQ(unlink(edge.c_str()), 0);
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  ASSERT_TRUE(WaitFor([&] { return !LinkExists("vfb-edge"); }, 10000)) << Log();
  EXPECT_TRUE(LinkExists("vfb-lab"));
}

// A FIFO given as the configuration is refused at once; opening it for
// reading would wait for a writer forever.
TEST_F(NetdTest, AFifoConfigurationIsRefusedWithoutBlocking) {
  const std::string fifo = dir_.Join("pipe.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ScopedProcess netd({Netd(), "--config", fifo, "--socket", socket_, "--run-dir", run_dir()}, log_);
  const int status = netd.Wait(10000);
  ASSERT_NE(status, -1) << "netd blocked on the FIFO\n" << Log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_THAT(Log(), HasSubstr(fifo + ": not a regular file (a FIFO)"));
  EXPECT_FALSE(std::filesystem::exists(socket_));
}

TEST_F(NetdTest, AFailedApplyIsUndoneCompletely) {
  Start(Configs());
  const std::string before = Cmd({"ip", "-br", "link"}).out;
  // The veth's peer goes to a "namespace" that is a plain file: plan finds
  // it (a namespace that does not exist at all is refused before anything
  // is done), and the kernel refuses the move after the bridge and taps
  // were made. The file is the host's /run/netns, so it goes at the end.
  const std::string netns = "vfabric-not-a-netns-" + std::to_string(::getpid());
  const std::string netns_path = "/run/netns/" + netns;
  ASSERT_EQ(Cmd({"mkdir", "-p", "/run/netns"}).exit_code, 0);
  testing::WriteFile(netns_path, "");
  struct RemoveFile {
    std::string path;
    ~RemoveFile() { ::unlink(path.c_str()); }
  } remove_netns{netns_path};
  const std::string text = R"({"networks": [{"name": "doomed", "bridge": "vfb-doomed",
      "stp": {"enabled": true},
      "ports": [{"name": "d-tap0"}, {"name": "d-tap1", "cost": 7},
                {"name": "d-up0", "kind": "veth", "peer": "d-up0-p",
                 "peer_netns": ")" +
                           netns + R"("}]}]})";
  json answer =
      Ask(socket_,
          Request("apply", {{"files", json::array({{{"name", "doomed.json"}, {"text", text}}})}}));
  ASSERT_EQ(answer["ok"], false) << answer.dump();
  EXPECT_EQ(answer["error"]["code"], "failed");
  const std::string message = answer["error"]["message"];
  EXPECT_THAT(message, HasSubstr("move d-up0-p to netns " + netns));
  EXPECT_THAT(message, HasSubstr("(undid "));
  EXPECT_EQ(Cmd({"ip", "-br", "link"}).out, before);
  for (const char* name : {"vfb-doomed", "d-tap0", "d-tap1", "d-up0", "d-up0-p"})
    EXPECT_FALSE(LinkExists(name)) << name;
  // And netd does not keep the failed network as desired.
  EXPECT_EQ(Ok(Request("network.list"))["networks"].size(), 3u);
}

TEST_F(NetdTest, ForeignLinksWithOurNamesAreRefused) {
  ASSERT_EQ(Cmd({"ip", "link", "add", "vm1-eth0", "type", "veth", "peer", "name", "vm1-eth0-p"})
                .exit_code,
            0);
  netd_ = std::make_unique<ScopedProcess>(
      std::vector<std::string>{Netd(), "--config", Configs(), "--socket", socket_}, log_);
  const int status = netd_->Wait(10000);
  ASSERT_TRUE(WIFEXITED(status)) << Log();
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_THAT(Log(), HasSubstr("port vm1-eth0 of network lab: a link named vm1-eth0 exists and "
                               "was not made by vfabric (kind veth)"));
  EXPECT_EQ(Link("vm1-eth0")["linkinfo"]["info_kind"], "veth");
  EXPECT_FALSE(LinkExists("vfb-lab"));
}

TEST_F(NetdTest, KernelFeaturesAreCheckedBeforeAnythingIsApplied) {
  Start(Configs());
  const std::string text = R"({"networks": [{"name": "vl", "vlan": {"filtering": true},
      "ports": [{"name": "vl-tap0", "vlan": {"mode": "access", "pvid": 10}}]}]})";
  json answer = Ask(
      socket_, Request("apply", {{"files", json::array({{{"name", "vl.json"}, {"text", text}}})}}));
  json vlan = Ok(Request("vlan.show", {{"network", "lab"}}))["vlan"];
  if (vlan["supported"] == true) {
    EXPECT_EQ(answer["ok"], true) << answer.dump();
    json vlans = IpJson({"bridge", "-j", "vlan", "show", "dev", "vl-tap0"});
    EXPECT_THAT(vlans.dump(), HasSubstr("\"vlan\":10"));
    return;
  }
  ASSERT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["error"]["code"], "unsupported");
  EXPECT_THAT(answer["error"]["message"].get<std::string>(),
              HasSubstr("network vl: bridge VLAN filtering is not supported by this kernel"));
  EXPECT_THAT(answer["error"]["message"].get<std::string>(),
              HasSubstr("\"datapath\": \"userspace\""));
  EXPECT_FALSE(LinkExists("vfb-vl"));
  EXPECT_FALSE(LinkExists("vl-tap0"));
}

TEST_F(NetdTest, AnInvalidConfigurationStopsNetdBeforeItTouchesAnything) {
  const std::string config = dir_.Join("bad.json");
  testing::WriteFile(config,
                     "{\n  \"networks\": [\n    {\"name\": \"x\", \"brigde\": \"b0\"}\n  ]\n}\n");
  auto result = Cmd({Netd(), "--config", config, "--socket", socket_});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr(config + ":3:"));
  EXPECT_THAT(result.err, HasSubstr("/networks/0"));
  EXPECT_THAT(result.err, HasSubstr("did you mean \"bridge\""));
  EXPECT_FALSE(LinkExists("vfb-x"));
  EXPECT_FALSE(std::filesystem::exists(socket_));
}

// --dry-run prints the whole plan of the examples, the userspace switch's
// part included, and changes nothing.
TEST_F(NetdTest, ADryRunPrintsThePlanAndTouchesNothing) {
  auto result = Cmd({Netd(), "--config", Configs(), "--socket", socket_, "--dry-run"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("create bridge vfb-lab"));
  EXPECT_THAT(result.out,
              HasSubstr("start userspace switch fabric (FDB max_entries 4096, max_per_port 512, "
                        "ageing 300 s)\n"));
  EXPECT_THAT(result.out, HasSubstr("add port fab-vm1 to switch fabric (tap, access VLAN 10)\n"));
  EXPECT_THAT(
      result.out,
      HasSubstr("add port fab-up0 to switch fabric (packet socket, trunk 10,20, native 1)\n"));
  EXPECT_THAT(result.out, HasSubstr("start spanning tree of switch fabric (rstp, priority 8192"));
  // The switch's part comes after the kernel's, which makes its links.
  EXPECT_LT(result.out.find("fab-vm1"), result.out.find("start userspace switch fabric"));
  EXPECT_FALSE(LinkExists("vfb-lab"));
  EXPECT_FALSE(LinkExists("fab-vm1"));
  EXPECT_FALSE(std::filesystem::exists(socket_));
}

TEST_F(NetdTest, TheSocketIsPrivateAndPeersAreChecked) {
  Start(Configs());
  struct stat info {};
  ASSERT_EQ(stat(socket_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0660u);
  // A process that is neither root, netd's user nor in the socket's group
  // connects (the directory is open to it) and is refused by credentials.
  chmod(dir_.path().c_str(), 0755);
  chmod(socket_.c_str(), 0666);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  if (child == 0) {
    close(pipe_fds[0]);
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    json answer = Ask(socket_, Request("hello"));
    std::string text = answer.dump();
    (void)!write(pipe_fds[1], text.data(), text.size());
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  json answer = json::parse(text, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << text;
  EXPECT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["error"]["code"], "permission");
  EXPECT_THAT(Log(), HasSubstr("control socket: refused"));
}

TEST_F(NetdTest, TellsSystemdWhenReady) {
  const std::string notify_path = dir_.Join("notify.sock");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify_path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
  Start(Configs());
  unsetenv("NOTIFY_SOCKET");
  char buffer[256] = {};
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ssize_t n = recv(fd, buffer, sizeof buffer - 1, 0);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_THAT(std::string(buffer), HasSubstr("READY=1"));
}

// WatchdogSec=: systemd sets WATCHDOG_USEC, and netd's loop sends
// WATCHDOG=1 every half period after READY=1.
TEST_F(NetdTest, PingsTheSystemdWatchdogFromItsLoop) {
  const std::string notify_path = dir_.Join("notify.sock");
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify_path.c_str());
  ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
  setenv("WATCHDOG_USEC", "200000", 1);
  Start(Configs());
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  timeval timeout{5, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::vector<std::string> messages;
  int pings = 0;
  const auto start = std::chrono::steady_clock::now();
  while (pings < 3) {
    char buffer[256] = {};
    ssize_t n = recv(fd.get(), buffer, sizeof buffer - 1, 0);
    ASSERT_GT(n, 0) << "no WATCHDOG=1 within 5 s; got " << ::testing::PrintToString(messages)
                    << "\n"
                    << Log();
    messages.emplace_back(buffer, static_cast<size_t>(n));
    if (messages.back() == "WATCHDOG=1") ++pings;
  }
  // Three pings at 0.1 s: far less than the 5 s a lost timer would take.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_THAT(messages.front(), HasSubstr("READY=1"));
}

// Without --config netd reads the installed configuration directory; where
// there is none it stops and names it (not a usage error).
TEST_F(NetdTest, ReadsTheDefaultConfigDirectoryWithoutConfig) {
  const std::string dir = VFABRIC_DEFAULT_CONFIG;
  auto result = Cmd({Netd(), "--dry-run", "--socket", socket_, "--run-dir", run_dir()});
  if (std::filesystem::exists(dir)) {
    EXPECT_EQ(result.exit_code, 0) << result.err;
  } else {
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_THAT(result.err, HasSubstr(dir + ": cannot open")) << result.err;
  }
  auto help = Cmd({Netd(), "--help"});
  EXPECT_THAT(help.out, HasSubstr("default\n                         " + dir));
}

// Under systemd with stderr on the journal (JOURNAL_STREAM names it), each
// line carries its syslog priority for journald instead of a time stamp.
TEST_F(NetdTest, LogsWithJournalPrioritiesWhenStderrIsTheJournal) {
  const std::string log = dir_.Join("journal.log");
  auto result = testing::Shell(": >" + log + "; JOURNAL_STREAM=$(stat -c %d:%i " + log + ") " +
                               Netd() + " --config " + dir_.Join("missing.json") + " 2>>" + log);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(testing::ReadFile(log), "<3>error: " + dir_.Join("missing.json") +
                                        ": cannot open: No such file or directory\n");
  // JOURNAL_STREAM inherited, stderr elsewhere: the plain form.
  auto plain = testing::Shell("JOURNAL_STREAM=1:1 " + Netd() + " --config " +
                              dir_.Join("missing.json") + " 2>&1");
  EXPECT_THAT(plain.out, HasSubstr("]: error: " + dir_.Join("missing.json")));
}

}  // namespace
}  // namespace vfabric
