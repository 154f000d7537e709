// Packet-socket ports: AF_PACKET SOCK_RAW on one link (a veth, a NIC), with
// a TPACKET_V3 rx ring (man 7 packet; Documentation/networking/packet_mmap.rst)
// and sendmmsg() for tx.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/log.h"

namespace vfabric::bridge {
namespace {

constexpr size_t kPacketVnetLen = 10;  // struct virtio_net_hdr (no num_buffers)
constexpr size_t kMaxTx = 256;
constexpr uint32_t kStatusGsoTcp = 1u << 8;  // TP_STATUS_GSO_TCP (Linux 5.0+)

class PacketPort final : public Port {
 public:
  PacketPort(std::string name, UniqueFd fd, bool vnet, uint8_t* ring, size_t ring_size,
             uint32_t block_size, uint32_t block_count)
      : name_(std::move(name)),
        fd_(std::move(fd)),
        vnet_(vnet),
        ring_(ring),
        ring_size_(ring_size),
        block_size_(block_size),
        block_count_(block_count) {}
  ~PacketPort() override {
    if (ring_) ::munmap(ring_, ring_size_);
  }

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kPacketSocket; }
  int fd() const override { return fd_.get(); }
  bool takes_offload() const override { return vnet_; }

  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override {
    size_t n = 0;
    while (n < out.size()) {
      auto* block = reinterpret_cast<tpacket_block_desc*>(ring_ + block_ * size_t{block_size_});
      if ((__atomic_load_n(&block->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0)
        break;
      const uint32_t packets = block->hdr.bh1.num_pkts;
      if (pkt_index_ == 0) pkt_offset_ = block->hdr.bh1.offset_to_first_pkt;
      while (pkt_index_ < packets && n < out.size()) {
        auto* hdr =
            reinterpret_cast<tpacket3_hdr*>(reinterpret_cast<uint8_t*>(block) + pkt_offset_);
        ++pkt_index_;
        pkt_offset_ += hdr->tp_next_offset;
        Take(pool, hdr, out, &n, no_buffer, malformed);
      }
      if (pkt_index_ >= packets) {
        __atomic_store_n(&block->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        block_ = (block_ + 1) % block_count_;
        pkt_index_ = 0;
      }
    }
    return n;
  }

  TxResult Transmit(std::span<const TxItem> items) override {
    TxResult result;
    size_t done = 0;
    while (done < items.size()) {
      const size_t count = std::min(items.size() - done, kMaxTx);
      for (size_t i = 0; i < count; ++i) {
        const TxItem& item = items[done + i];
        const Frame& f = *item.frame;
        iovec* iov = &iov_[i * 4];
        int c = 0;
        if (vnet_) {
          const VnetHdr h = TxVnetHdr(item);
          std::memcpy(vnet_hdrs_[i].data(), &h, kPacketVnetLen);
          iov[c++] = {vnet_hdrs_[i].data(), kPacketVnetLen};
        }
        if (item.tagged) {
          tags_[i] = {0x81, 0x00, static_cast<uint8_t>(item.tci >> 8),
                      static_cast<uint8_t>(item.tci & 0xff)};
          iov[c++] = {f.data, 12};
          iov[c++] = {tags_[i].data(), 4};
          iov[c++] = {f.data + 12, f.size - 12};
        } else {
          iov[c++] = {f.data, f.size};
        }
        msgs_[i] = mmsghdr{};
        msgs_[i].msg_hdr.msg_iov = iov;
        msgs_[i].msg_hdr.msg_iovlen = static_cast<size_t>(c);
      }
      size_t sent = 0;
      while (sent < count) {
        const int r =
            ::sendmmsg(fd_.get(), &msgs_[sent], static_cast<unsigned>(count - sent), MSG_DONTWAIT);
        if (r < 0) {
          if (errno == EINTR) continue;
          // The first unsent message failed: count it and go on after it.
          if (errno == EAGAIN || errno == ENOBUFS) {
            ++result.full;
          } else {
            ++result.errors;
            LogOnce("sendmmsg", errno);
          }
          ++sent;
          continue;
        }
        for (int k = 0; k < r; ++k) {
          const TxItem& item = items[done + sent + static_cast<size_t>(k)];
          ++result.packets;
          result.bytes += item.frame->size + (item.tagged ? 4 : 0);
        }
        sent += static_cast<size_t>(r);
      }
      done += count;
    }
    return result;
  }

 private:
  void Take(FramePool& pool, const tpacket3_hdr* hdr, std::span<Frame*> out, size_t* n,
            uint64_t* no_buffer, uint64_t* malformed) {
    const uint8_t* mac = reinterpret_cast<const uint8_t*>(hdr) + hdr->tp_mac;
    const uint32_t len = hdr->tp_snaplen;
    const bool vlan = (hdr->tp_status & TP_STATUS_VLAN_VALID) != 0;
    if (len < hdr->tp_len || len < 14) {
      ++*malformed;  // truncated to the ring's block: larger than the ring allows
      return;
    }
    Frame* f = pool.Alloc();
    if (f == nullptr) {
      ++*no_buffer;
      return;
    }
    const size_t total = len + (vlan ? 4 : 0);
    if (total > f->capacity) {
      pool.Free(f);
      ++*malformed;
      return;
    }
    if (vnet_) {
      std::memcpy(static_cast<void*>(&f->vnet), mac - kPacketVnetLen, kPacketVnetLen);
      f->vnet.num_buffers = 0;
    }
    if (vlan) {
      // The kernel moved the tag into the metadata (skb->vlan_tci): put it back.
      const uint16_t tpid =
          (hdr->tp_status & TP_STATUS_VLAN_TPID_VALID) ? hdr->hv1.tp_vlan_tpid : ETH_P_8021Q;
      const uint16_t tci = static_cast<uint16_t>(hdr->hv1.tp_vlan_tci);
      std::memcpy(f->data, mac, 12);
      f->data[12] = static_cast<uint8_t>(tpid >> 8);
      f->data[13] = static_cast<uint8_t>(tpid & 0xff);
      f->data[14] = static_cast<uint8_t>(tci >> 8);
      f->data[15] = static_cast<uint8_t>(tci & 0xff);
      std::memcpy(f->data + 16, mac + 12, len - 12);
      if (f->vnet.needs_csum()) f->vnet.csum_start = static_cast<uint16_t>(f->vnet.csum_start + 4);
      if (f->vnet.is_gso()) f->vnet.hdr_len = static_cast<uint16_t>(f->vnet.hdr_len + 4);
    } else {
      std::memcpy(f->data, mac, len);
    }
    f->size = static_cast<uint32_t>(total);
    if (!vnet_ && (hdr->tp_status & kStatusGsoTcp) != 0) {
      // A GSO frame without its MSS: nothing can segment it correctly.
      pool.Free(f);
      ++*malformed;
      return;
    }
    if (!vnet_ && (hdr->tp_status & TP_STATUS_CSUMNOTREADY) != 0 && !MarkPartialChecksum(*f)) {
      pool.Free(f);
      ++*malformed;
      return;
    }
    out[(*n)++] = f;
  }

  // Without PACKET_VNET_HDR the kernel only says that the L4 checksum is
  // not done yet (CHECKSUM_PARTIAL, as a local stack sends on a veth); find
  // where it goes, so the pipeline completes it like offload metadata.
  static bool MarkPartialChecksum(Frame& f) {
    const uint8_t* b = f.data;
    size_t l3 = 14;
    uint16_t type = static_cast<uint16_t>(b[12] << 8 | b[13]);
    if (type == ETH_P_8021Q && f.size >= 18) {
      type = static_cast<uint16_t>(b[16] << 8 | b[17]);
      l3 = 18;
    }
    size_t l4 = 0;
    uint8_t proto = 0;
    if (type == ETH_P_IP && f.size >= l3 + 20) {
      l4 = l3 + size_t{static_cast<size_t>(b[l3] & 0x0f) * 4};
      proto = b[l3 + 9];
    } else if (type == ETH_P_IPV6 && f.size >= l3 + 40) {
      l4 = l3 + 40;
      proto = b[l3 + 6];
    } else {
      return false;
    }
    const size_t offset = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 0;
    if (offset == 0 || l4 + offset + 2 > f.size) return false;
    f.vnet.flags = VnetHdr::kNeedsCsum;
    f.vnet.csum_start = static_cast<uint16_t>(l4);
    f.vnet.csum_offset = static_cast<uint16_t>(offset);
    return true;
  }

  void LogOnce(const char* op, int error) {
    if (logged_) return;
    logged_ = true;
    VF_LOG(kWarning) << "packet socket " << name_ << ": " << op << ": " << std::strerror(error);
  }

  std::string name_;
  UniqueFd fd_;
  bool vnet_;
  uint8_t* ring_;
  size_t ring_size_;
  uint32_t block_size_;
  uint32_t block_count_;
  uint32_t block_ = 0;
  uint32_t pkt_index_ = 0;
  uint32_t pkt_offset_ = 0;
  bool logged_ = false;
  std::array<mmsghdr, kMaxTx> msgs_{};
  std::array<iovec, kMaxTx * 4> iov_{};
  std::array<std::array<uint8_t, kPacketVnetLen>, kMaxTx> vnet_hdrs_{};
  std::array<std::array<uint8_t, 4>, kMaxTx> tags_{};
};

}  // namespace

Result<std::unique_ptr<Port>> OpenPacketSocketPort(std::string name, int ifindex,
                                                   const PacketPortOptions& options) {
  const std::string what = "packet socket " + name;
  if (ifindex <= 0) return Status::Error(what + ": bad ifindex " + std::to_string(ifindex), EINVAL);
  if (options.block_size < 4096 || (options.block_size & (options.block_size - 1)) != 0 ||
      options.block_count == 0 || options.frame_size < TPACKET_ALIGNMENT ||
      options.block_size % options.frame_size != 0)
    return Status::Error(what + ": bad ring geometry", EINVAL);
  // Protocol 0 until bound, so nothing is queued from other links meanwhile.
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(what + ": socket(AF_PACKET)", errno);
  auto set = [&](int level, int opt, const void* value, socklen_t len, const char* opt_name) {
    if (::setsockopt(fd.get(), level, opt, value, len) < 0)
      return Status::FromErrno(what + ": " + opt_name, errno);
    return Status::Ok();
  };
  const int one = 1;
  bool vnet = false;
  if (options.vnet_hdr) {
    VF_RETURN_IF_ERROR(set(SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one, "PACKET_VNET_HDR"));
    vnet = true;
  }
  const int version = TPACKET_V3;
  VF_RETURN_IF_ERROR(set(SOL_PACKET, PACKET_VERSION, &version, sizeof version, "PACKET_VERSION"));
  VF_RETURN_IF_ERROR(
      set(SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one, "PACKET_IGNORE_OUTGOING"));
  tpacket_req3 req{};
  req.tp_block_size = options.block_size;
  req.tp_block_nr = options.block_count;
  req.tp_frame_size = options.frame_size;
  req.tp_frame_nr = options.block_size / options.frame_size * options.block_count;
  req.tp_retire_blk_tov = 1;  // ms: a partly filled block goes to us after this
  VF_RETURN_IF_ERROR(set(SOL_PACKET, PACKET_RX_RING, &req, sizeof req, "PACKET_RX_RING"));
  const size_t ring_size = size_t{options.block_size} * options.block_count;
  void* ring =
      ::mmap(nullptr, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (ring == MAP_FAILED) return Status::FromErrno(what + ": mmap rx ring", errno);
  auto port = std::make_unique<PacketPort>(name, std::move(fd), vnet, static_cast<uint8_t*>(ring),
                                           ring_size, options.block_size, options.block_count);
  const int sock = port->fd();
  packet_mreq mreq{};
  mreq.mr_ifindex = ifindex;
  mreq.mr_type = PACKET_MR_PROMISC;
  if (::setsockopt(sock, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
    return Status::FromErrno(what + ": PACKET_ADD_MEMBERSHIP promisc", errno);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = ifindex;
  if (::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Status::FromErrno(what + ": bind", errno);
  return std::unique_ptr<Port>(std::move(port));
}

}  // namespace vfabric::bridge
