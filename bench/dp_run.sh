#!/usr/bin/env bash
# dp_run.sh - one GPU call for the integer-dot-product matvec (mv_dp): build,
# GPU tests, 7B decode bench (bench_cuda) for BTYPES with M40LLM_CUDA_DP=1 (and
# =0 when AB=1), the matvec workbench (--dp variants), and `m40llm bench` on
# mkmodel / quantize files for Q4_K (KTYPES="q4_k q4_k_m"). OUT: logs.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/dp}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
(BUILD=/tmp/mvb BUILD_ONLY=1 bash "$ROOT/bench/run_matvec.sh" >"$OUT/mvbuild.log" 2>&1) &
mpid=$!
M40LLM_TESTDATA=${M40LLM_TESTDATA:-$ROOT/.testdata} CTEST_ARGS=${CTEST_ARGS:--R gpu/} \
    BENCH_TYPES=" " OUT=$OUT/t bash "$ROOT/scripts/test-gpu.sh" --bench 2>&1 | tail -4
grep -h "worst max-rel\|glu: fused" "$OUT"/t/test_gpu_matvec.log 2>/dev/null | head -30
M=$ROOT/build-gpu/bin/m40llm
D=/tmp/dpm
mkdir -p $D
SHAPE="--arch llama --dim 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000"
( for k in ${KTYPES:-q4_k}; do
    case $k in
    q4_k_m) [ -f $D/f16.gguf ] || $M mkmodel $D/f16.gguf $SHAPE --type f16 >/dev/null 2>&1
            $M quantize $D/f16.gguf $D/q4_k_m.gguf q4_k_m 2>&1 | tail -2; rm -f $D/f16.gguf ;;
    *) $M mkmodel $D/$k.gguf $SHAPE --type $k 2>&1 | tail -2 ;;
    esac
    echo "made $k $(date +%T)"
  done ) >"$OUT/mk.log" 2>&1 &
kpid=$!
B=$ROOT/build-gpu/bench_cuda
for ty in ${BTYPES:-q8_0 q4_0}; do
    for sp in 1 ${AB:+0}; do
        M40LLM_CUDA_DP=$sp timeout 120 "$B" --type "$ty" ${BARGS:--p 512 -n 128 -r 3 -b 8} >"$OUT/b_${ty}_dp$sp.log" 2>&1
        echo "== 7B $ty DP=$sp"; grep -E "^\| (pp|tg|batched)" "$OUT/b_${ty}_dp$sp.log"
    done
done
wait $mpid || tail -20 "$OUT/mvbuild.log"
[ -x /tmp/mvb/matvec_bench ] && MV_PDL=1 timeout 150 /tmp/mvb/matvec_bench --types ${MVTYPES:-q8_0,q4_0,q4_K} \
    --dp --vars ${MVVARS:-n1_def,n1_f32,n1_dp2,n1_dp8r1,n1_dp8r2,n1_dp8r4,n1_dp16r1,n1_dp16r2} \
    --log "$OUT/mv.log" >/dev/null 2>&1
grep -E " n[0-9]" "$OUT/mv.log" | awk '{printf "%s %s %s %s %s %s%s\n", $1, $2, $3, $4, $8, $10, $11}'
wait $kpid; cat "$OUT/mk.log"
for k in ${KTYPES:-q4_k}; do
    [ -f $D/$k.gguf ] || { echo "no $k model"; continue; }
    for sp in 1 ${AB:+0}; do
        echo "== $k DP=$sp"
        M40LLM_CUDA_DP=$sp timeout 150 $M bench -m $D/$k.gguf -p 512 -n 128 -r 3 2>&1 | grep -E "pp|tg|GPU|matvec" | tail -8
    done
done
cd "$OUT" && tar czf logs.tgz t b_*.log mv.log mvbuild.log mk.log 2>/dev/null; true
