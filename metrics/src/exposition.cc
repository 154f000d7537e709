#include "vfabric/metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>

namespace vfabric::metrics {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the valid UTF-8 sequence at text[i], or 0 when none starts
// there (overlong forms, surrogates and code points past U+10FFFF are not
// valid: Prometheus' Go parser refuses them too).
size_t Utf8Length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;   // overlong
    if (b0 == 0xED) high = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;   // overlong
    if (b0 == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return length;
}

// `text` escaped for a HELP line (quote = false) or a label value (quote =
// true), invalid UTF-8 replaced.
std::string Escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if (const size_t length = Utf8Length(text, i); length > 0) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the byte that starts no valid sequence
    }
    ++i;
  }
  return out;
}

}  // namespace

std::string_view ToString(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
    case Type::kUntyped:
      return "untyped";
  }
  return "untyped";
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  // The first bound >= value: buckets are "less than or equal".
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  ++counts_[static_cast<size_t>(std::distance(bounds_.begin(), it))];
  ++count_;
  sum_ += value;
}

std::string FormatValue(uint64_t value) { return std::to_string(value); }

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return "NaN";  // cannot happen: 64 bytes hold any double
  return std::string(buffer, end);
}

std::string EscapeLabelValue(std::string_view value) { return Escape(value, true); }
std::string EscapeHelp(std::string_view help) { return Escape(help, false); }

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsNameStart(c) || IsDigit(c) || c == ':'; });
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0]) || name.starts_with("__")) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return IsNameStart(c) || IsDigit(c); });
}

Status Exposition::Declare(std::string_view name, Type type, std::string_view help) {
  const std::string family(name);
  if (!IsValidMetricName(name)) return Status::Error("metric " + family + ": invalid name");
  if (type == Type::kCounter && !name.ends_with("_total"))
    return Status::Error("metric " + family + ": a counter's name must end in _total");
  if (type != Type::kCounter && name.ends_with("_total"))
    return Status::Error("metric " + family + ": only a counter's name ends in _total");
  if (type == Type::kHistogram &&
      (name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count")))
    return Status::Error("metric " + family +
                         ": a histogram's name must not end in _bucket, _sum or _count");
  auto [it, inserted] = families_.try_emplace(family);
  if (!inserted) {
    if (it->second.type != type || it->second.help != help)
      return Status::Error("metric " + family + ": declared twice, as " +
                           std::string(ToString(it->second.type)) + " and as " +
                           std::string(ToString(type)));
    return Status::Ok();
  }
  it->second.type = type;
  it->second.help = std::string(help);
  return Status::Ok();
}

Result<Exposition::Family*> Exposition::Find(std::string_view name, bool histogram) {
  auto it = families_.find(name);
  if (it == families_.end()) return Status::Error("metric " + std::string(name) + ": not declared");
  if ((it->second.type == Type::kHistogram) != histogram)
    return Status::Error("metric " + std::string(name) + ": is a " +
                         std::string(ToString(it->second.type)));
  return &it->second;
}

Result<std::string> Exposition::FormatLabels(std::string_view family, const Labels& labels,
                                             std::string_view extra_name,
                                             std::string_view extra_value) {
  std::string text;
  std::set<std::string_view> names;
  for (const auto& [name, value] : labels) {
    if (!IsValidLabelName(name))
      return Status::Error("metric " + std::string(family) + ": invalid label name \"" + name +
                           "\"");
    if (!names.insert(name).second || name == extra_name)
      return Status::Error("metric " + std::string(family) + ": label " + name + " given twice");
    text += text.empty() ? "{" : ",";
    text += name + "=\"" + EscapeLabelValue(value) + "\"";
  }
  if (!extra_name.empty()) {
    text += text.empty() ? "{" : ",";
    text += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
  }
  if (!text.empty()) text += "}";
  return text;
}

Status Exposition::AddLine(std::string_view name, const Labels& labels, const std::string& value,
                           bool negative_or_nan) {
  auto found = Find(name, false);
  if (!found.ok()) return found.status();
  Family& family = **found;
  if (family.type == Type::kCounter && negative_or_nan)
    return Status::Error("metric " + std::string(name) + ": a counter cannot be " + value);
  auto text = FormatLabels(name, labels);
  if (!text.ok()) return text.status();
  if (!family.series.insert(*text).second)
    return Status::Error("metric " + std::string(name) + ": series " + *text + " added twice");
  family.lines.append(name).append(*text).append(" ").append(value).append("\n");
  ++samples_;
  return Status::Ok();
}

Status Exposition::Add(std::string_view name, const Labels& labels, uint64_t value) {
  return AddLine(name, labels, FormatValue(value), false);
}

Status Exposition::Add(std::string_view name, const Labels& labels, double value) {
  return AddLine(name, labels, FormatValue(value), std::isnan(value) || value < 0);
}

Status Exposition::Counter(std::string_view name, std::string_view help, const Labels& labels,
                           uint64_t value) {
  VF_RETURN_IF_ERROR(Declare(name, Type::kCounter, help));
  return Add(name, labels, value);
}

Status Exposition::Gauge(std::string_view name, std::string_view help, const Labels& labels,
                         double value) {
  VF_RETURN_IF_ERROR(Declare(name, Type::kGauge, help));
  return Add(name, labels, value);
}

Status Exposition::AddHistogram(std::string_view name, const Labels& labels,
                                const Histogram& histogram) {
  auto found = Find(name, true);
  if (!found.ok()) return found.status();
  Family& family = **found;
  auto key = FormatLabels(name, labels, "le", "+Inf");
  if (!key.ok()) return key.status();
  if (!family.series.insert(*key).second)
    return Status::Error("metric " + std::string(name) + ": series " + *key + " added twice");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= histogram.bounds().size(); ++i) {
    cumulative += histogram.counts()[i];
    const std::string le =
        i < histogram.bounds().size() ? FormatValue(histogram.bounds()[i]) : "+Inf";
    auto text = FormatLabels(name, labels, "le", le);
    if (!text.ok()) return text.status();
    family.lines.append(name).append("_bucket").append(*text).append(" ");
    family.lines.append(FormatValue(cumulative)).append("\n");
  }
  auto plain = FormatLabels(name, labels);
  if (!plain.ok()) return plain.status();
  family.lines.append(name).append("_sum").append(*plain).append(" ");
  family.lines.append(FormatValue(histogram.sum())).append("\n");
  family.lines.append(name).append("_count").append(*plain).append(" ");
  family.lines.append(FormatValue(histogram.count())).append("\n");
  samples_ += histogram.bounds().size() + 3;
  return Status::Ok();
}

std::string Exposition::Text() const {
  std::string text;
  for (const auto& [name, family] : families_) {
    // A family without samples says nothing (and some parsers refuse one).
    if (family.lines.empty()) continue;
    text += "# HELP " + name + " " + EscapeHelp(family.help) + "\n";
    text += "# TYPE " + name + " " + std::string(ToString(family.type)) + "\n";
    text += family.lines;
  }
  return text;
}

}  // namespace vfabric::metrics
