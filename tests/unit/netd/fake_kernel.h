// An in-memory Kernel for unit tests: links, FDB and port VLANs as plain
// data, the kernel's errors for the common mistakes (EEXIST, ENODEV), and
// failure injection by call.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vfabric/netd/kernel.h"

namespace vfabric::netd::testing {

class FakeKernel : public Kernel {
 public:
  FakeKernel();

  // State, open for tests to arrange and inspect.
  std::vector<LinkInfo> links;
  std::vector<FdbEntry> fdb;
  std::vector<PortVlanEntry> port_vlans;
  std::vector<AddressEntry> addresses;
  std::vector<VxlanFloodEntry> vxlan_flood;
  KernelFeatures features;

  // Every mutating call, as "CreateBridge vfb-lab", in order.
  std::vector<std::string> calls;
  // Every read of links and FDB, in order: "ListLinks" (all),
  // "ListLinksNamed e1 vfb-lab", "ListFdb" (all), "ListBridgeFdb vfb-lab".
  std::vector<std::string> reads;
  // When set and returning a non-OK status for a call ("CreateTap vm1-eth0"),
  // that call fails with it and changes nothing.
  std::function<Status(const std::string& call)> fail;

  LinkInfo* Find(const std::string& name);
  LinkInfo* Find(int ifindex);
  // Adds a link as if someone else made it.
  LinkInfo& AddForeignLink(const std::string& name, const std::string& kind);
  // Counters per link name (a link without an entry counts nothing), and the
  // root ids sysfs reports per bridge.
  std::map<std::string, LinkCounters> counters;
  std::map<std::string, std::string> sysfs_root_ids;

  Result<LinkCounters> ReadLinkCounters(const std::string& name) override;
  std::string BridgeRootIdFromSysfs(const std::string& bridge) override;
  Result<std::vector<LinkInfo>> ListLinks() override;
  Result<std::vector<LinkInfo>> ListLinksNamed(const std::vector<std::string>& names) override;
  Result<std::vector<FdbEntry>> ListFdb() override;
  Result<std::vector<FdbEntry>> ListBridgeFdb(int bridge_ifindex) override;
  Result<std::vector<PortVlanEntry>> ListPortVlans() override;
  Result<KernelFeatures> ProbeFeatures() override;
  Status CreateBridge(const std::string& name, const BridgeSettings& settings,
                      const std::string& alias) override;
  Status SetBridgeSettings(const std::string& name, const BridgeSettings& settings) override;
  Status CreateTap(const std::string& name, const TapSettings& settings,
                   const std::string& alias) override;
  Status CreateVeth(const std::string& name, const std::string& peer,
                    const std::string& alias) override;
  Status CreateVxlan(const std::string& name, const VxlanSettings& settings,
                     const std::string& alias) override;
  Result<std::vector<VxlanFloodEntry>> ListVxlanFlood() override { return vxlan_flood; }
  Status AddVxlanFlood(const std::string& device, const IpPrefix& dst) override;
  Status DeleteVxlanFlood(const std::string& device, const IpPrefix& dst) override;
  Status DeleteLink(const std::string& name) override;
  Status SetAlias(const std::string& name, const std::string& alias) override;
  Status SetLinkUp(const std::string& name, bool up) override;
  Status SetMaster(const std::string& name, const std::string& bridge) override;
  Status SetBridgePortSettings(const std::string& name,
                               const BridgePortSettings& settings) override;
  Status MoveToNetns(const std::string& name, const std::string& netns) override;
  Status AddStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) override;
  Status DeleteStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) override;
  Status AddPortVlan(const std::string& port, uint16_t vid, bool pvid, bool untagged) override;
  Status DeletePortVlan(const std::string& port, uint16_t vid) override;
  Status SetLinkMac(const std::string& name, const MacAddress& mac) override;
  Status SetMtu(const std::string& name, uint32_t mtu) override;
  Result<std::vector<AddressEntry>> ListAddresses() override { return addresses; }
  Status AddAddress(const std::string& name, const IpPrefix& prefix) override;
  Status DeleteAddress(const std::string& name, const IpPrefix& prefix) override;

 private:
  Status Begin(const std::string& call);
  LinkInfo& NewLink(const std::string& name, const std::string& kind, const std::string& alias);
  int next_ifindex_ = 2;
};

}  // namespace vfabric::netd::testing
