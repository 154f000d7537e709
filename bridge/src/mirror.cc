// Port mirroring: the table the pipeline reads. See mirror.h.
#include "mirror.h"

#include <errno.h>

#include <algorithm>
#include <string>

namespace vfabric::bridge::internal {

Status CheckMirrors(const std::vector<MirrorSettings>& mirrors,
                    const std::function<bool(PortId)>& present) {
  if (mirrors.size() > kMaxMirrors)
    return Status::Error(
        std::to_string(mirrors.size()) + " mirrors; at most " + std::to_string(kMaxMirrors),
        EINVAL);
  for (const MirrorSettings& m : mirrors) {
    const std::string what = "mirror " + m.name;
    if (!present(m.output))
      return Status::Error(what + ": no output port #" + std::to_string(m.output), ENOENT);
    for (const std::vector<PortId>* list : {&m.select_src, &m.select_dst})
      for (PortId p : *list)
        if (!present(p)) return Status::Error(what + ": no port #" + std::to_string(p), ENOENT);
  }
  // An output port selected would copy its own copies.
  for (const MirrorSettings& out : mirrors)
    for (const MirrorSettings& m : mirrors)
      for (const std::vector<PortId>* list : {&m.select_src, &m.select_dst})
        if (std::find(list->begin(), list->end(), out.output) != list->end())
          return Status::Error("mirror " + m.name + ": selects port #" +
                                   std::to_string(out.output) + ", the output port of mirror " +
                                   out.name,
                               EINVAL);
  return Status::Ok();
}

std::shared_ptr<const MirrorTable> BuildMirrorTable(
    const std::vector<MirrorSettings>& mirrors, size_t ports,
    const std::function<bool(PortId)>& present, const std::function<VlanSet(PortId)>& untagged_of) {
  auto table = std::make_shared<MirrorTable>();
  table->rx.assign(ports, 0);
  table->tx.assign(ports, 0);
  table->vlan.assign(4096, 0);
  size_t bit = 0;
  for (const MirrorSettings& m : mirrors) {
    if (bit == kMaxMirrors) break;  // CheckMirrors refused more
    if (m.output >= ports || !present(m.output)) continue;
    const uint64_t mask = uint64_t{1} << bit;
    for (PortId p : m.select_src)
      if (p < ports && present(p)) table->rx[p] |= mask;
    for (PortId p : m.select_dst)
      if (p < ports && present(p)) table->tx[p] |= mask;
    if (m.select_all || (m.select_src.empty() && m.select_dst.empty())) table->all |= mask;
    const bool every_vlan = m.select_vlan == VlanSet();
    for (uint16_t vid = 0; vid < 4096; ++vid)
      if (every_vlan || m.select_vlan.Contains(vid)) table->vlan[vid] |= mask;
    table->output[bit] = m.output;
    table->untagged[bit] = untagged_of(m.output);
    ++bit;
  }
  if (bit == 0) return nullptr;
  for (size_t a = 0; a < bit; ++a)
    for (size_t b = 0; b < bit; ++b)
      if (table->output[a] == table->output[b]) table->same_output[a] |= uint64_t{1} << b;
  return table;
}

void ForgetPort(std::vector<MirrorSettings>* mirrors, PortId port) {
  std::erase_if(*mirrors, [port](MirrorSettings& m) {
    if (m.output == port) return true;
    const bool selected_ports = !m.select_src.empty() || !m.select_dst.empty();
    std::erase(m.select_src, port);
    std::erase(m.select_dst, port);
    return selected_ports && !m.select_all && m.select_src.empty() && m.select_dst.empty();
  });
}

}  // namespace vfabric::bridge::internal
