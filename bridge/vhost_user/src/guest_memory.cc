#include "vfabric/vhost_user/guest_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "fault_guard.h"

namespace vfabric::vhost_user {

struct GuestMemory::Mapping {
  Mapping(void* a, size_t l) : addr(a), length(l), guard(internal::GuardMapping(a, l)) {}
  ~Mapping() {
    internal::UnguardMapping(guard);  // before the address can be reused
    ::munmap(addr, length);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  void* addr;
  size_t length;
  internal::FaultSlot* guard;  // nullptr: unguarded (no slot could be had)
};

namespace {

std::string Name(size_t index, const MemoryRegion& r) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "memory region %zu (guest 0x%llx, size 0x%llx)", index,
                static_cast<unsigned long long>(r.guest_phys_addr),
                static_cast<unsigned long long>(r.memory_size));
  return buf;
}

bool Overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
  return a < b + b_size && b < a + a_size;  // sizes checked against overflow before
}

}  // namespace

Result<GuestMemory::Entry> GuestMemory::MapOne(const MemoryRegion& r, const UniqueFd& fd,
                                               size_t index) {
  const std::string what = Name(index, r);
  if (!fd) return Status::Error(what + ": no fd", EBADF);
  if (r.memory_size == 0) return Status::Error(what + ": size 0", EINVAL);
  const uint64_t kMax = uint64_t{1} << 47;  // no user address space is larger
  if (r.memory_size > kMax || r.mmap_offset > kMax ||
      r.guest_phys_addr > UINT64_MAX - r.memory_size ||
      r.userspace_addr > UINT64_MAX - r.memory_size)
    return Status::Error(what + ": size or offset out of range", EINVAL);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Status::FromErrno(what + ": fstat", errno);
  if (!S_ISREG(st.st_mode))
    return Status::Error(what + ": fd is not a regular file (memfd, hugetlbfs, tmpfs)", EINVAL);
  const uint64_t length = r.mmap_offset + r.memory_size;
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < length)
    return Status::Error(what + ": file of " + std::to_string(st.st_size) +
                             " bytes is shorter than offset + size " + std::to_string(length),
                         EINVAL);
  // Mapped from offset 0: mmap_offset need not be page-aligned.
  void* addr =
      ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (addr == MAP_FAILED) return Status::FromErrno(what + ": mmap", errno);
  Entry e;
  e.region = r;
  // F_SEAL_SHRINK: the frontend cannot cut the file short (QEMU's
  // memory-backend-memfd seals by default; DPDK's and hugetlbfs files are
  // not sealed). Shown, not required: the SIGBUS guard covers the rest.
  const int seals = ::fcntl(fd.get(), F_GET_SEALS);
  e.shrink_sealed = seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
  e.mapping = std::make_shared<const Mapping>(addr, length);
  e.host = static_cast<uint8_t*>(addr) + r.mmap_offset;
  return e;
}

Status GuestMemory::CheckOverlap(const std::vector<Entry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const MemoryRegion& a = entries[i].region;
      const MemoryRegion& b = entries[j].region;
      if (Overlap(a.guest_phys_addr, a.memory_size, b.guest_phys_addr, b.memory_size))
        return Status::Error(
            Name(i, a) + ": overlaps region " + std::to_string(j) + " in guest addresses", EINVAL);
      if (Overlap(a.userspace_addr, a.memory_size, b.userspace_addr, b.memory_size))
        return Status::Error(
            Name(i, a) + ": overlaps region " + std::to_string(j) + " in frontend addresses",
            EINVAL);
    }
  }
  return Status::Ok();
}

Result<GuestMemory> GuestMemory::Map(std::span<const MemoryRegion> regions,
                                     std::span<const UniqueFd> fds) {
  if (regions.size() != fds.size())
    return Status::Error("memory table: " + std::to_string(regions.size()) + " regions but " +
                             std::to_string(fds.size()) + " fds",
                         EINVAL);
  if (regions.size() > kMaxRegions)
    return Status::Error("memory table: " + std::to_string(regions.size()) + " regions, at most " +
                             std::to_string(kMaxRegions),
                         EINVAL);
  GuestMemory memory;
  for (size_t i = 0; i < regions.size(); ++i) {
    auto entry = MapOne(regions[i], fds[i], i);
    if (!entry.ok()) return entry.status();
    memory.regions_.push_back(std::move(entry).value());
  }
  VF_RETURN_IF_ERROR(CheckOverlap(memory.regions_));
  return memory;
}

Result<GuestMemory> GuestMemory::WithRegion(const MemoryRegion& region, const UniqueFd& fd) const {
  if (regions_.size() >= kMaxRegions)
    return Status::Error("memory table: full (" + std::to_string(kMaxRegions) + " regions)",
                         ENOSPC);
  auto entry = MapOne(region, fd, regions_.size());
  if (!entry.ok()) return entry.status();
  GuestMemory memory;
  memory.regions_ = regions_;
  memory.regions_.push_back(std::move(entry).value());
  VF_RETURN_IF_ERROR(CheckOverlap(memory.regions_));
  return memory;
}

std::optional<size_t> GuestMemory::FaultedRegion() const {
  for (size_t i = 0; i < regions_.size(); ++i)
    if (internal::Faulted(regions_[i].mapping->guard)) return i;
  return std::nullopt;
}

uint64_t GuestMemory::faults() { return internal::FaultCount(); }

Result<GuestMemory> GuestMemory::WithoutRegion(const MemoryRegion& region) const {
  GuestMemory memory;
  bool found = false;
  for (const Entry& e : regions_) {
    if (!found && e.region.guest_phys_addr == region.guest_phys_addr &&
        e.region.memory_size == region.memory_size) {
      found = true;
      continue;
    }
    memory.regions_.push_back(e);
  }
  if (!found)
    return Status::Error(Name(regions_.size(), region) + ": no such region to remove", ENOENT);
  return memory;
}

}  // namespace vfabric::vhost_user
