#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run on a fresh Debian 12):
# installs dependencies, configures, builds and runs every test with CTest.
# GPU tests report "skipped" on a machine without a GPU.
#   BUILD_DIR (default build-test)  M40LLM_CUDA_ARCHS (default: one arch, for speed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/setup.sh

BUILD_DIR=${BUILD_DIR:-build-test}
JOBS=$(nproc)
# CI builds one CUDA arch to stay fast; release builds (scripts/build.sh) build all.
ARCHS=${M40LLM_CUDA_ARCHS:-75}
CUDA_OPT=()
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  CUDA_OPT=(-DM40LLM_CUDA=ON "-DM40LLM_CUDA_ARCHS=$ARCHS")
else
  CUDA_OPT=(-DM40LLM_CUDA=OFF)
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM40LLM_SANITIZE=ON "${CUDA_OPT[@]}"
cmake --build "$BUILD_DIR" -j "$JOBS"
export M40LLM_TESTDATA=${M40LLM_TESTDATA:-$ROOT/../shared/testdata}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
