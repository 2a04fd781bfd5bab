/* matvec.cu - decode matrix-vector (and matrix x up to 16 vectors) for every
 * weight type: Y[i][r] = sum_c W[r][c] * X[i][c] (+ bias[r]) (+ Y[i][r]).
 *
 * Two kernels (bench/matvec_notes.md has the measurements behind the choice):
 * 1. mv_fast (namespace fast; decoders m40f:: in matvec_blocks.cuh): F16, BF16,
 *    Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 always; Q4_K, Q5_K for n > 1 (16-byte
 *    aligned W). Each lane owns one unit of a row (a 32-weight block, 8 F16
 *    columns, or a 32-weight quarter-chunk of a K superblock) and loads it
 *    straight into registers (4-byte words from the aligned-down address for
 *    the 2-byte aligned blocks, 16-byte vectors otherwise; no shared-memory
 *    staging of weights). A CTA of FW warps x R rows stages each column tile
 *    of the activations once in shared memory (swizzled: conflict-free float4
 *    reads); the next tile's weights and activations are loaded before the
 *    current one is computed (register double buffering). Used for n = 1, and
 *    for n <= 4 F16/BF16 (n <= 2 on sm_80+) and n = 2 Q8_0 (measured faster).
 * 1b. mv_grp (same decoders): n = 2..16 for the fast-path types. Weights are
 *    loaded and decoded once and multiplied with all n vectors; each x value
 *    read from shared memory serves R rows from registers (launch_grp).
 *    On sm_80+ F16/BF16 at n = 3..16 take mv_grp_acp instead: the same
 *    arithmetic with the weights brought into shared memory by cp.async,
 *    two tiles ahead (the register-staged mv_grp is latency-bound there).
 * 2. matvec_kernel (v3, below): every type; the default for Q2_K, Q3_K, Q6_K,
 *    for Q4_K/Q5_K at n = 1, and for unaligned F16/BF16/K rows. A warp streams
 *    its R rows in tiles of raw bytes through shared memory (16-byte loads when
 *    rows are 16-byte aligned, else 2-byte loads) and decodes from there.
 * sm_52: no half arithmetic (only __half2float), no dp4a, 48 KB static smem;
 * all arithmetic FP32. */
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cuda_common.cuh"
#include "matvec_blocks.cuh"

namespace {

constexpr int MV_WARPS = 4;

/* The epilogue of the warp-per-rows kernels: row row0 + r of vector v gets
 * the warp's sum of acc[r][v] (+ bias) (+ Y when accumulate), rows < rows. */
template <int R, int NV>
static __device__ __forceinline__ void store_rows(float (&acc)[R][NV], int row0, int rows, int n,
                                                  float *__restrict__ Y,
                                                  const float *__restrict__ bias, int accumulate) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int row = row0 + r;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const float s = warp_sum(acc[r][v]);
            if (lane == 0 && v < n && row < rows) {
                const long long idx = (long long)v * rows + row;
                float y = s + (bias ? bias[row] : 0.0f);
                if (accumulate) y += Y[idx];
                Y[idx] = y;
            }
        }
    }
}
/* Gate/up kernels (glu > 0, R even): a warp's rows r < R/2 are gate rows
 * w R/2 + r of a stacked gate|up matrix, rows r >= R/2 the up rows glu later
 * (clamped to the last pair). */
template <int R> static __device__ __forceinline__ int glu_row(int w, int r, int glu) {
    constexpr int H = R > 1 ? R / 2 : 1;
    return min(w * H + r % H, glu - 1) + (r >= H ? glu : 0);
}
/* Y[p] = silu(g_p) * u_p for the warp's pairs p = w R/2 + j (as swiglu_kernel). */
template <int R, int NV>
static __device__ __forceinline__ void store_glu(float (&acc)[R][NV], int w, int glu,
                                                 float *__restrict__ Y) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < R / 2; j++) {
        const float g = warp_sum(acc[j][0]), u = warp_sum(acc[R / 2 + j][0]);
        const int p = w * (R / 2) + j;
        if (lane == 0 && p < glu) Y[p] = g / (1.0f + expf(-g)) * u;
    }
}

template <class T> struct Tile {
    static constexpr int ELEMS = T::QK == 8 ? 1024 : 2048; /* weights per tile and row */
    static constexpr int TB = ELEMS / T::QK;               /* blocks per tile */
    static constexpr int BYTES = TB * T::BYTES;            /* multiple of 16 */
    static constexpr int CHUNKS = BYTES / 16;
    static constexpr int CH = (CHUNKS + 31) / 32; /* 16-byte loads per lane */
    static constexpr int NSUB1 = T::NSUB > 0 ? T::NSUB : 1;
    static constexpr int NSC = TB * NSUB1; /* scale pairs per tile and row */
    static_assert(BYTES % 16 == 0, "tile must be a multiple of 16 bytes");
};

static __device__ __forceinline__ uint4 ld_stream(const uint4 *p) { return __ldcs(p); }

/* Decodes one staged tile (tb blocks of R rows) against the activations and
 * accumulates into acc. Lane `lane` takes groups lane + 32k (k < ITER):
 * block lane / NG + k * 32 / NG, group lane % NG, so every shared-memory and
 * activation address is a per-lane base plus a compile-time offset. XV:
 * activations 16-byte aligned (float4 loads). */
template <class T, int NV, int R, bool XV>
static __device__ __forceinline__ void
mv_tile(const uint8_t (*sm)[Tile<T>::BYTES], const float2 (*sc)[Tile<T>::NSC], const float *xt,
        int cols, int n, int lane, int tb, float (&acc)[R][NV]) {
    using TL = Tile<T>;
    constexpr bool AL = T::BYTES % 4 == 0; /* blocks 4-byte aligned in the tile */
    constexpr int BPI = 32 / T::NG;        /* blocks per warp iteration */
    constexpr int ITER = TL::TB / BPI;
    static_assert(32 % T::NG == 0 && TL::TB % BPI == 0, "group mapping");
    const int blk0 = lane / T::NG, g = lane % T::NG;
#pragma unroll
    for (int k = 0; k < ITER; k++) {
        const int blk = blk0 + k * BPI;
        if (blk >= tb) break;
        float q[R][8];
        float2 s0[R], s1[R];
        int j0 = 0, j1 = 0, o0 = 0, o1 = 0;
#pragma unroll
        for (int r = 0; r < R; r++) {
            T::template quants<AL>(sm[r] + blk * T::BYTES, g, q[r], j0, j1, o0, o1);
            if (T::NSUB > 0) {
                s0[r] = sc[r][blk * TL::NSUB1 + j0];
                s1[r] = sc[r][blk * TL::NSUB1 + j1];
            }
        }
        const float *xb = xt + blk * T::QK;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            if (v < n) {
                float xs[8];
                const float *xv = xb + (long long)v * cols;
                if (XV) {
                    const float4 a = __ldg(reinterpret_cast<const float4 *>(xv + o0));
                    const float4 b = __ldg(reinterpret_cast<const float4 *>(xv + o1));
                    xs[0] = a.x, xs[1] = a.y, xs[2] = a.z, xs[3] = a.w;
                    xs[4] = b.x, xs[5] = b.y, xs[6] = b.z, xs[7] = b.w;
                } else {
#pragma unroll
                    for (int i = 0; i < 4; i++)
                        xs[i] = __ldg(xv + o0 + i), xs[4 + i] = __ldg(xv + o1 + i);
                }
                float sx0 = 0.0f, sx1 = 0.0f;
                if (T::MIN) {
                    sx0 = (xs[0] + xs[1]) + (xs[2] + xs[3]);
                    sx1 = (xs[4] + xs[5]) + (xs[6] + xs[7]);
                }
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float a0 = q[r][0] * xs[0], a1 = q[r][4] * xs[4];
#pragma unroll
                    for (int i = 1; i < 4; i++) {
                        a0 = fmaf(q[r][i], xs[i], a0);
                        a1 = fmaf(q[r][4 + i], xs[4 + i], a1);
                    }
                    if (T::NSUB == 0) {
                        acc[r][v] += a0 + a1;
                    } else {
                        float y = fmaf(s0[r].x, a0, acc[r][v]);
                        y = fmaf(s1[r].x, a1, y);
                        if (T::MIN) {
                            y = fmaf(-s0[r].y, sx0, y);
                            y = fmaf(-s1[r].y, sx1, y);
                        }
                        acc[r][v] = y;
                    }
                }
            }
        }
    }
}

template <class T, int NV, int R>
__global__ void __launch_bounds__(MV_WARPS * 32)
    matvec_kernel(const uint8_t *__restrict__ W, int rows, int nb, long long row_bytes,
                  const float *__restrict__ X, int cols, int n, float *__restrict__ Y,
                  const float *__restrict__ bias, int accumulate, int vec16, int xvec) {
    using TL = Tile<T>;
    __shared__ __align__(16) uint8_t smem[MV_WARPS][R][TL::BYTES];
    __shared__ float2 ssc[MV_WARPS][R][TL::NSC];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = (blockIdx.x * MV_WARPS + warp) * R;
    if (row0 >= rows) return; /* warp-uniform; no block barrier below */

    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int rr = min(row0 + r, rows - 1); /* rows past the end: computed, not written */
        wr[r] = W + (long long)rr * row_bytes;
    }
    float acc[R][NV];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[r][v] = 0.0f;

    uint4 buf[R][TL::CH];
    const int ntiles = (nb + TL::TB - 1) / TL::TB;

    /* issue the 16-byte loads of tile t (whole chunks only) */
    auto fetch = [&](int t) {
        const int tb = min(TL::TB, nb - t * TL::TB);
        const int n16 = vec16 ? tb * T::BYTES / 16 : 0;
#pragma unroll
        for (int r = 0; r < R; r++) {
            const uint4 *src = reinterpret_cast<const uint4 *>(wr[r] + (long long)t * TL::BYTES);
#pragma unroll
            for (int k = 0; k < TL::CH; k++) {
                const int i = lane + 32 * k;
                if (i < n16) buf[r][k] = ld_stream(src + i);
            }
        }
    };
    /* write tile t into shared memory: fetched chunks, then the rest 2 bytes at a time */
    auto store = [&](int t) {
        const int tb = min(TL::TB, nb - t * TL::TB);
        const int nbytes = tb * T::BYTES;
        const int n16 = vec16 ? nbytes / 16 : 0;
#pragma unroll
        for (int r = 0; r < R; r++) {
            uint4 *dst = reinterpret_cast<uint4 *>(smem[warp][r]);
#pragma unroll
            for (int k = 0; k < TL::CH; k++) {
                const int i = lane + 32 * k;
                if (i < n16) dst[i] = buf[r][k];
            }
            if (n16 * 16 < nbytes) {
                const unsigned short *s2 =
                    reinterpret_cast<const unsigned short *>(wr[r] + (long long)t * TL::BYTES);
                unsigned short *d2 = reinterpret_cast<unsigned short *>(smem[warp][r]);
                for (int i = n16 * 8 + lane; i < nbytes / 2; i += 32) d2[i] = __ldg(s2 + i);
            }
        }
    };

    fetch(0); /* weights only: may overlap the previous kernel (PDL) */
    cuda_pdl_trigger();
    cuda_pdl_wait();
    for (int t = 0; t < ntiles; t++) {
        store(t);
        __syncwarp();
        if (t + 1 < ntiles) fetch(t + 1);
        const int tb = min(TL::TB, nb - t * TL::TB);
        if (T::NSUB > 0) { /* scale pair of every sub-block of the tile, once */
#pragma unroll
            for (int r = 0; r < R; r++)
                for (int idx = lane; idx < tb * T::NSUB; idx += 32) {
                    const int blk = idx / TL::NSUB1, j = idx % TL::NSUB1;
                    float sd, sm;
                    T::scale(smem[warp][r] + blk * T::BYTES, j, sd, sm);
                    ssc[warp][r][idx] = make_float2(sd, sm);
                }
            __syncwarp();
        }
        const float *xt = X + (long long)t * TL::ELEMS;
        if (xvec)
            mv_tile<T, NV, R, true>(smem[warp], ssc[warp], xt, cols, n, lane, tb, acc);
        else
            mv_tile<T, NV, R, false>(smem[warp], ssc[warp], xt, cols, n, lane, tb, acc);
        __syncwarp();
    }

    store_rows(acc, row0, rows, n, Y, bias, accumulate);
}

/* F16 / BF16 rows whose length is not a multiple of 8: one warp per row,
 * scalar loads. Only for odd shapes (tiny test models). */
template <bool BF>
__global__ void matvec_half_scalar(const uint16_t *__restrict__ W, int rows, int cols,
                                   const float *__restrict__ X, int n, float *__restrict__ Y,
                                   const float *__restrict__ bias, int accumulate) {
    cuda_pdl_trigger();
    cuda_pdl_wait();
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * MV_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    const uint16_t *w = W + (long long)row * cols;
    for (int v = 0; v < n; v++) {
        float acc = 0.0f;
        for (int c = lane; c < cols; c += 32) {
            const uint32_t h = __ldg(reinterpret_cast<const unsigned short *>(w + c));
            const float wf = BF ? m40q::bf2f(h) : m40q::h2f(h);
            acc = fmaf(wf, __ldg(X + (long long)v * cols + c), acc);
        }
        acc = warp_sum(acc);
        if (lane == 0) {
            const long long idx = (long long)v * rows + row;
            float y = acc + (bias ? bias[row] : 0.0f);
            if (accumulate) y += Y[idx];
            Y[idx] = y;
        }
    }
}

template <class T, int NV, int R>
void launch(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
            const float *bias, int accumulate, cudaStream_t s) {
    const int nb = (int)(cols / T::QK);
    const long long row_bytes = (long long)nb * T::BYTES;
    const int vec16 = ((uintptr_t)W % 16 == 0) && (row_bytes % 16 == 0);
    const int xvec = ((uintptr_t)X % 16 == 0) && (cols % 4 == 0);
    const int per_block = MV_WARPS * R;
    const unsigned grid = (unsigned)((rows + per_block - 1) / per_block);
    cuda_launch(matvec_kernel<T, NV, R>, grid, MV_WARPS * 32, 0, s, (const uint8_t *)W, (int)rows,
                nb, row_bytes, X, (int)cols, n, Y, bias, accumulate, vec16, xvec);
    CUDA_CHECK_LAUNCH();
}

/* r1: rows per warp for n == 1 (variant knob for the bench; 0 = default) */
template <class T>
void launch_n(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
              const float *bias, int accumulate, cudaStream_t s, int r1) {
    if (n <= 1) {
        if (r1 == 1)
            launch<T, 1, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else if (r1 == 4)
            launch<T, 1, 4>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else if (r1 == 0 && (((uintptr_t)W % 16) || ((cols / T::QK) * T::BYTES) % 16))
            launch<T, 1, 1>(W, rows, cols, X, n, Y, bias, accumulate, s); /* 2-byte loads */
        else if (r1 == 2 || rows < 16384)
            launch<T, 1, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else
            launch<T, 1, 4>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else if (n <= 2) {
        launch<T, 2, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else if (n <= 4) {
        launch<T, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else if (n <= 8) {
        launch<T, 8, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else {
        launch<T, 16, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
    }
}

void half_scalar(uint32_t type, const void *W, int64_t rows, int64_t cols, const float *X, int n,
                 float *Y, const float *bias, int accumulate, cudaStream_t s) {
    const unsigned grid = (unsigned)((rows + MV_WARPS - 1) / MV_WARPS);
    if (type == GGML_TYPE_BF16)
        cuda_launch(matvec_half_scalar<true>, grid, MV_WARPS * 32, 0, s, (const uint16_t *)W,
                    (int)rows, (int)cols, X, n, Y, bias, accumulate);
    else
        cuda_launch(matvec_half_scalar<false>, grid, MV_WARPS * 32, 0, s, (const uint16_t *)W,
                    (int)rows, (int)cols, X, n, Y, bias, accumulate);
    CUDA_CHECK_LAUNCH();
}

namespace fast {
using namespace m40f;
/* A lane's weight units of one tile: unit u0 + 32 k of each of the R rows
 * (k < KS), those below nunits (mv_fast, mv_dp). */
template <class U, int R, int KS>
static __device__ __forceinline__ void load_units(const uint8_t *const (&wr)[R], int u0, int nunits,
                                                  typename U::Regs (&b)[R][KS]) {
#pragma unroll
    for (int k = 0; k < KS; k++) {
        const int u = u0 + 32 * k;
        if (u < nunits) {
#pragma unroll
            for (int r = 0; r < R; r++) U::load(wr[r], u, b[r][k]);
        }
    }
}

/* The tile loop of mv_fast, mv_dp and mv_grp: weights double-buffered in
 * registers (ba, bb), activations staged through registers (xload) into
 * double-buffered shared tiles (xstore). The first tile's weights are loaded
 * before the PDL wait (they do not depend on the previous kernel), with TWO
 * the second tile's as well (mv_dp: the whole row of a 4096-column Q4_0
 * matrix); then per tile t: tile t+1's weights and x are issued, tile t is
 * computed, tile t+1's x is stored, barrier. */
template <bool TWO = false, class Load, class XLoad, class XStore, class Compute, class Regs>
static __device__ __forceinline__ void tile_loop(int nt, Load &load, XLoad &xload, XStore &xstore,
                                                 Compute &compute, Regs &ba, Regs &bb) {
    load(0, ba); /* weights only: may overlap the previous kernel (PDL) */
    if (TWO && nt > 1) load(1, bb);
    cuda_pdl_trigger();
    cuda_pdl_wait();
    xload(0);
    xstore(0);
    __syncthreads();
    for (int t = 0; t < nt; t += 2) {
        if (t + 1 < nt) {
            if (!TWO || t > 0) load(t + 1, bb);
            xload(t + 1);
        }
        compute(t, ba);
        if (t + 1 < nt) xstore(t + 1);
        __syncthreads();
        if (t + 1 >= nt) break;
        if (t + 2 < nt) {
            load(t + 2, ba);
            xload(t + 2);
        }
        compute(t + 1, bb);
        if (t + 2 < nt) xstore(t + 2);
        __syncthreads();
    }
}

/* rows per warp of the one-vector kernel for the block types: env
 * M40LLM_CUDA_MV_ROWS = 1, 2 or 4, else 4 for split Q4_0 and 2 for the rest
 * (H200, 7B decode: split Q4_0 317.8 -> 330.9 t/s with 4; Q8_0 324.9 -> 306.1,
 * Q4_K slower on 4096-row matrices: bench/matvec_notes.md v8) */
static int env_rows() { /* read once */
    static const int v = [] {
        const char *e = getenv("M40LLM_CUDA_MV_ROWS");
        const int r = e ? atoi(e) : 0;
        return r == 1 || r == 2 || r == 4 ? r : 0;
    }();
    return v;
}
template <class U> static int mv_rows() {
    return env_rows() ? env_rows() : std::is_same<U, UQ4_0S>::value ? 4 : 2;
}
constexpr int FW = 4; /* warps per CTA: the staged activations serve FW x R rows */

/* (measured: 8 warps per CTA with <= 128 registers was 0-15% slower) */
/* glu > 0 (R == 2, n == 1): a warp's two rows are gate row p and up row
 * p + glu of a stacked gate|up matrix, and it writes Y[p] = silu(g) * u. */
template <class U, int NV, int R, int KS>
__global__ void __launch_bounds__(FW * 32)
    mv_fast(const uint8_t *__restrict__ W, int rows, long long row_bytes, int nunits,
            const float *__restrict__ X, int cols, int n, float *__restrict__ Y,
            const float *__restrict__ bias, int accumulate, int glu) {
    constexpr int TU = 32 * KS;                              /* units per tile and row */
    constexpr int TC = TU * U::UC;                           /* columns per tile */
    constexpr int TF4 = TC / 4;                              /* float4 per tile and vector */
    constexpr int XR = (NV * TF4 + FW * 32 - 1) / (FW * 32); /* staged float4 per thread */
    __shared__ float4 xs[2][NV][TF4];
    __shared__ __align__(16) float xsm[2][NV][U::XSUM ? TC / 16 : 2]; /* 16-column sums */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = (blockIdx.x * FW + warp) * R;
    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        wr[r] = W + (long long)(R == 2 && glu > 0 ? glu_row<R>(blockIdx.x * FW + warp, r, glu)
                                                  : min(row0 + r, rows - 1)) *
                        row_bytes;
    float acc[R][NV];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[r][v] = 0.0f;
    const int nt = (cols + TC - 1) / TC;
    typename U::Regs ba[R][KS], bb[R][KS];
    float4 xr[XR];

    auto load = [&](int t, typename U::Regs(&b)[R][KS]) {
        load_units<U>(wr, t * TU + lane, nunits, b);
    };
    auto xload = [&](int t) {
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int e = threadIdx.x + FW * 32 * i;
            const int v = e / TF4, f = e % TF4;
            const int col = t * TC + 4 * f;
            if (v < n && e < NV * TF4 && col < cols)
                xr[i] = __ldg(reinterpret_cast<const float4 *>(X + (long long)v * cols + col));
        }
    };
    auto xstore = [&](int t) {
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int e = threadIdx.x + FW * 32 * i;
            const int v = e / TF4, f = e % TF4;
            const int col = t * TC + 4 * f;
            const bool ok = v < n && e < NV * TF4 && col < cols;
            if (ok) xs[t & 1][v][U::swz(f)] = xr[i];
            if constexpr (U::XSUM) { /* sums of x over 16 columns = 4 lanes */
                float sm = ok ? (xr[i].x + xr[i].y) + (xr[i].z + xr[i].w) : 0.0f;
                sm += __shfl_xor_sync(0xffffffffu, sm, 1);
                sm += __shfl_xor_sync(0xffffffffu, sm, 2);
                if (ok && (f & 3) == 0) xsm[t & 1][v][f >> 2] = sm;
            }
        }
    };
    auto compute = [&](int t, const typename U::Regs(&b)[R][KS]) {
#pragma unroll
        for (int k = 0; k < KS; k++) {
            const int ul = 32 * k + lane;
            if (t * TU + ul < nunits) {
                if constexpr (NV == 1) {
                    typename U::XV xv;
                    U::loadx(xs[t & 1][0], xsm[t & 1][0], ul, xv);
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        typename U::Dec d;
                        U::decode(b[r][k], ul, d);
                        acc[r][0] = U::dot(d, xv, acc[r][0]);
                    }
                } else {
                    typename U::Dec d[R];
#pragma unroll
                    for (int r = 0; r < R; r++) U::decode(b[r][k], ul, d[r]);
#pragma unroll
                    for (int v = 0; v < NV; v++) {
                        if (v < n) {
                            typename U::XV xv;
                            U::loadx(xs[t & 1][v], xsm[t & 1][v], ul, xv);
#pragma unroll
                            for (int r = 0; r < R; r++) acc[r][v] = U::dot(d[r], xv, acc[r][v]);
                        }
                    }
                }
            }
        }
    };

    tile_loop(nt, load, xload, xstore, compute, ba, bb);

    if (R == 2 && glu > 0) {
        store_glu(acc, blockIdx.x * FW + warp, glu, Y);
        return;
    }
    store_rows(acc, row0, rows, n, Y, bias, accumulate);
}

template <class U, int NV, int R>
void launch_fast(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
                 const float *bias, int accumulate, cudaStream_t s, int glu = 0) {
    constexpr int KS = NV >= 4 ? 1 : R >= 4 ? 1 : U::KS;
    const long long nb = cols / U::QKB;
    const long long row_bytes = nb * U::BYTES;
    const int nunits = (int)(cols / U::UC);
    const unsigned grid = (unsigned)((rows + FW * R - 1) / (FW * R));
    cuda_launch(mv_fast<U, NV, R, KS>, grid, FW * 32, 0, s, (const uint8_t *)W, (int)rows,
                row_bytes, nunits, X, (int)cols, n, Y, bias, accumulate, glu);
    CUDA_CHECK_LAUNCH();
}

/* ---- sm_61+: mv_dp, integer dot products (DQ8_0S, DQ4_0S) ----
 * The structure of mv_fast (a lane = one 32-weight block of R rows, FW warps
 * per CTA, weights double-buffered in registers, the first tile's weights
 * loaded before the PDL wait); while a CTA stages an x tile it quantizes it
 * (DpX: int16 per element, a scale per 32 columns, int sums per 16), so each
 * CTA spends ~3 instructions per x element over FW x R rows. x words in
 * shared memory: 32-column block b's four 16-byte chunks (8 columns each) at
 * U::slot(b, c) (swizzled for the unit's 16-byte reads).
 * One vector only (batched steps keep mv_grp: an n = 8 version measured
 * slower, 255 registers, bench/matvec_notes.md v9). A row's arithmetic does
 * not depend on R or FW (same unit-to-lane order and chains), so the gate/up
 * kernel equals the plain one bit for bit.
 * glu > 0: the warp's rows are gate rows p..p+R/2-1 and the up rows
 * p+glu..; it writes Y[p + j] = silu(g_j) * u_j (glu_row, store_glu). */
template <class U, int R, int KS, int FW>
__global__ void __launch_bounds__(FW * 32)
    mv_dp(const uint8_t *__restrict__ W, int rows, long long row_bytes, int nunits,
          const float *__restrict__ X, int cols, float *__restrict__ Y,
          const float *__restrict__ bias, int accumulate, int glu) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
    constexpr int TU = 32 * KS;         /* units per tile and row */
    constexpr int TC = TU * 32;         /* columns per tile */
    constexpr int TF4 = TC / 4;         /* float4 per tile */
    constexpr int XR = TF4 / (FW * 32); /* staged float4 per thread */
    static_assert(XR * FW * 32 == TF4, "tile");
    __shared__ uint4 xq[2][TU * 4]; /* int16 x, 8 per uint4 */
    __shared__ float xsc[2][TU];    /* scale per 32 columns */
    __shared__ int xsm[2][2 * TU];  /* int sums per 16 columns */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wid = blockIdx.x * FW + warp;
    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        wr[r] = W + (long long)(glu > 0 ? glu_row<R>(wid, r, glu) : min(wid * R + r, rows - 1)) *
                        row_bytes;
    float acc[R][1]; /* one vector: the shape store_rows takes */
#pragma unroll
    for (int r = 0; r < R; r++) acc[r][0] = 0.0f;
    const int nt = (cols + TC - 1) / TC;
    typename U::Regs ba[R][KS], bb[R][KS];
    float4 xr[XR];

    auto load = [&](int t, typename U::Regs(&b)[R][KS]) {
        load_units<U>(wr, t * TU + lane, nunits, b);
    };
    auto xload = [&](int t) {
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int col = t * TC + 4 * (threadIdx.x + FW * 32 * i);
            xr[i] = col < cols ? __ldg(reinterpret_cast<const float4 *>(X + col))
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
    };
    /* 8 consecutive lanes hold one unit's 32 columns (TF4 and FW * 32 are
     * multiples of 8): max |x| and the sums by shuffles */
    auto xstore = [&](int t) {
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int f = threadIdx.x + FW * 32 * i; /* float4 of the tile */
            const float4 x = xr[i];
            float a = fmaxf(fmaxf(fabsf(x.x), fabsf(x.y)), fmaxf(fabsf(x.z), fabsf(x.w)));
            a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, 1));
            a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, 2));
            a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, 4));
            const float inv = a > 0.0f ? 32767.0f / a : 0.0f;
            /* round to nearest: 1.5 * 2^23 + q has q in its low bits (|q| < 2^22) */
            constexpr float RND = 12582912.0f;
            const uint32_t b0 = __float_as_uint(fmaf(x.x, inv, RND)),
                           b1 = __float_as_uint(fmaf(x.y, inv, RND)),
                           b2 = __float_as_uint(fmaf(x.z, inv, RND)),
                           b3 = __float_as_uint(fmaf(x.w, inv, RND));
            int sm = (int)((b0 + b1) + (b2 + b3) - 4u * 0x4B400000u);
            sm += __shfl_xor_sync(0xffffffffu, sm, 1);
            sm += __shfl_xor_sync(0xffffffffu, sm, 2);
            const int ul = f >> 3, c = (f >> 1) & 3;
            reinterpret_cast<uint2 *>(&xq[t & 1][U::slot(ul, c)])[f & 1] =
                make_uint2(__byte_perm(b0, b1, 0x5410), __byte_perm(b2, b3, 0x5410));
            if ((f & 7) == 0) xsc[t & 1][ul] = a * (1.0f / 32767.0f);
            if ((f & 3) == 0) xsm[t & 1][f >> 2] = sm;
        }
    };
    auto compute = [&](int t, const typename U::Regs(&b)[R][KS]) {
#pragma unroll
        for (int k = 0; k < KS; k++) {
            const int ul = 32 * k + lane;
            if (t * TU + ul < nunits) {
                typename U::XV x;
                U::loadx(xq[t & 1], xsc[t & 1], xsm[t & 1], ul, x);
#pragma unroll
                for (int r = 0; r < R; r++) acc[r][0] = U::dot(b[r][k], x, ul, acc[r][0]);
            }
        }
    };

    tile_loop<true>(nt, load, xload, xstore, compute, ba, bb);

    if (glu > 0)
        store_glu(acc, wid, glu, Y);
    else
        store_rows(acc, wid * R, rows, 1, Y, bias, accumulate);
#else
    __trap(); /* dp_ready() keeps sm < 61 off this kernel */
#endif
}

template <class U, int R, int FW>
void launch_dp(const void *W, int64_t rows, int64_t cols, const float *X, float *Y,
               const float *bias, int accumulate, cudaStream_t s, int glu = 0) {
    constexpr int KS = U::KS;
    const long long row_bytes = cols / U::QKB * U::BYTES;
    const int nunits = (int)(cols / 32);
    const long long per = glu > 0 ? FW * (R / 2) : FW * R; /* rows (glu: pairs) per CTA */
    const unsigned grid = (unsigned)(((glu > 0 ? glu : rows) + per - 1) / per);
    cuda_launch(mv_dp<U, R, KS, FW>, grid, FW * 32, 0, s, (const uint8_t *)W, (int)rows, row_bytes,
                nunits, X, (int)cols, Y, bias, accumulate, glu);
    CUDA_CHECK_LAUNCH();
}

/* sm_61+ device, mv_dp compiled for it (not only an sm_52 image), and not
 * switched off (M40LLM_CUDA_DP=0 or cuda_matvec_set_dp(0)) */
int g_dp_force = -1; /* -1: auto */
static bool dp_ready() {
    static const int ok = [] {
        if (env_off("M40LLM_CUDA_DP")) return 0;
        cudaFuncAttributes fa;
        if (cudaFuncGetAttributes(&fa, mv_dp<DQ8_0S, 1, 1, 8>) != cudaSuccess) {
            cudaGetLastError();
            return 0;
        }
        return fa.binaryVersion >= 61 ? 1 : 0;
    }();
    return ok && g_dp_force != 0;
}

/* One vector through mv_dp; r: 0 the default configuration, else a bench
 * variant 500 + 10 x (FW / 8 for FW >= 8) + R: 501, 502, 504 = 4 warps per
 * CTA with 1, 2, 4 rows per warp; 511, 512, 514 = 8 warps; 521, 522 = 16
 * warps (2-tile types only). Defaults (H200 workbench, bench/matvec_notes.md
 * v9): 8 warps; Q8_0 1 row per warp below 8192 rows, 2 below 24576, else 4;
 * Q4_0 (and the Q4_K variant) 2. */
template <class U>
void launch_dp_1(const void *W, int64_t rows, int64_t cols, const float *X, float *Y,
                 const float *bias, int accumulate, cudaStream_t s, int r) {
#define DPV(CODE, R, FW)                                                                           \
    case CODE:                                                                                     \
        launch_dp<U, R, FW>(W, rows, cols, X, Y, bias, accumulate, s);                             \
        return;
    switch (r) {
        DPV(501, 1, 4);
        DPV(502, 2, 4);
        DPV(504, 4, 4);
        DPV(511, 1, 8);
        DPV(512, 2, 8);
        DPV(514, 4, 8);
    case 521:
    case 522:
        if constexpr (U::KS == 2) {
            if (r == 521)
                launch_dp<U, 1, 16>(W, rows, cols, X, Y, bias, accumulate, s);
            else
                launch_dp<U, 2, 16>(W, rows, cols, X, Y, bias, accumulate, s);
            return;
        }
        break;
    default:
        break;
    }
#undef DPV
    if (U::BYTES == 34 && rows < 8192)
        launch_dp<U, 1, 8>(W, rows, cols, X, Y, bias, accumulate, s);
    else if (U::BYTES == 34 && rows >= 24576)
        launch_dp<U, 4, 8>(W, rows, cols, X, Y, bias, accumulate, s);
    else
        launch_dp<U, 2, 8>(W, rows, cols, X, Y, bias, accumulate, s);
}
/* the gate/up pairs: 8 warps of one pair each (same arithmetic per row) */
template <class U>
void launch_dp_glu(const void *W, int64_t rows, int64_t cols, const float *X, float *H, int glu,
                   cudaStream_t s) {
    launch_dp<U, 2, 8>(W, rows, cols, X, H, NULL, 0, s, glu);
}
/* n == 1, no bench variant other than the mv_dp ones */
static bool dp_take(int n, int r) {
    return n == 1 && (r == 0 || (r > 500 && r < 600)) && dp_ready();
}

/* ---- n = 2..16 vectors: mv_grp ----
 * A CTA is KSPL column splits x GW warps; a warp is G row groups of GL = 32 / G
 * lanes; group g owns R rows and its lanes walk the units of those rows in the
 * split's columns (GL units per tile). Each weight unit is loaded and decoded
 * ONCE into registers and then multiplied with all NV activation vectors
 * (acc: R x NV registers); each x value read from shared memory serves the R
 * rows of the lane (shared memory delivers a quarter of the FMA rate, so R >= 4
 * keeps it off the critical path). The splits let more warps share the same
 * rows (a 4096-row matrix has only 256 CTAs of 16 rows: 2 per SM), and their
 * partial sums are added in a fixed order at the end (deterministic). F16/BF16
 * at NV <= 8 keep <= 128 registers per thread (two 256-thread CTAs per SM); one
 * weight unit per lane and tile, weights double-buffered in registers, x tiles
 * double-buffered in shared memory and staged through XR <= 4 float4 per
 * thread. 32-column units are decoded in halves (U::split, dot_h). */
constexpr int GW = 4; /* warps per column split */
/* Where a thread of mv_grp / mv_grp_acp works: split ks of the columns
 * (units [u0, u1), nt tiles of TU units: a whole number of tiles, K types of
 * superblocks, the same count in every split for the barriers), thread st
 * of the split, lane gl of its row group, the group's first row rl0 within
 * the CTA and row0 in the matrix. */
template <int G, int R, int KSPL, int TU> struct GrpPos {
    static constexpr int GL = 32 / G, ST = GW * 32, RPC = GW * G * R;
    int ks, st, gl, rl0, row0, u0, u1, nt;
    __device__ __forceinline__ explicit GrpPos(int nunits) {
        ks = threadIdx.x / ST, st = threadIdx.x % ST;
        const int lane = threadIdx.x & 31, warp = st >> 5;
        gl = lane & (GL - 1);
        rl0 = (warp * G + lane / GL) * R;
        row0 = blockIdx.x * RPC + rl0;
        const int per = (nunits + KSPL * TU - 1) / (KSPL * TU) * TU;
        u0 = ks * per, u1 = min(nunits, u0 + per);
        nt = per / TU;
    }
};
/* One 8-column unit of R decoded rows against the n staged x tiles x[v]
 * (F16/BF16 in mv_grp and mv_grp_acp). G = 1: dot, since dot_acc spills at
 * 128 registers there. */
template <class U, int NV, int R, int G, int TF4>
static __device__ __forceinline__ void grp_dot8(const typename U::Dec (&d)[R],
                                                const float4 (*x)[TF4], int gl, int n,
                                                float (&acc)[R][NV]) {
#pragma unroll
    for (int v = 0; v < NV; v++) {
        if (v < n) {
            typename U::XV xv;
            U::loadx(x[v], nullptr, gl, xv);
#pragma unroll
            for (int r = 0; r < R; r++)
                acc[r][v] = G > 1 ? U::dot_acc(d[r], xv, acc[r][v]) : U::dot(d[r], xv, acc[r][v]);
        }
    }
}
/* mv_grp's epilogue: sum over the group's lanes, then over the KSPL splits
 * in split order (red: the splits' partial sums), bias, accumulate, store */
template <int R, int NV, int GL, int KSPL, int RPC>
static __device__ __forceinline__ void
grp_store(float (&acc)[R][NV], float (*red)[RPC][NV], int ks, int gl, int rl0, int row0, int rows,
          int n, float *__restrict__ Y, const float *__restrict__ bias, int accumulate) {
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < NV; v++)
#pragma unroll
            for (int o = GL / 2; o > 0; o >>= 1)
                acc[r][v] += __shfl_xor_sync(0xffffffffu, acc[r][v], o);
    if constexpr (KSPL > 1) {
        if (ks > 0 && gl == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int v = 0; v < NV; v++) red[ks - 1][rl0 + r][v] = acc[r][v];
        __syncthreads();
        if (ks > 0) return;
#pragma unroll
        for (int k = 0; k < KSPL - 1; k++)
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int v = 0; v < NV; v++) acc[r][v] += red[k][rl0 + r][v];
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int row = row0 + r;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            if (gl == 0 && v < n && row < rows) {
                const long long idx = (long long)v * rows + row;
                float y = acc[r][v] + (bias ? bias[row] : 0.0f);
                if (accumulate) y += Y[idx];
                Y[idx] = y;
            }
        }
    }
}

template <class U, int NV, int R, int G, int KSPL>
__global__ void __launch_bounds__(GW *KSPL * 32, U::UC == 8 && NV < 16 ? 16 / (GW * KSPL) : 1)
    mv_grp(const uint8_t *__restrict__ W, int rows, long long row_bytes, int nunits,
           const float *__restrict__ X, int cols, int n, float *__restrict__ Y,
           const float *__restrict__ bias, int accumulate) {
    constexpr int GL = 32 / G;                   /* lanes per row group */
    constexpr int TU = GL;                       /* units per tile and row */
    constexpr int TC = TU * U::UC;               /* columns per tile */
    constexpr int TF4 = TC / 4;                  /* float4 per tile and vector */
    constexpr int ST = GW * 32;                  /* threads per split */
    constexpr int XR = (NV * TF4 + ST - 1) / ST; /* staged float4 per thread */
    constexpr int RPC = GW * G * R;              /* rows per CTA */
    static_assert(2 * KSPL * NV * TF4 * 16 <= 32768, "x tiles too large");
    static_assert(U::QKB != 256 || TU % 8 == 0, "K types: whole superblocks per tile");
    __shared__ float4 xs[2][KSPL][NV][TF4];
    __shared__ __align__(16) float xsm[2][KSPL][NV][U::XSUM ? TC / 16 : 2]; /* 16-col sums */
    __shared__ float red[KSPL > 1 ? KSPL - 1 : 1][RPC][NV];
    const GrpPos<G, R, KSPL, TU> at(nunits);
    const int ks = at.ks, st = at.st, gl = at.gl, rl0 = at.rl0, row0 = at.row0;
    const int u0 = at.u0, u1 = at.u1, nt = at.nt;
    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = W + (long long)min(row0 + r, rows - 1) * row_bytes;
    float acc[R][NV];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[r][v] = 0.0f;
    typename U::Regs ba[R], bb[R];
    /* sm_80+, F16/BF16: x tiles go to shared memory by cp.async (no staging
     * registers: at NV = 8 they made the F16 kernel spill) */
    constexpr bool ACP = CUDA_ASYNC_COPY && U::UC == 8;
    float4 xr[ACP ? 1 : XR];

    auto load = [&](int t, typename U::Regs(&b)[R]) {
        const int u = u0 + t * TU + gl;
        if (u < u1) {
#pragma unroll
            for (int r = 0; r < R; r++) U::load(wr[r], u, b[r]);
        }
    };
    auto xload = [&](int t) {
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int e = st + ST * i;
            const int v = e / TF4, f = e % TF4;
            const int col = (u0 + t * TU) * U::UC + 4 * f;
            if (v < n && e < NV * TF4 && col < u1 * U::UC) {
                const float *g = X + (long long)v * cols + col;
                if constexpr (ACP)
                    cuda_cp16(&xs[t & 1][ks][v][U::swz(f)], g);
                else
                    xr[i] = __ldg(reinterpret_cast<const float4 *>(g));
            }
        }
        if constexpr (ACP) cuda_cp_commit();
    };
    auto xstore = [&](int t) {
        if constexpr (ACP) {
            cuda_cp_wait();
        } else {
#pragma unroll
            for (int i = 0; i < XR; i++) {
                const int e = st + ST * i;
                const int v = e / TF4, f = e % TF4;
                const int col = (u0 + t * TU) * U::UC + 4 * f;
                const bool ok = v < n && e < NV * TF4 && col < u1 * U::UC;
                if (ok) xs[t & 1][ks][v][U::swz(f)] = xr[i];
                if constexpr (U::XSUM) { /* sums of x over 16 columns = 4 lanes */
                    float sm = ok ? (xr[i].x + xr[i].y) + (xr[i].z + xr[i].w) : 0.0f;
                    sm += __shfl_xor_sync(0xffffffffu, sm, 1);
                    sm += __shfl_xor_sync(0xffffffffu, sm, 2);
                    if (ok && (f & 3) == 0) xsm[t & 1][ks][v][f >> 2] = sm;
                }
            }
        }
    };
    auto compute = [&](int t, const typename U::Regs(&b)[R]) {
        if (u0 + t * TU + gl >= u1) return;
        if constexpr (U::UC == 8) {
            typename U::Dec d[R];
#pragma unroll
            for (int r = 0; r < R; r++) U::decode(b[r], gl, d[r]);
            grp_dot8<U, NV, R, G>(d, xs[t & 1][ks], gl, n, acc);
        } else { /* 32-column units in two halves: 16 decoded floats per row live */
#pragma unroll
            for (int h = 0; h < 2; h++) {
                typename U::DecH d[R];
#pragma unroll
                for (int r = 0; r < R; r++) {
                    typename U::Dec f;
                    U::decode(b[r], gl, f);
                    U::split(f, h, d[r]);
                }
#pragma unroll
                for (int v = 0; v < NV; v++) {
                    if (v < n) {
                        typename U::XVH xv;
                        U::loadx_h(xs[t & 1][ks][v], xsm[t & 1][ks][v], gl, h, xv);
#pragma unroll
                        for (int r = 0; r < R; r++) acc[r][v] = U::dot_h(d[r], xv, acc[r][v]);
                    }
                }
            }
        }
    };

    tile_loop(nt, load, xload, xstore, compute, ba, bb);

    grp_store<R, NV, GL, KSPL, RPC>(acc, red, ks, gl, rl0, row0, rows, n, Y, bias, accumulate);
}

template <class U, int NV, int R, int G, int KSPL>
void launch_grp(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
                const float *bias, int accumulate, cudaStream_t s) {
    const long long nb = cols / U::QKB;
    const long long row_bytes = nb * U::BYTES;
    const int nunits = (int)(cols / U::UC);
    constexpr int PER = GW * G * R; /* rows per CTA */
    const unsigned grid = (unsigned)((rows + PER - 1) / PER);
    cuda_launch(mv_grp<U, NV, R, G, KSPL>, grid, GW * KSPL * 32, 0, s, (const uint8_t *)W,
                (int)rows, row_bytes, nunits, X, (int)cols, n, Y, bias, accumulate);
    CUDA_CHECK_LAUNCH();
}

/* ---- sm_80+, F16/BF16, n = 3..16: mv_grp_acp ----
 * mv_grp's CTA shape, lane-to-unit map and arithmetic (each row's sums in
 * mv_grp's order; not compared bit for bit), but the weights reach
 * shared memory by cp.async in an S-stage ring, S - 1 tiles ahead of the
 * compute (the first S - 1 tiles before the PDL wait), instead of registers
 * one tile ahead: mv_grp at n = 8 is register-bound (128 per thread for two
 * CTAs per SM) and its warps mostly wait for weights (Nsight Compute: long
 * scoreboard stalls first). A thread copies and later reads its own weight
 * slots (no barrier for those); x tiles come by cp.async too, three buffers
 * so one barrier per tile suffices. Dynamic shared memory: grp_acp_smem. */
template <int NV, int G, int KSPL, int S> constexpr int grp_acp_smem() {
    constexpr int TF4 = (32 / G) * 8 / 4;
    return (3 * KSPL * NV * TF4 + S * 4 * GW * KSPL * 32) * 16; /* R = 4 */
}
template <class U, int NV, int R, int G, int KSPL, int S>
__global__ void __launch_bounds__(GW *KSPL * 32, NV < 16 ? 16 / (GW * KSPL) : 1)
    mv_grp_acp(const uint8_t *__restrict__ W, int rows, long long row_bytes, int nunits,
               const float *__restrict__ X, int cols, int n, float *__restrict__ Y,
               const float *__restrict__ bias, int accumulate) {
#if CUDA_ASYNC_COPY
    static_assert(U::UC == 8 && R == 4, "F16/BF16 units, 4 rows per group");
    constexpr int GL = 32 / G, TU = GL, TC = TU * U::UC, TF4 = TC / 4;
    constexpr int ST = GW * 32, NT = ST * KSPL;
    constexpr int XR = (NV * TF4 + ST - 1) / ST;
    constexpr int RPC = GW * G * R;
    extern __shared__ float4 dyn[];
    float4(*xs)[KSPL][NV][TF4] = reinterpret_cast<float4(*)[KSPL][NV][TF4]>(dyn); /* [3] */
    uint4 *ws = reinterpret_cast<uint4 *>(dyn + 3 * KSPL * NV * TF4);             /* [S][R][NT] */
    __shared__ float red[KSPL > 1 ? KSPL - 1 : 1][RPC][NV];
    const GrpPos<G, R, KSPL, TU> at(nunits);
    const int ks = at.ks, st = at.st, gl = at.gl, rl0 = at.rl0, row0 = at.row0;
    const int u0 = at.u0, u1 = at.u1, nt = at.nt;
    const uint8_t *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = W + (long long)min(row0 + r, rows - 1) * row_bytes;
    float acc[R][NV];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[r][v] = 0.0f;

    auto wload = [&](int t) {
        const int u = u0 + t * TU + gl;
        if (t < nt && u < u1) {
#pragma unroll
            for (int r = 0; r < R; r++)
                cuda_cp16(&ws[((t % S) * R + r) * NT + threadIdx.x], wr[r] + 16ll * u);
        }
    };
    auto xload = [&](int t) {
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int e = st + ST * i;
            const int v = e / TF4, f = e % TF4;
            const int col = (u0 + t * TU) * U::UC + 4 * f;
            if (v < n && e < NV * TF4 && col < u1 * U::UC)
                cuda_cp16(&xs[t % 3][ks][v][U::swz(f)], X + (long long)v * cols + col);
        }
    };

#pragma unroll
    for (int t = 0; t < S - 1; t++) { /* weights only: may overlap the previous kernel */
        wload(t);
        cuda_cp_commit();
    }
    cuda_pdl_trigger();
    cuda_pdl_wait();
    xload(0);
    cuda_cp_commit();
    for (int t = 0; t < nt; t++) {
        wload(t + S - 1);
        if (t + 1 < nt) xload(t + 1);
        cuda_cp_commit();
        asm volatile("cp.async.wait_group 1;" ::: "memory"); /* all but this tile's group */
        __syncthreads();
        if (u0 + t * TU + gl < u1) {
            typename U::Dec d[R];
#pragma unroll
            for (int r = 0; r < R; r++) {
                typename U::Regs b;
                b.u = ws[((t % S) * R + r) * NT + threadIdx.x];
                U::decode(b, gl, d[r]);
            }
            grp_dot8<U, NV, R, G>(d, xs[t % 3][ks], gl, n, acc);
        }
    }
    cuda_cp_wait();
    grp_store<R, NV, GL, KSPL, RPC>(acc, red, ks, gl, rl0, row0, rows, n, Y, bias, accumulate);
#else
    __trap(); /* grp_acp_stages() keeps sm < 80 off this kernel */
#endif
}

template <class U, int NV, int G, int KSPL, int S>
void launch_grp_acp(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
                    const float *bias, int accumulate, cudaStream_t s) {
    constexpr int SM = grp_acp_smem<NV, G, KSPL, S>();
    static const bool attr =
        [] { /* > 48 KB of dynamic shared memory: opt in once */
             return cudaFuncSetAttribute(mv_grp_acp<U, NV, 4, G, KSPL, S>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         SM) == cudaSuccess;
        }();
    (void)attr;
    const long long row_bytes = cols * 2;
    const int nunits = (int)(cols / 8);
    constexpr int PER = GW * G * 4;
    const unsigned grid = (unsigned)((rows + PER - 1) / PER);
    cuda_launch(mv_grp_acp<U, NV, 4, G, KSPL, S>, grid, GW * KSPL * 32, SM, s, (const uint8_t *)W,
                (int)rows, row_bytes, nunits, X, (int)cols, n, Y, bias, accumulate);
    CUDA_CHECK_LAUNCH();
}

/* launch_grp_acp (2 column splits) with k = 3 or 4 stages */
template <class U, int NV, int G>
void launch_grp_acp_k(int k, const void *W, int64_t rows, int64_t cols, const float *X, int n,
                      float *Y, const float *bias, int accumulate, cudaStream_t s) {
    if (k == 3)
        launch_grp_acp<U, NV, G, 2, 3>(W, rows, cols, X, n, Y, bias, accumulate, s);
    else
        launch_grp_acp<U, NV, G, 2, 4>(W, rows, cols, X, n, Y, bias, accumulate, s);
}
/* stages of mv_grp_acp: env M40LLM_CUDA_GRP_STAGES = 0 (mv_grp instead), 3
 * (default: H200 7B F16 x8 1202.5 t/s, 4 stages 1185.2, mv_grp 1023.6) or 4;
 * 0 as well when the device or the binary is below sm_80 or the device lacks
 * the shared memory for the 4-stage kernel */
static int grp_acp_stages() {
    static const int v = [] {
        const char *e = getenv("M40LLM_CUDA_GRP_STAGES");
        int k = e ? atoi(e) : 3;
        if (k != 0 && k != 3 && k != 4) k = 3;
        if (k == 0) return 0;
        cudaFuncAttributes fa;
        if (cudaFuncGetAttributes(&fa, mv_grp_acp<UHalf<false>, 8, 4, 1, 2, 4>) != cudaSuccess) {
            cudaGetLastError();
            return 0;
        }
        int dev = 0, optin = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
        if (fa.binaryVersion < 80 || optin < grp_acp_smem<8, 1, 2, 4>()) return 0;
        return k;
    }();
    return v;
}
/* n = 9..16 through mv_grp_acp (NV = 16, one CTA per SM): env
 * M40LLM_CUDA_GRP_ACP16 (default on; H200 7B F16 x16 1191.0 t/s, mv_grp
 * 1021.7) */
static bool grp_acp16() {
    static const bool on = !env_off("M40LLM_CUDA_GRP_ACP16");
    return on;
}
/* n = 3..4 through mv_grp_acp (NV = 4) instead of mv_fast in chunks:
 * env M40LLM_CUDA_GRP_ACP4 (default on; F16 x4 803-832 t/s, mv_fast 513) */
static bool grp_acp4() {
    static const bool on = !env_off("M40LLM_CUDA_GRP_ACP4");
    return on;
}
/* n = 3..8 (with grp_acp16() 3..16) F16/BF16 through mv_grp_acp when
 * grp_acp_stages() allows; mv_grp's configurations (launch_grp_n), 4 rows
 * per group. Returns whether it launched. */
template <class U>
bool grp_acp_n(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
               const float *bias, int accumulate, cudaStream_t s) {
    if constexpr (U::UC != 8) {
        (void)W, (void)rows, (void)cols, (void)X, (void)n, (void)Y, (void)bias, (void)accumulate;
        (void)s;
        return false;
    } else {
        const int k = grp_acp_stages();
        if (k == 0 || n < 3 || (n > 8 && !grp_acp16()) || (n <= 4 && !grp_acp4())) return false;
        if (n > 8) /* (3 stages only) */
            launch_grp_acp<U, 16, 2, 2, 3>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else if (n <= 4)
            launch_grp_acp_k<U, 4, 1>(k, W, rows, cols, X, n, Y, bias, accumulate, s);
        else if (rows >= 8192)
            launch_grp_acp_k<U, 8, 2>(k, W, rows, cols, X, n, Y, bias, accumulate, s);
        else
            launch_grp_acp_k<U, 8, 1>(k, W, rows, cols, X, n, Y, bias, accumulate, s);
        return true;
    }
}

int g_grp_var = 0; /* bench only: mv_grp configuration k (1..6) for n > 4; 0 = default */

/* The sweep's configurations (R rows per lane group, G groups per warp, KSPL
 * column splits) for NV = 8 and 16. Returns 0 when k has none for this type. */
template <class U, int NV>
int grp_variant(int k, const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
                const float *bias, int accumulate, cudaStream_t s) {
#ifndef M40LLM_MATVEC_SWEEP /* only the workbench builds the sweep */
    (void)k, (void)W, (void)rows, (void)cols, (void)X, (void)n, (void)Y, (void)bias;
    (void)accumulate, (void)s;
    return 0;
#else
#define GV(K, R, G, KSPL)                                                                          \
    case K:                                                                                        \
        launch_grp<U, NV, R, G, KSPL>(W, rows, cols, X, n, Y, bias, accumulate, s);                \
        return 1;
    if constexpr (U::UC == 8 && NV == 8) {
        switch (k) { GV(1, 4, 1, 1) GV(2, 4, 2, 1) GV(3, 4, 2, 2) GV(4, 2, 2, 2) GV(5, 4, 1, 2) }
    } else if constexpr (U::UC == 8 && NV == 16) {
        switch (k) { GV(1, 4, 2, 1) GV(2, 2, 2, 2) GV(3, 4, 2, 2) }
    } else if constexpr (U::QKB == 256 && NV == 8) {
        switch (k) { GV(1, 1, 4, 2) GV(2, 2, 4, 1) GV(3, 1, 4, 1) GV(4, 2, 4, 2) }
    } else if constexpr (U::QKB == 256) {
        switch (k) { GV(1, 2, 4, 1) GV(2, 1, 4, 1) }
    } else if constexpr (NV == 8) {
        switch (k) {
            GV(1, 2, 2, 1)
            GV(2, 2, 4, 1) GV(3, 1, 8, 2) GV(4, 2, 4, 2) GV(5, 4, 4, 1) GV(6, 1, 4, 2)
        }
    } else {
        switch (k) { GV(1, 2, 4, 1) GV(2, 2, 8, 1) GV(3, 1, 8, 2) GV(4, 1, 4, 1) }
    }
#undef GV
    return 0;
#endif
}

/* n = 2..16: configuration per type family and NV (bench/matvec_notes.md, v8) */
template <class U>
void launch_grp_n(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
                  const float *bias, int accumulate, cudaStream_t s) {
    constexpr bool H = U::UC == 8, K = U::QKB == 256;
    if (g_grp_var && n > 4 &&
        (n <= 8 ? grp_variant<U, 8>(g_grp_var, W, rows, cols, X, n, Y, bias, accumulate, s)
                : grp_variant<U, 16>(g_grp_var, W, rows, cols, X, n, Y, bias, accumulate, s)))
        return;
    if (!g_grp_var && grp_acp_n<U>(W, rows, cols, X, n, Y, bias, accumulate, s)) return;
    if (n <= 2) {
        if constexpr (H)
            launch_grp<U, 2, 2, 1, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else
            launch_grp<U, 2, 1, 4, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else if (n <= 4) {
        if constexpr (H)
            launch_grp<U, 4, 2, 1, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else
            launch_grp<U, 4, 1, 4, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else if (n <= 8) {
        if constexpr (H) { /* (sweep v8: 32 rows per CTA pays from ~8192 rows on) */
            if (rows >= 8192)
                launch_grp<U, 8, 4, 2, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
            else
                launch_grp<U, 8, 4, 1, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
        } else if constexpr (K) {
            if (rows < 8192)
                launch_grp<U, 8, 1, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
            else
                launch_grp<U, 8, 2, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
        } else /* Q*_0/Q*_1: 2 groups of 16 lanes x 2 rows */
            launch_grp<U, 8, 2, 2, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
    } else {
        if constexpr (H)
            launch_grp<U, 16, 4, 2, 2>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else if constexpr (K && U::BYTES == 176)
            launch_grp<U, 16, 1, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
        else if constexpr (K) {
            if (rows < 8192)
                launch_grp<U, 16, 1, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
            else
                launch_grp<U, 16, 2, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
        } else
            launch_grp<U, 16, 2, 4, 1>(W, rows, cols, X, n, Y, bias, accumulate, s);
    }
}

/* r: rows per warp (0 = default) */
template <class U>
void launch_fast_n(const void *W, int64_t rows, int64_t cols, const float *X, int n, float *Y,
                   const float *bias, int accumulate, cudaStream_t s, int r) {
    /* n = 2 for F16/BF16/Q8_0 and n = 3, 4 for F16/BF16: the previous kernel
     * (32 lanes per row, measured faster there) */
    const bool prev = U::UC == 8 ? n <= 2 || (n <= 4 && !(grp_acp4() && grp_acp_stages()))
                                 : (U::BYTES == 34 && n == 2);
    if (n > 1 && r != 200 && !prev) {
        launch_grp_n<U>(W, rows, cols, X, n, Y, bias, accumulate, s);
        return;
    }
    for (int i0 = 0; i0 < n; i0 += 4) { /* > 4 vectors: chunks of 4 (weights re-read) */
        const int m = min(4, n - i0);
        const float *Xi = X + (long long)i0 * cols;
        float *Yi = Y + (long long)i0 * rows;
        if (m == 1) {
            if (r == 0 && U::UC != 8) r = mv_rows<U>();
            if (r == 1)
                launch_fast<U, 1, 1>(W, rows, cols, Xi, m, Yi, bias, accumulate, s);
            else if (r == 4) /* 4 rows per warp (bench/matvec_notes.md v7) */
                launch_fast<U, 1, 4>(W, rows, cols, Xi, m, Yi, bias, accumulate, s);
            else
                launch_fast<U, 1, 2>(W, rows, cols, Xi, m, Yi, bias, accumulate, s);
        } else if (m == 2) {
            launch_fast<U, 2, 1>(W, rows, cols, Xi, m, Yi, bias, accumulate, s);
        } else {
            launch_fast<U, 4, 1>(W, rows, cols, Xi, m, Yi, bias, accumulate, s);
        }
    }
}

} // namespace fast

/* The fast path when it applies (returns 1), else 0: X 16-byte aligned,
 * F16/BF16 rows of a multiple of 8 columns with W 16-byte aligned, Q4_K/Q5_K
 * with W 16-byte aligned, the Q*_0 / Q*_1 types always (2-byte aligned). */
int fast_dispatch(uint32_t type, const void *W, int64_t rows, int64_t cols, const float *X, int n,
                  float *Y, const float *bias, int accumulate, cudaStream_t s, int r) {
    if ((uintptr_t)X % 16 != 0 || cols % 8 != 0 || cols > (1ll << 30)) return 0;
    const bool w16 = (uintptr_t)W % 16 == 0;
    switch (type) {
    case GGML_TYPE_F16:
        if (!w16) return 0;
        fast::launch_fast_n<fast::UHalf<false>>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_BF16:
        if (!w16) return 0;
        fast::launch_fast_n<fast::UHalf<true>>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_Q4_K:
        if (!w16) return 0;
        /* mv_dp for Q4_K only as a bench variant: measured no faster than the
         * FP32 kernel (bench/matvec_notes.md v9) */
        if (n == 1 && r > 500 && r < 600 && fast::dp_ready())
            fast::launch_dp_1<m40f::DQ4_K>(W, rows, cols, X, Y, bias, accumulate, s, r);
        else
            fast::launch_fast_n<fast::UK<false>>(W, rows, cols, X, n, Y, bias, accumulate, s,
                                                 r >= 500 ? 0 : r);
        return 1;
    case GGML_TYPE_Q5_K:
        if (!w16 || (n == 1 && r == 0)) return 0; /* n = 1: the staged kernel is faster */
        fast::launch_fast_n<fast::UK<true>>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_Q4_0:
        fast::launch_fast_n<fast::UQ4_0>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_Q8_0:
        fast::launch_fast_n<fast::UQ8_0>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_Q4_0 | CUDA_TYPE_SPLIT:
        if (!w16 || cols % 256 != 0) return 0;
        if (fast::dp_take(n, r))
            fast::launch_dp_1<m40f::DQ4_0S>(W, rows, cols, X, Y, bias, accumulate, s, r);
        else
            fast::launch_fast_n<fast::UQ4_0S>(W, rows, cols, X, n, Y, bias, accumulate, s,
                                              r >= 500 ? 0 : r);
        return 1;
    case GGML_TYPE_Q8_0 | CUDA_TYPE_SPLIT:
        if (!w16 || cols % 256 != 0) return 0;
        if (fast::dp_take(n, r))
            fast::launch_dp_1<m40f::DQ8_0S>(W, rows, cols, X, Y, bias, accumulate, s, r);
        else
            fast::launch_fast_n<fast::UQ8_0S>(W, rows, cols, X, n, Y, bias, accumulate, s,
                                              r >= 500 ? 0 : r);
        return 1;
    case GGML_TYPE_Q4_1:
        fast::launch_fast_n<fast::UQ4_1>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_Q5_0:
        fast::launch_fast_n<fast::UQ5_0>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    case GGML_TYPE_Q5_1:
        fast::launch_fast_n<fast::UQ5_1>(W, rows, cols, X, n, Y, bias, accumulate, s, r);
        return 1;
    default:
        return 0;
    }
}

} // namespace

namespace {
/* one token through mv_fast with SwiGLU fused (gate row p and up row p in one warp) */
template <class U>
void glu_n1(const void *W, int64_t rows, int64_t cols, const float *X, float *H, int glu,
            cudaStream_t s) {
    fast::launch_fast<U, 1, 2>(W, rows, cols, X, 1, H, NULL, 0, s, glu);
}
} // namespace

int cuda_matvec_glu(uint32_t type, const void *W, int64_t ffn, int64_t cols, const float *X,
                    float *H, cudaStream_t s) {
    if (ffn <= 0 || ffn > (1ll << 29) || (uintptr_t)X % 16 != 0 || cols % 8 != 0 ||
        cols > (1ll << 30))
        return 0;
    const bool w16 = (uintptr_t)W % 16 == 0;
    const int64_t rows = 2 * ffn;
    const int glu = (int)ffn;
    switch (type) {
    case GGML_TYPE_F16:
        if (!w16) return 0;
        glu_n1<fast::UHalf<false>>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_BF16:
        if (!w16) return 0;
        glu_n1<fast::UHalf<true>>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q4_K:
        if (!w16) return 0;
        glu_n1<fast::UK<false>>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q4_0:
        glu_n1<fast::UQ4_0>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q8_0:
        glu_n1<fast::UQ8_0>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q4_0 | CUDA_TYPE_SPLIT:
        if (!w16 || cols % 256 != 0) return 0;
        if (fast::dp_ready())
            fast::launch_dp_glu<m40f::DQ4_0S>(W, rows, cols, X, H, glu, s);
        else
            glu_n1<fast::UQ4_0S>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q8_0 | CUDA_TYPE_SPLIT:
        if (!w16 || cols % 256 != 0) return 0;
        if (fast::dp_ready())
            fast::launch_dp_glu<m40f::DQ8_0S>(W, rows, cols, X, H, glu, s);
        else
            glu_n1<fast::UQ8_0S>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q4_1:
        glu_n1<fast::UQ4_1>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q5_0:
        glu_n1<fast::UQ5_0>(W, rows, cols, X, H, glu, s);
        return 1;
    case GGML_TYPE_Q5_1:
        glu_n1<fast::UQ5_1>(W, rows, cols, X, H, glu, s);
        return 1;
    default:
        return 0;
    }
}

void cuda_matvec_set_dp(int on) { fast::g_dp_force = on < 0 ? -1 : on ? 1 : 0; }
int cuda_matvec_dp_active(void) { return fast::dp_ready() ? 1 : 0; }

int cuda_matvec_supported(uint32_t type) {
    switch (type) {
#define M40_CASE(id, T)                                                                            \
    case id:                                                                                       \
        return 1;
        M40_WEIGHT_TYPES(M40_CASE)
#undef M40_CASE
    default:
        return 0;
    }
}

/* Internal (bench): cuda_matvec with a choice of kernel and rows per warp for n == 1. */
void cuda_matvec_variant(uint32_t type, const void *W, int64_t rows, int64_t cols, const float *X,
                         int n, float *Y, const float *bias, int accumulate, cudaStream_t s,
                         int r1) {
    if (rows <= 0 || n <= 0) return;
    if (n > CUDA_MATVEC_MAX_BATCH) {
        fprintf(stderr, "m40llm: cuda_matvec: n=%d exceeds %d\n", n, CUDA_MATVEC_MAX_BATCH);
        abort();
    }
    /* r1: 0 default; 1, 2: rows per warp of the fast path (n == 1; types it
     * does not take use v3 with that R); 101, 102, 104: the staged (v3) kernel
     * with 1, 2, 4 rows per warp; 301..306 mv_grp configurations; 501..514
     * mv_dp configurations (launch_dp_1), 600 the FP32 kernels for split
     * weights (no integer dot products) */
    fast::g_grp_var = r1 >= 300 && r1 < 400 ? r1 - 300 : 0;
    if (r1 >= 300 && r1 < 400) r1 = 0;
    if (type & CUDA_TYPE_SPLIT) { /* only the fast kernels read the split layout */
        if (r1 >= 100 && r1 != 200 && r1 < 500) r1 = 0;
        if (fast_dispatch(type, W, rows, cols, X, n, Y, bias, accumulate, s, r1)) return;
        fprintf(stderr,
                "m40llm: cuda_matvec: split %s weights need 16-byte aligned W and X and "
                "cols %% 256 == 0 (cols %lld)\n",
                ggml_type_name(type & ~CUDA_TYPE_SPLIT), (long long)cols);
        abort();
    }
    if ((r1 < 100 || r1 == 200 || r1 >= 500) &&
        fast_dispatch(type, W, rows, cols, X, n, Y, bias, accumulate, s, r1))
        return;
    if (r1 > 100) r1 -= 100;
    if ((type == GGML_TYPE_F16 || type == GGML_TYPE_BF16) && cols % 8 != 0) {
        half_scalar(type, W, rows, cols, X, n, Y, bias, accumulate, s);
        return;
    }
    switch (type) {
#define M40_CASE(id, T)                                                                            \
    case id:                                                                                       \
        launch_n<T>(W, rows, cols, X, n, Y, bias, accumulate, s, r1);                              \
        break;
        M40_WEIGHT_TYPES(M40_CASE)
#undef M40_CASE
    default:
        fprintf(stderr, "m40llm: cuda_matvec: unsupported weight type %u\n", type);
        abort();
    }
}

void cuda_matvec(uint32_t type, const void *W, int64_t rows, int64_t cols, const float *X, int n,
                 float *Y, const float *bias, int accumulate, cudaStream_t s) {
    cuda_matvec_variant(type, W, rows, cols, X, n, Y, bias, accumulate, s, 0);
}

bool cuda_split_fits(uint32_t type, int64_t cols) {
    return (type == GGML_TYPE_Q8_0 || type == GGML_TYPE_Q4_0) && cols > 0 && cols % 256 == 0;
}

uint32_t cuda_upload_type(uint32_t type, int64_t cols) {
    static const int on = !env_off("M40LLM_CUDA_SPLIT");
    return on && cuda_split_fits(type, cols) ? type | CUDA_TYPE_SPLIT : type;
}

void cuda_repack_rows(uint32_t dev_type, int64_t cols, int64_t rows, const void *src, void *dst) {
    const uint32_t type = dev_type & ~CUDA_TYPE_SPLIT;
    const size_t rb = ggml_row_size(type, (uint64_t)cols);
    const uint8_t *in = (const uint8_t *)src;
    uint8_t *out = (uint8_t *)dst;
    if (!(dev_type & CUDA_TYPE_SPLIT)) {
        memcpy(out, in, rb * (size_t)rows);
        return;
    }
    if (!cuda_split_fits(type, cols)) {
        fprintf(stderr, "m40llm: cuda_repack_rows: no split layout for %s with %lld columns\n",
                ggml_type_name(type), (long long)cols);
        abort();
    }
    const size_t B = type == GGML_TYPE_Q8_0 ? 34 : 18, planes = (B - 2) / 16;
    const size_t groups = (size_t)rows * (size_t)(cols / 256); /* rows are whole groups */
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *s = in + g * 8 * B;
        uint8_t *d = out + g * 8 * B;
        for (size_t j = 0; j < 8; j++) {
            memcpy(d + 2 * j, s + j * B, 2);
            for (size_t p = 0; p < planes; p++)
                memcpy(d + 16 + 128 * p + 16 * j, s + j * B + 2 + 16 * p, 16);
        }
    }
}
