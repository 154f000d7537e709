// The protocol end to end over a socketpair: the test frontend (the
// driver's side) against Backend + Connection, every message as QEMU and
// DPDK's virtio-user send them, and the rings' edge cases through it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "vfabric/vhost_user/backend.h"
#include "vfabric/vhost_user/connection.h"
#include "vfabric/vhost_user/testing/test_frontend.h"

namespace vfabric::vhost_user {
namespace {

using testing::TestFrontend;
using testing::TestFrontendOptions;

std::vector<uint8_t> Frame(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i);
  return v;
}
using testing::U64;

class FrontendTest : public ::testing::Test {
 protected:
  void Make(TestFrontendOptions options = {}) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    connection_ = std::make_unique<Connection>(UniqueFd(sv[1]));
    auto f = TestFrontend::Create(UniqueFd(sv[0]), options, [this] { Pump(); });
    ASSERT_TRUE(f.ok()) << f.status().message();
    frontend_ = std::move(f).value();
  }
  void Pump() {
    if (closed_) return;
    if (Serve(*connection_, backend_, 64, &why_) == Served::kClosed) {
      closed_ = true;
      backend_.Reset();
    }
  }
  // The backend's datapath, by hand: frames the guest transmitted.
  std::vector<std::vector<uint8_t>> Drain() {
    std::vector<std::vector<uint8_t>> out;
    Virtqueue* q = backend_.ready(Backend::kTxRing);
    if (q == nullptr) return out;
    Chain c;
    RingError e;
    for (;;) {
      const Virtqueue::Pop pop = q->PopChain(&c, &e, Virtqueue::Want::kReadable);
      if (pop == Virtqueue::Pop::kEmpty) break;
      if (pop == Virtqueue::Pop::kError) continue;
      std::vector<uint8_t> bytes(c.readable);
      c.Read(0, bytes.data(), bytes.size());
      out.push_back(std::move(bytes));
      q->Push(c.head, 0);
    }
    q->Publish();
    return out;
  }
  Put Deliver(const std::vector<uint8_t>& frame) {
    Virtqueue* q = backend_.ready(Backend::kRxRing);
    if (q == nullptr) return Put::kNoBuffers;
    std::vector<uint8_t> hdr(12, 0);
    const std::span<const uint8_t> pieces[] = {frame};
    const Put put = PutPacket(*q, hdr, backend_.has(feature::kMrgRxbuf), 10, pieces);
    q->Publish();
    return put;
  }

  Backend backend_{BackendOptions{.name = "vu-frontend-test"}};
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<TestFrontend> frontend_;
  bool closed_ = false;
  std::string why_;
};

TEST_F(FrontendTest, QemuStyleStartWithEightRegionsAndTrafficBothWays) {
  TestFrontendOptions options;
  options.regions = 8;
  options.region_size = 1 << 20;
  Make(options);
  ASSERT_TRUE(frontend_->Start().ok());
  EXPECT_EQ(backend_.memory()->size(), 8u);
  EXPECT_EQ(backend_.refused(), 0u);
  ASSERT_NE(backend_.ready(0), nullptr);
  ASSERT_NE(backend_.ready(1), nullptr);
  // Guest -> backend: a frame behind its header, in one buffer, split, indirect.
  const auto f1 = Frame(60, 1), f2 = Frame(1514, 2), f3 = Frame(100, 3);
  ASSERT_TRUE(frontend_->Transmit(f1).ok());
  ASSERT_TRUE(frontend_->Transmit(f2, {}, /*split=*/true).ok());
  ASSERT_TRUE(frontend_->Transmit(f3, {}, false, /*indirect=*/true).ok());
  auto got = Drain();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(std::equal(f1.begin(), f1.end(), got[0].begin() + 12));
  EXPECT_TRUE(std::equal(f2.begin(), f2.end(), got[1].begin() + 12));
  EXPECT_TRUE(std::equal(f3.begin(), f3.end(), got[2].begin() + 12));
  EXPECT_EQ(frontend_->ReclaimTransmitted(), 3u);
  // Backend -> guest.
  ASSERT_TRUE(frontend_->PostReceiveBuffers(4).ok());
  EXPECT_EQ(Deliver(f2), Put::kOk);
  auto in = frontend_->TakeReceived();
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].frame, f2);
  EXPECT_EQ(in[0].header[10], 1) << "num_buffers";
}

TEST_F(FrontendTest, MergeableReceiveBuffersJoinAFrameLargerThanOne) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  ASSERT_TRUE(frontend_->PostReceiveBuffers(8, 512).ok());
  const auto big = Frame(1500, 9);
  EXPECT_EQ(Deliver(big), Put::kOk);
  auto in = frontend_->TakeReceived();
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].frame, big);
  EXPECT_EQ(in[0].header[10], 3);
}

TEST_F(FrontendTest, WithoutMergeableBuffersALargeFrameDoesNotFit) {
  TestFrontendOptions options;
  options.features = kDefaultFeatures & ~Bit(feature::kMrgRxbuf);
  Make(options);
  ASSERT_TRUE(frontend_->Start().ok());
  EXPECT_EQ(frontend_->header_size(), 12u) << "VERSION_1: 12 bytes anyway";
  ASSERT_TRUE(frontend_->PostReceiveBuffers(8, 512).ok());
  EXPECT_EQ(Deliver(Frame(1500, 9)), Put::kTooBig);
  EXPECT_EQ(Deliver(Frame(400, 9)), Put::kOk);
  EXPECT_EQ(frontend_->TakeReceived().size(), 1u);
}

TEST_F(FrontendTest, DpdkStyleCallBeforeFeaturesAndALiveMemTable) {
  // virtio-user sends SET_VRING_CALL before SET_FEATURES, no EVENT_IDX,
  // and replaces the memory table while running, inside ENABLE 0/1.
  TestFrontendOptions options;
  options.features = kDefaultFeatures & ~Bit(feature::kEventIdx);
  Make(options);
  UniqueFd early(::eventfd(0, EFD_CLOEXEC));
  const int early_fd = early.get();
  ASSERT_TRUE(frontend_->Send(kSetVringCall, U64(0), {&early_fd, 1}, 0).ok());
  Pump();
  EXPECT_EQ(backend_.refused(), 0u);
  EXPECT_NE(backend_.call_fd(0), -1);
  ASSERT_TRUE(frontend_->Start().ok());
  EXPECT_FALSE(backend_.has(feature::kEventIdx));
  const auto f = Frame(80, 4);
  ASSERT_TRUE(frontend_->Transmit(f).ok());
  ASSERT_EQ(Drain().size(), 1u);
  ASSERT_TRUE(frontend_->Enable(0, false).ok());
  ASSERT_TRUE(frontend_->Enable(1, false).ok());
  EXPECT_EQ(backend_.ready(1), nullptr);
  ASSERT_TRUE(frontend_->SendMemTable().ok());
  ASSERT_TRUE(frontend_->Enable(0, true).ok());
  ASSERT_TRUE(frontend_->Enable(1, true).ok());
  ASSERT_TRUE(frontend_->Transmit(f).ok());
  auto got = Drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(std::equal(f.begin(), f.end(), got[0].begin() + 12));
}

TEST_F(FrontendTest, KicksAreSuppressedWhileTheBackendPolls) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  Virtqueue* q = backend_.ready(1);
  ASSERT_NE(q, nullptr);
  // EVENT_IDX: kicks only when avail passes avail_event.
  q->EnableNotify();
  const uint64_t before = frontend_->kicks_sent();
  ASSERT_TRUE(frontend_->Transmit(Frame(60, 1)).ok());
  EXPECT_EQ(frontend_->kicks_sent(), before + 1);
  ASSERT_TRUE(frontend_->Transmit(Frame(60, 1)).ok());
  EXPECT_EQ(frontend_->kicks_sent(), before + 1) << "avail_event not moved: no kick";
  EXPECT_EQ(Drain().size(), 2u);
  q->EnableNotify();
  ASSERT_TRUE(frontend_->Transmit(Frame(60, 1)).ok());
  EXPECT_EQ(frontend_->kicks_sent(), before + 2);
}

TEST_F(FrontendTest, CallsFollowUsedEvent) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  ASSERT_TRUE(frontend_->PostReceiveBuffers(8).ok());
  Virtqueue* q = backend_.ready(0);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(Deliver(Frame(60, 1)), Put::kOk);
  EXPECT_TRUE(q->NeedCall());
  frontend_->rx().SetUsedEvent(3);
  EXPECT_EQ(Deliver(Frame(60, 1)), Put::kOk);
  EXPECT_FALSE(q->NeedCall());
}

TEST_F(FrontendTest, RefusalsAnsweredOverTheSocket) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  auto ack = frontend_->Set(kSetVringNum, std::vector<uint8_t>{0, 0, 0, 0, 3, 0, 0, 0});
  ASSERT_TRUE(ack.ok());
  EXPECT_NE(*ack, 0u);
  ack = frontend_->Set(kSetLogBase, std::vector<uint8_t>(16, 0));
  ASSERT_TRUE(ack.ok());
  EXPECT_NE(*ack, 0u);
  ack = frontend_->Set(1234);
  ASSERT_TRUE(ack.ok());
  EXPECT_NE(*ack, 0u);
  EXPECT_FALSE(closed_);
  // The connection still works.
  EXPECT_TRUE(frontend_->GetU64(kGetFeatures).ok());
}

TEST_F(FrontendTest, AMalformedGetHangsUp) {
  Make();
  ASSERT_TRUE(
      frontend_->Send(kGetVringBase, std::vector<uint8_t>{9, 0, 0, 0, 0, 0, 0, 0}, {}, 0).ok());
  auto r = frontend_->Receive();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(closed_);
}

TEST_F(FrontendTest, StopAndResumeWithGetAndSetVringBase) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(frontend_->Transmit(Frame(60, 1)).ok());
  EXPECT_EQ(Drain().size(), 5u);
  auto base = frontend_->GetVringBase(1);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(*base, 5u);
  EXPECT_EQ(backend_.ready(1), nullptr);
  // A new backend (a restarted netd) picks up from there.
  backend_.Reset();
  frontend_ = nullptr;
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  EXPECT_EQ(backend_.ready(1)->last_avail_idx(), 0);
}

TEST_F(FrontendTest, HostileChainsFromTheGuestAreCountedAndTheRingGoesOn) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  auto& tx = frontend_->tx();
  const uint64_t buf = frontend_->ram().Alloc(256);
  tx.SetDesc(200, buf, 100, kDescNext, 200);  // a loop
  tx.MakeAvailable(200);
  tx.SetDesc(201, 0xdead0000000, 100, 0, 0);  // outside memory
  tx.MakeAvailable(201);
  tx.SetDesc(202, buf, 100, kDescWrite, 0);  // writable on the transmit queue
  tx.MakeAvailable(202);
  tx.MakeAvailable(999);  // no such descriptor
  ASSERT_TRUE(frontend_->Transmit(Frame(60, 7)).ok());
  auto got = Drain();
  ASSERT_EQ(got.size(), 1u) << "the good frame after the bad chains";
  Virtqueue* q = backend_.ready(1);
  // In a ring of 256 a loop meets the 64-segment bound before it has
  // taken more steps than the ring has entries: refused either way.
  EXPECT_EQ(q->error_count(RingError::kTooManySegments), 1u);
  EXPECT_EQ(q->error_count(RingError::kBadAddress), 1u);
  EXPECT_EQ(q->error_count(RingError::kWrongDirection), 1u);
  EXPECT_EQ(q->error_count(RingError::kHeadOutOfRange), 1u);
  // An avail index far ahead breaks the ring (ready() says no) until the
  // frontend sets it up again.
  tx.SetAvailIdx(static_cast<uint16_t>(tx.avail_idx() + 1000));
  Drain();
  EXPECT_EQ(backend_.ready(1), nullptr);
}

TEST_F(FrontendTest, DisconnectResetsTheBackend) {
  Make();
  ASSERT_TRUE(frontend_->Start().ok());
  frontend_->Disconnect();
  Pump();
  EXPECT_TRUE(closed_);
  EXPECT_EQ(backend_.ready(1), nullptr);
  EXPECT_EQ(backend_.memory(), nullptr);
}

}  // namespace
}  // namespace vfabric::vhost_user
