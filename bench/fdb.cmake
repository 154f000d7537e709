# FDB benchmarks (issue 3): vfabric's table against std::unordered_map and,
# when Debian's libabsl-dev is there, absl::flat_hash_map. Run bench/run-fdb.
find_package(absl QUIET)
add_executable(fdb_bench ${CMAKE_CURRENT_SOURCE_DIR}/fdb/fdb_bench.cc)
target_link_libraries(fdb_bench PRIVATE vfabric_fdb benchmark::benchmark vfabric_warnings)
if(TARGET absl::flat_hash_map)
  target_link_libraries(fdb_bench PRIVATE absl::flat_hash_map)
  target_compile_definitions(fdb_bench PRIVATE VFABRIC_BENCH_HAVE_ABSL=1)
else()
  message(STATUS "absl::flat_hash_map not found: fdb_bench runs without the absl comparison")
endif()
