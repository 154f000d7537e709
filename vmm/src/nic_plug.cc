#include "vfabric/vmm/nic_plug.h"

#include <cctype>

namespace vfabric::vmm {
namespace {

std::string OnOff(bool on) { return on ? "on" : "off"; }

std::string DeviceOption(const std::string& id, const NicPlug& plug,
                         const std::optional<MacAddress>& mac) {
  std::string device = "virtio-net-pci,id=" + id + ",netdev=net-" + id;
  if (mac) device += ",mac=" + mac->ToString();
  // QEMU 7.2 under TCG segfaults in msix_set_vector_notifiers when the guest
  // driver starts a vhost-user virtio-net-pci with MSI-X (FIELD-NOTES.md).
  if (plug.kind == NicPlug::Kind::kVhostUser) device += ",vectors=0";
  return device;
}

}  // namespace

std::string QemuOptionEscape(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::string XmlEscape(std::string_view value) {
  std::string out;
  for (char c : value) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string NicIdForPort(std::string_view port) {
  std::string id = "vf-";
  for (char c : port) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    id += ok ? c : '_';
  }
  return id;
}

std::vector<std::string> SharedMemoryArgs(uint32_t memory_mb) {
  return {"-object",
          "memory-backend-memfd,id=vf-mem,size=" + std::to_string(memory_mb) + "M,share=on",
          "-numa", "node,memdev=vf-mem"};
}

std::vector<QmpStep> VhostUserAttachCommands(const std::string& id, const std::string& socket,
                                             const MacAddress& mac) {
  const std::string chardev = "chr-" + id;
  const std::string netdev = "net-" + id;
  nlohmann::json backend = {{"type", "socket"},
                            {"data",
                             {{"addr", {{"type", "unix"}, {"data", {{"path", socket}}}}},
                              {"server", false},
                              {"reconnect", 1}}}};
  return {
      {{"chardev-add", {{"id", chardev}, {"backend", std::move(backend)}}},
       QmpCommand{"chardev-remove", {{"id", chardev}}}},
      {{"netdev_add", {{"type", "vhost-user"}, {"id", netdev}, {"chardev", chardev}}},
       QmpCommand{"netdev_del", {{"id", netdev}}},
       /*undo_covers_earlier=*/true},
      // vectors=0 as on the command line: QEMU 7.2 under TCG crashes with
      // MSI-X on a vhost-user NIC (FIELD-NOTES.md).
      {{"device_add",
        {{"driver", "virtio-net-pci"},
         {"id", id},
         {"netdev", netdev},
         {"mac", mac.ToString()},
         {"vectors", 0}}},
       std::nullopt},
  };
}

std::vector<QmpCommand> VhostUserDetachCommands(const std::string& id) {
  return {{"netdev_del", {{"id", "net-" + id}}}};
}

std::vector<std::string> QemuNicArgs(const std::string& id, const NicPlug& plug,
                                     const std::optional<MacAddress>& mac) {
  std::vector<std::string> args;
  const std::string netdev_id = "net-" + id;
  switch (plug.kind) {
    case NicPlug::Kind::kTap:
    case NicPlug::Kind::kBridge: {
      std::string netdev = "tap,id=" + netdev_id;
      if (plug.kind == NicPlug::Kind::kTap && plug.tap_fd >= 0) {
        // vmm's own guests: the spelling their run records hold, unchanged.
        netdev += ",fd=" + std::to_string(plug.tap_fd);
        if (plug.vhost) netdev += ",vhost=on";
      } else {
        if (plug.tap.empty()) return {};
        // script=no: the tap exists and netd has put it where it belongs;
        // QEMU's default ifup script would try to enslave it elsewhere.
        netdev += ",ifname=" + QemuOptionEscape(plug.tap) +
                  ",script=no,downscript=no,vhost=" + OnOff(plug.vhost);
      }
      args = {"-netdev", netdev};
      break;
    }
    case NicPlug::Kind::kVhostUser: {
      const std::string chardev_id = "chr-" + id;
      std::string chardev = "socket,id=" + chardev_id + ",path=" + QemuOptionEscape(plug.socket);
      chardev += plug.socket_server ? ",server=on,wait=off" : ",reconnect=1";
      args = {"-chardev", chardev, "-netdev",
              "vhost-user,id=" + netdev_id + ",chardev=" + chardev_id};
      break;
    }
  }
  args.insert(args.end(), {"-device", DeviceOption(id, plug, mac)});
  return args;
}

std::string LibvirtAlias(std::string_view id) {
  // libvirt takes letters, digits, '_' and '-' in a user alias; QEMU's ids
  // may also hold '.'.
  std::string alias = "ua-" + std::string(id);
  for (char& c : alias)
    if (c == '.') c = '_';
  return alias;
}

std::string LibvirtInterfaceXml(const NicPlug& plug, const std::optional<MacAddress>& mac,
                                std::string_view id) {
  std::string type;
  std::string source;
  std::string alias;
  switch (plug.kind) {
    case NicPlug::Kind::kTap:
      if (plug.tap.empty()) return "";
      type = "ethernet";
      // managed='no': the tap is netd's; libvirt opens it and leaves it be.
      source = "  <target dev='" + XmlEscape(plug.tap) + "' managed='no'/>\n";
      break;
    case NicPlug::Kind::kBridge:
      type = "bridge";
      source = "  <source bridge='" + XmlEscape(plug.bridge) + "'/>\n";
      break;
    case NicPlug::Kind::kVhostUser:
      type = "vhostuser";
      source = "  <source type='unix' path='" + XmlEscape(plug.socket) + "' mode='" +
               (plug.socket_server ? "server" : "client") + "'";
      // QEMU as the client: without <reconnect> it never connects again
      // once netd (the server) restarts, and the NIC stays dead.
      source += plug.socket_server ? "/>\n"
                                   : ">\n    <reconnect enabled='yes' timeout='1'/>\n  </source>\n";
      if (!id.empty()) alias = "  <alias name='" + XmlEscape(LibvirtAlias(id)) + "'/>\n";
      break;
  }
  std::string xml = "<interface type='" + type + "'>\n";
  if (mac) xml += "  <mac address='" + mac->ToString() + "'/>\n";
  xml += source;
  xml += "  <model type='virtio'/>\n";
  xml += alias;
  xml += "</interface>\n";
  return xml;
}

std::string LibvirtVhostUserDomainXml(std::string_view id) {
  return "<memoryBacking>\n"
         "  <source type='memfd'/>\n"
         "  <access mode='shared'/>\n"
         "</memoryBacking>\n"
         "<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
         "  <qemu:device alias='" +
         XmlEscape(LibvirtAlias(id)) +
         "'>\n"
         "    <qemu:frontend>\n"
         "      <qemu:property name='vectors' type='unsigned' value='0'/>\n"
         "    </qemu:frontend>\n"
         "  </qemu:device>\n"
         "</qemu:override>\n";
}

}  // namespace vfabric::vmm
