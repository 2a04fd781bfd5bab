#!/usr/bin/env bash
# ncu_decode.sh - per-kernel GPU times of a few 7B-wide decode steps (2 layers),
# from Nsight Compute (gpu__time_duration, clocks left alone, caches not
# flushed), summed per kernel name. Needs a built tree (scripts/test-gpu.sh
# --bench: build-gpu/bench_cuda and build-gpu/bin/m40llm). Environment:
#   TYPES   bench_cuda types (default "q8_0 q4_0"); K types go through
#           `m40llm mkmodel` + `m40llm bench` (e.g. "q4_k")
#   OUT     logs (default /tmp/ncu)
# ncu serializes kernels: PDL overlap and launch gaps are not in these times.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/ncu}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/tmp/m40deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
NCU="ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --print-units base"
SHAPE="--dim 4096 --layers 2 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000"
for ty in ${TYPES:-q8_0 q4_0}; do
    case $ty in
    f16 | q8_0 | q4_0)
        $NCU "$ROOT/build-gpu/bench_cuda" --type $ty $SHAPE -p 8 -n 6 -r 1 -b 1 >"$OUT/ncu_$ty.csv" 2>"$OUT/ncu_$ty.err" ;;
    *)
        "$ROOT/build-gpu/bin/m40llm" mkmodel /tmp/ncu_$ty.gguf --arch llama $SHAPE --type $ty >/dev/null 2>&1
        $NCU "$ROOT/build-gpu/bin/m40llm" bench -m /tmp/ncu_$ty.gguf -p 8 -n 6 -r 1 >"$OUT/ncu_$ty.csv" 2>"$OUT/ncu_$ty.err" ;;
    esac
    echo "== $ty (kernel: count, mean us, total us)"
    python3 - "$OUT/ncu_$ty.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows: print("no ncu rows"); sys.exit()
h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value"); gi = h.index("Grid Size") if "Grid Size" in h else None
agg = collections.defaultdict(list)
for r in rows[1:]:
    try: v = float(r[vi].replace(",", "")) / 1000.0
    except ValueError: continue
    k = r[ki].split("(")[0][:70] + (" " + r[gi] if gi is not None else "")
    agg[k].append(v)
for k, v in sorted(agg.items(), key=lambda kv: -sum(kv[1])):
    print(f"{len(v):5d} {sum(v)/len(v):9.2f} {sum(v):10.1f}  {k}")
PY
done
