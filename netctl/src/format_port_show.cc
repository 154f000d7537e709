// port show: what plugs a guest into a port, printed to be pasted.
#include <cctype>

#include "vfabric/netctl/format.h"

namespace vfabric::netctl {
namespace {

using nlohmann::json;

std::string Text(const json& result, const char* key) {
  auto it = result.find(key);
  return it != result.end() && it->is_string() ? it->get<std::string>() : "-";
}

std::string QemuLine(const json& result) {
  std::string line;
  auto it = result.find("qemu");
  if (it == result.end() || !it->is_array()) return line;
  for (const json& arg : *it) {
    if (!arg.is_string()) continue;
    if (!line.empty()) line += ' ';
    line += ShellWord(arg.get<std::string>());
  }
  return line;
}

// Each line of `text` behind `indent`.
std::string Indented(const std::string& text, const std::string& indent = "  ") {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out += indent + text.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

std::string Flag(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_boolean()) return "-";
  return it->get<bool>() ? "yes" : "no";
}

std::string Number(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? std::to_string(it->get<uint64_t>()) : "-";
}

// Names of a feature list, space-separated, then the bits: "A B (0x3)".
std::string Features(const json& n, const char* names, const char* bits) {
  std::string line;
  if (auto it = n.find(names); it != n.end() && it->is_array())
    for (const json& name : *it)
      if (name.is_string()) {
        // Appended piece by piece: `(cond ? "" : " ") + string` trips GCC
        // 12's false -Wrestrict at -O3 (the package's build).
        if (!line.empty()) line += ' ';
        line += name.get<std::string>();
      }
  return (line.empty() ? std::string("-") : line) + " (" + Text(n, bits) + ")";
}

// What the frontend negotiated, and each ring's state.
std::string NegotiatedText(const json& n) {
  std::string out = "features: " + Features(n, "features", "features_bits") + "\n";
  out += "protocol: " + Features(n, "protocol_features", "protocol_features_bits") + "\n";
  out += "queues:   " + Number(n, "queue_pairs") + " pair(s), mtu " + Number(n, "mtu") +
         ", memory regions " + Number(n, "memory_regions") + " (" +
         Number(n, "memory_regions_sealed") + " sealed against shrinking)\n";
  if (auto rings = n.find("rings"); rings != n.end() && rings->is_array()) {
    for (const json& r : *rings) {
      if (!r.is_object()) continue;
      out += "ring " + Number(r, "index") + ":   " +
             (Text(r, "direction") == "to_guest" ? "to the guest" : "from the guest") +
             ", started " + Flag(r, "started") + ", enabled " + Flag(r, "enabled") + ", ready " +
             Flag(r, "ready") + (r.value("broken", false) ? ", BROKEN" : "") + ", size " +
             Number(r, "size") + ", last avail " + Number(r, "last_avail_idx") + ", used " +
             Number(r, "used_idx") + "\n";
    }
  }
  return out;
}

// A vhost-user port's socket, netd's side of it, and its connection.
std::string VhostUserText(const json& vu) {
  std::string out = "socket:   " + Text(vu, "socket") + " (netd is the " + Text(vu, "mode") + ")\n";
  std::string state = "connected " + Flag(vu, "connected") + ", rings up " + Flag(vu, "up");
  if (auto waiting = vu.find("waiting"); waiting != vu.end() && waiting->is_string())
    state = "waiting: " + waiting->get<std::string>();
  out += "state:    " + state + "\n";
  if (auto counters = vu.find("counters"); counters != vu.end() && counters->is_object()) {
    std::string line;
    for (const auto& [key, value] : counters->items()) {
      if (!value.is_number_unsigned() || value.get<uint64_t>() == 0) continue;
      line += (line.empty() ? "" : ", ") + key + " " + std::to_string(value.get<uint64_t>());
    }
    out += "counters: " + (line.empty() ? std::string("-") : line) + "\n";
  }
  if (auto n = vu.find("negotiated"); n != vu.end() && n->is_object()) out += NegotiatedText(*n);
  return out;
}

}  // namespace

std::string ShellWord(std::string_view arg) {
  bool plain = !arg.empty();
  for (char c : arg) {
    const bool safe = std::isalnum(static_cast<unsigned char>(c)) ||
                      std::string_view(",=._:/@+%-").find(c) != std::string_view::npos;
    plain = plain && safe;
  }
  if (plain) return std::string(arg);
  std::string word = "'";
  for (char c : arg) {
    if (c == '\'')
      word += "'\\''";
    else
      word += c;
  }
  return word + "'";
}

std::string FormatPortShow(const json& result, std::string_view form) {
  if (!result.is_object()) return "-\n";
  const std::string qemu = QemuLine(result);
  std::string libvirt = Text(result, "libvirt");
  if (libvirt == "-") libvirt.clear();
  if (form == "qemu") return qemu + "\n";
  if (form == "libvirt")
    return libvirt.empty() || libvirt.back() == '\n' ? libvirt : libvirt + "\n";
  std::string out;
  for (const char* key : {"network", "port", "kind", "datapath", "vm", "mac"}) {
    std::string value = Text(result, key);
    out +=
        std::string(key) + ":" + std::string(9 - std::string_view(key).size(), ' ') + value + "\n";
  }
  if (auto vu = result.find("vhost_user"); vu != result.end() && vu->is_object())
    out += VhostUserText(*vu);
  if (result.contains("guest_error"))
    return out + "guest:    none (" + Text(result, "guest_error") + ")\n";
  out += "\nQEMU:\n  " + (qemu.empty() ? std::string("-") : qemu) + "\n";
  out += "\nlibvirt:\n";
  if (libvirt.empty()) return out + "  -\n";
  out += Indented(libvirt);
  // vhost-user: the machine's part, which the NIC's arguments leave out.
  if (auto vu = result.find("vhost_user"); vu != result.end() && vu->is_object()) {
    if (auto memory = vu->find("shared_memory"); memory != vu->end() && memory->is_object()) {
      out += "\nshared guest memory (needed by vhost-user; RAM: the guest's size):\n";
      out += "  QEMU:    " + Text(*memory, "qemu") + "\n";
      out += "  libvirt:\n" + Indented(Text(*memory, "libvirt"), "    ");
    }
    if (auto domain = vu->find("libvirt_domain"); domain != vu->end() && domain->is_string())
      out +=
          "\nlibvirt domain (children of <domain> beside the <interface>: shared memory, "
          "vectors=0):\n" +
          Indented(domain->get<std::string>());
  }
  return out;
}

}  // namespace vfabric::netctl
