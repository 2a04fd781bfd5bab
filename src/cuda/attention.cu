/* attention.cu - causal attention over the FP16 KV cache, flash-decoding
 * style: every block computes one (item, kv head, span of positions) with an
 * online softmax for all query heads of the group, and a combine kernel
 * merges the spans. Serves decode (one item per sequence) and prefill (one
 * item per prompt token). FP32 math; halves only converted. */
#include <cmath>

#include "cuda/cuda_common.cuh"

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_SUB 64                                              /* positions per sub-chunk */
#define ATTN_MAX_PAIRS (CUDA_ATTN_MAX_GROUP_DIMS / ATTN_THREADS) /* (g, d) per thread */
#define ATTN_MAX_HD_LANE 8                                       /* head_dim <= 256 */
#define ATTN_PU 4 /* positions per warp whose K rows are loaded together */

/* grid (n_kv_heads, n_split, n_items). Dynamic shared memory:
 * qs[G*hd], sc[G*ATTN_SUB], m[G], l[G], rescale[G]. */
static __global__ void __launch_bounds__(ATTN_THREADS) attn_span_kernel(CudaAttnArgs a) {
    const int kvh = blockIdx.x, split = blockIdx.y, item = blockIdx.z;
    const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads;
    const int len = a.d_pos[item] + 1;
    const int start = split * a.span;
    if (start >= len) return; /* empty span: the combine kernel skips it */
    const int end = min(start + a.span, len);
    const int seq = a.d_seq[item];
    const int kvd = a.kv.kvd;
    const __half *K = a.kv.kv_l + (int64_t)(2 * seq) * a.kv.n_ctx * kvd + kvh * hd;
    const __half *V = a.kv.kv_l + (int64_t)(2 * seq + 1) * a.kv.n_ctx * kvd + kvh * hd;

    extern __shared__ float smem[];
    float *qs = smem;                /* (G, hd) */
    float *sc = qs + G * hd;         /* (G, ATTN_SUB) */
    float *mrow = sc + G * ATTN_SUB; /* (G) */
    float *lrow = mrow + G;
    float *resc = lrow + G;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const float qscale = 1.0f / sqrtf((float)hd);
    const float *qg = a.q + (int64_t)item * a.n_heads * hd + (int64_t)kvh * G * hd;
    for (int i = tid; i < G * hd; i += ATTN_THREADS) qs[i] = qg[i] * qscale;
    for (int g = tid; g < G; g += ATTN_THREADS) {
        mrow[g] = -INFINITY;
        lrow[g] = 0.0f;
    }
    float acc[ATTN_MAX_PAIRS];
#pragma unroll
    for (int k = 0; k < ATTN_MAX_PAIRS; k++) acc[k] = 0.0f;
    __syncthreads();

    for (int p0 = start; p0 < end; p0 += ATTN_SUB) {
        const int cnt = min(ATTN_SUB, end - p0);
        /* scores: one warp per position, ATTN_PU positions per warp in flight
         * (their K loads are issued together: decode is latency bound) */
        for (int j0 = warp; j0 < cnt; j0 += ATTN_WARPS * ATTN_PU) {
            float kreg[ATTN_PU][ATTN_MAX_HD_LANE];
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
}

/* grid (n_heads, n_items): merges the non-empty spans. */
static __global__ void attn_combine_kernel(CudaAttnArgs a) {
    const int h = blockIdx.x, item = blockIdx.y, hd = a.head_dim;
    const int len = a.d_pos[item] + 1;
    const int n_valid = min(a.n_split, (len + a.span - 1) / a.span);
    const int64_t base = ((int64_t)item * a.n_heads + h) * a.n_split;
    float M = -INFINITY;
    for (int c = 0; c < n_valid; c++) M = fmaxf(M, a.part_ml[(base + c) * 2]);
    float L = 0.0f;
    for (int c = 0; c < n_valid; c++)
        L += expf(a.part_ml[(base + c) * 2] - M) * a.part_ml[(base + c) * 2 + 1];
    const float inv = 1.0f / L;
    float *o = a.out + (int64_t)item * a.n_heads * hd + (int64_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0.0f;
        for (int c = 0; c < n_valid; c++)
            s += expf(a.part_ml[(base + c) * 2] - M) * a.part_o[(base + c) * hd + d];
        o[d] = s * inv;
    }
}

void cuda_attention(const CudaAttnArgs *a, cudaStream_t s) {
    if (a->n_items <= 0) return;
    const int G = a->n_heads / a->n_kv_heads;
    const size_t smem = sizeof(float) * ((size_t)G * a->head_dim + (size_t)G * ATTN_SUB + 3 * G);
    dim3 grid(a->n_kv_heads, a->n_split, a->n_items);
    attn_span_kernel<<<grid, ATTN_THREADS, smem, s>>>(*a);
    CUDA_CHECK_LAUNCH();
    dim3 grid2(a->n_heads, a->n_items);
    attn_combine_kernel<<<grid2, a->head_dim >= 128 ? 128 : 64, 0, s>>>(*a);
    CUDA_CHECK_LAUNCH();
}
