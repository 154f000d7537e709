#include "mirror_plan.h"

#include <algorithm>

namespace vfabric::netd {

std::vector<topology::MirrorConfig> EffectiveMirrors(
    const std::vector<topology::MirrorConfig>& mirrors, const std::set<std::string>& held) {
  std::vector<topology::MirrorConfig> out;
  for (const topology::MirrorConfig& m : mirrors) {
    if (!held.count(m.output_port)) continue;
    topology::MirrorConfig kept = m;
    const bool had_ports = !m.select_src_port.empty() || !m.select_dst_port.empty();
    const auto gone = [&](const std::string& port) { return held.count(port) == 0; };
    std::erase_if(kept.select_src_port, gone);
    std::erase_if(kept.select_dst_port, gone);
    if (had_ports && !kept.select_all && kept.select_src_port.empty() &&
        kept.select_dst_port.empty())
      continue;
    out.push_back(std::move(kept));
  }
  return out;
}

bool SameMirrors(const std::vector<topology::MirrorConfig>& a,
                 const std::vector<topology::MirrorConfig>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const topology::MirrorConfig& x, const topology::MirrorConfig& y) {
                      return x.name == y.name && x.select_src_port == y.select_src_port &&
                             x.select_dst_port == y.select_dst_port &&
                             x.select_vlan == y.select_vlan && x.select_all == y.select_all &&
                             x.output_port == y.output_port;
                    });
}

namespace {

std::string Join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

}  // namespace

std::string MirrorsText(const std::vector<topology::MirrorConfig>& mirrors) {
  if (mirrors.empty()) return "none";
  std::vector<std::string> each;
  for (const topology::MirrorConfig& m : mirrors) {
    std::vector<std::string> parts;
    if (m.select_all || (m.select_src_port.empty() && m.select_dst_port.empty()))
      parts.push_back("all ports");
    if (!m.select_src_port.empty()) parts.push_back("from " + Join(m.select_src_port, ","));
    if (!m.select_dst_port.empty()) parts.push_back("to " + Join(m.select_dst_port, ","));
    if (m.select_vlan.any()) parts.push_back("vlan " + topology::FormatVlanList(m.select_vlan));
    each.push_back(m.name + " (" + Join(parts, ", ") + " -> " + m.output_port + ")");
  }
  return Join(each, "; ");
}

nlohmann::json MirrorsJson(const std::vector<topology::MirrorConfig>& mirrors) {
  nlohmann::json list = nlohmann::json::array();
  for (const topology::MirrorConfig& m : mirrors)
    list.push_back({{"name", m.name},
                    {"select_src_port", m.select_src_port},
                    {"select_dst_port", m.select_dst_port},
                    {"select_vlan", m.select_vlan.any()
                                        ? nlohmann::json(topology::FormatVlanList(m.select_vlan))
                                        : nlohmann::json(nullptr)},
                    {"select_all", m.select_all},
                    {"output_port", m.output_port}});
  return list;
}

std::vector<bridge::MirrorSettings> ToSwitchMirrors(
    const std::vector<topology::MirrorConfig>& mirrors,
    const std::function<std::optional<bridge::PortId>(const std::string&)>& id_of) {
  std::vector<bridge::MirrorSettings> out;
  for (const topology::MirrorConfig& m : mirrors) {
    bridge::MirrorSettings s;
    s.name = m.name;
    for (const std::string& port : m.select_src_port)
      if (auto id = id_of(port)) s.select_src.push_back(*id);
    for (const std::string& port : m.select_dst_port)
      if (auto id = id_of(port)) s.select_dst.push_back(*id);
    for (uint16_t vid = 1; vid < 4095; ++vid)
      if (m.select_vlan.test(vid)) s.select_vlan.Add(vid);
    s.select_all = m.select_all;
    s.output = id_of(m.output_port).value_or(bridge::kNoPort);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<topology::MirrorConfig> FromSwitchMirrors(
    const std::vector<bridge::MirrorSettings>& mirrors,
    const std::function<std::optional<std::string>(bridge::PortId)>& name_of) {
  std::vector<topology::MirrorConfig> out;
  for (const bridge::MirrorSettings& s : mirrors) {
    topology::MirrorConfig m;
    m.name = s.name;
    for (bridge::PortId id : s.select_src)
      if (auto name = name_of(id)) m.select_src_port.push_back(*name);
    for (bridge::PortId id : s.select_dst)
      if (auto name = name_of(id)) m.select_dst_port.push_back(*name);
    for (uint16_t vid = 1; vid < 4095; ++vid)
      if (s.select_vlan.Contains(vid)) m.select_vlan.set(vid);
    m.select_all = s.select_all;
    m.output_port = name_of(s.output).value_or("");
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace vfabric::netd
