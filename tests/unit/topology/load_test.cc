// LoadTopology and ParseTopologyFiles: files, directories, merging, and
// names checked across files.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vfabric/testing/support.h"
#include "vfabric/topology/topology.h"

namespace vfabric::topology {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Lines(const LoadResult& result) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : result.errors) lines.push_back(d.ToString());
  return lines;
}

std::vector<std::string> NetworkNames(const LoadResult& result) {
  std::vector<std::string> names;
  for (const NetworkConfig& n : result.topology.networks) names.push_back(n.name);
  return names;
}

TEST(TopologyLoadTest, ExampleConfigsAreValidOneByOneAndTogether) {
  const std::string dir = testing::SourceDir() + "/configs";
  for (const char* name : {"lab.json", "edge.json", "fabric.json"}) {
    LoadResult result = LoadTopology({dir + "/" + name});
    EXPECT_THAT(Lines(result), IsEmpty()) << name;
  }
  LoadResult all = LoadTopology({dir});
  EXPECT_THAT(Lines(all), IsEmpty());
  // *.json in name order; configs/schema/ is a subdirectory and not entered.
  EXPECT_THAT(NetworkNames(all), ElementsAre("edge", "fabric", "lab"));
}

// The multi-host overlay example: one file per host, differing only in
// "local" (configs/overlay/, a subdirectory the loading of configs/ does not
// enter). Each is valid on its own; the flood list names every host, and
// each host's own address is left out of its list.
TEST(TopologyLoadTest, OverlayExamplesAreValidAndDifferOnlyInLocal) {
  const std::string dir = testing::SourceDir() + "/configs/overlay";
  const char* const names[] = {"host-a.json", "host-b.json", "host-c.json"};
  for (int i = 0; i < 3; ++i) {
    LoadResult result = LoadTopology({dir + "/" + names[i]});
    ASSERT_THAT(Lines(result), IsEmpty()) << names[i];
    const NetworkConfig& network = result.topology.networks.at(0);
    ASSERT_TRUE(network.overlay.has_value());
    EXPECT_EQ(network.overlay->vni, 4242u);
    const std::string local = "192.0.2." + std::to_string(i + 1);
    EXPECT_EQ(network.overlay->local.AddressText(), local);
    ASSERT_EQ(network.overlay->flood.size(), 2u) << names[i];
    for (const IpPrefix& remote : network.overlay->flood)
      EXPECT_NE(remote.AddressText(), local) << names[i];
    std::string text = testing::ReadFile(dir + "/" + names[i]);
    std::string first = testing::ReadFile(dir + "/" + names[0]);
    const std::string key = "\"local\": \"192.0.2.";
    text.replace(text.find(key) + key.size(), 1, "1");
    EXPECT_EQ(text, first) << names[i] << " differs from " << names[0] << " beyond \"local\"";
  }
}

// The EVPN variant (configs/overlay-evpn/, with FRR's files in frr/): the
// same network with "control": "evpn" and no flood list (FRR's type-3
// routes make it), again one file per host differing only in "local".
TEST(TopologyLoadTest, OverlayEvpnExamplesAreValidAndDifferOnlyInLocal) {
  const std::string dir = testing::SourceDir() + "/configs/overlay-evpn";
  const char* const names[] = {"host-a.json", "host-b.json", "host-c.json"};
  const std::string first = testing::ReadFile(dir + "/" + names[0]);
  for (int i = 0; i < 3; ++i) {
    LoadResult result = LoadTopology({dir + "/" + names[i]});
    ASSERT_THAT(Lines(result), IsEmpty()) << names[i];
    const NetworkConfig& network = result.topology.networks.at(0);
    ASSERT_TRUE(network.overlay.has_value());
    EXPECT_EQ(network.overlay->vni, 4242u);
    EXPECT_EQ(network.overlay->control, OverlayControl::kEvpn);
    EXPECT_THAT(network.overlay->flood, IsEmpty());
    EXPECT_EQ(network.overlay->local.AddressText(), "192.0.2." + std::to_string(i + 1));
    std::string text = testing::ReadFile(dir + "/" + names[i]);
    const std::string key = "\"local\": \"192.0.2.";
    text.replace(text.find(key) + key.size(), 1, "1");
    EXPECT_EQ(text, first) << names[i] << " differs from " << names[0] << " beyond \"local\"";
  }
}

// The userspace variant (configs/overlay-userspace/): the switch's own
// VXLAN, a peer port per other host, the files differing only in "local".
TEST(TopologyLoadTest, OverlayUserspaceExamplesAreValidAndDifferOnlyInLocal) {
  const std::string dir = testing::SourceDir() + "/configs/overlay-userspace";
  const char* const names[] = {"host-a.json", "host-b.json"};
  const std::string first = testing::ReadFile(dir + "/" + names[0]);
  for (int i = 0; i < 2; ++i) {
    LoadResult result = LoadTopology({dir + "/" + names[i]});
    ASSERT_THAT(Lines(result), IsEmpty()) << names[i];
    const NetworkConfig& network = result.topology.networks.at(0);
    EXPECT_EQ(network.datapath, Datapath::kUserspace);
    ASSERT_TRUE(network.overlay.has_value());
    EXPECT_EQ(network.overlay->vni, 4343u);
    const std::string local = "192.0.2." + std::to_string(i + 1);
    std::vector<std::string> peers;
    for (const PortConfig& port : network.ports)
      if (port.kind == PortKind::kVxlan) peers.push_back(port.name);
    EXPECT_EQ(peers.size(), 2u) << names[i];
    for (const std::string& peer : peers) EXPECT_NE(peer, "vx4343:" + local);
    std::string text = testing::ReadFile(dir + "/" + names[i]);
    const std::string key = "\"local\": \"192.0.2.";
    text.replace(text.find(key) + key.size(), 1, "1");
    EXPECT_EQ(text, first) << names[i] << " differs from " << names[0] << " beyond \"local\"";
  }
}

TEST(TopologyLoadTest, LabExampleFieldByField) {
  LoadResult result = LoadTopology({testing::SourceDir() + "/configs/lab.json"});
  ASSERT_TRUE(result.ok());
  const NetworkConfig& lab = result.topology.networks.at(0);
  EXPECT_EQ(lab.name, "lab");
  EXPECT_EQ(lab.bridge, "vfb-lab");
  EXPECT_EQ(lab.datapath, Datapath::kKernel);
  EXPECT_TRUE(lab.stp.enabled);
  EXPECT_EQ(lab.stp.priority, 4096u);
  EXPECT_EQ(lab.stp.hello_time, 2u);
  EXPECT_EQ(lab.stp.forward_delay, 4u);
  EXPECT_EQ(lab.stp.max_age, 6u);
  EXPECT_FALSE(lab.vlan.filtering);
  EXPECT_EQ(lab.fdb.ageing_time, 120u);
  ASSERT_EQ(lab.fdb.static_entries.size(), 2u);
  EXPECT_EQ(lab.fdb.static_entries[1].mac.ToString(), "52:54:00:00:01:02");
  EXPECT_EQ(lab.fdb.static_entries[1].port, "vm2-eth0");
  EXPECT_EQ(lab.fdb.static_entries[1].vlan, 0);
  ASSERT_EQ(lab.ports.size(), 3u);
  EXPECT_EQ(lab.ports[0].name, "lab-up0");
  EXPECT_EQ(lab.ports[0].kind, PortKind::kVeth);
  EXPECT_EQ(lab.ports[0].peer, "lab-up0-p");
  EXPECT_EQ(lab.ports[0].peer_netns, "");
  EXPECT_EQ(lab.ports[0].cost, 4u);
  EXPECT_EQ(lab.ports[0].priority, 8u);
  EXPECT_EQ(lab.ports[0].root_block, true);
  EXPECT_EQ(lab.ports[1].kind, PortKind::kTap);
  EXPECT_EQ(lab.ports[1].learning, true);
  EXPECT_EQ(lab.ports[1].flood, true);
  EXPECT_EQ(lab.ports[1].bpdu_guard, true);
  EXPECT_FALSE(lab.ports[1].hairpin.has_value());
  EXPECT_EQ(lab.ports[2].owner, 0u);
  EXPECT_EQ(lab.ports[2].group, 0u);
  EXPECT_TRUE(lab.ports[2].multi_queue);
  EXPECT_EQ(lab.ports[2].cost, 100u);

  LoadResult edge = LoadTopology({testing::SourceDir() + "/configs/edge.json"});
  ASSERT_TRUE(edge.ok());
  const NetworkConfig& e = edge.topology.networks.at(0);
  EXPECT_EQ(e.bridge, "vfb-edge");
  EXPECT_FALSE(e.stp.enabled);
  ASSERT_EQ(e.ports.size(), 3u);
  EXPECT_EQ(e.ports[0].hairpin, true);
  EXPECT_EQ(e.ports[1].isolated, true);
  EXPECT_EQ(e.ports[2].learning, false);
}

TEST(TopologyLoadTest, DuplicatesAcrossFilesPointAtBothPlaces) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.json"),
                     "{\"networks\": [{\"name\": \"lab\", \"ports\": [{\"name\": \"p1\"}]}]}\n");
  testing::WriteFile(
      dir.Join("b.json"),
      "{\"networks\": [\n"
      "  {\"name\": \"lab\", \"bridge\": \"br-b\", \"ports\": [{\"name\": \"p1\"}]},\n"
      "  {\"name\": \"other\", \"bridge\": \"vfb-lab\"}]}\n");
  LoadResult result = LoadTopology({dir.path()});
  const std::string a = dir.Join("a.json");
  const std::string b = dir.Join("b.json");
  EXPECT_THAT(Lines(result),
              ElementsAre(b + ":2:12: /networks/0/name: duplicate network name \"lab\" (first at " +
                              a + ":1:24)",
                          b +
                              ":2:56: /networks/0/ports/0/name: interface name \"p1\" is already "
                              "used by a tap port of network \"lab\" (at " +
                              a + ":1:50)",
                          b +
                              ":3:31: /networks/1/bridge: interface name \"vfb-lab\" is already "
                              "used by the bridge of network \"lab\" (at " +
                              a + ":1:24)"));
  EXPECT_THAT(result.topology.networks, IsEmpty());
}

TEST(TopologyLoadTest, ReferencesResolveAcrossFiles) {
  testing::TempDir dir;
  testing::WriteFile(
      dir.Join("10-net.json"),
      "{\"networks\": [{\"name\": \"lab\", \"ports\": [{\"name\": \"vm1-eth0\"}]}]}");
  testing::WriteFile(dir.Join("20-vms.json"),
                     "{\"vms\": [{\"name\": \"vm1\", \"disk\": \"d\", \"nics\": [{\"network\": "
                     "\"lab\"}, {\"network\": \"lab2\"}]}]}");
  LoadResult result = LoadTopology({dir.path()});
  EXPECT_THAT(Lines(result),
              ElementsAre(dir.Join("20-vms.json") +
                          ":1:80: /vms/0/nics/1/network: no network named \"lab2\"; did you mean "
                          "\"lab\"?"));
}

TEST(TopologyLoadTest, DirectoryOrderSubdirectoriesAndOtherFiles) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("b.json"), "{\"networks\": [{\"name\": \"b\"}]}");
  testing::WriteFile(dir.Join("a.json"), "{\"networks\": [{\"name\": \"a\"}]}");
  testing::WriteFile(dir.Join("c.json"), "{\"networks\": [{\"name\": \"c\"}]}");
  testing::WriteFile(dir.Join("notes.txt"), "not json");
  testing::WriteFile(dir.Join(".hidden.json"), "not json");
  ASSERT_EQ(mkdir(dir.Join("sub").c_str(), 0755), 0);
  testing::WriteFile(dir.Join("sub/z.json"), "not json");
  LoadResult result = LoadTopology({dir.path()});
  EXPECT_THAT(Lines(result), IsEmpty());
  EXPECT_THAT(NetworkNames(result), ElementsAre("a", "b", "c"));

  // Explicit paths keep the caller's order.
  LoadResult listed = LoadTopology({dir.Join("c.json"), dir.Join("a.json")});
  EXPECT_THAT(NetworkNames(listed), ElementsAre("c", "a"));
}

TEST(TopologyLoadTest, ErrorsAreSortedByFileThenPosition) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.json"),
                     "{\"networks\": [{\"name\": \"n\", \"stp\": 1}],\n"
                     " \"colour\": 2}");
  testing::WriteFile(dir.Join("b.json"), "{\"x\": 1}");
  LoadResult result = LoadTopology({dir.Join("b.json"), dir.Join("a.json")});
  EXPECT_THAT(Lines(result),
              ElementsAre(dir.Join("b.json") + ":1:2: /x: unknown key \"x\"",
                          dir.Join("a.json") + ":1:36: /networks/0/stp: expected an object, got "
                                               "an integer",
                          dir.Join("a.json") + ":2:2: /colour: unknown key \"colour\""));
}

TEST(TopologyLoadTest, MissingFilesAndSyntaxErrorsDoNotHideOtherFiles) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("bad.json"), "{\"networks\": [\n");
  testing::WriteFile(dir.Join("ok.json"), "{\"networks\": [{\"name\": \"n\", \"bridge\": 5}]}");
  LoadResult result =
      LoadTopology({dir.Join("missing.json"), dir.Join("bad.json"), dir.Join("ok.json")});
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          dir.Join("missing.json") + ": cannot open: No such file or directory",
          dir.Join("bad.json") + ":2:1: /networks/0: unexpected end of input, expected a value",
          dir.Join("ok.json") + ":1:39: /networks/0/bridge: expected a string, got an integer"));
}

TEST(TopologyLoadTest, ParseTopologyFilesMergesInMemoryFiles) {
  LoadResult result = ParseTopologyFiles(
      {{"one.json", "{\"networks\": [{\"name\": \"one\", \"ports\": [{\"name\": \"p\"}]}]}"},
       {"two.json", "{\"networks\": [{\"name\": \"two\", \"ports\": [{\"name\": \"p\"}]}]}"}});
  EXPECT_THAT(Lines(result),
              ElementsAre("two.json:1:50: /networks/0/ports/0/name: interface name \"p\" is "
                          "already used by a tap port of network \"one\" (at one.json:1:50)"));
  LoadResult good = ParseTopologyFiles({{"one.json", "{\"networks\": [{\"name\": \"one\"}]}"},
                                        {"two.json", "{\"networks\": [{\"name\": \"two\"}]}"}});
  EXPECT_THAT(NetworkNames(good), ElementsAre("one", "two"));
}

// ---- The one rule for configuration entries (ReadTopologyFiles) ----

// A dangling symlink is an error naming the path and its target, never an
// empty file: netd reloading a directory that holds one must keep the
// networks that file held, not delete them.
TEST(TopologyLoadTest, ADanglingSymlinkIsAnError) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.json"), "{\"networks\": [{\"name\": \"a\"}]}");
  ASSERT_EQ(symlink("gone.json", dir.Join("b.json").c_str()), 0);
  const std::string error =
      dir.Join("b.json") + ": dangling symbolic link to \"gone.json\" (No such file or directory)";
  LoadResult in_directory = LoadTopology({dir.path()});
  EXPECT_THAT(Lines(in_directory), ElementsAre(error));
  EXPECT_FALSE(in_directory.ok());
  EXPECT_THAT(Lines(LoadTopology({dir.Join("b.json")})), ElementsAre(error));

  // What could be read is still read and checked.
  ReadResult read = ReadTopologyFiles({dir.path()});
  ASSERT_EQ(read.files.size(), 1u);
  EXPECT_EQ(read.files[0].name, dir.Join("a.json"));
  EXPECT_EQ(read.files[0].text, "{\"networks\": [{\"name\": \"a\"}]}");
  EXPECT_THAT(read.paths, ElementsAre(dir.Join("a.json"), dir.Join("b.json")));
  EXPECT_FALSE(read.ok());
}

TEST(TopologyLoadTest, ASymlinkLoopIsAnError) {
  testing::TempDir dir;
  ASSERT_EQ(symlink("self.json", dir.Join("self.json").c_str()), 0);
  ASSERT_EQ(symlink("y.json", dir.Join("x.json").c_str()), 0);
  ASSERT_EQ(symlink("x.json", dir.Join("y.json").c_str()), 0);
  const std::string loop = ": symbolic link loop (Too many levels of symbolic links)";
  EXPECT_THAT(Lines(LoadTopology({dir.path()})),
              ElementsAre(dir.Join("self.json") + loop, dir.Join("x.json") + loop,
                          dir.Join("y.json") + loop));
}

// Root opens any file whatever its mode, so an entry that cannot be read even
// by root is one that is no regular file: a directory named *.json.
TEST(TopologyLoadTest, ADirectoryNamedLikeAFileIsAnError) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.json"), "{\"networks\": [{\"name\": \"a\"}]}");
  ASSERT_EQ(mkdir(dir.Join("sub.json").c_str(), 0755), 0);
  testing::WriteFile(dir.Join("sub.json/inner.json"), "{}");  // never entered
  ASSERT_EQ(symlink(dir.path().c_str(), dir.Join("up.json").c_str()), 0);
  EXPECT_THAT(Lines(LoadTopology({dir.path()})),
              ElementsAre(dir.Join("sub.json") + ": not a regular file (a directory)",
                          dir.Join("up.json") + ": not a regular file (a directory)"));
}

// Opening a FIFO for reading waits for a writer: a FIFO named as a config
// must be refused at once, never block netd or netctl.
TEST(TopologyLoadTest, AFifoIsRefusedWithoutBlocking) {
  testing::TempDir dir;
  const std::string fifo = dir.Join("pipe.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const std::vector<std::string>& paths :
       {std::vector<std::string>{dir.path()}, std::vector<std::string>{fifo}}) {
    auto loading = std::async(std::launch::async, [&] { return LoadTopology(paths); });
    if (loading.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) {
      // Let the blocked reader go (it reads end-of-file) so the test ends.
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd >= 0) ::close(fd);
      ADD_FAILURE() << "LoadTopology blocked on the FIFO " << fifo;
    }
    EXPECT_THAT(Lines(loading.get()), ElementsAre(fifo + ": not a regular file (a FIFO)"))
        << paths[0];
  }
}

TEST(TopologyLoadTest, DevicesAndSocketsAreRefused) {
  testing::TempDir dir;
  ASSERT_EQ(symlink("/dev/null", dir.Join("null.json").c_str()), 0);
  const std::string socket_path = dir.Join("sock.json");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  ::close(fd);
  ASSERT_EQ(bound, 0);
  EXPECT_THAT(Lines(LoadTopology({dir.path(), "/dev/null"})),
              ElementsAre(dir.Join("null.json") + ": not a regular file (a character device)",
                          socket_path + ": not a regular file (a socket)",
                          "/dev/null: not a regular file (a character device)"));
}

// What LoadTopology reports for `paths` when run as the user "nobody" (uid
// 65534) when this test runs as root, for whom a file's mode is no obstacle.
std::vector<std::string> LinesAsAnUnprivilegedUser(const std::vector<std::string>& paths) {
  if (geteuid() != 0) return Lines(LoadTopology(paths));
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return {"pipe failed"};
  const pid_t child = fork();
  if (child == 0) {
    std::string text;
    if (setresgid(65534, 65534, 65534) == 0 && setgroups(0, nullptr) == 0 &&
        setresuid(65534, 65534, 65534) == 0) {
      for (const std::string& line : Lines(LoadTopology(paths))) text += line + "\n";
    } else {
      text = "cannot become nobody\n";
    }
    (void)!::write(out[1], text.data(), text.size());
    _exit(0);
  }
  ::close(out[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(out[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  return lines;
}

TEST(TopologyLoadTest, AnUnreadableFileOrDirectoryIsAnError) {
  testing::TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);  // "nobody" may look inside
  testing::WriteFile(dir.Join("secret.json"), "{}");
  ASSERT_EQ(chmod(dir.Join("secret.json").c_str(), 0), 0);
  ASSERT_EQ(mkdir(dir.Join("closed").c_str(), 0), 0);
  EXPECT_THAT(LinesAsAnUnprivilegedUser({dir.path(), dir.Join("closed")}),
              ElementsAre(dir.Join("secret.json") + ": cannot open: Permission denied",
                          dir.Join("closed") + ": cannot open directory: Permission denied"));
}

// The known-bad files that the schema test (check_schema.py) also feeds to
// the JSON Schema: vfabric's own validator must reject each one, exactly here.
TEST(TopologyLoadTest, KnownBadDataFiles) {
  const std::string data = testing::SourceDir() + "/tests/unit/topology/data/";
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"bad_fdb_limit_kernel.json",
       {"1:52: /networks/0/fdb/max_entries: \"max_entries\" applies to the userspace datapath "
        "only"}},
      {"bad_ifname_long.json",
       {"1:48: /networks/0/ports/0/name: invalid interface name \"sixteen-chars-xx\": is 16 "
        "bytes long; the limit is 15"}},
      {"bad_kernel_bridge_ports.json",
       {"1025:5: /networks/0/ports/1023: port 1024 of network \"big\" is one too many: a Linux "
        "bridge takes at most 1023 ports (port numbers 1..1023), VM NIC taps included"}},
      {"bad_mac_multicast.json",
       {"2:30: /networks/0/fdb/static/0/mac: a static FDB entry needs a unicast MAC address; "
        "01:80:c2:00:00:0e is multicast (the low bit of the first byte is set)"}},
      {"bad_mac_zero.json",
       {"2:30: /networks/0/fdb/static/0/mac: a static FDB entry needs a unicast MAC address; "
        "00:00:00:00:00:00 is all-zero"}},
      {"bad_mirror_kernel.json",
       {"1:80: /networks/0/mirror: port mirroring needs \"datapath\": \"userspace\" for now "
        "(the kernel bridge's tc mirred mirror is not there yet) on network \"n\""}},
      {"bad_mirror_vlan.json",
       {"2:43: /networks/0/mirror/0/select_vlan: malformed VLAN list \"10,4095\": VLAN ID 4095 is "
        "outside 1..4094"}},
      {"bad_overlay_evpn_flood.json",
       {"1:101: /networks/0/overlay/flood: \"flood\" and \"control\": \"evpn\" exclude each "
        "other: with EVPN, FRR installs the flood list from its peers' routes (type 3), and "
        "netd leaves it to FRR"}},
      {"bad_overlay_mtu.json",
       {"1:82: /networks/0/overlay/mtu: overlay mtu 65466 leaves no room for the 70-byte VXLAN "
        "encapsulation over IPv6: the outer packet would exceed 65535 bytes (at most 65465)"}},
      {"bad_overlay_userspace.json",
       {"1:109: /networks/0/overlay/control: \"control\": \"evpn\" needs \"datapath\": "
        "\"kernel\" for now on network \"n\" (the userspace switch's VXLAN takes a static "
        "\"flood\" list; the shadow devices FRR's zebra would read are not there yet)"}},
      {"bad_overlay_vni.json",
       {"1:48: /networks/0/overlay/vni: expected an integer in 1..16777215, got 16777216"}},
      {"bad_port_vlan_without_filtering.json",
       {"2:35: /networks/0/ports/0/vlan: port VLAN settings need \"vlan\": {\"filtering\": "
        "true} on network \"n\""}},
      {"bad_stp_priority.json",
       {"1:66: /networks/0/stp/priority: bridge priority must be a multiple of 4096, got 1000 "
        "(nearest: 0 or 4096)"}},
      {"bad_stp_rstp_kernel.json",
       {"1:62: /networks/0/stp/mode: the kernel bridge speaks only 802.1D STP: use \"mode\": "
        "\"stp\", or \"datapath\": \"userspace\" for RSTP"}},
      {"bad_stp_edge_kernel.json",
       {"1:90: /networks/0/ports/0/edge: edge ports need RSTP: the kernel bridge (802.1D STP) "
        "has none; use \"datapath\": \"userspace\""}},
      {"bad_stp_timer_range.json",
       {"1:51: /networks/0/stp/hello_time: expected an integer in 1..10, got 11"}},
      {"bad_unknown_key.json",
       {"1:29: /networks/0/brigde: unknown key \"brigde\"; did you mean \"bridge\"?"}},
      {"bad_veth_no_peer.json",
       {"1:39: /networks/0/ports/0: a veth port needs \"peer\" (the name of the other end)"}},
      {"bad_vhost_user_client_permissions.json",
       {"1:148: /networks/0/ports/0/permissions: \"permissions\" applies to vhost-user ports "
        "in server mode only (in client mode the frontend owns the socket)"}},
      {"bad_vhost_user_kernel.json",
       {"1:65: /networks/0/ports/0/kind: vhost-user ports need \"datapath\": \"userspace\" (a "
        "guest's vhost-user rings are served by vfabric's switch; the kernel bridge cannot take "
        "them) on network \"n\""}},
      {"bad_vhost_user_no_socket.json",
       {"1:64: /networks/0/ports/0: a vhost-user port needs \"socket\" (the path of its Unix "
        "socket)"}},
      {"bad_vlan_id.json",
       {"2:62: /networks/0/ports/0/vlan/pvid: expected an integer in 1..4094, got 4095"}},
      {"bad_vlan_range.json",
       {"2:64: /networks/0/ports/0/vlan/allowed: malformed VLAN list \"10,5-\": \"5-\" is not "
        "a VLAN ID or a range LOW-HIGH"}},
      {"bad_vm_kernel_and_disk.json",
       {"1:48: /vms/0/disk: \"kernel\" and \"disk\" exclude each other; give one"}},
      {"bad_wrong_type.json", {"1:48: /networks/0/stp/enabled: expected a boolean, got a string"}},
      {"broken_syntax.json",
       {"2:16: /networks/0: expected a string key (trailing commas are "
        "not allowed)"}},
  };
  for (const auto& [name, expected] : cases) {
    LoadResult result = LoadTopology({data + name});
    std::vector<std::string> want;
    for (const std::string& line : expected) want.push_back(data + name + ":" + line);
    EXPECT_EQ(Lines(result), want) << name;
  }
  // Every bad_*/broken_* file is in the table (bad_many.json has its own test).
  LoadResult all = LoadTopology({data});
  std::set<std::string> files;
  for (const Diagnostic& d : all.errors) files.insert(d.where.file.substr(data.size()));
  files.erase("bad_many.json");
  std::set<std::string> listed;
  for (const auto& entry : cases) listed.insert(entry.first);
  EXPECT_EQ(files, listed);
}

// The files the schema test must find valid are valid here too (one truth:
// good_integral_numbers.json has 4.0 for 4, and STP timers out of relation
// with STP off).
TEST(TopologyLoadTest, KnownGoodDataFiles) {
  const std::string data = testing::SourceDir() + "/tests/unit/topology/data/";
  for (const char* name :
       {"good_full.json", "good_userspace.json", "good_integral_numbers.json",
        "good_vhost_user.json", "good_overlay.json", "good_overlay_userspace.json",
        "good_vm_nic_backends.json", "good_mirror.json"}) {
    EXPECT_THAT(Lines(LoadTopology({data + name})), IsEmpty()) << name;
  }
}

}  // namespace
}  // namespace vfabric::topology
