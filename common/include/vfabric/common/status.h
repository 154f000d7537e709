// Errors as values. A Status is either OK or carries a message that names the
// object and the cause ("TUNSETIFF vm1-eth0: Operation not permitted") and,
// where the cause was a system call, its errno. Result<T> is a T or a Status.
// Nothing in vfabric's libraries throws across a library boundary or exits.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vfabric {

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;

  static Status Ok() { return Status(); }
  // A failure described by `message`; `error_number` is an errno value or 0.
  static Status Error(std::string message, int error_number = 0);
  // "`what`: strerror(error_number)", keeping error_number.
  static Status FromErrno(std::string_view what, int error_number);

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }
  int error_number() const { return error_number_; }
  // "OK" or the message.
  std::string ToString() const { return ok() ? std::string("OK") : message_; }

  // Returns a copy whose message is "`context`: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  bool failed_ = false;
  int error_number_ = 0;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(value_).ok() && "Result from an OK status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  // REQUIRES: !ok()
  const Status& status() const { return std::get<Status>(value_); }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace vfabric

// Returns from the enclosing function if `expr` (a Status) failed.
#define VF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::vfabric::Status vf_status_ = (expr);   \
    if (!vf_status_.ok()) return vf_status_; \
  } while (0)
