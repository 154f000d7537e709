#include "fake_kernel.h"

#include <algorithm>
#include <cerrno>

namespace vfabric::netd::testing {

FakeKernel::FakeKernel() {
  features.bridge = features.veth = features.tun = true;
  features.bridge_vlan_filtering = false;
  features.bridge_vlan_filtering_reason = "fake kernel without CONFIG_BRIDGE_VLAN_FILTERING";
  LinkInfo lo;
  lo.ifindex = 1;
  lo.name = "lo";
  lo.admin_up = lo.oper_up = true;
  links.push_back(lo);
}

LinkInfo* FakeKernel::Find(const std::string& name) {
  for (auto& link : links)
    if (link.name == name) return &link;
  return nullptr;
}

LinkInfo* FakeKernel::Find(int ifindex) {
  for (auto& link : links)
    if (link.ifindex == ifindex) return &link;
  return nullptr;
}

LinkInfo& FakeKernel::NewLink(const std::string& name, const std::string& kind,
                              const std::string& alias) {
  LinkInfo link;
  link.ifindex = next_ifindex_++;
  link.name = name;
  link.kind = kind;
  link.alias = alias;
  link.mac = MacAddress::FromU64(0x020000000000ULL + static_cast<uint64_t>(link.ifindex));
  links.push_back(link);
  return links.back();
}

LinkInfo& FakeKernel::AddForeignLink(const std::string& name, const std::string& kind) {
  return NewLink(name, kind, "");
}

Status FakeKernel::Begin(const std::string& call) {
  if (fail) {
    Status status = fail(call);
    if (!status.ok()) return status;
  }
  calls.push_back(call);
  return Status::Ok();
}

Result<std::vector<LinkInfo>> FakeKernel::ListLinks() {
  reads.push_back("ListLinks");
  return links;
}

Result<std::vector<LinkInfo>> FakeKernel::ListLinksNamed(const std::vector<std::string>& names) {
  std::string read = "ListLinksNamed";
  for (const std::string& name : names) read += " " + name;
  reads.push_back(read);
  std::vector<LinkInfo> found;
  for (const LinkInfo& link : links)
    if (std::find(names.begin(), names.end(), link.name) != names.end()) found.push_back(link);
  return found;
}
Result<std::vector<FdbEntry>> FakeKernel::ListFdb() {
  reads.push_back("ListFdb");
  return fdb;
}

Result<std::vector<FdbEntry>> FakeKernel::ListBridgeFdb(int bridge_ifindex) {
  const LinkInfo* bridge = Find(bridge_ifindex);
  reads.push_back("ListBridgeFdb " + (bridge != nullptr ? bridge->name : "?"));
  std::vector<FdbEntry> entries;
  for (const FdbEntry& entry : fdb)
    if (entry.bridge_ifindex == bridge_ifindex) entries.push_back(entry);
  return entries;
}
Result<std::vector<PortVlanEntry>> FakeKernel::ListPortVlans() { return port_vlans; }
Result<KernelFeatures> FakeKernel::ProbeFeatures() { return features; }

Status FakeKernel::CreateBridge(const std::string& name, const BridgeSettings& settings,
                                const std::string& alias) {
  VF_RETURN_IF_ERROR(Begin("CreateBridge " + name));
  if (Find(name)) return Status::FromErrno("create bridge " + name, EEXIST);
  LinkInfo& link = NewLink(name, "bridge", alias);
  link.bridge = BridgeStatus{};
  link.bridge->settings = settings;
  if (!features.bridge_vlan_filtering) {
    link.bridge->settings.vlan_filtering = false;
    link.bridge->settings.default_pvid = 1;
  }
  return Status::Ok();
}

Status FakeKernel::SetBridgeSettings(const std::string& name, const BridgeSettings& settings) {
  VF_RETURN_IF_ERROR(Begin("SetBridgeSettings " + name));
  LinkInfo* link = Find(name);
  if (!link || !link->bridge) return Status::FromErrno("set bridge " + name, ENODEV);
  link->bridge->settings = settings;
  return Status::Ok();
}

Status FakeKernel::CreateTap(const std::string& name, const TapSettings& settings,
                             const std::string& alias) {
  VF_RETURN_IF_ERROR(Begin("CreateTap " + name));
  if (Find(name)) return Status::FromErrno("create tap " + name, EEXIST);
  LinkInfo& link = NewLink(name, "tun", alias);
  link.tap = TapStatus{settings, true, true};
  return Status::Ok();
}

Status FakeKernel::CreateVeth(const std::string& name, const std::string& peer,
                              const std::string& alias) {
  VF_RETURN_IF_ERROR(Begin("CreateVeth " + name));
  if (Find(name) || Find(peer)) return Status::FromErrno("create veth " + name, EEXIST);
  int a = NewLink(name, "veth", alias).ifindex;
  int b = NewLink(peer, "veth", alias).ifindex;
  Find(a)->link_ifindex = b;
  Find(b)->link_ifindex = a;
  return Status::Ok();
}

Status FakeKernel::DeleteLink(const std::string& name) {
  VF_RETURN_IF_ERROR(Begin("DeleteLink " + name));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("delete link " + name, ENODEV);
  std::vector<int> gone = {link->ifindex};
  if (link->kind == "veth" && link->link_ifindex) gone.push_back(link->link_ifindex);
  for (int ifindex : gone) {
    for (auto& other : links) {
      if (other.master_ifindex == ifindex) {
        other.master_ifindex = 0;
        other.brport.reset();
      }
    }
    std::erase_if(fdb, [&](const FdbEntry& e) {
      return e.port_ifindex == ifindex || e.bridge_ifindex == ifindex;
    });
    std::erase_if(port_vlans, [&](const PortVlanEntry& e) { return e.port_ifindex == ifindex; });
    std::erase_if(vxlan_flood, [&](const VxlanFloodEntry& e) { return e.ifindex == ifindex; });
    std::erase_if(links, [&](const LinkInfo& l) { return l.ifindex == ifindex; });
  }
  return Status::Ok();
}

Status FakeKernel::CreateVxlan(const std::string& name, const VxlanSettings& settings,
                               const std::string& alias) {
  VF_RETURN_IF_ERROR(Begin("CreateVxlan " + name));
  if (Find(name)) return Status::FromErrno("create vxlan " + name, EEXIST);
  NewLink(name, "vxlan", alias).vxlan = settings;
  return Status::Ok();
}

Status FakeKernel::AddVxlanFlood(const std::string& device, const IpPrefix& dst) {
  VF_RETURN_IF_ERROR(Begin("AddVxlanFlood " + device + " " + dst.AddressText()));
  LinkInfo* link = Find(device);
  if (!link || link->kind != "vxlan") return Status::FromErrno("add flood " + device, ENODEV);
  const VxlanFloodEntry entry{link->ifindex, dst};
  if (std::find(vxlan_flood.begin(), vxlan_flood.end(), entry) != vxlan_flood.end())
    return Status::FromErrno("add flood " + device, EEXIST);
  vxlan_flood.push_back(entry);
  return Status::Ok();
}

Status FakeKernel::DeleteVxlanFlood(const std::string& device, const IpPrefix& dst) {
  VF_RETURN_IF_ERROR(Begin("DeleteVxlanFlood " + device + " " + dst.AddressText()));
  LinkInfo* link = Find(device);
  if (!link) return Status::FromErrno("delete flood " + device, ENODEV);
  const VxlanFloodEntry entry{link->ifindex, dst};
  if (std::erase(vxlan_flood, entry) == 0)
    return Status::FromErrno("delete flood " + device, ENOENT);
  return Status::Ok();
}

Status FakeKernel::SetAlias(const std::string& name, const std::string& alias) {
  VF_RETURN_IF_ERROR(Begin("SetAlias " + name));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("set alias " + name, ENODEV);
  link->alias = alias;
  return Status::Ok();
}

Status FakeKernel::SetLinkUp(const std::string& name, bool up) {
  VF_RETURN_IF_ERROR(Begin(std::string(up ? "SetLinkUp " : "SetLinkDown ") + name));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("set link " + name, ENODEV);
  link->admin_up = up;
  return Status::Ok();
}

Status FakeKernel::SetMaster(const std::string& name, const std::string& bridge) {
  VF_RETURN_IF_ERROR(Begin("SetMaster " + name + " " + (bridge.empty() ? "-" : bridge)));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("set master " + name, ENODEV);
  if (bridge.empty()) {
    link->master_ifindex = 0;
    link->brport.reset();
    return Status::Ok();
  }
  LinkInfo* master = Find(bridge);
  if (!master || master->kind != "bridge")
    return Status::FromErrno("set master " + name + " -> " + bridge, ENODEV);
  link->master_ifindex = master->ifindex;
  link->brport = BridgePortStatus{};
  BridgePortSettings& s = link->brport->settings;
  s.cost = 100;
  s.priority = 32;
  s.learning = true;
  s.flood = true;
  s.hairpin = s.isolated = s.bpdu_guard = s.root_block = false;
  return Status::Ok();
}

Status FakeKernel::SetBridgePortSettings(const std::string& name,
                                         const BridgePortSettings& settings) {
  VF_RETURN_IF_ERROR(Begin("SetBridgePortSettings " + name));
  LinkInfo* link = Find(name);
  if (!link || !link->brport) return Status::FromErrno("set bridge port " + name, EOPNOTSUPP);
  BridgePortSettings& s = link->brport->settings;
  auto take = [](const auto& from, auto& to) {
    if (from) to = from;
  };
  take(settings.cost, s.cost);
  take(settings.priority, s.priority);
  take(settings.learning, s.learning);
  take(settings.flood, s.flood);
  take(settings.hairpin, s.hairpin);
  take(settings.isolated, s.isolated);
  take(settings.bpdu_guard, s.bpdu_guard);
  take(settings.root_block, s.root_block);
  return Status::Ok();
}

Status FakeKernel::MoveToNetns(const std::string& name, const std::string& netns) {
  VF_RETURN_IF_ERROR(Begin("MoveToNetns " + name + " " + netns));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("move " + name + " to netns " + netns, ENODEV);
  const int ifindex = link->ifindex;
  std::erase_if(links, [&](const LinkInfo& l) { return l.ifindex == ifindex; });
  return Status::Ok();
}

Status FakeKernel::AddStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) {
  VF_RETURN_IF_ERROR(Begin("AddStaticFdb " + port + " " + mac.ToString()));
  LinkInfo* link = Find(port);
  if (!link || !link->master_ifindex) return Status::FromErrno("add fdb on " + port, ENODEV);
  for (auto& e : fdb) {
    if (e.port_ifindex == link->ifindex && e.mac == mac && e.vlan == vlan) {
      e.is_static = true;
      return Status::Ok();
    }
  }
  fdb.push_back({link->ifindex, link->master_ifindex, mac, vlan, true, false});
  return Status::Ok();
}

Status FakeKernel::DeleteStaticFdb(const std::string& port, const MacAddress& mac, uint16_t vlan) {
  VF_RETURN_IF_ERROR(Begin("DeleteStaticFdb " + port + " " + mac.ToString()));
  LinkInfo* link = Find(port);
  if (!link) return Status::FromErrno("delete fdb on " + port, ENODEV);
  auto removed = std::erase_if(fdb, [&](const FdbEntry& e) {
    return e.port_ifindex == link->ifindex && e.mac == mac && e.vlan == vlan;
  });
  if (removed == 0) return Status::FromErrno("delete fdb on " + port, ENOENT);
  return Status::Ok();
}

Status FakeKernel::AddPortVlan(const std::string& port, uint16_t vid, bool pvid, bool untagged) {
  VF_RETURN_IF_ERROR(Begin("AddPortVlan " + port + " " + std::to_string(vid)));
  LinkInfo* link = Find(port);
  if (!link) return Status::FromErrno("add vlan on " + port, ENODEV);
  if (pvid) {
    for (auto& e : port_vlans)
      if (e.port_ifindex == link->ifindex) e.pvid = false;
  }
  for (auto& e : port_vlans) {
    if (e.port_ifindex == link->ifindex && e.vid == vid) {
      e.pvid = pvid;
      e.untagged = untagged;
      return Status::Ok();
    }
  }
  port_vlans.push_back({link->ifindex, vid, pvid, untagged});
  return Status::Ok();
}

Status FakeKernel::DeletePortVlan(const std::string& port, uint16_t vid) {
  VF_RETURN_IF_ERROR(Begin("DeletePortVlan " + port + " " + std::to_string(vid)));
  LinkInfo* link = Find(port);
  if (!link) return Status::FromErrno("delete vlan on " + port, ENODEV);
  std::erase_if(port_vlans, [&](const PortVlanEntry& e) {
    return e.port_ifindex == link->ifindex && e.vid == vid;
  });
  return Status::Ok();
}

Result<LinkCounters> FakeKernel::ReadLinkCounters(const std::string& name) {
  if (Find(name) == nullptr) return Status::Error("link " + name + ": No such device", ENODEV);
  auto it = counters.find(name);
  return it == counters.end() ? LinkCounters{} : it->second;
}

std::string FakeKernel::BridgeRootIdFromSysfs(const std::string& bridge) {
  auto it = sysfs_root_ids.find(bridge);
  return it == sysfs_root_ids.end() ? "" : it->second;
}

Status FakeKernel::SetLinkMac(const std::string& name, const MacAddress& mac) {
  VF_RETURN_IF_ERROR(Begin("SetLinkMac " + name + " " + mac.ToString()));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("set address of " + name, ENODEV);
  link->mac = mac;
  return Status::Ok();
}

Status FakeKernel::SetMtu(const std::string& name, uint32_t mtu) {
  VF_RETURN_IF_ERROR(Begin("SetMtu " + name + " " + std::to_string(mtu)));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("set mtu of " + name, ENODEV);
  link->mtu = mtu;
  return Status::Ok();
}

Status FakeKernel::AddAddress(const std::string& name, const IpPrefix& prefix) {
  VF_RETURN_IF_ERROR(Begin("AddAddress " + name + " " + prefix.ToString()));
  LinkInfo* link = Find(name);
  if (!link) return Status::FromErrno("add address " + prefix.ToString() + " to " + name, ENODEV);
  for (const AddressEntry& e : addresses)
    if (e.ifindex == link->ifindex && e.prefix == prefix)
      return Status::FromErrno("add address " + prefix.ToString() + " to " + name, EEXIST);
  addresses.push_back({link->ifindex, prefix});
  return Status::Ok();
}

Status FakeKernel::DeleteAddress(const std::string& name, const IpPrefix& prefix) {
  VF_RETURN_IF_ERROR(Begin("DeleteAddress " + name + " " + prefix.ToString()));
  LinkInfo* link = Find(name);
  const std::string what = "delete address " + prefix.ToString() + " from " + name;
  if (!link) return Status::FromErrno(what, ENODEV);
  const int index = link->ifindex;
  if (std::erase_if(addresses, [&](const AddressEntry& e) {
        return e.ifindex == index && e.prefix == prefix;
      }) == 0)
    return Status::FromErrno(what, EADDRNOTAVAIL);
  return Status::Ok();
}

}  // namespace vfabric::netd::testing
