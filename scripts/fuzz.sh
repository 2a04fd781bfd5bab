#!/usr/bin/env bash
# fuzz.sh SECONDS [libFuzzer args...] - builds the GGUF parser fuzzer
# (build-fuzz, clang-14, -fsanitize=fuzzer,address,undefined) and runs it for
# SECONDS on a working copy of the seed corpus (tests/fuzz/corpus is not
# modified). Crashes land in build-fuzz/artifacts/; the log in
# build-fuzz/fuzz.log. Exit status: libFuzzer's (0 = no finding).
set -euo pipefail
secs=${1:-60}
shift || true
src=$(cd "$(dirname "$0")/.." && pwd)
bld=${M40LLM_FUZZ_BUILD_DIR:-$src/build-fuzz}
cc=${CC:-clang-14}
mkdir -p "$bld"
cmake -S "$src" -B "$bld" -DCMAKE_C_COMPILER="$cc" -DM40LLM_FUZZ=ON -DM40LLM_TESTS=OFF \
  -DM40LLM_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$bld/configure.log" 2>&1 || {
  cat "$bld/configure.log"
  exit 1
}
cmake --build "$bld" --target fuzz_gguf -j2
mkdir -p "$bld/corpus" "$bld/artifacts"
cp -n "$src"/tests/fuzz/corpus/* "$bld/corpus/" 2>/dev/null || true
cd "$bld"
echo "fuzz.sh: running fuzz_gguf for ${secs}s (log: $bld/fuzz.log)"
set +e
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 ./bin/fuzz_gguf -max_total_time="$secs" \
  -max_len=16384 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -dict="$src/tests/fuzz/gguf.dict" -artifact_prefix="$bld/artifacts/" "$@" "$bld/corpus" \
  2>&1 | tee "$bld/fuzz.log" | grep -E "^#[0-9]+.*(DONE|pulse)|ERROR|SUMMARY|stat::|Done" 
rc=${PIPESTATUS[0]}
set -e
echo "fuzz.sh: exit $rc; corpus now $(ls "$bld/corpus" | wc -l) files"
exit "$rc"
