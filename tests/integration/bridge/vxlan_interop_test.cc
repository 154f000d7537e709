// vfabric's VXLAN port against the kernel's vxlan device, in a private
// network namespace: a peer that is not vfabric (the port in a second one). The kernel device (VNI
// 4242, local 192.0.2.1, its flood entry pointing at the port on 192.0.2.2:4790)
// carries 10.9.0.1/24. A ping from the host makes the kernel flood an ARP
// request: the port receives it decapsulated, from the device's MAC. The
// port answers with an ARP reply for 10.9.0.2: the kernel decapsulates it and
// its neighbour table learns the port's MAC.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/bridge/frame.h"
#include "vfabric/bridge/vxlan_port.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/support.h"

namespace vfabric::bridge {
namespace {

using nlohmann::json;
using vfabric::testing::CommandResult;

CommandResult Sh(const std::vector<std::string>& argv) { return vfabric::testing::Run(argv); }

TEST(VxlanInterop, TheKernelsVxlanDeviceAndThePortUnderstandEachOther) {
  VF_REQUIRE_PRIVATE_NETNS();
  // The port lives in a namespace of its own: the kernel hands a datagram
  // for one of its own addresses straight to a local vxlan device (and
  // drops it when there is none; iproute2 6.1 cannot say nolocalbypass).
  vfabric::testing::ScopedNamedNetns peer("vfvxi");
  ASSERT_TRUE(peer.ok());
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul1", "netns",
            peer.name()},
           {"ip", "addr", "add", "192.0.2.1/24", "dev", "ul0"},
           {"ip", "-n", peer.name(), "addr", "add", "192.0.2.2/24", "dev", "ul1"},
           {"ip", "link", "set", "ul0", "up"},
           {"ip", "-n", peer.name(), "link", "set", "ul1", "up"}}) {
    CommandResult r = Sh(argv);
    ASSERT_EQ(r.exit_code, 0) << argv[0] << " " << argv[1] << ": " << r.err;
  }
  CommandResult vx = Sh({"ip", "link", "add", "vxk", "type", "vxlan", "id", "4242", "local",
                         "192.0.2.1", "dstport", "4789", "nolearning"});
  if (vx.exit_code != 0) {
    if (vfabric::testing::InCi()) FAIL() << "no vxlan links: " << vx.err;
    GTEST_SKIP() << "this kernel makes no vxlan links: " << vx.err;
  }
  for (const auto& argv :
       std::vector<std::vector<std::string>>{{"bridge", "fdb", "append", "00:00:00:00:00:00", "dev",
                                              "vxk", "dst", "192.0.2.2", "port", "4790"},
                                             {"ip", "addr", "add", "10.9.0.1/24", "dev", "vxk"},
                                             {"ip", "link", "set", "vxk", "up"}}) {
    CommandResult r = Sh(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  json link = json::parse(Sh({"ip", "-j", "link", "show", "dev", "vxk"}).out, nullptr, false);
  ASSERT_TRUE(link.is_array() && !link.empty());
  const MacAddress kernel_mac = *MacAddress::Parse(link[0]["address"].get<std::string>());

  VxlanPortOptions options;
  options.local = *IpPrefix::ParseAddress("192.0.2.2");
  options.local_port = 4790;
  options.remote = *IpPrefix::ParseAddress("192.0.2.1");
  options.remote_port = 4789;
  options.vni = 4242;
  // Opened inside the peer namespace; the socket stays there.
  UniqueFd home(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  UniqueFd there(::open(("/run/netns/" + peer.name()).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(home && there);
  ASSERT_EQ(::setns(there.get(), CLONE_NEWNET), 0) << std::strerror(errno);
  auto opened = OpenVxlanPort("vx-i", options);
  ASSERT_EQ(::setns(home.get(), CLONE_NEWNET), 0) << std::strerror(errno);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  Port& port = **opened;
  auto pool = FramePool::Create(32, 2048);
  ASSERT_TRUE(pool.ok());

  // Kernel -> port: the ARP request of a ping to 10.9.0.2.
  vfabric::testing::ScopedProcess ping({"busybox", "ping", "-c", "3", "-W", "1", "10.9.0.2"},
                                       "/dev/null");
  std::vector<uint8_t> request;
  uint64_t no_buffer = 0, malformed = 0;
  for (int i = 0; i < 100 && request.empty(); ++i) {
    pollfd fd{port.fd(), POLLIN, 0};
    ::poll(&fd, 1, 50);
    std::array<Frame*, 8> frames{};
    const size_t n = port.Receive(**pool, frames, &no_buffer, &malformed);
    for (size_t k = 0; k < n; ++k) {
      const Frame& f = *frames[k];
      if (request.empty() && f.size >= 42 && f.data[12] == 0x08 && f.data[13] == 0x06)
        request.assign(f.data, f.data + f.size);
      (*pool)->Free(frames[k]);
    }
  }
  ASSERT_FALSE(request.empty()) << "no ARP request came through the tunnel";
  EXPECT_EQ(malformed, 0u);
  EXPECT_TRUE(std::equal(kernel_mac.bytes.begin(), kernel_mac.bytes.end(), request.begin() + 6));
  // The target protocol address: 10.9.0.2.
  EXPECT_EQ(request[38], 10);
  EXPECT_EQ(request[41], 2);

  // Port -> kernel: the ARP reply from 52:54:00:00:00:99.
  const uint8_t mine[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x99};
  std::vector<uint8_t> reply(42, 0);
  std::memcpy(reply.data(), kernel_mac.bytes.data(), 6);
  std::memcpy(reply.data() + 6, mine, 6);
  const uint8_t arp[] = {0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02};
  std::memcpy(reply.data() + 12, arp, sizeof arp);
  std::memcpy(reply.data() + 22, mine, 6);  // sender MAC
  const uint8_t sender_ip[4] = {10, 9, 0, 2};
  std::memcpy(reply.data() + 28, sender_ip, 4);                // sender IP
  std::memcpy(reply.data() + 32, kernel_mac.bytes.data(), 6);  // target MAC
  const uint8_t target_ip[4] = {10, 9, 0, 1};
  std::memcpy(reply.data() + 38, target_ip, 4);
  Frame* f = (*pool)->Alloc();
  std::memcpy(f->data, reply.data(), reply.size());
  f->size = static_cast<uint32_t>(reply.size());
  TxItem item{f, 0, false};
  EXPECT_EQ(port.Transmit({&item, 1}).packets, 1u);
  (*pool)->Free(f);
  EXPECT_TRUE(vfabric::testing::WaitFor(
      [] {
        json neighbours =
            json::parse(Sh({"ip", "-j", "neigh", "show", "10.9.0.2"}).out, nullptr, false);
        return neighbours.is_array() && !neighbours.empty() &&
               neighbours[0].value("lladdr", "") == "52:54:00:00:00:99";
      },
      3000))
      << Sh({"ip", "neigh"}).out << Sh({"ip", "-s", "link", "show", "vxk"}).out;
}

}  // namespace
}  // namespace vfabric::bridge
