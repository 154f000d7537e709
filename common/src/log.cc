#include "vfabric/common/log.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "vfabric/common/log_line.h"

namespace vfabric {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::string& ProgramName() {
  static std::string name = "vfabric";
  return name;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

// syslog(3) priorities, as sd-daemon(3) prefixes take them.
int JournalPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 7;  // LOG_DEBUG
    case LogLevel::kInfo:
      return 6;  // LOG_INFO
    case LogLevel::kWarning:
      return 4;  // LOG_WARNING
    case LogLevel::kError:
      return 3;  // LOG_ERR
  }
  return 6;
}

// Decided once: stderr does not change under a running program.
bool StderrIsJournal() {
  static const bool journal = [] {
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return IsJournalStream(std::getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino);
  }();
  return journal;
}

}  // namespace

std::string_view ToString(LogLevel level) { return LevelName(level); }

bool IsJournalStream(const char* journal_stream, dev_t stderr_dev, ino_t stderr_ino) {
  if (journal_stream == nullptr) return false;
  const std::string_view text(journal_stream);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  const char* dev_end = text.data() + colon;
  const char* ino_end = text.data() + text.size();
  auto parsed_dev = std::from_chars(text.data(), dev_end, dev);
  auto parsed_ino = std::from_chars(dev_end + 1, ino_end, ino);
  if (parsed_dev.ec != std::errc() || parsed_dev.ptr != dev_end || colon == 0 ||
      parsed_ino.ec != std::errc() || parsed_ino.ptr != ino_end || colon + 1 == text.size())
    return false;
  return dev == static_cast<unsigned long long>(stderr_dev) &&
         ino == static_cast<unsigned long long>(stderr_ino);
}

std::string FormatLogLine(LogLevel level, std::string_view message, bool journal, timeval now,
                          std::string_view program, pid_t pid) {
  std::string line;
  if (journal) {
    // Appended piece by piece: "<" + std::to_string(...) trips GCC 12's bogus
    // -Wrestrict at -O3 (GCC PR 105329).
    std::string prefix(1, '<');
    prefix += std::to_string(JournalPriority(level));
    prefix += '>';
    prefix += LevelName(level);
    prefix += ": ";
    size_t start = 0;
    do {
      const size_t end = message.find('\n', start);
      line += prefix;
      line += message.substr(start, end == std::string_view::npos ? end : end - start);
      line += '\n';
      start = end == std::string_view::npos ? end : end + 1;
    } while (start != std::string_view::npos && start < message.size());
    return line;
  }
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long>(now.tv_usec / 1000));
  line = stamp;
  line += ' ';
  line += program;
  line += '[' + std::to_string(pid) + "]: ";
  line += LevelName(level);
  line += ": ";
  line += message;
  line += '\n';
  return line;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
void SetLogProgramName(std::string_view name) { ProgramName() = std::string(name); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug")
    *level = LogLevel::kDebug;
  else if (text == "info")
    *level = LogLevel::kInfo;
  else if (text == "warning" || text == "warn")
    *level = LogLevel::kWarning;
  else if (text == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

void WriteLogLine(LogLevel level, std::string_view message) {
  timeval now{};
  gettimeofday(&now, nullptr);
  const std::string line =
      FormatLogLine(level, message, StderrIsJournal(), now, ProgramName(), getpid());
  // One write per line keeps lines from different threads whole.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace vfabric
