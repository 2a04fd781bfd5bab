#!/usr/bin/env bash
# test_mkmodel.sh - CLI behaviour of `m40llm mkmodel` and `m40llm quantize`:
# help, usage errors (exit 2 with a message), valid runs whose output
# `m40llm inspect` reads with the expected tensors/types, determinism across
# thread counts, and quantize type mixes on the tiny test model.
set -u
BIN=${M40LLM_BIN:?M40LLM_BIN not set}
TD=${M40LLM_TESTDATA:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect RC PATTERN ARGS...: runs m40llm ARGS, checks the exit code and that
# stdout+stderr contains PATTERN (grep -E; empty = no check).
expect() {
    local want=$1 pat=$2 out rc
    shift 2
    out=$("$BIN" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL: m40llm $* -> exit $rc (want $want): $out"
        fail=1
    elif [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then
        echo "FAIL: m40llm $*: output lacks /$pat/: $out"
        fail=1
    else
        echo "ok: m40llm $* -> $rc"
    fi
}
# ttype FILE NAME: the tensor's type as `m40llm inspect` prints it
ttype() { "$BIN" inspect "$1" | awk -v n="$2" '$2 == n { print $3 }'; }
check_type() {
    local got
    got=$(ttype "$1" "$2")
    if [ "$got" != "$3" ]; then
        echo "FAIL: $(basename "$1"): $2 has type '$got', want '$3'"
        fail=1
    else
        echo "ok: $(basename "$1"): $2 is $3"
    fi
}

S="--dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 300"
# ---- help and usage errors
expect 0 "usage: m40llm mkmodel" mkmodel --help
expect 0 "usage: m40llm quantize" quantize --help
expect 2 "unknown option '--bogus'" mkmodel "$tmp/a.gguf" $S --bogus
expect 2 "missing OUT.gguf" mkmodel $S
expect 2 "--dim is required" mkmodel "$tmp/a.gguf" --layers 1 --heads 1 --ffn 32 --vocab 300
expect 2 "--dim.*not an integer" mkmodel "$tmp/a.gguf" $S --dim 6x4
expect 2 "--layers.*out of range" mkmodel "$tmp/a.gguf" $S --layers 0
expect 2 "not a multiple of --heads" mkmodel "$tmp/a.gguf" $S --heads 5 --kv-heads 1
expect 2 "not a multiple of --kv-heads" mkmodel "$tmp/a.gguf" $S --kv-heads 3
expect 2 "must be even" mkmodel "$tmp/a.gguf" $S --dim 12 --heads 4 --kv-heads 4
expect 2 "--vocab 258 is too small" mkmodel "$tmp/a.gguf" $S --vocab 258
expect 2 "--type: 'q9_9'" mkmodel "$tmp/a.gguf" $S --type q9_9
expect 2 "--dim 64 is not a multiple of 256, the block size of q4_K" \
    mkmodel "$tmp/a.gguf" $S --type q4_k
expect 2 "--ffn 48 is not a multiple of 32" mkmodel "$tmp/a.gguf" $S --ffn 48 --type q8_0
expect 2 "--arch: 'gpt2'" mkmodel "$tmp/a.gguf" $S --arch gpt2
expect 2 "needs a value" mkmodel "$tmp/a.gguf" $S --seed
expect 1 "cannot create" mkmodel "$tmp/no/such/dir/a.gguf" $S
expect 2 "expected IN.gguf OUT.gguf TYPE" quantize "$tmp/a.gguf"
expect 2 "TYPE 'q4_x'" quantize "$tmp/a.gguf" "$tmp/b.gguf" q4_x
expect 2 "unknown option '--fast'" quantize "$tmp/a.gguf" "$tmp/b.gguf" q4_0 --fast
expect 1 "" quantize "$tmp/missing.gguf" "$tmp/b.gguf" q4_0
[ -e "$tmp/a.gguf" ] && { echo "FAIL: a failed mkmodel left $tmp/a.gguf"; fail=1; }

# ---- valid runs, read back by inspect
expect 0 "wrote" mkmodel "$tmp/l.gguf" $S --type f16 --seed 7 -t 1
expect 0 "wrote" mkmodel "$tmp/l2.gguf" $S --type f16 --seed 7 -t 3
expect 0 "wrote" mkmodel "$tmp/l3.gguf" $S --type f16 --seed 8
cmp -s "$tmp/l.gguf" "$tmp/l2.gguf" && echo "ok: same output for 1 and 3 threads" ||
    { echo "FAIL: output depends on the thread count"; fail=1; }
cmp -s "$tmp/l.gguf" "$tmp/l3.gguf" && { echo "FAIL: --seed has no effect"; fail=1; }
expect 0 "general.architecture.*llama" inspect "$tmp/l.gguf"
expect 0 "tokenizer.ggml.tokens" inspect "$tmp/l.gguf"
expect 0 "Dumping 21 tensor" inspect "$tmp/l.gguf"
check_type "$tmp/l.gguf" token_embd.weight f16
check_type "$tmp/l.gguf" output.weight f16
check_type "$tmp/l.gguf" blk.1.ffn_down.weight f16
check_type "$tmp/l.gguf" blk.1.ffn_norm.weight f32
expect 0 "wrote" mkmodel "$tmp/q.gguf" --arch qwen2 --dim 256 --layers 1 --heads 4 \
    --ffn 512 --vocab 400 --tied --type q4_k
expect 0 "qwen2.attention.head_count_kv" inspect "$tmp/q.gguf"
expect 0 "Dumping 14 tensor" inspect "$tmp/q.gguf"
check_type "$tmp/q.gguf" blk.0.attn_q.bias f32
check_type "$tmp/q.gguf" blk.0.attn_k.weight q4_K
check_type "$tmp/q.gguf" output.weight ""
for t in f32 bf16 q8_0 q4_0 q4_1 q5_0 q5_1; do
    expect 0 "wrote" mkmodel "$tmp/t-$t.gguf" --dim 64 --layers 1 --heads 2 --ffn 96 \
        --vocab 260 --type $t
done
for t in q2_k q3_k q5_k q6_k; do
    expect 0 "wrote" mkmodel "$tmp/t-$t.gguf" --dim 256 --layers 1 --heads 2 --ffn 512 \
        --vocab 260 --type $t
done
check_type "$tmp/t-q5_1.gguf" blk.0.attn_v.weight q5_1
check_type "$tmp/t-q3_k.gguf" blk.0.ffn_up.weight q3_K

# ---- quantize: mixes on the tiny test model (dim 256, 2 layers, 4 heads, 2 kv heads)
F32=$TD/models/tiny-llama-f32.gguf
if [ -n "$TD" ] && [ -f "$F32" ]; then
    expect 0 "q4_k_m" quantize "$F32" "$tmp/m.gguf" q4_k_m
    check_type "$tmp/m.gguf" output.weight q6_K
    check_type "$tmp/m.gguf" token_embd.weight q4_K
    check_type "$tmp/m.gguf" blk.0.attn_v.weight q4_K
    check_type "$tmp/m.gguf" blk.1.attn_v.weight q6_K
    check_type "$tmp/m.gguf" blk.1.ffn_down.weight q6_K
    check_type "$tmp/m.gguf" blk.0.ffn_norm.weight f32
    expect 0 "general.file_type += 15" inspect "$tmp/m.gguf"
    expect 0 "" quantize "$F32" "$tmp/m2.gguf" q2_k
    check_type "$tmp/m2.gguf" blk.0.attn_v.weight q3_K
    check_type "$tmp/m2.gguf" blk.0.attn_q.weight q2_K
    expect 0 "" quantize "$F32" "$tmp/m3.gguf" q3_k_m
    check_type "$tmp/m3.gguf" blk.0.attn_v.weight q5_K
    check_type "$tmp/m3.gguf" blk.0.attn_output.weight q4_K
    expect 0 "" quantize "$F32" "$tmp/m4.gguf" q4_k_s
    check_type "$tmp/m4.gguf" blk.1.attn_v.weight q5_K
    check_type "$tmp/m4.gguf" blk.1.ffn_up.weight q4_K
    expect 0 "" quantize "$F32" "$tmp/m5.gguf" q5_k_m --pure
    check_type "$tmp/m5.gguf" output.weight q5_K
    check_type "$tmp/m5.gguf" blk.1.ffn_down.weight q5_K
    for t in q8_0 q4_0 q4_1 q5_0 q5_1 q5_k_s q6_k f16 bf16; do
        expect 0 "" quantize "$F32" "$tmp/x-$t.gguf" $t
    done
    check_type "$tmp/x-q4_0.gguf" output.weight q6_K
    check_type "$tmp/x-q4_0.gguf" blk.0.ffn_gate.weight q4_0
    check_type "$tmp/x-q8_0.gguf" output.weight q8_0
    check_type "$tmp/x-bf16.gguf" output.weight bf16
    # row length 96 is not a multiple of 256: K-quants fall back to legacy types
    expect 0 "wrote" mkmodel "$tmp/s.gguf" --dim 96 --layers 1 --heads 2 --ffn 160 \
        --vocab 300 --type f16
    expect 0 "" quantize "$tmp/s.gguf" "$tmp/s4.gguf" q4_k_m
    check_type "$tmp/s4.gguf" blk.0.attn_q.weight q5_0
    check_type "$tmp/s4.gguf" output.weight q8_0
    # requantizing needs --allow-requantize
    Q4=$TD/models/tiny-llama-q4_0.gguf
    if [ -f "$Q4" ]; then
        expect 1 "allow-requantize" quantize "$Q4" "$tmp/r.gguf" q4_k_m
        expect 0 "" quantize "$Q4" "$tmp/r.gguf" q4_k_m --allow-requantize
    fi
    expect 0 "" quantize "$tmp/x-q8_0.gguf" "$tmp/r8.gguf" q4_0
else
    echo "skipped: quantize part ($F32 missing)"
fi

exit $fail
