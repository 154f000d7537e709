// PrettyResultOf: one SAX pass over netd's answer line that writes the
// result as dump(2) would (pretty_json.h).
#include "vfabric/netctl/pretty_json.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

namespace vfabric::netctl {
namespace {

using nlohmann::json;

// The answer's members by depth: 1 is the answer object, 2 and deeper the
// inside of one of its members: the result's is written out, the others'
// skipped.
class PrettyWriter {
 public:
  explicit PrettyWriter(int64_t id) : id_(id) { out_.reserve(1 << 16); }

  bool null() {
    if (AtAnswerMember("id")) id_matches_ = true;
    return Scalar([&] { out_ += "null"; });
  }
  bool boolean(bool value) {
    if (AtAnswerMember("ok")) ok_ = value;
    NotAnId();
    return Scalar([&] { out_ += value ? "true" : "false"; });
  }
  bool number_integer(json::number_integer_t value) {
    if (AtAnswerMember("id")) id_matches_ = value == id_;
    return Scalar([&] { out_ += std::to_string(value); });
  }
  bool number_unsigned(json::number_unsigned_t value) {
    if (AtAnswerMember("id")) id_matches_ = id_ >= 0 && value == static_cast<uint64_t>(id_);
    return Scalar([&] { out_ += std::to_string(value); });
  }
  bool number_float(json::number_float_t value, const json::string_t&) {
    NotAnId();
    // Rare (seconds with a fraction): nlohmann's own float writing.
    return Scalar([&] { out_ += json(value).dump(); });
  }
  bool string(json::string_t& value) {
    NotAnId();
    return Scalar([&] {
      out_ += '"';
      Escape(value);
      out_ += '"';
    });
  }
  bool binary(json::binary_t&) { return false; }  // not in JSON text

  bool start_object(std::size_t) { return Start(true); }
  bool key(json::string_t& name) {
    Level& level = stack_.back();
    // A tree keeps members sorted and once: any other order is not what
    // dump() wrote, and the caller decodes the line instead.
    if (level.members > 0 && !(level.last_key < name)) return false;
    level.last_key = name;
    if (stack_.size() == 1) member_ = name;
    if (stack_.size() == 2 && member_ == "result" && (name == "errors" || name == "unsaved"))
      return false;
    if (Writing()) {
      out_ += level.members == 0 ? "\n" : ",\n";
      Indent(stack_.size() - 1);
      out_ += '"';
      Escape(name);
      out_ += "\": ";
    }
    ++level.members;
    return true;
  }
  bool end_object() { return End('}'); }
  bool start_array(std::size_t) { return Start(false); }
  bool end_array() { return End(']'); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  // The result as dump(2) writes it, when the answer was a success for id_.
  std::optional<std::string> Result() && {
    if (!ok_ || !result_done_ || !id_matches_) return std::nullopt;
    out_ += '\n';
    return std::move(out_);
  }

 private:
  struct Level {
    bool object = false;
    size_t members = 0;  // so far (an array's elements too)
    std::string last_key;
  };

  // Reading the result's value (the answer's member "result", or inside it).
  bool InResult() const { return !stack_.empty() && member_ == "result"; }
  // Inside the result's value (its members and elements).
  bool Writing() const { return stack_.size() >= 2 && member_ == "result"; }
  // The value now read is the answer's member `name`.
  bool AtAnswerMember(const char* name) const { return stack_.size() == 1 && member_ == name; }
  // Call() takes an id that is a number or null, nothing else.
  void NotAnId() {
    if (AtAnswerMember("id")) id_matches_ = false;
  }

  // In an array, the separator and the indent come before each element.
  void BeforeValue() {
    Level& level = stack_.back();
    if (level.object) return;
    if (Writing()) {
      out_ += level.members == 0 ? "\n" : ",\n";
      Indent(stack_.size() - 1);
    }
    ++level.members;
  }
  template <typename Write>
  bool Scalar(Write write) {
    if (stack_.empty()) return false;  // an answer that is not an object
    BeforeValue();
    if (InResult()) write();
    if (AtAnswerMember("result")) result_done_ = true;
    return true;
  }
  bool Start(bool object) {
    if (stack_.empty()) {
      if (!object) return false;  // the answer is an object
    } else {
      NotAnId();
      BeforeValue();
      if (InResult()) out_ += object ? '{' : '[';
    }
    stack_.push_back({object, 0, {}});
    return true;
  }
  bool End(char close) {
    const Level level = stack_.back();
    stack_.pop_back();
    if (InResult()) {
      if (level.members > 0) {
        out_ += '\n';
        Indent(stack_.size() - 1);
      }
      out_ += close;
      if (stack_.size() == 1) result_done_ = true;
    }
    return true;
  }
  // dump(2): two spaces a level; `depth` counts from the result's (0).
  void Indent(size_t depth) { out_.append(2 * depth, ' '); }
  // As nlohmann's serializer escapes with ensure_ascii off: the two-character
  // escapes, \u00xx (lower-case hex) for the other control characters, every
  // other byte as it is (the parser has checked the UTF-8).
  void Escape(const std::string& text) {
    for (const char c : text) {
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) <= 0x1f) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            out_ += escaped;
          } else {
            out_ += c;
          }
      }
    }
  }

  const int64_t id_;
  std::vector<Level> stack_;
  std::string member_;  // the answer's member being read
  bool ok_ = false;
  bool result_done_ = false;
  bool id_matches_ = true;  // no "id" member: accepted, as ControlClient::Call does
  std::string out_;
};

}  // namespace

std::optional<std::string> PrettyResultOf(std::string_view answer_line, int64_t id) {
  PrettyWriter writer(id);
  try {
    if (!json::sax_parse(answer_line, &writer)) return std::nullopt;
  } catch (const json::exception&) {
    return std::nullopt;  // the caller's decoding says what is wrong
  }
  return std::move(writer).Result();
}

}  // namespace vfabric::netctl
