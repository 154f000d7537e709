#include "vfabric/protocol/protocol.h"

#ifndef VFABRIC_VERSION
#define VFABRIC_VERSION "0.0.0"
#endif

namespace vfabric::protocol {

using nlohmann::json;

std::string_view ProjectVersion() { return VFABRIC_VERSION; }

json MakeRequest(int64_t id, std::string_view verb, const json& args) {
  json request = {{"version", kVersion}, {"id", id}, {"verb", std::string(verb)}};
  if (!args.is_null()) request["args"] = args;
  return request;
}

Expected<Request> ParseRequest(const json& request, json* id) {
  if (!request.is_object())
    return Error{std::string(code::kBadRequest), "a request must be a JSON object"};
  auto id_it = request.find("id");
  if (id_it != request.end() && id != nullptr) *id = *id_it;
  auto version = request.find("version");
  if (version == request.end() || !version->is_number_integer())
    return Error{std::string(code::kBadRequest), "missing integer \"version\""};
  if (version->get<int64_t>() != kVersion)
    return Error{std::string(code::kVersion), "protocol version " + version->dump() +
                                                  " is not spoken here; netd speaks version " +
                                                  std::to_string(kVersion)};
  auto verb = request.find("verb");
  if (verb == request.end() || !verb->is_string())
    return Error{std::string(code::kBadRequest), "missing string \"verb\""};
  Request out;
  if (id_it != request.end()) out.id = *id_it;
  out.verb = verb->get<std::string>();
  auto args = request.find("args");
  if (args != request.end()) {
    if (!args->is_object())
      return Error{std::string(code::kBadRequest), "\"args\" must be an object"};
    out.args = *args;
  }
  return out;
}

json MakeAnswer(const json& id, const Reply& reply) {
  json answer = {{"version", kVersion}};
  if (!id.is_null()) answer["id"] = id;
  answer["ok"] = reply.ok();
  if (reply.ok()) {
    answer["result"] = reply.value();
  } else {
    json body = {{"code", reply.error().code}, {"message", reply.error().message}};
    if (reply.error().extra.is_object()) body.update(reply.error().extra);
    answer["error"] = std::move(body);
  }
  return answer;
}

Expected<std::string> StringArg(const json& args, std::string_view key, bool required) {
  auto it = args.find(key);
  if (it == args.end()) {
    if (required)
      return Error{std::string(code::kBadRequest), "missing argument \"" + std::string(key) + "\""};
    return std::string();
  }
  if (!it->is_string())
    return Error{std::string(code::kBadRequest),
                 "argument \"" + std::string(key) + "\" must be a string"};
  return it->get<std::string>();
}

}  // namespace vfabric::protocol
