#include "vfabric/netctl/client.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "fake_netd.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::ErrorReply;
using testing::FakeNetd;
using testing::FakeReply;
using testing::OkReply;

ClientOptions Options(const std::string& path, int timeout_ms = 2000) {
  ClientOptions options;
  options.socket_path = path;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  return options;
}

TEST(ControlClientTest, SendsVersionIdVerbArgsAndDecodesTheResult) {
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"networks", json::array()}});
  });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok()) << client.status().message();
  Result<Answer> answer = client->Call("network.show", {{"name", "lab"}});
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_TRUE(answer->ok);
  EXPECT_EQ(answer->result, json({{"networks", json::array()}}));

  json request = netd.last_request();
  EXPECT_EQ(request["version"], 1);
  EXPECT_EQ(request["id"], 1);
  EXPECT_EQ(request["verb"], "network.show");
  EXPECT_EQ(request["args"], json({{"name", "lab"}}));
}

TEST(ControlClientTest, OmitsArgsWhenNullAndCountsIdsUpOnOneConnection) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->Call("hello").ok());
  ASSERT_TRUE(client->Call("network.list").ok());
  std::vector<std::string> requests = netd.requests();
  ASSERT_EQ(requests.size(), 2u);
  json first = json::parse(requests[0]);
  json second = json::parse(requests[1]);
  EXPECT_FALSE(first.contains("args"));
  EXPECT_EQ(first["id"], 1);
  EXPECT_EQ(second["id"], 2);
  EXPECT_EQ(requests[0].find('\n'), std::string::npos);
}

TEST(ControlClientTest, ARejectedRequestIsAnAnswerNotAStatus) {
  FakeNetd netd([](const std::string& line) {
    return ErrorReply(line, {{"code", "not_found"}, {"message", "no network named \"lab2\""}});
  });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("network.show", {{"name", "lab2"}});
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_FALSE(answer->ok);
  EXPECT_EQ(answer->error_code(), "not_found");
  EXPECT_EQ(answer->error_message(), "no network named \"lab2\"");
}

TEST(ControlClientTest, AnAnswerSplitAcrossManyReadsIsReassembled) {
  json big = {{"text", std::string(200000, 'x')}};
  FakeNetd netd([&](const std::string& line) {
    FakeReply reply = OkReply(line, big);
    reply.piece_size = 7 * 1024;
    return reply;
  });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path(), 5000));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_EQ(answer->result, big);
}

TEST(ControlClientTest, AnswersArrivingTogetherAreReturnedOneByOne) {
  // The first request gets both answers in one write; the second answer must
  // be kept for the second call.
  int calls = 0;
  FakeNetd netd([&](const std::string&) {
    if (calls++ > 0) return FakeReply{};
    return FakeReply{R"({"version":1,"id":1,"ok":true,"result":{"n":1}})"
                     "\n"
                     R"({"version":1,"id":2,"ok":true,"result":{"n":2}})"
                     "\n"};
  });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> first = client->Call("hello");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->result["n"], 1);
  Result<Answer> second = client->Call("hello");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->result["n"], 2);
}

TEST(ControlClientTest, ConnectingToNothingNamesThePathAndErrno) {
  vfabric::testing::TempDir dir;
  std::string path = dir.Join("absent.sock");
  Result<ControlClient> client = ControlClient::Connect(Options(path));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().message(), "cannot connect to " + path + ": No such file or directory");
  EXPECT_EQ(client.status().error_number(), ENOENT);
}

TEST(ControlClientTest, ASocketPathTooLongIsRefused) {
  Result<ControlClient> client = ControlClient::Connect(Options("/" + std::string(200, 'a')));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().error_number(), ENAMETOOLONG);
}

TEST(ControlClientTest, GarbageIsAMalformedAnswer) {
  FakeNetd netd([](const std::string&) { return FakeReply{"this is not json\n"}; });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().message(), netd.path() + ": malformed answer from netd (not JSON)");
}

TEST(ControlClientTest, JsonThatIsNotAnAnswerIsMalformed) {
  FakeNetd netd([](const std::string&) { return FakeReply{"[1,2,3]\n"}; });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().message(),
            netd.path() + ": malformed answer from netd (not an object with a boolean \"ok\")");
}

TEST(ControlClientTest, AnAnswerForAnotherIdIsRefused) {
  FakeNetd netd([](const std::string&) {
    return FakeReply{R"({"version":1,"id":99,"ok":true,"result":{}})"
                     "\n"};
  });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().message(), netd.path() + ": answer for request id 99, expected 1");
}

TEST(ControlClientTest, AServerClosingBeforeAnsweringIsAnError) {
  FakeNetd netd([](const std::string&) { return FakeReply{"", 0, /*close=*/true}; });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().message(),
            netd.path() + ": connection closed by netd before it answered");
}

TEST(ControlClientTest, AServerClosingMidAnswerIsAnError) {
  FakeNetd netd([](const std::string&) {
    return FakeReply{R"({"version":1,"id":1,"ok":tr)", 0, /*close=*/true};
  });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().message(),
            netd.path() + ": connection closed by netd in the middle of an answer");
  // The connection is gone; later calls fail instead of hanging.
  EXPECT_FALSE(client->Call("hello").ok());
}

TEST(ControlClientTest, AServerThatNeverAnswersTimesOut) {
  FakeNetd netd([](const std::string&) { return FakeReply{}; });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path(), 200));
  ASSERT_TRUE(client.ok());
  auto start = std::chrono::steady_clock::now();
  Result<Answer> answer = client->Call("hello");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().message(), netd.path() + ": no answer from netd within 0.2 s");
  EXPECT_EQ(answer.status().error_number(), ETIMEDOUT);
  EXPECT_GE(elapsed, std::chrono::milliseconds(190));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(ControlClientTest, AnAnswerPastTheCapIsRefused) {
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"text", std::string(10000, 'x')}});
  });
  ClientOptions options = Options(netd.path());
  options.max_answer_bytes = 1000;
  Result<ControlClient> client = ControlClient::Connect(options);
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("hello");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().error_number(), EMSGSIZE);
  EXPECT_NE(answer.status().message().find(netd.path() + ": answer longer than 1000 bytes"),
            std::string::npos)
      << answer.status().message();
}

TEST(ControlClientTest, InvalidUtf8InARequestIsAStatusNotAnException) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  Result<Answer> answer = client->Call("plan", {{"text", std::string("\xff\xfe")}});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().error_number(), EINVAL);
}

TEST(ControlClientTest, ReadLineAndSendLineWorkLineByLine) {
  FakeNetd netd([](const std::string& line) { return FakeReply{"echo " + line + "\n"}; });
  Result<ControlClient> client = ControlClient::Connect(Options(netd.path()));
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->SendLine("ping").ok());
  Result<std::string> line = client->ReadLine();
  ASSERT_TRUE(line.ok()) << line.status().message();
  EXPECT_EQ(*line, "echo ping");
}

}  // namespace
}  // namespace vfabric::netctl
