// Any bytes as one of the state files netd and its guests read back at start:
// the first byte picks the file, the rest is its content.
//   0  RUN_DIR/NETWORK.fdb.json  a userspace network's run-time static FDB
//                                entries (UserspaceNetworks::Observe reads it)
//   1  RUN_DIR/vms/NAME/guest.json  a guest's run record (vmm::ParseRunRecord)
//   2  RUN_DIR/creating.json     the link creation journal (CreateJournal::Read)
// A file that is not what it should be is an error or a warning, never a crash
// or an exception; what is read back is what was there: a run record that
// parses is written again (RunRecordToJson) and parses to the same record.
//
// Seeds: tests/fuzz/corpus/state_file (files as netd writes them, after their
// selector byte).
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "vfabric/common/log.h"
#include "vfabric/netd/create_journal.h"
#include "vfabric/netd/userspace.h"
#include "vfabric/topology/topology.h"
#include "vfabric/vmm/run_record.h"

namespace {

// One directory for the whole run (a tmpfs when there is one), removed at
// exit (never destroyed before that: the path outlives static destructors).
const std::string& StateDir() {
  static const std::string* dir = [] {
    char pattern[] = "/dev/shm/vfabric-state-fuzz-XXXXXX";
    char fallback[] = "/tmp/vfabric-state-fuzz-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) made = ::mkdtemp(fallback);
    if (made == nullptr) std::abort();
    auto* path = new std::string(made);
    std::atexit([] { std::filesystem::remove_all(StateDir()); });
    return path;
  }();
  return *dir;
}

void WriteFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) std::abort();
}

void CheckRunRecord(std::string_view text) {
  using namespace vfabric::vmm;
  vfabric::Result<RunRecord> record = ParseRunRecord(text);
  if (!record.ok()) return;
  vfabric::Result<RunRecord> again = ParseRunRecord(RunRecordToJson(*record));
  if (!again.ok()) std::abort();
  const RunRecord& a = *record;
  const RunRecord& b = *again;
  if (a.name != b.name || a.pid != b.pid || a.qmp_socket != b.qmp_socket ||
      a.pidfile != b.pidfile || a.accel != b.accel || a.accel_reason != b.accel_reason ||
      !(a.config == b.config) || a.config_hash != b.config_hash || a.argv != b.argv ||
      a.detached_ports != b.detached_ports || a.nics.size() != b.nics.size())
    std::abort();
  for (size_t i = 0; i < a.nics.size(); ++i) {
    const RunRecordNic& x = a.nics[i];
    const RunRecordNic& y = b.nics[i];
    if (x.id != y.id || x.network != y.network || x.port != y.port || x.mac != y.mac ||
        x.attached != y.attached || x.access_vlan != y.access_vlan)
      std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Malformed entries are logged as warnings; the fuzzer makes millions.
  vfabric::SetLogLevel(vfabric::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfabric;
  if (size < 1) return 0;
  const std::string_view content(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      WriteFile(StateDir() + "/lab.fdb.json", content);
      topology::Topology desired;
      topology::NetworkConfig network;
      network.name = "lab";
      network.datapath = topology::Datapath::kUserspace;
      desired.networks.push_back(network);
      netd::UserspaceNetworks networks(StateDir(), nullptr, "fuzz-machine-id");
      netd::ObservedSwitches observed = networks.Observe(desired);
      for (const auto& [name, sw] : observed) {
        if (name != "lab") std::abort();
        for (const auto& [key, port] : sw.runtime_statics)
          if (key.first < 1 || key.first > 4094) std::abort();
      }
      break;
    }
    case 1:
      CheckRunRecord(content);
      break;
    case 2: {
      WriteFile(StateDir() + "/creating.json", content);
      netd::CreateJournal journal(StateDir() + "/creating.json");
      Result<std::vector<netd::CreateIntent>> intents = journal.Read();
      if (intents.ok())
        for (const netd::CreateIntent& intent : *intents)
          if (intent.kind != "probe" && intent.kind != "bridge" && intent.kind != "veth")
            std::abort();
      break;
    }
  }
  return 0;
}
