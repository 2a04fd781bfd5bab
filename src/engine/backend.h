/* backend.h - the compute backend interface (CPU or CUDA).
 *
 * A backend holds its own run state (activations, KV cache) for up to
 * `n_seq` independent sequences, each with `n_ctx` KV slots (positions
 * 0..n_ctx-1). The Model is shared and must outlive the backend.
 *
 * KV cache layout: docs/kv_layout.md (FP16, per layer, per sequence,
 * [pos][kv_head][head_dim]). */
#ifndef M40_BACKEND_H
#define M40_BACKEND_H

#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

typedef struct BackendParams {
    int n_ctx;          /* KV slots per sequence (<= 0: min(n_ctx_train, 4096)) */
    int n_seq;          /* concurrent sequences (>= 1) */
    int n_threads;      /* CPU threads (<= 0: all cores) */
    const char *device; /* "auto", "cpu", "cuda", "cuda:N" */
    int require_sm52;   /* refuse any GPU that is not sm_52 */
    int use_cublas;     /* 1 (default) or 0: custom GEMM kernels for prefill */
    int quiet;          /* no progress bar */
    /* A sequence's logits must not depend on the batch it is decoded in
     * (the server with --parallel > 1: a seed gives the same reply under any
     * load). The CUDA backend then keeps its integer-dot-product matvec
     * (one-vector steps only) off and decodes every batch size with the
     * FP32 kernels. Process-wide for the CUDA backend. */
    int batch_invariant;
} BackendParams;

void backend_params_default(BackendParams *p);

typedef struct Backend Backend;

struct Backend {
    char name[64];  /* "cpu" or "cuda:0" */
    char desc[256]; /* for the stats line: "cuda:0 Tesla M40 sm_52, cuBLAS on" */
    int is_gpu;
    int n_ctx, n_seq;
    const Model *model;

    /* Runs `n` tokens of sequence `seq` at positions pos..pos+n-1 (writing
     * their K/V into the cache; earlier positions must already be there).
     * logits: NULL, or n_vocab floats for the last token, or n*n_vocab
     * (row-major by position) when all_logits. Returns 0 or -1 (e set). */
    int (*prefill)(Backend *b, int seq, const int32_t *tokens, int n, int pos, float *logits,
                   int all_logits, Err *e);

    /* One decode step for n_batch sequences: sequence seq[i] gets token
     * tokens[i] at position pos[i]. logits: n_batch x n_vocab. The
     * sequences must be distinct. Returns 0 or -1. */
    int (*decode)(Backend *b, int n_batch, const int *seq, const int32_t *tokens, const int *pos,
                  float *logits, Err *e);

    /* Debug read-back of the KV cache (tests): copies K and V of `layer`,
     * sequence `seq`, positions [0, n_pos) as FP32, layout
     * [pos][kv_head][head_dim], into k and v. Returns 0 or -1. */
    int (*kv_read)(Backend *b, int layer, int seq, int n_pos, float *k, float *v, Err *e);

    /* Measures this device's ceilings for benchmarks: copy bandwidth in
     * GB/s (bytes read + written, large buffer copy) and FP32 GEMM rate in
     * GFLOP/s (large SGEMM). Returns 0 or -1. */
    int (*peak)(Backend *b, double *copy_gbs, double *gemm_gflops, Err *e);

    void (*free)(Backend *b);
};

/* Chooses and creates a backend per params->device:
 *   "cpu": the CPU backend.
 *   "cuda"/"cuda:N": the CUDA backend or an error (never a CPU fallback).
 *   "auto": CUDA when a usable device exists; otherwise logs ONE warning line
 *           saying that it runs on the CPU and why, and uses the CPU.
 * Logs one line naming the device. */
Backend *backend_create(const Model *m, const BackendParams *p, Err *e);
void backend_free(Backend *b);

Backend *backend_cpu_create(const Model *m, const BackendParams *p, Err *e);

/* CUDA backend (src/cuda). When built without CUDA, backend_cuda_create
 * fails with "built without CUDA" and backend_cuda_available returns 0. */
/* Returns 1 when a usable CUDA device exists; else 0 and why in `why`. */
int backend_cuda_available(char *why, int why_len);
Backend *backend_cuda_create(const Model *m, const BackendParams *p, Err *e);

#endif
