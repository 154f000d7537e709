// The guest memory table: mapping, bounds-checked translation in both
// address spaces, refusals, replacement.
#include "vfabric/vhost_user/guest_memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace vfabric::vhost_user {
namespace {

UniqueFd Memfd(size_t size) {
  UniqueFd fd(::memfd_create("guest", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
  return fd;
}

constexpr uint64_t kPage = 4096;

TEST(GuestMemoryTest, EmptyTableTranslatesNothing) {
  GuestMemory m;
  EXPECT_EQ(m.Translate(0, 1), nullptr);
  EXPECT_EQ(m.TranslateUser(0, 0), nullptr);
}

TEST(GuestMemoryTest, TranslatesBothAddressSpacesToTheSameBytes) {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(4 * kPage));
  const MemoryRegion r{0x100000, 3 * kPage, 0x7f0000000000, kPage};
  auto m = GuestMemory::Map({&r, 1}, fds);
  ASSERT_TRUE(m.ok()) << m.status().message();
  uint8_t* p = m->Translate(0x100000 + 10, 4);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p, m->TranslateUser(0x7f0000000000 + 10, 4));
  std::memcpy(p, "abcd", 4);
  // The bytes are the fd's at mmap_offset + 10: shared with the frontend.
  char got[4];
  ASSERT_EQ(::pread(fds[0].get(), got, 4, static_cast<off_t>(kPage + 10)), 4);
  EXPECT_EQ(std::memcmp(got, "abcd", 4), 0);
}

TEST(GuestMemoryTest, RangesThatLeaveTheRegionAreRefused) {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(2 * kPage));
  const MemoryRegion r{0x1000, 2 * kPage, 0x5000000, 0};
  auto m = GuestMemory::Map({&r, 1}, fds);
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->Translate(0x1000, 2 * kPage), nullptr);          // the whole region
  EXPECT_EQ(m->Translate(0x1000, 2 * kPage + 1), nullptr);      // one byte past
  EXPECT_NE(m->Translate(0x1000 + 2 * kPage - 1, 1), nullptr);  // the last byte
  EXPECT_EQ(m->Translate(0x1000 + 2 * kPage - 1, 2), nullptr);  // crosses the end
  EXPECT_EQ(m->Translate(0x1000 + 2 * kPage, 0), nullptr);      // just past the end
  EXPECT_EQ(m->Translate(0xfff, 1), nullptr);                   // before
  EXPECT_EQ(m->Translate(0x1000, UINT64_MAX), nullptr);         // huge length
  EXPECT_EQ(m->Translate(UINT64_MAX, 1), nullptr);              // wraps
  EXPECT_EQ(m->Translate(0x1000 + kPage, UINT64_MAX - 10), nullptr);
  EXPECT_EQ(m->TranslateUser(0x1000, 1), nullptr);  // a guest address is not a user one
}

TEST(GuestMemoryTest, AdjacentRegionsDoNotJoin) {
  // Two regions back to back in guest memory, from different fds: a buffer
  // across the boundary is two mappings that are not adjacent in the host.
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(kPage));
  fds.push_back(Memfd(kPage));
  const MemoryRegion r[2] = {{0, kPage, 0x10000, 0}, {kPage, kPage, 0x20000, 0}};
  auto m = GuestMemory::Map(r, fds);
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->Translate(kPage - 8, 8), nullptr);
  EXPECT_NE(m->Translate(kPage, 8), nullptr);
  EXPECT_EQ(m->Translate(kPage - 8, 16), nullptr);
}

TEST(GuestMemoryTest, EightAndMoreRegions) {
  std::vector<UniqueFd> fds;
  std::vector<MemoryRegion> regions;
  for (uint64_t i = 0; i < GuestMemory::kMaxRegions; ++i) {
    fds.push_back(Memfd(kPage));
    regions.push_back({i * 0x100000, kPage, 0x40000000 + i * 0x100000, 0});
  }
  auto m = GuestMemory::Map(regions, fds);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->size(), GuestMemory::kMaxRegions);
  for (uint64_t i = 0; i < GuestMemory::kMaxRegions; ++i) {
    uint8_t* p = m->Translate(i * 0x100000 + 8, 8);
    ASSERT_NE(p, nullptr) << i;
    p[0] = static_cast<uint8_t>(i);
    EXPECT_EQ(m->TranslateUser(0x40000000 + i * 0x100000 + 8, 1)[0], i);
    EXPECT_EQ(m->Translate(i * 0x100000 + kPage, 1), nullptr) << "gap after region " << i;
  }
  fds.push_back(Memfd(kPage));
  regions.push_back({0x7000000000, kPage, 0x7000000000, 0});
  EXPECT_FALSE(GuestMemory::Map(regions, fds).ok()) << "more than kMaxRegions";
  EXPECT_FALSE(m->WithRegion(regions.back(), fds.back()).ok()) << "table full";
}

TEST(GuestMemoryTest, BadRegionsAreRefused) {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(kPage));
  auto refused = [&](MemoryRegion r) {
    auto m = GuestMemory::Map({&r, 1}, fds);
    EXPECT_FALSE(m.ok());
    return m.ok() ? std::string() : m.status().message();
  };
  EXPECT_NE(refused({0, 0, 0, 0}).find("size 0"), std::string::npos);
  EXPECT_NE(refused({0, 2 * kPage, 0, 0}).find("shorter"), std::string::npos);
  EXPECT_NE(refused({0, kPage, 0, 1}).find("shorter"), std::string::npos);
  refused({UINT64_MAX - 10, kPage, 0, 0});
  refused({0, kPage, UINT64_MAX - 10, 0});
  refused({0, kPage, 0, UINT64_MAX - 10});
  // Not a regular file: a pipe.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::vector<UniqueFd> pipe_fds;
  pipe_fds.emplace_back(p[0]);
  UniqueFd other(p[1]);
  const MemoryRegion r{0, kPage, 0, 0};
  auto m = GuestMemory::Map({&r, 1}, pipe_fds);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("not a regular file"), std::string::npos);
  // No fd, fds and regions that do not pair up.
  std::vector<UniqueFd> none(1);
  EXPECT_FALSE(GuestMemory::Map({&r, 1}, none).ok());
  EXPECT_FALSE(GuestMemory::Map({&r, 1}, {}).ok());
}

TEST(GuestMemoryTest, OverlappingRegionsAreRefused) {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(2 * kPage));
  fds.push_back(Memfd(2 * kPage));
  const MemoryRegion guest_overlap[2] = {{0, 2 * kPage, 0x10000, 0}, {kPage, kPage, 0x90000, 0}};
  EXPECT_FALSE(GuestMemory::Map(guest_overlap, fds).ok());
  const MemoryRegion user_overlap[2] = {{0, kPage, 0x10000, 0}, {kPage, kPage, 0x10800, 0}};
  EXPECT_FALSE(GuestMemory::Map(user_overlap, fds).ok());
}

TEST(GuestMemoryTest, ReplacingTheTableKeepsOldPointersValidUntilTheOldTableGoes) {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(kPage));
  const MemoryRegion a{0, kPage, 0x10000, 0};
  auto m = GuestMemory::Map({&a, 1}, fds);
  ASSERT_TRUE(m.ok());
  uint8_t* in_a = m->Translate(0, 1);
  *in_a = 7;
  // Add a second region: the first is shared, not remapped.
  UniqueFd b_fd = Memfd(kPage);
  const MemoryRegion b{0x100000, kPage, 0x200000, 0};
  auto grown = m->WithRegion(b, b_fd);
  ASSERT_TRUE(grown.ok()) << grown.status().message();
  EXPECT_EQ(grown->Translate(0, 1), in_a);
  EXPECT_NE(grown->Translate(0x100000, kPage), nullptr);
  EXPECT_EQ(m->Translate(0x100000, 1), nullptr) << "the old table is unchanged";
  // Overlap with an existing region is refused.
  EXPECT_FALSE(grown->WithRegion(a, fds[0]).ok());
  // The old table goes; the shared mapping stays for the new one.
  *m = GuestMemory();
  EXPECT_EQ(*grown->Translate(0, 1), 7);
  // Remove the first region.
  auto shrunk = grown->WithoutRegion(a);
  ASSERT_TRUE(shrunk.ok());
  EXPECT_EQ(shrunk->Translate(0, 1), nullptr);
  EXPECT_NE(shrunk->Translate(0x100000, 1), nullptr);
  EXPECT_FALSE(shrunk->WithoutRegion(a).ok());
}

// A frontend that cuts its memory file short after SET_MEM_TABLE: the next
// access past the new end raised SIGBUS and killed the process. Guarded,
// it reads zeros and the table says which region broke.
TEST(GuestMemoryTest, AFileCutShortUnderItsMappingReadsZerosAndIsReported) {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(4 * kPage));
  fds.push_back(Memfd(4 * kPage));
  const MemoryRegion r[2] = {{0x0, 4 * kPage, 0x7f0000000000, 0},
                             {0x100000, 4 * kPage, 0x7f0000100000, 0}};
  auto m = GuestMemory::Map(r, fds);
  ASSERT_TRUE(m.ok()) << m.status().message();
  volatile uint8_t* p = m->Translate(0x100000 + kPage, 1);
  ASSERT_NE(p, nullptr);
  *p = 0x5a;
  EXPECT_EQ(*p, 0x5a);
  EXPECT_FALSE(m->FaultedRegion().has_value());
  const uint64_t faults = GuestMemory::faults();

  ASSERT_EQ(::ftruncate(fds[1].get(), 0), 0);
  EXPECT_EQ(*p, 0) << "the page is past the file's end: zeros, not SIGBUS";
  *p = 0x77;  // a write lands in the replacement, not in the file
  EXPECT_EQ(GuestMemory::faults(), faults + 1);
  ASSERT_TRUE(m->FaultedRegion().has_value());
  EXPECT_EQ(*m->FaultedRegion(), 1u);
  struct stat st {};
  ASSERT_EQ(::fstat(fds[1].get(), &st), 0);
  EXPECT_EQ(st.st_size, 0) << "the file was not grown back";
  // The other region is untouched and still shared.
  uint8_t* q = m->Translate(0x10, 1);
  ASSERT_NE(q, nullptr);
  *q = 0x42;
  uint8_t got = 0;
  ASSERT_EQ(::pread(fds[0].get(), &got, 1, 0x10), 1);
  EXPECT_EQ(got, 0x42);
}

// With the guard installed (a guest table mapped), a SIGBUS in a mapping
// that is not guest memory: exits 3 if it could not set that up.
void TouchAShrunkMappingThatIsNotGuestMemory() {
  std::vector<UniqueFd> fds;
  fds.push_back(Memfd(kPage));
  const MemoryRegion r{0, kPage, 0x7f0000000000, 0};
  auto m = GuestMemory::Map({&r, 1}, fds);
  UniqueFd other = Memfd(kPage);
  void* mine = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, other.get(), 0);
  if (mine == MAP_FAILED || !m.ok() || ::ftruncate(other.get(), 0) != 0) ::_exit(3);
  *static_cast<volatile uint8_t*>(mine) = 1;
  ::_exit(0);
}

// Under ASan the handler before the guard is the sanitizer's: it reports
// the fault ("AddressSanitizer: BUS") and aborts (CI's abort_on_error=1)
// or exits 1. Either way the SIGBUS was passed on, not swallowed.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

TEST(GuestMemoryTest, ASigbusOutsideGuestMemoryStillKills) {
  if (kAddressSanitizer) {
    EXPECT_EXIT(
        TouchAShrunkMappingThatIsNotGuestMemory(),
        [](int status) {
          return !WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3);
        },
        "AddressSanitizer: BUS");
  } else {
    EXPECT_EXIT(TouchAShrunkMappingThatIsNotGuestMemory(), ::testing::KilledBySignal(SIGBUS), "");
  }
}

TEST(GuestMemoryTest, SaysWhetherARegionIsSealedAgainstShrinking) {
  std::vector<UniqueFd> fds;
  fds.push_back(UniqueFd(::memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  ASSERT_EQ(::ftruncate(fds[0].get(), kPage), 0);
  ASSERT_EQ(::fcntl(fds[0].get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  fds.push_back(Memfd(kPage));
  const MemoryRegion r[2] = {{0, kPage, 0x10000, 0}, {0x100000, kPage, 0x200000, 0}};
  auto m = GuestMemory::Map(r, fds);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->shrink_sealed(0));
  EXPECT_FALSE(m->shrink_sealed(1));
}

}  // namespace
}  // namespace vfabric::vhost_user
