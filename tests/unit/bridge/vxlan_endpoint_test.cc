// The VXLAN endpoint (bridge/vxlan_endpoint.h) in a switch, over loopback
// UDP: one endpoint on 127.0.0.1, two remote VTEPs played by plain UDP
// sockets on 127.0.0.2 and 127.0.0.3 (all of 127/8 is loopback), a local
// memory port. Checks head-end replication (a flood reaches every peer
// once), split horizon (nothing from one peer goes to another), learning on
// the right peer port, and what the endpoint refuses (a datagram from no
// peer, another VNI). No privileges, no namespace.
#include "vfabric/bridge/vxlan_endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frames.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/bridge/vxlan_port.h"

namespace vfabric::bridge {
namespace {

using testing::EthFrame;
using testing::kBroadcast;
using testing::Mac;

constexpr uint32_t kVni = 4242;
const MacAddress kLocal = Mac(0x525400000001);
const MacAddress kRemoteA = Mac(0x525400000a0a);
const MacAddress kRemoteB = Mac(0x525400000b0b);

IpPrefix Address(const char* text) { return *IpPrefix::ParseAddress(text); }

// A UDP port free on 127.0.0.1 right now.
uint16_t FreePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in);
  socklen_t length = sizeof in;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&in), &length);
  return ntohs(in.sin_port);
}

// A plain UDP socket bound to `address`:(any free port): a remote VTEP.
class Vtep {
 public:
  explicit Vtep(const char* address) {
    fd_.Reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    ::inet_pton(AF_INET, address, &in.sin_addr);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
    socklen_t length = sizeof in;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&in), &length);
    port_ = ntohs(in.sin_port);
  }
  uint16_t port() const { return port_; }

  // Sends `frame` behind a VXLAN header of `vni` to 127.0.0.1:`to`.
  void Send(uint16_t to, const std::vector<uint8_t>& frame, uint32_t vni = kVni) {
    std::vector<uint8_t> datagram(8);
    PutVxlanHeader(vni, datagram.data());
    datagram.insert(datagram.end(), frame.begin(), frame.end());
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(to);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::sendto(fd_.get(), datagram.data(), datagram.size(), 0,
                       reinterpret_cast<sockaddr*>(&dst), sizeof dst),
              static_cast<ssize_t>(datagram.size()));
  }

  // The datagrams received so far (waits up to `wait_ms` for the first).
  std::vector<std::vector<uint8_t>> Received(int wait_ms = 0) {
    std::vector<std::vector<uint8_t>> out;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) return out;
    for (;;) {
      std::vector<uint8_t> buffer(65536);
      const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) break;
      buffer.resize(static_cast<size_t>(n));
      out.push_back(std::move(buffer));
    }
    return out;
  }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

class VxlanEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SwitchConfig config;
    config.name = "t";
    config.pool_frames = 256;
    config.buffer_size = 2048;
    config.fdb.hash_seed = 0x1234;
    config.fdb.max_ports = 16;
    auto sw = Switch::Create(std::move(config));
    ASSERT_TRUE(sw.ok()) << sw.status().message();
    sw_ = std::move(sw).value();
    auto local = MemoryPort::Create("l");
    ASSERT_TRUE(local.ok());
    local_ = local->get();
    auto id = sw_->AddPort(std::move(local).value());
    ASSERT_TRUE(id.ok());
    ids_["l"] = *id;

    VxlanEndpointOptions options;
    options.local = Address("127.0.0.1");
    options.port = probe_port_ = FreePort();
    options.vni = kVni;
    auto endpoint = VxlanEndpoint::Open("t", options);
    ASSERT_TRUE(endpoint.ok()) << endpoint.status().message();
    endpoint_ = std::move(endpoint).value();
    AddPeer("vx-a", "127.0.0.2", a_);
    AddPeer("vx-b", "127.0.0.3", b_);
  }

  void AddPeer(const std::string& name, const char* address, const Vtep& vtep) {
    auto port = endpoint_->OpenPeer(name, Address(address), vtep.port());
    ASSERT_TRUE(port.ok()) << port.status().message();
    PortSettings settings;
    settings.flood_group = 1;
    auto id = sw_->AddPort(std::move(port).value(), settings);
    ASSERT_TRUE(id.ok()) << id.status().message();
    ids_[name] = *id;
  }

  // Runs the switch until `done` or 2 s have passed.
  template <typename Done>
  bool RunUntil(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      sw_->RunOnce(20);
    }
    return true;
  }
  // Runs the switch a little (for "nothing else happens").
  void Settle() {
    for (int i = 0; i < 5; ++i) sw_->RunOnce(10);
  }

  std::optional<PortId> FdbPort(const MacAddress& mac) {
    auto entries = sw_->FdbEntries();
    if (!entries.ok()) return std::nullopt;
    for (const FdbEntry& e : *entries)
      if (e.mac == mac) return e.port;
    return std::nullopt;
  }
  PortCounters C(const std::string& port) { return *sw_->Counters(ids_.at(port)); }

  std::unique_ptr<Switch> sw_;
  MemoryPort* local_ = nullptr;
  std::shared_ptr<VxlanEndpoint> endpoint_;
  uint16_t probe_port_ = 0;
  Vtep a_{"127.0.0.2"};
  Vtep b_{"127.0.0.3"};
  std::map<std::string, PortId> ids_;
};

TEST_F(VxlanEndpointTest, FloodFromALocalPortReachesEveryPeerOnce) {
  const auto frame = EthFrame(kBroadcast, kLocal, std::nullopt, 0x0800, 60);
  local_->Inject(frame);
  sw_->RunOnce(0);
  for (Vtep* vtep : {&a_, &b_}) {
    auto got = vtep->Received(1000);
    ASSERT_EQ(got.size(), 1u);
    std::vector<uint8_t> expected(8);
    PutVxlanHeader(kVni, expected.data());
    expected.insert(expected.end(), frame.begin(), frame.end());
    EXPECT_EQ(got[0], expected);
    EXPECT_TRUE(vtep->Received(50).empty());
  }
  EXPECT_EQ(C("vx-a").tx_packets, 1u);
  EXPECT_EQ(C("vx-b").tx_packets, 1u);
}

TEST_F(VxlanEndpointTest, AFrameFromOnePeerGoesToLocalPortsNotToTheOtherPeer) {
  const auto frame = EthFrame(kBroadcast, kRemoteA, std::nullopt, 0x0800, 60);
  a_.Send(probe_port_, frame);
  ASSERT_TRUE(RunUntil([&] { return local_->captured_count() == 1; }));
  Settle();
  auto captured = local_->TakeCaptured();
  ASSERT_EQ(captured.size(), 1u);
  EXPECT_EQ(captured[0].bytes, frame);
  EXPECT_TRUE(b_.Received(50).empty()) << "split horizon: a peer's flood went to another peer";
  EXPECT_TRUE(a_.Received(0).empty());
  EXPECT_EQ(C("vx-a").rx_packets, 1u);
  EXPECT_EQ(C("vx-b").tx_packets, 0u);
}

TEST_F(VxlanEndpointTest, RemoteMacsAreLearnedOnThePeerTheyCameFrom) {
  a_.Send(probe_port_, EthFrame(kBroadcast, kRemoteA));
  b_.Send(probe_port_, EthFrame(kBroadcast, kRemoteB));
  ASSERT_TRUE(RunUntil([&] { return local_->captured_count() == 2; }));
  EXPECT_EQ(FdbPort(kRemoteA), ids_.at("vx-a"));
  EXPECT_EQ(FdbPort(kRemoteB), ids_.at("vx-b"));
  // Unicast from the local port goes to that peer alone.
  local_->Inject(EthFrame(kRemoteB, kLocal));
  sw_->RunOnce(0);
  EXPECT_EQ(b_.Received(1000).size(), 1u);
  EXPECT_TRUE(a_.Received(50).empty());
}

TEST_F(VxlanEndpointTest, UnicastBetweenTwoPeersIsDroppedAndCounted) {
  b_.Send(probe_port_, EthFrame(kBroadcast, kRemoteB));
  ASSERT_TRUE(RunUntil([&] { return local_->captured_count() == 1; }));
  a_.Send(probe_port_, EthFrame(kRemoteB, kRemoteA));  // to a MAC behind peer b
  ASSERT_TRUE(RunUntil([&] { return C("vx-b").drop(DropReason::kSplitHorizon) == 1; }));
  Settle();
  EXPECT_TRUE(b_.Received(50).empty());
  EXPECT_EQ(C("vx-b").tx_packets, 0u);
  EXPECT_EQ(local_->captured_count(), 1u);  // the earlier flood only
}

TEST_F(VxlanEndpointTest, DatagramsFromNoPeerAreCountedAndDropped) {
  Vtep stranger("127.0.0.9");
  stranger.Send(probe_port_, EthFrame(kBroadcast, Mac(0x525400000909)));
  ASSERT_TRUE(RunUntil([&] { return endpoint_->counters().rx_unknown_vtep == 1; }));
  Settle();
  EXPECT_EQ(local_->captured_count(), 0u);
  EXPECT_EQ(C("vx-a").rx_packets + C("vx-b").rx_packets, 0u);
  EXPECT_FALSE(FdbPort(Mac(0x525400000909)).has_value());
}

TEST_F(VxlanEndpointTest, AnotherVniOrARuntIsMalformedOnItsPeer) {
  a_.Send(probe_port_, EthFrame(kBroadcast, kRemoteA), kVni + 1);
  a_.Send(probe_port_, std::vector<uint8_t>(10, 0));  // shorter than an Ethernet header
  ASSERT_TRUE(RunUntil([&] { return C("vx-a").drop(DropReason::kMalformed) == 2; }));
  EXPECT_EQ(local_->captured_count(), 0u);
  EXPECT_EQ(endpoint_->counters().rx_unknown_vtep, 0u);
}

TEST_F(VxlanEndpointTest, ManyFramesFromBothPeersAllArrive) {
  // More datagrams than one drain takes, for both peers at once: frames
  // queued for the peer that did not drain must still be delivered.
  constexpr int kEach = 100;
  for (int i = 0; i < kEach; ++i) {
    a_.Send(probe_port_, EthFrame(kLocal, kRemoteA));
    b_.Send(probe_port_, EthFrame(kLocal, kRemoteB));
  }
  ASSERT_TRUE(RunUntil([&] { return local_->captured_count() == 2 * kEach; }))
      << local_->captured_count();
  EXPECT_EQ(C("vx-a").rx_packets, static_cast<uint64_t>(kEach));
  EXPECT_EQ(C("vx-b").rx_packets, static_cast<uint64_t>(kEach));
}

TEST_F(VxlanEndpointTest, APeerTwiceOrOfAnotherFamilyIsRefused) {
  auto twice = endpoint_->OpenPeer("vx-a2", Address("127.0.0.2"), 4789);
  EXPECT_FALSE(twice.ok());
  auto v6 = endpoint_->OpenPeer("vx-6", Address("2001:db8::1"), 4789);
  EXPECT_FALSE(v6.ok());
}

TEST_F(VxlanEndpointTest, ARemovedPeerIsAStrangerAndItsPortCanComeBack) {
  ASSERT_TRUE(sw_->RemovePort(ids_.at("vx-a")).ok());
  a_.Send(probe_port_, EthFrame(kBroadcast, kRemoteA));
  ASSERT_TRUE(RunUntil([&] { return endpoint_->counters().rx_unknown_vtep == 1; }));
  AddPeer("vx-a", "127.0.0.2", a_);
  a_.Send(probe_port_, EthFrame(kBroadcast, kRemoteA));
  ASSERT_TRUE(RunUntil([&] { return local_->captured_count() == 1; }));
}

// Without a switch: the datagram of peer b drained through peer a's
// Receive must leave b's descriptor readable (the socket is empty by then),
// or b's frame would wait for the next datagram.
TEST(VxlanEndpointAlone, AFrameQueuedForAnotherPeerWakesIt) {
  auto pool = FramePool::Create(64, 2048);
  ASSERT_TRUE(pool.ok());
  Vtep a("127.0.0.2"), b("127.0.0.3");
  VxlanEndpointOptions options;
  options.local = Address("127.0.0.1");
  options.port = FreePort();
  options.vni = kVni;
  auto endpoint = VxlanEndpoint::Open("alone", options);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().message();
  auto port_a = (*endpoint)->OpenPeer("vx-a", Address("127.0.0.2"), a.port());
  auto port_b = (*endpoint)->OpenPeer("vx-b", Address("127.0.0.3"), b.port());
  ASSERT_TRUE(port_a.ok() && port_b.ok());
  b.Send(options.port, EthFrame(kBroadcast, kRemoteB));
  pollfd ready{(*port_a)->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&ready, 1, 1000), 1);
  std::array<Frame*, 8> frames{};
  uint64_t no_buffer = 0, malformed = 0;
  EXPECT_EQ((*port_a)->Receive(**pool, frames, &no_buffer, &malformed), 0u);
  pollfd b_ready{(*port_b)->fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&b_ready, 1, 0), 1) << "b's queued frame does not wake b";
  ASSERT_EQ((*port_b)->Receive(**pool, frames, &no_buffer, &malformed), 1u);
  EXPECT_EQ(frames[0]->bytes()[6], 0x52);
  (*pool)->Free(frames[0]);
  // Taken: b is quiet again.
  EXPECT_EQ(::poll(&b_ready, 1, 0), 0);
  EXPECT_EQ(no_buffer + malformed, 0u);
}

}  // namespace
}  // namespace vfabric::bridge
