/* cpu_backend.c - the CPU forward pass (reference + multithreaded path).
 *
 * FP32 arithmetic throughout (attention numerics: docs/kv_layout.md); weights
 * are read in place from the mmap by the blocked kernel quant_matmul (bit-
 * identical per token to quant_matvec, so prefill == token-by-token decode
 * exactly); optionally (M40LLM_CPU_SGEMM=1) long batches run as dequantized
 * row tiles x OpenBLAS SGEMM; KV cache in FP16, layout in docs/kv_layout.md.
 *
 * One forward routine serves prefill and decode: a batch of n tokens, token i
 * belonging to sequence seq[i] at position pos[i]. Per layer, the K/V of all
 * batch tokens are written to the cache first, then each token attends to
 * cache positions [0, pos[i]] of its sequence, so a batched run and a
 * token-by-token run read the same (FP16-rounded) keys and values. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "base/cpu_features.h"
#include "base/log.h"
#include "base/util.h"
#include "cpu/cpu.h"
#include "engine/backend.h"
#include "quant/quant.h"

#define CPU_MAX_BATCH 256         /* tokens per internal forward chunk */
#define CPU_TILE_FLOATS (1 << 20) /* dequantized weight tile: 4 MB */
#define CPU_ROW_CHUNK 16          /* rows per OpenMP work item in matvec */
/* Below this many multiply-adds a loop runs on one thread: a fork/join costs
 * microseconds, and much more when the cores are shared (oversubscribed). */
#define CPU_PAR_MIN_WORK (1 << 18)

typedef struct CpuBackend {
    Backend base;
    int n_threads;
    int gemm_min;
    int attn_llamacpp; /* 1: llama.cpp-compatible attention rounding (cpu.h) */
    int kvd;           /* n_kv_heads * head_dim */
    int kv_f32;        /* 1: FP32 cache elements (cpu.h), 0: FP16 */
    int kv_f32_pref;   /* the cache type to use outside llama.cpp-compatible mode */
    void *kv; /* see docs/kv_layout.md: [layer][seq][K/V][n_ctx][n_kv_heads][head_dim], FP16 or FP32
               */
    /* activations for up to CPU_MAX_BATCH tokens */
    float *x;     /* (cap, dim) residual stream */
    float *xb;    /* (cap, dim) normed input */
    float *xo;    /* (cap, dim) projection output */
    float *q;     /* (cap, n_heads*head_dim) */
    float *k, *v; /* (cap, kvd) */
    float *ao;    /* (cap, n_heads*head_dim) attention output */
    float *hb;    /* (cap, ffn) gate, then silu(gate)*up */
    float *hb2;   /* (cap, ffn) up */
    float *rope;  /* (cap, rope_dim) cos/sin pairs per token */
    float *att;   /* (n_threads, n_ctx) attention scores */
    float *tile;  /* (CPU_TILE_FLOATS) dequantized weight rows */
} CpuBackend;

/* ------------------------------------------------------------ fp16 table */

static float g_h2f[65536];
static pthread_once_t g_kernels_once = PTHREAD_ONCE_INIT;
static void kernels_init(void);
static inline float h2f(uint16_t h) { return g_h2f[h]; }

/* ------------------------------------------------------------ kernels */

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    float mean = (float)(ss / n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* ggml's rms_norm: float squares summed in double. */
static void rmsnorm_ll(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float mean = (float)(ss / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* cos/sin table for one position, as llama.cpp's ggml_rope_cache_init
 * computes it (float, theta multiplied by base^(-2/rope_dim) per pair). */
static void rope_table(float *cs, int pos, const ModelConfig *c) {
    if (c->rope_dim <= 0) return;
    const float theta_scale = powf(c->rope_base, -2.0f / (float)c->rope_dim);
    float theta = (float)pos;
    for (int i = 0; i < c->rope_dim / 2; i++) {
        const float t = c->rope_scale * theta;
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
}

/* Rotates one head vector (head_dim) in place. fused: llama.cpp's rotation
 * as its compiler contracts it (one product fused into an FMA), for the
 * llama.cpp-compatible mode. */
static void rope_apply(float *x, const float *cs, int rope_dim, int neox, int fused) {
    const int half = rope_dim / 2;
    for (int i = 0; i < half; i++) {
        const int a = neox ? i : 2 * i;
        const int b = neox ? i + half : 2 * i + 1;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = x[a], x1 = x[b];
        if (fused) {
            x[a] = fmaf(x0, c, -(x1 * s));
            x[b] = fmaf(x1, c, x0 * s);
        } else {
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

/* ------------------------------------------ llama.cpp arithmetic (compat)
 * With M40LLM_CPU_ATTN=llamacpp every op that can move an FP16 rounding of
 * the KV cache follows ggml-cpu's arithmetic as built for an AVX-512 CPU
 * (llama.cpp b10470; M40LLM_LLAMACPP_LANES=8 emulates an AVX2 build):
 * F32 matmuls as llamafile's tinyBLAS (one FMA accumulator of LANES lanes
 * per output, reduced as _mm512_reduce_add_ps), RMSNorm summing float
 * squares in double, ggml_vec_dot_f16 for Q.K (4 accumulators, pairwise
 * reduction, leftovers in double), ggml_vec_mad_f16 (FMA) and SwiGLU with
 * ggml_v_expf. Scalar C with fmaf: exact emulation, not fast. */
static int g_ll_lanes = 8;

/* Tree sum of n = 8 or 16 lanes as _mm512_reduce_add_ps / tinyBLAS hsum. */
static float ll_reduce(const float *a, int n) {
    float b[16];
    for (int i = 0; i < n; i++) b[i] = a[i];
    for (int w = n / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) b[i] = b[i] + b[i + w];
    return b[0];
}

/* GGML_F32x8_REDUCE's last steps (AVX2): lo + hi, then two hadds. */
static float ll_reduce_hadd8(const float *a) {
    float t[4];
    for (int i = 0; i < 4; i++) t[i] = a[i] + a[i + 4];
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/* 4 accumulators of LANES (ggml_vec_dot_f32 / _f16 body) reduced as
 * GGML_F32_VEC_REDUCE: x0 += x2, x1 += x3, x0 += x1, then the lane sum. */
static float ll_reduce4(float acc[4][16]) {
    const int L = g_ll_lanes;
    for (int l = 0; l < L; l++) {
        acc[0][l] = acc[0][l] + acc[2][l];
        acc[1][l] = acc[1][l] + acc[3][l];
    }
    for (int l = 0; l < L; l++) acc[0][l] = acc[0][l] + acc[1][l];
    return L == 8 ? ll_reduce_hadd8(acc[0]) : ll_reduce(acc[0], L);
}

/* F32 matmul output: tinyBLAS (k a multiple of LANES: one FMA accumulator of
 * LANES, movehl/512 tree) or else ggml_vec_dot_f32 (float leftovers). */
static float ll_dot(const float *w, const float *x, int n) {
    const int L = g_ll_lanes;
    if (n % L == 0) {
        float acc[16] = {0};
        for (int i = 0; i < n; i += L)
            for (int l = 0; l < L; l++) acc[l] = fmaf(w[i + l], x[i + l], acc[l]);
        return ll_reduce(acc, L);
    }
    const int step = 4 * L, np = n - n % step;
    float acc[4][16];
    memset(acc, 0, sizeof acc);
    for (int i = 0; i < np; i += step)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < L; l++)
                acc[j][l] = fmaf(w[i + j * L + l], x[i + j * L + l], acc[j][l]);
    float r = ll_reduce4(acc);
    for (int i = np; i < n; i++) r = fmaf(w[i], x[i], r);
    return r;
}

/* ggml_vec_dot_f16: STEP 4*LANES, 4 accumulators, x0+=x2, x1+=x3, x0+=x1,
 * tree; leftovers as float products summed in double. */
static float ll_dot_f16(const float *q, const uint16_t *k, int n) {
    const int L = g_ll_lanes, step = 4 * L;
    const int np = n - n % step;
    double sumf = 0;
    if (np > 0) {
        float acc[4][16];
        memset(acc, 0, sizeof acc);
        for (int i = 0; i < np; i += step)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < L; l++)
                    acc[j][l] = fmaf(q[i + j * L + l], h2f(k[i + j * L + l]), acc[j][l]);
        sumf = ll_reduce4(acc);
    }
    for (int i = np; i < n; i++) sumf += (double)(q[i] * h2f(k[i]));
    return (float)sumf;
}

/* ggml_v_expf (AVX-512 / AVX2 routine, in-range inputs) in scalar form. */
static float ll_v_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 126.0f) return expf(x); /* out of the fast range */
    const float u = b * b;
    const float p =
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f));
    if (g_ll_lanes == 8) { /* AVX2: k = 2^n, k + k * j */
        const float k = ldexpf(1.0f, (int)n);
        return fmaf(fmaf(p, u, 0x1.ffffecp-1f * b), k, k);
    }
    return ldexpf(fmaf(p, u, fmaf(0x1.ffffecp-1f, b, 1.0f)), (int)n); /* AVX-512: scalef */
}

/* ggml_vec_swiglu_f32: blocks of LANES through ggml_v_silu, the rest with
 * expf. g (n) becomes silu(g) * u. */
static void ll_swiglu(float *g, const float *u, int n) {
    const int L = g_ll_lanes;
    int i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; l++) {
            const float x = g[i + l];
            g[i + l] = x / (1.0f + ll_v_expf(0.0f - x)) * u[i + l];
        }
    for (; i < n; i++) g[i] = silu(g[i]) * u[i];
}

/* Y (n, rows) = X (n, cols) W^T, W (rows, cols) of any supported type.
 * Default: the blocked kernel quant_matmul, whose every output is
 * bit-identical to the single-token quant_matvec, so a batched prefill gives
 * exactly the logits of token-by-token decoding. Optional (sgemm_min > 0,
 * env M40LLM_CPU_SGEMM=1): batches of >= sgemm_min tokens run as dequantized
 * tiles x OpenBLAS SGEMM, faster for long prompts on many cores but with a
 * different summation order (breaks the bit-exact prefill/decode invariant). */
static void matmul(CpuBackend *cb, const WTensor *w, const float *X, int n, float *Y) {
    const int64_t cols = w->ne[0], rows = w->ne[1];
    const int nt = cb->n_threads;
    if (cb->attn_llamacpp) { /* llama.cpp order (ll_dot) on dequantized rows */
        const size_t rb = ggml_row_size(w->type, (uint64_t)cols);
#pragma omp parallel num_threads(nt) if ((double)rows * (double)cols * n >= CPU_PAR_MIN_WORK)
        {
            float *row = xmalloc((size_t)cols * sizeof(float));
#pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                quant_dequant_row(w->type, (const uint8_t *)w->data + (size_t)r * rb, row, cols);
                for (int t = 0; t < n; t++)
                    Y[(size_t)t * rows + r] = ll_dot(row, X + (size_t)t * cols, (int)cols);
            }
            free(row);
        }
        return;
    }
    if (cb->gemm_min <= 0 || n < cb->gemm_min) {
        const int64_t chunk = n > 1 ? 2 * CPU_ROW_CHUNK : CPU_ROW_CHUNK;
        const int64_t n_chunks = (rows + chunk - 1) / chunk;
        const int par = (double)rows * (double)cols * n >= CPU_PAR_MIN_WORK;
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            const int64_t r0 = ch * chunk;
            const int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
            quant_matmul(w->type, w->data, cols, r0, r1, X, cols, n, Y, rows);
        }
        return;
    }
    if (w->type == GGML_TYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)rows, (int)cols, 1.0f, X,
                    (int)cols, (const float *)w->data, (int)cols, 0.0f, Y, (int)rows);
        return;
    }
    const size_t rb = ggml_row_size(w->type, (uint64_t)cols);
    int64_t tr = CPU_TILE_FLOATS / cols;
    if (tr < 1) tr = 1;
    for (int64_t r0 = 0; r0 < rows; r0 += tr) {
        const int64_t r1 = r0 + tr < rows ? r0 + tr : rows;
        const uint8_t *base = w->data;
        float *tile = cb->tile;
#pragma omp parallel for num_threads(nt)                                                           \
    schedule(static) if ((r1 - r0) * cols >= CPU_PAR_MIN_WORK / 4)
        for (int64_t r = r0; r < r1; r++)
            quant_dequant_row(w->type, base + (size_t)r * rb, tile + (size_t)(r - r0) * cols, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)(r1 - r0), (int)cols, 1.0f, X,
                    (int)cols, tile, (int)cols, 0.0f, Y + r0, (int)rows);
    }
}

static void add_bias(float *y, const WTensor *b, int n, int64_t width) {
    if (!b->data) return;
    const float *bv = b->data;
    for (int t = 0; t < n; t++)
        for (int64_t i = 0; i < width; i++) y[(size_t)t * width + i] += bv[i];
}

/* Element offset of K (kind 0) or V (kind 1) of (layer, seq), position 0. */
static inline size_t kv_off(const CpuBackend *cb, int layer, int seq, int kind) {
    const Backend *b = &cb->base;
    return ((size_t)(layer * b->n_seq + seq) * 2 + (size_t)kind) * (size_t)b->n_ctx * cb->kvd;
}
static inline uint16_t *kv_k(CpuBackend *cb, int layer, int seq) {
    return (uint16_t *)cb->kv + kv_off(cb, layer, seq, 0);
}
static inline uint16_t *kv_v(CpuBackend *cb, int layer, int seq) {
    return (uint16_t *)cb->kv + kv_off(cb, layer, seq, 1);
}
static inline float *kv_k32(CpuBackend *cb, int layer, int seq) {
    return (float *)cb->kv + kv_off(cb, layer, seq, 0);
}
static inline float *kv_v32(CpuBackend *cb, int layer, int seq) {
    return (float *)cb->kv + kv_off(cb, layer, seq, 1);
}

/* FP16-cache primitives: dot(q, k) and acc += a * v over n elements, plus
 * FP16 round-trip of a float vector. Hardware (F16C/FMA) versions when the
 * CPU has them; all variants are FP32 arithmetic. */
static float dot_f16_sw(const float *q, const uint16_t *k, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d += q[i] * h2f(k[i]);
    return d;
}
static void axpy_f16_sw(float *acc, const uint16_t *v, float a, int n) {
    for (int i = 0; i < n; i++) acc[i] += a * h2f(v[i]);
}
static float dot_f32_sw(const float *q, const float *k, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d += q[i] * k[i];
    return d;
}
static void axpy_f32_sw(float *acc, const float *v, float a, int n) {
    for (int i = 0; i < n; i++) acc[i] += a * v[i];
}
static void round_f16_sw(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = h2f(f32_to_fp16(x[i]));
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_hw(const float *q, const uint16_t *k,
                                                                 int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i)));
        __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), k1, a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k0, a0);
    }
    a0 = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float d = _mm_cvtss_f32(h);
    for (; i < n; i++) d += q[i] * h2f(k[i]);
    return d;
}
__attribute__((target("avx2,fma"))) static float dot_f32_hw(const float *q, const float *k, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
    a0 = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float d = _mm_cvtss_f32(h);
    for (; i < n; i++) d = fmaf(q[i], k[i], d);
    return d;
}
__attribute__((target("avx2,fma"))) static void axpy_f32_hw(float *acc, const float *v, float a,
                                                            int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] = fmaf(a, v[i], acc[i]);
}
__attribute__((target("avx2,fma,f16c"))) static void axpy_f16_hw(float *acc, const uint16_t *v,
                                                                 float a, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(va, x, _mm256_loadu_ps(acc + i)));
    }
    for (; i < n; i++) acc[i] += a * h2f(v[i]);
}
__attribute__((target("avx,f16c"))) static void round_f16_hw(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; i < n; i++) x[i] = h2f(f32_to_fp16(x[i]));
}
#endif

static float (*dot_f16)(const float *q, const uint16_t *k, int n) = dot_f16_sw;
static void (*axpy_f16)(float *acc, const uint16_t *v, float a, int n) = axpy_f16_sw;
static void (*round_f16)(float *x, int n) = round_f16_sw;
static float (*dot_f32)(const float *q, const float *k, int n) = dot_f32_sw;
static void (*axpy_f32)(float *acc, const float *v, float a, int n) = axpy_f32_sw;

static int g_force_portable = 0;

static void kernels_select(void) {
    dot_f16 = dot_f16_sw;
    axpy_f16 = axpy_f16_sw;
    round_f16 = round_f16_sw;
    dot_f32 = dot_f32_sw;
    axpy_f32 = axpy_f32_sw;
#if defined(__x86_64__)
    if (!g_force_portable && cpu_simd_avx2()) {
        dot_f16 = dot_f16_hw;
        axpy_f16 = axpy_f16_hw;
        round_f16 = round_f16_hw;
        dot_f32 = dot_f32_hw;
        axpy_f32 = axpy_f32_hw;
    }
#endif
}

static void kernels_init(void) {
    for (uint32_t i = 0; i < 65536; i++) g_h2f[i] = fp16_to_f32((uint16_t)i);
    kernels_select();
}

void cpu_kernels_force_portable(int on) {
    pthread_once(&g_kernels_once, kernels_init);
    g_force_portable = on ? 1 : 0;
    cpu_force_portable(on);
    kernels_select();
}

/* Shared softmax step of attend_f32 / attend_f32_kv32: s[j] = exp(s[j] - mx)
 * in place; returns 1 / sum(s) (sum in double) for the caller to fold into
 * the V weights. s: (np), mx = max(s). */
static float exp_normalizer(float *s, int np, float mx) {
    double sum = 0;
    for (int j = 0; j < np; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    return (float)(1.0 / sum);
}

/* FP32 attention over the FP16 cache: scores, max-subtracted softmax, then
 * the weighted sum of V, all in FP32. s: (np) scratch. */
static void attend_f32(const float *q, const uint16_t *K, const uint16_t *V, int np, int hd,
                       int kvd, float scale, float *s, float *out) {
    float mx = -INFINITY;
    for (int j = 0; j < np; j++) {
        s[j] = dot_f16(q, K + (size_t)j * kvd, hd) * scale;
        if (s[j] > mx) mx = s[j];
    }
    const float inv = exp_normalizer(s, np, mx);
    for (int i = 0; i < hd; i++) out[i] = 0;
    for (int j = 0; j < np; j++) axpy_f16(out, V + (size_t)j * kvd, s[j] * inv, hd);
}

/* As attend_f32 over an FP32 cache (cpu_backend_set_kv_f32). */
static void attend_f32_kv32(const float *q, const float *K, const float *V, int np, int hd, int kvd,
                            float scale, float *s, float *out) {
    float mx = -INFINITY;
    for (int j = 0; j < np; j++) {
        s[j] = dot_f32(q, K + (size_t)j * kvd, hd) * scale;
        if (s[j] > mx) mx = s[j];
    }
    const float inv = exp_normalizer(s, np, mx);
    for (int i = 0; i < hd; i++) out[i] = 0;
    for (int j = 0; j < np; j++) axpy_f32(out, V + (size_t)j * kvd, s[j] * inv, hd);
}

/* llama.cpp's CPU flash attention with an F16 cache, reproduced: Q rounded
 * to FP16 for the K dot, online softmax, V accumulated in an FP16 vector
 * (rounded after every position), divided by the sum at the end. The
 * reference logits (testdata) were produced this way; see docs/kv_layout.md.
 * acc: (hd) scratch. */
static void attend_llamacpp(const float *q, const uint16_t *K, const uint16_t *V, int np, int hd,
                            int kvd, float scale, float *acc, float *out) {
    float qh[1024];
    memcpy(qh, q, (size_t)hd * sizeof(float));
    round_f16(qh, hd);
    for (int i = 0; i < hd; i++) acc[i] = 0;
    float M = -INFINITY, S = 0;
    for (int j = 0; j < np; j++) {
        const float sv = ll_dot_f16(qh, K + (size_t)j * kvd, hd) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (sv > M) {
            const float Mold = M;
            M = sv;
            ms = expf(Mold - M);
            for (int i = 0; i < hd; i++) acc[i] *= ms;
            round_f16(acc, hd);
        } else {
            vs = expf(sv - M);
        }
        const uint16_t *v = V + (size_t)j * kvd;
        for (int i = 0; i < hd; i++) acc[i] = fmaf(h2f(v[i]), vs, acc[i]);
        round_f16(acc, hd);
        S = fmaf(S, ms, vs);
    }
    const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int i = 0; i < hd; i++) out[i] = acc[i] * S_inv;
}

/* Attention for every (token, head) over cache positions [0, pos[t]] of
 * seq[t] (causal: later positions are never read). */
static void attention(CpuBackend *cb, int layer, int n, const int *seq, const int *pos) {
    const ModelConfig *c = &cb->base.model->cfg;
    const int hd = c->head_dim, nh = c->n_heads, group = c->n_heads / c->n_kv_heads;
    const int qd = nh * hd, kvd = cb->kvd, n_ctx = cb->base.n_ctx;
    const float scale = 1.0f / sqrtf((float)hd);
    const int compat = cb->attn_llamacpp;
    int max_pos = 0;
    for (int t = 0; t < n; t++) max_pos = pos[t] > max_pos ? pos[t] : max_pos;
    const int par = (double)n * nh * (max_pos + 1) * hd * 2 >= CPU_PAR_MIN_WORK;
#pragma omp parallel for num_threads(cb->n_threads) schedule(dynamic, 1) if (par)
    for (int th = 0; th < n * nh; th++) {
        const int t = th / nh, h = th % nh, kh = h / group;
        const float *q = cb->q + (size_t)t * qd + (size_t)h * hd;
        float *out = cb->ao + (size_t)t * qd + (size_t)h * hd;
        float *s = cb->att + (size_t)omp_get_thread_num() * (n_ctx > hd ? n_ctx : hd);
        if (cb->kv_f32) {
            attend_f32_kv32(q, kv_k32(cb, layer, seq[t]) + (size_t)kh * hd,
                            kv_v32(cb, layer, seq[t]) + (size_t)kh * hd, pos[t] + 1, hd, kvd, scale,
                            s, out);
            continue;
        }
        const uint16_t *K = kv_k(cb, layer, seq[t]) + (size_t)kh * hd;
        const uint16_t *V = kv_v(cb, layer, seq[t]) + (size_t)kh * hd;
        if (compat)
            attend_llamacpp(q, K, V, pos[t] + 1, hd, kvd, scale, s, out);
        else
            attend_f32(q, K, V, pos[t] + 1, hd, kvd, scale, s, out);
    }
}

/* Runs n <= CPU_MAX_BATCH tokens. Logits (n_vocab each, row-major) are
 * computed for tokens [logits_from, n) into logits (NULL: none). */
static void forward(CpuBackend *cb, int n, const int32_t *tokens, const int *seq, const int *pos,
                    int logits_from, float *logits) {
    const Model *m = cb->base.model;
    const ModelConfig *c = &m->cfg;
    const int D = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = cb->kvd, F = c->ffn_dim;
    const int nt = cb->n_threads;

    const size_t erb = ggml_row_size(m->tok_embd.type, (uint64_t)D);
    for (int t = 0; t < n; t++)
        quant_dequant_row(m->tok_embd.type,
                          (const uint8_t *)m->tok_embd.data + (size_t)tokens[t] * erb,
                          cb->x + (size_t)t * D, D);
    for (int t = 0; t < n; t++) rope_table(cb->rope + (size_t)t * c->rope_dim, pos[t], c);

    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        for (int t = 0; t < n; t++)
            (cb->attn_llamacpp ? rmsnorm_ll : rmsnorm)(
                cb->xb + (size_t)t * D, cb->x + (size_t)t * D, L->attn_norm.data, D, c->norm_eps);
        matmul(cb, &L->wq, cb->xb, n, cb->q);
        matmul(cb, &L->wk, cb->xb, n, cb->k);
        matmul(cb, &L->wv, cb->xb, n, cb->v);
        add_bias(cb->q, &L->bq, n, qd);
        add_bias(cb->k, &L->bk, n, kvd);
        add_bias(cb->v, &L->bv, n, kvd);
        for (int t = 0; t < n; t++) {
            const float *cs = cb->rope + (size_t)t * c->rope_dim;
            for (int h = 0; h < c->n_heads; h++)
                rope_apply(cb->q + (size_t)t * qd + (size_t)h * hd, cs, c->rope_dim, c->rope_neox,
                           cb->attn_llamacpp);
            for (int h = 0; h < c->n_kv_heads; h++)
                rope_apply(cb->k + (size_t)t * kvd + (size_t)h * hd, cs, c->rope_dim, c->rope_neox,
                           cb->attn_llamacpp);
            if (cb->kv_f32) {
                memcpy(kv_k32(cb, l, seq[t]) + (size_t)pos[t] * kvd, cb->k + (size_t)t * kvd,
                       (size_t)kvd * sizeof(float));
                memcpy(kv_v32(cb, l, seq[t]) + (size_t)pos[t] * kvd, cb->v + (size_t)t * kvd,
                       (size_t)kvd * sizeof(float));
                continue;
            }
            uint16_t *kc = kv_k(cb, l, seq[t]) + (size_t)pos[t] * kvd;
            uint16_t *vc = kv_v(cb, l, seq[t]) + (size_t)pos[t] * kvd;
            for (int i = 0; i < kvd; i++) {
                kc[i] = f32_to_fp16(cb->k[(size_t)t * kvd + i]);
                vc[i] = f32_to_fp16(cb->v[(size_t)t * kvd + i]);
            }
        }
        attention(cb, l, n, seq, pos);
        matmul(cb, &L->wo, cb->ao, n, cb->xo);
        for (size_t i = 0; i < (size_t)n * D; i++) cb->x[i] += cb->xo[i];

        for (int t = 0; t < n; t++)
            (cb->attn_llamacpp ? rmsnorm_ll : rmsnorm)(
                cb->xb + (size_t)t * D, cb->x + (size_t)t * D, L->ffn_norm.data, D, c->norm_eps);
        matmul(cb, &L->w_gate, cb->xb, n, cb->hb);
        matmul(cb, &L->w_up, cb->xb, n, cb->hb2);
        const size_t nf = (size_t)n * F;
        if (cb->attn_llamacpp) {
            for (int t = 0; t < n; t++)
                ll_swiglu(cb->hb + (size_t)t * F, cb->hb2 + (size_t)t * F, F);
        } else {
#pragma omp parallel for num_threads(nt) schedule(static) if (nf > 65536)
            for (size_t i = 0; i < nf; i++) cb->hb[i] = silu(cb->hb[i]) * cb->hb2[i];
        }
        matmul(cb, &L->w_down, cb->hb, n, cb->xo);
        for (size_t i = 0; i < (size_t)n * D; i++) cb->x[i] += cb->xo[i];
    }

    if (!logits || logits_from >= n) return;
    const int nl = n - logits_from;
    for (int t = 0; t < nl; t++)
        (cb->attn_llamacpp ? rmsnorm_ll : rmsnorm)(cb->xb + (size_t)t * D,
                                                   cb->x + (size_t)(logits_from + t) * D,
                                                   m->output_norm.data, D, c->norm_eps);
    matmul(cb, &m->output, cb->xb, nl, logits);
}

/* ------------------------------------------------------------ interface */

static int check_tokens(const CpuBackend *cb, const int32_t *tokens, int n, Err *e) {
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cb->base.model->cfg.n_vocab)
            return err_set(e, "token id %d is out of range (vocabulary of %d)", (int)tokens[i],
                           cb->base.model->cfg.n_vocab);
    return 0;
}

static int cpu_prefill(Backend *b, int seq, const int32_t *tokens, int n, int pos, float *logits,
                       int all_logits, Err *e) {
    CpuBackend *cb = (CpuBackend *)b;
    if (seq < 0 || seq >= b->n_seq)
        return err_set(e, "prefill: sequence %d out of range (n_seq %d)", seq, b->n_seq);
    if (n <= 0) return err_set(e, "prefill: no tokens");
    if (pos < 0 || pos > b->n_ctx - n)
        return err_set(e, "prefill: positions %d..%d exceed the context size %d", pos, pos + n - 1,
                       b->n_ctx);
    if (check_tokens(cb, tokens, n, e) != 0) return -1;
    const int V = b->model->cfg.n_vocab;
    int sq[CPU_MAX_BATCH], ps[CPU_MAX_BATCH];
    for (int done = 0; done < n;) {
        const int m = n - done < CPU_MAX_BATCH ? n - done : CPU_MAX_BATCH;
        const int last = done + m == n;
        for (int i = 0; i < m; i++) {
            sq[i] = seq;
            ps[i] = pos + done + i;
        }
        float *lg = NULL;
        int from = m;
        if (logits && all_logits) {
            lg = logits + (size_t)done * V;
            from = 0;
        } else if (logits && last) {
            lg = logits;
            from = m - 1;
        }
        forward(cb, m, tokens + done, sq, ps, from, lg);
        done += m;
    }
    return 0;
}

static int cpu_decode(Backend *b, int n_batch, const int *seq, const int32_t *tokens,
                      const int *pos, float *logits, Err *e) {
    CpuBackend *cb = (CpuBackend *)b;
    if (n_batch <= 0) return err_set(e, "decode: empty batch");
    if (check_tokens(cb, tokens, n_batch, e) != 0) return -1;
    for (int i = 0; i < n_batch; i++) {
        if (seq[i] < 0 || seq[i] >= b->n_seq)
            return err_set(e, "decode: sequence %d out of range (n_seq %d)", seq[i], b->n_seq);
        if (pos[i] < 0 || pos[i] >= b->n_ctx)
            return err_set(e, "decode: position %d of sequence %d exceeds the context size %d",
                           pos[i], seq[i], b->n_ctx);
        for (int j = 0; j < i; j++)
            if (seq[j] == seq[i])
                return err_set(e, "decode: sequence %d appears twice in one batch", seq[i]);
    }
    const int V = b->model->cfg.n_vocab;
    for (int done = 0; done < n_batch;) {
        const int m = n_batch - done < CPU_MAX_BATCH ? n_batch - done : CPU_MAX_BATCH;
        forward(cb, m, tokens + done, seq + done, pos + done, 0,
                logits ? logits + (size_t)done * V : NULL);
        done += m;
    }
    return 0;
}

static int cpu_kv_read(Backend *b, int layer, int seq, int n_pos, float *k, float *v, Err *e) {
    CpuBackend *cb = (CpuBackend *)b;
    if (layer < 0 || layer >= b->model->cfg.n_layers)
        return err_set(e, "kv_read: layer %d out of range", layer);
    if (seq < 0 || seq >= b->n_seq) return err_set(e, "kv_read: sequence %d out of range", seq);
    if (n_pos < 0 || n_pos > b->n_ctx)
        return err_set(e, "kv_read: %d positions exceed the context size %d", n_pos, b->n_ctx);
    const size_t cnt = (size_t)n_pos * cb->kvd;
    if (cb->kv_f32) {
        if (k) memcpy(k, kv_k32(cb, layer, seq), cnt * sizeof(float));
        if (v) memcpy(v, kv_v32(cb, layer, seq), cnt * sizeof(float));
        return 0;
    }
    const uint16_t *K = kv_k(cb, layer, seq), *V = kv_v(cb, layer, seq);
    for (size_t i = 0; i < cnt; i++) {
        if (k) k[i] = h2f(K[i]);
        if (v) v[i] = h2f(V[i]);
    }
    return 0;
}

static int cpu_peak(Backend *b, double *copy_gbs, double *gemm_gflops, Err *e) {
    CpuBackend *cb = (CpuBackend *)b;
    (void)e;
    const size_t nbytes = (size_t)256 << 20;
    char *src = xmalloc(nbytes), *dst = xmalloc(nbytes);
    memset(src, 1, nbytes);
    memset(dst, 0, nbytes);
    double best = 1e30;
    for (int it = 0; it < 2; it++) {
        double t0 = time_now();
        memcpy(dst, src, nbytes);
        double dt = time_now() - t0;
        if (dt < best) best = dt;
    }
    if (copy_gbs) *copy_gbs = best > 0 ? 2.0 * (double)nbytes / best / 1e9 : 0;
    free(src);
    free(dst);

    const int N = 1024;
    float *A = xmalloc((size_t)N * N * 4), *B = xmalloc((size_t)N * N * 4),
          *C = xmalloc((size_t)N * N * 4);
    for (size_t i = 0; i < (size_t)N * N; i++) {
        A[i] = (float)(i % 7) * 0.1f;
        B[i] = (float)(i % 5) * 0.1f;
    }
    openblas_set_num_threads(cb->n_threads);
    best = 1e30;
    for (int it = 0; it < 3; it++) {
        double t0 = time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, A, N, B, N, 0.0f, C,
                    N);
        double dt = time_now() - t0;
        if (dt < best) best = dt;
    }
    if (gemm_gflops) *gemm_gflops = best > 0 ? 2.0 * N * (double)N * N / best / 1e9 : 0;
    free(A);
    free(B);
    free(C);
    return 0;
}

static void cpu_free(Backend *b) {
    CpuBackend *cb = (CpuBackend *)b;
    if (!cb) return;
    free(cb->kv);
    free(cb->x);
    free(cb->xb);
    free(cb->xo);
    free(cb->q);
    free(cb->k);
    free(cb->v);
    free(cb->ao);
    free(cb->hb);
    free(cb->hb2);
    free(cb->rope);
    free(cb->att);
    free(cb->tile);
    free(cb);
}

void cpu_backend_set_gemm_min_tokens(Backend *b, int n) {
    if (b && !b->is_gpu) ((CpuBackend *)b)->gemm_min = n;
}

/* (Re)allocates a zeroed cache of the requested element type. */
static int kv_alloc(CpuBackend *cb, int f32, Err *e) {
    const Backend *b = &cb->base;
    const ModelConfig *c = &b->model->cfg;
    const size_t kv_elems = (size_t)c->n_layers * (size_t)b->n_seq * 2 * (size_t)b->n_ctx * cb->kvd;
    const size_t es = f32 ? sizeof(float) : sizeof(uint16_t);
    void *kv = calloc(kv_elems ? kv_elems : 1, es);
    if (!kv)
        return err_set(e,
                       "cpu backend: cannot allocate the KV cache (%zu MiB for n_ctx %d, n_seq %d)",
                       kv_elems * es >> 20, b->n_ctx, b->n_seq);
    free(cb->kv);
    cb->kv = kv;
    cb->kv_f32 = f32;
    return 0;
}

void cpu_backend_set_llamacpp_attention(Backend *b, int on) {
    if (!b || b->is_gpu) return;
    CpuBackend *cb = (CpuBackend *)b;
    const int want_f32 = on ? 0 : cb->kv_f32_pref;
    if (want_f32 != cb->kv_f32) {
        Err e = {0};
        if (kv_alloc(cb, want_f32, &e) != 0) M40_ASSERT(0 && "cannot reallocate the KV cache");
    }
    cb->attn_llamacpp = on ? 1 : 0;
}

int cpu_backend_set_kv_f32(Backend *b, int on, Err *e) {
    if (!b || b->is_gpu) return err_set(e, "cpu_backend_set_kv_f32: not a CPU backend");
    CpuBackend *cb = (CpuBackend *)b;
    if (kv_alloc(cb, on ? 1 : 0, e) != 0) return -1;
    cb->kv_f32_pref = on ? 1 : 0;
    if (on) cb->attn_llamacpp = 0;
    return 0;
}

Backend *backend_cpu_create(const Model *m, const BackendParams *p, Err *e) {
    const ModelConfig *c = &m->cfg;
    int n_ctx = p->n_ctx;
    if (n_ctx <= 0) n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    if (n_ctx <= 0) n_ctx = 4096;
    if (p->n_seq < 1 || p->n_seq > 4096) {
        err_set(e, "cpu backend: invalid number of sequences %d", p->n_seq);
        return NULL;
    }
    if (n_ctx > (1 << 24)) {
        err_set(e, "cpu backend: context size %d is too large", n_ctx);
        return NULL;
    }
    pthread_once(&g_kernels_once, kernels_init);

    CpuBackend *cb = xcalloc(1, sizeof *cb);
    Backend *b = &cb->base;
    b->model = m;
    b->n_ctx = n_ctx;
    b->n_seq = p->n_seq;
    b->is_gpu = 0;
    cb->n_threads = p->n_threads > 0 ? p->n_threads : omp_get_num_procs();
    if (cb->n_threads < 1) cb->n_threads = 1;
    cb->gemm_min = 0;
    const char *sg = getenv("M40LLM_CPU_SGEMM");
    if (sg && strcmp(sg, "") && strcmp(sg, "0")) cb->gemm_min = CPU_GEMM_MIN_TOKENS;
    cb->attn_llamacpp = CPU_ATTN_LLAMACPP_DEFAULT;
    const char *ll = getenv("M40LLM_LLAMACPP_LANES");
    if (ll) g_ll_lanes = atoi(ll) == 16 ? 16 : 8;
    const char *am = getenv("M40LLM_CPU_ATTN");
    if (am && !strcmp(am, "llamacpp")) cb->attn_llamacpp = 1;
    if (am && !strcmp(am, "fp32")) cb->attn_llamacpp = 0;
    cb->kvd = c->n_kv_heads * c->head_dim;

    const char *kvt = getenv("M40LLM_CPU_KV");
    int kv_f32 = CPU_KV_F32_DEFAULT;
    if (kvt && !strcmp(kvt, "f32")) kv_f32 = 1;
    if (kvt && !strcmp(kvt, "f16")) kv_f32 = 0;
    cb->kv_f32_pref = kv_f32;
    if (cb->attn_llamacpp) kv_f32 = 0;
    if (kv_alloc(cb, kv_f32, e) != 0) {
        free(cb);
        return NULL;
    }
    const size_t cap = CPU_MAX_BATCH;
    const size_t qd = (size_t)c->n_heads * c->head_dim;
    cb->x = xmalloc(cap * c->dim * sizeof(float));
    cb->xb = xmalloc(cap * c->dim * sizeof(float));
    cb->xo = xmalloc(cap * c->dim * sizeof(float));
    cb->q = xmalloc(cap * qd * sizeof(float));
    cb->k = xmalloc(cap * cb->kvd * sizeof(float));
    cb->v = xmalloc(cap * cb->kvd * sizeof(float));
    cb->ao = xmalloc(cap * qd * sizeof(float));
    cb->hb = xmalloc(cap * c->ffn_dim * sizeof(float));
    cb->hb2 = xmalloc(cap * c->ffn_dim * sizeof(float));
    cb->rope = xmalloc(cap * (c->rope_dim > 0 ? c->rope_dim : 1) * sizeof(float));
    cb->att = xmalloc((size_t)cb->n_threads * (n_ctx > c->head_dim ? n_ctx : c->head_dim) *
                      sizeof(float));
    size_t max_cols = (size_t)(c->ffn_dim > c->dim ? c->ffn_dim : c->dim);
    if (qd > max_cols) max_cols = qd;
    cb->tile = xmalloc((CPU_TILE_FLOATS > max_cols ? CPU_TILE_FLOATS : max_cols) * sizeof(float));
    openblas_set_num_threads(cb->n_threads);

    snprintf(b->name, sizeof b->name, "cpu");
    const char *core = openblas_get_corename();
    snprintf(
        b->desc, sizeof b->desc, "cpu, %d threads, %s kernels%s%s", cb->n_threads,
        cpu_simd_avx2() ? "AVX2" : "portable", cb->gemm_min > 0 ? ", OpenBLAS SGEMM prefill" : "",
        cb->kv_f32 ? ", FP32 KV" : (cb->attn_llamacpp ? ", llama.cpp-compatible attention" : ""));
#if defined(__x86_64__)
    /* OpenBLAS 0.3.21 falls back to its SSE3 kernels on CPUs it does not
     * know (e.g. Sapphire Rapids): SGEMM ~5x slower. Only the environment,
     * read when the library loads, can change that. */
    if (cb->gemm_min > 0 && core && !strcmp(core, "Prescott") && cpu_has_avx2_fma_f16c() &&
        !getenv("OPENBLAS_CORETYPE"))
        LOG_INFO("OpenBLAS uses its generic Prescott kernels on this AVX2 CPU; prefill runs "
                 "faster with OPENBLAS_CORETYPE=Haswell (or SkylakeX with AVX-512)");
#endif
    b->prefill = cpu_prefill;
    b->decode = cpu_decode;
    b->kv_read = cpu_kv_read;
    b->peak = cpu_peak;
    b->free = cpu_free;
    return b;
}
