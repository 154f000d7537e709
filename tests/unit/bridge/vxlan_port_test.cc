// The VXLAN port (bridge/vxlan_port.h) over loopback UDP: two ports as the
// two ends of a tunnel exchange frames (a tagged one gets its tag on the
// wire), the bytes on the wire are RFC 7348's, and what is not a datagram
// of this tunnel (wrong flags, another VNI, a runt, another sender) is
// counted malformed and never delivered. Loopback only: no namespace needed.
#include "vfabric/bridge/vxlan_port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "vfabric/bridge/frame.h"

namespace vfabric::bridge {
namespace {

IpPrefix Address(const char* text) { return *IpPrefix::ParseAddress(text); }

// A UDP port free on 127.0.0.1 right now.
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in);
  socklen_t length = sizeof in;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&in), &length);
  ::close(fd);
  return ntohs(in.sin_port);
}

// A plain UDP socket on `address`:0 sending to 127.0.0.1:`port`.
void SendRaw(const char* from, uint16_t port, const std::vector<uint8_t>& bytes) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in self{};
  self.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &self.sin_addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof self), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
      static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

std::vector<uint8_t> EthernetFrame(uint8_t marker, size_t size = 60) {
  std::vector<uint8_t> frame(size, marker);
  const uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const uint8_t src[6] = {0x52, 0x54, 0x00, 0x00, 0x00, marker};
  std::memcpy(frame.data(), dst, 6);
  std::memcpy(frame.data() + 6, src, 6);
  frame[12] = 0x08;
  frame[13] = 0x00;
  return frame;
}

class VxlanPortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool = FramePool::Create(64, 2048);
    ASSERT_TRUE(pool.ok());
    pool_ = std::move(*pool);
    port_a_ = FreePort();
    port_b_ = FreePort();
    a_ = Open("vx-a", port_a_, port_b_);
    b_ = Open("vx-b", port_b_, port_a_);
    ASSERT_TRUE(a_ && b_);
  }

  std::unique_ptr<Port> Open(const char* name, uint16_t local, uint16_t remote) {
    VxlanPortOptions options;
    options.local = Address("127.0.0.1");
    options.remote = Address("127.0.0.1");
    options.local_port = local;
    options.remote_port = remote;
    options.vni = 4242;
    auto port = OpenVxlanPort(name, options);
    EXPECT_TRUE(port.ok()) << port.status().message();
    return port.ok() ? std::move(*port) : nullptr;
  }

  // Everything `port` has within 1 s, as byte vectors.
  std::vector<std::vector<uint8_t>> ReceiveAll(Port& port, size_t expected) {
    std::vector<std::vector<uint8_t>> got;
    for (int round = 0; round < 50 && got.size() < expected; ++round) {
      pollfd fd{port.fd(), POLLIN, 0};
      ::poll(&fd, 1, 20);
      std::array<Frame*, 32> frames{};
      const size_t n = port.Receive(*pool_, frames, &no_buffer_, &malformed_);
      for (size_t i = 0; i < n; ++i) {
        got.emplace_back(frames[i]->data, frames[i]->data + frames[i]->size);
        pool_->Free(frames[i]);
      }
    }
    return got;
  }

  Frame* FrameOf(const std::vector<uint8_t>& bytes) {
    Frame* f = pool_->Alloc();
    std::memcpy(f->data, bytes.data(), bytes.size());
    f->size = static_cast<uint32_t>(bytes.size());
    return f;
  }

  std::vector<uint8_t> Datagram(uint8_t flags, uint32_t vni, const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> bytes(8);
    PutVxlanHeader(vni, bytes.data());
    bytes[0] = flags;
    bytes.insert(bytes.end(), frame.begin(), frame.end());
    return bytes;
  }

  std::unique_ptr<FramePool> pool_;
  uint16_t port_a_ = 0, port_b_ = 0;
  std::unique_ptr<Port> a_, b_;
  uint64_t no_buffer_ = 0, malformed_ = 0;
};

TEST_F(VxlanPortTest, FramesCrossTheTunnelBothWays) {
  EXPECT_EQ(a_->kind(), PortKind::kVxlan);
  EXPECT_EQ(ToString(a_->kind()), "vxlan");
  EXPECT_FALSE(a_->takes_offload());
  const auto one = EthernetFrame(1), two = EthernetFrame(2, 1400);
  std::vector<Frame*> frames = {FrameOf(one), FrameOf(two), FrameOf(one)};
  std::vector<TxItem> items = {{frames[0], 0, false}, {frames[1], 0, false}, {frames[2], 10, true}};
  TxResult sent = a_->Transmit(items);
  EXPECT_EQ(sent.packets, 3u);
  EXPECT_EQ(sent.bytes, 60u + 1400u + 64u);
  auto got = ReceiveAll(*b_, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], one);
  EXPECT_EQ(got[1], two);
  // The tag went in after the MACs: 0x8100, TCI 10.
  std::vector<uint8_t> tagged = one;
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x0a};
  tagged.insert(tagged.begin() + 12, tag, tag + 4);
  EXPECT_EQ(got[2], tagged);
  for (Frame* f : frames) pool_->Free(f);

  Frame* back = FrameOf(two);
  TxItem item{back, 0, false};
  EXPECT_EQ(b_->Transmit({&item, 1}).packets, 1u);
  auto reply = ReceiveAll(*a_, 1);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0], two);
  pool_->Free(back);
  EXPECT_EQ(malformed_, 0u);
}

TEST_F(VxlanPortTest, OnTheWireItIsRfc7348) {
  // b's socket is taken over by a plain one reading the bytes.
  b_.reset();
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port_b_);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
  const auto frame = EthernetFrame(7);
  Frame* f = FrameOf(frame);
  TxItem item{f, 0, false};
  ASSERT_EQ(a_->Transmit({&item, 1}).packets, 1u);
  std::array<uint8_t, 2048> buffer{};
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
  ASSERT_EQ(got, 8 + 60);
  // Flags 0x08 (I), reserved, VNI 4242 = 0x001092, reserved.
  const std::array<uint8_t, 8> header = {0x08, 0, 0, 0, 0x00, 0x10, 0x92, 0};
  EXPECT_TRUE(std::equal(header.begin(), header.end(), buffer.begin()));
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), buffer.begin() + 8));
  ::close(fd);
  pool_->Free(f);
}

TEST_F(VxlanPortTest, WhatIsNotThisTunnelsIsCountedMalformed) {
  const auto frame = EthernetFrame(3);
  SendRaw("127.0.0.1", port_b_, Datagram(0x0c, 4242, frame));  // another flag bit
  SendRaw("127.0.0.1", port_b_, Datagram(0x08, 4243, frame));  // another VNI
  SendRaw("127.0.0.1", port_b_, Datagram(0x08, 4242, std::vector<uint8_t>(10, 0)));  // runt
  SendRaw("127.0.0.2", port_b_, Datagram(0x08, 4242, frame));  // not the remote VTEP
  SendRaw("127.0.0.1", port_b_, Datagram(0x08, 4242, frame));  // the one good datagram
  auto got = ReceiveAll(*b_, 1);
  // Let the rest be read too.
  for (int i = 0; i < 5 && malformed_ < 4; ++i) ReceiveAll(*b_, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], frame);
  EXPECT_EQ(malformed_, 4u);
  EXPECT_EQ(pool_->available(), pool_->count()) << "every refused frame went back";
}

TEST_F(VxlanPortTest, OpenRefusesWhatCannotWork) {
  VxlanPortOptions options;
  options.local = Address("127.0.0.1");
  options.remote = Address("::1");
  options.vni = 1;
  EXPECT_EQ(OpenVxlanPort("vx-x", options).status().message(),
            "vxlan vx-x: local and remote addresses must be of one IP family");
  options.remote = Address("127.0.0.1");
  options.vni = 1 << 24;
  EXPECT_EQ(OpenVxlanPort("vx-x", options).status().message(),
            "vxlan vx-x: VNI 16777216 is not 1..16777215");
  options.vni = 1;
  options.local_port = port_a_;  // a's
  EXPECT_EQ(OpenVxlanPort("vx-x", options).status().message(),
            "vxlan vx-x: bind 127.0.0.1:" + std::to_string(port_a_) + ": Address already in use");
}

}  // namespace
}  // namespace vfabric::bridge
