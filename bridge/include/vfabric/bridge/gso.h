// Software TCP segmentation of a GSO frame (virtio_net_hdr GSO_TCPV4 /
// GSO_TCPV6), for an egress port that cannot take the metadata: what the
// kernel's skb_gso_segment does for a NIC without TSO.
//
// Each segment gets the frame's headers with: IPv4 total length, ID (+1 per
// segment) and header checksum; IPv6 payload length; TCP sequence number
// advanced by the payload before it; FIN and PSH only on the last segment,
// CWR only on the first; a complete TCP checksum. Segments carry no offload
// metadata. IPv6 extension headers and IPv4 options are allowed only as far
// as the headers say (IPv4 IHL; IPv6 next header must be TCP).
#pragma once

#include <cstddef>
#include <span>

#include "vfabric/bridge/frame.h"

namespace vfabric::bridge {

enum class GsoError : uint8_t {
  kOk,
  kUnsupported,  // not TCP GSO (UDP, unknown type), or IPv6 extension headers
  kMalformed,    // headers do not parse or do not fit; gso_size 0
  kNoBuffer,     // the pool ran dry (segments made so far are in `out`)
};

// Where a segmentation stopped: pass the same cursor again to go on.
struct GsoCursor {
  size_t offset = 0;   // payload bytes already segmented
  uint32_t index = 0;  // segments made
  bool done = false;
};

// Makes up to out.size() segments of `frame` (untagged or with one 802.1Q
// tag) from buffers of `pool`, storing them in out[0..*count). Call again
// with the same cursor until cursor->done.
GsoError SegmentTcp(const Frame& frame, FramePool& pool, std::span<Frame*> out, size_t* count,
                    GsoCursor* cursor);

}  // namespace vfabric::bridge
