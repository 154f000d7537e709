// FDB benchmarks: lookups (hit and miss, single and batched) and learns at
// 1K, 64K and 1M entries, with std::unordered_map and (when built with it)
// absl::flat_hash_map holding the same keys, in the same run.
//
// Every benchmark reports items_per_second (lookups or learns per second on
// one core). bench/run-fdb runs this and prints the ratios against the peers.
//
// The key stream is 1M keys drawn uniformly from the table's keys (hits) or
// from keys not in it (misses), in random order, read sequentially; each
// implementation sees the same stream. Batched lookups take 32 keys at a time,
// a receive burst.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#ifdef VFABRIC_BENCH_HAVE_ABSL
#include <absl/container/flat_hash_map.h>
#endif

#include "vfabric/fdb/fdb.h"

namespace vfabric::fdb {
namespace {

constexpr size_t kStream = size_t{1} << 20;
constexpr size_t kBatch = 32;
constexpr size_t kPorts = 256;

uint64_t Word(const Key& key) {
  uint64_t word;
  std::memcpy(&word, &key, sizeof word);
  return word;
}

struct Value {
  PortIndex port;
  uint64_t last_seen;
};

// The keys, streams and tables of one size, built once and shared by every
// benchmark of that size.
struct Fixture {
  std::vector<Key> keys;               // in the tables
  std::vector<Key> hit_stream;         // kStream keys drawn from `keys`
  std::vector<Key> miss_stream;        // kStream keys not in the tables
  std::unique_ptr<Table> table;        // default config: refresh granularity 1 s
  std::unique_ptr<Table> exact_table;  // the same keys, refresh granularity 0 (built on demand)
  std::unordered_map<uint64_t, Value> umap;
#ifdef VFABRIC_BENCH_HAVE_ABSL
  absl::flat_hash_map<uint64_t, Value> absl_map;
#endif
  uint64_t now = 1;

  Config config;

  explicit Fixture(size_t n) {
    std::mt19937_64 rng(n);
    auto random_key = [&] {
      Key key;
      key.vlan = static_cast<VlanId>(1 + rng() % 16);
      key.mac = MacAddress::FromU64((rng() & 0xfeffffffffffULL) | 0x020000000000ULL);  // unicast
      return key;
    };
    config.max_entries = n;
    config.max_ports = kPorts;
    config.ageing_time_ns = kNeverAge;
    config.hash_seed = rng();
    table = std::move(Table::Create(config)).value();
    while (keys.size() < n) {
      const Key key = random_key();
      const PortIndex port = static_cast<PortIndex>(rng() % kPorts);
      if (table->Learn(key.vlan, key.mac, port, now) != LearnOutcome::kLearned) continue;
      keys.push_back(key);
      umap[Word(key)] = Value{port, now};
#ifdef VFABRIC_BENCH_HAVE_ABSL
      absl_map[Word(key)] = Value{port, now};
#endif
    }
    hit_stream.resize(kStream);
    for (Key& key : hit_stream) key = keys[rng() % n];
    miss_stream.resize(kStream);
    for (Key& key : miss_stream) {
      do key = random_key();
      while (umap.count(Word(key)));
    }
  }
};

Fixture& Get(size_t n) {
  static std::map<size_t, std::unique_ptr<Fixture>> fixtures;
  auto& slot = fixtures[n];
  if (!slot) slot = std::make_unique<Fixture>(n);
  return *slot;
}

const std::vector<Key>& Stream(Fixture& f, bool hit) { return hit ? f.hit_stream : f.miss_stream; }

// ---- lookups ----

template <bool kHit>
void BM_Vfabric_Lookup(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  const std::vector<Key>& stream = Stream(f, kHit);
  size_t i = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kBatch; ++j, ++i) {
      const Key& key = stream[i & (kStream - 1)];
      sum += f.table->Lookup(key.vlan, key.mac);
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

template <bool kHit>
void BM_Vfabric_LookupBatch(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  const std::vector<Key>& stream = Stream(f, kHit);
  PortIndex ports[kBatch];
  size_t i = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    f.table->LookupBatch(std::span(&stream[i], kBatch), ports);
    sum += ports[0];
    i = (i + kBatch) & (kStream - 1);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

template <typename Map, bool kHit>
void LookupMap(benchmark::State& state, Fixture& f, Map& map) {
  const std::vector<Key>& stream = Stream(f, kHit);
  size_t i = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kBatch; ++j, ++i) {
      auto it = map.find(Word(stream[i & (kStream - 1)]));
      sum += it == map.end() ? kNoPort : it->second.port;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

template <bool kHit>
void BM_UnorderedMap_Lookup(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  LookupMap<decltype(f.umap), kHit>(state, f, f.umap);
}

#ifdef VFABRIC_BENCH_HAVE_ABSL
template <bool kHit>
void BM_Absl_Lookup(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  LookupMap<decltype(f.absl_map), kHit>(state, f, f.absl_map);
}
#endif

// ---- learns ----
// Refreshes of known hosts on their own port, the datapath's common case: the
// source MAC of every received frame. Time advances once per burst of 32 (1 ns:
// with the default granularity the entries' times stay put).

// The same stream with the ports looked up beforehand, so the peers' map
// lookup for the port is not charged to vfabric: one array per fixture.
std::vector<PortIndex>& HitPorts(Fixture& f) {
  static std::map<Fixture*, std::vector<PortIndex>> ports;
  auto& p = ports[&f];
  if (p.empty()) {
    p.resize(kStream);
    for (size_t i = 0; i < kStream; ++i) p[i] = f.umap.find(Word(f.hit_stream[i]))->second.port;
  }
  return p;
}

// `exact`: refresh granularity 0, so every learn moves the entry to the tail
// of its ageing and port lists; otherwise the default (1 s): the learn finds
// the entry and checks its time.
template <bool kExact>
void BM_Vfabric_LearnRefresh(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  const std::vector<PortIndex>& ports = HitPorts(f);
  if (kExact && !f.exact_table) {
    Config config = f.config;
    config.refresh_granularity_ns = 0;
    f.exact_table = std::move(Table::Create(config)).value();
    for (const Key& key : f.keys)
      (void)f.exact_table->Learn(key.vlan, key.mac, f.umap.find(Word(key))->second.port, f.now);
  }
  Table& table = kExact ? *f.exact_table : *f.table;
  size_t i = 0;
  uint64_t bad = 0;
  for (auto _ : state) {
    ++f.now;
    for (size_t j = 0; j < kBatch; ++j, ++i) {
      const size_t at = i & (kStream - 1);
      const Key& key = f.hit_stream[at];
      bad += table.Learn(key.vlan, key.mac, ports[at], f.now) != LearnOutcome::kRefreshed;
    }
  }
  if (bad) state.SkipWithError("a refresh did not refresh");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

// The same refreshes through LearnBatch, 32 at a time.
void BM_Vfabric_LearnRefreshBatch(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  const std::vector<PortIndex>& ports = HitPorts(f);
  LearnOutcome outcomes[kBatch];
  size_t i = 0;
  uint64_t bad = 0;
  for (auto _ : state) {
    ++f.now;
    f.table->LearnBatch(std::span(&f.hit_stream[i], kBatch), std::span(&ports[i], kBatch), f.now,
                        outcomes);
    bad += outcomes[0] != LearnOutcome::kRefreshed;
    i = (i + kBatch) & (kStream - 1);
  }
  if (bad) state.SkipWithError("a refresh did not refresh");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

template <typename Map>
void LearnMap(benchmark::State& state, Fixture& f, Map& map) {
  const std::vector<PortIndex>& ports = HitPorts(f);
  size_t i = 0;
  for (auto _ : state) {
    ++f.now;
    for (size_t j = 0; j < kBatch; ++j, ++i) {
      const size_t at = i & (kStream - 1);
      Value& v = map[Word(f.hit_stream[at])];
      v.port = ports[at];
      v.last_seen = f.now;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

void BM_UnorderedMap_LearnRefresh(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  LearnMap(state, f, f.umap);
}

#ifdef VFABRIC_BENCH_HAVE_ABSL
void BM_Absl_LearnRefresh(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  LearnMap(state, f, f.absl_map);
}
#endif

// New hosts into a full table: every learn evicts (fairly) and inserts. A
// private table, so the shared one keeps its keys.
void BM_Vfabric_LearnEvict(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Config config;
  config.max_entries = n;
  config.max_ports = kPorts;
  config.ageing_time_ns = kNeverAge;
  config.hash_seed = 99;
  auto table = std::move(Table::Create(config)).value();
  uint64_t now = 1;
  uint64_t mac = 0x020000000000ULL;
  for (size_t i = 0; i < n; ++i)
    (void)table->Learn(1, MacAddress::FromU64(mac++), static_cast<PortIndex>(i % kPorts), now);
  size_t i = 0;
  for (auto _ : state) {
    ++now;
    for (size_t j = 0; j < kBatch; ++j, ++i)
      (void)table->Learn(2, MacAddress::FromU64(mac++), static_cast<PortIndex>(i % kPorts), now);
  }
  state.counters["evicted"] = static_cast<double>(table->counters().evicted);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

void Sizes(benchmark::internal::Benchmark* b) { b->Arg(1 << 10)->Arg(1 << 16)->Arg(1 << 20); }

BENCHMARK(BM_Vfabric_Lookup<true>)->Name("hit/vfabric_single")->Apply(Sizes);
BENCHMARK(BM_Vfabric_LookupBatch<true>)->Name("hit/vfabric_batched")->Apply(Sizes);
BENCHMARK(BM_UnorderedMap_Lookup<true>)->Name("hit/unordered_map")->Apply(Sizes);
#ifdef VFABRIC_BENCH_HAVE_ABSL
BENCHMARK(BM_Absl_Lookup<true>)->Name("hit/absl_flat_hash_map")->Apply(Sizes);
#endif
BENCHMARK(BM_Vfabric_Lookup<false>)->Name("miss/vfabric_single")->Apply(Sizes);
BENCHMARK(BM_Vfabric_LookupBatch<false>)->Name("miss/vfabric_batched")->Apply(Sizes);
BENCHMARK(BM_UnorderedMap_Lookup<false>)->Name("miss/unordered_map")->Apply(Sizes);
#ifdef VFABRIC_BENCH_HAVE_ABSL
BENCHMARK(BM_Absl_Lookup<false>)->Name("miss/absl_flat_hash_map")->Apply(Sizes);
#endif
BENCHMARK(BM_Vfabric_LearnRefresh<false>)->Name("learn/vfabric_refresh")->Apply(Sizes);
BENCHMARK(BM_Vfabric_LearnRefreshBatch)->Name("learn/vfabric_refresh_batched")->Apply(Sizes);
BENCHMARK(BM_Vfabric_LearnRefresh<true>)->Name("learn/vfabric_refresh_exact")->Apply(Sizes);
BENCHMARK(BM_UnorderedMap_LearnRefresh)->Name("learn/unordered_map_assign")->Apply(Sizes);
#ifdef VFABRIC_BENCH_HAVE_ABSL
BENCHMARK(BM_Absl_LearnRefresh)->Name("learn/absl_flat_hash_map_assign")->Apply(Sizes);
#endif
BENCHMARK(BM_Vfabric_LearnEvict)->Name("learn/vfabric_new_evicting")->Apply(Sizes);

}  // namespace
}  // namespace vfabric::fdb

BENCHMARK_MAIN();
