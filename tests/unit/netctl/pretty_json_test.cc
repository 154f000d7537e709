// PrettyResultOf prints a result byte for byte as FormatJson (dump(2)) of
// the decoded result does, and leaves every answer it cannot vouch for to
// the decoding path.
#include "vfabric/netctl/pretty_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "vfabric/netctl/format.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;

// An answer line as netd writes it (ControlServer::EncodeAnswer).
std::string Line(const json& result, const json& id = 7) {
  json answer = {{"version", 1}, {"ok", true}, {"result", result}};
  if (!id.is_discarded()) answer["id"] = id;
  return answer.dump(-1, ' ', false, json::error_handler_t::replace);
}

void ExpectSame(const json& result) {
  const std::optional<std::string> text = PrettyResultOf(Line(result), 7);
  ASSERT_TRUE(text.has_value()) << result.dump();
  EXPECT_EQ(*text, FormatJson(json::parse(Line(result))["result"])) << result.dump();
}

json Port(int i) {
  json port = {{"network", "n" + std::to_string(i % 10)},
               {"name", "n" + std::to_string(i % 10) + "t" + std::to_string(i)},
               {"kind", "tap"},
               {"present", true},
               {"ifindex", 1000 + i},
               {"admin_up", true},
               {"oper_up", i % 3 == 0},
               {"mac", "02:00:00:00:00:01"},
               {"master", i % 7 ? json("vfb-n1") : json(nullptr)},
               {"stp_state", "forwarding"},
               {"cost", i % 5 ? json(100) : json(nullptr)},
               {"vlan", {{"mode", "access"}, {"pvid", 1}}},
               {"counters", {{"drops", json::object()}, {"rx_packets", uint64_t{1} << 63}}}};
  if (i % 4 == 0) port["waiting"] = "no link named x exists yet; it is attached when it appears";
  return port;
}

TEST(PrettyJsonTest, APortListIsPrintedAsTheDecodedTreeIs) {
  json ports = json::array();
  for (int i = 0; i < 300; ++i) ports.push_back(Port(i));
  ExpectSame({{"ports", ports}});
  ExpectSame({{"ports", json::array()}});
}

TEST(PrettyJsonTest, EveryKindOfValueAsDumpWritesIt) {
  ExpectSame(json::object());
  ExpectSame(json::array());
  ExpectSame(nullptr);
  ExpectSame(true);
  ExpectSame(-42);
  ExpectSame("just a string");
  ExpectSame({{"a", json::array({json::array(), json::object(), json::array({1, 2})})},
              {"b", {{"c", {{"d", json::array({json::object({{"e", nullptr}})})}}}}}});
  ExpectSame({{"floats", {0.5, 1.0, -0.0, 1e-05, 1e300, 123456.789, 2.5e-300, -3.25}},
              {"integers", {0, -1, INT64_MIN, INT64_MAX, UINT64_MAX}}});
  ExpectSame({{"strings",
               {"quote \" backslash \\ slash /", "tab\t nl\n cr\r bs\b ff\f",
                std::string("\x01\x1f\x7f", 3), std::string("nul \0 inside", 12),
                "utf-8: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", ""}},
              {"keys", {{"", 1}, {"\t", 2}, {"\xc3\xa9", 3}, {"A", 4}, {"a", 5}, {"~", 6}}}});
}

TEST(PrettyJsonTest, AnswersItCannotVouchForAreLeftToTheDecoding) {
  // Not a success, another request's id, no result.
  EXPECT_FALSE(PrettyResultOf(R"({"error":{"code":"x","message":"y"},"id":7,"ok":false})", 7));
  EXPECT_FALSE(PrettyResultOf(Line({{"a", 1}}, 8), 7));
  EXPECT_FALSE(PrettyResultOf(Line({{"a", 1}}, "7"), 7));
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":true})", 7));
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":"true","result":{}})", 7));
  // No id is accepted (as Call accepts it), and a null one.
  EXPECT_EQ(PrettyResultOf(Line({{"a", 1}}, json(json::value_t::discarded)), 7),
            "{\n  \"a\": 1\n}\n");
  EXPECT_EQ(PrettyResultOf(Line({{"a", 1}}, nullptr), 7), "{\n  \"a\": 1\n}\n");
  // Members out of order or twice: a tree would sort or merge them.
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":true,"result":{"b":1,"a":2}})", 7));
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":true,"result":{"a":1,"a":2}})", 7));
  EXPECT_FALSE(PrettyResultOf(R"({"ok":true,"id":7,"result":{}})", 7));
  // What the CLI reports apart from the result.
  EXPECT_FALSE(PrettyResultOf(Line({{"errors", {"x"}}, {"ok", 1}}), 7));
  EXPECT_FALSE(PrettyResultOf(Line({{"unsaved", {"x"}}}), 7));
  EXPECT_TRUE(PrettyResultOf(Line({{"x", {{"errors", {"deeper is fine"}}}}}), 7));
  // Not JSON, not an object, trailing garbage, invalid UTF-8.
  EXPECT_FALSE(PrettyResultOf("", 7));
  EXPECT_FALSE(PrettyResultOf("[1]", 7));
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":true,"result":{}} x)", 7));
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":true,"result":{"a":"\xff"}})", 7));
  EXPECT_FALSE(PrettyResultOf(R"({"id":7,"ok":true,"result":{"a":1})", 7));
}

}  // namespace
}  // namespace vfabric::netctl
