#include "vfabric/fdb/fdb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace vfabric::fdb {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

MacAddress Mac(uint64_t n) { return MacAddress::FromU64(0x525400000000ULL | n); }

std::unique_ptr<Table> Make(Config config) {
  auto table = Table::Create(config);
  EXPECT_TRUE(table.ok()) << table.status().message();
  return std::move(table).value();
}

Config Small() {
  Config config;
  config.max_entries = 16;
  config.max_ports = 8;
  config.ageing_time_ns = 10 * kSecond;
  config.refresh_granularity_ns = 0;  // exact ages
  config.hash_seed = 42;
  return config;
}

TEST(FdbCreateTest, RejectsBadConfig) {
  Config config;
  config.max_entries = 0;
  auto a = Table::Create(config);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message(), "fdb: max_entries 0 out of range 1..67108864");
  config.max_entries = 10;
  config.max_ports = 0;
  auto b = Table::Create(config);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), "fdb: max_ports 0 out of range 1..65535");
  config.max_ports = 70000;
  EXPECT_FALSE(Table::Create(config).ok());
  config.max_ports = 4;
  config.max_per_port = 11;
  auto c = Table::Create(config);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "fdb: max_per_port 11 exceeds max_entries 10");
  config.max_per_port = 10;
  EXPECT_TRUE(Table::Create(config).ok());
}

TEST(FdbTest, LearnThenLookup) {
  auto t = Make(Small());
  EXPECT_EQ(t->Lookup(10, Mac(1)), kNoPort);
  EXPECT_EQ(t->Learn(10, Mac(1), 3, 100), LearnOutcome::kLearned);
  EXPECT_EQ(t->Lookup(10, Mac(1)), 3);
  EXPECT_EQ(t->Lookup(11, Mac(1)), kNoPort);  // the VLAN is part of the key
  EXPECT_EQ(t->Lookup(10, Mac(2)), kNoPort);
  EXPECT_EQ(t->size(), 1u);
  EXPECT_EQ(t->learned_size(), 1u);
  EXPECT_EQ(t->port_learned(3), 1u);
  const Counters& c = t->counters();
  EXPECT_EQ(c.learned, 1u);
  EXPECT_EQ(c.lookup_hits, 1u);
  EXPECT_EQ(c.lookup_misses, 3u);
  auto e = t->Find(10, Mac(1), 150);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, (Entry{10, Mac(1), 3, false, 50}));
}

TEST(FdbTest, LearnRejectsInvalidInput) {
  auto t = Make(Small());
  EXPECT_EQ(t->Learn(1, *MacAddress::Parse("01:00:5e:00:00:01"), 0, 1), LearnOutcome::kInvalid);
  EXPECT_EQ(t->Learn(1, *MacAddress::Parse("ff:ff:ff:ff:ff:ff"), 0, 1), LearnOutcome::kInvalid);
  EXPECT_EQ(t->Learn(1, MacAddress{}, 0, 1), LearnOutcome::kInvalid);
  EXPECT_EQ(t->Learn(4096, Mac(1), 0, 1), LearnOutcome::kInvalid);
  EXPECT_EQ(t->Learn(1, Mac(1), 8, 1), LearnOutcome::kInvalid);
  EXPECT_EQ(t->counters().invalid, 5u);
  EXPECT_EQ(t->size(), 0u);
  // The empty-slot sentinel key never matches.
  EXPECT_EQ(t->Lookup(0xffff, *MacAddress::Parse("ff:ff:ff:ff:ff:ff")), kNoPort);
  EXPECT_EQ(t->counters().lookup_misses, 1u);
}

TEST(FdbTest, RefreshKeepsPortAndResetsAge) {
  auto t = Make(Small());
  ASSERT_EQ(t->Learn(1, Mac(1), 2, 1 * kSecond), LearnOutcome::kLearned);
  EXPECT_EQ(t->Learn(1, Mac(1), 2, 1 * kSecond), LearnOutcome::kRefreshed);
  EXPECT_EQ(t->counters().refreshed, 0u);  // same time: nothing changed
  EXPECT_EQ(t->Learn(1, Mac(1), 2, 4 * kSecond), LearnOutcome::kRefreshed);
  EXPECT_EQ(t->counters().refreshed, 1u);
  EXPECT_EQ(t->Find(1, Mac(1), 5 * kSecond)->age_ns, kSecond);
  EXPECT_EQ(t->NextDeadline(), 14 * kSecond);
}

TEST(FdbTest, LearnedEntryMovesAndIsCounted) {
  auto t = Make(Small());
  ASSERT_EQ(t->Learn(1, Mac(1), 2, 10), LearnOutcome::kLearned);
  EXPECT_EQ(t->Learn(1, Mac(1), 5, 20), LearnOutcome::kMoved);
  EXPECT_EQ(t->Lookup(1, Mac(1)), 5);
  EXPECT_EQ(t->counters().moved, 1u);
  EXPECT_EQ(t->port_learned(2), 0u);
  EXPECT_EQ(t->port_learned(5), 1u);
  EXPECT_EQ(t->Find(1, Mac(1), 20)->age_ns, 0u);
  EXPECT_EQ(t->FlushPort(2), 0u);
  EXPECT_EQ(t->FlushPort(5), 1u);
}

TEST(FdbTest, StaticEntryNeverMoves) {
  auto t = Make(Small());
  ASSERT_TRUE(t->AddStatic(1, Mac(1), 4).ok());
  EXPECT_EQ(t->Learn(1, Mac(1), 4, 10), LearnOutcome::kStatic);
  EXPECT_EQ(t->Learn(1, Mac(1), 6, 10), LearnOutcome::kStaticMoveRejected);
  EXPECT_EQ(t->Learn(1, Mac(1), 6, 11), LearnOutcome::kStaticMoveRejected);
  EXPECT_EQ(t->Lookup(1, Mac(1)), 4);
  EXPECT_EQ(t->counters().static_move_attempts, 2u);
  EXPECT_EQ(t->counters().moved, 0u);
  EXPECT_EQ(t->learned_size(), 0u);
  EXPECT_EQ(t->size(), 1u);
  EXPECT_EQ(*t->Find(1, Mac(1), 1000), (Entry{1, Mac(1), 4, true, 0}));
}

TEST(FdbTest, AddStaticConvertsAndRepoints) {
  auto t = Make(Small());
  ASSERT_EQ(t->Learn(1, Mac(1), 2, 10), LearnOutcome::kLearned);
  ASSERT_TRUE(t->AddStatic(1, Mac(1), 3).ok());
  EXPECT_EQ(t->Lookup(1, Mac(1)), 3);
  EXPECT_EQ(t->learned_size(), 0u);
  EXPECT_EQ(t->port_learned(2), 0u);
  EXPECT_EQ(t->size(), 1u);
  EXPECT_EQ(t->NextDeadline(), std::nullopt);
  ASSERT_TRUE(t->AddStatic(1, Mac(1), 5).ok());
  EXPECT_EQ(t->Lookup(1, Mac(1)), 5);
  EXPECT_EQ(t->size(), 1u);
}

TEST(FdbTest, AddStaticAndRemoveStaticReportErrors) {
  auto t = Make(Small());
  EXPECT_EQ(t->AddStatic(4096, Mac(1), 0).message(),
            "fdb vlan 4096 52:54:00:00:00:01: vlan out of range 0..4095");
  EXPECT_EQ(t->AddStatic(1, *MacAddress::Parse("01:00:00:00:00:00"), 0).message(),
            "fdb vlan 1 01:00:00:00:00:00: not a unicast address");
  EXPECT_EQ(t->AddStatic(1, Mac(1), 8).message(),
            "fdb vlan 1 52:54:00:00:00:01: port 8 out of range 0..7");
  EXPECT_EQ(t->RemoveStatic(1, Mac(1)).message(), "fdb vlan 1 52:54:00:00:00:01: no such entry");
  ASSERT_EQ(t->Learn(1, Mac(1), 2, 10), LearnOutcome::kLearned);
  EXPECT_EQ(t->RemoveStatic(1, Mac(1)).message(),
            "fdb vlan 1 52:54:00:00:00:01: is learned, not static");
  ASSERT_TRUE(t->AddStatic(1, Mac(2), 2).ok());
  EXPECT_TRUE(t->RemoveStatic(1, Mac(2)).ok());
  EXPECT_EQ(t->Lookup(1, Mac(2)), kNoPort);
  EXPECT_EQ(t->size(), 1u);
  EXPECT_EQ(t->RemoveStatic(9999, Mac(2)).message(),
            "fdb vlan 9999 52:54:00:00:00:02: no such entry");
}

TEST(FdbTest, PerPortLimitDropsNewLearns) {
  Config config = Small();
  config.max_per_port = 3;
  auto t = Make(config);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(t->Learn(1, Mac(i), 0, 10), LearnOutcome::kLearned);
  EXPECT_EQ(t->Learn(1, Mac(3), 0, 10), LearnOutcome::kLimitDropped);
  EXPECT_EQ(t->Learn(1, Mac(0), 0, 20), LearnOutcome::kRefreshed);  // known hosts still refresh
  EXPECT_EQ(t->Learn(1, Mac(3), 1, 20), LearnOutcome::kLearned);    // other ports unaffected
  EXPECT_EQ(t->counters().limit_drops, 1u);
  // A host moving onto a full port is forgotten, not left on its old port.
  EXPECT_EQ(t->Learn(1, Mac(3), 0, 30), LearnOutcome::kLimitDropped);
  EXPECT_EQ(t->Lookup(1, Mac(3)), kNoPort);
  EXPECT_EQ(t->counters().limit_drops, 2u);
  EXPECT_EQ(t->port_learned(1), 0u);
  EXPECT_EQ(t->learned_size(), 3u);
}

TEST(FdbTest, FullTableEvictsOldestOfTheBusiestPort) {
  Config config = Small();
  config.max_entries = 8;
  auto t = Make(config);
  // Port 2: one host; port 1: four hosts.
  ASSERT_EQ(t->Learn(1, Mac(100), 2, 1), LearnOutcome::kLearned);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_EQ(t->Learn(1, Mac(i), 1, 2 + i), LearnOutcome::kLearned);
  // Port 0 floods. The first eviction comes from port 1 (4 entries against
  // port 0's 3); from then on port 0 holds the most and loses its own oldest.
  uint64_t now = 10;
  std::vector<Eviction> evicted;
  for (uint64_t i = 0; i < 100; ++i) {
    Eviction e;
    ASSERT_EQ(t->Learn(1, Mac(1000 + i), 0, now++, &e), LearnOutcome::kLearned);
    if (t->counters().evicted > evicted.size()) evicted.push_back(e);
  }
  EXPECT_EQ(t->size(), 8u);
  ASSERT_EQ(evicted.size(), 97u);
  EXPECT_EQ(t->counters().evicted, 97u);
  EXPECT_EQ(evicted[0].port, 1);
  EXPECT_EQ(evicted[0].key, (Key{1, Mac(0)}));  // port 1's least recently seen
  for (size_t i = 1; i < evicted.size(); ++i) {
    EXPECT_EQ(evicted[i].port, 0) << i;
    EXPECT_EQ(evicted[i].key, (Key{1, Mac(1000 + i - 1)})) << i;
  }
  EXPECT_EQ(t->Lookup(1, Mac(100)), 2);
  for (uint64_t i = 1; i < 4; ++i) EXPECT_EQ(t->Lookup(1, Mac(i)), 1);
  EXPECT_EQ(t->port_learned(0), 4u);
  EXPECT_EQ(t->port_learned(1), 3u);
}

TEST(FdbTest, EvictionPrefersTheLeastRecentlySeen) {
  Config config = Small();
  config.max_entries = 3;
  auto t = Make(config);
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 10), LearnOutcome::kLearned);
  ASSERT_EQ(t->Learn(1, Mac(2), 0, 20), LearnOutcome::kLearned);
  ASSERT_EQ(t->Learn(1, Mac(3), 0, 30), LearnOutcome::kLearned);
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 40), LearnOutcome::kRefreshed);
  Eviction e;
  ASSERT_EQ(t->Learn(1, Mac(4), 0, 50, &e), LearnOutcome::kLearned);
  EXPECT_EQ(e.key, (Key{1, Mac(2)}));
  EXPECT_EQ(e.port, 0);
}

TEST(FdbTest, TableFullOfStaticEntries) {
  Config config = Small();
  config.max_entries = 2;
  auto t = Make(config);
  ASSERT_TRUE(t->AddStatic(1, Mac(1), 0).ok());
  ASSERT_EQ(t->Learn(1, Mac(2), 1, 10), LearnOutcome::kLearned);
  // A static add evicts the learned entry.
  ASSERT_TRUE(t->AddStatic(1, Mac(3), 0).ok());
  EXPECT_EQ(t->counters().evicted, 1u);
  EXPECT_EQ(t->Lookup(1, Mac(2)), kNoPort);
  EXPECT_EQ(t->AddStatic(1, Mac(4), 0).message(),
            "fdb vlan 1 52:54:00:00:00:04: table full of static entries (2)");
  EXPECT_EQ(t->Learn(1, Mac(5), 1, 20), LearnOutcome::kLimitDropped);
  EXPECT_EQ(t->counters().limit_drops, 1u);
}

TEST(FdbTest, AgeingExpiresOnTheInjectedClock) {
  auto t = Make(Small());  // ageing 10 s
  EXPECT_EQ(t->NextDeadline(), std::nullopt);
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 1 * kSecond), LearnOutcome::kLearned);
  ASSERT_EQ(t->Learn(1, Mac(2), 0, 2 * kSecond), LearnOutcome::kLearned);
  ASSERT_EQ(t->Learn(1, Mac(3), 0, 3 * kSecond), LearnOutcome::kLearned);
  ASSERT_TRUE(t->AddStatic(1, Mac(9), 0).ok());
  EXPECT_EQ(t->NextDeadline(), 11 * kSecond);
  EXPECT_EQ(t->Expire(11 * kSecond - 1), 0u);
  EXPECT_EQ(t->Expire(11 * kSecond), 1u);
  EXPECT_EQ(t->Lookup(1, Mac(1)), kNoPort);
  EXPECT_EQ(t->NextDeadline(), 12 * kSecond);
  // Bounded work: one per call.
  EXPECT_EQ(t->Expire(100 * kSecond, 1), 1u);
  EXPECT_EQ(t->NextDeadline(), 13 * kSecond);  // already due: the loop runs again
  EXPECT_EQ(t->Expire(100 * kSecond, 1), 1u);
  EXPECT_EQ(t->Expire(100 * kSecond, 1), 0u);
  EXPECT_EQ(t->NextDeadline(), std::nullopt);
  EXPECT_EQ(t->counters().expired, 3u);
  EXPECT_EQ(t->Lookup(1, Mac(9)), 0);  // static entries never age
}

TEST(FdbTest, AnExpiredEntryAnswersUntilExpireRuns) {
  auto t = Make(Small());
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 0), LearnOutcome::kLearned);
  EXPECT_EQ(t->Lookup(1, Mac(1)), 0);
  EXPECT_EQ(t->Find(1, Mac(1), 50 * kSecond)->age_ns, 50 * kSecond);
  EXPECT_EQ(t->Expire(50 * kSecond), 1u);
}

TEST(FdbTest, AgeingZeroDisablesLearningButNotStaticForwarding) {
  auto t = Make(Small());
  ASSERT_TRUE(t->AddStatic(1, Mac(9), 4).ok());
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 10), LearnOutcome::kLearned);
  t->SetAgeingTime(0);
  EXPECT_EQ(t->ageing_time(), 0u);
  EXPECT_EQ(t->Learn(1, Mac(2), 0, 20), LearnOutcome::kLearningDisabled);
  EXPECT_EQ(t->Lookup(1, Mac(2)), kNoPort);
  EXPECT_EQ(t->NextDeadline(), 10u);  // the learned entry is due at once
  EXPECT_EQ(t->Expire(20), 1u);
  EXPECT_EQ(t->Lookup(1, Mac(9)), 4);
  EXPECT_EQ(t->Learn(1, Mac(9), 5, 30), LearnOutcome::kLearningDisabled);
  EXPECT_EQ(t->Lookup(1, Mac(9)), 4);
  t->SetAgeingTime(kSecond);
  EXPECT_EQ(t->Learn(1, Mac(2), 0, 40), LearnOutcome::kLearned);
}

TEST(FdbTest, NeverAge) {
  Config config = Small();
  config.ageing_time_ns = kNeverAge;
  auto t = Make(config);
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 10), LearnOutcome::kLearned);
  EXPECT_EQ(t->NextDeadline(), std::nullopt);
  EXPECT_EQ(t->Expire(UINT64_MAX), 0u);
  EXPECT_EQ(t->Lookup(1, Mac(1)), 0);
}

TEST(FdbTest, DeadlineSaturates) {
  Config config = Small();
  config.ageing_time_ns = UINT64_MAX - 5;
  auto t = Make(config);
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 10), LearnOutcome::kLearned);
  EXPECT_EQ(t->NextDeadline(), std::nullopt);
  EXPECT_EQ(t->Expire(UINT64_MAX), 0u);
}

TEST(FdbTest, RefreshGranularity) {
  Config config = Small();
  config.refresh_granularity_ns = kSecond;
  auto t = Make(config);
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 0), LearnOutcome::kLearned);
  EXPECT_EQ(t->Learn(1, Mac(1), 0, kSecond - 1), LearnOutcome::kRefreshed);
  EXPECT_EQ(t->counters().refreshed, 0u);
  EXPECT_EQ(t->NextDeadline(), 10 * kSecond);
  EXPECT_EQ(t->Learn(1, Mac(1), 0, kSecond), LearnOutcome::kRefreshed);
  EXPECT_EQ(t->counters().refreshed, 1u);
  EXPECT_EQ(t->NextDeadline(), 11 * kSecond);
}

TEST(FdbTest, TimeGoingBackwardsIsTheLatestTimeSeen) {
  auto t = Make(Small());
  ASSERT_EQ(t->Learn(1, Mac(1), 0, 5 * kSecond), LearnOutcome::kLearned);
  ASSERT_EQ(t->Learn(1, Mac(2), 0, 1 * kSecond), LearnOutcome::kLearned);
  EXPECT_EQ(t->Find(1, Mac(2), 5 * kSecond)->age_ns, 0u);
  EXPECT_EQ(t->Expire(14 * kSecond), 0u);
  EXPECT_EQ(t->Expire(15 * kSecond), 2u);
}

TEST(FdbTest, FlushesRemoveLearnedEntriesOnly) {
  Config config = Small();
  config.max_entries = 64;
  auto t = Make(config);
  // Ports 0..2 x VLANs 1..3, one learned host each, and a static on each port.
  uint64_t n = 0;
  for (PortIndex p = 0; p < 3; ++p) {
    for (VlanId v = 1; v <= 3; ++v) ASSERT_EQ(t->Learn(v, Mac(++n), p, 1), LearnOutcome::kLearned);
    ASSERT_TRUE(t->AddStatic(1, Mac(100 + p), p).ok());
  }
  EXPECT_EQ(t->size(), 12u);
  EXPECT_EQ(t->FlushPortVlan(0, 2), 1u);
  EXPECT_EQ(t->FlushPortVlan(0, 2), 0u);
  EXPECT_EQ(t->FlushPort(1), 3u);
  EXPECT_EQ(t->FlushVlan(3), 2u);    // ports 0 and 2
  EXPECT_EQ(t->FlushVlan(1), 2u);    // ports 0 and 2; statics stay
  EXPECT_EQ(t->learned_size(), 1u);  // port 2, vlan 2
  EXPECT_EQ(t->FlushLearned(), 1u);
  EXPECT_EQ(t->size(), 3u);
  EXPECT_EQ(t->counters().flushed, 9u);
  for (PortIndex p = 0; p < 3; ++p) {
    EXPECT_EQ(t->Lookup(1, Mac(100 + p)), p);
    EXPECT_EQ(t->port_learned(p), 0u);
  }
  EXPECT_EQ(t->FlushPort(kNoPort), 0u);
  EXPECT_EQ(t->NextDeadline(), std::nullopt);
}

TEST(FdbTest, BatchedLookupMatchesSingleLookups) {
  Config config = Small();
  config.max_entries = 1024;
  config.max_ports = 64;
  auto t = Make(config);
  for (uint64_t i = 0; i < 500; ++i)
    ASSERT_EQ(t->Learn(static_cast<VlanId>(i % 7), Mac(i), static_cast<PortIndex>(i % 64), 1),
              LearnOutcome::kLearned);
  std::vector<Key> keys;
  for (uint64_t i = 0; i < 1000; ++i) keys.push_back(Key{static_cast<VlanId>(i % 7), Mac(i)});
  keys.push_back(Key{0xffff, *MacAddress::Parse("ff:ff:ff:ff:ff:ff")});
  keys.push_back(Key{4096, Mac(1)});
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, keys.size()}) {
    std::vector<PortIndex> ports(n, 1234);
    const Counters before = t->counters();
    t->LookupBatch(std::span(keys).first(n), ports);
    size_t hits = 0;
    for (size_t i = 0; i < n; ++i) {
      const PortIndex expected = i < 500 ? static_cast<PortIndex>(i % 64) : kNoPort;
      ASSERT_EQ(ports[i], expected) << "n=" << n << " i=" << i;
      hits += expected != kNoPort;
    }
    EXPECT_EQ(t->counters().lookup_hits - before.lookup_hits, hits);
    EXPECT_EQ(t->counters().lookup_misses - before.lookup_misses, n - hits);
  }
}

// LearnBatch is Learn in a loop: two twin tables, one fed key by key and
// one in batches, end every batch equal, counters and entries alike.
TEST(FdbTest, BatchedLearnEqualsLearnInOrder) {
  Config config = Small();
  config.max_entries = 64;
  config.max_per_port = 10;
  config.ageing_time_ns = 1000;
  auto one = Make(config);
  auto batched = Make(config);
  std::mt19937_64 rng(9);
  uint64_t now = 0;
  for (int round = 0; round < 3000; ++round) {
    const size_t n = rng() % 40;
    std::vector<Key> keys(n);
    std::vector<PortIndex> ports(n);
    for (size_t i = 0; i < n; ++i) {
      // Repeats within a batch, moves, invalid keys and ports, evictions.
      keys[i] = Key{static_cast<VlanId>(rng() % 50 == 0 ? 5000 : 1 + rng() % 3), Mac(rng() % 150)};
      ports[i] = static_cast<PortIndex>(rng() % 9);
    }
    now += rng() % 50;
    std::vector<LearnOutcome> want(n), got(n);
    for (size_t i = 0; i < n; ++i) want[i] = one->Learn(keys[i].vlan, keys[i].mac, ports[i], now);
    batched->LearnBatch(keys, ports, now, got);
    ASSERT_EQ(got, want) << "round " << round;
    if (round % 7 == 0) {
      ASSERT_EQ(one->Expire(now, 5), batched->Expire(now, 5));
    }
    ASSERT_EQ(batched->counters(), one->counters()) << "round " << round;
    ASSERT_EQ(batched->Snapshot(now), one->Snapshot(now)) << "round " << round;
  }
  EXPECT_GT(one->counters().evicted, 0u);
  EXPECT_GT(one->counters().moved, 0u);
  EXPECT_GT(one->counters().limit_drops, 0u);
  EXPECT_GT(one->counters().invalid, 0u);
  // Without outcomes.
  const std::vector<Key> keys = {Key{1, Mac(999)}};
  const std::vector<PortIndex> ports = {3};
  batched->LearnBatch(keys, ports, now);
  EXPECT_EQ(batched->Lookup(1, Mac(999)), 3);
}

TEST(FdbTest, DumpReportsEveryEntryOnceInBoundedChunks) {
  Config config = Small();
  config.max_entries = 1000;
  auto t = Make(config);
  for (uint64_t i = 0; i < 300; ++i)
    ASSERT_EQ(t->Learn(1, Mac(i), static_cast<PortIndex>(i % 8), i), LearnOutcome::kLearned);
  ASSERT_EQ(t->FlushPortVlan(0, 1), 38u);  // holes in the pool
  ASSERT_EQ(t->FlushPort(3), 38u);
  ASSERT_TRUE(t->AddStatic(2, Mac(7), 7).ok());
  std::vector<Entry> out(16);
  std::vector<Entry> all;
  size_t cursor = 0;
  size_t calls = 0;
  for (;;) {
    const DumpChunk chunk = t->Dump(cursor, out, 1000);
    EXPECT_LE(chunk.count, out.size());
    all.insert(all.end(), out.begin(), out.begin() + chunk.count);
    ++calls;
    if (chunk.done) break;
    cursor = chunk.next_cursor;
  }
  EXPECT_GE(calls, t->size() / 16);
  ASSERT_EQ(all.size(), t->size());
  std::set<Key> seen;
  for (const Entry& e : all) {
    EXPECT_TRUE(seen.insert(Key{e.vlan, e.mac}).second);
    auto f = t->Find(e.vlan, e.mac, 1000);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(*f, e);
  }
  EXPECT_EQ(t->Snapshot(1000).size(), t->size());
  // A sparse pool: a chunk's scan is bounded too (4 records per slot of
  // `out`), so a chunk may come back empty but not done, with progress made.
  ASSERT_EQ(t->FlushLearned(), 224u);
  size_t found = 0;
  calls = 0;
  for (cursor = 0;; ++calls) {
    const DumpChunk chunk = t->Dump(cursor, std::span(out).first(1), 1000);
    EXPECT_LE(chunk.next_cursor - cursor, 4u);
    found += chunk.count;
    if (chunk.done) break;
    cursor = chunk.next_cursor;
  }
  EXPECT_EQ(found, 1u);
  EXPECT_GE(calls, 249u);
}

TEST(FdbTest, DeletionKeepsProbeRunsIntactUnderAnySeed) {
  // A full table (load 1/2 of the index) emptied in an order unrelated to
  // insertion: every remaining key must stay reachable after each removal.
  for (uint64_t seed : {0ULL, 1ULL, 0xdeadbeefULL}) {
    Config config = Small();
    config.max_entries = 256;
    config.hash_seed = seed;
    config.ageing_time_ns = 1000;
    auto t = Make(config);
    // Entry i is seen at time (i * 37) % 256, so expiry order scrambles slots.
    std::vector<uint64_t> seen(256);
    for (uint64_t i = 0; i < 256; ++i) seen[i] = (i * 37) % 256;
    std::vector<uint64_t> order(256);
    for (uint64_t i = 0; i < 256; ++i) order[seen[i]] = i;
    uint64_t now = 0;
    for (uint64_t when = 0; when < 256; ++when, ++now)
      ASSERT_EQ(t->Learn(1, Mac(order[when]), 0, now), LearnOutcome::kLearned);
    for (uint64_t gone = 0; gone < 256; ++gone) {
      ASSERT_EQ(t->Expire(1000 + gone, 1), 1u);
      for (uint64_t i = 0; i < 256; ++i)
        ASSERT_EQ(t->Lookup(1, Mac(i)), seen[i] > gone ? 0 : kNoPort) << seed << " " << i;
    }
    EXPECT_EQ(t->size(), 0u);
  }
}

// Rebuilding with other limits: statics and the newest learned entries that
// fit stay, with their ports and ages; ageing still goes oldest first; the
// counters go on from the old table's, plus what was left out as evicted.
TEST(FdbTest, TakeEntriesFromKeepsTheNewestThatFitTheNewLimits) {
  auto old_table = Make(Small());
  ASSERT_TRUE(old_table->AddStatic(1, Mac(100), 7).ok());
  // Port 1: Mac(1..4) seen at 1..4 s; port 2: Mac(5) at 5 s.
  for (uint64_t i = 1; i <= 4; ++i) old_table->Learn(1, Mac(i), 1, i * kSecond);
  old_table->Learn(1, Mac(5), 2, 5 * kSecond);
  old_table->Lookup(1, Mac(5));
  const Counters before = old_table->counters();

  Config smaller = Small();
  smaller.max_per_port = 2;
  auto t = Make(smaller);
  ASSERT_TRUE(t->TakeEntriesFrom(*old_table, 6 * kSecond).ok());
  EXPECT_EQ(t->size(), 4u);  // the static, Mac(3), Mac(4), Mac(5)
  EXPECT_EQ(t->Lookup(1, Mac(100)), 7);
  EXPECT_EQ(t->Lookup(1, Mac(1)), kNoPort);
  EXPECT_EQ(t->Lookup(1, Mac(2)), kNoPort);
  EXPECT_EQ(t->Lookup(1, Mac(3)), 1);
  EXPECT_EQ(t->Lookup(1, Mac(4)), 1);
  EXPECT_EQ(t->Lookup(1, Mac(5)), 2);
  auto entry = t->Find(1, Mac(3), 6 * kSecond);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->age_ns, 3 * kSecond);
  auto fixed = t->Find(1, Mac(100), 6 * kSecond);
  ASSERT_TRUE(fixed.has_value());
  EXPECT_TRUE(fixed->is_static);

  Counters expected = before;
  expected.evicted += 2;
  expected.lookup_hits += 4;  // the lookups above
  expected.lookup_misses += 2;
  EXPECT_EQ(t->counters(), expected);

  // Ageing (10 s) in the old order: Mac(3) is due at 13 s, Mac(5) at 15 s.
  EXPECT_EQ(t->NextDeadline(), 13 * kSecond);
  EXPECT_EQ(t->Expire(13 * kSecond), 1u);
  EXPECT_EQ(t->Lookup(1, Mac(3)), kNoPort);
  EXPECT_EQ(t->Lookup(1, Mac(4)), 1);
  EXPECT_EQ(t->Expire(15 * kSecond), 2u);
  EXPECT_EQ(t->Lookup(1, Mac(100)), 7);  // static entries never age

  // A table too small for the static entries says which one.
  Config tiny = Small();
  tiny.max_entries = 1;
  auto u = Make(tiny);
  ASSERT_TRUE(old_table->AddStatic(2, Mac(101), 7).ok());
  Status taken = u->TakeEntriesFrom(*old_table, 6 * kSecond);
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.message().find("52:54:00:00:00:"), std::string::npos) << taken.message();
}

TEST(FdbTest, OutcomeNames) {
  EXPECT_EQ(ToString(LearnOutcome::kLearned), "learned");
  EXPECT_EQ(ToString(LearnOutcome::kStaticMoveRejected), "static-move-rejected");
  EXPECT_EQ(ToString(LearnOutcome::kInvalid), "invalid");
}

}  // namespace
}  // namespace vfabric::fdb
