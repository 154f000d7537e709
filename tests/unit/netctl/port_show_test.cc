// netctl port show: the request it sends, and how it prints netd's answer
// so that it can be pasted.
#include <gtest/gtest.h>

#include "fake_netd.h"
#include "run_netctl.h"
#include "vfabric/netctl/cli.h"
#include "vfabric/netctl/format.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;
using testing::FakeNetd;
using testing::OkReply;

using Output = testing::NetctlOutput;
using testing::RunNetctl;

const json kAnswer = {
    {"network", "u"},
    {"port", "u&'x"},
    {"kind", "tap"},
    {"datapath", "userspace"},
    {"vm", nullptr},
    {"mac", "52:54:00:00:00:01"},
    {"qemu",
     {"-netdev", "tap,id=net-vf-u__x,ifname=u&'x,script=no,downscript=no,vhost=off", "-device",
      "virtio-net-pci,id=vf-u__x,netdev=net-vf-u__x,mac=52:54:00:00:00:01"}},
    {"libvirt",
     "<interface type='ethernet'>\n  <target dev='u&amp;&apos;x' managed='no'/>\n"
     "</interface>\n"}};

TEST(PortShowTest, SendsPortShowWithTheForm) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, kAnswer); });
  struct Case {
    std::vector<std::string> args;
    json args_json;
  };
  const Case cases[] = {
      {{"port", "show", "u", "p"}, {{"network", "u"}, {"port", "p"}}},
      {{"port", "show", "u", "p", "--qemu"}, {{"network", "u"}, {"port", "p"}, {"guest", "qemu"}}},
      {{"--libvirt", "port", "show", "u", "p"},
       {{"network", "u"}, {"port", "p"}, {"guest", "libvirt"}}},
      {{"port", "show", "u", "p", "--qemu", "--qemu"},
       {{"network", "u"}, {"port", "p"}, {"guest", "qemu"}}},
  };
  for (const Case& c : cases) {
    Output result = RunNetctl(c.args, netd.path());
    EXPECT_EQ(result.code, 0) << result.err;
    json request = netd.last_request();
    EXPECT_EQ(request["verb"], "port.show");
    EXPECT_EQ(request.value("args", json::object()), c.args_json);
  }
}

TEST(PortShowTest, PrintsOnlyTheFormAskedFor) {
  FakeNetd netd([](const std::string& line) { return OkReply(line, kAnswer); });
  Output qemu = RunNetctl({"port", "show", "u", "u&'x", "--qemu"}, netd.path());
  EXPECT_EQ(qemu.out,
            "-netdev 'tap,id=net-vf-u__x,ifname=u&'\\''x,script=no,downscript=no,vhost=off' "
            "-device virtio-net-pci,id=vf-u__x,netdev=net-vf-u__x,mac=52:54:00:00:00:01\n");
  EXPECT_EQ(qemu.err, "");
  Output libvirt = RunNetctl({"port", "show", "u", "u&'x", "--libvirt"}, netd.path());
  EXPECT_EQ(libvirt.out, kAnswer["libvirt"].get<std::string>());
  Output json_out = RunNetctl({"port", "show", "u", "u&'x", "--libvirt", "-j"}, netd.path());
  EXPECT_EQ(json::parse(json_out.out), kAnswer);
}

TEST(PortShowTest, NotesAGuestNetdRuns) {
  json answer = kAnswer;
  answer["vm"] = "vm1";
  FakeNetd netd([&](const std::string& line) { return OkReply(line, answer); });
  Output qemu = RunNetctl({"port", "show", "u", "u&'x", "--qemu"}, netd.path());
  EXPECT_EQ(qemu.code, 0);
  EXPECT_EQ(
      qemu.err,
      "netctl: note: port u&'x is a NIC of vm vm1, which netd runs: its QEMU holds the tap\n");
}

TEST(PortShowTest, UsageErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {"port", "show", "u"},
      {"port", "show", "u", "p", "extra"},
      {"port", "show", "u", "p", "--qemu", "--libvirt"},
      {"port", "list", "--qemu"},
      {"network", "show", "u", "--libvirt"},
  };
  for (const auto& args : bad) {
    Output result = RunNetctl(args, "/nonexistent/netd.sock");
    EXPECT_EQ(result.code, 2) << args[0] << " " << args[1] << ": " << result.err;
  }
}

TEST(PortShowFormatTest, BothFormsOrWhyNone) {
  const std::string text = FormatPortShow(kAnswer, "");
  EXPECT_EQ(text,
            "network:  u\n"
            "port:     u&'x\n"
            "kind:     tap\n"
            "datapath: userspace\n"
            "vm:       -\n"
            "mac:      52:54:00:00:00:01\n"
            "\n"
            "QEMU:\n"
            "  -netdev 'tap,id=net-vf-u__x,ifname=u&'\\''x,script=no,downscript=no,vhost=off' "
            "-device virtio-net-pci,id=vf-u__x,netdev=net-vf-u__x,mac=52:54:00:00:00:01\n"
            "\n"
            "libvirt:\n"
            "  <interface type='ethernet'>\n"
            "    <target dev='u&amp;&apos;x' managed='no'/>\n"
            "  </interface>\n");
  json none = {{"network", "k"},
               {"port", "v"},
               {"kind", "veth"},
               {"datapath", "kernel"},
               {"guest_error", "network k: port v is a veth"}};
  EXPECT_NE(FormatPortShow(none, "").find("guest:    none (network k: port v is a veth)\n"),
            std::string::npos);
}

TEST(PortShowFormatTest, AVhostUserPortsSocketStateAndSharedMemory) {
  const json answer = {
      {"network", "vu"},
      {"port", "vu0"},
      {"kind", "vhost-user"},
      {"datapath", "userspace"},
      {"vm", nullptr},
      {"mac", nullptr},
      {"vhost_user",
       {{"socket", "/run/vfabric/vu0.sock"},
        {"mode", "server"},
        {"connected", true},
        {"up", false},
        {"counters", {{"connections", 1u}, {"kicks", 0u}, {"messages", 7u}}},
        {"shared_memory",
         {{"qemu", "-object memory-backend-memfd,id=mem,size=RAM,share=on"},
          {"libvirt", "<memoryBacking>\n  <access mode='shared'/>\n</memoryBacking>\n"}}}}},
      {"qemu", {"-chardev", "socket,id=chr-vf-vu0,path=/run/vfabric/vu0.sock,reconnect=1"}},
      {"libvirt", "<interface type='vhostuser'>\n</interface>\n"}};
  EXPECT_EQ(FormatPortShow(answer, ""),
            "network:  vu\n"
            "port:     vu0\n"
            "kind:     vhost-user\n"
            "datapath: userspace\n"
            "vm:       -\n"
            "mac:      -\n"
            "socket:   /run/vfabric/vu0.sock (netd is the server)\n"
            "state:    connected yes, rings up no\n"
            "counters: connections 1, messages 7\n"
            "\n"
            "QEMU:\n"
            "  -chardev socket,id=chr-vf-vu0,path=/run/vfabric/vu0.sock,reconnect=1\n"
            "\n"
            "libvirt:\n"
            "  <interface type='vhostuser'>\n"
            "  </interface>\n"
            "\n"
            "shared guest memory (needed by vhost-user; RAM: the guest's size):\n"
            "  QEMU:    -object memory-backend-memfd,id=mem,size=RAM,share=on\n"
            "  libvirt:\n"
            "    <memoryBacking>\n"
            "      <access mode='shared'/>\n"
            "    </memoryBacking>\n");
  // A client-mode port whose socket is not there yet says so.
  json waiting = answer;
  waiting["vhost_user"]["waiting"] = "no socket at /q/vu1.sock yet";
  waiting["vhost_user"].erase("counters");
  EXPECT_NE(FormatPortShow(waiting, "").find("state:    waiting: no socket at /q/vu1.sock yet\n"),
            std::string::npos);
  // --qemu and --libvirt print only what is pasted.
  EXPECT_EQ(FormatPortShow(answer, "qemu"),
            "-chardev socket,id=chr-vf-vu0,path=/run/vfabric/vu0.sock,reconnect=1\n");
}

TEST(PortShowFormatTest, AVhostUserPortsLibvirtDomainPart) {
  const json answer = {{"network", "vu"},
                       {"port", "vu0"},
                       {"kind", "vhost-user"},
                       {"vhost_user",
                        {{"socket", "/run/vu0.sock"},
                         {"mode", "server"},
                         {"libvirt_domain", "<memoryBacking>\n</memoryBacking>\n"}}},
                       {"libvirt", "<interface type='vhostuser'>\n</interface>\n"}};
  EXPECT_NE(FormatPortShow(answer, "")
                .find("\nlibvirt domain (children of <domain> beside the "
                      "<interface>: shared memory, vectors=0):\n"
                      "  <memoryBacking>\n"
                      "  </memoryBacking>\n"),
            std::string::npos)
      << FormatPortShow(answer, "");
  // --libvirt stays the <interface> alone.
  EXPECT_EQ(FormatPortShow(answer, "libvirt"), "<interface type='vhostuser'>\n</interface>\n");
}

TEST(PortShowFormatTest, ShellWords) {
  EXPECT_EQ(ShellWord("tap,id=a,ifname=b"), "tap,id=a,ifname=b");
  EXPECT_EQ(ShellWord("a b"), "'a b'");
  EXPECT_EQ(ShellWord("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellWord("$x`y`"), "'$x`y`'");
  EXPECT_EQ(ShellWord(""), "''");
}

}  // namespace
}  // namespace vfabric::netctl
