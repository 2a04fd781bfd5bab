/* cuda_common.cuh - shared by every .cu file: error macros, reductions and
 * the internal (C++) interface between the CUDA op families. Nothing here is
 * visible to C code; only the extern "C" functions of backend.h leave
 * src/cuda.
 *
 * Precision policy: weights F16/BF16/quantized, KV cache F16, ALL arithmetic
 * FP32. sm_52 has no half arithmetic: halves are only converted
 * (__half2float / __float2half_rn), never computed with. Code must compile
 * for sm_52 with CUDA 11.8 and for sm_75+ with CUDA 13. */
#ifndef M40_CUDA_COMMON_CUH
#define M40_CUDA_COMMON_CUH

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t err_ = (call);                                                                 \
        if (err_ != cudaSuccess) {                                                                 \
            fprintf(stderr, "m40llm: CUDA error %s (%s) in %s at %s:%d\n", cudaGetErrorName(err_), \
                    cudaGetErrorString(err_), __func__, __FILE__, __LINE__);                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#ifndef NDEBUG
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#else
#define CUDA_CHECK_LAUNCH() ((void)0)
#endif

static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---------------------------------------------------------------------
 * Programmatic dependent launch (sm_90+, CUDA >= 12.3). The backend's small
 * kernels are launched with cuda_launch: when cuda_pdl_on, such a kernel may
 * be scheduled while the previous kernel of the stream drains, and it calls
 * cuda_pdl_wait() before touching any memory (waits for the previous
 * kernel's completion and its writes). cuda_pdl_on is set by the backend
 * (cuda_pdl_supported() and env M40LLM_CUDA_PDL != 0). */
extern int cuda_pdl_on;
/* 1 when this binary's kernels for the current device contain the wait. */
int cuda_pdl_supported(void);

static __device__ __forceinline__ void cuda_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
/* Lets the next PDL-launched kernel of the stream be scheduled now (it still
 * waits in cuda_pdl_wait() for this grid's completion before it reads or
 * writes anything this grid touches). Called at the start of every kernel:
 * the next matvec then streams its first weight tile while this one drains.
 * No effect without PDL or before sm_90. */
static __device__ __forceinline__ void cuda_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Asynchronous 16-byte global -> shared copies (sm_80+; CUDA_ASYNC_COPY
 * says whether this pass has them, and only code under it may call them):
 * cuda_cp16 issues one, cuda_cp_commit closes the thread's group,
 * cuda_cp_wait waits for all of its groups (a __syncthreads() after it makes
 * the data visible to the CTA). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define CUDA_ASYNC_COPY 1
#else
#define CUDA_ASYNC_COPY 0
#endif
static __device__ __forceinline__ void cuda_cp16(void *smem, const void *g) {
#if CUDA_ASYNC_COPY
    const unsigned a = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(a), "l"(g) : "memory");
#else
    (void)smem, (void)g;
    __trap();
#endif
}
static __device__ __forceinline__ void cuda_cp_commit() {
#if CUDA_ASYNC_COPY
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
static __device__ __forceinline__ void cuda_cp_wait() {
#if CUDA_ASYNC_COPY
    asm volatile("cp.async.wait_group 0;" ::: "memory");
#endif
}

template <typename... P, typename... A>
static void cuda_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                        A... args) {
#if CUDART_VERSION >= 12030
    if (cuda_pdl_on) {
        cudaLaunchConfig_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.dynamicSmemBytes = smem;
        cfg.stream = s;
        cudaLaunchAttribute at[1];
        memset(at, 0, sizeof at);
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at;
        cfg.numAttrs = 1;
        if (cudaLaunchKernelEx(&cfg, k, args...) == cudaSuccess) return;
        cudaGetLastError();
        cuda_pdl_on = 0; /* not supported here: plain launches from now on */
    }
#endif
    k<<<grid, block, smem, s>>>(args...);
}

/* ---------------------------------------------------------------------
 * Matrix-vector / matrix-small-matrix family (src/cuda/matvec*.cu).
 *
 * W: device weight matrix of `rows` x `cols` in ggml layout (row r is
 *    ggml_row_size(type, cols) bytes at W + r * row_bytes; ne[0] = cols).
 *    Types: F32 is never uploaded as such (the loader converts F32
 *    matrices to F16); supported: F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 *    Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (cuda_matvec_supported says which).
 * X: n x cols FP32 (row-major, row i = activation vector of token i).
 * Y: n x rows FP32 (row-major). All FP32 accumulation.
 * For n <= CUDA_MATVEC_MAX_BATCH the kernel reads each weight once for all
 * n vectors (decode and batched decode). For larger n (prefill) use
 * cuda_dequant_rows + cuBLAS SGEMM (cuda_gemm.cu). */
#define CUDA_MATVEC_MAX_BATCH 16

/* An environment knob set to "0", "off" or "false" (the CUDA backend's
 * M40LLM_CUDA_* switches). */
static inline int env_off(const char *name) {
    const char *v = getenv(name);
    return v && (!strcmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "false"));
}

int cuda_matvec_supported(uint32_t type);
/* Y[i][r] = sum_c W[r][c] * X[i][c] for i < n, r < rows. Optionally adds
 * bias[r] (FP32, may be NULL) and, when `accumulate`, adds into Y instead of
 * overwriting (used for residual adds). */
void cuda_matvec(uint32_t type, const void *W, int64_t rows, int64_t cols, const float *X, int n,
                 float *Y, const float *bias, int accumulate, cudaStream_t s);
/* One decode token through a stacked gate|up matrix W (2*ffn rows: gate
 * rows 0..ffn-1, up rows ffn..2ffn-1) with SwiGLU in the epilogue:
 * H[r] = silu(g_r) * u_r, g_r and u_r computed by one warp (the same
 * per-row arithmetic as cuda_matvec, so H equals cuda_matvec + cuda_swiglu
 * bit for bit). Returns 0 (nothing launched) for types or alignments the
 * fast kernel does not take; the caller then runs the two steps. */
int cuda_matvec_glu(uint32_t type, const void *W, int64_t ffn, int64_t cols, const float *X,
                    float *H, cudaStream_t s);
/* Integer dot products (sm_61+, mv_dp in matvec.cu): split Q8_0/Q4_0
 * weights times activations quantized per 32 columns to int16 (relative
 * error <= 1.5e-5 of the block maximum), for one vector (decode) and the
 * fused gate/up. Used when the device and this binary's kernels support dp2a and
 * M40LLM_CUDA_DP is not 0/off; cuda_matvec_set_dp(0) switches it off,
 * (-1) back to that default (tests). cuda_matvec_dp_active: in use. */
void cuda_matvec_set_dp(int on);
int cuda_matvec_dp_active(void);
/* Device-only weight layouts. The uploader may store a matrix in a layout
 * of its own: its device type is then the ggml type | CUDA_TYPE_SPLIT, and
 * every op here (matvec, glu, dequant, get_rows) takes that device type.
 * SPLIT (Q8_0, Q4_0 with cols % 256 == 0): each row's blocks in groups of 8,
 * a group = the 8 fp16 scales (16 B) followed by the quants as planes of
 * 8 x 16 B (plane p: bytes 16p..16p+15 of each block's quants); same bytes
 * per row as ggml, so row r still starts at r * ggml_row_size. A lane then
 * reads its block with one or two 16-byte loads and a 2-byte load, and a
 * warp's 16-byte loads are four contiguous 128-byte runs (the ggml layout
 * needs 5 / 9 scattered 4-byte loads per block, 18 / 34 bytes apart).
 * docs/perf_cuda.md has the measurement. M40LLM_CUDA_SPLIT=0 turns it off. */
#define CUDA_TYPE_SPLIT 0x100u
/* Whether ggml `type` rows of `cols` columns can take the SPLIT layout. */
bool cuda_split_fits(uint32_t type, int64_t cols);
/* The device type the uploader stores a `type` matrix of rows of `cols` as. */
uint32_t cuda_upload_type(uint32_t type, int64_t cols);
/* Host: `rows` rows of ggml `dev_type & ~CUDA_TYPE_SPLIT` from src into dst
 * (the same number of bytes) in the layout of dev_type (a copy when it has no
 * layout flag). src and dst must not overlap. */
void cuda_repack_rows(uint32_t dev_type, int64_t cols, int64_t rows, const void *src, void *dst);

/* Dequantizes rows [r0, r1) of W into dst, FP32 row-major (r1-r0) x cols. */
void cuda_dequant_rows(uint32_t type, const void *W, int64_t r0, int64_t r1, int64_t cols,
                       float *dst, cudaStream_t s);
/* Dequantizes rows (token ids) of an embedding table: dst[i] = row ids[i]. */
void cuda_get_rows(uint32_t type, const void *W, int64_t cols, const int32_t *ids, int n,
                   float *dst, cudaStream_t s);

/* ---------------------------------------------------------------------
 * Forward-pass op families owned by the backend (norm_rope.cu,
 * attention.cu, elementwise.cu, gemm.cu, device.cu, backend_cuda.cu).
 *
 * Token "items": a batch of n tokens, token i of sequence d_seq[i] at
 * position d_pos[i] (both int32 arrays in DEVICE memory, so that a captured
 * CUDA graph replays with new positions). KV cache layout: docs/kv_layout.md;
 * kv_l is the start of one layer: kv + l * n_seq * 2 * n_ctx * kvd. */

/* KV of layer base kv_l for sequence s: K at kv_l + (2 s) n_ctx kvd, V at
 * kv_l + (2 s + 1) n_ctx kvd; element [pos * kvd + h * head_dim + d]. */
struct CudaKvView {
    __half *kv_l;
    int n_ctx;
    int kvd; /* n_kv_heads * head_dim */
};

/* y[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w, for n rows of dim floats. */
void cuda_rmsnorm(const float *x, const float *w, float *y, int n, int dim, float eps,
                  cudaStream_t s);

struct CudaRopeParams {
    int n_heads, n_kv_heads, head_dim;
    int rope_dim;      /* rotated dims (<= head_dim) */
    int neox;          /* 1: pairs (i, i + rope_dim/2); 0: (2i, 2i+1) */
    float theta_scale; /* powf(freq_base, -2 / rope_dim), computed on the host */
    float pos_scale;   /* positions are multiplied by this (linear scaling) */
};
/* The pair element d (< rope_dim) belongs to: pair index i, elements a, b
 * (NeoX: (i, i + rope_dim/2); else (2i, 2i+1)). */
static __device__ __forceinline__ void cuda_rope_pair(int d, const CudaRopeParams &p, int &i,
                                                      int &a, int &b) {
    if (p.neox) {
        const int h = p.rope_dim / 2;
        i = d < h ? d : d - h;
        a = i;
        b = i + h;
    } else {
        i = d >> 1;
        a = 2 * i;
        b = a + 1;
    }
}
/* The angle of pair i at position pos: pos multiplied i times by
 * theta_scale in float, times pos_scale (the CPU backend's arithmetic). */
static __device__ __forceinline__ float cuda_rope_angle(int i, int pos, const CudaRopeParams &p) {
    float theta = (float)pos;
    for (int j = 0; j < i; j++) theta *= p.theta_scale;
    return p.pos_scale * theta;
}
/* Element d (< rope_dim) of one head x after RoPE at position pos; the same
 * math as cuda_rope_store_kv (and the CPU backend). */
static __device__ __forceinline__ float cuda_rope_elem(const float *x, int d, int pos,
                                                       const CudaRopeParams &p) {
    int i, a, b;
    cuda_rope_pair(d, p, i, a, b);
    const float t = cuda_rope_angle(i, pos, p);
    const float c = cosf(t), sn = sinf(t);
    const float x0 = x[a], x1 = x[b];
    return d == a ? x0 * c - x1 * sn : x0 * sn + x1 * c;
}

/* Rotates q (n, n_heads*hd) in place and k (n, n_kv*hd), then stores k and v
 * (n, n_kv*hd) as FP16 into the cache at (d_seq[i], d_pos[i]). */
void cuda_rope_store_kv(const CudaRopeParams *p, float *q, const float *k, const float *v, int n,
                        const int *d_pos, const int *d_seq, CudaKvView kv, cudaStream_t s);

/* h[i] = silu(g[i]) * u[i] for i < n. */
void cuda_swiglu(const float *g, const float *u, float *h, int64_t n, cudaStream_t s);
/* H (n, ffn) = silu(GU[:, :ffn]) * GU[:, ffn:] for the stacked gate|up output
 * GU (n, 2 ffn); same arithmetic as cuda_swiglu. */
void cuda_swiglu_stacked(const float *gu, int64_t n, int64_t ffn, float *h, cudaStream_t s);
/* y[i][r] += b[r] for n rows of `rows`. */
void cuda_add_bias(float *y, const float *b, int n, int64_t rows, cudaStream_t s);
/* Fills with deterministic pseudo-random values in [-1, 1). */
void cuda_fill_random(float *x, int64_t n, uint32_t seed, cudaStream_t s);

/* Attention of n_items query tokens over the FP16 cache (flash-decoding):
 * item i (query q[i], sequence d_seq[i]) attends to positions
 * 0..d_pos[i] of its sequence (causal). Positions are cut into n_split spans
 * of `span` positions; each block does one (item, kv head, span) with an
 * online softmax over all n_heads/n_kv_heads query heads of that kv head,
 * and the last block to finish merges the spans. Spans past an item's length are
 * empty (graph-friendly: the grid depends on n_ctx, not on positions). */
struct CudaAttnArgs {
    const float *q; /* (n_items, n_heads * head_dim), RoPE applied */
    CudaKvView kv;
    const int *d_pos; /* (n_items) */
    const int *d_seq; /* (n_items) */
    int n_items;
    int n_heads, n_kv_heads, head_dim;
    int span, n_split; /* n_split * span >= max position + 1 */
    /* > 0 (decode): the span adapts to each item's length, max(span,
     * ceil(len / split_target) rounded up to 16), so short contexts get
     * short spans (many blocks, short loops) and long ones few spans (a
     * cheap merge); needs n_split >= split_target. 0: fixed `span`. */
    int split_target;
    float *part_o;  /* (n_items, n_heads, n_split, head_dim) scratch */
    float *part_ml; /* (n_items, n_heads, n_split, 2) scratch */
    float *out;     /* (n_items, n_heads * head_dim) */
    /* (n_items, n_kv_heads) ints, zero before the first call and left zero
     * after each: the last span block of an (item, kv head) to finish merges
     * the spans (no combine kernel; one span: written directly). */
    int *counters;
    /* Decode only (every item a different sequence): when fuse_rope, q is
     * NOT rotated yet (it is rotated in shared memory, a.q is left as is) and
     * the block whose span holds d_pos[i] rotates k_new and stores k_new,
     * v_new (n_items, kvd) into the cache at d_pos[i] before reading it
     * (replaces cuda_rope_store_kv). */
    int fuse_rope;
    /* fuse_rope only: read the positions, the RoPE angles and the first
     * chunk of cached K/V rows before the PDL wait (none depends on the
     * previous kernel; the new position's row is replaced after it). */
    int early;
    CudaRopeParams rope;
    const float *k_new, *v_new;
    /* floats between consecutive items' q, k_new and v_new rows; 0: compact
     * (n_heads * head_dim for q, kvd for k_new / v_new). Decode with the
     * fused q|k|v matvec: q_dim + 2 kvd. */
    int64_t qkv_stride;
};
/* Largest (n_heads / n_kv_heads) * head_dim the attention kernel takes. */
#define CUDA_ATTN_MAX_GROUP_DIMS 2048
void cuda_attention(const CudaAttnArgs *a, cudaStream_t s);

/* Weight product for prefill (n tokens, any n): Y (n, rows) = X (n, cols)
 * W^T (+ bias) (+= Y when accumulate). cuBLAS path: rows of W dequantized
 * into an FP32 tile (cuda_dequant_rows) then cublasSgemm; custom path: the
 * same tile through an FP32 tiled kernel. Contracts: docs/cuda_gemm.md. */
struct CudaGemm {
    void *cublas;       /* cublasHandle_t, NULL when cuBLAS is off */
    float *tile;        /* FP32 dequantized rows of W */
    int64_t tile_elems; /* capacity of tile in floats */
};
void cuda_gemm_w(CudaGemm *g, uint32_t type, const void *W, int64_t rows, int64_t cols,
                 const float *X, int n, float *Y, const float *bias, int accumulate,
                 cudaStream_t s);
/* Row-major FP32: C[i][r] = sum_c A[r][c] * B[i][c] (+ C[i][r] when accumulate);
 * A (m, k) lda, B (n, k) ldb, C (n, m) ldc. The custom fallback kernel. */
void cuda_sgemm_nt(const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc,
                   int m, int n, int k, int accumulate, cudaStream_t s);

/* device.cu: chooses a device for `device` ("auto", "cuda", "cuda:N"); fills
 * why on failure. Returns the ordinal or -1. */
int cuda_select_device(const char *device, int require_sm52, char *why, int why_len);
/* Launches a trivial kernel on the current device: 0 or -1 with a message
 * naming the architectures built and the device's. */
int cuda_probe_device(int dev, char *why, int why_len);

#endif
