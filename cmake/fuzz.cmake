# fuzz.cmake - libFuzzer targets, built when -DM40LLM_FUZZ=ON with clang
# (scripts/fuzz.sh configures build-fuzz with clang-14). Only the sources the
# parser needs are compiled (src/gguf, src/base), so the fuzzer does not
# depend on the rest of the project building.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "M40LLM_FUZZ needs clang (e.g. -DCMAKE_C_COMPILER=clang-14)")
endif()
file(GLOB _fuzz_gguf_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/gguf/*.c
     ${CMAKE_SOURCE_DIR}/src/base/*.c)
add_executable(fuzz_gguf ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_gguf.c ${_fuzz_gguf_sources})
target_include_directories(fuzz_gguf PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_options(fuzz_gguf PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
target_link_options(fuzz_gguf PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(fuzz_gguf PRIVATE m)
