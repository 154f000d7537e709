// The netctl command line: argument parsing and the verb dispatcher.
//
//   netctl [OPTIONS] COMMAND [ARGS...]      (options may also follow the command)
//
// Exit status: 0 success; 1 a request netd rejected, an operation that failed,
// a topology with errors, or netd unreachable; 2 a usage error.
// Output: tables (or, with --json, netd's "result" pretty-printed) on `out`;
// errors on `err`, prefixed "netctl: ". See kUsage in cli.cc for the text.
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "vfabric/common/status.h"

namespace vfabric::netctl {

struct CommandLine {
  // The command and its sub-command ("network" "show"); sub is empty for
  // commands without one (validate, plan, apply, attach, detach, help) and
  // when absent.
  std::string command;
  std::string sub;
  std::vector<std::string> operands;

  std::string socket_path;
  bool json = false;
  std::chrono::milliseconds timeout{10000};
  bool help = false;
  bool version = false;

  // Command options, checked by ParseCommandLine (a usage error elsewhere):
  std::optional<std::string> mac;   // attach --mac: a unicast MAC, as MacAddress prints it
  std::optional<int> vlan;          // attach/fdb add/del/flush --vlan: 1..4094
  std::optional<std::string> port;  // fdb flush --port: non-empty
  std::optional<long long> bytes;   // vm console-log --bytes: > 0
  std::string guest_form;           // port show --qemu|--libvirt: "qemu", "libvirt" or ""

  std::string graph_format = "dot";  // graph --format: "dot", "svg" or "png"
  // attach --backend: "tap" or "vhost-user" (unset: netd's default, tap).
  std::optional<std::string> backend;
  // capture -w FILE ("-": standard output), -c COUNT (> 0), --direction.
  std::optional<std::string> capture_file;
  std::optional<long long> capture_count;
  std::string capture_direction = "both";
};

// A usage error: the one-line message and the usage hint to print after it.
struct UsageError {
  std::string message;  // "fdb show: missing NETWORK"
  std::string hint;     // "Usage: netctl fdb show NETWORK (see 'netctl help fdb')"
};

// Parses `args` (without the program name). `default_socket_path` is used
// unless --socket is given. Returns false and fills `*error` on a usage error.
bool ParseCommandLine(const std::vector<std::string>& args, const std::string& default_socket_path,
                      CommandLine* command_line, UsageError* error);

// Runs netctl with `args` (without the program name), reading a topology
// FILE of "-" from `in`, writing to `out` and `err`; returns the exit status.
// Never throws. Without `in`: standard input.
int Run(const std::vector<std::string>& args, const std::string& default_socket_path,
        std::istream& in, std::ostream& out, std::ostream& err);
int Run(const std::vector<std::string>& args, const std::string& default_socket_path,
        std::ostream& out, std::ostream& err);

// main(): the default socket is $VFABRIC_SOCKET, else /run/vfabric/netd.sock.
int Main(int argc, char** argv, std::ostream& out, std::ostream& err);

// The help text for `command` ("" for the global usage); empty if unknown.
std::string HelpText(const std::string& command);

}  // namespace vfabric::netctl
