// The engine's state as bytes (Bridge::SaveState / Bridge::Restore): how
// netd hands a running spanning tree to a new image of itself across an
// exec, so that forwarding ports stay forwarding (netd/DESIGN.md,
// "Restarts and upgrades without outage").
//
// Format (host byte order: the bytes never leave the host):
//   "VFSTPST1"  magic
//   u32 kStateVersion, u32 sizeof(Port), u32 sizeof(PriorityVector),
//   u32 sizeof(Times)                   the engine layout
//   the config (address, priority, mode, times, tx_hold_count)
//   the bridge variables, the tc bookkeeping, next tick and last now (ns of
//   steady_clock: CLOCK_MONOTONIC, which an exec does not reset)
//   u32 port count, then per port: u16 number, the Port record as it is
//   u64 FNV-1a of everything before
// The per-port record is copied as its bytes: it is trivially copyable and
// only a build with the same layout reads it (the sizes and kStateVersion,
// bumped whenever Port or the bridge variables change meaning, say so). A
// state from another layout is refused and the caller starts afresh: an
// upgrade that changes the engine converges again, one that does not keeps
// its tree.
#include <cstring>
#include <type_traits>

#include "rstp_impl.h"

namespace vfabric::stp {
namespace {

constexpr char kMagic[8] = {'V', 'F', 'S', 'T', 'P', 'S', 'T', '1'};
// Bump when Port, PriorityVector, Times or the bridge variables saved below
// change (fields added, removed, reordered or given another meaning).
constexpr uint32_t kStateVersion = 1;

static_assert(std::is_trivially_copyable_v<Port>, "Port is saved as its bytes");
static_assert(std::is_trivially_copyable_v<PriorityVector>);
static_assert(std::is_trivially_copyable_v<Times>);

uint64_t Fnv1a(std::span<const uint8_t> bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) {
    hash ^= b;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

class Writer {
 public:
  template <typename T>
  void Put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  template <typename T>
  bool Get(T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(static_cast<void*>(value), in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

int64_t Ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint FromNs(int64_t ns) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(ns)));
}

void PutConfig(Writer& w, const BridgeConfig& c) {
  w.Put(c.address.ToU64());
  w.Put(c.priority);
  w.Put(static_cast<uint8_t>(c.mode));
  w.Put(c.hello_time);
  w.Put(c.forward_delay);
  w.Put(c.max_age);
  w.Put(c.tx_hold_count);
}

}  // namespace

std::vector<uint8_t> Bridge::Impl::SaveState() const {
  Writer w;
  w.Put(kMagic);
  w.Put(kStateVersion);
  w.Put(static_cast<uint32_t>(sizeof(Port)));
  w.Put(static_cast<uint32_t>(sizeof(PriorityVector)));
  w.Put(static_cast<uint32_t>(sizeof(Times)));
  PutConfig(w, config_);
  w.Put(bridge_id_);
  w.Put(bridge_priority_);
  w.Put(bridge_times_);
  w.Put(root_priority_);
  w.Put(root_port_id_);
  w.Put(root_times_);
  w.Put(static_cast<uint8_t>(prs_init_));
  w.Put(tc_count_);
  w.Put(static_cast<uint8_t>(last_tc_.has_value()));
  w.Put(last_tc_ ? Ns(*last_tc_) : int64_t{0});
  w.Put(reported_root_);
  w.Put(Ns(next_tick_));
  w.Put(Ns(last_now_));
  w.Put(static_cast<uint32_t>(ports_.size()));
  for (const auto& [number, port] : ports_) {
    w.Put(number);
    w.Put(port);
  }
  w.Put(Fnv1a(w.bytes()));
  return std::move(w.bytes());
}

Status Bridge::Impl::LoadState(std::span<const uint8_t> state) {
  const std::string what = "stp: saved state";
  if (state.size() < sizeof kMagic + sizeof(uint64_t))
    return Status::Error(what + ": truncated (" + std::to_string(state.size()) + " bytes)");
  const size_t body = state.size() - sizeof(uint64_t);
  uint64_t sum = 0;
  std::memcpy(&sum, state.data() + body, sizeof sum);
  if (std::memcmp(state.data(), kMagic, sizeof kMagic) != 0)
    return Status::Error(what + ": not an engine state (bad magic)");
  if (Fnv1a(state.first(body)) != sum)
    return Status::Error(what + ": checksum mismatch (truncated or corrupt)");
  Reader r(state.first(body));
  char magic[8];
  uint32_t version = 0, port_size = 0, vector_size = 0, times_size = 0;
  if (!r.Get(&magic) || !r.Get(&version) || !r.Get(&port_size) || !r.Get(&vector_size) ||
      !r.Get(&times_size))
    return Status::Error(what + ": truncated header");
  if (version != kStateVersion || port_size != sizeof(Port) ||
      vector_size != sizeof(PriorityVector) || times_size != sizeof(Times))
    return Status::Error(what + ": engine layout " + std::to_string(version) + "/" +
                         std::to_string(port_size) + " differs from this build's " +
                         std::to_string(kStateVersion) + "/" + std::to_string(sizeof(Port)));
  Writer mine;
  PutConfig(mine, config_);
  std::vector<uint8_t> saved_config(mine.bytes().size());
  for (uint8_t& b : saved_config)
    if (!r.Get(&b)) return Status::Error(what + ": truncated config");
  if (saved_config != mine.bytes())
    return Status::Error(what +
                         ": saved for other bridge settings (address, priority, mode "
                         "or times changed)");
  // Read into locals; the engine changes only once everything was read.
  uint64_t bridge_id = 0, tc_count = 0, reported_root = 0;
  PriorityVector bridge_priority, root_priority;
  Times bridge_times, root_times;
  PortId root_port_id = 0;
  uint8_t prs_init = 0, has_last_tc = 0;
  int64_t last_tc = 0, next_tick = 0, last_now = 0;
  uint32_t count = 0;
  if (!r.Get(&bridge_id) || !r.Get(&bridge_priority) || !r.Get(&bridge_times) ||
      !r.Get(&root_priority) || !r.Get(&root_port_id) || !r.Get(&root_times) || !r.Get(&prs_init) ||
      !r.Get(&tc_count) || !r.Get(&has_last_tc) || !r.Get(&last_tc) || !r.Get(&reported_root) ||
      !r.Get(&next_tick) || !r.Get(&last_now) || !r.Get(&count))
    return Status::Error(what + ": truncated bridge variables");
  if (bridge_id != bridge_id_) return Status::Error(what + ": saved for another bridge id");
  if (count > 4095) return Status::Error(what + ": " + std::to_string(count) + " ports");
  std::map<PortNumber, Port> ports;
  for (uint32_t i = 0; i < count; ++i) {
    PortNumber number = 0;
    Port port;
    if (!r.Get(&number) || !r.Get(&port))
      return Status::Error(what + ": truncated at port " + std::to_string(i));
    if (number == 0 || number > 4095 || port.config.number != number || ports.count(number))
      return Status::Error(what + ": bad port number " + std::to_string(number));
    ports.emplace(number, port);
  }
  if (!r.done()) return Status::Error(what + ": trailing bytes");
  bridge_priority_ = bridge_priority;
  bridge_times_ = bridge_times;
  root_priority_ = root_priority;
  root_port_id_ = root_port_id;
  root_times_ = root_times;
  prs_init_ = prs_init != 0;
  tc_count_ = tc_count;
  last_tc_ = has_last_tc ? std::optional<TimePoint>(FromNs(last_tc)) : std::nullopt;
  reported_root_ = reported_root;
  next_tick_ = FromNs(next_tick);
  last_now_ = FromNs(last_now);
  ports_ = std::move(ports);
  out_ = Output{};  // what Create's first run produced is not this bridge's
  return Status::Ok();
}

std::vector<uint8_t> Bridge::SaveState() const { return impl_->SaveState(); }

Result<std::unique_ptr<Bridge>> Bridge::Restore(const BridgeConfig& config,
                                                std::span<const uint8_t> state, TimePoint now) {
  auto bridge = Create(config, now);
  if (!bridge.ok()) return bridge.status();
  VF_RETURN_IF_ERROR((*bridge)->impl_->LoadState(state));
  return bridge;
}

bool Bridge::HasPort(PortNumber port) const { return impl_->HasPort(port); }

}  // namespace vfabric::stp
