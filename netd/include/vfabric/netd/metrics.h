// What netd exports on --metrics-listen (docs/metrics.md lists every
// family): the controller's views as metrics (Controller::WriteMetrics,
// netd/src/metrics_views.cc), netd's own reconcile passes (ReconcileStats),
// and its servers' counters. Everything here runs on the event loop's
// thread, like the controller.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "vfabric/metrics/exposition.h"

namespace vfabric::netd {

class ControlServer;
class MetricsServer;

// An Exposition that keeps going past a refused sample: a family or sample
// the writer refuses (a bug here, never the operator's input: label values
// are escaped, not refused) is counted and the first reason kept, and the
// rest of the scrape is still written.
class MetricsOut {
 public:
  explicit MetricsOut(metrics::Exposition& out) : out_(out) {}
  void Counter(std::string_view name, std::string_view help, const metrics::Labels& labels,
               uint64_t value);
  void Gauge(std::string_view name, std::string_view help, const metrics::Labels& labels,
             double value);
  void Histogram(std::string_view name, std::string_view help, const metrics::Labels& labels,
                 const metrics::Histogram& histogram);
  // A gauge per value of an enumeration: 1 for `current`, 0 for the others
  // (Prometheus' way of exporting a state), label `label`.
  void StateSet(std::string_view name, std::string_view help, const metrics::Labels& labels,
                std::string_view label, std::initializer_list<std::string_view> values,
                std::string_view current);
  // What could not be read (a switch that did not answer, the kernel state):
  // counted as an error like a refused sample.
  void Fail(const std::string& why) { Check(Status::Error(why)); }
  uint64_t errors() const { return errors_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void Check(const Status& status);
  metrics::Exposition& out_;
  uint64_t errors_ = 0;
  std::string first_error_;
};

// netd's reconcile passes by what ran them: "start", "repair" (after kernel
// events), "resync" (the periodic one), "reload" (SIGHUP), "apply" (netctl
// apply). Counts, failures, kernel operations applied and durations.
class ReconcileStats {
 public:
  void Record(std::string_view trigger, bool ok, size_t operations,
              std::chrono::duration<double> took);
  void Write(MetricsOut& out) const;

 private:
  struct PerTrigger {
    uint64_t passes = 0;
    uint64_t failures = 0;
    uint64_t operations = 0;
    metrics::Histogram durations{
        {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  };
  std::map<std::string, PerTrigger, std::less<>> by_trigger_;
};

// The control server's and the metrics server's own counters.
void WriteServerMetrics(const ControlServer* control, const MetricsServer* metrics,
                        MetricsOut& out);

}  // namespace vfabric::netd
