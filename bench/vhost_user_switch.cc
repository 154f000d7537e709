// vfabric_vhost_user_switch: a bridge::Switch with vhost-user ports in
// server mode, for bench/run-vhost-user (issue 16). A frontend that is not
// ours (DPDK's virtio-user in dpdk-testpmd) connects to the sockets and
// sends frames through the switch.
//
//   vfabric_vhost_user_switch --socket-dir DIR [--ports N] [--cpu C]
//                             [--batch K] [--buffer-size B] [--taps]
//
// Listens on DIR/vu0.sock .. DIR/vu<N-1>.sock (N = 2 by default), all in one
// VLAN (access 1, forwarding), and runs the switch's datapath thread as
// netd does (Switch::Start: epoll, busy ports polled while frames flow).
// With --taps the ports are taps instead (vfvu-t0 .. vfvu-t<N-1>, made in
// the current network namespace with IFF_VNET_HDR as netd makes them, gone
// when the process exits): the same frontend through vfabric's tap ports,
// the kernel in between. The caller brings them up.
// --cpu pins the process (and so the datapath thread it starts) to CPU C
// with sched_setaffinity before the thread exists: one datapath core.
//
// stdout: the line "ready" once every socket listens; on SIGUSR1 one JSON
// line with the counters (a snapshot the script takes at the start and
// the end of a measured window); on SIGINT/SIGTERM the counters once more,
// then it stops the switch and exits 0. A counters line is
//   {"t": <CLOCK_MONOTONIC s>, "ports": [{"name", "up", "rx_packets",
//    "rx_bytes", "tx_packets", "tx_bytes", "drops": {reason: n, ...},
//    "vhost": {"connections", "kicks", "calls", "tx_no_buffers", ...}}]}
// (drops and vhost counters only where non-zero).
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "vfabric/bridge/port.h"
#include "vfabric/bridge/ports.h"
#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/vhost_user_port.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric {
namespace {

struct Options {
  std::string socket_dir;
  int ports = 2;
  int cpu = -1;
  size_t batch = 32;
  size_t buffer_size = 0;  // 0: the switch's default (netd's)
  bool taps = false;
};

void Usage() {
  std::fprintf(stderr,
               "usage: vfabric_vhost_user_switch --socket-dir DIR [--ports N] [--cpu C]\n"
               "                                 [--batch K] [--buffer-size B] [--taps]\n");
}

bool ParseUnsigned(const char* s, unsigned long long max, unsigned long long* out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--taps") {
      o->taps = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s needs a value\n", a.c_str());
      return false;
    }
    const char* v = argv[++i];
    unsigned long long n = 0;
    if (a == "--socket-dir") {
      o->socket_dir = v;
    } else if (a == "--ports" && ParseUnsigned(v, 64, &n) && n >= 1) {
      o->ports = static_cast<int>(n);
    } else if (a == "--cpu" && ParseUnsigned(v, CPU_SETSIZE - 1, &n)) {
      o->cpu = static_cast<int>(n);
    } else if (a == "--batch" && ParseUnsigned(v, 256, &n) && n >= 1) {
      o->batch = n;
    } else if (a == "--buffer-size" && ParseUnsigned(v, 1 << 20, &n) && n >= 256) {
      o->buffer_size = n;
    } else {
      std::fprintf(stderr, "vfabric_vhost_user_switch: bad option or value: %s %s\n", a.c_str(), v);
      return false;
    }
  }
  if (o->socket_dir.empty()) {
    std::fprintf(stderr, "vfabric_vhost_user_switch: --socket-dir is required\n");
    return false;
  }
  return true;
}

double Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct BenchPort {
  bridge::PortId id;
  std::string name;
  const bridge::VhostUserPort*
      port;  // null for a tap; owned by the switch, which outlives every use
};

// A tap as netd opens one (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), not
// persistent: it goes with the fd.
Result<UniqueFd> MakeTap(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("tap " + name + ": open /dev/net/tun", errno);
  ifreq request{};
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::snprintf(request.ifr_name, IFNAMSIZ, "%s", name.c_str());
  if (::ioctl(fd.get(), TUNSETIFF, &request) < 0)
    return Status::FromErrno("tap " + name + ": TUNSETIFF", errno);
  return fd;
}

void PrintCounters(const bridge::Switch& sw, const std::vector<BenchPort>& ports) {
  std::string out = "{\"t\": " + std::to_string(Now()) + ", \"ports\": [";
  for (size_t i = 0; i < ports.size(); ++i) {
    const BenchPort& p = ports[i];
    auto c = sw.Counters(p.id);
    if (!c.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", c.status().ToString().c_str());
      continue;
    }
    const bridge::PortCounters& pc = c.value();
    const bridge::VhostUserStats vs = p.port ? p.port->stats() : bridge::VhostUserStats{};
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s{\"name\": \"%s\", \"up\": %s, \"rx_packets\": %" PRIu64
                  ", \"rx_bytes\": %" PRIu64 ", \"tx_packets\": %" PRIu64 ", \"tx_bytes\": %" PRIu64
                  ", \"drops\": {",
                  i ? ", " : "", p.name.c_str(), !p.port || p.port->up() ? "true" : "false",
                  pc.rx_packets, pc.rx_bytes, pc.tx_packets, pc.tx_bytes);
    out += buf;
    bool first = true;
    for (size_t r = 0; r < bridge::kDropReasonCount; ++r) {
      if (pc.drops[r] == 0) continue;
      out += (first ? "\"" : ", \"") +
             std::string(bridge::ToString(static_cast<bridge::DropReason>(r))) +
             "\": " + std::to_string(pc.drops[r]);
      first = false;
    }
    out += "}, \"vhost\": {";
    const std::pair<const char*, uint64_t> vhost[] = {
        {"connections", vs.connections},
        {"disconnects", vs.disconnects},
        {"messages", vs.messages},
        {"messages_refused", vs.messages_refused},
        {"kicks", vs.kicks},
        {"calls", vs.calls},
        {"calls_suppressed", vs.calls_suppressed},
        {"tx_not_ready", vs.tx_not_ready},
        {"tx_no_buffers", vs.tx_no_buffers},
        {"tx_too_big", vs.tx_too_big},
        {"offload_refused", vs.offload_refused},
        {"rx_oversize", vs.rx_oversize},
        {"rx_bad_header", vs.rx_bad_header},
    };
    first = true;
    for (const auto& [name, v] : vhost) {
      if (v == 0) continue;
      out += (first ? "\"" : ", \"") + std::string(name) + "\": " + std::to_string(v);
      first = false;
    }
    out += "}}";
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

int Run(const Options& o) {
  // Signals are taken with sigwait on this thread: blocked before the
  // datapath thread exists, so it inherits the mask and never takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  if (int err = pthread_sigmask(SIG_BLOCK, &signals, nullptr); err != 0) {
    std::fprintf(stderr, "vfabric_vhost_user_switch: pthread_sigmask: %s\n", std::strerror(err));
    return 1;
  }
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: sched_setaffinity to CPU %d: %s\n", o.cpu,
                   std::strerror(errno));
      return 1;
    }
  }

  bridge::SwitchConfig config;
  config.name = "vubench";
  config.batch_size = o.batch;
  if (o.buffer_size != 0) config.buffer_size = o.buffer_size;
  auto created = bridge::Switch::Create(std::move(config));
  if (!created.ok()) {
    std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<bridge::Switch> sw = std::move(created).value();

  std::vector<BenchPort> ports;
  for (int i = 0; o.taps && i < o.ports; ++i) {
    const std::string name = "vfvu-t" + std::to_string(i);
    auto fd = MakeTap(name);
    if (!fd.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", fd.status().ToString().c_str());
      return 1;
    }
    auto port = bridge::OpenTapPort(name, std::move(fd).value());
    if (!port.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", port.status().ToString().c_str());
      return 1;
    }
    auto id = sw->AddPort(std::move(port).value());
    if (!id.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", id.status().ToString().c_str());
      return 1;
    }
    ports.push_back({id.value(), name, nullptr});
  }
  for (int i = 0; !o.taps && i < o.ports; ++i) {
    const std::string name = "vu" + std::to_string(i);
    const std::string path = o.socket_dir + "/" + name + ".sock";
    auto listener = bridge::VhostUserPort::ListenUnix(path);
    if (!listener.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", listener.status().ToString().c_str());
      return 1;
    }
    auto port = bridge::VhostUserPort::Listen(name, std::move(listener).value());
    if (!port.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", port.status().ToString().c_str());
      return 1;
    }
    const bridge::VhostUserPort* raw = port.value().get();
    auto id = sw->AddPort(std::move(port).value());
    if (!id.ok()) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", id.status().ToString().c_str());
      return 1;
    }
    ports.push_back({id.value(), name, raw});
  }
  if (Status s = sw->Start(); !s.ok()) {
    std::fprintf(stderr, "vfabric_vhost_user_switch: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fputs("ready\n", stdout);
  std::fflush(stdout);

  for (;;) {
    int sig = 0;
    if (int err = sigwait(&signals, &sig); err != 0) {
      std::fprintf(stderr, "vfabric_vhost_user_switch: sigwait: %s\n", std::strerror(err));
      break;
    }
    PrintCounters(*sw, ports);
    if (sig != SIGUSR1) break;
  }
  sw->Stop();
  // Unlinked so that a later listener on the same path starts clean (the
  // script removes its directory anyway).
  for (int i = 0; !o.taps && i < o.ports; ++i) {
    ::unlink((o.socket_dir + "/vu" + std::to_string(i) + ".sock").c_str());
  }
  return 0;
}

}  // namespace
}  // namespace vfabric

int main(int argc, char** argv) {
  vfabric::Options o;
  if (!vfabric::ParseArgs(argc, argv, &o)) {
    vfabric::Usage();
    return 2;
  }
  return vfabric::Run(o);
}
