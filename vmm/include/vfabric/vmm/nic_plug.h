// How a guest's NIC plugs into a host port, spelled for QEMU and for libvirt.
//
// The one place where the QEMU -netdev/-device spelling of a VM NIC lives:
// vmm's own command line (BuildQemuCommand: a tap descriptor QEMU inherits)
// and netd's answer to `netctl port show --qemu|--libvirt` (a tap QEMU opens
// by name, a kernel bridge libvirt enslaves its own tap to, a vhost-user
// socket) both come from here. Pure functions: they touch nothing, so they
// are tested string by string (tests/unit/vmm/nic_plug_test.cc).
//
// The spellings (QEMU 7.2, libvirt 9.0; /work/shared/FIELD-NOTES.md):
//   tap by descriptor: -netdev tap,id=net-ID,fd=FD[,vhost=on]
//   tap by name:       -netdev tap,id=net-ID,ifname=TAP,script=no,downscript=no,vhost=on|off
//                      <interface type='ethernet'><target dev='TAP' managed='no'/>
//   kernel bridge:     <interface type='bridge'><source bridge='BR'/> (libvirt makes
//                      vnetN and enslaves it; QEMU by hand opens a tap port instead)
//   vhost-user:        -chardev socket,id=chr-ID,path=SOCK[,server=on,wait=off]
//                      -netdev vhost-user,id=net-ID,chardev=chr-ID
//                      <interface type='vhostuser'><source type='unix' path='SOCK'
//                      mode='server|client'>[<reconnect enabled='yes' timeout='1'/>]
//                      </source><alias name='ua-ID'/> (and in the domain a
//                      <qemu:override> for vectors=0: LibvirtVhostUserDomainXml)
//   and each:          -device virtio-net-pci,id=ID,netdev=net-ID[,mac=MAC][,vectors=0]
//                      <mac address='MAC'/> <model type='virtio'/>
// vhost-user also needs the guest's RAM shared (QEMU: -object
// memory-backend-memfd,...,share=on -numa node,memdev=...; libvirt:
// <memoryBacking> with <access mode='shared'/>): that is the machine's, not
// the NIC's, so it is not part of a NIC's arguments (SharedMemoryArgs).
//
// Hot-plugging a vhost-user NIC into a running QEMU is three QMP commands
// (VhostUserAttachCommands), each undone by its own if a later one fails:
//   chardev-add   {"id": chr-ID, "backend": {"type": "socket", "data": {"addr":
//                  {"type": "unix", "data": {"path": SOCK}}, "server": false, "reconnect": 1}}}
//   netdev_add    {"type": "vhost-user", "id": net-ID, "chardev": chr-ID}
//   device_add    {"driver": "virtio-net-pci", "id": ID, "netdev": net-ID, "mac": MAC, "vectors":
//   0}
// and unplugging it, after device_del and the guest's DEVICE_DELETED:
//   netdev_del {"id": net-ID} (VhostUserDetachCommands), which deletes the
//   chardev too: QEMU's vhost-user netdev owns it (a chardev-remove after it
//   fails, "Chardev 'chr-ID' not found").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/common/mac_address.h"

namespace vfabric::vmm {

struct NicPlug {
  enum class Kind {
    kTap,        // a tap: QEMU inherits it (tap_fd) or opens it by name (tap)
    kBridge,     // a kernel bridge: libvirt makes a tap and enslaves it
    kVhostUser,  // a vhost-user unix socket
  };
  Kind kind = Kind::kTap;
  // kTap: the tap's name (QEMU opens it: ifname=, script=no); kBridge: a tap
  // port of `bridge` that QEMU started by hand opens ("" : QEMU has no way in).
  std::string tap;
  int tap_fd = -1;     // kTap: the descriptor QEMU inherits instead (fd=)
  bool vhost = false;  // kTap: vhost-net
  std::string bridge;  // kBridge: the bridge's name
  std::string socket;  // kVhostUser: the socket's path
  // kVhostUser: QEMU listens on `socket` (server=on,wait=off; libvirt
  // mode='server'); else QEMU connects to the backend's socket (reconnect=1).
  bool socket_server = false;
};

// The device id a NIC plugged into `port` gets when nothing else names it:
// "vf-" + the port name, with every character QEMU refuses in an id (it
// takes letters, digits, '-', '.', '_', starting with a letter) as '_'.
std::string NicIdForPort(std::string_view port);

// QEMU's arguments for one NIC with device id `id` (netdev "net-" + id,
// chardev "chr-" + id): "-netdev", "...", "-device", "..." (vhost-user:
// "-chardev", "..." first). `mac` unset: QEMU picks one.
// REQUIRES: `id` is a valid QEMU id; kBridge has `tap` (else the result is
// empty: use LibvirtInterfaceXml).
std::vector<std::string> QemuNicArgs(const std::string& id, const NicPlug& plug,
                                     const std::optional<MacAddress>& mac);

// libvirt's <interface> element for the NIC, indented by two spaces per
// level, ending in a newline; attribute values XML-escaped. kTap with only
// `tap_fd` has no libvirt form: empty. kVhostUser with a device `id` also
// names the device (<alias name='ua-ID'/>, LibvirtAlias) so that the
// domain's <qemu:override> (LibvirtVhostUserDomainXml) can give it
// vectors=0; as QEMU's client (socket_server false) it reconnects every
// second (<reconnect enabled='yes' timeout='1'/>, QEMU's reconnect=1), so a
// restarted netd is found again.
std::string LibvirtInterfaceXml(const NicPlug& plug, const std::optional<MacAddress>& mac,
                                std::string_view id = "");

// libvirt's user alias for the device `id`: "ua-" + id with '.' as '_'
// (libvirt takes only aliases with that prefix from a domain's XML, and
// only letters, digits, '_' and '-' in them).
std::string LibvirtAlias(std::string_view id);

// What a libvirt domain with a vhost-user NIC (device `id`) needs beside
// its <interface>, as children of <domain>: the guest's RAM shared
// (<memoryBacking> with a memfd source and <access mode='shared'/>), and
// vectors=0 on the virtio-net device (QEMU 7.2 under TCG segfaults in
// msix_set_vector_notifiers when the guest starts a vhost-user NIC with
// MSI-X; libvirt's <interface> has no attribute for it, so
// <qemu:override>, which declares its own namespace, sets the property on
// the device named by LibvirtAlias(id)). Ends in a newline.
std::string LibvirtVhostUserDomainXml(std::string_view id);

// The machine's part of vhost-user: the guest's RAM (`memory_mb` MiB) in a
// shared memfd the backend maps: "-object",
// "memory-backend-memfd,id=vf-mem,size=<memory_mb>M,share=on", "-numa",
// "node,memdev=vf-mem".
std::vector<std::string> SharedMemoryArgs(uint32_t memory_mb);

// One QMP command and the one that undoes it (none: nothing to undo).
struct QmpCommand {
  std::string execute;
  nlohmann::json arguments;
};
struct QmpStep {
  QmpCommand run;
  std::optional<QmpCommand> undo;
  // The undo also takes away what the earlier steps added (netdev_del of a
  // vhost-user netdev deletes its chardev): a rollback stops after it.
  bool undo_covers_earlier = false;
};

// The QMP commands that hot-plug a vhost-user NIC with device id `id`
// whose backend listens on `socket` (QEMU the client, reconnecting every
// second: a restarted backend is found again), in order (see the file
// comment). Pure.
std::vector<QmpStep> VhostUserAttachCommands(const std::string& id, const std::string& socket,
                                             const MacAddress& mac);
// What removes the NIC's netdev (and with it its chardev) once the device
// is gone.
std::vector<QmpCommand> VhostUserDetachCommands(const std::string& id);

// A QEMU option value with each ',' doubled (QEMU's escape in key=value lists).
std::string QemuOptionEscape(std::string_view value);
// `value` with &, <, >, ' and " as XML entities (fit for an attribute in
// either quotes and for text).
std::string XmlEscape(std::string_view value);

}  // namespace vfabric::vmm
