# The control socket's line handling as netd runs it (framing, the size cap,
# partial lines, the depth limit), with inputs far over libFuzzer's default
# 4 KiB (scripts/fuzz passes -max_len; the input format expands runs).
vfabric_fuzzer(control_line_fuzzer
  SOURCES control_line_fuzzer.cc ${PROJECT_SOURCE_DIR}/tests/unit/netd/fake_kernel.cc
  DEPS vfabric_netd)
target_include_directories(control_line_fuzzer PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit/netd)
