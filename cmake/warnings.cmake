# One INTERFACE target that every vfabric library and program links: the same
# warnings everywhere, as errors with VFABRIC_WERROR; and the sanitizer flags
# when asked for.
#
# VFABRIC_WERROR is off by default: someone building a release (a packager, a
# plain `cmake -DCMAKE_BUILD_TYPE=Release`) may have a compiler newer or older
# than ours, whose new warnings (or false positives) must not stop the build.
# scripts/build, scripts/test and scripts/fuzz turn it on, so CI and
# developers keep every warning an error.
option(VFABRIC_WERROR "Treat compiler warnings as errors (scripts/build and CI turn it on)" OFF)
add_library(vfabric_warnings INTERFACE)
target_compile_options(vfabric_warnings INTERFACE
  -Wall -Wextra -Wpedantic $<$<BOOL:${VFABRIC_WERROR}>:-Werror>
  -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
  -Wimplicit-fallthrough -Wformat=2)

# ASan+UBSan for VFABRIC_SANITIZE (tests) and VFABRIC_FUZZ (libFuzzer targets,
# which add coverage). UB halts: a test fails and a fuzzer reports it as a
# crash, with its input, instead of printing it and running on.
# No vptr check: it probes memory through pipe(2), and in a process out of
# fds (netd's control-server tests put it there on purpose) it reports a
# valid std::ostream as an object with an invalid vptr. The flags are added
# once, -fno-sanitize=vptr last: CMake de-duplicates compile options, so
# adding them per option dropped the second -fno-sanitize=vptr while keeping
# a second -fsanitize=undefined after the first, which turned vptr back on.
if(VFABRIC_FUZZ OR VFABRIC_SANITIZE)
  set(vfabric_sanitizers address,undefined)
  if(VFABRIC_FUZZ)
    set(vfabric_sanitizers fuzzer-no-link,${vfabric_sanitizers})
  endif()
  add_compile_options(-fsanitize=${vfabric_sanitizers} -fno-sanitize=vptr
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(VFABRIC_TSAN)
  if(VFABRIC_SANITIZE OR VFABRIC_FUZZ)
    message(FATAL_ERROR "VFABRIC_TSAN excludes VFABRIC_SANITIZE and VFABRIC_FUZZ (ASan)")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

# vfabric_library(NAME SOURCES... [DEPS ...]): a library whose PUBLIC include
# directory is <folder>/include and nothing else.
function(vfabric_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(ARG_SOURCES)
    add_library(${name} STATIC ${ARG_SOURCES})
    target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE vfabric_warnings ${ARG_PRIVATE_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
  endif()
endfunction()
