#include "vfabric/netd/daemon.h"

#include <grp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
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
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "socket_watch.h"
#include "vfabric/common/atomic_file.h"
#include "vfabric/common/log.h"
#include "vfabric/common/unique_fd.h"
#include "vfabric/netd/capture.h"
#include "vfabric/netd/control_server.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/create_journal.h"
#include "vfabric/netd/guests.h"
#include "vfabric/netd/handover.h"
#include "vfabric/netd/metrics.h"
#include "vfabric/netd/metrics_server.h"
#include "vfabric/netd/watchdog.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

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

// Raises the soft limit of open files to the hard one: clients of the
// control socket are capped well below it, so what repair needs (netlink
// sockets, taps, packet sockets, guests' QMP sockets) is always there.
// Returns the limit in force.
rlim_t RaiseFdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      limit = raised;
    else
      VF_LOG(kWarning) << "raise RLIMIT_NOFILE to " << limit.rlim_max << ": "
                       << std::strerror(errno);
  }
  return limit.rlim_cur;
}

class Daemon {
 public:
  explicit Daemon(const DaemonOptions& options) : options_(options) {}

  int Run() {
    // A quarter of the fds at most go to control clients (256 of the usual
    // 1024; the default cap of 256 wherever the hard limit is higher).
    const rlim_t fd_limit = RaiseFdLimit();
    control_limits_.max_clients =
        std::max<size_t>(1, std::min<size_t>(control_limits_.max_clients, fd_limit / 4));
    // Before anything here opens a descriptor: those inherited and not
    // handed over are closed by what they are not (close-on-exec unset).
    ReadHandover();
    auto loaded = Load();
    if (!loaded.ok()) return 1;
    // Before anything is applied: a second netd must not take over (and,
    // its QMP connection refused, kill) the guests of the one running, nor
    // take the journal of its creations in flight for a dead netd's.
    if (!options_.dry_run && AnotherNetdListening(options_.socket_path)) {
      VF_LOG(kError) << "control socket " << options_.socket_path
                     << ": another netd is listening there";
      return 1;
    }
    auto kernel = NewNetlinkKernel();
    if (!kernel.ok()) {
      VF_LOG(kError) << kernel.status().message();
      return 1;
    }
    kernel_ = std::move(kernel).value();
    // What a netd killed in the middle of creating a link left unmarked is
    // adopted first, so the plan below sees it as netd's own
    // (netd/DESIGN-crash.md). A dry run changes nothing, so it neither
    // recovers nor journals.
    Kernel* kernel_in_use = kernel_.get();
    if (!options_.dry_run) {
      journal_ = std::make_unique<CreateJournal>(options_.run_dir + "/creating.json");
      auto recovered = RecoverCreations(*kernel_, *journal_);
      if (!recovered.ok()) {
        VF_LOG(kError) << recovered.status().message();
      } else {
        for (const std::string& line : *recovered) VF_LOG(kWarning) << "recovery: " << line;
      }
      journaled_kernel_ = std::make_unique<JournaledKernel>(*kernel_, *journal_);
      kernel_in_use = journaled_kernel_.get();
    }
    // After a re-exec the image before's probe stands: probing creates and
    // deletes links while the handed-over switches wait (handover.h).
    if (handover_ && handover_->kernel_features) {
      kernel_features_ = *handover_->kernel_features;
    } else {
      auto features = kernel_in_use->ProbeFeatures();
      if (!features.ok()) {
        VF_LOG(kError) << "probe kernel features: " << features.status().message();
        return 1;
      }
      kernel_features_ = std::move(features).value();
    }
    if (!kernel_features_.bridge_vlan_filtering)
      VF_LOG(kInfo) << "kernel: no bridge VLAN filtering ("
                    << kernel_features_.bridge_vlan_filtering_reason
                    << "); kernel-datapath networks cannot use VLANs";
    controller_ = std::make_unique<Controller>(*kernel_in_use, kernel_features_);
    controller_->SetDaemonInfo({options_.config_paths, started_, started_wall_});
    const std::string machine_id = ReadMachineId();
    controller_->SetConfigDirs(ConfigDirs());
    controller_->SetMachineId(machine_id);
    userspace_ =
        std::make_unique<UserspaceNetworks>(options_.run_dir + "/userspace", nullptr, machine_id);
    // A guest's NIC on a userspace network plugs in as the switch's own
    // backends say (the kernel networks' taps: the real backends).
    guests_ = std::make_unique<GuestManager>(options_.run_dir + "/vms",
                                             GuestPortBackends{&userspace_->Backends(), nullptr});
    // Guests still running from an earlier netd keep their hot-attached NICs.
    controller_->SetConfig(options_.dry_run ? std::move(loaded).value()
                                            : guests_->WithRunningNics(std::move(loaded).value()));
    if (!options_.dry_run) controller_->SetGuests(guests_.get());
    if (!options_.dry_run) controller_->SetUserspace(userspace_.get());
    // Kernel networks' `netctl fdb add` entries survive a restart.
    if (!options_.dry_run) controller_->SetKernelFdbDir(options_.run_dir + "/kernel-fdb");
    controller_->SetVhostUserDir(options_.run_dir + "/vhost-user");

    if (options_.dry_run) return DryRun();

    // Listening before the first apply: what changes while it runs (a tap's
    // carrier coming up once the userspace switch opens it, a guest's NIC)
    // is then repaired as soon as the loop starts, not at the next resync.
    auto monitor = NewLinkMonitor();
    if (!monitor.ok()) {
      VF_LOG(kError) << monitor.status().message();
      return 1;
    }
    monitor_ = std::move(monitor).value();

    const bool handed_over = handover_.has_value();
    if (handed_over) AdoptHandover();
    std::vector<Operation> applied;
    Status status = TimedReconcile("start", &applied);
    if (handed_over) LogHandoverDone();
    const bool failed = !status.ok();
    if (failed) {
      // A topology the planner refuses (its errors carry no errno: a foreign
      // link under a port's name, a feature this kernel lacks) stops netd
      // before it touches anything. A kernel operation that failed was
      // undone (ApplyPlan): netd then serves, so that `netctl` can show
      // and fix it, and retries with a growing delay (Repair).
      if (status.error_number() == 0) {
        VF_LOG(kError) << "apply " << ConfigNames() << ": " << status.message();
        return 1;
      }
      VF_LOG(kError) << "apply " << ConfigNames() << ": " << status.message()
                     << "; serving anyway, retrying in "
                     << (retry_delay_ms_ = NextRetryDelayMs()) / 1000 << " s";
      last_failure_ = status.message();
    } else {
      for (const auto& op : applied) VF_LOG(kInfo) << "apply: " << op.Describe();
      VF_LOG(kInfo) << "applied " << ConfigNames() << ": " << applied.size() << " operation"
                    << (applied.size() == 1 ? "" : "s");
    }

    if (!SetUpLoop()) return 1;
    if (failed) {
      repair_armed_ = true;
      ArmTimer(repair_timer_.get(), retry_delay_ms_);
    }
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
    if (metrics_ && options_.metrics_listen.find('/') != std::string::npos)
      unlink(options_.metrics_listen.c_str());
    VF_LOG(kInfo) << "stopped; links are left in place";
    return 0;
  }

 private:
  std::string ConfigNames() const {
    std::string names;
    for (const auto& p : options_.config_paths) names += (names.empty() ? "" : ", ") + p;
    return names;
  }

  // The --config paths that are directories (config_store.h: where `apply`
  // saves and `network delete` removes files).
  std::vector<std::string> ConfigDirs() const {
    std::vector<std::string> dirs;
    for (const std::string& path : options_.config_paths) {
      std::error_code error;
      if (std::filesystem::is_directory(path, error))
        dirs.push_back(std::filesystem::path(path).lexically_normal().string());
    }
    return dirs;
  }

  Result<topology::Topology> Load() {
    topology::LoadResult loaded = topology::LoadTopology(options_.config_paths);
    for (const auto& d : loaded.errors) VF_LOG(kError) << d.ToString();
    for (const auto& d : loaded.warnings) VF_LOG(kWarning) << d.ToString();
    if (!loaded.ok())
      return Status::Error(std::to_string(loaded.errors.size()) + " error(s) in the configuration");
    std::vector<std::string> clashes = CheckNamesAcrossNetworks(loaded.topology);
    for (const auto& c : clashes) VF_LOG(kError) << c;
    if (!clashes.empty()) return Status::Error("interface names clash");
    return std::move(loaded.topology);
  }

  int DryRun() {
    auto state = ReadKernelState(*kernel_, kernel_features_);
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
    sigaddset(&signals, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal_fd_.Reset(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
    epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
    repair_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    resync_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    guest_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    control_timer_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!signal_fd_ || !epoll_ || !repair_timer_ || !resync_timer_ || !guest_timer_ ||
        !control_timer_) {
      VF_LOG(kError) << "event loop set-up: " << std::strerror(errno);
      return false;
    }
    gid_t socket_gid = 0;
    auto listener = Listen(options_.socket_path, options_.socket_group, &socket_gid);
    if (!listener.ok()) {
      VF_LOG(kError) << listener.status().message();
      return false;
    }
    // The clients live in the server's own epoll set, nested in this one:
    // their fd numbers never mix with the guests'.
    auto control = ControlServer::Create(std::move(listener).value(), options_.socket_path,
                                         socket_gid, control_limits_,
                                         [this](const json& request) { return Handle(request); });
    if (!control.ok()) {
      VF_LOG(kError) << control.status().message();
      return false;
    }
    control_ = std::move(control).value();
    for (int fd : {signal_fd_.get(), monitor_->fd(), repair_timer_.get(), resync_timer_.get(),
                   guest_timer_.get(), control_->fd(), control_timer_.get(), captures_.fd()}) {
      Watch(fd);
    }
    ArmTimer(resync_timer_.get(), options_.resync_interval_ms);
    if (auto watch = SocketWatch::Create(); watch.ok()) {
      socket_watch_.emplace(std::move(watch).value());
      Watch(socket_watch_->fd());
      RefreshSocketWatch();
    } else {
      // Not fatal: client sockets are then found by the periodic resync.
      VF_LOG(kWarning) << "vhost-user socket watch: " << watch.status().message();
    }
    if (!SetUpMetrics(socket_gid)) return false;
    return SetUpWatchdog();
  }

  // --metrics-listen: the Prometheus listener, in this loop (metrics_server.h
  // says why not a thread), off without the flag.
  bool SetUpMetrics(gid_t socket_gid) {
    if (options_.metrics_listen.empty()) return true;
    std::string bound;
    auto listener = ListenMetrics(options_.metrics_listen, socket_gid, &bound);
    if (!listener.ok()) {
      VF_LOG(kError) << listener.status().message();
      return false;
    }
    auto server = MetricsServer::Create(std::move(listener).value(), bound, MetricsLimits{},
                                        [this] { return RenderMetrics(); });
    if (!server.ok()) {
      VF_LOG(kError) << server.status().message();
      return false;
    }
    metrics_ = std::move(server).value();
    Watch(metrics_->fd());
    VF_LOG(kInfo) << "metrics on http://" << bound << "/metrics";
    return true;
  }

  std::string RenderMetrics() {
    metrics::Exposition exposition;
    MetricsOut out(exposition);
    out.Gauge("vfabric_netd_start_time_seconds", "When netd started, in seconds since the epoch.",
              {}, std::chrono::duration<double>(started_wall_.time_since_epoch()).count());
    out.Gauge("vfabric_netd_build_info", "netd's version (the value is 1).",
              {{"version", std::string(protocol::ProjectVersion())}}, 1);
    controller_->WriteMetrics(out);
    reconcile_stats_.Write(out);
    WriteServerMetrics(control_.get(), metrics_.get(), out);
    metrics_errors_ += out.errors();
    if (out.errors() > 0)
      VF_LOG(kWarning) << "metrics: " << out.errors()
                       << " error(s), the first: " << out.first_error();
    // Counted last, so that this scrape's errors are in it. (Its name and
    // type are fixed here: the writer cannot refuse them.)
    (void)exposition.Counter("vfabric_netd_metrics_errors_total",
                             "Values a scrape could not read (a switch that did not answer, the "
                             "kernel state); each is logged.",
                             {}, metrics_errors_);
    return exposition.Text();
  }

  // The control handler: `netctl apply` is a reconcile pass too (trigger
  // "apply"), timed and counted with the others. Each request's verb is
  // logged at debug level (`netctl log-level debug` to see them).
  json Handle(const json& request) {
    const auto verb = request.is_object() ? request.find("verb") : request.end();
    const bool named = request.is_object() && verb != request.end() && verb->is_string();
    // Quoted and escaped: a verb is any string (invalid UTF-8 replaced, not thrown on).
    VF_LOG(kDebug) << "control request "
                   << (named ? verb->dump(-1, ' ', false, json::error_handler_t::replace)
                             : "without a verb");
    const bool apply = named && *verb == protocol::verb::kApply;
    if (named && *verb == protocol::verb::kCaptureStart) return HandleCapture(request);
    if (!apply) return controller_->Handle(request);
    const auto started = std::chrono::steady_clock::now();
    json answer = controller_->Handle(request);
    const bool ok = answer.is_object() && answer.value("ok", false) == true;
    size_t changed = 0;
    if (ok && answer.contains("result") && answer["result"].is_object())
      changed = answer["result"].value("changed", size_t{0});
    reconcile_stats_.Record("apply", ok, changed, std::chrono::steady_clock::now() - started);
    return answer;
  }

  // capture.start: a capture started on a userspace port gets the
  // connection once its answer is made (netd/include/vfabric/netd/capture.h).
  json HandleCapture(const json& request) {
    json answer = controller_->Handle(request);
    std::unique_ptr<CaptureSession> session = controller_->TakePendingCapture();
    if (!session) return answer;
    auto held = std::make_shared<std::unique_ptr<CaptureSession>>(std::move(session));
    control_->HandOff([this, held](UniqueFd client, std::string line) {
      captures_.Begin(std::move(*held), std::move(client), std::move(line));
    });
    return answer;
  }

  // Controller::Reconcile, counted and timed by what ran it.
  Status TimedReconcile(std::string_view trigger, std::vector<Operation>* applied) {
    const auto started = std::chrono::steady_clock::now();
    Status status = controller_->Reconcile(applied);
    reconcile_stats_.Record(trigger, status.ok(), applied->size(),
                            std::chrono::steady_clock::now() - started);
    RefreshSocketWatch();
    return status;
  }

  // The directories of client-mode vhost-user sockets (socket_watch.h): a
  // frontend's socket appearing there repairs at once, as a kernel event
  // does. Refreshed after each pass (a port added by a control request is
  // watched from the next one).
  void RefreshSocketWatch() {
    if (socket_watch_) socket_watch_->Set(ClientVhostUserSockets(controller_->Desired()));
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
      ArmControlTimer();
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
    if (fd == control_->fd()) return control_->Run(std::chrono::steady_clock::now());
    if (fd == captures_.fd()) return captures_.Reap();
    if (socket_watch_ && fd == socket_watch_->fd()) {
      // As a kernel event: repair soon, but not ahead of a back-off.
      if (socket_watch_->Drain() && !repair_armed_) {
        VF_LOG(kDebug) << "a vhost-user frontend's socket appeared; repairing";
        repair_armed_ = true;
        ArmTimer(repair_timer_.get(), options_.repair_delay_ms);
      }
      return;
    }
    if (metrics_ && fd == metrics_->fd()) return metrics_->Run(std::chrono::steady_clock::now());
    if (fd == control_timer_.get()) {
      // The deadlines of both servers (ArmControlTimer).
      DrainFd(fd);
      control_->Run(std::chrono::steady_clock::now());
      if (metrics_) metrics_->Run(std::chrono::steady_clock::now());
      return;
    }
    if (watchdog_timer_ && fd == watchdog_timer_.get()) {
      DrainFd(fd);
      return Notify("WATCHDOG=1");
    }
    if (fd == guest_timer_.get()) {
      DrainFd(fd);
      guests_->Poll();
      return;
    }
    if (guest_fds_.count(fd)) guests_->OnReadable(fd);
  }

  // Guests change their descriptors as QEMU restarts: watch exactly the
  // current ones, and wake at the next guest deadline.
  void RefreshGuestWatch() {
    std::set<int> now;
    for (int fd : guests_->Fds()) now.insert(fd);
    // A guest fd that went away was closed, which took it out of epoll.
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
      } else if (info.ssi_signo == SIGUSR2) {
        Reexec();
      } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
        VF_LOG(kInfo) << "stopping on signal " << info.ssi_signo;
        stopping_ = true;
      }
    }
  }

  // ---- re-exec without outage (handover.h, DESIGN.md) ----

  std::string HandoverPath() const { return options_.run_dir + "/handover.json"; }

  // SIGUSR2: the switches stop between two turns and are handed over (their
  // descriptors stay open across the exec), then netd execs the binary at
  // its path. Guests stay children of this PID and are adopted from their
  // state files as at any restart. Frames wait in the taps' queues and the
  // packet sockets' rings meanwhile. If the exec fails, this image adopts
  // the handover itself and carries on.
  void Reexec() {
    if (options_.exe_path.empty() || options_.argv.empty()) {
      VF_LOG(kError) << "SIGUSR2: netd's own path is not known; not re-executing";
      return;
    }
    if (access(options_.exe_path.c_str(), X_OK) != 0) {
      VF_LOG(kError) << "SIGUSR2: " << options_.exe_path << ": " << std::strerror(errno)
                     << "; not re-executing";
      return;
    }
    Notify("RELOADING=1\nSTATUS=re-executing");
    const auto began = std::chrono::steady_clock::now();
    HandoverState state = userspace_->HandOver();
    state.kernel_features = kernel_features_;
    state.stopped_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
    size_t ports = 0;
    for (const HandedOverNetwork& network : state.networks) ports += network.ports.size();
    Status written = WriteFileAtomically(HandoverPath(), SerializeHandover(state), 0600);
    if (written.ok()) {
      VF_LOG(kInfo) << "re-executing " << options_.exe_path << " (SIGUSR2): " << ports
                    << " switch port" << (ports == 1 ? "" : "s") << " of " << state.networks.size()
                    << " userspace network" << (state.networks.size() == 1 ? "" : "s")
                    << " handed over in "
                    << std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - began)
                               .count() /
                           1000.0
                    << " ms";
      setenv(kHandoverEnv, HandoverPath().c_str(), 1);
      setenv(kHandoverFdsEnv, FormatFdList(state.Fds()).c_str(), 1);
      std::vector<char*> argv;
      for (const std::string& arg : options_.argv) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      std::fflush(nullptr);
      execv(options_.exe_path.c_str(), argv.data());
      written = Status::FromErrno("exec " + options_.exe_path, errno);
      unsetenv(kHandoverEnv);
      unsetenv(kHandoverFdsEnv);
      unlink(HandoverPath().c_str());
    }
    VF_LOG(kError) << "re-exec: " << written.message()
                   << "; carrying on in this image (the switches restart from the handover)";
    userspace_->StopAll();
    userspace_->Adopt(std::move(state));
    std::vector<Operation> applied;
    Status again = TimedReconcile("reload", &applied);
    if (!again.ok()) VF_LOG(kError) << "re-exec failed: " << again.message();
    Notify("READY=1\nSTATUS=serving");
  }

  // At start: what the image before this one handed over
  // (VFABRIC_NETD_HANDOVER). A state that cannot be read is refused with the
  // reason: netd starts cold, as a plain restart. Either way the descriptors
  // inherited and not handed over are closed (a tap held open would refuse
  // the new open).
  void ReadHandover() {
    const char* path = getenv(kHandoverEnv);
    if (path == nullptr) return;
    const std::string file = path;
    const char* fd_list = getenv(kHandoverFdsEnv);
    const std::set<int> passed = ParseFdList(fd_list != nullptr ? fd_list : "");
    unsetenv(kHandoverEnv);  // not for the guests netd starts
    unsetenv(kHandoverFdsEnv);
    std::string text;
    {
      std::ifstream in(file);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    unlink(file.c_str());
    auto state = ParseHandover(text);
    if (!state.ok()) {
      const size_t closed = CloseUnadopted(passed, {});
      VF_LOG(kError) << file << ": " << state.status().message() << "; starting cold (" << closed
                     << " inherited descriptor" << (closed == 1 ? "" : "s") << " closed)";
      return;
    }
    // Named in the list and not in the file (it should not happen): closed.
    const size_t closed = CloseUnadopted(passed, state->Fds());
    if (closed > 0) VF_LOG(kWarning) << "handover: closed " << closed << " stray descriptor(s)";
    handover_ = std::move(state).value();
  }

  // The handover read at start (ReadHandover), given to the userspace
  // networks for the first reconcile.
  void AdoptHandover() {
    HandoverState state = std::move(*handover_);
    handover_.reset();
    handover_stopped_ns_ = state.stopped_ns;
    size_t ports = 0;
    for (const HandedOverNetwork& network : state.networks) ports += network.ports.size();
    VF_LOG(kInfo) << "handover: adopting " << ports << " switch port" << (ports == 1 ? "" : "s")
                  << " of " << state.networks.size() << " userspace network"
                  << (state.networks.size() == 1 ? "" : "s") << " from the image before";
    userspace_->Adopt(std::move(state));
  }

  void LogHandoverDone() {
    if (handover_stopped_ns_ == 0) return;
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    VF_LOG(kInfo) << "handover: switches forwarding again "
                  << (now - handover_stopped_ns_) / 1000000
                  << " ms after the image before stopped them";
  }

  void Reload() {
    Notify("RELOADING=1");
    VF_LOG(kInfo) << "reloading " << ConfigNames();
    // No file at all (every --config directory without a *.json) is far
    // more often a mistake (a deployment that removed the files before
    // writing new ones, a directory not mounted yet) than a wish to take
    // every guest's network down: the old configuration is kept. Removing
    // every network is said explicitly: `netctl network delete`, or a file
    // holding {"networks": []}.
    const size_t networks = controller_->Desired().networks.size();
    if (networks != 0 && topology::ReadTopologyFiles(options_.config_paths).paths.empty()) {
      VF_LOG(kError) << "reload: " << ConfigNames() << " holds no *.json file; keeping the "
                     << networks << " network(s) of the old configuration (to remove them, "
                     << "use netctl network delete, or leave a file holding "
                     << "{\"networks\": []})";
      Notify("READY=1");
      return;
    }
    auto loaded = Load();
    if (!loaded.ok()) {
      VF_LOG(kError) << "reload: " << loaded.status().message()
                     << "; keeping the old configuration";
    } else {
      controller_->SetConfig(guests_->WithRunningNics(std::move(loaded).value()));
      std::vector<Operation> applied;
      Status status = TimedReconcile("reload", &applied);
      for (const auto& op : applied) VF_LOG(kInfo) << "reload: " << op.Describe();
      if (status.ok()) VF_LOG(kInfo) << "reloaded: " << applied.size() << " operation(s)";
      RetryIfFailed("reload", status);
    }
    Notify("READY=1");
  }

  void OnKernelEvent() {
    auto changed = monitor_->Drain();
    if (!changed.ok()) {
      VF_LOG(kWarning) << "link monitor: " << changed.status().message();
    }
    // A kernel event repairs soon, but not while a failed pass waits out its
    // back-off (RetryIfFailed says why); that retry is a full pass, which
    // repairs whatever the events were about.
    if ((!changed.ok() || *changed) && !repair_armed_) {
      repair_armed_ = true;
      ArmTimer(repair_timer_.get(), options_.repair_delay_ms);
    }
  }

  void Repair(const char* why) {
    std::vector<Operation> applied;
    Status status = TimedReconcile(why, &applied);
    for (const auto& op : applied) VF_LOG(kWarning) << why << ": drift: " << op.Describe();
    RetryIfFailed(why, status);
  }

  // A pass that failed is retried with back-off (1 s, doubling up to the
  // resync interval). Its error is logged once; the same error again says
  // only when the next try is, so a failure that lasts (a link the kernel
  // refuses) neither floods the log nor spins the loop. Kernel events do not
  // bring a waiting retry forward: the undo of the failed pass makes events
  // of its own (thousands at scale), which would turn the back-off into a
  // busy loop. A pass that succeeds resets both.
  void RetryIfFailed(const char* why, const Status& status) {
    if (status.ok()) {
      if (!last_failure_.empty()) VF_LOG(kInfo) << why << ": converged again";
      last_failure_.clear();
      retry_delay_ms_ = 0;
      failures_in_a_row_ = 0;
      return;
    }
    retry_delay_ms_ = NextRetryDelayMs();
    if (status.message() != last_failure_)
      VF_LOG(kError) << why << ": " << status.message() << "; retrying in "
                     << retry_delay_ms_ / 1000 << " s";
    else
      VF_LOG(kInfo) << why << ": still failing; retrying in " << retry_delay_ms_ / 1000 << " s";
    last_failure_ = status.message();
    repair_armed_ = true;
    ArmTimer(repair_timer_.get(), retry_delay_ms_);
  }

  int NextRetryDelayMs() {
    const int64_t delay = int64_t{1000} << std::min(failures_in_a_row_, 15);
    ++failures_in_a_row_;
    return static_cast<int>(
        std::max<int64_t>(1000, std::min<int64_t>(delay, options_.resync_interval_ms)));
  }

  // Wakes the loop when the control server (or the metrics server) has
  // timeouts due, or requests it read but left for the next turn.
  void ArmControlTimer() {
    std::optional<std::chrono::steady_clock::time_point> deadline = control_->NextDeadline();
    if (auto metrics_deadline = metrics_ ? metrics_->NextDeadline() : std::nullopt;
        metrics_deadline && (!deadline || *metrics_deadline < *deadline))
      deadline = metrics_deadline;
    if (deadline) {
      const auto delay = std::chrono::ceil<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      ArmTimer(control_timer_.get(),
               static_cast<int>(std::clamp<int64_t>(delay.count(), 0, 3600 * 1000)));
    } else {
      itimerspec spec{};
      timerfd_settime(control_timer_.get(), 0, &spec, nullptr);
    }
  }

  const DaemonOptions& options_;
  // When this netd started (`netctl status`: uptime).
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  const std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();
  std::unique_ptr<Kernel> kernel_;
  std::unique_ptr<CreateJournal> journal_;
  std::unique_ptr<JournaledKernel> journaled_kernel_;  // over kernel_, when not a dry run
  // Before guests_: the guests' NICs ask its port backends (Backends()).
  std::unique_ptr<UserspaceNetworks> userspace_;
  std::unique_ptr<GuestManager> guests_;
  std::unique_ptr<Controller> controller_;
  UniqueFd guest_timer_;
  std::set<int> guest_fds_;
  std::unique_ptr<LinkMonitor> monitor_;
  KernelFeatures kernel_features_;         // probed at start, or from the handover
  std::optional<HandoverState> handover_;  // ReadHandover, until AdoptHandover
  int64_t handover_stopped_ns_ = 0;        // AdoptHandover: when the switches stopped
  UniqueFd signal_fd_, epoll_, repair_timer_, resync_timer_;
  UniqueFd watchdog_timer_;  // only when systemd asks for WATCHDOG=1
  ControlLimits control_limits_;
  std::unique_ptr<ControlServer> control_;
  UniqueFd control_timer_;                   // the control and metrics servers' deadlines
  std::optional<SocketWatch> socket_watch_;  // client-mode vhost-user sockets appearing
  std::unique_ptr<MetricsServer> metrics_;   // with --metrics-listen
  ReconcileStats reconcile_stats_;
  uint64_t metrics_errors_ = 0;
  bool repair_armed_ = false;
  std::string last_failure_;   // the last failed pass's error, logged once
  int retry_delay_ms_ = 0;     // back-off of the retry armed; 0 after a pass that succeeded
  int failures_in_a_row_ = 0;  // for the next back-off (NextRetryDelayMs)
  bool stopping_ = false;
  // Last: its sessions' threads end first (capture.h).
  CaptureSessions captures_;
};

}  // namespace

int RunDaemon(const DaemonOptions& options) { return Daemon(options).Run(); }

}  // namespace vfabric::netd
