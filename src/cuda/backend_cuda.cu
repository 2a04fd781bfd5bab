/* backend_cuda.cu - the CUDA backend: weights uploaded once, FP16 KV cache on
 * the device, forward pass for prefill (GEMMs) and batched decode (matvec),
 * CUDA graphs for decode steps, peak measurement.
 *
 * Streams: prefill and decode each have their own stream and scratch. Every
 * Backend call is synchronous for the caller (logits are on the host when it
 * returns). In a decode step only tokens/seq ids/positions go up (one small
 * memcpy from pinned memory) and the logits come down. */
#include <algorithm>
#include <cmath>
#include <cstring>
#include <strings.h>
#include <cublas_v2.h>
#include <unistd.h>
#include <vector>

#include "cuda/cuda_common.cuh"
#include "cuda/cuda_test_hooks_core.h"

extern "C" {
#include "base/log.h"
#include "base/util.h"
#include "engine/backend.h"
}

#define PREFILL_UBATCH 512 /* tokens per prefill forward */
/* Decode attention: each token's positions are cut into about DECODE_SPLITS
 * spans of at least DECODE_SPAN positions (CudaAttnArgs.split_target). H200,
 * 7B F16 tg128: fixed 64-position spans 227 t/s, 16 positions 253 t/s; at
 * depth 1536, 24 spans of 64 beat 96 spans of 16 (207 vs 181 t/s: merge).
 * Adaptive, tg128 / depth 1536: 16 spans 263 / 185, 24 spans 262 / 202,
 * 32 spans 262 / 211 t/s. Env M40LLM_CUDA_DECODE_SPAN / _SPLITS override. */
#define DECODE_SPAN 16
#define DECODE_SPLITS 32
/* Batches of up to this many tokens (decode batches, short prefills) use
 * cuda_matvec, whose n > 1 kernel reads each weight once for all n vectors;
 * larger ones dequant + GEMM. Measured on the H200, 7B F16 decode x8: 778
 * t/s total through matvec against 195 through dequant + SGEMM.
 * Env M40LLM_CUDA_MATVEC_MAX (1..16) overrides. */
#define MATVEC_MAX_DEFAULT 16
#define PREFILL_SPLIT_MAX 8 /* attention spans per prefill token at most */
#define GEMM_TILE_ELEMS (16ll << 20)
#define LOGITS_BUF_ELEMS (16ll << 20)

struct DevW {
    const void *data; /* device */
    uint32_t type;
    int64_t rows, cols;
};

struct DevLayer {
    const float *attn_norm, *ffn_norm, *bq, *bk, *bv;
    DevW wq, wk, wv, wo, w_gate, w_up, w_down;
    /* wq|wk|wv and w_gate|w_up stored as one matrix each (rows stacked, same
     * type); wq.. are views into them. data NULL when the types differ. */
    DevW wqkv, w_gu;
};

/* Activations for up to `cap` tokens of one stream. */
struct Scratch {
    int cap;
    float *x;       /* (cap, dim) residual stream */
    float *xb;      /* (cap, max(dim, q_dim)) normed input / attention output */
    float *q;       /* (cap, q_dim + 2 kvd): one token's fused q|k|v output fits */
    float *k, *v;   /* (cap, kvd) */
    float *hg, *hu; /* (cap, 2 ffn) one token's fused gate|up output fits; (cap, ffn) */
    int *attn_cnt;  /* (cap, n_kv_heads) attention span counters, kept zero */
    float *logits;  /* (logit_rows, n_vocab) */
    int logit_rows;
    int32_t *ids; /* (3, cap): tokens, seq ids, positions */
    float *part_o, *part_ml;
    int span, n_split;
    CudaGemm gemm; /* tile + cuBLAS handle bound to this scratch's stream */
};

struct CudaBackend {
    Backend b; /* first: Backend * <-> CudaBackend * */
    int dev;
    cudaDeviceProp prop;
    ModelConfig c;
    int q_dim, kvd;
    float theta_scale; /* powf(rope_base, -2 / rope_dim), as the CPU backend */
    char *wbuf;        /* all weights, one allocation */
    DevW tok_embd, output;
    const float *output_norm;
    DevLayer *layers;
    __half *kv; /* docs/kv_layout.md */
    size_t kv_bytes;
    cudaStream_t s_prefill, s_decode;
    Scratch sp, sd;
    int matvec_max;                  /* batches <= this use cuda_matvec */
    cublasHandle_t cublas, cublas_d; /* prefill / decode streams */
    int32_t *h_ids;                  /* pinned (3, max(PREFILL_UBATCH, 16)) */
    float *h_logits;                 /* pinned (CUDA_MATVEC_MAX_BATCH, n_vocab) */
    int use_graphs;
    int fuse_glu; /* one token: gate|up matvec with SwiGLU in its epilogue (M40LLM_CUDA_FUSE_GLU) */
    int attn_early; /* decode attention starts before the PDL wait (M40LLM_CUDA_ATTN_EARLY) */
    cudaGraphExec_t graph[CUDA_MATVEC_MAX_BATCH + 1];
    int graph_seen[CUDA_MATVEC_MAX_BATCH + 1];
};

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Device bytes of a matrix after upload (F32 becomes F16). */
static size_t dev_matrix_bytes(const WTensor *t) {
    if (t->type == GGML_TYPE_F32) return (size_t)t->ne[0] * (size_t)t->ne[1] * 2;
    return (size_t)t->nbytes;
}

/* ------------------------------------------------------------ scratch */

static size_t scratch_bytes(const ModelConfig *c, int cap, int logit_rows, int n_split) {
    const int q_dim = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const size_t xb = (size_t)std::max(c->dim, q_dim);
    size_t f = (size_t)cap * (c->dim + xb + q_dim + 4 * kvd + 3 * (size_t)c->ffn_dim);
    f += (size_t)cap * c->n_kv_heads;
    f += (size_t)logit_rows * c->n_vocab;
    f += (size_t)cap * c->n_heads * n_split * (c->head_dim + 2);
    return f * sizeof(float) + 3 * (size_t)cap * sizeof(int32_t) + 16 * 256;
}

static void scratch_alloc(Scratch *S, const ModelConfig *c, int cap, int logit_rows, int span,
                          int n_split) {
    const int q_dim = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    const size_t xb = (size_t)std::max(c->dim, q_dim);
    S->cap = cap;
    S->logit_rows = logit_rows;
    S->span = span;
    S->n_split = n_split;
    CUDA_CHECK(cudaMalloc(&S->x, sizeof(float) * cap * c->dim));
    CUDA_CHECK(cudaMalloc(&S->xb, sizeof(float) * cap * xb));
    CUDA_CHECK(cudaMalloc(&S->q, sizeof(float) * cap * (q_dim + 2 * kvd)));
    CUDA_CHECK(cudaMalloc(&S->k, sizeof(float) * cap * kvd));
    CUDA_CHECK(cudaMalloc(&S->v, sizeof(float) * cap * kvd));
    CUDA_CHECK(cudaMalloc(&S->hg, sizeof(float) * cap * 2 * (size_t)c->ffn_dim));
    CUDA_CHECK(cudaMalloc(&S->hu, sizeof(float) * cap * (size_t)c->ffn_dim));
    CUDA_CHECK(cudaMalloc(&S->logits, sizeof(float) * (size_t)logit_rows * c->n_vocab));
    CUDA_CHECK(cudaMalloc(&S->ids, sizeof(int32_t) * 3 * cap));
    CUDA_CHECK(cudaMalloc(&S->part_o, sizeof(float) * cap * c->n_heads * n_split * c->head_dim));
    CUDA_CHECK(cudaMalloc(&S->part_ml, sizeof(float) * cap * c->n_heads * n_split * 2));
    CUDA_CHECK(cudaMalloc(&S->attn_cnt, sizeof(int) * cap * c->n_kv_heads));
    CUDA_CHECK(cudaMemset(S->attn_cnt, 0, sizeof(int) * cap * c->n_kv_heads));
}

static void scratch_free(Scratch *S) {
    float **fs[] = {&S->x,  &S->xb, &S->q,      &S->k,      &S->v,
                    &S->hg, &S->hu, &S->logits, &S->part_o, &S->part_ml};
    for (float **p : fs) {
        if (*p) cudaFree(*p);
        *p = NULL;
    }
    if (S->ids) cudaFree(S->ids);
    S->ids = NULL;
    if (S->attn_cnt) cudaFree(S->attn_cnt);
    S->attn_cnt = NULL;
}

/* ------------------------------------------------------------ forward */

/* Y (n, rows) = X W^T (+ bias) (+= Y): matvec for small n, GEMM otherwise. */
static void matmul(CudaBackend *cb, Scratch *S, const DevW *w, const float *X, int n, float *Y,
                   const float *bias, int accumulate, cudaStream_t s) {
    if (n <= cb->matvec_max)
        cuda_matvec(w->type, w->data, w->rows, w->cols, X, n, Y, bias, accumulate, s);
    else
        cuda_gemm_w(&S->gemm, w->type, w->data, w->rows, w->cols, X, n, Y, bias, accumulate, s);
}

/* Runs the transformer layers for n tokens whose ids, sequence ids and
 * positions are in S->ids (device); leaves the final hidden states in S->x.
 * decode: every token is a different sequence (RoPE and the KV store are
 * fused into the attention kernel). One token: Q/K/V and gate/up are one
 * matvec each (fused matrices). */
static void forward_layers(CudaBackend *cb, Scratch *S, int n, int n_split, int decode,
                           cudaStream_t s) {
    const ModelConfig *c = &cb->c;
    const int32_t *d_tok = S->ids, *d_seq = S->ids + S->cap, *d_pos = S->ids + 2 * S->cap;
    cuda_get_rows(cb->tok_embd.type, cb->tok_embd.data, c->dim, d_tok, n, S->x, s);
    CudaRopeParams rp = {c->n_heads,   c->n_kv_heads,   c->head_dim,  c->rope_dim,
                         c->rope_neox, cb->theta_scale, c->rope_scale};
    const size_t layer_stride = (size_t)cb->b.n_seq * 2 * cb->b.n_ctx * cb->kvd;
    for (int l = 0; l < c->n_layers; l++) {
        const DevLayer *L = &cb->layers[l];
        cuda_rmsnorm(S->x, L->attn_norm, S->xb, n, c->dim, c->norm_eps, s);
        float *q = S->q, *k = S->k, *v = S->v;
        int64_t qkv_stride = 0;
        if ((n == 1 || decode) && L->wqkv.data && n <= cb->matvec_max) {
            /* one matvec over the stacked q|k|v rows; decode attention reads the
             * interleaved (n, q_dim + 2 kvd) output through qkv_stride */
            k = q + cb->q_dim;
            v = k + cb->kvd;
            qkv_stride = n > 1 ? cb->q_dim + 2 * cb->kvd : 0;
            matmul(cb, S, &L->wqkv, S->xb, n, q, L->bq, 0, s); /* bq|bk|bv contiguous */
        } else {
            matmul(cb, S, &L->wq, S->xb, n, q, L->bq, 0, s);
            matmul(cb, S, &L->wk, S->xb, n, k, L->bk, 0, s);
            matmul(cb, S, &L->wv, S->xb, n, v, L->bv, 0, s);
        }
        CudaKvView kv = {cb->kv + l * layer_stride, cb->b.n_ctx, cb->kvd};
        if (!decode) cuda_rope_store_kv(&rp, q, k, v, n, d_pos, d_seq, kv, s);
        CudaAttnArgs a;
        a.q = q;
        a.kv = kv;
        a.d_pos = d_pos;
        a.d_seq = d_seq;
        a.n_items = n;
        a.n_heads = c->n_heads;
        a.n_kv_heads = c->n_kv_heads;
        a.head_dim = c->head_dim;
        a.span = S->span;
        a.n_split = n_split;
        a.split_target = decode ? n_split : 0;
        a.part_o = S->part_o;
        a.part_ml = S->part_ml;
        a.out = S->xb;
        a.counters = S->attn_cnt;
        a.fuse_rope = decode;
        a.early = decode && cb->attn_early;
        a.rope = rp;
        a.k_new = k;
        a.v_new = v;
        a.qkv_stride = qkv_stride;
        cuda_attention(&a, s);
        matmul(cb, S, &L->wo, S->xb, n, S->x, NULL, 1, s);
        cuda_rmsnorm(S->x, L->ffn_norm, S->xb, n, c->dim, c->norm_eps, s);
        float *h = S->hg;
        if (n == 1 && L->w_gu.data && n <= cb->matvec_max) {
            /* SwiGLU in the gate|up matvec's epilogue when the fast kernel takes the type */
            if (!cb->fuse_glu || !cuda_matvec_glu(L->w_gu.type, L->w_gu.data, c->ffn_dim,
                                                  L->w_gu.cols, S->xb, S->hg, s)) {
                matmul(cb, S, &L->w_gu, S->xb, n, S->hg, NULL, 0, s);
                cuda_swiglu(S->hg, S->hg + c->ffn_dim, S->hg, c->ffn_dim, s);
            }
        } else if (L->w_gu.data && n <= cb->matvec_max) {
            /* a few tokens: one batched matvec over the stacked gate|up rows */
            matmul(cb, S, &L->w_gu, S->xb, n, S->hg, NULL, 0, s);
            cuda_swiglu_stacked(S->hg, n, c->ffn_dim, S->hu, s);
            h = S->hu;
        } else {
            matmul(cb, S, &L->w_gate, S->xb, n, S->hg, NULL, 0, s);
            matmul(cb, S, &L->w_up, S->xb, n, S->hu, NULL, 0, s);
            cuda_swiglu(S->hg, S->hu, S->hg, (int64_t)n * c->ffn_dim, s);
        }
        matmul(cb, S, &L->w_down, h, n, S->x, NULL, 1, s);
    }
}

/* Final norm + output rows [r0, r0+n) of S->x into S->logits (n <= logit_rows). */
static void forward_logits(CudaBackend *cb, Scratch *S, int r0, int n, cudaStream_t s) {
    const ModelConfig *c = &cb->c;
    cuda_rmsnorm(S->x + (size_t)r0 * c->dim, cb->output_norm, S->xb, n, c->dim, c->norm_eps, s);
    matmul(cb, S, &cb->output, S->xb, n, S->logits, NULL, 0, s);
}

/* ------------------------------------------------------------ Backend API */

static int cuda_prefill(Backend *b, int seq, const int32_t *tokens, int n, int pos, float *logits,
                        int all_logits, Err *e) {
    CudaBackend *cb = (CudaBackend *)b;
    const ModelConfig *c = &cb->c;
    if (seq < 0 || seq >= b->n_seq)
        return err_set(e, "prefill: sequence %d out of range (n_seq %d)", seq, b->n_seq);
    if (n <= 0) return err_set(e, "prefill: no tokens");
    if (pos < 0 || (int64_t)pos + n > b->n_ctx)
        return err_set(e, "prefill: positions %d..%d exceed the context (%d)", pos, pos + n - 1,
                       b->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return err_set(e, "prefill: token %d (id %d) out of range (vocab %d)", i, tokens[i],
                           c->n_vocab);
    CUDA_CHECK(cudaSetDevice(cb->dev));
    Scratch *S = &cb->sp;
    cudaStream_t s = cb->s_prefill;
    for (int u0 = 0; u0 < n; u0 += S->cap) {
        const int u = std::min(S->cap, n - u0);
        const int last_pos = pos + u0 + u - 1;
        const int n_split = (last_pos + 1 + S->span - 1) / S->span;
        CUDA_CHECK(cudaStreamSynchronize(s)); /* h_ids is reused */
        for (int i = 0; i < u; i++) {
            cb->h_ids[i] = tokens[u0 + i];
            cb->h_ids[S->cap + i] = seq;
            cb->h_ids[2 * S->cap + i] = pos + u0 + i;
        }
        CUDA_CHECK(cudaMemcpyAsync(S->ids, cb->h_ids, sizeof(int32_t) * 3 * S->cap,
                                   cudaMemcpyHostToDevice, s));
        forward_layers(cb, S, u, n_split, 0, s);
        if (logits && all_logits) {
            for (int r = 0; r < u; r += S->logit_rows) {
                const int nr = std::min(S->logit_rows, u - r);
                forward_logits(cb, S, r, nr, s);
                CUDA_CHECK(cudaMemcpyAsync(logits + (size_t)(u0 + r) * c->n_vocab, S->logits,
                                           sizeof(float) * nr * c->n_vocab, cudaMemcpyDeviceToHost,
                                           s));
            }
        } else if (logits && u0 + u == n) {
            forward_logits(cb, S, u - 1, 1, s);
            CUDA_CHECK(cudaMemcpyAsync(logits, S->logits, sizeof(float) * c->n_vocab,
                                       cudaMemcpyDeviceToHost, s));
        }
    }
    CUDA_CHECK(cudaStreamSynchronize(s));
    return 0;
}

/* One decode step for nb <= CUDA_MATVEC_MAX_BATCH sequences whose ids are in
 * cb->h_ids (pinned, layout (3, sd.cap)); logits land in cb->h_logits. */
static void decode_enqueue(CudaBackend *cb, int nb, cudaStream_t s) {
    Scratch *S = &cb->sd;
    CUDA_CHECK(cudaMemcpyAsync(S->ids, cb->h_ids + 3 * PREFILL_UBATCH, sizeof(int32_t) * 3 * S->cap,
                               cudaMemcpyHostToDevice, s));
    forward_layers(cb, S, nb, S->n_split, 1, s);
    forward_logits(cb, S, 0, nb, s);
    CUDA_CHECK(cudaMemcpyAsync(cb->h_logits, S->logits, sizeof(float) * nb * cb->c.n_vocab,
                               cudaMemcpyDeviceToHost, s));
}

static void decode_run(CudaBackend *cb, int nb) {
    cudaStream_t s = cb->s_decode;
    if (cb->use_graphs) {
        if (cb->graph[nb]) {
            CUDA_CHECK(cudaGraphLaunch(cb->graph[nb], s));
            return;
        }
        if (nb <= cb->matvec_max &&
            cb->graph_seen[nb]++ >= 1) { /* first run warm (lazy init), then capture */
            cudaGraph_t g = NULL;
            cudaError_t err = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
            if (err == cudaSuccess) {
                decode_enqueue(cb, nb, s);
                err = cudaStreamEndCapture(s, &g);
            }
            cudaGraphExec_t ge = NULL;
            if (err == cudaSuccess) err = cudaGraphInstantiateWithFlags(&ge, g, 0);
            if (g) cudaGraphDestroy(g);
            if (err == cudaSuccess) {
                cb->graph[nb] = ge;
                CUDA_CHECK(cudaGraphLaunch(ge, s));
                return;
            }
            LOG_WARN("cuda: decode graph capture failed (%s); running without graphs",
                     cudaGetErrorName(err));
            cudaGetLastError();
            cb->use_graphs = 0;
        }
    }
    decode_enqueue(cb, nb, s);
}

static int cuda_decode(Backend *b, int n_batch, const int *seq, const int32_t *tokens,
                       const int *pos, float *logits, Err *e) {
    CudaBackend *cb = (CudaBackend *)b;
    const ModelConfig *c = &cb->c;
    if (n_batch <= 0 || n_batch > b->n_seq)
        return err_set(e, "decode: batch of %d sequences (n_seq %d)", n_batch, b->n_seq);
    for (int i = 0; i < n_batch; i++) {
        if (seq[i] < 0 || seq[i] >= b->n_seq)
            return err_set(e, "decode: sequence %d out of range (n_seq %d)", seq[i], b->n_seq);
        if (pos[i] < 0 || pos[i] >= b->n_ctx)
            return err_set(e, "decode: sequence %d: position %d outside the context (%d)", seq[i],
                           pos[i], b->n_ctx);
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return err_set(e, "decode: token id %d out of range (vocab %d)", tokens[i], c->n_vocab);
        for (int j = 0; j < i; j++)
            if (seq[j] == seq[i])
                return err_set(e, "decode: sequence %d appears twice in one batch", seq[i]);
    }
    CUDA_CHECK(cudaSetDevice(cb->dev));
    const int cap = cb->sd.cap;
    int32_t *hi = cb->h_ids + 3 * PREFILL_UBATCH;
    for (int b0 = 0; b0 < n_batch; b0 += cap) {
        const int nb = std::min(cap, n_batch - b0);
        for (int i = 0; i < nb; i++) {
            hi[i] = tokens[b0 + i];
            hi[cap + i] = seq[b0 + i];
            hi[2 * cap + i] = pos[b0 + i];
        }
        decode_run(cb, nb);
        CUDA_CHECK(cudaStreamSynchronize(cb->s_decode));
        memcpy(logits + (size_t)b0 * c->n_vocab, cb->h_logits, sizeof(float) * nb * c->n_vocab);
    }
    return 0;
}

static int cuda_kv_read(Backend *b, int layer, int seq, int n_pos, float *k, float *v, Err *e) {
    CudaBackend *cb = (CudaBackend *)b;
    if (layer < 0 || layer >= cb->c.n_layers || seq < 0 || seq >= b->n_seq || n_pos < 0 ||
        n_pos > b->n_ctx)
        return err_set(e, "kv_read: layer %d seq %d n_pos %d out of range", layer, seq, n_pos);
    CUDA_CHECK(cudaSetDevice(cb->dev));
    CUDA_CHECK(cudaDeviceSynchronize());
    const size_t n = (size_t)n_pos * cb->kvd;
    std::vector<uint16_t> h(n);
    for (int kind = 0; kind < 2; kind++) {
        const __half *src =
            cb->kv + ((size_t)(layer * b->n_seq + seq) * 2 + kind) * b->n_ctx * cb->kvd;
        CUDA_CHECK(cudaMemcpy(h.data(), src, n * 2, cudaMemcpyDeviceToHost));
        float *dst = kind ? v : k;
        for (size_t i = 0; i < n; i++) dst[i] = fp16_to_f32(h[i]);
    }
    return 0;
}

static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

static int cuda_peak(Backend *b, double *copy_gbs, double *gemm_gflops, Err *e) {
    CudaBackend *cb = (CudaBackend *)b;
    CUDA_CHECK(cudaSetDevice(cb->dev));
    cudaStream_t s = cb->s_prefill;
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    int rc = 0;
    /* copy bandwidth: ~1 GB buffer, bytes read + written */
    size_t bytes = (size_t)1 << 30;
    char *src = NULL, *dst = NULL;
    while (bytes >= ((size_t)64 << 20)) {
        if (cudaMalloc(&src, bytes) == cudaSuccess) {
            if (cudaMalloc(&dst, bytes) == cudaSuccess) break;
            cudaFree(src);
            src = NULL;
        }
        cudaGetLastError();
        bytes /= 2;
    }
    if (!dst) {
        rc = err_set(e, "peak: not enough device memory for the copy test");
        goto done;
    }
    {
        CUDA_CHECK(cudaMemsetAsync(src, 1, bytes, s));
        std::vector<float> t;
        for (int i = 0; i < 7; i++) {
            CUDA_CHECK(cudaEventRecord(e0, s));
            CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
            CUDA_CHECK(cudaEventRecord(e1, s));
            CUDA_CHECK(cudaEventSynchronize(e1));
            float ms;
            CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
            if (i > 0) t.push_back(ms);
        }
        if (copy_gbs) *copy_gbs = 2.0 * bytes / (median(t) * 1e-3) / 1e9;
        cudaFree(src);
        cudaFree(dst);
    }
    {
        /* FP32 SGEMM on random data: 4096^3 (8192^3 on fast GPUs) */
        int N = cb->prop.major >= 8 ? 8192 : 4096;
        float *A = NULL, *B = NULL, *C = NULL;
        const size_t nb = sizeof(float) * (size_t)N * N;
        if (cudaMalloc(&A, nb) != cudaSuccess || cudaMalloc(&B, nb) != cudaSuccess ||
            cudaMalloc(&C, nb) != cudaSuccess) {
            cudaGetLastError();
            if (A) cudaFree(A);
            if (B) cudaFree(B);
            rc = err_set(e, "peak: not enough device memory for the SGEMM test");
            goto done;
        }
        cuda_fill_random(A, (int64_t)N * N, 1, s);
        cuda_fill_random(B, (int64_t)N * N, 2, s);
        cublasHandle_t h = cb->cublas;
        int own = 0;
        if (!h) {
            if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
                rc = err_set(e, "peak: cublasCreate failed");
                goto gemm_done;
            }
            own = 1;
        }
        cublasSetStream(h, s);
        {
            const float alpha = 1.0f, beta = 0.0f;
            std::vector<float> t;
            for (int i = 0; i < 6; i++) {
                CUDA_CHECK(cudaEventRecord(e0, s));
                cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &alpha, A, N, B, N, &beta, C, N);
                CUDA_CHECK(cudaEventRecord(e1, s));
                CUDA_CHECK(cudaEventSynchronize(e1));
                float ms;
                CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
                if (i > 0) t.push_back(ms);
            }
            if (gemm_gflops) *gemm_gflops = 2.0 * N * (double)N * N / (median(t) * 1e-3) / 1e9;
        }
        if (own) cublasDestroy(h);
    gemm_done:
        cudaFree(A);
        cudaFree(B);
        cudaFree(C);
    }
done:
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return rc;
}

static void cuda_free_backend(Backend *b) {
    CudaBackend *cb = (CudaBackend *)b;
    if (!cb) return;
    cudaSetDevice(cb->dev);
    cudaDeviceSynchronize();
    for (int i = 0; i <= CUDA_MATVEC_MAX_BATCH; i++)
        if (cb->graph[i]) cudaGraphExecDestroy(cb->graph[i]);
    scratch_free(&cb->sp);
    scratch_free(&cb->sd);
    if (cb->sp.gemm.tile) cudaFree(cb->sp.gemm.tile);
    if (cb->sd.gemm.tile) cudaFree(cb->sd.gemm.tile);
    if (cb->cublas) cublasDestroy(cb->cublas);
    if (cb->cublas_d) cublasDestroy(cb->cublas_d);
    if (cb->kv) cudaFree(cb->kv);
    if (cb->wbuf) cudaFree(cb->wbuf);
    if (cb->h_ids) cudaFreeHost(cb->h_ids);
    if (cb->h_logits) cudaFreeHost(cb->h_logits);
    if (cb->s_prefill) cudaStreamDestroy(cb->s_prefill);
    if (cb->s_decode) cudaStreamDestroy(cb->s_decode);
    free(cb->layers);
    free(cb);
}

/* ------------------------------------------------------------ weights */

struct Uploader {
    char *base; /* device */
    size_t off; /* next free byte */
    size_t done, total;
    int bar; /* draw a progress bar */
    int last_pct;
    const char *name;
    std::vector<uint16_t> conv;
    std::vector<uint8_t> pack; /* staging for device layouts (cuda_repack_rows) */
};

static void progress(Uploader *u, size_t add) {
    u->done += add;
    if (!u->bar) return;
    int pct = u->total ? (int)(100.0 * u->done / u->total) : 100;
    if (pct == u->last_pct) return;
    u->last_pct = pct;
    char bar[41];
    for (int i = 0; i < 40; i++) bar[i] = i < pct * 40 / 100 ? '#' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\rloading weights to %s [%s] %3d%%", u->name, bar, pct);
    if (pct >= 100) fprintf(stderr, "\n");
}

/* Copies n bytes to the next free device bytes; the following upload starts
 * `align` bytes aligned (256, or less to keep stacked matrices contiguous).
 * A dev_type with a layout flag (CUDA_TYPE_SPLIT; src = rows of `cols`
 * columns) repacks each chunk of whole rows on the way (cuda_repack_rows). */
static const void *upload_raw(Uploader *u, const void *src, size_t n, size_t align = 256,
                              uint32_t dev_type = 0, int64_t cols = 0) {
    void *dst = u->base + u->off;
    u->off = align_up(u->off + n, align);
    const bool pack = dev_type & CUDA_TYPE_SPLIT;
    const size_t rb = pack ? ggml_row_size(dev_type & ~CUDA_TYPE_SPLIT, (uint64_t)cols) : 1;
    const size_t chunk = std::max(rb, ((size_t)64 << 20) / rb * rb);
    if (pack) u->pack.resize(std::min(chunk, n));
    for (size_t o = 0; o < n; o += chunk) {
        size_t m = std::min(chunk, n - o);
        const void *from = (const char *)src + o;
        if (pack) {
            cuda_repack_rows(dev_type, cols, (int64_t)(m / rb), from, u->pack.data());
            from = u->pack.data();
        }
        CUDA_CHECK(cudaMemcpy((char *)dst + o, from, m, cudaMemcpyHostToDevice));
        progress(u, m);
    }
    return dst;
}

static DevW upload_matrix(Uploader *u, const WTensor *t, size_t align = 256) {
    DevW w;
    w.rows = t->ne[1];
    w.cols = t->ne[0];
    if (t->type == GGML_TYPE_F32) {
        const size_t n = (size_t)w.rows * w.cols;
        u->conv.resize(n);
        const float *f = (const float *)t->data;
        for (size_t i = 0; i < n; i++) u->conv[i] = f32_to_fp16(f[i]);
        w.type = GGML_TYPE_F16;
        w.data = upload_raw(u, u->conv.data(), n * 2, align);
        u->done += n * 2; /* the F32 -> F16 conversion is half of the work */
    } else {
        w.type = cuda_upload_type(t->type, w.cols); /* may be a device layout */
        w.data = upload_raw(u, t->data, t->nbytes, align, w.type, w.cols);
    }
    return w;
}

static uint32_t dev_type(const WTensor *t) {
    return t->type == GGML_TYPE_F32 ? (uint32_t)GGML_TYPE_F16 : cuda_upload_type(t->type, t->ne[0]);
}

/* Uploads n matrices of one device type and width as one matrix with their
 * rows stacked (rows are independent in every type, so views[i] are ordinary
 * matrices); returns the stacked matrix. When the types or widths differ they
 * are uploaded one by one and the result has data NULL. */
static DevW upload_stacked(Uploader *u, const WTensor *const *ts, int n, DevW *views) {
    DevW f;
    memset(&f, 0, sizeof f);
    int same = 1;
    for (int i = 1; i < n; i++)
        if (dev_type(ts[i]) != dev_type(ts[0]) || ts[i]->ne[0] != ts[0]->ne[0]) same = 0;
    if (!same) {
        for (int i = 0; i < n; i++) views[i] = upload_matrix(u, ts[i]);
        return f;
    }
    const size_t start = u->off;
    for (int i = 0; i < n; i++) {
        views[i] = upload_matrix(u, ts[i], 1);
        f.rows += views[i].rows;
    }
    u->off = align_up(u->off, 256);
    f.data = u->base + start;
    f.type = views[0].type;
    f.cols = views[0].cols;
    return f;
}

static const float *upload_vector(Uploader *u, const WTensor *t) {
    if (!t->data) return NULL;
    return (const float *)upload_raw(u, t->data, t->nbytes);
}

/* Checks the type of every matrix and sums device bytes. */
static int weights_plan(const Model *m, size_t *bytes, Err *e) {
    std::vector<const WTensor *> mats = {&m->tok_embd};
    if (m->output.data != m->tok_embd.data) mats.push_back(&m->output);
    std::vector<const WTensor *> vecs = {&m->output_norm};
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        for (const WTensor *t : {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down})
            mats.push_back(t);
        for (const WTensor *t : {&L->attn_norm, &L->ffn_norm, &L->bq, &L->bk, &L->bv})
            vecs.push_back(t);
    }
    size_t total = 0;
    for (const WTensor *t : mats) {
        if (t->type != GGML_TYPE_F32 && !cuda_matvec_supported(t->type))
            return err_set(e, "tensor %s: type %s is not supported by the CUDA backend",
                           t->name ? t->name : "?", ggml_type_name(t->type));
        total += align_up(dev_matrix_bytes(t), 256);
    }
    for (const WTensor *t : vecs) {
        if (!t->data) continue;
        if (t->type != GGML_TYPE_F32)
            return err_set(e, "tensor %s: expected F32, found %s", t->name ? t->name : "?",
                           ggml_type_name(t->type));
        total += align_up(t->nbytes, 256);
    }
    *bytes = total;
    return 0;
}

static double gib(size_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

extern "C" Backend *backend_cuda_create(const Model *m, const BackendParams *p, Err *e) {
    char why[512];
    const ModelConfig *c = &m->cfg;
    const char *device = p->device;
    if (!device || !strcmp(device, "cpu") || !strcmp(device, "cuda")) device = "auto";
    int dev = cuda_select_device(device, p->require_sm52, why, sizeof why);
    if (dev < 0) {
        err_set(e, "%s", why);
        return NULL;
    }
    if (cuda_probe_device(dev, why, sizeof why) != 0) {
        err_set(e, "%s", why);
        return NULL;
    }
    const int hd = c->head_dim;
    if (hd > 32 * 8 || c->n_heads % c->n_kv_heads != 0 ||
        (c->n_heads / c->n_kv_heads) * hd > CUDA_ATTN_MAX_GROUP_DIMS) {
        err_set(e,
                "CUDA backend: head_dim %d with %d heads / %d kv heads is not supported "
                "(head_dim <= 256, heads per kv head x head_dim <= %d)",
                hd, c->n_heads, c->n_kv_heads, CUDA_ATTN_MAX_GROUP_DIMS);
        return NULL;
    }

    CudaBackend *cb = (CudaBackend *)xcalloc(1, sizeof *cb);
    cb->dev = dev;
    cb->c = *c;
    cb->q_dim = c->n_heads * hd;
    cb->kvd = c->n_kv_heads * hd;
    cb->theta_scale = c->rope_dim > 0 ? powf(c->rope_base, -2.0f / (float)c->rope_dim) : 1.0f;
    CUDA_CHECK(cudaGetDeviceProperties(&cb->prop, dev));
    Backend *b = &cb->b;
    b->is_gpu = 1;
    b->model = m;
    b->n_seq = p->n_seq >= 1 ? p->n_seq : 1;
    b->n_ctx = p->n_ctx > 0 ? p->n_ctx : std::min(c->n_ctx_train > 0 ? c->n_ctx_train : 4096, 4096);
    b->prefill = cuda_prefill;
    b->decode = cuda_decode;
    b->kv_read = cuda_kv_read;
    b->peak = cuda_peak;
    b->free = cuda_free_backend;
    snprintf(b->name, sizeof b->name, "cuda:%d", dev);
    const int use_cublas = p->use_cublas && !env_off("M40LLM_ENABLE_CUBLAS");
    cb->use_graphs = !env_off("M40LLM_CUDA_GRAPHS");
    cb->fuse_glu = !env_off("M40LLM_CUDA_FUSE_GLU");
    cb->attn_early = !env_off("M40LLM_CUDA_ATTN_EARLY");
    CUDA_CHECK(cudaSetDevice(dev));
    cuda_pdl_on = cb->prop.major >= 9 && !env_off("M40LLM_CUDA_PDL") && cuda_pdl_supported();
    snprintf(b->desc, sizeof b->desc, "cuda:%d %s sm_%d%d, cuBLAS %s", dev, cb->prop.name,
             cb->prop.major, cb->prop.minor, use_cublas ? "on" : "off");

    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    LOG_INFO("GPU %d: %s (sm_%d%d, %.0f GB), driver %d.%d, runtime %d.%d", dev, cb->prop.name,
             cb->prop.major, cb->prop.minor, cb->prop.totalGlobalMem / 1e9, drv / 1000,
             (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);

    /* the integer dot products serve one-vector steps only: batched steps
     * would then round differently from single ones (set per backend: the
     * switch is process-wide) */
    cuda_matvec_set_dp(p->batch_invariant ? 0 : -1);
    LOG_INFO("GPU %d: quantized matvec: %s", dev,
             cuda_matvec_dp_active()
                 ? "integer dot products (dp2a, int16 activations) for Q8_0/Q4_0, FP32 otherwise"
             : p->batch_invariant ? "FP32 kernels (batch-invariant decode for parallel sequences)"
                                  : "FP32 kernels");

    /* sizes, checked before allocating anything */
    size_t w_bytes = 0;
    if (weights_plan(m, &w_bytes, e) != 0) {
        free(cb);
        return NULL;
    }
    cb->kv_bytes = (size_t)c->n_layers * b->n_seq * 2 * (size_t)b->n_ctx * cb->kvd * 2;
    const int pre_span = std::max(256, (b->n_ctx + PREFILL_SPLIT_MAX - 1) / PREFILL_SPLIT_MAX);
    const int pre_split = (b->n_ctx + pre_span - 1) / pre_span;
    const int dec_cap = std::min(b->n_seq, CUDA_MATVEC_MAX_BATCH);
    int dec_span = DECODE_SPAN, dec_split = DECODE_SPLITS; /* minimum span, spans */
    if (getenv("M40LLM_CUDA_DECODE_SPAN")) {
        const int v = atoi(getenv("M40LLM_CUDA_DECODE_SPAN"));
        dec_span = v < 16 ? 16 : v > 4096 ? 4096 : v;
    }
    if (getenv("M40LLM_CUDA_DECODE_SPLITS")) {
        const int v = atoi(getenv("M40LLM_CUDA_DECODE_SPLITS"));
        dec_split = v < 1 ? 1 : v > 256 ? 256 : v;
    }
    cb->matvec_max = MATVEC_MAX_DEFAULT;
    if (getenv("M40LLM_CUDA_MATVEC_MAX")) {
        int v = atoi(getenv("M40LLM_CUDA_MATVEC_MAX"));
        cb->matvec_max = v < 1 ? 1 : v > CUDA_MATVEC_MAX_BATCH ? CUDA_MATVEC_MAX_BATCH : v;
    }
    const int dec_gemm = dec_cap > cb->matvec_max; /* decode batches may need the GEMM path */
    const int pre_logit_rows =
        (int)std::max<int64_t>(1, std::min<int64_t>(PREFILL_UBATCH, LOGITS_BUF_ELEMS / c->n_vocab));
    int64_t max_cols = std::max<int64_t>({c->dim, (int64_t)cb->q_dim, (int64_t)c->ffn_dim});
    int64_t tile_elems = std::max<int64_t>(GEMM_TILE_ELEMS, max_cols * 64);
    const size_t scratch = scratch_bytes(c, PREFILL_UBATCH, pre_logit_rows, pre_split) +
                           scratch_bytes(c, dec_cap, dec_cap, dec_split) +
                           (size_t)tile_elems * sizeof(float) * (dec_gemm ? 2 : 1);
    const size_t margin = (size_t)256 << 20; /* cuBLAS workspace, CUDA graphs, fragmentation */
    const size_t need = w_bytes + cb->kv_bytes + scratch + margin;
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaSetDevice(dev));
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (need > free_b) {
        err_set(e,
                "cuda:%d %s: not enough device memory: need %.2f GiB (weights %.2f, KV cache "
                "%.2f for %d x %d positions, scratch %.2f, reserve %.2f), %.2f GiB free of "
                "%.2f; use a smaller --ctx or --parallel, or a smaller quantization",
                dev, cb->prop.name, gib(need), gib(w_bytes), gib(cb->kv_bytes), b->n_seq, b->n_ctx,
                gib(scratch), gib(margin), gib(free_b), gib(total_b));
        free(cb);
        return NULL;
    }

    CUDA_CHECK(cudaStreamCreateWithFlags(&cb->s_prefill, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamCreateWithFlags(&cb->s_decode, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&cb->wbuf, w_bytes));
    CUDA_CHECK(cudaMalloc(&cb->kv, cb->kv_bytes));
    CUDA_CHECK(cudaMemset(cb->kv, 0, cb->kv_bytes));
    scratch_alloc(&cb->sp, c, PREFILL_UBATCH, pre_logit_rows, pre_span, pre_split);
    scratch_alloc(&cb->sd, c, dec_cap, dec_cap, dec_span, dec_split);
    CUDA_CHECK(cudaMalloc(&cb->sp.gemm.tile, sizeof(float) * tile_elems));
    cb->sp.gemm.tile_elems = tile_elems;
    if (dec_gemm) {
        CUDA_CHECK(cudaMalloc(&cb->sd.gemm.tile, sizeof(float) * tile_elems));
        cb->sd.gemm.tile_elems = tile_elems;
    }
    CUDA_CHECK(cudaMallocHost(&cb->h_ids, sizeof(int32_t) * 3 * (PREFILL_UBATCH + dec_cap)));
    memset(cb->h_ids, 0, sizeof(int32_t) * 3 * (PREFILL_UBATCH + dec_cap));
    CUDA_CHECK(cudaMallocHost(&cb->h_logits, sizeof(float) * dec_cap * (size_t)c->n_vocab));
    if (use_cublas) {
        if (cublasCreate(&cb->cublas) != CUBLAS_STATUS_SUCCESS) {
            err_set(e, "cuda:%d: cublasCreate failed", dev);
            cuda_free_backend(b);
            return NULL;
        }
        cublasSetMathMode(cb->cublas, CUBLAS_DEFAULT_MATH); /* FP32, no TF32 */
        cb->sp.gemm.cublas = cb->cublas;
        if (dec_gemm) {
            if (cublasCreate(&cb->cublas_d) != CUBLAS_STATUS_SUCCESS) {
                err_set(e, "cuda:%d: cublasCreate failed", dev);
                cuda_free_backend(b);
                return NULL;
            }
            cublasSetMathMode(cb->cublas_d, CUBLAS_DEFAULT_MATH);
            cb->sd.gemm.cublas = cb->cublas_d;
        }
    }

    /* weights */
    Uploader u;
    u.base = cb->wbuf;
    u.off = 0;
    u.done = 0;
    u.total = 0;
    u.bar = isatty(2) && !p->quiet;
    u.last_pct = -1;
    u.name = b->name;
    {
        size_t tot = 0;
        auto add = [&](const WTensor *t) {
            if (t->data) tot += t->nbytes;
        };
        add(&m->tok_embd);
        if (m->output.data != m->tok_embd.data) add(&m->output);
        add(&m->output_norm);
        for (int l = 0; l < c->n_layers; l++) {
            const LayerWeights *L = &m->layers[l];
            for (const WTensor *t :
                 {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down, &L->attn_norm,
                  &L->ffn_norm, &L->bq, &L->bk, &L->bv})
                add(t);
        }
        u.total = tot;
    }
    cb->tok_embd = upload_matrix(&u, &m->tok_embd);
    cb->output = m->output.data == m->tok_embd.data ? cb->tok_embd : upload_matrix(&u, &m->output);
    cb->output_norm = upload_vector(&u, &m->output_norm);
    cb->layers = (DevLayer *)xcalloc((size_t)c->n_layers, sizeof(DevLayer));
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        DevLayer *D = &cb->layers[l];
        D->attn_norm = upload_vector(&u, &L->attn_norm);
        D->ffn_norm = upload_vector(&u, &L->ffn_norm);
        /* biases bq|bk|bv contiguous when all present (the fused Q/K/V
         * matvec adds them as one vector); Q/K/V fused only with all or none */
        const int nb = !!L->bq.data + !!L->bk.data + !!L->bv.data;
        const size_t bal = nb == 3 ? 4 : 256;
        D->bq = L->bq.data ? (const float *)upload_raw(&u, L->bq.data, L->bq.nbytes, bal) : NULL;
        D->bk = L->bk.data ? (const float *)upload_raw(&u, L->bk.data, L->bk.nbytes, bal) : NULL;
        D->bv = L->bv.data ? (const float *)upload_raw(&u, L->bv.data, L->bv.nbytes, bal) : NULL;
        u.off = align_up(u.off, 256);
        {
            const WTensor *qkv[3] = {&L->wq, &L->wk, &L->wv};
            DevW views[3];
            D->wqkv = upload_stacked(&u, qkv, 3, views);
            D->wq = views[0];
            D->wk = views[1];
            D->wv = views[2];
            if (nb != 0 && nb != 3) D->wqkv.data = NULL;
        }
        D->wo = upload_matrix(&u, &L->wo);
        {
            const WTensor *gu[2] = {&L->w_gate, &L->w_up};
            DevW views[2];
            D->w_gu = upload_stacked(&u, gu, 2, views);
            D->w_gate = views[0];
            D->w_up = views[1];
        }
        D->w_down = upload_matrix(&u, &L->w_down);
    }
    if (u.bar && u.last_pct < 100) fprintf(stderr, "\n");
    M40_ASSERT(u.off <= w_bytes);
    CUDA_CHECK(cudaDeviceSynchronize());
    LOG_INFO("cuda:%d: weights %.2f GiB, KV cache %.2f GiB (%d x %d), scratch %.2f GiB", dev,
             gib(w_bytes), gib(cb->kv_bytes), b->n_seq, b->n_ctx, gib(scratch));
    return b;
}

extern "C" void cuda_backend_set_graphs(Backend *b, int on) {
    CudaBackend *cb = (CudaBackend *)b;
    cb->use_graphs = on;
}
