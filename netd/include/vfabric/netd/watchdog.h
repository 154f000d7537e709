// systemd's service watchdog (WatchdogSec=, sd_watchdog_enabled(3)): when the
// service manager sets WATCHDOG_USEC (and WATCHDOG_PID names this process, or
// is unset), netd must send "WATCHDOG=1" to $NOTIFY_SOCKET more often than
// that, or it is killed and restarted. netd sends it from its event loop, at
// half the period, so a loop that hangs stops the pings and systemd notices.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>

#include "vfabric/common/status.h"

namespace vfabric::netd {

// The interval at which to send WATCHDOG=1 (half of WATCHDOG_USEC), or
// nullopt when the watchdog is off: `usec` unset, or `pid` set and not
// `self`. `usec` and `pid` are the environment's values (nullptr if unset).
// An error names the variable and its value when either is not a positive
// number.
Result<std::optional<std::chrono::microseconds>> WatchdogInterval(const char* usec, const char* pid,
                                                                  pid_t self);

}  // namespace vfabric::netd
