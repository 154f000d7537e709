// Packet-socket ports: AF_PACKET SOCK_RAW on one link (a veth, a NIC), with
// a TPACKET_V2 rx ring (man 7 packet; Documentation/networking/packet_mmap.rst)
// and sendmmsg() for tx.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "vfabric/bridge/ports.h"
#include "vfabric/common/log.h"
#include "vfabric/vlan/tag.h"

namespace vfabric::bridge {
namespace {

constexpr size_t kPacketVnetLen = 10;  // struct virtio_net_hdr (no num_buffers)
constexpr size_t kMaxTx = 256;
constexpr uint32_t kStatusGsoTcp = 1u << 8;  // TP_STATUS_GSO_TCP (Linux 5.0+)
// Where a TPACKET_V2 tx slot's data starts (no PACKET_TX_HAS_OFF): right
// after the aligned header; the vnet header first, then the frame.
constexpr size_t kTxDataOffset = TPACKET_ALIGN(sizeof(tpacket2_hdr));

// Owns an mmap()ed region.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t size) : addr_(static_cast<uint8_t*>(addr)), size_(size) {}
  ~Mapping() {
    if (addr_) ::munmap(addr_, size_);
  }
  Mapping(Mapping&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      if (addr_) ::munmap(addr_, size_);
      addr_ = std::exchange(other.addr_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  uint8_t* get() const { return addr_; }
  size_t size() const { return size_; }

 private:
  uint8_t* addr_ = nullptr;
  size_t size_ = 0;
};

// A socket with a TPACKET_V2 tx ring, mapped.
struct TxRing {
  UniqueFd fd;
  Mapping ring;
  uint32_t frame_size = 0;
  uint32_t frame_count = 0;
};

class PacketPort final : public Port {
 public:
  PacketPort(std::string name, UniqueFd fd, UniqueFd tx_fd, std::optional<TxRing> tx_ring,
             bool vnet, Mapping ring, uint32_t frame_size, uint32_t frame_count)
      : name_(std::move(name)),
        fd_(std::move(fd)),
        tx_fd_(std::move(tx_fd)),
        vnet_(vnet),
        ring_(std::move(ring)),
        frame_size_(frame_size),
        frame_count_(frame_count) {
    if (tx_ring) {
      tx_ring_fd_ = std::move(tx_ring->fd);
      tx_ring_ = std::move(tx_ring->ring);
      tx_frame_size_ = tx_ring->frame_size;
      tx_frame_count_ = tx_ring->frame_count;
      tx_slot_max_ = tx_frame_size_ - kTxDataOffset;
    }
  }

  const std::string& name() const override { return name_; }
  PortKind kind() const override { return PortKind::kPacketSocket; }
  int fd() const override { return fd_.get(); }
  bool takes_offload() const override { return vnet_; }
  bool cheap_to_poll() const override { return true; }
  bool reports_kernel_drops() const override { return true; }

  // The three sockets and where the rings stand. The tx ring holds nothing
  // queued between turns (Transmit flushes it), so its head is all of its
  // state; the rx ring's next slot is ours, the kernel fills on from there.
  Result<PortHandover> Handover() const override {
    const std::string what = "packet socket " + name_;
    PortHandover handover;
    handover.kind = PortKind::kPacketSocket;
    for (const UniqueFd* fd : {&fd_, &tx_fd_, &tx_ring_fd_}) {
      if (!*fd) break;                  // no tx ring
      UniqueFd copy(::dup(fd->get()));  // dup: no FD_CLOEXEC
      if (!copy) return Status::FromErrno(what + ": dup", errno);
      handover.fds.push_back(std::move(copy));
    }
    handover.values = {{"vnet", vnet_ ? 1u : 0u},
                       {"ring_bytes", ring_.size()},
                       {"frame_size", frame_size_},
                       {"frame_count", frame_count_},
                       {"slot", slot_},
                       {"tx_ring_bytes", tx_ring_.size()},
                       {"tx_frame_size", tx_frame_size_},
                       {"tx_frame_count", tx_frame_count_},
                       {"tx_head", tx_head_}};
    return handover;
  }
  // Where an adopted port's rings stand (see Handover).
  void Resume(uint32_t slot, uint32_t tx_head) {
    slot_ = slot;
    tx_head_ = tx_first_ = tx_head;
  }

  // PACKET_STATISTICS (man 7 packet): tp_drops counts the frames the kernel
  // found no free ring slot for (or, for a frame larger than a slot, no room
  // on the socket's queue), and reading it resets it. The ring is
  // TPACKET_V2, so the kernel answers struct tpacket_stats; a TPACKET_V3
  // ring's tpacket_stats_v3 starts with the same two fields (its
  // tp_freeze_q_cnt has no meaning for V2), so the larger struct takes
  // either.
  uint64_t TakeKernelDrops() override {
    tpacket_stats_v3 stats{};
    socklen_t len = sizeof stats;
    if (::getsockopt(fd_.get(), SOL_PACKET, PACKET_STATISTICS, &stats, &len) < 0) {
      LogOnce("getsockopt PACKET_STATISTICS", errno);
      return 0;
    }
    return stats.tp_drops;
  }

  size_t Receive(FramePool& pool, std::span<Frame*> out, uint64_t* no_buffer,
                 uint64_t* malformed) override {
    size_t n = 0;
    while (n < out.size()) {
      auto* hdr = reinterpret_cast<tpacket2_hdr*>(ring_.get() + size_t{slot_} * frame_size_);
      const uint32_t status = __atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE);
      if ((status & TP_STATUS_USER) == 0) break;
      TakeSlot(pool, hdr, status, out, &n, no_buffer, malformed);
      __atomic_store_n(&hdr->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      if (++slot_ == frame_count_) slot_ = 0;
    }
    return n;
  }

  TxResult Transmit(std::span<const TxItem> items) override {
    TxResult result;
    if (!tx_ring_.get()) {
      SendMessages(items, &result);
      return result;
    }
    size_t i = 0;
    while (i < items.size()) {
      if (FitsRing(items[i])) {
        if (!PutInRing(items[i])) {
          // Slots still held by the device (a NIC's pending tx completions):
          // send what is queued and look again once.
          FlushRing(&result);
          if (!PutInRing(items[i])) ++result.full;
        }
        ++i;
        continue;
      }
      // GSO and oversized frames take the message socket; the ring goes
      // first so that frames leave in order.
      FlushRing(&result);
      size_t j = i;
      while (j < items.size() && !FitsRing(items[j])) ++j;
      SendMessages(items.subspan(i, j - i), &result);
      i = j;
    }
    FlushRing(&result);
    return result;
  }

 private:
  // Frames the tx ring takes: no GSO (the kernel would map a GSO frame's
  // payload from the ring's pages into the skb, and the slot is reused once
  // the skb is orphaned, while the payload may still be queued at a
  // receiver), vnet header and frame within a slot.
  bool FitsRing(const TxItem& item) const {
    const size_t len = item.frame->size + (item.tagged ? 4 : 0);
    return !item.frame->vnet.is_gso() && kPacketVnetLen + len <= tx_slot_max_;
  }

  uint8_t* TxSlot(uint32_t index) const { return tx_ring_.get() + size_t{index} * tx_frame_size_; }

  // Copies the frame (tag inserted) into the next slot and hands it to the
  // kernel. False when that slot is not free yet.
  bool PutInRing(const TxItem& item) {
    auto* hdr = reinterpret_cast<tpacket2_hdr*>(TxSlot(tx_head_));
    const uint32_t status = __atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE);
    if ((status & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT)) != 0)
      return false;
    const Frame& f = *item.frame;
    const uint32_t len = f.size + (item.tagged ? 4 : 0);
    uint8_t* out = TxSlot(tx_head_) + kTxDataOffset;
    VnetHdr h = TxVnetHdr(item);
    // The whole frame into the skb's linear part: nothing of the slot is
    // referenced once the kernel has sent it.
    h.hdr_len = static_cast<uint16_t>(len);
    std::memcpy(out, &h, kPacketVnetLen);
    out += kPacketVnetLen;
    CopyTxItem(item, {out, len});
    hdr->tp_len = static_cast<uint32_t>(kPacketVnetLen) + len;
    __atomic_store_n(&hdr->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    if (++tx_head_ == tx_frame_count_) tx_head_ = 0;
    ++tx_queued_;
    return true;
  }

  // One send() for every queued slot. The kernel takes them in order from
  // its own head, which is ours at the first queued slot; it stops at the
  // first it cannot send (no buffer, link down) and leaves that one and
  // those after it in SEND_REQUEST: they are dropped (counted) and our head
  // goes back to the first of them, where the kernel's is.
  void FlushRing(TxResult* result) {
    if (tx_queued_ == 0) return;
    ssize_t r;
    do {
      r = ::send(tx_ring_fd_.get(), nullptr, 0, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    const int error = r < 0 ? errno : 0;
    uint32_t slot = tx_first_;
    for (uint32_t k = 0; k < tx_queued_; ++k) {
      auto* hdr = reinterpret_cast<tpacket2_hdr*>(TxSlot(slot));
      const uint32_t status = __atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE);
      if ((status & (TP_STATUS_SEND_REQUEST | TP_STATUS_WRONG_FORMAT)) != 0) {
        DropUnsent(slot, tx_queued_ - k, error, result);
        tx_head_ = slot;
        break;
      }
      ++result->packets;
      result->bytes += hdr->tp_len - kPacketVnetLen;
      if (++slot == tx_frame_count_) slot = 0;
    }
    tx_first_ = tx_head_;
    tx_queued_ = 0;
  }

  void DropUnsent(uint32_t slot, uint32_t count, int error, TxResult* result) {
    const bool congestion = error == 0 || error == EAGAIN || error == ENOBUFS;
    if (!congestion) LogOnce("send (tx ring)", error);
    for (uint32_t k = 0; k < count; ++k) {
      auto* hdr = reinterpret_cast<tpacket2_hdr*>(TxSlot(slot));
      const uint32_t status = __atomic_load_n(&hdr->tp_status, __ATOMIC_ACQUIRE);
      if ((status & TP_STATUS_WRONG_FORMAT) != 0 || !congestion) {
        ++result->errors;
      } else {
        ++result->full;
      }
      __atomic_store_n(&hdr->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
      if (++slot == tx_frame_count_) slot = 0;
    }
  }

  // sendmmsg() on the message socket: iovecs for the vnet header and an
  // inserted tag, no copies in userspace.
  void SendMessages(std::span<const TxItem> items, TxResult* result) {
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
          tags_[i] = vlan::TagBytes(item.tci);
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
        const int r = ::sendmmsg(tx_fd_.get(), &msgs_[sent], static_cast<unsigned>(count - sent),
                                 MSG_DONTWAIT);
        if (r < 0) {
          if (errno == EINTR) continue;
          // The first unsent message failed: count it and go on after it.
          if (errno == EAGAIN || errno == ENOBUFS) {
            ++result->full;
          } else {
            ++result->errors;
            LogOnce("sendmmsg", errno);
          }
          ++sent;
          continue;
        }
        for (int k = 0; k < r; ++k) {
          const TxItem& item = items[done + sent + static_cast<size_t>(k)];
          ++result->packets;
          result->bytes += item.frame->size + (item.tagged ? 4 : 0);
        }
        sent += static_cast<size_t>(r);
      }
      done += count;
    }
  }

  // One ring slot. A frame larger than the slot (a GSO frame from a veth
  // with TSO, a jumbo frame) is in the slot truncated, with TP_STATUS_COPY:
  // the kernel queued the whole frame on the socket (PACKET_COPY_THRESH),
  // in ring order, to be read with recvmsg().
  void TakeSlot(FramePool& pool, const tpacket2_hdr* hdr, uint32_t status, std::span<Frame*> out,
                size_t* n, uint64_t* no_buffer, uint64_t* malformed) {
    const bool copy = (status & TP_STATUS_COPY) != 0;
    const uint8_t* mac = reinterpret_cast<const uint8_t*>(hdr) + hdr->tp_mac;
    const uint32_t len = hdr->tp_snaplen;
    if (!copy && len < hdr->tp_len) {
      // Truncated and not queued whole: the socket's receive buffer was full.
      ++*no_buffer;
      return;
    }
    if (len < 14) {
      ++*malformed;
      return;
    }
    Frame* f = pool.Alloc();
    if (f == nullptr) {
      ++*no_buffer;
      if (copy) DiscardCopy();
      return;
    }
    const bool vlan = (status & TP_STATUS_VLAN_VALID) != 0;
    const uint16_t tpid =
        (status & TP_STATUS_VLAN_TPID_VALID) ? hdr->tp_vlan_tpid : uint16_t{ETH_P_8021Q};
    if (copy) {
      if (!ReadCopy(*f, vlan)) {
        pool.Free(f);
        ++*malformed;
        return;
      }
    } else {
      const size_t total = len + (vlan ? 4 : 0);
      if (total > f->capacity) {
        pool.Free(f);
        ++*malformed;
        return;
      }
      if (vnet_) std::memcpy(static_cast<void*>(&f->vnet), mac - kPacketVnetLen, kPacketVnetLen);
      if (vlan) {
        std::memcpy(f->data, mac, 12);
        std::memcpy(f->data + 16, mac + 12, len - 12);
      } else {
        std::memcpy(f->data, mac, len);
      }
      f->size = static_cast<uint32_t>(total);
    }
    if (Finish(*f, status, vlan, tpid, hdr->tp_vlan_tci)) {
      out[(*n)++] = f;
    } else {
      pool.Free(f);
      ++*malformed;
    }
  }

  // The whole frame of a TP_STATUS_COPY slot, from the socket's queue, with
  // room left for the tag at 12 when the kernel took it out.
  bool ReadCopy(Frame& f, bool vlan) {
    if (f.capacity < 16) return false;
    iovec iov[3];
    int c = 0;
    if (vnet_) iov[c++] = {&f.vnet, kPacketVnetLen};
    if (vlan) {
      iov[c++] = {f.data, 12};
      iov[c++] = {f.data + 16, f.capacity - 16};
    } else {
      iov[c++] = {f.data, f.capacity};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(c);
    ssize_t r;
    do {
      r = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_TRUNC);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      LogOnce("recvmsg", errno);
      return false;
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) return false;  // larger than a buffer
    const size_t got = static_cast<size_t>(r) - (vnet_ ? kPacketVnetLen : 0);
    if (static_cast<size_t>(r) < (vnet_ ? kPacketVnetLen : 0) + 14) return false;
    f.size = static_cast<uint32_t>(got + (vlan ? 4 : 0));
    return true;
  }

  void DiscardCopy() {
    uint8_t byte;
    [[maybe_unused]] ssize_t r = ::recv(fd_.get(), &byte, 1, MSG_DONTWAIT | MSG_TRUNC);
  }

  // f->data holds the frame (with 4 bytes at 12 left for the tag when
  // `vlan`), f->vnet the received vnet header if any.
  bool Finish(Frame& f, uint32_t status, bool vlan, uint16_t tpid, uint16_t tci) {
    if (vnet_) f.vnet.num_buffers = 0;
    if (vlan) {
      // The kernel moved the tag into the metadata (skb->vlan_tci): put it back.
      vlan::StoreTag(f.data + vlan::kMacsLen, tci, tpid);
      if (f.vnet.needs_csum()) f.vnet.csum_start = static_cast<uint16_t>(f.vnet.csum_start + 4);
      if (f.vnet.is_gso()) f.vnet.hdr_len = static_cast<uint16_t>(f.vnet.hdr_len + 4);
    }
    // A GSO frame without its MSS: nothing can segment it correctly.
    if (!vnet_ && (status & kStatusGsoTcp) != 0) return false;
    if (!vnet_ && (status & TP_STATUS_CSUMNOTREADY) != 0 && !MarkPartialChecksum(f)) return false;
    return true;
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
  UniqueFd fd_;     // rx: the ring, in the switch's epoll set
  UniqueFd tx_fd_;  // tx of GSO and oversized frames (sendmmsg), see OpenTxSocket
  bool vnet_;
  Mapping ring_;
  uint32_t frame_size_;
  uint32_t frame_count_;
  uint32_t slot_ = 0;
  // The tx ring (none when the kernel refused one: everything goes by
  // sendmmsg then). tx_head_ is the next slot to fill, tx_first_ the first
  // of the tx_queued_ slots filled since the last send().
  UniqueFd tx_ring_fd_;
  Mapping tx_ring_;
  uint32_t tx_frame_size_ = 0;
  uint32_t tx_frame_count_ = 0;
  size_t tx_slot_max_ = 0;
  uint32_t tx_head_ = 0;
  uint32_t tx_first_ = 0;
  uint32_t tx_queued_ = 0;
  bool logged_ = false;
  std::array<mmsghdr, kMaxTx> msgs_{};
  std::array<iovec, kMaxTx * 4> iov_{};
  std::array<std::array<uint8_t, kPacketVnetLen>, kMaxTx> vnet_hdrs_{};
  std::array<std::array<uint8_t, vlan::kTagLen>, kMaxTx> tags_{};
};

// Binds a packet socket to the link; with protocol 0 it receives nothing.
Status BindToLink(int fd, int ifindex, uint16_t protocol, const std::string& what) {
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(protocol);
  addr.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Status::FromErrno(what + ": bind", errno);
  return Status::Ok();
}

// The socket frames are sent on: bound to the link with protocol 0, so it
// receives nothing and is in no epoll set. Sending on the rx socket made
// every sent frame cost a wake-up: a veth (or a NIC's tx completion) frees
// the frame's skb, which signals "write space" on its socket, and a socket
// that epoll watches has a waiter on that queue to wake (about 6% of the
// switch thread at 64-byte rates).
Result<UniqueFd> OpenTxSocket(const std::string& what, int ifindex, bool vnet) {
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(what + ": tx socket(AF_PACKET)", errno);
  const int one = 1;
  if (vnet && ::setsockopt(fd.get(), SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0)
    return Status::FromErrno(what + ": tx PACKET_VNET_HDR", errno);
  VF_RETURN_IF_ERROR(BindToLink(fd.get(), ifindex, 0, what + ": tx"));
  return fd;
}

// A second tx socket with a TPACKET_V2 tx ring: one send() hands the
// kernel every queued frame, where sendmmsg() costs a message header and an
// iovec import per frame (~10% of the switch thread at 64-byte rates). Also
// bound with protocol 0. Needs the vnet header (see FitsRing).
Result<TxRing> OpenTxRing(const std::string& what, int ifindex, uint32_t frame_size,
                          uint32_t frame_count) {
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Status::FromErrno(what + ": tx ring socket(AF_PACKET)", errno);
  auto set = [&](int opt, const void* value, socklen_t len, const char* opt_name) {
    if (::setsockopt(fd.get(), SOL_PACKET, opt, value, len) < 0)
      return Status::FromErrno(what + ": tx ring " + opt_name, errno);
    return Status::Ok();
  };
  const int one = 1;
  const int version = TPACKET_V2;
  // Before the ring: the kernel refuses both once a ring exists.
  VF_RETURN_IF_ERROR(set(PACKET_VNET_HDR, &one, sizeof one, "PACKET_VNET_HDR"));
  VF_RETURN_IF_ERROR(set(PACKET_VERSION, &version, sizeof version, "PACKET_VERSION"));
  const uint32_t block_size = 1u << 16;
  tpacket_req req{};
  req.tp_block_size = block_size;
  req.tp_frame_size = frame_size;
  req.tp_block_nr = frame_count / (block_size / frame_size);
  req.tp_frame_nr = req.tp_block_nr * (block_size / frame_size);
  VF_RETURN_IF_ERROR(set(PACKET_TX_RING, &req, sizeof req, "PACKET_TX_RING"));
  const size_t size = size_t{block_size} * req.tp_block_nr;
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (mem == MAP_FAILED) return Status::FromErrno(what + ": mmap tx ring", errno);
  Mapping ring(mem, size);
  VF_RETURN_IF_ERROR(BindToLink(fd.get(), ifindex, 0, what + ": tx ring"));
  return TxRing{std::move(fd), std::move(ring), frame_size, req.tp_frame_nr};
}

}  // namespace

Result<std::unique_ptr<Port>> OpenPacketSocketPort(std::string name, int ifindex,
                                                   const PacketPortOptions& options) {
  const std::string what = "packet socket " + name;
  if (ifindex <= 0) return Status::Error(what + ": bad ifindex " + std::to_string(ifindex), EINVAL);
  if (options.block_size < 4096 || (options.block_size & (options.block_size - 1)) != 0 ||
      options.block_count == 0 || options.frame_size < TPACKET_ALIGNMENT ||
      options.block_size % options.frame_size != 0)
    return Status::Error(what + ": bad ring geometry", EINVAL);
  if (options.socket_buffer == 0 || options.socket_buffer > (1u << 30))
    return Status::Error(what + ": bad socket buffer size", EINVAL);
  if (options.tx_ring_frames > 0 &&
      (options.tx_frame_size % TPACKET_ALIGNMENT != 0 || options.tx_frame_size < 256 ||
       (1u << 16) % options.tx_frame_size != 0 ||
       options.tx_ring_frames < (1u << 16) / options.tx_frame_size))
    return Status::Error(what + ": bad tx ring geometry", EINVAL);
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
  // Room on the socket's own queue, where frames larger than a ring slot
  // (GSO frames of up to 64 KiB) wait: SO_RCVBUFFORCE (CAP_NET_ADMIN, which
  // a packet socket needs anyway), else SO_RCVBUF up to net.core.rmem_max.
  const int rcvbuf = static_cast<int>(options.socket_buffer);
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    VF_RETURN_IF_ERROR(set(SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf, "SO_RCVBUF"));
  VF_RETURN_IF_ERROR(
      set(SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one, "PACKET_IGNORE_OUTGOING"));
  const int version = TPACKET_V2;
  VF_RETURN_IF_ERROR(set(SOL_PACKET, PACKET_VERSION, &version, sizeof version, "PACKET_VERSION"));
  // A frame larger than a slot also goes whole to the socket's queue.
  VF_RETURN_IF_ERROR(set(SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one, "PACKET_COPY_THRESH"));
  const uint32_t frame_count = options.block_size / options.frame_size * options.block_count;
  tpacket_req req{};
  req.tp_block_size = options.block_size;
  req.tp_block_nr = options.block_count;
  req.tp_frame_size = options.frame_size;
  req.tp_frame_nr = frame_count;
  VF_RETURN_IF_ERROR(set(SOL_PACKET, PACKET_RX_RING, &req, sizeof req, "PACKET_RX_RING"));
  const size_t ring_size = size_t{options.block_size} * options.block_count;
  void* mem =
      ::mmap(nullptr, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (mem == MAP_FAILED) return Status::FromErrno(what + ": mmap rx ring", errno);
  Mapping ring(mem, ring_size);
  auto tx_fd = OpenTxSocket(what, ifindex, vnet);
  if (!tx_fd.ok()) return tx_fd.status();
  std::optional<TxRing> tx_ring;
  if (vnet && options.tx_ring_frames > 0) {
    auto opened = OpenTxRing(what, ifindex, options.tx_frame_size, options.tx_ring_frames);
    if (opened.ok()) {
      tx_ring = std::move(opened).value();
    } else {
      VF_LOG(kWarning) << opened.status().message() << "; sending with sendmmsg() only";
    }
  }
  auto port = std::make_unique<PacketPort>(name, std::move(fd), std::move(tx_fd.value()),
                                           std::move(tx_ring), vnet, std::move(ring),
                                           options.frame_size, frame_count);
  const int sock = port->fd();
  packet_mreq mreq{};
  mreq.mr_ifindex = ifindex;
  mreq.mr_type = PACKET_MR_PROMISC;
  if (::setsockopt(sock, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
    return Status::FromErrno(what + ": PACKET_ADD_MEMBERSHIP promisc", errno);
  VF_RETURN_IF_ERROR(BindToLink(sock, ifindex, ETH_P_ALL, what));
  return std::unique_ptr<Port>(std::move(port));
}

Result<std::unique_ptr<Port>> AdoptPacketSocketPort(std::string name, PortHandover handover) {
  const std::string what = "packet socket " + name + ": adopt";
  auto value = [&](const char* key, uint64_t* out) {
    auto it = handover.values.find(key);
    if (it == handover.values.end()) return false;
    *out = it->second;
    return true;
  };
  uint64_t vnet = 0, ring_bytes = 0, frame_size = 0, frame_count = 0, slot = 0;
  uint64_t tx_ring_bytes = 0, tx_frame_size = 0, tx_frame_count = 0, tx_head = 0;
  if (!value("vnet", &vnet) || !value("ring_bytes", &ring_bytes) ||
      !value("frame_size", &frame_size) || !value("frame_count", &frame_count) ||
      !value("slot", &slot) || !value("tx_ring_bytes", &tx_ring_bytes) ||
      !value("tx_frame_size", &tx_frame_size) || !value("tx_frame_count", &tx_frame_count) ||
      !value("tx_head", &tx_head))
    return Status::Error(what + ": values missing", EINVAL);
  const bool has_tx_ring = tx_ring_bytes != 0;
  if (handover.fds.size() != (has_tx_ring ? 3u : 2u))
    return Status::Error(what + ": " + std::to_string(handover.fds.size()) + " descriptors",
                         EINVAL);
  if (frame_size == 0 || frame_count == 0 || frame_size * frame_count > ring_bytes ||
      slot >= frame_count || ring_bytes > (1ull << 32) ||
      (has_tx_ring && (tx_frame_size == 0 || tx_frame_count == 0 || tx_head >= tx_frame_count ||
                       tx_frame_size * tx_frame_count > tx_ring_bytes ||
                       tx_frame_size <= kTxDataOffset || tx_ring_bytes > (1ull << 32))))
    return Status::Error(what + ": ring values out of range", EINVAL);
  for (const UniqueFd& fd : handover.fds) {
    int domain = 0;
    socklen_t len = sizeof domain;
    if (!fd || ::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
        domain != AF_PACKET)
      return Status::Error(
          what + ": descriptor " + std::to_string(fd.get()) + " is not a packet socket", EBADF);
    // Back to close-on-exec: only a handover passes them on.
    const int flags = ::fcntl(fd.get(), F_GETFD);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFD, flags | FD_CLOEXEC) < 0)
      return Status::FromErrno(what + ": FD_CLOEXEC", errno);
  }
  void* mem = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     handover.fds[0].get(), 0);
  if (mem == MAP_FAILED) return Status::FromErrno(what + ": mmap rx ring", errno);
  Mapping ring(mem, ring_bytes);
  std::optional<TxRing> tx_ring;
  if (has_tx_ring) {
    void* tx_mem = ::mmap(nullptr, tx_ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                          handover.fds[2].get(), 0);
    if (tx_mem == MAP_FAILED) return Status::FromErrno(what + ": mmap tx ring", errno);
    tx_ring = TxRing{std::move(handover.fds[2]), Mapping(tx_mem, tx_ring_bytes),
                     static_cast<uint32_t>(tx_frame_size), static_cast<uint32_t>(tx_frame_count)};
  }
  auto port = std::make_unique<PacketPort>(
      std::move(name), std::move(handover.fds[0]), std::move(handover.fds[1]), std::move(tx_ring),
      vnet != 0, std::move(ring), static_cast<uint32_t>(frame_size),
      static_cast<uint32_t>(frame_count));
  port->Resume(static_cast<uint32_t>(slot), static_cast<uint32_t>(tx_head));
  return std::unique_ptr<Port>(std::move(port));
}

}  // namespace vfabric::bridge
