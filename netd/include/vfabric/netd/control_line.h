// One line of the control protocol (docs/control-protocol.md), from bytes
// to the answer, without sockets: what the control server does with a
// complete line.
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
#include <string>
#include <string_view>

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
nlohmann::json AnswerRequestLine(std::string_view line, size_t max_depth,
                                 const std::function<nlohmann::json(const nlohmann::json&)>& handle);

// An answer {"version", "ok": false, "error": {"code", "message"}}.
nlohmann::json ErrorAnswer(const std::string& code, const std::string& message);

}  // namespace vfabric::netd
