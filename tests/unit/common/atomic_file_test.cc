#include "vfabric/common/atomic_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vfabric {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vfabric-atomic-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/state.json";
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string Read(const std::string& path) const {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  bool Exists(const std::string& path) const { return ::access(path.c_str(), F_OK) == 0; }

  std::string dir_, path_;
};

TEST_F(AtomicFileTest, WritesAndReplaces) {
  ASSERT_TRUE(WriteFileAtomically(path_, "first\n").ok());
  EXPECT_EQ(Read(path_), "first\n");
  ASSERT_TRUE(WriteFileAtomically(path_, "second, longer\n", 0600).ok());
  EXPECT_EQ(Read(path_), "second, longer\n");
  EXPECT_FALSE(Exists(path_ + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AtomicFileTest, ShortWritesAreContinued) {
  FileCalls calls;
  calls.write = [](int fd, const void* data, size_t size) {
    return ::write(fd, data, size > 3 ? 3 : size);  // three bytes at a time
  };
  ASSERT_TRUE(WriteFileAtomically(path_, "a longer text than three bytes", 0644, calls).ok());
  EXPECT_EQ(Read(path_), "a longer text than three bytes");
}

// The disk fills up part-way through: the error names the file and the
// errno, the good file stays as it was, and no half-written copy is left.
TEST_F(AtomicFileTest, AFullDiskNeverReplacesTheGoodFile) {
  ASSERT_TRUE(WriteFileAtomically(path_, "good state\n").ok());
  FileCalls calls;
  int writes = 0;
  calls.write = [&writes](int fd, const void* data, size_t size) -> ssize_t {
    if (writes++ == 0) return ::write(fd, data, size < 4 ? size : 4);
    errno = ENOSPC;
    return -1;
  };
  Status status = WriteFileAtomically(path_, "new state that does not fit\n", 0644, calls);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error_number(), ENOSPC);
  EXPECT_EQ(status.message(), "write " + path_ + ".tmp: No space left on device");
  EXPECT_EQ(Read(path_), "good state\n");
  EXPECT_FALSE(Exists(path_ + ".tmp"));
}

TEST_F(AtomicFileTest, EachFailingCallIsReportedAndKeepsTheOldFile) {
  struct Case {
    const char* name;
    std::function<void(FileCalls&)> inject;
    std::string message;
    int error_number;
  };
  auto fail = [](int error_number) {
    return [error_number](auto&&...) {
      errno = error_number;
      return -1;
    };
  };
  const std::string tmp = path_ + ".tmp";
  const Case cases[] = {
      {"open", [&](FileCalls& c) { c.open = fail(EROFS); },
       "open " + tmp + ": Read-only file system", EROFS},
      {"fsync", [&](FileCalls& c) { c.fsync = fail(EIO); }, "fsync " + tmp + ": Input/output error",
       EIO},
      {"close",
       [&](FileCalls& c) {
         c.close = [](int fd) {
           ::close(fd);
           errno = EDQUOT;
           return -1;
         };
       },
       "close " + tmp + ": Disk quota exceeded", EDQUOT},
      {"rename", [&](FileCalls& c) { c.rename = fail(EXDEV); },
       "rename " + tmp + " to " + path_ + ": Invalid cross-device link", EXDEV},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(WriteFileAtomically(path_, "good\n").ok());
    FileCalls calls;
    c.inject(calls);
    Status status = WriteFileAtomically(path_, "replacement\n", 0644, calls);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.message(), c.message);
    EXPECT_EQ(status.error_number(), c.error_number);
    EXPECT_EQ(Read(path_), "good\n");
    EXPECT_FALSE(Exists(tmp));
  }
}

// The directory's fsync failing is reported: the new contents are in place,
// but whether the rename would survive a power loss is not known.
TEST_F(AtomicFileTest, AFailedDirectoryFsyncIsReported) {
  FileCalls calls;
  int fsyncs = 0;
  calls.fsync = [&fsyncs](int fd) {
    if (fsyncs++ == 0) return ::fsync(fd);
    errno = EIO;
    return -1;
  };
  Status status = WriteFileAtomically(path_, "new\n", 0644, calls);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "fsync directory " + dir_ + ": Input/output error");
  EXPECT_EQ(Read(path_), "new\n");
}

TEST_F(AtomicFileTest, RemoveFileDurably) {
  ASSERT_TRUE(WriteFileAtomically(path_, "x").ok());
  ASSERT_TRUE(RemoveFileDurably(path_).ok());
  EXPECT_FALSE(Exists(path_));
  EXPECT_TRUE(RemoveFileDurably(path_).ok());  // already gone
  FileCalls calls;
  calls.unlink = [](const char*) {
    errno = EROFS;
    return -1;
  };
  Status status = RemoveFileDurably(path_, calls);
  EXPECT_EQ(status.message(), "unlink " + path_ + ": Read-only file system");
}

}  // namespace
}  // namespace vfabric
