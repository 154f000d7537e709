// Prometheus' text exposition format (version 0.0.4, what `promtool check
// metrics` and every Prometheus server read), written from values. Pure
// code: no I/O, no clock, no threads.
//
// What it guarantees of the text, whatever the caller hands it:
// - Every family with samples has one `# HELP` and one `# TYPE` line, before
//   its samples, and its samples are together (one without samples is left
//   out): families come out in name order, samples
//   of a family in the order they were added (a histogram's buckets in
//   ascending `le`, `+Inf` last, then `_sum` and `_count`).
// - Names follow the format's grammar (metric names [a-zA-Z_:][a-zA-Z0-9_:]*,
//   label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__"); a counter's
//   name ends in `_total` (Prometheus' naming rule). A name that does not is
//   refused with a Status naming it, never written.
// - HELP text escapes `\` and newline; label values escape `\`, `"` and
//   newline, and invalid UTF-8 in them (an interface name is any bytes) is
//   replaced by U+FFFD, so that one odd port name cannot make Prometheus
//   refuse the whole scrape.
// - One label set appears once per family: a second sample with the same
//   labels is refused.
// - Integer values are written exactly (a byte counter past 2^53 keeps its
//   digits); doubles in the shortest form that reads back the same, with
//   `NaN`, `+Inf` and `-Inf` spelled as the format wants.
//
// How to use it:
//   metrics::Exposition out;
//   out.Declare("vfabric_port_receive_bytes_total", metrics::Type::kCounter,
//               "Bytes received on the port.");
//   out.Add("vfabric_port_receive_bytes_total", {{"network", "lab"}, {"port", "vm1"}},
//           uint64_t{1234});
//   std::string text = out.Text();
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vfabric/common/status.h"

namespace vfabric::metrics {

// The content type of Text(), for the HTTP answer.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge, kHistogram, kUntyped };
std::string_view ToString(Type type);  // "counter", "gauge", ...

// Label name and value pairs, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A histogram's state: cumulative-free bucket counts over fixed upper
// bounds (ascending, finite; the +Inf bucket is implicit), the sum and the
// count. Observe() is O(log buckets); nothing allocates after construction.
class Histogram {
 public:
  // REQUIRES: `bounds` ascending, finite, without duplicates.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Observations per bucket (not cumulative): counts()[i] holds those <=
  // bounds()[i] and > bounds()[i-1]; the last holds those above every bound.
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The text form of a sample value: integers exactly, doubles shortest
// round-trip, "NaN", "+Inf", "-Inf".
std::string FormatValue(double value);
std::string FormatValue(uint64_t value);
// A label value inside its quotes: `\` -> `\\`, `"` -> `\"`, newline ->
// `\n`, invalid UTF-8 -> U+FFFD.
std::string EscapeLabelValue(std::string_view value);
// A HELP text: `\` -> `\\`, newline -> `\n`, invalid UTF-8 -> U+FFFD.
std::string EscapeHelp(std::string_view help);
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);

class Exposition {
 public:
  // Declares the family `name`. Declaring it again with the same type and
  // help is allowed (and does nothing); with another type or help it is an
  // error, as is an invalid name or a counter not ending in `_total`.
  Status Declare(std::string_view name, Type type, std::string_view help);
  // One sample of a counter, gauge or untyped family declared before. A
  // counter's value must not be negative (nor NaN).
  Status Add(std::string_view name, const Labels& labels, uint64_t value);
  Status Add(std::string_view name, const Labels& labels, double value);
  // Declare + Add, for the common case of a family with one caller.
  Status Counter(std::string_view name, std::string_view help, const Labels& labels,
                 uint64_t value);
  Status Gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  // One histogram of a histogram family declared before: NAME_bucket per
  // bound (label `le`, which `labels` must not have), NAME_sum, NAME_count.
  Status AddHistogram(std::string_view name, const Labels& labels, const Histogram& histogram);

  size_t families() const { return families_.size(); }
  // Samples written (a histogram counts its bucket, sum and count lines).
  size_t samples() const { return samples_; }
  // The exposition: see the file comment for its order.
  std::string Text() const;

 private:
  struct Family {
    Type type = Type::kUntyped;
    std::string help;
    std::string lines;             // the samples' lines, in the order added
    std::set<std::string> series;  // the label sets seen, as written
  };
  Result<Family*> Find(std::string_view name, bool histogram);
  // `{a="b",c="d"}` ("" for none), or an error naming the bad label.
  static Result<std::string> FormatLabels(std::string_view family, const Labels& labels,
                                          std::string_view extra_name = {},
                                          std::string_view extra_value = {});
  Status AddLine(std::string_view name, const Labels& labels, const std::string& value,
                 bool negative_or_nan);

  std::map<std::string, Family, std::less<>> families_;
  size_t samples_ = 0;
};

}  // namespace vfabric::metrics
