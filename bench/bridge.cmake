# Userspace switch pipeline benchmarks (issue 4): Mpps through the whole
# pipeline with in-memory ports. Run: build/bench_bridge (items_per_second).
add_executable(bridge_bench ${CMAKE_CURRENT_SOURCE_DIR}/bridge/bridge_bench.cc)
target_link_libraries(bridge_bench PRIVATE vfabric_bridge vfabric_bridge_testing benchmark::benchmark vfabric_warnings)
