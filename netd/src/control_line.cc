#include "vfabric/netd/control_line.h"

#include "vfabric/netd/controller.h"

namespace vfabric::netd {

using nlohmann::json;

bool NestsDeeperThan(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      // A backslash escapes exactly the next byte: \" does not end the
      // string, \\" does. (\uXXXX needs no care: hex digits are no quotes.)
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

json ErrorAnswer(const std::string& code, const std::string& message) {
  return {{"version", kProtocolVersion},
          {"ok", false},
          {"error", {{"code", code}, {"message", message}}}};
}

json AnswerRequestLine(std::string_view line, size_t max_depth,
                       const std::function<json(const json&)>& handle) {
  // Before the parser: nothing recursive may see a deep value (see the header).
  if (NestsDeeperThan(line, max_depth))
    return ErrorAnswer("bad_request", "the request nests arrays and objects deeper than " +
                                          std::to_string(max_depth) + " levels");
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return ErrorAnswer("bad_request", "the request is not valid JSON");
  return handle(request);
}

}  // namespace vfabric::netd
