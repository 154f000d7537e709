// The control protocol's shapes, as both ends use them.
#include "vfabric/protocol/protocol.h"

#include <gtest/gtest.h>

namespace vfabric::protocol {
namespace {

using nlohmann::json;

TEST(ProtocolTest, ARequestRoundTrips) {
  const json request = MakeRequest(7, verb::kNetworkShow, {{"name", "lab"}});
  EXPECT_EQ(request, json::parse(R"({"version":1,"id":7,"verb":"network.show",
                                     "args":{"name":"lab"}})"));
  json id;
  auto parsed = ParseRequest(request, &id);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(id, 7);
  EXPECT_EQ(parsed->verb, "network.show");
  EXPECT_EQ(parsed->args["name"], "lab");
  // No args: left out, and read back as an empty object.
  const json bare = MakeRequest(8, verb::kHello, nullptr);
  EXPECT_FALSE(bare.contains("args"));
  auto hello = ParseRequest(bare, nullptr);
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(hello->args, json::object());
}

TEST(ProtocolTest, BadRequestsAreErrorsThatKeepTheId) {
  json id;
  auto not_object = ParseRequest(json::array(), &id);
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.error().code, "bad_request");
  auto version = ParseRequest({{"version", 9}, {"id", 3}, {"verb", "hello"}}, &id);
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().code, "version");
  EXPECT_EQ(id, 3);  // seen before the version was refused
  EXPECT_EQ(version.error().message,
            "protocol version 9 is not spoken here; netd speaks version 1");
  auto args = ParseRequest({{"version", 1}, {"verb", "hello"}, {"args", 1}}, &id);
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.error().message, "\"args\" must be an object");
}

TEST(ProtocolTest, AnswersCarryResultOrErrorWithExtras) {
  const json ok = MakeAnswer(4, Reply(json{{"x", 1}}));
  EXPECT_EQ(ok, json::parse(R"({"version":1,"id":4,"ok":true,"result":{"x":1}})"));
  const json failed =
      MakeAnswer(nullptr, Reply(Error{"invalid", "2 errors", {{"diagnostics", json::array()}}}));
  EXPECT_FALSE(failed.contains("id"));
  EXPECT_EQ(failed["ok"], false);
  EXPECT_EQ(failed["error"]["code"], "invalid");
  EXPECT_EQ(failed["error"]["message"], "2 errors");
  EXPECT_TRUE(failed["error"]["diagnostics"].is_array());
}

TEST(ProtocolTest, StringArguments) {
  const json args = {{"name", "lab"}, {"n", 3}};
  EXPECT_EQ(*StringArg(args, "name", true), "lab");
  EXPECT_EQ(*StringArg(args, "port", false), "");
  EXPECT_EQ(StringArg(args, "port", true).error().message, "missing argument \"port\"");
  EXPECT_EQ(StringArg(args, "n", false).error().message, "argument \"n\" must be a string");
}

TEST(ProtocolTest, TheVersionComesFromTheBuild) {
  EXPECT_FALSE(ProjectVersion().empty());
  EXPECT_NE(ProjectVersion(), "0.0.0");
}

}  // namespace
}  // namespace vfabric::protocol
