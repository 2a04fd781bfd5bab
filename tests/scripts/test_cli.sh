#!/usr/bin/env bash
# CLI behaviour of run / chat / logits / bench: exit codes (0 ok, 1 runtime or
# input error, 2 usage error), one-line messages, --help, the logits file
# contract (4 * n_vocab bytes, nothing on stdout), no silent CPU fallback.
set -u
BIN=${M40LLM_BIN:?M40LLM_BIN not set}
TD=${M40LLM_TESTDATA:-}
M=$TD/stories/stories260K.gguf
if [ -z "$TD" ] || [ ! -f "$M" ]; then
    echo "skipped: stories260K.gguf not found under \$M40LLM_TESTDATA"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect RC PATTERN CMD...: exit code RC and stderr matching PATTERN (grep -E)
expect() {
    local want=$1 pat=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc -ne "$want" ]; then
        echo "FAIL: exit $rc (want $want): ${*:2}"; sed 's/^/    /' "$tmp/err" | head -5; fail=1
    elif [ -n "$pat" ] && ! grep -qE -- "$pat" "$tmp/err"; then
        echo "FAIL: stderr lacks /$pat/: ${*:2}"; sed 's/^/    /' "$tmp/err" | head -5; fail=1
    else
        echo "ok: [$rc] ${*:2}"
    fi
}
C=(--device cpu -t 1)

# usage errors: exit 2
expect 2 "" "$BIN"
expect 2 "unknown command" "$BIN" frobnicate
for c in run chat logits bench; do
    expect 2 "-m MODEL is required" "$BIN" $c
    expect 2 "unknown option '--bogus'" "$BIN" $c -m "$M" --bogus
    expect 0 "" "$BIN" $c --help
    grep -q "usage: m40llm $c" "$tmp/out" || { echo "FAIL: $c --help: no usage on stdout"; fail=1; }
    expect 2 "--device: 'gpu' is not" "$BIN" $c -m "$M" --device gpu
    expect 2 "option -c needs a value" "$BIN" $c -m "$M" -c
done
expect 2 "exactly one of -p PROMPT or -f" "$BIN" run -m "$M"
expect 2 "exactly one of -p PROMPT or -f" "$BIN" run -m "$M" -p a -f b
expect 2 "must be > 0, or -1" "$BIN" run -m "$M" -p hi -n 0
expect 2 "out of range" "$BIN" run -m "$M" -p hi -n -2
expect 2 "not an integer" "$BIN" run -m "$M" -p hi -n 12x
expect 2 "--temp: 'hot' is not a number" "$BIN" run -m "$M" -p hi --temp hot
expect 2 "unknown template 'nope'" "$BIN" run -m "$M" -p hi --chat-template nope
expect 2 "-o OUT.f32 is required" "$BIN" logits -m "$M" -p hi
expect 2 "exactly one of -p PROMPT or --tokens" "$BIN" logits -m "$M" -o "$tmp/x.f32"
expect 2 "not a comma-separated list" "$BIN" logits -m "$M" --tokens 1,x -o "$tmp/x.f32"
expect 2 "must be > 0, or -1" "$BIN" chat -m "$M" -n 0
expect 2 "nothing to do" "$BIN" bench -m "$M" -p 0 -n 0

# runtime / input errors: exit 1
expect 1 "nonexistent.gguf" "$BIN" run -m "$tmp/nonexistent.gguf" -p hi "${C[@]}"
printf 'not a gguf file at all' >"$tmp/junk.gguf"
expect 1 "junk.gguf" "$BIN" run -m "$tmp/junk.gguf" -p hi "${C[@]}"
expect 1 "missing.txt: cannot read" "$BIN" run -m "$M" -f "$tmp/missing.txt" "${C[@]}"
long=$(printf 'Once upon a time there was a dog. %.0s' $(seq 20))
expect 1 "does not fit the context of 16 tokens" "$BIN" run -m "$M" -p "$long" -c 16 "${C[@]}"
expect 1 "longer than the context" "$BIN" logits -m "$M" -p "$long" -c 16 -o "$tmp/x.f32" "${C[@]}"
expect 1 "token 9999 is out of range \[0, 512\)" "$BIN" logits -m "$M" --tokens 1,9999 -o "$tmp/x.f32" "${C[@]}"
expect 1 "cannot write" "$BIN" logits -m "$M" --tokens 1,2 -o "$tmp/no/such/dir/x.f32" "${C[@]}"
expect 1 "chat template" "$BIN" chat -m "$M" "${C[@]}"
expect 1 "chat template" "$BIN" run -m "$M" -p hi --chat "${C[@]}"

# run: prompt from a file == prompt from -p; stats line; nothing else on stdout
printf 'Once upon a time' >"$tmp/prompt.txt"
expect 0 "^stats: load .* prompt 5 tok, .* gen 12 tok, .* GB/s" \
    "$BIN" run -m "$M" -f "$tmp/prompt.txt" -n 12 --temp 0 "${C[@]}"
cp "$tmp/out" "$tmp/run_f.txt"
expect 0 "" "$BIN" run -m "$M" -p "Once upon a time" -n 12 --temp 0 "${C[@]}"
cmp -s "$tmp/out" "$tmp/run_f.txt" || { echo "FAIL: -f and -p outputs differ"; fail=1; }
[ "$(head -c 7 "$tmp/out")" = ", there" ] || { echo "FAIL: run output starts '$(head -c 20 "$tmp/out")'"; fail=1; }
# -n -1 runs until EOS or the context is full
expect 0 "gen 11 tok" "$BIN" run -m "$M" -p "Once upon a time" -n -1 -c 16 --temp 0 "${C[@]}"

# logits: exactly 4 * n_vocab bytes, nothing on stdout
expect 0 "" "$BIN" logits -m "$M" -p "Once upon a time" -o "$tmp/l.f32" "${C[@]}"
[ -s "$tmp/out" ] && { echo "FAIL: logits wrote to stdout"; fail=1; }
[ "$(stat -c %s "$tmp/l.f32")" = 2048 ] || { echo "FAIL: logits size $(stat -c %s "$tmp/l.f32") != 2048"; fail=1; }

# chat on a pipe: no "> " marker, two turns, exit 0 at EOF
printf 'Hello there\nTell me a story\n' | "$BIN" chat -m "$M" --chat-template chatml -n 8 --temp 0 \
    "${C[@]}" >"$tmp/chat.out" 2>"$tmp/chat.err"
rc=$?
if [ $rc -ne 0 ] || [ "$(wc -l <"$tmp/chat.out")" -ne 2 ] || grep -q '^> ' "$tmp/chat.out"; then
    echo "FAIL: chat on a pipe (rc $rc)"; cat "$tmp/chat.out" "$tmp/chat.err" | head; fail=1
else
    echo "ok: chat two turns"
fi
# the KV cache is kept across turns: the second turn runs only the new tokens
printf 'Hello there\nTell me a story\n' | "$BIN" chat -m "$M" --chat-template chatml -n 8 --temp 0 \
    "${C[@]}" -v >/dev/null 2>"$tmp/chat.err"
grep -qE "reused [1-9][0-9]* cached tokens" "$tmp/chat.err" ||
    { echo "FAIL: chat did not reuse the KV cache"; grep reused "$tmp/chat.err"; fail=1; }

# bench: a markdown table with pp and tg rows
expect 0 "" "$BIN" bench -m "$M" -p 16 -n 8 -r 1 "${C[@]}"
grep -qE '^\| pp16 \| [0-9.]+ \|' "$tmp/out" && grep -qE '^\| tg8 \| [0-9.]+ \|' "$tmp/out" ||
    { echo "FAIL: bench table"; cat "$tmp/out"; fail=1; }

# no silent CPU fallback: --device cuda either runs on CUDA or fails
"$BIN" run -m "$M" -p hi -n 2 --device cuda >"$tmp/out" 2>"$tmp/err" </dev/null
rc=$?
if [ $rc -eq 0 ]; then
    grep -q "backend: cuda" "$tmp/err" && echo "ok: --device cuda ran on CUDA" ||
        { echo "FAIL: --device cuda succeeded without a CUDA backend"; fail=1; }
elif [ $rc -eq 1 ] && [ ! -s "$tmp/out" ] && ! grep -q "backend: cpu" "$tmp/err"; then
    echo "ok: [1] --device cuda without a usable GPU: $(head -1 "$tmp/err")"
    # auto: one warning line, then the CPU
    "$BIN" run -m "$M" -p hi -n 2 --device auto -t 1 >/dev/null 2>"$tmp/err" </dev/null
    n=$(grep -c "running on the CPU" "$tmp/err")
    [ "$n" = 1 ] && echo "ok: --device auto warns once and runs on the CPU" ||
        { echo "FAIL: --device auto: $n warning lines"; cat "$tmp/err"; fail=1; }
else
    echo "FAIL: --device cuda: exit $rc"; cat "$tmp/err"; fail=1
fi
exit $fail
