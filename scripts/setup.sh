#!/usr/bin/env bash
# Installs every build and test dependency of m40-llm on Debian 12 (idempotent).
#   scripts/setup.sh          build + test deps (CPU build; CUDA if a toolkit exists)
#   scripts/setup.sh --m40    also Debian's CUDA 11.8 toolkit (contrib/non-free),
#                             which can build sm_52 code for the Tesla M40
set -euo pipefail

M40=0
for a in "$@"; do
  case "$a" in
    --m40) M40=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential cmake pkg-config git python3 python3-venv python3-pip
      libmicrohttpd-dev libjansson-dev libpcre2-dev libopenblas-dev libcmocka-dev
      clang-14 libclang-rt-14-dev curl unzip chromium)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "$M40" = 1 ]; then
  src=/etc/apt/sources.list.d/m40llm-nonfree.sources
  if ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    echo "setup.sh: adding Debian contrib/non-free in $src"
    $SUDO tee "$src" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    NEED_UPDATE=1
  fi
  for p in nvidia-cuda-toolkit g++-11; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup.sh: all dependencies present"
fi
