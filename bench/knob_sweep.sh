#!/usr/bin/env bash
# knob_sweep.sh - one GPU call: the matvec workbench and the 7B decode bench for a
# grid of environment knobs, so that a kernel choice is measured in both places.
#   OUT (logs; default /tmp/knobs), TYPES (matvec workbench types, default
#   q8_0,q4_0,q4_k), BTYPES (bench_cuda types, default q8_0 q4_0), GRID (list of
#   "PREFETCH:ROWS" pairs for M40LLM_CUDA_PREFETCH / M40LLM_CUDA_MV_ROWS,
#   default "0:2 2:2 4:2 0:4 2:4"), BARGS (bench_cuda arguments).
# Needs what scripts/test-gpu.sh needs (it builds through it, without tests).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/knobs}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
TYPES=${TYPES:-q8_0,q4_0,q4_k}
BTYPES=${BTYPES:-q8_0 q4_0}
GRID=${GRID:-0:2 2:2 4:2 0:4 2:4}
BARGS=${BARGS:--p 16 -n 128 -r 3 -b 1}
# the whole project (for bench_cuda) in the background while the workbench builds
(BENCH_TYPES=" " OUT=$OUT/build bash "$ROOT/scripts/test-gpu.sh" --bench-only >"$OUT/build.log" 2>&1) &
bpid=$!
BUILD=/tmp/mvb BUILD_ONLY=1 bash "$ROOT/bench/run_matvec.sh" >"$OUT/mvbuild.log" 2>&1 ||
    { tail -20 "$OUT/mvbuild.log"; }
for g in $GRID; do
    p=${g%%:*} r=${g##*:}
    [ -x /tmp/mvb/matvec_bench ] || break
    echo "== matvec pf=$p rows=$r"
    M40LLM_CUDA_PREFETCH=$p M40LLM_CUDA_MV_ROWS=$r MV_PDL=1 /tmp/mvb/matvec_bench --types "$TYPES" \
        --vars n1_def --log "$OUT/mv_pf${p}_r$r.log" >/dev/null 2>&1
    grep -E "n1_def" "$OUT/mv_pf${p}_r$r.log" | awk '{printf "%s %s %s%%  ", $1, $2, $8} END {print ""}'
done
wait $bpid
tail -3 "$OUT/build.log"
B=$ROOT/build-gpu/bench_cuda
for ty in $BTYPES; do
    for g in $GRID; do
        p=${g%%:*} r=${g##*:}
        [ -x "$B" ] || break
        M40LLM_CUDA_PREFETCH=$p M40LLM_CUDA_MV_ROWS=$r "$B" --type "$ty" $BARGS \
            >"$OUT/b_${ty}_pf${p}_r$r.log" 2>&1
        echo "== 7B $ty pf=$p rows=$r: $(grep -E 'tg128 \(graphs\)' "$OUT/b_${ty}_pf${p}_r$r.log")"
    done
done
