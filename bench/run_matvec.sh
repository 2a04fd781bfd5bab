#!/usr/bin/env bash
# run_matvec.sh - builds and runs the matvec workbench (bench/matvec_bench.cu)
# with plain nvcc + gcc: only src/quant, src/gguf/ggml_types.c and src/base
# are compiled, so no libmicrohttpd/jansson/pcre2/openblas/cmocka is needed.
#   NVCC (default nvcc on PATH, else /usr/local/cuda/bin/nvcc), ARCH (default
#   90), BUILD (default build-bench), extra args go to matvec_bench
#   (--quick, --types q4_0,q8_0, --log FILE). BUILD_ONLY=1 only builds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
ARCH=${ARCH:-90}
CC=${CC:-gcc}
mkdir -p "$BUILD/obj"
objs=()
for f in "$ROOT"/src/quant/*.c "$ROOT"/src/gguf/ggml_types.c "$ROOT"/src/base/*.c; do
  o="$BUILD/obj/$(basename "${f%.c}").o"
  "$CC" -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" -c "$f" -o "$o"
  objs+=("$o")
done
"$NVCC" -std=c++17 -O3 -arch=sm_"$ARCH" -Xptxas -warn-spills -I"$ROOT/src" -DM40LLM_MATVEC_SWEEP \
  "$ROOT/bench/matvec_bench.cu" "$ROOT/src/cuda/matvec.cu" "$ROOT/src/cuda/dequant.cu" \
  "${objs[@]}" -o "$BUILD/matvec_bench" -lm -lpthread
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0
"$BUILD/matvec_bench" "$@"
