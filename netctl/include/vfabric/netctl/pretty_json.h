// `netctl --json` without a tree: the "result" of netd's answer line printed
// as nlohmann::json's dump(2) prints it (FormatJson), straight from the
// line's text in one pass (nlohmann's SAX parser). A port list of 10,000
// ports is a 5 MB line; parsing it into a tree, printing the tree and
// freeing it was nearly all of netctl's time.
//
// The bytes are dump(2)'s because netd writes its answers with nlohmann's
// dump(): object members sorted by key, each once, strings escaped and
// numbers written the one way nlohmann writes them. Where a line does not
// look like that (members out of order or repeated: a tree would sort or
// merge them), or the answer is not a plain success, PrettyResultOf gives
// nothing and the caller decodes the line into a tree as before.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfabric::netctl {

// The answer's "result", as FormatJson(result) prints it (with the final
// newline), when `answer_line` is a well-formed answer {"ok": true, "id":
// `id` or null, "result": ...} whose members are in nlohmann's order and
// whose result has no "errors" or "unsaved" member (those are reported
// apart from the result: ControlClient::Call and the CLI do that). Else
// nullopt.
std::optional<std::string> PrettyResultOf(std::string_view answer_line, int64_t id);

}  // namespace vfabric::netctl
