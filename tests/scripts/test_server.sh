#!/usr/bin/env bash
# Functional tests of `m40llm serve` on a free loopback port (see test_server.py).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
command -v python3 >/dev/null || { echo "skipped: python3 missing"; exit 77; }
exec python3 "$here/test_server.py"
