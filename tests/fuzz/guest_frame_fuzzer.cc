// What a guest controls: every byte of a frame and of the virtio_net_hdr in
// front of it (a tap hands the switch both as the guest wrote them). Input:
// the header's fields (flags, gso_type, hdr_len, gso_size, csum_start,
// csum_offset; 10 bytes, little-endian) and then the frame. The frame comes
// in on a guest's port and floods (or goes where its destination was learned)
// to a port that takes offloads, to one that does not (the switch completes
// checksums and segments there) and to a trunk without offloads (a tag goes
// in). Never a crash or an access outside a frame (ASan, UBSan); what reaches
// a port without offloads carries no offload metadata and fits a frame
// buffer. Seeds (corpus/guest_frame): TCPv4 and TCPv6 GSO, TCPv4 GSO with ECN
// to a learned MAC, a UDP checksum to complete, UDP L4 GSO, a tagged frame.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"

namespace {

using namespace vfabric;
using namespace vfabric::bridge;

constexpr size_t kBufferSize = 65536 + kFrameHeadroom;

struct Fabric {
  std::unique_ptr<Switch> sw;
  MemoryPort* guest = nullptr;
  MemoryPort* offload = nullptr;
  MemoryPort* plain = nullptr;
  MemoryPort* trunk = nullptr;
  uint64_t now_ns = 1'000'000'000;

  Fabric() {
    SwitchConfig config;
    config.name = "fuzz";
    config.fdb.max_entries = 256;
    config.fdb.max_ports = 8;
    config.fdb.hash_seed = 1;
    config.pool_frames = 256;
    config.buffer_size = kBufferSize;
    config.clock = [this] { return now_ns; };
    sw = std::move(Switch::Create(std::move(config))).value();
    guest = Add("guest", PortVlanConfig::Access(10), true);
    offload = Add("offload", PortVlanConfig::Access(10), true);
    plain = Add("plain", PortVlanConfig::Access(10), false);
    PortVlanConfig trunk_config = PortVlanConfig::Access(1);
    trunk_config.mode = PortMode::kTrunk;
    trunk_config.native = NativeMode::kUntagged;
    trunk_config.allowed = *VlanSet::Parse("1,10");
    trunk = Add("trunk", trunk_config, false);
  }

  MemoryPort* Add(const char* name, const PortVlanConfig& vlan, bool takes_offload) {
    MemoryPortOptions options;
    options.notify = false;
    options.takes_offload = takes_offload;
    options.tx_capacity = 4096;
    auto port = std::move(MemoryPort::Create(name, options)).value();
    MemoryPort* raw = port.get();
    PortSettings settings;
    settings.vlan = vlan;
    if (!sw->AddPort(std::move(port), settings).ok()) std::abort();
    return raw;
  }
};

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

void CheckPlain(MemoryPort* port) {
  for (const CapturedFrame& frame : port->TakeCaptured()) {
    if (frame.vnet.has_offload()) std::abort();
    if (frame.bytes.size() < 14 || frame.bytes.size() > kBufferSize) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fabric fabric;
  if (size < 10) return 0;
  VnetHdr vnet;
  vnet.flags = data[0];
  vnet.gso_type = data[1];
  vnet.hdr_len = Le16(data + 2);
  vnet.gso_size = Le16(data + 4);
  vnet.csum_start = Le16(data + 6);
  vnet.csum_offset = Le16(data + 8);
  fabric.guest->Inject(std::vector<uint8_t>(data + 10, data + size), vnet);
  // Learned entries age out now and then, so both flooding and unicast run.
  fabric.now_ns += 30'000'000'000;
  fabric.sw->RunOnce(0);
  (void)fabric.offload->TakeCaptured();
  (void)fabric.guest->TakeCaptured();
  CheckPlain(fabric.plain);
  CheckPlain(fabric.trunk);
  return 0;
}
