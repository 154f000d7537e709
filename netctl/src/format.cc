#include "vfabric/netctl/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

namespace vfabric::netctl {
namespace {

using nlohmann::json;

// The member `key` of `object`, or nullptr when `object` is not an object or
// the member is absent or null. Never throws (const operator[] would assert).
const json* Get(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& EmptyArray() {
  static const json* empty = new json(json::array());
  return *empty;
}

// The array member `key`, or an empty array.
const json& Array(const json& object, const char* key) {
  const json* value = Get(object, key);
  return value != nullptr && value->is_array() ? *value : EmptyArray();
}

// `result[key]` when that is an object, else `result` itself: tolerates a
// result that is the inner object rather than {"network": {...}}.
const json& Inner(const json& result, const char* key) {
  const json* value = Get(result, key);
  return value != nullptr && value->is_object() ? *value : result;
}

std::optional<bool> Bool(const json& object, const char* key) {
  const json* value = Get(object, key);
  if (value == nullptr || !value->is_boolean()) return std::nullopt;
  return value->get<bool>();
}

std::optional<long long> Integer(const json& object, const char* key) {
  const json* value = Get(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  if (value->is_number_float()) {
    double d = value->get<double>();
    if (!std::isfinite(d)) return std::nullopt;
    return std::llround(d);
  }
  if (value->is_number_unsigned()) return static_cast<long long>(value->get<unsigned long long>());
  return value->get<long long>();
}

// Any value as text: strings verbatim ("-" when empty), numbers as written,
// booleans as yes/no, anything else as compact JSON.
std::string ValueText(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    return text.empty() ? "-" : text;
  }
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Text(const json& object, const char* key) {
  const json* value = Get(object, key);
  return value == nullptr ? "-" : ValueText(*value);
}

std::string OnOff(const json& object, const char* key) {
  std::optional<bool> value = Bool(object, key);
  if (!value) return Text(object, key);
  return *value ? "on" : "off";
}

std::string YesNo(const json& object, const char* key) { return Text(object, key); }

// "N s" for a number of seconds; other values as text.
std::string Seconds(const json& object, const char* key) {
  const json* value = Get(object, key);
  if (value == nullptr) return "-";
  if (value->is_number()) return ValueText(*value) + " s";
  return ValueText(*value);
}

std::string Join(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// A key/value block: "key:" padded so the values line up.
class KeyValues {
 public:
  void Add(std::string key, std::string value) {
    lines_.emplace_back(std::move(key), std::move(value));
  }
  // A line printed as it is, in order with the pairs.
  void AddLine(std::string line) { lines_.emplace_back(std::nullopt, std::move(line)); }
  std::string ToString() const {
    size_t width = 0;
    for (const auto& [key, value] : lines_) {
      if (key) width = std::max(width, key->size() + 1);
    }
    std::string out;
    for (const auto& [key, value] : lines_) {
      if (key) {
        std::string label = *key + ":";
        label.resize(width, ' ');
        out += label + "  " + value;
      } else {
        out += value;
      }
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<std::pair<std::optional<std::string>, std::string>> lines_;
};

std::string PortState(const json& port) {
  if (Get(port, "waiting") != nullptr) return "waiting";
  std::optional<bool> present = Bool(port, "present");
  if (present && !*present) return "missing";
  std::optional<bool> oper_up = Bool(port, "oper_up");
  std::optional<bool> admin_up = Bool(port, "admin_up");
  if (oper_up) return *oper_up ? "up" : "down";
  if (admin_up && !*admin_up) return "down";
  return "-";
}

std::string PortFlags(const json& port) {
  static constexpr std::pair<const char*, const char*> kFlags[] = {
      {"learning", "learn"},    {"flood", "flood"},      {"hairpin", "hairpin"},
      {"isolated", "isolated"}, {"bpdu_guard", "guard"}, {"root_block", "rootblock"}};
  std::vector<std::string> set;
  for (const auto& [key, word] : kFlags) {
    if (Bool(port, key).value_or(false)) set.emplace_back(word);
  }
  return set.empty() ? "-" : Join(set, ",");
}

std::string AllowedText(const json& allowed) {
  if (allowed.is_array()) {
    std::vector<std::string> parts;
    for (const auto& item : allowed) parts.push_back(ValueText(item));
    return parts.empty() ? "-" : Join(parts, ",");
  }
  return ValueText(allowed);
}

std::string PortVlan(const json& port) {
  const json* vlan = Get(port, "vlan");
  if (vlan == nullptr) return "-";
  if (!vlan->is_object()) return ValueText(*vlan);
  std::string mode = Text(*vlan, "mode");
  if (mode == "access") return "access " + Text(*vlan, "pvid");
  if (mode == "trunk") {
    const json* allowed = Get(*vlan, "allowed");
    std::string text = "trunk " + (allowed ? AllowedText(*allowed) : std::string("-"));
    std::optional<long long> native = Integer(*vlan, "native");
    if (native && *native != 0) text += " native " + std::to_string(*native);
    return text;
  }
  if (mode == "none" || mode == "-") return "-";
  return mode;
}

std::string FdbFlags(const json& entry) {
  std::vector<std::string> flags;
  if (Bool(entry, "static").value_or(false)) flags.emplace_back("static");
  if (Bool(entry, "local").value_or(false)) flags.emplace_back("local");
  if (Bool(entry, "extern_learn").value_or(false)) flags.emplace_back("extern_learn");
  if (flags.empty()) flags.emplace_back("learned");
  return Join(flags, ",");
}

std::string FdbVlan(const json& entry) {
  std::optional<long long> vlan = Integer(entry, "vlan");
  if (vlan && *vlan == 0) return "-";
  return Text(entry, "vlan");
}

std::string Age(const json& entry) {
  const json* age = Get(entry, "age");
  if (age == nullptr) return "-";
  if (age->is_number()) {
    std::optional<long long> seconds = Integer(entry, "age");
    return seconds ? std::to_string(*seconds) + "s" : "-";
  }
  return ValueText(*age);
}

Table PortTable(bool with_network) {
  std::vector<std::string> headers = {"PORT", "KIND", "STATE", "STP-STATE",
                                      "COST", "PRIO", "FLAGS", "VLAN"};
  if (with_network) headers.insert(headers.begin(), "NETWORK");
  return Table(std::move(headers));
}

void AddPortRow(Table& table, const json& port, bool with_network) {
  std::vector<std::string> row = {
      Text(port, "name"), Text(port, "kind"),     PortState(port), Text(port, "stp_state"),
      Text(port, "cost"), Text(port, "priority"), PortFlags(port), PortVlan(port)};
  if (with_network) row.insert(row.begin(), Text(port, "network"));
  table.AddRow(std::move(row));
}

std::string FdbTable(const json& entries) {
  bool with_age = false;
  for (const auto& entry : entries) with_age = with_age || Get(entry, "age") != nullptr;
  std::vector<std::string> headers = {"MAC", "VLAN", "PORT", "FLAGS"};
  if (with_age) headers.emplace_back("AGE");
  Table table(std::move(headers));
  for (const auto& entry : entries) {
    std::vector<std::string> row = {Text(entry, "mac"), FdbVlan(entry), Text(entry, "port"),
                                    FdbFlags(entry)};
    if (with_age) row.push_back(Age(entry));
    table.AddRow(std::move(row));
  }
  return table.ToString();
}

std::string PortId(const json& port) {
  const json* id = Get(port, "port_id");
  if (id != nullptr && id->is_number_integer()) {
    std::optional<long long> value = Integer(port, "port_id");
    if (value && *value >= 0 && *value <= 0xffff) {
      char text[16];
      std::snprintf(text, sizeof text, "0x%04llx", *value);
      return text;
    }
  }
  return Text(port, "port_id");
}

std::string OperationsText(const json& operations) {
  std::string out;
  for (const auto& op : operations) {
    const json* description = Get(op, "description");
    if (description != nullptr && description->is_string() &&
        !description->get_ref<const std::string&>().empty()) {
      out += description->get_ref<const std::string&>();
    } else {
      out += Text(op, "op") + " " + Text(op, "object");
    }
    out += '\n';
  }
  return out;
}

// A guest's NICs: "nic0:lab/vm1-eth0,nic1:lab/vm1-eth1", or "-".
std::string VmNics(const json& vm) {
  std::vector<std::string> parts;
  for (const auto& nic : Array(vm, "nics")) {
    parts.push_back(Text(nic, "id") + ":" + Text(nic, "network") + "/" + Text(nic, "port"));
  }
  return parts.empty() ? "-" : Join(parts, ",");
}

std::string VmRestart(const json& vm) {
  std::string text = Text(vm, "restart");
  std::optional<long long> restarts = Integer(vm, "restarts");
  if (restarts && *restarts > 0) {
    // Appended piece by piece: "(" + std::to_string(...) trips GCC 12's bogus
    // -Wrestrict at -O3 (GCC PR 105329).
    text += '(';
    text += std::to_string(*restarts);
    text += ')';
  }
  return text;
}

// Whether LAST-EXIT and ERROR describe the guest now: it is not running (or
// on its way). An unknown state counts as not live, to show what netd says.
bool VmIsLive(const json& vm) {
  std::string state = Text(vm, "state");
  return state == "starting" || state == "running" || state == "stopping";
}

// "NAME: STATE", then " (ACCEL)" when `with_accel` and known, then ": ERROR"
// when there is one and the guest is not live.
std::string VmSummary(const json& result, bool with_accel) {
  const json& vm = Inner(result, "vm");
  std::string line = Text(vm, "name") + ": " + Text(vm, "state");
  std::string accel = Text(vm, "accel");
  if (with_accel && accel != "-") line += " (" + accel + ")";
  // As in vm list, an error describes a guest only once it is not live.
  const json* error = Get(vm, "error");
  if (!VmIsLive(vm) && error != nullptr && ValueText(*error) != "-") {
    line += ": " + ValueText(*error);
  }
  return line + "\n";
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::ToString() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  measure(headers_);
  for (const auto& row : rows_) measure(row);
  auto print = [&](const std::vector<std::string>& row, std::string& out) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  std::string out;
  print(headers_, out);
  for (const auto& row : rows_) print(row, out);
  return out;
}

std::string FormatNetworkList(const json& result) {
  // SOURCE only from a netd that says where networks come from.
  bool sources = false;
  for (const auto& network : Array(result, "networks"))
    sources |= Get(network, "source") != nullptr;
  std::vector<std::string> header = {"NAME", "DATAPATH", "BRIDGE", "STATE", "PORTS", "STP"};
  if (sources) header.push_back("SOURCE");
  Table table(header);
  for (const auto& network : Array(result, "networks")) {
    std::vector<std::string> row = {Text(network, "name"),
                                    Text(network, "datapath"),
                                    Text(network, "bridge"),
                                    Text(network, "state"),
                                    Text(network, "ports_up") + "/" + Text(network, "ports"),
                                    OnOff(network, "stp")};
    if (sources) {
      std::string source = Text(network, "source");
      if (!Bool(network, "saved").value_or(true))
        source = "applied, not saved";
      else if (Bool(network, "applied").value_or(false))
        source = "applied: " + source;
      row.push_back(source);
    }
    table.AddRow(row);
  }
  return table.ToString();
}

std::string FormatNetworkDelete(const json& result) {
  std::string text = OperationsText(Array(result, "operations"));
  text += "deleted network " + Text(result, "network");
  if (Get(result, "source") != nullptr && !Get(result, "source")->is_null())
    text += (Bool(result, "file_removed").value_or(false) ? " (removed " : " (edited ") +
            Text(result, "source") + ")";
  return text + "\n";
}

namespace {

// Seconds as "3d04h05m06s", leading zero units left out ("42s", "5m00s").
std::string DurationText(long long seconds) {
  if (seconds < 0) seconds = 0;
  const long long parts[] = {seconds / 86400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60};
  const char* units[] = {"d", "h", "m", "s"};
  std::string out;
  for (int i = 0; i < 4; ++i) {
    if (out.empty() && parts[i] == 0 && i < 3) continue;
    std::string number = std::to_string(parts[i]);
    if (!out.empty() && number.size() < 2) number = "0" + number;
    out += number + units[i];
  }
  return out;
}

}  // namespace

std::string FormatStatus(const json& result) {
  KeyValues block;
  std::string daemon = Text(result, "server") + " " + Text(result, "version") + " (protocol " +
                       Text(result, "protocol") + ")";
  block.Add("netd", daemon.substr(daemon.find(' ') + 1));
  block.Add("pid", Text(result, "pid"));
  const std::optional<long long> uptime = Integer(result, "uptime_seconds");
  block.Add("uptime", uptime ? DurationText(*uptime) : "-");
  std::vector<std::string> config;
  for (const auto& path : Array(result, "config")) config.push_back(ValueText(path));
  block.Add("config", config.empty() ? "-" : Join(config, ", "));
  const json& networks = Array(result, "networks");
  std::vector<std::string> counts;
  for (const char* state : {"ok", "drifted", "waiting", "missing"}) {
    const json& c = Inner(result, "counts");
    if (Integer(c, state).value_or(0) != 0) counts.push_back(Text(c, state) + " " + state);
  }
  block.Add("networks", std::to_string(networks.size()) +
                            (counts.empty() ? "" : " (" + Join(counts, ", ") + ")"));
  if (Get(result, "error")) block.Add("error", Text(result, "error"));
  Table table({"NAME", "DATAPATH", "STATE", "PENDING", "SOURCE"});
  for (const auto& network : networks) {
    std::string source = Text(network, "source");
    if (Bool(network, "applied").value_or(false)) source = "applied: " + source;
    std::string state = Text(network, "state");
    std::vector<std::string> waiting;
    for (const auto& port : Array(network, "waiting")) waiting.push_back(ValueText(port));
    if (!waiting.empty()) state += " (" + Join(waiting, ",") + ")";
    table.AddRow({Text(network, "name"), Text(network, "datapath"), state, Text(network, "pending"),
                  source});
  }
  return block.ToString() + "\n" + table.ToString();
}

std::string FormatNetworkShow(const json& result) {
  const json& network = Inner(result, "network");
  const json* settings_value = Get(network, "settings");
  const json& settings =
      settings_value != nullptr && settings_value->is_object() ? *settings_value : network;
  KeyValues block;
  block.Add("name", Text(network, "name"));
  block.Add("datapath", Text(network, "datapath"));
  block.Add("bridge", Text(network, "bridge"));
  block.Add("state", Text(network, "state"));
  block.Add("ifindex", Text(network, "ifindex"));
  block.Add("mac", Text(network, "mac"));
  std::optional<bool> admin_up = Bool(network, "admin_up");
  block.Add("admin", admin_up ? (*admin_up ? "up" : "down") : Text(network, "admin_up"));
  // NetworkDetail's "ports" is the port array (the summary's count).
  const json* ports_value = Get(network, "ports");
  std::string total = ports_value != nullptr && ports_value->is_array()
                          ? std::to_string(ports_value->size())
                          : Text(network, "ports");
  block.Add("ports up", Text(network, "ports_up") + "/" + total);
  block.Add("stp",
            Get(settings, "stp_enabled") ? OnOff(settings, "stp_enabled") : OnOff(network, "stp"));
  if (Get(settings, "stp_mode")) block.Add("stp mode", Text(settings, "stp_mode"));
  block.Add("priority", Text(settings, "priority"));
  block.Add("hello time", Seconds(settings, "hello_time"));
  block.Add("forward delay", Seconds(settings, "forward_delay"));
  block.Add("max age", Seconds(settings, "max_age"));
  block.Add("ageing time", Seconds(settings, "ageing_time"));
  block.Add("vlan filtering", OnOff(settings, "vlan_filtering"));
  block.Add("default pvid", Text(settings, "default_pvid"));

  Table ports = PortTable(/*with_network=*/false);
  for (const auto& port : Array(network, "ports")) AddPortRow(ports, port, false);

  // netd's own additions: what reconciling would still do, and why it cannot.
  const json* error = Get(network, "error");
  if (error != nullptr) block.Add("error", ValueText(*error));

  std::string out = block.ToString();
  const json& pending = Array(network, "pending");
  if (!pending.empty()) {
    out += "\nPending changes:\n";
    for (const auto& item : pending) out += "  " + ValueText(item) + "\n";
  }
  const json& waiting = Array(network, "waiting");
  if (!waiting.empty()) {
    out += "\nWaiting ports:\n";
    for (const auto& item : waiting)
      out += "  " + Text(item, "port") + ": " + Text(item, "reason") + "\n";
  }
  out += "\nPorts:\n";
  out += ports.ToString();
  const json& mirrors = Array(network, "mirrors");
  if (!mirrors.empty()) {
    Table table({"MIRROR", "SRC", "DST", "VLANS", "OUTPUT"});
    const auto names = [](const json& m, const char* key, const char* none) {
      std::vector<std::string> list;
      for (const auto& n : Array(m, key)) list.push_back(ValueText(n));
      return list.empty() ? std::string(none) : Join(list, ",");
    };
    for (const auto& m : mirrors) {
      const bool every =
          Bool(m, "select_all").value_or(false) ||
          (Array(m, "select_src_port").empty() && Array(m, "select_dst_port").empty());
      table.AddRow({Text(m, "name"), every ? "all" : names(m, "select_src_port", "-"),
                    every ? "all" : names(m, "select_dst_port", "-"),
                    Get(m, "select_vlan") && !Get(m, "select_vlan")->is_null()
                        ? Text(m, "select_vlan")
                        : "all",
                    Text(m, "output_port")});
    }
    out += "\nMirrors:\n";
    out += table.ToString();
  }
  out += "\nStatic FDB:\n";
  out += FdbTable(Array(network, "static_fdb"));
  return out;
}

std::string FormatPortList(const json& result) {
  Table table = PortTable(/*with_network=*/true);
  for (const auto& port : Array(result, "ports")) AddPortRow(table, port, true);
  return table.ToString();
}

std::string FormatFdbShow(const json& result) { return FdbTable(Array(result, "entries")); }

std::string FormatPortStats(const json& result) {
  Table table(
      {"NETWORK", "PORT", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPS", "DROP-REASONS"});
  for (const auto& port : Array(result, "ports")) {
    const json* counters = Get(port, "counters");
    const json& c = counters != nullptr ? *counters : EmptyArray();
    std::vector<std::string> reasons;
    if (const json* drops = Get(c, "drops"); drops != nullptr && drops->is_object()) {
      for (const auto& [reason, count] : drops->items()) {
        if (count.is_number() && count != 0) reasons.push_back(reason + "=" + ValueText(count));
      }
    }
    table.AddRow({Text(port, "network"), Text(port, "port"), Text(c, "rx_packets"),
                  Text(c, "rx_bytes"), Text(c, "tx_packets"), Text(c, "tx_bytes"),
                  Text(c, "drops_total"), reasons.empty() ? "-" : Join(reasons, ",")});
  }
  return table.ToString();
}

std::string FormatFdbAdd(const json& result) {
  std::string out;
  for (const auto& entry : Array(result, "entries")) {
    if (!Bool(entry, "static").value_or(false)) continue;
    out += "added static " + Text(entry, "mac") + " on " + Text(entry, "port") + " (vlan " +
           FdbVlan(entry) + ")\n";
  }
  return out.empty() ? "added\n" : out;
}

// "deleted static MAC on PORT (vlan V)" per entry removed.
std::string FormatFdbDel(const json& result) {
  std::string out;
  for (const auto& entry : Array(result, "removed"))
    out += "deleted static " + Text(entry, "mac") + " on " + Text(entry, "port") + " (vlan " +
           FdbVlan(entry) + ")\n";
  return out.empty() ? "deleted static FDB entry from network " + Text(result, "network") + "\n"
                     : out;
}

// The count, then the entries removed (MAC VLAN PORT).
std::string FormatFdbFlush(const json& result) {
  const json& removed = Array(result, "removed");
  std::string out = "flushed " + std::to_string(removed.size()) + " learned FDB entr" +
                    (removed.size() == 1 ? "y" : "ies") + " of network " + Text(result, "network") +
                    "\n";
  if (removed.empty()) return out;
  Table table({"MAC", "VLAN", "PORT"});
  for (const auto& entry : removed)
    table.AddRow({Text(entry, "mac"), FdbVlan(entry), Text(entry, "port")});
  return out + table.ToString();
}

std::string FormatStpShow(const json& result) {
  const json& stp = Inner(result, "stp");
  KeyValues block;
  block.Add("stp", Get(stp, "enabled")
                       ? (Bool(stp, "enabled").value_or(false) ? "enabled" : "disabled")
                       : "-");
  if (Get(stp, "mode")) block.Add("mode", Text(stp, "mode"));
  block.Add("bridge id", Text(stp, "bridge_id"));
  block.Add("root id", Text(stp, "root_id"));
  // 802.1D numbers ports from 1: a root port of 0 is the kernel's "none".
  std::optional<long long> root_port = Integer(stp, "root_port");
  std::string root_port_text = root_port && *root_port == 0 ? "-" : Text(stp, "root_port");
  if (const json* name = Get(stp, "root_port_name"); name && name->is_string())
    root_port_text = name->get<std::string>() + " (" + root_port_text + ")";
  block.Add("root port", root_port_text);
  block.Add("root path cost", Text(stp, "root_path_cost"));
  if (Bool(stp, "is_root").value_or(false)) block.AddLine("this bridge is root");
  block.Add("topology change", YesNo(stp, "topology_change"));
  if (Get(stp, "topology_change_count")) {
    block.Add("topology changes", Text(stp, "topology_change_count"));
    block.Add("last topology change", Get(stp, "time_since_topology_change") &&
                                              !Get(stp, "time_since_topology_change")->is_null()
                                          ? Seconds(stp, "time_since_topology_change") + " ago"
                                          : "-");
  }
  block.Add("hello time", Seconds(stp, "hello_time"));
  block.Add("forward delay", Seconds(stp, "forward_delay"));
  block.Add("max age", Seconds(stp, "max_age"));
  block.Add("source", Text(stp, "source"));
  if (std::optional<long long> ignored = Integer(stp, "bpdus_ignored"); ignored && *ignored > 0) {
    block.Add("bpdus ignored", Text(stp, "bpdus_ignored"));
    if (!Bool(stp, "enabled").value_or(true))
      block.AddLine(
          "warning: a neighbour sends BPDUs and STP is off here: a loop through this "
          "switch would not be broken");
  }

  Table ports({"PORT", "ID", "ROLE", "STATE", "COST", "DESIGNATED-BRIDGE", "PROTOCOL", "EDGE"});
  for (const auto& port : Array(stp, "ports")) {
    ports.AddRow({Text(port, "name"), PortId(port), Text(port, "role"), Text(port, "state"),
                  Text(port, "cost"), Text(port, "designated_bridge"), Text(port, "protocol"),
                  YesNo(port, "edge")});
  }
  return block.ToString() + "\n" + ports.ToString();
}

std::string FormatVlanShow(const json& result) {
  const json& vlan = Inner(result, "vlan");
  if (!Bool(vlan, "supported").value_or(true)) {
    const json* reason = Get(vlan, "reason");
    return "vlan filtering is not supported: " +
           (reason != nullptr ? ValueText(*reason) : std::string("no reason given")) + "\n";
  }
  Table table({"PORT", "VLAN", "PVID", "UNTAGGED"});
  for (const auto& port : Array(vlan, "ports")) {
    for (const auto& entry : Array(port, "vlans")) {
      table.AddRow(
          {Text(port, "port"), Text(entry, "vid"), YesNo(entry, "pvid"), YesNo(entry, "untagged")});
    }
  }
  return table.ToString();
}

std::string FormatVmList(const json& result) {
  Table table({"NAME", "STATE", "PID", "ACCEL", "RESTART", "NICS", "LAST-EXIT", "ERROR"});
  for (const auto& vm : Array(result, "vms")) {
    bool live = VmIsLive(vm);
    // A guest a restarted netd took over from its predecessor.
    std::string state = Text(vm, "state");
    if (Bool(vm, "adopted").value_or(false)) state += " (adopted)";
    table.AddRow({Text(vm, "name"), state, Text(vm, "pid"), Text(vm, "accel"), VmRestart(vm),
                  VmNics(vm), live ? "-" : Text(vm, "last_exit"), live ? "-" : Text(vm, "error")});
  }
  return table.ToString();
}

std::string FormatVmStart(const json& result) { return VmSummary(result, /*with_accel=*/true); }

std::string FormatVmStop(const json& result) { return VmSummary(result, /*with_accel=*/false); }

std::string FormatConsoleLog(const json& result) {
  const json* text = Get(result, "text");
  if (text == nullptr) return "";
  if (text->is_string()) return text->get<std::string>();
  return ValueText(*text) + "\n";
}

// A line that says the guest's record (guest.json) is not saved, or "".
std::string VmRecordWarning(const json& result) {
  const json* vm = Get(result, "vm");
  if (vm == nullptr) return "";
  const json* error = Get(*vm, "record_error");
  if (error == nullptr || !error->is_string() || error->get<std::string>().empty()) return "";
  return "warning: " + error->get<std::string>() +
         " (netd retries; until then a restarted netd does not know this change)\n";
}

std::string FormatAttach(const json& result) {
  const json& nic = Inner(result, "nic");
  return "attached NIC " + Text(nic, "id") + " (port " + Text(nic, "port") + ", mac " +
         Text(nic, "mac") + ") to network " + Text(nic, "network") + "\n" + VmRecordWarning(result);
}

std::string FormatDetach(const json& result, const std::string& vm, const std::string& nic) {
  const json* status = Get(result, "vm");
  std::string name = status != nullptr ? Text(*status, "name") : "-";
  if (name == "-") name = vm;
  return "detached " + nic + " from " + name + "\n" + VmRecordWarning(result);
}

std::string FormatPlan(const json& result) {
  const json& operations = Array(result, "operations");
  if (operations.empty()) return "no changes\n";
  return OperationsText(operations);
}

std::string FormatApply(const json& result) {
  const json& operations = Array(result, "operations");
  std::optional<long long> changed = Integer(result, "changed");
  long long count = changed.value_or(static_cast<long long>(operations.size()));
  if (operations.empty() && count == 0) return "no changes\n";
  return OperationsText(operations) + "applied " + std::to_string(count) +
         (count == 1 ? " change\n" : " changes\n");
}

std::string FormatDiagnostic(const json& diagnostic) {
  auto field = [&](const char* key) {
    const json* value = Get(diagnostic, key);
    if (value == nullptr) return std::string();
    return value->is_string() ? value->get<std::string>() : ValueText(*value);
  };
  return field("file") + ":" + field("line") + ":" + field("column") + ": " + field("pointer") +
         ": " + field("message");
}

std::string FormatJson(const json& value) {
  return value.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace vfabric::netctl
