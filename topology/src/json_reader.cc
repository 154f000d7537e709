#include "json_reader.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>

namespace vfabric::topology::internal {
namespace {

using nlohmann::json;

// Thrown inside the reader only (never escapes ReadJson).
struct SyntaxError {
  size_t offset;
  std::string message;
};

// "UTF-16 (little-endian, with a byte order mark)" when `text` is UTF-16 or
// UTF-32, else "". Without a byte order mark, the NUL bytes around the first
// character tell (a JSON text starts with an ASCII character; RFC 4627 3).
std::string WideEncoding(std::string_view text) {
  const auto starts = [&](std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
  };
  using namespace std::string_view_literals;
  if (starts("\xFF\xFE\0\0"sv)) return "UTF-32 (little-endian, with a byte order mark)";
  if (starts("\0\0\xFE\xFF"sv)) return "UTF-32 (big-endian, with a byte order mark)";
  if (starts("\xFF\xFE"sv)) return "UTF-16 (little-endian, with a byte order mark)";
  if (starts("\xFE\xFF"sv)) return "UTF-16 (big-endian, with a byte order mark)";
  if (text.size() < 2) return "";
  const bool nul[4] = {text[0] == '\0', text[1] == '\0', text.size() > 2 && text[2] == '\0',
                       text.size() > 3 && text[3] == '\0'};
  if (text.size() >= 4 && !nul[0] && nul[1] && nul[2] && nul[3]) {
    return "UTF-32 (little-endian, no byte order mark)";
  }
  if (text.size() >= 4 && nul[0] && nul[1] && nul[2] && !nul[3]) {
    return "UTF-32 (big-endian, no byte order mark)";
  }
  if (!nul[0] && nul[1]) return "UTF-16 (little-endian, no byte order mark)";
  if (nul[0] && !nul[1]) return "UTF-16 (big-endian, no byte order mark)";
  return "";
}

class Reader {
 public:
  Reader(std::string_view text, JsonDocument* doc) : text_(text), doc_(doc) {}

  void Run() {
    if (const std::string encoding = WideEncoding(text_); !encoding.empty()) {
      // Read as bytes, UTF-16 fails at the first NUL ("expected a value"),
      // which says nothing useful; name the encoding instead.
      doc_->errors.push_back({{1, 1},
                              "",
                              "the file is " + encoding +
                                  "; a topology must be UTF-8 (convert it, e.g. with iconv -t "
                                  "UTF-8)"});
      return;
    }
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") {
      pos_ = 3;
      line_start_ = 3;
    }
    try {
      SkipSpace();
      doc_->value = ReadValue("", 0);
      SkipSpace();
      if (pos_ < text_.size()) Fail("unexpected text after the top-level value");
      doc_->complete = true;
    } catch (const SyntaxError& error) {
      doc_->errors.push_back({PositionOf(error.offset), current_pointer_, error.message});
    }
  }

 private:
  [[noreturn]] void Fail(std::string message) { FailAt(pos_, std::move(message)); }
  [[noreturn]] void FailAt(size_t offset, std::string message) {
    throw SyntaxError{offset, std::move(message)};
  }

  TextPosition PositionOf(size_t offset) const {
    // Lines before pos_ were counted while skipping; offsets at or after the
    // current line start are on the current line. Earlier offsets (rare:
    // errors are found at or after the current line) are recounted.
    if (offset >= line_start_) {
      return {line_, static_cast<int>(offset - line_start_) + 1};
    }
    int line = 1;
    size_t start = text_.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
    for (size_t i = start; i < offset; ++i) {
      if (text_[i] == '\n') {
        ++line;
        start = i + 1;
      }
    }
    return {line, static_cast<int>(offset - start) + 1};
  }

  void SkipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        line_start_ = pos_ + 1;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
      ++pos_;
    }
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }

  void Record(const std::string& pointer, size_t offset, bool key) {
    if (suppress_ > 0) return;
    auto& map = key ? doc_->keys : doc_->values;
    map.emplace(pointer, PositionOf(offset));
  }

  json ReadValue(const std::string& pointer, int depth) {
    current_pointer_ = pointer;
    if (AtEnd()) Fail("unexpected end of input, expected a value");
    Record(pointer, pos_, false);
    const char c = Peek();
    switch (c) {
      case '{':
        return ReadObject(pointer, depth + 1);
      case '[':
        return ReadArray(pointer, depth + 1);
      case '"':
        return ReadString();
      case 't':
        ReadLiteral("true");
        return true;
      case 'f':
        ReadLiteral("false");
        return false;
      case 'n':
        ReadLiteral("null");
        return nullptr;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber();
        Fail("expected a value");
    }
  }

  void ReadLiteral(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) {
      Fail("invalid literal (expected \"" + std::string(literal) + "\")");
    }
    pos_ += literal.size();
    if (!AtEnd() && (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '_')) {
      Fail("invalid literal (expected \"" + std::string(literal) + "\")");
    }
  }

  json ReadObject(const std::string& pointer, int depth) {
    if (depth > kMaxDepth) Fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;  // '{'
    json object = json::object();
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      current_pointer_ = pointer;
      if (Peek() != '"') {
        if (Peek() == '}') Fail("expected a string key (trailing commas are not allowed)");
        if (AtEnd()) Fail("unexpected end of input, expected a string key");
        Fail("expected a string key");
      }
      const size_t key_offset = pos_;
      std::string key = ReadString();
      const std::string member = pointer + "/" + EscapePointerToken(key);
      const bool duplicate = object.contains(key);
      if (duplicate) {
        const auto first = doc_->keys.find(member);
        std::string message = "duplicate key \"" + key + "\"";
        if (first != doc_->keys.end() && suppress_ == 0) {
          message += " (first at line " + std::to_string(first->second.line) + ", column " +
                     std::to_string(first->second.column) + ")";
        }
        if (suppress_ == 0) {
          doc_->errors.push_back({PositionOf(key_offset), member, std::move(message)});
        }
      } else {
        Record(member, key_offset, true);
      }
      SkipSpace();
      if (Peek() != ':') {
        current_pointer_ = pointer;
        Fail(AtEnd() ? "unexpected end of input, expected ':'" : "expected ':'");
      }
      ++pos_;
      SkipSpace();
      if (duplicate) ++suppress_;
      json value = ReadValue(member, depth);
      if (duplicate) {
        --suppress_;
      } else {
        object.emplace(std::move(key), std::move(value));
      }
      SkipSpace();
      current_pointer_ = pointer;
      if (Peek() == ',') {
        ++pos_;
        SkipSpace();
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        return object;
      }
      Fail(AtEnd() ? "unexpected end of input, expected ',' or '}'" : "expected ',' or '}'");
    }
  }

  json ReadArray(const std::string& pointer, int depth) {
    if (depth > kMaxDepth) Fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;  // '['
    json array = json::array();
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      return array;
    }
    while (true) {
      if (Peek() == ']') {
        current_pointer_ = pointer;
        Fail("expected a value (trailing commas are not allowed)");
      }
      array.push_back(ReadValue(pointer + "/" + std::to_string(array.size()), depth));
      SkipSpace();
      current_pointer_ = pointer;
      if (Peek() == ',') {
        ++pos_;
        SkipSpace();
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        return array;
      }
      Fail(AtEnd() ? "unexpected end of input, expected ',' or ']'" : "expected ',' or ']'");
    }
  }

  int HexDigit(char c) const {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  uint32_t ReadHex4() {
    if (pos_ + 4 > text_.size()) Fail("invalid \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = HexDigit(text_[pos_ + i]);
      if (digit < 0) Fail("invalid \\u escape");
      value = value << 4 | static_cast<uint32_t>(digit);
    }
    pos_ += 4;
    return value;
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | cp >> 6));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | cp >> 12));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | cp >> 18));
      out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Copies one UTF-8 sequence starting at pos_ (a byte >= 0x80) into `out`.
  void CopyUtf8Sequence(std::string* out) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text_[i]); };
    const unsigned char lead = byte(pos_);
    int length = 0;
    uint32_t cp = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      cp = lead & 0x07;
    } else {
      Fail("invalid UTF-8 in string");
    }
    if (pos_ + length > text_.size()) Fail("invalid UTF-8 in string");
    for (int i = 1; i < length; ++i) {
      const unsigned char next = byte(pos_ + i);
      if ((next & 0xC0) != 0x80) Fail("invalid UTF-8 in string");
      cp = cp << 6 | (next & 0x3F);
    }
    const bool overlong = (length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      Fail("invalid UTF-8 in string");
    }
    out->append(text_.substr(pos_, length));
    pos_ += length;
  }

  std::string ReadString() {
    const size_t start = pos_;
    ++pos_;  // '"'
    std::string out;
    while (true) {
      if (AtEnd()) FailAt(start, "unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\n')
        FailAt(start, "unterminated string (a raw newline is not allowed in a string)");
      if (static_cast<unsigned char>(c) < 0x20) Fail("control character in string (use an escape)");
      if (static_cast<unsigned char>(c) >= 0x80) {
        CopyUtf8Sequence(&out);
        continue;
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (AtEnd()) FailAt(start, "unterminated string");
      const char escape = text_[pos_++];
      switch (escape) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = ReadHex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") Fail("invalid \\u escape (lone surrogate)");
            pos_ += 2;
            const uint32_t low = ReadHex4();
            if (low < 0xDC00 || low > 0xDFFF) Fail("invalid \\u escape (lone surrogate)");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            Fail("invalid \\u escape (lone surrogate)");
          }
          AppendUtf8(&out, cp);
          break;
        }
        default:
          FailAt(pos_ - 2, "invalid escape in string");
      }
    }
  }

  json ReadNumber() {
    const size_t start = pos_;
    const auto digit = [&] { return !AtEnd() && Peek() >= '0' && Peek() <= '9'; };
    bool integral = true;
    if (Peek() == '-') ++pos_;
    if (!digit()) Fail("invalid number");
    if (Peek() == '0') {
      ++pos_;
      if (digit()) FailAt(start, "invalid number (leading zeros are not allowed)");
    } else {
      while (digit()) ++pos_;
    }
    if (Peek() == '.') {
      integral = false;
      ++pos_;
      if (!digit()) Fail("invalid number (expected a digit after '.')");
      while (digit()) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      integral = false;
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!digit()) Fail("invalid number (expected a digit in the exponent)");
      while (digit()) ++pos_;
    }
    const std::string_view literal = text_.substr(start, pos_ - start);
    const char* first = literal.data();
    const char* last = literal.data() + literal.size();
    if (integral) {
      if (literal[0] == '-') {
        int64_t value = 0;
        if (std::from_chars(first, last, value).ec == std::errc()) return value;
      } else {
        uint64_t value = 0;
        if (std::from_chars(first, last, value).ec == std::errc()) return value;
      }
    }
    double value = 0;
    const auto result = std::from_chars(first, last, value);
    if (result.ec != std::errc()) FailAt(start, "number out of range");
    return value;
  }

  std::string_view text_;
  JsonDocument* doc_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  int suppress_ = 0;  // > 0 while reading the value of a duplicate key
  std::string current_pointer_;
};

}  // namespace

JsonDocument ReadJson(std::string_view text) {
  JsonDocument doc;
  Reader(text, &doc).Run();
  return doc;
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace vfabric::topology::internal
