// What a guest controls: every byte of its rings and descriptors. Input: an
// 8-byte header (ring size 2^(b0 % 8), b1 bit 0 EVENT_IDX, bit 1
// INDIRECT_DESC, bit 2 MRG_RXBUF, bits 3-4 which direction is wanted; b2-3
// the next available index; b4-5 the used index found in the ring, b6 how
// many packets to put), then the first bytes of guest region 0 (the
// descriptor table at 0, the available ring at 0x800, the used ring at
// 0xa00, buffers anywhere). Guest memory is two regions of 64 KiB with a
// hole between them (guest 0 and 0x20000), a descriptor may point anywhere.
// The walker pops every chain, reads and writes every segment, puts
// packets (mergeable or not), publishes, asks about calls and
// notifications. Never a crash or an access outside guest memory: every
// segment handed out must lie inside one region (checked here), every
// copy stays inside its segments (ASan on the buffers copied to).
// Seeds (corpus/virtqueue): a ring of 16 with a direct chain, an
// indirect one and a receive chain; a loop; an index jump.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "vfabric/vhost_user/guest_memory.h"
#include "vfabric/vhost_user/virtqueue.h"

namespace {

using namespace vfabric;
using namespace vfabric::vhost_user;

constexpr size_t kRegion = 64 * 1024;

struct Guest {
  std::vector<UniqueFd> fds;
  std::vector<MemoryRegion> regions;
  GuestMemory memory;
  uint8_t* host[2] = {};

  Guest() {
    for (int i = 0; i < 2; ++i) {
      UniqueFd fd(::memfd_create("fuzz-guest", MFD_CLOEXEC));
      if (!fd || ::ftruncate(fd.get(), kRegion) != 0) std::abort();
      regions.push_back(MemoryRegion{static_cast<uint64_t>(i) * 0x20000, kRegion,
                                     0x7f0000000000 + static_cast<uint64_t>(i) * 0x20000, 0});
      fds.push_back(std::move(fd));
    }
    auto m = GuestMemory::Map(regions, fds);
    if (!m.ok()) std::abort();
    memory = std::move(m).value();
    for (int i = 0; i < 2; ++i) host[i] = memory.Translate(regions[i].guest_phys_addr, kRegion);
  }

  // Whether [p, p + len) lies inside one region's mapping.
  bool Inside(const uint8_t* p, uint32_t len) const {
    for (uint8_t* h : host)
      if (p >= h && p <= h + kRegion && len <= static_cast<size_t>(h + kRegion - p)) return true;
    return false;
  }
};

Guest& TheGuest() {
  static Guest* guest = new Guest();
  return *guest;
}

void CheckChain(const Guest& g, const Chain& c) {
  uint64_t readable = 0, writable = 0;
  for (uint16_t i = 0; i < c.count; ++i) {
    const Segment& s = c.segments[i];
    if (!g.Inside(s.data, s.len)) std::abort();  // a pointer outside guest memory
    (s.writable ? writable : readable) += s.len;
  }
  if (readable != c.readable || writable != c.writable) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  Guest& g = TheGuest();
  std::memset(g.host[0], 0, kRegion);
  std::memset(g.host[1], 0, kRegion);
  std::memcpy(g.host[0], data + 8, std::min(size - 8, kRegion));
  const uint32_t num = 1u << (data[0] % 8);
  const bool event_idx = (data[1] & 1) != 0;
  const bool indirect = (data[1] & 2) != 0;
  const bool mergeable = (data[1] & 4) != 0;
  const auto want = static_cast<Virtqueue::Want>((data[1] >> 3) % 3);
  uint16_t last_avail, used_idx;
  std::memcpy(&last_avail, data + 2, 2);
  std::memcpy(&used_idx, data + 4, 2);
  std::memcpy(g.host[0] + 0xa02, &used_idx, 2);
  const int packets = data[6] % 8;

  VirtqueueConfig config;
  config.num = num;
  config.desc_user = g.regions[0].userspace_addr;
  config.avail_user = g.regions[0].userspace_addr + 0x800;
  config.used_user = g.regions[0].userspace_addr + 0xa00;
  config.event_idx = event_idx;
  config.indirect = indirect;
  Virtqueue q;
  if (!q.Attach(&g.memory, config, last_avail).ok()) std::abort();  // the fixed layout fits

  static uint8_t scratch[kRegion * 2];
  Chain chain;
  RingError error;
  for (int i = 0; i < 300; ++i) {
    const Virtqueue::Pop pop = q.PopChain(&chain, &error, want);
    if (pop == Virtqueue::Pop::kEmpty) break;
    if (pop == Virtqueue::Pop::kError) continue;
    CheckChain(g, chain);
    if (chain.readable > sizeof scratch) std::abort();
    const size_t got = chain.Read(0, scratch, chain.readable);
    if (got != chain.readable) std::abort();
    const size_t wrote = chain.Write(0, scratch, std::min<uint64_t>(chain.writable, got));
    q.Push(chain.head, static_cast<uint32_t>(wrote));
    if (i % 7 == 0) q.Publish();
  }
  q.Publish();
  q.NeedCall();
  q.EnableNotify();
  q.DisableNotify();
  // Packets into whatever remains available, as the receive side does.
  const uint8_t header[12] = {};
  for (int i = 0; i < packets; ++i) {
    const size_t len = 14 + (static_cast<size_t>(data[7]) * 37 * (i + 1)) % 3000;
    const std::span<const uint8_t> pieces[2] = {{scratch, len / 2}, {scratch, len - len / 2}};
    uint16_t used = 0;
    const Put put = PutPacket(q, header, mergeable, 10, pieces, &used);
    if (put == Put::kOk && (used == 0 || (!mergeable && used != 1))) std::abort();
  }
  q.Publish();
  q.NeedCall();
  q.Available();
  return 0;
}
