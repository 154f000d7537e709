// netd's event loop: applies the configuration at start, serves the control
// socket, repairs drift the kernel reports, reloads on SIGHUP and stops on
// SIGTERM/SIGINT. Everything runs on the calling thread.
#pragma once

#include <string>
#include <vector>

namespace vfabric::netd {

struct DaemonOptions {
  std::vector<std::string> config_paths;  // files or directories of *.json
  std::string socket_path = "/run/vfabric/netd.sock";
  std::string socket_group;              // group allowed to connect besides root and netd's user
  std::string run_dir = "/run/vfabric";  // guests' QMP sockets and console logs: RUN_DIR/vms/NAME
  int guest_stop_timeout_ms = 10000;     // vm stop in progress at netd's stop: then killed
  // At netd's stop, power the guests down (then kill them) instead of
  // leaving them running for the next netd to adopt.
  bool stop_guests_on_exit = false;
  int repair_delay_ms = 100;       // quiet time after a kernel event before repairing
  int resync_interval_ms = 30000;  // full reconcile even without events
  bool dry_run = false;            // print the plan for the configuration and exit
  // --metrics-listen: "ADDR:PORT", "[V6]:PORT" or a Unix socket path for
  // Prometheus (metrics_server.h); empty: no metrics listener.
  std::string metrics_listen;
  // SIGUSR2 re-executes netd without outage (handover.h): `exe_path` is the
  // binary to run, netd's own path as started (an upgrade replaces the file
  // there, so the new version runs; not /proc/self/exe, the old inode), and
  // `argv` its arguments (argv[0] included). Empty: SIGUSR2 is refused.
  std::string exe_path;
  std::vector<std::string> argv;
};

// Runs until SIGTERM or SIGINT; returns the process exit status (0 on a clean
// stop, 1 when the configuration cannot be loaded or applied at start).
// REQUIRES: SIGHUP, SIGTERM and SIGINT are not yet blocked by other threads.
int RunDaemon(const DaemonOptions& options);

}  // namespace vfabric::netd
