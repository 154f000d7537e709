// The handover state (netd/handover.h): a round trip keeps every field and
// the descriptors; a truncated, corrupt or foreign state is refused with the
// reason and owns no descriptor (netd then starts cold).
#include "vfabric/netd/handover.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace vfabric::netd {
namespace {

UniqueFd NullFd() { return UniqueFd(::open("/dev/null", O_RDONLY)); }  // no O_CLOEXEC

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

HandoverState Sample() {
  HandoverState state;
  state.stopped_ns = 123456789;
  state.kernel_features =
      KernelFeatures{true, false, true, true, "no CONFIG_BRIDGE_VLAN_FILTERING"};
  HandedOverNetwork net;
  net.name = "fast";
  HandedOverPort tap;
  tap.name = "vm1-eth0";
  tap.id = 0;
  tap.backend = "tap";
  tap.identity = "ifindex 7";
  tap.stp = bridge::StpState::kForwarding;
  tap.port.kind = bridge::PortKind::kTap;
  tap.port.fds.push_back(NullFd());
  net.ports.push_back(std::move(tap));
  HandedOverPort uplink;
  uplink.name = "uplink0";
  uplink.id = 3;
  uplink.backend = "veth";
  uplink.identity = "ifindex 9";
  uplink.stp = bridge::StpState::kDiscarding;
  uplink.port.kind = bridge::PortKind::kPacketSocket;
  uplink.port.fds.push_back(NullFd());
  uplink.port.fds.push_back(NullFd());
  uplink.port.values = {{"slot", 17}, {"ring_bytes", 8u << 20}};
  net.ports.push_back(std::move(uplink));
  net.tree = bridge::TreeHandover{{0x00, 0x7f, 0xff, 0x10}, {"vm1-eth0", "", "", "uplink0"}};
  bridge::FdbEntry entry;
  entry.vlan = 10;
  entry.mac = *MacAddress::Parse("52:54:00:00:00:01");
  entry.port = 3;
  entry.age_ns = 5000000000;
  net.learned.push_back(entry);
  state.networks.push_back(std::move(net));
  state.networks.push_back(HandedOverNetwork{"empty", {}, std::nullopt, {}});
  return state;
}

TEST(HandoverStateTest, RoundTripKeepsEveryFieldAndTheDescriptors) {
  HandoverState state = Sample();
  const std::set<int> fds = state.Fds();
  ASSERT_EQ(fds.size(), 3u);
  const std::string text = SerializeHandover(state);
  // The new image owns the same descriptors: the old state lets go of them
  // (across an exec nothing is destroyed; here, release them by hand).
  std::vector<int> released;
  for (HandedOverPort& port : state.networks[0].ports)
    for (UniqueFd& fd : port.port.fds) released.push_back(fd.Release());
  auto parsed = ParseHandover(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->Fds(), fds);
  EXPECT_EQ(parsed->stopped_ns, 123456789);
  ASSERT_TRUE(parsed->kernel_features.has_value());
  EXPECT_TRUE(parsed->kernel_features->bridge);
  EXPECT_FALSE(parsed->kernel_features->bridge_vlan_filtering);
  EXPECT_TRUE(parsed->kernel_features->veth);
  EXPECT_TRUE(parsed->kernel_features->tun);
  EXPECT_EQ(parsed->kernel_features->bridge_vlan_filtering_reason,
            "no CONFIG_BRIDGE_VLAN_FILTERING");
  ASSERT_EQ(parsed->networks.size(), 2u);
  const HandedOverNetwork& net = parsed->networks[0];
  EXPECT_EQ(net.name, "fast");
  ASSERT_EQ(net.ports.size(), 2u);
  EXPECT_EQ(net.ports[0].name, "vm1-eth0");
  EXPECT_EQ(net.ports[0].port.kind, bridge::PortKind::kTap);
  EXPECT_EQ(net.ports[1].id, 3);
  EXPECT_EQ(net.ports[1].backend, "veth");
  EXPECT_EQ(net.ports[1].identity, "ifindex 9");
  EXPECT_EQ(net.ports[1].stp, bridge::StpState::kDiscarding);
  EXPECT_EQ(net.ports[1].port.kind, bridge::PortKind::kPacketSocket);
  EXPECT_EQ(net.ports[1].port.values.at("slot"), 17u);
  EXPECT_EQ(net.ports[1].port.values.at("ring_bytes"), 8u << 20);
  ASSERT_TRUE(net.tree.has_value());
  EXPECT_EQ(net.tree->engine, (std::vector<uint8_t>{0x00, 0x7f, 0xff, 0x10}));
  EXPECT_EQ(net.tree->names, (std::vector<std::string>{"vm1-eth0", "", "", "uplink0"}));
  ASSERT_EQ(net.learned.size(), 1u);
  EXPECT_EQ(net.learned[0].mac.ToString(), "52:54:00:00:00:01");
  EXPECT_EQ(net.learned[0].vlan, 10);
  EXPECT_EQ(net.learned[0].port, 3);
  EXPECT_EQ(net.learned[0].age_ns, 5000000000u);
  EXPECT_FALSE(parsed->networks[1].tree.has_value());
  // Serialized again: the same text.
  EXPECT_EQ(SerializeHandover(*parsed), text);
  // The parsed state owns them: destroyed, they are closed.
  parsed = Status::Error("dropped");
  for (int fd : released) EXPECT_FALSE(IsOpen(fd)) << fd;
}

TEST(HandoverStateTest, RefusesTruncatedCorruptAndForeignStatesOwningNothing) {
  HandoverState state = Sample();
  const std::string text = SerializeHandover(state);
  auto refused = [&](const std::string& bad) {
    auto parsed = ParseHandover(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    // Nothing owned: the descriptors are still open (state holds them).
    for (int fd : state.Fds()) EXPECT_TRUE(IsOpen(fd));
    return parsed.ok() ? std::string() : parsed.status().message();
  };
  EXPECT_NE(refused("").find("not JSON"), std::string::npos);
  EXPECT_NE(refused(text.substr(0, text.size() / 2)).find("not JSON"), std::string::npos);
  std::string corrupt = text;
  const size_t at = corrupt.find("uplink0");
  corrupt[at] = 'U';
  EXPECT_NE(refused(corrupt).find("checksum"), std::string::npos);
  std::string other_version = text;
  other_version.replace(other_version.find("\"version\":1"), 11, "\"version\":9");
  EXPECT_NE(refused(other_version).find("version 9"), std::string::npos);
  EXPECT_NE(refused(R"({"format":"something else"})").find("not a netd handover"),
            std::string::npos);
  // Well-formed, checksum right, a field out of range: refused by the check.
  nlohmann::json doc = nlohmann::json::parse(text);
  doc["networks"][0]["ports"][1]["stp"] = 7;
  const std::string body = doc["networks"].dump();
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : body) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  doc["checksum"] = hex;
  EXPECT_NE(refused(doc.dump()).find("out of range"), std::string::npos);
}

// An older image's file has no kernel features, and one with a field
// missing or mistyped is not half-believed: the new image probes itself,
// and the rest of the handover still stands.
TEST(HandoverStateTest, KernelFeaturesMissingOrMalformedMeanProbeAgain) {
  HandoverState state;
  state.stopped_ns = 1;
  auto parsed = ParseHandover(SerializeHandover(state));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_FALSE(parsed->kernel_features.has_value());

  state.kernel_features = KernelFeatures{true, true, true, true, ""};
  const nlohmann::json good = nlohmann::json::parse(SerializeHandover(state));
  for (const char* field :
       {"bridge", "bridge_vlan_filtering", "veth", "tun", "bridge_vlan_filtering_reason"}) {
    SCOPED_TRACE(field);
    nlohmann::json missing = good;
    missing["kernel_features"].erase(field);
    parsed = ParseHandover(missing.dump());
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_FALSE(parsed->kernel_features.has_value());
    nlohmann::json mistyped = good;
    mistyped["kernel_features"][field] = 7;
    parsed = ParseHandover(mistyped.dump());
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_FALSE(parsed->kernel_features.has_value());
  }
  parsed = ParseHandover(good.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_TRUE(parsed->kernel_features.has_value());
  EXPECT_TRUE(parsed->kernel_features->bridge_vlan_filtering);
}

TEST(HandoverStateTest, FdListsAndClosingWhatIsNotAdopted) {
  EXPECT_EQ(FormatFdList({3, 4, 17}), "3,4,17");
  EXPECT_EQ(ParseFdList("3,4,17"), (std::set<int>{3, 4, 17}));
  EXPECT_EQ(ParseFdList(""), std::set<int>{});
  // Not numbers, stdio and garbage are skipped.
  EXPECT_EQ(ParseFdList("1,x,5,,6y,-3,9"), (std::set<int>{5, 9}));
  UniqueFd kept = NullFd(), passed = NullFd(), mine = NullFd();
  const int passed_fd = passed.Release();
  EXPECT_EQ(CloseUnadopted({kept.get(), passed_fd}, {kept.get()}), 1u);
  EXPECT_TRUE(IsOpen(kept.get()));
  EXPECT_FALSE(IsOpen(passed_fd));
  EXPECT_TRUE(IsOpen(mine.get()));  // not in the list: not netd's to close
}

}  // namespace
}  // namespace vfabric::netd
