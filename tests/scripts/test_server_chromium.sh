#!/usr/bin/env bash
# Headless Chromium types a question into the chat page at / and reads the
# streamed answer (see test_server_chromium.py). Skipped without chromium.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
command -v python3 >/dev/null || { echo "skipped: python3 missing"; exit 77; }
command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
    command -v google-chrome >/dev/null || { echo "skipped: chromium is not installed"; exit 77; }
exec python3 "$here/test_server_chromium.py"
