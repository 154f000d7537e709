// What netd hands to a new image of itself when it re-executes (SIGUSR2:
// a restart or an in-place upgrade without outage; netd/DESIGN.md,
// "Restarts and upgrades without outage"): per userspace network, the
// switch ports' descriptors (taps, packet sockets: they stay open across the
// exec, without FD_CLOEXEC), which port each is and its state, the spanning
// tree's engine state, and the learned FDB entries with their ages.
//
// The state travels as a JSON file in the run directory, named to the new
// image by the environment (kHandoverEnv). It carries a format version and a
// checksum; the new image refuses a file that is truncated, corrupt or of
// another version, with the reason, and then starts cold (closing the
// descriptors it was passed, CloseUnadopted) as a plain restart does.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "vfabric/bridge/port.h"
#include "vfabric/bridge/settings.h"
#include "vfabric/bridge/spanning_tree.h"
#include "vfabric/common/status.h"
#include "vfabric/netd/kernel.h"

namespace vfabric::netd {

// The environment variable naming the handover file to the new image.
inline constexpr const char* kHandoverEnv = "VFABRIC_NETD_HANDOVER";

struct HandedOverPort {
  std::string name;
  bridge::PortId id = bridge::kNoPort;                   // its switch port id (tree number - 1)
  std::string backend;                                   // PortBackend::Name()
  std::string identity;                                  // PortBackend::Identity()
  bridge::StpState stp = bridge::StpState::kForwarding;  // the switch port's state
  bridge::PortHandover port;                             // descriptors and ring positions
};

struct HandedOverNetwork {
  std::string name;
  std::vector<HandedOverPort> ports;
  std::optional<bridge::TreeHandover> tree;
  std::vector<bridge::FdbEntry> learned;  // learned entries, with ages at the handover
};

struct HandoverState {
  std::vector<HandedOverNetwork> networks;
  // When the old image stopped the switches (steady_clock ns: the
  // monotonic clock goes on across the exec), for the new image's log of
  // how long frames waited.
  int64_t stopped_ns = 0;
  // What the image before probed of the kernel (ProbeFeatures): the new
  // image takes it instead of probing again, since the probe creates and
  // deletes a veth pair and a bridge, about 70 ms while the switches wait.
  // Absent (an older image's file, or a field missing): the new image probes.
  std::optional<KernelFeatures> kernel_features;
  // Every descriptor the state holds.
  std::set<int> Fds() const;
};

// The state as text (the descriptors by number).
std::string SerializeHandover(const HandoverState& state);
// The state from text, taking ownership of the descriptors it names.
// Refuses (nothing owned) text that is not JSON, has another format or
// version, a checksum that does not match, or fields missing or out of
// range; the error says which.
Result<HandoverState> ParseHandover(std::string_view text);

// The descriptors the old image passed, as "3,4,7" in kHandoverFdsEnv
// beside the file: so that the new image can close them even when the file
// cannot be read (a tap held open would refuse the next open), and touches
// no descriptor its own parent gave it.
inline constexpr const char* kHandoverFdsEnv = "VFABRIC_NETD_HANDOVER_FDS";
std::string FormatFdList(const std::set<int>& fds);
// The numbers of a list FormatFdList made; what is not a number above 2 is
// skipped.
std::set<int> ParseFdList(std::string_view text);
// Closes each descriptor of `passed` not in `keep`: what was handed over
// and is not adopted. Returns how many it closed.
size_t CloseUnadopted(const std::set<int>& passed, const std::set<int>& keep);

}  // namespace vfabric::netd
