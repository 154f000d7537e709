#include "vfabric/fdb/fdb.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>

namespace vfabric::fdb {
namespace {

constexpr uint32_t kNil = UINT32_MAX;
// The packed key of an empty slot. Packed keys put the VLAN in the low 16
// bits; a VLAN of 0xffff is never stored, so no real key equals this one, and
// an empty slot's port is kNoPort, so a lookup of this exact key still misses.
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
inline uint64_t Pack(VlanId vlan, const MacAddress& mac) { return Pack(Key{vlan, mac}); }
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

struct Table::Slot {
  uint64_t key;
  PortIndex port;
  uint16_t flags;
  uint32_t record;
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
    case LearnOutcome::kLearned: return "learned";
    case LearnOutcome::kRefreshed: return "refreshed";
    case LearnOutcome::kMoved: return "moved";
    case LearnOutcome::kStatic: return "static";
    case LearnOutcome::kStaticMoveRejected: return "static-move-rejected";
    case LearnOutcome::kLimitDropped: return "limit-dropped";
    case LearnOutcome::kLearningDisabled: return "learning-disabled";
    case LearnOutcome::kInvalid: return "invalid";
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
  return std::unique_ptr<Table>(new Table(config));
}

Table::Table(const Config& config) : config_(config) {
  static_assert(sizeof(Slot) == 16, "four slots to a cache line");
  uint64_t state = config.hash_seed;
  salt0_ = SplitMix64(state);
  salt1_ = SplitMix64(state);

  size_t slots = 8;
  while (slots < 2 * config.max_entries) slots *= 2;
  slot_mask_ = static_cast<uint32_t>(slots - 1);
  slots_ = static_cast<Slot*>(::operator new[](slots * sizeof(Slot), std::align_val_t{64}));
  for (size_t i = 0; i < slots; ++i) slots_[i] = Slot{kEmptyKey, kNoPort, 0, kNil};

  records_ = std::make_unique<Record[]>(config.max_entries);
  for (size_t i = 0; i < config.max_entries; ++i) {
    records_[i] = Record{};
    records_[i].age_next = i + 1 < config.max_entries ? static_cast<uint32_t>(i + 1) : kNil;
  }
  free_head_ = 0;
  age_head_ = age_tail_ = kNil;

  ports_ = std::make_unique<PortState[]>(config.max_ports);
  const size_t per_port = config.max_per_port ? config.max_per_port : config.max_entries;
  bucket_count_ = per_port + 1;
  bucket_head_ = std::make_unique<uint32_t[]>(bucket_count_);
  std::fill_n(bucket_head_.get(), bucket_count_, kNil);
}

Table::~Table() { ::operator delete[](slots_, std::align_val_t{64}); }

// ---- hashing and the index ----

inline uint64_t Table::Hash(uint64_t packed) const {
  uint64_t h = packed ^ salt0_;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= salt1_;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint32_t Table::FindSlot(uint64_t packed) const {
  uint32_t i = static_cast<uint32_t>(Hash(packed)) & slot_mask_;
  for (;;) {
    const uint64_t key = slots_[i].key;
    if (key == packed) return slots_[i].port == kNoPort ? kNil : i;
    if (key == kEmptyKey) return kNil;
    i = (i + 1) & slot_mask_;
  }
}

void Table::InsertSlot(uint64_t packed, PortIndex port, uint16_t flags, uint32_t record) {
  uint32_t i = static_cast<uint32_t>(Hash(packed)) & slot_mask_;
  while (slots_[i].key != kEmptyKey) i = (i + 1) & slot_mask_;
  slots_[i] = Slot{packed, port, flags, record};
}

void Table::EraseSlot(uint64_t packed) {
  uint32_t hole = FindSlot(packed);
  if (hole == kNil) return;
  // Backward shift: pull later members of the probe run into the hole when
  // their home slot is not after the hole (cyclically).
  uint32_t j = hole;
  for (;;) {
    j = (j + 1) & slot_mask_;
    if (slots_[j].key == kEmptyKey) break;
    const uint32_t home = static_cast<uint32_t>(Hash(slots_[j].key)) & slot_mask_;
    // Distance from home to j, and from hole to j, along the probe direction.
    if (((j - home) & slot_mask_) >= ((j - hole) & slot_mask_)) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{kEmptyKey, kNoPort, 0, kNil};
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
  if (age_tail_ != kNil) records_[age_tail_].age_next = r; else age_head_ = r;
  age_tail_ = r;
}

void Table::AgeUnlink(uint32_t r) {
  Record& rec = records_[r];
  if (rec.age_prev != kNil) records_[rec.age_prev].age_next = rec.age_next;
  else age_head_ = rec.age_next;
  if (rec.age_next != kNil) records_[rec.age_next].age_prev = rec.age_prev;
  else age_tail_ = rec.age_prev;
}

void Table::PortAppend(uint32_t r) {
  Record& rec = records_[r];
  PortState& p = ports_[rec.port];
  rec.port_prev = p.tail;
  rec.port_next = kNil;
  if (p.tail != kNil) records_[p.tail].port_next = r; else p.head = r;
  p.tail = r;
}

void Table::PortUnlink(uint32_t r) {
  Record& rec = records_[r];
  PortState& p = ports_[rec.port];
  if (rec.port_prev != kNil) records_[rec.port_prev].port_next = rec.port_next;
  else p.head = rec.port_next;
  if (rec.port_next != kNil) records_[rec.port_next].port_prev = rec.port_prev;
  else p.tail = rec.port_prev;
}

void Table::PortCountChange(PortIndex port, int delta) {
  PortState& p = ports_[port];
  if (p.count > 0) {  // leave bucket p.count
    if (p.bucket_prev != kNil) ports_[p.bucket_prev].bucket_next = p.bucket_next;
    else bucket_head_[p.count] = p.bucket_next;
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
    Slot& slot = slots_[s];
    const uint32_t r = slot.record;
    Record& rec = records_[r];
    if (slot.flags & kFlagStatic) {
      if (slot.port == port) return LearnOutcome::kStatic;
      ++counters_.static_move_attempts;
      return LearnOutcome::kStaticMoveRejected;
    }
    if (slot.port == port) {
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
    slot.port = port;
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
  InsertSlot(packed, port, rec.flags, r);
  AgeAppend(r);
  PortAppend(r);
  PortCountChange(port, +1);
  ++learned_;
  ++size_;
  ++counters_.learned;
  return LearnOutcome::kLearned;
}

PortIndex Table::Lookup(VlanId vlan, const MacAddress& mac) {
  const uint64_t packed = Pack(vlan, mac);
  uint32_t i = static_cast<uint32_t>(Hash(packed)) & slot_mask_;
  PortIndex port = kNoPort;
  for (;;) {
    const Slot& slot = slots_[i];
    if (slot.key == packed) {
      port = slot.port;
      break;
    }
    if (slot.key == kEmptyKey) break;
    i = (i + 1) & slot_mask_;
  }
  if (port != kNoPort) ++counters_.lookup_hits; else ++counters_.lookup_misses;
  return port;
}

void Table::LookupBatch(std::span<const Key> keys, std::span<PortIndex> ports) {
  // Hash and prefetch a group of keys, then probe the previous group while
  // those cache lines arrive.
  constexpr size_t kGroup = 16;
  const size_t n = keys.size();
  uint64_t packed[2][kGroup];
  uint32_t index[2][kGroup];
  uint64_t hits = 0;
  auto prepare = [&](size_t base, int which) {
    const size_t m = std::min(kGroup, n - base);
    for (size_t j = 0; j < m; ++j) {
      const uint64_t k = Pack(keys[base + j]);
      const uint32_t i = static_cast<uint32_t>(Hash(k)) & slot_mask_;
      packed[which][j] = k;
      index[which][j] = i;
      __builtin_prefetch(&slots_[i]);
    }
  };
  if (n == 0) return;
  prepare(0, 0);
  int current = 0;
  for (size_t base = 0; base < n; base += kGroup) {
    if (base + kGroup < n) prepare(base + kGroup, current ^ 1);
    const size_t m = std::min(kGroup, n - base);
    for (size_t j = 0; j < m; ++j) {
      const uint64_t k = packed[current][j];
      uint32_t i = index[current][j];
      PortIndex port = kNoPort;
      for (;;) {
        const Slot& slot = slots_[i];
        if (slot.key == k) {
          port = slot.port;
          break;
        }
        if (slot.key == kEmptyKey) break;
        i = (i + 1) & slot_mask_;
      }
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
    const uint32_t r = slots_[s].record;
    Record& rec = records_[r];
    if (!(rec.flags & kFlagStatic)) {
      AgeUnlink(r);
      PortUnlink(r);
      PortCountChange(rec.port, -1);
      --learned_;
      rec.flags |= kFlagStatic;
    }
    rec.port = port;
    slots_[s].port = port;
    slots_[s].flags = rec.flags;
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
  InsertSlot(packed, port, rec.flags, r);
  ++size_;
  return Status::Ok();
}

Status Table::RemoveStatic(VlanId vlan, const MacAddress& mac) {
  const uint64_t packed = vlan > kMaxVlanId ? kEmptyKey : Pack(vlan, mac);
  const uint32_t s = FindSlot(packed);
  if (s == kNil) return Status::Error(Describe(vlan, mac) + ": no such entry");
  const uint32_t r = slots_[s].record;
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
  return MakeEntry(slots_[s].record, now_ns);
}

DumpChunk Table::Dump(size_t cursor, std::span<Entry> out, uint64_t now_ns) const {
  DumpChunk chunk;
  // Bound the scan as well as the copy: a sparse pool must not make one
  // chunk long.
  const size_t scan_limit = std::max<size_t>(out.size(), 1) * 4;
  size_t i = cursor;
  for (size_t scanned = 0; i < config_.max_entries && chunk.count < out.size() &&
                           scanned < scan_limit;
       ++i, ++scanned) {
    if (records_[i].flags & kFlagInUse) out[chunk.count++] = MakeEntry(static_cast<uint32_t>(i), now_ns);
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

size_t Table::port_learned(PortIndex port) const {
  return port < config_.max_ports ? ports_[port].count : 0;
}

}  // namespace vfabric::fdb
