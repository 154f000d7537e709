// netd's own metrics: reconcile passes and its servers' counters.
#include "vfabric/netd/metrics.h"

#include "vfabric/netd/control_server.h"
#include "vfabric/netd/metrics_server.h"

namespace vfabric::netd {

void MetricsOut::Check(const Status& status) {
  if (status.ok()) return;
  if (errors_++ == 0) first_error_ = status.message();
}

void MetricsOut::Counter(std::string_view name, std::string_view help,
                         const metrics::Labels& labels, uint64_t value) {
  Check(out_.Counter(name, help, labels, value));
}

void MetricsOut::Gauge(std::string_view name, std::string_view help, const metrics::Labels& labels,
                       double value) {
  Check(out_.Gauge(name, help, labels, value));
}

void MetricsOut::Histogram(std::string_view name, std::string_view help,
                           const metrics::Labels& labels, const metrics::Histogram& histogram) {
  Status declared = out_.Declare(name, metrics::Type::kHistogram, help);
  Check(declared);
  if (declared.ok()) Check(out_.AddHistogram(name, labels, histogram));
}

void MetricsOut::StateSet(std::string_view name, std::string_view help,
                          const metrics::Labels& labels, std::string_view label,
                          std::initializer_list<std::string_view> values,
                          std::string_view current) {
  for (std::string_view value : values) {
    metrics::Labels with = labels;
    with.emplace_back(std::string(label), std::string(value));
    Gauge(name, help, with, value == current ? 1.0 : 0.0);
  }
}

void ReconcileStats::Record(std::string_view trigger, bool ok, size_t operations,
                            std::chrono::duration<double> took) {
  auto it = by_trigger_.find(trigger);
  if (it == by_trigger_.end()) it = by_trigger_.try_emplace(std::string(trigger)).first;
  PerTrigger& stats = it->second;
  ++stats.passes;
  if (!ok) ++stats.failures;
  stats.operations += operations;
  stats.durations.Observe(took.count());
}

void ReconcileStats::Write(MetricsOut& out) const {
  uint64_t repairs = 0;
  for (const auto& [trigger, stats] : by_trigger_) {
    const metrics::Labels labels = {{"trigger", trigger}};
    out.Counter("vfabric_netd_reconcile_passes_total",
                "Reconcile passes (read the host, plan, apply), by what ran them.", labels,
                stats.passes);
    out.Counter("vfabric_netd_reconcile_failures_total",
                "Reconcile passes that failed (their kernel transaction was undone).", labels,
                stats.failures);
    out.Counter("vfabric_netd_reconcile_operations_total",
                "Kernel operations reconcile passes applied, by what ran them.", labels,
                stats.operations);
    out.Histogram("vfabric_netd_reconcile_duration_seconds",
                  "How long reconcile passes took, by what ran them.", labels, stats.durations);
    if (trigger == "repair" || trigger == "resync") repairs += stats.operations;
  }
  out.Counter("vfabric_netd_repairs_total",
              "Drift repaired: kernel operations applied by repair and resync passes.", {},
              repairs);
}

void WriteServerMetrics(const ControlServer* control, const MetricsServer* metrics,
                        MetricsOut& out) {
  if (control != nullptr) {
    const ControlCounters& c = control->counters();
    out.Gauge("vfabric_netd_control_clients", "Clients connected to the control socket.", {},
              static_cast<double>(control->clients()));
    out.Counter("vfabric_netd_control_connections_total",
                "Connections the control socket accepted.", {}, c.accepted);
    out.Counter("vfabric_netd_control_requests_total", "Requests the control socket answered.", {},
                c.requests);
    const char* help = "Control socket clients closed or refused by netd, by reason.";
    for (const auto& [reason, value] :
         {std::pair<const char*, uint64_t>{"refused_peer", c.refused_peer},
          {"busy", c.rejected_busy},
          {"evicted_idle", c.evicted_idle},
          {"idle", c.timed_out_idle},
          {"slow_reader", c.dropped_slow},
          {"too_long", c.dropped_too_long},
          {"memory", c.dropped_memory},
          {"accept_error", c.accept_errors}})
      out.Counter("vfabric_netd_control_clients_dropped_total", help, {{"reason", reason}}, value);
  }
  if (metrics != nullptr) {
    const MetricsServerCounters& c = metrics->counters();
    out.Counter("vfabric_netd_metrics_scrapes_total", "Scrapes of /metrics answered.", {},
                c.scrapes);
    out.Counter("vfabric_netd_metrics_renders_total",
                "Times the exposition was rendered (at most once a second; scrapes in "
                "between share it).",
                {}, c.renders);
    out.Gauge("vfabric_netd_metrics_render_seconds", "How long the last render took.", {},
              c.last_render_seconds);
    const char* help = "Metrics listener requests not answered with metrics, by reason.";
    for (const auto& [reason, value] : {std::pair<const char*, uint64_t>{"not_found", c.not_found},
                                        {"bad_request", c.bad_requests},
                                        {"busy", c.rejected_busy},
                                        {"evicted", c.evicted},
                                        {"request_timeout", c.timed_out},
                                        {"slow_reader", c.dropped_slow},
                                        {"client_error", c.client_errors},
                                        {"accept_error", c.accept_errors}})
      out.Counter("vfabric_netd_metrics_requests_failed_total", help, {{"reason", reason}}, value);
  }
}

}  // namespace vfabric::netd
