/* cpu.h - CPU backend internals exposed for tests and benchmarks.
 * The backend itself is created with backend_cpu_create (engine/backend.h). */
#ifndef M40_CPU_H
#define M40_CPU_H

#include "engine/backend.h"

/* Weight products run the blocked kernel quant_matmul by default (batched
 * prefill bit-identical to token-by-token decode). n > 0: batches of at least
 * `n` tokens run as dequantized tiles x OpenBLAS SGEMM instead (the env
 * M40LLM_CPU_SGEMM=1 sets CPU_GEMM_MIN_TOKENS; faster for long prompts on many
 * cores, but not bit-exact); n <= 0: never SGEMM (the default). */
#define CPU_GEMM_MIN_TOKENS 8
void cpu_backend_set_gemm_min_tokens(Backend *b, int n);

/* Numerics. 0 (default): FP32 arithmetic throughout (FP32 scores, softmax
 * and weighted sum over the cache). 1: llama.cpp-compatible: reproduces
 * llama.cpp's CPU arithmetic (AVX2 build, b10470) wherever it can move an
 * FP16 rounding of the cache: tinyBLAS/ggml_vec_dot_f32 summation order for
 * the weight products, ggml's RMSNorm, RoPE and SwiGLU (ggml_v_expf), and
 * its flash attention with an F16 cache (Q rounded to FP16, ggml_vec_dot_f16,
 * V accumulated in FP16, 1/S at the end). Every testdata reference was made
 * that way: the mode lands at ~2e-7 relative L2 of logits_exact (worst
 * 1.7e-5) where the FP32 path differs by ~4e-4 (the references' own FP16
 * rounding). M40LLM_LLAMACPP_LANES=16 emulates an AVX-512 build instead.
 * Scalar emulation: slow, for tests and comparisons. */
#define CPU_ATTN_LLAMACPP_DEFAULT 0
/* Tests: 1 = use the portable C kernels (attention and quant_matmul) even
 * where AVX2/F16C versions exist (process-wide; call while no backend is
 * running). Same as cpu_force_portable (base/cpu_features.h) plus the
 * attention kernels. */
void cpu_kernels_force_portable(int on);

/* Environment override read by backend_cpu_create: M40LLM_CPU_ATTN=llamacpp|fp32. */
void cpu_backend_set_llamacpp_attention(Backend *b, int on);

/* KV cache element type. 0 (default): FP16, as docs/kv_layout.md and the
 * CUDA backend. 1: FP32 (twice the memory): the FP32 path then matches exact
 * float64 math to ~1e-6 instead of ~3e-4 (the FP16 rounding of K/V is the
 * largest error of the default path; tests/unit/test_cpu_exact.c). Env
 * M40LLM_CPU_KV=f32|f16 at creation. llama.cpp-compatible attention needs an
 * FP16 cache: switching it on reallocates the cache as FP16 (contents lost),
 * switching it off restores the configured type. */
#define CPU_KV_F32_DEFAULT 0
/* Reallocates a zeroed cache of that type: every sequence's cached
 * positions are lost. Returns 0 or -1 (allocation failure; cache unchanged). */
int cpu_backend_set_kv_f32(Backend *b, int on, Err *e);

#endif
