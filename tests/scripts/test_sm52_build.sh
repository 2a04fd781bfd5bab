#!/usr/bin/env bash
# sm_52 proof: with Debian's CUDA 11.8 (scripts/setup.sh --m40) the CUDA
# library embeds sm_52 SASS and compute_52 PTX for every kernel. Skipped (77)
# when that toolkit is not installed. Also checks that asking CUDA 13 for
# sm_52 stops at configure time with advice.
set -uo pipefail
SRC=${M40LLM_SOURCE_DIR:?}
BUILD=${M40LLM_BUILD_DIR:?}

if [ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version | grep -q "release 13"; then
  out=$(cmake -S "$SRC" -B "$BUILD/sm52-refused" -DM40LLM_CUDA=ON -DM40LLM_CUDA_ARCHS=52 \
        -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DM40LLM_TESTS=OFF 2>&1)
  rc=$?
  rm -rf "$BUILD/sm52-refused"
  if [ $rc -eq 0 ] || ! grep -q "scripts/setup.sh --m40" <<<"$out"; then
    echo "FAIL: CUDA 13 with M40LLM_CUDA_ARCHS=52 did not stop with advice:"; echo "$out" | tail -5
    exit 1
  fi
  echo "ok: CUDA 13 refuses sm_52 at configure time with advice"
fi

if ! /usr/bin/nvcc --version 2>/dev/null | grep -q "release 11\."; then
  echo "skipped: Debian's CUDA 11.8 is not installed (scripts/setup.sh --m40)"
  exit 77
fi
B="$BUILD/sm52"
cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DM40LLM_CUDA=ON -DM40LLM_CUDA_ARCHS="52-real;52-virtual" \
  -DCMAKE_CUDA_COMPILER=/usr/bin/nvcc -DM40LLM_TESTS=OFF >"$B.log" 2>&1 || { tail -20 "$B.log"; exit 1; }
cmake --build "$B" -j "$(nproc)" --target m40core >>"$B.log" 2>&1 || { tail -30 "$B.log"; exit 1; }
lib="$B/libm40core.a"
elf=$(/usr/bin/cuobjdump --list-elf "$lib")
ptx=$(/usr/bin/cuobjdump --list-ptx "$lib")
n_elf=$(grep -c "sm_52" <<<"$elf")
n_ptx=$(grep -c "sm_52" <<<"$ptx")
n_other=$(grep "ELF file" <<<"$elf" | grep -vc "sm_52")
echo "sm_52 cubins: $n_elf; compute_52 ptx: $n_ptx; other cubins: $n_other"
echo "$elf" | grep -B1 "ELF file" | grep member | sed 's/^/  /'
# every object with device code carries both the sm_52 cubin and its PTX
if [ "$n_elf" -lt 1 ] || [ "$n_elf" -ne "$n_ptx" ] || [ "$n_other" -ne 0 ]; then
  echo "FAIL: sm_52 SASS and PTX are not embedded for every kernel object"; echo "$elf"; echo "$ptx"; exit 1
fi
echo "ok: sm_52 SASS + PTX embedded"
