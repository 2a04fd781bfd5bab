#!/usr/bin/env bash
# test_gguf_crosscheck.sh - `m40llm inspect` CLI behaviour, then a cross-check
# of `inspect --json` against the gguf Python package (GGUFReader) on every
# test-data GGUF, and the mkmodel round trip when `m40llm mkmodel` works.
# Env: M40LLM_BIN, M40LLM_TESTDATA, M40LLM_SOURCE_DIR, M40LLM_BUILD_DIR.
# Exit 77 (skipped) when the test data is missing or `pip install gguf` fails.
set -u
bin=${M40LLM_BIN:?M40LLM_BIN not set}
src=${M40LLM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${M40LLM_BUILD_DIR:-${TMPDIR:-/tmp}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- CLI behaviour (no test data needed)
"$bin" inspect --help >"$tmp/out" 2>&1 || fail "inspect --help exited $?"
grep -q "usage: m40llm inspect" "$tmp/out" || fail "inspect --help prints no usage"
"$bin" inspect --bogus "$src/tests/fuzz/corpus/model.gguf" >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option: expected exit 2"
"$bin" inspect >/dev/null 2>&1
[ $? -eq 2 ] || fail "no file: expected exit 2"
printf 'GGUX\003\000\000\000' >"$tmp/bad.gguf"
"$bin" inspect "$tmp/bad.gguf" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || fail "bad magic: expected exit 1, got $rc"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "bad magic: expected one line on stderr: $(cat "$tmp/err")"
grep -q "^m40llm inspect: $tmp/bad.gguf: offset 0: bad magic" "$tmp/err" ||
  fail "bad magic: unexpected message: $(cat "$tmp/err")"
head -c 100 "$src/tests/fuzz/corpus/model.gguf" >"$tmp/cut.gguf"
"$bin" inspect --json "$tmp/cut.gguf" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] || fail "truncated file: expected exit 1"
grep -q "^m40llm inspect: $tmp/cut.gguf: offset [0-9]*: " "$tmp/err" ||
  fail "truncated file: unexpected message: $(cat "$tmp/err")"
for f in "$src"/tests/fuzz/corpus/*.gguf; do
  "$bin" inspect "$f" >"$tmp/out" 2>&1 || fail "inspect $f exited $?: $(cat "$tmp/out")"
  "$bin" inspect --json "$f" >"$tmp/out.json" 2>&1 || fail "inspect --json $f exited $?"
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out.json" ||
    fail "inspect --json $f: not JSON"
done
echo "inspect CLI checks: ok"

# ---- cross-check with gguf-py
td=${M40LLM_TESTDATA:-}
if [ -z "$td" ] || [ ! -d "$td" ]; then
  echo "skipped: M40LLM_TESTDATA ('$td') is missing"
  exit 77
fi
venv=$bld/pyenv
if ! "$venv/bin/python" -c 'import gguf, numpy' >/dev/null 2>&1; then
  echo "creating $venv with the gguf package from PyPI"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q gguf; } >"$tmp/pip.log" 2>&1; then
    echo "skipped: could not install the gguf package with pip:"
    tail -5 "$tmp/pip.log"
    exit 77
  fi
fi
mk=()
if "$bin" mkmodel --help >/dev/null 2>&1; then
  mk=(--mkmodel-dir "$tmp/mk")
else
  echo "note: 'm40llm mkmodel --help' fails: mkmodel round trip not run"
fi
"$venv/bin/python" "$src/tests/scripts/gguf_crosscheck.py" --bin "$bin" --testdata "$td" "${mk[@]}"
