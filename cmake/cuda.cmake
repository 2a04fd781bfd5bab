# CUDA detection and architecture choice.
#
#   toolkit that can build sm_52 (CUDA 11.x-12.x) -> 52 SASS + compute_52 PTX,
#                                                   plus the newer real archs
#   nvcc 13.x (oldest target sm_75)               -> real archs 75+ and PTX of
#                                                   the newest
#   -DM40LLM_CUDA_ARCHS=...                       -> exactly that; an arch the
#                                                   toolkit cannot build stops
#                                                   configuration with advice.
# nvcc 11.x needs gcc <= 11 as host compiler: g++-11 or clang++-14 is picked
# here when the default g++ is newer.
set(M40LLM_HAVE_CUDA OFF)
if(M40LLM_CUDA STREQUAL "OFF")
  return()
endif()

if(CMAKE_CUDA_COMPILER)
  set(_nvcc ${CMAKE_CUDA_COMPILER})
else()
  find_program(_nvcc nvcc HINTS ENV CUDACXX PATHS /usr/local/cuda/bin)
endif()
if(NOT _nvcc)
  if(M40LLM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "M40LLM_CUDA=ON but no nvcc was found. Install a CUDA toolkit "
                        "(scripts/setup.sh --m40 installs Debian's CUDA 11.8) or use -DM40LLM_CUDA=OFF.")
  endif()
  message(STATUS "m40llm: no nvcc found: building without CUDA")
  return()
endif()

execute_process(COMMAND ${_nvcc} --version OUTPUT_VARIABLE _nvcc_out ERROR_QUIET)
string(REGEX MATCH "release ([0-9]+)\\.([0-9]+)" _m "${_nvcc_out}")
set(_cuda_major ${CMAKE_MATCH_1})
set(_cuda_minor ${CMAKE_MATCH_2})
if(NOT _cuda_major)
  message(FATAL_ERROR "could not read the CUDA version from '${_nvcc} --version'")
endif()
message(STATUS "m40llm: nvcc ${_nvcc} is CUDA ${_cuda_major}.${_cuda_minor}")

execute_process(COMMAND ${_nvcc} --list-gpu-arch OUTPUT_VARIABLE _arch_out ERROR_QUIET)
string(REGEX MATCHALL "compute_([0-9]+)" _arch_m "${_arch_out}")
set(_supported "")
foreach(a ${_arch_m})
  string(REPLACE "compute_" "" a ${a})
  list(APPEND _supported ${a})
endforeach()
list(REMOVE_DUPLICATES _supported)
list(SORT _supported COMPARE NATURAL)
if(NOT _supported)
  message(FATAL_ERROR "'${_nvcc} --list-gpu-arch' listed no architectures")
endif()

if(M40LLM_CUDA_ARCHS)
  foreach(a ${M40LLM_CUDA_ARCHS})
    string(REGEX REPLACE "-(real|virtual)$" "" num ${a})
    if(NOT num IN_LIST _supported)
      if(num LESS 75)
        set(_hint "CUDA ${_cuda_major}.${_cuda_minor} cannot build sm_${num}; the Tesla M40 (sm_52) "
                  "needs CUDA 11.x-12.x: run 'scripts/setup.sh --m40' (Debian's CUDA 11.8) and "
                  "configure with -DCMAKE_CUDA_COMPILER=/usr/bin/nvcc")
      else()
        set(_hint "CUDA ${_cuda_major}.${_cuda_minor} cannot build sm_${num} (it supports: ${_supported})")
      endif()
      message(FATAL_ERROR "M40LLM_CUDA_ARCHS=${M40LLM_CUDA_ARCHS}: ${_hint}")
    endif()
  endforeach()
  set(_archs ${M40LLM_CUDA_ARCHS})
else()
  set(_archs "")
  list(GET _supported -1 _newest)
  foreach(a ${_supported})
    # only the archs people run: Maxwell 52, Pascal 60/61, Volta 70, Turing 75,
    # Ampere 80/86, Ada 89, Hopper 90, Blackwell 100/120
    if(a MATCHES "^(52|60|61|70|75|80|86|89|90|100|120)$")
      if(a STREQUAL "52")
        list(APPEND _archs 52-real 52-virtual)
      else()
        list(APPEND _archs ${a}-real)
      endif()
    endif()
  endforeach()
  if(NOT "52" IN_LIST _supported)
    list(APPEND _archs ${_newest}-virtual)
  endif()
endif()

# Host compiler: CUDA 11.x accepts gcc <= 11 only.
if(NOT CMAKE_CUDA_HOST_COMPILER AND _cuda_major LESS 12)
  execute_process(COMMAND c++ -dumpversion OUTPUT_VARIABLE _gxx OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_gxx VERSION_GREATER_EQUAL 12)
    find_program(_hostcxx NAMES g++-11 g++-10 clang++-14 clang++-13)
    if(NOT _hostcxx)
      message(FATAL_ERROR "CUDA ${_cuda_major}.${_cuda_minor} needs gcc <= 11 as host compiler: "
                          "apt-get install g++-11 (scripts/setup.sh --m40 does)")
    endif()
    set(CMAKE_CUDA_HOST_COMPILER ${_hostcxx} CACHE FILEPATH "" FORCE)
    message(STATUS "m40llm: CUDA host compiler ${_hostcxx}")
  endif()
endif()

# Debian's nvcc 11.8 (/usr/bin/nvcc) finds ptxas through PATH; with CUDA 13 in
# /usr/local/cuda/bin first on PATH it would run 13's ptxas and fail on
# sm_52. Put this nvcc's own directory first, at configure and build time.
get_filename_component(_nvcc_real ${_nvcc} REALPATH)
get_filename_component(_nvcc_dir ${_nvcc} DIRECTORY)
find_program(_ptxas_first ptxas)
if(EXISTS ${_nvcc_dir}/ptxas AND NOT _ptxas_first STREQUAL "${_nvcc_dir}/ptxas")
  set(ENV{PATH} "${_nvcc_dir}:$ENV{PATH}")
  set(CMAKE_CUDA_COMPILER_LAUNCHER /usr/bin/env "PATH=${_nvcc_dir}:$ENV{PATH}" CACHE STRING "" FORCE)
  message(STATUS "m40llm: using ${_nvcc_dir}/ptxas (PATH adjusted for CUDA builds)")
endif()
unset(_ptxas_first CACHE)

# Some images link CUDA 13's headers into /usr/local/include, which the host
# compiler searches before /usr/include (where Debian's 11.8 headers live).
# Shadow them with a directory of links to this toolkit's own headers.
if(_nvcc_real MATCHES "^/usr/lib/nvidia-cuda-toolkit/")
  set(_tk_inc /usr/include)
else()
  get_filename_component(_tk_inc ${_nvcc_dir}/../include ABSOLUTE)
endif()
if(EXISTS /usr/local/include/cuda_runtime.h AND NOT _tk_inc STREQUAL "/usr/local/include"
   AND EXISTS ${_tk_inc}/cuda_runtime.h)
  set(_shadow ${CMAKE_BINARY_DIR}/cuda-include-shadow)
  file(MAKE_DIRECTORY ${_shadow})
  file(GLOB _local_entries RELATIVE /usr/local/include /usr/local/include/*)
  foreach(ent ${_local_entries})
    if(EXISTS ${_tk_inc}/${ent} AND NOT EXISTS ${_shadow}/${ent})
      file(CREATE_LINK ${_tk_inc}/${ent} ${_shadow}/${ent} SYMBOLIC)
    endif()
  endforeach()
  set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} -I${_shadow}" CACHE STRING "" FORCE)
  message(STATUS "m40llm: CUDA headers from ${_tk_inc} (shadowing /usr/local/include)")
endif()

set(CMAKE_CUDA_COMPILER ${_nvcc} CACHE FILEPATH "" FORCE)
set(CMAKE_CUDA_ARCHITECTURES ${_archs} CACHE STRING "" FORCE)
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_FLAGS_RELEASE "-O3 -DNDEBUG")
# The toolkit that belongs to this nvcc (not whatever is first on PATH).
find_package(CUDAToolkit REQUIRED)
set(M40LLM_HAVE_CUDA ON)
