#!/usr/bin/env python3
"""Writes reference vectors for test_quant.c: random block bytes per type
(fp16 scales finite, in [-2, 2]) and their dequantization by gguf-py
(the `gguf` package, an implementation independent of m40llm).
Usage: python3 gen.py (needs numpy and gguf); writes <TYPE>.bin / <TYPE>.f32."""
import os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

HALVES = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
          T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
out = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2024)
for t, offs in HALVES.items():
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    nb = 4 if bs == 256 else 8
    raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    for o in offs:
        raw[:, o:o + 2] = rng.uniform(-2, 2, size=nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
    raw = raw.reshape(1, -1)
    raw.tofile(os.path.join(out, t.name + ".bin"))
    dequantize(raw, t).astype("<f4").ravel().tofile(os.path.join(out, t.name + ".f32"))
