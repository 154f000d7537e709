#include "vfabric/netd/control_line.h"

#include <algorithm>
#include <cstring>

#include "vfabric/protocol/protocol.h"

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

Status LineFramer::Append(std::string_view bytes) {
  if (failed_) return TooLong();
  // Returned lines are dropped first, so the buffer holds only what is
  // still to come.
  if (start_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    complete_end_ -= start_;
    start_ = 0;
  }
  // Grow by doubling, but never past what one line and this read can need:
  // the capacity is what the total bound counts (a vector: a string's
  // reserve may double past what is asked).
  const size_t need = buffer_.size() + bytes.size();
  if (need > buffer_.capacity()) {
    const size_t most = std::max(need, complete_end_ + max_line_bytes_ + 1 + bytes.size());
    buffer_.reserve(std::min(std::max(need, 2 * buffer_.capacity()), most));
  }
  size_t scan = buffer_.size();
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  // Every line that ends in these bytes must fit, and so must the tail.
  while (scan < buffer_.size()) {
    const void* found = std::memchr(buffer_.data() + scan, '\n', buffer_.size() - scan);
    if (found == nullptr) break;
    const size_t newline = static_cast<size_t>(static_cast<const char*>(found) - buffer_.data());
    if (newline - complete_end_ > max_line_bytes_) break;
    complete_end_ = newline + 1;
    scan = complete_end_;
  }
  if (buffer_.size() - complete_end_ > max_line_bytes_) {
    // The lines before the long one are still served; nothing after it.
    failed_ = true;
    buffer_.resize(complete_end_);
    return TooLong();
  }
  return Status::Ok();
}

std::optional<std::string> LineFramer::Next() {
  if (start_ >= complete_end_) {
    // Between requests nothing big stays allocated (an idle client that
    // once sent 16 MiB must not keep them).
    if (start_ == buffer_.size() && buffer_.capacity() > kKeptCapacity) {
      std::vector<char>().swap(buffer_);
      start_ = complete_end_ = 0;
    }
    return std::nullopt;
  }
  // There is a '\n' before complete_end_.
  const char* begin = buffer_.data() + start_;
  const char* newline = static_cast<const char*>(std::memchr(begin, '\n', complete_end_ - start_));
  std::string line(begin, newline);
  start_ += line.size() + 1;
  return line;
}

Status LineFramer::TooLong() const {
  return Status::Error("request line longer than " + std::to_string(max_line_bytes_) + " bytes");
}

json ErrorAnswer(std::string_view code, const std::string& message) {
  return protocol::MakeAnswer(nullptr, protocol::Error{std::string(code), message});
}

json AnswerRequestLine(std::string_view line, size_t max_depth,
                       const std::function<json(const json&)>& handle) {
  // Before the parser: nothing recursive may see a deep value (see the header).
  if (NestsDeeperThan(line, max_depth))
    return ErrorAnswer(protocol::code::kBadRequest,
                       "the request nests arrays and objects deeper than " +
                           std::to_string(max_depth) + " levels");
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded())
    return ErrorAnswer(protocol::code::kBadRequest, "the request is not valid JSON");
  return handle(request);
}

}  // namespace vfabric::netd
