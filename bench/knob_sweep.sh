#!/usr/bin/env bash
# knob_sweep.sh - one GPU call: the matvec workbench and the 7B decode bench for a
# grid of environment settings, so that a kernel choice is measured in both places.
#   OUT (logs; default /tmp/knobs), TYPES (workbench types, default
#   q8_0,q4_0,q4_k), BTYPES (bench_cuda types, default q8_0 q4_0), GRID (settings,
#   each a comma-separated list of VAR=VALUE, default
#   "M40LLM_CUDA_MV_ROWS=2 M40LLM_CUDA_MV_ROWS=4"), BARGS (bench_cuda arguments).
# Needs what scripts/test-gpu.sh needs (it builds through it, without tests).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/knobs}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
TYPES=${TYPES:-q8_0,q4_0,q4_k}
BTYPES=${BTYPES:-q8_0 q4_0}
GRID=${GRID:-M40LLM_CUDA_MV_ROWS=2 M40LLM_CUDA_MV_ROWS=4}
BARGS=${BARGS:--p 16 -n 128 -r 3 -b 1}
# the whole project (for bench_cuda) in the background while the workbench builds
(BENCH_TYPES=" " OUT=$OUT/build bash "$ROOT/scripts/test-gpu.sh" --bench-only >"$OUT/build.log" 2>&1) &
bpid=$!
BUILD=/tmp/mvb BUILD_ONLY=1 bash "$ROOT/bench/run_matvec.sh" >"$OUT/mvbuild.log" 2>&1 ||
    tail -20 "$OUT/mvbuild.log"
k=0
for g in $GRID; do
    k=$((k + 1))
    [ -x /tmp/mvb/matvec_bench ] || break
    echo "== matvec $g"
    env ${g//,/ } MV_PDL=1 /tmp/mvb/matvec_bench --types "$TYPES" --vars n1_def \
        --log "$OUT/mv_$k.log" >/dev/null 2>&1
    grep -E "n1_def" "$OUT/mv_$k.log" | awk '{printf "%s %s %s%%  ", $1, $2, $8} END {print ""}'
done
wait $bpid
tail -3 "$OUT/build.log"
B=$ROOT/build-gpu/bench_cuda
for ty in $BTYPES; do
    k=0
    for g in $GRID; do
        k=$((k + 1))
        [ -x "$B" ] || break
        env ${g//,/ } "$B" --type "$ty" $BARGS >"$OUT/b_${ty}_$k.log" 2>&1
        echo "== 7B $ty $g: $(grep -E 'tg128 \(graphs\)' "$OUT/b_${ty}_$k.log")"
    done
done
