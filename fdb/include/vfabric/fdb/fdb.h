// vfabric::fdb::Table — the MAC-learning forwarding database of the userspace
// switch: (VLAN, MAC) -> port.
//
// DESIGN
//
// Key. A VLAN ID (12 bits) and a unicast MAC (48 bits), packed into one
// uint64_t exactly as struct Key lies in memory (VID first, then the MAC), so
// a batch of Keys packs with one load each. All ones marks an empty slot.
//
// Hashing. The packed key is XORed with one secret and multiplied by another
// (odd) to 128 bits, and the two halves are XORed (absl's mix, with a secret
// multiplier). The bucket comes from the top bits, a 32-bit tag from the low
// ones. Both secrets are expanded from Config::hash_seed, which the caller
// draws from a random source (this library makes no OS calls). Without them a
// guest that knows the hash could pick MACs that all land in one probe run.
// This is not a cryptographic PRF: it stops blind collision aiming, the same
// bar as Open vSwitch's mac-learning table. The per-port limit bounds how
// many entries one port can place in the table anyway.
//
// Layout. Arrays sized at construction and never resized:
//  - the index: open addressing over 64-byte buckets (one cache line each)
//    of four slots: four 32-bit tags (hash bits), four keys, four ports (the
//    slots' record numbers are in a parallel array, off the lookup path). At
//    most half the slots are used (2^k buckets, 4 * 2^k >= 2 * max_entries).
//    A key lives in its home bucket or, when that is full, in the next
//    bucket with room (linear probing by bucket). A lookup compares the four
//    tags of a bucket at once (SSE2), checks the key of the matching slot,
//    and moves on only when there is no match and the bucket is full, which
//    is rare at this load, so a hit or a miss is nearly always one cache line
//    and one predictable branch.
//    Deletion is by backward shift at bucket granularity (no tombstones), so
//    probe runs depend only on the keys stored and never degrade under
//    churn; and since at most half the slots are used, every probe ends.
//  - the entry pool (max_entries records): key, port, flags, last-seen time
//    and the links of two intrusive doubly linked lists: the global ageing
//    list and the entry's port list, both ordered by last-seen time. Pool
//    records never move while they exist, which is what makes the chunked
//    Dump() below consistent.
// Nothing on the learn or lookup path allocates or locks.
//
// Eviction. Config::max_entries bounds the table (static and learned
// entries together); Config::max_per_port bounds the learned entries of one
// port. A learn on a port that is at its own limit is dropped (counted in
// limit_drops): the port's known hosts stay and the new one is flooded, as
// the Linux bridge does with fdb_max_learned. A learned host that moves onto
// such a port is forgotten (also counted), so its frames flood instead of
// going on to its old port. A learn that finds the whole
// table full evicts, fairly: the least recently seen entry of the port that
// holds the most learned entries (ports are kept in buckets by count, so
// finding that port is O(1)). A MAC flood from one port therefore evicts only
// that port's entries once it holds more than any other port. Static entries
// are never evicted, never aged and never moved by learning.
//
// Ageing. All time is `now_ns`, passed in by the caller from one monotonic
// clock (the table reads no clock, so tests warp time freely). Time that goes
// backwards is treated as the latest time seen. A learned entry unseen for
// ageing_time expires. Expire(now, budget) removes at most `budget` expired
// entries, oldest first, so one call's work is bounded; NextDeadline() says
// when the oldest learned entry expires, so the event loop sleeps until then
// (the run()/wait() pair of Open vSwitch). An expired entry still answers
// lookups until Expire() removes it. Refreshing an entry moves it to the tail
// of its lists; Config::refresh_granularity_ns (default 1 s) skips refreshes
// of entries seen less than that long ago (cheaper learning; ages, expiry and
// eviction order exact to within it).
// ageing_time == 0 means "do not learn": Learn() returns kLearningDisabled,
// existing learned entries expire at the next Expire(), and static entries go
// on forwarding. kNeverAge means learned entries never expire.
//
// Threading. A Table is owned by one thread, the datapath thread of its
// bridge: every method, const or not, is called from that thread only, and
// there is no internal locking (Lookup updates counters). The control plane
// never touches a Table. `netctl fdb show` reaches it as a command queued to
// the datapath thread, which, between two batches of frames, calls
// Dump(cursor, out) to copy a bounded chunk of entries (a few thousand, a
// few microseconds) and hands the copies back, until the cursor says done.
// The datapath thus stalls for one chunk at a time, never for the whole
// table. A dump is as consistent as a netlink dump: an entry that exists for
// the whole dump is reported exactly once, with the age it had when its chunk
// was copied; entries added or removed meanwhile may or may not appear.
// counters() is read the same way (a copy taken on the datapath thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"

namespace vfabric::fdb {

using VlanId = uint16_t;     // 0..4095
using PortIndex = uint16_t;  // 0..max_ports-1
inline constexpr PortIndex kNoPort = 0xffff;
inline constexpr VlanId kMaxVlanId = 4095;
inline constexpr uint64_t kNeverAge = UINT64_MAX;

struct Key {
  VlanId vlan = 0;
  MacAddress mac;
  friend bool operator==(const Key&, const Key&) = default;
  friend auto operator<=>(const Key&, const Key&) = default;
};

struct Config {
  // Most entries, static and learned together. 1 .. 2^26.
  size_t max_entries = 8192;
  // Most learned entries on one port; 0 means only max_entries limits a port.
  size_t max_per_port = 0;
  // Ports are 0 .. max_ports-1. 1 .. 65535.
  size_t max_ports = 1024;
  // A learned entry unseen this long expires. 0: do not learn; kNeverAge:
  // learned entries never expire.
  uint64_t ageing_time_ns = 300'000'000'000;  // 300 s, as the Linux bridge
  // An entry seen again less than this after its last-seen time keeps that
  // time, and the learn does no list work (two cache lines instead of up to
  // six). Ages, expiry and eviction order are exact to within this. 0: every
  // learn at a later time refreshes.
  uint64_t refresh_granularity_ns = 1'000'000'000;
  // Salt for the hash; draw it from a random source (e.g. getrandom()).
  uint64_t hash_seed = 0;
};

struct Counters {
  uint64_t learned = 0;    // new learned entries
  uint64_t refreshed = 0;  // learns that refreshed an entry's time
  uint64_t moved = 0;      // learned entries that moved to another port
  uint64_t expired = 0;    // learned entries removed by Expire()
  uint64_t evicted = 0;    // learned entries pushed out by a full table
  uint64_t flushed = 0;    // learned entries removed by Flush*()
  uint64_t lookup_hits = 0;
  uint64_t lookup_misses = 0;
  uint64_t static_move_attempts = 0;  // learns of a static key on another port
  uint64_t limit_drops = 0;           // learns dropped by max_per_port or a full table
  uint64_t invalid = 0;               // learns of a multicast/zero MAC, bad VLAN or port
  friend bool operator==(const Counters&, const Counters&) = default;
};

enum class LearnOutcome : uint8_t {
  kLearned,             // a new entry
  kRefreshed,           // known on this port; last-seen time updated (or within granularity)
  kMoved,               // was learned on another port, now on this one
  kStatic,              // a static entry on this port: nothing to do
  kStaticMoveRejected,  // a static entry on another port: not moved
  kLimitDropped,        // not learned: the port's limit, or a table full of static entries
  kLearningDisabled,    // ageing_time is 0
  kInvalid,             // multicast or zero MAC, VLAN > 4095, port >= max_ports
};
std::string_view ToString(LearnOutcome outcome);

// An entry as the control plane sees it.
struct Entry {
  VlanId vlan = 0;
  MacAddress mac;
  PortIndex port = kNoPort;
  bool is_static = false;
  uint64_t age_ns = 0;  // now - last seen; 0 for static entries
  friend bool operator==(const Entry&, const Entry&) = default;
};

// What a learn pushed out of a full table.
struct Eviction {
  Key key;
  PortIndex port = kNoPort;
};

struct DumpChunk {
  size_t count = 0;        // entries written to `out`
  size_t next_cursor = 0;  // pass to the next Dump()
  bool done = false;       // no entries after this chunk
};

class Table {
 public:
  // Validates `config` and builds the table (the only allocations; running
  // out of memory is an error, not an exception).
  static Result<std::unique_ptr<Table>> Create(const Config& config);
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // ---- datapath ----

  // Inserts or refreshes (vlan, mac) on `port` as seen at `now_ns`. Fills
  // *eviction, when given, if the table was full and an entry was evicted.
  LearnOutcome Learn(VlanId vlan, const MacAddress& mac, PortIndex port, uint64_t now_ns,
                     Eviction* eviction = nullptr);

  // Learn(keys[i], ports[i], now_ns) for every i in order, with the memory
  // accesses of neighbouring keys overlapped (prefetch): the source MACs of a
  // batch of frames. Writes each outcome to outcomes[i] when `outcomes` is
  // not empty. REQUIRES: ports.size() >= keys.size(), and outcomes empty or
  // outcomes.size() >= keys.size().
  void LearnBatch(std::span<const Key> keys, std::span<const PortIndex> ports, uint64_t now_ns,
                  std::span<LearnOutcome> outcomes = {});

  // The port of (vlan, mac), or kNoPort. Counts a hit or a miss.
  PortIndex Lookup(VlanId vlan, const MacAddress& mac);

  // ports[i] = Lookup(keys[i]) for every i, with the memory accesses of
  // neighbouring keys overlapped (prefetch). REQUIRES: ports.size() >= keys.size().
  void LookupBatch(std::span<const Key> keys, std::span<PortIndex> ports);

  // ---- ageing (event loop) ----

  // Removes up to `budget` learned entries unseen for ageing_time, oldest
  // first. Returns how many it removed.
  size_t Expire(uint64_t now_ns, size_t budget = SIZE_MAX);
  // When the oldest learned entry expires (possibly <= now: call Expire()
  // again), or nullopt when nothing can expire.
  std::optional<uint64_t> NextDeadline() const;
  // ageing_time 0 disables learning (see the design note); takes effect for
  // existing entries at the next Expire().
  void SetAgeingTime(uint64_t ageing_time_ns);
  uint64_t ageing_time() const { return config_.ageing_time_ns; }

  // ---- control (on the owning thread, between batches) ----

  // Adds a static entry, or turns a learned entry static, or re-points a
  // static entry to `port`. Evicts a learned entry (fairly) if the table is
  // full; fails if it is full of static entries or an argument is invalid.
  Status AddStatic(VlanId vlan, const MacAddress& mac, PortIndex port);
  // Removes a static entry. Fails if (vlan, mac) is absent or learned.
  Status RemoveStatic(VlanId vlan, const MacAddress& mac);

  // Remove learned entries (never static ones); each returns how many.
  size_t FlushPort(PortIndex port);                   // O(entries on the port)
  size_t FlushVlan(VlanId vlan);                      // O(learned entries)
  size_t FlushPortVlan(PortIndex port, VlanId vlan);  // O(entries on the port)
  size_t FlushLearned();                              // O(learned entries)

  // The entry of (vlan, mac), if any, with its age at `now_ns`.
  std::optional<Entry> Find(VlanId vlan, const MacAddress& mac, uint64_t now_ns) const;
  // Copies up to out.size() entries, starting at `cursor` (0 to begin), into
  // `out`, looking at no more than 4 * out.size() pool records, so a chunk
  // may hold fewer entries than fit (even none) before `done`. See the
  // threading note for the consistency a chunked dump gives.
  // REQUIRES: !out.empty()
  DumpChunk Dump(size_t cursor, std::span<Entry> out, uint64_t now_ns) const;
  // All entries (allocates; control path and tests only).
  std::vector<Entry> Snapshot(uint64_t now_ns) const;

  // Fills this table, new and empty (e.g. built with other limits), with
  // `from`'s entries and counters: static entries, then learned ones oldest
  // first with their ages. Learned entries beyond this table's limits are
  // left out, the oldest first, and counted as evicted. An error, naming the
  // entry, when a static entry does not fit; this table is then unusable.
  Status TakeEntriesFrom(const Table& from, uint64_t now_ns);

  size_t size() const { return size_; }  // static + learned
  size_t learned_size() const { return learned_; }
  size_t port_learned(PortIndex port) const;  // learned entries on `port`
  size_t capacity() const { return config_.max_entries; }
  const Config& config() const { return config_; }
  const Counters& counters() const { return counters_; }

 private:
  static constexpr uint32_t kLanes = 4;  // slots per bucket
  struct Bucket;
  struct Record;
  struct PortState;

  explicit Table(const Config& config);
  bool Allocate();  // false when out of memory

  uint64_t Hash(uint64_t packed) const;
  uint32_t Home(uint64_t packed) const;  // the key's first bucket
  PortIndex Probe(uint64_t packed, uint64_t hash) const;
  uint32_t FindSlot(uint64_t packed) const;  // bucket * kLanes + lane, or kNil
  uint32_t FindSlot(uint64_t packed, uint64_t hash) const;
  void InsertSlot(uint64_t packed, PortIndex port, uint32_t record);
  void EraseSlot(uint64_t packed);
  uint64_t Now(uint64_t now_ns);

  uint32_t AllocRecord();
  void FreeRecord(uint32_t record);
  // List plumbing; the ageing list and the port lists.
  void AgeAppend(uint32_t record);
  void AgeUnlink(uint32_t record);
  void PortAppend(uint32_t record);
  void PortUnlink(uint32_t record);
  void PortCountChange(PortIndex port, int delta);
  // Removes a learned record (index slot, lists, counts, pool).
  void RemoveLearned(uint32_t record);
  // Removes the fair victim; false if there are no learned entries.
  bool EvictOne(Eviction* eviction);
  Entry MakeEntry(uint32_t record, uint64_t now) const;

  Config config_;
  uint64_t salt0_ = 0;
  uint64_t salt1_ = 0;
  uint32_t bucket_mask_ = 0;
  uint32_t bucket_shift_ = 0;  // 64 - log2(buckets): Home() takes the hash's top bits
  Bucket* buckets_ = nullptr;  // bucket_mask_ + 1 of them
  std::unique_ptr<uint32_t[]> slot_records_;  // the record of each slot
  std::unique_ptr<Record[]> records_;
  std::unique_ptr<PortState[]> ports_;
  // Ports by learned-entry count: bucket_head_[c] lists the ports with c
  // learned entries (c >= 1); max_bucket_ is the largest non-empty c.
  std::unique_ptr<uint32_t[]> bucket_head_;
  size_t bucket_count_ = 0;
  size_t max_bucket_ = 0;
  uint32_t free_head_ = 0;
  uint32_t age_head_ = 0;
  uint32_t age_tail_ = 0;
  size_t size_ = 0;
  size_t learned_ = 0;
  uint64_t clock_ = 0;
  Counters counters_;
};

}  // namespace vfabric::fdb
