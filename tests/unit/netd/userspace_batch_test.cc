// netd's userspace apply batches a network's switch changes: N ports added
// (or re-VLANed) by one apply cost the switch one snapshot rebuild, not N
// (issue 21: 1,000 ports took 96 s one rebuild each). Memory ports through
// a fake backend; no root.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "vfabric/bridge/testing/memory_port.h"
#include "vfabric/netd/planner.h"
#include "vfabric/netd/port_backend.h"
#include "vfabric/netd/userspace.h"
#include "vfabric/topology/topology.h"

namespace vfabric::netd {
namespace {

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
    ++opened;
    return std::unique_ptr<bridge::Port>(std::move(made).value());
  }
  size_t opened = 0;
};

class MemoryBackends final : public PortBackends {
 public:
  explicit MemoryBackends(MemoryBackend* backend) : backend_(backend) {}
  PortBackend& For(const topology::PortConfig&, bool) const override { return *backend_; }

 private:
  MemoryBackend* backend_;
};

// `ports` vhost-user ports (no link to make), the one at `odd` in VLAN 7.
topology::Topology Desired(const std::string& network, size_t ports, size_t odd) {
  std::string text =
      R"({"networks": [{"name": ")" + network + R"(", "datapath": "userspace", "ports": [)";
  for (size_t i = 0; i < ports; ++i) {
    text += std::string(i ? "," : "") + R"({"name": ")" + network + "p" + std::to_string(i) +
            R"(", "kind": "vhost-user", "mode": "server", "socket": "/run/vf-test/)" + network +
            std::to_string(i) + R"(.sock")";
    if (i == odd) text += R"(, "vlan": {"mode": "access", "pvid": 7})";
    text += "}";
  }
  text += "]}]}";
  auto loaded = topology::ParseTopology(text, "t.json");
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  return loaded.topology;
}

TEST(UserspaceBatchTest, AnApplyOfNPortsIsOneSnapshotRebuildPerNetwork) {
  constexpr size_t kPorts = 300;
  MemoryBackend backend;
  UserspaceNetworks networks("", std::make_unique<MemoryBackends>(&backend), "m");
  topology::Topology desired = Desired("a", kPorts, kPorts);
  topology::Topology second = Desired("b", kPorts / 3, kPorts);
  desired.networks.push_back(second.networks.at(0));
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_EQ(backend.opened, kPorts + kPorts / 3);
  // One at Create, one for the apply's batch: not one per port.
  EXPECT_EQ(networks.SnapshotBuilds("a"), 2u);
  EXPECT_EQ(networks.SnapshotBuilds("b"), 2u);
  EXPECT_TRUE(networks.Pending(desired).empty());

  // One port's VLAN changed: one more rebuild, of that network only.
  desired.networks[0] = Desired("a", kPorts, 5).networks.at(0);
  ASSERT_EQ(networks.Pending(desired).size(), 1u);
  EXPECT_TRUE(networks.Sync(desired, KernelState{}).empty());
  EXPECT_EQ(networks.SnapshotBuilds("a"), 3u);
  EXPECT_EQ(networks.SnapshotBuilds("b"), 2u);
  auto vlan = networks.VlanJson(desired.networks[0]);
  EXPECT_EQ(vlan["ports"][5]["applied"]["pvid"], 7) << vlan["ports"][5].dump();
  EXPECT_TRUE(networks.Pending(desired).empty());
}

}  // namespace
}  // namespace vfabric::netd
