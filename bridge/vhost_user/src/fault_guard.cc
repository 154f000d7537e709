#include "fault_guard.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <mutex>

namespace vfabric::vhost_user::internal {

// A registered mapping. `seq` is odd while the slot is being written: the
// handler, which may interrupt a writer on another thread, skips such a
// slot and one whose count changed under it (a seqlock).
struct FaultSlot {
  std::atomic<uint64_t> seq{0};
  std::atomic<uintptr_t> start{0};
  std::atomic<size_t> length{0};
  std::atomic<uint32_t> faulted{0};
  bool used = false;  // under the mutex
};

namespace {

constexpr size_t kSlotsPerChunk = 256;
struct Chunk {
  std::array<FaultSlot, kSlotsPerChunk> slots;
  std::atomic<Chunk*> next{nullptr};
};

// Chunks are only ever added (and never freed): the handler walks them
// without a lock.
Chunk first_chunk;
std::mutex mutex;
std::atomic<uint64_t> fault_count{0};
struct sigaction previous {};
std::once_flag installed;

void Write(FaultSlot* s, uintptr_t start, size_t length) {
  const uint64_t v = s->seq.load(std::memory_order_relaxed);
  s->seq.store(v + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  s->start.store(start, std::memory_order_relaxed);
  s->length.store(length, std::memory_order_relaxed);
  s->faulted.store(0, std::memory_order_relaxed);
  s->seq.store(v + 2, std::memory_order_release);
}

// Async-signal-safe: atomics, mmap, sigaction and raise only.
void OnSigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  // Only a fault the kernel raised (si_code > 0) names an address.
  if (info != nullptr && info->si_code > 0) {
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (Chunk* c = &first_chunk; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (FaultSlot& s : c->slots) {
        const uint64_t v = s.seq.load(std::memory_order_acquire);
        if ((v & 1) != 0) continue;
        const uintptr_t start = s.start.load(std::memory_order_relaxed);
        const size_t length = s.length.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s.seq.load(std::memory_order_relaxed) != v) continue;
        if (start == 0 || addr < start || addr - start >= length) continue;
        // The whole mapping, not just the page: the frontend broke the
        // table, and the owner drops all of it at its next check.
        void* r = ::mmap(reinterpret_cast<void*>(start), length, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) break;  // cannot mend it: as if unguarded
        s.faulted.store(1, std::memory_order_relaxed);
        fault_count.fetch_add(1, std::memory_order_relaxed);
        errno = saved_errno;
        return;  // the access runs again, on the replacement
      }
    }
  }
  errno = saved_errno;
  // Not guest memory: whatever handled SIGBUS before.
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  // The default action (ignoring a fault would loop on it): raised again,
  // delivered when this handler returns, and the process dies of SIGBUS.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
  ::raise(SIGBUS);
}

void Install() {
  struct sigaction action {};
  action.sa_sigaction = OnSigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, &previous);
}

}  // namespace

FaultSlot* GuardMapping(void* addr, size_t length) {
  std::call_once(installed, Install);
  std::lock_guard<std::mutex> lock(mutex);
  Chunk* c = &first_chunk;
  for (;;) {
    for (FaultSlot& s : c->slots) {
      if (s.used) continue;
      s.used = true;
      Write(&s, reinterpret_cast<uintptr_t>(addr), length);
      return &s;
    }
    Chunk* next = c->next.load(std::memory_order_relaxed);
    if (next == nullptr) {
      next = new (std::nothrow) Chunk;
      if (next == nullptr) return nullptr;
      c->next.store(next, std::memory_order_release);
    }
    c = next;
  }
}

void UnguardMapping(FaultSlot* slot) {
  if (slot == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex);
  Write(slot, 0, 0);
  slot->used = false;
}

bool Faulted(const FaultSlot* slot) {
  return slot != nullptr && slot->faulted.load(std::memory_order_relaxed) != 0;
}

uint64_t FaultCount() { return fault_count.load(std::memory_order_relaxed); }

}  // namespace vfabric::vhost_user::internal
