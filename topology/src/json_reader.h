// A strict RFC 8259 JSON reader that remembers where every value was written.
//
// nlohmann::json parses well but forgets positions, and topology diagnostics
// must point at the offending value. ReadJson() is a small recursive-descent
// parser that builds the nlohmann::json value and, for every value, records
// the 1-based line and column of its first character under its JSON pointer
// (RFC 6901). For object members it also records where the key was written.
//
// Columns count bytes, not characters: a tab is one column and so is each
// byte of a multi-byte UTF-8 sequence.
//
// Strictness: no comments, no trailing commas, no NaN/Infinity, no leading
// zeros, strings must be valid UTF-8 without raw control characters, a
// duplicate key in one object is an error (the first value is kept), nesting
// is limited (kMaxDepth) so hostile input cannot exhaust the stack. A leading
// UTF-8 byte order mark is skipped; UTF-16 and UTF-32 text (with or without a
// byte order mark) is refused at 1:1 with its encoding named.
//
// A syntax error stops the reader (there is no sensible way to resynchronise);
// duplicate keys do not. Integers that fit int64/uint64 are stored as such;
// any other number (fraction, exponent, or too large) as a double.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vfabric::topology::internal {

struct TextPosition {
  int line = 0;
  int column = 0;
};

struct JsonError {
  TextPosition at;
  std::string pointer;  // the value being read when the error was found
  std::string message;
};

struct JsonDocument {
  nlohmann::json value;
  // JSON pointer of every value -> where its first character is.
  std::unordered_map<std::string, TextPosition> values;
  // JSON pointer of every object member -> where its key's '"' is.
  std::unordered_map<std::string, TextPosition> keys;
  std::vector<JsonError> errors;
  // True when the text was read to the end (duplicate keys may still exist).
  bool complete = false;
};

inline constexpr int kMaxDepth = 128;

JsonDocument ReadJson(std::string_view text);

// RFC 6901: "~" -> "~0", "/" -> "~1".
std::string EscapePointerToken(std::string_view token);

}  // namespace vfabric::topology::internal
