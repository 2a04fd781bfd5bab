#!/usr/bin/env bash
# split_check.sh - one GPU call for an A/B of a backend switch: build, the GPU
# tests, the 7B decode bench with KNOB (default M40LLM_CUDA_SPLIT, the split
# Q8_0/Q4_0 layout; e.g. KNOB=M40LLM_CUDA_DP) on and off, and the matvec
# workbench (MVARGS, default "--vars n1_def,n8"). OUT: logs (default /tmp/split).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/split}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
(BUILD=/tmp/mvb BUILD_ONLY=1 bash "$ROOT/bench/run_matvec.sh" >"$OUT/mvbuild.log" 2>&1) &
mpid=$!
M40LLM_TESTDATA=${M40LLM_TESTDATA:-$ROOT/.testdata} CTEST_ARGS=${CTEST_ARGS:--R gpu/} \
    BENCH_TYPES=" " OUT=$OUT/t bash "$ROOT/scripts/test-gpu.sh" --bench 2>&1 | tail -12
B=$ROOT/build-gpu/bench_cuda
KNOB=${KNOB:-M40LLM_CUDA_SPLIT}
for ty in ${BTYPES:-q8_0 q4_0}; do
    for sp in 1 0; do
        env "$KNOB=$sp" "$B" --type "$ty" ${BARGS:--p 512 -n 128 -r 3 -b 16} >"$OUT/b_${ty}_s$sp.log" 2>&1
        echo "== 7B $ty $KNOB=$sp"; grep -E "^\| (pp|tg|batched)" "$OUT/b_${ty}_s$sp.log"
    done
done
wait $mpid || tail -20 "$OUT/mvbuild.log"
[ -x /tmp/mvb/matvec_bench ] && MV_PDL=1 /tmp/mvb/matvec_bench --types ${MVTYPES:-q8_0,q4_0} \
    ${MVARGS:---vars n1_def,n8} --log "$OUT/mv.log" >/dev/null 2>&1
grep -E " n[0-9]" "$OUT/mv.log" | awk '{printf "%s %s %s %s %s %s%s\n", $1, $2, $3, $4, $8, $10, $11}'
cd "$OUT" && tar czf logs.tgz t b_*.log mv.log mvbuild.log 2>/dev/null; true
