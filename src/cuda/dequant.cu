/* dequant.cu - weight rows to FP32: cuda_dequant_rows (before cuBLAS SGEMM
 * in prefill) and cuda_get_rows (embedding lookup). One thread decodes one
 * group of 8 weights (matvec_blocks.cuh) and writes them as two float4;
 * F16 / BF16 are converted elementwise (any row length). */
#include <type_traits>

#include "cuda_common.cuh"
#include "matvec_blocks.cuh"

namespace {

constexpr int DQ_THREADS = 256;

/* rows: ids ? ids[i] : r0 + i, for i < nrows; dst row i = (that row of W). */
template <class T>
__global__ void dequant_kernel(const uint8_t *__restrict__ W, long long row_bytes, int cols,
                               const int32_t *__restrict__ ids, long long r0, long long nrows,
                               float *__restrict__ dst, int vec) {
    const long long groups_per_row = cols / 8;
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= nrows * groups_per_row) return;
    const long long i = gid / groups_per_row;
    const int k = (int)(gid - i * groups_per_row);
    const long long row = ids ? (long long)ids[i] : r0 + i;
    const int blk = k / T::NG, g = k % T::NG;
    const uint8_t *b = W + row * row_bytes + (long long)blk * T::BYTES;
    float w[8];
    int o0, o1;
    m40q::dq<T>(b, g, w, o0, o1);
    float *d = dst + i * cols + (long long)blk * T::QK;
    if (vec) {
        *reinterpret_cast<float4 *>(d + o0) = make_float4(w[0], w[1], w[2], w[3]);
        *reinterpret_cast<float4 *>(d + o1) = make_float4(w[4], w[5], w[6], w[7]);
    } else {
#pragma unroll
        for (int j = 0; j < 4; j++) d[o0 + j] = w[j], d[o1 + j] = w[4 + j];
    }
}

template <bool BF>
__global__ void dequant_half_kernel(const uint16_t *__restrict__ W, int cols,
                                    const int32_t *__restrict__ ids, long long r0, long long nrows,
                                    float *__restrict__ dst) {
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= nrows * cols) return;
    const long long i = gid / cols;
    const int c = (int)(gid - i * cols);
    const long long row = ids ? (long long)ids[i] : r0 + i;
    const uint32_t h = __ldg(reinterpret_cast<const unsigned short *>(W + row * cols + c));
    dst[gid] = BF ? m40q::bf2f(h) : m40q::h2f(h);
}

template <class T>
void launch(const void *W, int64_t cols, const int32_t *ids, int64_t r0, int64_t nrows, float *dst,
            cudaStream_t s) {
    if (nrows <= 0 || cols <= 0) return;
    if constexpr (T::NSUB == 0) { /* F16 / BF16: elementwise */
        const long long total = nrows * cols;
        const unsigned grid = (unsigned)((total + DQ_THREADS - 1) / DQ_THREADS);
        if (std::is_same<T, m40q::TBF16>::value)
            dequant_half_kernel<true>
                <<<grid, DQ_THREADS, 0, s>>>((const uint16_t *)W, (int)cols, ids, r0, nrows, dst);
        else
            dequant_half_kernel<false>
                <<<grid, DQ_THREADS, 0, s>>>((const uint16_t *)W, (int)cols, ids, r0, nrows, dst);
        CUDA_CHECK_LAUNCH();
    } else {
        const long long row_bytes = (long long)(cols / T::QK) * T::BYTES;
        const long long total = nrows * (cols / 8);
        const int vec = ((uintptr_t)dst % 16 == 0);
        const unsigned grid = (unsigned)((total + DQ_THREADS - 1) / DQ_THREADS);
        dequant_kernel<T><<<grid, DQ_THREADS, 0, s>>>((const uint8_t *)W, row_bytes, (int)cols, ids,
                                                      r0, nrows, dst, vec);
        CUDA_CHECK_LAUNCH();
    }
}

void dispatch(uint32_t type, const void *W, int64_t cols, const int32_t *ids, int64_t r0,
              int64_t nrows, float *dst, cudaStream_t s, const char *what) {
    switch (type) {
#define M40_CASE(id, T)                                                                            \
    case id:                                                                                       \
        launch<T>(W, cols, ids, r0, nrows, dst, s);                                                \
        break;
        M40_WEIGHT_TYPES(M40_CASE)
#undef M40_CASE
    default:
        fprintf(stderr, "m40llm: %s: unsupported weight type %u\n", what, type);
        abort();
    }
}

} // namespace

void cuda_dequant_rows(uint32_t type, const void *W, int64_t r0, int64_t r1, int64_t cols,
                       float *dst, cudaStream_t s) {
    dispatch(type, W, cols, nullptr, r0, r1 - r0, dst, s, "cuda_dequant_rows");
}

void cuda_get_rows(uint32_t type, const void *W, int64_t cols, const int32_t *ids, int n,
                   float *dst, cudaStream_t s) {
    dispatch(type, W, cols, ids, 0, n, dst, s, "cuda_get_rows");
}
