#!/usr/bin/env bash
# The official `openai` Python SDK against `m40llm serve`: chat.completions and
# completions, streamed and not, must equal `m40llm run` (greedy and seeded).
# The SDK is installed into a venv under $M40LLM_BUILD_DIR (skipped if pip fails).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
build="${M40LLM_BUILD_DIR:-/tmp}"
venv="$build/venv-openai"
command -v python3 >/dev/null || { echo "skipped: python3 missing"; exit 77; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
    python3 -m venv "$venv" >/dev/null 2>&1 || { echo "skipped: cannot create a venv"; exit 77; }
    "$venv/bin/pip" install -q --disable-pip-version-check openai >"$build/pip-openai.log" 2>&1 ||
        { echo "skipped: pip install openai failed (see $build/pip-openai.log)"; exit 77; }
fi
PYTHONPATH="$here" exec "$venv/bin/python" "$here/test_server_openai.py"
