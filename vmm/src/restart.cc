#include "vfabric/vmm/restart.h"

#include <cmath>
#include <string>

namespace vfabric::vmm {

Result<RestartPolicy> ParseRestartPolicy(std::string_view text) {
  if (text == "no" || text.empty()) return RestartPolicy::kNo;
  if (text == "on-failure") return RestartPolicy::kOnFailure;
  if (text == "always") return RestartPolicy::kAlways;
  return Status::Error("restart \"" + std::string(text) + "\": want no, on-failure or always");
}

std::string_view ToString(RestartPolicy policy) {
  switch (policy) {
    case RestartPolicy::kNo:
      return "no";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kAlways:
      return "always";
  }
  return "no";
}

std::optional<RestartTracker::TimePoint> RestartTracker::OnExit(TimePoint started, TimePoint now,
                                                                bool failed, bool stop_requested) {
  if (stop_requested) return std::nullopt;
  if (policy_ == RestartPolicy::kNo) return std::nullopt;
  if (policy_ == RestartPolicy::kOnFailure && !failed) return std::nullopt;
  if (now - started >= config_.stable) consecutive_ = 0;
  double delay_ms =
      static_cast<double>(config_.initial.count()) * std::pow(config_.factor, consecutive_);
  const double max_ms = static_cast<double>(config_.max.count());
  if (!(delay_ms < max_ms)) delay_ms = max_ms;  // also catches inf/nan
  if (consecutive_ < 64) ++consecutive_;
  ++restarts_;
  return now + std::chrono::milliseconds(static_cast<long long>(delay_ms));
}

}  // namespace vfabric::vmm
