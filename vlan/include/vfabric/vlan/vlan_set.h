// A set of VLAN IDs as 4096 bits, with the textual form operators write in
// topologies and see in `netctl`: "10,20-30".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "vfabric/common/status.h"
#include "vfabric/vlan/tag.h"

namespace vfabric::vlan {

class VlanSet {
 public:
  VlanSet() = default;  // empty

  // Parses a comma-separated list of VIDs and inclusive ranges "a-b", each
  // within 1..4094 (0 means priority-tagged and 4095 is reserved, so neither
  // names a VLAN). Spaces around items are allowed; items may overlap; ""
  // is the empty set. Errors name the input and the offending item:
  //   vlan set "10,,20": empty item at offset 3
  //   vlan set "5-x": "x" is not a VLAN ID (at offset 2)
  //   vlan set "4095": VLAN ID 4095 out of range 1-4094 (at offset 0)
  //   vlan set "30-20": range 30-20 is reversed (at offset 0)
  static Result<VlanSet> Parse(std::string_view text);
  // 1-4094.
  static VlanSet All();

  // VIDs outside 0..4095 are never members and are ignored by Add/Remove.
  bool Contains(VlanId vid) const { return vid < 4096 && (bits_[vid >> 6] >> (vid & 63) & 1) != 0; }
  void Add(VlanId vid);
  void Remove(VlanId vid);
  void AddRange(VlanId first, VlanId last);  // inclusive; nothing if first > last
  void Clear() { bits_ = {}; }

  size_t Count() const;
  bool Empty() const;
  // Ascending, ranges of three or more as "a-b", two neighbours as "a,b":
  // "1,10,11,20-30". The empty set is "".
  std::string ToString() const;

  friend bool operator==(const VlanSet&, const VlanSet&) = default;

 private:
  std::array<uint64_t, 64> bits_{};
};

}  // namespace vfabric::vlan
