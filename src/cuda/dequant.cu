/* dequant.cu - weight rows to FP32: cuda_dequant_rows (before cuBLAS SGEMM
 * in prefill) and cuda_get_rows (embedding lookup). Bit-identical to the CPU
 * reference quant_dequant_row. Paths (16-byte aligned dst):
 *   F16/BF16, rows of a multiple of 8: 16-byte loads, 8 floats per vector;
 *   Q8_0/Q4_0: one thread per block through matvec's register decoders (m40f);
 *   Q4_1/Q5_0/Q5_1/Q4_K: one thread per group of 8 weights (m40q::dq), 4
 *   groups per thread;
 * all with a 2-D grid (no 64-bit division per element). Q2_K/Q3_K/Q5_K/Q6_K
 * and the fallbacks: one group per thread on a 1-D grid; F16/BF16
 * elementwise for any row length. */
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

/* 2-D grid: blockIdx.y walks rows, blockIdx.x a span of DQ_G * DQ_THREADS
 * groups of one row; each thread decodes DQ_G groups (all loads issued before
 * the stores, so that enough bytes are in flight) without 64-bit divisions. */
constexpr int DQ_G = 4;
template <class T>
__global__ void __launch_bounds__(DQ_THREADS)
    dequant_kernel2(const uint8_t *__restrict__ W, long long row_bytes, int cols,
                    const int32_t *__restrict__ ids, long long r0, long long nrows,
                    float *__restrict__ dst) {
    const int gpr = cols / 8;
    for (long long i = blockIdx.y; i < nrows; i += gridDim.y) {
        const long long row = ids ? (long long)ids[i] : r0 + i;
        const uint8_t *wrow = W + row * row_bytes;
        float *drow = dst + i * cols;
        float w[DQ_G][8];
        int o0[DQ_G], o1[DQ_G];
#pragma unroll
        for (int j = 0; j < DQ_G; j++) {
            const int k = blockIdx.x * (DQ_G * DQ_THREADS) + j * DQ_THREADS + threadIdx.x;
            if (k < gpr) m40q::dq<T>(wrow + (k / T::NG) * T::BYTES, k % T::NG, w[j], o0[j], o1[j]);
        }
#pragma unroll
        for (int j = 0; j < DQ_G; j++) {
            const int k = blockIdx.x * (DQ_G * DQ_THREADS) + j * DQ_THREADS + threadIdx.x;
            if (k < gpr) {
                float *d = drow + (k / T::NG) * T::QK;
                *reinterpret_cast<float4 *>(d + o0[j]) =
                    make_float4(w[j][0], w[j][1], w[j][2], w[j][3]);
                *reinterpret_cast<float4 *>(d + o1[j]) =
                    make_float4(w[j][4], w[j][5], w[j][6], w[j][7]);
            }
        }
    }
}

/* Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 through matvec's register decoders
 * (m40f, 4-byte window loads): one thread per block, DQ_G blocks per thread
 * with all loads issued first; w = d*q (+ m), rounded as the CPU reference. */
template <class U>
__global__ void __launch_bounds__(DQ_THREADS)
    dequant_blk32(const uint8_t *__restrict__ W, long long row_bytes, int nb,
                  const int32_t *__restrict__ ids, long long r0, long long nrows,
                  float4 *__restrict__ dst) {
    for (long long i = blockIdx.y; i < nrows; i += gridDim.y) {
        const long long row = ids ? (long long)ids[i] : r0 + i;
        const uint8_t *wrow = W + row * row_bytes;
        float4 *drow = dst + i * (8ll * nb);
        typename U::Regs rg[DQ_G];
#pragma unroll
        for (int j = 0; j < DQ_G; j++) {
            const int b = blockIdx.x * (DQ_G * DQ_THREADS) + j * DQ_THREADS + threadIdx.x;
            if (b < nb) U::load(wrow, b, rg[j]);
        }
#pragma unroll
        for (int j = 0; j < DQ_G; j++) {
            const int b = blockIdx.x * (DQ_G * DQ_THREADS) + j * DQ_THREADS + threadIdx.x;
            if (b < nb) {
                typename U::Dec dd;
                U::decode_exact(rg[j], dd);
                float w[32];
#pragma unroll
                for (int e = 0; e < 32; e++) {
                    const float p = __fmul_rn(dd.d, dd.q[e]);
                    w[e] = U::MIN ? __fadd_rn(p, dd.m) : p;
                }
#pragma unroll
                for (int e = 0; e < 8; e++)
                    __stcs(drow + 8ll * b + e,
                           make_float4(w[4 * e], w[4 * e + 1], w[4 * e + 2], w[4 * e + 3]));
            }
        }
    }
}

template <class U>
void launch_blk32(const void *W, int64_t cols, const int32_t *ids, int64_t r0, int64_t nrows,
                  float *dst, cudaStream_t s) {
    const int nb = (int)(cols / 32);
    const unsigned gy = (unsigned)(nrows < 65535 ? nrows : 65535);
    const dim3 grid((unsigned)((nb + DQ_G * DQ_THREADS - 1) / (DQ_G * DQ_THREADS)), gy);
    dequant_blk32<U><<<grid, DQ_THREADS, 0, s>>>((const uint8_t *)W, (long long)nb * U::BYTES, nb,
                                                 ids, r0, nrows, (float4 *)dst);
    CUDA_CHECK_LAUNCH();
}

/* F16 / BF16 rows of a multiple of 8 columns, 16-byte aligned: 8 per vector. */
template <bool BF>
__global__ void __launch_bounds__(DQ_THREADS)
    dequant_half_vec(const uint4 *__restrict__ W, int cols, const int32_t *__restrict__ ids,
                     long long r0, long long nrows, float4 *__restrict__ dst) {
    const int cpr = cols / 8; /* 16-byte chunks per row */
    for (long long i = blockIdx.y; i < nrows; i += gridDim.y) {
        const long long row = ids ? (long long)ids[i] : r0 + i;
        uint4 u[DQ_G];
#pragma unroll
        for (int j = 0; j < DQ_G; j++) {
            const int k = blockIdx.x * (DQ_G * DQ_THREADS) + j * DQ_THREADS + threadIdx.x;
            if (k < cpr) u[j] = __ldcs(W + row * cpr + k);
        }
#pragma unroll
        for (int j = 0; j < DQ_G; j++) {
            const int k = blockIdx.x * (DQ_G * DQ_THREADS) + j * DQ_THREADS + threadIdx.x;
            if (k < cpr) {
                const uint32_t h[4] = {u[j].x, u[j].y, u[j].z, u[j].w};
                float f[8];
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    f[2 * e] = BF ? m40q::bf2f(h[e] & 0xffff) : m40q::h2f(h[e] & 0xffff);
                    f[2 * e + 1] = BF ? __uint_as_float(h[e] & 0xffff0000u) : m40q::h2f(h[e] >> 16);
                }
                float4 *d = dst + i * (2ll * cpr) + 2 * k;
                __stcs(d, make_float4(f[0], f[1], f[2], f[3]));
                __stcs(d + 1, make_float4(f[4], f[5], f[6], f[7]));
            }
        }
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
    const unsigned gy = (unsigned)(nrows < 65535 ? nrows : 65535);
    if constexpr (T::NSUB == 0) {
        if (cols % 8 == 0 && (uintptr_t)W % 16 == 0 && (uintptr_t)dst % 16 == 0) {
            const dim3 grid((unsigned)((cols / 8 + DQ_G * DQ_THREADS - 1) / (DQ_G * DQ_THREADS)),
                            gy);
            if (std::is_same<T, m40q::TBF16>::value)
                dequant_half_vec<true><<<grid, DQ_THREADS, 0, s>>>((const uint4 *)W, (int)cols, ids,
                                                                   r0, nrows, (float4 *)dst);
            else
                dequant_half_vec<false><<<grid, DQ_THREADS, 0, s>>>((const uint4 *)W, (int)cols,
                                                                    ids, r0, nrows, (float4 *)dst);
            CUDA_CHECK_LAUNCH();
            return;
        }
    } else if ((uintptr_t)dst % 16 == 0 &&
               (std::is_same<T, m40q::TQ8_0>::value || std::is_same<T, m40q::TQ4_0>::value)) {
        /* measured (H200, 4096x4096): Q8_0 17% -> 32%, Q4_0 26% -> 27% of copy;
         * Q4_1/Q5_0/Q5_1 were slower this way than with dequant_kernel2 */
        if (std::is_same<T, m40q::TQ8_0>::value)
            launch_blk32<m40f::UQ8_0>(W, cols, ids, r0, nrows, dst, s);
        else
            launch_blk32<m40f::UQ4_0>(W, cols, ids, r0, nrows, dst, s);
        return;
    } else if ((uintptr_t)dst % 16 == 0 && cols % 4 == 0 &&
               (T::QK == 32 || std::is_same<T, m40q::TQ4_K>::value)) {
        /* Q2_K/Q3_K/Q5_K/Q6_K keep the 1-D kernel below: measured 49-62% of copy
         * this way against 58-77% */
        const long long row_bytes = (long long)(cols / T::QK) * T::BYTES;
        const dim3 grid((unsigned)((cols / 8 + DQ_G * DQ_THREADS - 1) / (DQ_G * DQ_THREADS)), gy);
        dequant_kernel2<T><<<grid, DQ_THREADS, 0, s>>>((const uint8_t *)W, row_bytes, (int)cols,
                                                       ids, r0, nrows, dst);
        CUDA_CHECK_LAUNCH();
        return;
    }
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
    if (type & CUDA_TYPE_SPLIT) { /* the uploader's layout (cuda_common.cuh) */
        const uint32_t base = type & ~CUDA_TYPE_SPLIT;
        if (nrows <= 0 || cols <= 0) return;
        if ((uintptr_t)dst % 16 != 0 || !cuda_split_fits(base, cols)) {
            fprintf(stderr, "m40llm: %s: split %s: needs a 16-byte aligned dst, cols %% 256 == 0\n",
                    what, ggml_type_name(base));
            abort();
        }
        if (base == GGML_TYPE_Q8_0)
            launch_blk32<m40f::UQ8_0S>(W, cols, ids, r0, nrows, dst, s);
        else
            launch_blk32<m40f::UQ4_0S>(W, cols, ids, r0, nrows, dst, s);
        return;
    }
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
