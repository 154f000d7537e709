// Any bytes as a topology file: the reader and validator must answer with a
// model or diagnostics, never crash or read out of bounds; every diagnostic
// must point inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vfabric/topology/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  vfabric::topology::LoadResult result = vfabric::topology::ParseTopology(text, "fuzz.json");
  int lines = 1;
  for (char c : text) lines += c == '\n';
  for (const auto& diagnostic : result.errors) {
    if (diagnostic.where.line < 1 || diagnostic.where.line > lines + 1 ||
        diagnostic.where.column < 1)
      std::abort();
    if (diagnostic.message.empty()) std::abort();
  }
  return 0;
}
