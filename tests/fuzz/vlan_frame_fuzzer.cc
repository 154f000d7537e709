// Any bytes as a frame on an access and on a trunk port: classified or
// dropped with a reason, never a crash or a read outside the frame.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "vfabric/vlan/port.h"
#include "vfabric/vlan/tag.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfabric::vlan;
  std::vector<uint8_t> frame(data, data + size);
  static const PortVlanConfig access = PortVlanConfig::Access(10);
  static const PortVlanConfig trunk = [] {
    PortVlanConfig config = PortVlanConfig::Access(1);
    config.mode = PortMode::kTrunk;
    config.native = NativeMode::kUntagged;
    config.allowed = *VlanSet::Parse("1,10,20-30");
    return config;
  }();
  for (const PortVlanConfig* port : {&access, &trunk}) {
    Ingress in = ClassifyIngress(*port, std::span<const uint8_t>(frame));
    if (in.drop == IngressDrop::kNone && (in.vlan < 1 || in.vlan > 4094)) std::abort();
  }
  FrameInfo info;
  (void)Parse(std::span<const uint8_t>(frame), &info);
  return 0;
}
