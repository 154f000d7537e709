// End to end with real QEMU guests (the image of vmm/guest/build-guest-image)
// on kernel bridges in the test's own network namespace:
//   - two guests on one bridge ping each other (and run iperf3);
//   - a script given on the kernel command line runs, and the guest's
//     power-off is a clean exit;
//   - a NIC hot-attached (QMP) to a running guest reaches a guest on a second
//     bridge and, once detached, no longer does.
// Each test builds (or reuses) the image in ${build}/guest, or in
// $VFABRIC_GUEST_DIR, before entering its namespace (the first build
// downloads the kernel package), says which accelerator it used, and leaves
// nothing behind: the Guests kill and reap QEMU when they go out of scope,
// and the namespace, with its bridges and taps, goes with the test process. Without QEMU,
// /dev/net/tun or the image the tests skip with the reason, except in CI (CI=true), where they
// fail.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "vfabric/testing/support.h"
#include "vfabric/vmm/guest.h"
#include "vfabric/vmm/qemu_command.h"

namespace vfabric::vmm {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

#define VF_SKIP_OR_FAIL(why)                         \
  do {                                               \
    if (::vfabric::testing::InCi()) FAIL() << (why); \
    GTEST_SKIP() << (why);                           \
  } while (0)

// What follows the first `marker` in `text` up to the end of its line (CR or
// LF), or nullopt (also while that line is incomplete). Markers may follow
// output without a final newline, so they are not anchored at line starts.
// (No std::regex: GCC 12 warns inside it under ASan.)
std::optional<std::string> LineAfter(const std::string& text, const std::string& marker) {
  size_t pos = text.find(marker);
  if (pos == std::string::npos) return std::nullopt;
  size_t start = pos + marker.size();
  size_t end = text.find_first_of("\r\n", start);
  if (end == std::string::npos) return std::nullopt;
  return text.substr(start, end - start);
}

struct GuestImage {
  std::string kernel;
  std::string initrd;
  std::string error;
};

// Builds or reuses the cached guest image; error says why there is none.
GuestImage EnsureGuestImage() {
  GuestImage image;
  const std::string builder = testing::SourceDir() + "/vmm/guest/build-guest-image";
  const auto start = steady_clock::now();
  // VFABRIC_GUEST_DIR lets several build trees share one image cache.
  const char* shared = std::getenv("VFABRIC_GUEST_DIR");
  const std::string out =
      shared != nullptr && *shared != '\0' ? shared : testing::BinaryDir() + "/guest";
  testing::CommandResult r = testing::Run({builder, out});
  if (r.exit_code != 0) {
    image.error = "build-guest-image failed: " + r.err;
    return image;
  }
  image.kernel = LineAfter(r.out, "KERNEL=").value_or("");
  image.initrd = LineAfter(r.out, "INITRD=").value_or("");
  if (image.kernel.empty() || image.initrd.empty())
    image.error = "build-guest-image printed no KERNEL/INITRD: " + r.out;
  std::cout << "guest image: " << image.kernel << " ("
            << std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count()
            << " ms)\n";
  return image;
}

// Opens the persistent tap `name` (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR), O_CLOEXEC.
UniqueFd OpenTap(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return fd;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return UniqueFd();
  return fd;
}

void Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::CommandResult r = testing::Run(argv);
  ASSERT_EQ(r.exit_code, 0) << "ip " << ::testing::PrintToString(args) << ": " << r.err;
}

// The guest's serial console: lines in through the console socket, output
// read back from the console log. A client of the socket must read what QEMU
// writes to it: QEMU's serial port sends one byte per write, so a few hundred
// unread bytes fill the socket and stall the guest's console. A thread
// drains it.
class Console {
 public:
  Console(std::string socket_path, std::string log_path)
      : socket_path_(std::move(socket_path)), log_path_(std::move(log_path)) {}
  ~Console() {
    stop_ = true;
    if (drain_.joinable()) drain_.join();
  }

  // Waits until the log has a line starting with `prefix`; returns the rest
  // of that line, or nullopt after `timeout`.
  std::optional<std::string> WaitFor(const std::string& prefix, milliseconds timeout) {
    std::optional<std::string> found;
    testing::WaitFor(
        [&] {
          found = LineAfter(testing::ReadFile(log_path_), prefix);
          return found.has_value();
        },
        static_cast<int>(timeout.count()));
    return found;
  }

  // Runs `command` in the guest; returns its exit status (-1 on timeout).
  int Run(const std::string& command, milliseconds timeout, std::string* output = nullptr) {
    if (!socket_ && !Connect()) return -1;
    const size_t log_before = testing::ReadFile(log_path_).size();
    const int n = ++commands_;
    std::string line = command + "\n";
    if (::send(socket_.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(line.size()))
      return -1;
    std::optional<std::string> rc = WaitFor("VF-CMD-RESULT " + std::to_string(n) + " ", timeout);
    if (output != nullptr) {
      std::string log = testing::ReadFile(log_path_);
      *output = log.size() > log_before ? log.substr(log_before) : "";
    }
    return rc ? std::stoi(*rc) : -1;
  }

  std::string Log() const { return testing::ReadFile(log_path_); }

 private:
  bool Connect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    socket_ = std::move(fd);
    drain_ = std::thread([this] {
      char buffer[4096];
      while (!stop_) {
        pollfd p{socket_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) > 0 && ::recv(socket_.get(), buffer, sizeof(buffer), 0) <= 0) break;
      }
    });
    return true;
  }

  std::string socket_path_;
  std::string log_path_;
  UniqueFd socket_;
  int commands_ = 0;
  std::atomic<bool> stop_{false};
  std::thread drain_;
};

class GuestE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::Run({"sh", "-c", "command -v qemu-system-x86_64"}).exit_code != 0)
      VF_SKIP_OR_FAIL("qemu-system-x86_64 is not installed (Debian: qemu-system-x86)");
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) VF_SKIP_OR_FAIL("no /dev/net/tun");
    image_ = EnsureGuestImage();
    if (!image_.error.empty()) VF_SKIP_OR_FAIL(image_.error);
    // After the image: building it may need the network.
    VF_REQUIRE_PRIVATE_NETNS();
    ready_ = true;
  }

  // A bridge `name`, up, without STP (ports forward at once).
  void Bridge(const std::string& name) {
    Ip({"link", "add", name, "type", "bridge"});
    Ip({"link", "set", name, "up"});
  }
  // A persistent tap on `bridge`, opened.
  UniqueFd Tap(const std::string& name, const std::string& bridge) {
    Ip({"tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr"});
    Ip({"link", "set", name, "master", bridge, "up"});
    UniqueFd fd = OpenTap(name);
    EXPECT_TRUE(fd.valid()) << "open tap " << name << ": " << std::strerror(errno);
    return fd;
  }

  std::unique_ptr<Guest> Boot(const std::string& name, const std::string& cmdline,
                              std::vector<GuestNic> nics) {
    topology::VmConfig vm;
    vm.name = name;
    vm.memory_mb = 256;
    vm.vcpus = 1;
    vm.accel = "auto";
    vm.kernel = image_.kernel;
    vm.initrd = image_.initrd;
    vm.cmdline = "quiet panic=-1 " + cmdline;
    GuestOptions options;
    options.run_dir = dir_.Join(name);
    options.stop_timeout = milliseconds(5000);
    auto guest = Guest::Create(vm, std::move(nics), options);
    EXPECT_TRUE(guest.ok()) << guest.status().message();
    if (!guest.ok()) return nullptr;
    boot_start_[name] = steady_clock::now();
    Status started = (*guest)->Start();
    EXPECT_TRUE(started.ok()) << started.message();
    if (!started.ok()) return nullptr;
    return std::move(*guest);
  }

  // Waits for QMP and for the guest's VF-READY; reports the boot time and
  // the accelerator.
  bool WaitReady(Guest& guest, Console& console) {
    Status running = guest.WaitForState(GuestState::kRunning, milliseconds(30000));
    EXPECT_TRUE(running.ok()) << running.message() << "\n" << console.Log();
    if (!running.ok()) return false;
    std::optional<std::string> ready = console.WaitFor("VF-READY ", milliseconds(90000));
    EXPECT_TRUE(ready) << guest.name() << " did not reach VF-READY:\n" << console.Log();
    if (!ready) return false;
    const auto took = steady_clock::now() - boot_start_[guest.name()];
    const GuestStatus s = guest.status();
    std::cout << guest.name() << ": accelerator " << (s.accel ? s.accel->reason : "?") << "\n"
              << guest.name() << ": VF-READY after "
              << std::chrono::duration_cast<milliseconds>(took).count() << " ms (guest uptime "
              << *ready << " s)\n";
    RecordProperty("accelerator", s.accel ? std::string(ToString(s.accel->accel)) : "?");
    return true;
  }

  static GuestNic Nic(const std::string& id, const std::string& port, const std::string& network,
                      const char* mac, UniqueFd tap) {
    GuestNic nic;
    nic.id = id;
    nic.port = port;
    nic.network = network;
    nic.mac = *MacAddress::Parse(mac);
    nic.tap = std::move(tap);
    return nic;
  }

  static void PrintRtt(const std::string& who, const std::string& output) {
    if (std::optional<std::string> rtt = LineAfter(output, "round-trip min/avg/max = "))
      std::cout << who << ": ping rtt min/avg/max " << *rtt << "\n";
  }

  bool ready_ = false;
  GuestImage image_;
  testing::TempDir dir_;
  std::map<std::string, steady_clock::time_point> boot_start_;
};

TEST_F(GuestE2eTest, TwoGuestsOnAKernelBridgePingEachOther) {
  ASSERT_TRUE(ready_);
  Bridge("vfb-e2e");
  std::vector<GuestNic> nics1, nics2;
  nics1.push_back(Nic("nic0", "vm1-eth0", "lab", "52:54:00:e2:00:01", Tap("vm1-eth0", "vfb-e2e")));
  nics2.push_back(Nic("nic0", "vm2-eth0", "lab", "52:54:00:e2:00:02", Tap("vm2-eth0", "vfb-e2e")));
  auto vm1 = Boot("vm1", "vf.ip=10.0.0.1/24", std::move(nics1));
  auto vm2 = Boot("vm2", "vf.ip=10.0.0.2/24", std::move(nics2));
  ASSERT_TRUE(vm1 && vm2);
  Console c1(vm1->console_socket_path(), vm1->console_log_path());
  Console c2(vm2->console_socket_path(), vm2->console_log_path());
  ASSERT_TRUE(WaitReady(*vm1, c1));
  ASSERT_TRUE(WaitReady(*vm2, c2));
  EXPECT_NE(c1.Log().find("VF-NIC eth0 52:54:00:e2:00:01 10.0.0.1/24"), std::string::npos)
      << c1.Log();

  std::string out;
  EXPECT_EQ(c1.Run("ping -c 5 -i 0.2 -W 2 10.0.0.2", milliseconds(30000), &out), 0) << out;
  PrintRtt("vm1 -> vm2", out);
  EXPECT_EQ(c2.Run("ping -c 3 -i 0.2 -W 2 10.0.0.1", milliseconds(30000), &out), 0) << out;
  PrintRtt("vm2 -> vm1", out);
  // iperf3 (with the libraries the image builder copied) runs in the guests.
  // Its rate is printed, not checked: speed belongs in benchmarks.
  EXPECT_EQ(c2.Run("iperf3 -s -D -1", milliseconds(20000), &out), 0) << out;
  EXPECT_EQ(c1.Run("sleep 0.3; iperf3 -c 10.0.0.2 -t 2 -f g", milliseconds(60000), &out), 0) << out;
  // "[  5]   0.00-2.00   sec   200 MBytes  0.84 Gbits/sec    0             sender"
  for (size_t end = out.find(" sender"); end != std::string::npos; end = std::string::npos) {
    size_t line = out.rfind('\n', end);
    std::string text = out.substr(line == std::string::npos ? 0 : line + 1,
                                  end - (line == std::string::npos ? 0 : line + 1));
    size_t unit = text.find(" Gbits/sec");
    size_t begin = unit == std::string::npos ? std::string::npos : text.rfind(' ', unit - 1);
    if (begin != std::string::npos)
      std::cout << "vm1 -> vm2: iperf3 TCP " << text.substr(begin + 1, unit - begin - 1)
                << " Gbit/s ("
                << (vm1->status().accel ? std::string(ToString(vm1->status().accel->accel)) : "?")
                << ")\n";
  }
  // The bridge learned both guests on their taps.
  testing::CommandResult fdb = testing::Run({"bridge", "fdb", "show", "br", "vfb-e2e"});
  EXPECT_NE(fdb.out.find("52:54:00:e2:00:01 dev vm1-eth0"), std::string::npos) << fdb.out;
  EXPECT_NE(fdb.out.find("52:54:00:e2:00:02 dev vm2-eth0"), std::string::npos) << fdb.out;

  // A clean stop: ACPI power button -> guest powers off -> QEMU exits 0.
  Status stopped = vm2->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped.message();
  EXPECT_EQ(vm2->status().last_exit, "exited with status 0") << c2.Log();
  EXPECT_NE(c2.Log().find("VF-POWERDOWN"), std::string::npos) << c2.Log();
}

TEST_F(GuestE2eTest, ScriptOnTheCommandLineRunsAndThePowerOffIsAcleanExit) {
  ASSERT_TRUE(ready_);
  // vf.run takes URL-safe base64 without padding; the guest powers off after it.
  const std::string script = "echo hello from the guest script; test -e /sys/class/net/lo; exit 3";
  testing::CommandResult b64 = testing::Run(
      {"sh", "-c", "printf '%s' \"$1\" | base64 -w0 | tr '+/' '-_' | tr -d =", "sh", script});
  ASSERT_EQ(b64.exit_code, 0);
  auto vm = Boot("vm1", "vf.run=" + b64.out + " vf.poweroff=1", {});
  ASSERT_TRUE(vm);
  Console console(vm->console_socket_path(), vm->console_log_path());
  ASSERT_TRUE(WaitReady(*vm, console));
  EXPECT_TRUE(console.WaitFor("VF-RESULT ", milliseconds(30000)) == std::optional<std::string>("3"))
      << console.Log();
  EXPECT_NE(console.Log().find("hello from the guest script"), std::string::npos) << console.Log();
  // poweroff -f: QEMU exits 0 (-no-reboot), which restart "no" leaves stopped.
  Status stopped = vm->WaitForState(GuestState::kStopped, milliseconds(30000));
  EXPECT_TRUE(stopped.ok()) << stopped.message() << "\n" << console.Log();
  EXPECT_EQ(vm->status().last_exit, "exited with status 0");
  EXPECT_EQ(vm->pollfd(), -1);
}

TEST_F(GuestE2eTest, HotAttachedNicReachesTheNewNetworkUntilDetached) {
  ASSERT_TRUE(ready_);
  Bridge("vfb-a");
  Bridge("vfb-b");
  std::vector<GuestNic> nics1, nics3;
  nics1.push_back(Nic("nic0", "vm1-eth0", "a", "52:54:00:e2:01:01", Tap("vm1-eth0", "vfb-a")));
  nics3.push_back(Nic("nic0", "vm3-eth0", "b", "52:54:00:e2:02:03", Tap("vm3-eth0", "vfb-b")));
  UniqueFd hot_tap = Tap("vm1-eth1", "vfb-b");
  ASSERT_TRUE(hot_tap.valid());
  auto vm1 = Boot("vm1", "vf.ip=10.0.1.1/24", std::move(nics1));
  auto vm3 = Boot("vm3", "vf.ip=10.0.2.3/24", std::move(nics3));
  ASSERT_TRUE(vm1 && vm3);
  Console c1(vm1->console_socket_path(), vm1->console_log_path());
  Console c3(vm3->console_socket_path(), vm3->console_log_path());
  ASSERT_TRUE(WaitReady(*vm1, c1));
  ASSERT_TRUE(WaitReady(*vm3, c3));

  std::string out;
  // Before: vm1 has no way into network b.
  EXPECT_NE(c1.Run("ping -c 1 -W 1 10.0.2.3", milliseconds(20000), &out), 0) << out;

  auto t0 = steady_clock::now();
  Status attached =
      vm1->AttachNic(Nic("nic1", "vm1-eth1", "b", "52:54:00:e2:01:02", std::move(hot_tap)));
  ASSERT_TRUE(attached.ok()) << attached.message();
  EXPECT_EQ(c1.Run("i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 150 ]; do sleep 0.1; "
                   "i=$((i+1)); done;"
                   " cat /sys/class/net/eth1/address && ip link set eth1 up && ip addr add "
                   "10.0.2.1/24 dev eth1",
                   milliseconds(30000), &out),
            0)
      << out;
  EXPECT_NE(out.find("52:54:00:e2:01:02"), std::string::npos) << out;
  std::cout << "vm1: eth1 configured "
            << std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0).count()
            << " ms after device_add\n";
  EXPECT_EQ(c1.Run("ping -c 3 -i 0.2 -W 2 10.0.2.3", milliseconds(30000), &out), 0) << out;
  PrintRtt("vm1 -> vm3 over the hot-attached NIC", out);
  EXPECT_EQ(c3.Run("ping -c 2 -i 0.2 -W 2 10.0.2.1", milliseconds(30000), &out), 0) << out;

  t0 = steady_clock::now();
  Status detached = vm1->DetachNic("nic1", milliseconds(30000));
  ASSERT_TRUE(detached.ok()) << detached.message() << "\n" << c1.Log();
  std::cout << "vm1: nic1 detached (DEVICE_DELETED) in "
            << std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0).count()
            << " ms\n";
  EXPECT_EQ(c1.Run("[ ! -e /sys/class/net/eth1 ]", milliseconds(20000), &out), 0) << out;
  // vm3 no longer reaches vm1, nor vm1 vm3.
  EXPECT_NE(c3.Run("ping -c 2 -i 0.3 -W 1 10.0.2.1", milliseconds(20000), &out), 0) << out;
  EXPECT_NE(c1.Run("ping -c 1 -W 1 10.0.2.3", milliseconds(20000), &out), 0) << out;
  // The tap is closed by QEMU and by the Guest: it has no carrier any more.
  testing::CommandResult link = testing::Run({"ip", "-o", "link", "show", "vm1-eth1"});
  EXPECT_NE(link.out.find("NO-CARRIER"), std::string::npos) << link.out;
}

}  // namespace
}  // namespace vfabric::vmm
