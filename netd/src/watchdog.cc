#include "vfabric/netd/watchdog.h"

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace vfabric::netd {
namespace {

// A whole positive decimal number, nothing else (no sign, no spaces).
std::optional<uint64_t> ParsePositive(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0) return std::nullopt;
  return value;
}

}  // namespace

Result<std::optional<std::chrono::microseconds>> WatchdogInterval(const char* usec, const char* pid,
                                                                  pid_t self) {
  using Interval = std::optional<std::chrono::microseconds>;
  if (usec == nullptr) return Interval();
  if (pid != nullptr) {
    const std::optional<uint64_t> owner = ParsePositive(pid);
    if (!owner) return Status::Error("WATCHDOG_PID=\"" + std::string(pid) + "\": not a pid");
    // Meant for another process (inherited from a parent): not netd's.
    if (*owner != static_cast<uint64_t>(self)) return Interval();
  }
  const std::optional<uint64_t> period = ParsePositive(usec);
  // One too long for a timer is refused like a malformed one.
  if (!period || *period > uint64_t{INT64_MAX} / 2)
    return Status::Error("WATCHDOG_USEC=\"" + std::string(usec) +
                         "\": not a positive number of microseconds");
  // Half the period, as sd_watchdog_enabled(3) advises; at least 1 us.
  const uint64_t half = *period / 2 > 0 ? *period / 2 : 1;
  return Interval(std::chrono::microseconds(static_cast<int64_t>(half)));
}

}  // namespace vfabric::netd
