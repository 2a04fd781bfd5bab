#!/usr/bin/env bash
# Load test: 32 concurrent streaming clients against `m40llm serve` on loopback
# for M40LLM_LOADTEST_SECONDS (default 15) seconds (see test_server_load.py).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
command -v python3 >/dev/null || { echo "skipped: python3 missing"; exit 77; }
exec python3 "$here/test_server_load.py"
