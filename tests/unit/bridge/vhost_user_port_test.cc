// vhost-user ports on a real switch: test frontends (the guests' side) on
// both ends, frames across (flooded, then unicast once learned; broadcast;
// VLAN tagging), a frontend that disconnects mid-stream, a server-mode
// port that takes the next frontend, guests' offloads carried through.
#include "vfabric/bridge/vhost_user_port.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>

#include "frames.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/vhost_user/testing/test_frontend.h"

namespace vfabric::bridge {
namespace {

using testing::EthFrame;
using testing::kBroadcast;
using testing::Mac;
using testing::TagOf;
using vhost_user::Bit;
using vhost_user::kDefaultFeatures;
using vhost_user::kDefaultProtocolFeatures;
using vhost_user::kSetFeatures;
using vhost_user::kSetProtocolFeatures;
using vhost_user::kSetVringNum;
using vhost_user::testing::GuestPacket;
using vhost_user::testing::State;
using vhost_user::testing::U64;
namespace feature = vhost_user::feature;
using vhost_user::testing::TestFrontend;
using vhost_user::testing::TestFrontendOptions;

const MacAddress kA = Mac(0x525400000001);
const MacAddress kB = Mac(0x525400000002);
const MacAddress kC = Mac(0x525400000003);

class VhostUserPortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SwitchConfig config;
    config.name = "vu";
    config.pool_frames = 256;
    config.buffer_size = 65536 + kFrameHeadroom;
    config.fdb.hash_seed = 0x77;
    config.fdb.max_ports = 8;
    auto sw = Switch::Create(std::move(config));
    ASSERT_TRUE(sw.ok()) << sw.status().message();
    sw_ = std::move(sw).value();
  }

  // A vhost-user port with a test frontend on a socketpair.
  void AddGuest(const std::string& name, PortSettings settings = {},
                VhostUserPortOptions options = {}, TestFrontendOptions frontend = {}) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto port = VhostUserPort::FromConnection(name, UniqueFd(sv[1]), options);
    ASSERT_TRUE(port.ok()) << port.status().message();
    vu_[name] = port->get();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    ASSERT_TRUE(id.ok()) << id.status().message();
    ids_[name] = *id;
    std::function<void()> pump;
    if (!sw_->running()) pump = [this] { sw_->RunOnce(0); };
    auto f = TestFrontend::Create(UniqueFd(sv[0]), frontend, pump);
    ASSERT_TRUE(f.ok()) << f.status().message();
    guests_[name] = std::move(f).value();
    ASSERT_TRUE(guests_[name]->Start().ok());
    ASSERT_TRUE(guests_[name]->PostReceiveBuffers(64).ok());
    Run();
    if (!sw_->running()) {
      EXPECT_TRUE(vu_[name]->up());
    }
  }
  MemoryPort* AddMemory(const std::string& name, PortSettings settings = {}) {
    MemoryPortOptions options;  // with an eventfd: the switch sleeps in epoll
    auto port = MemoryPort::Create(name, options);
    EXPECT_TRUE(port.ok());
    MemoryPort* raw = port->get();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    EXPECT_TRUE(id.ok());
    ids_[name] = *id;
    return raw;
  }
  // Turns enough for a frame to cross (a switch polling a busy port asks
  // epoll only every 16th turn).
  void Run(int turns = 20) {
    for (int i = 0; i < turns; ++i) sw_->RunOnce(0);
  }
  void Send(const std::string& guest, const std::vector<uint8_t>& frame,
            std::span<const uint8_t> header = {}) {
    ASSERT_TRUE(guests_.at(guest)->Transmit(frame, header).ok());
    Run();
  }
  std::vector<GuestPacket> Received(const std::string& guest) {
    auto got = guests_.at(guest)->TakeReceived();
    // Keep the guest's receive ring stocked.
    EXPECT_TRUE(guests_.at(guest)->PostReceiveBuffers(got.size()).ok());
    return got;
  }
  PortCounters C(const std::string& name) { return *sw_->Counters(ids_.at(name)); }

  std::unique_ptr<Switch> sw_;
  std::map<std::string, VhostUserPort*> vu_;
  std::map<std::string, PortId> ids_;
  std::map<std::string, std::unique_ptr<TestFrontend>> guests_;
};

TEST_F(VhostUserPortTest, FramesCrossFloodedThenUnicastOnceLearned) {
  AddGuest("a");
  AddGuest("b");
  MemoryPort* c = AddMemory("c");
  const auto ab = EthFrame(kB, kA, std::nullopt, 0x0800, 100);
  Send("a", ab);  // B unknown: flooded to b and c
  auto at_b = Received("b");
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].frame, ab);
  EXPECT_EQ(c->TakeCaptured().size(), 1u);
  Send("b", EthFrame(kA, kB));  // A learned on a: unicast
  auto at_a = Received("a");
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0].frame, EthFrame(kA, kB));
  EXPECT_EQ(c->TakeCaptured().size(), 0u);
  Send("a", ab);  // B learned on b
  EXPECT_EQ(Received("b").size(), 1u);
  EXPECT_EQ(c->TakeCaptured().size(), 0u);
  EXPECT_EQ(Received("a").size(), 0u) << "never back to the ingress port";
  // Counters: the switch's and the port's own.
  EXPECT_EQ(C("a").rx_packets, 2u);
  EXPECT_EQ(C("a").tx_packets, 1u);
  EXPECT_EQ(C("b").tx_packets, 2u);
  EXPECT_EQ(C("a").total_drops(), 0u);
  EXPECT_EQ(C("b").total_drops(), 0u);
  const VhostUserStats s = vu_["a"]->stats();
  EXPECT_GE(s.kicks, 1u);
  EXPECT_GE(s.messages, 10u);
  EXPECT_EQ(s.messages_refused, 0u);
  EXPECT_GE(vu_["b"]->stats().calls, 1u);
}

TEST_F(VhostUserPortTest, AnIdlePortMakesNoCallsAndSuppressesNone) {
  AddGuest("a");
  AddGuest("b");
  Send("a", EthFrame(kBroadcast, kA));
  ASSERT_EQ(Received("b").size(), 1u);
  const VhostUserStats before[2] = {vu_["a"]->stats(), vu_["b"]->stats()};
  Run(200);  // polled while busy, then idle: nothing published, nothing to call about
  const VhostUserStats after[2] = {vu_["a"]->stats(), vu_["b"]->stats()};
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(after[i].calls, before[i].calls) << i;
    EXPECT_EQ(after[i].calls_suppressed, before[i].calls_suppressed) << i;
  }
}

TEST_F(VhostUserPortTest, BroadcastReachesEveryGuestButTheSender) {
  AddGuest("a");
  AddGuest("b");
  AddGuest("c");
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Received("a").size(), 0u);
  EXPECT_EQ(Received("b").size(), 1u);
  EXPECT_EQ(Received("c").size(), 1u);
}

TEST_F(VhostUserPortTest, VlanTaggingAsForOtherPorts) {
  AddGuest("a10", {PortVlanConfig::Access(10)});
  AddGuest("trunk", {PortVlanConfig::Trunk(*VlanSet::Parse("10,20"), 1, false)});
  AddGuest("a20", {PortVlanConfig::Access(20)});
  // Access 10 -> trunk: tagged 10 (the port inserts the tag while copying).
  const auto frame = EthFrame(kBroadcast, kA);
  Send("a10", frame);
  auto t = Received("trunk");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(TagOf(t[0].frame), uint16_t{10});
  EXPECT_EQ(t[0].frame.size(), frame.size() + 4);
  EXPECT_EQ(Received("a20").size(), 0u);
  // Trunk tagged 20 -> access 20, untagged.
  Send("trunk", EthFrame(kBroadcast, kB, uint16_t{20}));
  auto a20 = Received("a20");
  ASSERT_EQ(a20.size(), 1u);
  EXPECT_EQ(a20[0].frame, EthFrame(kBroadcast, kB));
  EXPECT_EQ(Received("a10").size(), 0u);
  // A tagged frame from an access port is refused.
  Send("a10", EthFrame(kBroadcast, kA, uint16_t{10}));
  EXPECT_EQ(C("a10").drop(DropReason::kVlanNotAllowed), 1u);
}

TEST_F(VhostUserPortTest, AFrontendThatDisconnectsMidStreamLeavesThePortDownAndTheSwitchRunning) {
  AddGuest("a");
  AddGuest("b");
  MemoryPort* c = AddMemory("c");
  // a queues frames and hangs up before the switch read them all.
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(guests_["a"]->Transmit(EthFrame(kBroadcast, kA, std::nullopt, 0x88b5, 60)).ok());
  sw_->RunOnce(0);
  guests_["a"]->Disconnect();
  Run(8);
  EXPECT_FALSE(vu_["a"]->connected());
  EXPECT_FALSE(vu_["a"]->up());
  EXPECT_EQ(vu_["a"]->stats().disconnects, 1u);
  // Frames for a are dropped and counted; b and c still talk.
  c->TakeCaptured();
  Received("b");
  Send("b", EthFrame(kBroadcast, kB));
  EXPECT_EQ(c->TakeCaptured().size(), 1u);
  EXPECT_GE(C("a").drop(DropReason::kTxError), 1u);
  EXPECT_GE(vu_["a"]->stats().tx_not_ready, 1u);
  c->Inject(EthFrame(kB, kC));
  Run();
  EXPECT_EQ(Received("b").size(), 1u);
  // The port stays in the switch, down; nothing failed.
  for (const PortInfo& p : sw_->Ports()) EXPECT_FALSE(p.failed) << p.name;
}

// What netctl port show reports: the features the frontend acked, the
// rings' state and indices (a snapshot any thread may read).
TEST_F(VhostUserPortTest, NegotiatedFeaturesAndRingStateAreReported) {
  TestFrontendOptions frontend;
  frontend.features = kDefaultFeatures & ~Bit(feature::kEventIdx);
  frontend.queue_size = 128;
  AddGuest("a", {}, {}, frontend);
  AddGuest("b");
  VhostUserNegotiated n = vu_["a"]->negotiated();
  EXPECT_EQ(n.features, guests_["a"]->acked_features());
  EXPECT_EQ(n.features & Bit(feature::kEventIdx), 0u);
  EXPECT_NE(n.features & Bit(feature::kVersion1), 0u);
  EXPECT_EQ(n.protocol_features, kDefaultProtocolFeatures);
  EXPECT_EQ(n.queue_pairs, 1u);
  EXPECT_EQ(n.memory_regions, 1u);
  EXPECT_EQ(n.memory_regions_sealed, 0u);  // the test frontend's memfds are not sealed
  for (const VhostUserRingState& r : n.rings) {
    EXPECT_TRUE(r.started && r.enabled && r.ready);
    EXPECT_FALSE(r.broken);
    EXPECT_EQ(r.size, 128u);
  }
  EXPECT_EQ(n.rings[1].last_avail_idx, 0u);
  for (int i = 0; i < 3; ++i) Send("a", EthFrame(kBroadcast, kA));
  Send("b", EthFrame(kA, kB));
  n = vu_["a"]->negotiated();
  EXPECT_EQ(n.rings[1].last_avail_idx, 3u);  // from the guest: 3 frames taken
  EXPECT_EQ(n.rings[1].used_idx, 3u);
  EXPECT_EQ(n.rings[0].used_idx, 1u);  // to the guest: 1 frame
  EXPECT_EQ(vu_["b"]->negotiated().features & Bit(feature::kEventIdx), Bit(feature::kEventIdx));
  // A ring the frontend disables says so.
  ASSERT_TRUE(guests_["a"]->Enable(0, false).ok());
  Run();
  n = vu_["a"]->negotiated();
  EXPECT_FALSE(n.rings[0].enabled);
  EXPECT_FALSE(n.rings[0].ready);
  EXPECT_TRUE(n.rings[1].enabled);
  // Gone: nothing negotiated.
  guests_["a"]->Disconnect();
  Run();
  n = vu_["a"]->negotiated();
  EXPECT_EQ(n.features, 0u);
  EXPECT_EQ(n.queue_pairs, 0u);
  EXPECT_FALSE(n.rings[1].started);
}

// A frontend that cuts the memory file it passed in SET_MEM_TABLE short
// while frames flow to its guest: the switch's next access to the rings
// faulted with SIGBUS and killed the process. Now the port goes down with
// the reason counted, and the switch and the other ports run on.
TEST_F(VhostUserPortTest, AFrontendThatShrinksItsMemoryLeavesThePortDownAndTheSwitchRunning) {
  AddGuest("a");
  AddGuest("b");
  MemoryPort* c = AddMemory("c");
  Send("a", EthFrame(kBroadcast, kA));
  ASSERT_EQ(Received("b").size(), 1u);
  c->TakeCaptured();
  // b's memory shrinks under the switch (from here the test must not touch
  // b's rings itself: its own mapping would fault).
  ASSERT_EQ(::ftruncate(guests_["b"]->ram().fds()[0].get(), 4096), 0);
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(guests_["a"]->Transmit(EthFrame(kBroadcast, kA, std::nullopt, 0x88b5, 60)).ok());
  Run();
  EXPECT_FALSE(vu_["b"]->connected());
  EXPECT_FALSE(vu_["b"]->up());
  EXPECT_EQ(vu_["b"]->stats().memory_faults, 1u);
  EXPECT_EQ(vu_["b"]->stats().disconnects, 1u);
  EXPECT_EQ(vu_["a"]->stats().memory_faults, 0u);
  EXPECT_TRUE(vu_["a"]->up());
  // The switch runs on: a's frames reach c, and c's reach a.
  EXPECT_EQ(c->TakeCaptured().size(), 8u);
  c->Inject(EthFrame(kA, kC));
  Run();
  EXPECT_EQ(Received("a").size(), 1u);
  for (const PortInfo& p : sw_->Ports()) EXPECT_FALSE(p.failed) << p.name;
}

// A frontend that insists on packed rings or multiqueue is refused; the
// port counts why (netctl port show) and stays down; the switch runs on.
TEST_F(VhostUserPortTest, AFrontendInsistingOnPackedRingsOrMultiqueueIsRefusedAndCounted) {
  AddGuest("a");
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto port = VhostUserPort::FromConnection("p", UniqueFd(sv[1]));
  ASSERT_TRUE(port.ok()) << port.status().message();
  VhostUserPort* p = port->get();
  ASSERT_TRUE(sw_->AddPort(std::move(port).value(), {}).ok());
  auto f = TestFrontend::Create(UniqueFd(sv[0]), {}, [this] { sw_->RunOnce(0); });
  ASSERT_TRUE(f.ok()) << f.status().message();
  TestFrontend& frontend = **f;
  // The backend's ack of one message (REPLY_ACK once negotiated): 0 success.
  auto ack = [&](uint32_t request, const std::vector<uint8_t>& payload) -> uint64_t {
    EXPECT_TRUE(frontend.Send(request, payload).ok());
    auto reply = frontend.Receive();
    EXPECT_TRUE(reply.ok() && reply->payload.size() == 8);
    uint64_t v = ~0ull;
    if (reply.ok() && reply->payload.size() == 8) std::memcpy(&v, reply->payload.data(), 8);
    return v;
  };
  ASSERT_EQ(ack(kSetProtocolFeatures, U64(kDefaultProtocolFeatures)), 0u);
  EXPECT_NE(ack(kSetFeatures, U64(kDefaultFeatures | Bit(feature::kRingPacked))), 0u);
  EXPECT_NE(ack(kSetFeatures, U64(kDefaultFeatures | Bit(feature::kMq))), 0u);
  EXPECT_NE(ack(kSetVringNum, State(2, 256)), 0u);
  Run();
  const VhostUserStats stats = p->stats();
  EXPECT_EQ(stats.refused_packed_ring, 1u);
  EXPECT_EQ(stats.refused_multiqueue, 2u);
  EXPECT_EQ(stats.messages_refused, 3u);
  EXPECT_TRUE(p->connected());
  EXPECT_FALSE(p->up());
  EXPECT_EQ(vu_["a"]->stats().refused_packed_ring, 0u);
  // The other guest is not disturbed.
  AddGuest("b");
  Received("b");
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Received("b").size(), 1u);
}

TEST_F(VhostUserPortTest, ADisabledRingDropsWhatItIsAskedToSend) {
  AddGuest("a");
  AddGuest("b");
  ASSERT_TRUE(guests_["b"]->Enable(0, false).ok());
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Received("b").size(), 0u);
  EXPECT_EQ(C("b").drop(DropReason::kTxError), 1u);
  EXPECT_EQ(vu_["b"]->stats().tx_not_ready, 1u);
  ASSERT_TRUE(guests_["b"]->Enable(0, true).ok());
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Received("b").size(), 1u);
}

TEST_F(VhostUserPortTest, AGuestWithoutBuffersCountsAFullQueue) {
  AddGuest("a");
  AddGuest("b");
  Received("b");
  // Take b's buffers away: fill them all.
  for (int i = 0; i < 70; ++i)
    ASSERT_TRUE(guests_["a"]->Transmit(EthFrame(kBroadcast, kA)).ok()) << i;
  Run(8);
  EXPECT_EQ(C("b").tx_packets, 64u);
  EXPECT_EQ(C("b").drop(DropReason::kTxQueueFull), 6u);
  EXPECT_EQ(vu_["b"]->stats().tx_no_buffers, 6u);
}

TEST_F(VhostUserPortTest, HostileChainsAreCountedAsMalformed) {
  AddGuest("a");
  AddGuest("b");
  auto& tx = guests_["a"]->tx();
  tx.SetDesc(250, 0xdead00000000, 64, 0, 0);
  tx.MakeAvailable(250);
  guests_["a"]->Kick(1);
  Run();
  EXPECT_EQ(C("a").drop(DropReason::kMalformed), 1u);
  EXPECT_EQ(vu_["a"]->stats().ring_errors[static_cast<size_t>(vhost_user::RingError::kBadAddress)],
            1u);
  // A runt (shorter than header + Ethernet header).
  Send("a", std::vector<uint8_t>(8, 1));
  EXPECT_EQ(C("a").drop(DropReason::kMalformed), 2u);
  EXPECT_EQ(vu_["a"]->stats().rx_bad_header, 1u);
  // Still forwarding.
  Send("a", EthFrame(kBroadcast, kA));
  EXPECT_EQ(Received("b").size(), 1u);
}

TEST_F(VhostUserPortTest, GuestOffloadsCrossToAPortThatTakesThem) {
  AddGuest("a");
  MemoryPort* c = AddMemory("c");
  // A TCPv4 GSO frame as a guest with TSO sends it: hdr_len 54, gso_size 1448,
  // csum at 34+16.
  std::vector<uint8_t> frame = EthFrame(kB, kA, std::nullopt, 0x0800, 3000);
  frame[14] = 0x45;  // enough of an IPv4 header for the switch's sanity checks
  frame[23] = 6;
  uint8_t hdr[12] = {
      VnetHdr::kNeedsCsum, VnetHdr::kGsoTcpV4, 54, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0};
  Send("a", frame, hdr);
  auto got = c->TakeCaptured();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, frame);
  EXPECT_EQ(got[0].vnet.gso_type, VnetHdr::kGsoTcpV4);
  EXPECT_EQ(got[0].vnet.gso_size, 1448);
  EXPECT_EQ(got[0].vnet.csum_start, 34);
  EXPECT_EQ(got[0].vnet.csum_offset, 16);
  // A guest that did not negotiate HOST_TSO4 may not send one.
  TestFrontendOptions plain;
  plain.features = vhost_user::kDefaultFeatures & ~vhost_user::Bit(vhost_user::feature::kHostTso4);
  AddGuest("d", {}, {}, plain);
  Send("d", frame, hdr);
  EXPECT_EQ(c->TakeCaptured().size(), 0u);
  EXPECT_EQ(vu_["d"]->stats().rx_bad_header, 1u);
}

TEST_F(VhostUserPortTest, OnTheSwitchsOwnDatapathThread) {
  ASSERT_TRUE(sw_->Start().ok());
  AddGuest("a");
  AddGuest("b");
  const auto frame = EthFrame(kBroadcast, kA, std::nullopt, 0x88b5, 200);
  std::vector<GuestPacket> got;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(guests_["a"]->Transmit(frame).ok());
    // Wait for it (the datapath thread wakes on the kick).
    for (int wait = 0; wait < 5000 && got.size() <= static_cast<size_t>(i); ++wait) {
      auto more = Received("b");
      got.insert(got.end(), more.begin(), more.end());
      if (got.size() <= static_cast<size_t>(i)) ::usleep(200);
    }
    ASSERT_EQ(got.size(), static_cast<size_t>(i + 1)) << i;
    EXPECT_EQ(got.back().frame, frame);
  }
  sw_->Stop();
}

TEST_F(VhostUserPortTest, ServerModeTakesTheNextFrontendAfterOneLeaves) {
  char dir[] = "/tmp/vfabric-vu-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/vu0.sock";
  auto listener = VhostUserPort::ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status().message();
  auto port = VhostUserPort::Listen("vu0", std::move(listener).value());
  ASSERT_TRUE(port.ok());
  VhostUserPort* vu = port->get();
  ASSERT_TRUE(sw_->AddPort(std::move(port).value()).ok());
  MemoryPort* c = AddMemory("c");
  auto connect = [&] {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    auto f = TestFrontend::Create(std::move(fd), {}, [this] { sw_->RunOnce(0); });
    EXPECT_TRUE(f.ok());
    return std::move(f).value();
  };
  for (int round = 0; round < 2; ++round) {
    auto guest = connect();
    ASSERT_TRUE(guest->Start().ok()) << round;
    Run();
    EXPECT_TRUE(vu->up());
    ASSERT_TRUE(guest->Transmit(EthFrame(kBroadcast, kA)).ok());
    Run();
    EXPECT_EQ(c->TakeCaptured().size(), 1u) << round;
    guest->Disconnect();
    Run();
    EXPECT_FALSE(vu->connected());
  }
  EXPECT_EQ(vu->stats().connections, 2u);
  EXPECT_EQ(vu->stats().disconnects, 2u);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// A socket file at `path` whose listener is gone (a crashed netd's), or,
// with `keep`, one that still listens (returned).
UniqueFd SocketFileAt(const std::string& path, bool keep) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  if (!keep) fd.Reset();
  return fd;
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class VhostUserSocketTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(::mkdtemp(dir_), nullptr); }
  void TearDown() override {
    ::unlink(path().c_str());
    ::rmdir(dir_);
  }
  std::string path() const { return std::string(dir_) + "/vu0.sock"; }
  char dir_[32] = "/tmp/vfabric-vu-XXXXXX";
};

// A server-mode port that goes (removed from the topology, netd stopping)
// removes its socket file: a frontend must not wait on a dead socket.
TEST_F(VhostUserSocketTest, APortThatGoesRemovesItsSocketFile) {
  auto listener = VhostUserPort::ListenUnix(path());
  ASSERT_TRUE(listener.ok()) << listener.status().message();
  VhostUserPortOptions options;
  options.socket_path = path();
  auto port = VhostUserPort::Listen("vu0", std::move(listener).value(), options);
  ASSERT_TRUE(port.ok()) << port.status().message();
  EXPECT_NE(Inode(path()), 0u);
  port->reset();
  EXPECT_EQ(Inode(path()), 0u) << "the socket file is left behind";
}

// ...but only its own: a socket made at the path since (another port's)
// stays.
TEST_F(VhostUserSocketTest, APortThatGoesLeavesASocketThatIsNotItsOwn) {
  auto listener = VhostUserPort::ListenUnix(path());
  ASSERT_TRUE(listener.ok()) << listener.status().message();
  VhostUserPortOptions options;
  options.socket_path = path();
  auto port = VhostUserPort::Listen("vu0", std::move(listener).value(), options);
  ASSERT_TRUE(port.ok());
  ASSERT_EQ(::unlink(path().c_str()), 0);
  UniqueFd other = SocketFileAt(path(), /*keep=*/true);
  const ino_t inode = Inode(path());
  port->reset();
  EXPECT_EQ(Inode(path()), inode);
}

// A crashed netd leaves its socket file; nothing listens there, so the
// port listens again in its place.
TEST_F(VhostUserSocketTest, AStaleSocketFileIsReplaced) {
  SocketFileAt(path(), /*keep=*/false);
  ASSERT_NE(Inode(path()), 0u);
  auto listener = VhostUserPort::ListenUnix(path());
  ASSERT_TRUE(listener.ok()) << listener.status().message();
  // (Not the inode: tmpfs hands the freed one out again.) It listens.
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path().c_str(), path().size() + 1);
  EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
}

// A socket something still listens on is not taken from it, and a file
// that is not a socket is not removed.
TEST_F(VhostUserSocketTest, ALiveSocketOrAnotherFileIsLeftAlone) {
  UniqueFd live = SocketFileAt(path(), /*keep=*/true);
  const ino_t inode = Inode(path());
  auto refused = VhostUserPort::ListenUnix(path());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().error_number(), EADDRINUSE) << refused.status().message();
  EXPECT_EQ(Inode(path()), inode);
  live.Reset();
  ASSERT_EQ(::unlink(path().c_str()), 0);
  { std::ofstream(path()) << "not a socket"; }
  auto file = VhostUserPort::ListenUnix(path());
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().error_number(), EEXIST) << file.status().message();
  struct stat st {};
  ASSERT_EQ(::lstat(path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

}  // namespace
}  // namespace vfabric::bridge
