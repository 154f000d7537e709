// Any bytes as one receive buffer of netd's NETLINK_ROUTE sockets: a dump
// reply (links, bridge FDB and vxlan flood entries, bridge port VLANs), a link/neighbour event of
// the drift monitor, or an error/ack with the kernel's extended ack message. The buffer is walked
// as NlSocket::Receive and the link monitor walk it (nl::MessageOk, mnl_nlmsg_next), and every
// message goes through each parser netd has for it: never a crash, a read outside the buffer or
// unbounded memory.
//
// Seed corpus: tests/fuzz/corpus/netlink, captured from a real kernel with
// tests/fuzz/tools/capture-netlink (one recv() per file).
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "nl_parse.h"
#include "nl_vxlan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfabric::netd;
  // netd reads at most 64 KiB per recv().
  if (size > 65536) return 0;
  // A buffer of exactly the input's size (ASan sees any overread), aligned as
  // a receive buffer is.
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[size]);
  if (size > 0) std::memcpy(buffer.get(), data, size);
  const auto* header = reinterpret_cast<const nlmsghdr*>(buffer.get());
  int remaining = static_cast<int>(size);
  while (nl::MessageOk(header, remaining)) {
    LinkInfo link;
    if (nl::ParseLink(header, &link) && link.name.size() > header->nlmsg_len) std::abort();
    if (auto entry = nl::ParseFdb(header); entry && header->nlmsg_type != RTM_NEWNEIGH)
      std::abort();
    if (auto flood = nl::ParseVxlanFlood(header);
        flood && flood->dst.family != AF_INET && flood->dst.family != AF_INET6)
      std::abort();
    std::vector<PortVlanEntry> vlans;
    nl::ParsePortVlans(header, &vlans);
    for (const PortVlanEntry& v : vlans) {
      // The kernel's VLAN ids are 1..4094; a parser that lets others through
      // can be made to expand a range without bound.
      if (v.vid < 1 || v.vid > 4094) std::abort();
    }
    // NlSocket::Receive reads the extended ack of an error or a dump's end
    // once it has checked that their payload is there.
    if ((header->nlmsg_type == NLMSG_ERROR &&
         header->nlmsg_len >= mnl_nlmsg_size(sizeof(nlmsgerr))) ||
        (header->nlmsg_type == NLMSG_DONE && header->nlmsg_len >= mnl_nlmsg_size(sizeof(int)))) {
      std::string message = nl::ExtackMessage(header);
      if (message.size() > header->nlmsg_len) std::abort();
    }
    header = mnl_nlmsg_next(header, &remaining);
  }
  return 0;
}
