// Pass 1 of loading: one document -> model, with every local problem located.
// See decode.h for the overall shape.

#include "decode.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>

#include "json_reader.h"

namespace vfabric::topology::internal {
namespace {

using nlohmann::json;

// The userspace datapath: vfabric's own switch (bridge/), run by netd. It
// classifies VLANs per port whatever "vlan.filtering" says, so port VLAN
// modes and static FDB VLANs need no filtering flag there.
constexpr bool kUserspaceDatapathAvailable = true;

// 802.1D-2004 Table 17-1 (bridge) and the Linux bridge's accepted ranges
// (ip link ... type bridge_slave: priority 0..63, cost 1..65535).
constexpr uint64_t kMaxBridgePriority = 61440;
constexpr uint64_t kBridgePriorityStep = 4096;
constexpr uint64_t kMinHelloTime = 1, kMaxHelloTime = 10;
// A Linux bridge's MTU range (ETH_MIN_MTU for IPv4's minimum, ETH_MAX_MTU).
constexpr uint64_t kMinBridgeMtu = 68, kMaxBridgeMtu = 65535;
constexpr uint64_t kMinForwardDelay = 4, kMaxForwardDelay = 30;
constexpr uint64_t kMinMaxAge = 6, kMaxMaxAge = 40;
constexpr uint64_t kMaxAgeingTime = 1000000;
constexpr uint64_t kMaxPortPriority = 63;
// A Unix socket's path must fit sockaddr_un's sun_path with its NUL.
constexpr size_t kMaxSocketPath = 107;
// virtio-net's limit on queue pairs (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX).
constexpr uint64_t kMaxVhostUserQueues = 0x8000;
constexpr uint64_t kMinPortCost = 1, kMaxPortCost = 65535;
// The userspace switch's RSTP (802.1D-2004 17.13.10, Table 17-2).
constexpr uint64_t kMaxRstpPortPriority = 240, kRstpPortPriorityStep = 16;
constexpr uint64_t kMaxRstpPortCost = 200000000;
constexpr uint64_t kMaxVlanId = 4094;
constexpr uint64_t kMinMemoryMb = 16, kMaxMemoryMb = 1 << 20;
constexpr uint64_t kMaxVcpus = 64;
constexpr uint64_t kMaxFdbEntries = 1 << 24;
constexpr uint64_t kMaxVni = (1 << 24) - 1;  // 24 bits (RFC 7348 5)
constexpr uint64_t kMaxUdpPort = 65535;
constexpr uint64_t kMaxIpPacket = 65535;  // an outer IPv4 packet's total length, IPv6's payload
constexpr uint64_t kMaxId = 4294967294;   // uid_t/gid_t without (uid_t)-1
constexpr double kMaxExactDouble = 9007199254740992.0;  // 2^53

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20 || byte == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::string TypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number with a fraction or exponent";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

// Network and VM names: what netctl verbs and file names can carry safely.
std::string ObjectNameError(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 64) return "is longer than 64 bytes";
  const auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  };
  for (char c : name) {
    if (!ok(c)) return "may hold only letters, digits, '-', '_' and '.'";
  }
  if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
        (name[0] >= '0' && name[0] <= '9'))) {
    return "must start with a letter or a digit";
  }
  return "";
}

// A named network namespace is a file in /run/netns.
std::string NetnsNameError(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 255) return "is longer than 255 bytes";
  if (name == "." || name == "..") return "must not be \".\" or \"..\"";
  if (name.find('/') != std::string_view::npos) return "must not contain '/'";
  return "";
}

class Decoder {
 public:
  Decoder(const JsonDocument& doc, std::string_view file, size_t file_index, const HostFacts& host,
          Decoded* out)
      : doc_(doc), file_(file), file_index_(file_index), host_(host), out_(out) {}

  void DecodeRoot() {
    const json& root = doc_.value;
    if (!ExpectObject(root, "", {"$schema", "networks", "vms"})) return;
    if (const json* schema = Member(root, "$schema")) {
      if (!schema->is_string()) TypeError(*schema, "/$schema", "a string");
    }
    if (const json* networks = Member(root, "networks")) {
      if (ExpectArray(*networks, "/networks")) {
        for (size_t i = 0; i < networks->size(); ++i) {
          DecodeNetwork((*networks)[i], "/networks/" + std::to_string(i));
        }
      }
    }
    if (const json* vms = Member(root, "vms")) {
      if (ExpectArray(*vms, "/vms")) {
        for (size_t i = 0; i < vms->size(); ++i) {
          DecodeVm((*vms)[i], "/vms/" + std::to_string(i));
        }
      }
    }
  }

 private:
  // ---- Locations and errors ----

  SourceLocation At(const std::string& pointer) const {
    SourceLocation where{std::string(file_), 1, 1, pointer};
    if (auto it = doc_.values.find(pointer); it != doc_.values.end()) {
      where.line = it->second.line;
      where.column = it->second.column;
    }
    return where;
  }
  SourceLocation KeyAt(const std::string& pointer) const {
    SourceLocation where = At(pointer);
    if (auto it = doc_.keys.find(pointer); it != doc_.keys.end()) {
      where.line = it->second.line;
      where.column = it->second.column;
    }
    return where;
  }
  void Error(const std::string& pointer, std::string message) {
    out_->errors.push_back({At(pointer), std::move(message)});
  }
  void Warning(const std::string& pointer, std::string message) {
    out_->warnings.push_back({At(pointer), std::move(message)});
  }
  void ErrorAtKey(const std::string& pointer, std::string message) {
    out_->errors.push_back({KeyAt(pointer), std::move(message)});
  }
  void TypeError(const json& value, const std::string& pointer, std::string_view expected) {
    Error(pointer, "expected " + std::string(expected) + ", got " + TypeName(value));
  }

  static std::string Child(const std::string& pointer, std::string_view key) {
    return pointer + "/" + EscapePointerToken(key);
  }
  static const json* Member(const json& object, std::string_view key) {
    if (!object.is_object()) return nullptr;
    auto it = object.find(std::string(key));
    return it == object.end() ? nullptr : &*it;
  }

  // ---- Shapes ----

  // Reports a non-object, and every key not in `known` (with a suggestion).
  bool ExpectObject(const json& value, const std::string& pointer,
                    std::vector<std::string_view> known) {
    if (!value.is_object()) {
      TypeError(value, pointer, "an object");
      return false;
    }
    // Suggest only keys the object does not already have.
    std::vector<std::string_view> missing;
    for (std::string_view key : known) {
      if (!value.contains(std::string(key))) missing.push_back(key);
    }
    for (const auto& [key, member] : value.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string message = "unknown key " + Quote(key);
      const std::string suggestion = Suggest(key, missing);
      if (!suggestion.empty()) message += "; did you mean " + Quote(suggestion) + "?";
      ErrorAtKey(Child(pointer, key), std::move(message));
    }
    return true;
  }

  bool ExpectArray(const json& value, const std::string& pointer) {
    if (!value.is_array()) {
      TypeError(value, pointer, "an array");
      return false;
    }
    return true;
  }

  bool Require(const json& object, const std::string& pointer, std::string_view key) {
    if (Member(object, key)) return true;
    Error(pointer, "missing required key " + Quote(key));
    return false;
  }

  // ---- Scalars ----

  std::optional<bool> GetBool(const json& object, const std::string& pointer,
                              std::string_view key) {
    const json* value = Member(object, key);
    if (!value) return std::nullopt;
    if (!value->is_boolean()) {
      TypeError(*value, Child(pointer, key), "a boolean");
      return std::nullopt;
    }
    return value->get<bool>();
  }

  // An integer lo..hi found at `pointer` itself.
  std::optional<uint64_t> IntegerAt(const json& value, const std::string& pointer, uint64_t lo,
                                    uint64_t hi) {
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    // A number with a zero fraction (4.0, 4e0) is an integer, as JSON Schema
    // has it ("type": "integer"): one truth for the schema and the validator.
    // Up to 2^53, where every such double is exactly the integer written.
    if (value.is_number_float()) {
      const double number = value.get<double>();
      if (std::isfinite(number) && number == std::trunc(number) && number >= 0 &&
          number <= kMaxExactDouble) {
        const auto integer = static_cast<uint64_t>(number);
        if (integer >= lo && integer <= hi) return integer;
        Error(pointer, "expected an integer in " + range + ", got " + value.dump());
        return std::nullopt;
      }
    }
    if (!value.is_number_integer()) {
      if (value.is_number_float()) {
        Error(pointer, "expected an integer in " + range + ", got " + value.dump());
      } else {
        TypeError(value, pointer, "an integer");
      }
      return std::nullopt;
    }
    // "-0" reads as a signed zero; any other negative number is out of range.
    const bool non_negative = value.is_number_unsigned() || value.get<int64_t>() >= 0;
    if (non_negative) {
      const uint64_t number = value.is_number_unsigned()
                                  ? value.get<uint64_t>()
                                  : static_cast<uint64_t>(value.get<int64_t>());
      if (number >= lo && number <= hi) return number;
    }
    Error(pointer, "expected an integer in " + range + ", got " + value.dump());
    return std::nullopt;
  }

  std::optional<uint64_t> GetInteger(const json& object, const std::string& pointer,
                                     std::string_view key, uint64_t lo, uint64_t hi) {
    const json* value = Member(object, key);
    if (!value) return std::nullopt;
    return IntegerAt(*value, Child(pointer, key), lo, hi);
  }

  std::optional<std::string> GetString(const json& object, const std::string& pointer,
                                       std::string_view key) {
    const json* value = Member(object, key);
    if (!value) return std::nullopt;
    if (!value->is_string()) {
      TypeError(*value, Child(pointer, key), "a string");
      return std::nullopt;
    }
    std::string text = value->get<std::string>();
    if (text.empty()) {
      Error(Child(pointer, key), "must not be empty");
      return std::nullopt;
    }
    return text;
  }

  // Returns the index of the value among `names`.
  std::optional<size_t> GetEnum(const json& object, const std::string& pointer,
                                std::string_view key, const std::vector<std::string_view>& names) {
    const json* value = Member(object, key);
    if (!value) return std::nullopt;
    if (!value->is_string()) {
      TypeError(*value, Child(pointer, key), "a string");
      return std::nullopt;
    }
    const std::string text = value->get<std::string>();
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == text) return i;
    }
    std::string message = "unknown " + std::string(key) + " " + Quote(text) + "; expected ";
    for (size_t i = 0; i < names.size(); ++i) {
      if (i > 0) message += i + 1 == names.size() ? " or " : ", ";
      message += Quote(names[i]);
    }
    Error(Child(pointer, key), std::move(message));
    return std::nullopt;
  }

  std::optional<std::string> GetInterfaceName(const json& object, const std::string& pointer,
                                              std::string_view key) {
    std::optional<std::string> name = GetString(object, pointer, key);
    if (!name) return std::nullopt;
    const std::string why = InterfaceNameError(*name);
    if (!why.empty()) {
      Error(Child(pointer, key), "invalid interface name " + Quote(*name) + ": " + why);
    }
    return name;  // kept even when invalid, so names still resolve
  }

  std::optional<std::string> GetObjectName(const json& object, const std::string& pointer,
                                           std::string_view what) {
    std::optional<std::string> name = GetString(object, pointer, "name");
    if (!name) return std::nullopt;
    const std::string why = ObjectNameError(*name);
    if (!why.empty()) {
      Error(Child(pointer, "name"),
            "invalid " + std::string(what) + " name " + Quote(*name) + ": " + why);
    }
    return name;
  }

  std::optional<MacAddress> GetMac(const json& object, const std::string& pointer,
                                   std::string_view key, std::string_view what) {
    std::optional<std::string> text = GetString(object, pointer, key);
    if (!text) return std::nullopt;
    const std::string at = Child(pointer, key);
    std::optional<MacAddress> mac = MacAddress::Parse(*text);
    if (!mac) {
      Error(at, "malformed MAC address " + Quote(*text) +
                    "; expected six colon-separated hex pairs like \"52:54:00:00:00:01\"");
      return std::nullopt;
    }
    if (mac->IsZero()) {
      Error(at, std::string(what) + " needs a unicast MAC address; " + mac->ToString() +
                    " is all-zero");
      return std::nullopt;
    }
    if (mac->IsMulticast()) {
      Error(at, std::string(what) + " needs a unicast MAC address; " + mac->ToString() + " is " +
                    (mac->IsBroadcast() ? "broadcast" : "multicast") +
                    " (the low bit of the first byte is set)");
      return std::nullopt;
    }
    return mac;
  }

  // A uid/gid as a number or a name resolved on this host.
  std::optional<uint32_t> GetOwner(const json& object, const std::string& pointer,
                                   std::string_view key, bool group) {
    const json* value = Member(object, key);
    if (!value) return std::nullopt;
    const std::string at = Child(pointer, key);
    if (value->is_number()) {
      std::optional<uint64_t> id = IntegerAt(*value, at, 0, kMaxId);
      if (!id) return std::nullopt;
      return static_cast<uint32_t>(*id);
    }
    if (!value->is_string()) {
      TypeError(*value, at, group ? "a group name or gid" : "a user name or uid");
      return std::nullopt;
    }
    const std::string name = value->get<std::string>();
    // Through the host-facts seam (host_facts.h), never the OS directly.
    const HostFacts::IdLookup found = group ? host_.GroupId(name) : host_.UserId(name);
    if (found.id) return found.id;
    const int rc = found.error;
    std::string message =
        std::string("no ") + (group ? "group" : "user") + " named " + Quote(name) + " on this host";
    if (rc != 0) message += " (lookup failed: error " + std::to_string(rc) + ")";
    Error(at, std::move(message));
    return std::nullopt;
  }

  // Reports `key` in `object` as not applying here.
  void RejectIfPresent(const json& object, const std::string& pointer, std::string_view key,
                       const std::string& why) {
    if (Member(object, key)) Error(Child(pointer, key), Quote(key) + " " + why);
  }

  // ---- Networks ----

  void DecodeNetwork(const json& value, const std::string& pointer) {
    NetworkConfig network;
    NetworkSites sites;
    sites.file_index = file_index_;
    network.where = At(pointer);
    if (!ExpectObject(value, pointer,
                      {"name", "datapath", "bridge", "stp", "vlan", "fdb", "ports", "mac", "mtu",
                       "addresses", "overlay", "mirror"})) {
      return;
    }
    if (Require(value, pointer, "name")) {
      if (auto name = GetObjectName(value, pointer, "network")) {
        network.name = *name;
        sites.name = At(Child(pointer, "name"));
      }
    }
    if (auto datapath = GetEnum(value, pointer, "datapath", {"kernel", "userspace"})) {
      network.datapath = *datapath == 0 ? Datapath::kKernel : Datapath::kUserspace;
      if (network.datapath == Datapath::kUserspace && !kUserspaceDatapathAvailable) {
        Error(Child(pointer, "datapath"),
              "datapath \"userspace\" is not available yet; use \"kernel\"");
      }
    }
    if (Member(value, "bridge")) {
      if (auto bridge = GetInterfaceName(value, pointer, "bridge")) {
        network.bridge = *bridge;
        sites.bridge = At(Child(pointer, "bridge"));
      }
    } else if (network.datapath == Datapath::kKernel && !network.name.empty() &&
               ObjectNameError(network.name).empty()) {
      // Only a kernel network has a Linux bridge; a userspace one gets no
      // default name to clash with or to be too long.
      const std::string bridge = "vfb-" + network.name;
      if (bridge.size() > kMaxInterfaceNameLength) {
        Error(Child(pointer, "name"), "the default bridge name " + Quote(bridge) +
                                          " is longer than 15 bytes; set \"bridge\"");
      } else {
        network.bridge = bridge;
        sites.bridge = sites.name;
        sites.bridge_defaulted = true;
      }
    }
    DecodeBridgeLink(value, pointer, &network, &sites);
    network.stp.mode = network.datapath == Datapath::kUserspace ? StpMode::kRstp : StpMode::kStp;
    if (const json* stp = Member(value, "stp"))
      DecodeStp(*stp, Child(pointer, "stp"), network.datapath, &network.stp);
    if (const json* vlan = Member(value, "vlan")) {
      DecodeBridgeVlan(*vlan, Child(pointer, "vlan"), &network.vlan);
    }
    // Ports before the FDB: nothing in the FDB depends on them here (references
    // are checked across files), but keep the model's order natural.
    if (const json* ports = Member(value, "ports")) {
      const std::string at = Child(pointer, "ports");
      if (ExpectArray(*ports, at)) {
        for (size_t i = 0; i < ports->size(); ++i) {
          PortSites port_sites;
          network.ports.push_back(
              DecodePort((*ports)[i], at + "/" + std::to_string(i), network, &port_sites));
          sites.ports.push_back(port_sites);
        }
      }
    }
    if (const json* fdb = Member(value, "fdb")) {
      DecodeFdb(*fdb, Child(pointer, "fdb"), &network, &sites);
    }
    if (const json* overlay = Member(value, "overlay")) {
      DecodeOverlay(*overlay, Child(pointer, "overlay"), &network, &sites);
    }
    if (const json* mirror = Member(value, "mirror")) {
      DecodeMirrors(*mirror, Child(pointer, "mirror"), &network);
    }
    out_->topology.networks.push_back(std::move(network));
    out_->networks.push_back(std::move(sites));
  }

  // An IP address of an overlay at `pointer`: a unicast host address.
  std::optional<IpPrefix> OverlayAddressAt(const json& value, const std::string& pointer,
                                           std::string_view what) {
    if (!value.is_string()) {
      TypeError(value, pointer, "a string (an IPv4 or IPv6 address, like \"192.0.2.1\")");
      return std::nullopt;
    }
    const std::string text = value.get<std::string>();
    std::string why;
    std::optional<IpPrefix> address = IpPrefix::ParseAddress(text, &why);
    if (!address) {
      Error(pointer,
            "invalid " + std::string(what) + " " + Quote(text) + ": " + why +
                (text.find('/') != std::string::npos ? " (an address alone, no /LENGTH)" : ""));
      return std::nullopt;
    }
    if (address->IsMulticast() || address->IsUnspecified()) {
      Error(pointer, "invalid " + std::string(what) + " " + Quote(text) +
                         ": a tunnel endpoint must be a unicast address, not " +
                         (address->IsMulticast() ? "multicast (multicast groups are not supported)"
                                                 : "unspecified"));
      return std::nullopt;
    }
    if (address->IsIpv6LinkLocal()) {
      Error(pointer, "invalid " + std::string(what) + " " + Quote(text) +
                         ": an IPv6 link-local address needs a link, which an overlay cannot name; "
                         "use a global or unique local address");
      return std::nullopt;
    }
    return address;
  }

  // "overlay": {"vni", "local", "port", "mtu", "flood", "control"}.
  void DecodeOverlay(const json& value, const std::string& pointer, NetworkConfig* network,
                     NetworkSites* sites) {
    if (!ExpectObject(value, pointer, {"vni", "local", "port", "mtu", "flood", "control"})) return;
    const bool userspace = network->datapath == Datapath::kUserspace;
    if (userspace) {
      if (const json* control = Member(value, "control");
          control != nullptr && control->is_string() && control->get<std::string>() == "evpn") {
        Error(Child(pointer, "control"),
              "\"control\": \"evpn\" needs \"datapath\": \"kernel\" for now on network " +
                  Quote(network->name) +
                  " (the userspace switch's VXLAN takes a static \"flood\" list; the shadow "
                  "devices FRR's zebra would read are not there yet)");
        return;
      }
      if (network->stp.enabled) {
        Error(pointer,
              "a VXLAN overlay on a userspace network with \"stp\" enabled is not "
              "supported yet on network " +
                  Quote(network->name) +
                  " (the overlay's peer ports are a full mesh with split horizon, "
                  "which a spanning tree would cut)");
        return;
      }
    }
    OverlayConfig overlay;
    overlay.where = At(pointer);
    bool complete = true;
    if (Require(value, pointer, "vni")) {
      if (auto vni = GetInteger(value, pointer, "vni", 1, kMaxVni)) {
        overlay.vni = static_cast<uint32_t>(*vni);
        sites->overlay_vni = At(Child(pointer, "vni"));
      } else {
        complete = false;
      }
    } else {
      complete = false;
    }
    const std::string local_at = Child(pointer, "local");
    bool local_ok = false;
    if (Require(value, pointer, "local")) {
      if (auto local = OverlayAddressAt(*Member(value, "local"), local_at, "local address")) {
        overlay.local = *local;
        local_ok = true;
      }
    }
    if (!local_ok) complete = false;
    const bool ipv6 = local_ok && overlay.local.AddressSize() == 16;
    const uint32_t overhead = ipv6 ? kVxlanOverheadIpv6 : kVxlanOverheadIpv4;
    if (auto port = GetInteger(value, pointer, "port", 1, kMaxUdpPort)) {
      overlay.port = static_cast<uint16_t>(*port);
    } else if (Member(value, "port")) {
      complete = false;
    }
    if (auto control = GetEnum(value, pointer, "control", {"static", "evpn"})) {
      overlay.control = *control == 0 ? OverlayControl::kStatic : OverlayControl::kEvpn;
    }
    if (const json* mtu = Member(value, "mtu")) {
      // The outer packet (the frame plus 50 or 70 bytes) must fit in an IP
      // packet; below 68 IPv4 itself does not work.
      const std::string at = Child(pointer, "mtu");
      if (mtu->is_number() && mtu->is_number_integer() && !mtu->is_number_float() &&
          (mtu->is_number_unsigned() || mtu->get<int64_t>() >= 0) &&
          mtu->get<uint64_t>() > kMaxIpPacket - overhead && mtu->get<uint64_t>() <= kMaxIpPacket) {
        Error(at, "overlay mtu " + mtu->dump() + " leaves no room for the " +
                      std::to_string(overhead) + "-byte VXLAN encapsulation over " +
                      (ipv6 ? "IPv6" : "IPv4") + ": the outer packet would exceed " +
                      std::to_string(kMaxIpPacket) + " bytes (at most " +
                      std::to_string(kMaxIpPacket - overhead) + ")");
      } else if (auto value_mtu = IntegerAt(*mtu, at, kMinBridgeMtu, kMaxIpPacket - overhead)) {
        overlay.mtu = static_cast<uint32_t>(*value_mtu);
        if (network->mtu && *network->mtu > *overlay.mtu) {
          Error(at, "overlay mtu " + std::to_string(*overlay.mtu) +
                        " is smaller than the bridge's \"mtu\" " + std::to_string(*network->mtu) +
                        ": frames that big would be dropped at the vxlan port");
        }
      }
    }
    std::vector<SourceLocation> flood_sites;  // parallel to overlay.flood
    if (const json* flood = Member(value, "flood")) {
      const std::string at = Child(pointer, "flood");
      if (overlay.control == OverlayControl::kEvpn) {
        Error(at,
              "\"flood\" and \"control\": \"evpn\" exclude each other: with EVPN, FRR installs "
              "the flood list from its peers' routes (type 3), and netd leaves it to FRR");
      } else if (ExpectArray(*flood, at)) {
        std::vector<IpPrefix> flood_seen;
        for (size_t i = 0; i < flood->size(); ++i) {
          const std::string item_at = at + "/" + std::to_string(i);
          auto address = OverlayAddressAt((*flood)[i], item_at, "flood address");
          if (!address) continue;
          if (local_ok && address->family != overlay.local.family) {
            Error(item_at, "flood address " + address->AddressText() + " is " +
                               (address->AddressSize() == 16 ? "IPv6" : "IPv4") +
                               " but the local address " + overlay.local.AddressText() +
                               " is not: one overlay speaks one IP family");
            continue;
          }
          auto seen = std::find_if(flood_seen.begin(), flood_seen.end(),
                                   [&](const IpPrefix& p) { return p.SameAddress(*address); });
          if (seen != flood_seen.end()) {
            Error(item_at, "flood address " + address->AddressText() + " is listed twice");
            continue;
          }
          flood_seen.push_back(*address);
          // The list may name every host of the overlay, this one too, so
          // that one file serves them all (differing only in "local"): a
          // host does not flood to itself.
          if (local_ok && address->SameAddress(overlay.local)) continue;
          overlay.flood.push_back(*address);
          flood_sites.push_back(At(item_at));
        }
      }
    }
    if (local_ok) {
      // Through the host-facts seam: the same file serves every host of the
      // overlay (differing in "local"), so a local address this host lacks
      // is a warning here; netd refuses to apply it (an error at apply).
      const HostFacts::AddressLookup found = host_.FindAddress(overlay.local);
      if (found.known && !found.present) {
        Warning(local_at, "this host has no address " + overlay.local.AddressText() +
                              ": netd refuses to apply this overlay here (fine if the file is "
                              "meant for the host that has it)");
      } else if (found.present && found.mtu && overlay.mtu &&
                 *overlay.mtu + overhead > *found.mtu) {
        Warning(Child(pointer, "mtu"), "overlay mtu " + std::to_string(*overlay.mtu) + " plus " +
                                           std::to_string(overhead) +
                                           " bytes of VXLAN encapsulation exceeds the MTU " +
                                           std::to_string(*found.mtu) + " of " + found.link +
                                           ", which holds " + overlay.local.AddressText() +
                                           ": full-size frames would be fragmented or dropped");
      }
    }
    if (!complete) return;
    if (userspace) {
      // The switch's port per remote VTEP (PortKind::kVxlan), where its
      // flood address was written.
      for (size_t i = 0; i < overlay.flood.size(); ++i) {
        PortConfig port;
        port.name = VxlanPeerPortName(overlay.vni, overlay.flood[i]);
        port.kind = PortKind::kVxlan;
        port.vxlan_remote = overlay.flood[i];
        port.vxlan_local = overlay.local;
        port.vxlan_port = overlay.port;
        port.vxlan_vni = overlay.vni;
        port.where = flood_sites[i];
        PortSites port_sites;
        port_sites.name = flood_sites[i];
        network->ports.push_back(std::move(port));
        sites->ports.push_back(port_sites);
      }
    }
    network->overlay = std::move(overlay);
  }

  // "mac", "mtu" and "addresses": the kernel bridge as a host link.
  void DecodeBridgeLink(const json& value, const std::string& pointer, NetworkConfig* network,
                        NetworkSites* sites) {
    if (network->datapath == Datapath::kUserspace) {
      for (std::string_view key : {"mac", "mtu", "addresses"})
        RejectIfPresent(value, pointer, key,
                        "applies to a kernel network's Linux bridge; a userspace network has none");
      return;
    }
    if (Member(value, "mac")) {
      network->mac = GetMac(value, pointer, "mac", "a bridge");
      sites->mac = At(Child(pointer, "mac"));
    }
    if (auto mtu = GetInteger(value, pointer, "mtu", kMinBridgeMtu, kMaxBridgeMtu))
      network->mtu = static_cast<uint32_t>(*mtu);
    const json* addresses = Member(value, "addresses");
    if (addresses == nullptr) return;
    const std::string at = Child(pointer, "addresses");
    if (!ExpectArray(*addresses, at)) return;
    network->addresses.emplace();
    for (size_t i = 0; i < addresses->size(); ++i) {
      const std::string item_at = at + "/" + std::to_string(i);
      const json& item = (*addresses)[i];
      if (!item.is_string()) {
        TypeError(item, item_at, "a string (ADDRESS/LENGTH, like \"10.0.0.1/24\")");
        continue;
      }
      const std::string text = item.get<std::string>();
      std::string why;
      std::optional<IpPrefix> prefix = IpPrefix::Parse(text, &why);
      if (!prefix) {
        Error(item_at, "invalid address " + Quote(text) + ": " + why);
        continue;
      }
      if (prefix->IsMulticast() || prefix->IsUnspecified()) {
        Error(item_at, "invalid address " + Quote(text) + ": a host address must be unicast, not " +
                           (prefix->IsMulticast() ? "multicast" : "unspecified"));
        continue;
      }
      auto same = std::find_if(network->addresses->begin(), network->addresses->end(),
                               [&](const IpPrefix& p) { return p.SameAddress(*prefix); });
      if (same != network->addresses->end()) {
        Error(item_at, "address " + prefix->AddressText() + " is listed twice (as " +
                           Quote(same->ToString()) + " before)");
        continue;
      }
      network->addresses->push_back(*prefix);
      sites->addresses.push_back(At(item_at));
    }
  }

  void DecodeStp(const json& value, const std::string& pointer, Datapath datapath, StpConfig* stp) {
    if (!ExpectObject(value, pointer,
                      {"enabled", "mode", "priority", "hello_time", "forward_delay", "max_age"})) {
      return;
    }
    if (auto enabled = GetBool(value, pointer, "enabled")) stp->enabled = *enabled;
    if (auto mode = GetEnum(value, pointer, "mode", {"rstp", "stp"})) {
      if (*mode == 0 && datapath == Datapath::kKernel) {
        Error(Child(pointer, "mode"),
              "the kernel bridge speaks only 802.1D STP: use \"mode\": \"stp\", or "
              "\"datapath\": \"userspace\" for RSTP");
      } else {
        stp->mode = *mode == 0 ? StpMode::kRstp : StpMode::kStp;
      }
    }
    if (auto priority = GetInteger(value, pointer, "priority", 0, kMaxBridgePriority)) {
      if (*priority % kBridgePriorityStep != 0) {
        const uint64_t lower = *priority / kBridgePriorityStep * kBridgePriorityStep;
        Error(Child(pointer, "priority"), "bridge priority must be a multiple of 4096, got " +
                                              std::to_string(*priority) +
                                              " (nearest: " + std::to_string(lower) + " or " +
                                              std::to_string(lower + kBridgePriorityStep) + ")");
      } else {
        stp->priority = static_cast<uint32_t>(*priority);
      }
    }
    bool timers_ok = true;
    const auto timer = [&](std::string_view key, uint64_t lo, uint64_t hi, uint32_t* out) {
      if (!Member(value, key)) return;
      if (auto seconds = GetInteger(value, pointer, key, lo, hi)) {
        *out = static_cast<uint32_t>(*seconds);
      } else {
        timers_ok = false;
      }
    };
    timer("hello_time", kMinHelloTime, kMaxHelloTime, &stp->hello_time);
    timer("forward_delay", kMinForwardDelay, kMaxForwardDelay, &stp->forward_delay);
    timer("max_age", kMinMaxAge, kMaxMaxAge, &stp->max_age);
    // The relation is STP's own rule (neither the kernel nor the userspace
    // switch checks it with STP off, and neither uses the timers then).
    if (!timers_ok || !stp->enabled) return;
    // 802.1D-2004 17.14: 2 * (Forward Delay - 1) >= Max Age >= 2 * (Hello Time + 1).
    const uint32_t upper = 2 * (stp->forward_delay - 1);
    const uint32_t lower = 2 * (stp->hello_time + 1);
    if (stp->max_age > upper || stp->max_age < lower) {
      Error(pointer,
            "STP timers must satisfy 2*(forward_delay-1) >= max_age >= "
            "2*(hello_time+1) (802.1D-2004 17.14); got 2*(" +
                std::to_string(stp->forward_delay) + "-1) = " + std::to_string(upper) +
                ", max_age = " + std::to_string(stp->max_age) + ", 2*(" +
                std::to_string(stp->hello_time) + "+1) = " + std::to_string(lower));
    }
  }

  void DecodeBridgeVlan(const json& value, const std::string& pointer, BridgeVlanConfig* vlan) {
    if (!ExpectObject(value, pointer, {"filtering", "default_pvid"})) return;
    if (auto filtering = GetBool(value, pointer, "filtering")) vlan->filtering = *filtering;
    if (auto pvid = GetInteger(value, pointer, "default_pvid", 1, kMaxVlanId)) {
      vlan->default_pvid = static_cast<uint16_t>(*pvid);
    }
  }

  void DecodeFdb(const json& value, const std::string& pointer, NetworkConfig* network,
                 NetworkSites* sites) {
    FdbConfig* fdb = &network->fdb;
    if (!ExpectObject(value, pointer, {"ageing_time", "static", "max_entries", "max_per_port"})) {
      return;
    }
    if (auto ageing = GetInteger(value, pointer, "ageing_time", 0, kMaxAgeingTime)) {
      fdb->ageing_time = static_cast<uint32_t>(*ageing);
    }
    for (std::string_view key : {"max_entries", "max_per_port"}) {
      if (!Member(value, key)) continue;
      auto limit = GetInteger(value, pointer, key, 1, kMaxFdbEntries);
      if (!limit) continue;
      if (network->datapath == Datapath::kKernel) {
        Error(Child(pointer, key), Quote(key) + " applies to the userspace datapath only");
      } else {
        (key == "max_entries" ? fdb->max_entries : fdb->max_per_port) =
            static_cast<uint32_t>(*limit);
      }
    }
    const json* entries = Member(value, "static");
    if (!entries) return;
    const std::string list = Child(pointer, "static");
    if (!ExpectArray(*entries, list)) return;
    std::vector<std::pair<std::pair<MacAddress, uint16_t>, SourceLocation>> seen;
    for (size_t i = 0; i < entries->size(); ++i) {
      const json& entry = (*entries)[i];
      const std::string at = list + "/" + std::to_string(i);
      if (!ExpectObject(entry, at, {"mac", "port", "vlan"})) continue;
      StaticFdbEntry out;
      out.where = At(at);
      bool complete = true;
      if (Require(entry, at, "mac")) {
        if (auto mac = GetMac(entry, at, "mac", "a static FDB entry")) {
          out.mac = *mac;
        } else {
          complete = false;
        }
      } else {
        complete = false;
      }
      SourceLocation port_site;
      if (Require(entry, at, "port")) {
        if (auto port = GetString(entry, at, "port")) {
          out.port = *port;
          port_site = At(Child(at, "port"));
        }
      }
      if (auto vlan = GetInteger(entry, at, "vlan", 0, kMaxVlanId)) {
        out.vlan = static_cast<uint16_t>(*vlan);
        if (out.vlan != 0 && network->datapath == Datapath::kKernel && !network->vlan.filtering) {
          Error(Child(at, "vlan"),
                "a static FDB entry with a VLAN needs \"vlan\": {\"filtering\": true} on network " +
                    Quote(network->name));
        }
      } else if (Member(entry, "vlan")) {
        complete = false;
      }
      if (complete) {
        const auto key = std::make_pair(out.mac, out.vlan);
        auto first = std::find_if(seen.begin(), seen.end(),
                                  [&](const auto& item) { return item.first == key; });
        if (first != seen.end()) {
          Error(Child(at, "mac"), "duplicate static FDB entry for " + out.mac.ToString() +
                                      (out.vlan ? " vlan " + std::to_string(out.vlan) : "") +
                                      " (first at " + LocationText(first->second) + ")");
        } else {
          seen.emplace_back(key, At(Child(at, "mac")));
        }
      }
      fdb->static_entries.push_back(std::move(out));
      sites->fdb_ports.push_back(port_site);
    }
  }

  PortConfig DecodePort(const json& value, const std::string& pointer, const NetworkConfig& network,
                        PortSites* sites) {
    PortConfig port;
    port.where = At(pointer);
    if (!ExpectObject(
            value, pointer,
            {"name",       "kind",       "peer",     "peer_netns",  "vlan",        "cost",
             "priority",   "edge",       "learning", "flood",       "hairpin",     "isolated",
             "bpdu_guard", "root_block", "owner",    "group",       "multi_queue", "vnet_hdr",
             "guest",      "socket",     "mode",     "permissions", "queues"})) {
      return port;
    }
    if (Require(value, pointer, "name")) {
      if (auto name = GetInterfaceName(value, pointer, "name")) {
        port.name = *name;
        sites->name = At(Child(pointer, "name"));
      }
    }
    bool kind_known = true;
    if (Member(value, "kind")) {
      if (auto kind_index =
              GetEnum(value, pointer, "kind", {"tap", "veth", "existing", "vhost-user"})) {
        port.kind = static_cast<PortKind>(*kind_index);
      } else {
        kind_known = false;
      }
    }
    if (kind_known) {
      if (port.kind == PortKind::kVeth) {
        if (Member(value, "peer")) {
          if (auto peer = GetInterfaceName(value, pointer, "peer")) {
            port.peer = *peer;
            sites->peer = At(Child(pointer, "peer"));
          }
        } else {
          Error(pointer, "a veth port needs \"peer\" (the name of the other end)");
        }
        if (auto netns = GetString(value, pointer, "peer_netns")) {
          const std::string why = NetnsNameError(*netns);
          if (why.empty()) {
            port.peer_netns = *netns;
          } else {
            Error(Child(pointer, "peer_netns"),
                  "invalid network namespace name " + Quote(*netns) + ": " + why);
          }
        }
      } else {
        const std::string why = "applies to veth ports only";
        RejectIfPresent(value, pointer, "peer", why);
        RejectIfPresent(value, pointer, "peer_netns", why);
      }
      if (port.kind == PortKind::kTap) {
        port.owner = GetOwner(value, pointer, "owner", false);
        port.group = GetOwner(value, pointer, "group", true);
        if (auto multi_queue = GetBool(value, pointer, "multi_queue")) {
          port.multi_queue = *multi_queue;
        }
        if (auto vnet_hdr = GetBool(value, pointer, "vnet_hdr")) port.vnet_hdr = *vnet_hdr;
        if (auto guest = GetBool(value, pointer, "guest")) port.guest = *guest;
      } else {
        const std::string why = "applies to tap ports only";
        for (std::string_view key : {"multi_queue", "vnet_hdr", "guest"}) {
          RejectIfPresent(value, pointer, key, why);
        }
        if (port.kind != PortKind::kVhostUser) {
          const std::string owner_why = "applies to tap and vhost-user ports only";
          for (std::string_view key : {"owner", "group"}) {
            RejectIfPresent(value, pointer, key, owner_why);
          }
        }
      }
      if (port.kind == PortKind::kVhostUser) {
        DecodeVhostUser(value, pointer, network, &port, sites);
      } else {
        const std::string why = "applies to vhost-user ports only";
        for (std::string_view key : {"socket", "mode", "permissions", "queues"}) {
          RejectIfPresent(value, pointer, key, why);
        }
      }
    }
    const bool userspace = network.datapath == Datapath::kUserspace;
    if (auto cost = GetInteger(value, pointer, "cost", kMinPortCost,
                               userspace ? kMaxRstpPortCost : kMaxPortCost)) {
      port.cost = static_cast<uint32_t>(*cost);
    }
    if (auto priority = GetInteger(value, pointer, "priority", 0,
                                   userspace ? kMaxRstpPortPriority : kMaxPortPriority)) {
      if (userspace && *priority % kRstpPortPriorityStep != 0) {
        const uint64_t lower = *priority / kRstpPortPriorityStep * kRstpPortPriorityStep;
        Error(Child(pointer, "priority"),
              "port priority on the userspace datapath must be a multiple of 16 (802.1D-2004), "
              "got " +
                  std::to_string(*priority) + " (nearest: " + std::to_string(lower) + " or " +
                  std::to_string(std::min(lower + kRstpPortPriorityStep, kMaxRstpPortPriority)) +
                  ")");
      } else {
        port.priority = static_cast<uint32_t>(*priority);
      }
    }
    if (Member(value, "edge") && !userspace) {
      Error(Child(pointer, "edge"),
            "edge ports need RSTP: the kernel bridge (802.1D STP) has none; use "
            "\"datapath\": \"userspace\"");
    } else {
      port.edge = GetBool(value, pointer, "edge");
    }
    port.learning = GetBool(value, pointer, "learning");
    port.flood = GetBool(value, pointer, "flood");
    port.hairpin = GetBool(value, pointer, "hairpin");
    port.isolated = GetBool(value, pointer, "isolated");
    port.bpdu_guard = GetBool(value, pointer, "bpdu_guard");
    port.root_block = GetBool(value, pointer, "root_block");
    if (const json* vlan = Member(value, "vlan")) {
      const std::string at = Child(pointer, "vlan");
      if (DecodePortVlan(*vlan, at, &port.vlan) && network.datapath == Datapath::kKernel &&
          !network.vlan.filtering) {
        Error(at, "port VLAN settings need \"vlan\": {\"filtering\": true} on network " +
                      Quote(network.name));
      }
    }
    return port;
  }

  // The keys of a vhost-user port: `socket` (required), `mode`, and the
  // server mode's `owner`, `group` and `permissions` for the socket netd
  // makes; `queues`.
  void DecodeVhostUser(const json& value, const std::string& pointer, const NetworkConfig& network,
                       PortConfig* port, PortSites* sites) {
    if (network.datapath != Datapath::kUserspace) {
      Error(Child(pointer, "kind"),
            "vhost-user ports need \"datapath\": \"userspace\" (a guest's vhost-user rings are "
            "served by vfabric's switch; the kernel bridge cannot take them) on network " +
                Quote(network.name));
    }
    if (Member(value, "socket")) {
      if (auto socket = GetString(value, pointer, "socket")) {
        const std::string at = Child(pointer, "socket");
        if (socket->front() != '/') {
          Error(at,
                "the socket of a vhost-user port must be an absolute path, got " + Quote(*socket));
        } else if (socket->find('\0') != std::string::npos) {
          Error(at, "the socket path must not contain a NUL character");
        } else if (socket->back() == '/') {
          Error(at, "the socket path " + Quote(*socket) + " names a directory, not a socket");
        } else if (socket->size() > kMaxSocketPath) {
          Error(at, "the socket path is " + std::to_string(socket->size()) +
                        " bytes long; a Unix socket's path takes at most " +
                        std::to_string(kMaxSocketPath));
        } else {
          port->socket = *socket;
          sites->socket = At(at);
        }
      }
    } else {
      Error(pointer, "a vhost-user port needs \"socket\" (the path of its Unix socket)");
    }
    if (auto mode = GetEnum(value, pointer, "mode", {"client", "server"})) {
      port->vhost_user_mode = static_cast<VhostUserMode>(*mode);
    }
    if (port->vhost_user_mode == VhostUserMode::kServer) {
      port->owner = GetOwner(value, pointer, "owner", false);
      port->group = GetOwner(value, pointer, "group", true);
      if (const json* permissions = Member(value, "permissions")) {
        const std::string at = Child(pointer, "permissions");
        // Octal in a string: JSON has no octal numbers, and 660 as a
        // decimal integer would be a surprise.
        const bool octal =
            permissions->is_string() && !permissions->get<std::string>().empty() &&
            permissions->get<std::string>().size() <= 4 &&
            permissions->get<std::string>().find_first_not_of("01234567") == std::string::npos;
        if (!permissions->is_string()) {
          TypeError(*permissions, at, "a string of octal digits like \"0660\"");
        } else if (!octal) {
          Error(at, "expected permission bits as octal digits like \"0660\", got " +
                        permissions->dump());
        } else {
          const uint32_t bits =
              static_cast<uint32_t>(std::stoul(permissions->get<std::string>(), nullptr, 8));
          if (bits > 0777) {
            Error(at, "permissions " + permissions->dump() +
                          " set more than the read/write/execute bits (at most \"0777\")");
          } else {
            port->permissions = bits;
          }
        }
      }
    } else {
      const std::string why =
          "applies to vhost-user ports in server mode only (in client mode the frontend owns "
          "the socket)";
      for (std::string_view key : {"owner", "group", "permissions"}) {
        RejectIfPresent(value, pointer, key, why);
      }
    }
    if (auto queues = GetInteger(value, pointer, "queues", 1, kMaxVhostUserQueues)) {
      if (*queues > 1) {
        Error(Child(pointer, "queues"),
              "vhost-user ports take one queue pair for now (multiqueue is not supported yet), "
              "got " +
                  std::to_string(*queues));
      } else {
        port->queues = static_cast<uint32_t>(*queues);
      }
    }
  }

  // Returns true when `value` was a well-formed port VLAN object.
  bool DecodePortVlan(const json& value, const std::string& pointer, PortVlanConfig* vlan) {
    if (!ExpectObject(value, pointer, {"mode", "pvid", "allowed", "native", "native_tagged"})) {
      return false;
    }
    const size_t errors_before = out_->errors.size();
    if (!Require(value, pointer, "mode")) return false;
    auto mode = GetEnum(value, pointer, "mode", {"access", "trunk"});
    if (!mode) return false;
    if (*mode == 0) {
      vlan->mode = VlanMode::kAccess;
      if (Require(value, pointer, "pvid")) {
        if (auto pvid = GetInteger(value, pointer, "pvid", 1, kMaxVlanId)) {
          vlan->pvid = static_cast<uint16_t>(*pvid);
        }
      }
      for (std::string_view key : {"allowed", "native", "native_tagged"}) {
        RejectIfPresent(value, pointer, key, "applies to trunk ports only");
      }
    } else {
      vlan->mode = VlanMode::kTrunk;
      RejectIfPresent(value, pointer, "pvid",
                      "applies to access ports only; a trunk's untagged VLAN is \"native\"");
      if (Require(value, pointer, "allowed")) {
        DecodeAllowed(*Member(value, "allowed"), Child(pointer, "allowed"), &vlan->allowed);
      }
      if (auto native = GetInteger(value, pointer, "native", 1, kMaxVlanId)) {
        vlan->native = static_cast<uint16_t>(*native);
      }
      if (auto tagged = GetBool(value, pointer, "native_tagged")) {
        vlan->native_tagged = *tagged;
        if (!Member(value, "native")) {
          Error(Child(pointer, "native_tagged"), "\"native_tagged\" needs \"native\"");
        }
      }
    }
    return out_->errors.size() == errors_before;
  }

  // "mirror": [{"name", "select_src_port", "select_dst_port", "select_vlan",
  // "select_all", "output_port"}] (MirrorConfig). Every port a mirror names
  // is declared in the network's own "ports" (a network lives in one file,
  // so this needs no cross-file pass).
  void DecodeMirrors(const json& value, const std::string& pointer, NetworkConfig* network) {
    if (!ExpectArray(value, pointer)) return;
    if (network->datapath != Datapath::kUserspace) {
      Error(pointer,
            "port mirroring needs \"datapath\": \"userspace\" for now (the kernel bridge's tc "
            "mirred mirror is not there yet) on network " +
                Quote(network->name));
      return;
    }
    if (value.size() > kMaxMirrorsPerNetwork) {
      Error(pointer + "/" + std::to_string(kMaxMirrorsPerNetwork),
            "network " + Quote(network->name) + " has " + std::to_string(value.size()) +
                " mirrors; at most " + std::to_string(kMaxMirrorsPerNetwork) + " are allowed");
      return;
    }
    std::vector<std::string_view> port_names;
    for (const PortConfig& port : network->ports) port_names.push_back(port.name);
    const auto find_port = [&](const std::string& name) -> const PortConfig* {
      for (const PortConfig& port : network->ports)
        if (port.name == name) return &port;
      return nullptr;
    };
    // A port name of the network at `at`, or an error with a suggestion.
    const auto port_at = [&](const json& item,
                             const std::string& at) -> std::optional<std::string> {
      if (!item.is_string()) {
        TypeError(item, at, "a port name");
        return std::nullopt;
      }
      std::string name = item.get<std::string>();
      if (find_port(name)) return name;
      std::string message = "no port named " + Quote(name) + " in network " + Quote(network->name);
      const std::string suggestion = Suggest(name, port_names);
      if (!suggestion.empty()) message += "; did you mean " + Quote(suggestion) + "?";
      Error(at, std::move(message));
      return std::nullopt;
    };
    struct Named {
      std::string name;
      std::string at;  // pointer
    };
    std::vector<Named> names, selected, outputs;
    for (size_t i = 0; i < value.size(); ++i) {
      const json& item = value[i];
      const std::string at = pointer + "/" + std::to_string(i);
      if (!ExpectObject(item, at,
                        {"name", "select_src_port", "select_dst_port", "select_vlan", "select_all",
                         "output_port"})) {
        continue;
      }
      MirrorConfig mirror;
      mirror.where = At(at);
      if (Require(item, at, "name")) {
        if (auto name = GetObjectName(item, at, "mirror")) {
          mirror.name = *name;
          auto first = std::find_if(names.begin(), names.end(),
                                    [&](const Named& n) { return n.name == *name; });
          if (first != names.end()) {
            Error(Child(at, "name"), "mirror name " + Quote(*name) + " is already used (at " +
                                         LocationText(At(first->at)) + ")");
          } else {
            names.push_back({*name, Child(at, "name")});
          }
        }
      }
      for (std::string_view key : {"select_src_port", "select_dst_port"}) {
        const json* list = Member(item, key);
        if (!list) continue;
        const std::string list_at = Child(at, key);
        if (!ExpectArray(*list, list_at)) continue;
        if (list->empty()) {
          Error(list_at, "the port list is empty (leave " + Quote(key) + " out instead)");
          continue;
        }
        std::vector<std::string>& out =
            key == "select_src_port" ? mirror.select_src_port : mirror.select_dst_port;
        for (size_t j = 0; j < list->size(); ++j) {
          const std::string item_at = list_at + "/" + std::to_string(j);
          std::optional<std::string> name = port_at((*list)[j], item_at);
          if (!name) continue;
          if (std::find(out.begin(), out.end(), *name) != out.end()) {
            Error(item_at, "port " + Quote(*name) + " is listed twice");
            continue;
          }
          out.push_back(*name);
          selected.push_back({*name, item_at});
        }
      }
      if (const json* vlans = Member(item, "select_vlan")) {
        DecodeAllowed(*vlans, Child(at, "select_vlan"), &mirror.select_vlan);
      }
      if (auto all = GetBool(item, at, "select_all")) {
        mirror.select_all = *all;
        if (*all && (Member(item, "select_src_port") || Member(item, "select_dst_port")))
          Error(Child(at, "select_all"),
                "\"select_all\": true selects every port; leave out \"select_src_port\" and "
                "\"select_dst_port\"");
      }
      if (!mirror.select_all && !Member(item, "select_src_port") &&
          !Member(item, "select_dst_port") && !Member(item, "select_vlan")) {
        Error(at, "mirror " + Quote(mirror.name) +
                      " selects nothing: give \"select_src_port\", \"select_dst_port\", "
                      "\"select_vlan\" or \"select_all\": true");
      }
      if (Require(item, at, "output_port")) {
        const std::string out_at = Child(at, "output_port");
        if (std::optional<std::string> name = port_at(*Member(item, "output_port"), out_at)) {
          mirror.output_port = *name;
          outputs.push_back({*name, out_at});
          const PortConfig* port = find_port(*name);
          // A host NIC or an existing link is an uplink: copies with the
          // guests' source MACs would reach the LAN behind it, whose switches
          // would learn those MACs there and send the guests' traffic away.
          if (port->kind == PortKind::kExisting)
            Error(out_at, "port " + Quote(*name) +
                              " is an existing link (an uplink): mirrored copies would carry the "
                              "guests' MACs into the LAN behind it; use a tap or veth port");
          for (size_t e = 0; e < network->fdb.static_entries.size(); ++e)
            if (network->fdb.static_entries[e].port == *name) {
              Error(out_at, "port " + Quote(*name) + " has a static FDB entry (at " +
                                LocationText(network->fdb.static_entries[e].where) +
                                "), but a mirror's output port forwards nothing else");
              break;
            }
        }
      }
      network->mirrors.push_back(std::move(mirror));
    }
    // An output port only receives copies: as a source or destination it
    // would copy its own copies (OVS refuses this too).
    for (const Named& out : outputs)
      for (const Named& sel : selected)
        if (sel.name == out.name)
          Error(sel.at, "port " + Quote(sel.name) + " is the output port of a mirror (at " +
                            LocationText(At(out.at)) +
                            "); an output port cannot be selected for mirroring");
  }

  // "allowed": "10,20-30", or an array of VLAN IDs and list strings.
  void DecodeAllowed(const json& value, const std::string& pointer, VlanBitmap* allowed) {
    std::string why;
    if (value.is_string()) {
      const std::string text = value.get<std::string>();
      if (!ParseVlanList(text, allowed, &why)) {
        Error(pointer, "malformed VLAN list " + Quote(text) + ": " + why);
      }
      return;
    }
    if (!value.is_array()) {
      TypeError(value, pointer, "a VLAN list string like \"10,20-30\" or an array");
      return;
    }
    if (value.empty()) {
      Error(pointer, "the VLAN list is empty");
      return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const json& item = value[i];
      const std::string at = pointer + "/" + std::to_string(i);
      if (item.is_string()) {
        const std::string text = item.get<std::string>();
        if (!ParseVlanList(text, allowed, &why)) {
          Error(at, "malformed VLAN list " + Quote(text) + ": " + why);
        }
      } else if (item.is_number()) {
        if (auto id = IntegerAt(item, at, 1, kMaxVlanId)) allowed->set(*id);
      } else {
        TypeError(item, at, "a VLAN ID or a VLAN list string");
      }
    }
  }

  // ---- VMs ----

  void DecodeVm(const json& value, const std::string& pointer) {
    VmConfig vm;
    VmSites sites;
    sites.file_index = file_index_;
    vm.where = At(pointer);
    if (!ExpectObject(value, pointer,
                      {"name", "memory_mb", "vcpus", "accel", "kernel", "initrd", "cmdline", "disk",
                       "restart", "nics"})) {
      return;
    }
    bool name_ok = false;
    if (Require(value, pointer, "name")) {
      if (auto name = GetObjectName(value, pointer, "VM")) {
        vm.name = *name;
        sites.name = At(Child(pointer, "name"));
        name_ok = ObjectNameError(*name).empty();
      }
    }
    if (auto memory = GetInteger(value, pointer, "memory_mb", kMinMemoryMb, kMaxMemoryMb)) {
      vm.memory_mb = static_cast<uint32_t>(*memory);
    }
    if (auto vcpus = GetInteger(value, pointer, "vcpus", 1, kMaxVcpus)) {
      vm.vcpus = static_cast<uint32_t>(*vcpus);
    }
    static const std::vector<std::string_view> kAccels = {"auto", "kvm", "tcg"};
    if (auto accel = GetEnum(value, pointer, "accel", kAccels)) vm.accel = kAccels[*accel];
    static const std::vector<std::string_view> kRestarts = {"no", "on-failure", "always"};
    if (auto restart = GetEnum(value, pointer, "restart", kRestarts)) {
      vm.restart = kRestarts[*restart];
    }
    if (auto kernel = GetString(value, pointer, "kernel")) vm.kernel = *kernel;
    if (auto initrd = GetString(value, pointer, "initrd")) vm.initrd = *initrd;
    if (auto cmdline = GetString(value, pointer, "cmdline")) vm.cmdline = *cmdline;
    if (auto disk = GetString(value, pointer, "disk")) vm.disk = *disk;
    const bool has_kernel = Member(value, "kernel") != nullptr;
    const bool has_disk = Member(value, "disk") != nullptr;
    if (has_kernel && has_disk) {
      Error(Child(pointer, "disk"), "\"kernel\" and \"disk\" exclude each other; give one");
    } else if (!has_kernel && !has_disk) {
      Error(pointer, "a VM needs \"kernel\" (direct boot) or \"disk\"");
    }
    if (!has_kernel) {
      RejectIfPresent(value, pointer, "initrd", "needs \"kernel\"");
      RejectIfPresent(value, pointer, "cmdline", "needs \"kernel\"");
    }
    if (const json* nics = Member(value, "nics")) {
      const std::string list = Child(pointer, "nics");
      if (ExpectArray(*nics, list)) {
        for (size_t i = 0; i < nics->size(); ++i) {
          NicConfig nic;
          NicSites nic_sites;
          DecodeNic((*nics)[i], list + "/" + std::to_string(i), name_ok ? vm.name : "", i, &nic,
                    &nic_sites);
          vm.nics.push_back(std::move(nic));
          sites.nics.push_back(std::move(nic_sites));
        }
      }
    }
    out_->topology.vms.push_back(std::move(vm));
    out_->vms.push_back(std::move(sites));
  }

  void DecodeNic(const json& value, const std::string& pointer, const std::string& vm_name,
                 size_t index, NicConfig* nic, NicSites* sites) {
    nic->where = At(pointer);
    if (!ExpectObject(value, pointer, {"network", "mac", "port", "backend"})) return;
    if (auto backend = GetEnum(value, pointer, "backend", {"tap", "vhost-user"})) {
      nic->backend = *backend == 1 ? NicBackend::kVhostUser : NicBackend::kTap;
      sites->backend = At(Child(pointer, "backend"));
    }
    if (Require(value, pointer, "network")) {
      if (auto network = GetString(value, pointer, "network")) {
        nic->network = *network;
        sites->network = At(Child(pointer, "network"));
      }
    }
    if (Member(value, "mac")) {
      nic->mac = GetMac(value, pointer, "mac", "a VM NIC");
      if (nic->mac) sites->mac = At(Child(pointer, "mac"));
    }
    if (Member(value, "port")) {
      if (auto port = GetInterfaceName(value, pointer, "port")) {
        nic->port = *port;
        sites->port = At(Child(pointer, "port"));
      }
    } else if (!vm_name.empty()) {
      const std::string port = vm_name + "-eth" + std::to_string(index);
      if (port.size() > kMaxInterfaceNameLength) {
        Error(pointer,
              "the default port name " + Quote(port) + " is longer than 15 bytes; set \"port\"");
      } else {
        nic->port = port;
        sites->port = At(pointer);
        sites->port_defaulted = true;
      }
    }
  }

  const JsonDocument& doc_;
  std::string_view file_;
  size_t file_index_;
  const HostFacts& host_;
  Decoded* out_;
};

}  // namespace

void DecodeDocument(std::string_view text, std::string_view file_name, size_t file_index,
                    const HostFacts& host, Decoded* out) {
  const JsonDocument doc = ReadJson(text);
  for (const JsonError& error : doc.errors) {
    out->errors.push_back(
        {{std::string(file_name), error.at.line, error.at.column, error.pointer}, error.message});
  }
  if (!doc.complete) return;
  try {
    Decoder(doc, file_name, file_index, host, out).DecodeRoot();
  } catch (const nlohmann::json::exception& error) {
    // The decoder checks every type before reading a value, so this is a bug;
    // still, a library must not throw at its caller.
    out->errors.push_back({{std::string(file_name), 1, 1, ""},
                           std::string("internal error while checking: ") + error.what()});
  }
}

}  // namespace vfabric::topology::internal
