// Packet-socket ports on real veths: when the kernel hands a frame over,
// and the frames larger than a ring slot. Each test runs in a private
// network namespace; the links are named vfpkt-*.
//
// No test here measures time. "Handed over at once" is checked by order of
// events instead: a plain packet socket (the observer) is bound to the
// port's link before the port, so the kernel delivers every frame to the
// port's ring first and to the observer right after, in the same softirq
// (a device's ETH_P_ALL hooks are called newest first). Once the observer
// has a frame, the port's fd must already be readable and one non-blocking
// turn of the switch must forward it. A TPACKET_V3 ring fails this: it
// hands over only full blocks or blocks its retire timer (>= 1 jiffy)
// closed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/bridge/ports.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/testing/support.h"

namespace vfabric::bridge {
namespace {

#define RUN_OK(...)                                          \
  do {                                                       \
    auto vf_r_ = ::vfabric::testing::Run(__VA_ARGS__);       \
    ASSERT_EQ(vf_r_.exit_code, 0) << vf_r_.out << vf_r_.err; \
  } while (0)

// An AF_PACKET socket bound to one link: sends frames, or waits for the
// next frame the link receives (outgoing ones skipped).
class LinkSocket {
 public:
  explicit LinkSocket(const std::string& link) {
    fd_.Reset(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    const int ifindex = static_cast<int>(::if_nametoindex(link.c_str()));
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = ifindex;
    const int one = 1;
    ok_ = fd_.valid() && ifindex > 0 &&
          ::setsockopt(fd_.get(), SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) == 0 &&
          ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    // A bound on a failing test, not a measurement: frames come in microseconds.
    timeval tv{10, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool ok() const { return ok_; }
  bool Send(const std::vector<uint8_t>& frame) {
    return ::send(fd_.get(), frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size());
  }
  // The next received frame's bytes (the kernel's tag put back from its
  // metadata), or nothing after the timeout.
  std::vector<uint8_t> WaitFrame() {
    std::vector<uint8_t> buf(1 << 16);
    while (true) {
      iovec iov{buf.data(), buf.size()};
      alignas(tpacket_auxdata) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
      sockaddr_ll from{};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
      if (n < 0) return {};
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      std::vector<uint8_t> frame(buf.begin(), buf.begin() + n);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
        tpacket_auxdata aux;
        std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
        if ((aux.tp_status & TP_STATUS_VLAN_VALID) != 0 && frame.size() >= 12)
          frame.insert(frame.begin() + 12, {0x81, 0x00, static_cast<uint8_t>(aux.tp_vlan_tci >> 8),
                                            static_cast<uint8_t>(aux.tp_vlan_tci & 0xff)});
      }
      return frame;
    }
  }
  // Length of the next received frame, or -1.
  ssize_t WaitOne() {
    std::vector<uint8_t> buf(1 << 16);
    while (true) {
      sockaddr_ll from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), MSG_TRUNC,
                                   reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return -1;
      if (from.sll_pkttype != PACKET_OUTGOING) return n;
    }
  }

 private:
  UniqueFd fd_;
  bool ok_ = false;
};

// A frame of `size` bytes (untagged length) from `src` to an unknown
// unicast MAC, ethertype 0x88b5, tagged `vid` (0: untagged), payload a
// pattern numbered `seq`.
std::vector<uint8_t> TestFrame(uint8_t src, uint16_t vid, size_t size, uint8_t seq) {
  std::vector<uint8_t> f = {0x02, 0, 0, 0, 0xee, 0x01, 0x02, 0, 0, 0, 0x5a, src};
  if (vid)
    f.insert(f.end(),
             {0x81, 0x00, static_cast<uint8_t>(vid >> 8), static_cast<uint8_t>(vid & 0xff)});
  f.insert(f.end(), {0x88, 0xb5});
  for (size_t i = 14; i < size; ++i) f.push_back(static_cast<uint8_t>(i * 7 + seq));
  return f;
}

std::vector<uint8_t> Untagged(std::vector<uint8_t> f) {
  if (f.size() >= 16 && f[12] == 0x81 && f[13] == 0x00) f.erase(f.begin() + 12, f.begin() + 16);
  return f;
}

class PacketPortIntegrationTest : public ::testing::Test {
 protected:
  void TearDown() override { sw_.reset(); }

  // The switch (not started: the test drives its turns) and the veth
  // vfpkt-a0 (the port's link) / vfpkt-a1 (the far end, where frames are
  // sent), IPv6 off so the kernel adds no frames of its own.
  void MakeSwitchAndVeth(int mtu = 1500, uint32_t kernel_stats_interval_ms = 1000) {
    SwitchConfig config;
    config.name = "pkt";
    config.kernel_stats_interval_ms = kernel_stats_interval_ms;
    config.fdb.max_ports = 8;
    config.pool_frames = 256;
    auto sw = Switch::Create(std::move(config));
    ASSERT_TRUE(sw.ok()) << sw.status().message();
    sw_ = std::move(sw).value();
    RUN_OK({"ip", "link", "add", "vfpkt-a0", "mtu", std::to_string(mtu), "type", "veth", "peer",
            "name", "vfpkt-a1", "mtu", std::to_string(mtu)});
    for (const char* end : {"vfpkt-a0", "vfpkt-a1"})
      testing::WriteFile(std::string("/proc/sys/net/ipv6/conf/") + end + "/disable_ipv6", "1");
    RUN_OK({"ip", "link", "set", "vfpkt-a0", "up"});
    RUN_OK({"ip", "link", "set", "vfpkt-a1", "up"});
  }

  // Opens the packet port on vfpkt-a0 (after the observer, see above).
  PortId AddPacketPort(PortSettings settings, int* fd_out) {
    auto port = OpenPacketSocketPort("vfpkt-a0", static_cast<int>(::if_nametoindex("vfpkt-a0")));
    EXPECT_TRUE(port.ok()) << port.status().message();
    if (!port.ok()) return kNoPort;
    *fd_out = (*port)->fd();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : kNoPort;
  }

  // The packet port with `settings` and a memory port "mem" with
  // `mem_settings` to send from or capture into.
  PortId AddPacketAndMemoryPort(PortSettings settings, PortSettings mem_settings, int* fd_out,
                                MemoryPort** mem) {
    const PortId port = AddPacketPort(settings, fd_out);
    *mem = AddMemoryPort("mem", mem_settings);
    return *mem != nullptr ? port : kNoPort;
  }

  // MakeSwitchAndVeth, then the packet port and a memory port "mem", both
  // without VLAN settings, and far_ on the veth's far end.
  void MakeSwitchWithUntaggedPortsAndFarSocket(PortId* port, MemoryPort** mem) {
    ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth());
    int fd = -1;
    *port = AddPacketAndMemoryPort({}, {}, &fd, mem);
    ASSERT_NE(*port, kNoPort);
    far_.emplace("vfpkt-a1");
    ASSERT_TRUE(far_->ok());
  }

  // The packet port as a trunk of VLAN 10 (native 1) and an access port of
  // VLAN 10 to send from.
  PortId AddTrunkToVlan10(int* fd_out, MemoryPort** v10) {
    return AddPacketAndMemoryPort({PortVlanConfig::Trunk(*VlanSet::Parse("10"), 1)},
                                  {PortVlanConfig::Access(10)}, fd_out, v10);
  }

  MemoryPort* AddMemoryPort(const std::string& name, PortSettings settings) {
    auto port = MemoryPort::Create(name);
    EXPECT_TRUE(port.ok());
    if (!port.ok()) return nullptr;
    MemoryPort* raw = port->get();
    auto id = sw_->AddPort(std::move(port).value(), settings);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? raw : nullptr;
  }

  std::unique_ptr<Switch> sw_;
  std::optional<LinkSocket> far_;
};

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST_F(PacketPortIntegrationTest, ASingleFrameIsHandedOverAtOnce) {
  VF_REQUIRE_PRIVATE_NETNS();
  ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth());
  LinkSocket observer("vfpkt-a0");
  ASSERT_TRUE(observer.ok());
  int fd = -1;
  const PortId port = AddPacketPort({}, &fd);
  ASSERT_NE(port, kNoPort);
  MemoryPort* mem = AddMemoryPort("mem", {});
  ASSERT_NE(mem, nullptr);
  LinkSocket far("vfpkt-a1");
  ASSERT_TRUE(far.ok());
  // One frame at a time, as a ping or a lone TCP ACK: each one must be
  // readable and forwarded by the first turn after the kernel has it.
  for (int i = 1; i <= 20; ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    ASSERT_TRUE(far.Send(TestFrame(1, 0, 60, static_cast<uint8_t>(i))));
    ASSERT_EQ(observer.WaitOne(), 60);
    EXPECT_TRUE(Readable(fd)) << "the port's fd is not readable with a frame waiting";
    EXPECT_EQ(sw_->RunOnce(0), 1u);
    EXPECT_EQ(mem->captured_count(), static_cast<size_t>(i));
    // Nothing left over: the fd is quiet again (level-triggered epoll).
    EXPECT_FALSE(Readable(fd));
  }
  EXPECT_EQ(sw_->Counters(port)->rx_packets, 20u);
  EXPECT_EQ(sw_->Counters(port)->total_drops(), 0u);
}

// Frames larger than a ring slot (2 KiB) are read from the socket's queue
// (TP_STATUS_COPY), in order with the ring's, the tag the kernel took out
// put back.
TEST_F(PacketPortIntegrationTest, FramesLargerThanASlotKeepTheirOrderBytesAndTag) {
  VF_REQUIRE_PRIVATE_NETNS();
  ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth(9000));
  LinkSocket observer("vfpkt-a0");
  ASSERT_TRUE(observer.ok());
  int fd = -1;
  const PortId port = AddPacketPort({PortVlanConfig::Trunk(*VlanSet::Parse("10"), 1)}, &fd);
  ASSERT_NE(port, kNoPort);
  MemoryPort* v10 = AddMemoryPort("v10", {PortVlanConfig::Access(10)});
  MemoryPort* v1 = AddMemoryPort("v1", {PortVlanConfig::Access(1)});
  ASSERT_TRUE(v10 && v1);
  LinkSocket far("vfpkt-a1");
  ASSERT_TRUE(far.ok());
  const std::vector<std::vector<uint8_t>> sent = {
      TestFrame(1, 10, 60, 1),   TestFrame(1, 10, 8000, 2), TestFrame(1, 0, 9014, 3),
      TestFrame(1, 10, 1514, 4), TestFrame(1, 10, 2100, 5), TestFrame(1, 0, 60, 6),
      TestFrame(1, 10, 5000, 7)};
  for (const auto& f : sent) {
    ASSERT_TRUE(far.Send(f)) << f.size() << ": " << std::strerror(errno);
    ASSERT_EQ(observer.WaitOne(), static_cast<ssize_t>(f.size() - (f[12] == 0x81 ? 4 : 0)))
        << "the kernel takes the tag out";
  }
  size_t received = 0;
  for (int turn = 0; turn < 16; ++turn) {
    const size_t got = sw_->RunOnce(0);
    received += got;
    if (got == 0) break;
  }
  EXPECT_EQ(received, sent.size());
  EXPECT_EQ(sw_->Counters(port)->total_drops(), 0u);
  std::vector<std::vector<uint8_t>> want10, want1;
  for (const auto& f : sent) (f[12] == 0x81 ? want10 : want1).push_back(Untagged(f));
  auto bytes = [](std::vector<CapturedFrame> frames) {
    std::vector<std::vector<uint8_t>> out;
    for (auto& c : frames) out.push_back(std::move(c.bytes));
    return out;
  };
  EXPECT_EQ(bytes(v10->TakeCaptured()), want10);
  EXPECT_EQ(bytes(v1->TakeCaptured()), want1);
}

// Frames the kernel finds no free ring slot for, while the switch is not
// reading, are lost before the switch: PACKET_STATISTICS counts them, and
// the switch reads that count into the port's rx_kernel drops (and netctl
// port stats shows it with the other drop reasons).
TEST_F(PacketPortIntegrationTest, RingOverflowWhileTheSwitchIsNotReadingCountsKernelDrops) {
  VF_REQUIRE_PRIVATE_NETNS();
  ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth(1500, /*kernel_stats_interval_ms=*/20));
  LinkSocket observer("vfpkt-a0");
  ASSERT_TRUE(observer.ok());
  PacketPortOptions options;
  options.block_size = 4096;  // one block of two 2 KiB slots: a ring of 2 frames
  options.block_count = 1;
  options.frame_size = 2048;
  auto opened =
      OpenPacketSocketPort("vfpkt-a0", static_cast<int>(::if_nametoindex("vfpkt-a0")), options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  auto id = sw_->AddPort(std::move(opened).value(), {});
  ASSERT_TRUE(id.ok()) << id.status().message();
  const PortId port = *id;
  MemoryPort* mem = AddMemoryPort("mem", {});
  ASSERT_NE(mem, nullptr);
  LinkSocket far("vfpkt-a1");
  ASSERT_TRUE(far.ok());
  // The switch runs no turn while these arrive: 2 fill the ring, 8 find no
  // slot.
  constexpr int kSent = 10;
  for (int i = 0; i < kSent; ++i) {
    ASSERT_TRUE(far.Send(TestFrame(1, 0, 60, static_cast<uint8_t>(i)))) << std::strerror(errno);
    ASSERT_EQ(observer.WaitOne(), 60);  // the kernel offered it to the port's ring first
  }
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        sw_->RunOnce(10);
        return sw_->Counters(port)->drop(DropReason::kRxKernel) >= kSent - 2;
      },
      5000));
  const PortCounters c = *sw_->Counters(port);
  EXPECT_EQ(c.drop(DropReason::kRxKernel), static_cast<uint64_t>(kSent - 2));
  EXPECT_EQ(c.rx_packets, 2u);
  EXPECT_EQ(c.total_drops(), static_cast<uint64_t>(kSent - 2));
  EXPECT_EQ(mem->captured_count(), 2u);
  // Read once, counted once: the kernel's count starts again from zero.
  for (int turn = 0; turn < 5; ++turn) sw_->RunOnce(10);
  EXPECT_EQ(sw_->Counters(port)->drop(DropReason::kRxKernel), static_cast<uint64_t>(kSent - 2));
}

// A frame larger than a slot that finds the socket's queue full is in its
// slot truncated, without the whole copy: the switch was behind, so it
// counts as no_buffer (not malformed), and the frames queued before it
// still go through whole.
TEST_F(PacketPortIntegrationTest, LargeFramesBeyondTheSocketBufferCountAsNoBuffer) {
  VF_REQUIRE_PRIVATE_NETNS();
  ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth(9000));
  LinkSocket observer("vfpkt-a0");
  ASSERT_TRUE(observer.ok());
  PacketPortOptions options;
  options.socket_buffer = 64 << 10;  // the kernel doubles it: room for a few 8000-byte frames
  auto opened =
      OpenPacketSocketPort("vfpkt-a0", static_cast<int>(::if_nametoindex("vfpkt-a0")), options);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  auto id = sw_->AddPort(std::move(opened).value(), {});
  ASSERT_TRUE(id.ok()) << id.status().message();
  const PortId port = *id;
  MemoryPort* mem = AddMemoryPort("mem", {});
  ASSERT_NE(mem, nullptr);
  LinkSocket far("vfpkt-a1");
  ASSERT_TRUE(far.ok());
  constexpr int kSent = 40;
  for (int i = 0; i < kSent; ++i) {
    const auto frame = TestFrame(1, 0, 8000, static_cast<uint8_t>(i));
    ASSERT_TRUE(far.Send(frame)) << std::strerror(errno);
    ASSERT_EQ(observer.WaitOne(), 8000);  // the kernel delivered it to the port too
  }
  for (int turn = 0; turn < kSent; ++turn) sw_->RunOnce(0);
  const PortCounters c = *sw_->Counters(port);
  EXPECT_GT(c.drop(DropReason::kNoBuffer), 0u) << "the queue held all " << kSent;
  EXPECT_EQ(c.drop(DropReason::kMalformed), 0u);
  EXPECT_EQ(c.rx_packets + c.drop(DropReason::kNoBuffer), static_cast<uint64_t>(kSent));
  // What came through came whole, in order.
  const auto captured = mem->TakeCaptured();
  EXPECT_EQ(captured.size(), c.rx_packets);
  uint8_t last_seq = 0;
  for (size_t i = 0; i < captured.size(); ++i) {
    ASSERT_EQ(captured[i].bytes.size(), 8000u);
    // TestFrame's payload byte 14 is 14 * 7 + seq.
    const uint8_t seq = static_cast<uint8_t>(captured[i].bytes[14] - 14 * 7);
    if (i > 0) {
      EXPECT_GT(seq, last_seq);
    }
    last_seq = seq;
  }
}

// What the switch sends on a packet port reaches the link (once, tagged as
// the port's VLAN mode says) and is not read back as received: the port
// sends on a socket of its own (no waiter to wake per sent frame) and its
// rx socket ignores outgoing frames, or the switch would learn its own
// frames on the egress port and flood them again.
TEST_F(PacketPortIntegrationTest, SentFramesReachTheLinkAndAreNotReadBack) {
  VF_REQUIRE_PRIVATE_NETNS();
  ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth());
  int fd = -1;
  MemoryPort* v10 = nullptr;
  const PortId port = AddTrunkToVlan10(&fd, &v10);
  ASSERT_NE(port, kNoPort);
  LinkSocket far("vfpkt-a1");
  ASSERT_TRUE(far.ok());
  for (int i = 1; i <= 20; ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    const auto frame = TestFrame(2, 0, 60, static_cast<uint8_t>(i));
    v10->Inject(frame);
    EXPECT_EQ(sw_->RunOnce(0), 1u);
    // The far end has it with the VLAN 10 tag (the kernel moves a received
    // tag into metadata, so the length is the untagged one).
    ASSERT_EQ(far.WaitOne(), static_cast<ssize_t>(frame.size()));
    EXPECT_FALSE(Readable(fd)) << "the port reads back a frame it sent";
    EXPECT_EQ(sw_->RunOnce(0), 0u);
  }
  EXPECT_EQ(sw_->Counters(port)->tx_packets, 20u);
  EXPECT_EQ(sw_->Counters(port)->rx_packets, 0u);
  EXPECT_EQ(sw_->Counters(port)->total_drops(), 0u);
  EXPECT_EQ(v10->captured_count(), 0u);
}

// Frames that fit a tx ring slot go by the ring, the others (larger than a
// slot) by sendmmsg(); mixed in one batch they must still leave in the
// order the switch sent them, each byte for byte, tagged as the trunk says.
TEST_F(PacketPortIntegrationTest, RingAndMessageFramesLeaveInOrder) {
  VF_REQUIRE_PRIVATE_NETNS();
  ASSERT_NO_FATAL_FAILURE(MakeSwitchAndVeth(9000));
  int fd = -1;
  MemoryPort* v10 = nullptr;
  const PortId port = AddTrunkToVlan10(&fd, &v10);
  ASSERT_NE(port, kNoPort);
  LinkSocket far("vfpkt-a1");
  ASSERT_TRUE(far.ok());
  // 2002 bytes + the tag is the largest a 2 KiB slot takes (32-byte header,
  // 10-byte vnet header); 2003 is not.
  const std::vector<size_t> sizes = {60, 8000, 60, 1514, 2002, 2003, 60, 9014, 64, 3000, 128};
  std::vector<std::vector<uint8_t>> want;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto frame = TestFrame(3, 0, sizes[i], static_cast<uint8_t>(i));
    v10->Inject(frame);
    frame.insert(frame.begin() + 12, {0x81, 0x00, 0x00, 0x0a});
    want.push_back(std::move(frame));
  }
  size_t forwarded = 0;
  for (int turn = 0; turn < 8 && forwarded < sizes.size(); ++turn) forwarded += sw_->RunOnce(0);
  ASSERT_EQ(forwarded, sizes.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i) + " of " + std::to_string(sizes[i]) + " bytes");
    EXPECT_EQ(far.WaitFrame(), want[i]);
  }
  EXPECT_EQ(sw_->Counters(port)->tx_packets, sizes.size());
  uint64_t bytes = 0;
  for (const auto& frame : want) bytes += frame.size();  // tags included
  EXPECT_EQ(sw_->Counters(port)->tx_bytes, bytes);
  EXPECT_EQ(sw_->Counters(port)->total_drops(), 0u);
}

// With the link down the kernel takes nothing from the tx ring: those frames
// are counted as tx errors, and the ring is usable again once the link is
// up (the port's next slot is the kernel's).
TEST_F(PacketPortIntegrationTest, FramesSentWhileTheLinkIsDownAreCountedAndTheRingRecovers) {
  VF_REQUIRE_PRIVATE_NETNS();
  PortId port = kNoPort;
  MemoryPort* mem = nullptr;
  ASSERT_NO_FATAL_FAILURE(MakeSwitchWithUntaggedPortsAndFarSocket(&port, &mem));
  LinkSocket& far = *far_;
  RUN_OK({"ip", "link", "set", "vfpkt-a0", "down"});
  for (int i = 0; i < 5; ++i) mem->Inject(TestFrame(4, 0, 60, static_cast<uint8_t>(i)));
  EXPECT_EQ(sw_->RunOnce(0), 5u);
  EXPECT_EQ(sw_->Counters(port)->drop(DropReason::kTxError), 5u);
  EXPECT_EQ(sw_->Counters(port)->tx_packets, 0u);
  RUN_OK({"ip", "link", "set", "vfpkt-a0", "up"});
  // More frames than the ring has slots, in several turns: the ring wraps.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 200; ++i)
      mem->Inject(TestFrame(4, 0, 60 + static_cast<size_t>(i % 7), static_cast<uint8_t>(i)));
    size_t forwarded = 0;
    for (int turn = 0; turn < 32 && forwarded < 200; ++turn) forwarded += sw_->RunOnce(0);
    ASSERT_EQ(forwarded, 200u);
    for (int i = 0; i < 200; ++i) {
      SCOPED_TRACE("round " + std::to_string(round) + " frame " + std::to_string(i));
      ASSERT_EQ(far.WaitFrame(),
                TestFrame(4, 0, 60 + static_cast<size_t>(i % 7), static_cast<uint8_t>(i)));
    }
  }
  EXPECT_EQ(sw_->Counters(port)->tx_packets, 600u);
  EXPECT_EQ(sw_->Counters(port)->drop(DropReason::kTxError), 5u);
}

// A port that yields frames is polled instead of waking the switch per
// frame; once traffic stops it must go back to being watched, so the
// switch sleeps again (a switch spinning after a burst would burn a core),
// and a frame that comes later still wakes it and is forwarded.
TEST_F(PacketPortIntegrationTest, AfterABurstTheSwitchSleepsAgainAndWakesForTheNextFrame) {
  VF_REQUIRE_PRIVATE_NETNS();
  PortId port = kNoPort;
  MemoryPort* mem = nullptr;
  ASSERT_NO_FATAL_FAILURE(MakeSwitchWithUntaggedPortsAndFarSocket(&port, &mem));
  LinkSocket& far = *far_;
  ASSERT_TRUE(sw_->Start().ok());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(far.Send(TestFrame(5, 0, 60, static_cast<uint8_t>(i))));
  ASSERT_TRUE(testing::WaitFor([&] { return mem->captured_count() == 200; }, 10000))
      << mem->captured_count();
  // The process's CPU time over a quiet half second: a polling loop would
  // use nearly all of it, a sleeping switch next to none.
  auto cpu_ns = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // past the idle turns
  const int64_t before = cpu_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t used = cpu_ns() - before;
  EXPECT_LT(used, 100'000'000) << "the switch kept polling an idle port: " << used / 1'000'000
                               << " ms of CPU in 500 ms";
  ASSERT_TRUE(far.Send(TestFrame(5, 0, 60, 250)));
  EXPECT_TRUE(testing::WaitFor([&] { return mem->captured_count() == 201; }, 10000))
      << "a frame after the quiet time was not forwarded";
  sw_->Stop();
  EXPECT_EQ(sw_->Counters(port)->rx_packets, 201u);
}

}  // namespace
}  // namespace vfabric::bridge
