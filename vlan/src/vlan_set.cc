#include "vfabric/vlan/vlan_set.h"

#include <bit>
#include <string>

namespace vfabric::vlan {
namespace {

std::string_view Trim(std::string_view s, size_t* offset) {
  while (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
    ++*offset;
  }
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// "\"TEXT\" is not a VLAN ID (at offset N)". Built by appending: GCC 12 at
// -O3 reports a bogus -Wrestrict on "x" + std::string(...) (a one-character
// literal prepended to a temporary, GCC PR 105329).
std::string NotAVid(std::string_view s, const std::string& at) {
  std::string text(1, '"');
  text += s;
  text += "\" is not a VLAN ID";
  text += at;
  return text;
}

// A VID in 1..4094, or an error message (without the "vlan set" prefix).
bool ParseVid(std::string_view s, size_t offset, VlanId* vid, std::string* error) {
  const auto at = " (at offset " + std::to_string(offset) + ")";
  if (s.empty() || s.size() > 5) {
    *error = NotAVid(s, at);
    return false;
  }
  unsigned value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      *error = NotAVid(s, at);
      return false;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > kMaxVid) {
    *error = "VLAN ID " + std::to_string(value) + " out of range 1-4094" + at;
    return false;
  }
  *vid = static_cast<VlanId>(value);
  return true;
}

}  // namespace

Result<VlanSet> VlanSet::Parse(std::string_view text) {
  VlanSet set;
  auto fail = [&](const std::string& why) {
    return Status::Error("vlan set \"" + std::string(text) + "\": " + why);
  };
  size_t trimmed_offset = 0;
  if (Trim(text, &trimmed_offset).empty()) return set;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const size_t end = comma == std::string_view::npos ? text.size() : comma;
    size_t offset = start;
    const std::string_view item = Trim(text.substr(start, end - start), &offset);
    if (item.empty()) return fail("empty item at offset " + std::to_string(offset));
    std::string error;
    const size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      VlanId vid;
      if (!ParseVid(item, offset, &vid, &error)) return fail(error);
      set.Add(vid);
    } else {
      size_t first_offset = offset;
      size_t last_offset = offset + dash + 1;
      const std::string_view first_text = Trim(item.substr(0, dash), &first_offset);
      const std::string_view last_text = Trim(item.substr(dash + 1), &last_offset);
      VlanId first, last;
      if (!ParseVid(first_text, first_offset, &first, &error)) return fail(error);
      if (!ParseVid(last_text, last_offset, &last, &error)) return fail(error);
      if (first > last)
        return fail("range " + std::to_string(first) + "-" + std::to_string(last) +
                    " is reversed (at offset " + std::to_string(offset) + ")");
      set.AddRange(first, last);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return set;
}

VlanSet VlanSet::All() {
  VlanSet set;
  set.AddRange(1, kMaxVid);
  return set;
}

void VlanSet::Add(VlanId vid) {
  if (vid < 4096) bits_[vid >> 6] |= uint64_t{1} << (vid & 63);
}

void VlanSet::Remove(VlanId vid) {
  if (vid < 4096) bits_[vid >> 6] &= ~(uint64_t{1} << (vid & 63));
}

void VlanSet::AddRange(VlanId first, VlanId last) {
  if (last > 4095) last = 4095;
  for (unsigned v = first; v <= last; ++v) Add(static_cast<VlanId>(v));
}

size_t VlanSet::Count() const {
  size_t n = 0;
  for (uint64_t word : bits_) n += static_cast<size_t>(std::popcount(word));
  return n;
}

bool VlanSet::Empty() const {
  for (uint64_t word : bits_)
    if (word) return false;
  return true;
}

std::string VlanSet::ToString() const {
  std::string out;
  unsigned v = 0;
  while (v < 4096) {
    if (!Contains(static_cast<VlanId>(v))) {
      ++v;
      continue;
    }
    unsigned last = v;
    while (last + 1 < 4096 && Contains(static_cast<VlanId>(last + 1))) ++last;
    if (!out.empty()) out += ',';
    out += std::to_string(v);
    // Appended piece by piece: "," + std::to_string(...) trips GCC 12's
    // bogus -Wrestrict at -O3 (GCC PR 105329).
    if (last > v) {
      out += last == v + 1 ? ',' : '-';
      out += std::to_string(last);
    }
    v = last + 1;
  }
  return out;
}

}  // namespace vfabric::vlan
