#include "vfabric/netctl/cli.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <istream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <span>
#include <string_view>
#include <utility>

#include "vfabric/common/log.h"
#include "vfabric/common/mac_address.h"
#include "vfabric/netctl/capture.h"
#include "vfabric/netctl/client.h"
#include "vfabric/netctl/format.h"
#include "vfabric/netctl/graph.h"
#include "vfabric/netctl/pretty_json.h"
#include "vfabric/protocol/protocol.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
namespace verb = protocol::verb;

// Topology files sent to plan/apply are read whole; past this, give up.
constexpr size_t kMaxTopologyBytes = size_t{64} << 20;
constexpr double kMaxTimeoutSeconds = 24 * 3600;

constexpr const char* kUsage = R"(Usage: netctl [OPTIONS] COMMAND [ARGS...]

The vfabric command line: checks topology files and asks netd about networks
and guests.

Commands:
  validate FILE...       check topology files (or directories of *.json) offline;
                         a FILE of - is standard input (also for plan and apply)
  plan FILE...           show what 'apply' would change on this host
  apply FILE...          make this host's networks match FILE...
  status                 show netd: version, uptime, config, each network's state
  network list           list networks ('net' for network, 'ls' for list)
  network show NAME      show a network: settings, ports, static FDB entries
  network delete NAME    remove a network from the host and from the file that keeps it
  port list [NETWORK]    list the ports of every network, or of NETWORK
  port stats NETWORK [PORT]
                         show per-port counters (packets, bytes, drops by reason)
  port show NETWORK PORT [--qemu|--libvirt]
                         show how a guest plugs into PORT: QEMU's -netdev/-device
                         arguments, libvirt's <interface> element
  fdb show NETWORK       show the forwarding database of NETWORK
  fdb add NETWORK MAC PORT [--vlan VID]
                         add a static FDB entry
  fdb del NETWORK MAC [--vlan VID]
                         delete a static FDB entry
  fdb flush NETWORK [--port PORT] [--vlan VID]
                         flush learned FDB entries
  stp show NETWORK       show the spanning tree state of NETWORK
  vlan show NETWORK      show the VLANs of NETWORK's ports
  vm list                list guests: state, pid, accelerator, restart policy, NICs
  vm start NAME          start guest NAME
  vm stop NAME           stop guest NAME (powers it down; killed after a timeout)
  vm console-log NAME [--bytes N]
                         print the end of NAME's serial console log (default 65536 bytes)
  attach VM NETWORK [--mac MAC] [--vlan VID]
                         hot-plug a new NIC into guest VM on NETWORK
  detach VM NIC          unplug NIC (an id such as nic1, or its port name) from VM
  log-level [LEVEL]      show netd's log level, or set it: error, warning, info, debug
  graph [NETWORK] [--format dot|svg|png]
                         draw the networks, ports, guests, VLANs and STP roles with
                         Graphviz (dot text, or svg/png through 'dot')
  capture NETWORK PORT [-w FILE] [-c COUNT] [--direction in|out|both]
                         capture PORT's frames: as the userspace switch sees them
                         (pcap with -w, - for stdout), or tcpdump on a kernel network
  help [COMMAND]         show this help, or a command's (also: netctl COMMAND --help)

Options (before or after the command):
  --socket PATH          netd's control socket
                         (default: $VFABRIC_SOCKET, else /run/vfabric/netd.sock)
  -j, --json             print netd's answer ("result") as JSON, indented two spaces;
                         on an error, print the error object ({"code","message",...})
  --timeout SECONDS      give up waiting for netd after SECONDS (default 10)
  -h, --help             show help
  --version              show netctl's version

Tables have a header row; an empty table is the header alone. A mistyped
command gets a suggestion ("did you mean 'network'?").
Exit status: 0 success; 1 netd rejected the request, it failed, the topology
has errors, or netd is unreachable; 2 usage error.
)";

struct CommandSpec {
  const char* name;
  const char* sub;  // "" for commands without a sub-command
  int min_operands;
  int max_operands;          // -1: no limit
  const char* operands;      // as shown in usage
  const char* options = "";  // the command's own options, as shown in usage
};

constexpr CommandSpec kCommands[] = {
    {"validate", "", 1, -1, "FILE..."},
    {"plan", "", 1, -1, "FILE..."},
    {"apply", "", 1, -1, "FILE..."},
    {"status", "", 0, 0, ""},
    {"network", "list", 0, 0, ""},
    {"network", "show", 1, 1, "NAME"},
    {"network", "delete", 1, 1, "NAME"},
    {"port", "list", 0, 1, "[NETWORK]"},
    {"port", "stats", 1, 2, "NETWORK [PORT]"},
    {"port", "show", 2, 2, "NETWORK PORT", "[--qemu|--libvirt]"},
    {"fdb", "show", 1, 1, "NETWORK"},
    {"fdb", "add", 3, 3, "NETWORK MAC PORT", "[--vlan VID]"},
    {"fdb", "del", 2, 2, "NETWORK MAC", "[--vlan VID]"},
    {"fdb", "flush", 1, 1, "NETWORK", "[--port PORT] [--vlan VID]"},
    {"stp", "show", 1, 1, "NETWORK"},
    {"vlan", "show", 1, 1, "NETWORK"},
    {"vm", "list", 0, 0, ""},
    {"vm", "start", 1, 1, "NAME"},
    {"vm", "stop", 1, 1, "NAME"},
    {"vm", "console-log", 1, 1, "NAME", "[--bytes N]"},
    {"attach", "", 2, 2, "VM NETWORK", "[--mac MAC] [--vlan VID]"},
    {"detach", "", 2, 2, "VM NIC"},
    {"log-level", "", 0, 1, "[LEVEL]"},
    {"graph", "", 0, 1, "[NETWORK]", "[--format dot|svg|png]"},
    {"capture", "", 2, 2, "NETWORK PORT", "[-w FILE] [-c COUNT] [--direction in|out|both]"},
};

// What operators type for a command or a sub-command: "net ls" is "network
// list". Only ever added to; each alias names one command.
constexpr std::pair<const char*, const char*> kCommandAliases[] = {{"net", "network"}};
constexpr std::pair<const char*, const char*> kSubCommandAliases[] = {{"ls", "list"}};

std::string Unalias(const std::string& word,
                    std::span<const std::pair<const char*, const char*>> aliases) {
  for (const auto& [alias, name] : aliases)
    if (word == alias) return name;
  return word;
}

bool KnownCommand(std::string_view name) {
  return std::any_of(std::begin(kCommands), std::end(kCommands),
                     [&](const CommandSpec& spec) { return name == spec.name; });
}

bool HasSubCommands(std::string_view name) {
  return std::any_of(std::begin(kCommands), std::end(kCommands), [&](const CommandSpec& spec) {
    return name == spec.name && *spec.sub != '\0';
  });
}

const CommandSpec* FindSpec(std::string_view name, std::string_view sub) {
  for (const auto& spec : kCommands) {
    if (name == spec.name && sub == spec.sub) return &spec;
  }
  return nullptr;
}

// "netctl fdb show NETWORK"
std::string Synopsis(const CommandSpec& spec) {
  std::string text = std::string("netctl ") + spec.name;
  if (*spec.sub != '\0') text += std::string(" ") + spec.sub;
  if (*spec.operands != '\0') text += std::string(" ") + spec.operands;
  if (*spec.options != '\0') text += std::string(" ") + spec.options;
  return text;
}

// "Usage: netctl network list | netctl network show NAME (see 'netctl help network')"
std::string CommandHint(std::string_view name) {
  std::string text = "Usage: ";
  bool first = true;
  for (const auto& spec : kCommands) {
    if (name != spec.name) continue;
    if (!first) text += " | ";
    text += Synopsis(spec);
    first = false;
  }
  return text + " (see 'netctl help " + std::string(name) + "')";
}

// "; did you mean 'network'?" when `word` is a likely typo of a command (or,
// with `command`, of one of its sub-commands), else "".
std::string DidYouMean(std::string_view word, std::string_view command = {}) {
  std::vector<std::string_view> candidates;
  if (command.empty()) candidates.push_back("help");
  for (const auto& spec : kCommands) {
    std::string_view candidate = command.empty() ? spec.name : spec.sub;
    if (!command.empty() && command != spec.name) continue;
    if (std::find(candidates.begin(), candidates.end(), candidate) == candidates.end())
      candidates.push_back(candidate);
  }
  const std::string suggestion = topology::SuggestName(word, candidates);
  return suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?";
}

std::string SubCommandList(std::string_view name) {
  std::string text;
  for (const auto& spec : kCommands) {
    if (name != spec.name) continue;
    if (!text.empty()) text += ", ";
    text += spec.sub;
  }
  return text;
}

constexpr const char* kGlobalHint = "Try 'netctl --help'.";

bool ParseTimeout(const std::string& text, std::chrono::milliseconds* timeout) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double seconds = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || *end != '\0' || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > kMaxTimeoutSeconds) {
    return false;
  }
  *timeout = std::chrono::milliseconds(std::max<long long>(1, std::llround(seconds * 1000)));
  return true;
}

// A decimal integer: digits only (no sign, no spaces), within long long.
std::optional<long long> ParseDecimal(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// A command option (--mac, --vlan, --bytes): the spelling it was given in and
// its value; checked once the command is known.
struct CommandOption {
  const char* name;                        // "--mac"
  std::vector<std::string_view> commands;  // the commands it belongs to: "attach", "fdb add"
  const char* argument;                    // as in "option '--mac' needs a MAC"
  std::optional<std::string> value;
};

// The name standard input's topology goes by in diagnostics and requests.
constexpr const char* kStdinName = "<stdin>";

// Standard input, whole, at most kMaxTopologyBytes.
Result<std::string> ReadStdin(std::istream& in) {
  std::string text;
  char chunk[65536];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxTopologyBytes) {
      return Status::Error("cannot read standard input: larger than " +
                               std::to_string(kMaxTopologyBytes >> 20) + " MiB",
                           EFBIG);
    }
  }
  if (in.bad()) return Status::Error("cannot read standard input", EIO);
  return text;
}

// The files plan/apply (and validate with "-") send, as [{"name","text"}], in
// the operands' order: each path read by the library's one rule for
// configuration paths (topology::ReadTopologyFiles, as netd and `netctl
// validate` read them); "-" is standard input, named "<stdin>". On failure,
// every line to print.
Result<json> ReadTopologyFiles(const std::vector<std::string>& paths, std::istream& in,
                               std::vector<std::string>* problems) {
  json files = json::array();
  size_t total = 0;
  bool failed = false;
  auto add = [&](std::string name, std::string text) {
    total += text.size();
    files.push_back({{"name", std::move(name)}, {"text", std::move(text)}});
  };
  for (const std::string& path : paths) {
    if (path == "-") {
      Result<std::string> text = ReadStdin(in);
      if (!text.ok()) {
        problems->push_back(text.status().message());
        failed = true;
        continue;
      }
      add(kStdinName, std::move(*text));
      continue;
    }
    topology::ReadResult read = topology::ReadTopologyFiles({path});
    for (const topology::Diagnostic& d : read.errors) problems->push_back(d.ToString());
    if (!read.ok()) {
      failed = true;
      continue;
    }
    // A directory without *.json files: nothing to send.
    if (read.files.empty()) problems->push_back(path + ": no *.json files in this directory");
    for (topology::SourceFile& file : read.files) add(std::move(file.name), std::move(file.text));
  }
  if (failed) return Status::Error("cannot read the topology files", EINVAL);
  if (files.empty()) return Status::Error("no topology files", ENOENT);
  problems->clear();  // a directory without files next to others that have some is fine
  if (total > kMaxTopologyBytes) {
    problems->push_back("topology files larger than " + std::to_string(kMaxTopologyBytes >> 20) +
                        " MiB in all");
    return Status::Error("topology files too large", EFBIG);
  }
  return files;
}

class Dispatcher {
 public:
  Dispatcher(const CommandLine& command_line, std::istream& in, std::ostream& out,
             std::ostream& err)
      : cl_(command_line), in_(in), out_(out), err_(err) {}

  int Run() {
    const std::string& command = cl_.command;
    const std::string& sub = cl_.sub;
    if (command == "validate") return Validate();
    if (command == "plan" || command == "apply") {
      std::vector<std::string> problems;
      Result<json> files = ReadTopologyFiles(cl_.operands, in_, &problems);
      if (!files.ok()) {
        for (const std::string& problem : problems) err_ << "netctl: " << problem << "\n";
        return 1;
      }
      json args = {{"files", std::move(*files)}};
      return Call(command == "plan" ? verb::kPlan : verb::kApply, args,
                  command == "plan" ? FormatPlan : FormatApply);
    }
    if (command == "status") return Call(verb::kStatus, nullptr, FormatStatus);
    if (command == "network" && sub == "list")
      return Call(verb::kNetworkList, nullptr, FormatNetworkList);
    if (command == "network" && sub == "show") {
      return Call(verb::kNetworkShow, {{"name", cl_.operands[0]}}, FormatNetworkShow);
    }
    if (command == "network" && sub == "delete")
      return Call(verb::kNetworkDelete, {{"name", cl_.operands[0]}}, FormatNetworkDelete);
    if (command == "port" && sub == "list") {
      json args = json::object();
      if (!cl_.operands.empty()) args["network"] = cl_.operands[0];
      return Call(verb::kPortList, args, FormatPortList);
    }
    if (command == "port" && sub == "stats") {
      json args = {{"network", cl_.operands[0]}};
      if (cl_.operands.size() > 1) args["port"] = cl_.operands[1];
      return Call(verb::kPortStats, args, FormatPortStats);
    }
    if (command == "port" && sub == "show") {
      json args = {{"network", cl_.operands[0]}, {"port", cl_.operands[1]}};
      if (!cl_.guest_form.empty()) args["guest"] = cl_.guest_form;
      const std::string form = cl_.guest_form;
      return Call(verb::kPortShow, args, [&](const json& result) {
        // The form alone goes to stdout, to be pasted; who holds the port, to stderr.
        if (!form.empty() && result.contains("vm") && result["vm"].is_string())
          err_ << "netctl: note: port " << cl_.operands[1] << " is a NIC of vm "
               << result["vm"].get<std::string>() << ", which netd runs: its QEMU holds the tap\n";
        return FormatPortShow(result, form);
      });
    }
    if (command == "fdb" && (sub == "add" || sub == "del" || sub == "flush")) {
      json args = {{"network", cl_.operands[0]}};
      if (sub != "flush") args["mac"] = cl_.operands[1];
      if (sub == "add") args["port"] = cl_.operands[2];
      if (cl_.port) args["port"] = *cl_.port;
      if (cl_.vlan) args["vlan"] = *cl_.vlan;
      const Formatter format = sub == "add"   ? FormatFdbAdd
                               : sub == "del" ? FormatFdbDel
                                              : FormatFdbFlush;
      return Call(sub == "add"   ? verb::kFdbAdd
                  : sub == "del" ? verb::kFdbDel
                                 : verb::kFdbFlush,
                  args, format);
    }
    if (sub == "show" && (command == "fdb" || command == "stp" || command == "vlan")) {
      auto format = command == "fdb"   ? FormatFdbShow
                    : command == "stp" ? FormatStpShow
                                       : FormatVlanShow;
      return Call(command == "fdb"   ? verb::kFdbShow
                  : command == "stp" ? verb::kStpShow
                                     : verb::kVlanShow,
                  {{"network", cl_.operands[0]}}, format);
    }
    if (command == "vm" && sub == "list") return Call(verb::kVmList, nullptr, FormatVmList);
    if (command == "vm" && sub == "start") {
      return Call(verb::kVmStart, {{"name", cl_.operands[0]}}, FormatVmStart);
    }
    if (command == "vm" && sub == "stop") {
      return Call(verb::kVmStop, {{"name", cl_.operands[0]}}, FormatVmStop);
    }
    if (command == "vm" && sub == "console-log") {
      json args = {{"name", cl_.operands[0]}};
      if (cl_.bytes) args["bytes"] = *cl_.bytes;
      return Call(verb::kVmConsoleLog, args, FormatConsoleLog);
    }
    if (command == "attach") {
      json args = {{"vm", cl_.operands[0]}, {"network", cl_.operands[1]}};
      if (cl_.mac) args["mac"] = *cl_.mac;
      if (cl_.vlan) args["vlan"] = *cl_.vlan;
      if (cl_.backend) args["backend"] = *cl_.backend;
      return Call(verb::kAttach, args, FormatAttach);
    }
    if (command == "detach") {
      const std::string& vm = cl_.operands[0];
      const std::string& nic = cl_.operands[1];
      return Call(verb::kDetach, {{"vm", vm}, {"nic", nic}},
                  [&](const json& result) { return FormatDetach(result, vm, nic); });
    }
    if (command == "graph") return Graph();
    if (command == "capture") {
      ClientOptions options;
      options.socket_path = cl_.socket_path;
      options.timeout = cl_.timeout;
      CaptureOptions capture;
      capture.network = cl_.operands[0];
      capture.port = cl_.operands[1];
      capture.direction = cl_.capture_direction;
      capture.file = cl_.capture_file;
      capture.count = cl_.capture_count;
      capture.json = cl_.json;
      return RunCapture(options, capture, out_, err_);
    }
    if (command == "log-level") {
      json args = json::object();
      if (!cl_.operands.empty()) args["level"] = cl_.operands[0];
      return Call(verb::kLogLevel, args, [](const json& result) {
        const std::string level = result.value("level", "");
        if (!result.contains("previous")) return level + "\n";
        return "log level " + level + " (was " + result.value("previous", "") + ")\n";
      });
    }
    return Fail("internal error: no handler for '" + command + " " + sub + "'");
  }

 private:
  using Formatter = std::function<std::string(const json&)>;

  int Fail(const std::string& message) {
    err_ << "netctl: " << message << "\n";
    return 1;
  }

  // graph: network.list (unless NETWORK is given), then network.show and
  // stp.show of each network and vm.list, on one connection.
  int Graph() {
    ClientOptions options;
    options.socket_path = cl_.socket_path;
    options.timeout = cl_.timeout;
    Result<ControlClient> client = ControlClient::Connect(options);
    if (!client.ok()) return TransportError(client.status(), /*connecting=*/true);
    std::vector<std::string> names;
    if (!cl_.operands.empty()) {
      names.push_back(cl_.operands[0]);
    } else {
      Result<Answer> list = client->Call(verb::kNetworkList, nullptr);
      if (!list.ok()) return TransportError(list.status(), /*connecting=*/false);
      if (!list->ok) return Rejected(*list);
      for (const json& network : list->result.value("networks", json::array()))
        if (network.contains("name") && network["name"].is_string())
          names.push_back(network["name"].get<std::string>());
    }
    std::vector<GraphNetwork> networks;
    for (const std::string& name : names) {
      Result<Answer> show = client->Call(verb::kNetworkShow, {{"name", name}});
      if (!show.ok()) return TransportError(show.status(), /*connecting=*/false);
      if (!show->ok) return Rejected(*show);
      GraphNetwork item{show->result.value("network", json::object()), nullptr};
      // The tree's roles; a network whose bridge or switch is missing has none.
      Result<Answer> stp = client->Call(verb::kStpShow, {{"network", name}});
      if (!stp.ok()) return TransportError(stp.status(), /*connecting=*/false);
      if (stp->ok) item.stp = stp->result.value("stp", json());
      networks.push_back(std::move(item));
    }
    // Guests, when this netd runs them (else "unsupported": none drawn).
    json vms;
    Result<Answer> list = client->Call(verb::kVmList, nullptr);
    if (!list.ok()) return TransportError(list.status(), /*connecting=*/false);
    if (list->ok) vms = list->result.value("vms", json::array());
    const std::string dot = GraphDot(networks, vms);
    if (cl_.graph_format == "dot") {
      out_ << dot;
      return 0;
    }
    Result<std::string> rendered = RenderDot(dot, cl_.graph_format);
    if (!rendered.ok()) return Fail(rendered.status().message());
    out_ << *rendered;
    return 0;
  }

  int Validate() {
    topology::LoadResult loaded;
    if (std::find(cl_.operands.begin(), cl_.operands.end(), "-") == cl_.operands.end()) {
      loaded = topology::LoadTopology(cl_.operands);
    } else {
      // Standard input among them: every operand read here, parsed together.
      std::vector<std::string> problems;
      Result<json> files = ReadTopologyFiles(cl_.operands, in_, &problems);
      if (!files.ok()) {
        for (const std::string& problem : problems) err_ << "netctl: " << problem << "\n";
        return 1;
      }
      std::vector<topology::SourceFile> sources;
      for (const json& file : *files)
        sources.push_back({file["name"].get<std::string>(), file["text"].get<std::string>()});
      loaded = topology::ParseTopologyFiles(sources);
    }
    if (cl_.json) {
      const auto items = [](const std::vector<topology::Diagnostic>& list) {
        json diagnostics = json::array();
        for (const auto& d : list) {
          diagnostics.push_back({{"file", d.where.file},
                                 {"line", d.where.line},
                                 {"column", d.where.column},
                                 {"pointer", d.where.pointer},
                                 {"message", d.message}});
        }
        return diagnostics;
      };
      json answer = {
          {"ok", loaded.ok()}, {"files", cl_.operands}, {"diagnostics", items(loaded.errors)}};
      if (!loaded.warnings.empty()) answer["warnings"] = items(loaded.warnings);
      out_ << FormatJson(answer);
    }
    for (const auto& d : loaded.errors) err_ << d.ToString() << "\n";
    // Warnings (what this host lacks, such as an overlay's local address)
    // do not fail the check: the file may be meant for another host.
    for (const auto& d : loaded.warnings) {
      topology::Diagnostic warning = d;
      warning.message = "warning: " + warning.message;
      err_ << warning.ToString() << "\n";
    }
    if (!loaded.ok()) return 1;
    if (!cl_.json) {
      for (const auto& path : cl_.operands) out_ << (path == "-" ? kStdinName : path) << ": ok\n";
    }
    return 0;
  }

  // A failure before netd could answer: print it (and, with --json, an error
  // object with code "unreachable" or "connection").
  int TransportError(const Status& status, bool connecting) {
    std::string message = status.message();
    if (connecting) {
      int error = status.error_number();
      if (error == ENOENT || error == ECONNREFUSED) message += " (is netd running?)";
      if (error == EACCES || error == EPERM) {
        message += " (netctl needs root or membership in the socket's group)";
      }
    }
    if (cl_.json) {
      out_ << FormatJson(
          {{"code", connecting ? "unreachable" : "connection"}, {"message", message}});
    }
    return Fail(message);
  }

  int Rejected(const Answer& answer) {
    if (cl_.json) out_ << FormatJson(answer.error);
    if (answer.error.is_object()) {
      auto it = answer.error.find("diagnostics");
      if (it != answer.error.end() && it->is_array()) {
        for (const auto& d : *it) err_ << FormatDiagnostic(d) << "\n";
      }
    }
    std::string message = answer.error_message();
    // netd's message names the protocol verb; the operator typed a command.
    if (answer.error_code() == protocol::code::kUnknownVerb) {
      message = "this netd does not know 'netctl " + cl_.command +
                (cl_.sub.empty() ? "" : " " + cl_.sub) + "' (it is older than this netctl, " +
                std::string(protocol::ProjectVersion()) + ")";
    }
    if (message.empty()) {
      std::string code = answer.error_code();
      message = "netd refused the request" + (code.empty() ? "" : " (" + code + ")");
    }
    return Fail(message);
  }

  int Call(std::string_view verb, const json& args, const Formatter& format) {
    ClientOptions options;
    options.socket_path = cl_.socket_path;
    options.timeout = cl_.timeout;
    Result<ControlClient> client = ControlClient::Connect(options);
    if (!client.ok()) return TransportError(client.status(), /*connecting=*/true);
    int64_t id = 0;
    Result<std::string> line = client->CallLine(verb, args, &id);
    if (!line.ok()) return TransportError(line.status(), /*connecting=*/false);
    // --json of a plain success: printed from the line, no tree built (a
    // port list of 10,000 ports is 5 MB); anything else is decoded.
    if (cl_.json) {
      if (std::optional<std::string> text = PrettyResultOf(*line, id)) {
        out_ << *text;
        return 0;
      }
    }
    Result<Answer> answer = client->DecodeAnswer(*line, id);
    if (!answer.ok()) return TransportError(answer.status(), /*connecting=*/false);
    if (!answer->ok) return Rejected(*answer);
    out_ << (cl_.json ? FormatJson(answer->result) : format(answer->result));
    // An applied network no file keeps (netd has no configuration
    // directory) is lost at netd's restart: said where people look.
    if (auto unsaved = answer->result.find("unsaved"); !cl_.json && answer->result.is_object() &&
                                                       unsaved != answer->result.end() &&
                                                       unsaved->is_array())
      for (const json& name : *unsaved)
        err_ << "netctl: warning: network "
             << (name.is_string() ? name.get<std::string>() : name.dump())
             << " is applied but not saved (netd has no configuration directory); a netd "
                "restart forgets it\n";
    // Done in part: apply made what it could, and says what it could not.
    auto errors = answer->result.find("errors");
    if (answer->result.is_object() && errors != answer->result.end() && errors->is_array() &&
        !errors->empty()) {
      for (const json& error : *errors)
        err_ << "netctl: " << (error.is_string() ? error.get<std::string>() : error.dump()) << "\n";
      return 1;
    }
    return 0;
  }

  const CommandLine& cl_;
  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

std::string HelpText(const std::string& command) {
  if (command.empty()) return kUsage;
  if (!KnownCommand(command)) return "";
  static constexpr std::pair<const char*, const char*> kDetails[] = {
      {"validate",
       "Checks topology files offline (netd is not needed): every FILE, or every *.json\n"
       "file of a directory, is parsed and checked, and names are checked across files.\n"
       "Each problem is printed on stderr as FILE:LINE:COLUMN: POINTER: message;\n"
       "the exit status is 1 if there is any. Otherwise prints \"FILE: ok\" per FILE.\n"
       "With --json, prints {\"ok\", \"files\", \"diagnostics\"}.\n"},
      {"plan",
       "Sends the topology files to netd and prints the operations 'apply' would\n"
       "perform, one per line, or \"no changes\". Changes nothing. For a userspace\n"
       "network these include its switch's: ports, VLANs, FDB limits and statics,\n"
       "and spanning tree starts and restarts (every port discards until it converges).\n"
       "A topology with errors prints each as FILE:LINE:COLUMN: POINTER: message.\n"},
      {"apply",
       "Sends the topology files to netd, which adds or updates their networks and\n"
       "makes the host match them as one transaction (undone on failure). Prints\n"
       "the operations performed and \"applied N changes\", or \"no changes\".\n"
       "netd keeps each network applied in a file it reads at start and on reload:\n"
       "the --config file that defines it, else NAME.json in its first --config\n"
       "directory (written aside and fsynced before the host is touched, so a full\n"
       "disk refuses the apply, naming the file). --json shows them in \"saved\".\n"
       "Userspace networks' switch changes follow the kernel's; one that fails\n"
       "(a port that will not open) is printed on stderr and the exit status is 1.\n"},
      {"status",
       "Shows netd: its version and protocol, pid, uptime and --config paths, then one\n"
       "row per network: NAME DATAPATH STATE PENDING SOURCE. STATE is ok, drifted\n"
       "(PENDING operations would repair it), missing (its bridge or switch is not\n"
       "there) or waiting (in order, but ports, named, wait for their links);\n"
       "SOURCE is the file it came from (\"applied: FILE\" for netctl apply).\n"},
      {"network",
       "list: one row per network: NAME DATAPATH BRIDGE STATE PORTS(up/total) STP\n"
       "  SOURCE (the file that keeps it; \"applied: FILE\" when netctl apply wrote it,\n"
       "  \"applied, not saved\" when no file keeps it).\n"
       "show: the network's settings, then its ports and static FDB entries.\n"
       "delete: removes the network from the host (its bridge or switch, the links\n"
       "  netd made for it) and from the file that keeps it (a file of a --config\n"
       "  directory left with nothing is removed). Refused while a vm has a NIC on it.\n"},
      {"port",
       "Lists ports: NETWORK PORT KIND STATE STP-STATE COST PRIO FLAGS VLAN.\n"
       "STATE is up, down or missing (configured, but not on the host).\n"
       "FLAGS: learn, flood, hairpin, isolated, guard (BPDU guard), rootblock.\n"
       "VLAN: \"access PVID\", \"trunk ALLOWED [native N]\" or \"-\".\n"
       "stats: per-port counters: NETWORK PORT RX-PKTS RX-BYTES TX-PKTS TX-BYTES DROPS\n"
       "  DROP-REASONS (the non-zero drop counters, as reason=count).\n"
       "show: the port, and how a guest netd does not run plugs into it (a tap port;\n"
       "  on a userspace network one with \"guest\": true, or a vhost-user port: then\n"
       "  also its socket, connection state and the shared guest memory it needs).\n"
       "  --qemu prints only QEMU's -netdev/-device arguments (-chardev too for\n"
       "  vhost-user), one line of shell words; --libvirt only the <interface> element\n"
       "  (on a kernel network type='bridge': libvirt makes its own tap on the bridge).\n"
       "  Both are meant to be pasted.\n"},
      {"fdb",
       "show: the forwarding database: MAC VLAN PORT FLAGS (static, local or learned),\n"
       "  and AGE (seconds since last seen) when the datapath reports it.\n"
       "add: adds a static entry MAC -> PORT (in VLAN VID with --vlan, else the port's\n"
       "  untagged VLAN; on a kernel network without VLAN filtering, no VLAN). It is\n"
       "  kept across netd restarts until 'fdb del'.\n"
       "del: deletes the static entries of MAC (only in VLAN VID with --vlan) that\n"
       "  'fdb add' made, and prints each one deleted.\n"
       "flush: removes learned entries, all or only those of --port PORT and/or\n"
       "  --vlan VID, and prints how many and which.\n"
       "On kernel networks these work as 'bridge fdb' does (netlink, on the bridge port).\n"},
      {"stp",
       "Shows spanning tree state: bridge id, root id, root port and path cost, whether\n"
       "this bridge is root, topology change, timers and where the state was read\n"
       "(netlink or sysfs); then per port: PORT ID ROLE STATE COST DESIGNATED-BRIDGE\n"
       "PROTOCOL EDGE. \"-\" marks what the datapath does not report.\n"},
      {"vlan",
       "Shows the VLANs of each port: PORT VLAN PVID UNTAGGED. When the datapath cannot\n"
       "filter VLANs (e.g. a kernel without bridge VLAN filtering), prints why.\n"},
      {"vm",
       "Guests run by netd (QEMU).\n"
       "list: one row per guest: NAME STATE PID ACCEL RESTART NICS LAST-EXIT ERROR.\n"
       "  STATE: stopped, starting, running, stopping, restart-wait or failed.\n"
       "  RESTART: the restart policy (no, on-failure, always), with the number of\n"
       "  automatic restarts so far in parentheses when there were any.\n"
       "  NICS: ID:NETWORK/PORT, comma separated. LAST-EXIT (how QEMU last ended) and\n"
       "  ERROR are shown for stopped, failed and restart-wait guests.\n"
       "start: starts the guest; prints \"NAME: starting (ACCEL)\".\n"
       "stop: asks the guest to power down (it is killed after a timeout); prints\n"
       "  \"NAME: stopping\".\n"
       "console-log: prints the last N bytes (--bytes N, default 65536) of the guest's\n"
       "  serial console log as they are.\n"},
      {"attach",
       "Hot-plugs a new NIC into the running guest VM, on a new port of NETWORK.\n"
       "--mac MAC: the NIC's (unicast) MAC address; netd chooses one otherwise.\n"
       "--vlan VID: the port's access VLAN (1..4094).\n"
       "--backend vhost-user: a vhost-user NIC (a userspace network only) instead of\n"
       "  a tap (the default, also --backend tap).\n"
       "Prints \"attached NIC ID (port PORT, mac MAC) to network NETWORK\".\n"},
      {"detach",
       "Unplugs NIC from the guest VM and removes its port. NIC is a NIC id such as\n"
       "nic1 (see 'netctl vm list') or its port name. Prints \"detached NIC from VM\".\n"},
      {"graph",
       "Draws netd's networks (or NETWORK) with Graphviz: per network a cluster with\n"
       "its bridge or userspace switch, its ports (kind, VLAN mode; dashed grey when down\n"
       "or missing), edges labelled with each port's spanning tree role and state\n"
       "(dashed red where the tree blocks), and the guests joined to their NICs' ports.\n"
       "--format dot (default) prints the DOT text; svg and png run Graphviz's 'dot'\n"
       "(Debian's graphviz package) and print its output:\n"
       "  netctl graph --format svg > fabric.svg\n"},
      {"capture",
       "Captures the frames of PORT of NETWORK until COUNT frames (-c), Ctrl-C or\n"
       "SIGTERM. On a userspace network: the frames as the switch sees them on the\n"
       "port, after VLAN classification: each carries the 802.1Q tag of the VLAN the\n"
       "switch put it in (also on an access port, where the wire has none); received\n"
       "frames the switch dropped are there as received, without an added tag. netd\n"
       "buffers 4 MiB per capture: what a slow reader misses is counted.\n"
       "-w FILE writes pcap (libpcap; tcpdump -r and tshark -r read it), - for standard\n"
       "output; without -w one line per frame: TIME DIRECTION VLAN SRC > DST ETHERTYPE\n"
       "len LENGTH, and \"DROPPED by the switch (REASON)\" for dropped ones (--json:\n"
       "one JSON object per frame). At the end, on stderr: the frames captured, those\n"
       "netd could not keep for a slow reader, and those the switch dropped, by reason.\n"
       "--direction in|out|both (default both): received, sent, or both.\n"
       "On a kernel network netctl runs tcpdump -i PORT -Q in|out|inout (-c, -w; -e -n\n"
       "without -w) in its own network namespace, where netd's links must be.\n"},
      {"log-level",
       "Without LEVEL, prints netd's log level. With LEVEL (error, warning, info or\n"
       "debug), sets it at once for the whole of netd and prints \"log level LEVEL (was\n"
       "OLD)\"; netd logs the change. It holds until netd stops: a restarted netd takes\n"
       "its --log-level (default info) again. Under systemd each line carries its\n"
       "syslog priority, so 'journalctl -p' filters what was logged.\n"},
  };
  std::string text = "Usage:";
  for (const auto& spec : kCommands) {
    if (command == spec.name) text += "\n  " + Synopsis(spec) + " [OPTIONS]";
  }
  text += "\n\n";
  for (const auto& [name, details] : kDetails) {
    if (command == name) text += details;
  }
  text +=
      "\nOptions: --socket PATH, -j/--json, --timeout SECONDS, -h/--help (see 'netctl --help').\n";
  return text;
}

bool ParseCommandLine(const std::vector<std::string>& args, const std::string& default_socket_path,
                      CommandLine* cl, UsageError* error) {
  *cl = CommandLine();
  cl->socket_path = default_socket_path;
  auto usage_error = [&](std::string message, std::string hint = kGlobalHint) {
    error->message = std::move(message);
    error->hint = std::move(hint);
    return false;
  };

  CommandOption mac_option{"--mac", {"attach"}, "MAC", std::nullopt};
  CommandOption vlan_option{
      "--vlan", {"attach", "fdb add", "fdb del", "fdb flush"}, "VID", std::nullopt};
  CommandOption bytes_option{"--bytes", {"vm console-log"}, "N", std::nullopt};
  CommandOption port_option{"--port", {"fdb flush"}, "PORT", std::nullopt};
  CommandOption format_option{"--format", {"graph"}, "FORMAT", std::nullopt};
  CommandOption backend_option{"--backend", {"attach"}, "BACKEND", std::nullopt};
  CommandOption write_option{"-w", {"capture"}, "FILE", std::nullopt};
  CommandOption count_option{"-c", {"capture"}, "COUNT", std::nullopt};
  CommandOption direction_option{"--direction", {"capture"}, "DIRECTION", std::nullopt};
  CommandOption* const command_options[] = {&mac_option,   &vlan_option,   &bytes_option,
                                            &port_option,  &format_option, &backend_option,
                                            &write_option, &count_option,  &direction_option};

  std::string guest_form;  // port show --qemu|--libvirt
  std::vector<std::string> positional;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    // --name VALUE or --name=VALUE
    auto value_option = [&](std::string_view name, std::string* value) {
      if (arg == name) {
        if (i + 1 >= args.size()) return -1;
        *value = args[++i];
        return 1;
      }
      if (arg.size() > name.size() && arg.compare(0, name.size(), name) == 0 &&
          arg[name.size()] == '=') {
        *value = arg.substr(name.size() + 1);
        return 1;
      }
      return 0;
    };
    std::string value;
    CommandOption* command_option = nullptr;
    int command_option_found = 0;
    for (CommandOption* option : command_options) {
      command_option_found = value_option(option->name, &value);
      if (command_option_found != 0) {
        command_option = option;
        break;
      }
    }
    if (command_option != nullptr) {
      if (command_option_found < 0) {
        return usage_error(std::string("option '") + command_option->name + "' needs " +
                           (std::string_view(command_option->argument) == "N" ? "" : "a ") +
                           command_option->argument);
      }
      command_option->value = value;
    } else if (arg == "--qemu" || arg == "--libvirt") {
      if (!guest_form.empty() && "--" + guest_form != arg)
        return usage_error("options '--qemu' and '--libvirt' exclude each other");
      guest_form = arg.substr(2);
    } else if (arg == "--json" || arg == "-j") {
      cl->json = true;
    } else if (arg == "-h" || arg == "--help") {
      cl->help = true;
    } else if (arg == "--version") {
      cl->version = true;
    } else if (int found = value_option("--socket", &value); found != 0) {
      if (found < 0) return usage_error("option '--socket' needs a PATH");
      if (value.empty()) return usage_error("option '--socket' needs a PATH");
      cl->socket_path = value;
    } else if (int found_timeout = value_option("--timeout", &value); found_timeout != 0) {
      if (found_timeout < 0) return usage_error("option '--timeout' needs SECONDS");
      if (!ParseTimeout(value, &cl->timeout)) {
        return usage_error("option '--timeout': '" + value +
                           "' is not a number of seconds (0 < SECONDS <= 86400)");
      }
    } else {
      return usage_error("unknown option '" + arg + "'");
    }
  }

  if (positional.empty()) {
    if (cl->help || cl->version) return true;
    return usage_error("missing command", kGlobalHint);
  }
  size_t next = 0;
  cl->command = Unalias(positional[next++], kCommandAliases);
  if (cl->command == "help") {
    cl->help = true;
    cl->command.clear();
    if (next < positional.size()) cl->command = Unalias(positional[next++], kCommandAliases);
    if (cl->command == "help") cl->command.clear();  // "netctl help help"
    if (next < positional.size()) {
      return usage_error("help: unexpected argument '" + positional[next] + "'",
                         "Usage: netctl help [COMMAND]");
    }
  }
  if (cl->command.empty()) return true;
  if (!KnownCommand(cl->command)) {
    return usage_error("unknown command '" + cl->command + "'" + DidYouMean(cl->command));
  }
  if (HasSubCommands(cl->command)) {
    if (next >= positional.size()) {
      if (cl->help) return true;
      return usage_error(
          cl->command + ": missing sub-command (" + SubCommandList(cl->command) + ")",
          CommandHint(cl->command));
    }
    cl->sub = positional[next++];
    if (FindSpec(cl->command, cl->sub) == nullptr) {
      const std::string unaliased = Unalias(cl->sub, kSubCommandAliases);
      if (FindSpec(cl->command, unaliased) != nullptr) cl->sub = unaliased;
    }
    if (FindSpec(cl->command, cl->sub) == nullptr) {
      return usage_error(cl->command + ": unknown sub-command '" + cl->sub + "' (" +
                             SubCommandList(cl->command) + ")" + DidYouMean(cl->sub, cl->command),
                         CommandHint(cl->command));
    }
  }
  cl->operands.assign(positional.begin() + static_cast<std::ptrdiff_t>(next), positional.end());
  if (cl->help) return true;

  const CommandSpec& spec = *FindSpec(cl->command, cl->sub);
  std::string name = cl->command + (cl->sub.empty() ? "" : " " + cl->sub);
  int count = static_cast<int>(cl->operands.size());
  if (count < spec.min_operands) {
    // The operands not given: "attach: missing NETWORK", "validate: missing FILE".
    std::vector<std::string> words;
    std::string_view rest = spec.operands;
    while (!rest.empty()) {
      size_t space = rest.find(' ');
      words.emplace_back(rest.substr(0, space));
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
    std::string missing;
    for (size_t i = static_cast<size_t>(count);
         i < words.size() && i < static_cast<size_t>(spec.min_operands); ++i) {
      if (!missing.empty()) missing += ' ';
      missing += words[i];
    }
    if (missing.ends_with("...")) missing.resize(missing.size() - 3);
    return usage_error(name + ": missing " + missing, CommandHint(cl->command));
  }
  if (spec.max_operands >= 0 && count > spec.max_operands) {
    return usage_error(name + ": unexpected argument '" + cl->operands[spec.max_operands] + "'",
                       CommandHint(cl->command));
  }

  for (const CommandOption* option : command_options) {
    if (option->value && std::find(option->commands.begin(), option->commands.end(), name) ==
                             option->commands.end()) {
      return usage_error(name + ": unknown option '" + option->name + "'",
                         CommandHint(cl->command));
    }
  }
  if (!guest_form.empty()) {
    if (name != "port show")
      return usage_error(name + ": unknown option '--" + guest_form + "'",
                         CommandHint(cl->command));
    cl->guest_form = guest_form;
  }
  if (mac_option.value) {
    const std::string& text = *mac_option.value;
    std::optional<MacAddress> mac = MacAddress::Parse(text);
    if (!mac) {
      return usage_error(name + ": --mac '" + text +
                             "' is not a MAC address (six hex pairs, like 52:54:00:12:34:56)",
                         CommandHint(cl->command));
    }
    if (mac->IsMulticast() || mac->IsZero()) {
      return usage_error(name + ": --mac " + text + " is not a unicast address",
                         CommandHint(cl->command));
    }
    cl->mac = mac->ToString();
  }
  if (cl->command == "fdb" && (cl->sub == "add" || cl->sub == "del")) {
    const std::string& text = cl->operands[1];
    std::optional<MacAddress> mac = MacAddress::Parse(text);
    if (!mac || mac->IsMulticast() || mac->IsZero()) {
      return usage_error(name + ": '" + text +
                             "' is not a unicast MAC address (six hex pairs, like "
                             "52:54:00:12:34:56)",
                         CommandHint(cl->command));
    }
    cl->operands[1] = mac->ToString();
  }
  if (port_option.value) {
    if (port_option.value->empty())
      return usage_error(name + ": --port needs a PORT", CommandHint(cl->command));
    cl->port = *port_option.value;
  }
  if (vlan_option.value) {
    std::optional<long long> vid = ParseDecimal(*vlan_option.value);
    if (!vid || *vid < 1 || *vid > 4094) {
      return usage_error(name + ": --vlan '" + *vlan_option.value + "' is not a VLAN id (1..4094)",
                         CommandHint(cl->command));
    }
    cl->vlan = static_cast<int>(*vid);
  }
  if (format_option.value) {
    const std::string& format = *format_option.value;
    if (format != "dot" && format != "svg" && format != "png")
      return usage_error(name + ": --format '" + format + "' is not dot, svg or png",
                         CommandHint(cl->command));
    cl->graph_format = format;
  }
  if (cl->command == "log-level" && !cl->operands.empty()) {
    LogLevel level;
    if (!ParseLogLevel(cl->operands[0], &level)) {
      return usage_error(
          name + ": '" + cl->operands[0] + "' is not a log level (error, warning, info, debug)",
          CommandHint(cl->command));
    }
    cl->operands[0] = std::string(ToString(level));  // "warn" -> "warning"
  }
  if (backend_option.value) {
    if (*backend_option.value != "tap" && *backend_option.value != "vhost-user")
      return usage_error(name + ": --backend '" + *backend_option.value +
                             "' is not a NIC backend (tap or vhost-user)",
                         CommandHint(cl->command));
    cl->backend = *backend_option.value;
  }
  if (write_option.value) {
    if (write_option.value->empty())
      return usage_error(name + ": -w needs a FILE (- for standard output)",
                         CommandHint(cl->command));
    cl->capture_file = *write_option.value;
  }
  if (count_option.value) {
    std::optional<long long> frames = ParseDecimal(*count_option.value);
    if (!frames || *frames < 1)
      return usage_error(name + ": -c '" + *count_option.value + "' is not a positive integer",
                         CommandHint(cl->command));
    cl->capture_count = *frames;
  }
  if (direction_option.value) {
    const std::string& d = *direction_option.value;
    if (d != "in" && d != "out" && d != "both")
      return usage_error(name + ": --direction '" + d + "' is not in, out or both",
                         CommandHint(cl->command));
    cl->capture_direction = d;
  }
  if (bytes_option.value) {
    std::optional<long long> bytes = ParseDecimal(*bytes_option.value);
    if (!bytes || *bytes < 1) {
      return usage_error(name + ": --bytes '" + *bytes_option.value + "' is not a positive integer",
                         CommandHint(cl->command));
    }
    cl->bytes = *bytes;
  }
  return true;
}

namespace {

int RunUnchecked(const std::vector<std::string>& args, const std::string& default_socket_path,
                 std::istream& in, std::ostream& out, std::ostream& err) {
  try {
    CommandLine cl;
    UsageError usage;
    if (!ParseCommandLine(args, default_socket_path, &cl, &usage)) {
      err << "netctl: " << usage.message << "\n" << usage.hint << "\n";
      return 2;
    }
    if (cl.help) {
      out << HelpText(cl.command);
      return 0;
    }
    if (cl.version) {
      out << "netctl " << protocol::ProjectVersion() << " (control protocol " << protocol::kVersion
          << ")\n";
      return 0;
    }
    return Dispatcher(cl, in, out, err).Run();
  } catch (const std::exception& e) {
    err << "netctl: internal error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    err << "netctl: internal error\n";
    return 1;
  }
}

}  // namespace

int Run(const std::vector<std::string>& args, const std::string& default_socket_path,
        std::ostream& out, std::ostream& err) {
  return Run(args, default_socket_path, std::cin, out, err);
}

int Run(const std::vector<std::string>& args, const std::string& default_socket_path,
        std::istream& in, std::ostream& out, std::ostream& err) {
  int status = RunUnchecked(args, default_socket_path, in, out, err);
  // A table that could not be written (a full disk, a closed pipe) is a failure.
  out.flush();
  if (!out) {
    err << "netctl: cannot write the output\n";
    return status == 0 ? 1 : status;
  }
  return status;
}

int Main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  const char* env_socket = std::getenv("VFABRIC_SOCKET");
  std::string socket_path =
      env_socket != nullptr && *env_socket != '\0' ? env_socket : kDefaultSocketPath;
  return Run(args, socket_path, out, err);
}

}  // namespace vfabric::netctl
