/* cuda_test_hooks_core.h - extern "C" hooks into the CUDA backend for tests
 * and benchmarks (defined in src/cuda/test_hooks.cu; absent in builds
 * without CUDA: guard with M40LLM_HAVE_CUDA). */
#ifndef M40_CUDA_TEST_HOOKS_CORE_H
#define M40_CUDA_TEST_HOOKS_CORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"

/* Turns CUDA graphs for decode steps on or off (b: a CUDA backend). */
void cuda_backend_set_graphs(Backend *b, int on);

/* Runs the attention kernel alone. q: (n_items, n_heads*hd) FP32; k, v:
 * (n_ctx, n_kv*hd) FP16 bits of one sequence; pos[i]: item i attends to
 * positions 0..pos[i]; span: positions per block (splits the sequence).
 * out: (n_items, n_heads*hd). decode 0: the prefill path (fixed spans, K/V
 * in the cache); 1 / 2: the decode path with (1) and without (2) the early
 * start: item i is sequence i, a copy of k, v whose row pos[i] is garbage
 * until the kernel stores the new k, v (taken from row pos[i], rope_dim 0),
 * adaptive spans of >= span positions; the stored rows are checked (-2 when
 * wrong). Returns 0, or -1 when no GPU / bad shape. */
int cuda_test_attention(const float *q, const uint16_t *k, const uint16_t *v, const int *pos,
                        int n_items, int n_ctx, int n_heads, int n_kv_heads, int head_dim, int span,
                        int decode, float *out);

#ifdef __cplusplus
}
#endif

#endif
