/* attention.cu - causal attention over the FP16 KV cache, flash-decoding
 * style: every block computes one (item, kv head, span of positions) with an
 * online softmax for all query heads of the group; the last block of an
 * (item, kv head) to finish merges the spans (one span: written directly).
 * Prefill (one item per prompt token) runs attn_span_kernel; decode (one item per sequence,
 * RoPE and the KV-cache store fused: CudaAttnArgs.fuse_rope) runs attn_dec_kernel, which stages
 * whole chunks of K/V rows in shared memory and starts before the PDL wait (attn_span_kernel
 * when head_dim % 8 != 0 or the chunk does not fit). FP32 math; halves only converted. */
#include <cmath>

#include "cuda/cuda_common.cuh"

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_SUB 64                                              /* positions per sub-chunk */
#define ATTN_MAX_PAIRS (CUDA_ATTN_MAX_GROUP_DIMS / ATTN_THREADS) /* (g, d) per thread */
#define ATTN_MAX_HD_LANE 8                                       /* head_dim <= 256 */
#define ATTN_PU 4 /* positions per warp whose K rows are loaded together */

/* Rotates element d (< rope_dim) of one head x with the angles of its pair
 * (cs[2 i], cs[2 i + 1] = cos, sin of cuda_rope_angle); the arithmetic of
 * cuda_rope_elem. */
static __device__ __forceinline__ float rope_rot(const float *x, int d, const float *cs,
                                                 const CudaRopeParams &p) {
    int i, a, b;
    cuda_rope_pair(d, p, i, a, b);
    const float c = cs[2 * i], sn = cs[2 * i + 1];
    const float x0 = x[a], x1 = x[b];
    return d == a ? x0 * c - x1 * sn : x0 * sn + x1 * c;
}

/* The first query of this block's head group: item `item`, KV head kvh
 * (G heads of hd) of the fused Q|K|V rows or of a.q. */
static __device__ __forceinline__ const float *q_group(const CudaAttnArgs &a, int item, int kvh,
                                                       int G, int hd) {
    const int64_t qst = a.qkv_stride ? a.qkv_stride : (int64_t)a.n_heads * hd;
    return a.q + (int64_t)item * qst + (int64_t)kvh * G * hd;
}
/* Fused RoPE (both kernels, NT threads): the group's queries, rotated on
 * their first rd dimensions (rot(v, d): element d of head vector v rotated)
 * and scaled by 1/sqrt(hd), into qs (G x hd); when `here` (the block's span
 * holds the new position) the token's new K row, rotated the same way, and V
 * row, rounded to FP16, go to put(d, k, v). */
template <int NT, class Rot, class Put>
static __device__ __forceinline__ void rope_q_new_row(const CudaAttnArgs &a, int item, int kvh,
                                                      int G, int hd, int kvd, int rd, bool here,
                                                      float *qs, Rot rot, Put put) {
    const int tid = threadIdx.x;
    const float qscale = 1.0f / sqrtf((float)hd);
    const float *qg = q_group(a, item, kvh, G, hd);
    for (int i = tid; i < G * hd; i += NT) {
        const int g = i / hd, d = i - g * hd;
        const float x = d < rd ? rot(qg + g * hd, d) : qg[i];
        qs[i] = x * qscale;
    }
    if (here) {
        const int64_t kst = a.qkv_stride ? a.qkv_stride : (int64_t)kvd;
        const float *kt = a.k_new + (int64_t)item * kst + kvh * hd;
        const float *vt = a.v_new + (int64_t)item * kst + kvh * hd;
        for (int d = tid; d < hd; d += NT)
            put(d, __float2half_rn(d < rd ? rot(kt, d) : kt[d]), __float2half_rn(vt[d]));
    }
}

/* One chunk's online-softmax step, one warp per query head (NW warps): sc[g * stride
 * + j] (j < cnt) become exp(score - new max); the running max, sum and the
 * factor that rescales the accumulated output (resc) are updated. */
template <int NW>
static __device__ __forceinline__ void softmax_chunk(float *sc, int stride, int cnt, int G,
                                                     float *mrow, float *lrow, float *resc) {
    const int lane = threadIdx.x & 31;
    for (int g = threadIdx.x >> 5; g < G; g += NW) {
        float mx = -INFINITY;
        for (int j = lane; j < cnt; j += 32) mx = fmaxf(mx, sc[g * stride + j]);
        mx = warp_max(mx);
        const float m_old = mrow[g];
        const float m_new = fmaxf(m_old, mx);
        float sum = 0.0f;
        for (int j = lane; j < cnt; j += 32) {
            const float e = expf(sc[g * stride + j] - m_new);
            sc[g * stride + j] = e;
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
}

/* Span `split` of an item's positions 0..pos: [start, end), n_valid spans
 * in all (decode, split_target > 0: ~split_target spans of >= a.span
 * positions, a multiple of 16; else spans of a.span). False when empty. */
struct SpanPos {
    int pos, start, end, n_valid;
};
static __device__ __forceinline__ bool span_pos(const CudaAttnArgs &a, int split, int item,
                                                SpanPos &sp) {
    sp.pos = a.d_pos[item];
    const int len = sp.pos + 1;
    int span = a.span;
    if (a.split_target > 0) {
        const int want = (len + a.split_target - 1) / a.split_target;
        span = max(a.span, (want + 15) & ~15);
    }
    sp.start = split * span;
    if (sp.start >= len) return false;
    sp.end = min(sp.start + span, len);
    sp.n_valid = min(a.n_split, (len + span - 1) / span);
    return true;
}
/* K (v = 0) or V (v = 1) of kv head kvh of sequence seq in this layer */
static __device__ __forceinline__ __half *kv_head(const CudaAttnArgs &a, int seq, int kvh, int v) {
    return a.kv.kv_l + (int64_t)(2 * seq + v) * a.kv.n_ctx * a.kv.kvd + kvh * a.head_dim;
}

/* After a block wrote its span's partial output (part_o): stores the
 * span's (max, sum) pairs (mrow, lrow) into part_ml; the last block of this
 * (item, kv head) to finish merges the n_valid spans into a.out (mrow, lrow
 * then serve as G floats of scratch). */
static __device__ void span_merge(const CudaAttnArgs &a, int item, int kvh, int split, int G,
                                  int hd, int n_valid, float *mrow, float *lrow) {
    __shared__ int s_last;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int nw = blockDim.x >> 5;
    for (int g = tid; g < G; g += blockDim.x) {
        const int h = kvh * G + g;
        float *ml = a.part_ml + (((int64_t)item * a.n_heads + h) * a.n_split + split) * 2;
        ml[0] = mrow[g];
        ml[1] = lrow[g];
    }
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
    for (int g = warp; g < G; g += nw) {
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
    for (int idx = tid; idx < G * hd; idx += blockDim.x) {
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

/* grid (n_kv_heads, n_split, n_items). Dynamic shared memory:
 * qs[G*hd], sc[G*ATTN_SUB], m[G], l[G], rescale[G]. */
static __global__ void __launch_bounds__(ATTN_THREADS) attn_span_kernel(CudaAttnArgs a) {
    cuda_pdl_trigger();
    cuda_pdl_wait();
    const int kvh = blockIdx.x, split = blockIdx.y, item = blockIdx.z;
    const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads;
    SpanPos sp;
    if (!span_pos(a, split, item, sp)) return; /* empty span: not counted */
    const int pos = sp.pos, start = sp.start, end = sp.end, n_valid = sp.n_valid;
    const int seq = a.d_seq[item];
    const int kvd = a.kv.kvd;
    __half *Kw = kv_head(a, seq, kvh, 0), *Vw = kv_head(a, seq, kvh, 1);
    const __half *K = Kw, *V = Vw;

    extern __shared__ float smem[];
    float *qs = smem;                /* (G, hd) */
    float *sc = qs + G * hd;         /* (G, ATTN_SUB) */
    float *mrow = sc + G * ATTN_SUB; /* (G) */
    float *lrow = mrow + G;
    float *resc = lrow + G;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (a.fuse_rope) {
        __half *kc = Kw + (int64_t)pos * kvd, *vc = Vw + (int64_t)pos * kvd;
        rope_q_new_row<ATTN_THREADS>(
            a, item, kvh, G, hd, kvd, a.rope.rope_dim, start <= pos && pos < end, qs,
            [&](const float *v, int d) { return cuda_rope_elem(v, d, pos, a.rope); },
            [&](int d, __half k, __half v) { kc[d] = k, vc[d] = v; });
    } else {
        const float qscale = 1.0f / sqrtf((float)hd);
        const float *qg = q_group(a, item, kvh, G, hd);
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
        softmax_chunk<ATTN_WARPS>(sc, ATTN_SUB, cnt, G, mrow, lrow, resc);
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
    span_merge(a, item, kvh, split, G, hd, n_valid, mrow, lrow);
}

/* ---- decode: attn_dec_kernel ----
 * One block per (item, kv head, span) as above, for decode (fuse_rope,
 * adaptive spans). The span is read in chunks of dec_chunk(hd) positions:
 * all K and V rows of a chunk are loaded at once with 16-byte loads into
 * shared memory (one memory round trip per chunk, not one per 16
 * positions), and scores, softmax and P.V run from shared memory. The first
 * chunk and the RoPE angles are loaded before the PDL wait (early): the
 * rows before the new position were written by earlier steps; the new
 * position's row is written into the staged chunk and the cache after the
 * wait. Scores: 8 lanes per position (half2), 4 positions per warp step.
 * P.V: a thread per (head, column pair), positions split over `parts`
 * threads when the pairs are fewer than the threads (summed in a fixed
 * order). Needs head_dim % 8 == 0 and the shared memory of dec_smem(). */
#define DEC_THREADS 128
#define DEC_PAIRS (CUDA_ATTN_MAX_GROUP_DIMS / 2 / DEC_THREADS) /* column pairs per thread */
#define DEC_STAGE 8 /* 16-byte loads per thread and matrix for one chunk */
static __host__ __device__ __forceinline__ int dec_chunk(int hd) { return hd <= 128 ? 64 : 32; }
static size_t dec_smem(int G, int hd, int rope_dim) {
    const int C = dec_chunk(hd);
    return sizeof(__half) * 2 * (size_t)C * (hd + 8) +
           sizeof(float) * ((size_t)G * hd + (size_t)G * C + 3 * G + rope_dim);
}

static __global__ void __launch_bounds__(DEC_THREADS) attn_dec_kernel(CudaAttnArgs a) {
    cuda_pdl_trigger();
    const bool early = a.early != 0;
    if (!early) cuda_pdl_wait();
    const int kvh = blockIdx.x, split = blockIdx.y, item = blockIdx.z;
    const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads, C = dec_chunk(hd);
    SpanPos sp;
    if (!span_pos(a, split, item, sp)) return; /* empty span: not counted */
    const int pos = sp.pos, start = sp.start, end = sp.end, n_valid = sp.n_valid;
    const int seq = a.d_seq[item];
    const int kvd = a.kv.kvd;
    __half *Kw = kv_head(a, seq, kvh, 0), *Vw = kv_head(a, seq, kvh, 1);
    const int RS = hd + 8; /* staged row stride in halves (16-byte rows, banks spread) */

    extern __shared__ float4 smem4[];
    __half *ks = reinterpret_cast<__half *>(smem4);     /* (C, RS) */
    __half *vs = ks + C * RS;                           /* (C, RS) */
    float *qs = reinterpret_cast<float *>(vs + C * RS); /* (G, hd), scaled */
    float *sc = qs + G * hd;                            /* (G, C) */
    float *mrow = sc + G * C, *lrow = mrow + G, *resc = lrow + G;
    float *cs = resc + G;                         /* (rope_dim / 2, 2): cos, sin */
    float2 *red = reinterpret_cast<float2 *>(ks); /* after the last scores: parts' sums */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int rd = a.rope.rope_dim, vpr = hd / 8; /* 16-byte pieces per row */
    uint4 kr[DEC_STAGE], vr[DEC_STAGE];
    auto stage_load = [&](int p0, int cnt) {
#pragma unroll
        for (int i = 0; i < DEC_STAGE; i++) {
            const int e = tid + DEC_THREADS * i;
            if (e < cnt * vpr) {
                const int r = e / vpr, c = e - r * vpr;
                kr[i] = reinterpret_cast<const uint4 *>(Kw + (int64_t)(p0 + r) * kvd)[c];
                vr[i] = reinterpret_cast<const uint4 *>(Vw + (int64_t)(p0 + r) * kvd)[c];
            }
        }
    };
    auto stage_store = [&](int cnt) {
#pragma unroll
        for (int i = 0; i < DEC_STAGE; i++) {
            const int e = tid + DEC_THREADS * i;
            if (e < cnt * vpr) {
                const int r = e / vpr, c = e - r * vpr;
                reinterpret_cast<uint4 *>(ks + r * RS)[c] = kr[i];
                reinterpret_cast<uint4 *>(vs + r * RS)[c] = vr[i];
            }
        }
    };
    stage_load(start, min(C, end - start));
    for (int i = tid; i < rd / 2; i += DEC_THREADS) {
        const float t = cuda_rope_angle(i, pos, a.rope);
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
    }
    for (int g = tid; g < G; g += DEC_THREADS) {
        mrow[g] = -INFINITY;
        lrow[g] = 0.0f;
    }
    stage_store(min(C, end - start));
    if (early) cuda_pdl_wait();
    __syncthreads(); /* cs */

    const int jr = pos - start; /* the new row in the first chunk, if there */
    rope_q_new_row<DEC_THREADS>(
        a, item, kvh, G, hd, kvd, rd, start <= pos && pos < end, qs,
        [&](const float *v, int d) { return rope_rot(v, d, cs, a.rope); },
        [&](int d, __half k, __half v) {
            Kw[(int64_t)pos * kvd + d] = k;
            Vw[(int64_t)pos * kvd + d] = v;
            if (jr < C) {
                ks[jr * RS + d] = k;
                vs[jr * RS + d] = v;
            }
        });

    const int np = G * hd / 2; /* column pairs */
    const int parts = np >= DEC_THREADS ? 1 : DEC_THREADS / np;
    const int part = np >= DEC_THREADS ? 0 : tid / np;
    const int pi0 = np >= DEC_THREADS ? tid : tid - part * np;
    float2 acc[DEC_PAIRS];
#pragma unroll
    for (int k = 0; k < DEC_PAIRS; k++) acc[k] = make_float2(0.0f, 0.0f);

    for (int p0 = start; p0 < end; p0 += C) {
        const int cnt = min(C, end - p0);
        if (p0 != start) { /* later chunks (long spans): after the previous one is used */
            __syncthreads();
            stage_load(p0, cnt);
            stage_store(cnt);
        }
        __syncthreads();
        /* scores: 8 lanes per position, 4 positions per warp step */
        {
            const int s8 = lane & 7;
            for (int jb = warp * 4; jb < cnt; jb += (DEC_THREADS / 32) * 4) {
                const int j = jb + (lane >> 3);
                const __half2 *k2 = reinterpret_cast<const __half2 *>(ks + (j < cnt ? j : 0) * RS);
                for (int g = 0; g < G; g++) {
                    const float2 *q2 = reinterpret_cast<const float2 *>(qs + g * hd);
                    float dot = 0.0f;
#pragma unroll 4
                    for (int t = s8; t < hd / 2; t += 8) {
                        const float2 kf = __half22float2(k2[t]), qf = q2[t];
                        dot = fmaf(kf.x, qf.x, dot);
                        dot = fmaf(kf.y, qf.y, dot);
                    }
                    dot += __shfl_xor_sync(0xffffffffu, dot, 4);
                    dot += __shfl_xor_sync(0xffffffffu, dot, 2);
                    dot += __shfl_xor_sync(0xffffffffu, dot, 1);
                    if (s8 == 0 && j < cnt) sc[g * C + j] = dot;
                }
            }
        }
        __syncthreads();
        softmax_chunk<DEC_THREADS / 32>(sc, C, cnt, G, mrow, lrow, resc);
        __syncthreads();
        /* acc = acc * rescale + sum_j p[g][j] V[j][pair] */
        if (part < parts) {
#pragma unroll
            for (int k = 0; k < DEC_PAIRS; k++) {
                const int idx = pi0 + k * DEC_THREADS;
                if (idx < np) {
                    const int g = 2 * idx / hd, t = idx - g * (hd / 2);
                    const float *pg = sc + g * C;
                    const __half2 *v2 = reinterpret_cast<const __half2 *>(vs) + t;
                    float2 sm = make_float2(0.0f, 0.0f);
#pragma unroll 8
                    for (int j = part; j < cnt; j += parts) {
                        const float2 vf = __half22float2(v2[j * (RS / 2)]);
                        sm.x = fmaf(pg[j], vf.x, sm.x);
                        sm.y = fmaf(pg[j], vf.y, sm.y);
                    }
                    acc[k].x = acc[k].x * resc[g] + sm.x;
                    acc[k].y = acc[k].y * resc[g] + sm.y;
                }
            }
        }
    }
    if (parts > 1) { /* the position parts of each pair, added in part order */
        if (part > 0 && part < parts) red[tid] = acc[0]; /* ks: last read before the softmax */
        __syncthreads();
        if (part == 0)
            for (int q = 1; q < parts; q++) {
                const float2 o = red[q * np + pi0];
                acc[0].x += o.x;
                acc[0].y += o.y;
            }
    }
    if (part != 0) {
        if (n_valid == 1) return;
    } else {
#pragma unroll
        for (int k = 0; k < DEC_PAIRS; k++) {
            const int idx = pi0 + k * DEC_THREADS;
            if (idx < np) {
                const int g = 2 * idx / hd, d = 2 * (idx - g * (hd / 2));
                if (n_valid == 1) { /* the only span: normalize and write the output */
                    const float il = 1.0f / lrow[g];
                    *reinterpret_cast<float2 *>(a.out + (int64_t)item * a.n_heads * hd +
                                                (int64_t)kvh * G * hd + 2 * idx) =
                        make_float2(acc[k].x * il, acc[k].y * il);
                } else {
                    const int h = kvh * G + g;
                    *reinterpret_cast<float2 *>(
                        a.part_o + (((int64_t)item * a.n_heads + h) * a.n_split + split) * hd + d) =
                        acc[k];
                }
            }
        }
        if (n_valid == 1) return;
    }
    span_merge(a, item, kvh, split, G, hd, n_valid, mrow, lrow);
}

void cuda_attention(const CudaAttnArgs *a, cudaStream_t s) {
    if (a->n_items <= 0) return;
    const int G = a->n_heads / a->n_kv_heads;
    static const int dec_on = !env_off("M40LLM_CUDA_ATTN_DEC"); /* 0: the span kernel (A/B) */
    if (dec_on && a->fuse_rope && a->split_target > 0 && a->head_dim % 8 == 0) {
        const size_t smem = dec_smem(G, a->head_dim, a->rope.rope_dim);
        if (smem + 64 <= 48 * 1024) { /* + span_merge's static int */
            dim3 grid(a->n_kv_heads, a->n_split, a->n_items);
            cuda_launch(attn_dec_kernel, grid, DEC_THREADS, smem, s, *a);
            CUDA_CHECK_LAUNCH();
            return;
        }
    }
    const size_t smem = sizeof(float) * ((size_t)G * a->head_dim + (size_t)G * ATTN_SUB + 3 * G);
    dim3 grid(a->n_kv_heads, a->n_split, a->n_items);
    cuda_launch(attn_span_kernel, grid, ATTN_THREADS, smem, s, *a);
    CUDA_CHECK_LAUNCH();
}
