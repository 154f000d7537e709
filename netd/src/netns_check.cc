#include "netns_check.h"

#include <sys/stat.h>

namespace vfabric::netd {
namespace {

bool NetnsExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string MissingMessage(const std::string& network, const std::string& peer,
                           const std::string& netns, const std::string& path) {
  return "network " + network + ": veth peer " + peer + " goes into network namespace \"" + netns +
         "\", which does not exist (no " + path + "); create it first (ip netns add " + netns + ")";
}

}  // namespace

std::vector<std::string> MissingNetns(const std::vector<Operation>& plan,
                                      const std::string& netns_dir) {
  std::vector<std::string> missing;
  for (const Operation& op : plan) {
    if (op.kind != Operation::Kind::kMoveToNetns) continue;
    const std::string path = netns_dir + "/" + op.netns;
    if (!NetnsExists(path))
      missing.push_back(MissingMessage(op.network, op.object, op.netns, path));
  }
  return missing;
}

std::vector<std::string> MissingNetns(const std::vector<topology::NetworkConfig>& networks,
                                      const std::string& netns_dir) {
  std::vector<std::string> missing;
  for (const topology::NetworkConfig& network : networks) {
    for (const topology::PortConfig& port : network.ports) {
      if (port.kind != topology::PortKind::kVeth || port.peer_netns.empty()) continue;
      const std::string path = netns_dir + "/" + port.peer_netns;
      if (!NetnsExists(path))
        missing.push_back(MissingMessage(network.name, port.peer, port.peer_netns, path));
    }
  }
  return missing;
}

std::map<std::string, std::string> MissingPeerNetns(const topology::Topology& desired,
                                                    const std::string& netns_dir) {
  std::map<std::string, std::string> missing;
  for (const topology::NetworkConfig& network : desired.networks) {
    for (const topology::PortConfig& port : network.ports) {
      if (port.kind != topology::PortKind::kVeth || port.peer_netns.empty()) continue;
      const std::string path = netns_dir + "/" + port.peer_netns;
      if (!NetnsExists(path)) missing.emplace(port.peer_netns, path);
    }
  }
  return missing;
}

}  // namespace vfabric::netd
