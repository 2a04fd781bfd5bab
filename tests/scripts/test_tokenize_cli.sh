#!/usr/bin/env bash
# m40llm tokenize: ids on one line, vocab-only files, error handling.
set -uo pipefail
BIN=${M40LLM_BIN:?}
TD=${M40LLM_TESTDATA:-}
[ -f "$TD/stories/stories260K.gguf" ] || { echo "skipped: no testdata"; exit 77; }
fail=0
check() { if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2' want '$3'"; fail=1; else echo "ok $1"; fi; }

got=$("$BIN" tokenize -m "$TD/stories/stories260K.gguf" -p "Once upon a time" 2>/dev/null)
check "stories p1" "$got" "$(tr -d ' \n' < "$TD/stories/stories260K.p1.tokens.txt" | tr -s ',' )"
got=$("$BIN" tokenize -m "$TD/stories/stories260K.gguf" -p "Once upon a time" --no-bos 2>/dev/null)
check "no-bos" "$got" "403,407,261,378"
# vocab-only file (no tensors)
got=$("$BIN" tokenize -m "$TD/tokenizer/ggml-vocab-gpt-2.gguf" -p "Hello world" 2>/dev/null)
check "gpt-2 vocab-only" "$got" "15496,995"
"$BIN" tokenize -m /nonexistent.gguf -p x >/dev/null 2>&1; check "missing file exit" "$?" "1"
"$BIN" tokenize --bogus >/dev/null 2>&1; check "unknown option exit" "$?" "2"
exit $fail
