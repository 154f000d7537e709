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

#define VF_LOG(level)                                                        \
  if (::vfabric::LogLevel::level < ::vfabric::GetLogLevel()) {               \
  } else                                                                     \
    ::vfabric::LogMessage(::vfabric::LogLevel::level).stream()
