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
  if (result.contains("guest_error"))
    return out + "guest:    none (" + Text(result, "guest_error") + ")\n";
  out += "\nQEMU:\n  " + (qemu.empty() ? std::string("-") : qemu) + "\n";
  out += "\nlibvirt:\n";
  if (libvirt.empty()) return out + "  -\n";
  size_t start = 0;
  while (start < libvirt.size()) {
    size_t end = libvirt.find('\n', start);
    if (end == std::string::npos) end = libvirt.size();
    out += "  " + libvirt.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

}  // namespace vfabric::netctl
