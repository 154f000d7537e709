// The views of many ports on userspace networks with a spanning tree ask the
// tree for its status once per network, not once per port (issue 21: a
// port list of 10,000 ports read the whole status of a 1,000-port tree
// 10,000 times), and say of each port what the per-port PortExtra says.
// Memory ports through a fake backend and a fake kernel; no root.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "fake_kernel.h"
#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/netd/controller.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/userspace.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;

// Every port a memory port, with no kernel link.
class MemoryBackend final : public PortBackend {
 public:
  std::string_view Name() const override { return "memory"; }
  bool NeedsKernelLink() const override { return false; }
  std::string Identity(const topology::PortConfig& port, const LinkInfo*) const override {
    return "memory " + port.name;
  }
  std::string Waiting(const topology::PortConfig&) const override { return ""; }
  std::string Ended(const topology::PortConfig&, const bridge::Port&) const override { return ""; }
  Result<std::unique_ptr<bridge::Port>> Open(const topology::PortConfig& port,
                                             const LinkInfo*) override {
    auto made = bridge::MemoryPort::Create(port.name);
    if (!made.ok()) return made.status();
    return std::unique_ptr<bridge::Port>(std::move(made).value());
  }
};

class MemoryBackends final : public PortBackends {
 public:
  explicit MemoryBackends(MemoryBackend* backend) : backend_(backend) {}
  PortBackend& For(const topology::PortConfig&, bool) const override { return *backend_; }

 private:
  MemoryBackend* backend_;
};

// Network `name` of `ports` vhost-user ports (no link to make), with STP
// when `stp`.
topology::NetworkConfig Network(const std::string& name, size_t ports, bool stp) {
  std::string text = R"({"networks": [{"name": ")" + name + R"(", "datapath": "userspace", )";
  if (stp) text += R"("stp": {"enabled": true}, )";
  text += R"("ports": [)";
  for (size_t i = 0; i < ports; ++i)
    text += std::string(i ? "," : "") + R"({"name": ")" + name + "p" + std::to_string(i) +
            R"(", "kind": "vhost-user", "mode": "server", "socket": "/run/vf-test/)" + name +
            std::to_string(i) + R"(.sock"})";
  text += "]}]}";
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.ok() ? loaded.topology.networks.at(0) : topology::NetworkConfig{};
}

json Request(const std::string& verb, json args = json::object()) {
  return {{"version", 1}, {"verb", verb}, {"args", std::move(args)}};
}

TEST(PortViewTest, ManyPortsOfAnStpNetworkReadTheTreeOncePerView) {
  constexpr size_t kPorts = 200;
  MemoryBackend backend;
  UserspaceNetworks networks("", std::make_unique<MemoryBackends>(&backend), "m");
  topology::Topology desired;
  desired.networks.push_back(Network("s", kPorts, /*stp=*/true));
  desired.networks.push_back(Network("f", 3, /*stp=*/false));
  ASSERT_TRUE(networks.Sync(desired, KernelState{}).empty());
  ASSERT_TRUE(networks.TreeRunning("s"));
  testing::FakeKernel kernel;
  Controller controller(kernel, kernel.features);
  controller.SetUserspace(&networks);
  controller.SetConfig(desired);

  uint64_t reads = networks.TreeStatusReads();
  const json list = controller.Handle(Request("port.list"));
  ASSERT_EQ(list["ok"], true) << list.dump();
  EXPECT_EQ(networks.TreeStatusReads() - reads, 1u);  // not kPorts
  const json& ports = list["result"]["ports"];
  ASSERT_EQ(ports.size(), kPorts + 3);

  // Each port says what the per-port view of it says (which reads the
  // tree once per port).
  for (const json& port : ports) {
    const std::string network = port["network"], name = port["name"];
    const json extra = networks.PortExtra(network, name);
    ASSERT_FALSE(extra["switch_port"].is_null()) << name;
    for (const auto& [key, value] : extra.items()) {
      if (key == "counters") continue;  // (they move with the switch's BPDUs)
      EXPECT_EQ(port.value(key, json()), value) << name << " " << key;
    }
    EXPECT_TRUE(port.contains("counters")) << name;
    // The tree's side: on the STP network only.
    EXPECT_EQ(port.contains("cost"), network == "s") << name;
  }

  reads = networks.TreeStatusReads();
  const json show = controller.Handle(Request("network.show", {{"name", "s"}}));
  ASSERT_EQ(show["ok"], true) << show.dump();
  EXPECT_EQ(show["result"]["network"]["ports"].size(), kPorts);
  EXPECT_EQ(networks.TreeStatusReads() - reads, 1u);

  // The network list only asks which ports the switch holds.
  reads = networks.TreeStatusReads();
  const json all = controller.Handle(Request("network.list"));
  ASSERT_EQ(all["ok"], true) << all.dump();
  EXPECT_EQ(networks.TreeStatusReads() - reads, 0u);

  networks.StopAll();
}

}  // namespace
}  // namespace vfabric::netd
