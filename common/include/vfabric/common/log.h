// Leveled logging to stderr: "2026-11-21T22:40:01.123Z netd[123]: info: message".
// Thread-safe: each line is written with one write(2).
#pragma once

#include <sstream>
#include <string_view>

namespace vfabric {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warning"/"warn", "error".
bool ParseLogLevel(std::string_view text, LogLevel* level);
// "debug", "info", "warning", "error".
std::string_view ToString(LogLevel level);
void SetLogProgramName(std::string_view name);
void WriteLogLine(LogLevel level, std::string_view message);

class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { WriteLogLine(level_, stream_.str()); }
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace vfabric

// VF_LOG(kInfo) << "text"; the stream is not evaluated below the log level.
// (A for-statement rather than if/else, so that VF_LOG after an unbraced `if`
// cannot capture a following `else`.)
#define VF_LOG(level)                                                                            \
  for (bool vf_log_once_ = ::vfabric::LogLevel::level >= ::vfabric::GetLogLevel(); vf_log_once_; \
       vf_log_once_ = false)                                                                     \
  ::vfabric::LogMessage(::vfabric::LogLevel::level).stream()
