#include "vfabric/netctl/cli.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <sstream>

#include "fake_netd.h"
#include "run_netctl.h"
#include "vfabric/protocol/protocol.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::ErrorReply;
using testing::FakeNetd;
using testing::FakeReply;
using testing::OkReply;

using Output = testing::NetctlOutput;
using testing::RunNetctl;

CommandLine Parse(const std::vector<std::string>& args) {
  CommandLine cl;
  UsageError error;
  EXPECT_TRUE(ParseCommandLine(args, "/default.sock", &cl, &error)) << error.message;
  return cl;
}

UsageError ParseError(const std::vector<std::string>& args) {
  CommandLine cl;
  UsageError error;
  EXPECT_FALSE(ParseCommandLine(args, "/default.sock", &cl, &error));
  return error;
}

// --- parsing ---

TEST(ParseTest, VerbSubAndOperands) {
  CommandLine cl = Parse({"fdb", "show", "lab"});
  EXPECT_EQ(cl.command, "fdb");
  EXPECT_EQ(cl.sub, "show");
  EXPECT_EQ(cl.operands, std::vector<std::string>{"lab"});
  EXPECT_EQ(cl.socket_path, "/default.sock");
  EXPECT_FALSE(cl.json);
  EXPECT_EQ(cl.timeout, std::chrono::seconds(10));
}

TEST(ParseTest, OptionsBeforeAndAfterTheVerb) {
  CommandLine before = Parse({"--json", "--socket", "/s.sock", "--timeout", "2.5", "port", "list"});
  CommandLine after = Parse({"port", "list", "--json", "--socket=/s.sock", "--timeout=2.5"});
  CommandLine between =
      Parse({"port", "--json", "list", "--socket", "/s.sock", "--timeout", "2.5"});
  for (const CommandLine* cl : {&before, &after, &between}) {
    EXPECT_EQ(cl->command, "port");
    EXPECT_EQ(cl->sub, "list");
    EXPECT_TRUE(cl->operands.empty());
    EXPECT_TRUE(cl->json);
    EXPECT_EQ(cl->socket_path, "/s.sock");
    EXPECT_EQ(cl->timeout, std::chrono::milliseconds(2500));
  }
}

TEST(ParseTest, OptionalAndRepeatedOperands) {
  EXPECT_EQ(Parse({"port", "list", "lab"}).operands, std::vector<std::string>{"lab"});
  EXPECT_EQ(Parse({"validate", "a.json", "b.json", "--json"}).operands,
            (std::vector<std::string>{"a.json", "b.json"}));
  // After "--", a name that looks like an option is an operand.
  EXPECT_EQ(Parse({"network", "show", "--", "-odd"}).operands, std::vector<std::string>{"-odd"});
}

TEST(ParseTest, HelpForms) {
  EXPECT_TRUE(Parse({"--help"}).help);
  EXPECT_TRUE(Parse({"-h"}).help);
  CommandLine help_fdb = Parse({"help", "fdb"});
  EXPECT_TRUE(help_fdb.help);
  EXPECT_EQ(help_fdb.command, "fdb");
  CommandLine fdb_help = Parse({"fdb", "--help"});
  EXPECT_TRUE(fdb_help.help);
  EXPECT_EQ(fdb_help.command, "fdb");
  EXPECT_TRUE(Parse({"fdb", "show", "-h"}).help);  // help needs no operands
  EXPECT_TRUE(Parse({"--version"}).version);
  CommandLine help_help = Parse({"help", "help"});
  EXPECT_TRUE(help_help.help);
  EXPECT_EQ(help_help.command, "");
}

TEST(ParseTest, UsageErrors) {
  EXPECT_EQ(ParseError({}).message, "missing command");
  EXPECT_EQ(ParseError({"frobnicate"}).message, "unknown command 'frobnicate'");
  EXPECT_EQ(ParseError({"frobnicate"}).hint, "Try 'netctl --help'.");
  EXPECT_EQ(ParseError({"network", "list", "--frob"}).message, "unknown option '--frob'");
  EXPECT_EQ(ParseError({"network", "list", "-x"}).message, "unknown option '-x'");
  // `network delete` (issue 18) joined list and show.
  EXPECT_EQ(ParseError({"network"}).message, "network: missing sub-command (list, show, delete)");
  EXPECT_EQ(ParseError({"network"}).hint,
            "Usage: netctl network list | netctl network show NAME | netctl network delete NAME "
            "(see 'netctl help network')");
  EXPECT_EQ(ParseError({"network", "destroy"}).message,
            "network: unknown sub-command 'destroy' (list, show, delete)");
  EXPECT_EQ(ParseError({"network", "delete"}).message, "network delete: missing NAME");
  EXPECT_EQ(ParseError({"stp", "show"}).message, "stp show: missing NETWORK");
  EXPECT_EQ(ParseError({"stp", "show"}).hint,
            "Usage: netctl stp show NETWORK (see 'netctl help stp')");
  EXPECT_EQ(ParseError({"network", "show"}).message, "network show: missing NAME");
  EXPECT_EQ(ParseError({"network", "list", "extra"}).message,
            "network list: unexpected argument 'extra'");
  EXPECT_EQ(ParseError({"port", "list", "a", "b"}).message, "port list: unexpected argument 'b'");
  EXPECT_EQ(ParseError({"validate"}).message, "validate: missing FILE");
  EXPECT_EQ(ParseError({"plan"}).message, "plan: missing FILE");
  EXPECT_EQ(ParseError({"network", "list", "--socket"}).message, "option '--socket' needs a PATH");
  EXPECT_EQ(ParseError({"network", "list", "--timeout", "soon"}).message,
            "option '--timeout': 'soon' is not a number of seconds (0 < SECONDS <= 86400)");
  EXPECT_EQ(ParseError({"network", "list", "--timeout", "0"}).message,
            "option '--timeout': '0' is not a number of seconds (0 < SECONDS <= 86400)");
  EXPECT_EQ(ParseError({"help", "bogus"}).message, "unknown command 'bogus'");
}

// --- Run: usage, help, version ---

TEST(RunTest, UsageErrorsExitTwoWithOneLineAndAHint) {
  Output result = RunNetctl({"stp", "show"});
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err,
            "netctl: stp show: missing NETWORK\n"
            "Usage: netctl stp show NETWORK (see 'netctl help stp')\n");
  result = RunNetctl({"--bogus", "network", "list"});
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(result.err, "netctl: unknown option '--bogus'\nTry 'netctl --help'.\n");
  EXPECT_EQ(RunNetctl({}).code, 2);
}

TEST(RunTest, HelpGoesToStdoutAndExitsZero) {
  Output global = RunNetctl({"--help"});
  EXPECT_EQ(global.code, 0);
  EXPECT_EQ(global.out, HelpText(""));
  EXPECT_NE(global.out.find("Usage: netctl [OPTIONS] COMMAND [ARGS...]"), std::string::npos);
  Output help_fdb = RunNetctl({"help", "fdb"});
  Output fdb_help = RunNetctl({"fdb", "--help"});
  EXPECT_EQ(help_fdb.code, 0);
  EXPECT_EQ(help_fdb.out, fdb_help.out);
  EXPECT_EQ(help_fdb.out.rfind("Usage:\n  netctl fdb show NETWORK [OPTIONS]\n", 0), 0u)
      << help_fdb.out;
  for (const char* command :
       {"validate", "plan", "apply", "network", "port", "fdb", "stp", "vlan"}) {
    EXPECT_FALSE(HelpText(command).empty()) << command;
    EXPECT_NE(HelpText("").find(std::string("  ") + command + " "), std::string::npos) << command;
  }
}

TEST(RunTest, Version) {
  Output result = RunNetctl({"--version"});
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(result.out.rfind("netctl ", 0), 0u);
  EXPECT_NE(result.out.find("(control protocol 1)"), std::string::npos);
}

// --- Run against a fake netd ---

TEST(RunTest, CannotConnectExitsOneWithAHint) {
  vfabric::testing::TempDir dir;
  std::string path = dir.Join("netd.sock");
  Output result = RunNetctl({"network", "list", "--socket", path});
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "netctl: cannot connect to " + path +
                            ": No such file or directory (is netd running?)\n");
}

TEST(RunTest, TheDefaultSocketIsUsedWithoutSocketOption) {
  Output result = RunNetctl({"network", "list"}, "/nonexistent/vfabric/netd.sock");
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "netctl: cannot connect to /nonexistent/vfabric/netd.sock: No such file or directory "
            "(is netd running?)\n");
}

TEST(RunTest, MainTakesTheSocketFromTheEnvironment) {
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"entries", json::array()}});
  });
  ASSERT_EQ(setenv("VFABRIC_SOCKET", netd.path().c_str(), 1), 0);
  std::vector<std::string> args = {"netctl", "fdb", "show", "lab"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  std::ostringstream out, err;
  int code = Main(static_cast<int>(argv.size()), argv.data(), out, err);
  unsetenv("VFABRIC_SOCKET");
  EXPECT_EQ(code, 0) << err.str();
  EXPECT_EQ(out.str(), "MAC  VLAN  PORT  FLAGS\n");
  EXPECT_EQ(netd.last_request()["verb"], "fdb.show");
}

TEST(RunTest, AnOutputStreamThatFailsIsAnError) {
  std::ostringstream out, err;
  out.setstate(std::ios::badbit);
  EXPECT_EQ(netctl::Run({"--version"}, "/nonexistent.sock", out, err), 1);
  EXPECT_EQ(err.str(), "netctl: cannot write the output\n");
}

TEST(RunTest, CannotConnectWithJsonPrintsAnErrorObject) {
  Output result = RunNetctl({"--json", "network", "list"}, "/nonexistent/netd.sock");
  EXPECT_EQ(result.code, 1);
  json error = json::parse(result.out);
  EXPECT_EQ(error["code"], "unreachable");
  EXPECT_EQ(
      error["message"],
      "cannot connect to /nonexistent/netd.sock: No such file or directory (is netd running?)");
}

TEST(RunTest, NetworkListPrintsATable) {
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"networks",
                           {{{"name", "lab"},
                             {"datapath", "kernel"},
                             {"bridge", "vfb-lab"},
                             {"state", "ok"},
                             {"ports", 2},
                             {"ports_up", 2},
                             {"stp", true}}}}});
  });
  Output result = RunNetctl({"network", "list"}, netd.path());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "NAME  DATAPATH  BRIDGE   STATE  PORTS  STP\n"
            "lab   kernel    vfb-lab  ok     2/2    on\n");
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(netd.last_request()["verb"], "network.list");
}

TEST(RunTest, JsonPrintsTheResultExactly) {
  json networks = {{"networks", {{{"name", "lab"}, {"extra", {1, 2}}}}}};
  FakeNetd netd([&](const std::string& line) { return OkReply(line, networks); });
  Output result = RunNetctl({"network", "list", "--json", "--socket", netd.path()});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, networks.dump(2) + "\n");
}

TEST(RunTest, VerbsMapToProtocolVerbsAndArgs) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  struct Case {
    std::vector<std::string> args;
    std::string verb;
    json args_json;
  };
  const Case cases[] = {
      {{"network", "show", "lab"}, "network.show", {{"name", "lab"}}},
      {{"port", "list"}, "port.list", json::object()},
      {{"port", "list", "lab"}, "port.list", {{"network", "lab"}}},
      {{"fdb", "show", "lab"}, "fdb.show", {{"network", "lab"}}},
      {{"stp", "show", "lab"}, "stp.show", {{"network", "lab"}}},
      {{"vlan", "show", "lab"}, "vlan.show", {{"network", "lab"}}},
  };
  for (const Case& c : cases) {
    Output result = RunNetctl(c.args, netd.path());
    EXPECT_EQ(result.code, 0) << c.verb << ": " << result.err;
    json request = netd.last_request();
    EXPECT_EQ(request["verb"], c.verb);
    EXPECT_EQ(request["version"], 1);
    EXPECT_EQ(request.value("args", json::object()), c.args_json) << c.verb;
  }
}

TEST(RunTest, NotFoundExitsOneWithTheMessage) {
  json error = {{"code", "not_found"}, {"message", "no network named \"lab2\""}};
  FakeNetd netd([&](const std::string& line) { return ErrorReply(line, error); });
  Output result = RunNetctl({"fdb", "show", "lab2"}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "netctl: no network named \"lab2\"\n");

  Output as_json = RunNetctl({"fdb", "show", "lab2", "--json"}, netd.path());
  EXPECT_EQ(as_json.code, 1);
  EXPECT_EQ(as_json.out, error.dump(2) + "\n");
  EXPECT_EQ(as_json.err, "netctl: no network named \"lab2\"\n");
}

TEST(RunTest, PlanSendsTheFilesAndPrintsOperations) {
  vfabric::testing::TempDir dir;
  std::string file = dir.Join("lab.json");
  vfabric::testing::WriteFile(file, "{\"networks\": []}\n");
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"operations",
                           {{{"op", "create_bridge"},
                             {"object", "vfb-lab"},
                             {"description", "create bridge vfb-lab"}}}}});
  });
  Output result = RunNetctl({"plan", file, "--socket", netd.path()});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "create bridge vfb-lab\n");
  json request = netd.last_request();
  EXPECT_EQ(request["verb"], "plan");
  EXPECT_EQ(request["args"],
            json({{"files", {{{"name", file}, {"text", "{\"networks\": []}\n"}}}}}));
}

TEST(RunTest, ApplyReadsADirectoryInNameOrder) {
  vfabric::testing::TempDir dir;
  vfabric::testing::WriteFile(dir.Join("b.json"), "B");
  vfabric::testing::WriteFile(dir.Join("a.json"), "A");
  vfabric::testing::WriteFile(dir.Join("notes.txt"), "ignored");
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"operations", json::array()}, {"changed", 0}});
  });
  Output result = RunNetctl({"apply", dir.path()}, netd.path());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "no changes\n");
  json request = netd.last_request();
  EXPECT_EQ(request["verb"], "apply");
  EXPECT_EQ(request["args"], json({{"files",
                                    {{{"name", dir.Join("a.json")}, {"text", "A"}},
                                     {{"name", dir.Join("b.json")}, {"text", "B"}}}}}));
}

TEST(RunTest, AnUnreadableFileFailsBeforeConnecting) {
  vfabric::testing::TempDir dir;
  std::string file = dir.Join("absent.json");
  Output result = RunNetctl({"apply", file}, "/nonexistent/netd.sock");
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "netctl: " + file + ": cannot open: No such file or directory\n");
}

// plan/apply read files by the rule netd and `validate` use (the library's
// ReadTopologyFiles): every entry that cannot be read is named with its
// cause, nothing is sent, and a FIFO never blocks.
TEST(RunTest, ApplyReadsConfigEntriesByTheOneRule) {
  vfabric::testing::TempDir dir;
  vfabric::testing::WriteFile(dir.Join("a.json"), "A");
  vfabric::testing::WriteFile(dir.Join(".hidden.json"), "skipped");
  ASSERT_EQ(symlink("gone.json", dir.Join("b.json").c_str()), 0);
  ASSERT_EQ(mkdir(dir.Join("c.json").c_str(), 0755), 0);
  const std::string fifo = dir.Join("d.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  FakeNetd netd([](const std::string& line) {
    return OkReply(line, {{"operations", json::array()}, {"changed", 0}});
  });
  auto running = std::async(std::launch::async, [&] {
    return RunNetctl({"apply", dir.path()}, netd.path());
  });
  if (running.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // lets a blocked reader go
    if (fd >= 0) ::close(fd);
    ADD_FAILURE() << "netctl apply blocked on the FIFO " << fifo;
  }
  Output result = running.get();
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err,
            "netctl: " + dir.Join("b.json") +
                ": dangling symbolic link to \"gone.json\" (No such file or directory)\n"
                "netctl: " +
                dir.Join("c.json") + ": not a regular file (a directory)\n" + "netctl: " + fifo +
                ": not a regular file (a FIFO)\n");
  EXPECT_TRUE(netd.requests().empty());
}

TEST(RunTest, ApplyWithNothingToSendFails) {
  vfabric::testing::TempDir dir;
  vfabric::testing::WriteFile(dir.Join("notes.txt"), "ignored");
  Output result = RunNetctl({"apply", dir.path()}, "/nonexistent/netd.sock");
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "netctl: " + dir.path() + ": no *.json files in this directory\n");
}

TEST(RunTest, InvalidTopologyPrintsEachDiagnostic) {
  vfabric::testing::TempDir dir;
  std::string file = dir.Join("lab.json");
  vfabric::testing::WriteFile(file, "{}");
  json error = {{"code", "invalid"},
                {"message", "the topology has 2 errors"},
                {"diagnostics",
                 {{{"file", "lab.json"},
                   {"line", 3},
                   {"column", 17},
                   {"pointer", "/networks/0/bridge"},
                   {"message", "longer than 15 characters"}},
                  {{"file", "lab.json"},
                   {"line", 9},
                   {"column", 5},
                   {"pointer", "/networks/0/ports/1/name"},
                   {"message", "duplicate port name"}}}}};
  FakeNetd netd([&](const std::string& line) { return ErrorReply(line, error); });
  Output result = RunNetctl({"apply", file}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err,
            "lab.json:3:17: /networks/0/bridge: longer than 15 characters\n"
            "lab.json:9:5: /networks/0/ports/1/name: duplicate port name\n"
            "netctl: the topology has 2 errors\n");
}

TEST(RunTest, ATimeoutExitsOne) {
  FakeNetd netd([](const std::string&) { return FakeReply{}; });
  Output result = RunNetctl({"network", "list", "--timeout", "0.1"}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "netctl: " + netd.path() + ": no answer from netd within 0.1 s\n");
}

TEST(RunTest, GarbageExitsOne) {
  FakeNetd netd([](const std::string&) { return FakeReply{"<html>\n"}; });
  Output result = RunNetctl({"network", "list"}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "netctl: " + netd.path() + ": malformed answer from netd (not JSON)\n");
}

// Issue 18: operators see the command they typed, never a protocol verb: a
// netd older than netctl answers "unknown verb \"status\"".
TEST(RunTest, AnUnknownVerbNamesTheCommandNotTheVerb) {
  json error = {{"code", "unknown_verb"}, {"message", "unknown verb \"status\""}};
  FakeNetd netd([&](const std::string& line) { return ErrorReply(line, error); });
  Output result = RunNetctl({"status"}, netd.path());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "netctl: this netd does not know 'netctl status' (it is older than this "
            "netctl, " +
                std::string(protocol::ProjectVersion()) + ")\n");
  Output flush = RunNetctl({"fdb", "flush", "lab"}, netd.path());
  EXPECT_EQ(flush.err,
            "netctl: this netd does not know 'netctl fdb flush' (it is older than this "
            "netctl, " +
                std::string(protocol::ProjectVersion()) + ")\n");
}

// Issue 18: `netctl status` sends "status" and prints netd and its networks.
TEST(RunTest, StatusPrintsTheDaemonAndItsNetworks) {
  json status = {{"server", "netd"},
                 {"version", "0.1.0"},
                 {"protocol", 1},
                 {"pid", 42},
                 {"uptime_seconds", 3725},
                 {"config", {"/etc/vfabric/networks"}},
                 {"networks",
                  {{{"name", "lab"},
                    {"datapath", "kernel"},
                    {"state", "ok"},
                    {"pending", 0},
                    {"source", "/etc/vfabric/networks/lab.json"},
                    {"applied", false}},
                   {{"name", "guests"},
                    {"datapath", "kernel"},
                    {"state", "waiting"},
                    {"pending", 0},
                    {"waiting", {"vnet0"}},
                    {"source", "/tmp/g.json"},
                    {"applied", true}}}},
                 {"counts", {{"ok", 1}, {"drifted", 0}, {"missing", 0}, {"waiting", 1}}}};
  FakeNetd netd([&](const std::string& line) { return OkReply(line, status); });
  Output result = RunNetctl({"status"}, netd.path());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(netd.last_request()["verb"], "status");
  EXPECT_EQ(result.out,
            "netd:      0.1.0 (protocol 1)\n"
            "pid:       42\n"
            "uptime:    1h02m05s\n"
            "config:    /etc/vfabric/networks\n"
            "networks:  2 (1 ok, 1 waiting)\n"
            "\n"
            "NAME    DATAPATH  STATE            PENDING  SOURCE\n"
            "lab     kernel    ok               0        /etc/vfabric/networks/lab.json\n"
            "guests  kernel    waiting (vnet0)  0        applied: /tmp/g.json\n");
}

}  // namespace
}  // namespace vfabric::netctl
