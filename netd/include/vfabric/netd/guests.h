// netd's guests: the QEMU processes of the topology's "vms", supervised from
// netd's event loop (vfabric::vmm::Guest does the work; this keeps the set).
//
// Sync() is called after the kernel is reconciled, so every NIC's tap exists:
// it opens the taps, creates and starts guests that are new, and stops and
// forgets guests that left the topology. A guest the operator stopped stays
// stopped. Single-threaded, like the rest of netd's loop.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vfabric/common/status.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vmm/guest.h"

namespace vfabric::netd {

class GuestManager {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Each guest's qmp.sock, console.sock and console.log go to run_dir/NAME.
  GuestManager(std::string run_dir, vmm::GuestOptions options = {});
  ~GuestManager();

  // Makes the set of guests match `desired.vms` (see the file comment).
  // Returns one message per guest that could not be created or started.
  std::vector<std::string> Sync(const topology::Topology& desired);

  // Event-loop hooks: every fd to watch for input, what to call when one is
  // readable, and when Poll() wants to run next.
  std::vector<int> Fds() const;
  void OnReadable(int fd);
  std::optional<TimePoint> NextDeadline() const;
  void Poll();

  nlohmann::json List() const;
  Result<nlohmann::json> Get(const std::string& name) const;
  Status Start(const std::string& name);
  Status Stop(const std::string& name);
  // The last `bytes` of the guest's serial console log.
  Result<nlohmann::json> ConsoleLog(const std::string& name, size_t bytes) const;

  // Hot-plugs a NIC whose tap `port` exists; returns its id.
  Result<vmm::GuestNicInfo> Attach(const std::string& vm, const std::string& network,
                                   const std::string& port, const MacAddress& mac);
  // Removes a NIC by id or port name; returns the NIC that went.
  Result<vmm::GuestNicInfo> Detach(const std::string& vm, const std::string& nic);
  bool Has(const std::string& name) const { return guests_.count(name) != 0; }
  std::vector<vmm::GuestNicInfo> Nics(const std::string& name) const;

  // Powers every guest down, waiting up to `timeout` in all, then kills what
  // is left.
  void StopAll(std::chrono::milliseconds timeout);

 private:
  std::string run_dir_;
  vmm::GuestOptions options_;
  std::map<std::string, std::unique_ptr<vmm::Guest>> guests_;
};

nlohmann::json GuestStatusJson(const vmm::GuestStatus& status);

}  // namespace vfabric::netd
