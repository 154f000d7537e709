// netd serving vhost-user ports (issue 16): a userspace network with two
// ports in server mode; netd makes their sockets (and their directory),
// test frontends (the guests' side, vfabric_vhost_user_testing) connect to
// each, and frames cross the switch between them both ways. netctl lists
// the ports with their kind and prints how a guest plugs in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/common/unique_fd.h"
#include "vfabric/testing/netd_fixture.h"
#include "vfabric/testing/support.h"
#include "vfabric/vhost_user/testing/test_frontend.h"

namespace vfabric {
namespace {

using nlohmann::json;
using testing::Ask;
using testing::Cmd;
using testing::CommandResult;
using testing::Request;
using testing::WaitFor;
using vhost_user::testing::GuestPacket;
using vhost_user::testing::TestFrontend;

std::vector<uint8_t> Frame(const std::vector<uint8_t>& dst, const std::vector<uint8_t>& src,
                           uint8_t fill) {
  std::vector<uint8_t> frame(dst);
  frame.insert(frame.end(), src.begin(), src.end());
  frame.insert(frame.end(), {0x88, 0xb5});  // local experimental ethertype
  frame.resize(128, fill);
  return frame;
}

const std::vector<uint8_t> kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const std::vector<uint8_t> kMacA = {0x52, 0x54, 0x00, 0x00, 0x0a, 0x01};
const std::vector<uint8_t> kMacB = {0x52, 0x54, 0x00, 0x00, 0x0a, 0x02};

class VhostUserNetdTest : public testing::NetdFixture {
 protected:
  void SetUp() override {
    NetdFixture::SetUp();
    if (IsSkipped()) return;
    config_ = dir_.Join("vu.json");
    // A directory netd must make.
    sockets_ = {dir_.Join("sockets/vfabric/vu0.sock"), dir_.Join("sockets/vfabric/vu1.sock")};
    json ports = json::array();
    ports.push_back({{"name", "vu0"},
                     {"kind", "vhost-user"},
                     {"socket", sockets_[0]},
                     {"mode", "server"},
                     {"permissions", "0600"},
                     {"edge", true}});
    ports.push_back(
        {{"name", "vu1"}, {"kind", "vhost-user"}, {"socket", sockets_[1]}, {"mode", "server"}});
    json doc = {{"networks", {{{"name", "vu"}, {"datapath", "userspace"}, {"ports", ports}}}}};
    std::ofstream(config_) << doc.dump(2);
  }

  // A test frontend connected to `path`, set up (features, memory, rings)
  // with receive buffers posted. The backend runs on the switch's thread.
  std::unique_ptr<TestFrontend> Connect(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
      return nullptr;
    }
    auto frontend = TestFrontend::Create(std::move(fd), {});
    if (!frontend.ok()) {
      ADD_FAILURE() << frontend.status().message();
      return nullptr;
    }
    Status started = (*frontend)->Start();
    EXPECT_TRUE(started.ok()) << started.message() << "\n" << Log();
    EXPECT_TRUE((*frontend)->PostReceiveBuffers(64).ok());
    return std::move(frontend).value();
  }

  // Waits (bounded) for `count` packets at `guest`.
  std::vector<GuestPacket> Receive(TestFrontend& guest, size_t count) {
    std::vector<GuestPacket> got;
    WaitFor(
        [&] {
          for (GuestPacket& packet : guest.TakeReceived()) got.push_back(std::move(packet));
          guest.ReclaimTransmitted();
          return got.size() >= count;
        },
        5000);
    EXPECT_TRUE(guest.PostReceiveBuffers(got.size()).ok());
    return got;
  }

  // Until netd's side of `port`'s rings is up: a frame flooded to a port
  // whose rings the datapath has not taken yet is dropped (counted), and the
  // frontend's Start() returns before netd has served its last message.
  bool WaitUntilUp(const std::string& port) {
    return WaitFor(
        [&] {
          return Ok(Request("port.show", {{"network", "vu"}, {"port", port}}))["vhost_user"].value(
                     "up", false) == true;
        },
        5000);
  }

  CommandResult Netctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryDir() + "/netctl/netctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Cmd(argv);
  }

  std::string config_;
  std::vector<std::string> sockets_;
};

TEST_F(VhostUserNetdTest, TwoServerPortsCarryFramesAcrossTheSwitch) {
  Start(config_);
  if (IsSkipped()) return;
  for (const std::string& path : sockets_) {
    struct stat st {};
    ASSERT_TRUE(WaitFor([&] { return ::lstat(path.c_str(), &st) == 0; }, 5000)) << path << "\n"
                                                                                << Log();
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
  }
  struct stat st {};
  ASSERT_EQ(::lstat(sockets_[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::unique_ptr<TestFrontend> a = Connect(sockets_[0]);
  std::unique_ptr<TestFrontend> b = Connect(sockets_[1]);
  ASSERT_TRUE(a && b) << Log();
  ASSERT_TRUE(WaitUntilUp("vu0") && WaitUntilUp("vu1")) << Log();

  // a broadcasts: b gets it (the switch floods); then b answers a unicast.
  const std::vector<uint8_t> hello = Frame(kBroadcast, kMacA, 0x11);
  ASSERT_TRUE(a->Transmit(hello).ok());
  std::vector<GuestPacket> at_b = Receive(*b, 1);
  ASSERT_EQ(at_b.size(), 1u) << Log();
  EXPECT_EQ(at_b[0].frame, hello);
  const std::vector<uint8_t> answer = Frame(kMacA, kMacB, 0x22);
  ASSERT_TRUE(b->Transmit(answer).ok());
  std::vector<GuestPacket> at_a = Receive(*a, 1);
  ASSERT_EQ(at_a.size(), 1u) << Log();
  EXPECT_EQ(at_a[0].frame, answer);
  // Many frames, once both MACs are learned: unicast each way.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(a->Transmit(Frame(kMacB, kMacA, static_cast<uint8_t>(i))).ok()) << i;
    if (i % 16 == 15) a->ReclaimTransmitted();
  }
  EXPECT_EQ(Receive(*b, 50).size(), 50u);

  json list = Ok(Request("port.list", {{"network", "vu"}}));
  ASSERT_EQ(list["ports"].size(), 2u);
  for (const json& port : list["ports"]) {
    EXPECT_EQ(port["kind"], "vhost-user") << port.dump();
    EXPECT_FALSE(port["switch_port"].is_null()) << port.dump();
    EXPECT_FALSE(port.contains("waiting")) << port.dump();
  }
  CommandResult shown = Netctl({"port", "list", "vu"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, ::testing::HasSubstr("vhost-user"));
  // port show: the socket, netd's side, the connection and the backend's
  // counters; port list: up while the rings are.
  json vu0 = Ok(Request("port.show", {{"network", "vu"}, {"port", "vu0"}}))["vhost_user"];
  EXPECT_EQ(vu0["socket"], sockets_[0]) << vu0.dump();
  EXPECT_EQ(vu0["mode"], "server");
  EXPECT_EQ(vu0["connected"], true);
  EXPECT_EQ(vu0["up"], true);
  EXPECT_EQ(vu0["counters"]["connections"], 1);
  EXPECT_GT(vu0["counters"]["messages"].get<uint64_t>(), 10u);
  EXPECT_GT(vu0["counters"]["kicks"].get<uint64_t>(), 0u);
  for (const json& port : list["ports"]) EXPECT_EQ(port["oper_up"], true) << port.dump();
  // What the frontend negotiated, by name, and the rings' state.
  const json& negotiated = vu0["negotiated"];
  ASSERT_TRUE(negotiated.is_object()) << vu0.dump();
  for (const char* name : {"VERSION_1", "MRG_RXBUF", "EVENT_IDX", "INDIRECT_DESC"})
    EXPECT_THAT(negotiated["features"], ::testing::Contains(name)) << negotiated.dump();
  EXPECT_THAT(negotiated["protocol_features"], ::testing::Contains("REPLY_ACK"));
  EXPECT_EQ(negotiated["queue_pairs"], 1);
  ASSERT_EQ(negotiated["rings"].size(), 2u) << negotiated.dump();
  for (const json& ring : negotiated["rings"]) {
    EXPECT_EQ(ring["enabled"], true) << ring.dump();
    EXPECT_EQ(ring["ready"], true) << ring.dump();
    EXPECT_EQ(ring["size"], 256) << ring.dump();
  }
  EXPECT_EQ(negotiated["rings"][1]["direction"], "from_guest");
  EXPECT_EQ(negotiated["rings"][1]["last_avail_idx"], 51) << negotiated.dump();  // a sent 51
  EXPECT_EQ(negotiated["rings"][0]["used_idx"], 1) << negotiated.dump();         // got 1
  CommandResult as_json = Netctl({"port", "show", "vu", "vu0", "--json"});
  EXPECT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out, nullptr, false)["vhost_user"]["negotiated"]["features"],
            negotiated["features"])
      << as_json.out;
  CommandResult full = Netctl({"port", "show", "vu", "vu0"});
  EXPECT_EQ(full.exit_code, 0) << full.err;
  EXPECT_THAT(full.out, ::testing::HasSubstr("socket:   " + sockets_[0] +
                                             " (netd is the server)\n"
                                             "state:    connected yes, rings up yes\n"));
  EXPECT_THAT(full.out, ::testing::HasSubstr("memory-backend-memfd,id=mem,size=RAM,share=on"));
  EXPECT_THAT(full.out, ::testing::ContainsRegex("features: [A-Z_0-9 ]*MRG_RXBUF[A-Z_0-9 ]*"
                                                 "EVENT_IDX[A-Z_0-9 ]*VERSION_1 \\(0x"));
  EXPECT_THAT(full.out, ::testing::HasSubstr("protocol: REPLY_ACK MTU CONFIGURE_MEM_SLOTS (0x"));
  EXPECT_THAT(full.out, ::testing::HasSubstr("queues:   1 pair(s)"));
  EXPECT_THAT(full.out, ::testing::HasSubstr("ring 1:   from the guest, started yes, enabled yes, "
                                             "ready yes, size 256, last avail 51, used 51\n"));
  CommandResult libvirt = Netctl({"port", "show", "vu", "vu0", "--libvirt"});
  EXPECT_EQ(libvirt.exit_code, 0) << libvirt.err;
  EXPECT_THAT(libvirt.out, ::testing::HasSubstr("<source type='unix' path='" + sockets_[0] +
                                                "' mode='client'>\n"
                                                "    <reconnect enabled='yes' timeout='1'/>"));
  EXPECT_THAT(full.out, ::testing::HasSubstr("<qemu:device alias='ua-vf-vu0'>"));
  CommandResult qemu = Netctl({"port", "show", "vu", "vu1", "--qemu"});
  EXPECT_EQ(qemu.exit_code, 0) << qemu.err;
  EXPECT_THAT(qemu.out, ::testing::HasSubstr("path=" + sockets_[1] + ",reconnect=1"));
  EXPECT_THAT(qemu.out, ::testing::HasSubstr("vectors=0"));

  // A frontend that leaves: the switch runs on, and the next one is taken.
  a.reset();
  EXPECT_TRUE(WaitFor(
      [&] {
        return Ok(Request("port.show", {{"network", "vu"},
                                        {"port", "vu0"}}))["vhost_user"]["connected"] == false;
      },
      5000));
  std::unique_ptr<TestFrontend> again = Connect(sockets_[0]);
  ASSERT_TRUE(again) << Log();
  ASSERT_TRUE(WaitUntilUp("vu0")) << Log();
  ASSERT_TRUE(b->Transmit(Frame(kBroadcast, kMacB, 0x33)).ok());
  EXPECT_EQ(Receive(*again, 1).size(), 1u) << Log();
  EXPECT_EQ(Stop(), 0) << Log();
}

// Server-mode sockets: a stale socket file of a netd that crashed does not
// stop a port from listening there again; a port removed from the topology
// takes its socket file with it, and so does netd when it stops.
TEST_F(VhostUserNetdTest, ServerSocketFilesGoWithTheirPortsAndStaleOnesAreReplaced) {
  if (IsSkipped()) return;
  // A crashed netd's socket at vu0's path: bound, then its listener gone.
  std::filesystem::create_directories(dir_.Join("sockets/vfabric"));
  {
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sockets_[0].c_str(), sockets_[0].size() + 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(stale.get(), 4), 0);
  }
  auto exists = [](const std::string& path) {
    struct stat s {};
    return ::lstat(path.c_str(), &s) == 0;
  };
  Start(config_);
  if (IsSkipped()) return;
  ASSERT_TRUE(WaitFor([&] { return exists(sockets_[1]); }, 5000)) << Log();
  // vu0 listens on its path again (Connect sets a frontend up through it).
  std::unique_ptr<TestFrontend> a = Connect(sockets_[0]);
  std::unique_ptr<TestFrontend> b = Connect(sockets_[1]);
  ASSERT_TRUE(a && b) << Log();
  ASSERT_TRUE(WaitUntilUp("vu0") && WaitUntilUp("vu1")) << Log();
  ASSERT_TRUE(a->Transmit(Frame(kBroadcast, kMacA, 0x11)).ok());
  ASSERT_EQ(Receive(*b, 1).size(), 1u) << Log();

  // vu1 leaves the topology: its socket file goes.
  json ports = json::array();
  ports.push_back(
      {{"name", "vu0"}, {"kind", "vhost-user"}, {"socket", sockets_[0]}, {"mode", "server"}});
  json doc = {{"networks", {{{"name", "vu"}, {"datapath", "userspace"}, {"ports", ports}}}}};
  std::ofstream(config_) << doc.dump(2);
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  EXPECT_TRUE(WaitFor([&] { return !exists(sockets_[1]); }, 5000))
      << sockets_[1] << " is left behind\n"
      << Log();
  EXPECT_TRUE(exists(sockets_[0]));

  // netd stops: vu0's socket goes too.
  EXPECT_EQ(Stop(), 0) << Log();
  EXPECT_FALSE(exists(sockets_[0])) << sockets_[0] << " is left behind\n" << Log();
}

// A frontend that shrinks the memfd it passed in SET_MEM_TABLE while frames
// flow to its guest: netd's switch faulted with SIGBUS and netd died. Now
// the port goes down, says why in the log and counts it, and netd and the
// other port run on.
TEST_F(VhostUserNetdTest, AFrontendThatShrinksItsMemoryTakesItsPortDownNotNetd) {
  Start(config_);
  if (IsSkipped()) return;
  for (const std::string& path : sockets_) {
    struct stat st {};
    ASSERT_TRUE(WaitFor([&] { return ::lstat(path.c_str(), &st) == 0; }, 5000)) << Log();
  }
  std::unique_ptr<TestFrontend> a = Connect(sockets_[0]);
  std::unique_ptr<TestFrontend> b = Connect(sockets_[1]);
  ASSERT_TRUE(a && b) << Log();
  ASSERT_TRUE(WaitUntilUp("vu0") && WaitUntilUp("vu1")) << Log();
  ASSERT_TRUE(a->Transmit(Frame(kBroadcast, kMacA, 0x11)).ok());
  ASSERT_EQ(Receive(*b, 1).size(), 1u) << Log();

  // b's guest memory is cut to one page; a keeps sending to b (from here
  // the test does not touch b's rings: its own mapping would fault).
  ASSERT_EQ(::ftruncate(b->ram().fds()[0].get(), 4096), 0);
  auto vu1 = [&] { return Ok(Request("port.show", {{"network", "vu"}, {"port", "vu1"}})); };
  ASSERT_TRUE(WaitFor(
      [&] {
        EXPECT_TRUE(a->Transmit(Frame(kBroadcast, kMacA, 0x22)).ok());
        a->ReclaimTransmitted();
        return vu1()["vhost_user"]["connected"] == false;
      },
      5000))
      << vu1().dump() << "\n"
      << Log();
  const json shown = vu1()["vhost_user"];
  EXPECT_EQ(shown["up"], false);
  EXPECT_EQ(shown["counters"]["memory_faults"], 1) << shown.dump();
  EXPECT_EQ(shown["counters"]["disconnects"], 1) << shown.dump();
  EXPECT_THAT(Log(), ::testing::HasSubstr("vu1: frontend gone (memory region 0"));
  EXPECT_THAT(Log(), ::testing::HasSubstr("was cut short under its mapping"));
  EXPECT_TRUE(netd_->running()) << Log();

  // netd and the other port run on; a new frontend on vu1 is taken.
  b.reset();
  std::unique_ptr<TestFrontend> again = Connect(sockets_[1]);
  ASSERT_TRUE(again) << Log();
  ASSERT_TRUE(WaitUntilUp("vu1")) << Log();
  ASSERT_TRUE(a->Transmit(Frame(kBroadcast, kMacA, 0x33)).ok());
  std::vector<GuestPacket> got = Receive(*again, 1);
  ASSERT_EQ(got.size(), 1u) << Log();
  EXPECT_EQ(got[0].frame[20], 0x33);
  EXPECT_EQ(Stop(), 0) << Log();
}

// Client mode (the default): the frontend owns the socket. The port waits
// while there is none, netd connects once the frontend listens (at the
// next reconcile: a reload here), and connects again after the frontend
// hangs up.
TEST_F(VhostUserNetdTest, AClientPortConnectsToTheFrontendsSocketAndAgainAfterItHangsUp) {
  const std::string client_socket = dir_.Join("qemu/vu1.sock");
  json ports = json::array();
  ports.push_back(
      {{"name", "vu0"}, {"kind", "vhost-user"}, {"socket", sockets_[0]}, {"mode", "server"}});
  ports.push_back({{"name", "vu1"}, {"kind", "vhost-user"}, {"socket", client_socket}});
  json doc = {{"networks", {{{"name", "vu"}, {"datapath", "userspace"}, {"ports", ports}}}}};
  std::ofstream(config_) << doc.dump(2);
  Start(config_);
  if (IsSkipped()) return;
  auto port_list = [&] {
    std::map<std::string, json> by_name;
    const json list = Ok(Request("port.list", {{"network", "vu"}}));
    for (const json& port : list["ports"]) by_name[port["name"].get<std::string>()] = port;
    return by_name;
  };
  ASSERT_TRUE(port_list()["vu1"].is_object())
      << Ask(socket_, Request("port.list", {{"network", "vu"}})).dump() << "\n"
      << Log();
  EXPECT_THAT(port_list()["vu1"].value("waiting", ""),
              ::testing::HasSubstr("no socket at " + client_socket + " yet"));
  CommandResult listed = Netctl({"port", "list", "vu"});
  EXPECT_THAT(listed.out, ::testing::HasSubstr("waiting"));

  // The frontend (QEMU -chardev socket,server=on) listens.
  ASSERT_EQ(::mkdir(dir_.Join("qemu").c_str(), 0755), 0);
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, client_socket.c_str(), client_socket.size() + 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  auto accept_frontend = [&]() -> std::unique_ptr<TestFrontend> {
    UniqueFd fd;
    WaitFor(
        [&] {
          fd.Reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
          return static_cast<bool>(fd);
        },
        5000);
    if (!fd) {
      ADD_FAILURE() << "netd did not connect\n" << Log();
      return nullptr;
    }
    auto frontend = TestFrontend::Create(std::move(fd), {});
    if (!frontend.ok()) return nullptr;
    EXPECT_TRUE((*frontend)->Start().ok()) << Log();
    EXPECT_TRUE((*frontend)->PostReceiveBuffers(64).ok());
    return std::move(frontend).value();
  };
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  std::unique_ptr<TestFrontend> guest = accept_frontend();
  ASSERT_TRUE(guest);
  std::unique_ptr<TestFrontend> a = Connect(sockets_[0]);
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitUntilUp("vu1")) << Log();
  const std::vector<uint8_t> hello = Frame(kBroadcast, kMacA, 0x44);
  ASSERT_TRUE(a->Transmit(hello).ok());
  std::vector<GuestPacket> got = Receive(*guest, 1);
  ASSERT_EQ(got.size(), 1u) << Log();
  EXPECT_EQ(got[0].frame, hello);
  EXPECT_FALSE(port_list()["vu1"].contains("waiting"));

  // The frontend hangs up (QEMU restarts); netd connects again.
  guest.reset();
  ASSERT_TRUE(WaitFor(
      [&] {
        return Ok(Request("port.show", {{"network", "vu"},
                                        {"port", "vu1"}}))["vhost_user"]["connected"] == false;
      },
      5000));
  ASSERT_TRUE(netd_->Signal(SIGHUP));
  guest = accept_frontend();
  ASSERT_TRUE(guest);
  ASSERT_TRUE(WaitUntilUp("vu1")) << Log();
  ASSERT_TRUE(a->Transmit(Frame(kBroadcast, kMacA, 0x55)).ok());
  got = Receive(*guest, 1);
  ASSERT_EQ(got.size(), 1u) << Log();
  EXPECT_EQ(got[0].frame[20], 0x55);
  EXPECT_THAT(Log(), ::testing::HasSubstr("its frontend hung up; netd connects again"));
  ::unlink(client_socket.c_str());
  EXPECT_EQ(Stop(), 0) << Log();
}

// Client mode without a reload: netd watches the socket's directory and
// connects as soon as the frontend makes its socket (QEMU starting, or
// restarting after it hung up), not at the next periodic resync (30 s).
TEST_F(VhostUserNetdTest, AClientPortConnectsPromptlyWhenTheFrontendsSocketAppears) {
  const std::string qemu_dir = dir_.Join("qemu");
  ASSERT_EQ(::mkdir(qemu_dir.c_str(), 0755), 0);
  const std::string client_socket = qemu_dir + "/vu1.sock";
  json ports = json::array();
  ports.push_back({{"name", "vu1"}, {"kind", "vhost-user"}, {"socket", client_socket}});
  json doc = {{"networks", {{{"name", "vu"}, {"datapath", "userspace"}, {"ports", ports}}}}};
  std::ofstream(config_) << doc.dump(2);
  Start(config_);
  if (IsSkipped()) return;
  auto listen = [&] {
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, client_socket.c_str(), client_socket.size() + 1);
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener.get(), 4), 0);
    return listener;
  };
  // How long netd takes to connect once the socket is there (-1: not in 5 s).
  auto accepted_after_ms = [&](const UniqueFd& listener, UniqueFd* connection) {
    const auto began = std::chrono::steady_clock::now();
    const bool ok = WaitFor(
        [&] {
          connection->Reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
          return static_cast<bool>(*connection);
        },
        5000);
    return ok ? std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - began)
                    .count()
              : -1;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        const json list = Ok(Request("port.list", {{"network", "vu"}}));
        return list["ports"].size() == 1 && list["ports"][0].contains("waiting");
      },
      5000))
      << Log();
  UniqueFd listener = listen();
  UniqueFd connection;
  const int64_t first = accepted_after_ms(listener, &connection);
  EXPECT_GE(first, 0) << "netd did not connect within 5 s\n" << Log();
  EXPECT_LT(first, 2000) << Log();
  ASSERT_TRUE(connection);
  auto guest = TestFrontend::Create(std::move(connection), {});
  ASSERT_TRUE(guest.ok());
  ASSERT_TRUE((*guest)->Start().ok()) << Log();

  // The frontend restarts: hangs up, makes its socket anew.
  guest->reset();
  listener.Reset();
  ASSERT_EQ(::unlink(client_socket.c_str()), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Ok(Request("port.show", {{"network", "vu"},
                                        {"port", "vu1"}}))["vhost_user"]["connected"] == false;
      },
      5000));
  listener = listen();
  const int64_t again = accepted_after_ms(listener, &connection);
  EXPECT_GE(again, 0) << "netd did not connect again within 5 s\n" << Log();
  EXPECT_LT(again, 2000) << Log();
  connection.Reset();
  listener.Reset();
  ::unlink(client_socket.c_str());
  EXPECT_EQ(Stop(), 0) << Log();
}

}  // namespace
}  // namespace vfabric
