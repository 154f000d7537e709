// netctl: the operator's command line for vfabric (see netctl --help).
#include <iostream>

#include "vfabric/netctl/cli.h"

int main(int argc, char** argv) { return vfabric::netctl::Main(argc, argv, std::cout, std::cerr); }
