// The message handler as a state machine: every message, fed directly
// (no socket), and every way a message can be malformed. The socket layer
// (Connection, Serve) is tested over a socketpair at the end.
#include "vfabric/vhost_user/backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "vfabric/vhost_user/connection.h"
#include "vfabric/vhost_user/testing/driver.h"
#include "vfabric/vhost_user/testing/test_frontend.h"

namespace vfabric::vhost_user {
namespace {

using testing::DriverQueue;
using testing::GuestRam;

using testing::State;
using testing::U64;
std::vector<uint8_t> Addr(uint32_t index, const VirtqueueConfig& c, uint32_t flags = 0) {
  std::vector<uint8_t> out(40);
  std::memcpy(out.data(), &index, 4);
  std::memcpy(out.data() + 4, &flags, 4);
  std::memcpy(out.data() + 8, &c.desc_user, 8);
  std::memcpy(out.data() + 16, &c.used_user, 8);
  std::memcpy(out.data() + 24, &c.avail_user, 8);
  return out;
}
std::vector<uint8_t> MemTable(const std::vector<MemoryRegion>& regions) {
  std::vector<uint8_t> out(8 + 32 * regions.size());
  const uint32_t n = static_cast<uint32_t>(regions.size());
  std::memcpy(out.data(), &n, 4);
  for (size_t i = 0; i < regions.size(); ++i) std::memcpy(out.data() + 8 + 32 * i, &regions[i], 32);
  return out;
}
UniqueFd Dup(const UniqueFd& fd) { return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)); }
UniqueFd Event() { return UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); }
uint64_t ReplyU64(const Backend::Outcome& o) {
  uint64_t v = ~0ull;
  if (o.reply && o.reply->payload.size() == 8) std::memcpy(&v, o.reply->payload.data(), 8);
  return v;
}
bool FdOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ram = GuestRam::Create(2, 1 << 20);
    ASSERT_TRUE(ram.ok());
    ram_ = std::make_unique<GuestRam>(std::move(ram).value());
    rx_ = std::make_unique<DriverQueue>(ram_.get(), 64, true, true);
    tx_ = std::make_unique<DriverQueue>(ram_.get(), 64, true, true);
  }

  Backend::Outcome Send(uint32_t request, std::vector<uint8_t> payload = {},
                        std::vector<UniqueFd> fds = {},
                        uint32_t flags = kVersion | kFlagNeedReply) {
    MessageHeader h{request, flags, static_cast<uint32_t>(payload.size())};
    return backend_.Handle(h, payload, fds);
  }
  // The answer of a message with REPLY_ACK: 0 success.
  uint64_t Ack(uint32_t request, std::vector<uint8_t> payload = {},
               std::vector<UniqueFd> fds = {}) {
    return ReplyU64(Send(request, std::move(payload), std::move(fds)));
  }
  std::vector<UniqueFd> MemFds() {
    std::vector<UniqueFd> fds;
    for (const auto& fd : ram_->fds()) fds.push_back(Dup(fd));
    return fds;
  }

  // What QEMU does, in its order: features, protocol features (REPLY_ACK),
  // owner, memory, both rings, enable.
  void Negotiate(uint64_t features = kDefaultFeatures) {
    EXPECT_EQ(ReplyU64(Send(kGetFeatures, {}, {}, kVersion)), kDefaultFeatures);
    EXPECT_EQ(ReplyU64(Send(kGetProtocolFeatures, {}, {}, kVersion)), kDefaultProtocolFeatures);
    ASSERT_FALSE(Send(kSetProtocolFeatures, U64(kDefaultProtocolFeatures), {}, kVersion).refused);
    ASSERT_EQ(Ack(kSetOwner), 0u);
    ASSERT_EQ(Ack(kSetFeatures, U64(features)), 0u);
    ASSERT_EQ(Ack(kSetMemTable, MemTable(ram_->regions()), MemFds()), 0u);
    for (uint32_t i = 0; i < 2; ++i) {
      DriverQueue& q = i == 0 ? *rx_ : *tx_;
      ASSERT_EQ(Ack(kSetVringNum, State(i, q.num())), 0u);
      ASSERT_EQ(Ack(kSetVringBase, State(i, 0)), 0u);
      ASSERT_EQ(Ack(kSetVringAddr, Addr(i, q.config())), 0u);
      std::vector<UniqueFd> call;
      call.push_back(Event());
      ASSERT_EQ(Ack(kSetVringCall, U64(i), std::move(call)), 0u);
      std::vector<UniqueFd> kick;
      kick.push_back(Event());
      ASSERT_EQ(Ack(kSetVringKick, U64(i), std::move(kick)), 0u);
    }
  }

  std::unique_ptr<GuestRam> ram_;
  std::unique_ptr<DriverQueue> rx_, tx_;
  Backend backend_{BackendOptions{.name = "vu-test"}};
};

TEST_F(BackendTest, NegotiatesAndRingsStartDisabledUntilEnabled) {
  Negotiate();
  EXPECT_EQ(backend_.features(), kDefaultFeatures);
  EXPECT_TRUE(backend_.owner());
  EXPECT_NE(backend_.kick_fd(1), -1);
  EXPECT_NE(backend_.call_fd(0), -1);
  EXPECT_EQ(backend_.ready(0), nullptr) << "PROTOCOL_FEATURES negotiated: rings start disabled";
  EXPECT_EQ(backend_.ready(1), nullptr);
  const uint64_t gen = backend_.generation();
  EXPECT_EQ(Ack(kSetVringEnable, State(1, 1)), 0u);
  EXPECT_NE(backend_.generation(), gen);
  ASSERT_NE(backend_.ready(1), nullptr);
  EXPECT_TRUE(backend_.ready(1)->config().event_idx);
  EXPECT_EQ(backend_.ready(0), nullptr);
  EXPECT_EQ(Ack(kSetVringEnable, State(0, 1)), 0u);
  EXPECT_NE(backend_.ready(0), nullptr);
  EXPECT_EQ(Ack(kSetVringEnable, State(0, 0)), 0u);
  EXPECT_EQ(backend_.ready(0), nullptr);
  EXPECT_EQ(backend_.refused(), 0u);
}

TEST_F(BackendTest, WithoutProtocolFeaturesRingsAreEnabledWhenStarted) {
  Negotiate(kDefaultFeatures & ~Bit(feature::kProtocolFeatures));
  EXPECT_NE(backend_.ready(0), nullptr);
  EXPECT_NE(backend_.ready(1), nullptr);
}

TEST_F(BackendTest, GetVringBaseStopsTheRingAndSetVringBaseResumesIt) {
  Negotiate();
  ASSERT_EQ(Ack(kSetVringEnable, State(1, 1)), 0u);
  Virtqueue* q = backend_.ready(1);
  ASSERT_NE(q, nullptr);
  const std::vector<std::vector<uint8_t>> frame = {std::vector<uint8_t>(60, 1)};
  for (int i = 0; i < 3; ++i) {
    tx_->AddOut(frame);
    Chain c;
    RingError e;
    ASSERT_EQ(q->PopChain(&c, &e), Virtqueue::Pop::kChain);
    q->Push(c.head, 0);
  }
  const Backend::Outcome out = Send(kGetVringBase, State(1, 0), {}, kVersion);
  ASSERT_TRUE(out.reply);
  ASSERT_EQ(out.reply->payload.size(), 8u);
  uint32_t index, base;
  std::memcpy(&index, out.reply->payload.data(), 4);
  std::memcpy(&base, out.reply->payload.data() + 4, 4);
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(base, 3u);
  EXPECT_EQ(tx_->used_idx(), 3) << "published before stopping";
  EXPECT_EQ(backend_.ready(1), nullptr);
  EXPECT_EQ(backend_.kick_fd(1), -1);
  // Resume (as a reconnecting backend would) from base 3.
  ASSERT_EQ(Ack(kSetVringBase, State(1, 3)), 0u);
  std::vector<UniqueFd> kick;
  kick.push_back(Event());
  ASSERT_EQ(Ack(kSetVringKick, U64(1), std::move(kick)), 0u);
  ASSERT_NE(backend_.ready(1), nullptr);
  EXPECT_EQ(backend_.ready(1)->last_avail_idx(), 3);
  EXPECT_EQ(backend_.ready(1)->Available(), 0);
}

TEST_F(BackendTest, MemTableReplacementWhileRunningMovesTheRings) {
  Negotiate();
  ASSERT_EQ(Ack(kSetVringEnable, State(1, 1)), 0u);
  const std::vector<std::vector<uint8_t>> frame = {std::vector<uint8_t>(60, 1)};
  tx_->AddOut(frame);
  Chain c;
  RingError e;
  ASSERT_EQ(backend_.ready(1)->PopChain(&c, &e), Virtqueue::Pop::kChain);
  const GuestMemory* before = backend_.memory();
  // DPDK wraps it in SET_VRING_ENABLE 0/1; QEMU does not: both work.
  ASSERT_EQ(Ack(kSetMemTable, MemTable(ram_->regions()), MemFds()), 0u);
  EXPECT_NE(backend_.memory(), before);
  Virtqueue* q = backend_.ready(1);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->last_avail_idx(), 1) << "continues where it was";
  tx_->AddOut(frame);
  EXPECT_EQ(q->PopChain(&c, &e), Virtqueue::Pop::kChain);
  // A table without the rings' memory stops them (and says so).
  std::vector<MemoryRegion> second = {ram_->regions()[1]};
  std::vector<UniqueFd> fds;
  fds.push_back(Dup(ram_->fds()[1]));
  ASSERT_EQ(Ack(kSetMemTable, MemTable(second), std::move(fds)), 0u);
  EXPECT_EQ(backend_.ready(1), nullptr);
}

TEST_F(BackendTest, MemorySlots) {
  ASSERT_FALSE(Send(kSetProtocolFeatures, U64(kDefaultProtocolFeatures)).refused);
  EXPECT_EQ(ReplyU64(Send(kGetMaxMemSlots, {}, {}, kVersion)), GuestMemory::kMaxRegions);
  std::vector<uint8_t> reg(40, 0);
  std::memcpy(reg.data() + 8, &ram_->regions()[0], 32);
  std::vector<UniqueFd> fds;
  fds.push_back(Dup(ram_->fds()[0]));
  EXPECT_EQ(Ack(kAddMemReg, reg, std::move(fds)), 0u);
  ASSERT_NE(backend_.memory(), nullptr);
  EXPECT_EQ(backend_.memory()->size(), 1u);
  EXPECT_NE(Ack(kAddMemReg, reg), 0u) << "no fd";
  EXPECT_EQ(Ack(kRemMemReg, reg), 0u);
  EXPECT_EQ(backend_.memory()->size(), 0u);
  EXPECT_NE(Ack(kRemMemReg, reg), 0u) << "no longer there";
}

TEST_F(BackendTest, MalformedMessagesAreRefusedAndTheirFdsClosed) {
  ASSERT_FALSE(Send(kSetProtocolFeatures, U64(kDefaultProtocolFeatures)).refused);
  // Every one of these is refused with a failure reply (REPLY_ACK).
  EXPECT_NE(Ack(kSetFeatures, {1, 2, 3}), 0u);                       // short
  EXPECT_NE(Ack(kSetFeatures, U64(Bit(feature::kRingPacked))), 0u);  // not offered
  EXPECT_NE(Ack(kSetFeatures, U64(Bit(feature::kLogAll))), 0u);
  EXPECT_NE(Ack(kSetProtocolFeatures, U64(Bit(protocol_feature::kBackendReq))), 0u);
  EXPECT_NE(Ack(kSetVringNum, State(2, 64)), 0u);   // no ring 2
  EXPECT_NE(Ack(kSetVringNum, State(0, 100)), 0u);  // not a power of two
  EXPECT_NE(Ack(kSetVringNum, State(0, 65536)), 0u);
  EXPECT_NE(Ack(kSetVringBase, State(0, 70000)), 0u);
  EXPECT_NE(Ack(kSetVringAddr, Addr(0, rx_->config())), 0u) << "before the memory table";
  EXPECT_NE(Ack(kSetVringEnable, State(0, 2)), 0u);
  EXPECT_NE(Ack(kNetSetMtu, U64(10)), 0u);
  EXPECT_NE(Ack(kSetMemTable, {}), 0u);
  EXPECT_NE(Ack(kSetMemTable, MemTable(ram_->regions())), 0u) << "no fds";
  std::vector<MemoryRegion> nine(9, ram_->regions()[0]);
  EXPECT_NE(Ack(kSetMemTable, MemTable(nine)), 0u);
  auto table = MemTable(ram_->regions());
  table.pop_back();
  EXPECT_NE(Ack(kSetMemTable, table, MemFds()), 0u) << "payload short of its regions";
  EXPECT_NE(Ack(99), 0u) << "unknown";
  EXPECT_NE(Ack(kSendRarp, U64(0)), 0u) << "not offered";
  // Fds: the wrong count, unexpected ones; all closed.
  std::vector<UniqueFd> two;
  two.push_back(Event());
  two.push_back(Event());
  const int a = two[0].get(), b = two[1].get();
  EXPECT_NE(Ack(kSetVringCall, U64(0), std::move(two)), 0u);
  EXPECT_FALSE(FdOpen(a));
  EXPECT_FALSE(FdOpen(b));
  std::vector<UniqueFd> stray;
  stray.push_back(Event());
  const int c = stray[0].get();
  EXPECT_NE(Ack(kSetOwner, {}, std::move(stray)), 0u);
  EXPECT_FALSE(FdOpen(c));
  EXPECT_NE(Ack(kSetVringKick, U64(kVringNoFd | 0)), 0u) << "polling mode not offered";
  EXPECT_NE(Ack(kSetVringCall, U64(0x1ff00)), 0u) << "unknown bits";
  // Live migration is refused cleanly, its fd closed.
  std::vector<UniqueFd> log;
  log.push_back(Event());
  const int l = log[0].get();
  std::vector<uint8_t> log_base(16, 0);
  EXPECT_NE(Ack(kSetLogBase, log_base, std::move(log)), 0u);
  EXPECT_FALSE(FdOpen(l));
  // Bad flags: a version other than 1, a REPLY from the frontend.
  EXPECT_TRUE(Send(kSetOwner, {}, {}, 2).refused);
  EXPECT_TRUE(Send(kSetOwner, {}, {}, kVersion | kFlagReply).refused);
  // A header whose size disagrees with the payload.
  MessageHeader h{kSetOwner, kVersion, 8};
  EXPECT_TRUE(backend_.Handle(h, {}, {}).refused);
  EXPECT_EQ(backend_.refused(), 25u);
  // Without NEED_REPLY a refusal has no reply; nothing hangs up.
  const Backend::Outcome quiet = Send(kSetVringNum, State(5, 1), {}, kVersion);
  EXPECT_TRUE(quiet.refused);
  EXPECT_FALSE(quiet.reply);
  EXPECT_FALSE(quiet.close);
}

// Multiqueue and packed rings are not offered; a frontend that asks for
// them anyway is refused, and the reason counted apart from other refusals.
TEST_F(BackendTest, MultiqueueAndPackedRingsAreRefusedWithACountedReason) {
  EXPECT_EQ(kDefaultFeatures & Bit(feature::kMq), 0u);
  EXPECT_EQ(kDefaultFeatures & Bit(feature::kRingPacked), 0u);
  EXPECT_EQ(kDefaultProtocolFeatures & Bit(protocol_feature::kMq), 0u);
  EXPECT_EQ(ReplyU64(Send(kGetQueueNum, {}, {}, kVersion)), 1u);
  ASSERT_FALSE(Send(kSetProtocolFeatures, U64(kDefaultProtocolFeatures)).refused);

  EXPECT_NE(Ack(kSetFeatures, U64(kDefaultFeatures | Bit(feature::kRingPacked))), 0u);
  EXPECT_EQ(backend_.unsupported(Unsupported::kPackedRing), 1u);
  EXPECT_EQ(backend_.features(), 0u) << "nothing of the refused set is taken";
  EXPECT_FALSE(backend_.features_set());
  EXPECT_NE(Ack(kSetFeatures, U64(kDefaultFeatures | Bit(feature::kMq))), 0u);
  EXPECT_NE(Ack(kSetProtocolFeatures, U64(kDefaultProtocolFeatures | Bit(protocol_feature::kMq))),
            0u);
  EXPECT_EQ(backend_.unsupported(Unsupported::kMultiqueue), 2u);
  // The rings of a second queue pair (2 and 3), by every ring message.
  EXPECT_NE(Ack(kSetVringNum, State(2, 64)), 0u);
  EXPECT_NE(Ack(kSetVringBase, State(3, 0)), 0u);
  EXPECT_NE(Ack(kSetVringEnable, State(2, 1)), 0u);
  EXPECT_NE(Ack(kSetVringAddr, Addr(3, rx_->config())), 0u);
  std::vector<UniqueFd> kick;
  kick.push_back(Event());
  const int kick_fd = kick[0].get();
  EXPECT_NE(Ack(kSetVringKick, U64(2), std::move(kick)), 0u);
  EXPECT_FALSE(FdOpen(kick_fd));
  std::vector<UniqueFd> call;
  call.push_back(Event());
  EXPECT_NE(Ack(kSetVringCall, U64(3), std::move(call)), 0u);
  EXPECT_EQ(backend_.unsupported(Unsupported::kMultiqueue), 8u);
  // GET_VRING_BASE of ring 2 cannot be answered "no": the connection goes.
  const Backend::Outcome get = Send(kGetVringBase, State(2, 0), {}, kVersion);
  EXPECT_TRUE(get.refused);
  EXPECT_TRUE(get.close);
  EXPECT_EQ(backend_.unsupported(Unsupported::kMultiqueue), 9u);
  EXPECT_EQ(backend_.unsupported(Unsupported::kPackedRing), 1u);
  EXPECT_EQ(backend_.refused(), 10u);
  // Other refusals are not counted as either.
  EXPECT_NE(Ack(kSetFeatures, U64(Bit(feature::kLogAll))), 0u);
  EXPECT_NE(Ack(kSetVringNum, State(0, 100)), 0u);
  EXPECT_EQ(backend_.unsupported(Unsupported::kMultiqueue), 9u);
  EXPECT_EQ(backend_.unsupported(Unsupported::kPackedRing), 1u);
  EXPECT_EQ(ToString(Unsupported::kMultiqueue), "multiqueue");
  EXPECT_EQ(ToString(Unsupported::kPackedRing), "packed_ring");

  // Without them, the same frontend negotiates as usual.
  Negotiate();
  EXPECT_EQ(Ack(kSetVringEnable, State(1, 1)), 0u);
  EXPECT_NE(backend_.ready(1), nullptr);
}

TEST_F(BackendTest, AMalformedGetClosesTheConnection) {
  // The frontend waits for GET_VRING_BASE's answer; a refusal cannot be one.
  const Backend::Outcome out = Send(kGetVringBase, State(7, 0), {}, kVersion);
  EXPECT_TRUE(out.refused);
  EXPECT_TRUE(out.close);
  EXPECT_TRUE(Send(kGetFeatures, U64(1), {}, kVersion).close);
}

TEST_F(BackendTest, WithoutReplyAckNoAcksAreSent) {
  EXPECT_FALSE(Send(kSetOwner).reply);
  EXPECT_FALSE(Send(kSetOwner, {1}).reply);  // refused, still no reply
}

TEST_F(BackendTest, MtuAndQueueNum) {
  ASSERT_FALSE(Send(kSetProtocolFeatures, U64(kDefaultProtocolFeatures)).refused);
  EXPECT_EQ(Ack(kNetSetMtu, U64(9000)), 0u);
  EXPECT_EQ(backend_.mtu(), 9000u);
  EXPECT_EQ(ReplyU64(Send(kGetQueueNum, {}, {}, kVersion)), 1u);
}

TEST_F(BackendTest, ResetForgetsEverything) {
  Negotiate();
  const int kick = backend_.kick_fd(1);
  backend_.Reset();
  EXPECT_FALSE(FdOpen(kick));
  EXPECT_EQ(backend_.memory(), nullptr);
  EXPECT_EQ(backend_.features(), 0u);
  EXPECT_EQ(backend_.ready(1), nullptr);
  Negotiate();  // a new frontend negotiates from the start
  EXPECT_EQ(Ack(kSetVringEnable, State(1, 1)), 0u);
  EXPECT_NE(backend_.ready(1), nullptr);
  EXPECT_EQ(Ack(kResetOwner), 0u);
  EXPECT_EQ(backend_.ready(1), nullptr);
}

// ---- the socket layer ----

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    frontend_.Reset(sv[0]);
    connection_ = std::make_unique<Connection>(UniqueFd(sv[1]));
  }
  void Write(const void* data, size_t len, std::vector<int> fds = {}) {
    iovec iov{const_cast<void*>(data), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 32)];
    if (!fds.empty()) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(::sendmsg(frontend_.get(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(len));
  }
  std::vector<uint8_t> Header(uint32_t request, uint32_t flags, uint32_t size) {
    std::vector<uint8_t> h(12);
    std::memcpy(h.data(), &request, 4);
    std::memcpy(h.data() + 4, &flags, 4);
    std::memcpy(h.data() + 8, &size, 4);
    return h;
  }

  UniqueFd frontend_;
  std::unique_ptr<Connection> connection_;
  Backend backend_;
};

TEST_F(ConnectionTest, AMessageInPiecesAndItsReply) {
  std::string why;
  auto h = Header(kGetFeatures, kVersion, 0);
  Write(h.data(), 5);
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kOpen);
  Write(h.data() + 5, 7);
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kOpen);
  uint8_t reply[20];
  ASSERT_EQ(::recv(frontend_.get(), reply, sizeof reply, MSG_DONTWAIT), 20);
  uint32_t flags;
  uint64_t features;
  std::memcpy(&flags, reply + 4, 4);
  std::memcpy(&features, reply + 12, 8);
  EXPECT_EQ(flags, kVersion | kFlagReply);
  EXPECT_EQ(features, kDefaultFeatures);
  // A set with its payload split from its header.
  auto set = Header(kSetFeatures, kVersion, 8);
  Write(set.data(), set.size());
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kOpen);
  const auto f = U64(Bit(feature::kVersion1));
  Write(f.data(), f.size());
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kOpen);
  EXPECT_EQ(backend_.features(), Bit(feature::kVersion1));
}

TEST_F(ConnectionTest, FdsArriveWithTheirMessageAndRefusedOnesAreClosed) {
  UniqueFd ev = Event();
  auto h = Header(kSetVringCall, kVersion, 8);
  auto p = U64(0);
  h.insert(h.end(), p.begin(), p.end());
  Write(h.data(), h.size(), {ev.get()});
  std::string why;
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kOpen);
  EXPECT_NE(backend_.call_fd(0), -1);
  // Two fds for SET_VRING_CALL: refused, both closed (the backend's copies).
  auto h2 = Header(kSetVringCall, kVersion, 8);
  h2.insert(h2.end(), p.begin(), p.end());
  const int before = backend_.call_fd(0);
  Write(h2.data(), h2.size(), {ev.get(), ev.get()});
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kOpen);
  EXPECT_EQ(backend_.call_fd(0), before);
  EXPECT_EQ(backend_.refused(), 1u);
  // Nothing of the refused message stays open: the next fd number the
  // process gets is the lowest free one again.
  UniqueFd probe = Event();
  EXPECT_LT(probe.get(), before + 3);
}

TEST_F(ConnectionTest, AnOversizedOrBadVersionHeaderBreaksTheConnection) {
  auto h = Header(kSetOwner, kVersion, kMaxPayload + 1);
  Write(h.data(), h.size());
  std::string why;
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kClosed);
  EXPECT_NE(why.find("payload of"), std::string::npos) << why;
  SetUp();
  auto v = Header(kSetOwner, 2, 0);
  Write(v.data(), v.size());
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kClosed);
  EXPECT_NE(why.find("version"), std::string::npos) << why;
}

TEST_F(ConnectionTest, TooManyFdsBreakTheConnection) {
  UniqueFd ev = Event();
  auto h = Header(kSetMemTable, kVersion, 0);
  Write(h.data(), h.size(), std::vector<int>(12, ev.get()));
  std::string why;
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kClosed);
  EXPECT_NE(why.find("fds"), std::string::npos) << why;
}

TEST_F(ConnectionTest, ThePeerClosing) {
  frontend_.Reset();
  std::string why;
  EXPECT_EQ(Serve(*connection_, backend_, 8, &why), Served::kClosed);
  EXPECT_NE(why.find("closed"), std::string::npos);
}

TEST(FeatureNamesTest, NamesEachBitSetLowestFirstAndUnknownBitsByNumber) {
  EXPECT_EQ(FeatureNames(Bit(feature::kVersion1) | Bit(feature::kMrgRxbuf) |
                         Bit(feature::kEventIdx) | Bit(50)),
            (std::vector<std::string>{"MRG_RXBUF", "EVENT_IDX", "VERSION_1", "bit 50"}));
  EXPECT_TRUE(FeatureNames(0).empty());
  EXPECT_EQ(ProtocolFeatureNames(kDefaultProtocolFeatures),
            (std::vector<std::string>{"REPLY_ACK", "MTU", "CONFIGURE_MEM_SLOTS"}));
  EXPECT_EQ(ProtocolFeatureNames(uint64_t{1} << 40), (std::vector<std::string>{"bit 40"}));
}

}  // namespace
}  // namespace vfabric::vhost_user
