#include "vfabric/bridge/frame.h"

#include <cstdlib>
#include <new>
#include <string>

namespace vfabric::bridge {

Result<std::unique_ptr<FramePool>> FramePool::Create(size_t count, size_t buffer_size) {
  if (count == 0 || count > (1u << 20))
    return Status::Error("frame pool: " + std::to_string(count) +
                         " buffers out of range 1-1048576");
  if (buffer_size < kMinFrameBuffer || buffer_size > (1u << 20))
    return Status::Error("frame pool: buffer size " + std::to_string(buffer_size) +
                         " out of range 128-1048576");
  // Cache-line multiples; an odd number of lines keeps equal offsets of
  // neighbouring buffers off the same cache sets.
  size_t lines = (buffer_size + 63) / 64;
  if (lines % 2 == 0) ++lines;
  const size_t stride = lines * 64;
  std::unique_ptr<FramePool> pool(new FramePool());
  pool->arena_ = static_cast<uint8_t*>(std::aligned_alloc(64, stride * count));
  if (pool->arena_ == nullptr)
    return Status::Error("frame pool: cannot allocate " + std::to_string(stride * count) + " bytes",
                         ENOMEM);
  pool->count_ = count;
  pool->buffer_size_ = stride;
  pool->frames_ = std::make_unique<Frame[]>(count);
  pool->free_ = std::make_unique<Frame*[]>(count);
  for (size_t i = 0; i < count; ++i) {
    Frame& f = pool->frames_[i];
    f.base = pool->arena_ + i * stride;
    f.buffer_size = static_cast<uint32_t>(stride);
    f.Reset();
    pool->free_[i] = &pool->frames_[count - 1 - i];
  }
  pool->free_count_ = count;
  return pool;
}

FramePool::~FramePool() { std::free(arena_); }

}  // namespace vfabric::bridge
