// netctl capture: see capture.h.
#include "vfabric/netctl/capture.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <ostream>
#include <vector>

#include "vfabric/protocol/capture_stream.h"
#include "vfabric/protocol/protocol.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using protocol::CaptureRecord;

volatile sig_atomic_t g_stop_signal = 0;
void OnStopSignal(int signal) { g_stop_signal = signal; }

// SIGINT and SIGTERM blocked except inside ppoll, where they set
// g_stop_signal: no signal is lost between a check and the wait.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old_mask_);
    wait_mask_ = old_mask_;
    sigdelset(&wait_mask_, SIGINT);
    sigdelset(&wait_mask_, SIGTERM);
  }
  ~StopSignals() {
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  const sigset_t* wait_mask() const { return &wait_mask_; }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
  sigset_t old_mask_{}, wait_mask_{};
};

std::string Mac(const uint8_t* p) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", p[0], p[1], p[2], p[3], p[4],
                p[5]);
  return text;
}

std::string EtherTypeName(uint16_t type) {
  switch (type) {
    case 0x0800:
      return "IPv4";
    case 0x0806:
      return "ARP";
    case 0x86dd:
      return "IPv6";
    case 0x8100:
      return "802.1Q";
    case 0x88a8:
      return "802.1ad";
    case 0x88cc:
      return "LLDP";
  }
  char text[8];
  std::snprintf(text, sizeof text, "0x%04x", type);
  if (type < 0x0600) return "802.3 length " + std::to_string(type);
  return text;
}

// The frame's destination, source and ethertype past any tags; false for a runt.
bool Decode(const uint8_t* frame, size_t size, std::string* dst, std::string* src, uint16_t* type) {
  if (size < 14) return false;
  *dst = Mac(frame);
  *src = Mac(frame + 6);
  size_t at = 12;
  *type = static_cast<uint16_t>(frame[at] << 8 | frame[at + 1]);
  while ((*type == 0x8100 || *type == 0x88a8) && at + 6 <= size) {
    at += 4;
    *type = static_cast<uint16_t>(frame[at] << 8 | frame[at + 1]);
  }
  return true;
}

std::string TimeText(uint64_t ns) {
  const time_t seconds = static_cast<time_t>(ns / 1'000'000'000u);
  tm local{};
  localtime_r(&seconds, &local);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%06u", local.tm_hour, local.tm_min, local.tm_sec,
                static_cast<unsigned>(ns % 1'000'000'000u / 1000));
  return text;
}

// The kernel datapath: tcpdump on the port's link, in the foreground (it
// takes Ctrl-C itself; netctl waits and passes its exit status on).
int RunTcpdump(const CaptureOptions& options, const std::string& interface, std::ostream& out,
               std::ostream& err) {
  if (options.json) {
    err << "netctl: capture: --json is for userspace networks; network " << options.network
        << " is a kernel bridge, captured by tcpdump (use -w FILE and read it with tshark -T "
           "json)\n";
    return 1;
  }
  std::vector<std::string> args = {"tcpdump", "-i", interface, "-Q",
                                   options.direction == "both" ? "inout" : options.direction};
  if (options.count) args.insert(args.end(), {"-c", std::to_string(*options.count)});
  if (options.file) {
    args.insert(args.end(), {"-w", *options.file});
    if (*options.file == "-") args.push_back("-U");  // a packet at a time down the pipe
  } else {
    args.insert(args.end(), {"-e", "-n", "-l"});  // MACs and VLAN tags, no lookups, line by line
  }
  out.flush();
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The parent ignores the signals the terminal sends tcpdump too.
  struct sigaction ignore {
  }, old_int{}, old_term{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGTERM, &ignore, &old_term);
  const pid_t pid = fork();
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    execvp("tcpdump", argv.data());
    std::fprintf(stderr, "netctl: capture: cannot run tcpdump: %s (Debian's tcpdump package)\n",
                 std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  int result = 1;
  if (pid < 0) {
    err << "netctl: capture: fork: " << std::strerror(errno) << "\n";
  } else {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) result = WEXITSTATUS(status) == 0 ? 0 : 1;
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

class PcapWriter {
 public:
  ~PcapWriter() {
    if (dumper_) pcap_dump_close(dumper_);
    if (pcap_) pcap_close(pcap_);
  }
  bool Open(const std::string& file, int snaplen, std::string* error) {
    pcap_ = pcap_open_dead(DLT_EN10MB, snaplen);
    if (pcap_ == nullptr) {
      *error = "pcap_open_dead failed";
      return false;
    }
    dumper_ = pcap_dump_open(pcap_, file.c_str());  // "-": standard output
    if (dumper_ == nullptr) {
      *error = (file == "-" ? std::string("standard output") : file) + ": " + pcap_geterr(pcap_);
      return false;
    }
    return true;
  }
  void Write(const CaptureRecord& r, const uint8_t* frame) {
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(r.time_ns / 1'000'000'000u);
    h.ts.tv_usec = static_cast<suseconds_t>(r.time_ns % 1'000'000'000u / 1000);
    h.caplen = r.caplen;
    h.len = r.wire_len;
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, frame);
  }
  bool Flush() { return pcap_dump_flush(dumper_) == 0; }

 private:
  pcap_t* pcap_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
};

}  // namespace

int RunCapture(const ClientOptions& client_options, const CaptureOptions& options,
               std::ostream& out, std::ostream& err) {
  auto client = ControlClient::Connect(client_options);
  if (!client.ok()) {
    err << "netctl: " << client.status().message() << "\n";
    return 1;
  }
  json args = {
      {"network", options.network}, {"port", options.port}, {"direction", options.direction}};
  auto answer = client->Call(protocol::verb::kCaptureStart, args);
  if (!answer.ok()) {
    err << "netctl: " << answer.status().message() << "\n";
    return 1;
  }
  if (!answer->ok) {
    if (options.json) out << answer->error.dump(2) << "\n";
    err << "netctl: " << answer->error_message() << "\n";
    return 1;
  }
  const json& result = answer->result;
  if (result.value("datapath", "") == "kernel")
    return RunTcpdump(options, result.value("interface", options.port), out, err);

  std::vector<std::string> reasons;
  for (const json& r : result.value("drop_reasons", json::array()))
    reasons.push_back(r.is_string() ? r.get<std::string>() : "?");
  std::string buffered;
  UniqueFd fd = client->Release(&buffered);
  PcapWriter pcap;
  if (options.file) {
    std::string error;
    if (!pcap.Open(*options.file, result.value("snaplen", 65535), &error)) {
      err << "netctl: capture: " << error << "\n";
      return 1;
    }
  }
  const bool to_stdout = options.file && *options.file == "-";
  if (!options.file)
    err << "netctl: capturing on port " << options.port << " of network " << options.network << " ("
        << options.direction << "), Ctrl-C to stop\n";

  StopSignals signals;
  std::vector<uint8_t> data(buffered.begin(), buffered.end());
  size_t at = 0;
  long long frames = 0;
  std::map<std::string, long long> switch_drops;  // frames the switch dropped, by reason
  bool stopping = false;
  bool ended = false;
  json end;
  std::chrono::steady_clock::time_point stop_deadline{};
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    ::shutdown(fd.get(), SHUT_WR);
    stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  };
  while (!ended) {
    // Whole records in `data`.
    while (data.size() - at >= sizeof(CaptureRecord)) {
      CaptureRecord r;
      std::memcpy(&r, data.data() + at, sizeof r);
      if (data.size() - at < sizeof r + r.caplen) break;
      const uint8_t* body = data.data() + at + sizeof r;
      at += sizeof r + r.caplen;
      if (r.type == CaptureRecord::kEnd) {
        end =
            json::parse(std::string(reinterpret_cast<const char*>(body), r.caplen), nullptr, false);
        ended = true;
        break;
      }
      if (r.type != CaptureRecord::kFrame) {
        err << "netctl: capture: netd sent a record of unknown type " << r.type << "\n";
        return 1;
      }
      if (options.count && frames >= *options.count) continue;  // past -c, while netd stops
      ++frames;
      std::string reason;
      if (r.drop != 0) {
        reason =
            r.drop - 1u < reasons.size() ? reasons[r.drop - 1u] : "drop" + std::to_string(r.drop);
        ++switch_drops[reason];
      }
      if (options.file) {
        pcap.Write(r, body);
      } else {
        std::string dst, src;
        uint16_t type = 0;
        const bool decoded = Decode(body, r.caplen, &dst, &src, &type);
        const int vid = r.drop != 0 ? -1 : r.tci & 0xfff;
        if (options.json) {
          json line = {{"time", static_cast<double>(r.time_ns) / 1e9},
                       {"direction", r.direction == 1 ? "in" : "out"},
                       {"vlan", vid > 0 ? json(vid) : json(nullptr)},
                       {"length", r.wire_len}};
          if (decoded) {
            line["src"] = src;
            line["dst"] = dst;
            line["ethertype"] = EtherTypeName(type);
          }
          if (!reason.empty()) line["dropped"] = reason;
          out << line.dump() << "\n";
        } else {
          out << TimeText(r.time_ns) << (r.direction == 1 ? " in  " : " out ")
              << (vid > 0 ? "vlan " + std::to_string(vid) : std::string("untagged")) << " ";
          if (decoded)
            out << src << " > " << dst << " " << EtherTypeName(type);
          else
            out << "runt";
          out << " len " << r.wire_len;
          if (!reason.empty()) out << " DROPPED by the switch (" << reason << ")";
          out << "\n";
        }
      }
      if (options.count && frames >= *options.count) stop();
    }
    if (ended) break;
    if (at > 0) {
      data.erase(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(at));
      at = 0;
    }
    if (options.file) {
      if (!pcap.Flush()) {
        err << "netctl: capture: cannot write " << (to_stdout ? "standard output" : *options.file)
            << "\n";
        return 1;
      }
    } else {
      out.flush();
    }
    if (g_stop_signal != 0) stop();
    if (stopping && std::chrono::steady_clock::now() > stop_deadline) {
      err << "netctl: capture: netd did not end the capture within 5 s\n";
      break;
    }
    pollfd p{fd.get(), POLLIN, 0};
    timespec timeout{0, 200'000'000};
    const int n = ppoll(&p, 1, &timeout, signals.wait_mask());
    if (n < 0 && errno != EINTR) {
      err << "netctl: capture: poll: " << std::strerror(errno) << "\n";
      return 1;
    }
    if (n <= 0) continue;
    uint8_t chunk[65536];
    const ssize_t got = ::read(fd.get(), chunk, sizeof chunk);
    if (got > 0) {
      data.insert(data.end(), chunk, chunk + got);
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
      err << "netctl: capture: netd closed the capture without its end"
          << (got < 0 ? std::string(": ") + std::strerror(errno) : std::string()) << "\n";
      break;
    }
  }
  if (options.file && !pcap.Flush()) {
    err << "netctl: capture: cannot write " << (to_stdout ? "standard output" : *options.file)
        << "\n";
    return 1;
  }
  out.flush();
  // The summary, as tcpdump's, on stderr.
  const long long not_recorded = end.is_object() ? end.value("dropped", 0LL) : -1;
  err << frames << " frame" << (frames == 1 ? "" : "s") << " captured";
  if (not_recorded >= 0)
    err << ", " << not_recorded << " not recorded (netd's capture buffer was full)";
  err << "\n";
  long long dropped = 0;
  for (const auto& [reason, count] : switch_drops) dropped += count;
  if (dropped > 0) {
    err << dropped << " of them dropped by the switch (";
    bool first = true;
    for (const auto& [reason, count] : switch_drops) {
      err << (first ? "" : ", ") << reason << ": " << count;
      first = false;
    }
    err << ")\n";
  }
  return ended ? 0 : 1;
}

}  // namespace vfabric::netctl
