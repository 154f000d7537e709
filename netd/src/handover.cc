// The handover state as JSON (handover.h).
#include "vfabric/netd/handover.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace vfabric::netd {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "vfabric-netd-handover";
// Bump when a field changes meaning; a new image refuses another version and
// starts cold (an upgrade across such a change converges as a restart does).
constexpr int kVersion = 1;

std::string Fnv1aHex(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

bool FromHex(const std::string& text, std::vector<uint8_t>* out) {
  if (text.size() % 2 != 0) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

// Reads the networks; throws nothing (json's checked accessors are avoided:
// every field is tested first). Descriptors are collected as numbers and
// owned only once everything parsed.
struct Parsed {
  HandoverState state;
  std::string error;
};

bool Field(const json& object, const char* key, json::value_t type, std::string* error,
           const std::string& where) {
  auto it = object.find(key);
  const bool unsigned_ok = type == json::value_t::number_unsigned;
  if (it == object.end() || (unsigned_ok ? !it->is_number_unsigned() : it->type() != type)) {
    *error = where + ": field \"" + key + "\" missing or of the wrong type";
    return false;
  }
  return true;
}

}  // namespace

std::set<int> HandoverState::Fds() const {
  std::set<int> fds;
  for (const HandedOverNetwork& network : networks)
    for (const HandedOverPort& port : network.ports)
      for (const UniqueFd& fd : port.port.fds) fds.insert(fd.get());
  return fds;
}

std::string SerializeHandover(const HandoverState& state) {
  json networks = json::array();
  for (const HandedOverNetwork& network : state.networks) {
    json ports = json::array();
    for (const HandedOverPort& port : network.ports) {
      json fds = json::array();
      for (const UniqueFd& fd : port.port.fds) fds.push_back(fd.get());
      json values = json::object();
      for (const auto& [key, value] : port.port.values) values[key] = value;
      ports.push_back({{"name", port.name},
                       {"id", port.id},
                       {"backend", port.backend},
                       {"identity", port.identity},
                       {"stp", static_cast<unsigned>(port.stp)},
                       {"kind", static_cast<unsigned>(port.port.kind)},
                       {"fds", std::move(fds)},
                       {"values", std::move(values)}});
    }
    json learned = json::array();
    for (const bridge::FdbEntry& entry : network.learned)
      learned.push_back(
          {entry.vlan, entry.mac.ToU64(), entry.port, static_cast<uint64_t>(entry.age_ns)});
    json out = {
        {"name", network.name}, {"ports", std::move(ports)}, {"learned", std::move(learned)}};
    if (network.tree)
      out["tree"] = {{"engine", Hex(network.tree->engine)}, {"names", network.tree->names}};
    networks.push_back(std::move(out));
  }
  const std::string body = networks.dump();
  json doc = {{"format", kFormat},
              {"version", kVersion},
              {"checksum", Fnv1aHex(body)},
              {"stopped_ns", state.stopped_ns},
              {"networks", std::move(networks)}};
  if (state.kernel_features) {
    const KernelFeatures& features = *state.kernel_features;
    doc["kernel_features"] = {
        {"bridge", features.bridge},
        {"bridge_vlan_filtering", features.bridge_vlan_filtering},
        {"veth", features.veth},
        {"tun", features.tun},
        {"bridge_vlan_filtering_reason", features.bridge_vlan_filtering_reason}};
  }
  return doc.dump() + "\n";
}

namespace {

// The features the image before probed; nothing when any field is missing
// or of another type (the new image then probes itself).
std::optional<KernelFeatures> ParseKernelFeatures(const json& doc) {
  auto found = doc.find("kernel_features");
  if (found == doc.end() || !found->is_object()) return std::nullopt;
  KernelFeatures features;
  for (auto [key, field] : {std::pair{"bridge", &features.bridge},
                            std::pair{"bridge_vlan_filtering", &features.bridge_vlan_filtering},
                            std::pair{"veth", &features.veth}, std::pair{"tun", &features.tun}}) {
    auto value = found->find(key);
    if (value == found->end() || !value->is_boolean()) return std::nullopt;
    *field = value->get<bool>();
  }
  auto reason = found->find("bridge_vlan_filtering_reason");
  if (reason == found->end() || !reason->is_string()) return std::nullopt;
  features.bridge_vlan_filtering_reason = reason->get<std::string>();
  return features;
}

}  // namespace

Result<HandoverState> ParseHandover(std::string_view text) {
  const std::string what = "handover state";
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return Status::Error(what + ": not JSON (truncated or corrupt)", EINVAL);
  auto format = doc.find("format");
  if (format == doc.end() || !format->is_string() || *format != kFormat)
    return Status::Error(what + ": not a netd handover file", EINVAL);
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || *version != kVersion)
    return Status::Error(what + ": version " + (version == doc.end() ? "none" : version->dump()) +
                             ", this netd reads " + std::to_string(kVersion),
                         EINVAL);
  auto networks = doc.find("networks");
  auto checksum = doc.find("checksum");
  if (networks == doc.end() || !networks->is_array() || checksum == doc.end() ||
      !checksum->is_string())
    return Status::Error(what + ": networks or checksum missing", EINVAL);
  if (Fnv1aHex(networks->dump()) != checksum->get<std::string>())
    return Status::Error(what + ": checksum mismatch (corrupt)", EINVAL);

  std::string error;
  std::vector<int> fds_seen;
  struct PendingPort {
    HandedOverPort port;
    std::vector<int> fds;
  };
  struct PendingNetwork {
    HandedOverNetwork network;
    std::vector<PendingPort> ports;
  };
  std::vector<PendingNetwork> pending;
  using T = json::value_t;
  for (const json& n : *networks) {
    if (!n.is_object()) return Status::Error(what + ": a network is not an object", EINVAL);
    if (!Field(n, "name", T::string, &error, what) || !Field(n, "ports", T::array, &error, what) ||
        !Field(n, "learned", T::array, &error, what))
      return Status::Error(error, EINVAL);
    PendingNetwork net;
    net.network.name = n["name"].get<std::string>();
    const std::string where = what + ": network " + net.network.name;
    for (const json& p : n["ports"]) {
      if (!p.is_object() || !Field(p, "name", T::string, &error, where) ||
          !Field(p, "id", T::number_unsigned, &error, where) ||
          !Field(p, "backend", T::string, &error, where) ||
          !Field(p, "identity", T::string, &error, where) ||
          !Field(p, "stp", T::number_unsigned, &error, where) ||
          !Field(p, "kind", T::number_unsigned, &error, where) ||
          !Field(p, "fds", T::array, &error, where) ||
          !Field(p, "values", T::object, &error, where))
        return Status::Error(error.empty() ? where + ": a port is not an object" : error, EINVAL);
      PendingPort port;
      port.port.name = p["name"].get<std::string>();
      const uint64_t id = p["id"].get<uint64_t>(), stp = p["stp"].get<uint64_t>(),
                     kind = p["kind"].get<uint64_t>();
      if (id >= bridge::kNoPort || stp > static_cast<uint64_t>(bridge::StpState::kForwarding) ||
          kind > static_cast<uint64_t>(bridge::PortKind::kVxlan))
        return Status::Error(where + ": port " + port.port.name + ": id, stp or kind out of range",
                             EINVAL);
      port.port.id = static_cast<bridge::PortId>(id);
      port.port.stp = static_cast<bridge::StpState>(stp);
      port.port.port.kind = static_cast<bridge::PortKind>(kind);
      port.port.backend = p["backend"].get<std::string>();
      port.port.identity = p["identity"].get<std::string>();
      for (const json& fd : p["fds"]) {
        if (!fd.is_number_unsigned() || fd.get<uint64_t>() < 3 || fd.get<uint64_t>() > 1u << 30)
          return Status::Error(where + ": port " + port.port.name + ": bad descriptor", EINVAL);
        port.fds.push_back(fd.get<int>());
        fds_seen.push_back(fd.get<int>());
      }
      for (const auto& item : p["values"].items()) {
        if (!item.value().is_number_unsigned())
          return Status::Error(where + ": port " + port.port.name + ": value " + item.key(),
                               EINVAL);
        port.port.port.values[item.key()] = item.value().get<uint64_t>();
      }
      net.ports.push_back(std::move(port));
    }
    for (const json& e : n["learned"]) {
      if (!e.is_array() || e.size() != 4 || !e[0].is_number_unsigned() ||
          !e[1].is_number_unsigned() || !e[2].is_number_unsigned() || !e[3].is_number_unsigned() ||
          e[0].get<uint64_t>() > 4095 || e[2].get<uint64_t>() >= bridge::kNoPort)
        return Status::Error(where + ": bad learned FDB entry " + e.dump(), EINVAL);
      bridge::FdbEntry entry;
      entry.vlan = static_cast<bridge::VlanId>(e[0].get<uint64_t>());
      entry.mac = MacAddress::FromU64(e[1].get<uint64_t>());
      entry.port = static_cast<bridge::PortId>(e[2].get<uint64_t>());
      entry.age_ns = e[3].get<uint64_t>();
      net.network.learned.push_back(entry);
    }
    if (auto tree = n.find("tree"); tree != n.end()) {
      if (!tree->is_object() || !Field(*tree, "engine", T::string, &error, where) ||
          !Field(*tree, "names", T::array, &error, where))
        return Status::Error(error.empty() ? where + ": tree is not an object" : error, EINVAL);
      bridge::TreeHandover handover;
      if (!FromHex((*tree)["engine"].get<std::string>(), &handover.engine))
        return Status::Error(where + ": tree engine state is not hex", EINVAL);
      for (const json& name : (*tree)["names"]) {
        if (!name.is_string()) return Status::Error(where + ": tree port name", EINVAL);
        handover.names.push_back(name.get<std::string>());
      }
      net.network.tree = std::move(handover);
    }
    pending.push_back(std::move(net));
  }
  std::sort(fds_seen.begin(), fds_seen.end());
  if (std::adjacent_find(fds_seen.begin(), fds_seen.end()) != fds_seen.end())
    return Status::Error(what + ": a descriptor is named twice", EINVAL);
  // Everything read: own the descriptors.
  HandoverState state;
  if (auto stopped = doc.find("stopped_ns"); stopped != doc.end() && stopped->is_number_integer())
    state.stopped_ns = stopped->get<int64_t>();
  state.kernel_features = ParseKernelFeatures(doc);
  for (PendingNetwork& net : pending) {
    for (PendingPort& port : net.ports) {
      for (int fd : port.fds) port.port.port.fds.emplace_back(fd);
      net.network.ports.push_back(std::move(port.port));
    }
    state.networks.push_back(std::move(net.network));
  }
  return state;
}

std::string FormatFdList(const std::set<int>& fds) {
  std::string text;
  for (int fd : fds) {
    // Appended piece by piece: a literal + std::to_string trips GCC 12's
    // -Wrestrict at -O3 (the package's build).
    if (!text.empty()) text += ',';
    text += std::to_string(fd);
  }
  return text;
}

std::set<int> ParseFdList(std::string_view text) {
  std::set<int> fds;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string item(text.substr(at, end - at));
    char* stop = nullptr;
    const long fd = item.empty() ? -1 : std::strtol(item.c_str(), &stop, 10);
    if (fd > 2 && fd < (1L << 30) && stop != nullptr && *stop == '\0')
      fds.insert(static_cast<int>(fd));
    at = end + 1;
  }
  return fds;
}

size_t CloseUnadopted(const std::set<int>& passed, const std::set<int>& keep) {
  size_t closed = 0;
  for (int fd : passed) {
    if (keep.count(fd) || ::fcntl(fd, F_GETFD) < 0) continue;
    ::close(fd);
    ++closed;
  }
  return closed;
}

}  // namespace vfabric::netd
