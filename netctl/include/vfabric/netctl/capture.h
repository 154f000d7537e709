// netctl capture NETWORK PORT [-w FILE] [-c COUNT] [--direction in|out|both]
// (issue 19; docs/control-protocol.md, "capture.start").
//
// netd answers capture.start. On a kernel network the answer names the
// interface and netctl runs tcpdump on it (-i PORT -Q in|out|inout, -c, -w).
// On a userspace network the answer is followed by binary records of the
// frames the switch sees on the port (protocol/capture_stream.h), which
// netctl writes as pcap with libpcap's writer (-w FILE, "-" for standard
// output) or prints one line each (--json: one JSON object each). It stops
// at COUNT frames or SIGINT/SIGTERM by shutting down its side of the
// connection; netd then sends what it holds and an end record (how many
// frames its ring could not take because netctl read too slowly), and
// netctl prints the summary on stderr.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "vfabric/netctl/client.h"

namespace vfabric::netctl {

struct CaptureOptions {
  std::string network, port;
  std::string direction = "both";   // in, out, both
  std::optional<std::string> file;  // -w; "-": standard output
  std::optional<long long> count;   // -c
  bool json = false;
};

// Runs the capture; returns netctl's exit status (0, 1).
int RunCapture(const ClientOptions& client, const CaptureOptions& options, std::ostream& out,
               std::ostream& err);

}  // namespace vfabric::netctl
