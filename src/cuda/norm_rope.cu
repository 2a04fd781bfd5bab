/* norm_rope.cu - RMSNorm, and RoPE fused with the FP16 KV-cache store. */
#include "cuda/cuda_common.cuh"

/* One block per row. PER > 0: the row (dim <= PER * blockDim) is held in
 * registers and the weights are loaded before the reduction (one pass over
 * memory, loads issued together: decode rows are latency bound); PER == 0:
 * any dim, two passes. Same summation order either way. */
template <int PER>
static __global__ void rmsnorm_kernel(const float *__restrict__ x, const float *__restrict__ w,
                                      float *__restrict__ y, int dim, float eps) {
    cuda_pdl_trigger();
    const float *xr = x + (int64_t)blockIdx.x * dim;
    float *yr = y + (int64_t)blockIdx.x * dim;
    float ss = 0.0f;
    float xv[PER > 0 ? PER : 1], wv[PER > 0 ? PER : 1];
    if (PER > 0) { /* the norm weights (constant) before the wait, x after it */
#pragma unroll
        for (int k = 0; k < PER; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            wv[k] = i < dim ? __ldg(w + i) : 0.0f;
        }
    }
    cuda_pdl_wait();
    if (PER > 0) {
#pragma unroll
        for (int k = 0; k < PER; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            xv[k] = i < dim ? xr[i] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < PER; k++) ss += xv[k] * xv[k];
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    }
    __shared__ float red[32];
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0f;
        v = warp_sum(v);
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(red[0] / (float)dim + eps);
    if (PER > 0) {
#pragma unroll
        for (int k = 0; k < PER; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < dim) yr[i] = xv[k] * scale * wv[k];
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
    }
}

void cuda_rmsnorm(const float *x, const float *w, float *y, int n, int dim, float eps,
                  cudaStream_t s) {
    if (n <= 0) return;
    int threads = dim >= 1024 ? 1024 : dim >= 256 ? 256 : 64;
    if (dim <= threads * 4)
        cuda_launch(rmsnorm_kernel<4>, n, threads, 0, s, x, w, y, dim, eps);
    else if (dim <= threads * 8)
        cuda_launch(rmsnorm_kernel<8>, n, threads, 0, s, x, w, y, dim, eps);
    else
        cuda_launch(rmsnorm_kernel<0>, n, threads, 0, s, x, w, y, dim, eps);
    CUDA_CHECK_LAUNCH();
}

/* Angle of pair i at position pos, as the CPU backend (and llama.cpp's
 * ggml_rope_cache_init) computes it: theta = pos, multiplied i times by
 * theta_scale in float, then times pos_scale. */
static __device__ __forceinline__ void rope_cs(int pos, int i, const CudaRopeParams &p, float *c,
                                               float *sn) {
    float theta = (float)pos;
    for (int j = 0; j < i; j++) theta *= p.theta_scale;
    const float t = p.pos_scale * theta;
    *c = cosf(t);
    *sn = sinf(t);
}

/* Indices of the two elements of pair i within a head. */
static __device__ __forceinline__ void rope_pair(int i, const CudaRopeParams &p, int *a, int *b) {
    if (p.neox) {
        *a = i;
        *b = i + p.rope_dim / 2;
    } else {
        *a = 2 * i;
        *b = 2 * i + 1;
    }
}

/* grid (tokens, n_heads + n_kv_heads): one block per head of one token;
 * kv-head blocks also store that head's K and V into the cache. */
static __global__ void rope_store_kernel(CudaRopeParams p, float *__restrict__ q,
                                         const float *__restrict__ k, const float *__restrict__ v,
                                         const int *__restrict__ d_pos,
                                         const int *__restrict__ d_seq, CudaKvView kv) {
    cuda_pdl_trigger();
    cuda_pdl_wait();
    const int t = blockIdx.x, h = blockIdx.y;
    const int pos = d_pos[t];
    const int hd = p.head_dim, half_rd = p.rope_dim / 2;
    if (h < p.n_heads) {
        float *qh = q + ((int64_t)t * p.n_heads + h) * hd;
        for (int i = threadIdx.x; i < half_rd; i += blockDim.x) {
            int a, b;
            rope_pair(i, p, &a, &b);
            float c, sn;
            rope_cs(pos, i, p, &c, &sn);
            const float x0 = qh[a], x1 = qh[b];
            qh[a] = x0 * c - x1 * sn;
            qh[b] = x0 * sn + x1 * c;
        }
        return;
    }
    const int kh = h - p.n_heads;
    const int seq = d_seq[t];
    const float *kt = k + (int64_t)t * kv.kvd + kh * hd;
    const float *vt = v + (int64_t)t * kv.kvd + kh * hd;
    __half *kc = kv.kv_l + ((int64_t)(2 * seq) * kv.n_ctx + pos) * kv.kvd + kh * hd;
    __half *vc = kv.kv_l + ((int64_t)(2 * seq + 1) * kv.n_ctx + pos) * kv.kvd + kh * hd;
    for (int i = threadIdx.x; i < half_rd; i += blockDim.x) {
        int a, b;
        rope_pair(i, p, &a, &b);
        float c, sn;
        rope_cs(pos, i, p, &c, &sn);
        const float x0 = kt[a], x1 = kt[b];
        kc[a] = __float2half_rn(x0 * c - x1 * sn);
        kc[b] = __float2half_rn(x0 * sn + x1 * c);
    }
    for (int d = p.rope_dim + threadIdx.x; d < hd; d += blockDim.x) kc[d] = __float2half_rn(kt[d]);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) vc[d] = __float2half_rn(vt[d]);
}

void cuda_rope_store_kv(const CudaRopeParams *p, float *q, const float *k, const float *v, int n,
                        const int *d_pos, const int *d_seq, CudaKvView kv, cudaStream_t s) {
    if (n <= 0) return;
    dim3 grid(n, p->n_heads + p->n_kv_heads);
    cuda_launch(rope_store_kernel, grid, 64, 0, s, *p, q, k, v, d_pos, d_seq, kv);
    CUDA_CHECK_LAUNCH();
}

int cuda_pdl_on = 0;

int cuda_pdl_supported(void) {
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, rmsnorm_kernel<4>) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
#if CUDART_VERSION >= 12030
    return fa.binaryVersion >= 90 && fa.ptxVersion >= 90;
#else
    return 0;
#endif
}
