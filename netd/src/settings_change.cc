#include "settings_change.h"

#include <optional>
#include <sstream>
#include <vector>

namespace vfabric::netd {
namespace {

std::string OnOff(bool value) { return value ? "on" : "off"; }

// Centiseconds as seconds: "4s", "1.5s".
std::string SecondsText(uint32_t centiseconds) {
  std::ostringstream out;
  out << centiseconds / 100;
  // Streamed piece by piece: a one-character literal + a temporary string
  // trips GCC 12's bogus -Wrestrict at -O3 (PR 105329), the package's build.
  if (const uint32_t rest = centiseconds % 100; rest != 0) {
    out << ".";
    if (rest % 10 == 0) {
      out << rest / 10;
    } else {
      if (rest < 10) out << "0";
      out << rest;
    }
  }
  out << "s";
  return out.str();
}

class Changes {
 public:
  void Add(const char* name, const std::string& from, const std::string& to) {
    if (from != to) items_.push_back(std::string(name) + " " + from + " -> " + to);
  }
  std::string Join() const {
    std::string out;
    for (const std::string& item : items_) out += (out.empty() ? "" : ", ") + item;
    return out;
  }

 private:
  std::vector<std::string> items_;
};

template <typename T>
std::string Text(const std::optional<T>& value) {
  if (!value) return "-";
  if constexpr (std::is_same_v<T, bool>)
    return OnOff(*value);
  else
    return std::to_string(*value);
}

}  // namespace

std::string BridgeSettingsChange(const BridgeSettings& from, const BridgeSettings& to) {
  Changes changes;
  changes.Add("stp", OnOff(from.stp_enabled), OnOff(to.stp_enabled));
  changes.Add("priority", std::to_string(from.priority), std::to_string(to.priority));
  changes.Add("hello_time", SecondsText(from.hello_time_cs), SecondsText(to.hello_time_cs));
  changes.Add("forward_delay", SecondsText(from.forward_delay_cs),
              SecondsText(to.forward_delay_cs));
  changes.Add("max_age", SecondsText(from.max_age_cs), SecondsText(to.max_age_cs));
  changes.Add("ageing_time", SecondsText(from.ageing_time_cs), SecondsText(to.ageing_time_cs));
  changes.Add("vlan_filtering", OnOff(from.vlan_filtering), OnOff(to.vlan_filtering));
  // The default PVID means nothing while the bridge does not filter.
  if (from.vlan_filtering || to.vlan_filtering)
    changes.Add("default_pvid", std::to_string(from.default_pvid), std::to_string(to.default_pvid));
  return changes.Join();
}

std::string PortSettingsChange(const BridgePortSettings& from, const BridgePortSettings& to) {
  Changes changes;
  auto item = [&](const char* name, const auto& f, const auto& t) {
    if (t) changes.Add(name, Text(f), Text(t));
  };
  item("cost", from.cost, to.cost);
  item("priority", from.priority, to.priority);
  item("learning", from.learning, to.learning);
  item("flood", from.flood, to.flood);
  item("hairpin", from.hairpin, to.hairpin);
  item("isolated", from.isolated, to.isolated);
  item("bpdu_guard", from.bpdu_guard, to.bpdu_guard);
  item("root_block", from.root_block, to.root_block);
  return changes.Join();
}

}  // namespace vfabric::netd
