#include "vfabric/netd/daemon.h"

#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "vfabric/common/log.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/guests.h"
#include "vfabric/netd/watchdog.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

constexpr size_t kMaxRequestBytes = 16 * 1024 * 1024;

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
void Notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t length = std::strlen(path);
  if (length >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, length);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return;
  const socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  if (sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL,
             reinterpret_cast<const sockaddr*>(&addr), addr_len) < 0) {
    VF_LOG(kWarning) << "sd_notify to " << path << ": " << std::strerror(errno);
  }
}

void ArmTimer(int fd, int delay_ms) {
  itimerspec spec{};
  spec.it_value.tv_sec = delay_ms / 1000;
  spec.it_value.tv_nsec = static_cast<long>(delay_ms % 1000) * 1000000L;
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  timerfd_settime(fd, 0, &spec, nullptr);
}

void DrainFd(int fd) {
  char buffer[512];
  while (read(fd, buffer, sizeof buffer) > 0) {
  }
}

Result<UniqueFd> Listen(const std::string& path, const std::string& group, gid_t* socket_gid) {
  std::error_code ignored;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status::Error("control socket " + path + ": path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size());

  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno("socket for " + path, errno);
  // A socket file left by a netd that died is removed; a live one is not.
  {
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return Status::Error("control socket " + path + ": another netd is listening there");
    if (errno == ECONNREFUSED) unlink(path.c_str());
  }
  const mode_t old_mask = umask(0117);
  const int bound = bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  umask(old_mask);
  if (bound != 0) return Status::FromErrno("bind " + path, bind_errno);
  *socket_gid = getegid();
  if (!group.empty()) {
    struct group entry {};
    struct group* found = nullptr;
    std::vector<char> buffer(16384);
    if (getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found) {
      unlink(path.c_str());
      return Status::Error("control socket " + path + ": no group named " + group);
    }
    *socket_gid = found->gr_gid;
    if (chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
      int err = errno;
      unlink(path.c_str());
      return Status::FromErrno("chown " + path + " to group " + group, err);
    }
  }
  if (chmod(path.c_str(), 0660) != 0) return Status::FromErrno("chmod " + path, errno);
  if (listen(fd.get(), 64) != 0) return Status::FromErrno("listen " + path, errno);
  return fd;
}

bool AnotherNetdListening(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return probe && connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

// Root, netd's own user, and members of the socket's group may connect.
bool PeerAllowed(int fd, gid_t socket_gid, std::string* who) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return false;
  *who = "pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid);
  if (cred.uid == 0 || cred.uid == geteuid() || cred.gid == socket_gid) return true;
  gid_t groups[256];
  socklen_t groups_length = sizeof groups;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &groups_length) == 0) {
    for (size_t i = 0; i < groups_length / sizeof(gid_t); ++i)
      if (groups[i] == socket_gid) return true;
  }
  return false;
}

// Writes all of `data`, waiting for the peer to read for up to 5 s.
bool WriteAll(int fd, const std::string& data) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = send(fd, data.data() + written, data.size() - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 5000) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

struct Client {
  UniqueFd fd;
  std::string buffer;
};

class Daemon {
 public:
  explicit Daemon(const DaemonOptions& options) : options_(options) {}

  int Run() {
    auto loaded = Load();
    if (!loaded.ok()) return 1;
    auto kernel = NewNetlinkKernel();
    if (!kernel.ok()) {
      VF_LOG(kError) << kernel.status().message();
      return 1;
    }
    kernel_ = std::move(kernel).value();
    auto features = kernel_->ProbeFeatures();
    if (!features.ok()) {
      VF_LOG(kError) << "probe kernel features: " << features.status().message();
      return 1;
    }
    if (!features->bridge_vlan_filtering)
      VF_LOG(kInfo) << "kernel: no bridge VLAN filtering ("
                    << features->bridge_vlan_filtering_reason
                    << "); kernel-datapath networks cannot use VLANs";
    controller_ = std::make_unique<Controller>(*kernel_, *features);
    guests_ = std::make_unique<GuestManager>(options_.run_dir + "/vms");
    // Guests still running from an earlier netd keep their hot-attached NICs.
    controller_->SetConfig(options_.dry_run ? std::move(loaded).value()
                                            : guests_->WithRunningNics(std::move(loaded).value()));
    if (!options_.dry_run) controller_->SetGuests(guests_.get());
    userspace_ = std::make_unique<UserspaceNetworks>(options_.run_dir + "/userspace");
    if (!options_.dry_run) controller_->SetUserspace(userspace_.get());

    if (options_.dry_run) return DryRun();
    // Before anything is applied: a second netd must not take over (and,
    // its QMP connection refused, kill) the guests of the one running.
    if (AnotherNetdListening(options_.socket_path)) {
      VF_LOG(kError) << "control socket " << options_.socket_path
                     << ": another netd is listening there";
      return 1;
    }

    // Listening before the first apply: what changes while it runs (a tap's
    // carrier coming up once the userspace switch opens it, a guest's NIC)
    // is then repaired as soon as the loop starts, not at the next resync.
    auto monitor = NewLinkMonitor();
    if (!monitor.ok()) {
      VF_LOG(kError) << monitor.status().message();
      return 1;
    }
    monitor_ = std::move(monitor).value();

    std::vector<Operation> applied;
    Status status = controller_->Reconcile(&applied);
    if (!status.ok()) {
      VF_LOG(kError) << "apply " << ConfigNames() << ": " << status.message();
      return 1;
    }
    for (const auto& op : applied) VF_LOG(kInfo) << "apply: " << op.Describe();
    VF_LOG(kInfo) << "applied " << ConfigNames() << ": " << applied.size() << " operation"
                  << (applied.size() == 1 ? "" : "s");

    if (!SetUpLoop()) return 1;
    Notify("READY=1\nSTATUS=serving");
    VF_LOG(kInfo) << "serving " << options_.socket_path;
    RefreshGuestWatch();
    Loop();
    Notify("STOPPING=1");
    if (options_.stop_guests_on_exit)
      guests_->StopAll(std::chrono::milliseconds(options_.guest_stop_timeout_ms));
    else
      guests_->LeaveAll(std::chrono::milliseconds(options_.guest_stop_timeout_ms));
    userspace_->StopAll();
    unlink(options_.socket_path.c_str());
    VF_LOG(kInfo) << "stopped; links are left in place";
    return 0;
  }

 private:
  std::string ConfigNames() const {
    std::string names;
    for (const auto& p : options_.config_paths) names += (names.empty() ? "" : ", ") + p;
    return names;
  }

  Result<topology::Topology> Load() {
    topology::LoadResult loaded = topology::LoadTopology(options_.config_paths);
    for (const auto& d : loaded.errors) VF_LOG(kError) << d.ToString();
    if (!loaded.ok())
      return Status::Error(std::to_string(loaded.errors.size()) + " error(s) in the configuration");
    std::vector<std::string> clashes = CheckNamesAcrossNetworks(loaded.topology);
    for (const auto& c : clashes) VF_LOG(kError) << c;
    if (!clashes.empty()) return Status::Error("interface names clash");
    return std::move(loaded.topology);
  }

  int DryRun() {
    auto state = ReadKernelState(*kernel_, *kernel_->ProbeFeatures());
    if (!state.ok()) {
      VF_LOG(kError) << state.status().message();
      return 1;
    }
    const topology::Topology desired = controller_->Desired();
    auto plan = Plan(desired, *state);
    if (!plan.ok()) {
      VF_LOG(kError) << plan.status().message();
      return 1;
    }
    for (const auto& op : *plan) std::printf("%s\n", op.Describe().c_str());
    // The same plan as an apply's: no switch runs yet, so every userspace
    // network's would start.
    const KernelView view{&*state, CreatedLinks(*plan)};
    const std::vector<SwitchChange> switches = SwitchChanges(userspace_->Plan(desired, &view));
    for (const auto& change : switches) std::printf("%s\n", change.description.c_str());
    if (plan->empty() && switches.empty()) std::printf("no changes\n");
    return 0;
  }

  bool SetUpLoop() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal_fd_.Reset(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
    epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
    repair_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    resync_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    guest_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!signal_fd_ || !epoll_ || !repair_timer_ || !resync_timer_ || !guest_timer_) {
      VF_LOG(kError) << "event loop set-up: " << std::strerror(errno);
      return false;
    }
    auto listener = Listen(options_.socket_path, options_.socket_group, &socket_gid_);
    if (!listener.ok()) {
      VF_LOG(kError) << listener.status().message();
      return false;
    }
    listener_ = std::move(listener).value();
    for (int fd : {signal_fd_.get(), monitor_->fd(), repair_timer_.get(), resync_timer_.get(),
                   guest_timer_.get(), listener_.get()}) {
      Watch(fd);
    }
    ArmTimer(resync_timer_.get(), options_.resync_interval_ms);
    return SetUpWatchdog();
  }

  // WatchdogSec=: WATCHDOG=1 from this loop on a periodic timer, so a loop
  // that stops turning stops the pings. A malformed WATCHDOG_USEC is reported
  // and ignored (systemd, which sets it, then restarts netd at the deadline).
  bool SetUpWatchdog() {
    auto interval =
        WatchdogInterval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), getpid());
    if (!interval.ok()) VF_LOG(kError) << "watchdog: " << interval.status().message();
    if (!interval.ok() || !interval->has_value()) return true;
    watchdog_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!watchdog_timer_) {
      VF_LOG(kError) << "watchdog timer: " << std::strerror(errno);
      return false;
    }
    const auto usec = (*interval)->count();
    itimerspec spec{};
    spec.it_value.tv_sec = spec.it_interval.tv_sec = static_cast<time_t>(usec / 1000000);
    spec.it_value.tv_nsec = spec.it_interval.tv_nsec = static_cast<long>(usec % 1000000) * 1000L;
    timerfd_settime(watchdog_timer_.get(), 0, &spec, nullptr);
    Watch(watchdog_timer_.get());
    VF_LOG(kDebug) << "watchdog: WATCHDOG=1 every " << usec << " us";
    return true;
  }

  void Watch(int fd) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event);
  }

  void Loop() {
    epoll_event events[32];
    while (!stopping_) {
      int n = epoll_wait(epoll_.get(), events, 32, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        VF_LOG(kError) << "epoll_wait: " << std::strerror(errno);
        return;
      }
      for (int i = 0; i < n && !stopping_; ++i) Dispatch(events[i].data.fd);
      RefreshGuestWatch();
    }
  }

  void Dispatch(int fd) {
    if (fd == signal_fd_.get()) return OnSignal();
    if (fd == monitor_->fd()) return OnKernelEvent();
    if (fd == repair_timer_.get()) {
      DrainFd(fd);
      repair_armed_ = false;
      return Repair("repair");
    }
    if (fd == resync_timer_.get()) {
      DrainFd(fd);
      ArmTimer(resync_timer_.get(), options_.resync_interval_ms);
      return Repair("resync");
    }
    if (fd == listener_.get()) return OnAccept();
    if (watchdog_timer_ && fd == watchdog_timer_.get()) {
      DrainFd(fd);
      return Notify("WATCHDOG=1");
    }
    if (fd == guest_timer_.get()) {
      DrainFd(fd);
      guests_->Poll();
      return;
    }
    // Clients first: a number a guest just closed may already be a client's.
    if (clients_.count(fd)) return OnClient(fd);
    if (guest_fds_.count(fd)) guests_->OnReadable(fd);
  }

  // Guests change their descriptors as QEMU restarts: watch exactly the
  // current ones, and wake at the next guest deadline.
  void RefreshGuestWatch() {
    std::set<int> now;
    for (int fd : guests_->Fds()) now.insert(fd);
    // A guest fd that went away was closed, which took it out of epoll; its
    // number may belong to a client by now, so it is not touched here.
    std::erase_if(now, [&](int fd) { return clients_.count(fd) != 0; });
    for (int fd : now)
      if (!guest_fds_.count(fd)) Watch(fd);
    guest_fds_ = std::move(now);
    itimerspec spec{};
    if (auto deadline = guests_->NextDeadline()) {
      auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      ArmTimer(guest_timer_.get(), static_cast<int>(std::max<int64_t>(delay.count(), 1)));
    } else {
      timerfd_settime(guest_timer_.get(), 0, &spec, nullptr);
    }
  }

  void OnSignal() {
    signalfd_siginfo info{};
    while (read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
      if (info.ssi_signo == SIGHUP) {
        Reload();
      } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
        VF_LOG(kInfo) << "stopping on signal " << info.ssi_signo;
        stopping_ = true;
      }
    }
  }

  void Reload() {
    Notify("RELOADING=1");
    VF_LOG(kInfo) << "reloading " << ConfigNames();
    auto loaded = Load();
    if (!loaded.ok()) {
      VF_LOG(kError) << "reload: " << loaded.status().message()
                     << "; keeping the old configuration";
    } else {
      controller_->SetConfig(guests_->WithRunningNics(std::move(loaded).value()));
      std::vector<Operation> applied;
      Status status = controller_->Reconcile(&applied);
      for (const auto& op : applied) VF_LOG(kInfo) << "reload: " << op.Describe();
      if (!status.ok())
        VF_LOG(kError) << "reload: " << status.message();
      else
        VF_LOG(kInfo) << "reloaded: " << applied.size() << " operation(s)";
    }
    Notify("READY=1");
  }

  void OnKernelEvent() {
    auto changed = monitor_->Drain();
    if (!changed.ok()) {
      VF_LOG(kWarning) << "link monitor: " << changed.status().message();
    }
    if ((!changed.ok() || *changed) && !repair_armed_) {
      repair_armed_ = true;
      ArmTimer(repair_timer_.get(), options_.repair_delay_ms);
    }
  }

  void Repair(const char* why) {
    std::vector<Operation> applied;
    Status status = controller_->Reconcile(&applied);
    for (const auto& op : applied) VF_LOG(kWarning) << why << ": drift: " << op.Describe();
    if (!status.ok()) {
      VF_LOG(kError) << why << ": " << status.message() << "; retrying in 1 s";
      if (!repair_armed_) {
        repair_armed_ = true;
        ArmTimer(repair_timer_.get(), 1000);
      }
    }
  }

  void OnAccept() {
    while (true) {
      UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;
      std::string who;
      if (!PeerAllowed(fd.get(), socket_gid_, &who)) {
        VF_LOG(kWarning) << "control socket: refused " << who;
        json answer = {
            {"version", kProtocolVersion},
            {"ok", false},
            {"error",
             {{"code", "permission"}, {"message", "not allowed to use " + options_.socket_path}}}};
        WriteAll(fd.get(), answer.dump() + "\n");
        continue;
      }
      const int raw = fd.get();
      guest_fds_.erase(raw);  // the number of a guest fd closed since the last refresh
      Watch(raw);
      clients_[raw] = Client{std::move(fd), {}};
    }
  }

  void OnClient(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client& client = it->second;
    char buffer[65536];
    bool closed = false;
    while (true) {
      ssize_t n = read(fd, buffer, sizeof buffer);
      if (n > 0) {
        client.buffer.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN)) closed = true;
      break;
    }
    size_t start = 0, newline;
    while ((newline = client.buffer.find('\n', start)) != std::string::npos) {
      std::string line = client.buffer.substr(start, newline - start);
      start = newline + 1;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json answer;
      json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (request.is_discarded()) {
        answer = {
            {"version", kProtocolVersion},
            {"ok", false},
            {"error", {{"code", "bad_request"}, {"message", "the request is not valid JSON"}}}};
      } else {
        answer = controller_->Handle(request);
      }
      if (!WriteAll(fd, answer.dump() + "\n")) {
        closed = true;
        break;
      }
    }
    client.buffer.erase(0, start);
    if (client.buffer.size() > kMaxRequestBytes) {
      json answer = {{"version", kProtocolVersion},
                     {"ok", false},
                     {"error", {{"code", "bad_request"}, {"message", "request too long"}}}};
      WriteAll(fd, answer.dump() + "\n");
      closed = true;
    }
    if (closed) {
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      clients_.erase(it);
    }
  }

  const DaemonOptions& options_;
  std::unique_ptr<Kernel> kernel_;
  std::unique_ptr<GuestManager> guests_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<UserspaceNetworks> userspace_;
  UniqueFd guest_timer_;
  std::set<int> guest_fds_;
  std::unique_ptr<LinkMonitor> monitor_;
  UniqueFd signal_fd_, epoll_, repair_timer_, resync_timer_, listener_;
  UniqueFd watchdog_timer_;  // only when systemd asks for WATCHDOG=1
  gid_t socket_gid_ = 0;
  std::map<int, Client> clients_;
  bool repair_armed_ = false;
  bool stopping_ = false;
};

}  // namespace

int RunDaemon(const DaemonOptions& options) { return Daemon(options).Run(); }

}  // namespace vfabric::netd
