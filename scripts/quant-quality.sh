#!/usr/bin/env bash
# Quantization quality check: quantizes SOURCE.gguf with `m40llm quantize` to
# every weight type, runs `m40llm logits --device cpu` on a fixed set of
# prompts for the source and for each quantized file, and prints a markdown
# table: relative L2 of the last-position logits vs the source
# (||q - src|| / ||src||, mean and max over prompts), KL divergence of the
# softmax (source || quantized, mean over prompts), top-1 agreement, file size
# and bits per weight (all tensors). See docs/quant_quality.md.
#
# usage: scripts/quant-quality.sh [options] SOURCE.gguf OUTDIR
#   --types "LIST"       types to make (default: q8_0 q6_k q5_k_m q5_k_s q5_1
#                        q5_0 q4_k_m q4_k_s q4_1 q4_0 q3_k_l q3_k_m q3_k_s q2_k)
#   --pure               pass --pure to quantize (no per-tensor mix rules)
#   --allow-requantize   pass --allow-requantize (SOURCE has 2-6 bit tensors)
#   --ref NAME=FILE      also measure an already quantized FILE (e.g. one made
#                        by llama-quantize from the same source); repeatable
#   -t, --threads N      CPU threads for quantize and logits (default 2)
# The m40llm binary: $M40LLM_BIN, else the first of build*/bin/m40llm under
# the repo root. Quantized files and logits stay in OUTDIR (reused when there:
# delete OUTDIR to start over). The table goes to stdout and OUTDIR/table.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TYPES="q8_0 q6_k q5_k_m q5_k_s q5_1 q5_0 q4_k_m q4_k_s q4_1 q4_0 q3_k_l q3_k_m q3_k_s q2_k"
THREADS=2
QFLAGS=()
REFS=()
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --types) TYPES=$2; shift 2 ;;
    --pure) QFLAGS+=(--pure); shift ;;
    --allow-requantize) QFLAGS+=(--allow-requantize); shift ;;
    --ref) REFS+=("$2"); shift 2 ;;
    -t|--threads) THREADS=$2; shift 2 ;;
    -*) echo "quant-quality.sh: unknown option '$1'" >&2; exit 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ ${#ARGS[@]} -eq 2 ] || { grep -m1 '^# usage:' "$0" | sed 's/^# //' >&2; exit 2; }
SRC=${ARGS[0]}
OUT=${ARGS[1]}
[ -f "$SRC" ] || { echo "quant-quality.sh: $SRC: no such file" >&2; exit 1; }

BIN=${M40LLM_BIN:-}
if [ -z "$BIN" ]; then
  for b in "$ROOT"/build/bin/m40llm "$ROOT"/build*/bin/m40llm; do
    [ -x "$b" ] && { BIN=$b; break; }
  done
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "quant-quality.sh: no m40llm binary: build it (scripts/build.sh) or set M40LLM_BIN" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "quant-quality.sh: python3 is needed" >&2; exit 1; }
mkdir -p "$OUT"
echo "quant-quality.sh: $BIN, source $SRC, out $OUT" >&2

# The prompts: short English text, chat-templated questions (ChatML, the
# SmolLM2 template; other models see it as plain text), code, a list.
SYS='<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
'
PROMPTS=(
  "The capital of France is"
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the"
  "${SYS}<|im_start|>user
What is the capital of France?<|im_end|>
<|im_start|>assistant
"
  "${SYS}<|im_start|>user
Explain in one sentence why the sky is blue.<|im_end|>
<|im_start|>assistant
The sky is blue because"
  "def fibonacci(n):
    \"\"\"Return the n-th Fibonacci number.\"\"\"
    if n < 2:
        return n
    return"
  "#include <stdio.h>

int main(void) {
    printf(\"Hello, world!\\n\");
    return"
  "Ingredients for pancakes: flour, eggs, milk,"
  "The theory of general relativity, published by Albert Einstein in 1915, describes gravity as"
)

logits_for() { # NAME MODEL: writes OUT/logits/NAME.pN.f32
  local name=$1 model=$2 i
  mkdir -p "$OUT/logits"
  for i in "${!PROMPTS[@]}"; do
    local f="$OUT/logits/$name.p$i.f32"
    [ -s "$f" ] && continue
    "$BIN" logits -m "$model" --device cpu -t "$THREADS" -p "${PROMPTS[$i]}" -o "$f" \
      --log-level error
  done
}

bpw() { # MODEL -> "bytes_of_tensors elements"
  "$BIN" inspect "$1" 2>/dev/null | awk '
    / [0-9]+: [a-z_.0-9]+ +[a-zA-Z0-9_]+ +[0-9]/ {
      # "  N: name  type  ne0, ne1 ...  offset  bytes"
      n = 1; line = $0; sub(/^ *[0-9]+: [^ ]+ +[^ ]+ +/, "", line)
      k = split(line, f, / +/); shape = ""
      for (j = 1; j <= k - 2; j++) shape = shape f[j]
      m = split(shape, d, ","); for (j = 1; j <= m; j++) if (d[j] != "") n *= d[j]
      bytes += f[k]; elems += n }
    END { printf "%d %d\n", bytes, elems }'
}

echo "quant-quality.sh: logits of the source" >&2
logits_for source "$SRC"
ROWS=()
for t in $TYPES; do
  q="$OUT/$t.gguf"
  if [ ! -s "$q" ]; then
    echo "quant-quality.sh: quantize $t" >&2
    "$BIN" quantize "$SRC" "$q.tmp" "$t" ${QFLAGS[@]+"${QFLAGS[@]}"} -t "$THREADS" \
      --log-level warn >&2
    mv "$q.tmp" "$q"
  fi
  echo "quant-quality.sh: logits $t" >&2
  logits_for "$t" "$q"
  ROWS+=("$t|$q")
done
for r in ${REFS[@]+"${REFS[@]}"}; do
  name=${r%%=*}
  file=${r#*=}
  [ -f "$file" ] || { echo "quant-quality.sh: --ref $r: no such file" >&2; exit 1; }
  echo "quant-quality.sh: logits $name" >&2
  logits_for "$name" "$file"
  ROWS+=("$name|$file")
done

{
  echo "source $SRC $(stat -c %s "$SRC") $(bpw "$SRC")"
  for r in "${ROWS[@]}"; do
    echo "row ${r%%|*} ${r#*|} $(stat -c %s "${r#*|}") $(bpw "${r#*|}")"
  done
} >"$OUT/rows.txt"
python3 -c "$(cat <<'PY'
import array, math, os, sys
d, n_prompts = sys.argv[1], int(sys.argv[2])

def load(name, i):
    a = array.array("f")
    with open(os.path.join(d, f"{name}.p{i}.f32"), "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a

def log_softmax(x):
    m = max(x)
    lse = m + math.log(sum(math.exp(v - m) for v in x))
    return [v - lse for v in x]

src = [load("source", i) for i in range(n_prompts)]
src_lp = [log_softmax(s) for s in src]
lines = open(sys.argv[3]).read().splitlines()
print("| type | size MB | bpw | rel L2 mean | rel L2 max | KL mean | top-1 agree |")
print("|---|---:|---:|---:|---:|---:|---:|")
for ln in lines:
    parts = ln.split()
    kind, name, size, tbytes, elems = parts[0], parts[1], int(parts[-3]), int(parts[-2]), int(parts[-1])
    bpw = 8.0 * tbytes / elems if elems else float("nan")
    if kind == "source":
        print(f"| source ({os.path.basename(name)}) | {size/1e6:.1f} | {bpw:.2f} | 0 | 0 | 0 | {n_prompts}/{n_prompts} |")
        continue
    rels, kls, agree = [], [], 0
    for i in range(n_prompts):
        q = load(name, i)
        s = src[i]
        num = math.sqrt(sum((a - b) ** 2 for a, b in zip(q, s)))
        den = math.sqrt(sum(b * b for b in s))
        rels.append(num / den)
        qlp = log_softmax(q)
        kls.append(sum(math.exp(p) * (p - r) for p, r in zip(src_lp[i], qlp)))
        agree += max(range(len(q)), key=q.__getitem__) == max(range(len(s)), key=s.__getitem__)
    print(f"| {name} | {size/1e6:.1f} | {bpw:.2f} | {sum(rels)/len(rels):.4f} | {max(rels):.4f} "
          f"| {sum(kls)/len(kls):.5f} | {agree}/{n_prompts} |")
PY
)" "$OUT/logits" "${#PROMPTS[@]}" "$OUT/rows.txt" >"$OUT/table.md"
cat "$OUT/table.md"
