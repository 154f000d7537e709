// netctl's Run() as its main calls it, with what it printed captured: the
// one way netctl's unit tests drive the command line.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "vfabric/netctl/cli.h"

namespace vfabric::netctl::testing {

struct NetctlOutput {
  int code = -1;
  std::string out;
  std::string err;
};

// `default_socket` stands for the built-in /run/vfabric/netd.sock (used
// when args have no --socket): a path that does not exist unless a test
// serves one there.
inline NetctlOutput RunNetctl(const std::vector<std::string>& args,
                              const std::string& default_socket = "/nonexistent/netd.sock") {
  std::ostringstream out, err;
  NetctlOutput result;
  result.code = Run(args, default_socket, out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

}  // namespace vfabric::netctl::testing
