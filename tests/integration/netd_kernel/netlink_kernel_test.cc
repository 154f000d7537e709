// The netlink Kernel against the running kernel. Every test enters its own
// network namespace first and checks what it did twice: with the backend's
// own read-back (ListLinks / ListFdb / ListPortVlans) and with iproute2's
// JSON (ip -d -j link, bridge -j -d link, bridge -j fdb, bridge -j vlan).
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfabric/netd/kernel.h"
#include "vfabric/testing/support.h"

namespace vfabric::netd {
namespace {

using nlohmann::json;
using vfabric::testing::Run;

std::unique_ptr<Kernel> MakeKernel() {
  auto kernel = NewNetlinkKernel();
  EXPECT_TRUE(kernel.ok()) << kernel.status().message();
  return kernel.ok() ? std::move(*kernel) : nullptr;
}

// Runs an iproute2 command that prints JSON and parses it.
json RunJson(const std::vector<std::string>& argv) {
  auto result = Run(argv);
  EXPECT_EQ(result.exit_code, 0) << argv[0] << ": " << result.err;
  json parsed = json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << result.out;
  return parsed;
}

json IpLink(const std::string& name) {
  json links = RunJson({"ip", "-d", "-j", "link", "show", "dev", name});
  EXPECT_TRUE(links.is_array() && links.size() == 1) << links.dump();
  return links.is_array() && !links.empty() ? links[0] : json::object();
}

bool LinkExists(const std::string& name) {
  return Run({"ip", "link", "show", "dev", name}).exit_code == 0;
}

std::optional<LinkInfo> FindLink(Kernel& kernel, const std::string& name) {
  auto links = kernel.ListLinks();
  EXPECT_TRUE(links.ok()) << links.status().message();
  if (!links.ok()) return std::nullopt;
  for (const LinkInfo& link : *links)
    if (link.name == name) return link;
  return std::nullopt;
}

// iproute2 6.1 prints bridge ids as "1000.52:54:0:0:0:1" (prio hex, mac %x).
uint64_t ParseIpBridgeId(const std::string& text) {
  size_t dot = text.find('.');
  uint64_t packed = std::stoull(text.substr(0, dot), nullptr, 16) << 48;
  std::string mac = text.substr(dot + 1);
  uint64_t address = 0;
  size_t start = 0;
  for (int i = 0; i < 6; ++i) {
    size_t end = mac.find(':', start);
    address = address << 8 | std::stoull(mac.substr(start, end - start), nullptr, 16);
    start = end + 1;
  }
  return packed | address;
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Expected "user"/"group" in `ip -d -j link` tun info: the name if it resolves.
json UserJson(uint32_t uid) {
  passwd* entry = getpwuid(uid);
  return entry ? json(entry->pw_name) : json(uid);
}
json GroupJson(uint32_t gid) {
  group* entry = getgrgid(gid);
  return entry ? json(entry->gr_name) : json(gid);
}

BridgeSettings LabSettings() {
  BridgeSettings settings;
  settings.stp_enabled = true;
  settings.priority = 4096;
  settings.hello_time_cs = 100;
  settings.forward_delay_cs = 400;
  settings.max_age_cs = 1000;
  // The kernel keeps ageing in jiffies: with HZ=250 an odd number of
  // centiseconds reads back one less (12345 -> 12344); even values round-trip.
  settings.ageing_time_cs = 12300;
  return settings;
}

void ExpectBridgeJson(const json& link, const BridgeSettings& settings) {
  ASSERT_EQ(link["linkinfo"]["info_kind"], "bridge") << link.dump();
  const json& data = link["linkinfo"]["info_data"];
  EXPECT_EQ(data["stp_state"], settings.stp_enabled ? 1 : 0);
  EXPECT_EQ(data["priority"], settings.priority);
  EXPECT_EQ(data["hello_time"], settings.hello_time_cs);
  EXPECT_EQ(data["forward_delay"], settings.forward_delay_cs);
  EXPECT_EQ(data["max_age"], settings.max_age_cs);
  EXPECT_EQ(data["ageing_time"], settings.ageing_time_cs);
  EXPECT_EQ(data["vlan_filtering"], settings.vlan_filtering ? 1 : 0);
}

TEST(NetlinkKernel, CreateBridgeWithSettingsReadsBack) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  const BridgeSettings settings = LabSettings();
  Status status = kernel->CreateBridge("vfb-lab", settings, "vfabric:lab");
  ASSERT_TRUE(status.ok()) << status.message();

  auto link = FindLink(*kernel, "vfb-lab");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->kind, "bridge");
  EXPECT_EQ(link->alias, "vfabric:lab");
  EXPECT_FALSE(link->admin_up);  // created down
  ASSERT_TRUE(link->bridge);
  EXPECT_EQ(link->bridge->settings, settings);
  ASSERT_TRUE(link->bridge->bridge_id);
  EXPECT_EQ(*link->bridge->bridge_id >> 48, 4096u);
  EXPECT_TRUE(link->bridge->root_id);
  EXPECT_EQ(link->bridge->root_port, 0);
  EXPECT_EQ(link->bridge->root_path_cost, 0u);
  EXPECT_TRUE(link->bridge->topology_change);
  EXPECT_TRUE(link->bridge->topology_change_timer_cs);

  json ip = IpLink("vfb-lab");
  EXPECT_EQ(ip["ifalias"], "vfabric:lab");
  ExpectBridgeJson(ip, settings);
  EXPECT_EQ(ParseIpBridgeId(ip["linkinfo"]["info_data"]["bridge_id"]), *link->bridge->bridge_id);
  // And sysfs, in the kernel's own "%04x.%012x" form.
  EXPECT_EQ(Trim(vfabric::testing::ReadFile("/sys/class/net/vfb-lab/bridge/bridge_id")),
            FormatBridgeId(*link->bridge->bridge_id));
}

// Issue 18: a bridge's MAC, MTU and host addresses, set and read back (and
// compared with iproute2's view).
TEST(NetlinkKernel, BridgeMacMtuAndAddresses) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-ad", BridgeSettings{}, "").ok());
  const MacAddress mac = *MacAddress::Parse("02:00:00:12:34:56");
  Status set = kernel->SetLinkMac("vfb-ad", mac);
  ASSERT_TRUE(set.ok()) << set.message();
  ASSERT_TRUE(kernel->SetMtu("vfb-ad", 1400).ok());
  auto link = FindLink(*kernel, "vfb-ad");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->mac, mac);
  EXPECT_EQ(link->mtu, 1400u);
  EXPECT_EQ(IpLink("vfb-ad")["address"], "02:00:00:12:34:56");

  const IpPrefix v4 = *IpPrefix::Parse("10.66.0.1/24");
  const IpPrefix v6 = *IpPrefix::Parse("fd66::1/64");
  for (const IpPrefix& prefix : {v4, v6}) {
    Status added = kernel->AddAddress("vfb-ad", prefix);
    ASSERT_TRUE(added.ok()) << added.message();
  }
  Status again = kernel->AddAddress("vfb-ad", v4);
  EXPECT_EQ(again.error_number(), EEXIST);
  EXPECT_EQ(again.message().rfind("add address 10.66.0.1/24 to vfb-ad: ", 0), 0u)
      << again.message();
  auto on_bridge = [&] {
    std::vector<std::string> out;
    auto addresses = kernel->ListAddresses();
    EXPECT_TRUE(addresses.ok()) << addresses.status().message();
    if (addresses.ok())
      for (const AddressEntry& e : *addresses)
        if (e.ifindex == link->ifindex && !e.prefix.IsIpv6LinkLocal())
          out.push_back(e.prefix.ToString());
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(on_bridge(), (std::vector<std::string>{"10.66.0.1/24", "fd66::1/64"}));
  json ip = RunJson({"ip", "-j", "addr", "show", "dev", "vfb-ad"});
  int seen = 0;
  for (const json& a : ip[0]["addr_info"])
    seen += a["local"] == "10.66.0.1" && a["prefixlen"] == 24;
  EXPECT_EQ(seen, 1) << ip.dump();
  ASSERT_TRUE(kernel->DeleteAddress("vfb-ad", v4).ok());
  EXPECT_EQ(on_bridge(), (std::vector<std::string>{"fd66::1/64"}));
  EXPECT_EQ(kernel->DeleteAddress("vfb-ad", v4).error_number(), EADDRNOTAVAIL);
}

TEST(NetlinkKernel, SetBridgeSettingsIsIdempotentAndChanges) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  const BridgeSettings settings = LabSettings();
  for (int i = 0; i < 2; ++i) {
    Status status = kernel->SetBridgeSettings("vfb-lab", settings);
    ASSERT_TRUE(status.ok()) << status.message();
    auto link = FindLink(*kernel, "vfb-lab");
    ASSERT_TRUE(link && link->bridge);
    EXPECT_EQ(link->bridge->settings, settings);
    ExpectBridgeJson(IpLink("vfb-lab"), settings);
  }
  BridgeSettings off;  // back to the defaults, STP off
  ASSERT_TRUE(kernel->SetBridgeSettings("vfb-lab", off).ok());
  auto link = FindLink(*kernel, "vfb-lab");
  ASSERT_TRUE(link && link->bridge);
  EXPECT_EQ(link->bridge->settings, off);
  ExpectBridgeJson(IpLink("vfb-lab"), off);

  Status missing = kernel->SetBridgeSettings("vfb-nope", off);
  EXPECT_EQ(missing.message(), "set bridge settings vfb-nope: No such device");
}

TEST(NetlinkKernel, ErrorsNameTheObjectAndCarryErrno) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  Status again = kernel->CreateBridge("vfb-lab", BridgeSettings{}, "");
  EXPECT_EQ(again.message(), "create bridge vfb-lab: File exists");
  EXPECT_EQ(again.error_number(), EEXIST);

  ASSERT_TRUE(kernel->CreateVeth("vm1-eth0", "vm1-eth0p", "").ok());
  Status master = kernel->SetMaster("vm1-eth0", "vfb-nope");
  EXPECT_EQ(master.message(), "set master vm1-eth0 -> vfb-nope: No such device");
  EXPECT_EQ(master.error_number(), ENODEV);

  Status tap = kernel->CreateTap("vm1-eth0", TapSettings{}, "");
  EXPECT_EQ(tap.message(), "create tap vm1-eth0: File exists");

  Status veth = kernel->CreateVeth("vm1-eth0", "other", "");
  EXPECT_EQ(veth.error_number(), EEXIST) << veth.message();
  EXPECT_EQ(veth.message().rfind("create veth vm1-eth0 peer other: File exists", 0), 0u)
      << veth.message();

  // The kernel's extended ack text rides along when it sends one.
  ASSERT_TRUE(kernel->CreateBridge("vfb-b", BridgeSettings{}, "").ok());
  Status loop = kernel->SetMaster("vfb-b", "vfb-lab");
  EXPECT_EQ(loop.error_number(), ELOOP) << loop.message();
  EXPECT_EQ(loop.message().rfind("set master vfb-b -> vfb-lab: ", 0), 0u) << loop.message();
  EXPECT_NE(loop.message().find("(Can not enslave a bridge to a bridge)"), std::string::npos)
      << loop.message();

  Status del = kernel->DeleteLink("nope0");
  EXPECT_EQ(del.message(), "delete link nope0: No such device");

  // An out-of-range timer: the kernel's ERANGE, with its extack text if any.
  BridgeSettings bad = LabSettings();
  bad.forward_delay_cs = 100;  // below 2 s with STP on
  Status range = kernel->SetBridgeSettings("vfb-lab", bad);
  EXPECT_FALSE(range.ok());
  EXPECT_EQ(range.message().rfind("set bridge settings vfb-lab: ", 0), 0u) << range.message();
  std::cout << "out-of-range forward delay: " << range.message() << "\n";
}

TEST(NetlinkKernel, CreateTapReadsBack) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  TapSettings settings;
  settings.owner = 1000;
  settings.group = 100;
  settings.multi_queue = true;
  settings.vnet_hdr = true;
  Status status = kernel->CreateTap("vm1-eth0", settings, "vfabric:vm1");
  ASSERT_TRUE(status.ok()) << status.message();

  auto link = FindLink(*kernel, "vm1-eth0");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->kind, "tun");
  EXPECT_EQ(link->alias, "vfabric:vm1");
  ASSERT_TRUE(link->tap);
  EXPECT_EQ(link->tap->settings, settings);
  EXPECT_TRUE(link->tap->is_tap);
  EXPECT_TRUE(link->tap->persistent);

  json ip = IpLink("vm1-eth0");
  EXPECT_EQ(ip["ifalias"], "vfabric:vm1");
  ASSERT_EQ(ip["linkinfo"]["info_kind"], "tun") << ip.dump();
  const json& data = ip["linkinfo"]["info_data"];
  EXPECT_EQ(data["type"], "tap");
  EXPECT_EQ(data["pi"], false);
  EXPECT_EQ(data["vnet_hdr"], true);
  EXPECT_EQ(data["multi_queue"], true);
  EXPECT_EQ(data["persist"], true);
  EXPECT_EQ(data["user"], UserJson(1000));
  EXPECT_EQ(data["group"], GroupJson(100));

  // A plain one: no owner or group, single queue, no vnet header.
  TapSettings plain;
  plain.vnet_hdr = false;
  ASSERT_TRUE(kernel->CreateTap("vm2-eth0", plain, "").ok());
  link = FindLink(*kernel, "vm2-eth0");
  ASSERT_TRUE(link && link->tap);
  EXPECT_EQ(link->tap->settings, plain);
  EXPECT_EQ(link->alias, "");
  const json plain_data = IpLink("vm2-eth0")["linkinfo"]["info_data"];
  EXPECT_EQ(plain_data["vnet_hdr"], false);
  EXPECT_EQ(plain_data["multi_queue"], false);
  EXPECT_FALSE(plain_data.contains("user"));
}

TEST(NetlinkKernel, CreateVethPairBothEndsCarryAlias) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  Status status = kernel->CreateVeth("uplink0", "uplink0-p", "vfabric:lab");
  ASSERT_TRUE(status.ok()) << status.message();
  auto end = FindLink(*kernel, "uplink0");
  auto peer = FindLink(*kernel, "uplink0-p");
  ASSERT_TRUE(end && peer);
  EXPECT_EQ(end->kind, "veth");
  EXPECT_EQ(peer->kind, "veth");
  EXPECT_EQ(end->alias, "vfabric:lab");
  EXPECT_EQ(peer->alias, "vfabric:lab");
  EXPECT_EQ(end->link_ifindex, peer->ifindex);
  EXPECT_EQ(peer->link_ifindex, end->ifindex);

  json ip = IpLink("uplink0");
  EXPECT_EQ(ip["linkinfo"]["info_kind"], "veth");
  EXPECT_EQ(ip["link"], "uplink0-p");
  EXPECT_EQ(ip["ifalias"], "vfabric:lab");
  EXPECT_EQ(IpLink("uplink0-p")["ifalias"], "vfabric:lab");
}

TEST(NetlinkKernel, LinkUpAliasAndDelete) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel->CreateTap("vm1-eth0", TapSettings{}, "").ok());
  ASSERT_TRUE(kernel->CreateVeth("ve0", "ve0-p", "").ok());

  ASSERT_TRUE(kernel->SetLinkUp("vfb-lab", true).ok());
  ASSERT_TRUE(kernel->SetLinkUp("vfb-lab", true).ok());  // idempotent
  auto link = FindLink(*kernel, "vfb-lab");
  ASSERT_TRUE(link);
  EXPECT_TRUE(link->admin_up);
  json flags = IpLink("vfb-lab")["flags"];
  EXPECT_NE(std::find(flags.begin(), flags.end(), "UP"), flags.end()) << flags.dump();
  ASSERT_TRUE(kernel->SetLinkUp("vfb-lab", false).ok());
  EXPECT_FALSE(FindLink(*kernel, "vfb-lab")->admin_up);

  ASSERT_TRUE(kernel->SetAlias("vm1-eth0", "first").ok());
  ASSERT_TRUE(kernel->SetAlias("vm1-eth0", "second").ok());
  EXPECT_EQ(FindLink(*kernel, "vm1-eth0")->alias, "second");
  EXPECT_EQ(IpLink("vm1-eth0")["ifalias"], "second");
  ASSERT_TRUE(kernel->SetAlias("vm1-eth0", "").ok());  // clears it
  EXPECT_EQ(FindLink(*kernel, "vm1-eth0")->alias, "");
  EXPECT_FALSE(IpLink("vm1-eth0").contains("ifalias"));

  for (const char* name : {"vfb-lab", "vm1-eth0", "ve0"}) {
    Status status = kernel->DeleteLink(name);
    EXPECT_TRUE(status.ok()) << status.message();
    EXPECT_FALSE(FindLink(*kernel, name)) << name;
    EXPECT_FALSE(LinkExists(name)) << name;
  }
  EXPECT_FALSE(LinkExists("ve0-p"));  // the peer goes with it
  EXPECT_EQ(kernel->SetLinkUp("vfb-lab", true).message(), "set link up vfb-lab: No such device");
}

TEST(NetlinkKernel, EnslaveAndBridgePortSettingsReadBack) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel->CreateTap("vm1-eth0", TapSettings{}, "").ok());
  Status status = kernel->SetMaster("vm1-eth0", "vfb-lab");
  ASSERT_TRUE(status.ok()) << status.message();
  status = kernel->SetMaster("vm1-eth0", "vfb-lab");  // again: no error
  ASSERT_TRUE(status.ok()) << status.message();
  auto bridge = FindLink(*kernel, "vfb-lab");
  auto port = FindLink(*kernel, "vm1-eth0");
  ASSERT_TRUE(bridge && port);
  EXPECT_EQ(port->master_ifindex, bridge->ifindex);
  ASSERT_TRUE(port->brport);
  // The kernel's defaults, every field set on read-back.
  EXPECT_EQ(port->brport->settings.learning, true);
  EXPECT_EQ(port->brport->settings.flood, true);
  EXPECT_EQ(port->brport->settings.hairpin, false);
  EXPECT_EQ(port->brport->settings.priority, 32u);
  EXPECT_TRUE(port->brport->settings.cost);
  EXPECT_TRUE(port->brport->port_no);
  EXPECT_TRUE(port->brport->port_id);
  EXPECT_TRUE(port->brport->designated_root);
  EXPECT_EQ(IpLink("vm1-eth0")["master"], "vfb-lab");

  BridgePortSettings settings;
  settings.cost = 7;
  settings.priority = 5;
  settings.learning = false;
  settings.flood = false;
  settings.hairpin = true;
  settings.isolated = true;
  settings.bpdu_guard = true;
  settings.root_block = true;
  for (int i = 0; i < 2; ++i) {
    status = kernel->SetBridgePortSettings("vm1-eth0", settings);
    ASSERT_TRUE(status.ok()) << status.message();
  }
  port = FindLink(*kernel, "vm1-eth0");
  ASSERT_TRUE(port && port->brport);
  EXPECT_EQ(port->brport->settings, settings);

  json links = RunJson({"bridge", "-j", "-d", "link", "show", "dev", "vm1-eth0"});
  ASSERT_TRUE(links.is_array() && links.size() == 1) << links.dump();
  const json& br = links[0];
  EXPECT_EQ(br["master"], "vfb-lab");
  EXPECT_EQ(br["cost"], 7);
  EXPECT_EQ(br["priority"], 5);
  EXPECT_EQ(br["learning"], false);
  EXPECT_EQ(br["flood"], false);
  EXPECT_EQ(br["hairpin"], true);
  EXPECT_EQ(br["isolated"], true);
  EXPECT_EQ(br["guard"], true);       // IFLA_BRPORT_GUARD: BPDU guard
  EXPECT_EQ(br["root_block"], true);  // IFLA_BRPORT_PROTECT
  EXPECT_EQ(br["state"], "disabled");
  EXPECT_EQ(port->brport->state, 0);  // BR_STATE_DISABLED

  // Only the given fields change.
  BridgePortSettings partial;
  partial.bpdu_guard = false;
  ASSERT_TRUE(kernel->SetBridgePortSettings("vm1-eth0", partial).ok());
  port = FindLink(*kernel, "vm1-eth0");
  ASSERT_TRUE(port && port->brport);
  EXPECT_EQ(port->brport->settings.bpdu_guard, false);
  EXPECT_EQ(port->brport->settings.root_block, true);
  EXPECT_EQ(port->brport->settings.cost, 7u);
  links = RunJson({"bridge", "-j", "-d", "link", "show", "dev", "vm1-eth0"});
  EXPECT_EQ(links[0]["guard"], false);
  EXPECT_EQ(links[0]["root_block"], true);

  status = kernel->SetMaster("vm1-eth0", "");
  ASSERT_TRUE(status.ok()) << status.message();
  port = FindLink(*kernel, "vm1-eth0");
  ASSERT_TRUE(port);
  EXPECT_EQ(port->master_ifindex, 0);
  EXPECT_FALSE(port->brport);
  EXPECT_FALSE(IpLink("vm1-eth0").contains("master"));

  // Settings on a link that is no bridge port: the kernel's reason.
  Status not_port = kernel->SetBridgePortSettings("vm1-eth0", settings);
  EXPECT_FALSE(not_port.ok());
  EXPECT_EQ(not_port.message().rfind("set bridge port settings vm1-eth0: ", 0), 0u)
      << not_port.message();
}

bool HasFdb(const std::vector<FdbEntry>& entries, const FdbEntry& wanted) {
  return std::find(entries.begin(), entries.end(), wanted) != entries.end();
}

json FindFdbJson(const std::string& mac) {
  json entries = RunJson({"bridge", "-j", "fdb", "show"});
  for (const json& entry : entries)
    if (entry["mac"] == mac) return entry;
  return json();
}

TEST(NetlinkKernel, StaticFdbAddListDelete) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel->CreateVeth("uplink0", "uplink0-p", "").ok());
  ASSERT_TRUE(kernel->SetMaster("uplink0", "vfb-lab").ok());
  auto bridge = FindLink(*kernel, "vfb-lab");
  auto port = FindLink(*kernel, "uplink0");
  ASSERT_TRUE(bridge && port);
  const MacAddress mac = *MacAddress::Parse("52:54:00:00:00:01");

  for (int i = 0; i < 2; ++i) {  // a second add is no error
    Status status = kernel->AddStaticFdb("uplink0", mac, 0);
    ASSERT_TRUE(status.ok()) << status.message();
  }
  FdbEntry wanted{port->ifindex,     bridge->ifindex, mac, 0, /*is_static=*/true,
                  /*is_local=*/false};
  auto entries = kernel->ListFdb();
  ASSERT_TRUE(entries.ok()) << entries.status().message();
  EXPECT_TRUE(HasFdb(*entries, wanted));
  // The port's own address is there as a local (permanent) entry.
  FdbEntry own{port->ifindex, bridge->ifindex, port->mac, 0, false, true};
  EXPECT_TRUE(HasFdb(*entries, own));

  json entry = FindFdbJson("52:54:00:00:00:01");
  ASSERT_FALSE(entry.is_null());
  EXPECT_EQ(entry["ifname"], "uplink0");
  EXPECT_EQ(entry["master"], "vfb-lab");
  EXPECT_EQ(entry["state"], "static");

  Status status = kernel->DeleteStaticFdb("uplink0", mac, 0);
  ASSERT_TRUE(status.ok()) << status.message();
  entries = kernel->ListFdb();
  ASSERT_TRUE(entries.ok());
  EXPECT_FALSE(HasFdb(*entries, wanted));
  EXPECT_TRUE(FindFdbJson("52:54:00:00:00:01").is_null());

  Status again = kernel->DeleteStaticFdb("uplink0", mac, 0);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(again.message().rfind("delete static fdb 52:54:00:00:00:01 on uplink0: ", 0), 0u)
      << again.message();
  Status no_port = kernel->AddStaticFdb("nope0", mac, 0);
  EXPECT_EQ(no_port.message(), "add static fdb 52:54:00:00:00:01 on nope0: No such device");
}

// Issue 21: a plan of one network reads its bridge's FDB alone, as
// `bridge fdb show br NAME` does: every entry of that bridge and its ports,
// none of another bridge's.
TEST(NetlinkKernel, ListBridgeFdbIsOneBridgesFdb) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  const MacAddress mac = *MacAddress::Parse("52:54:00:00:00:01");
  for (const std::string n : {"a", "b"}) {
    ASSERT_TRUE(kernel->CreateBridge("vfb-" + n, BridgeSettings{}, "").ok());
    ASSERT_TRUE(kernel->CreateVeth(n + "0", n + "0-p", "").ok());
    ASSERT_TRUE(kernel->SetMaster(n + "0", "vfb-" + n).ok());
    ASSERT_TRUE(kernel->AddStaticFdb(n + "0", mac, 0).ok());
  }
  auto a = FindLink(*kernel, "vfb-a");
  auto b = FindLink(*kernel, "vfb-b");
  auto a0 = FindLink(*kernel, "a0");
  ASSERT_TRUE(a && b && a0);
  auto all = kernel->ListFdb();
  ASSERT_TRUE(all.ok()) << all.status().message();
  auto of_a = kernel->ListBridgeFdb(a->ifindex);
  ASSERT_TRUE(of_a.ok()) << of_a.status().message();
  EXPECT_TRUE(HasFdb(*of_a, {a0->ifindex, a->ifindex, mac, 0, true, false}));
  EXPECT_TRUE(HasFdb(*of_a, {a0->ifindex, a->ifindex, a0->mac, 0, false, true}));
  size_t in_a = 0;
  for (const FdbEntry& entry : *all) in_a += entry.bridge_ifindex == a->ifindex;
  EXPECT_EQ(of_a->size(), in_a);
  for (const FdbEntry& entry : *of_a)
    EXPECT_EQ(entry.bridge_ifindex, a->ifindex) << entry.mac.ToString();
}

// Issue 21: a plan of one network reads the links it names, not a dump of
// every link; one that is not there is no error (the plan makes it).
TEST(NetlinkKernel, ListLinksNamedReadsThoseThatExist) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-a", BridgeSettings{}, "vfabric:a").ok());
  ASSERT_TRUE(kernel->CreateTap("a0", TapSettings{}, "vfabric:a").ok());
  ASSERT_TRUE(kernel->CreateTap("b0", TapSettings{}, "vfabric:b").ok());
  ASSERT_TRUE(kernel->SetMaster("a0", "vfb-a").ok());
  auto named = kernel->ListLinksNamed({"a0", "nope0", "vfb-a"});
  ASSERT_TRUE(named.ok()) << named.status().message();
  ASSERT_EQ(named->size(), 2u);
  for (const LinkInfo& link : *named) {
    auto dumped = FindLink(*kernel, link.name);
    ASSERT_TRUE(dumped) << link.name;
    // What the dump says of it, attribute for attribute that the plan reads.
    EXPECT_EQ(link.ifindex, dumped->ifindex);
    EXPECT_EQ(link.kind, dumped->kind);
    EXPECT_EQ(link.alias, dumped->alias);
    EXPECT_EQ(link.master_ifindex, dumped->master_ifindex);
    EXPECT_EQ(link.mac, dumped->mac);
    EXPECT_EQ(link.brport.has_value(), dumped->brport.has_value());
    EXPECT_EQ(link.bridge.has_value(), dumped->bridge.has_value());
    ASSERT_EQ(link.tap.has_value(), dumped->tap.has_value());
    if (link.tap) {
      EXPECT_EQ(link.tap->persistent, dumped->tap->persistent);
    }
  }
}

TEST(NetlinkKernel, MoveToNetns) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  vfabric::testing::ScopedNamedNetns netns("vftest");
  ASSERT_TRUE(netns.ok());
  ASSERT_TRUE(kernel->CreateVeth("ve0", "ve0-p", "").ok());
  Status status = kernel->MoveToNetns("ve0-p", netns.name());
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_FALSE(FindLink(*kernel, "ve0-p"));
  EXPECT_EQ(
      vfabric::testing::Run({"ip", "-n", netns.name(), "link", "show", "dev", "ve0-p"}).exit_code,
      0);
  EXPECT_EQ(kernel->MoveToNetns("ve0", "vf-none").message(),
            "move ve0 to netns vf-none: open /run/netns/vf-none: No such file or directory");
}

TEST(NetlinkKernel, MonitorSeesDeletedLinkWithinASecond) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  auto monitor = NewLinkMonitor();
  ASSERT_TRUE(monitor.ok()) << monitor.status().message();
  auto idle = (*monitor)->Drain();
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(*idle);  // nothing since it opened

  ASSERT_TRUE(kernel->DeleteLink("vfb-lab").ok());
  pollfd fd{(*monitor)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&fd, 1, 1000), 1);
  auto changed = (*monitor)->Drain();
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  changed = (*monitor)->Drain();
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);

  // FDB statics too (RTNLGRP_NEIGH).
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
  ASSERT_TRUE(kernel->CreateVeth("ve0", "ve0-p", "").ok());
  ASSERT_TRUE(kernel->SetMaster("ve0", "vfb-lab").ok());
  ASSERT_TRUE((*monitor)->Drain().ok());
  ASSERT_TRUE(kernel->AddStaticFdb("ve0", *MacAddress::Parse("52:54:00:00:00:09"), 0).ok());
  ASSERT_EQ(poll(&fd, 1, 1000), 1);
  changed = (*monitor)->Drain();
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
}

TEST(NetlinkKernel, OpenTapAndWriteAFrame) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  TapSettings settings;
  settings.vnet_hdr = false;
  ASSERT_TRUE(kernel->CreateTap("vm1-eth0", settings, "").ok());
  ASSERT_TRUE(kernel->SetLinkUp("vm1-eth0", true).ok());
  auto fd = OpenTap("vm1-eth0", /*vnet_hdr=*/false, /*multi_queue=*/false);
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  std::array<uint8_t, 60> frame{};
  std::fill_n(frame.begin(), 6, 0xff);                       // broadcast
  const uint8_t source[6] = {0x52, 0x54, 0x00, 0, 0, 0x02};  // 52:54:00:00:00:02
  std::copy(source, source + 6, frame.begin() + 6);
  frame[12] = 0x88;  // local experimental ethertype 0x88b5
  frame[13] = 0xb5;
  ssize_t written = write(fd->get(), frame.data(), frame.size());
  EXPECT_EQ(written, static_cast<ssize_t>(frame.size())) << std::strerror(errno);
  // The device is up with the fd attached: carrier. (The kernel's linkwatch
  // updates operstate asynchronously, up to a second later.)
  EXPECT_TRUE(vfabric::testing::WaitFor(
      [&] {
        auto link = FindLink(*kernel, "vm1-eth0");
        return link && link->oper_up;
      },
      3000));
  auto missing = OpenTap("vm9-eth0", false, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "open tap vm9-eth0: No such device");
  EXPECT_FALSE(LinkExists("vm9-eth0"));
  // Closing the fd leaves the persistent tap.
  fd = Status::Error("closed");
  EXPECT_TRUE(LinkExists("vm1-eth0"));
}

TEST(NetlinkKernel, OpenMultiQueueVnetHdrTapQueues) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  TapSettings settings;
  settings.multi_queue = true;
  settings.vnet_hdr = true;
  ASSERT_TRUE(kernel->CreateTap("vm1-eth0", settings, "").ok());
  ASSERT_TRUE(kernel->SetLinkUp("vm1-eth0", true).ok());
  auto queue0 = OpenTap("vm1-eth0", true, true);
  auto queue1 = OpenTap("vm1-eth0", true, true);
  ASSERT_TRUE(queue0.ok()) << queue0.status().message();
  ASSERT_TRUE(queue1.ok()) << queue1.status().message();
  EXPECT_EQ(IpLink("vm1-eth0")["linkinfo"]["info_data"]["numqueues"], 2);
  // A frame behind a zeroed struct virtio_net_hdr (10 bytes: no offloads).
  std::array<uint8_t, 10 + 60> packet{};
  std::fill_n(packet.begin() + 10, 6, 0xff);
  packet[10 + 6] = 0x52;
  packet[10 + 12] = 0x88;
  packet[10 + 13] = 0xb5;
  EXPECT_EQ(write(queue1->get(), packet.data(), packet.size()), static_cast<ssize_t>(packet.size()))
      << std::strerror(errno);
  // A single-queue open of a multi-queue tap: the kernel's EINVAL, named.
  auto mismatched = OpenTap("vm1-eth0", true, false);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.status().message(), "open tap vm1-eth0: TUNSETIFF: Invalid argument");
  queue0 = Status::Error("closed");
  queue1 = Status::Error("closed");
  // Persistent, so deleting it is a netlink request like any other link.
  ASSERT_TRUE(kernel->DeleteLink("vm1-eth0").ok());
  EXPECT_FALSE(LinkExists("vm1-eth0"));
}

TEST(NetlinkKernel, FormatBridgeId) {
  EXPECT_EQ(FormatBridgeId(0x8000525400000001ULL), "8000.525400000001");
  EXPECT_EQ(FormatBridgeId(0x1000000000000000ULL), "1000.000000000000");
  EXPECT_EQ(FormatBridgeId(0), "0000.000000000000");
}

TEST(NetlinkKernel, ProbeFeaturesLeavesNothingBehind) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  auto features = kernel->ProbeFeatures();
  ASSERT_TRUE(features.ok()) << features.status().message();
  EXPECT_TRUE(features->bridge);
  EXPECT_TRUE(features->veth);
  EXPECT_TRUE(features->tun);
  if (!features->bridge_vlan_filtering) {
    EXPECT_FALSE(features->bridge_vlan_filtering_reason.empty());
    std::cout << "bridge vlan filtering: " << features->bridge_vlan_filtering_reason << "\n";
  }
  auto links = kernel->ListLinks();
  ASSERT_TRUE(links.ok());
  for (const LinkInfo& link : *links) EXPECT_EQ(link.name.rfind("vfprobe-", 0), std::string::npos);
}

// Requires vlan filtering; skipped with the probed reason where the kernel lacks it.
TEST(NetlinkKernel, PortVlansAddListDelete) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  auto features = kernel->ProbeFeatures();
  ASSERT_TRUE(features.ok());
  if (!features->bridge_vlan_filtering) {
    // The bridge refuses filtering with the same reason, naming itself.
    BridgeSettings settings;
    settings.vlan_filtering = true;
    Status refused = kernel->CreateBridge("vfb-lab", settings, "");
    EXPECT_FALSE(refused.ok());
    EXPECT_EQ(refused.message().rfind("create bridge vfb-lab: ", 0), 0u) << refused.message();
    EXPECT_FALSE(LinkExists("vfb-lab"));
    // Port VLAN calls fail with the kernel's reason, naming the port.
    ASSERT_TRUE(kernel->CreateBridge("vfb-lab", BridgeSettings{}, "").ok());
    ASSERT_TRUE(kernel->CreateTap("vm1-eth0", TapSettings{}, "").ok());
    ASSERT_TRUE(kernel->SetMaster("vm1-eth0", "vfb-lab").ok());
    Status add = kernel->AddPortVlan("vm1-eth0", 10, true, true);
    EXPECT_FALSE(add.ok());
    EXPECT_EQ(add.message().rfind("add vlan 10 on vm1-eth0: ", 0), 0u) << add.message();
    std::cout << "AddPortVlan without vlan filtering: " << add.message() << "\n";
    auto vlans = kernel->ListPortVlans();
    ASSERT_TRUE(vlans.ok()) << vlans.status().message();
    EXPECT_TRUE(vlans->empty());
    GTEST_SKIP() << "bridge vlan filtering: " << features->bridge_vlan_filtering_reason;
  }
  BridgeSettings settings;
  settings.vlan_filtering = true;
  ASSERT_TRUE(kernel->CreateBridge("vfb-lab", settings, "").ok());
  auto bridge = FindLink(*kernel, "vfb-lab");
  ASSERT_TRUE(bridge && bridge->bridge);
  EXPECT_TRUE(bridge->bridge->settings.vlan_filtering);
  ASSERT_TRUE(kernel->CreateTap("vm1-eth0", TapSettings{}, "").ok());
  ASSERT_TRUE(kernel->SetMaster("vm1-eth0", "vfb-lab").ok());
  auto port = FindLink(*kernel, "vm1-eth0");
  ASSERT_TRUE(port);
  Status status = kernel->AddPortVlan("vm1-eth0", 10, /*pvid=*/true, /*untagged=*/true);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_TRUE(kernel->AddPortVlan("vfb-lab", 10, false, false).ok());
  auto vlans = kernel->ListPortVlans();
  ASSERT_TRUE(vlans.ok());
  PortVlanEntry wanted{port->ifindex, 10, true, true};
  EXPECT_NE(std::find(vlans->begin(), vlans->end(), wanted), vlans->end());
  json shown = RunJson({"bridge", "-j", "vlan", "show", "dev", "vm1-eth0"});
  EXPECT_NE(shown.dump().find("\"vlan\":10"), std::string::npos) << shown.dump();
  ASSERT_TRUE(kernel->DeletePortVlan("vm1-eth0", 10).ok());
  vlans = kernel->ListPortVlans();
  ASSERT_TRUE(vlans.ok());
  EXPECT_EQ(std::find(vlans->begin(), vlans->end(), wanted), vlans->end());
}

// STP between two kernel bridges over a veth: the lower-priority bridge is
// root, and the other one says so over netlink, in sysfs and in `ip -d link`.
TEST(NetlinkKernel, StpRootIdAgreesAcrossNetlinkSysfsAndIproute2) {
  VF_REQUIRE_PRIVATE_NETNS();
  auto kernel = MakeKernel();
  ASSERT_TRUE(kernel);
  BridgeSettings root = LabSettings();
  root.priority = 4096;
  BridgeSettings other = LabSettings();
  other.priority = 32768;
  ASSERT_TRUE(kernel->CreateBridge("vfb-a", root, "").ok());
  ASSERT_TRUE(kernel->CreateBridge("vfb-b", other, "").ok());
  ASSERT_TRUE(kernel->CreateVeth("ab0", "ab0-p", "").ok());
  ASSERT_TRUE(kernel->SetMaster("ab0", "vfb-a").ok());
  ASSERT_TRUE(kernel->SetMaster("ab0-p", "vfb-b").ok());
  for (const char* name : {"ab0", "ab0-p", "vfb-a", "vfb-b"})
    ASSERT_TRUE(kernel->SetLinkUp(name, true).ok());

  uint64_t root_id = 0;
  std::optional<LinkInfo> b;
  bool converged = vfabric::testing::WaitFor(
      [&] {
        auto a = FindLink(*kernel, "vfb-a");
        b = FindLink(*kernel, "vfb-b");
        if (!a || !b || !a->bridge || !b->bridge || !a->bridge->bridge_id) return false;
        root_id = *a->bridge->bridge_id;
        return b->bridge->root_id == root_id;
      },
      5000);
  ASSERT_TRUE(converged) << "vfb-b never saw vfb-a as root";
  EXPECT_NE(b->bridge->root_port.value_or(0), 0);
  EXPECT_GT(b->bridge->root_path_cost.value_or(0), 0u);
  EXPECT_EQ(Trim(vfabric::testing::ReadFile("/sys/class/net/vfb-b/bridge/root_id")),
            FormatBridgeId(root_id));
  // iproute2 6.1 prints IFLA_BR_BRIDGE_ID as "root_id" (fixed upstream in 2023,
  // "iplink_bridge: fix incorrect root id dump"): the kernel is right, as
  // sysfs and netlink agree; accept the known misprint and say so.
  json ip = IpLink("vfb-b");
  const json& data = ip["linkinfo"]["info_data"];
  uint64_t ip_root = ParseIpBridgeId(data["root_id"]);
  if (ip_root != root_id) {
    EXPECT_EQ(ip_root, ParseIpBridgeId(data["bridge_id"])) << ip.dump();
    EXPECT_EQ(ip_root, *b->bridge->bridge_id);
    std::cout
        << "iproute2 misprints root_id as the bridge's own id (iproute2 bug, fixed upstream)\n";
  }
  EXPECT_EQ(data["root_port"], *b->bridge->root_port);
  EXPECT_EQ(data["root_path_cost"], *b->bridge->root_path_cost);
  // The port on the root side: vfb-a is designated root for it too.
  auto port = FindLink(*kernel, "ab0-p");
  ASSERT_TRUE(port && port->brport);
  EXPECT_EQ(port->brport->designated_root, root_id);
}

}  // namespace
}  // namespace vfabric::netd
