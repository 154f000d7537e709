// The split-ring walker against a driver in memfd guest memory: chains as a
// guest makes them, and every way a hostile guest can break one.
#include "vfabric/vhost_user/virtqueue.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "vfabric/vhost_user/testing/driver.h"

namespace vfabric::vhost_user {
namespace {

using testing::DriverQueue;
using testing::GuestRam;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13);
  return v;
}

class VirtqueueTest : public ::testing::Test {
 protected:
  void Make(uint16_t num = 16, bool event_idx = false, bool indirect = true, size_t regions = 2) {
    auto ram = GuestRam::Create(regions, 1 << 20);
    ASSERT_TRUE(ram.ok()) << ram.status().message();
    ram_ = std::make_unique<GuestRam>(std::move(ram).value());
    auto memory = ram_->Map();
    ASSERT_TRUE(memory.ok()) << memory.status().message();
    memory_ = std::move(memory).value();
    driver_ = std::make_unique<DriverQueue>(ram_.get(), num, event_idx, indirect);
    ASSERT_TRUE(q_.Attach(&memory_, driver_->config(), 0).ok());
  }

  // Pops one chain expecting an error; returns it.
  RingError PopError(Virtqueue::Want want = Virtqueue::Want::kAny) {
    RingError e = RingError::kCount;
    EXPECT_EQ(q_.PopChain(&chain_, &e, want), Virtqueue::Pop::kError);
    return e;
  }
  std::vector<uint8_t> ReadAll(const Chain& c) {
    std::vector<uint8_t> out(c.readable);
    EXPECT_EQ(c.Read(0, out.data(), out.size()), out.size());
    return out;
  }

  std::unique_ptr<GuestRam> ram_;
  GuestMemory memory_;
  std::unique_ptr<DriverQueue> driver_;
  Virtqueue q_;
  Chain chain_;
};

TEST_F(VirtqueueTest, PopsChainsInOrderAndReturnsThemOnTheUsedRing) {
  Make();
  const std::vector<std::vector<uint8_t>> a = {Bytes(12, 1), Bytes(100, 2)};
  const std::vector<std::vector<uint8_t>> b = {Bytes(1500, 3)};
  const auto ha = driver_->AddOut(a);
  const auto hb = driver_->AddOut(b);
  ASSERT_TRUE(ha && hb);
  EXPECT_EQ(q_.Available(), 2);
  RingError e;
  ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
  EXPECT_EQ(chain_.head, *ha);
  EXPECT_EQ(chain_.count, 2);
  EXPECT_EQ(chain_.readable, 112u);
  std::vector<uint8_t> want = a[0];
  want.insert(want.end(), a[1].begin(), a[1].end());
  EXPECT_EQ(ReadAll(chain_), want);
  // Read from an offset across the segment boundary.
  uint8_t part[8];
  ASSERT_EQ(chain_.Read(8, part, 8), 8u);
  EXPECT_EQ(std::memcmp(part, want.data() + 8, 8), 0);
  q_.Push(chain_.head, 0);
  ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
  EXPECT_EQ(chain_.head, *hb);
  EXPECT_EQ(ReadAll(chain_), b[0]);
  q_.Push(chain_.head, 0);
  EXPECT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kEmpty);
  EXPECT_EQ(driver_->used_idx(), 0) << "nothing visible before Publish";
  q_.Publish();
  EXPECT_EQ(driver_->used_idx(), 2);
  EXPECT_EQ(driver_->TakeUsed()->id, *ha);
  EXPECT_EQ(driver_->TakeUsed()->id, *hb);
  EXPECT_EQ(q_.error_total(), 0u);
}

TEST_F(VirtqueueTest, IndirectChains) {
  Make();
  const std::vector<std::vector<uint8_t>> a = {Bytes(12, 1), Bytes(60, 2), Bytes(7, 3)};
  ASSERT_TRUE(driver_->AddOut(a, /*indirect=*/true));
  RingError e;
  ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
  EXPECT_EQ(chain_.count, 3);
  EXPECT_EQ(chain_.readable, 79u);
}

TEST_F(VirtqueueTest, IndirectWithoutTheFeatureIsRefused) {
  Make(16, false, /*indirect=*/false);
  const std::vector<std::vector<uint8_t>> a = {Bytes(12, 1)};
  ASSERT_TRUE(driver_->AddOut(a, true));
  EXPECT_EQ(PopError(), RingError::kBadIndirect);
  q_.Publish();
  auto used = driver_->TakeUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 0u) << "a refused chain goes back unused";
}

TEST_F(VirtqueueTest, WritableChainsAndTheirDirection) {
  Make();
  const uint32_t sizes[] = {100, 200};
  ASSERT_TRUE(driver_->AddIn(sizes));
  RingError e;
  ASSERT_EQ(q_.PopChain(&chain_, &e, Virtqueue::Want::kWritable), Virtqueue::Pop::kChain);
  EXPECT_EQ(chain_.writable, 300u);
  const auto data = Bytes(250, 9);
  EXPECT_EQ(chain_.Write(0, data.data(), data.size()), 250u);
  EXPECT_EQ(chain_.Write(290, data.data(), 20), 10u) << "stops at the chain's end";
  // A writable chain where readable buffers are wanted, and the reverse.
  ASSERT_TRUE(driver_->AddIn(sizes));
  EXPECT_EQ(PopError(Virtqueue::Want::kReadable), RingError::kWrongDirection);
  const std::vector<std::vector<uint8_t>> out = {Bytes(10, 1)};
  ASSERT_TRUE(driver_->AddOut(out));
  EXPECT_EQ(PopError(Virtqueue::Want::kWritable), RingError::kWrongDirection);
  // Readable after writable.
  const uint64_t buf = ram_->Alloc(64);
  driver_->SetDesc(0, buf, 8, kDescWrite | kDescNext, 1);
  driver_->SetDesc(1, buf + 8, 8, 0, 0);
  driver_->MakeAvailable(0);
  EXPECT_EQ(PopError(), RingError::kWrongDirection);
  EXPECT_EQ(q_.error_count(RingError::kWrongDirection), 3u);
}

TEST_F(VirtqueueTest, HostileChainsAreRefusedAndCounted) {
  Make(8);
  const uint64_t buf = ram_->Alloc(4096);
  // A head past the table: nothing to give back.
  driver_->MakeAvailable(8);
  EXPECT_EQ(PopError(), RingError::kHeadOutOfRange);
  // A loop: 0 -> 1 -> 0.
  driver_->SetDesc(0, buf, 8, kDescNext, 1);
  driver_->SetDesc(1, buf, 8, kDescNext, 0);
  driver_->MakeAvailable(0);
  EXPECT_EQ(PopError(), RingError::kLoop);
  // A self loop.
  driver_->SetDesc(2, buf, 8, kDescNext, 2);
  driver_->MakeAvailable(2);
  EXPECT_EQ(PopError(), RingError::kLoop);
  // next past the table.
  driver_->SetDesc(3, buf, 8, kDescNext, 200);
  driver_->MakeAvailable(3);
  EXPECT_EQ(PopError(), RingError::kNextOutOfRange);
  // Outside guest memory (the hole between the regions) and across a
  // region's end.
  driver_->SetDesc(4, (1 << 20) + 16, 8, 0, 0);
  driver_->MakeAvailable(4);
  EXPECT_EQ(PopError(), RingError::kBadAddress);
  driver_->SetDesc(4, (1 << 20) - 8, 16, 0, 0);
  driver_->MakeAvailable(4);
  EXPECT_EQ(PopError(), RingError::kBadAddress);
  driver_->SetDesc(4, buf, 0xffffffff, 0, 0);
  driver_->MakeAvailable(4);
  EXPECT_EQ(PopError(), RingError::kBadAddress);
  // Indirect: a table outside memory, a length not a multiple of 16, an
  // empty one, indirect with NEXT, nested indirect, a loop inside.
  driver_->SetDesc(5, 0x7fff0000, 32, kDescIndirect, 0);
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kBadAddress);
  driver_->SetDesc(5, buf, 24, kDescIndirect, 0);
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kBadIndirect);
  driver_->SetDesc(5, buf, 0, kDescIndirect, 0);
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kBadIndirect);
  driver_->SetDesc(5, buf, 32, kDescIndirect | kDescNext, 6);
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kBadIndirect);
  const uint64_t table = ram_->Alloc(64, 16);
  auto put = [&](uint64_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* d = ram_->Host(at);
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  };
  put(table, table, 32, kDescIndirect, 0);  // nested
  driver_->SetDesc(5, table, 32, kDescIndirect, 0);
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kBadIndirect);
  put(table, buf, 8, kDescNext, 1);  // a loop inside the table
  put(table + 16, buf, 8, kDescNext, 0);
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kLoop);
  put(table + 16, buf, 8, kDescNext, 2);  // next past the table's 2 entries
  driver_->MakeAvailable(5);
  EXPECT_EQ(PopError(), RingError::kNextOutOfRange);
  // Every refused chain with a valid head came back with length 0; the
  // ring still works.
  q_.Publish();
  int returned = 0;
  while (auto u = driver_->TakeUsed()) {
    EXPECT_EQ(u->len, 0u);
    ++returned;
  }
  EXPECT_EQ(returned, 13);
  EXPECT_EQ(q_.error_total(), 14u);
  const std::vector<std::vector<uint8_t>> good = {Bytes(20, 1)};
  driver_->SetDesc(7, buf, 20, 0, 0);
  driver_->MakeAvailable(7);
  RingError e;
  EXPECT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
}

TEST_F(VirtqueueTest, ALongIndirectLoopIsBoundedBySegments) {
  Make();
  const uint64_t buf = ram_->Alloc(64);
  // A huge indirect table whose entries all point at entry 0's successor
  // chain 0 -> 1 -> 0 ...: the walk stops at the segment limit, not after
  // millions of steps.
  const uint64_t table = ram_->Alloc(16 * 4096, 16);
  for (uint16_t i = 0; i < 4096; ++i) {
    uint8_t* d = ram_->Host(table + 16ull * i);
    const uint32_t len = 1;
    const uint16_t flags = kDescNext;
    const uint16_t next = static_cast<uint16_t>((i + 1) % 4096);
    std::memcpy(d, &buf, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  driver_->SetDesc(0, table, 16 * 4096, kDescIndirect, 0);
  driver_->MakeAvailable(0);
  EXPECT_EQ(PopError(), RingError::kTooManySegments);
}

TEST_F(VirtqueueTest, AnAvailIndexJumpBreaksTheRingUntilReattached) {
  Make(8);
  driver_->SetAvailIdx(9);  // 9 entries in a ring of 8
  EXPECT_EQ(q_.Available(), 0);
  EXPECT_TRUE(q_.broken());
  RingError e;
  EXPECT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kEmpty);
  EXPECT_EQ(q_.error_count(RingError::kAvailIndexJump), 1u);
  // Re-attached where the driver really is, it works again.
  ASSERT_TRUE(q_.Attach(&memory_, driver_->config(), 9).ok());
  EXPECT_FALSE(q_.broken());
  EXPECT_EQ(q_.Available(), 0);
}

TEST_F(VirtqueueTest, AttachRefusesBadRings) {
  Make();
  VirtqueueConfig c = driver_->config();
  Virtqueue q;
  c.num = 12;
  EXPECT_FALSE(q.Attach(&memory_, c, 0).ok());
  c.num = 65536;
  EXPECT_FALSE(q.Attach(&memory_, c, 0).ok());
  c = driver_->config();
  c.desc_user += 8;
  EXPECT_FALSE(q.Attach(&memory_, c, 0).ok()) << "misaligned";
  c = driver_->config();
  c.used_user = 0x1234;
  EXPECT_FALSE(q.Attach(&memory_, c, 0).ok()) << "outside memory";
  c = driver_->config();
  c.desc_user = ram_->regions()[0].userspace_addr + (1 << 20) - 256;
  c.num = 32;  // the descriptor table would run past the region's end
  EXPECT_FALSE(q.Attach(&memory_, c, 0).ok());
  c.num = 16;  // just fits
  EXPECT_TRUE(q.Attach(&memory_, c, 0).ok());
  q.Detach();
  EXPECT_FALSE(q.attached());
}

TEST_F(VirtqueueTest, WrapsAroundTheSixteenBitIndices) {
  Make(4);
  ASSERT_TRUE(q_.Attach(&memory_, driver_->config(), 65534).ok());
  driver_->SetAvailIdx(65534);
  const std::vector<std::vector<uint8_t>> a = {Bytes(10, 1)};
  RingError e;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(driver_->AddOut(a));
    ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain) << i;
    q_.Push(chain_.head, 0);
    q_.Publish();
    ASSERT_TRUE(driver_->TakeUsed());
  }
  EXPECT_EQ(q_.last_avail_idx(), 4);
}

TEST_F(VirtqueueTest, CallSuppressionWithoutEventIdx) {
  Make();
  const std::vector<std::vector<uint8_t>> a = {Bytes(10, 1)};
  RingError e;
  auto one = [&] {
    ASSERT_TRUE(driver_->AddOut(a));
    ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
    q_.Push(chain_.head, 0);
    q_.Publish();
    driver_->TakeUsed();
  };
  one();
  EXPECT_TRUE(q_.NeedCall());
  EXPECT_FALSE(q_.NeedCall()) << "nothing new";
  driver_->SetAvailFlags(kAvailNoInterrupt);
  one();
  EXPECT_FALSE(q_.NeedCall());
  driver_->SetAvailFlags(0);
  one();
  EXPECT_TRUE(q_.NeedCall());
  // Kick suppression: the flag in the used ring.
  q_.DisableNotify();
  EXPECT_EQ(driver_->used_flags() & kUsedNoNotify, kUsedNoNotify);
  q_.EnableNotify();
  EXPECT_EQ(driver_->used_flags() & kUsedNoNotify, 0);
}

TEST_F(VirtqueueTest, CallSuppressionWithEventIdx) {
  Make(16, /*event_idx=*/true);
  const std::vector<std::vector<uint8_t>> a = {Bytes(10, 1)};
  RingError e;
  auto one = [&] {
    ASSERT_TRUE(driver_->AddOut(a));
    ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
    q_.Push(chain_.head, 0);
    q_.Publish();
    driver_->TakeUsed();
  };
  one();  // used idx 1
  EXPECT_TRUE(q_.NeedCall()) << "the first publish always calls";
  driver_->SetUsedEvent(3);  // call when used idx passes 3
  one();                     // 2
  EXPECT_FALSE(q_.NeedCall());
  one();  // 3
  EXPECT_FALSE(q_.NeedCall());
  one();  // 4: passed 3
  EXPECT_TRUE(q_.NeedCall());
  one();  // 5
  EXPECT_FALSE(q_.NeedCall());
  // NO_INTERRUPT is ignored with EVENT_IDX.
  driver_->SetAvailFlags(kAvailNoInterrupt);
  driver_->SetUsedEvent(5);
  one();  // 6
  EXPECT_TRUE(q_.NeedCall());
  // Kick requests go through avail_event; the flag stays clear.
  q_.DisableNotify();
  EXPECT_EQ(driver_->used_flags(), 0);
  q_.EnableNotify();
  EXPECT_EQ(driver_->avail_event(), q_.last_avail_idx());
}

TEST_F(VirtqueueTest, PutPacketIntoOneBuffer) {
  Make();
  const uint32_t sizes[] = {12, 2000};
  const auto head = driver_->AddIn(sizes);
  const auto hdr = Bytes(12, 0);
  const auto frame = Bytes(100, 5);
  const std::span<const uint8_t> pieces[] = {frame};
  uint16_t n = 0;
  EXPECT_EQ(PutPacket(q_, hdr, false, 10, pieces, &n), Put::kOk);
  EXPECT_EQ(n, 1);
  q_.Publish();
  auto u = driver_->TakeUsed();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, *head);
  EXPECT_EQ(u->len, 112u);
  auto got = driver_->ReadIn(*head, 112);
  std::vector<uint8_t> want = hdr;
  want.insert(want.end(), frame.begin(), frame.end());
  EXPECT_EQ(got, want);
}

TEST_F(VirtqueueTest, PutPacketMergesBuffersAndWritesNumBuffers) {
  Make(32);
  std::vector<uint16_t> heads;
  for (int i = 0; i < 5; ++i) {
    const uint32_t sizes[] = {1000};
    heads.push_back(*driver_->AddIn(sizes));
  }
  std::vector<uint8_t> hdr(12, 0);
  const auto frame = Bytes(2500, 7);  // 2512 bytes: 3 buffers
  const std::span<const uint8_t> pieces[] = {std::span(frame).first(1000),
                                             std::span(frame).subspan(1000)};
  uint16_t n = 0;
  EXPECT_EQ(PutPacket(q_, hdr, true, 10, pieces, &n), Put::kOk);
  EXPECT_EQ(n, 3);
  q_.Publish();
  std::vector<uint8_t> got;
  for (int i = 0; i < 3; ++i) {
    auto u = driver_->TakeUsed();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, heads[static_cast<size_t>(i)]);
    EXPECT_EQ(u->len, i < 2 ? 1000u : 512u);
    auto part = driver_->ReadIn(static_cast<uint16_t>(u->id), u->len);
    got.insert(got.end(), part.begin(), part.end());
  }
  ASSERT_EQ(got.size(), 2512u);
  EXPECT_EQ(got[10] | got[11] << 8, 3) << "num_buffers";
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), got.begin() + 12));
  // Not enough buffers left for another: nothing is consumed.
  EXPECT_EQ(PutPacket(q_, hdr, true, 10, pieces, &n), Put::kNoBuffers);
  EXPECT_EQ(q_.Available(), 2);
  // Without MRG_RXBUF a packet larger than one buffer does not fit; the
  // buffer stays for a smaller one.
  EXPECT_EQ(PutPacket(q_, hdr, false, 10, pieces, &n), Put::kTooBig);
  EXPECT_EQ(q_.Available(), 2);
  const std::span<const uint8_t> small[] = {std::span(frame).first(60)};
  EXPECT_EQ(PutPacket(q_, hdr, false, 10, small, &n), Put::kOk);
}

TEST_F(VirtqueueTest, PutPacketSkipsRefusedChains) {
  Make();
  const std::vector<std::vector<uint8_t>> readable = {Bytes(100, 1)};
  ASSERT_TRUE(driver_->AddOut(readable));  // wrong direction for receive
  const uint32_t sizes[] = {2000};
  const auto good = driver_->AddIn(sizes);
  std::vector<uint8_t> hdr(12, 0);
  const auto frame = Bytes(60, 1);
  const std::span<const uint8_t> pieces[] = {frame};
  EXPECT_EQ(PutPacket(q_, hdr, true, 10, pieces), Put::kOk);
  q_.Publish();
  EXPECT_EQ(driver_->TakeUsed()->len, 0u);
  auto u = driver_->TakeUsed();
  EXPECT_EQ(u->id, *good);
  EXPECT_EQ(u->len, 72u);
  EXPECT_EQ(q_.error_count(RingError::kWrongDirection), 1u);
}

TEST_F(VirtqueueTest, ReattachingToANewTableFollowsTheRings) {
  Make();
  const std::vector<std::vector<uint8_t>> a = {Bytes(10, 1)};
  ASSERT_TRUE(driver_->AddOut(a));
  RingError e;
  ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
  q_.Push(chain_.head, 0);
  q_.Publish();
  // The frontend sends the same memory again (a new table, new mappings):
  // the queue is re-attached with its avail index and finds its used index
  // in the ring; the old table goes afterwards.
  auto again = ram_->Map();
  ASSERT_TRUE(again.ok());
  GuestMemory replacement = std::move(again).value();
  const uint16_t base = q_.last_avail_idx();
  ASSERT_TRUE(q_.Attach(&replacement, driver_->config(), base).ok());
  memory_ = GuestMemory();
  EXPECT_EQ(q_.used_idx(), 1);
  ASSERT_TRUE(driver_->AddOut(a));
  ASSERT_EQ(q_.PopChain(&chain_, &e), Virtqueue::Pop::kChain);
  EXPECT_EQ(ReadAll(chain_), a[0]);
}

}  // namespace
}  // namespace vfabric::vhost_user
