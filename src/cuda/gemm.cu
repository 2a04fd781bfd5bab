/* gemm.cu - weight products for prefill: W rows dequantized into an FP32
 * tile, then cublasSgemm (FP32 compute, no TF32) or the custom tiled FP32
 * kernel below. Layout contracts: docs/cuda_gemm.md. */
#include <cublas_v2.h>

#include "cuda/cuda_common.cuh"

#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            fprintf(stderr, "m40llm: cuBLAS error %d in %s at %s:%d\n", (int)st_, __func__,        \
                    __FILE__, __LINE__);                                                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define GM_BM 64 /* rows of A (output columns) per block */
#define GM_BN 64 /* rows of B (tokens) per block */
#define GM_BK 16
#define GM_THREADS 256

/* C[i][r] (+)= sum_c A[r][c] B[i][c]; grid (ceil(m/64), ceil(n/64)), each
 * thread a 4x4 block of C. Shared tiles are stored k-major (transposed). */
static __global__ void __launch_bounds__(GM_THREADS)
    sgemm_nt_kernel(const float *__restrict__ A, int64_t lda, const float *__restrict__ B,
                    int64_t ldb, float *__restrict__ C, int64_t ldc, int m, int n, int k,
                    int accumulate) {
    __shared__ float As[GM_BK][GM_BM + 4];
    __shared__ float Bs[GM_BK][GM_BN + 4];
    const int r0 = blockIdx.x * GM_BM, i0 = blockIdx.y * GM_BN;
    const int tid = threadIdx.x;
    const int tr = (tid % 16) * 4, ti = (tid / 16) * 4;
    float acc[4][4] = {};
    /* loader: 256 threads x 4 consecutive k of one row */
    const int lrow = tid / 4, lk = (tid % 4) * 4;
    for (int k0 = 0; k0 < k; k0 += GM_BK) {
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int kk = k0 + lk + u;
            const int ra = r0 + lrow, ib = i0 + lrow;
            As[lk + u][lrow] = (ra < m && kk < k) ? A[(int64_t)ra * lda + kk] : 0.0f;
            Bs[lk + u][lrow] = (ib < n && kk < k) ? B[(int64_t)ib * ldb + kk] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GM_BK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                a[u] = As[kk][tr + u];
                b[u] = Bs[kk][ti + u];
            }
#pragma unroll
            for (int x = 0; x < 4; x++)
#pragma unroll
                for (int y = 0; y < 4; y++) acc[y][x] += a[x] * b[y];
        }
        __syncthreads();
    }
#pragma unroll
    for (int y = 0; y < 4; y++) {
        const int i = i0 + ti + y;
        if (i >= n) continue;
#pragma unroll
        for (int x = 0; x < 4; x++) {
            const int r = r0 + tr + x;
            if (r >= m) continue;
            float *c = C + (int64_t)i * ldc + r;
            *c = accumulate ? *c + acc[y][x] : acc[y][x];
        }
    }
}

void cuda_sgemm_nt(const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc,
                   int m, int n, int k, int accumulate, cudaStream_t s) {
    if (m <= 0 || n <= 0) return;
    dim3 grid((m + GM_BM - 1) / GM_BM, (n + GM_BN - 1) / GM_BN);
    sgemm_nt_kernel<<<grid, GM_THREADS, 0, s>>>(A, lda, B, ldb, C, ldc, m, n, k, accumulate);
    CUDA_CHECK_LAUNCH();
}

void cuda_gemm_w(CudaGemm *g, uint32_t type, const void *W, int64_t rows, int64_t cols,
                 const float *X, int n, float *Y, const float *bias, int accumulate,
                 cudaStream_t s) {
    if (n <= 0) return;
    int64_t tr = g->tile_elems / cols;
    if (tr > rows) tr = rows;
    if (tr < 1) {
        fprintf(stderr, "m40llm: internal error: GEMM tile of %lld floats < one row of %lld\n",
                (long long)g->tile_elems, (long long)cols);
        abort();
    }
    if (g->cublas) CUBLAS_CHECK(cublasSetStream((cublasHandle_t)g->cublas, s));
    for (int64_t r0 = 0; r0 < rows; r0 += tr) {
        const int64_t r1 = r0 + tr < rows ? r0 + tr : rows;
        const int m = (int)(r1 - r0);
        cuda_dequant_rows(type, W, r0, r1, cols, g->tile, s);
        if (g->cublas) {
            /* column-major view: tile = (cols x m) lda=cols, X = (cols x n) ldb=cols,
             * Y + r0 = (m x n) ldc=rows; C = A^T B */
            const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
            CUBLAS_CHECK(cublasSgemm((cublasHandle_t)g->cublas, CUBLAS_OP_T, CUBLAS_OP_N, m, n,
                                     (int)cols, &alpha, g->tile, (int)cols, X, (int)cols, &beta,
                                     Y + r0, (int)rows));
        } else {
            cuda_sgemm_nt(g->tile, cols, X, cols, Y + r0, rows, m, n, (int)cols, accumulate, s);
        }
    }
    if (bias) cuda_add_bias(Y, bias, n, rows, s);
}
