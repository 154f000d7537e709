#include "vfabric/common/status.h"

#include <cstring>

namespace vfabric {

Status Status::Error(std::string message, int error_number) {
  Status status;
  status.failed_ = true;
  status.error_number_ = error_number;
  status.message_ = std::move(message);
  return status;
}

Status Status::FromErrno(std::string_view what, int error_number) {
  std::string message(what);
  message += ": ";
  message += std::strerror(error_number);
  return Error(std::move(message), error_number);
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  message += ": ";
  message += message_;
  return Error(std::move(message), error_number_);
}

}  // namespace vfabric
