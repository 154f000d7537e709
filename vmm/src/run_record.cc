#include "vfabric/vmm/run_record.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "vfabric/common/atomic_file.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::vmm {
namespace {

using nlohmann::json;

constexpr const char* kFile = "guest.json";

Result<std::string> ReadAll(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("open " + path, errno);
  std::string text;
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read " + path, errno);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

json MachineJson(const MachineConfig& c) {
  return {
      {"memory_mb", c.memory_mb}, {"vcpus", c.vcpus},     {"accel", c.accel}, {"kernel", c.kernel},
      {"initrd", c.initrd},       {"cmdline", c.cmdline}, {"disk", c.disk}};
}

// Typed field access with errors naming the field.
class Reader {
 public:
  explicit Reader(const json& object, std::string where)
      : object_(object), where_(std::move(where)) {}
  Status error() const { return error_; }

  std::string String(const char* key, bool required = true) {
    if (!object_.contains(key)) {
      if (required) Fail(key, "missing");
      return "";
    }
    if (!object_[key].is_string()) {
      Fail(key, "want a string");
      return "";
    }
    return object_[key].get<std::string>();
  }
  int64_t Integer(const char* key) {
    if (!object_.contains(key) || !object_[key].is_number_integer()) {
      Fail(key, "want an integer");
      return 0;
    }
    return object_[key].get<int64_t>();
  }
  bool Bool(const char* key) {
    if (!object_.contains(key)) return false;
    if (!object_[key].is_boolean()) {
      Fail(key, "want true or false");
      return false;
    }
    return object_[key].get<bool>();
  }
  std::vector<std::string> Strings(const char* key) {
    std::vector<std::string> out;
    if (!object_.contains(key)) return out;
    if (!object_[key].is_array()) {
      Fail(key, "want an array of strings");
      return out;
    }
    for (const json& item : object_[key]) {
      if (!item.is_string()) {
        Fail(key, "want an array of strings");
        return {};
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  void Fail(const char* key, const std::string& what) {
    if (error_.ok()) error_ = Status::Error(where_ + "\"" + key + "\": " + what);
  }

 private:
  const json& object_;
  std::string where_;
  Status error_ = Status::Ok();
};

}  // namespace

MachineConfig MachineConfigOf(const topology::VmConfig& vm) {
  return {vm.memory_mb, vm.vcpus, vm.accel, vm.kernel, vm.initrd, vm.cmdline, vm.disk};
}

std::string ConfigHash(const MachineConfig& config) {
  const std::string text = MachineJson(config).dump();
  uint64_t hash = 14695981039346656037ull;
  for (char c : text) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

std::string DescribeDifference(const MachineConfig& was, const MachineConfig& now) {
  std::string out;
  auto add = [&out](const char* field, const std::string& a, const std::string& b) {
    if (a == b) return;
    out += (out.empty() ? "" : ", ") + std::string(field) + " " + (a.empty() ? "\"\"" : a) +
           " -> " + (b.empty() ? "\"\"" : b);
  };
  add("memory_mb", std::to_string(was.memory_mb), std::to_string(now.memory_mb));
  add("vcpus", std::to_string(was.vcpus), std::to_string(now.vcpus));
  add("accel", was.accel, now.accel);
  add("kernel", was.kernel, now.kernel);
  add("initrd", was.initrd, now.initrd);
  add("cmdline", was.cmdline, now.cmdline);
  add("disk", was.disk, now.disk);
  return out;
}

std::string RunRecordPath(const std::string& run_dir) { return run_dir + "/" + kFile; }

std::string RunRecordToJson(const RunRecord& r) {
  json nics = json::array();
  for (const RunRecordNic& nic : r.nics)
    nics.push_back({{"id", nic.id},
                    {"network", nic.network},
                    {"port", nic.port},
                    {"mac", nic.mac.ToString()},
                    {"attached", nic.attached},
                    {"access_vlan", nic.access_vlan ? json(nic.access_vlan) : json(nullptr)},
                    {"vhost_user_socket",
                     nic.vhost_user_socket.empty() ? json(nullptr) : json(nic.vhost_user_socket)}});
  json out = {{"version", RunRecord::kVersion},
              {"name", r.name},
              {"pid", r.pid},
              {"qmp_socket", r.qmp_socket},
              {"pidfile", r.pidfile},
              {"accel", r.accel},
              {"accel_reason", r.accel_reason},
              {"config", MachineJson(r.config)},
              {"config_hash", r.config_hash},
              {"argv", r.argv},
              {"nics", nics},
              {"detached_ports", r.detached_ports}};
  return out.dump(2) + "\n";
}

Result<RunRecord> ParseRunRecord(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return Status::Error(std::string(kFile) + ": not a JSON object");
  Reader top(doc, std::string(kFile) + ": ");
  if (top.Integer("version") != RunRecord::kVersion) {
    VF_RETURN_IF_ERROR(top.error());
    return Status::Error(std::string(kFile) + ": version " + doc["version"].dump() + ": want " +
                         std::to_string(RunRecord::kVersion));
  }
  RunRecord r;
  r.name = top.String("name");
  const int64_t pid = top.Integer("pid");
  if (top.error().ok() && pid <= 0) top.Fail("pid", "want a positive integer");
  r.pid = static_cast<pid_t>(pid);
  r.qmp_socket = top.String("qmp_socket");
  r.pidfile = top.String("pidfile", false);
  r.accel = top.String("accel");
  if (top.error().ok() && r.accel != "kvm" && r.accel != "tcg")
    top.Fail("accel", "want kvm or tcg");
  r.accel_reason = top.String("accel_reason", false);
  r.config_hash = top.String("config_hash");
  r.argv = top.Strings("argv");
  r.detached_ports = top.Strings("detached_ports");
  VF_RETURN_IF_ERROR(top.error());
  if (!doc.contains("config") || !doc["config"].is_object())
    return Status::Error(std::string(kFile) + ": \"config\": want an object");
  Reader config(doc["config"], std::string(kFile) + ": config: ");
  r.config.memory_mb = static_cast<uint32_t>(config.Integer("memory_mb"));
  r.config.vcpus = static_cast<uint32_t>(config.Integer("vcpus"));
  r.config.accel = config.String("accel");
  r.config.kernel = config.String("kernel");
  r.config.initrd = config.String("initrd");
  r.config.cmdline = config.String("cmdline");
  r.config.disk = config.String("disk");
  VF_RETURN_IF_ERROR(config.error());
  if (!doc.contains("nics") || !doc["nics"].is_array())
    return Status::Error(std::string(kFile) + ": \"nics\": want an array");
  for (size_t i = 0; i < doc["nics"].size(); ++i) {
    const json& item = doc["nics"][i];
    const std::string where = std::string(kFile) + ": nics[" + std::to_string(i) + "]: ";
    if (!item.is_object()) return Status::Error(where + "want an object");
    Reader nic(item, where);
    RunRecordNic n;
    n.id = nic.String("id");
    n.network = nic.String("network", false);
    n.port = nic.String("port");
    const std::string mac = nic.String("mac");
    n.attached = nic.Bool("attached");
    // Absent (records from before it existed) or null: none.
    if (item.contains("access_vlan") && !item["access_vlan"].is_null()) {
      const int64_t vid = nic.Integer("access_vlan");
      if (vid < 1 || vid > 4094) nic.Fail("access_vlan", "want a VLAN id 1..4094 or null");
      n.access_vlan = static_cast<uint16_t>(vid);
    }
    // Absent (records from before vhost-user NICs) or null: a tap NIC.
    if (item.contains("vhost_user_socket") && !item["vhost_user_socket"].is_null()) {
      n.vhost_user_socket = nic.String("vhost_user_socket");
      if (n.vhost_user_socket.empty() || n.vhost_user_socket[0] != '/')
        nic.Fail("vhost_user_socket", "want an absolute path or null");
    }
    VF_RETURN_IF_ERROR(nic.error());
    auto parsed = MacAddress::Parse(mac);
    if (!parsed) return Status::Error(where + "\"mac\": not a MAC address: " + mac);
    n.mac = *parsed;
    r.nics.push_back(std::move(n));
  }
  return r;
}

Status WriteRunRecord(const std::string& run_dir, const RunRecord& record) {
  // Written aside, fsynced and renamed (common/atomic_file.h): a crash or a
  // full run directory leaves the old record, never a truncated one that
  // would lose the running QEMU to the next netd.
  return WriteFileAtomically(RunRecordPath(run_dir), RunRecordToJson(record), 0600);
}

Result<std::optional<RunRecord>> ReadRunRecord(const std::string& run_dir) {
  const std::string path = RunRecordPath(run_dir);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return std::optional<RunRecord>();
  Result<std::string> text = ReadAll(path);
  if (!text.ok()) return text.status();
  Result<RunRecord> record = ParseRunRecord(*text);
  if (!record.ok()) return Status::Error(run_dir + "/" + record.status().message());
  return std::optional<RunRecord>(std::move(*record));
}

void RemoveRunRecord(const std::string& run_dir) { ::unlink(RunRecordPath(run_dir).c_str()); }

Status VerifyQemuProcess(pid_t pid, const std::string& qmp_socket, const std::string& proc_root) {
  const std::string who = "pid " + std::to_string(pid);
  if (pid <= 0) return Status::Error(who + ": not a process id");
  Result<std::string> cmdline = ReadAll(proc_root + "/" + std::to_string(pid) + "/cmdline");
  if (!cmdline.ok() || cmdline->empty()) return Status::Error(who + " is gone");
  // Arguments are NUL-separated; QEMU's -qmp names the socket inside one
  // ("unix:PATH,server=on,wait=off", commas doubled).
  std::string escaped;
  for (char c : qmp_socket) {
    escaped += c;
    if (c == ',') escaped += ',';
  }
  if (cmdline->find("unix:" + escaped) == std::string::npos) {
    std::string shown = *cmdline;
    for (char& c : shown)
      if (c == '\0') c = ' ';
    while (!shown.empty() && shown.back() == ' ') shown.pop_back();
    if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
    return Status::Error(who + " is not this guest's QEMU (its command line does not name " +
                         qmp_socket + "): " + shown);
  }
  return Status::Ok();
}

std::vector<pid_t> FindQemuProcesses(const std::string& qmp_socket, const std::string& proc_root) {
  std::vector<pid_t> found;
  UniqueFd dir_fd(::open(proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return found;
  DIR* dir = ::fdopendir(dir_fd.Release());
  if (dir == nullptr) return found;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || end == entry->d_name || *end != '\0') continue;
    if (VerifyQemuProcess(static_cast<pid_t>(pid), qmp_socket, proc_root).ok())
      found.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(dir);
  std::sort(found.begin(), found.end());
  return found;
}

Status KillRecordedQemu(const RunRecord& record, std::chrono::milliseconds timeout) {
  if (!VerifyQemuProcess(record.pid, record.qmp_socket).ok()) return Status::Ok();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, record.pid, 0)));
  if (!pidfd) {
    if (errno == ESRCH) return Status::Ok();
    return Status::FromErrno("pidfd_open " + std::to_string(record.pid), errno);
  }
  // Checked again through the pidfd: the pid cannot be recycled behind it now.
  if (!VerifyQemuProcess(record.pid, record.qmp_socket).ok()) return Status::Ok();
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
    return Status::FromErrno("kill qemu pid " + std::to_string(record.pid), errno);
  struct ::pollfd p {
    pidfd.get(), POLLIN, 0
  };
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
    return Status::Error("qemu pid " + std::to_string(record.pid) + " still there " +
                         std::to_string(timeout.count()) + " ms after SIGKILL");
  return Status::Ok();
}

}  // namespace vfabric::vmm
