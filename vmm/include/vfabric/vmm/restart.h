// When a guest that stopped by itself is started again: the restart policy
// ("no" | "on-failure" | "always", as in the topology) and an exponential
// backoff. Pure logic on an injected time, so tests step through it.
//
// - A stop that was asked for (Stop()) never restarts.
// - "on-failure" restarts after a failure: QEMU exited with a status other
//   than 0 or was killed by a signal. A guest powering itself off makes QEMU
//   exit 0 (with -no-reboot, also a guest reboot), which is not a failure.
// - "always" restarts after any exit.
// - The delay starts at `initial` and doubles (×`factor`) per consecutive
//   restart up to `max`; a run that lasted at least `stable` resets it.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "vfabric/common/status.h"

namespace vfabric::vmm {

enum class RestartPolicy { kNo, kOnFailure, kAlways };
Result<RestartPolicy> ParseRestartPolicy(std::string_view text);
std::string_view ToString(RestartPolicy policy);

struct BackoffConfig {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{30000};
  double factor = 2.0;
  std::chrono::milliseconds stable{60000};
};

class RestartTracker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit RestartTracker(RestartPolicy policy, BackoffConfig config = {})
      : policy_(policy), config_(config) {}

  // The guest exited at `now` after starting at `started`; `failed` as above,
  // `stop_requested` when the exit was asked for. Returns when to start it
  // again, or nothing for "stay stopped".
  std::optional<TimePoint> OnExit(TimePoint started, TimePoint now, bool failed,
                                  bool stop_requested);

  // Restarts scheduled so far (the count shown to operators).
  int restarts() const { return restarts_; }
  // Consecutive quick restarts (what the delay grows with).
  int consecutive() const { return consecutive_; }
  RestartPolicy policy() const { return policy_; }
  // Forget the backoff (an operator's explicit start).
  void Reset() { consecutive_ = 0; }

 private:
  RestartPolicy policy_;
  BackoffConfig config_;
  int restarts_ = 0;
  int consecutive_ = 0;
};

}  // namespace vfabric::vmm
