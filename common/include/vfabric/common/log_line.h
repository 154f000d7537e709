// The lines WriteLogLine (log.h) writes to stderr, apart so tests can check
// them. On a terminal or a file: "2026-11-21T22:40:01.123Z netd[123]: info:
// message". When stderr is systemd's journal (JOURNAL_STREAM names it, as
// systemd sets for a service whose stderr is the journal): "<6>info: message",
// the sd-daemon(3) priority prefix, so journald files each line under its
// priority (journalctl -p warning) and stamps time and pid itself.
#pragma once

#include <sys/time.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "vfabric/common/log.h"

namespace vfabric {

// Whether `journal_stream` (JOURNAL_STREAM's value, "DEVICE:INODE"; nullptr
// when unset) names the file stderr is, given stderr's st_dev and st_ino.
bool IsJournalStream(const char* journal_stream, dev_t stderr_dev, ino_t stderr_ino);

// The line to write, newline included. For the journal every line of a
// multi-line message carries the priority prefix.
std::string FormatLogLine(LogLevel level, std::string_view message, bool journal, timeval now,
                          std::string_view program, pid_t pid);

}  // namespace vfabric
