#include "vfabric/common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace vfabric {
namespace {

// The FileCalls member, or the real system call when it is empty.
class Calls {
 public:
  explicit Calls(const FileCalls& calls) : calls_(calls) {}
  int Open(const char* path, int flags, mode_t mode) const {
    return calls_.open ? calls_.open(path, flags, mode) : ::open(path, flags, mode);
  }
  ssize_t Write(int fd, const void* data, size_t size) const {
    return calls_.write ? calls_.write(fd, data, size) : ::write(fd, data, size);
  }
  int Fsync(int fd) const { return calls_.fsync ? calls_.fsync(fd) : ::fsync(fd); }
  int Close(int fd) const { return calls_.close ? calls_.close(fd) : ::close(fd); }
  int Rename(const char* from, const char* to) const {
    return calls_.rename ? calls_.rename(from, to) : ::rename(from, to);
  }
  int Unlink(const char* path) const {
    return calls_.unlink ? calls_.unlink(path) : ::unlink(path);
  }

 private:
  const FileCalls& calls_;
};

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status FsyncDirectory(const std::string& path, const Calls& calls) {
  const std::string directory = DirectoryOf(path);
  const int fd = calls.Open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("open directory " + directory, errno);
  Status status;
  if (calls.Fsync(fd) != 0) status = Status::FromErrno("fsync directory " + directory, errno);
  calls.Close(fd);  // read only: nothing for close to report
  return status;
}

}  // namespace

Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode,
                           const FileCalls& file_calls) {
  const Calls calls(file_calls);
  const std::string temporary = path + ".tmp";
  const int fd =
      calls.Open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Status::FromErrno("open " + temporary, errno);
  // Every failure from here on takes the temporary file away again, so that
  // a full disk is not made fuller by half-written copies.
  auto fail = [&](const std::string& what, int error_number, bool open) {
    if (open) calls.Close(fd);
    calls.Unlink(temporary.c_str());
    return Status::FromErrno(what, error_number);
  };
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = calls.Write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write " + temporary, errno, true);
    // A write that takes nothing would loop forever; the kernel says ENOSPC
    // for it on the next try anyway.
    if (n == 0) return fail("write " + temporary, ENOSPC, true);
    done += static_cast<size_t>(n);
  }
  if (calls.Fsync(fd) != 0) return fail("fsync " + temporary, errno, true);
  if (calls.Close(fd) != 0) return fail("close " + temporary, errno, false);
  if (calls.Rename(temporary.c_str(), path.c_str()) != 0)
    return fail("rename " + temporary + " to " + path, errno, false);
  return FsyncDirectory(path, calls);
}

Status RemoveFileDurably(const std::string& path, const FileCalls& file_calls) {
  const Calls calls(file_calls);
  if (calls.Unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("unlink " + path, errno);
  }
  return FsyncDirectory(path, calls);
}

}  // namespace vfabric
