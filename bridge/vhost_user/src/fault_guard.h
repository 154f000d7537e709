// The SIGBUS guard of guest memory (internal to vfabric_vhost_user; see
// DESIGN.md, "A frontend that shrinks its memory").
//
// A frontend may shrink (ftruncate) a memory file after the backend mapped
// it: the next access to a page past the new end faults with SIGBUS, whose
// default action kills the whole process (netd, every switch, every port).
// Each mapping of guest memory is registered here; a process-wide SIGBUS
// handler (installed with the first registration) that finds the faulting
// address inside a registered mapping replaces the whole mapping with
// anonymous zero-filled memory (MAP_FIXED) and marks the slot faulted; the
// faulting access then completes on the replacement (reads zeros, writes go
// nowhere), and the owner sees Faulted() after its batch and ends the
// connection. This is how Wayland compositors survive clients that shrink
// their wl_shm pools (libwayland-server's wl_shm SIGBUS handler).
//
// A SIGBUS anywhere else goes to the handler that was there before (the
// default: the process dies with SIGBUS, as without the guard).
//
// Threads: Guard/Unguard from any thread (a mutex); the handler reads the
// slots lock-free (a sequence count per slot). A mapping is unguarded
// before it is unmapped, by the thread that owns it (the only one that
// can fault in it), so the handler never remaps memory that is gone.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vfabric::vhost_user::internal {

struct FaultSlot;

// Registers [addr, addr + length); nullptr when no slot could be had (the
// mapping is then unguarded: a fault in it kills the process, as before).
FaultSlot* GuardMapping(void* addr, size_t length);
// Forgets the slot (before the munmap of its mapping).
void UnguardMapping(FaultSlot* slot);
// Whether a SIGBUS was caught in the slot's mapping (now zero-filled).
bool Faulted(const FaultSlot* slot);
// SIGBUS faults caught in guest memory since the process started.
uint64_t FaultCount();

}  // namespace vfabric::vhost_user::internal
