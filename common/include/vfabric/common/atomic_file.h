// Replacing a state file so that a crash, a full disk or a read-only
// directory never leaves a truncated or empty file where a good one was.
//
// WriteFileAtomically(path, contents):
//   1. open PATH.tmp (O_CREAT|O_TRUNC) in the same directory (rename(2) is
//      atomic only within one file system),
//   2. write all of `contents`, 3. fsync(2) it, 4. close(2) it (its error
//      counts: some file systems report a failed write-back only there),
//   5. rename(2) it over PATH, 6. fsync(2) the directory, so the rename itself
//      survives a power loss.
// A failure in 1-5 removes PATH.tmp and leaves PATH as it was; the error names
// the call, the path and the errno ("write /run/vfabric/x.json.tmp: No space
// left on device"). A failure in 6 is reported too, though PATH then already
// holds the new contents (only their durability is in doubt).
//
// The system calls come through FileCalls, a narrow seam so that tests can
// make one of them fail (as leveldb's fault-injecting Env does).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "vfabric/common/status.h"

namespace vfabric {

struct FileCalls {
  // Each behaves as the system call of its name (returns -1 and sets errno on
  // failure); empty members use the real one.
  std::function<int(const char* path, int flags, mode_t mode)> open;
  std::function<ssize_t(int fd, const void* data, size_t size)> write;
  std::function<int(int fd)> fsync;
  std::function<int(int fd)> close;
  std::function<int(const char* from, const char* to)> rename;
  std::function<int(const char* path)> unlink;
};

// Replaces `path` with `contents` (file mode `mode`, less the umask) as
// described above. The directory must exist.
Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode = 0644,
                           const FileCalls& calls = {});

// Removes `path` and fsyncs its directory. A missing file is OK.
Status RemoveFileDurably(const std::string& path, const FileCalls& calls = {});

}  // namespace vfabric
