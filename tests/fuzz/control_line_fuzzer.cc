// Any byte stream on the control socket, as netd handles it: split into
// reads of any size, framed by netd's LineFramer under a size cap, and each
// complete line answered by AnswerRequestLine and the controller (on a fake
// kernel), exactly as the control server does. The control_request fuzzer
// sees one parsed request of at most 4 KiB; this one reaches the framing,
// the cap (also the real 16 MiB one), partial lines and deep nesting.
//
// Input: byte 0 picks the cap, byte 1 seeds the read sizes, the rest is the
// stream, where 0xFE N B stands for byte B repeated (N + 1) * 1024 times (up
// to 256 KiB per run, 17 MiB in all), so a few bytes reach a cap or a
// nesting 100,000 deep. The real cap (16 MiB, 68 runs) is reachable but
// slow, so the seeds go over 1 MiB instead (the integration test sends netd
// a 50 MB line). scripts/fuzz also allows inputs of 1 MiB.
//
// Checks: the lines are exactly those a plain reference splitter finds
// before the first line over the cap, the framer fails exactly when that
// line exists, never holds more than the cap plus one read, and every line
// gets a JSON object answer with "ok"; a line the depth scan lets through
// nests no deeper than the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fake_kernel.h"
#include "vfabric/netd/control_line.h"
#include "vfabric/netd/controller.h"

namespace {

using nlohmann::json;
using vfabric::netd::kMaxRequestDepth;

constexpr size_t kCaps[] = {16 * 1024 * 1024, 1024 * 1024, 65536, 256, 8};
constexpr size_t kMaxStream = 17 * 1024 * 1024;

std::string Expand(const uint8_t* data, size_t size) {
  std::string stream;
  for (size_t i = 0; i < size && stream.size() < kMaxStream; ++i) {
    if (data[i] == 0xFE && i + 2 < size) {
      const size_t count = (static_cast<size_t>(data[i + 1]) + 1) * 1024;
      stream.append(std::min(count, kMaxStream - stream.size()), static_cast<char>(data[i + 2]));
      i += 2;
    } else {
      stream.push_back(static_cast<char>(data[i]));
    }
  }
  return stream;
}

// What the framer must produce: the lines before the first one over `cap`
// (complete or not), and whether there is such a line.
std::vector<std::string_view> Reference(std::string_view stream, size_t cap, bool* too_long) {
  std::vector<std::string_view> lines;
  *too_long = false;
  size_t start = 0;
  while (true) {
    const size_t newline = stream.find('\n', start);
    const size_t end = newline == std::string_view::npos ? stream.size() : newline;
    if (end - start > cap) {
      *too_long = true;
      break;
    }
    if (newline == std::string_view::npos) break;
    lines.push_back(stream.substr(start, end - start));
    start = newline + 1;
  }
  return lines;
}

uint32_t NextRandom(uint32_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

int ParsedDepth(std::string_view line) {
  int deepest = 0;
  json::parser_callback_t track = [&](int depth, json::parse_event_t event, json&) {
    if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)
      deepest = std::max(deepest, depth + 1);
    return true;
  };
  const json parsed = json::parse(line, track, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? -1 : deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vfabric::netd::testing::FakeKernel kernel;
  static vfabric::netd::Controller controller(kernel, kernel.features);
  if (size < 2) return 0;
  const size_t cap = kCaps[data[0] % std::size(kCaps)];
  uint32_t random = 0x9e3779b9u ^ (static_cast<uint32_t>(data[1]) * 0x01000193u);
  const std::string stream = Expand(data + 2, size - 2);
  bool want_too_long = false;
  const std::vector<std::string_view> want = Reference(stream, cap, &want_too_long);

  vfabric::netd::LineFramer framer(cap);
  size_t got = 0;
  size_t offset = 0;
  auto handle = [&](const json& request) { return controller.Handle(request); };
  while (offset < stream.size()) {
    // Reads of 1 byte to 64 KiB, as the server's are at most.
    const size_t chunk = std::min<size_t>(stream.size() - offset, 1 + NextRandom(&random) % 65536);
    const bool appended = framer.Append(std::string_view(stream).substr(offset, chunk)).ok();
    offset += chunk;
    if (framer.held_bytes() > cap + 1 + 65536) std::abort();
    while (std::optional<std::string> line = framer.Next()) {
      if (got >= want.size() || *line != want[got]) std::abort();
      ++got;
      // Answered as the server answers it.
      const json answer = vfabric::netd::AnswerRequestLine(*line, kMaxRequestDepth, handle);
      if (!answer.is_object() || !answer.contains("ok")) std::abort();
      (void)answer.dump(-1, ' ', false, json::error_handler_t::replace);
      if (!vfabric::netd::NestsDeeperThan(*line, kMaxRequestDepth) &&
          ParsedDepth(*line) > static_cast<int>(kMaxRequestDepth))
        std::abort();
    }
    if (!appended) break;  // as the server: the lines before are answered, then it closes
  }
  if (got != want.size() || framer.failed() != want_too_long) std::abort();
  return 0;
}
