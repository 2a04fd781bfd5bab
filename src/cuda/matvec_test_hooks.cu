/* matvec_test_hooks.cu - see cuda_test_hooks.h. */
#include <vector>

#include "cuda_common.cuh"
#include "cuda_test_hooks.h"
#include "matvec_blocks.cuh" /* gguf.h with C linkage */

#define HOOK_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "cuda_test: %s: %s (%s:%d)\n", #call, cudaGetErrorString(e_),          \
                    __FILE__, __LINE__);                                                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

namespace {
__global__ void fill_nan(float *p, long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = __int_as_float(0x7fc00000);
}
void poison(float *p, long long n) {
    if (n > 0) fill_nan<<<(unsigned)((n + 255) / 256), 256>>>(p, n);
}
/* Copies W_host to dst as the backend's uploader stores it (split: in the
 * device layout cuda_upload_type picks, e.g. CUDA_TYPE_SPLIT); *dt = the
 * device type to pass to the ops. */
cudaError_t upload_w(uint8_t *dst, const void *W_host, uint32_t type, int64_t rows, int64_t cols,
                     int split, uint32_t *dt) {
    const size_t wb = ggml_row_size(type, (uint64_t)cols) * (size_t)rows;
    *dt = split ? cuda_upload_type(type, cols) : type;
    std::vector<uint8_t> tmp(wb);
    cuda_repack_rows(*dt, cols, rows, W_host, tmp.data());
    return cudaMemcpy(dst, tmp.data(), wb, cudaMemcpyHostToDevice);
}
} // namespace

extern "C" int cuda_test_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" int cuda_test_set_dp(int on) {
    cuda_matvec_set_dp(on);
    return cuda_matvec_dp_active();
}

extern "C" int cuda_test_matvec(uint32_t type, int64_t rows, int64_t cols, int n,
                                const void *W_host, int w_misalign, const float *X,
                                const float *bias, int accumulate, float *Y_inout) {
    const size_t wb = ggml_row_size(type, (uint64_t)cols) * (size_t)rows;
    uint8_t *dW = nullptr;
    float *dX = nullptr, *dY = nullptr, *dB = nullptr;
    int rc = -1;
    uint32_t dt = type;
    HOOK_CHECK(cudaMalloc(&dW, wb + 16));
    HOOK_CHECK(cudaMalloc(&dX, sizeof(float) * (size_t)(n * cols)));
    HOOK_CHECK(cudaMalloc(&dY, sizeof(float) * (size_t)(n * rows)));
    /* aligned rows as the backend uploads them (device layout), misaligned raw */
    HOOK_CHECK(upload_w(dW + w_misalign, W_host, type, rows, cols, w_misalign == 0, &dt));
    HOOK_CHECK(cudaMemcpy(dX, X, sizeof(float) * (size_t)(n * cols), cudaMemcpyHostToDevice));
    if (bias) {
        HOOK_CHECK(cudaMalloc(&dB, sizeof(float) * (size_t)rows));
        HOOK_CHECK(cudaMemcpy(dB, bias, sizeof(float) * (size_t)rows, cudaMemcpyHostToDevice));
    }
    if (accumulate)
        HOOK_CHECK(
            cudaMemcpy(dY, Y_inout, sizeof(float) * (size_t)(n * rows), cudaMemcpyHostToDevice));
    else
        poison(dY, n * rows);
    cuda_matvec(dt, dW + w_misalign, rows, cols, dX, n, dY, dB, accumulate, 0);
    HOOK_CHECK(cudaGetLastError());
    HOOK_CHECK(cudaDeviceSynchronize());
    HOOK_CHECK(cudaMemcpy(Y_inout, dY, sizeof(float) * (size_t)(n * rows), cudaMemcpyDeviceToHost));
    rc = 0;
fail:
    cudaFree(dW);
    cudaFree(dX);
    cudaFree(dY);
    cudaFree(dB);
    return rc;
}

extern "C" int cuda_test_matvec_glu(uint32_t type, int64_t ffn, int64_t cols, const void *W_host,
                                    const float *X, float *H_fused, float *H_ref) {
    const size_t wb = ggml_row_size(type, (uint64_t)cols) * (size_t)(2 * ffn);
    uint8_t *dW = nullptr;
    float *dX = nullptr, *dY = nullptr, *dH = nullptr;
    int rc = -1, ran = 0;
    uint32_t dt = type;
    HOOK_CHECK(cudaMalloc(&dW, wb));
    HOOK_CHECK(cudaMalloc(&dX, sizeof(float) * (size_t)cols));
    HOOK_CHECK(cudaMalloc(&dY, sizeof(float) * (size_t)(2 * ffn)));
    HOOK_CHECK(cudaMalloc(&dH, sizeof(float) * (size_t)ffn));
    HOOK_CHECK(upload_w(dW, W_host, type, 2 * ffn, cols, 1, &dt));
    HOOK_CHECK(cudaMemcpy(dX, X, sizeof(float) * (size_t)cols, cudaMemcpyHostToDevice));
    poison(dH, ffn);
    ran = cuda_matvec_glu(dt, dW, ffn, cols, dX, dH, 0);
    HOOK_CHECK(cudaGetLastError());
    HOOK_CHECK(cudaDeviceSynchronize());
    if (ran)
        HOOK_CHECK(cudaMemcpy(H_fused, dH, sizeof(float) * (size_t)ffn, cudaMemcpyDeviceToHost));
    poison(dH, ffn);
    cuda_matvec(dt, dW, 2 * ffn, cols, dX, 1, dY, nullptr, 0, 0);
    cuda_swiglu(dY, dY + ffn, dH, ffn, 0);
    HOOK_CHECK(cudaGetLastError());
    HOOK_CHECK(cudaDeviceSynchronize());
    HOOK_CHECK(cudaMemcpy(H_ref, dH, sizeof(float) * (size_t)ffn, cudaMemcpyDeviceToHost));
    rc = ran;
fail:
    cudaFree(dW);
    cudaFree(dX);
    cudaFree(dY);
    cudaFree(dH);
    return rc;
}

extern "C" int cuda_test_dequant_rows(uint32_t type, int64_t rows, int64_t cols, const void *W_host,
                                      int64_t r0, int64_t r1, float *out) {
    const size_t wb = ggml_row_size(type, (uint64_t)cols) * (size_t)rows;
    const size_t ob = sizeof(float) * (size_t)((r1 - r0) * cols);
    uint8_t *dW = nullptr;
    float *dO = nullptr;
    int rc = -1;
    uint32_t dt = type;
    HOOK_CHECK(cudaMalloc(&dW, wb));
    HOOK_CHECK(cudaMalloc(&dO, ob + 16));
    HOOK_CHECK(upload_w(dW, W_host, type, rows, cols, 1, &dt));
    poison(dO, (r1 - r0) * cols);
    cuda_dequant_rows(dt, dW, r0, r1, cols, dO, 0);
    HOOK_CHECK(cudaGetLastError());
    HOOK_CHECK(cudaDeviceSynchronize());
    HOOK_CHECK(cudaMemcpy(out, dO, ob, cudaMemcpyDeviceToHost));
    rc = 0;
fail:
    cudaFree(dW);
    cudaFree(dO);
    return rc;
}

extern "C" int cuda_test_get_rows(uint32_t type, int64_t rows, int64_t cols, const void *W_host,
                                  const int32_t *ids, int n, float *out) {
    const size_t wb = ggml_row_size(type, (uint64_t)cols) * (size_t)rows;
    const size_t ob = sizeof(float) * (size_t)(n * cols);
    uint8_t *dW = nullptr;
    float *dO = nullptr;
    int32_t *dI = nullptr;
    int rc = -1;
    uint32_t dt = type;
    HOOK_CHECK(cudaMalloc(&dW, wb));
    HOOK_CHECK(cudaMalloc(&dO, ob + 16));
    HOOK_CHECK(cudaMalloc(&dI, sizeof(int32_t) * (size_t)n));
    HOOK_CHECK(upload_w(dW, W_host, type, rows, cols, 1, &dt));
    HOOK_CHECK(cudaMemcpy(dI, ids, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice));
    poison(dO, n * cols);
    cuda_get_rows(dt, dW, cols, dI, n, dO, 0);
    HOOK_CHECK(cudaGetLastError());
    HOOK_CHECK(cudaDeviceSynchronize());
    HOOK_CHECK(cudaMemcpy(out, dO, ob, cudaMemcpyDeviceToHost));
    rc = 0;
fail:
    cudaFree(dW);
    cudaFree(dO);
    cudaFree(dI);
    return rc;
}
