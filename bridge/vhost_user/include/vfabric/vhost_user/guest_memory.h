// The guest's memory as a vhost-user frontend shares it: the regions of
// SET_MEM_TABLE (or ADD_MEM_REG), each an fd the backend maps, and the
// translation of the addresses the guest and the frontend use into pointers.
//
// Two address spaces reach the backend:
//   - guest-physical addresses (GPA): descriptors' buffers, indirect tables;
//   - the frontend's own virtual addresses ("user" addresses: QEMU's process
//     addresses of the same memory), used only by SET_VRING_ADDR for the rings.
// Each region maps [guest_phys_addr, +memory_size) and [userspace_addr,
// +memory_size) onto bytes mmap_offset.. of its fd.
//
// Nothing here trusts the frontend: a region must be a regular file (a
// memfd, a hugetlbfs or tmpfs file) at least mmap_offset + memory_size long
// (a mapping past a file's end would fault with SIGBUS on first touch),
// regions may not overlap in either address space, and a translation
// succeeds only if [addr, addr + len) lies wholly inside one region: a
// buffer that would cross a region's end is refused, never followed.
//
// A frontend can still shrink a file after it was mapped: an access past
// the new end would raise SIGBUS and kill the process. Every mapping is
// therefore guarded: a SIGBUS inside one replaces that mapping with
// zero-filled memory (the access completes, reading zeros) and marks it
// faulted; the owner asks FaultedRegion() after its work (cheaply: only
// when faults() changed) and drops the table and the connection. A SIGBUS
// anywhere else kills the process as before. (DESIGN.md, "A frontend that
// shrinks its memory".)
//
// A GuestMemory is a value: replacing the table (SET_MEM_TABLE while
// running, ADD_MEM_REG, REM_MEM_REG) builds a new one and swaps it in;
// mappings are reference-counted, so regions common to both are not
// remapped and a mapping goes when the last table holding it goes.
// Threads: not synchronized; the owner (the datapath thread) uses it alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::vhost_user {

// One region as the frontend describes it (VhostUserMemoryRegion).
struct MemoryRegion {
  uint64_t guest_phys_addr = 0;
  uint64_t memory_size = 0;
  uint64_t userspace_addr = 0;
  uint64_t mmap_offset = 0;
};

class GuestMemory {
 public:
  // Most regions one table holds (what GET_MAX_MEM_SLOTS answers).
  static constexpr size_t kMaxRegions = 32;

  // An empty table: every translation fails.
  GuestMemory() = default;

  // Maps regions[i] from fds[i] (REQUIRES regions.size() == fds.size()).
  // Fails, naming the region and the cause, on more than kMaxRegions
  // regions, a zero or overflowing size, overlapping regions, an fd that is
  // not a regular file long enough, or a failed mmap; nothing is kept then.
  static Result<GuestMemory> Map(std::span<const MemoryRegion> regions,
                                 std::span<const UniqueFd> fds);
  // This table plus one region (ADD_MEM_REG); the existing mappings are shared.
  Result<GuestMemory> WithRegion(const MemoryRegion& region, const UniqueFd& fd) const;
  // This table without the region of the same guest address and size
  // (REM_MEM_REG); fails if there is none.
  Result<GuestMemory> WithoutRegion(const MemoryRegion& region) const;

  // Host pointer for guest-physical [gpa, gpa + len), or nullptr unless the
  // range lies wholly inside one region (len 0: gpa inside a region).
  uint8_t* Translate(uint64_t gpa, uint64_t len) const {
    return Find(gpa, len, &MemoryRegion::guest_phys_addr);
  }
  // The same for the frontend's virtual addresses (SET_VRING_ADDR).
  uint8_t* TranslateUser(uint64_t uva, uint64_t len) const {
    return Find(uva, len, &MemoryRegion::userspace_addr);
  }

  size_t size() const { return regions_.size(); }
  const MemoryRegion& region(size_t i) const { return regions_[i].region; }
  // Whether region i's file was sealed against shrinking (F_SEAL_SHRINK)
  // when it was mapped.
  bool shrink_sealed(size_t i) const { return regions_[i].shrink_sealed; }

  // The first region whose file was cut short under its mapping (a SIGBUS
  // was caught there; it reads zeros now), if any.
  std::optional<size_t> FaultedRegion() const;
  // SIGBUS faults caught in any guest memory of this process so far: a
  // cheap test of whether FaultedRegion() is worth asking.
  static uint64_t faults();

 private:
  struct Mapping;  // RAII: munmap on destruction
  struct Entry {
    MemoryRegion region;
    std::shared_ptr<const Mapping> mapping;
    uint8_t* host = nullptr;  // the byte at guest_phys_addr
    bool shrink_sealed = false;
  };

  static Result<Entry> MapOne(const MemoryRegion& region, const UniqueFd& fd, size_t index);
  static Status CheckOverlap(const std::vector<Entry>& entries);

  uint8_t* Find(uint64_t addr, uint64_t len, uint64_t MemoryRegion::*base) const {
    // The last region hit first: almost every guest has one or two regions
    // and consecutive lookups land in the same one.
    const size_t n = regions_.size();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (last_ + k) % n;
      const Entry& e = regions_[i];
      const uint64_t start = e.region.*base;
      if (addr < start) continue;
      const uint64_t off = addr - start;
      if (off >= e.region.memory_size) continue;
      if (len > e.region.memory_size - off) return nullptr;  // crosses the region's end
      last_ = i;
      return e.host + off;
    }
    return nullptr;
  }

  std::vector<Entry> regions_;
  mutable size_t last_ = 0;
};

}  // namespace vfabric::vhost_user
