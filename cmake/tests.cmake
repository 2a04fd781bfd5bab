# Unit tests: every tests/unit/test_*.c and tests/gpu/test_*.c is one cmocka
# executable. A test whose data ($M40LLM_TESTDATA) or GPU is missing exits 77,
# which CTest reports as "skipped" (never "passed").
find_package(PkgConfig REQUIRED)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

if(DEFINED ENV{M40LLM_TESTDATA})
  set(M40LLM_TESTDATA_DIR $ENV{M40LLM_TESTDATA})
else()
  get_filename_component(M40LLM_TESTDATA_DIR ${CMAKE_SOURCE_DIR}/../shared/testdata ABSOLUTE)
endif()
set(M40_TEST_ENV "M40LLM_TESTDATA=${M40LLM_TESTDATA_DIR}"
                 "M40LLM_BIN=$<TARGET_FILE:m40llm>"
                 "M40LLM_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
                 "M40LLM_BUILD_DIR=${CMAKE_BINARY_DIR}"
                 "ASAN_OPTIONS=protect_shadow_gap=0:detect_leaks=1"
                 "UBSAN_OPTIONS=print_stacktrace=1")

file(GLOB _unit_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c
     ${CMAKE_SOURCE_DIR}/tests/gpu/test_*.c)
foreach(src ${_unit_tests})
  get_filename_component(name ${src} NAME_WE)
  get_filename_component(dir ${src} DIRECTORY)
  get_filename_component(kind ${dir} NAME) # unit | gpu
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/testutil.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE m40core PkgConfig::CMOCKA)
  add_test(NAME ${kind}/${name} COMMAND ${name})
  set_tests_properties(${kind}/${name} PROPERTIES ENVIRONMENT "${M40_TEST_ENV}"
                       SKIP_RETURN_CODE 77 LABELS ${kind} TIMEOUT 900)
endforeach()

# Script tests: tests/scripts/*.sh run with the same environment (CLI
# behaviour, cross-checks with the gguf Python package, server tests).
file(GLOB _script_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/scripts/*.sh)
foreach(src ${_script_tests})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME script/${name} COMMAND bash ${src})
  set_tests_properties(script/${name} PROPERTIES ENVIRONMENT "${M40_TEST_ENV}"
                       SKIP_RETURN_CODE 77 LABELS script TIMEOUT 1200)
endforeach()
