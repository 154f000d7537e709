// The control protocol between netd and its clients (docs/control-protocol.md),
// defined once for both ends: the version, the verbs, the error codes, and the
// shapes of a request and an answer. netd decodes requests and encodes
// answers with it; netctl encodes requests with it.
//
// Errors are values: an Error carries the protocol's code, a message naming
// the object and the cause, and optional extra members (e.g. "diagnostics");
// Expected<T> is a T or an Error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vfabric::protocol {

// The protocol version both ends speak.
inline constexpr int kVersion = 1;

// vfabric's version (netd's and netctl's), from CMake's project().
std::string_view ProjectVersion();

// Verbs. Operators' scripts depend on these names: add, never rename.
namespace verb {
inline constexpr std::string_view kHello = "hello";
inline constexpr std::string_view kPlan = "plan";
inline constexpr std::string_view kApply = "apply";
inline constexpr std::string_view kNetworkList = "network.list";
inline constexpr std::string_view kNetworkShow = "network.show";
// Removes a network from the host and from the file that keeps it.
inline constexpr std::string_view kNetworkDelete = "network.delete";
inline constexpr std::string_view kPortList = "port.list";
inline constexpr std::string_view kPortStats = "port.stats";
inline constexpr std::string_view kPortShow = "port.show";
inline constexpr std::string_view kFdbShow = "fdb.show";
inline constexpr std::string_view kFdbAdd = "fdb.add";
inline constexpr std::string_view kFdbDel = "fdb.del";
inline constexpr std::string_view kFdbFlush = "fdb.flush";
inline constexpr std::string_view kStpShow = "stp.show";
inline constexpr std::string_view kVlanShow = "vlan.show";
inline constexpr std::string_view kVmList = "vm.list";
inline constexpr std::string_view kVmStart = "vm.start";
inline constexpr std::string_view kVmStop = "vm.stop";
inline constexpr std::string_view kVmConsoleLog = "vm.console-log";
inline constexpr std::string_view kAttach = "attach";
inline constexpr std::string_view kDetach = "detach";
// netd itself: version, uptime, configuration sources, networks and their state.
inline constexpr std::string_view kStatus = "status";
// netd's log level: shown, or set with {"level": "error"|"warning"|"info"|"debug"}.
inline constexpr std::string_view kLogLevel = "log.level";
// A capture of a port's frames ({"network", "port", "direction": "in"|"out"|"both"}).
// On a userspace network the answer is followed on the same connection by a
// stream of binary records until the client shuts down its sending side (or
// goes away); on a kernel network it only names the interface to capture
// on. docs/control-protocol.md, "capture.start".
inline constexpr std::string_view kCaptureStart = "capture.start";
}  // namespace verb

// Error codes.
namespace code {
inline constexpr std::string_view kBadRequest = "bad_request";  // malformed JSON or arguments
inline constexpr std::string_view kVersion = "version";         // a version not spoken here
inline constexpr std::string_view kUnknownVerb = "unknown_verb";
inline constexpr std::string_view kNotFound = "not_found";
inline constexpr std::string_view kInvalid = "invalid";          // topology errors
inline constexpr std::string_view kUnsupported = "unsupported";  // not on this host/datapath
inline constexpr std::string_view kFailed = "failed";            // the kernel or a switch refused
inline constexpr std::string_view kPermission = "permission";
inline constexpr std::string_view kBusy = "busy";  // a control socket limit; the connection closes
}  // namespace code

struct Error {
  std::string code;
  std::string message;
  nlohmann::json extra = nlohmann::json::object();  // merged into the answer's "error"
};

// A T or an Error.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}      // NOLINT: implicit by design
  Expected(Error error) : value_(std::move(error)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(value_); }
  // REQUIRES: !ok()
  const Error& error() const& { return std::get<Error>(value_); }
  Error&& error() && { return std::get<Error>(std::move(value_)); }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> value_;
};

// What a verb answers: its result, or an Error.
using Reply = Expected<nlohmann::json>;

struct Request {
  nlohmann::json id;  // null when the request had none
  std::string verb;
  nlohmann::json args = nlohmann::json::object();
};

// {"version": kVersion, "id": id, "verb": verb, "args": args} (args left out
// when null).
nlohmann::json MakeRequest(int64_t id, std::string_view verb, const nlohmann::json& args);

// Decodes one request object. `id` receives the request's id as soon as it
// is seen, so that an answer to a bad request still carries it.
Expected<Request> ParseRequest(const nlohmann::json& request, nlohmann::json* id);

// The answer line's object for `reply` to the request with `id` (null: none).
nlohmann::json MakeAnswer(const nlohmann::json& id, const Reply& reply);

// A string argument: missing and not `required` is "".
Expected<std::string> StringArg(const nlohmann::json& args, std::string_view key, bool required);

}  // namespace vfabric::protocol

#define VF_PROTOCOL_CONCAT_INNER(a, b) a##b
#define VF_PROTOCOL_CONCAT(a, b) VF_PROTOCOL_CONCAT_INNER(a, b)
// `lhs = value of expr` (an Expected), or returns its Error from the
// enclosing function (which returns an Expected or a Reply).
#define VF_ASSIGN_OR_RETURN_ERROR(lhs, expr)                              \
  auto VF_PROTOCOL_CONCAT(vf_expected_, __LINE__) = (expr);               \
  if (!VF_PROTOCOL_CONCAT(vf_expected_, __LINE__).ok())                   \
    return std::move(VF_PROTOCOL_CONCAT(vf_expected_, __LINE__)).error(); \
  lhs = std::move(VF_PROTOCOL_CONCAT(vf_expected_, __LINE__)).value()
