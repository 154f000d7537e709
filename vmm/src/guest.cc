#include "vfabric/vmm/guest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "process.h"
#include "vfabric/common/log.h"
#include "vfabric/vmm/nic_plug.h"
#include "vfabric/vmm/qemu_command.h"

namespace vfabric::vmm {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kQmpRetry{50};
constexpr int kFirstTapFd = 3;

Status MakeDirs(const std::string& path) {
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::FromErrno("mkdir " + prefix, errno);
  }
  return Status::Ok();
}

// The last non-empty line of `path` (QEMU's last words), at most 300 bytes.
std::string LastLine(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size <= 0) return "";
  const off_t want = std::min<off_t>(size, 4096);
  std::string tail(static_cast<size_t>(want), '\0');
  if (::pread(fd.get(), tail.data(), tail.size(), size - want) != want) return "";
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' '))
    tail.pop_back();
  size_t start = tail.find_last_of('\n');
  std::string line = start == std::string::npos ? tail : tail.substr(start + 1);
  while (!line.empty() && line.back() == '\r') line.pop_back();
  return line.size() > 300 ? line.substr(0, 300) : line;
}

}  // namespace

std::string_view ToString(GuestState state) {
  switch (state) {
    case GuestState::kStopped:
      return "stopped";
    case GuestState::kStarting:
      return "starting";
    case GuestState::kRunning:
      return "running";
    case GuestState::kStopping:
      return "stopping";
    case GuestState::kRestartWait:
      return "restart-wait";
    case GuestState::kFailed:
      return "failed";
  }
  return "unknown";
}

Guest::Guest(topology::VmConfig vm, std::vector<GuestNic> nics, GuestOptions options,
             RestartPolicy policy)
    : vm_(std::move(vm)),
      nics_(std::move(nics)),
      options_(std::move(options)),
      restart_(policy, options_.backoff),
      qmp_socket_(options_.run_dir + "/qmp.sock"),
      console_socket_(options_.run_dir + "/console.sock"),
      console_log_(options_.run_dir + "/console.log"),
      pidfile_(options_.run_dir + "/qemu.pid") {}

Result<std::unique_ptr<Guest>> Guest::Create(topology::VmConfig vm, std::vector<GuestNic> nics,
                                             GuestOptions options) {
  const std::string what = "vm " + vm.name;
  if (vm.name.empty()) return Status::Error("vm: empty name");
  if (vm.kernel.empty() && vm.disk.empty())
    return Status::Error(what + ": needs a kernel or a disk");
  Result<RestartPolicy> policy = ParseRestartPolicy(vm.restart);
  if (!policy.ok()) return policy.status().WithContext(what);
  if (vm.accel != "auto" && vm.accel != "kvm" && vm.accel != "tcg")
    return Status::Error(what + ": accel \"" + vm.accel + "\": want auto, kvm or tcg");
  std::set<std::string> ids;
  for (const GuestNic& nic : nics) {
    if (nic.id.empty() || !ids.insert(nic.id).second)
      return Status::Error(what + ": NIC id \"" + nic.id + "\" empty or used twice");
    if (!nic.tap.valid() && nic.vhost_user_socket.empty())
      return Status::Error(what + ": NIC " + nic.id + ": no tap descriptor");
  }
  if (options.run_dir.empty()) return Status::Error(what + ": no run directory");
  if (options.run_dir.size() + sizeof("/console.sock") > sizeof(sockaddr_un::sun_path))
    return Status::Error(what +
                         ": run directory path too long for a unix socket: " + options.run_dir);
  Status dirs = MakeDirs(options.run_dir);
  if (!dirs.ok()) return dirs.WithContext(what);
  return std::unique_ptr<Guest>(
      new Guest(std::move(vm), std::move(nics), std::move(options), *policy));
}

Result<std::unique_ptr<Guest>> Guest::Adopt(topology::VmConfig vm, const RunRecord& record,
                                            GuestOptions options) {
  const std::string what = "adopt vm " + vm.name;
  Result<RestartPolicy> policy = ParseRestartPolicy(vm.restart);
  if (!policy.ok()) return policy.status().WithContext(what);
  if (options.run_dir.empty()) return Status::Error(what + ": no run directory");
  if (record.name != vm.name)
    return Status::Error(what + ": the record is of vm \"" + record.name + "\"");
  std::vector<GuestNic> nics;
  std::set<std::string> ids;
  for (const RunRecordNic& n : record.nics) {
    if (n.id.empty() || !ids.insert(n.id).second)
      return Status::Error(what + ": recorded NIC id \"" + n.id + "\" empty or used twice");
    GuestNic nic;
    nic.id = n.id;
    nic.network = n.network;
    nic.port = n.port;
    nic.mac = n.mac;
    nic.attached = n.attached;
    nic.access_vlan = n.access_vlan;
    nic.vhost_user_socket = n.vhost_user_socket;
    nics.push_back(std::move(nic));
  }
  std::unique_ptr<Guest> guest(
      new Guest(std::move(vm), std::move(nics), std::move(options), *policy));
  if (record.qmp_socket != guest->qmp_socket_)
    return Status::Error(what + ": recorded QMP socket " + record.qmp_socket + " is not " +
                         guest->qmp_socket_);
  Status verified = VerifyQemuProcess(record.pid, guest->qmp_socket_);
  if (!verified.ok()) return verified.WithContext(what);
  Result<internal::ChildProcess> process = internal::ChildProcess::Adopt(record.pid);
  if (!process.ok()) return process.status().WithContext(what);
  // Checked again now that the pidfd pins the process: not a pid recycled
  // between the check and pidfd_open.
  verified = VerifyQemuProcess(record.pid, guest->qmp_socket_);
  if (!verified.ok()) {
    process->Release();
    return verified.WithContext(what);
  }
  guest->child_ = std::make_unique<internal::ChildProcess>(std::move(*process));
  Result<std::unique_ptr<QmpClient>> qmp =
      QmpClient::Connect(guest->qmp_socket_, "qmp " + guest->vm_.name, guest->options_.qmp_timeout);
  Result<std::string> run_state =
      qmp.ok() ? (*qmp)->QueryStatus() : Result<std::string>(qmp.status());
  if (!run_state.ok()) {
    guest->child_->Release();  // left as it was; the caller decides
    guest->child_.reset();
    return run_state.status().WithContext(what);
  }
  guest->qmp_ = std::move(*qmp);
  guest->accel_ =
      AccelChoice{record.accel == "kvm" ? Accel::kKvm : Accel::kTcg, record.accel_reason};
  guest->argv_ = record.argv;
  guest->shared_memory_ = std::any_of(record.argv.begin(), record.argv.end(), [](const auto& a) {
    return a.starts_with("memory-backend-memfd,") && a.find(",share=on") != std::string::npos;
  });
  guest->detached_ports_ = record.detached_ports;
  guest->state_ = GuestState::kRunning;
  guest->started_at_ = guest->Now();
  VF_LOG(kInfo) << "vm " << guest->vm_.name << ": adopted qemu pid " << record.pid << " ("
                << record.accel << ", qemu " << *run_state << ")";
  return guest;
}

Guest::~Guest() {
  qmp_.reset();
  if (child_ && child_->running()) {
    child_->Signal(SIGTERM);
    if (!child_->WaitFor(milliseconds(1000))) child_->KillAndReap();
  }
  if (child_) ForgetProcess();
  child_.reset();
}

void Guest::LeaveRunning() {
  if (!record_error_.empty()) {
    // The last chance to record the QEMU left running for the next supervisor.
    WriteRecord();
    if (!record_error_.empty())
      VF_LOG(kError) << "vm " << vm_.name << ": left running without a current guest.json ("
                     << record_error_ << "): the next supervisor may not adopt it as it is";
    record_retry_.reset();
  }
  qmp_.reset();
  if (child_ && child_->running())
    VF_LOG(kInfo) << "vm " << vm_.name << ": left running (qemu pid " << child_->pid() << ")";
  if (child_) child_->Release();
  child_.reset();
  for (GuestNic& nic : nics_) nic.tap.Reset();
  state_ = GuestState::kStopped;
}

bool Guest::adopted() const { return child_ && child_->adopted(); }

void Guest::WriteRecord() {
  record_retry_.reset();
  if (!child_ || !child_->running() || !accel_) {
    record_error_.clear();  // no QEMU, no record to keep
    return;
  }
  RunRecord record;
  record.name = vm_.name;
  record.pid = child_->pid();
  record.qmp_socket = qmp_socket_;
  record.pidfile = pidfile_;
  record.accel = std::string(ToString(accel_->accel));
  record.accel_reason = accel_->reason;
  record.config = MachineConfigOf(vm_);
  record.config_hash = ConfigHash(record.config);
  record.argv = argv_;
  for (const GuestNic& nic : nics_)
    record.nics.push_back({nic.id, nic.network, nic.port, nic.mac, nic.attached, nic.access_vlan,
                           nic.vhost_user_socket});
  record.detached_ports = detached_ports_;
  Status s = WriteRunRecord(options_.run_dir, record);
  if (s.ok()) {
    if (!record_error_.empty()) VF_LOG(kInfo) << "vm " << vm_.name << ": guest.json saved again";
    record_error_.clear();
    record_backoff_ = milliseconds(0);
    return;
  }
  // Without a current record a later supervisor would not know this QEMU
  // (or its hot-attached NICs) and would kill or restart it: try again
  // until it takes, and say so once per spell, not at every try.
  ++record_write_failures_;
  if (record_error_.empty())
    VF_LOG(kWarning) << "vm " << vm_.name << ": " << s.message()
                     << " (the record before stays; retrying until it is saved)";
  record_error_ = s.message();
  record_backoff_ = std::min<milliseconds>(
      std::max<milliseconds>(record_backoff_ * 2, milliseconds(1000)), milliseconds(30000));
  record_retry_ = Now() + record_backoff_;
}

void Guest::ForgetProcess() {
  record_retry_.reset();
  record_error_.clear();
  record_backoff_ = milliseconds(0);
  RemoveRunRecord(options_.run_dir);
  ::unlink(pidfile_.c_str());
}

Guest::TimePoint Guest::Now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

bool Guest::vhost() const {
  if (options_.vhost) return *options_.vhost;
  return ::access("/dev/vhost-net", R_OK | W_OK) == 0;
}

GuestStatus Guest::status() const {
  GuestStatus s;
  s.name = vm_.name;
  s.state = state_;
  s.pid = child_ && child_->running() ? child_->pid() : -1;
  s.accel = accel_;
  s.restart = restart_.policy();
  s.restarts = restart_.restarts();
  s.last_exit = last_exit_;
  s.error = error_;
  s.console_log = console_log_;
  s.console_socket = console_socket_;
  for (const GuestNic& nic : nics_)
    s.nics.push_back({nic.id, nic.network, nic.port, nic.mac, nic.vhost_user_socket});
  s.adopted = adopted();
  s.record_error = record_error_;
  s.record_write_failures = record_write_failures_;
  return s;
}

void Guest::Fail(std::string why) {
  VF_LOG(kWarning) << "vm " << vm_.name << ": " << why;
  error_ = std::move(why);
  state_ = GuestState::kFailed;
}

Status Guest::Start() {
  if (state_ == GuestState::kStarting || state_ == GuestState::kRunning)
    return Status::Error("start " + vm_.name + ": already " + std::string(ToString(state_)));
  if (state_ == GuestState::kStopping)
    return Status::Error("start " + vm_.name + ": still stopping");
  restart_.Reset();
  stop_requested_ = false;
  Status s = Spawn();
  if (!s.ok()) {
    Fail(s.message());
    return s;
  }
  return Status::Ok();
}

Status Guest::Spawn() {
  const std::string what = "start " + vm_.name;
  for (const auto& [kind, path] : {std::pair<const char*, const std::string&>{"kernel", vm_.kernel},
                                   {"initrd", vm_.initrd},
                                   {"disk", vm_.disk}}) {
    if (!path.empty() && ::access(path.c_str(), R_OK) != 0)
      return Status::FromErrno(what + ": " + kind + " " + path, errno);
  }
  if (!accel_) {
    Result<AccelChoice> accel =
        ChooseAccelerator(vm_.accel, {options_.qemu_binary, vm_.kernel, milliseconds(2500)});
    if (!accel.ok()) return accel.status().WithContext(what);
    accel_ = *accel;
    VF_LOG(kInfo) << "vm " << vm_.name << ": accelerator " << accel_->reason;
  }
  QemuLaunch launch;
  launch.qemu_binary = options_.qemu_binary;
  launch.accel = accel_->accel;
  launch.qmp_socket = qmp_socket_;
  launch.pidfile = pidfile_;
  launch.console_socket = console_socket_;
  launch.console_log = console_log_;
  internal::SpawnOptions spawn;
  spawn.new_session = true;  // a ^C to the supervisor's process group is not QEMU's
  const bool use_vhost = vhost();
  for (GuestNic& nic : nics_) {
    if (nic.tap.valid() || !nic.vhost_user_socket.empty()) continue;
    if (!options_.open_tap)
      return Status::Error(what + ": NIC " + nic.id + " (" + nic.port + "): no tap descriptor");
    Result<UniqueFd> tap = options_.open_tap(nic);
    if (!tap.ok()) return tap.status().WithContext(what + ": NIC " + nic.id);
    nic.tap = std::move(*tap);
  }
  int child_fd = kFirstTapFd;
  for (const GuestNic& nic : nics_) {
    if (!nic.vhost_user_socket.empty()) {
      launch.nics.push_back({nic.id, -1, nic.mac, false, nic.vhost_user_socket});
      continue;
    }
    launch.nics.push_back({nic.id, child_fd, nic.mac, use_vhost, ""});
    spawn.fds.push_back({nic.tap.get(), child_fd});
    ++child_fd;
  }
  launch.shared_memory =
      options_.shared_memory || std::any_of(nics_.begin(), nics_.end(), [](const GuestNic& nic) {
        return !nic.vhost_user_socket.empty();
      });
  spawn.argv = BuildQemuCommand(vm_, launch);
  // QEMU's own messages (stderr) go to the console log too, so one file tells
  // what happened to the guest.
  UniqueFd log(::open(console_log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return Status::FromErrno(what + ": open " + console_log_, errno);
  spawn.stdout_fd = log.get();
  spawn.stderr_fd = log.get();
  ::unlink(qmp_socket_.c_str());  // so a stale socket is not mistaken for this QEMU's
  ::unlink(pidfile_.c_str());
  Result<internal::ChildProcess> child = internal::Spawn(spawn);
  if (!child.ok()) return child.status().WithContext(what);
  child_ = std::make_unique<internal::ChildProcess>(std::move(*child));
  argv_ = spawn.argv;
  shared_memory_ = launch.shared_memory;
  qmp_.reset();
  guest_shutdown_ = false;
  WriteRecord();
  state_ = GuestState::kStarting;
  error_.clear();
  started_at_ = Now();
  deadline_ = started_at_ + options_.start_timeout;
  next_qmp_try_ = started_at_;
  VF_LOG(kInfo) << "vm " << vm_.name << ": started qemu pid " << child_->pid() << " ("
                << ToString(accel_->accel) << ")";
  return Status::Ok();
}

void Guest::TryConnectQmp() {
  Result<std::unique_ptr<QmpClient>> client =
      QmpClient::Connect(qmp_socket_, "qmp " + vm_.name, options_.qmp_timeout);
  if (!client.ok()) {
    // Not listening yet (ENOENT, ECONNREFUSED): try again shortly.
    next_qmp_try_ = Now() + kQmpRetry;
    VF_LOG(kDebug) << "vm " << vm_.name << ": " << client.status().message();
    return;
  }
  qmp_ = std::move(*client);
  Result<std::string> run_state = qmp_->QueryStatus();
  if (!run_state.ok()) {
    VF_LOG(kWarning) << "vm " << vm_.name << ": " << run_state.status().message();
    qmp_.reset();
    next_qmp_try_ = Now() + kQmpRetry;
    return;
  }
  state_ = GuestState::kRunning;
  VF_LOG(kInfo) << "vm " << vm_.name << ": running (qemu " << *run_state << ")";
}

void Guest::RequestStop() {
  stop_requested_ = true;
  switch (state_) {
    case GuestState::kRestartWait:
    case GuestState::kFailed:
      state_ = GuestState::kStopped;
      return;
    case GuestState::kStopped:
    case GuestState::kStopping:
      return;
    case GuestState::kStarting:
      if (child_) child_->Signal(SIGKILL);
      state_ = GuestState::kStopping;
      deadline_ = Now();
      return;
    case GuestState::kRunning:
      break;
  }
  state_ = GuestState::kStopping;
  deadline_ = Now() + options_.stop_timeout;
  Status s = qmp_ ? qmp_->SystemPowerdown() : Status::Error("no QMP connection");
  if (!s.ok()) {
    VF_LOG(kWarning) << "vm " << vm_.name << ": system_powerdown: " << s.message() << "; killing";
    if (child_) child_->Signal(SIGKILL);
  }
}

Status Guest::Stop() {
  RequestStop();
  return WaitForState(GuestState::kStopped, options_.stop_timeout + milliseconds(5000));
}

int Guest::pollfd() const { return child_ && child_->running() ? child_->pollfd() : -1; }

int Guest::qmp_fd() const { return qmp_ ? qmp_->fd() : -1; }

void Guest::OnQmpReadable() {
  if (!qmp_) return;
  for (const nlohmann::json& event : qmp_->TakeEvents()) {
    VF_LOG(kDebug) << "vm " << vm_.name << ": qmp event " << event.dump();
    // {"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}
    if (IsGuestShutdownEvent(event)) guest_shutdown_ = true;
  }
}

void Guest::OnChildExit() {
  if (!child_) return;
  if (child_->adopted()) OnQmpReadable();  // a SHUTDOWN event tells a clean exit
  if (!child_->TryReap()) return;
  const int status = *child_->exit_status();
  bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  last_exit_ = internal::DescribeWaitStatus(status);
  if (child_->adopted()) {
    // Not our child: no wait status. A QMP SHUTDOWN from the guest means it
    // powered off (-no-reboot: QEMU exits 0); anything else is a failure.
    failed = !guest_shutdown_;
    last_exit_ = guest_shutdown_ ? "exited after the guest shut down (adopted qemu)"
                                 : "gone (adopted qemu: exit status unknown)";
  }
  child_.reset();
  qmp_.reset();
  ForgetProcess();
  const TimePoint now = Now();
  VF_LOG(kInfo) << "vm " << vm_.name << ": qemu " << last_exit_;
  if (stop_requested_ || state_ == GuestState::kStopping) {
    state_ = GuestState::kStopped;
    return;
  }
  const bool was_starting = state_ == GuestState::kStarting;
  std::optional<TimePoint> again = restart_.OnExit(started_at_, now, failed, false);
  if (again) {
    state_ = GuestState::kRestartWait;
    deadline_ = *again;
    error_ = "qemu " + last_exit_;
    return;
  }
  if (failed || was_starting) {
    const std::string last_words = LastLine(console_log_);
    Fail("qemu " + last_exit_ + (last_words.empty() ? "" : ": " + last_words) + " (see " +
         console_log_ + ")");
  } else {
    state_ = GuestState::kStopped;
  }
}

void Guest::Poll() {
  if (child_ && child_->pollfd() >= 0) {
    struct ::pollfd p {
      child_->pollfd(), POLLIN, 0
    };
    if (::poll(&p, 1, 0) > 0) OnChildExit();
  } else if (child_) {
    OnChildExit();
  }
  const TimePoint now = Now();
  switch (state_) {
    case GuestState::kStarting:
      if (now >= next_qmp_try_) TryConnectQmp();
      if (state_ == GuestState::kStarting && now >= deadline_) {
        if (child_) child_->KillAndReap();
        child_.reset();
        ForgetProcess();
        Fail("start " + vm_.name + ": QMP not answering after " +
             std::to_string(options_.start_timeout.count()) + " ms (see " + console_log_ + ")");
      }
      break;
    case GuestState::kStopping:
      if (now >= deadline_ && child_ && child_->running()) {
        VF_LOG(kWarning) << "vm " << vm_.name << ": no power-down within "
                         << options_.stop_timeout.count() << " ms; killing";
        child_->Signal(SIGKILL);
        deadline_ = now + milliseconds(1000);
      }
      break;
    case GuestState::kRestartWait:
      if (now >= deadline_) {
        VF_LOG(kInfo) << "vm " << vm_.name << ": restarting (policy " << ToString(restart_.policy())
                      << ")";
        Status s = Spawn();
        if (!s.ok()) {
          std::optional<TimePoint> again = restart_.OnExit(now, now, true, false);
          if (again) {
            deadline_ = *again;
            error_ = s.message();
          } else {
            Fail(s.message());
          }
        }
      }
      break;
    default:
      break;
  }
  if (record_retry_ && Now() >= *record_retry_) WriteRecord();
}

std::optional<Guest::TimePoint> Guest::NextDeadline() const {
  std::optional<TimePoint> next;
  switch (state_) {
    case GuestState::kStarting:
      next = std::min(next_qmp_try_, deadline_);
      break;
    case GuestState::kStopping:
    case GuestState::kRestartWait:
      next = deadline_;
      break;
    default:
      break;
  }
  if (record_retry_ && (!next || *record_retry_ < *next)) next = record_retry_;
  return next;
}

Status Guest::WaitForState(GuestState want, milliseconds timeout) {
  const auto real_deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Poll();
    if (state_ == want) return Status::Ok();
    if (state_ == GuestState::kFailed ||
        (state_ == GuestState::kStopped && want != GuestState::kStopped)) {
      return Status::Error("vm " + vm_.name + ": " + std::string(ToString(state_)) +
                           " while waiting for " + std::string(ToString(want)) +
                           (error_.empty() ? "" : ": " + error_));
    }
    const auto real_now = std::chrono::steady_clock::now();
    if (real_now >= real_deadline)
      return Status::Error("vm " + vm_.name + ": still " + std::string(ToString(state_)) +
                           " after " + std::to_string(timeout.count()) + " ms waiting for " +
                           std::string(ToString(want)));
    long wait_ms = std::chrono::duration_cast<milliseconds>(real_deadline - real_now).count();
    if (std::optional<TimePoint> next = NextDeadline()) {
      long until = std::chrono::duration_cast<milliseconds>(*next - Now()).count();
      wait_ms = std::clamp(until, 0L, wait_ms);
    }
    wait_ms = std::min(wait_ms, 200L);
    struct ::pollfd p {
      pollfd(), POLLIN, 0
    };
    ::poll(&p, p.fd >= 0 ? 1 : 0, static_cast<int>(wait_ms));
  }
}

std::string Guest::FreeNicId() const {
  for (size_t n = 0;; ++n) {
    std::string id = "nic" + std::to_string(n);
    if (std::none_of(nics_.begin(), nics_.end(),
                     [&id](const GuestNic& nic) { return nic.id == id; }))
      return id;
  }
}

bool Guest::shared_memory() const {
  if (child_ && child_->running()) return shared_memory_;
  return options_.shared_memory || std::any_of(nics_.begin(), nics_.end(), [](const GuestNic& nic) {
           return !nic.vhost_user_socket.empty();
         });
}

Status Guest::AttachNic(GuestNic nic) {
  const std::string what = "attach " + nic.id + " to " + vm_.name;
  if (state_ != GuestState::kRunning || !qmp_)
    return Status::Error(what + ": guest is " + std::string(ToString(state_)));
  if (!nic.tap.valid() && nic.vhost_user_socket.empty())
    return Status::Error(what + ": no tap descriptor");
  for (const GuestNic& existing : nics_) {
    if (existing.id == nic.id)
      return Status::Error(what + ": the guest already has a NIC " + nic.id);
  }
  if (!nic.vhost_user_socket.empty()) {
    // QEMU cannot share guest RAM after the fact: a vhost-user backend can
    // only map memory the machine was started with as a shared memfd.
    if (!shared_memory_)
      return Status::Error(what +
                               ": a vhost-user NIC needs the guest's memory shared, and this "
                               "qemu was started without memory-backend-memfd share=on (a "
                               "guest gets it with a vhost-user NIC or a NIC on a userspace "
                               "network at start)",
                           ENOTSUP);
    std::vector<QmpStep> steps = VhostUserAttachCommands(nic.id, nic.vhost_user_socket, nic.mac);
    for (size_t i = 0; i < steps.size(); ++i) {
      Result<nlohmann::json> r = qmp_->Execute(steps[i].run.execute, steps[i].run.arguments);
      if (r.ok()) continue;
      for (size_t j = i; j-- > 0;) {
        if (!steps[j].undo) continue;
        Result<nlohmann::json> undone =
            qmp_->Execute(steps[j].undo->execute, steps[j].undo->arguments);
        if (!undone.ok())
          VF_LOG(kWarning) << "vm " << vm_.name << ": " << what
                           << ": undo: " << undone.status().message();
        if (steps[j].undo_covers_earlier) break;
      }
      return r.status().WithContext(what);
    }
  } else {
    VF_RETURN_IF_ERROR(AttachTap(nic));
  }
  VF_LOG(kInfo) << "vm " << vm_.name << ": attached " << nic.id << " (" << nic.port << ", "
                << nic.mac.ToString()
                << (nic.vhost_user_socket.empty() ? "" : ", vhost-user " + nic.vhost_user_socket)
                << ")";
  nic.attached = true;
  nics_.push_back(std::move(nic));
  WriteRecord();
  return Status::Ok();
}

Status Guest::AttachTap(const GuestNic& nic) {
  const std::string what = "attach " + nic.id + " to " + vm_.name;
  const std::string fd_name = "fd-" + nic.id;
  const std::string netdev = "net-" + nic.id;
  Status s = qmp_->GetFd(fd_name, nic.tap.get());
  if (!s.ok()) return s.WithContext(what);
  s = qmp_->NetdevAddTap(netdev, fd_name, vhost());
  if (!s.ok()) {
    (void)qmp_->CloseFd(fd_name);
    return s.WithContext(what);
  }
  s = qmp_->DeviceAddVirtioNet(nic.id, netdev, nic.mac);
  if (!s.ok()) {
    (void)qmp_->NetdevDel(netdev);
    return s.WithContext(what);
  }
  return Status::Ok();
}

Status Guest::DetachNic(const std::string& id, milliseconds timeout) {
  const std::string what = "detach " + id + " from " + vm_.name;
  auto it =
      std::find_if(nics_.begin(), nics_.end(), [&id](const GuestNic& n) { return n.id == id; });
  if (it == nics_.end()) return Status::Error(what + ": no such NIC");
  if (state_ != GuestState::kRunning || !qmp_) {
    // Not running: just forget it, so the next start goes without it.
    if (!it->attached) detached_ports_.push_back(it->port);
    nics_.erase(it);
    return Status::Ok();
  }
  Status s = qmp_->DeviceDel(id);
  if (!s.ok()) return s.WithContext(what);
  s = qmp_->WaitForDeviceDeleted(id, timeout);
  if (!s.ok()) return s.WithContext(what);
  if (it->vhost_user_socket.empty()) {
    s = qmp_->NetdevDel("net-" + id);
    if (!s.ok()) return s.WithContext(what);
  } else {
    for (const QmpCommand& command : VhostUserDetachCommands(id)) {
      Result<nlohmann::json> r = qmp_->Execute(command.execute, command.arguments);
      if (!r.ok()) return r.status().WithContext(what);
    }
  }
  VF_LOG(kInfo) << "vm " << vm_.name << ": detached " << id;
  if (!it->attached) detached_ports_.push_back(it->port);
  nics_.erase(it);
  WriteRecord();
  return Status::Ok();
}

}  // namespace vfabric::vmm
