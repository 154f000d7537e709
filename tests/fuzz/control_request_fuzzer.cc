// Any bytes as a control request line: netd's controller must answer with a
// JSON object carrying "ok", and never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fake_kernel.h"
#include "vfabric/netd/controller.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vfabric::netd::testing::FakeKernel kernel;
  static vfabric::netd::Controller controller(kernel, kernel.features);
  nlohmann::json request = nlohmann::json::parse(
      std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (request.is_discarded()) return 0;
  nlohmann::json answer = controller.Handle(request);
  if (!answer.is_object() || !answer.contains("ok")) std::abort();
  return 0;
}
