// Any bytes as netd's answer to a netctl command: netctl::Run connects to a
// fake netd (a Unix socket served by a thread here), sends its request, reads
// the answer line and prints it, as a table or --json, or reports the
// rejection and its diagnostics. The first byte picks the command (and
// --json); the rest is what netd writes back. Never a crash or an exception:
// exit status 0 (printed) or 1 (rejected, malformed, closed).
//
// Seeds: tests/fuzz/corpus/netctl_answer (a selector byte, then an answer
// line as netd writes it; the request's id is 1).
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/netctl/cli.h"

namespace {

struct FakeNetd {
  std::string dir;
  std::string socket_path;
  std::string topology_path;
  int listener = -1;
  std::mutex mutex;
  std::string answer;  // guarded by mutex
};

FakeNetd& Netd() {
  static FakeNetd* netd = [] {
    auto* n = new FakeNetd;
    char pattern[] = "/tmp/vfabric-netctl-fuzz-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) std::abort();
    n->dir = pattern;
    std::atexit([] { std::filesystem::remove_all(Netd().dir); });
    n->socket_path = n->dir + "/netd.sock";
    n->topology_path = n->dir + "/lab.json";
    std::ofstream(n->topology_path) << R"({"networks": [{"name": "lab", "datapath": "userspace",)"
                                    << R"( "ports": [{"name": "lab-p1", "kind": "tap"}]}]})"
                                    << "\n";
    n->listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, n->socket_path.c_str(), sizeof(addr.sun_path) - 1);
    if (n->listener < 0 ||
        ::bind(n->listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(n->listener, 8) != 0)
      std::abort();
    // Serves one connection at a time: reads the request line, writes the
    // answer of the moment, closes.
    std::thread([n] {
      while (true) {
        int client = ::accept4(n->listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        std::string request;
        char chunk[4096];
        while (request.find('\n') == std::string::npos) {
          ssize_t got = ::recv(client, chunk, sizeof chunk, 0);
          if (got <= 0) break;
          request.append(chunk, static_cast<size_t>(got));
        }
        std::string answer;
        {
          std::lock_guard<std::mutex> lock(n->mutex);
          answer = n->answer;
        }
        size_t sent = 0;
        while (sent < answer.size()) {
          ssize_t put = ::send(client, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL);
          if (put <= 0) break;
          sent += static_cast<size_t>(put);
        }
        ::close(client);
      }
    }).detach();
    return n;
  }();
  return *netd;
}

std::vector<std::vector<std::string>> Commands(const FakeNetd& n) {
  return {{"network", "list"},
          {"network", "show", "lab"},
          {"port", "list"},
          {"port", "stats", "lab"},
          {"fdb", "show", "lab"},
          {"fdb", "add", "lab", "52:54:00:00:00:01", "lab-p1", "--vlan", "10"},
          {"fdb", "del", "lab", "52:54:00:00:00:01"},
          {"fdb", "flush", "lab"},
          {"stp", "show", "lab"},
          {"vlan", "show", "lab"},
          {"vm", "list"},
          {"vm", "start", "vm1"},
          {"vm", "stop", "vm1"},
          {"vm", "console-log", "vm1"},
          {"attach", "vm1", "lab"},
          {"detach", "vm1", "nic1"},
          {"plan", n.topology_path},
          {"apply", n.topology_path}};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (1 << 20)) return 0;
  FakeNetd& netd = Netd();
  static const std::vector<std::vector<std::string>> commands = Commands(netd);
  std::vector<std::string> args = commands[data[0] % commands.size()];
  if ((data[0] / commands.size()) % 2 == 1) args.insert(args.begin(), "--json");
  args.insert(args.begin(), {"--timeout", "5"});
  {
    std::lock_guard<std::mutex> lock(netd.mutex);
    netd.answer.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  }
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  int status = vfabric::netctl::Run(args, netd.socket_path, in, out, err);
  if (status != 0 && status != 1) std::abort();
  return 0;
}
