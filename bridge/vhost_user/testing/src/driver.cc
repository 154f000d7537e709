#include "vfabric/vhost_user/testing/driver.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace vfabric::vhost_user::testing {

Result<GuestRam> GuestRam::Create(size_t count, size_t size) {
  GuestRam ram;
  ram.size_ = size;
  for (size_t i = 0; i < count; ++i) {
    UniqueFd fd(::memfd_create("guest-ram", MFD_CLOEXEC));
    if (!fd) return Status::FromErrno("memfd_create", errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0)
      return Status::FromErrno("ftruncate", errno);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return Status::FromErrno("mmap", errno);
    ram.maps_.push_back(static_cast<uint8_t*>(p));
    ram.regions_.push_back(MemoryRegion{i * 2 * size, size, reinterpret_cast<uint64_t>(p), 0});
    ram.fds_.push_back(std::move(fd));
  }
  return ram;
}

GuestRam::GuestRam(GuestRam&& o) noexcept { *this = std::move(o); }
GuestRam& GuestRam::operator=(GuestRam&& o) noexcept {
  if (this != &o) {
    for (uint8_t* p : maps_) ::munmap(p, size_);
    regions_ = std::move(o.regions_);
    fds_ = std::move(o.fds_);
    maps_ = std::move(o.maps_);
    o.maps_.clear();
    size_ = o.size_;
    region_ = o.region_;
    next_ = o.next_;
  }
  return *this;
}
GuestRam::~GuestRam() {
  for (uint8_t* p : maps_) ::munmap(p, size_);
}

uint64_t GuestRam::Alloc(size_t size, size_t align) {
  while (region_ < regions_.size()) {
    const size_t start = (next_ + align - 1) / align * align;
    if (start + size <= size_) {
      next_ = start + size;
      return regions_[region_].guest_phys_addr + start;
    }
    ++region_;
    next_ = 0;
  }
  return 0;
}

uint8_t* GuestRam::Host(uint64_t gpa) const {
  for (size_t i = 0; i < regions_.size(); ++i) {
    const MemoryRegion& r = regions_[i];
    if (gpa >= r.guest_phys_addr && gpa - r.guest_phys_addr < r.memory_size)
      return maps_[i] + (gpa - r.guest_phys_addr);
  }
  return nullptr;
}

uint64_t GuestRam::User(uint64_t gpa) const {
  uint8_t* p = Host(gpa);
  return p == nullptr ? 0 : reinterpret_cast<uint64_t>(p);
}

DriverQueue::DriverQueue(GuestRam* ram, uint16_t num, bool event_idx, bool indirect)
    : ram_(ram), num_(num), event_idx_(event_idx), indirect_(indirect) {
  desc_ = ram_->Alloc(16ull * num, 16);
  avail_ = ram_->Alloc(6ull + 2ull * num, 2);
  used_ = ram_->Alloc(6ull + 8ull * num, 4);
  for (uint16_t i = num; i > 0; --i) free_.push_back(static_cast<uint16_t>(i - 1));
}

VirtqueueConfig DriverQueue::config() const {
  VirtqueueConfig c;
  c.num = num_;
  c.desc_user = ram_->User(desc_);
  c.avail_user = ram_->User(avail_);
  c.used_user = ram_->User(used_);
  c.event_idx = event_idx_;
  c.indirect = indirect_;
  return c;
}

uint8_t* DriverQueue::Desc(uint16_t i) const { return ram_->Host(desc_) + 16ull * i; }
uint16_t* DriverQueue::Avail() const { return reinterpret_cast<uint16_t*>(ram_->Host(avail_)); }
uint8_t* DriverQueue::UsedRing() const { return ram_->Host(used_); }

void DriverQueue::SetDesc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                          uint16_t next) {
  uint8_t* d = Desc(index);
  std::memcpy(d, &addr, 8);
  std::memcpy(d + 8, &len, 4);
  std::memcpy(d + 12, &flags, 2);
  std::memcpy(d + 14, &next, 2);
}

void DriverQueue::MakeAvailable(uint16_t head) {
  uint16_t* avail = Avail();
  const uint16_t idx = __atomic_load_n(avail + 1, __ATOMIC_RELAXED);
  __atomic_store_n(avail + 2 + (idx % num_), head, __ATOMIC_RELAXED);
  __atomic_store_n(avail + 1, static_cast<uint16_t>(idx + 1), __ATOMIC_RELEASE);
}

void DriverQueue::SetAvailIdx(uint16_t idx) {
  __atomic_store_n(Avail() + 1, idx, __ATOMIC_RELEASE);
}
uint16_t DriverQueue::avail_idx() const { return __atomic_load_n(Avail() + 1, __ATOMIC_ACQUIRE); }
void DriverQueue::SetAvailFlags(uint16_t flags) {
  __atomic_store_n(Avail(), flags, __ATOMIC_RELAXED);
}
void DriverQueue::SetUsedEvent(uint16_t idx) {
  __atomic_store_n(Avail() + 2 + num_, idx, __ATOMIC_RELAXED);
}
uint16_t DriverQueue::used_idx() const {
  return __atomic_load_n(reinterpret_cast<uint16_t*>(UsedRing() + 2), __ATOMIC_ACQUIRE);
}
uint16_t DriverQueue::used_flags() const {
  return __atomic_load_n(reinterpret_cast<uint16_t*>(UsedRing()), __ATOMIC_RELAXED);
}
uint16_t DriverQueue::avail_event() const {
  return __atomic_load_n(reinterpret_cast<uint16_t*>(UsedRing() + 4 + 8ull * num_),
                         __ATOMIC_RELAXED);
}

std::optional<uint16_t> DriverQueue::AddOut(std::span<const std::vector<uint8_t>> buffers,
                                            bool indirect) {
  Outstanding out;
  if (indirect) {
    if (free_.empty() || buffers.empty()) return std::nullopt;
    const uint64_t table = ram_->Alloc(16 * buffers.size(), 16);
    if (table == 0) return std::nullopt;
    for (size_t i = 0; i < buffers.size(); ++i) {
      const uint64_t data = ram_->Alloc(std::max<size_t>(buffers[i].size(), 1), 1);
      if (data == 0) return std::nullopt;
      if (!buffers[i].empty()) std::memcpy(ram_->Host(data), buffers[i].data(), buffers[i].size());
      const uint16_t flags = i + 1 < buffers.size() ? kDescNext : 0;
      uint8_t* d = ram_->Host(table) + 16 * i;
      const uint32_t len = static_cast<uint32_t>(buffers[i].size());
      const uint16_t next = static_cast<uint16_t>(i + 1);
      std::memcpy(d, &data, 8);
      std::memcpy(d + 8, &len, 4);
      std::memcpy(d + 12, &flags, 2);
      std::memcpy(d + 14, &next, 2);
    }
    const uint16_t head = free_.back();
    free_.pop_back();
    SetDesc(head, table, static_cast<uint32_t>(16 * buffers.size()), kDescIndirect, 0);
    out.descs.push_back(head);
    outstanding_[head] = std::move(out);
    MakeAvailable(head);
    return head;
  }
  if (free_.size() < buffers.size() || buffers.empty()) return std::nullopt;
  for (size_t i = 0; i < buffers.size(); ++i) {
    out.descs.push_back(free_.back());
    free_.pop_back();
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    const uint64_t data = ram_->Alloc(std::max<size_t>(buffers[i].size(), 1), 1);
    if (!buffers[i].empty()) std::memcpy(ram_->Host(data), buffers[i].data(), buffers[i].size());
    const bool last = i + 1 == buffers.size();
    SetDesc(out.descs[i], data, static_cast<uint32_t>(buffers[i].size()), last ? 0 : kDescNext,
            last ? 0 : out.descs[i + 1]);
  }
  const uint16_t head = out.descs[0];
  outstanding_[head] = std::move(out);
  MakeAvailable(head);
  return head;
}

std::optional<uint16_t> DriverQueue::AddIn(std::span<const uint32_t> sizes) {
  if (free_.size() < sizes.size() || sizes.empty()) return std::nullopt;
  Outstanding out;
  for (size_t i = 0; i < sizes.size(); ++i) {
    out.descs.push_back(free_.back());
    free_.pop_back();
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint64_t data = ram_->Alloc(std::max<uint32_t>(sizes[i], 1), 8);
    out.in.emplace_back(data, sizes[i]);
    const bool last = i + 1 == sizes.size();
    SetDesc(out.descs[i], data, sizes[i],
            static_cast<uint16_t>(kDescWrite | (last ? 0 : kDescNext)),
            last ? 0 : out.descs[i + 1]);
  }
  const uint16_t head = out.descs[0];
  outstanding_[head] = std::move(out);
  MakeAvailable(head);
  return head;
}

std::optional<DriverQueue::Used> DriverQueue::TakeUsed() {
  if (used_idx() == last_used_) return std::nullopt;
  const uint8_t* elem = UsedRing() + 4 + 8ull * (last_used_ % num_);
  Used u;
  std::memcpy(&u.id, elem, 4);
  std::memcpy(&u.len, elem + 4, 4);
  ++last_used_;
  auto it = outstanding_.find(static_cast<uint16_t>(u.id));
  if (it != outstanding_.end()) {
    for (uint16_t d : it->second.descs) free_.push_back(d);
    // Keep the writable buffers' addresses for ReadIn; the descriptors are free.
    it->second.descs.clear();
  }
  return u;
}

std::vector<uint8_t> DriverQueue::ReadIn(uint16_t head, uint32_t len) const {
  std::vector<uint8_t> out;
  auto it = outstanding_.find(head);
  if (it == outstanding_.end()) return out;
  for (const auto& [addr, size] : it->second.in) {
    const uint32_t n = std::min<uint32_t>(size, len - static_cast<uint32_t>(out.size()));
    const uint8_t* p = ram_->Host(addr);
    out.insert(out.end(), p, p + n);
    if (out.size() == len) break;
  }
  return out;
}

}  // namespace vfabric::vhost_user::testing
