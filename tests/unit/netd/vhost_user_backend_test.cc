// vhost-user ports in netd (issue 16): the kernel planner makes no link for
// them, the switch opens them through the port-backend seam (a fake one
// here, handing out memory ports), a client-mode port waits for its socket,
// and the real backend (vhost_user_backend.h) on sockets in a temporary
// directory: server mode makes the directory and the socket with the
// port's owner, group and permissions; client mode connects; the guest
// plug is the opposite side of the socket.
#include "vhost_user_backend.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "fake_kernel.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/bridge/vhost_user_port.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/planner.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/switch_plan.h"
#include "vfabric/netd/userspace.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kTopology = R"({"networks": [{"name": "vu", "datapath": "userspace",
  "ports": [{"name": "vu0", "kind": "vhost-user", "socket": "/run/vfabric/vu0.sock",
             "mode": "server"},
            {"name": "vu1", "kind": "vhost-user", "socket": "/run/q/vu1.sock"},
            {"name": "vu-t0"}]}]})";

topology::Topology Parse(const std::string& text) {
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.topology;
}

// Memory ports for every port; a vhost-user port is named "vhost-user",
// needs no link, and waits while `absent` holds its socket.
class FakeBackend final : public PortBackend {
 public:
  explicit FakeBackend(std::string name, bool link) : name_(std::move(name)), link_(link) {}
  std::string_view Name() const override { return name_; }
  bool NeedsKernelLink() const override { return link_; }
  std::string Identity(const topology::PortConfig& port, const LinkInfo* link) const override {
    if (!link_) return "socket " + port.socket;
    return link == nullptr ? "" : "ifindex " + std::to_string(link->ifindex);
  }
  std::string Waiting(const topology::PortConfig& port) const override {
    return absent.count(port.socket) ? "no socket at " + port.socket + " yet" : "";
  }
  std::string Ended(const topology::PortConfig& port, const bridge::Port&) const override {
    return hung_up.count(port.name) ? "its frontend hung up" : "";
  }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    auto made = bridge::MemoryPort::Create(port.name);
    if (!made.ok()) return made.status();
    opened.push_back(port.name);
    return std::unique_ptr<bridge::Port>(std::move(made).value());
  }

  std::vector<std::string> opened;
  std::set<std::string> absent;
  std::set<std::string> hung_up;

 private:
  std::string name_;
  bool link_;
};

class FakeBackends final : public PortBackends {
 public:
  FakeBackends(FakeBackend* tap, FakeBackend* vhost_user) : tap_(tap), vhost_user_(vhost_user) {}
  PortBackend& For(const topology::PortConfig& port, bool) const override {
    return port.kind == topology::PortKind::kVhostUser ? *vhost_user_ : *tap_;
  }

 private:
  FakeBackend* tap_;
  FakeBackend* vhost_user_;
};

json Handle(Controller& controller, const std::string& verb, json args) {
  return controller.Handle({{"version", 1}, {"id", 1}, {"verb", verb}, {"args", std::move(args)}});
}

// The kernel gets the tap alone; the switch opens both vhost-user ports
// through their backend; port list shows them with their kind.
TEST(VhostUserNetdTest, AUserspaceNetworkPlansNoLinkAndOpensThePortsThroughTheBackend) {
  testing::FakeKernel kernel;
  const topology::Topology desired = Parse(kTopology);
  auto state = ReadKernelState(kernel, kernel.features);
  ASSERT_TRUE(state.ok());
  auto plan = Plan(desired, *state);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::set<std::string> objects;
  for (const Operation& op : *plan) objects.insert(op.object);
  EXPECT_TRUE(objects.count("vu-t0"));
  EXPECT_FALSE(objects.count("vu0"));
  EXPECT_FALSE(objects.count("vu1"));

  // A link that happens to have a vhost-user port's name (not netd's) is
  // not in the way: the port has no link.
  LinkInfo foreign;
  foreign.name = "vu0";
  foreign.kind = "dummy";
  foreign.ifindex = 77;
  state->links.push_back(foreign);
  EXPECT_TRUE(Plan(desired, *state).ok());

  FakeBackend tap("tap", true), vhost_user("vhost-user", false);
  UserspaceNetworks networks("", std::make_unique<FakeBackends>(&tap, &vhost_user), "m");
  Controller controller(kernel, kernel.features);
  controller.SetUserspace(&networks);
  json apply = Handle(controller, "apply",
                      {{"files", json::array({{{"name", "t.json"}, {"text", kTopology}}})}});
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  for (const std::string& call : kernel.calls) EXPECT_THAT(call, ::testing::Not(HasSubstr("vu0")));
  EXPECT_EQ(kernel.Find("vu0"), nullptr);
  EXPECT_NE(kernel.Find("vu-t0"), nullptr);
  EXPECT_EQ(vhost_user.opened, (std::vector<std::string>{"vu0", "vu1"}));
  EXPECT_EQ(tap.opened, (std::vector<std::string>{"vu-t0"}));
  EXPECT_TRUE(networks.Pending(desired).empty());

  json list = Handle(controller, "port.list", {{"network", "vu"}});
  ASSERT_EQ(list["ok"], true) << list.dump();
  std::map<std::string, json> ports;
  for (const json& port : list["result"]["ports"]) ports[port["name"]] = port;
  EXPECT_EQ(ports["vu0"]["kind"], "vhost-user");
  EXPECT_FALSE(ports["vu0"]["switch_port"].is_null());
  EXPECT_FALSE(ports["vu0"].contains("waiting"));
  // Converged: a second apply opens nothing again.
  apply = Handle(controller, "apply",
                 {{"files", json::array({{{"name", "t.json"}, {"text", kTopology}}})}});
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  EXPECT_EQ(vhost_user.opened.size(), 2u);
}

// A client-mode port whose socket the frontend has not made yet waits,
// quietly (no error, no drift), and is opened once the socket is there.
TEST(VhostUserNetdTest, AClientPortWaitsForItsSocket) {
  testing::FakeKernel kernel;
  FakeBackend tap("tap", true), vhost_user("vhost-user", false);
  vhost_user.absent.insert("/run/q/vu1.sock");
  UserspaceNetworks networks("", std::make_unique<FakeBackends>(&tap, &vhost_user), "m");
  Controller controller(kernel, kernel.features);
  controller.SetUserspace(&networks);
  json apply = Handle(controller, "apply",
                      {{"files", json::array({{{"name", "t.json"}, {"text", kTopology}}})}});
  ASSERT_EQ(apply["ok"], true) << apply.dump();
  EXPECT_EQ(vhost_user.opened, (std::vector<std::string>{"vu0"}));
  const topology::Topology desired = Parse(kTopology);
  EXPECT_TRUE(networks.Pending(desired).empty());
  json list = Handle(controller, "port.list", {{"network", "vu"}});
  std::map<std::string, json> ports;
  for (const json& port : list["result"]["ports"]) ports[port["name"]] = port;
  EXPECT_EQ(ports["vu1"]["waiting"], "no socket at /run/q/vu1.sock yet");
  EXPECT_TRUE(ports["vu1"]["switch_port"].is_null());
  json shown = Handle(controller, "port.show", {{"network", "vu"}, {"port", "vu1"}});
  ASSERT_EQ(shown["ok"], true) << shown.dump();
  const json& vu1 = shown["result"]["vhost_user"];
  EXPECT_EQ(vu1["socket"], "/run/q/vu1.sock");
  EXPECT_EQ(vu1["mode"], "client");
  EXPECT_EQ(vu1["connected"], false);
  EXPECT_EQ(vu1["waiting"], "no socket at /run/q/vu1.sock yet");
  EXPECT_THAT(vu1["shared_memory"]["libvirt"].get<std::string>(),
              HasSubstr("<access mode='shared'/>"));
  // libvirt's domain part names the port's device (GuestUseOf's
  // <interface> carries the alias) and gives it vectors=0.
  EXPECT_THAT(vu1["libvirt_domain"].dump(), HasSubstr("<qemu:device alias='ua-vf-vu1'>"));
  EXPECT_THAT(vu1["libvirt_domain"].dump(), HasSubstr("name='vectors'"));
  // A port the switch has open through another kind of port object (the
  // fake's memory port) has no vhost-user state to show.
  EXPECT_TRUE(networks.VhostUserState("vu", "vu0").is_null());
  EXPECT_FALSE(
      Handle(controller, "port.show", {{"network", "vu"}, {"port", "vu-t0"}})["result"].contains(
          "vhost_user"));

  vhost_user.absent.clear();  // the frontend made its socket
  std::vector<Operation> repaired;
  ASSERT_TRUE(controller.Reconcile(&repaired).ok());
  EXPECT_EQ(vhost_user.opened, (std::vector<std::string>{"vu0", "vu1"}));
}

// A client port whose frontend hung up is opened again (connects again);
// if its socket went too, it leaves the switch and waits for it.
TEST(VhostUserNetdTest, AClientPortWhoseFrontendHungUpIsOpenedAgain) {
  FakeBackend tap("tap", true), vhost_user("vhost-user", false);
  UserspaceNetworks networks("", std::make_unique<FakeBackends>(&tap, &vhost_user), "m");
  const topology::Topology desired = Parse(R"({"networks": [{"name": "vu",
    "datapath": "userspace",
    "ports": [{"name": "vu1", "kind": "vhost-user", "socket": "/q/vu1.sock"}]}]})");
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  KernelState none;
  const KernelView view{&none, {}};
  EXPECT_TRUE(networks.Plan(desired, &view).empty());
  vhost_user.hung_up.insert("vu1");
  std::vector<SwitchOperation> plan = networks.Plan(desired, &view);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(std::string(plan[0].KindName()), "reopen_switch_port");
  EXPECT_THAT(plan[0].Describe(), HasSubstr("reopen port vu1"));
  EXPECT_THAT(plan[0].Describe(), HasSubstr(": its frontend hung up"));
  vhost_user.absent.insert("/q/vu1.sock");
  plan = networks.Plan(desired, &view);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(std::string(plan[0].KindName()), "detach_switch_port");
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_TRUE(networks.PortExtra("vu", "vu1")["switch_port"].is_null());
  EXPECT_TRUE(networks.Plan(desired, &view).empty());  // waits quietly
  vhost_user.absent.clear();
  vhost_user.hung_up.clear();
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_EQ(vhost_user.opened, (std::vector<std::string>{"vu1", "vu1"}));
  // Another socket (or mode) is another port: opened anew.
  topology::Topology moved = desired;
  moved.networks[0].ports[0].socket = "/q/other.sock";
  plan = networks.Plan(moved, &view);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(std::string(plan[0].KindName()), "reopen_switch_port");
  EXPECT_THAT(plan[0].Describe(), HasSubstr(": it is now socket /q/other.sock"));
}

// With no kernel link to follow, a vhost-user port is up for the spanning
// tree (a port the tree thought down would never forward), whether the
// tree starts with it or it joins a running tree; and no plan tells the
// tree otherwise.
TEST(VhostUserNetdTest, ALinklessPortIsUpForTheSpanningTree) {
  FakeBackend tap("tap", true), vhost_user("vhost-user", false);
  UserspaceNetworks networks("", std::make_unique<FakeBackends>(&tap, &vhost_user), "m");
  topology::Topology desired = Parse(R"({"networks": [{"name": "vu", "datapath": "userspace",
    "stp": {"enabled": true},
    "ports": [{"name": "vu0", "kind": "vhost-user", "socket": "/s/vu0", "mode": "server"}]}]})");
  auto enabled = [&](const std::string& name) {
    auto stp = networks.StpJson(desired.networks[0]);
    EXPECT_TRUE(stp.ok());
    for (const json& port : (*stp)["stp"]["ports"])
      if (port["name"] == name) return port["enabled"] == true;
    ADD_FAILURE() << "no tree port " << name << ": " << stp->dump();
    return false;
  };
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  ASSERT_TRUE(networks.TreeRunning("vu"));
  EXPECT_TRUE(enabled("vu0"));
  topology::PortConfig vu1 = desired.networks[0].ports[0];
  vu1.name = "vu1";
  vu1.socket = "/s/vu1";
  desired.networks[0].ports.push_back(vu1);
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_TRUE(enabled("vu1"));
  KernelState none;
  const KernelView view{&none, {}};
  EXPECT_TRUE(networks.Plan(desired, &view).empty());
}

// ---- the real backend ----

class TempDir {
 public:
  TempDir() {
    char dir[] = "/tmp/vfabric-vunetd-XXXXXX";
    path_ = ::mkdtemp(dir) != nullptr ? dir : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

topology::PortConfig VhostUserPortConfig(const std::string& socket, topology::VhostUserMode mode) {
  topology::PortConfig port;
  port.name = "vu0";
  port.kind = topology::PortKind::kVhostUser;
  port.socket = socket;
  port.vhost_user_mode = mode;
  return port;
}

TEST(VhostUserBackendTest, TheKernelBackendsChooseItAndItNeedsNoLink) {
  auto backends = NewKernelPortBackends();
  const topology::PortConfig port =
      VhostUserPortConfig("/run/vfabric/vu0.sock", topology::VhostUserMode::kServer);
  PortBackend& backend = backends->For(port, false);
  EXPECT_EQ(backend.Name(), "vhost-user");
  EXPECT_FALSE(backend.NeedsKernelLink());
  EXPECT_EQ(backend.Identity(port, nullptr), "socket /run/vfabric/vu0.sock (server)");
  EXPECT_EQ(&backends->For(port, true), &backend);  // a guest NIC's port too
  // Server mode never waits: netd makes the socket.
  EXPECT_EQ(backend.Waiting(port), "");
}

TEST(VhostUserBackendTest, ServerModeMakesTheDirectoryAndTheSocketWithItsOwnerAndMode) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  topology::PortConfig port =
      VhostUserPortConfig(dir.path() + "/run/vfabric/vu0.sock", topology::VhostUserMode::kServer);
  port.owner = 4242;
  port.group = 4343;
  port.permissions = 0660;
  auto backend = NewVhostUserBackend();
  auto opened = backend->Open(port, nullptr);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ((*opened)->name(), "vu0");
  EXPECT_EQ((*opened)->kind(), bridge::PortKind::kVhostUser);
  struct stat st {};
  ASSERT_EQ(::lstat(port.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 4242u);
  EXPECT_EQ(st.st_gid, 4343u);
  ASSERT_EQ(::stat((dir.path() + "/run/vfabric").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // A frontend connects to it.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, port.socket.c_str(), port.socket.size() + 1);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  opened->reset();
  // The port took its socket file with it.
  EXPECT_NE(::lstat(port.socket.c_str(), &st), 0);
  // Opened again over the socket of a netd that crashed (nothing listens
  // there): the stale socket is replaced.
  {
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ASSERT_EQ(::lstat(port.socket.c_str(), &st), 0);
  auto again = backend->Open(port, nullptr);
  ASSERT_TRUE(again.ok()) << again.status().message();
  again->reset();
  // Any other file at the path is left alone, and the error names it.
  { UniqueFd file(::open(port.socket.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  auto refused = backend->Open(port, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("exists and is not a socket"));
  ASSERT_EQ(::lstat(port.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(VhostUserBackendTest, ClientModeWaitsForTheSocketThenConnects) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const topology::PortConfig port =
      VhostUserPortConfig(dir.path() + "/vu1.sock", topology::VhostUserMode::kClient);
  auto backend = NewVhostUserBackend();
  EXPECT_EQ(backend->Identity(port, nullptr), "socket " + port.socket + " (client)");
  EXPECT_THAT(backend->Waiting(port), HasSubstr("no socket at " + port.socket + " yet"));
  auto early = backend->Open(port, nullptr);
  ASSERT_FALSE(early.ok());
  EXPECT_THAT(early.status().message(), HasSubstr(port.socket));
  // The frontend (QEMU server=on) listens.
  auto listener = bridge::VhostUserPort::ListenUnix(port.socket);
  ASSERT_TRUE(listener.ok()) << listener.status().message();
  EXPECT_EQ(backend->Waiting(port), "");
  auto opened = backend->Open(port, nullptr);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  auto* vu = dynamic_cast<bridge::VhostUserPort*>(opened->get());
  ASSERT_NE(vu, nullptr);
  EXPECT_TRUE(vu->connected());
  UniqueFd accepted(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted);
}

// The guest takes the other side: QEMU listens when netd connects, and
// libvirt's mode is the opposite of netd's.
TEST(VhostUserBackendTest, TheGuestPlugIsTheOtherSideOfTheSocket) {
  auto backend = NewVhostUserBackend();
  auto client =
      backend->GuestPlug(VhostUserPortConfig("/run/q/vu1.sock", topology::VhostUserMode::kClient));
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->kind, vmm::NicPlug::Kind::kVhostUser);
  EXPECT_EQ(client->socket, "/run/q/vu1.sock");
  EXPECT_TRUE(client->socket_server);
  auto server = backend->GuestPlug(
      VhostUserPortConfig("/run/vfabric/vu0.sock", topology::VhostUserMode::kServer));
  ASSERT_TRUE(server.ok());
  EXPECT_FALSE(server->socket_server);

  // Through GuestUseOf, as netctl port show --qemu|--libvirt asks.
  const topology::Topology desired = Parse(kTopology);
  auto backends = NewKernelPortBackends();
  auto use = GuestUseOf(desired, "vu", "vu0", *backends);
  ASSERT_TRUE(use.ok()) << use.status().message();
  EXPECT_EQ(use->qemu,
            (std::vector<std::string>{
                "-chardev", "socket,id=chr-vf-vu0,path=/run/vfabric/vu0.sock,reconnect=1",
                "-netdev", "vhost-user,id=net-vf-vu0,chardev=chr-vf-vu0", "-device",
                "virtio-net-pci,id=vf-vu0,netdev=net-vf-vu0,vectors=0"}));
  EXPECT_THAT(use->libvirt, HasSubstr("<interface type='vhostuser'>"));
  EXPECT_THAT(use->libvirt,
              HasSubstr("<source type='unix' path='/run/vfabric/vu0.sock' mode='client'>\n"
                        "    <reconnect enabled='yes' timeout='1'/>\n"
                        "  </source>\n"));
  EXPECT_THAT(use->libvirt, HasSubstr("<alias name='ua-vf-vu0'/>"));
  auto use1 = GuestUseOf(desired, "vu", "vu1", *backends);
  ASSERT_TRUE(use1.ok());
  EXPECT_EQ(use1->qemu[1], "socket,id=chr-vf-vu1,path=/run/q/vu1.sock,server=on,wait=off");
  EXPECT_THAT(use1->libvirt, HasSubstr("mode='server'"));
}

}  // namespace
}  // namespace vfabric::netd
