// log.level: netd's log level, shown or changed at run time (netctl
// log-level). The level is one process-wide atomic (common/log.h), so the
// change holds for every thread at once, and until netd stops (a restart
// takes --log-level again).
#include "vfabric/common/log.h"
#include "views.h"

namespace vfabric::netd {

using nlohmann::json;
using protocol::Error;
using protocol::Reply;

Reply LogLevelVerb(const json& args) {
  VF_ASSIGN_OR_RETURN_ERROR(const std::string text, protocol::StringArg(args, "level", false));
  const LogLevel previous = GetLogLevel();
  if (text.empty()) return json{{"level", std::string(ToString(previous))}};
  LogLevel level;
  if (!ParseLogLevel(text, &level))
    return Error{"bad_request",
                 "unknown log level \"" + text + "\" (error, warning, info or debug)"};
  SetLogLevel(level);
  // Written whatever the level: who changed what is worth keeping in the log.
  WriteLogLine(LogLevel::kInfo, "log level " + std::string(ToString(previous)) + " -> " +
                                    std::string(ToString(level)) + " (log.level request)");
  return json{{"level", std::string(ToString(level))},
              {"previous", std::string(ToString(previous))}};
}

}  // namespace vfabric::netd
