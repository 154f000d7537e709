// netd: applies vfabric topologies to this host and keeps it matching them.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "vfabric/common/log.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/daemon.h"

#ifndef VFABRIC_DEFAULT_CONFIG
#define VFABRIC_DEFAULT_CONFIG "/etc/vfabric/networks"
#endif

namespace {

// Without --config: the installed configuration directory (SYSCONFDIR, /etc
// for the package). One that does not exist stops netd with the path and the
// reason, as any unreadable --config does; an empty one is an empty topology.
constexpr const char* kDefaultConfig = VFABRIC_DEFAULT_CONFIG;

constexpr const char* kUsage =
    "usage: netd [--config PATH...] [options]\n"
    "\n"
    "Applies the vfabric topologies in PATH (a JSON file, or a directory whose\n"
    "*.json files are read in name order) to this host, then serves netctl on\n"
    "the control socket and repairs any drift the kernel reports.\n"
    "\n"
    "options:\n"
    "  --config PATH          topology file or directory (repeatable; default\n"
    "                         " VFABRIC_DEFAULT_CONFIG
    ")\n"
    "  --socket PATH          control socket (default /run/vfabric/netd.sock)\n"
    "  --socket-group GROUP   group, besides root and netd's user, that may use the socket\n"
    "  --run-dir DIR          netd's state: guests' QMP sockets and console logs in\n"
    "                         DIR/vms/NAME, run-time FDB entries, the journal of link\n"
    "                         creations in flight (default /run/vfabric)\n"
    "  --stop-guests-on-exit  at SIGTERM/SIGINT power the guests down (then kill them)\n"
    "                         instead of leaving them running\n"
    "  --log-level LEVEL      debug, info (default), warning or error; netctl log-level\n"
    "                         changes it at run time\n"
    "  --metrics-listen ADDR:PORT|PATH\n"
    "                         serve Prometheus metrics (GET /metrics) on ADDR:PORT\n"
    "                         (numeric IPv4, [IPv6], or :PORT for every address) or\n"
    "                         on the Unix socket PATH; off by default\n"
    "  --dry-run              print what applying the configuration would do, and exit\n"
    "  -h, --help             this text\n"
    "  --version              print the version\n"
    "\n"
    "signals: SIGHUP reloads the configuration; SIGUSR2 re-executes netd (the\n"
    "binary now at its path: an upgrade) handing the userspace switches over, so\n"
    "that guests lose no traffic; SIGTERM and SIGINT stop netd and\n"
    "leave bridges, persistent taps and running guests in place (a restarted netd\n"
    "adopts them; a guest whose configuration changed meanwhile is restarted).\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "netd: %s\nTry 'netd --help'.\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  vfabric::SetLogProgramName("netd");
  vfabric::netd::DaemonOptions options;
  // For SIGUSR2's re-exec: the path this binary was started from, resolved
  // now (an upgrade later replaces the file at that path), and the arguments.
  char exe[4096];
  const ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (exe_len > 0) options.exe_path.assign(exe, static_cast<size_t>(exe_len));
  options.argv.assign(argv, argv + argc);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    const bool takes_value = arg == "--config" || arg == "--socket" || arg == "--socket-group" ||
                             arg == "--log-level" || arg == "--run-dir" ||
                             arg == "--metrics-listen";
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (takes_value) {
      if (i + 1 >= argc) return UsageError("option " + arg + " needs a value");
      value = argv[++i];
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("netd %s (control protocol %d)\n",
                  std::string(vfabric::protocol::ProjectVersion()).c_str(),
                  vfabric::protocol::kVersion);
      return 0;
    } else if (arg == "--config") {
      options.config_paths.push_back(value);
    } else if (arg == "--socket") {
      options.socket_path = value;
    } else if (arg == "--run-dir") {
      options.run_dir = value;
    } else if (arg == "--socket-group") {
      options.socket_group = value;
    } else if (arg == "--log-level") {
      vfabric::LogLevel level;
      if (!vfabric::ParseLogLevel(value, &level))
        return UsageError("unknown log level \"" + value + "\" (debug, info, warning, error)");
      vfabric::SetLogLevel(level);
    } else if (arg == "--metrics-listen") {
      if (value.empty()) return UsageError("option --metrics-listen needs ADDR:PORT or a PATH");
      options.metrics_listen = value;
    } else if (arg == "--stop-guests-on-exit") {
      options.stop_guests_on_exit = true;
    } else if (arg == "--dry-run") {
      options.dry_run = true;
    } else {
      return UsageError("unknown option " + arg);
    }
  }
  if (options.config_paths.empty()) options.config_paths.push_back(kDefaultConfig);
  return vfabric::netd::RunDaemon(options);
}
