// Internals of the topology loader.
//
// Loading is two passes:
//  1. DecodeDocument(): one file's text -> ReadJson() -> the model, checking
//     everything that one value or one object decides (types, ranges, names,
//     required and unknown keys, kind-specific fields). It also remembers where
//     every name and reference was written (the "sites"), because the model
//     keeps only the location of each object.
//  2. CheckAcross(): all files merged -> duplicate names (networks, VMs, and
//     interface names: bridges, ports and veth peers share one namespace) and
//     references (static FDB ports, VM NIC networks and ports).
// Every problem becomes a Diagnostic; nothing stops early except a JSON
// syntax error, which ends the reading of that one file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vfabric/topology/host_facts.h"
#include "vfabric/topology/topology.h"

namespace vfabric::topology::internal {

struct PortSites {
  SourceLocation name;
  SourceLocation peer;    // line 0 when the port has no peer
  SourceLocation socket;  // vhost-user: line 0 when the port has no socket
};

struct NetworkSites {
  size_t file_index = 0;
  SourceLocation name;
  SourceLocation bridge;  // the name's location when the bridge name is the default
  bool bridge_defaulted = false;
  std::vector<PortSites> ports;           // parallel to NetworkConfig::ports
  std::vector<SourceLocation> fdb_ports;  // parallel to FdbConfig::static_entries
  SourceLocation overlay_vni;             // line 0 when the network has no overlay
  SourceLocation mac;                     // the bridge's "mac"; line 0 when unset
  std::vector<SourceLocation> addresses;  // parallel to NetworkConfig::addresses
};

struct NicSites {
  SourceLocation network;
  SourceLocation port;  // the NIC object's location when the port name is the default
  bool port_defaulted = false;
  SourceLocation mac;
  SourceLocation backend;  // unset (line 0) when the NIC has no "backend"
};

struct VmSites {
  size_t file_index = 0;
  SourceLocation name;
  std::vector<NicSites> nics;  // parallel to VmConfig::nics
};

// One or more documents merged: sites parallel to topology.networks / .vms.
struct Decoded {
  Topology topology;
  std::vector<NetworkSites> networks;
  std::vector<VmSites> vms;
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;  // LoadResult::warnings
};

// Decodes one document into `out` (appending networks, VMs and errors).
// User and group names are resolved through `host`.
void DecodeDocument(std::string_view text, std::string_view file_name, size_t file_index,
                    const HostFacts& host, Decoded* out);

// Checks names and references across everything in `decoded`, appending errors.
void CheckAcross(Decoded* decoded);

// "file:line:column" of a location.
std::string LocationText(const SourceLocation& where);

// The candidate closest to `word` when it is close enough to be a likely
// typo, else "".
std::string Suggest(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace vfabric::topology::internal
