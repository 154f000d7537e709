#include "vfabric/fdb/fdb.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <new>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string>

namespace vfabric::fdb {
namespace {

__extension__ typedef unsigned __int128 Uint128;  // GCC and Clang

constexpr uint32_t kNil = UINT32_MAX;
// The packed key of an empty slot. Packed keys start with the VLAN; a VLAN of
// 0xffff is never stored, so no real key equals this one, and an empty slot's
// port is kNoPort, so a lookup of this exact key still misses.
constexpr uint64_t kEmptyKey = UINT64_MAX;
constexpr uint16_t kFlagStatic = 1;
constexpr uint16_t kFlagInUse = 2;
constexpr size_t kMaxEntries = size_t{1} << 26;

static_assert(sizeof(Key) == 8 && offsetof(Key, mac) == 2,
              "Key must be {vlan, mac} in 8 bytes: it is loaded as one word");

// (vlan, mac) as one word: vlan in bits 0..15, mac in bits 16..63 (in memory
// order, whatever the host's endianness; only equality matters).
inline uint64_t Pack(const Key& key) {
  uint64_t word;
  std::memcpy(&word, &key, sizeof word);
  return word;
}
// The same word built in registers (a Key assembled on the stack and loaded
// as one word would stall store-to-load forwarding).
inline uint64_t Pack(VlanId vlan, const MacAddress& mac) {
  if constexpr (std::endian::native == std::endian::little) {
    uint32_t head;
    uint16_t tail;
    std::memcpy(&head, mac.bytes.data(), sizeof head);
    std::memcpy(&tail, mac.bytes.data() + 4, sizeof tail);
    return uint64_t{vlan} | uint64_t{head} << 16 | uint64_t{tail} << 48;
  } else {
    return Pack(Key{vlan, mac});
  }
}
inline Key Unpack(uint64_t word) {
  Key key;
  const auto* bytes = reinterpret_cast<const unsigned char*>(&word);
  std::memcpy(&key.vlan, bytes + offsetof(Key, vlan), sizeof key.vlan);
  std::memcpy(key.mac.bytes.data(), bytes + offsetof(Key, mac), key.mac.bytes.size());
  return key;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string Describe(VlanId vlan, const MacAddress& mac) {
  return "fdb vlan " + std::to_string(vlan) + " " + mac.ToString();
}

}  // namespace

// Four slots in one cache line. A lookup compares the 32-bit tags (the low
// half of each key's hash) of all four slots in one SSE2 instruction, then
// checks the key of the one that matches and takes its port.
struct alignas(64) Table::Bucket {
  uint32_t tags[kLanes];
  uint64_t keys[kLanes];
  PortIndex ports[kLanes];
  // Slots in use. A bucket with a free slot ends every probe that reaches it.
  uint32_t used;
  uint32_t unused;
};

struct Table::Record {
  uint64_t key;
  uint64_t last_seen;
  uint32_t age_prev, age_next;    // ageing list (learned only); free list via age_next
  uint32_t port_prev, port_next;  // the port's list (learned only)
  PortIndex port;
  uint16_t flags;
};

struct Table::PortState {
  uint32_t head = kNil, tail = kNil;  // learned records, oldest first
  uint32_t count = 0;                 // learned records on the port
  uint32_t bucket_prev = kNil, bucket_next = kNil;
};

std::string_view ToString(LearnOutcome outcome) {
  switch (outcome) {
    case LearnOutcome::kLearned:
      return "learned";
    case LearnOutcome::kRefreshed:
      return "refreshed";
    case LearnOutcome::kMoved:
      return "moved";
    case LearnOutcome::kStatic:
      return "static";
    case LearnOutcome::kStaticMoveRejected:
      return "static-move-rejected";
    case LearnOutcome::kLimitDropped:
      return "limit-dropped";
    case LearnOutcome::kLearningDisabled:
      return "learning-disabled";
    case LearnOutcome::kInvalid:
      return "invalid";
  }
  return "unknown";
}

Result<std::unique_ptr<Table>> Table::Create(const Config& config) {
  if (config.max_entries == 0 || config.max_entries > kMaxEntries)
    return Status::Error("fdb: max_entries " + std::to_string(config.max_entries) +
                         " out of range 1.." + std::to_string(kMaxEntries));
  if (config.max_ports == 0 || config.max_ports > kNoPort)
    return Status::Error("fdb: max_ports " + std::to_string(config.max_ports) +
                         " out of range 1.." + std::to_string(kNoPort));
  if (config.max_per_port > config.max_entries)
    return Status::Error("fdb: max_per_port " + std::to_string(config.max_per_port) +
                         " exceeds max_entries " + std::to_string(config.max_entries));
  // The only allocations, all without exceptions: a table too big for
  // memory is an error value like any other.
  std::unique_ptr<Table> table(new (std::nothrow) Table(config));
  if (!table || !table->Allocate())
    return Status::Error("fdb: cannot allocate a table of " + std::to_string(config.max_entries) +
                         " entries");
  return table;
}

Table::Table(const Config& config) : config_(config) {
  uint64_t state = config.hash_seed;
  salt0_ = SplitMix64(state);
  salt1_ = SplitMix64(state);
}

bool Table::Allocate() {
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");
  const Config& config = config_;
  size_t buckets = 2;
  while (buckets * kLanes < 2 * config.max_entries) buckets *= 2;
  bucket_mask_ = static_cast<uint32_t>(buckets - 1);
  bucket_shift_ = static_cast<uint32_t>(64 - std::countr_zero(buckets));
  const size_t per_port = config.max_per_port ? config.max_per_port : config.max_entries;
  bucket_count_ = per_port + 1;

  buckets_ = static_cast<Bucket*>(
      ::operator new[](buckets * sizeof(Bucket), std::align_val_t{alignof(Bucket)}, std::nothrow));
  slot_records_.reset(new (std::nothrow) uint32_t[buckets * kLanes]);
  records_.reset(new (std::nothrow) Record[config.max_entries]);
  ports_.reset(new (std::nothrow) PortState[config.max_ports]);
  bucket_head_.reset(new (std::nothrow) uint32_t[bucket_count_]);
  if (!buckets_ || !slot_records_ || !records_ || !ports_ || !bucket_head_) return false;

  for (size_t b = 0; b < buckets; ++b) {
    for (size_t lane = 0; lane < kLanes; ++lane) {
      buckets_[b].keys[lane] = kEmptyKey;
      buckets_[b].tags[lane] = 0;
      buckets_[b].ports[lane] = kNoPort;
    }
    buckets_[b].used = 0;
    buckets_[b].unused = 0;
  }
  std::fill_n(slot_records_.get(), buckets * kLanes, kNil);
  for (size_t i = 0; i < config.max_entries; ++i) {
    records_[i] = Record{};
    records_[i].age_next = i + 1 < config.max_entries ? static_cast<uint32_t>(i + 1) : kNil;
  }
  free_head_ = 0;
  age_head_ = age_tail_ = kNil;
  std::fill_n(bucket_head_.get(), bucket_count_, kNil);
  return true;
}

Table::~Table() { ::operator delete[](buckets_, std::align_val_t{alignof(Bucket)}); }

// ---- hashing and the index ----

// Two salted multiply/xorshift rounds; the bucket is taken from the top
// bits of the product, which depend on every bit of the key and the salt.
inline uint64_t Table::Hash(uint64_t packed) const {
  // A 64x64->128-bit multiply of the salted key, folded (absl's mix): every
  // output bit depends on every input bit.
  const Uint128 m = static_cast<Uint128>(packed ^ salt0_) * (salt1_ | 1);
  return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
}

inline uint32_t Table::Home(uint64_t packed) const {
  return static_cast<uint32_t>(Hash(packed) >> bucket_shift_);
}

namespace {
// The tag of a key whose hash is `hash`: bits the bucket index does not use
// (it takes the top ones).
inline uint32_t TagOf(uint64_t hash) { return static_cast<uint32_t>(hash); }
}  // namespace

// The index is linear probing by bucket: a key goes into the first bucket
// with a free slot, starting at its home bucket. Invariant: every key is in
// its home bucket or after a run of full buckets that starts there. So a
// lookup scans buckets from home until it finds the key or has looked at a
// bucket that is not full; as at most half the slots are used, runs are
// short and end. Erasing shifts keys back to keep the invariant (below).

namespace {

// Bit i set when tags[i] == tag.
inline uint32_t MatchTags(const uint32_t* tags, uint32_t tag) {
#if defined(__SSE2__)
  const __m128i eq = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(tags)),
                                     _mm_set1_epi32(static_cast<int>(tag)));
  return static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(eq)));
#else
  uint32_t match = 0;
  for (uint32_t lane = 0; lane < 4; ++lane)
    match |= static_cast<uint32_t>(tags[lane] == tag) << lane;
  return match;
#endif
}

}  // namespace

inline PortIndex Table::Probe(uint64_t packed, uint64_t hash) const {
  const uint32_t tag = TagOf(hash);
  uint32_t b = static_cast<uint32_t>(hash >> bucket_shift_);
  for (;;) {
    const Bucket& bucket = buckets_[b];
    const uint32_t match = MatchTags(bucket.tags, tag);
    // The first lane whose tag matches (lane 0 if none: then `hit` is false).
    const uint32_t lane =
        static_cast<uint32_t>(std::countr_zero(match | 1u << kLanes)) & (kLanes - 1);
    const bool hit = (match != 0) & (bucket.keys[lane] == packed);
    const PortIndex candidate = bucket.ports[lane];
    // An empty slot's port is kNoPort, so a hit on one (the sentinel key)
    // is a miss.
    const PortIndex port = hit ? candidate : kNoPort;
    // Done unless the key may be further on: in this bucket behind a second
    // matching tag (a 1 in 2^32 chance per slot), or in the next bucket
    // because this one is full.
    if (hit | ((bucket.used < kLanes) & ((match & (match - 1)) == 0))) [[likely]]
      return port;
    for (uint32_t l = 0; l < kLanes; ++l)
      if (bucket.keys[l] == packed) return bucket.ports[l];
    if (bucket.used < kLanes) return kNoPort;
    b = (b + 1) & bucket_mask_;
  }
}

uint32_t Table::FindSlot(uint64_t packed) const { return FindSlot(packed, Hash(packed)); }

uint32_t Table::FindSlot(uint64_t packed, uint64_t hash) const {
  const uint32_t tag = TagOf(hash);
  uint32_t b = static_cast<uint32_t>(hash >> bucket_shift_);
  for (;;) {
    const Bucket& bucket = buckets_[b];
    for (uint32_t match = MatchTags(bucket.tags, tag); match != 0; match &= match - 1) {
      const uint32_t lane = static_cast<uint32_t>(std::countr_zero(match));
      if (bucket.keys[lane] == packed && bucket.ports[lane] != kNoPort) return b * kLanes + lane;
    }
    if (bucket.used < kLanes) return kNil;
    b = (b + 1) & bucket_mask_;
  }
}

void Table::InsertSlot(uint64_t packed, PortIndex port, uint32_t record) {
  const uint64_t hash = Hash(packed);
  uint32_t b = static_cast<uint32_t>(hash >> bucket_shift_);
  for (;;) {
    Bucket& bucket = buckets_[b];
    for (uint32_t lane = 0; lane < kLanes; ++lane) {
      if (bucket.keys[lane] == kEmptyKey) {
        bucket.tags[lane] = TagOf(hash);
        bucket.keys[lane] = packed;
        bucket.ports[lane] = port;
        slot_records_[b * kLanes + lane] = record;
        ++bucket.used;
        return;
      }
    }
    b = (b + 1) & bucket_mask_;
  }
}

void Table::EraseSlot(uint64_t packed) {
  const uint32_t slot = FindSlot(packed);
  if (slot == kNil) return;
  // Backward shift, a bucket at a time: the hole may break the run of full
  // buckets that keys further on rely on. Fill it with a key from a later
  // bucket whose home is not after the hole's bucket, move the hole there,
  // and go on until a bucket that was not full (no run passes it).
  uint32_t hole_bucket = slot / kLanes;
  uint32_t hole_lane = slot % kLanes;
  for (uint32_t b = (hole_bucket + 1) & bucket_mask_;; b = (b + 1) & bucket_mask_) {
    Bucket& bucket = buckets_[b];
    const bool was_full = bucket.used == kLanes;
    for (uint32_t lane = 0; lane < kLanes; ++lane) {
      const uint64_t key = bucket.keys[lane];
      if (key == kEmptyKey) continue;
      const uint32_t home = Home(key);
      if (((b - home) & bucket_mask_) >= ((b - hole_bucket) & bucket_mask_)) {
        Bucket& hole = buckets_[hole_bucket];
        hole.tags[hole_lane] = bucket.tags[lane];
        hole.keys[hole_lane] = key;
        hole.ports[hole_lane] = bucket.ports[lane];
        slot_records_[hole_bucket * kLanes + hole_lane] = slot_records_[b * kLanes + lane];
        hole_bucket = b;
        hole_lane = lane;
        break;
      }
    }
    if (!was_full) break;
  }
  Bucket& hole = buckets_[hole_bucket];
  hole.keys[hole_lane] = kEmptyKey;
  hole.ports[hole_lane] = kNoPort;
  hole.tags[hole_lane] = 0;
  slot_records_[hole_bucket * kLanes + hole_lane] = kNil;
  --hole.used;
}

uint64_t Table::Now(uint64_t now_ns) {
  if (now_ns > clock_) clock_ = now_ns;
  return clock_;
}

// ---- pool and lists ----

uint32_t Table::AllocRecord() {
  const uint32_t r = free_head_;
  free_head_ = records_[r].age_next;
  return r;
}

void Table::FreeRecord(uint32_t r) {
  records_[r] = Record{};
  records_[r].age_next = free_head_;
  free_head_ = r;
}

void Table::AgeAppend(uint32_t r) {
  Record& rec = records_[r];
  rec.age_prev = age_tail_;
  rec.age_next = kNil;
  if (age_tail_ != kNil)
    records_[age_tail_].age_next = r;
  else
    age_head_ = r;
  age_tail_ = r;
}

void Table::AgeUnlink(uint32_t r) {
  Record& rec = records_[r];
  if (rec.age_prev != kNil)
    records_[rec.age_prev].age_next = rec.age_next;
  else
    age_head_ = rec.age_next;
  if (rec.age_next != kNil)
    records_[rec.age_next].age_prev = rec.age_prev;
  else
    age_tail_ = rec.age_prev;
}

void Table::PortAppend(uint32_t r) {
  Record& rec = records_[r];
  PortState& p = ports_[rec.port];
  rec.port_prev = p.tail;
  rec.port_next = kNil;
  if (p.tail != kNil)
    records_[p.tail].port_next = r;
  else
    p.head = r;
  p.tail = r;
}

void Table::PortUnlink(uint32_t r) {
  Record& rec = records_[r];
  PortState& p = ports_[rec.port];
  if (rec.port_prev != kNil)
    records_[rec.port_prev].port_next = rec.port_next;
  else
    p.head = rec.port_next;
  if (rec.port_next != kNil)
    records_[rec.port_next].port_prev = rec.port_prev;
  else
    p.tail = rec.port_prev;
}

void Table::PortCountChange(PortIndex port, int delta) {
  PortState& p = ports_[port];
  if (p.count > 0) {  // leave bucket p.count
    if (p.bucket_prev != kNil)
      ports_[p.bucket_prev].bucket_next = p.bucket_next;
    else
      bucket_head_[p.count] = p.bucket_next;
    if (p.bucket_next != kNil) ports_[p.bucket_next].bucket_prev = p.bucket_prev;
  }
  p.count = static_cast<uint32_t>(static_cast<int64_t>(p.count) + delta);
  p.bucket_prev = p.bucket_next = kNil;
  if (p.count > 0) {  // join bucket p.count
    p.bucket_next = bucket_head_[p.count];
    if (p.bucket_next != kNil) ports_[p.bucket_next].bucket_prev = port;
    bucket_head_[p.count] = port;
    if (p.count > max_bucket_) max_bucket_ = p.count;
  }
  while (max_bucket_ > 0 && bucket_head_[max_bucket_] == kNil) --max_bucket_;
}

void Table::RemoveLearned(uint32_t r) {
  Record& rec = records_[r];
  EraseSlot(rec.key);
  AgeUnlink(r);
  PortUnlink(r);
  PortCountChange(rec.port, -1);
  --learned_;
  --size_;
  FreeRecord(r);
}

bool Table::EvictOne(Eviction* eviction) {
  if (max_bucket_ == 0) return false;
  const uint32_t port = bucket_head_[max_bucket_];
  const uint32_t r = ports_[port].head;
  if (eviction) *eviction = Eviction{Unpack(records_[r].key), records_[r].port};
  RemoveLearned(r);
  ++counters_.evicted;
  return true;
}

// ---- datapath ----

LearnOutcome Table::Learn(VlanId vlan, const MacAddress& mac, PortIndex port, uint64_t now_ns,
                          Eviction* eviction) {
  const uint64_t now = Now(now_ns);
  if (vlan > kMaxVlanId || port >= config_.max_ports || mac.IsMulticast() || mac.IsZero()) {
    ++counters_.invalid;
    return LearnOutcome::kInvalid;
  }
  if (config_.ageing_time_ns == 0) return LearnOutcome::kLearningDisabled;
  const bool port_full = config_.max_per_port != 0 && ports_[port].count >= config_.max_per_port;
  const uint64_t packed = Pack(vlan, mac);
  const uint32_t s = FindSlot(packed);

  if (s != kNil) {
    Bucket& bucket = buckets_[s / kLanes];
    const uint32_t r = slot_records_[s];
    Record& rec = records_[r];
    if (rec.flags & kFlagStatic) {
      if (rec.port == port) return LearnOutcome::kStatic;
      ++counters_.static_move_attempts;
      return LearnOutcome::kStaticMoveRejected;
    }
    if (rec.port == port) {
      if (now != rec.last_seen && now - rec.last_seen >= config_.refresh_granularity_ns) {
        rec.last_seen = now;
        AgeUnlink(r);
        AgeAppend(r);
        PortUnlink(r);
        PortAppend(r);
        ++counters_.refreshed;
      }
      return LearnOutcome::kRefreshed;
    }
    if (port_full) {
      // The host moved to a port that may learn no more: forget it (frames
      // to it flood) rather than keep sending them to the old port.
      RemoveLearned(r);
      ++counters_.limit_drops;
      return LearnOutcome::kLimitDropped;
    }
    PortUnlink(r);
    PortCountChange(rec.port, -1);
    rec.port = port;
    bucket.ports[s % kLanes] = port;
    rec.last_seen = now;
    PortAppend(r);
    PortCountChange(port, +1);
    AgeUnlink(r);
    AgeAppend(r);
    ++counters_.moved;
    return LearnOutcome::kMoved;
  }

  if (port_full || (size_ == config_.max_entries && !EvictOne(eviction))) {
    ++counters_.limit_drops;
    return LearnOutcome::kLimitDropped;
  }
  const uint32_t r = AllocRecord();
  Record& rec = records_[r];
  rec.key = packed;
  rec.last_seen = now;
  rec.port = port;
  rec.flags = kFlagInUse;
  InsertSlot(packed, port, r);
  AgeAppend(r);
  PortAppend(r);
  PortCountChange(port, +1);
  ++learned_;
  ++size_;
  ++counters_.learned;
  return LearnOutcome::kLearned;
}

void Table::LearnBatch(std::span<const Key> keys, std::span<const PortIndex> ports, uint64_t now_ns,
                       std::span<LearnOutcome> outcomes) {
  // Three passes over a group of keys: prefetch the home buckets (and the
  // slot-to-record words next to them); find each key's slot and prefetch
  // its record; then learn one by one, now from cache. Earlier learns of the
  // group may move slots, so the last pass looks every key up again.
  constexpr size_t kGroup = 16;
  const size_t n = keys.size();
  assert(ports.size() >= n && (outcomes.empty() || outcomes.size() >= n));
  for (size_t base = 0; base < n; base += kGroup) {
    const size_t m = std::min(kGroup, n - base);
    uint64_t hashes[kGroup];
    for (size_t j = 0; j < m; ++j) {
      const uint64_t h = Hash(Pack(keys[base + j]));
      hashes[j] = h;
      const uint64_t b = h >> bucket_shift_;
      __builtin_prefetch(&buckets_[b]);
      __builtin_prefetch(&slot_records_[b * kLanes]);
    }
    for (size_t j = 0; j < m; ++j) {
      const uint32_t s = FindSlot(Pack(keys[base + j]), hashes[j]);
      if (s != kNil) __builtin_prefetch(&records_[slot_records_[s]]);
    }
    for (size_t j = 0; j < m; ++j) {
      const Key& key = keys[base + j];
      const LearnOutcome outcome = Learn(key.vlan, key.mac, ports[base + j], now_ns);
      if (!outcomes.empty()) outcomes[base + j] = outcome;
    }
  }
}

PortIndex Table::Lookup(VlanId vlan, const MacAddress& mac) {
  const uint64_t packed = Pack(vlan, mac);
  const PortIndex port = Probe(packed, Hash(packed));
  counters_.lookup_hits += port != kNoPort;
  counters_.lookup_misses += port == kNoPort;
  return port;
}

void Table::LookupBatch(std::span<const Key> keys, std::span<PortIndex> ports) {
  // Hash a group of keys and prefetch their home buckets, then probe the
  // previous group while those cache lines arrive.
  constexpr size_t kGroup = 16;
  const size_t n = keys.size();
  assert(ports.size() >= n);
  if (n == 0) return;
  uint64_t hashes[2][kGroup];
  auto prepare = [&](size_t base, int which) {
    const size_t m = std::min(kGroup, n - base);
    for (size_t j = 0; j < m; ++j) {
      const uint64_t h = Hash(Pack(keys[base + j]));
      hashes[which][j] = h;
      __builtin_prefetch(&buckets_[h >> bucket_shift_]);
    }
  };
  uint64_t hits = 0;
  prepare(0, 0);
  int current = 0;
  for (size_t base = 0; base < n; base += kGroup) {
    if (base + kGroup < n) prepare(base + kGroup, current ^ 1);
    const size_t m = std::min(kGroup, n - base);
    for (size_t j = 0; j < m; ++j) {
      const PortIndex port = Probe(Pack(keys[base + j]), hashes[current][j]);
      ports[base + j] = port;
      hits += port != kNoPort;
    }
    current ^= 1;
  }
  counters_.lookup_hits += hits;
  counters_.lookup_misses += n - hits;
}

// ---- ageing ----

size_t Table::Expire(uint64_t now_ns, size_t budget) {
  const uint64_t now = Now(now_ns);
  if (config_.ageing_time_ns == kNeverAge) return 0;
  size_t removed = 0;
  while (removed < budget && age_head_ != kNil &&
         now - records_[age_head_].last_seen >= config_.ageing_time_ns) {
    RemoveLearned(age_head_);
    ++removed;
  }
  counters_.expired += removed;
  return removed;
}

std::optional<uint64_t> Table::NextDeadline() const {
  if (age_head_ == kNil || config_.ageing_time_ns == kNeverAge) return std::nullopt;
  const uint64_t last = records_[age_head_].last_seen;
  if (last > UINT64_MAX - config_.ageing_time_ns) return std::nullopt;
  return last + config_.ageing_time_ns;
}

void Table::SetAgeingTime(uint64_t ageing_time_ns) { config_.ageing_time_ns = ageing_time_ns; }

// ---- control ----

Status Table::AddStatic(VlanId vlan, const MacAddress& mac, PortIndex port) {
  if (vlan > kMaxVlanId) return Status::Error(Describe(vlan, mac) + ": vlan out of range 0..4095");
  if (mac.IsMulticast() || mac.IsZero())
    return Status::Error(Describe(vlan, mac) + ": not a unicast address");
  if (port >= config_.max_ports)
    return Status::Error(Describe(vlan, mac) + ": port " + std::to_string(port) +
                         " out of range 0.." + std::to_string(config_.max_ports - 1));
  const uint64_t packed = Pack(vlan, mac);
  const uint32_t s = FindSlot(packed);
  if (s != kNil) {
    const uint32_t r = slot_records_[s];
    Record& rec = records_[r];
    if (!(rec.flags & kFlagStatic)) {
      AgeUnlink(r);
      PortUnlink(r);
      PortCountChange(rec.port, -1);
      --learned_;
      rec.flags |= kFlagStatic;
    }
    rec.port = port;
    buckets_[s / kLanes].ports[s % kLanes] = port;
    return Status::Ok();
  }
  if (size_ == config_.max_entries && !EvictOne(nullptr))
    return Status::Error(Describe(vlan, mac) + ": table full of static entries (" +
                         std::to_string(config_.max_entries) + ")");
  const uint32_t r = AllocRecord();
  Record& rec = records_[r];
  rec.key = packed;
  rec.last_seen = clock_;
  rec.port = port;
  rec.flags = kFlagInUse | kFlagStatic;
  rec.age_prev = rec.age_next = rec.port_prev = rec.port_next = kNil;
  InsertSlot(packed, port, r);
  ++size_;
  return Status::Ok();
}

Status Table::RemoveStatic(VlanId vlan, const MacAddress& mac) {
  const uint64_t packed = vlan > kMaxVlanId ? kEmptyKey : Pack(vlan, mac);
  const uint32_t s = FindSlot(packed);
  if (s == kNil) return Status::Error(Describe(vlan, mac) + ": no such entry");
  const uint32_t r = slot_records_[s];
  if (!(records_[r].flags & kFlagStatic))
    return Status::Error(Describe(vlan, mac) + ": is learned, not static");
  EraseSlot(packed);
  FreeRecord(r);
  --size_;
  return Status::Ok();
}

size_t Table::FlushPort(PortIndex port) {
  if (port >= config_.max_ports) return 0;
  size_t removed = 0;
  while (ports_[port].head != kNil) {
    RemoveLearned(ports_[port].head);
    ++removed;
  }
  counters_.flushed += removed;
  return removed;
}

size_t Table::FlushVlan(VlanId vlan) {
  size_t removed = 0;
  for (uint32_t r = age_head_; r != kNil;) {
    const uint32_t next = records_[r].age_next;
    if (Unpack(records_[r].key).vlan == vlan) {
      RemoveLearned(r);
      ++removed;
    }
    r = next;
  }
  counters_.flushed += removed;
  return removed;
}

size_t Table::FlushPortVlan(PortIndex port, VlanId vlan) {
  if (port >= config_.max_ports) return 0;
  size_t removed = 0;
  for (uint32_t r = ports_[port].head; r != kNil;) {
    const uint32_t next = records_[r].port_next;
    if (Unpack(records_[r].key).vlan == vlan) {
      RemoveLearned(r);
      ++removed;
    }
    r = next;
  }
  counters_.flushed += removed;
  return removed;
}

size_t Table::FlushLearned() {
  size_t removed = 0;
  while (age_head_ != kNil) {
    RemoveLearned(age_head_);
    ++removed;
  }
  counters_.flushed += removed;
  return removed;
}

Entry Table::MakeEntry(uint32_t r, uint64_t now) const {
  const Record& rec = records_[r];
  const Key key = Unpack(rec.key);
  Entry entry;
  entry.vlan = key.vlan;
  entry.mac = key.mac;
  entry.port = rec.port;
  entry.is_static = (rec.flags & kFlagStatic) != 0;
  entry.age_ns = entry.is_static || now < rec.last_seen ? 0 : now - rec.last_seen;
  return entry;
}

std::optional<Entry> Table::Find(VlanId vlan, const MacAddress& mac, uint64_t now_ns) const {
  if (vlan > kMaxVlanId) return std::nullopt;
  const uint32_t s = FindSlot(Pack(vlan, mac));
  if (s == kNil) return std::nullopt;
  return MakeEntry(slot_records_[s], now_ns);
}

DumpChunk Table::Dump(size_t cursor, std::span<Entry> out, uint64_t now_ns) const {
  DumpChunk chunk;
  // Bound the scan as well as the copy: a sparse pool must not make one
  // chunk long.
  const size_t scan_limit = std::max<size_t>(out.size(), 1) * 4;
  size_t i = cursor;
  for (size_t scanned = 0;
       i < config_.max_entries && chunk.count < out.size() && scanned < scan_limit;
       ++i, ++scanned) {
    if (records_[i].flags & kFlagInUse)
      out[chunk.count++] = MakeEntry(static_cast<uint32_t>(i), now_ns);
  }
  chunk.next_cursor = i;
  chunk.done = i >= config_.max_entries;
  return chunk;
}

std::vector<Entry> Table::Snapshot(uint64_t now_ns) const {
  std::vector<Entry> entries;
  entries.reserve(size_);
  std::vector<Entry> buffer(1024);
  size_t cursor = 0;
  for (;;) {
    const DumpChunk chunk = Dump(cursor, buffer, now_ns);
    entries.insert(entries.end(), buffer.begin(), buffer.begin() + chunk.count);
    if (chunk.done) break;
    cursor = chunk.next_cursor;
  }
  return entries;
}

Status Table::TakeEntriesFrom(const Table& from, uint64_t now_ns) {
  if (size_ != 0) return Status::Error("fdb: entries can only be taken into an empty table");
  std::vector<Entry> entries = from.Snapshot(now_ns);
  for (const Entry& e : entries) {
    if (!e.is_static) continue;
    Status added = AddStatic(e.vlan, e.mac, e.port);
    if (!added.ok()) return added;
  }
  std::erase_if(entries, [](const Entry& e) { return e.is_static; });
  // The newest entries that fit the limits stay: chosen newest first...
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.age_ns < b.age_ns; });
  std::vector<size_t> per_port(config_.max_ports, 0);
  size_t room = config_.max_entries - size_;
  std::erase_if(entries, [&](const Entry& e) {
    if (room == 0 || e.port >= config_.max_ports) return true;
    if (config_.max_per_port != 0 && per_port[e.port] >= config_.max_per_port) return true;
    ++per_port[e.port];
    --room;
    return false;
  });
  // ... and learned oldest first, so each goes to the tail of the age list.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const uint64_t seen = now_ns > it->age_ns ? now_ns - it->age_ns : 0;
    Learn(it->vlan, it->mac, it->port, seen);
  }
  const size_t left_out = from.learned_size() - learned_;
  counters_ = from.counters_;
  counters_.evicted += left_out;
  return Status::Ok();
}

size_t Table::port_learned(PortIndex port) const {
  return port < config_.max_ports ? ports_[port].count : 0;
}

}  // namespace vfabric::fdb
