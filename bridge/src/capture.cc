// CaptureRing (capture.h) and the pipeline's capture hooks (capture_hook.h).
#include "vfabric/bridge/capture.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "capture_hook.h"
#include "vfabric/vlan/tag.h"

namespace vfabric::bridge {
namespace {

constexpr size_t kHeader = sizeof(CaptureRecordHeader);

constexpr size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

uint64_t RealtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

CaptureRing::CaptureRing(size_t bytes, uint32_t snaplen, uint8_t directions)
    : size_(Align8(std::max<size_t>({bytes, size_t{64} << 10, 2 * (Align8(snaplen) + kHeader)}))),
      snaplen_(std::max<uint32_t>(snaplen, 64)),
      directions_(directions),
      data_(new uint8_t[size_]) {}

void CaptureRing::Push(CaptureDirection direction, uint64_t time_ns, std::span<const uint8_t> frame,
                       bool tag, uint16_t tci, uint8_t drop) {
  tag = tag && frame.size() >= vlan::kMacsLen;
  const size_t wire = frame.size() + (tag ? vlan::kTagLen : 0);
  const uint32_t caplen = static_cast<uint32_t>(std::min<size_t>(wire, snaplen_));
  const size_t need = Align8(kHeader + caplen);
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  size_t pos = static_cast<size_t>(tail % size_);
  const size_t contiguous = size_ - pos;
  // A record never wraps: when it does not fit before the end, the rest of
  // the ring is padding and it starts at 0.
  const size_t total = need <= contiguous ? need : contiguous + need;
  if (tail + total - head > size_) {
    dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  if (need > contiguous) {
    if (contiguous >= kHeader) {
      CaptureRecordHeader pad;
      pad.type = CaptureRecordHeader::kPad;
      std::memcpy(data_.get() + pos, &pad, kHeader);
    }  // else: too short for a header, the consumer skips it as padding
    tail += contiguous;
    pos = 0;
  }
  CaptureRecordHeader h;
  h.type = CaptureRecordHeader::kFrame;
  h.caplen = caplen;
  h.time_ns = time_ns;
  h.wire_len = static_cast<uint32_t>(wire);
  h.tci = tci;
  h.direction = static_cast<uint8_t>(direction);
  h.drop = drop;
  uint8_t* p = data_.get() + pos;
  std::memcpy(p, &h, kHeader);
  p += kHeader;
  size_t left = caplen;
  if (tag) {
    std::memcpy(p, frame.data(), vlan::kMacsLen);  // snaplen >= 64
    vlan::StoreTag(p + vlan::kMacsLen, tci);
    left -= vlan::kMacsLen + vlan::kTagLen;
    std::memcpy(p + vlan::kMacsLen + vlan::kTagLen, frame.data() + vlan::kMacsLen, left);
  } else {
    std::memcpy(p, frame.data(), left);
  }
  tail_.store(tail + need, std::memory_order_release);
  pushed_.store(pushed_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

size_t CaptureRing::Pop(std::vector<uint8_t>* out, size_t max_bytes) {
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  const size_t start = out->size();
  size_t records = 0;
  while (head < tail && out->size() - start < max_bytes) {
    const size_t pos = static_cast<size_t>(head % size_);
    const size_t contiguous = size_ - pos;
    if (contiguous < kHeader) {
      head += contiguous;
      continue;
    }
    CaptureRecordHeader h;
    std::memcpy(&h, data_.get() + pos, kHeader);
    if (h.type == CaptureRecordHeader::kPad) {
      head += contiguous;
      continue;
    }
    const uint8_t* p = data_.get() + pos;
    out->insert(out->end(), p, p + kHeader + h.caplen);
    head += Align8(kHeader + h.caplen);
    ++records;
  }
  head_.store(head, std::memory_order_release);
  return records;
}

void CaptureReceived(CaptureRing& ring, std::span<Frame* const> frames,
                     std::span<const uint16_t> tcis) {
  if (!ring.wants(CaptureDirection::kIn) || frames.empty()) return;
  const uint64_t now = RealtimeNs();
  for (size_t i = 0; i < frames.size(); ++i)
    ring.Push(CaptureDirection::kIn, now, frames[i]->bytes(), true, tcis[i], 0);
}

void CaptureDropped(CaptureRing& ring, const Frame& frame, DropReason reason) {
  if (!ring.wants(CaptureDirection::kIn)) return;
  ring.Push(CaptureDirection::kIn, RealtimeNs(), frame.bytes(), false, 0,
            static_cast<uint8_t>(static_cast<uint8_t>(reason) + 1));
}

void CaptureSent(CaptureRing& ring, std::span<const TxItem> items) {
  if (!ring.wants(CaptureDirection::kOut) || items.empty()) return;
  const uint64_t now = RealtimeNs();
  for (const TxItem& item : items)
    ring.Push(CaptureDirection::kOut, now, item.frame->bytes(), (item.tci & 0xfff) != 0, item.tci,
              0);
}

}  // namespace vfabric::bridge
