// vfabric_blaster: 64-byte UDP frames at full speed, for bench/run-datapath.
//
//   vfabric_blaster send --ifname IF --dst-mac MAC --src-ip A --dst-ip B
//                        [--port P] [--seconds N] [--warmup S] [--batch K]
//                        [--rx-netns NS --rx-ifname IF]
//   vfabric_blaster sink [--port P] [--seconds N]
//
// `send` writes pre-built Ethernet/IPv4/UDP frames (18-byte payload: 60
// bytes on the link, 64 on a wire with its FCS) through an AF_PACKET socket
// bound to IF with PACKET_QDISC_BYPASS, sendmmsg() batches of K, for
// warmup + N seconds (+ 0.2 s). The packet socket keeps the sender's own
// cost per frame low (no UDP/IP stack, no qdisc): the switch under test is
// the bottleneck, not the sender.
//
// What counts is what the destination host RECEIVED: with --rx-netns, the
// blaster opens a rtnetlink socket inside that namespace and reads the
// interface's rx_packets (IFLA_STATS64) at the end of the warmup and N
// seconds later; received/s is their difference over the clock time between
// the two reads (steady state: no start-up, no ring drained after the end).
// The frames sent in the same window are reported too. One JSON object on
// stdout: {"sent", "sent_pps", "received", "received_pps", "seconds",
// "send_errors"}.
//
// `sink` binds a UDP socket on the port (so the destination host takes the
// frames instead of answering ICMP port unreachable) and holds it for N
// seconds without reading: a full socket buffer drops at the socket, the
// cheapest end a delivered datagram can have.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vfabric/common/mac_address.h"
#include "vfabric/common/status.h"
#include "vfabric/common/unique_fd.h"

namespace vfabric {
namespace {

constexpr size_t kPayload = 18;
constexpr size_t kFrameSize = 14 + 20 + 8 + kPayload;  // 60
constexpr size_t kMaxBatch = 1024;

double Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

uint16_t Checksum(const uint8_t* data, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
}

// Ethernet + IPv4 + UDP with both checksums, payload a fixed pattern.
std::array<uint8_t, kFrameSize> BuildFrame(const MacAddress& src_mac, const MacAddress& dst_mac,
                                           in_addr src, in_addr dst, uint16_t port) {
  std::array<uint8_t, kFrameSize> f{};
  std::memcpy(f.data(), dst_mac.bytes.data(), 6);
  std::memcpy(f.data() + 6, src_mac.bytes.data(), 6);
  Put16(f.data() + 12, ETHERTYPE_IP);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  Put16(ip + 2, 20 + 8 + kPayload);
  ip[6] = 0x40;  // DF
  ip[8] = 64;    // TTL
  ip[9] = IPPROTO_UDP;
  std::memcpy(ip + 12, &src.s_addr, 4);
  std::memcpy(ip + 16, &dst.s_addr, 4);
  Put16(ip + 10, Checksum(ip, 20));
  uint8_t* udp = ip + 20;
  Put16(udp, port);
  Put16(udp + 2, port);
  Put16(udp + 4, 8 + kPayload);
  for (size_t i = 0; i < kPayload; ++i) udp[8 + i] = static_cast<uint8_t>('a' + i);
  // Pseudo-header: addresses, protocol, UDP length.
  uint32_t sum = 0;
  for (size_t i = 12; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  sum += IPPROTO_UDP + 8 + kPayload;
  uint16_t c = Checksum(udp, 8 + kPayload, sum);
  Put16(udp + 6, c == 0 ? 0xffff : c);
  return f;
}

// rx_packets of one interface, read over rtnetlink through a socket made in
// the interface's namespace.
class RxCounter {
 public:
  static Result<RxCounter> Open(const std::string& netns, const std::string& ifname) {
    UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!self) return Status::FromErrno("open /proc/self/ns/net", errno);
    const std::string path = "/run/netns/" + netns;
    UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target) return Status::FromErrno("open " + path, errno);
    if (::setns(target.get(), CLONE_NEWNET) != 0) return Status::FromErrno("setns " + netns, errno);
    UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    const int saved = errno;
    if (::setns(self.get(), CLONE_NEWNET) != 0) return Status::FromErrno("setns back", errno);
    if (!sock) return Status::FromErrno("netlink socket in " + netns, saved);
    RxCounter counter(std::move(sock), ifname);
    auto first = counter.Read();
    if (!first.ok()) return first.status();
    return counter;
  }

  Result<uint64_t> Read() {
    struct {
      nlmsghdr nh;
      ifinfomsg ifi;
      char attrs[64];
    } req{};
    const size_t name_len = ifname_.size() + 1;
    req.nh.nlmsg_type = RTM_GETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = ++seq_;
    req.ifi.ifi_family = AF_UNSPEC;
    auto* rta = reinterpret_cast<rtattr*>(req.attrs);
    rta->rta_type = IFLA_IFNAME;
    rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(name_len));
    std::memcpy(RTA_DATA(rta), ifname_.c_str(), name_len);
    req.nh.nlmsg_len =
        static_cast<uint32_t>(NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(rta->rta_len));
    if (::send(fd_.get(), &req, req.nh.nlmsg_len, 0) < 0)
      return Status::FromErrno("RTM_GETLINK " + ifname_, errno);
    std::vector<char> buf(1 << 16);
    for (;;) {
      const ssize_t got = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("RTM_GETLINK " + ifname_ + ": recv", errno);
      }
      int len = static_cast<int>(got);
      for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len);
           nh = NLMSG_NEXT(nh, len)) {
        if (nh->nlmsg_seq != seq_) continue;
        if (nh->nlmsg_type == NLMSG_ERROR) {
          const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
          return Status::FromErrno("RTM_GETLINK " + ifname_, -err->error);
        }
        if (nh->nlmsg_type != RTM_NEWLINK) continue;
        auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
        int alen = static_cast<int>(IFLA_PAYLOAD(nh));
        for (auto* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
          if (a->rta_type != IFLA_STATS64 || RTA_PAYLOAD(a) < sizeof(rtnl_link_stats64)) continue;
          rtnl_link_stats64 stats{};
          std::memcpy(&stats, RTA_DATA(a), sizeof stats);
          return static_cast<uint64_t>(stats.rx_packets);
        }
        return Status::Error("RTM_GETLINK " + ifname_ + ": no IFLA_STATS64");
      }
    }
  }

 private:
  RxCounter(UniqueFd fd, std::string ifname) : fd_(std::move(fd)), ifname_(std::move(ifname)) {}
  UniqueFd fd_;
  std::string ifname_;
  uint32_t seq_ = 0;
};

struct Options {
  std::string mode;
  std::string ifname;
  std::optional<MacAddress> dst_mac;
  in_addr src_ip{};
  in_addr dst_ip{};
  bool have_src = false, have_dst = false;
  uint16_t port = 9;
  double seconds = 10;
  double warmup = 1;
  size_t batch = 64;
  std::string rx_netns;
  std::string rx_ifname;
};

Result<Options> ParseArgs(int argc, char** argv) {
  Options o;
  if (argc < 2) return Status::Error("usage: vfabric_blaster send|sink [options] (see the source)");
  o.mode = argv[1];
  if (o.mode != "send" && o.mode != "sink") return Status::Error("unknown mode " + o.mode);
  for (int i = 2; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) return Status::Error(key + ": missing value");
    const std::string value = argv[++i];
    char* end = nullptr;
    if (key == "--ifname") {
      o.ifname = value;
    } else if (key == "--dst-mac") {
      o.dst_mac = MacAddress::Parse(value);
      if (!o.dst_mac) return Status::Error("bad MAC " + value);
    } else if (key == "--src-ip" || key == "--dst-ip") {
      in_addr& a = key == "--src-ip" ? o.src_ip : o.dst_ip;
      if (::inet_pton(AF_INET, value.c_str(), &a) != 1) return Status::Error("bad IPv4 " + value);
      (key == "--src-ip" ? o.have_src : o.have_dst) = true;
    } else if (key == "--port") {
      const unsigned long p = std::strtoul(value.c_str(), &end, 10);
      if (*end != '\0' || p == 0 || p > 65535) return Status::Error("bad port " + value);
      o.port = static_cast<uint16_t>(p);
    } else if (key == "--seconds" || key == "--warmup") {
      const double d = std::strtod(value.c_str(), &end);
      if (*end != '\0' || d < 0 || d > 3600) return Status::Error("bad " + key + " " + value);
      (key == "--seconds" ? o.seconds : o.warmup) = d;
    } else if (key == "--batch") {
      const unsigned long b = std::strtoul(value.c_str(), &end, 10);
      if (*end != '\0' || b == 0 || b > kMaxBatch) return Status::Error("bad batch " + value);
      o.batch = b;
    } else if (key == "--rx-netns") {
      o.rx_netns = value;
    } else if (key == "--rx-ifname") {
      o.rx_ifname = value;
    } else {
      return Status::Error("unknown option " + key);
    }
  }
  if (o.mode == "send") {
    if (o.ifname.empty() || !o.dst_mac || !o.have_src || !o.have_dst)
      return Status::Error("send needs --ifname, --dst-mac, --src-ip and --dst-ip");
    if (o.rx_netns.empty() != o.rx_ifname.empty())
      return Status::Error("--rx-netns and --rx-ifname go together");
  }
  return o;
}

Result<MacAddress> InterfaceMac(int fd, const std::string& ifname) {
  ifreq req{};
  std::snprintf(req.ifr_name, sizeof req.ifr_name, "%s", ifname.c_str());
  if (::ioctl(fd, SIOCGIFHWADDR, &req) < 0)
    return Status::FromErrno("SIOCGIFHWADDR " + ifname, errno);
  MacAddress mac;
  std::memcpy(mac.bytes.data(), req.ifr_hwaddr.sa_data, 6);
  return mac;
}

Status Send(const Options& o) {
  const unsigned ifindex = ::if_nametoindex(o.ifname.c_str());
  if (ifindex == 0) return Status::FromErrno("interface " + o.ifname, errno);
  // Protocol 0: the socket sends only, nothing is queued to it.
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno("socket(AF_PACKET)", errno);
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
    return Status::FromErrno("PACKET_QDISC_BYPASS", errno);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_ifindex = static_cast<int>(ifindex);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Status::FromErrno("bind " + o.ifname, errno);
  auto src_mac = InterfaceMac(fd.get(), o.ifname);
  if (!src_mac.ok()) return src_mac.status();
  const auto frame = BuildFrame(*src_mac, *o.dst_mac, o.src_ip, o.dst_ip, o.port);

  std::optional<RxCounter> rx;
  if (!o.rx_netns.empty()) {
    auto opened = RxCounter::Open(o.rx_netns, o.rx_ifname);
    if (!opened.ok()) return opened.status();
    rx.emplace(std::move(opened).value());
  }

  std::vector<iovec> iov(o.batch);
  std::vector<mmsghdr> msgs(o.batch);
  for (size_t i = 0; i < o.batch; ++i) {
    iov[i] = {const_cast<uint8_t*>(frame.data()), frame.size()};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  const double start = Now();
  const double window_start = start + o.warmup;
  const double window_end = window_start + o.seconds;
  const double stop = window_end + 0.2;
  uint64_t sent = 0, errors = 0, sent_at_start = 0, sent_at_end = 0;
  uint64_t rx_at_start = 0, rx_at_end = 0;
  double t_start = 0, t_end = 0;
  int phase = 0;  // 0 warmup, 1 window, 2 tail
  for (;;) {
    const int r = ::sendmmsg(fd.get(), msgs.data(), static_cast<unsigned>(o.batch), 0);
    if (r > 0) {
      sent += static_cast<uint64_t>(r);
    } else if (r < 0 && errno != EINTR) {
      ++errors;  // ENOBUFS and the like: the frame is lost at the sender
      if (errno != ENOBUFS && errno != EAGAIN)
        return Status::FromErrno("sendmmsg on " + o.ifname, errno);
    }
    const double now = Now();
    if (phase == 0 && now >= window_start) {
      if (rx) {
        auto c = rx->Read();
        if (!c.ok()) return c.status();
        rx_at_start = *c;
      }
      t_start = Now();
      sent_at_start = sent;
      phase = 1;
    } else if (phase == 1 && now >= window_end) {
      if (rx) {
        auto c = rx->Read();
        if (!c.ok()) return c.status();
        rx_at_end = *c;
      }
      t_end = Now();
      sent_at_end = sent;
      phase = 2;
    } else if (phase == 2 && now >= stop) {
      break;
    }
  }
  const double window = t_end - t_start;
  const uint64_t window_sent = sent_at_end - sent_at_start;
  const uint64_t received = rx_at_end - rx_at_start;
  std::printf(
      "{\"sent\": %" PRIu64
      ", \"sent_pps\": %.0f, \"received\": %s, \"received_pps\": %s, "
      "\"seconds\": %.3f, \"send_errors\": %" PRIu64 "}\n",
      window_sent, static_cast<double>(window_sent) / window,
      rx ? std::to_string(received).c_str() : "null",
      rx ? std::to_string(static_cast<uint64_t>(static_cast<double>(received) / window)).c_str()
         : "null",
      window, errors);
  return Status::Ok();
}

Status Sink(const Options& o) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno("socket(AF_INET, SOCK_DGRAM)", errno);
  const int small = 4096;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) < 0)
    return Status::FromErrno("SO_RCVBUF", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Status::FromErrno("bind UDP port " + std::to_string(o.port), errno);
  std::printf("ready\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  return Status::Ok();
}

}  // namespace
}  // namespace vfabric

int main(int argc, char** argv) {
  auto options = vfabric::ParseArgs(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "vfabric_blaster: %s\n", options.status().message().c_str());
    return 2;
  }
  const vfabric::Status status =
      options->mode == "send" ? vfabric::Send(*options) : vfabric::Sink(*options);
  if (!status.ok()) {
    std::fprintf(stderr, "vfabric_blaster: %s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
