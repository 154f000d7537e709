// The switch's pipeline on one core: in-memory ports replaying prebuilt
// frames (receive = one memcpy into a pool buffer, transmit = counted only),
// so the numbers are parse + link-local trap + VLAN classification + STP +
// learning + batched lookup + forwarding decision + egress tagging +
// buffer handling, plus the in-memory port's copy. items_per_second is
// frames switched per second.
//
// Main case (issue 4): 64-byte frames, learning on, 1K MACs spread over 4
// access ports, every destination known (after the first round), target
// >= 25 Mpps. Variants: trunk egress (tag push), unknown unicast flood,
// batch sizes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "vfabric/bridge/switch.h"
#include "vfabric/bridge/testing/memory_port.h"

namespace vfabric::bridge {
namespace {

constexpr int kPorts = 4;
constexpr int kMacs = 1024;

std::vector<uint8_t> Frame64(uint64_t dst, uint64_t src, std::optional<uint16_t> vid) {
  std::vector<uint8_t> f;
  for (int s = 40; s >= 0; s -= 8) f.push_back(static_cast<uint8_t>(dst >> s));
  for (int s = 40; s >= 0; s -= 8) f.push_back(static_cast<uint8_t>(src >> s));
  if (vid)
    f.insert(f.end(), {0x81, 0x00, static_cast<uint8_t>(*vid >> 8), static_cast<uint8_t>(*vid)});
  f.insert(f.end(), {0x08, 0x00});
  f.resize(vid ? 64 : 60, 0x45);  // 64 bytes on the wire with the FCS
  return f;
}

uint64_t MacOf(int i) { return 0x525400000000ull + static_cast<uint64_t>(i); }

// MAC i lives on port i % kPorts. Each port replays frames from its own
// MACs to MACs on the other ports (or to unknown ones with `unknown`).
void Pipeline(benchmark::State& state, bool trunk, bool unknown) {
  const size_t batch = static_cast<size_t>(state.range(0));
  SwitchConfig config;
  config.name = "bench";
  config.batch_size = batch;
  config.pool_frames = 1024;
  config.buffer_size = 2048;
  config.fdb.max_entries = 8192;
  config.fdb.max_ports = 8;
  config.fdb.hash_seed = 0x9e3779b97f4a7c15ull;
  auto sw = Switch::Create(std::move(config));
  if (!sw.ok()) {
    state.SkipWithError(sw.status().message().c_str());
    return;
  }
  std::mt19937_64 rng(42);
  std::vector<MemoryPort*> ports;
  for (int p = 0; p < kPorts; ++p) {
    MemoryPortOptions options;
    options.notify = false;   // polled every turn, as a poll-mode driver
    options.capture = false;  // transmit only counts
    auto port = MemoryPort::Create("p" + std::to_string(p), options);
    std::vector<std::vector<uint8_t>> frames;
    for (int k = 0; k < 1024; ++k) {
      const int src = (k % (kMacs / kPorts)) * kPorts + p;
      int dst;
      do dst = static_cast<int>(rng() % kMacs);
      while (dst % kPorts == p);
      const uint64_t dst_mac = unknown ? MacOf(dst) + 0x100000 : MacOf(dst);
      frames.push_back(
          Frame64(dst_mac, MacOf(src), trunk ? std::optional<uint16_t>(10) : std::nullopt));
    }
    (*port)->SetReplay(std::move(frames));
    ports.push_back(port->get());
    PortSettings settings;
    settings.vlan =
        trunk ? PortVlanConfig::Trunk(*VlanSet::Parse("10")) : PortVlanConfig::Access(10);
    if (!(*sw)->AddPort(std::move(port).value(), settings).ok()) {
      state.SkipWithError("AddPort failed");
      return;
    }
  }
  // Warm up: every MAC learned.
  for (int i = 0; i < 64; ++i) (*sw)->RunOnce(0);
  uint64_t frames = 0;
  for (auto _ : state) frames += (*sw)->RunOnce(0);
  state.SetItemsProcessed(static_cast<int64_t>(frames));
  uint64_t tx = 0;
  for (MemoryPort* p : ports) tx += p->transmitted();
  auto entries = (*sw)->FdbEntries();
  state.counters["fdb_entries"] = static_cast<double>(entries.ok() ? entries->size() : 0);
  state.counters["tx_per_rx"] =
      frames ? static_cast<double>(tx) / static_cast<double>(frames + 64.0 * kPorts * batch) : 0;
}

void BM_Pipeline_Access_KnownUnicast(benchmark::State& state) { Pipeline(state, false, false); }
void BM_Pipeline_Trunk_KnownUnicast(benchmark::State& state) { Pipeline(state, true, false); }
void BM_Pipeline_Access_UnknownFlood(benchmark::State& state) { Pipeline(state, false, true); }

BENCHMARK(BM_Pipeline_Access_KnownUnicast)->Arg(32)->Arg(8)->Arg(64);
BENCHMARK(BM_Pipeline_Trunk_KnownUnicast)->Arg(32);
BENCHMARK(BM_Pipeline_Access_UnknownFlood)->Arg(32);

}  // namespace
}  // namespace vfabric::bridge

BENCHMARK_MAIN();
