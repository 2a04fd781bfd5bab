#!/usr/bin/env bash
# Release build: every CUDA architecture the found toolkit supports.
#   scripts/build.sh            -> build/ with the default nvcc (CUDA 13: sm_75+)
#   scripts/build.sh --m40      -> build-m40/ with Debian's CUDA 11.8 (sm_52 SASS + PTX, 60..90)
#   scripts/build.sh --cpu      -> build/ without CUDA
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=default
for a in "$@"; do
  case "$a" in
    --m40) MODE=m40 ;;
    --cpu) MODE=cpu ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done
case "$MODE" in
  m40)
    if ! /usr/bin/nvcc --version 2>/dev/null | grep -q "release 1[12]\."; then
      echo "build.sh --m40: needs Debian's CUDA 11.8 at /usr/bin/nvcc: run scripts/setup.sh --m40" >&2
      exit 1
    fi
    BUILD_DIR=${BUILD_DIR:-build-m40}
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DM40LLM_CUDA=ON \
      -DCMAKE_CUDA_COMPILER=/usr/bin/nvcc ;;
  cpu)
    BUILD_DIR=${BUILD_DIR:-build}
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DM40LLM_CUDA=OFF ;;
  *)
    BUILD_DIR=${BUILD_DIR:-build}
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DM40LLM_CUDA=AUTO ;;
esac
cmake --build "$BUILD_DIR" -j "$(nproc)" --target m40llm
echo "built $BUILD_DIR/bin/m40llm"
