#include "vfabric/netd/control_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "fake_kernel.h"
#include "vfabric/netd/controller.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string Nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(NestsDeeperThanTest, CountsArraysAndObjectsOutsideStrings) {
  EXPECT_FALSE(NestsDeeperThan("", 0));
  EXPECT_FALSE(NestsDeeperThan("1", 0));
  EXPECT_TRUE(NestsDeeperThan("[]", 0));
  EXPECT_FALSE(NestsDeeperThan("[]", 1));
  EXPECT_FALSE(NestsDeeperThan("[[],[],{}]", 2));
  EXPECT_TRUE(NestsDeeperThan("[[],[[]]]", 2));
  EXPECT_TRUE(NestsDeeperThan(R"({"a":{"b":[1]}})", 2));
  EXPECT_FALSE(NestsDeeperThan(R"({"a":{"b":[1]}})", 3));
  // Brackets in strings are text, also after escaped quotes and backslashes.
  EXPECT_FALSE(NestsDeeperThan(R"(["[[[[{{{{"])", 1));
  EXPECT_FALSE(NestsDeeperThan(R"(["\"[[[["])", 1));
  EXPECT_TRUE(NestsDeeperThan(R"(["\\",[[]]])", 2));
  EXPECT_FALSE(NestsDeeperThan(R"(["\\\"[[", 1])", 1));
  // Unbalanced closers (not JSON) do not hide the openers after them.
  EXPECT_TRUE(NestsDeeperThan("]]]]" + Nested(3), 2));
}

// Whatever the parser accepts, the scan's bound holds for what it built.
size_t Depth(const json& value) {
  size_t deepest = 0;
  if (value.is_structured())
    for (const auto& item : value) deepest = std::max(deepest, Depth(item));
  return value.is_structured() ? deepest + 1 : 0;
}

TEST(NestsDeeperThanTest, AgreesWithTheParser) {
  for (const char* text : {R"({"a":[{"b":"]]]"},[["\\"]]],"c":{}})", R"([1,[2,[3,[4]]],"[\"{"])",
                           R"("x")", R"({"version":1,"verb":"hello","id":[[{"k":"}}}"}]]})"}) {
    const json value = json::parse(std::string(text));
    EXPECT_FALSE(NestsDeeperThan(text, Depth(value))) << text;
    if (Depth(value) > 0) {
      EXPECT_TRUE(NestsDeeperThan(text, Depth(value) - 1)) << text;
    }
  }
}

TEST(LineFramerTest, SplitsLinesAcrossReads) {
  LineFramer framer(100);
  ASSERT_TRUE(framer.Append("{\"a\"").ok());
  EXPECT_FALSE(framer.HasLine());
  EXPECT_EQ(framer.Next(), std::nullopt);
  EXPECT_EQ(framer.partial_bytes(), 4u);
  ASSERT_TRUE(framer.Append(":1}\n{\"b\":2}\n\n{").ok());
  EXPECT_EQ(framer.Next(), "{\"a\":1}");
  EXPECT_EQ(framer.Next(), "{\"b\":2}");
  EXPECT_EQ(framer.Next(), "");
  EXPECT_EQ(framer.Next(), std::nullopt);
  EXPECT_EQ(framer.partial_bytes(), 1u);
  ASSERT_TRUE(framer.Append("}\n").ok());
  EXPECT_EQ(framer.Next(), "{}");
  EXPECT_EQ(framer.partial_bytes(), 0u);
  EXPECT_FALSE(framer.failed());
}

TEST(LineFramerTest, ALineOfExactlyTheCapFitsOneMoreByteDoesNot) {
  LineFramer framer(10);
  ASSERT_TRUE(framer.Append("0123456789\n").ok());
  EXPECT_EQ(framer.Next(), "0123456789");
  Status status = framer.Append("0123456789X\n");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "request line longer than 10 bytes");
  EXPECT_TRUE(framer.failed());
  EXPECT_EQ(framer.Next(), std::nullopt);
}

// Issue 20 (7): the cap is checked as bytes come, not once a line ends.
TEST(LineFramerTest, TheCapHoldsWhileTheLineIsStillComing) {
  LineFramer framer(10);
  ASSERT_TRUE(framer.Append("01234").ok());
  ASSERT_TRUE(framer.Append("56789").ok());
  EXPECT_FALSE(framer.Append("X").ok()) << "11 bytes and no end in sight";
  EXPECT_TRUE(framer.failed());
  EXPECT_FALSE(framer.Append("\n").ok()) << "a failed stream stays failed";
  EXPECT_EQ(framer.Next(), std::nullopt);
}

TEST(LineFramerTest, LinesBeforeATooLongOneAreStillServed) {
  LineFramer framer(4);
  EXPECT_FALSE(framer.Append("ab\ncd\nefghij\nkl\n").ok());
  EXPECT_TRUE(framer.failed());
  EXPECT_EQ(framer.Next(), "ab");
  EXPECT_EQ(framer.Next(), "cd");
  EXPECT_EQ(framer.Next(), std::nullopt) << "nothing after the long line";
}

TEST(LineFramerTest, HoldsNoMoreThanOneLineAndOneReadAndLetsGoBetweenRequests) {
  const size_t cap = 1 << 20;
  const std::string chunk(65536, 'x');
  LineFramer framer(cap);
  size_t appended = 0;
  while (framer.Append(chunk).ok()) {
    appended += chunk.size();
    EXPECT_LE(framer.held_bytes(), cap + 1 + chunk.size());
  }
  EXPECT_LE(appended, cap);
  EXPECT_LE(framer.held_bytes(), cap + 1 + chunk.size());
  // A big request, answered: its memory does not stay with an idle client.
  LineFramer served(cap);
  for (size_t i = 0; i < 15; ++i) ASSERT_TRUE(served.Append(chunk).ok());
  ASSERT_TRUE(served.Append("\n").ok());
  EXPECT_EQ(served.Next()->size(), 15 * chunk.size());
  EXPECT_EQ(served.Next(), std::nullopt);
  EXPECT_LE(served.held_bytes(), 65536u);
}

class AnswerRequestLineTest : public ::testing::Test {
 protected:
  json Answer(const std::string& line) {
    return AnswerRequestLine(line, kMaxRequestDepth,
                             [&](const json& request) { return controller_.Handle(request); });
  }
  testing::FakeKernel kernel_;
  Controller controller_{kernel_, kernel_.features};
};

// Issue 20: 70,000 levels of "id" (140 KB) overflowed netd's stack while the
// controller copied the id into its answer; "args" at 100,000 levels too.
TEST_F(AnswerRequestLineTest, ADeeplyNestedRequestIsRefusedNotRecursedInto) {
  for (const std::string& line :
       {R"({"version":1,"verb":"hello","id":)" + Nested(70000) + "}",
        R"({"version":1,"verb":"network.show","args":{"name":"lab","x":)" +
            Nested(100000, '{', '}') + "}}",
        R"({"version":1,"verb":"hello","id":)" + Nested(70000, '[', ' ') /* never closed */}) {
    json answer = Answer(line);
    EXPECT_EQ(answer["ok"], false) << answer.dump();
    EXPECT_EQ(answer["error"]["code"], "bad_request");
    EXPECT_THAT(answer["error"]["message"].get<std::string>(),
                HasSubstr("nests arrays and objects deeper than 64 levels"));
  }
}

TEST_F(AnswerRequestLineTest, TheLimitIsSixtyFourLevels) {
  // The request object itself is the first level.
  json at_limit = Answer(R"({"version":1,"verb":"hello","id":)" + Nested(63) + "}");
  EXPECT_EQ(at_limit["ok"], true) << at_limit.dump().substr(0, 200);
  EXPECT_EQ(at_limit["id"].dump(), Nested(63));
  json over = Answer(R"({"version":1,"verb":"hello","id":)" + Nested(64) + "}");
  EXPECT_EQ(over["ok"], false);
}

TEST_F(AnswerRequestLineTest, NotJsonIsABadRequest) {
  json answer = Answer("{\"version\":1,");
  EXPECT_EQ(answer["error"]["code"], "bad_request");
  EXPECT_EQ(answer["error"]["message"], "the request is not valid JSON");
  EXPECT_EQ(Answer(R"({"version":1,"verb":"hello","id":7})")["id"], 7);
}

}  // namespace
}  // namespace vfabric::netd
