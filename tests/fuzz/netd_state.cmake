# What netd and its guests read that no request carries: the kernel's
# rtnetlink replies and events, QEMU's QMP messages, the state files in the
# run directory, and (netctl) netd's answers.
vfabric_fuzzer(netlink_fuzzer SOURCES netlink_fuzzer.cc DEPS vfabric_netd PkgConfig::LIBMNL)
target_include_directories(netlink_fuzzer PRIVATE ${PROJECT_SOURCE_DIR}/netd/src)
vfabric_fuzzer(qmp_fuzzer SOURCES qmp_fuzzer.cc DEPS vfabric_vmm)
vfabric_fuzzer(state_file_fuzzer SOURCES state_file_fuzzer.cc DEPS vfabric_netd)
vfabric_fuzzer(netctl_answer_fuzzer SOURCES netctl_answer_fuzzer.cc DEPS vfabric_netctl)
