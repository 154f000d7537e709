// netctl's guest verbs: vm list/start/stop/console-log, attach, detach
// (docs/control-protocol.md, "Guests (vmm)"), against the fake netd.
#include <gtest/gtest.h>

#include <sstream>

#include "fake_netd.h"
#include "run_netctl.h"
#include "vfabric/netctl/cli.h"
#include "vfabric/netctl/format.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::ErrorReply;
using testing::FakeNetd;
using testing::OkReply;

using Output = testing::NetctlOutput;

Output RunNetctl(std::vector<std::string> args, const std::string& socket) {
  // First, so that an option at the end ("--bytes") finds nothing after it.
  args.insert(args.begin(), {"--socket", socket});
  return testing::RunNetctl(args);
}

json Nic(const std::string& id, const std::string& network, const std::string& port,
         const std::string& mac) {
  return {{"id", id}, {"network", network}, {"port", port}, {"mac", mac}};
}

json RunningVm() {
  return {{"name", "vm1"},
          {"state", "running"},
          {"pid", 4242},
          {"accel", "kvm"},
          {"accel_reason", ""},
          {"restart", "on-failure"},
          {"restarts", 0},
          {"last_exit", ""},
          {"error", ""},
          {"console_log", "/run/vfabric/vm/vm1/console.log"},
          {"nics",
           {Nic("nic0", "lab", "vm1-eth0", "52:54:00:00:01:00"),
            Nic("nic1", "lab", "vm1-eth1", "52:54:00:00:01:01")}}};
}

json FailedVm() {
  return {{"name", "db"},
          {"state", "failed"},
          {"pid", nullptr},
          {"accel", "tcg"},
          {"restart", "always"},
          {"restarts", 3},
          {"last_exit", "exited with status 1"},
          {"error", "qemu exited with status 1: no bootable device"},
          {"nics", json::array()}};
}

// --- the table and lines ---

TEST(VmFormatTest, ListTable) {
  json stopped = {{"name", "old"},
                  {"state", "stopped"},
                  {"pid", nullptr},
                  {"accel", nullptr},
                  {"restart", "no"},
                  {"restarts", 0},
                  {"last_exit", "exited with status 0"},
                  {"error", ""},
                  {"nics", {Nic("nic0", "wan", "old-eth0", "52:54:00:00:02:00")}}};
  EXPECT_EQ(FormatVmList({{"vms", {RunningVm(), FailedVm(), stopped}}}),
            "NAME  STATE    PID   ACCEL  RESTART     NICS                                 "
            "LAST-EXIT             ERROR\n"
            "vm1   running  4242  kvm    on-failure  nic0:lab/vm1-eth0,nic1:lab/vm1-eth1  -"
            "                     -\n"
            "db    failed   -     tcg    always(3)   -                                    "
            "exited with status 1  qemu exited with status 1: no bootable device\n"
            "old   stopped  -     -      no          nic0:wan/old-eth0                    "
            "exited with status 0  -\n");
}

// A guest taken over by a restarted netd says so in the table.
TEST(VmFormatTest, ListMarksAdoptedGuests) {
  json adopted = RunningVm();
  adopted["adopted"] = true;
  adopted["nics"] = json::array();
  EXPECT_EQ(FormatVmList({{"vms", {adopted}}}),
            "NAME  STATE              PID   ACCEL  RESTART     NICS  LAST-EXIT  ERROR\n"
            "vm1   running (adopted)  4242  kvm    on-failure  -     -          -\n");
}

TEST(VmFormatTest, ListEmptyIsTheHeader) {
  EXPECT_EQ(FormatVmList({{"vms", json::array()}}),
            "NAME  STATE  PID  ACCEL  RESTART  NICS  LAST-EXIT  ERROR\n");
  EXPECT_EQ(FormatVmList(json::object()),
            "NAME  STATE  PID  ACCEL  RESTART  NICS  LAST-EXIT  ERROR\n");
}

TEST(VmFormatTest, ListToleratesMissingAndOddFields) {
  // Only a name; a NIC without a port; an unknown field.
  json vms = {{"vms",
               {{{"name", "bare"}},
                {{"name", "odd"},
                 {"state", "restart-wait"},
                 {"restarts", "many"},
                 {"nics", {{{"id", "nic0"}, {"network", "lab"}}}},
                 {"future", true}}}}};
  EXPECT_EQ(FormatVmList(vms),
            "NAME  STATE         PID  ACCEL  RESTART  NICS        LAST-EXIT  ERROR\n"
            "bare  -             -    -      -        -           -          -\n"
            "odd   restart-wait  -    -      -        nic0:lab/-  -          -\n");
}

TEST(VmFormatTest, LiveGuestsHideAStaleError) {
  json vm = RunningVm();
  vm["last_exit"] = "killed by signal 9 (Killed)";
  vm["error"] = "qemu killed by signal 9 (Killed)";
  vm["restarts"] = 1;
  std::string table = FormatVmList({{"vms", {vm}}});
  EXPECT_EQ(table.find("signal"), std::string::npos) << table;
  EXPECT_NE(table.find("on-failure(1)"), std::string::npos) << table;
  EXPECT_EQ(FormatVmStart({{"vm", vm}}), "vm1: running (kvm)\n");
}

TEST(VmFormatTest, StartAndStopLines) {
  json vm = RunningVm();
  vm["state"] = "starting";
  vm["accel"] = "tcg";
  EXPECT_EQ(FormatVmStart({{"vm", vm}}), "vm1: starting (tcg)\n");
  vm["accel"] = nullptr;
  EXPECT_EQ(FormatVmStart({{"vm", vm}}), "vm1: starting\n");
  vm["state"] = "stopping";
  EXPECT_EQ(FormatVmStop({{"vm", vm}}), "vm1: stopping\n");
  EXPECT_EQ(FormatVmStart({{"vm", FailedVm()}}),
            "db: failed (tcg): qemu exited with status 1: no bootable device\n");
  EXPECT_EQ(FormatVmStop(json::object()), "-: -\n");
}

TEST(VmFormatTest, ConsoleLogIsVerbatim) {
  EXPECT_EQ(FormatConsoleLog({{"name", "vm1"},
                              {"path", "/x/console.log"},
                              {"text", "Linux version 6.1\r\nlogin: "},
                              {"truncated", true}}),
            "Linux version 6.1\r\nlogin: ");
  EXPECT_EQ(FormatConsoleLog({{"text", ""}}), "");
  EXPECT_EQ(FormatConsoleLog(json::object()), "");
}

TEST(VmFormatTest, AttachAndDetachLines) {
  EXPECT_EQ(FormatAttach({{"vm", RunningVm()},
                          {"nic", Nic("nic1", "lab", "vm1-eth1", "52:54:00:00:01:01")}}),
            "attached NIC nic1 (port vm1-eth1, mac 52:54:00:00:01:01) to network lab\n");
  EXPECT_EQ(FormatAttach(json::object()), "attached NIC - (port -, mac -) to network -\n");
  EXPECT_EQ(FormatDetach({{"vm", RunningVm()}}, "vm1", "nic1"), "detached nic1 from vm1\n");
  EXPECT_EQ(FormatDetach(json::object(), "vm1", "vm1-eth1"), "detached vm1-eth1 from vm1\n");
}

// --- requests ---

TEST(VmRunTest, EachVerbSendsItsRequest) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  struct Case {
    std::vector<std::string> args;
    std::string verb;
    json args_json;  // null: no "args" member
  };
  const Case cases[] = {
      {{"vm", "list"}, "vm.list", nullptr},
      {{"vm", "start", "vm1"}, "vm.start", {{"name", "vm1"}}},
      {{"vm", "stop", "vm1"}, "vm.stop", {{"name", "vm1"}}},
      {{"vm", "console-log", "vm1"}, "vm.console-log", {{"name", "vm1"}}},
      {{"vm", "console-log", "vm1", "--bytes", "4096"},
       "vm.console-log",
       {{"name", "vm1"}, {"bytes", 4096}}},
      {{"vm", "console-log", "--bytes=1", "vm1"},
       "vm.console-log",
       {{"name", "vm1"}, {"bytes", 1}}},
      {{"attach", "vm1", "lab"}, "attach", {{"vm", "vm1"}, {"network", "lab"}}},
      {{"attach", "vm1", "lab", "--mac", "52:54:00:AB:cd:01", "--vlan", "10"},
       "attach",
       {{"vm", "vm1"}, {"network", "lab"}, {"mac", "52:54:00:ab:cd:01"}, {"vlan", 10}}},
      {{"attach", "--vlan=4094", "vm1", "lab"},
       "attach",
       {{"vm", "vm1"}, {"network", "lab"}, {"vlan", 4094}}},
      {{"detach", "vm1", "nic1"}, "detach", {{"vm", "vm1"}, {"nic", "nic1"}}},
      {{"detach", "vm1", "vm1-eth1"}, "detach", {{"vm", "vm1"}, {"nic", "vm1-eth1"}}},
  };
  for (const Case& c : cases) {
    Output result = RunNetctl(c.args, netd.path());
    EXPECT_EQ(result.code, 0) << c.verb << ": " << result.err;
    json request = netd.last_request();
    EXPECT_EQ(request["verb"], c.verb);
    EXPECT_EQ(request["version"], 1);
    if (c.args_json.is_null()) {
      EXPECT_FALSE(request.contains("args")) << request.dump();
    } else {
      EXPECT_EQ(request["args"], c.args_json) << request.dump();
    }
  }
  EXPECT_EQ(netd.requests().size(), std::size(cases));
}

// attach --backend: sent as "backend"; anything but tap or vhost-user is a
// usage error that sends nothing.
TEST(VmRunTest, AttachBackend) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  Output vu = RunNetctl({"attach", "vm1", "us", "--backend", "vhost-user"}, netd.path());
  EXPECT_EQ(vu.code, 0) << vu.err;
  EXPECT_EQ(netd.last_request()["args"],
            json({{"vm", "vm1"}, {"network", "us"}, {"backend", "vhost-user"}}));
  Output tap = RunNetctl({"attach", "--backend=tap", "vm1", "us"}, netd.path());
  EXPECT_EQ(tap.code, 0) << tap.err;
  EXPECT_EQ(netd.last_request()["args"]["backend"], "tap");
  const size_t sent = netd.requests().size();
  Output bad = RunNetctl({"attach", "vm1", "us", "--backend", "virtio"}, netd.path());
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.err.rfind("netctl: attach: --backend 'virtio' is not a NIC backend (tap or "
                          "vhost-user)\n",
                          0),
            0u)
      << bad.err;
  Output other = RunNetctl({"detach", "vm1", "nic1", "--backend", "tap"}, netd.path());
  EXPECT_EQ(other.code, 2);
  EXPECT_EQ(netd.requests().size(), sent);
}

// --- output ---

TEST(VmRunTest, ListPrintsTheTable) {
  json result = {{"vms", {RunningVm()}}};
  FakeNetd netd([&](const std::string& line) { return OkReply(line, result); });
  Output output = RunNetctl({"vm", "list"}, netd.path());
  EXPECT_EQ(output.code, 0) << output.err;
  EXPECT_EQ(output.out,
            "NAME  STATE    PID   ACCEL  RESTART     NICS                                 "
            "LAST-EXIT  ERROR\n"
            "vm1   running  4242  kvm    on-failure  nic0:lab/vm1-eth0,nic1:lab/vm1-eth1  -"
            "          -\n");
  EXPECT_EQ(output.err, "");
}

TEST(VmRunTest, EachVerbPrintsItsText) {
  json starting = RunningVm();
  starting["state"] = "starting";
  starting["accel"] = "tcg";
  starting["pid"] = nullptr;
  json stopping = RunningVm();
  stopping["state"] = "stopping";
  json attached = RunningVm();
  FakeNetd netd([&](const std::string& line) {
    std::string verb = json::parse(line)["verb"];
    if (verb == "vm.start") return OkReply(line, {{"vm", starting}});
    if (verb == "vm.stop") return OkReply(line, {{"vm", stopping}});
    if (verb == "vm.console-log") {
      return OkReply(line, {{"name", "vm1"},
                            {"path", "/run/vfabric/vm/vm1/console.log"},
                            {"text", "[    0.000000] Linux version 6.1\nlogin: "},
                            {"truncated", false}});
    }
    if (verb == "attach") {
      return OkReply(line, {{"vm", attached}, {"nic", attached["nics"][1]}});
    }
    if (verb == "detach") return OkReply(line, {{"vm", RunningVm()}});
    return ErrorReply(line, {{"code", "unknown_verb"}, {"message", "?"}});
  });
  struct Case {
    std::vector<std::string> args;
    std::string out;
  };
  const Case cases[] = {
      {{"vm", "start", "vm1"}, "vm1: starting (tcg)\n"},
      {{"vm", "stop", "vm1"}, "vm1: stopping\n"},
      {{"vm", "console-log", "vm1"}, "[    0.000000] Linux version 6.1\nlogin: "},
      {{"attach", "vm1", "lab"},
       "attached NIC nic1 (port vm1-eth1, mac 52:54:00:00:01:01) to network lab\n"},
      {{"detach", "vm1", "nic1"}, "detached nic1 from vm1\n"},
  };
  for (const Case& c : cases) {
    Output output = RunNetctl(c.args, netd.path());
    EXPECT_EQ(output.code, 0) << c.args[0] << ": " << output.err;
    EXPECT_EQ(output.out, c.out);
    EXPECT_EQ(output.err, "");
  }
}

TEST(VmRunTest, JsonPrintsTheResult) {
  json list = {{"vms", {RunningVm(), FailedVm()}}};
  json log = {{"name", "vm1"}, {"path", "/p"}, {"text", "a\nb"}, {"truncated", true}};
  json attach = {{"vm", RunningVm()}, {"nic", RunningVm()["nics"][0]}};
  FakeNetd netd([&](const std::string& line) {
    std::string verb = json::parse(line)["verb"];
    if (verb == "vm.list") return OkReply(line, list);
    if (verb == "vm.console-log") return OkReply(line, log);
    if (verb == "attach") return OkReply(line, attach);
    return OkReply(line, {{"vm", RunningVm()}});
  });
  EXPECT_EQ(RunNetctl({"vm", "list", "--json"}, netd.path()).out, list.dump(2) + "\n");
  EXPECT_EQ(RunNetctl({"--json", "vm", "console-log", "vm1"}, netd.path()).out, log.dump(2) + "\n");
  EXPECT_EQ(RunNetctl({"attach", "vm1", "lab", "--json"}, netd.path()).out, attach.dump(2) + "\n");
  json vm = {{"vm", RunningVm()}};
  for (const char* sub : {"start", "stop"}) {
    Output output = RunNetctl({"vm", sub, "vm1", "--json"}, netd.path());
    EXPECT_EQ(output.code, 0) << output.err;
    EXPECT_EQ(output.out, vm.dump(2) + "\n");
  }
  EXPECT_EQ(RunNetctl({"detach", "vm1", "nic0", "--json"}, netd.path()).out, vm.dump(2) + "\n");
}

TEST(VmRunTest, ARejectedRequestExitsOneWithTheMessage) {
  json error = {{"code", "not_found"}, {"message", "no guest named \"vm9\""}};
  FakeNetd netd([&](const std::string& line) { return ErrorReply(line, error); });
  for (const auto& args : std::vector<std::vector<std::string>>{{"vm", "list"},
                                                                {"vm", "start", "vm9"},
                                                                {"vm", "stop", "vm9"},
                                                                {"vm", "console-log", "vm9"},
                                                                {"attach", "vm9", "lab"},
                                                                {"detach", "vm9", "nic0"}}) {
    Output output = RunNetctl(args, netd.path());
    EXPECT_EQ(output.code, 1) << args[0];
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, "netctl: no guest named \"vm9\"\n");
    std::vector<std::string> with_json = args;
    with_json.push_back("--json");
    Output as_json = RunNetctl(with_json, netd.path());
    EXPECT_EQ(as_json.code, 1);
    EXPECT_EQ(as_json.out, error.dump(2) + "\n");
    EXPECT_EQ(as_json.err, "netctl: no guest named \"vm9\"\n");
  }
}

// --- usage errors: exit 2, nothing sent ---

TEST(VmRunTest, UsageErrorsExitTwoAndSendNothing) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, json::object()); });
  const std::string vm_hint =
      "Usage: netctl vm list | netctl vm start NAME | netctl vm stop NAME | "
      "netctl vm console-log NAME [--bytes N] (see 'netctl help vm')\n";
  const std::string attach_hint =
      "Usage: netctl attach VM NETWORK [--mac MAC] [--vlan VID] (see 'netctl help attach')\n";
  const std::string detach_hint = "Usage: netctl detach VM NIC (see 'netctl help detach')\n";
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const Case cases[] = {
      {{"vm"}, "netctl: vm: missing sub-command (list, start, stop, console-log)\n" + vm_hint},
      {{"vm", "reboot", "vm1"},
       "netctl: vm: unknown sub-command 'reboot' (list, start, stop, console-log)\n" + vm_hint},
      {{"vm", "list", "vm1"}, "netctl: vm list: unexpected argument 'vm1'\n" + vm_hint},
      {{"vm", "start"}, "netctl: vm start: missing NAME\n" + vm_hint},
      {{"vm", "stop"}, "netctl: vm stop: missing NAME\n" + vm_hint},
      {{"vm", "stop", "a", "b"}, "netctl: vm stop: unexpected argument 'b'\n" + vm_hint},
      {{"vm", "console-log"}, "netctl: vm console-log: missing NAME\n" + vm_hint},
      {{"vm", "console-log", "vm1", "--bytes", "0"},
       "netctl: vm console-log: --bytes '0' is not a positive integer\n" + vm_hint},
      {{"vm", "console-log", "vm1", "--bytes", "-5"},
       "netctl: vm console-log: --bytes '-5' is not a positive integer\n" + vm_hint},
      {{"vm", "console-log", "vm1", "--bytes=1k"},
       "netctl: vm console-log: --bytes '1k' is not a positive integer\n" + vm_hint},
      {{"vm", "console-log", "vm1", "--bytes", "99999999999999999999"},
       "netctl: vm console-log: --bytes '99999999999999999999' is not a positive integer\n" +
           vm_hint},
      {{"vm", "console-log", "vm1", "--bytes"},
       "netctl: option '--bytes' needs N\nTry 'netctl --help'.\n"},
      {{"vm", "start", "vm1", "--bytes", "10"},
       "netctl: vm start: unknown option '--bytes'\n" + vm_hint},
      {{"attach"}, "netctl: attach: missing VM NETWORK\n" + attach_hint},
      {{"attach", "vm1"}, "netctl: attach: missing NETWORK\n" + attach_hint},
      {{"attach", "vm1", "lab", "x"}, "netctl: attach: unexpected argument 'x'\n" + attach_hint},
      {{"attach", "vm1", "lab", "--mac", "52:54:00:00:01"},
       "netctl: attach: --mac '52:54:00:00:01' is not a MAC address (six hex pairs, like "
       "52:54:00:12:34:56)\n" +
           attach_hint},
      {{"attach", "vm1", "lab", "--mac", "01:00:5e:00:00:01"},
       "netctl: attach: --mac 01:00:5e:00:00:01 is not a unicast address\n" + attach_hint},
      {{"attach", "vm1", "lab", "--mac", "ff:ff:ff:ff:ff:ff"},
       "netctl: attach: --mac ff:ff:ff:ff:ff:ff is not a unicast address\n" + attach_hint},
      {{"attach", "vm1", "lab", "--mac", "00:00:00:00:00:00"},
       "netctl: attach: --mac 00:00:00:00:00:00 is not a unicast address\n" + attach_hint},
      {{"attach", "vm1", "lab", "--mac"},
       "netctl: option '--mac' needs a MAC\nTry 'netctl --help'.\n"},
      {{"attach", "vm1", "lab", "--vlan", "0"},
       "netctl: attach: --vlan '0' is not a VLAN id (1..4094)\n" + attach_hint},
      {{"attach", "vm1", "lab", "--vlan", "4095"},
       "netctl: attach: --vlan '4095' is not a VLAN id (1..4094)\n" + attach_hint},
      {{"attach", "vm1", "lab", "--vlan=ten"},
       "netctl: attach: --vlan 'ten' is not a VLAN id (1..4094)\n" + attach_hint},
      {{"attach", "vm1", "lab", "--vlan"},
       "netctl: option '--vlan' needs a VID\nTry 'netctl --help'.\n"},
      {{"detach"}, "netctl: detach: missing VM NIC\n" + detach_hint},
      {{"detach", "vm1"}, "netctl: detach: missing NIC\n" + detach_hint},
      {{"detach", "vm1", "nic1", "--vlan", "5"},
       "netctl: detach: unknown option '--vlan'\n" + detach_hint},
      {{"network", "list", "--mac", "52:54:00:00:00:01"},
       "netctl: network list: unknown option '--mac'\n"
       "Usage: netctl network list | netctl network show NAME | netctl network delete NAME "
       "(see 'netctl help network')\n"},
  };
  for (const Case& c : cases) {
    Output output = RunNetctl(c.args, netd.path());
    EXPECT_EQ(output.code, 2) << c.err;
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, c.err);
  }
  EXPECT_TRUE(netd.requests().empty());
}

// --- help ---

TEST(VmRunTest, Help) {
  for (const char* command : {"vm", "attach", "detach"}) {
    Output help = RunNetctl({"help", command}, "/nonexistent.sock");
    Output dash_help = RunNetctl({command, "--help"}, "/nonexistent.sock");
    Output dash_h = RunNetctl({command, "-h"}, "/nonexistent.sock");
    EXPECT_EQ(help.code, 0);
    EXPECT_EQ(help.out, HelpText(command));
    EXPECT_EQ(dash_help.out, help.out);
    EXPECT_EQ(dash_h.out, help.out);
    EXPECT_NE(HelpText("").find(std::string("  ") + command + " "), std::string::npos) << command;
  }
  EXPECT_EQ(HelpText("vm").rfind("Usage:\n"
                                 "  netctl vm list [OPTIONS]\n"
                                 "  netctl vm start NAME [OPTIONS]\n"
                                 "  netctl vm stop NAME [OPTIONS]\n"
                                 "  netctl vm console-log NAME [--bytes N] [OPTIONS]\n\n",
                                 0),
            0u)
      << HelpText("vm");
  EXPECT_EQ(HelpText("attach").rfind(
                "Usage:\n  netctl attach VM NETWORK [--mac MAC] [--vlan VID] [OPTIONS]\n\n", 0),
            0u);
  EXPECT_EQ(HelpText("detach").rfind("Usage:\n  netctl detach VM NIC [OPTIONS]\n\n", 0), 0u);
  // Help needs no operands, and a bad option value is not checked for it.
  EXPECT_EQ(RunNetctl({"attach", "-h", "--vlan", "0"}, "/nonexistent.sock").code, 0);
  EXPECT_EQ(RunNetctl({"vm", "console-log", "--help"}, "/nonexistent.sock").out, HelpText("vm"));
}

}  // namespace
}  // namespace vfabric::netctl
