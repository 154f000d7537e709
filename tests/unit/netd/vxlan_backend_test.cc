// A userspace network's VXLAN overlay in netd (issue 17), on loopback (no
// privileges): the kernel plan makes nothing for the overlay's peer ports,
// UserspaceNetworks opens them through the real "vxlan" backend on one
// endpoint (127.0.0.1, a free UDP port) with split horizon between them,
// and a changed flood list adds and removes peer ports.
#include "vxlan_backend.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/bridge/vxlan_port.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/netd/planner.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

// A UDP socket on `address`:(a free port).
struct Udp {
  explicit Udp(const char* address) {
    fd.Reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    ::inet_pton(AF_INET, address, &in.sin_addr);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
    socklen_t length = sizeof in;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&in), &length);
    port = ntohs(in.sin_port);
  }
  bool Readable(int wait_ms) {
    pollfd p{fd.get(), POLLIN, 0};
    return ::poll(&p, 1, wait_ms) == 1;
  }
  UniqueFd fd;
  uint16_t port = 0;
};

uint16_t FreePort() { return Udp("127.0.0.1").port; }

topology::Topology Parse(uint16_t port, const std::string& flood) {
  const std::string text = R"({"networks": [{"name": "u", "datapath": "userspace",
    "overlay": {"vni": 77, "local": "127.0.0.1", "port": )" +
                           std::to_string(port) + R"(, "flood": [)" + flood + R"(]}}]})";
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.topology;
}

std::set<std::string> SwitchPorts(UserspaceNetworks& networks) {
  std::set<std::string> names;
  auto stats = networks.PortStats("u", "");
  if (!stats.ok()) return names;
  for (const json& p : (*stats)["ports"]) {
    EXPECT_EQ(p["kind"], "vxlan");
    names.insert(p["port"].get<std::string>());
  }
  return names;
}

TEST(VxlanBackendTest, TheBackendNeedsNoLinkAndNamesTheTunnel) {
  auto backends = NewKernelPortBackends();
  const topology::Topology desired = Parse(4789, R"("192.0.2.2")");
  const topology::PortConfig& port = desired.networks.at(0).ports.at(0);
  PortBackend& backend = backends->For(port, false);
  EXPECT_EQ(backend.Name(), "vxlan");
  EXPECT_FALSE(backend.NeedsKernelLink());
  EXPECT_EQ(backend.Identity(port, nullptr), "vni 77 127.0.0.1:4789 -> 192.0.2.2");
  EXPECT_FALSE(backend.GuestPlug(port).ok());
}

TEST(VxlanBackendTest, TheKernelPlanMakesNothingForPeerPorts) {
  const topology::Topology desired = Parse(4789, R"("192.0.2.2", "192.0.2.3")");
  auto plan = Plan(desired, KernelState{});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_TRUE(plan->empty()) << (plan->empty() ? "" : plan->front().Describe());
}

TEST(VxlanBackendTest, PeerPortsOpenOnOneEndpointWithSplitHorizon) {
  // The peers: a sends from any port (as VTEPs do, for entropy); the
  // switch would send to them on the overlay's port.
  Udp a("127.0.0.2");
  const uint16_t port = FreePort();
  UserspaceNetworks networks("", NewKernelPortBackends(), "test");
  topology::Topology desired = Parse(port, R"("127.0.0.1", "127.0.0.2", "127.0.0.3")");
  std::vector<std::string> errors = networks.Sync(desired, KernelState{});
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(SwitchPorts(networks), (std::set<std::string>{"vx77:127.0.0.2", "vx77:127.0.0.3"}));
  EXPECT_TRUE(networks.Pending(desired).empty());

  // A broadcast from a: learned on a's port, and not sent to b (split
  // horizon; the network has no other port, so nothing is sent at all).
  std::vector<uint8_t> datagram(8 + 60, 0);
  bridge::PutVxlanHeader(77, datagram.data());
  const uint8_t frame[14] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52,
                             0x54, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00};
  std::copy(std::begin(frame), std::end(frame), datagram.begin() + 8);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::sendto(a.fd.get(), datagram.data(), datagram.size(), 0,
                     reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(datagram.size()));
  std::string learned_on;
  for (int i = 0; i < 200 && learned_on.empty(); ++i) {
    auto fdb = networks.FdbEntries("u");
    ASSERT_TRUE(fdb.ok());
    for (const json& e : (*fdb)["entries"])
      if (e["mac"] == "52:54:00:00:00:0a") learned_on = e["port"].get<std::string>();
    if (learned_on.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(learned_on, "vx77:127.0.0.2");
  auto stats = networks.PortStats("u", "vx77:127.0.0.3");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)["ports"][0]["counters"]["tx_packets"], 0) << stats->dump();

  // One flood address less, one more: peer ports follow.
  desired = Parse(port, R"("127.0.0.2", "127.0.0.4")");
  errors = networks.Sync(desired, KernelState{});
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(SwitchPorts(networks), (std::set<std::string>{"vx77:127.0.0.2", "vx77:127.0.0.4"}));
  networks.StopAll();
}

}  // namespace
}  // namespace vfabric::netd
