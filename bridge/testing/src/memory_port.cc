#include "vfabric/bridge/testing/memory_port.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace vfabric::bridge {

Result<std::unique_ptr<MemoryPort>> MemoryPort::Create(std::string name,
                                                       const MemoryPortOptions& options) {
  UniqueFd event;
  if (options.notify) {
    event.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!event) return Status::FromErrno("memory port " + name + ": eventfd", errno);
  }
  return std::unique_ptr<MemoryPort>(new MemoryPort(std::move(name), options, std::move(event)));
}

MemoryPort::MemoryPort(std::string name, const MemoryPortOptions& options, UniqueFd event)
    : name_(std::move(name)), options_(options), event_(std::move(event)) {}

MemoryPort::~MemoryPort() = default;

void MemoryPort::Inject(std::vector<uint8_t> bytes, const VnetHdr& vnet) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rx_.push_back(CapturedFrame{std::move(bytes), vnet});
  }
  if (event_) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(event_.get(), &one, sizeof one);
  }
}

void MemoryPort::SetReplay(std::vector<std::vector<uint8_t>> frames) {
  // One flat array, each frame in a slot of whole 64-byte lines, so a small
  // frame is copied as one fixed 64-byte move.
  replay_stride_ = 64;
  for (const auto& f : frames) replay_stride_ = std::max(replay_stride_, (f.size() + 63) / 64 * 64);
  replay_bytes_.assign(frames.size() * replay_stride_, 0);
  replay_sizes_.clear();
  for (size_t i = 0; i < frames.size(); ++i) {
    std::memcpy(&replay_bytes_[i * replay_stride_], frames[i].data(), frames[i].size());
    replay_sizes_.push_back(static_cast<uint32_t>(frames[i].size()));
  }
  replay_next_ = 0;
}

size_t MemoryPort::Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                           uint64_t* malformed) {
  size_t n = 0;
  if (event_) {
    // Reset the wakeup before draining, so an Inject() racing with the
    // drain leaves it readable.
    uint64_t value;
    [[maybe_unused]] ssize_t r = ::read(event_.get(), &value, sizeof value);
  }
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (n < out.size() && !rx_.empty()) {
      CapturedFrame& in = rx_.front();
      Frame* f = pool.Alloc();
      if (f == nullptr) {
        ++*no_buffer;
      } else if (in.bytes.size() > f->capacity) {
        ++*malformed;
        pool.Free(f);
      } else {
        // An empty frame (the pipeline drops it as a runt) has no bytes to
        // copy, and memcpy from its null data() would be undefined.
        if (!in.bytes.empty()) std::memcpy(f->data, in.bytes.data(), in.bytes.size());
        f->size = static_cast<uint32_t>(in.bytes.size());
        f->vnet = in.vnet;
        out[n++] = f;
      }
      rx_.pop_front();
    }
    more = !rx_.empty();
  }
  if (more && event_) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(event_.get(), &one, sizeof one);
  }
  const size_t replay_count = replay_sizes_.size();
  while (n < out.size() && replay_count != 0) {
    const uint8_t* in = &replay_bytes_[replay_next_ * replay_stride_];
    const uint32_t size = replay_sizes_[replay_next_];
    if (++replay_next_ == replay_count) replay_next_ = 0;
    Frame* f = pool.Alloc();
    if (f == nullptr) {
      ++*no_buffer;
      break;
    }
    if (size <= 64 && f->capacity >= 64)
      std::memcpy(f->data, in, 64);
    else
      std::memcpy(f->data, in, std::min<size_t>(size, f->capacity));
    f->size = std::min<uint32_t>(size, f->capacity);
    out[n++] = f;
  }
  return n;
}

TxResult MemoryPort::Transmit(std::span<const TxItem> items) {
  TxResult result;
  if (options_.tx_fails) {
    result.errors = static_cast<uint32_t>(items.size());
    return result;
  }
  if (!options_.capture) {
    for (const TxItem& item : items) result.bytes += item.frame->size + (item.tagged ? 4 : 0);
    result.packets = static_cast<uint32_t>(items.size());
    transmitted_.store(transmitted_.load(std::memory_order_relaxed) + items.size(),
                       std::memory_order_relaxed);
    return result;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const TxItem& item : items) {
    if (options_.tx_capacity != 0 && captured_.size() >= options_.tx_capacity) {
      ++result.full;
      continue;
    }
    CapturedFrame c;
    c.bytes.resize(item.frame->size + 4);
    c.bytes.resize(CopyTxItem(item, c.bytes));
    c.vnet = TxVnetHdr(item);
    result.bytes += c.bytes.size();
    ++result.packets;
    captured_.push_back(std::move(c));
  }
  transmitted_.store(transmitted_.load(std::memory_order_relaxed) + result.packets,
                     std::memory_order_relaxed);
  return result;
}

std::vector<CapturedFrame> MemoryPort::TakeCaptured() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(captured_, {});
}

size_t MemoryPort::captured_count() {
  std::lock_guard<std::mutex> lock(mutex_);
  return captured_.size();
}

}  // namespace vfabric::bridge
