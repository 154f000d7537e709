// The public face of the topology library: parsing, loading files and
// directories, and the small helpers shared with the rest of vfabric.

#include "vfabric/topology/topology.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "decode.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric::topology {
namespace {

constexpr size_t kMaxFileSize = 16 << 20;

// Sorts errors by file (in the order the files were given), then position.
void SortErrors(const std::vector<std::string>& file_order, std::vector<Diagnostic>* errors) {
  std::map<std::string, size_t> index;
  for (const std::string& file : file_order) index.emplace(file, index.size());
  const auto key = [&](const Diagnostic& d) {
    auto it = index.find(d.where.file);
    return std::make_tuple(it == index.end() ? index.size() : it->second, d.where.line,
                           d.where.column);
  };
  std::stable_sort(errors->begin(), errors->end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
}

LoadResult Finish(internal::Decoded decoded, const std::vector<std::string>& file_order) {
  internal::CheckAcross(&decoded);
  SortErrors(file_order, &decoded.errors);
  SortErrors(file_order, &decoded.warnings);
  LoadResult result;
  result.errors = std::move(decoded.errors);
  result.warnings = std::move(decoded.warnings);
  if (result.errors.empty()) result.topology = std::move(decoded.topology);
  return result;
}

// What a file type is, for "not a regular file (a FIFO)".
std::string FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "of an unknown type";
}

std::string NotRegular(mode_t mode) { return "not a regular file (" + FileTypeName(mode) + ")"; }

// Why stat(path) failed with `error`, saying so when `path` itself is a
// symlink that leads nowhere (dangling, or a loop).
std::string StatFailure(const std::string& path, int error) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    if (error == ELOOP) return "symbolic link loop (" + std::string(std::strerror(error)) + ")";
    char target[4096];
    const ssize_t n = ::readlink(path.c_str(), target, sizeof target);
    const std::string to =
        n >= 0 ? " to \"" + std::string(target, static_cast<size_t>(n)) + "\"" : std::string();
    return "dangling symbolic link" + to + " (" + std::strerror(error) + ")";
  }
  if (error == ELOOP) return "symbolic link loop (" + std::string(std::strerror(error)) + ")";
  return std::string("cannot open: ") + std::strerror(error);
}

// Reads one configuration file by the rule in topology.h; on failure returns
// false with the reason in `*error`.
bool ReadConfigFile(const std::string& path, std::string* text, std::string* error) {
  // stat() first: a FIFO or a device is refused without being opened (opening
  // one can block, or have effects of its own).
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *error = StatFailure(path, errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = NotRegular(st.st_mode);
    return false;
  }
  // O_NONBLOCK and fstat(): the name may have been replaced by a FIFO since.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    const int open_error = errno;
    *error = open_error == ENOENT || open_error == ELOOP
                 ? StatFailure(path, open_error)
                 : std::string("cannot open: ") + std::strerror(open_error);
    return false;
  }
  if (::fstat(fd.get(), &st) != 0) {
    *error = std::string("cannot stat: ") + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = NotRegular(st.st_mode);
    return false;
  }
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("cannot read: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) return true;
    text->append(buffer, static_cast<size_t>(n));
    if (text->size() > kMaxFileSize) {
      *error = "larger than " + std::to_string(kMaxFileSize >> 20) + " MiB; not a topology";
      return false;
    }
  }
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The entries of `dir` named *.json (not hidden), by name, whatever their
// type: ReadConfigFile() judges each one.
bool ListJsonEntries(const std::string& dir, std::vector<std::string>* files, std::string* error) {
  const std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), &::closedir);
  if (!handle) {
    *error = std::string("cannot open directory: ") + std::strerror(errno);
    return false;
  }
  std::vector<std::string> names;
  errno = 0;  // readdir() returns null both at the end and on an error
  while (const dirent* entry = ::readdir(handle.get())) {
    const std::string name = entry->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 &&
        name[0] != '.') {  // not hidden files and editor leftovers
      names.push_back(dir + (dir.ends_with('/') ? "" : "/") + name);
    }
    errno = 0;
  }
  if (const int read_error = errno; read_error != 0) {
    *error = std::string("cannot read directory: ") + std::strerror(read_error);
    return false;
  }
  std::sort(names.begin(), names.end());
  files->insert(files->end(), names.begin(), names.end());
  return true;
}

}  // namespace

std::string_view ToString(Datapath datapath) {
  switch (datapath) {
    case Datapath::kKernel:
      return "kernel";
    case Datapath::kUserspace:
      return "userspace";
  }
  return "?";
}

std::string_view ToString(PortKind kind) {
  switch (kind) {
    case PortKind::kTap:
      return "tap";
    case PortKind::kVeth:
      return "veth";
    case PortKind::kExisting:
      return "existing";
    case PortKind::kVhostUser:
      return "vhost-user";
    case PortKind::kVxlan:
      return "vxlan";
  }
  return "?";
}

std::string_view ToString(VhostUserMode mode) {
  return mode == VhostUserMode::kServer ? "server" : "client";
}

std::string_view ToString(NicBackend backend) {
  return backend == NicBackend::kVhostUser ? "vhost-user" : "tap";
}

std::string_view ToString(StpMode mode) { return mode == StpMode::kRstp ? "rstp" : "stp"; }

std::string_view ToString(OverlayControl control) {
  return control == OverlayControl::kEvpn ? "evpn" : "static";
}

std::string OverlayDeviceName(uint32_t vni) { return "vfx-" + std::to_string(vni); }

std::string VxlanPeerPortName(uint32_t vni, const IpPrefix& remote) {
  return "vx" + std::to_string(vni) + ":" + remote.AddressText();
}

std::string_view ToString(VlanMode mode) {
  switch (mode) {
    case VlanMode::kNone:
      return "none";
    case VlanMode::kAccess:
      return "access";
    case VlanMode::kTrunk:
      return "trunk";
  }
  return "?";
}

std::string Diagnostic::ToString() const {
  if (where.line == 0) return where.file + ": " + message;
  return internal::LocationText(where) + ": " + (where.pointer.empty() ? "(root)" : where.pointer) +
         ": " + message;
}

std::string SuggestName(std::string_view word, const std::vector<std::string_view>& candidates) {
  return internal::Suggest(word, candidates);
}

std::string InterfaceNameError(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxInterfaceNameLength) {
    return "is " + std::to_string(name.size()) + " bytes long; the limit is 15";
  }
  if (name == "." || name == "..") return "must not be \".\" or \"..\"";
  for (char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '/') return "must not contain '/'";
    if (c == ':') return "must not contain ':'";
    if (c == '%') return "must not contain '%' (the kernel's name template character)";
    if (c == ' ' || (byte >= 0x09 && byte <= 0x0d)) return "must not contain whitespace";
    if (byte < 0x20 || byte >= 0x7f) return "must be printable ASCII";
  }
  return "";
}

bool ParseVlanList(std::string_view text, VlanBitmap* vlans, std::string* error) {
  const auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  // A VLAN ID: 1..4094 written in decimal digits only.
  const auto parse_id = [&](std::string_view part, std::string_view whole, uint16_t* id) {
    unsigned value = 0;
    const bool digits =
        !part.empty() && part.size() <= 5 &&
        std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      *error = "\"" + std::string(whole) + "\" is not a VLAN ID or a range LOW-HIGH";
      return false;
    }
    if (part.size() > 1 && part[0] == '0') {
      *error = "\"" + std::string(whole) + "\": leading zeros are not allowed";
      return false;
    }
    std::from_chars(part.data(), part.data() + part.size(), value);
    if (value < 1 || value > 4094) {
      *error = "VLAN ID " + std::to_string(value) + " is outside 1..4094";
      return false;
    }
    *id = static_cast<uint16_t>(value);
    return true;
  };
  if (trim(text).empty()) {
    *error = "the VLAN list is empty";
    return false;
  }
  VlanBitmap parsed;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view part = trim(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (part.empty()) {
      *error = "empty item (two commas in a row, or a comma at an end)";
      return false;
    }
    const size_t dash = part.find('-');
    uint16_t low = 0;
    uint16_t high = 0;
    if (dash == std::string_view::npos) {
      if (!parse_id(part, part, &low)) return false;
      high = low;
    } else {
      if (!parse_id(trim(part.substr(0, dash)), part, &low) ||
          !parse_id(trim(part.substr(dash + 1)), part, &high)) {
        return false;
      }
      if (low > high) {
        *error = "range \"" + std::string(part) + "\" runs backwards (" + std::to_string(low) +
                 " > " + std::to_string(high) + ")";
        return false;
      }
    }
    for (unsigned id = low; id <= high; ++id) parsed.set(id);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  *vlans |= parsed;
  return true;
}

std::string FormatVlanList(const VlanBitmap& vlans) {
  std::string out;
  size_t id = 0;
  while (id < vlans.size()) {
    if (!vlans.test(id)) {
      ++id;
      continue;
    }
    size_t end = id;
    while (end + 1 < vlans.size() && vlans.test(end + 1)) ++end;
    if (!out.empty()) out += ",";
    out += std::to_string(id);
    if (end > id) {
      out += '-';  // not "-" + a temporary: GCC PR 105329 at -O3
      out += std::to_string(end);
    }
    id = end + 1;
  }
  return out;
}

LoadResult ParseTopology(std::string_view text, std::string_view file_name, const HostFacts& host) {
  return ParseTopologyFiles({SourceFile{std::string(file_name), std::string(text)}}, host);
}

LoadResult ParseTopologyFiles(const std::vector<SourceFile>& files, const HostFacts& host) {
  internal::Decoded decoded;
  std::vector<std::string> order;
  for (size_t i = 0; i < files.size(); ++i) {
    internal::DecodeDocument(files[i].text, files[i].name, i, host, &decoded);
    order.push_back(files[i].name);
  }
  return Finish(std::move(decoded), order);
}

ReadResult ReadTopologyFiles(const std::vector<std::string>& paths) {
  ReadResult result;
  for (const std::string& path : paths) {
    std::vector<std::string> files;
    if (IsDirectory(path)) {
      std::string error;
      if (!ListJsonEntries(path, &files, &error)) {
        result.errors.push_back({{path, 0, 0, ""}, std::move(error)});
        result.paths.push_back(path);
      }
    } else {
      files.push_back(path);
    }
    for (const std::string& file : files) {
      std::string text;
      std::string error;
      result.paths.push_back(file);
      if (ReadConfigFile(file, &text, &error)) {
        result.files.push_back({file, std::move(text)});
      } else {
        result.errors.push_back({{file, 0, 0, ""}, std::move(error)});
      }
    }
  }
  return result;
}

LoadResult LoadTopology(const std::vector<std::string>& paths, const HostFacts& host) {
  ReadResult read = ReadTopologyFiles(paths);
  internal::Decoded decoded;
  decoded.errors = std::move(read.errors);
  for (size_t i = 0; i < read.files.size(); ++i) {
    internal::DecodeDocument(read.files[i].text, read.files[i].name, i, host, &decoded);
  }
  return Finish(std::move(decoded), read.paths);
}

}  // namespace vfabric::topology
