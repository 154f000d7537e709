// Lines of the control protocol (docs/control-protocol.md), from bytes to
// answers, without sockets: the framing of a client's byte stream into
// lines, and what the control server does with one line. The control server
// uses exactly these, and the control_line fuzzer drives them directly.
//
// Why a depth limit before parsing: nlohmann::json parses iteratively, but
// copying, comparing and dumping a value recurse once per nesting level, so
// a request nested tens of thousands deep overflows the stack in the first
// copy (`"id"` is echoed into the answer). The line is therefore scanned
// once, linearly, for its bracket depth outside strings, and refused before
// any recursive code sees it.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/status.h"

namespace vfabric::netd {

// The deepest nesting of arrays and objects a request may have. Requests are
// shallow (`{"args": {"files": [{"text": ...}]}}` is 4 levels; a topology
// travels as a string); the topology reader's own limit is 128.
inline constexpr size_t kMaxRequestDepth = 64;

// True when `text`, read as JSON, opens more than `limit` arrays/objects
// inside one another. Brackets inside strings (with their escapes) do not
// count. Linear in the length of `text`, no recursion, no allocation. For
// text that is not JSON the answer is only a bound: whatever nlohmann::json
// accepts nests no deeper than this function says.
bool NestsDeeperThan(std::string_view text, size_t limit);

// The answer to one request line: an error answer (code "bad_request") for
// a line nested deeper than `max_depth` or not JSON, else `handle(request)`.
// Throws nothing itself for any bytes of `line`.
nlohmann::json AnswerRequestLine(
    std::string_view line, size_t max_depth,
    const std::function<nlohmann::json(const nlohmann::json&)>& handle);

// An answer {"version", "ok": false, "error": {"code", "message"}}; `code`
// is one of protocol::code.
nlohmann::json ErrorAnswer(std::string_view code, const std::string& message);

// Splits a byte stream into '\n'-terminated lines and enforces the length
// limit of one line while the bytes arrive, so a client can never make netd
// hold more than `max_line_bytes` (+ one Append) of an unfinished line.
//
// How to drive it: Append() what was read, then take Next() until it has
// no line; read again only then (so what is held stays bounded by the
// last Append plus one unfinished line). After a too-long line the framer
// stays failed: a stream has no way to find the next request's start.
class LineFramer {
 public:
  explicit LineFramer(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Takes bytes read from the client. Fails once a line (complete or not)
  // is longer than max_line_bytes without its '\n'; the lines complete
  // before it are still returned by Next(), then failed() says the stream
  // is broken. Fails at once after a failure.
  Status Append(std::string_view bytes);
  // The next complete line, without its '\n'; nullopt when none is
  // complete (yet).
  std::optional<std::string> Next();
  bool HasLine() const { return start_ < complete_end_; }
  // Bytes of an unfinished line held (0 between requests).
  size_t partial_bytes() const { return buffer_.size() - complete_end_; }
  // Memory held, for netd's total bound across clients.
  size_t held_bytes() const { return buffer_.capacity(); }
  bool failed() const { return failed_; }
  size_t max_line_bytes() const { return max_line_bytes_; }

 private:
  static constexpr size_t kKeptCapacity = 64 * 1024;
  Status TooLong() const;

  const size_t max_line_bytes_;
  std::vector<char> buffer_;
  size_t start_ = 0;         // first byte not yet returned by Next()
  size_t complete_end_ = 0;  // one past the last '\n' in buffer_ (or start_)
  bool failed_ = false;
};

}  // namespace vfabric::netd
