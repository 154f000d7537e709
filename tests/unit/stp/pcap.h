// A tiny reader for classic pcap files (the test vectors in data/), enough
// for Ethernet captures: 24-byte global header, 16-byte record headers.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "vfabric/testing/support.h"

namespace vfabric::stp::testing {

using Frame = std::vector<uint8_t>;

// Returns the frames of `path`, or an empty vector (and sets *error) when the
// file is missing or malformed.
inline std::vector<Frame> ReadPcap(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path;
    return {};
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (bytes.size() < 24) {
    *error = path + ": short global header";
    return {};
  }
  auto u32 = [&](size_t at, bool swapped) {
    uint32_t v = uint32_t{bytes[at]} | (uint32_t{bytes[at + 1]} << 8) |
                 (uint32_t{bytes[at + 2]} << 16) | (uint32_t{bytes[at + 3]} << 24);
    if (swapped) v = __builtin_bswap32(v);
    return v;
  };
  const uint32_t magic = u32(0, false);
  bool swapped = false;
  if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
    swapped = false;
  } else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) {
    swapped = true;
  } else {
    *error = path + ": not a pcap file";
    return {};
  }
  if (u32(20, swapped) != 1) {
    *error = path + ": link type is not Ethernet";
    return {};
  }
  std::vector<Frame> frames;
  size_t at = 24;
  while (at < bytes.size()) {
    if (bytes.size() - at < 16) {
      *error = path + ": short record header";
      return {};
    }
    const uint32_t caplen = u32(at + 8, swapped);
    at += 16;
    if (bytes.size() - at < caplen) {
      *error = path + ": short record";
      return {};
    }
    frames.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                        bytes.begin() + static_cast<std::ptrdiff_t>(at + caplen));
    at += caplen;
  }
  return frames;
}

// The test vector `name`: tests/unit/stp/data/<name> in the source tree
// (copies of shared/data/, so a clone without shared/ still has them), else
// shared/data/ beside the source tree.
inline std::vector<Frame> ReadVector(const std::string& name, std::string* error) {
  std::vector<Frame> frames = ReadPcap(std::string(VFABRIC_STP_TEST_DATA) + "/" + name, error);
  if (frames.empty()) {
    std::string second_error;
    frames = ReadPcap(vfabric::testing::SourceDir() + "/../shared/data/" + name, &second_error);
    if (!frames.empty()) error->clear();
  }
  return frames;
}

}  // namespace vfabric::stp::testing
