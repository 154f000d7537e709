// A PortBackends for unit tests: every port gets the one backend the test
// made (a MemoryBackend handing out memory ports, a backend that says how a
// guest plugs in), and what it was asked for is kept for the test to check.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "vfabric/netd/port_backend.h"

namespace vfabric::netd {

class FakePortBackends final : public PortBackends {
 public:
  explicit FakePortBackends(PortBackend* backend) : backend_(backend) {}
  PortBackend& For(const topology::PortConfig& port, bool guest) const override {
    asked.emplace_back(port.name, guest);
    return *backend_;
  }

  // (port name, guest) of each For(), in order.
  mutable std::vector<std::pair<std::string, bool>> asked;

 private:
  PortBackend* backend_;
};

}  // namespace vfabric::netd
