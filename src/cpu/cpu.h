/* cpu.h - CPU backend internals exposed for tests and benchmarks.
 * The backend itself is created with backend_cpu_create (engine/backend.h). */
#ifndef M40_CPU_H
#define M40_CPU_H

#include "engine/backend.h"

/* Batches of at least `n` tokens run the weight products as dequantized
 * tiles x SGEMM (OpenBLAS); smaller batches use quant_matvec per token.
 * Default CPU_GEMM_MIN_TOKENS. n <= 1 forces SGEMM for every batch; a huge
 * n forces the matvec path (tests compare both). */
#define CPU_GEMM_MIN_TOKENS 8
void cpu_backend_set_gemm_min_tokens(Backend *b, int n);

/* Attention numerics. 0: FP32 scores/softmax/weighted sum over the FP16
 * cache (most accurate). 1: llama.cpp's CPU flash-attention rounding with an
 * F16 cache (Q rounded to FP16 for Q.K, V accumulated in FP16), which is how
 * every reference in testdata was produced: it reproduces stories260K
 * logits to ~1e-7 where FP32 attention differs by ~3e-4. */
#define CPU_ATTN_LLAMACPP_DEFAULT 0
/* Tests: 1 = use the portable C attention kernels even where AVX2/F16C
 * versions exist (process-wide; call while no backend is running). */
void cpu_kernels_force_portable(int on);

/* Environment override read by backend_cpu_create: M40LLM_CPU_ATTN=llamacpp|fp32. */
void cpu_backend_set_llamacpp_attention(Backend *b, int on);

#endif
