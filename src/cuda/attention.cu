/* attention.cu - causal attention over the FP16 KV cache, flash-decoding
 * style: every block computes one (item, kv head, span of positions) with an
 * online softmax for all query heads of the group; the last block of an
 * (item, kv head) to finish merges the spans (one span: written directly).
 * Decode can fuse RoPE and the KV-cache store (CudaAttnArgs.fuse_rope). Serves decode (one item per
 * sequence) and prefill (one item per prompt token). FP32 math; halves only converted. */
#include <cmath>

#include "cuda/cuda_common.cuh"

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_SUB 64                                              /* positions per sub-chunk */
#define ATTN_MAX_PAIRS (CUDA_ATTN_MAX_GROUP_DIMS / ATTN_THREADS) /* (g, d) per thread */
#define ATTN_MAX_HD_LANE 8                                       /* head_dim <= 256 */
#define ATTN_PU 4 /* positions per warp whose K rows are loaded together */

/* Rotates element d (< rope_dim) of one head x with the angles of its pair
 * (cs[2 i], cs[2 i + 1] = cos, sin; rope_angles); the arithmetic of
 * cuda_rope_elem. */
static __device__ __forceinline__ float rope_rot(const float *x, int d, const float *cs,
                                                 const CudaRopeParams &p) {
    int i, a, b;
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
    const float c = cs[2 * i], sn = cs[2 * i + 1];
    const float x0 = x[a], x1 = x[b];
    return d == a ? x0 * c - x1 * sn : x0 * sn + x1 * c;
}

static __device__ __forceinline__ void prefetch_l2(const void *p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/* grid (n_kv_heads, n_split, n_items). Dynamic shared memory:
 * qs[G*hd], sc[G*ATTN_SUB], m[G], l[G], rescale[G], cs[rope_dim] (fuse_rope).
 * Decode (fuse_rope): what does not depend on the previous kernel is done
 * before the PDL wait: the positions, the RoPE angles, the first K rows of
 * the span into registers (positions before the new one were written by
 * earlier steps; the new one is loaded again after this block stores it)
 * and an L2 prefetch of the span's V rows. */
static __global__ void __launch_bounds__(ATTN_THREADS) attn_span_kernel(CudaAttnArgs a) {
    cuda_pdl_trigger();
    const bool early = a.fuse_rope && a.early;
    if (!early) cuda_pdl_wait();
    const int kvh = blockIdx.x, split = blockIdx.y, item = blockIdx.z;
    const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads;
    const int pos = a.d_pos[item];
    const int len = pos + 1;
    int span = a.span;
    if (a.split_target > 0) { /* decode: ~split_target spans of >= a.span positions */
        const int want = (len + a.split_target - 1) / a.split_target;
        span = max(a.span, (want + 15) & ~15);
    }
    const int start = split * span;
    if (start >= len) return; /* empty span: not counted */
    const int end = min(start + span, len);
    const int n_valid = min(a.n_split, (len + span - 1) / span);
    const int seq = a.d_seq[item];
    const int kvd = a.kv.kvd;
    __half *Kw = a.kv.kv_l + (int64_t)(2 * seq) * a.kv.n_ctx * kvd + kvh * hd;
    __half *Vw = a.kv.kv_l + (int64_t)(2 * seq + 1) * a.kv.n_ctx * kvd + kvh * hd;
    const __half *K = Kw, *V = Vw;

    extern __shared__ float smem[];
    float *qs = smem;                /* (G, hd) */
    float *sc = qs + G * hd;         /* (G, ATTN_SUB) */
    float *mrow = sc + G * ATTN_SUB; /* (G) */
    float *lrow = mrow + G;
    float *resc = lrow + G;
    float *cs = resc + G; /* (rope_dim / 2, 2): cos, sin per rotated pair */
    __shared__ int s_last;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const bool holds_new = a.fuse_rope && start <= pos && pos < end; /* stores k, v at pos */
    /* K rows of a group of positions (one warp per position, ATTN_PU per warp
     * in flight: decode is latency bound) */
    float kreg[ATTN_PU][ATTN_MAX_HD_LANE];
    auto load_k = [&](int p0, int j0, int cnt) {
#pragma unroll
        for (int u = 0; u < ATTN_PU; u++) {
            const int j = j0 + u * ATTN_WARPS;
            const __half *kr = K + (int64_t)(p0 + (j < cnt ? j : 0)) * kvd;
#pragma unroll
            for (int i = 0; i < ATTN_MAX_HD_LANE; i++) {
                const int d = lane + 32 * i;
                kreg[u][i] = (d < hd && j < cnt) ? __half2float(kr[d]) : 0.0f;
            }
        }
    };
    if (a.fuse_rope) {
        const int rd = a.rope.rope_dim;
        for (int i = tid; i < rd / 2; i += ATTN_THREADS) {
            float theta = (float)pos;
            for (int j = 0; j < i; j++) theta *= a.rope.theta_scale;
            const float t = a.rope.pos_scale * theta;
            cs[2 * i] = cosf(t);
            cs[2 * i + 1] = sinf(t);
        }
    }
    if (early) {
        const int lines = (hd * 2 + 127) / 128; /* 128-byte lines per row */
        for (int i = tid; i < (end - start) * lines; i += ATTN_THREADS)
            prefetch_l2(V + (int64_t)(start + i / lines) * kvd + (i % lines) * 64);
        load_k(start, warp, min(ATTN_SUB, end - start));
        cuda_pdl_wait();
    }
    const float qscale = 1.0f / sqrtf((float)hd);
    const int64_t qst = a.qkv_stride ? a.qkv_stride : (int64_t)a.n_heads * hd;
    const int64_t kst = a.qkv_stride ? a.qkv_stride : (int64_t)kvd;
    const float *qg = a.q + (int64_t)item * qst + (int64_t)kvh * G * hd;
    if (a.fuse_rope) {
        const int rd = a.rope.rope_dim;
        __syncthreads(); /* cs */
        for (int i = tid; i < G * hd; i += ATTN_THREADS) {
            const int g = i / hd, d = i - g * hd;
            const float x = d < rd ? rope_rot(qg + g * hd, d, cs, a.rope) : qg[i];
            qs[i] = x * qscale;
        }
        if (holds_new) { /* this block's span holds the new position */
            const float *kt = a.k_new + (int64_t)item * kst + kvh * hd;
            const float *vt = a.v_new + (int64_t)item * kst + kvh * hd;
            __half *kc = Kw + (int64_t)pos * kvd, *vc = Vw + (int64_t)pos * kvd;
            for (int d = tid; d < hd; d += ATTN_THREADS) {
                kc[d] = __float2half_rn(d < rd ? rope_rot(kt, d, cs, a.rope) : kt[d]);
                vc[d] = __float2half_rn(vt[d]);
            }
        }
    } else {
        for (int i = tid; i < G * hd; i += ATTN_THREADS) qs[i] = qg[i] * qscale;
    }
    for (int g = tid; g < G; g += ATTN_THREADS) {
        mrow[g] = -INFINITY;
        lrow[g] = 0.0f;
    }
    float acc[ATTN_MAX_PAIRS];
#pragma unroll
    for (int k = 0; k < ATTN_MAX_PAIRS; k++) acc[k] = 0.0f;
    __syncthreads(); /* also orders the K/V store above before the reads below */

    for (int p0 = start; p0 < end; p0 += ATTN_SUB) {
        const int cnt = min(ATTN_SUB, end - p0);
        /* scores: one warp per position, ATTN_PU positions per warp in flight
         * (their K loads are issued together: decode is latency bound) */
        for (int j0 = warp; j0 < cnt; j0 += ATTN_WARPS * ATTN_PU) {
            if (!early || p0 != start || j0 != warp) {
                load_k(p0, j0, cnt);
            } else if (holds_new) { /* the preloaded rows: the new position's was stored since */
#pragma unroll
                for (int u = 0; u < ATTN_PU; u++) {
                    if (start + j0 + u * ATTN_WARPS == pos) {
                        const __half *kr = K + (int64_t)pos * kvd;
#pragma unroll
                        for (int i = 0; i < ATTN_MAX_HD_LANE; i++) {
                            const int d = lane + 32 * i;
                            kreg[u][i] = d < hd ? __half2float(kr[d]) : 0.0f;
                        }
                    }
                }
            }
            for (int g = 0; g < G; g++) {
#pragma unroll
                for (int u = 0; u < ATTN_PU; u++) {
                    float dot = 0.0f;
#pragma unroll
                    for (int i = 0; i < ATTN_MAX_HD_LANE; i++) {
                        const int d = lane + 32 * i;
                        if (d < hd) dot += kreg[u][i] * qs[g * hd + d];
                    }
                    dot = warp_sum(dot);
                    const int j = j0 + u * ATTN_WARPS;
                    if (lane == 0 && j < cnt) sc[g * ATTN_SUB + j] = dot;
                }
            }
        }
        __syncthreads();
        /* online softmax: one warp per query head */
        for (int g = warp; g < G; g += ATTN_WARPS) {
            float mx = -INFINITY;
            for (int j = lane; j < cnt; j += 32) mx = fmaxf(mx, sc[g * ATTN_SUB + j]);
            mx = warp_max(mx);
            const float m_old = mrow[g];
            const float m_new = fmaxf(m_old, mx);
            float sum = 0.0f;
            for (int j = lane; j < cnt; j += 32) {
                const float e = expf(sc[g * ATTN_SUB + j] - m_new);
                sc[g * ATTN_SUB + j] = e;
                sum += e;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                const float r = expf(m_old - m_new); /* 0 when m_old = -inf */
                resc[g] = r;
                lrow[g] = lrow[g] * r + sum;
                mrow[g] = m_new;
            }
        }
        __syncthreads();
        /* acc[g][d] = acc * rescale + sum_j p[g][j] V[j][d] */
#pragma unroll
        for (int k = 0; k < ATTN_MAX_PAIRS; k++) {
            const int idx = tid + k * ATTN_THREADS;
            if (idx < G * hd) {
                const int g = idx / hd, d = idx - g * hd;
                const float *pg = sc + g * ATTN_SUB;
                const __half *vr = V + (int64_t)p0 * kvd + d;
                float s = 0.0f;
#pragma unroll 8
                for (int j = 0; j < cnt; j++) s += pg[j] * __half2float(vr[(int64_t)j * kvd]);
                acc[k] = acc[k] * resc[g] + s;
            }
        }
        __syncthreads();
    }

    if (n_valid == 1) { /* the only span: normalize and write the output */
#pragma unroll
        for (int k = 0; k < ATTN_MAX_PAIRS; k++) {
            const int idx = tid + k * ATTN_THREADS;
            if (idx < G * hd) {
                const int g = idx / hd;
                a.out[(int64_t)item * a.n_heads * hd + (int64_t)kvh * G * hd + idx] =
                    acc[k] / lrow[g];
            }
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < ATTN_MAX_PAIRS; k++) {
        const int idx = tid + k * ATTN_THREADS;
        if (idx < G * hd) {
            const int g = idx / hd, d = idx - g * hd;
            const int h = kvh * G + g;
            a.part_o[(((int64_t)item * a.n_heads + h) * a.n_split + split) * hd + d] = acc[k];
        }
    }
    for (int g = tid; g < G; g += ATTN_THREADS) {
        const int h = kvh * G + g;
        float *ml = a.part_ml + (((int64_t)item * a.n_heads + h) * a.n_split + split) * 2;
        ml[0] = mrow[g];
        ml[1] = lrow[g];
    }
    /* the last block of this (item, kv head) to finish merges the spans */
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        int *cnt = a.counters + (int64_t)item * a.n_kv_heads + kvh;
        const int prev = atomicAdd(cnt, 1);
        s_last = prev == n_valid - 1;
        if (s_last) *cnt = 0; /* every other block has counted: reset for the next call */
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    for (int g = warp; g < G; g += ATTN_WARPS) {
        const float *ml = a.part_ml + ((int64_t)item * a.n_heads + kvh * G + g) * a.n_split * 2;
        float M = -INFINITY;
        for (int c = lane; c < n_valid; c += 32) M = fmaxf(M, __ldcg(ml + 2 * c));
        M = warp_max(M);
        float L = 0.0f;
        for (int c = lane; c < n_valid; c += 32)
            L += expf(__ldcg(ml + 2 * c) - M) * __ldcg(ml + 2 * c + 1);
        L = warp_sum(L);
        if (lane == 0) {
            mrow[g] = M;
            lrow[g] = 1.0f / L;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < G * hd; idx += ATTN_THREADS) {
        const int g = idx / hd, d = idx - g * hd;
        const int64_t base = (int64_t)item * a.n_heads + kvh * G + g;
        const float *ml = a.part_ml + base * a.n_split * 2;
        const float *po = a.part_o + base * a.n_split * hd + d;
        const float M = mrow[g];
        float sacc = 0.0f;
        for (int c = 0; c < n_valid; c++)
            sacc += expf(__ldcg(ml + 2 * c) - M) * __ldcg(po + (int64_t)c * hd);
        a.out[(int64_t)item * a.n_heads * hd + base % a.n_heads * hd + d] = sacc * lrow[g];
    }
}

void cuda_attention(const CudaAttnArgs *a, cudaStream_t s) {
    if (a->n_items <= 0) return;
    const int G = a->n_heads / a->n_kv_heads;
    const size_t smem = sizeof(float) * ((size_t)G * a->head_dim + (size_t)G * ATTN_SUB + 3 * G +
                                         (a->fuse_rope ? (size_t)a->rope.rope_dim : 0));
    dim3 grid(a->n_kv_heads, a->n_split, a->n_items);
    cuda_launch(attn_span_kernel, grid, ATTN_THREADS, smem, s, *a);
    CUDA_CHECK_LAUNCH();
}
