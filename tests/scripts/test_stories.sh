#!/usr/bin/env bash
# Greedy text gates on the real stories260K model (CPU, `m40llm run`):
#  - "Once upon a time" and "Tom and his dog": the 200 tokens llama.cpp generates
#    (.greedy200.txt holds the text followed by the "\n\n" llama.cpp's tool prints
#    at the end; m40llm run prints exactly the generated text).
#  - BOS alone: the story Karpathy's llama2.c run.c prints with -n 256 (its `steps`
#    counts forward passes from position 0; with the prompt [BOS] that is 256
#    sampled tokens, the space after BOS stripped, then one "\n" printed at the end).
set -u
BIN=${M40LLM_BIN:?M40LLM_BIN not set}
TD=${M40LLM_TESTDATA:-}
S=$TD/stories
if [ -z "$TD" ] || [ ! -f "$S/stories260K.gguf" ]; then
    echo "skipped: stories260K.gguf not found under \$M40LLM_TESTDATA"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

check() { # name expected-file actual-file
    if cmp -s "$2" "$3"; then
        echo "ok: $1"
    else
        echo "FAIL: $1 (first difference: $(cmp "$2" "$3" 2>&1 | head -1))"
        diff <(fold -w 80 "$2") <(fold -w 80 "$3") | head -10
        fail=1
    fi
}

for p in "p1:Once upon a time" "p2:Tom and his dog"; do
    id=${p%%:*} prompt=${p#*:}
    if ! "$BIN" run -m "$S/stories260K.gguf" -p "$prompt" -n 200 --temp 0 --device cpu -t 1 \
        >"$tmp/$id.out" 2>"$tmp/$id.err"; then
        echo "FAIL: $id: m40llm run exited non-zero:"; cat "$tmp/$id.err"; fail=1; continue
    fi
    printf '\n\n' >>"$tmp/$id.out"
    check "$id greedy 200 == llama.cpp" "$S/stories260K.$id.greedy200.txt" "$tmp/$id.out"
    grep -q "^stats: .*gen 200 tok" "$tmp/$id.err" || { echo "FAIL: $id: no stats line"; fail=1; }
done

if "$BIN" run -m "$S/stories260K.gguf" -p "" -n 256 --temp 0 --device cpu -t 1 \
    >"$tmp/bos.out" 2>"$tmp/bos.err"; then
    printf '\n' >>"$tmp/bos.out"
    check "BOS greedy 256 == llama2.c" "$S/stories260K.bos.greedy256.llama2c.txt" "$tmp/bos.out"
else
    echo "FAIL: BOS run exited non-zero:"; cat "$tmp/bos.err"; fail=1
fi

# seeded sampling is reproducible run to run
for i in 1 2; do
    "$BIN" run -m "$S/stories260K.gguf" -p "Once upon a time" -n 40 --temp 0.9 --top-k 20 \
        --seed 1234 --device cpu -t 1 >"$tmp/seed$i.out" 2>/dev/null || fail=1
done
check "same seed, same text" "$tmp/seed1.out" "$tmp/seed2.out"
"$BIN" run -m "$S/stories260K.gguf" -p "Once upon a time" -n 40 --temp 0.9 --top-k 20 \
    --seed 99 --device cpu -t 1 >"$tmp/seed3.out" 2>/dev/null || fail=1
if cmp -s "$tmp/seed1.out" "$tmp/seed3.out"; then echo "FAIL: different seeds gave the same text"; fail=1; fi

# a stop string ends generation before it: "Lily" first appears in the p1 text
"$BIN" run -m "$S/stories260K.gguf" -p "Once upon a time" -n 200 --temp 0 --device cpu -t 1 \
    --stop "Lily" >"$tmp/stop.out" 2>"$tmp/stop.err" || fail=1
printf ', there was a little girl named ' >"$tmp/stop.want"
check "--stop Lily" "$tmp/stop.want" "$tmp/stop.out"
grep -q "finish stop" "$tmp/stop.err" || { echo "FAIL: --stop: finish reason is not stop"; fail=1; }
exit $fail
