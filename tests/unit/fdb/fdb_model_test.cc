// A randomized test: millions of mixed operations on a Table and on a simple
// reference model (a std::map), checking every answer and every counter.
//
// VFABRIC_FDB_MODEL_OPS overrides the number of operations per configuration
// (default 1,000,000; 100,000 under sanitizers); VFABRIC_FDB_MODEL_SEED the
// seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "vfabric/fdb/fdb.h"

namespace vfabric::fdb {

void PrintTo(const Counters& c, std::ostream* os) {
  *os << "{learned " << c.learned << " refreshed " << c.refreshed << " moved " << c.moved
      << " expired " << c.expired << " evicted " << c.evicted << " flushed " << c.flushed
      << " hits " << c.lookup_hits << " misses " << c.lookup_misses << " static_moves "
      << c.static_move_attempts << " limit_drops " << c.limit_drops << " invalid " << c.invalid
      << "}";
}
void PrintTo(const Entry& e, std::ostream* os) {
  *os << "{vlan " << e.vlan << " " << e.mac.ToString() << " port " << e.port
      << (e.is_static ? " static" : " learned") << " age " << e.age_ns << "}";
}
void PrintTo(const Key& k, std::ostream* os) {
  *os << "{vlan " << k.vlan << " " << k.mac.ToString() << "}";
}

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr size_t kDefaultOps = 100'000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kDefaultOps = 100'000;
#else
constexpr size_t kDefaultOps = 1'000'000;
#endif
#else
constexpr size_t kDefaultOps = 1'000'000;
#endif

size_t OpsFromEnv() {
  if (const char* s = std::getenv("VFABRIC_FDB_MODEL_OPS")) return std::strtoull(s, nullptr, 10);
  return kDefaultOps;
}
uint64_t SeedFromEnv(uint64_t fallback) {
  if (const char* s = std::getenv("VFABRIC_FDB_MODEL_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

// The reference: what the table's contract says, written the slow, obvious way.
class Model {
 public:
  struct Item {
    PortIndex port;
    bool is_static;
    uint64_t last_seen;
    uint64_t seq;  // order of the last (re)insertion into the ageing/port lists
  };

  explicit Model(const Config& config) : config_(config), counts_(config.max_ports, 0) {}

  Counters counters;
  std::map<Key, Item> items;

  uint64_t Now(uint64_t now) {
    clock_ = std::max(clock_, now);
    return clock_;
  }
  bool Valid(VlanId vlan, const MacAddress& mac, PortIndex port) const {
    return vlan <= kMaxVlanId && port < config_.max_ports && !mac.IsMulticast() && !mac.IsZero();
  }
  size_t learned() const {
    size_t n = 0;
    for (size_t c : counts_) n += c;
    return n;
  }
  size_t count(PortIndex port) const { return port < counts_.size() ? counts_[port] : 0; }
  void set_ageing(uint64_t ageing) { config_.ageing_time_ns = ageing; }

  // The learned entries a fair eviction may pick: the oldest entry of each
  // port that holds the most learned entries.
  std::vector<Key> EvictionCandidates() const {
    size_t most = 0;
    for (size_t c : counts_) most = std::max(most, c);
    std::vector<Key> candidates;
    if (most == 0) return candidates;
    std::vector<const std::pair<const Key, Item>*> oldest(counts_.size(), nullptr);
    for (const auto& kv : items) {
      const Item& item = kv.second;
      if (item.is_static || counts_[item.port] != most) continue;
      if (!oldest[item.port] || item.seq < oldest[item.port]->second.seq) oldest[item.port] = &kv;
    }
    for (const auto* kv : oldest)
      if (kv) candidates.push_back(kv->first);
    return candidates;
  }

  void RemoveLearned(const Key& key) {
    auto it = items.find(key);
    --counts_[it->second.port];
    items.erase(it);
  }

  // `reported` is what the table said it evicted (when it evicted).
  LearnOutcome Learn(const Key& key, PortIndex port, uint64_t now, const Eviction& reported,
                     std::string* error) {
    now = Now(now);
    if (!Valid(key.vlan, key.mac, port)) {
      ++counters.invalid;
      return LearnOutcome::kInvalid;
    }
    if (config_.ageing_time_ns == 0) return LearnOutcome::kLearningDisabled;
    const bool port_full = config_.max_per_port != 0 && counts_[port] >= config_.max_per_port;
    auto it = items.find(key);
    if (it != items.end()) {
      Item& item = it->second;
      if (item.is_static) {
        if (item.port == port) return LearnOutcome::kStatic;
        ++counters.static_move_attempts;
        return LearnOutcome::kStaticMoveRejected;
      }
      if (item.port == port) {
        if (now != item.last_seen && now - item.last_seen >= config_.refresh_granularity_ns) {
          item.last_seen = now;
          item.seq = ++seq_;
          ++counters.refreshed;
        }
        return LearnOutcome::kRefreshed;
      }
      if (port_full) {
        RemoveLearned(key);
        ++counters.limit_drops;
        return LearnOutcome::kLimitDropped;
      }
      --counts_[item.port];
      ++counts_[port];
      item.port = port;
      item.last_seen = now;
      item.seq = ++seq_;
      ++counters.moved;
      return LearnOutcome::kMoved;
    }
    if (port_full) {
      ++counters.limit_drops;
      return LearnOutcome::kLimitDropped;
    }
    if (items.size() == config_.max_entries) {
      const std::vector<Key> candidates = EvictionCandidates();
      if (candidates.empty()) {
        ++counters.limit_drops;
        return LearnOutcome::kLimitDropped;
      }
      if (std::find(candidates.begin(), candidates.end(), reported.key) == candidates.end() ||
          items.at(reported.key).port != reported.port) {
        std::ostringstream os;
        os << "unfair eviction of vlan " << reported.key.vlan << " " << reported.key.mac.ToString()
           << " port " << reported.port;
        *error = os.str();
      } else {
        RemoveLearned(reported.key);
        ++counters.evicted;
      }
    }
    items[key] = Item{port, false, now, ++seq_};
    ++counts_[port];
    ++counters.learned;
    return LearnOutcome::kLearned;
  }

  PortIndex Lookup(const Key& key) {
    auto it = items.find(key);
    if (it == items.end()) {
      ++counters.lookup_misses;
      return kNoPort;
    }
    ++counters.lookup_hits;
    return it->second.port;
  }

  size_t Expire(uint64_t now, size_t budget) {
    now = Now(now);
    if (config_.ageing_time_ns == kNeverAge) return 0;
    size_t removed = 0;
    while (removed < budget) {
      const Key* oldest = nullptr;
      uint64_t oldest_seq = UINT64_MAX;
      for (const auto& [key, item] : items)
        if (!item.is_static && item.seq < oldest_seq) {
          oldest_seq = item.seq;
          oldest = &key;
        }
      if (!oldest || now - items.at(*oldest).last_seen < config_.ageing_time_ns) break;
      RemoveLearned(Key(*oldest));
      ++removed;
    }
    counters.expired += removed;
    return removed;
  }

  std::optional<uint64_t> NextDeadline() const {
    if (config_.ageing_time_ns == kNeverAge) return std::nullopt;
    std::optional<uint64_t> oldest;
    for (const auto& [key, item] : items)
      if (!item.is_static && (!oldest || item.last_seen < *oldest)) oldest = item.last_seen;
    if (!oldest || *oldest > UINT64_MAX - config_.ageing_time_ns) return std::nullopt;
    return *oldest + config_.ageing_time_ns;
  }

  // Returns whether the add should succeed; `evicted` is set when it must
  // evict (the caller learns from the table which candidate went).
  bool AddStatic(const Key& key, PortIndex port, std::vector<Key>* must_evict_one_of) {
    if (!Valid(key.vlan, key.mac, port)) return false;
    auto it = items.find(key);
    if (it != items.end()) {
      if (!it->second.is_static) --counts_[it->second.port];
      it->second.is_static = true;
      it->second.port = port;
      return true;
    }
    if (items.size() == config_.max_entries) {
      *must_evict_one_of = EvictionCandidates();
      if (must_evict_one_of->empty()) return false;
    }
    return true;
  }
  void InsertStatic(const Key& key, PortIndex port) { items[key] = Item{port, true, clock_, 0}; }

  bool RemoveStatic(const Key& key) {
    auto it = items.find(key);
    if (it == items.end() || !it->second.is_static) return false;
    items.erase(it);
    return true;
  }

  template <typename Pred>
  size_t FlushIf(Pred pred) {
    size_t removed = 0;
    for (auto it = items.begin(); it != items.end();) {
      if (!it->second.is_static && pred(it->first, it->second)) {
        --counts_[it->second.port];
        it = items.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    counters.flushed += removed;
    return removed;
  }

  std::vector<Entry> Snapshot(uint64_t now) const {
    std::vector<Entry> out;
    for (const auto& [key, item] : items)
      out.push_back(Entry{key.vlan, key.mac, item.port, item.is_static,
                          item.is_static || now < item.last_seen ? 0 : now - item.last_seen});
    return out;
  }

 private:
  Config config_;
  std::vector<size_t> counts_;
  uint64_t clock_ = 0;
  uint64_t seq_ = 0;
};

struct Scenario {
  const char* name;
  Config config;
  std::vector<VlanId> vlans;  // keys are drawn from vlans x macs
  size_t macs;
  uint64_t max_step;  // time advances by 0..max_step per operation
};

void RunScenario(const Scenario& scenario, uint64_t seed) {
  SCOPED_TRACE(std::string(scenario.name) + " seed " + std::to_string(seed));
  const size_t ops = OpsFromEnv();
  auto created = Table::Create(scenario.config);
  ASSERT_TRUE(created.ok()) << created.status().message();
  Table& table = **created;
  Model model(scenario.config);
  std::mt19937_64 rng(seed);
  auto uniform = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };

  const size_t nports = scenario.config.max_ports;
  auto random_key = [&]() {
    Key key;
    const uint64_t r = uniform(1000);
    key.vlan = r == 0 ? 4096 : scenario.vlans[uniform(scenario.vlans.size())];
    if (r == 1)
      key.mac = *MacAddress::Parse("01:00:5e:00:00:01");
    else if (r == 2)
      key.mac = MacAddress{};
    else
      key.mac = MacAddress::FromU64(0x0200000000ULL + uniform(scenario.macs) * 0x10001ULL);
    return key;
  };
  auto random_port = [&]() {
    return static_cast<PortIndex>(uniform(1000) == 0 ? nports : uniform(nports));
  };

  uint64_t now = 1'000;
  std::vector<Key> batch_keys(64);
  std::vector<PortIndex> batch_ports(64);
  for (size_t op = 0; op < ops; ++op) {
    // Time mostly moves forward in small steps; it sometimes stands still,
    // jumps, or (a caller's bug) goes back, which the table must absorb.
    const uint64_t t = uniform(100);
    uint64_t when = now;
    if (t < 60)
      now += uniform(scenario.max_step + 1);
    else if (t == 60)
      now += scenario.config.ageing_time_ns == kNeverAge ? 1'000'000 : 3 * scenario.max_step * 1000;
    else if (t == 61 && now > 500)
      when = now - uniform(500);

    const uint64_t kind = uniform(1000);
    if (kind < 500) {
      const Key key = random_key();
      const PortIndex port = random_port();
      Eviction eviction;
      const LearnOutcome got = table.Learn(key.vlan, key.mac, port, when, &eviction);
      std::string error;
      const LearnOutcome want = model.Learn(key, port, when, eviction, &error);
      ASSERT_EQ(error, "") << "op " << op;
      ASSERT_EQ(ToString(got), ToString(want)) << "op " << op << " learn vlan " << key.vlan << " "
                                               << key.mac.ToString() << " port " << port;
    } else if (kind < 650) {
      const Key key = random_key();
      ASSERT_EQ(table.Lookup(key.vlan, key.mac), model.Lookup(key)) << "op " << op;
    } else if (kind < 700) {
      const size_t n = uniform(batch_keys.size() + 1);
      for (size_t i = 0; i < n; ++i) batch_keys[i] = random_key();
      table.LookupBatch(std::span(batch_keys).first(n), batch_ports);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(batch_ports[i], model.Lookup(batch_keys[i])) << "op " << op << " item " << i;
    } else if (kind < 780) {
      const uint64_t b = uniform(4);
      const size_t budget = b == 0 ? SIZE_MAX : b;
      ASSERT_EQ(table.Expire(when, budget), model.Expire(when, budget)) << "op " << op;
    } else if (kind < 830) {
      const Key key = random_key();
      const PortIndex port = random_port();
      std::vector<Key> candidates;
      const bool want = model.AddStatic(key, port, &candidates);
      const Status got = table.AddStatic(key.vlan, key.mac, port);
      ASSERT_EQ(got.ok(), want) << "op " << op << " " << got.ToString();
      if (want && !candidates.empty()) {
        size_t gone = 0;
        for (const Key& c : candidates) {
          if (table.Find(c.vlan, c.mac, 0)) continue;
          ++gone;
          model.RemoveLearned(c);
          ++model.counters.evicted;
        }
        ASSERT_EQ(gone, 1u) << "op " << op;
      }
      if (want && !model.items.count(key)) model.InsertStatic(key, port);
    } else if (kind < 870) {
      // Mostly remove keys that exist, to hit the static case.
      Key key = random_key();
      if (!model.items.empty() && uniform(2) == 0) {
        auto it = model.items.begin();
        std::advance(it, uniform(model.items.size()));
        key = it->first;
      }
      ASSERT_EQ(table.RemoveStatic(key.vlan, key.mac).ok(), model.RemoveStatic(key)) << "op " << op;
    } else if (kind < 875) {
      const PortIndex port = random_port();
      ASSERT_EQ(table.FlushPort(port),
                model.FlushIf([&](const Key&, const Model::Item& i) { return i.port == port; }));
    } else if (kind < 880) {
      const VlanId vlan = random_key().vlan;
      ASSERT_EQ(table.FlushVlan(vlan),
                model.FlushIf([&](const Key& k, const Model::Item&) { return k.vlan == vlan; }));
    } else if (kind < 885) {
      const PortIndex port = random_port();
      const VlanId vlan = random_key().vlan;
      ASSERT_EQ(table.FlushPortVlan(port, vlan),
                model.FlushIf([&](const Key& k, const Model::Item& i) {
                  return i.port == port && k.vlan == vlan;
                }));
    } else if (kind < 887) {
      ASSERT_EQ(table.FlushLearned(),
                model.FlushIf([](const Key&, const Model::Item&) { return true; }));
    } else if (kind < 889) {
      // Ageing changes: mostly back to the scenario's, sometimes 0 (no learning).
      const uint64_t ageing = uniform(4) == 0 ? 0 : scenario.config.ageing_time_ns;
      table.SetAgeingTime(ageing);
      model.set_ageing(ageing);
    } else {
      const Key key = random_key();
      auto got = table.Find(key.vlan, key.mac, now);
      auto it = model.items.find(key);
      ASSERT_EQ(got.has_value(), it != model.items.end()) << "op " << op;
      if (got) {
        ASSERT_EQ(got->port, it->second.port);
        ASSERT_EQ(got->is_static, it->second.is_static);
      }
    }

    ASSERT_EQ(table.counters(), model.counters) << "op " << op;
    ASSERT_EQ(table.size(), model.items.size()) << "op " << op;
    if (op % 16 == 0) {
      ASSERT_EQ(table.NextDeadline(), model.NextDeadline()) << "op " << op;
      ASSERT_EQ(table.learned_size(), model.learned()) << "op " << op;
      const PortIndex port = random_port();
      ASSERT_EQ(table.port_learned(port), model.count(port)) << "op " << op;
    }
    if (op % 4096 == 0) {
      std::vector<Entry> got = table.Snapshot(now);
      std::sort(got.begin(), got.end(), [](const Entry& a, const Entry& b) {
        return Key{a.vlan, a.mac} < Key{b.vlan, b.mac};
      });
      ASSERT_EQ(got, model.Snapshot(now)) << "op " << op;
    }
  }
  // The run must have exercised every path.
  const Counters& c = table.counters();
  EXPECT_GT(c.learned, 0u);
  EXPECT_GT(c.refreshed, 0u);
  EXPECT_GT(c.moved, 0u);
  EXPECT_GT(c.expired, 0u);
  EXPECT_GT(c.flushed, 0u);
  EXPECT_GT(c.lookup_hits, 0u);
  EXPECT_GT(c.lookup_misses, 0u);
  EXPECT_GT(c.static_move_attempts, 0u);
  EXPECT_GT(c.invalid, 0u);
  if (ops >= 100'000) {
    EXPECT_GT(c.evicted, 0u);
    if (scenario.config.max_per_port != 0) {
      EXPECT_GT(c.limit_drops, 0u);
    }
  }
}

TEST(FdbModelTest, SmallTableWithPerPortLimits) {
  Config config;
  config.max_entries = 48;
  config.max_per_port = 20;
  config.max_ports = 5;
  config.ageing_time_ns = 1000;
  config.hash_seed = 7;
  config.refresh_granularity_ns = 0;
  RunScenario({"small", config, {0, 1, 2, 4095}, 40, 20}, SeedFromEnv(1));
}

TEST(FdbModelTest, NoPortLimitWithRefreshGranularity) {
  Config config;
  config.max_entries = 200;
  config.max_per_port = 0;
  config.max_ports = 12;
  config.ageing_time_ns = 5000;
  config.refresh_granularity_ns = 40;
  config.hash_seed = 0xfeed;
  RunScenario({"granular", config, {1, 10, 100}, 100, 30}, SeedFromEnv(2));
}

TEST(FdbModelTest, LargerKeySpaceThanTable) {
  Config config;
  config.max_entries = 500;
  config.max_per_port = 120;
  config.max_ports = 40;
  config.ageing_time_ns = 20000;
  config.hash_seed = 3;
  config.refresh_granularity_ns = 0;
  RunScenario({"large", config, {5, 6}, 700, 20}, SeedFromEnv(3));
}

// Few buckets: full buckets, overflow into the next ones and backward shifts
// on nearly every removal.
TEST(FdbModelTest, TinyTableOverflowingBuckets) {
  Config config;
  config.max_entries = 8;  // 4 buckets of 4 slots
  config.max_per_port = 5;
  config.max_ports = 3;
  config.ageing_time_ns = 300;
  config.hash_seed = 11;
  config.refresh_granularity_ns = 0;
  RunScenario({"tiny", config, {1, 2}, 30, 10}, SeedFromEnv(4));
}

}  // namespace
}  // namespace vfabric::fdb
