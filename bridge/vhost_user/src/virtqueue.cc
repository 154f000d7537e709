#include "vfabric/vhost_user/virtqueue.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vfabric::vhost_user {
namespace {

uint16_t Load(const uint16_t* p, int order) { return __atomic_load_n(p, order); }
void Store(uint16_t* p, uint16_t v, int order) { __atomic_store_n(p, v, order); }

// virtio 1.1, 2.6.7.2: whether moving the index from old_idx to new_idx
// passed event_idx.
bool NeedEvent(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

std::string_view ToString(RingError error) {
  switch (error) {
    case RingError::kHeadOutOfRange:
      return "head_out_of_range";
    case RingError::kNextOutOfRange:
      return "next_out_of_range";
    case RingError::kLoop:
      return "descriptor_loop";
    case RingError::kBadAddress:
      return "bad_address";
    case RingError::kBadIndirect:
      return "bad_indirect";
    case RingError::kTooManySegments:
      return "too_many_segments";
    case RingError::kWrongDirection:
      return "wrong_direction";
    case RingError::kAvailIndexJump:
      return "avail_index_jump";
    case RingError::kCount:
      break;
  }
  return "unknown";
}

size_t Chain::Read(uint64_t offset, uint8_t* out, size_t len) const {
  size_t done = 0;
  for (uint16_t i = 0; i < count && done < len; ++i) {
    const Segment& s = segments[i];
    if (s.writable) break;  // readable ones come first
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const size_t n = std::min<size_t>(s.len - offset, len - done);
    std::memcpy(out + done, s.data + offset, n);
    done += n;
    offset = 0;
  }
  return done;
}

size_t Chain::Write(uint64_t offset, const uint8_t* in, size_t len) const {
  size_t done = 0;
  for (uint16_t i = 0; i < count && done < len; ++i) {
    const Segment& s = segments[i];
    if (!s.writable) continue;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const size_t n = std::min<size_t>(s.len - offset, len - done);
    std::memcpy(s.data + offset, in + done, n);
    done += n;
    offset = 0;
  }
  return done;
}

Status Virtqueue::Attach(const GuestMemory* memory, const VirtqueueConfig& config,
                         uint16_t last_avail_idx) {
  Detach();
  const uint32_t num = config.num;
  if (num == 0 || num > kMaxQueueSize || (num & (num - 1)) != 0)
    return Status::Error("ring size " + std::to_string(num) + " is not a power of two 1-32768",
                         EINVAL);
  if (config.desc_user % 16 != 0 || config.avail_user % 2 != 0 || config.used_user % 4 != 0)
    return Status::Error("ring addresses misaligned (descriptors 16, available 2, used 4)", EINVAL);
  uint8_t* desc = memory->TranslateUser(config.desc_user, 16ull * num);
  uint8_t* avail = memory->TranslateUser(config.avail_user, 6ull + 2ull * num);
  uint8_t* used = memory->TranslateUser(config.used_user, 6ull + 8ull * num);
  if (desc == nullptr) return Status::Error("descriptor table outside guest memory", EFAULT);
  if (avail == nullptr) return Status::Error("available ring outside guest memory", EFAULT);
  if (used == nullptr) return Status::Error("used ring outside guest memory", EFAULT);
  memory_ = memory;
  config_ = config;
  desc_ = desc;
  avail_ = reinterpret_cast<uint16_t*>(avail);
  used_ = used;
  mask_ = static_cast<uint16_t>(num - 1);
  last_avail_ = last_avail_idx;
  used_idx_ = Load(UsedIdx(), __ATOMIC_ACQUIRE);
  published_ = used_idx_;
  signalled_valid_ = false;
  broken_ = false;
  return Status::Ok();
}

void Virtqueue::Detach() {
  memory_ = nullptr;
  desc_ = nullptr;
  avail_ = nullptr;
  used_ = nullptr;
  broken_ = false;
}

uint64_t Virtqueue::error_total() const {
  uint64_t sum = 0;
  for (uint64_t e : errors_) sum += e;
  return sum;
}

uint16_t Virtqueue::Available() {
  if (!attached() || broken_) return 0;
  const uint16_t n = static_cast<uint16_t>(Load(avail_ + 1, __ATOMIC_ACQUIRE) - last_avail_);
  if (n > config_.num) {
    broken_ = true;
    ++errors_[static_cast<size_t>(RingError::kAvailIndexJump)];
    return 0;
  }
  return n;
}

Virtqueue::Pop Virtqueue::Fail(RingError e, RingError* out, int head) {
  ++errors_[static_cast<size_t>(e)];
  if (out != nullptr) *out = e;
  if (head >= 0) Push(static_cast<uint16_t>(head), 0);
  return Pop::kError;
}

Virtqueue::Pop Virtqueue::PopChain(Chain* chain, RingError* error, Want want) {
  if (Available() == 0) return Pop::kEmpty;
  const uint16_t head = Load(avail_ + 2 + (last_avail_ & mask_), __ATOMIC_RELAXED);
  ++last_avail_;
  if (head >= config_.num) return Fail(RingError::kHeadOutOfRange, error, -1);
  chain->head = head;
  chain->count = 0;
  chain->readable = 0;
  chain->writable = 0;
  const uint8_t* table = desc_;
  uint32_t size = config_.num;
  uint32_t index = head;
  uint32_t steps = 0;
  bool indirect = false;
  bool seen_writable = false;
  for (;;) {
    // A chain can visit each descriptor of its table at most once: one
    // step more is a loop (and bounds the walk).
    if (steps++ >= size) return Fail(RingError::kLoop, error, head);
    Desc d;
    std::memcpy(&d, table + 16ull * index, sizeof d);  // read once; the guest may change it
    if ((d.flags & kDescIndirect) != 0) {
      if (!config_.indirect || indirect || (d.flags & kDescNext) != 0 || chain->count != 0 ||
          d.len == 0 || d.len % 16 != 0)
        return Fail(RingError::kBadIndirect, error, head);
      table = memory_->Translate(d.addr, d.len);
      if (table == nullptr) return Fail(RingError::kBadAddress, error, head);
      size = std::min<uint32_t>(d.len / 16, 65536);  // `next` is 16 bits
      index = 0;
      steps = 0;
      indirect = true;
      continue;
    }
    uint8_t* data = memory_->Translate(d.addr, d.len);
    if (data == nullptr) return Fail(RingError::kBadAddress, error, head);
    const bool writable = (d.flags & kDescWrite) != 0;
    if ((!writable && seen_writable) || (writable && want == Want::kReadable) ||
        (!writable && want == Want::kWritable))
      return Fail(RingError::kWrongDirection, error, head);
    if (chain->count == Chain::kMaxSegments) return Fail(RingError::kTooManySegments, error, head);
    chain->segments[chain->count++] = Segment{data, d.len, writable};
    (writable ? chain->writable : chain->readable) += d.len;
    seen_writable = writable;
    if ((d.flags & kDescNext) == 0) return Pop::kChain;
    index = d.next;
    if (index >= size) return Fail(RingError::kNextOutOfRange, error, head);
  }
}

void Virtqueue::Push(uint16_t head, uint32_t len) {
  uint8_t* elem = used_ + 4 + 8ull * (used_idx_ & mask_);
  __atomic_store_n(reinterpret_cast<uint32_t*>(elem), uint32_t{head}, __ATOMIC_RELAXED);
  __atomic_store_n(reinterpret_cast<uint32_t*>(elem + 4), len, __ATOMIC_RELAXED);
  ++used_idx_;
}

void Virtqueue::Publish() {
  if (!attached() || used_idx_ == published_) return;
  Store(UsedIdx(), used_idx_, __ATOMIC_RELEASE);
  published_ = used_idx_;
}

bool Virtqueue::NeedCall() {
  if (!attached()) return false;
  // The driver's used_event/flags must be read after our used->idx store is
  // visible (the driver does the mirror image): a full fence.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  const uint16_t old_idx = signalled_used_;
  const bool valid = signalled_valid_;
  if (valid && old_idx == published_) return false;  // nothing new
  signalled_used_ = published_;
  signalled_valid_ = true;
  if (!config_.event_idx) return (Load(avail_, __ATOMIC_RELAXED) & kAvailNoInterrupt) == 0;
  if (!valid) return true;
  return NeedEvent(Load(UsedEvent(), __ATOMIC_RELAXED), published_, old_idx);
}

void Virtqueue::EnableNotify() {
  if (!attached()) return;
  if (config_.event_idx) {
    Store(AvailEvent(), last_avail_, __ATOMIC_RELAXED);
  } else {
    Store(UsedFlags(), static_cast<uint16_t>(Load(UsedFlags(), __ATOMIC_RELAXED) & ~kUsedNoNotify),
          __ATOMIC_RELAXED);
  }
  // The request must be visible before the caller looks at avail->idx again.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void Virtqueue::DisableNotify() {
  if (!attached() || config_.event_idx) return;  // with EVENT_IDX: avail_event stays behind
  Store(UsedFlags(), static_cast<uint16_t>(Load(UsedFlags(), __ATOMIC_RELAXED) | kUsedNoNotify),
        __ATOMIC_RELAXED);
}

Put PutPacket(Virtqueue& queue, std::span<const uint8_t> header, bool mergeable,
              size_t num_buffers_offset, std::span<const std::span<const uint8_t>> pieces,
              uint16_t* buffers_used) {
  uint64_t total = header.size();
  for (const auto& p : pieces) total += p.size();
  uint16_t heads[kMaxMergeBuffers];
  uint32_t lens[kMaxMergeBuffers];
  size_t used = 0;
  bool skipped = false;  // a refused chain was pushed meanwhile: no Unpop past it
  Chain first;
  Chain next;
  // Source cursor: -1 is the header, then pieces[i].
  int piece = -1;
  size_t piece_off = 0;
  uint64_t placed = 0;
  auto give_back = [&](Put result) {
    if (!skipped) {
      queue.Unpop(static_cast<uint16_t>(used));
    } else {
      for (size_t i = 0; i < used; ++i) queue.Push(heads[i], 0);
    }
    return result;
  };
  while (placed < total) {
    if (used == (mergeable ? kMaxMergeBuffers : 1)) return give_back(Put::kTooBig);
    Chain& chain = used == 0 ? first : next;
    RingError error;
    const Virtqueue::Pop pop = queue.PopChain(&chain, &error, Virtqueue::Want::kWritable);
    if (pop == Virtqueue::Pop::kEmpty) return give_back(Put::kNoBuffers);
    if (pop == Virtqueue::Pop::kError) {
      skipped = true;
      continue;
    }
    uint64_t in_chain = 0;
    while (placed < total && in_chain < chain.writable) {
      std::span<const uint8_t> src = piece < 0 ? header : pieces[static_cast<size_t>(piece)];
      if (piece_off == src.size()) {
        ++piece;
        piece_off = 0;
        continue;
      }
      const size_t want = static_cast<size_t>(
          std::min<uint64_t>(src.size() - piece_off, chain.writable - in_chain));
      const size_t n = chain.Write(in_chain, src.data() + piece_off, want);
      piece_off += n;
      in_chain += n;
      placed += n;
    }
    heads[used] = chain.head;
    lens[used] = static_cast<uint32_t>(in_chain);
    ++used;
  }
  if (mergeable && num_buffers_offset + 2 <= header.size()) {
    const uint8_t le[2] = {static_cast<uint8_t>(used & 0xff), static_cast<uint8_t>(used >> 8)};
    first.Write(num_buffers_offset, le, 2);
  }
  for (size_t i = 0; i < used; ++i) queue.Push(heads[i], lens[i]);
  if (buffers_used != nullptr) *buffers_used = static_cast<uint16_t>(used);
  return Put::kOk;
}

}  // namespace vfabric::vhost_user
