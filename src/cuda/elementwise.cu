/* elementwise.cu - SwiGLU, bias add, random fill. */
#include "cuda/cuda_common.cuh"

static __global__ void swiglu_kernel(const float *__restrict__ g, const float *__restrict__ u,
                                     float *__restrict__ h, int64_t n) {
    cuda_pdl_trigger();
    cuda_pdl_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float x = g[i];
        h[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

static __global__ void swiglu_stacked_kernel(const float *__restrict__ gu, int64_t n, int64_t ffn,
                                             float *__restrict__ h) {
    cuda_pdl_trigger();
    cuda_pdl_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * ffn;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / ffn, p = i - t * ffn;
        const float x = gu[2 * ffn * t + p];
        h[i] = x / (1.0f + expf(-x)) * gu[2 * ffn * t + ffn + p];
    }
}

static int grid_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (int)(b > 65535 ? 65535 : b < 1 ? 1 : b);
}

void cuda_swiglu(const float *g, const float *u, float *h, int64_t n, cudaStream_t s) {
    if (n <= 0) return;
    cuda_launch(swiglu_kernel, grid_for(n, 256), 256, 0, s, g, u, h, n);
    CUDA_CHECK_LAUNCH();
}

void cuda_swiglu_stacked(const float *gu, int64_t n, int64_t ffn, float *h, cudaStream_t s) {
    if (n <= 0 || ffn <= 0) return;
    cuda_launch(swiglu_stacked_kernel, grid_for(n * ffn, 256), 256, 0, s, gu, n, ffn, h);
    CUDA_CHECK_LAUNCH();
}

static __global__ void add_bias_kernel(float *__restrict__ y, const float *__restrict__ b,
                                       int64_t total, int64_t rows) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] += b[i % rows];
}

void cuda_add_bias(float *y, const float *b, int n, int64_t rows, cudaStream_t s) {
    const int64_t total = (int64_t)n * rows;
    if (total <= 0 || !b) return;
    add_bias_kernel<<<grid_for(total, 256), 256, 0, s>>>(y, b, total, rows);
    CUDA_CHECK_LAUNCH();
}

static __global__ void fill_random_kernel(float *x, int64_t n, uint32_t seed) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        h *= 0x846ca68bu;
        h ^= h >> 16;
        x[i] = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

void cuda_fill_random(float *x, int64_t n, uint32_t seed, cudaStream_t s) {
    if (n <= 0) return;
    fill_random_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, n, seed);
    CUDA_CHECK_LAUNCH();
}
