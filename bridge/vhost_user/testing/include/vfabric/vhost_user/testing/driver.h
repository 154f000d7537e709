// The driver side of virtqueues, for tests, fuzzers and benchmarks: guest
// memory in memfds (as QEMU's memory-backend-memfd share=on) and split
// rings a test fills and drains as a guest's virtio driver would, or writes
// descriptor by descriptor to build the broken chains a hostile guest could.
//
// Not production code: its own library (vfabric_vhost_user_testing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/vhost_user/guest_memory.h"
#include "vfabric/vhost_user/virtqueue.h"

namespace vfabric::vhost_user::testing {

// `count` memfd regions of `size` bytes, mapped here. Region i is at guest
// address i * 2 * size (a hole between regions) and at the frontend address
// where this process mapped it, as QEMU reports its own mappings.
class GuestRam {
 public:
  static Result<GuestRam> Create(size_t count, size_t size);
  GuestRam(GuestRam&&) noexcept;
  GuestRam& operator=(GuestRam&&) noexcept;
  ~GuestRam();

  // Guest address of `size` fresh bytes aligned to `align`, in one region
  // (the next region when the current one is full); 0 when out of memory.
  uint64_t Alloc(size_t size, size_t align = 16);
  // This process's pointer to guest address `gpa`, or nullptr outside.
  uint8_t* Host(uint64_t gpa) const;
  // The frontend address of guest address `gpa` (0 outside).
  uint64_t User(uint64_t gpa) const;

  const std::vector<MemoryRegion>& regions() const { return regions_; }
  const std::vector<UniqueFd>& fds() const { return fds_; }
  // The table as a backend maps it (through the fds, not this mapping).
  Result<GuestMemory> Map() const { return GuestMemory::Map(regions_, fds_); }

 private:
  GuestRam() = default;
  std::vector<MemoryRegion> regions_;
  std::vector<UniqueFd> fds_;
  std::vector<uint8_t*> maps_;
  size_t size_ = 0;
  size_t region_ = 0;  // allocating in
  size_t next_ = 0;    // offset there
};

// A split ring in GuestRam, driven from the driver's side.
class DriverQueue {
 public:
  DriverQueue(GuestRam* ram, uint16_t num, bool event_idx = false, bool indirect = false);

  // What SET_VRING_ADDR/NUM say (frontend addresses), as the backend wants it.
  VirtqueueConfig config() const;
  uint16_t num() const { return num_; }

  // ---- whole chains (descriptors taken from a free list, data from ram) ----
  // A chain of readable buffers with these contents (the guest transmits);
  // with `indirect`, one descriptor pointing at an indirect table. Returns
  // its head, made available; nullopt when out of descriptors.
  std::optional<uint16_t> AddOut(std::span<const std::vector<uint8_t>> buffers,
                                 bool indirect = false);
  // A chain of writable buffers of these sizes (the guest's receive buffers).
  std::optional<uint16_t> AddIn(std::span<const uint32_t> sizes);
  // The next used entry, if the device published one; its descriptors go
  // back to the free list.
  struct Used {
    uint32_t id = 0;
    uint32_t len = 0;
  };
  std::optional<Used> TakeUsed();
  // The first `len` bytes written into the writable buffers of chain `head`
  // (call before TakeUsed frees it... or after: the buffers stay readable
  // until reused).
  std::vector<uint8_t> ReadIn(uint16_t head, uint32_t len) const;
  size_t free_descriptors() const { return free_.size(); }

  // ---- raw access, for hostile chains ----
  void SetDesc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
  // ring[avail_idx % num] = head; avail_idx++ (release).
  void MakeAvailable(uint16_t head);
  void SetAvailIdx(uint16_t idx);
  uint16_t avail_idx() const;
  void SetAvailFlags(uint16_t flags);
  void SetUsedEvent(uint16_t idx);
  uint16_t used_idx() const;
  uint16_t used_flags() const;
  uint16_t avail_event() const;

 private:
  uint8_t* Desc(uint16_t i) const;
  uint16_t* Avail() const;
  uint8_t* UsedRing() const;

  GuestRam* ram_;
  uint16_t num_;
  bool event_idx_;
  bool indirect_;
  uint64_t desc_ = 0, avail_ = 0, used_ = 0;  // guest addresses
  uint16_t last_used_ = 0;
  std::vector<uint16_t> free_;
  // head -> the descriptors of its chain (freed on TakeUsed) and its
  // writable buffers' guest addresses and sizes.
  struct Outstanding {
    std::vector<uint16_t> descs;
    std::vector<std::pair<uint64_t, uint32_t>> in;
  };
  std::map<uint16_t, Outstanding> outstanding_;
};

}  // namespace vfabric::vhost_user::testing
