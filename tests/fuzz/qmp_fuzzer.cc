// Any bytes as what QEMU writes on a guest's QMP socket: the greeting, answers
// and events, split into lines anywhere. QmpClient runs what netd runs on it
// (the handshake, query-status, a hot-plug's device_add and the wait for
// DEVICE_DELETED, events taken for the supervisor, which looks for the
// guest's own SHUTDOWN): errors come back as values, never a crash, an
// exception or a wait past the timeout.
//
// The client asks with ids 1 (qmp_capabilities), 2, 3, ...: the seeds in
// tests/fuzz/corpus/qmp answer them as QEMU 7.2 does.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "vfabric/common/unique_fd.h"
#include "vfabric/vmm/qmp.h"

namespace {

// What fits in the socket's buffer at once: written before the client reads,
// so that the fuzzer needs no thread.
constexpr size_t kMaxInput = 96 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfabric;
  using namespace std::chrono_literals;
  if (size > kMaxInput) return 0;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  UniqueFd qemu(fds[1]);
  int bytes = 4 * kMaxInput;
  ::setsockopt(qemu.get(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  ::setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(qemu.get(), data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;  // full: the client sees what fitted
    sent += static_cast<size_t>(n);
  }
  // QEMU says nothing more: every read past the input ends at once
  // ("connection closed"), never at a timeout.
  ::shutdown(qemu.get(), SHUT_WR);

  // Everything must end on the closed socket, never at a timeout: a timeout
  // is an error with ETIMEDOUT (not a wall clock, which a loaded machine
  // stretches: a 1.5 s limit once failed an input that runs in 8 ms).
  const auto never_timed_out = [](const Status& status) {
    if (!status.ok() && status.error_number() == ETIMEDOUT) std::abort();
  };
  Result<std::unique_ptr<vmm::QmpClient>> client =
      vmm::QmpClient::Open(UniqueFd(fds[0]), "qmp fuzz", 2000ms);
  if (!client.ok()) never_timed_out(client.status());
  if (client.ok()) {
    vmm::QmpClient& qmp = **client;
    if (Result<std::string> state = qmp.QueryStatus(); !state.ok()) never_timed_out(state.status());
    never_timed_out(qmp.DeviceAddVirtioNet("nic1", "net1", MacAddress{}));
    never_timed_out(qmp.WaitForDeviceDeleted("nic1", 1ms));
    for (const nlohmann::json& event : qmp.TakeEvents()) {
      if (!event.is_object()) std::abort();
      // What the supervisor does with each (vmm::Guest::OnQmpReadable).
      (void)vmm::IsGuestShutdownEvent(event);
      (void)event.dump();
    }
    never_timed_out(qmp.Quit());
  }
  return 0;
}
