#!/usr/bin/env bash
# The first command to try: installs dependencies, builds m40llm (build/, Release,
# CUDA when a toolkit is found), fetches SmolLM2-135M-Instruct (Q4_1, 98 MB) and
# asks it one question with its chat template, greedy, 64 tokens at most.
#   scripts/demo.sh [QUESTION]     (extra m40llm run options via M40LLM_DEMO_ARGS,
#                                   e.g. M40LLM_DEMO_ARGS="--device cpu";
#                                   build directory: BUILD_DIR, default build;
#                                   extra cmake options: M40LLM_CMAKE_ARGS)
set -euo pipefail
cd "$(dirname "$0")/.."
QUESTION=${1:-"What is the capital of France? Answer in one sentence."}

BUILD_DIR=${BUILD_DIR:-build}

scripts/setup.sh
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DM40LLM_CUDA=AUTO ${M40LLM_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$(nproc)" --target m40llm
MODEL=$(scripts/fetch-model.sh)

echo
echo "> $QUESTION"
# shellcheck disable=SC2086
"$BUILD_DIR/bin/m40llm" run -m "$MODEL" --chat -p "$QUESTION" -n 64 --temp 0 ${M40LLM_DEMO_ARGS:-}
