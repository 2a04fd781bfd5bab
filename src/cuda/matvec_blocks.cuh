/* matvec_blocks.cuh - weight block decoders shared by matvec.cu and
 * dequant.cu (internal to src/cuda).
 *
 * Every supported weight type is a struct of traits:
 *   QK, BYTES  elements and bytes per block (BYTES always even);
 *   NG         = QK / 8 groups of 8 weights per block;
 *   NSUB       scale sub-blocks per block (0 for F16/BF16: no scales);
 *   MIN        whether sub-blocks have an offset (w = sd*q - sm);
 *   scale(b, j, sd, sm)   scale pair of sub-block j: weight = sd * q - sm
 *                          (sm = 0 when !MIN);
 *   quants<AL>(b, g, q, j0, j1, o0, o1)   the raw quants of group g as exact
 *          floats: q[0..4) are elements o0..o0+3 (sub-block j0), q[4..8)
 *          elements o1..o1+3 (sub-block j1); o0, o1 multiples of 4,
 *          block-relative. F16/BF16 give the weights themselves.
 * matvec factors the scales out of the dot product (sd * sum(q x) - sm *
 * sum(x) per run of 4) and computes each sub-block's scale pair once per
 * tile; dequant applies them per weight, rounding the product before the
 * subtraction (__fmul_rn: no FMA contraction) so that it is bit-identical to
 * the CPU reference quant_dequant_row.
 * Quants become floats without I2F (quarter rate on most GPUs): a byte v is
 * placed in the mantissa of 2^23 (PRMT) and 2^23 + offset subtracted.
 * Groups follow each format's natural byte order (a group reads a few
 * contiguous bytes). `b` is 2-byte aligned (block sizes are even; device
 * buffers are 256-byte aligned) and may point to global or shared memory;
 * AL = true promises 4-byte alignment of the block (used in matvec's
 * shared-memory tiles when BYTES % 4 == 0). F16/BF16 read a 16-byte vector
 * (matvec only: its shared tiles are 16-byte aligned; dequant.cu converts
 * them elementwise). All arithmetic FP32; halves are only converted (sm_52
 * has no half arithmetic).
 *
 * Block layouts (ggml-common.h), byte offsets:
 *   F16   (QK 8)   8 x half
 *   BF16  (QK 8)   8 x bf16
 *   Q8_0  34 B:    d half @0, qs int8[32] @2          w = d*q
 *   Q4_0  18 B:    d @0, qs[16] @2   elem j: lo nibble qs[j], j+16: hi nibble; w = d*(q-8)
 *   Q4_1  20 B:    d @0, m @2, qs[16] @4              w = d*q + m
 *   Q5_0  22 B:    d @0, qh u32 @2, qs[16] @6         q |= bit j (lo) / bit j+16 (hi) << 4; w =
 * d*(q-16) Q5_1  24 B:    d @0, m @2, qh @4, qs @8           w = d*q + m Q2_K  84 B:    scales[16]
 * @0, qs[64] @16, d @80, dmin @82 Q3_K  110 B:   hmask[32] @0, qs[64] @32, scales[12] @96, d @108
 *   Q4_K  144 B:   d @0, dmin @2, scales[12] @4, qs[128] @16
 *   Q5_K  176 B:   d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
 *   Q6_K  210 B:   ql[128] @0, qh[64] @128, scales int8[16] @192, d @208 */
#ifndef M40_MATVEC_BLOCKS_CUH
#define M40_MATVEC_BLOCKS_CUH

#include "cuda_common.cuh"
extern "C" {
#include "gguf/gguf.h"
}

namespace m40q {

static __device__ __forceinline__ uint32_t ld16(const uint8_t *p) {
    return *reinterpret_cast<const uint16_t *>(p);
}
/* 4 bytes at a 2-byte aligned address (AL: 4-byte aligned), little-endian */
template <bool AL> static __device__ __forceinline__ uint32_t ldw(const uint8_t *p) {
    if (AL) return *reinterpret_cast<const uint32_t *>(p);
    return ld16(p) | (ld16(p + 2) << 16);
}
static __device__ __forceinline__ float h2f(uint32_t h) {
    return __half2float(__ushort_as_half((unsigned short)h));
}
static __device__ __forceinline__ float bf2f(uint32_t b) { return __uint_as_float(b << 16); }

constexpr float MAGIC = 8388608.0f; /* 2^23 */
/* 2^23 + byte i of x, exactly */
static __device__ __forceinline__ float bytef(uint32_t x, int i) {
    return __int_as_float((int)__byte_perm(x, 0x4B000000u, 0x7540u + (unsigned)i));
}
/* bits 0..3 of v moved to bit 0 of bytes 0..3 */
static __device__ __forceinline__ uint32_t spread4(uint32_t v) {
    return (v * 0x00204081u) & 0x01010101u;
}
/* the 8 floats of two words of 4 bytes each, minus off */
static __device__ __forceinline__ void bytes8(uint32_t lo, uint32_t hi, float off, float *q) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        q[i] = bytef(lo, i) - (MAGIC + off);
        q[4 + i] = bytef(hi, i) - (MAGIC + off);
    }
}

struct TF16 {
    static constexpr int QK = 8, BYTES = 16, NG = 1, NSUB = 0;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *, int, float &sd, float &sm) {
        sd = 1.0f, sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int, float *q, int &j0, int &j1,
                                                  int &o0, int &o1) {
        const uint4 u = *reinterpret_cast<const uint4 *>(b);
        q[0] = h2f(u.x & 0xffff), q[1] = h2f(u.x >> 16), q[2] = h2f(u.y & 0xffff),
        q[3] = h2f(u.y >> 16);
        q[4] = h2f(u.z & 0xffff), q[5] = h2f(u.z >> 16), q[6] = h2f(u.w & 0xffff),
        q[7] = h2f(u.w >> 16);
        j0 = j1 = 0, o0 = 0, o1 = 4;
    }
};

struct TBF16 {
    static constexpr int QK = 8, BYTES = 16, NG = 1, NSUB = 0;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *, int, float &sd, float &sm) {
        sd = 1.0f, sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int, float *q, int &j0, int &j1,
                                                  int &o0, int &o1) {
        const uint4 u = *reinterpret_cast<const uint4 *>(b);
        q[0] = bf2f(u.x & 0xffff), q[1] = __uint_as_float(u.x & 0xffff0000u);
        q[2] = bf2f(u.y & 0xffff), q[3] = __uint_as_float(u.y & 0xffff0000u);
        q[4] = bf2f(u.z & 0xffff), q[5] = __uint_as_float(u.z & 0xffff0000u);
        q[6] = bf2f(u.w & 0xffff), q[7] = __uint_as_float(u.w & 0xffff0000u);
        j0 = j1 = 0, o0 = 0, o1 = 4;
    }
};

struct TQ8_0 {
    static constexpr int QK = 32, BYTES = 34, NG = 4, NSUB = 1;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *b, int, float &sd, float &sm) {
        sd = h2f(ld16(b)), sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const uint32_t a = ldw<false>(b + 2 + 8 * g) ^ 0x80808080u;
        const uint32_t c = ldw<false>(b + 6 + 8 * g) ^ 0x80808080u;
        bytes8(a, c, 128.0f, q);
        j0 = j1 = 0, o0 = 8 * g, o1 = 8 * g + 4;
    }
};

struct TQ4_0 {
    static constexpr int QK = 32, BYTES = 18, NG = 4, NSUB = 1;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *b, int, float &sd, float &sm) {
        sd = h2f(ld16(b)), sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const uint32_t w = ldw<false>(b + 2 + 4 * g);
        bytes8(w & 0x0F0F0F0Fu, (w >> 4) & 0x0F0F0F0Fu, 8.0f, q);
        j0 = j1 = 0, o0 = 4 * g, o1 = 16 + 4 * g;
    }
};

struct TQ4_1 {
    static constexpr int QK = 32, BYTES = 20, NG = 4, NSUB = 1;
    static constexpr bool MIN = true;
    static __device__ __forceinline__ void scale(const uint8_t *b, int, float &sd, float &sm) {
        sd = h2f(ld16(b)), sm = -h2f(ld16(b + 2));
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const uint32_t w = ldw<AL>(b + 4 + 4 * g);
        bytes8(w & 0x0F0F0F0Fu, (w >> 4) & 0x0F0F0F0Fu, 0.0f, q);
        j0 = j1 = 0, o0 = 4 * g, o1 = 16 + 4 * g;
    }
};

struct TQ5_0 {
    static constexpr int QK = 32, BYTES = 22, NG = 4, NSUB = 1;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *b, int, float &sd, float &sm) {
        sd = h2f(ld16(b)), sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const uint32_t qh = ldw<false>(b + 2);
        const uint32_t w = ldw<false>(b + 6 + 4 * g);
        const uint32_t lo = (w & 0x0F0F0F0Fu) | (spread4((qh >> (4 * g)) & 0xf) << 4);
        const uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | (spread4((qh >> (4 * g + 16)) & 0xf) << 4);
        bytes8(lo, hi, 16.0f, q);
        j0 = j1 = 0, o0 = 4 * g, o1 = 16 + 4 * g;
    }
};

struct TQ5_1 {
    static constexpr int QK = 32, BYTES = 24, NG = 4, NSUB = 1;
    static constexpr bool MIN = true;
    static __device__ __forceinline__ void scale(const uint8_t *b, int, float &sd, float &sm) {
        sd = h2f(ld16(b)), sm = -h2f(ld16(b + 2));
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const uint32_t qh = ldw<AL>(b + 4);
        const uint32_t w = ldw<AL>(b + 8 + 4 * g);
        const uint32_t lo = (w & 0x0F0F0F0Fu) | (spread4((qh >> (4 * g)) & 0xf) << 4);
        const uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | (spread4((qh >> (4 * g + 16)) & 0xf) << 4);
        bytes8(lo, hi, 0.0f, q);
        j0 = j1 = 0, o0 = 4 * g, o1 = 16 + 4 * g;
    }
};

/* Q2_K: element 128h + 32j + 16p + l (h<2, j<4, p<2, l<16) is bits 2j of
 * qs[32h + 16p + l], sub-block (scale byte) 8h + 2j + p: lo nibble scale,
 * hi nibble min. Group g: h = g>>4, p = (g>>3)&1, t = (g>>1)&3 (l = 4t..),
 * j = 2(g&1) and 2(g&1)+1. */
struct TQ2_K {
    static constexpr int QK = 256, BYTES = 84, NG = 32, NSUB = 16;
    static constexpr bool MIN = true;
    static __device__ __forceinline__ void scale(const uint8_t *b, int j, float &sd, float &sm) {
        const uint32_t sc = b[j];
        sd = h2f(ld16(b + 80)) * (float)(sc & 0xf);
        sm = h2f(ld16(b + 82)) * (float)(sc >> 4);
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const int h = g >> 4, p = (g >> 3) & 1, t = (g >> 1) & 3, jj = 2 * (g & 1);
        const uint32_t w = ldw<AL>(b + 16 + 32 * h + 16 * p + 4 * t);
        bytes8((w >> (2 * jj)) & 0x03030303u, (w >> (2 * jj + 2)) & 0x03030303u, 0.0f, q);
        j0 = 8 * h + 2 * jj + p, j1 = j0 + 2;
        o0 = 128 * h + 32 * jj + 16 * p + 4 * t, o1 = o0 + 32;
    }
};

/* Q3_K: as Q2_K for qs, minus 4 where hmask[16p + l] bit (4h + j) is clear;
 * 6-bit signed scales (minus 32) packed in 12 bytes. */
static __device__ __forceinline__ int q3k_scale(const uint8_t *sc, int k) {
    const uint32_t lo = k < 8 ? (sc[k] & 0xf) : (sc[k - 8] >> 4);
    const uint32_t hi = (sc[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    return (int)(lo | (hi << 4)) - 32;
}
struct TQ3_K {
    static constexpr int QK = 256, BYTES = 110, NG = 32, NSUB = 16;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *b, int j, float &sd, float &sm) {
        sd = h2f(ld16(b + 108)) * (float)q3k_scale(b + 96, j), sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const int h = g >> 4, p = (g >> 3) & 1, t = (g >> 1) & 3, jj = 2 * (g & 1);
        const uint32_t w = ldw<false>(b + 32 + 32 * h + 16 * p + 4 * t);
        const uint32_t hm = ldw<false>(b + 16 * p + 4 * t);
        const int hb = 4 * h + jj;
        const uint32_t lo = ((w >> (2 * jj)) & 0x03030303u) | (((hm >> hb) & 0x01010101u) << 2);
        const uint32_t hi =
            ((w >> (2 * jj + 2)) & 0x03030303u) | (((hm >> (hb + 1)) & 0x01010101u) << 2);
        bytes8(lo, hi, 4.0f, q);
        j0 = 8 * h + 2 * jj + p, j1 = j0 + 2;
        o0 = 128 * h + 32 * jj + 16 * p + 4 * t, o1 = o0 + 32;
    }
};

/* 6-bit scale and min j (0..7) of Q4_K / Q5_K (ggml get_scale_min_k4). */
static __device__ __forceinline__ void k4_scale_min(const uint8_t *q, int j, uint32_t &sc,
                                                    uint32_t &m) {
    if (j < 4) {
        sc = q[j] & 63, m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: chunk c (0..3) of 64 elements: qs[32c + l] lo nibble -> elem 64c + l
 * (sub-block 2c), hi nibble -> 64c + 32 + l (sub-block 2c+1). Group g:
 * c = g>>3, l = 4(g&7)..+3. */
struct TQ4_K {
    static constexpr int QK = 256, BYTES = 144, NG = 32, NSUB = 8;
    static constexpr bool MIN = true;
    static __device__ __forceinline__ void scale(const uint8_t *b, int j, float &sd, float &sm) {
        uint32_t sc, m;
        k4_scale_min(b + 4, j, sc, m);
        sd = h2f(ld16(b)) * (float)sc, sm = h2f(ld16(b + 2)) * (float)m;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const int c = g >> 3, s = g & 7;
        const uint32_t w = ldw<AL>(b + 16 + 32 * c + 4 * s);
        bytes8(w & 0x0F0F0F0Fu, (w >> 4) & 0x0F0F0F0Fu, 0.0f, q);
        j0 = 2 * c, j1 = 2 * c + 1, o0 = 64 * c + 4 * s, o1 = o0 + 32;
    }
};

/* Q5_K: as Q4_K plus the 5th bit: qh[l] bit 2c (lo) and 2c+1 (hi). */
struct TQ5_K {
    static constexpr int QK = 256, BYTES = 176, NG = 32, NSUB = 8;
    static constexpr bool MIN = true;
    static __device__ __forceinline__ void scale(const uint8_t *b, int j, float &sd, float &sm) {
        uint32_t sc, m;
        k4_scale_min(b + 4, j, sc, m);
        sd = h2f(ld16(b)) * (float)sc, sm = h2f(ld16(b + 2)) * (float)m;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const int c = g >> 3, s = g & 7;
        const uint32_t qh = ldw<AL>(b + 16 + 4 * s);
        const uint32_t w = ldw<AL>(b + 48 + 32 * c + 4 * s);
        const uint32_t lo = (w & 0x0F0F0F0Fu) | (((qh >> (2 * c)) & 0x01010101u) << 4);
        const uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | (((qh >> (2 * c + 1)) & 0x01010101u) << 4);
        bytes8(lo, hi, 0.0f, q);
        j0 = 2 * c, j1 = 2 * c + 1, o0 = 64 * c + 4 * s, o1 = o0 + 32;
    }
};

/* Q6_K: half hh (0..1) of 128 elements, l < 32:
 *   elem 128hh + l      = ql[64hh + l] lo | (qh[32hh + l] >> 0 & 3) << 4, scale 8hh + l/16
 *   elem 128hh + 32 + l = ql[64hh + 32 + l] lo | (qh >> 2 & 3) << 4,     scale +2
 *   elem 128hh + 64 + l = ql[64hh + l] hi | (qh >> 4 & 3) << 4,          scale +4
 *   elem 128hh + 96 + l = ql[64hh + 32 + l] hi | (qh >> 6 & 3) << 4,     scale +6
 * values minus 32. Group g: hh = g>>4, s = (g>>1)&7 (l = 4s..4s+3), wh =
 * g&1 (0: the first two rows, 1: the last two). */
struct TQ6_K {
    static constexpr int QK = 256, BYTES = 210, NG = 32, NSUB = 16;
    static constexpr bool MIN = false;
    static __device__ __forceinline__ void scale(const uint8_t *b, int j, float &sd, float &sm) {
        sd = h2f(ld16(b + 208)) * (float)(int8_t)b[192 + j], sm = 0.0f;
    }
    template <bool AL>
    static __device__ __forceinline__ void quants(const uint8_t *b, int g, float *q, int &j0,
                                                  int &j1, int &o0, int &o1) {
        const int hh = g >> 4, s = (g >> 1) & 7, wh = g & 1;
        const uint32_t qa = ldw<false>(b + 64 * hh + 4 * s);
        const uint32_t qb = ldw<false>(b + 64 * hh + 32 + 4 * s);
        const uint32_t qh = ldw<false>(b + 128 + 32 * hh + 4 * s);
        const int nsh = 4 * wh;
        const uint32_t v0 = ((qa >> nsh) & 0x0F0F0F0Fu) | (((qh >> nsh) & 0x03030303u) << 4);
        const uint32_t v1 = ((qb >> nsh) & 0x0F0F0F0Fu) | (((qh >> (nsh + 2)) & 0x03030303u) << 4);
        bytes8(v0, v1, 32.0f, q);
        j0 = 8 * hh + (s >> 2) + 4 * wh, j1 = j0 + 2;
        o0 = 128 * hh + 64 * wh + 4 * s, o1 = o0 + 32;
    }
};

/* Bit-exact dequantization of group g (as the CPU reference). */
template <class T>
static __device__ __forceinline__ void dq(const uint8_t *b, int g, float *w, int &o0, int &o1) {
    float q[8], d0, m0, d1, m1;
    int j0, j1;
    T::template quants<false>(b, g, q, j0, j1, o0, o1);
    T::scale(b, j0, d0, m0);
    T::scale(b, j1, d1, m1);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        w[i] = __fsub_rn(__fmul_rn(d0, q[i]), m0);
        w[4 + i] = __fsub_rn(__fmul_rn(d1, q[4 + i]), m1);
    }
}

} // namespace m40q

/* The one list of supported weight types: X(ggml type id, traits struct).
 * Each op's dispatch switch expands it (calm's CASE pattern), so adding a
 * type touches this list and its traits struct only. */
#define M40_WEIGHT_TYPES(X)                                                                        \
    X(GGML_TYPE_F16, m40q::TF16)                                                                   \
    X(GGML_TYPE_BF16, m40q::TBF16)                                                                 \
    X(GGML_TYPE_Q8_0, m40q::TQ8_0)                                                                 \
    X(GGML_TYPE_Q4_0, m40q::TQ4_0)                                                                 \
    X(GGML_TYPE_Q4_1, m40q::TQ4_1)                                                                 \
    X(GGML_TYPE_Q5_0, m40q::TQ5_0)                                                                 \
    X(GGML_TYPE_Q5_1, m40q::TQ5_1)                                                                 \
    X(GGML_TYPE_Q2_K, m40q::TQ2_K)                                                                 \
    X(GGML_TYPE_Q3_K, m40q::TQ3_K)                                                                 \
    X(GGML_TYPE_Q4_K, m40q::TQ4_K)                                                                 \
    X(GGML_TYPE_Q5_K, m40q::TQ5_K)                                                                 \
    X(GGML_TYPE_Q6_K, m40q::TQ6_K)

#endif
