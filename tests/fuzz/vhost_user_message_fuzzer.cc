// What a vhost-user frontend controls: every message on the socket, with
// fds. Input: records, each either a message (b0 < 0xf0: request b0 % 48,
// flags b1 & 0xf, fd count b2 % 4, payload size u16 at b3 % 512, payload)
// or a write into guest memory (b0 >= 0xf0: offset u16 * 16, length u8,
// bytes) so that rings the messages set up can hold chains. Fds are dups
// of one 1 MiB memfd (guest memory, and the kick/call fds). After each
// message the rings that are ready are drained and filled as the
// datapath would. Never a crash, an access outside a buffer, or an fd
// left open once the backend is gone (counted in /proc/self/fd).
// Seeds (corpus/vhost_user_message): QEMU's start-up sequence with one
// region and rings of 16 and a chain on each ring; the same with
// REPLY_ACK and a live SET_MEM_TABLE; malformed messages.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "vfabric/common/log.h"
#include "vfabric/vhost_user/backend.h"
#include "vfabric/vhost_user/virtqueue.h"

namespace {

using namespace vfabric;
using namespace vfabric::vhost_user;

constexpr size_t kMemory = 1 << 20;

int GuestFd() {
  static int fd = [] {
    const int f = ::memfd_create("fuzz-guest", MFD_CLOEXEC);
    if (f < 0 || ::ftruncate(f, kMemory) != 0) std::abort();
    return f;
  }();
  return fd;
}

int OpenFds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

void Datapath(Backend& backend) {
  Chain chain;
  RingError error;
  if (Virtqueue* tx = backend.ready(Backend::kTxRing)) {
    for (int i = 0; i < 32; ++i) {
      const Virtqueue::Pop pop = tx->PopChain(&chain, &error, Virtqueue::Want::kReadable);
      if (pop == Virtqueue::Pop::kEmpty) break;
      if (pop == Virtqueue::Pop::kError) continue;
      uint8_t buf[2048];
      chain.Read(0, buf, sizeof buf);
      tx->Push(chain.head, 0);
    }
    tx->Publish();
    tx->NeedCall();
    tx->EnableNotify();
  }
  if (Virtqueue* rx = backend.ready(Backend::kRxRing)) {
    static const uint8_t frame[1600] = {};
    const uint8_t header[12] = {};
    const std::span<const uint8_t> pieces[] = {frame};
    PutPacket(*rx, header, backend.has(feature::kMrgRxbuf), 10, pieces);
    rx->Publish();
    rx->NeedCall();
  }
}

}  // namespace

// Refusals are logged once per connection; a million connections' worth
// of warnings would only slow the fuzzer down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  SetLogLevel(LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int guest = GuestFd();
  {
    // Guest memory starts zeroed for every input.
    static uint8_t* map = static_cast<uint8_t*>(
        ::mmap(nullptr, kMemory, PROT_READ | PROT_WRITE, MAP_SHARED, guest, 0));
    if (map == MAP_FAILED) std::abort();
    std::memset(map, 0, kMemory);
  }
  const int fds_before = OpenFds();
  {
    Backend backend(BackendOptions{.name = "fuzz"});
    size_t at = 0;
    while (at + 3 <= size) {
      if (data[at] >= 0xf0) {  // a guest memory write
        if (at + 4 > size) break;
        uint16_t offset16;
        std::memcpy(&offset16, data + at + 1, 2);
        const size_t offset = static_cast<size_t>(offset16) * 16;
        const size_t len = std::min<size_t>(data[at + 3], size - at - 4);
        if (offset + len <= kMemory &&
            ::pwrite(guest, data + at + 4, len, static_cast<off_t>(offset)) < 0)
          std::abort();
        at += 4 + len;
        continue;
      }
      if (at + 5 > size) break;
      MessageHeader h;
      h.request = data[at] % 48;
      h.flags = data[at + 1] & 0xf;
      const size_t nfds = data[at + 2] % 4;
      uint16_t len16;
      std::memcpy(&len16, data + at + 3, 2);
      const size_t len = std::min<size_t>(len16 % 512, size - at - 5);
      h.size = static_cast<uint32_t>(len);
      if (data[at + 1] & 0x80) h.size ^= 1;  // now and then a size that disagrees
      std::vector<UniqueFd> fds;
      for (size_t i = 0; i < nfds; ++i) fds.emplace_back(::fcntl(guest, F_DUPFD_CLOEXEC, 0));
      const Backend::Outcome out = backend.Handle(h, {data + at + 5, len}, fds);
      if (out.reply && out.reply->header.size != out.reply->payload.size()) std::abort();
      at += 5 + len;
      if (out.close) {
        backend.Reset();
        continue;
      }
      Datapath(backend);
    }
  }
  // Every fd of every message is closed once the backend is gone.
  if (fds_before >= 0 && OpenFds() != fds_before) std::abort();
  return 0;
}
