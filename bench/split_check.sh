#!/usr/bin/env bash
# split_check.sh - one GPU call for an A/B of a backend switch: build, the GPU
# tests, the 7B decode bench (bench_cuda) for BTYPES with KNOB=1 and KNOB=0,
# the matvec workbench, and optionally `m40llm bench` on mkmodel / quantize
# files of the K types bench_cuda lacks. Environment:
#   KNOB     the switch (default M40LLM_CUDA_SPLIT, the split Q8_0/Q4_0 layout;
#            M40LLM_CUDA_DP for the integer dot products)
#   BTYPES   bench_cuda types (default "q8_0 q4_0"); BARGS its arguments
#   MVARGS   matvec_bench arguments (default "--vars n1_def,n8"; e.g. "--dp")
#   MVTYPES  matvec_bench types (default q8_0,q4_0)
#   KTYPES   e.g. "q4_k q4_k_m": 7B files made with mkmodel / quantize, benched
#            with KNOB=1 (default none)
#   OUT      logs (default /tmp/split)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/split}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
(BUILD=/tmp/mvb BUILD_ONLY=1 bash "$ROOT/bench/run_matvec.sh" >"$OUT/mvbuild.log" 2>&1) &
mpid=$!
M40LLM_TESTDATA=${M40LLM_TESTDATA:-$ROOT/.testdata} CTEST_ARGS=${CTEST_ARGS:--R gpu/} \
    BENCH_TYPES=" " OUT=$OUT/t bash "$ROOT/scripts/test-gpu.sh" --bench 2>&1 | tail -12
grep -h "worst max-rel\|glu: fused" "$OUT"/t/test_gpu_matvec.log 2>/dev/null | head -30
# libraries test-gpu.sh unpacked (m40llm links libmicrohttpd & co)
export LD_LIBRARY_PATH=/tmp/m40deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
M=$ROOT/build-gpu/bin/m40llm
D=/tmp/m40models
mkdir -p $D
SHAPE="--arch llama --dim 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000"
(for k in ${KTYPES:-}; do
    case $k in
    q4_k_m)
        [ -f $D/f16.gguf ] || $M mkmodel $D/f16.gguf $SHAPE --type f16 2>&1 | tail -2
        $M quantize $D/f16.gguf $D/q4_k_m.gguf q4_k_m 2>&1 | tail -2
        rm -f $D/f16.gguf ;;
    *) $M mkmodel $D/$k.gguf $SHAPE --type $k 2>&1 | tail -2 ;;
    esac
    echo "made $k $(date +%T)"
done) >"$OUT/mk.log" 2>&1 &
kpid=$!
KNOB=${KNOB:-M40LLM_CUDA_SPLIT}
B=$ROOT/build-gpu/bench_cuda
for ty in ${BTYPES:-q8_0 q4_0}; do
    for sp in 1 0; do
        env "$KNOB=$sp" timeout 150 "$B" --type "$ty" ${BARGS:--p 512 -n 128 -r 3 -b 16} >"$OUT/b_${ty}_s$sp.log" 2>&1
        echo "== 7B $ty $KNOB=$sp"; grep -E "^\| (pp|tg|batched)" "$OUT/b_${ty}_s$sp.log"
    done
done
wait $mpid || tail -20 "$OUT/mvbuild.log"
[ -x /tmp/mvb/matvec_bench ] && MV_PDL=1 timeout 150 /tmp/mvb/matvec_bench --types ${MVTYPES:-q8_0,q4_0} \
    ${MVARGS:---vars n1_def,n8} --log "$OUT/mv.log" >/dev/null 2>&1
grep -E " n[0-9]" "$OUT/mv.log" | awk '{printf "%s %s %s %s %s %s%s\n", $1, $2, $3, $4, $8, $10, $11}'
wait $kpid; cat "$OUT/mk.log"
for k in ${KTYPES:-}; do
    [ -f $D/$k.gguf ] || { echo "no $k model"; continue; }
    echo "== $k $KNOB=1"
    env "$KNOB=1" timeout 150 $M bench -m $D/$k.gguf -p 512 -n 128 -r 3 2>&1 | grep -E "pp|tg" | tail -8
done
cd "$OUT" && tar czf logs.tgz t b_*.log mv.log mvbuild.log mk.log 2>/dev/null; true
