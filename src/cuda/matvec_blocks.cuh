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

/* m40f: register decoders of matvec's fast path (mv_fast in matvec.cu) and
 * of dequant.cu's Q8_0/Q4_0 path. A "unit" is what one lane owns of a row:
 *   U32Base (Q4_0, Q8_0, Q4_1, Q5_0, Q5_1): one 32-weight block, loaded as NW
 *     4-byte words from the block's aligned-down address (blocks are only
 *     2-byte aligned); field<O>() funnel-shifts byte O of the block out of the
 *     window; never reads a word that holds no byte of the block;
 *   UHalf (F16, BF16): 8 columns, one 16-byte vector;
 *   UK (Q4_K, Q5_K): 8 lanes per superblock; lane t: the 16 qs bytes
 *     32c + 16h .. (c = t/2, h = t%2), its qh vector (Q5_K) and the 16-byte
 *     header (d, dmin, packed scales; broadcast among the 8 lanes).
 * Each unit type gives: UC (columns per unit), KS (units per lane and tile),
 * Regs / load (global -> registers), Dec / decode (exact quant floats via
 * PRMT into 2^23's mantissa and one FADD, plus the block's scales), XV /
 * loadx (the unit's activations from the shared tile, swz = conflict-free
 * float4 placement, plus per-sub-block sums for types with a min), and dot
 * (scales applied once per block / sub-block to the partial sums). */
namespace m40f {

using m40q::bytef;
using m40q::h2f;
using m40q::MAGIC;

static __device__ __forceinline__ uint32_t ldg32(const uint8_t *p) {
    return __ldg(reinterpret_cast<const unsigned int *>(p));
}
/* word at byte o of a block whose bytes start `sh` bits into window a[] */
template <int O, int NW>
static __device__ __forceinline__ uint32_t field(const uint32_t (&a)[NW], uint32_t sh) {
    static_assert(O / 4 + 1 < NW || (O % 4 == 0 && O / 4 < NW), "field outside window");
    if constexpr (O / 4 + 1 < NW)
        return __funnelshift_rc(a[O / 4], a[O / 4 + 1], 8 * (O % 4) + sh);
    else
        return a[O / 4];
}
/* 4 floats of the bytes of w (element i = byte i), each minus off */
static __device__ __forceinline__ void f4(uint32_t w, float off, float *q) {
#pragma unroll
    for (int k = 0; k < 4; k++) q[k] = bytef(w, k) - (MAGIC + off);
}
/* 4 floats 0.5 + b_i / 256 of the bytes b_i < 128 of w: one PRMT each (byte
 * i into bits 16..23 of 0x3F000000 = 0.5), no FADD. The matvec folds the
 * 0.5 and the type's offset into a per-16-column sum of x (dot's `C`), so a
 * 4/5-bit weight costs PRMT + FFMA. The common 0.5 costs ~7 bits of the
 * partial sums' precision (median rel. error of a 4096-long dot ~5e-6
 * instead of ~2e-7; docs/numerics.md). */
static __device__ __forceinline__ void fh4(uint32_t w, float *q) {
#pragma unroll
    for (int k = 0; k < 4; k++)
        q[k] = __uint_as_float(__byte_perm(w, 0x3F000000u, 0x7054u | ((uint32_t)k << 8)));
}

/* ---- QK = 32 block types: lane = one block; window of NW words ----
 * OFF >= 0: decode gives q' = 0.5 + b/256 (fh4) and d' = 256 d, so that
 * w = d (b - OFF) (+ m) = d' (q' - C) (+ m) with C = (128 + OFF) / 256;
 * dot uses the unit's sum of x. OFF < 0 (Q8_0): exact quant values. */
template <int BYTES_, bool MIN_, int OFF_ = -1> struct U32Base {
    static constexpr int UC = 32, QKB = 32, BYTES = BYTES_;
    static constexpr bool MIN = MIN_;
    static constexpr bool XSUM = OFF_ >= 0;        /* needs the 16-column sums of x */
    static constexpr int NW = (BYTES + 2 + 3) / 4; /* window covering 2 + BYTES bytes */
    struct Regs {
        uint32_t a[NW];
        uint32_t sh;
    };
    struct Dec {
        float q[32];
        float d, m;
    };
    struct XV {
        float x[32];
        float s;
    };
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        const uint8_t *p = row + (long long)u * BYTES;
        const uintptr_t ad = (uintptr_t)p & ~(uintptr_t)3;
        r.sh = 8u * (uint32_t)((uintptr_t)p & 3);
        const uint8_t *q = reinterpret_cast<const uint8_t *>(ad);
#pragma unroll
        for (int i = 0; i < NW - 1; i++) r.a[i] = ldg32(q + 4 * i);
        /* BYTES % 4 == 0: the last word only when the block is not 4-aligned
         * (never read past the block's last word) */
        r.a[NW - 1] = (BYTES % 4 != 0 || r.sh) ? ldg32(q + 4 * (NW - 1)) : 0u;
    }
    /* tile-local float4 index f of column 4f; lane's block covers 8 float4 */
    static __device__ __forceinline__ int swz(int f) { return f ^ ((f >> 3) & 7); }
    /* xsum: sums of x over the tile's 16-column groups (XSUM types) */
    static __device__ __forceinline__ void loadx(const float4 *xs, const float *xsum, int ul,
                                                 XV &xv) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const float4 v = xs[swz(8 * ul + i)];
            xv.x[4 * i] = v.x, xv.x[4 * i + 1] = v.y, xv.x[4 * i + 2] = v.z, xv.x[4 * i + 3] = v.w;
        }
        if (XSUM) {
            const float2 p = reinterpret_cast<const float2 *>(xsum)[ul];
            xv.s = p.x + p.y;
        }
    }
    static __device__ __forceinline__ float dot(const Dec &d, const XV &xv, float acc) {
        float s[4];
#pragma unroll
        for (int k = 0; k < 4; k++) s[k] = d.q[k] * xv.x[k];
#pragma unroll
        for (int i = 4; i < 32; i++) s[i & 3] = fmaf(d.q[i], xv.x[i], s[i & 3]);
        return tail(d.d, d.m, (s[0] + s[1]) + (s[2] + s[3]), xv.s, acc);
    }
    static __device__ __forceinline__ float tail(float d, float m, float S, float xs, float acc) {
        if constexpr (OFF_ < 0) {
            return fmaf(d, S, acc);
        } else {
            acc = fmaf(d, fmaf(-(128.0f + OFF_) / 256.0f, xs, S), acc);
            if (MIN) acc = fmaf(m, xs, acc);
            return acc;
        }
    }
    /* Half units (columns 16h .. 16h + 15 of the block) for the batched kernel:
     * half the decoded registers live at a time. */
    struct DecH {
        float q[16];
        float d, m;
    };
    struct XVH {
        float x[16];
        float s;
    };
    static __device__ __forceinline__ void split(const Dec &f, int h, DecH &o) {
#pragma unroll
        for (int i = 0; i < 16; i++) o.q[i] = f.q[16 * h + i];
        o.d = f.d, o.m = f.m;
    }
    static __device__ __forceinline__ void loadx_h(const float4 *xs, const float *xsum, int ul,
                                                   int h, XVH &xv) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float4 v = xs[swz(8 * ul + 4 * h + i)];
            xv.x[4 * i] = v.x, xv.x[4 * i + 1] = v.y, xv.x[4 * i + 2] = v.z, xv.x[4 * i + 3] = v.w;
        }
        xv.s = XSUM ? xsum[2 * ul + h] : 0.0f;
    }
    static __device__ __forceinline__ float dot_h(const DecH &d, const XVH &xv, float acc) {
        float s[4];
#pragma unroll
        for (int k = 0; k < 4; k++) s[k] = d.q[k] * xv.x[k];
#pragma unroll
        for (int i = 4; i < 16; i++) s[i & 3] = fmaf(d.q[i], xv.x[i], s[i & 3]);
        return tail(d.d, d.m, (s[0] + s[1]) + (s[2] + s[3]), xv.s, acc);
    }
};

/* decode: the matvec's form (q' = 0.5 + b/256, d' = 256 d; see U32Base);
 * decode_exact: q = b - OFF and d as stored (dequant.cu, bit-exact). */
struct UQ4_0 : U32Base<18, false, 8> {
    static constexpr int KS = 2;
    template <bool EX> static __device__ __forceinline__ void dec(const Regs &r, Dec &d) {
        const uint32_t w[4] = {field<2>(r.a, r.sh), field<6>(r.a, r.sh), field<10>(r.a, r.sh),
                               field<14>(r.a, r.sh)};
        dec_words<EX>(h2f(field<0>(r.a, r.sh) & 0xffff), w, d);
    }
    /* scale sc, quant words w (bytes 0..15 of the block's qs) */
    template <bool EX>
    static __device__ __forceinline__ void dec_words(float sc, const uint32_t (&w)[4], Dec &d) {
        d.d = EX ? sc : 256.0f * sc;
        d.m = 0.0f;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t lo = w[i] & 0x0F0F0F0Fu, hi = (w[i] >> 4) & 0x0F0F0F0Fu;
            if (EX) {
                f4(lo, 8.0f, d.q + 4 * i);
                f4(hi, 8.0f, d.q + 16 + 4 * i);
            } else {
                fh4(lo, d.q + 4 * i);
                fh4(hi, d.q + 16 + 4 * i);
            }
        }
    }
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) { dec<false>(r, d); }
    static __device__ __forceinline__ void decode_exact(const Regs &r, Dec &d) { dec<true>(r, d); }
};
struct UQ8_0 : U32Base<34, false> {
    static constexpr int KS = 1;
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) {
        const uint32_t w[8] = {field<2>(r.a, r.sh),  field<6>(r.a, r.sh),  field<10>(r.a, r.sh),
                               field<14>(r.a, r.sh), field<18>(r.a, r.sh), field<22>(r.a, r.sh),
                               field<26>(r.a, r.sh), field<30>(r.a, r.sh)};
        dec_words(h2f(field<0>(r.a, r.sh) & 0xffff), w, d);
    }
    /* scale sc, quant words w (the block's 32 int8) */
    static __device__ __forceinline__ void dec_words(float sc, const uint32_t (&w)[8], Dec &d) {
        d.d = sc;
        d.m = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) f4(w[i] ^ 0x80808080u, 128.0f, d.q + 4 * i);
    }
    static __device__ __forceinline__ void decode_exact(const Regs &r, Dec &d) { decode(r, 0, d); }
};
/* The SPLIT device layout (cuda_common.cuh) of Q4_0 / Q8_0: same decode, the
 * block's scale and quants from one 2-byte and P/16 16-byte loads. */
template <int BYTES, int P> struct SplitRegs {
    uint4 q[P / 16];
    uint32_t d;
};
template <int BYTES, int P>
static __device__ __forceinline__ void split_load(const uint8_t *row, int u,
                                                  SplitRegs<BYTES, P> &r) {
    const uint8_t *g = row + (long long)(u >> 3) * (8 * BYTES);
    const int j = u & 7;
    r.d = __ldg(reinterpret_cast<const unsigned short *>(g) + j);
#pragma unroll
    for (int p = 0; p < P / 16; p++)
        r.q[p] = __ldcs(reinterpret_cast<const uint4 *>(g + 16 + 128 * p) + j);
}
struct UQ4_0S : UQ4_0 {
    using Regs = SplitRegs<18, 16>;
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        split_load(row, u, r);
    }
    template <bool EX> static __device__ __forceinline__ void dec(const Regs &r, Dec &d) {
        const uint32_t w[4] = {r.q[0].x, r.q[0].y, r.q[0].z, r.q[0].w};
        dec_words<EX>(h2f(r.d), w, d);
    }
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) { dec<false>(r, d); }
    static __device__ __forceinline__ void decode_exact(const Regs &r, Dec &d) { dec<true>(r, d); }
};
struct UQ8_0S : UQ8_0 {
    using Regs = SplitRegs<34, 32>;
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        split_load(row, u, r);
    }
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) {
        const uint32_t w[8] = {r.q[0].x, r.q[0].y, r.q[0].z, r.q[0].w,
                               r.q[1].x, r.q[1].y, r.q[1].z, r.q[1].w};
        dec_words(h2f(r.d), w, d);
    }
    static __device__ __forceinline__ void decode_exact(const Regs &r, Dec &d) { decode(r, 0, d); }
};
/* ---- sm_61+: integer dot products (matvec.cu mv_dp) ----
 * The activations are quantized per 32 columns to int16: x = s q with
 * s = max|x| / 32767 and |q| <= 32767 (one rounding: relative error <= 1.5e-5
 * of the block's largest element), with the int sums of q per 16 columns.
 * A unit's dot product with the int8/int4 quants is then exact integer
 * arithmetic (dp2a: two int16 x int8 products per instruction, int32
 * accumulation, no overflow: 32 x 127 x 32767 < 2^31) and one FP32 multiply
 * by the two scales per block. Per weight that is 0.5 (Q8_0) or 0.75 (Q4_0)
 * instructions instead of the FP32 decoders' ~3.5-8.5 (bench/matvec_notes.md
 * v9). The M40 (sm_52) has no dp2a: it runs the FP32 kernels. */
struct DpX { /* the x of one 32-column unit: 16 words of 2 int16 */
    uint32_t w[16];
    int sum;  /* sum of the 32 q */
    float sc; /* s */
};
/* Shared-memory x tile of mv_dp: 32-column block b's four 16-byte chunks
 * (8 columns each) at slots 4 b + ((c + b / 2) & 3): the 8 lanes of a
 * quarter warp reading chunk c of blocks b..b+7 hit 8 different 16-byte bank
 * groups. sc: scale per block, sm: int sums per 16 columns. */
struct DpQ0X {
    static __device__ __forceinline__ int slot(int b, int c) {
        return 4 * b + ((c + (b >> 1)) & 3);
    }
    static __device__ __forceinline__ void loadx(const uint4 *xq, const float *sc, const int *sm,
                                                 int ul, DpX &x) {
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const uint4 q = xq[slot(ul, c)];
            x.w[4 * c] = q.x, x.w[4 * c + 1] = q.y, x.w[4 * c + 2] = q.z, x.w[4 * c + 3] = q.w;
        }
        x.sum = sm[2 * ul] + sm[2 * ul + 1];
        x.sc = sc[ul];
    }
};
/* dp2a: c + a.lo16 * b.byte(2 HI) + a.hi16 * b.byte(2 HI + 1), a's halves
 * signed, b's bytes signed or (UB) unsigned. sm_61+ only: its callers are
 * compiled for sm_61+ alone (mv_dp's body), anything else traps. */
template <bool HI, bool UB>
static __device__ __forceinline__ int dp2(uint32_t a, uint32_t b, int c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
    int d;
    if constexpr (!HI && !UB)
        asm("dp2a.lo.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else if constexpr (HI && !UB)
        asm("dp2a.hi.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else if constexpr (!HI)
        asm("dp2a.lo.s32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else
        asm("dp2a.hi.s32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
#else
    (void)a, (void)b;
    __trap();
    return c;
#endif
}
static __device__ __forceinline__ int dp2lo(uint32_t a, uint32_t b, int c) {
    return dp2<false, false>(a, b, c);
}
static __device__ __forceinline__ int dp2hi(uint32_t a, uint32_t b, int c) {
    return dp2<true, false>(a, b, c);
}
static __device__ __forceinline__ int dp2lo_u(uint32_t a, uint32_t b, int c) {
    return dp2<false, true>(a, b, c);
}
static __device__ __forceinline__ int dp2hi_u(uint32_t a, uint32_t b, int c) {
    return dp2<true, true>(a, b, c);
}
/* 16 bytes of 4-bit quants q (32 nibbles) against int16 activations: lo =
 * sum of lo nibbles x xl[0..7] (16 values), hi = 16 x sum of hi nibbles x
 * xh[0..7] (the hi nibbles taken in place, byte & 0xF0; unsigned, exact) */
static __device__ __forceinline__ void dp_nib(const uint4 &q, const uint32_t *xl,
                                              const uint32_t *xh, int &lo, int &hi) {
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    lo = 0, hi = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const uint32_t l = w[k] & 0x0F0F0F0Fu, h = w[k] & 0xF0F0F0F0u;
        lo = dp2lo_u(xl[2 * k], l, lo);
        lo = dp2hi_u(xl[2 * k + 1], l, lo);
        hi = dp2lo_u(xh[2 * k], h, hi);
        hi = dp2hi_u(xh[2 * k + 1], h, hi);
    }
}
/* A split-layout block (BYTES, P quant bytes) as an mv_dp unit; KS_ tiles */
template <int BYTES_, int P, int KS_> struct DpSplit : DpQ0X {
    static constexpr int UC = 32, QKB = 32, BYTES = BYTES_, KS = KS_;
    using XV = DpX;
    using Regs = SplitRegs<BYTES_, P>;
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        split_load(row, u, r);
    }
};
/* Split Q8_0: w = d q, q int8: sum = sum q_i x_i exactly. */
struct DQ8_0S : DpSplit<34, 32, 1> {
    static __device__ __forceinline__ float dot(const Regs &r, const DpX &x, int, float acc) {
        const uint32_t w[8] = {r.q[0].x, r.q[0].y, r.q[0].z, r.q[0].w,
                               r.q[1].x, r.q[1].y, r.q[1].z, r.q[1].w};
        int s0 = 0, s1 = 0; /* two chains */
#pragma unroll
        for (int k = 0; k < 8; k++) {
            s0 = dp2lo(x.w[2 * k], w[k], s0);
            s1 = dp2hi(x.w[2 * k + 1], w[k], s1);
        }
        return fmaf(h2f(r.d) * x.sc, (float)(s0 + s1), acc);
    }
};
/* Split Q4_0: w = d (q - 8), q = nibble: elements i (lo nibble of byte i)
 * and 16 + i (hi nibble). The hi nibbles are taken in place (byte & 0xF0 =
 * 16 q, unsigned), their sum divided by 16 exactly at the end. */
struct DQ4_0S : DpSplit<18, 16, 2> {
    static __device__ __forceinline__ float dot(const Regs &r, const DpX &x, int, float acc) {
        int lo, hi;
        dp_nib(r.q[0], x.w, x.w + 8, lo, hi);
        return fmaf(h2f(r.d) * x.sc, (float)(lo + (hi >> 4) - 8 * x.sum), acc);
    }
};
struct UQ4_1 : U32Base<20, true, 0> {
    static constexpr int KS = 2;
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) {
        const uint32_t dm = field<0>(r.a, r.sh);
        d.d = 256.0f * h2f(dm & 0xffff), d.m = h2f(dm >> 16);
        uint32_t w[4] = {field<4>(r.a, r.sh), field<8>(r.a, r.sh), field<12>(r.a, r.sh),
                         field<16>(r.a, r.sh)};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            fh4(w[i] & 0x0F0F0F0Fu, d.q + 4 * i);
            fh4((w[i] >> 4) & 0x0F0F0F0Fu, d.q + 16 + 4 * i);
        }
    }
};
struct UQ5_0 : U32Base<22, false, 16> {
    static constexpr int KS = 2;
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) {
        d.d = 256.0f * h2f(field<0>(r.a, r.sh) & 0xffff);
        d.m = 0.0f;
        const uint32_t qh = field<2>(r.a, r.sh);
        uint32_t w[4] = {field<6>(r.a, r.sh), field<10>(r.a, r.sh), field<14>(r.a, r.sh),
                         field<18>(r.a, r.sh)};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            fh4((w[i] & 0x0F0F0F0Fu) | (m40q::spread4((qh >> (4 * i)) & 0xf) << 4), d.q + 4 * i);
            fh4(((w[i] >> 4) & 0x0F0F0F0Fu) | (m40q::spread4((qh >> (4 * i + 16)) & 0xf) << 4),
                d.q + 16 + 4 * i);
        }
    }
};
struct UQ5_1 : U32Base<24, true, 0> {
    static constexpr int KS = 2;
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) {
        const uint32_t dm = field<0>(r.a, r.sh);
        d.d = 256.0f * h2f(dm & 0xffff), d.m = h2f(dm >> 16);
        const uint32_t qh = field<4>(r.a, r.sh);
        uint32_t w[4] = {field<8>(r.a, r.sh), field<12>(r.a, r.sh), field<16>(r.a, r.sh),
                         field<20>(r.a, r.sh)};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            fh4((w[i] & 0x0F0F0F0Fu) | (m40q::spread4((qh >> (4 * i)) & 0xf) << 4), d.q + 4 * i);
            fh4(((w[i] >> 4) & 0x0F0F0F0Fu) | (m40q::spread4((qh >> (4 * i + 16)) & 0xf) << 4),
                d.q + 16 + 4 * i);
        }
    }
};

/* ---- F16 / BF16: lane = 8 columns (one 16-byte vector) ---- */
template <bool BF> struct UHalf {
    static constexpr int UC = 8, KS = 4, QKB = 8, BYTES = 16;
    struct Regs {
        uint4 u;
    };
    struct Dec {
        float q[8];
    };
    struct XV {
        float x[8];
    };
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        r.u = __ldcs(reinterpret_cast<const uint4 *>(row) + u);
    }
    static __device__ __forceinline__ int swz(int f) { return f ^ ((f >> 3) & 1); }
    static __device__ __forceinline__ float cv(uint32_t h) { return BF ? m40q::bf2f(h) : h2f(h); }
    static __device__ __forceinline__ void decode(const Regs &r, int, Dec &d) {
        const uint32_t w[4] = {r.u.x, r.u.y, r.u.z, r.u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            d.q[2 * i] = cv(w[i] & 0xffff);
            d.q[2 * i + 1] = BF ? __uint_as_float(w[i] & 0xffff0000u) : h2f(w[i] >> 16);
        }
    }
    static constexpr bool XSUM = false;
    static __device__ __forceinline__ void loadx(const float4 *xs, const float *, int ul, XV &xv) {
        const float4 a = xs[swz(2 * ul)], b = xs[swz(2 * ul + 1)];
        xv.x[0] = a.x, xv.x[1] = a.y, xv.x[2] = a.z, xv.x[3] = a.w;
        xv.x[4] = b.x, xv.x[5] = b.y, xv.x[6] = b.z, xv.x[7] = b.w;
    }
    static __device__ __forceinline__ float dot(const Dec &d, const XV &xv, float acc) {
        float s0 = d.q[0] * xv.x[0], s1 = d.q[1] * xv.x[1];
#pragma unroll
        for (int i = 2; i < 8; i += 2) {
            s0 = fmaf(d.q[i], xv.x[i], s0);
            s1 = fmaf(d.q[i + 1], xv.x[i + 1], s1);
        }
        return acc + (s0 + s1);
    }
    /* batched kernel: straight into the accumulator (no partial sums: R x NV
     * independent chains give the ILP, and two FADD per 8 FFMA are saved) */
    static __device__ __forceinline__ float dot_acc(const Dec &d, const XV &xv, float acc) {
#pragma unroll
        for (int i = 0; i < 8; i++) acc = fmaf(d.q[i], xv.x[i], acc);
        return acc;
    }
};

/* ---- Q4_K / Q5_K: 8 lanes per superblock; lane t: chunk c = t/2 (64
 * columns), half h = t%2: qs bytes 32c + 16h .. +15 (one 16-byte vector),
 * lo nibbles = columns 64c + 16h + i (sub-block 2c), hi nibbles = columns
 * 64c + 32 + 16h + i (sub-block 2c+1). Header (d, dmin, 12 scale bytes) is
 * one 16-byte vector shared by the 8 lanes. ---- */
static __device__ __forceinline__ void k4_sm(uint4 hd, int c, float &d0, float &m0, float &d1,
                                             float &m1) {
    /* scale bytes s[0..11] = hd.y, hd.z, hd.w; sub-blocks j = 2c, 2c+1 */
    const int j0 = 2 * c;
    uint32_t sc0, mn0, sc1, mn1;
    if (c < 2) {
        const uint32_t a = __byte_perm(
            hd.y, hd.z, (uint32_t)(j0 | ((j0 + 1) << 4) | ((j0 + 4) << 8) | ((j0 + 5) << 12)));
        sc0 = a & 63, sc1 = (a >> 8) & 63, mn0 = (a >> 16) & 63, mn1 = (a >> 24) & 63;
    } else {
        const int e = j0 - 4;                                                     /* 0 or 2 */
        const uint32_t lo = __byte_perm(hd.w, 0, (uint32_t)(e | ((e + 1) << 4))); /* s[j+4] */
        const uint32_t hb = __byte_perm(
            hd.y, hd.z,
            (uint32_t)(e | ((e + 1) << 4) | ((e + 4) << 8) | ((e + 5) << 12))); /* s[j-4], s[j] */
        sc0 = (lo & 0xf) | (((hb >> 6) & 3) << 4);
        sc1 = ((lo >> 8) & 0xf) | (((hb >> 14) & 3) << 4);
        mn0 = ((lo >> 4) & 0xf) | (((hb >> 22) & 3) << 4);
        mn1 = ((lo >> 12) & 0xf) | (((hb >> 30) & 3) << 4);
    }
    const float d = h2f(hd.x & 0xffff), dm = h2f(hd.x >> 16);
    d0 = d * (float)sc0, d1 = d * (float)sc1, m0 = dm * (float)mn0, m1 = dm * (float)mn1;
}

template <bool Q5> struct UK {
    static constexpr int UC = 32, KS = 1, QKB = 256, BYTES = Q5 ? 176 : 144;
    struct Regs {
        uint4 hd, qs, qh;
    };
    struct Dec {
        float q[32];
        float d0, m0, d1, m1;
    };
    struct XV {
        float x[32];
        float s0, s1;
    };
    /* unit u = superblock u/8, lane part u%8 */
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        const uint8_t *b = row + (long long)(u >> 3) * BYTES;
        const int t = u & 7, c = t >> 1, h = t & 1;
        r.hd = __ldg(reinterpret_cast<const uint4 *>(b));
        if (Q5) {
            r.qh = __ldg(reinterpret_cast<const uint4 *>(b + 16 + 16 * h));
            r.qs = __ldcs(reinterpret_cast<const uint4 *>(b + 48 + 32 * c + 16 * h));
        } else {
            r.qs = __ldcs(reinterpret_cast<const uint4 *>(b + 16 + 32 * c + 16 * h));
        }
    }
    /* float4 index within the tile: 64 per superblock; lane's lo float4s at
     * 16c + 4h + i, hi at 16c + 8 + 4h + i */
    static __device__ __forceinline__ int swz(int f) { return f ^ ((f >> 4) & 3); }
    static constexpr bool XSUM = true;
    /* the lane's lo columns are 16-column group 4c + h of the superblock,
     * its hi columns group 4c + 2 + h */
    static __device__ __forceinline__ void loadx(const float4 *xs, const float *xsum, int ul,
                                                 XV &xv) {
        const int t = ul & 7, c = t >> 1, h = t & 1;
        const int base = 64 * (ul >> 3) + 16 * c + 4 * h;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float4 a = xs[swz(base + i)], b = xs[swz(base + 8 + i)];
            xv.x[4 * i] = a.x, xv.x[4 * i + 1] = a.y, xv.x[4 * i + 2] = a.z, xv.x[4 * i + 3] = a.w;
            xv.x[16 + 4 * i] = b.x, xv.x[17 + 4 * i] = b.y, xv.x[18 + 4 * i] = b.z,
                          xv.x[19 + 4 * i] = b.w;
        }
        const int g = 16 * (ul >> 3) + 4 * c + h;
        xv.s0 = xsum[g], xv.s1 = xsum[g + 2];
    }
    /* q' = 0.5 + b/256, d' = 256 d_j: w = d_j b - m_j = d' (q' - 0.5) - m_j */
    static __device__ __forceinline__ void decode(const Regs &r, int ul, Dec &d) {
        const int c = (ul & 7) >> 1;
        k4_sm(r.hd, c, d.d0, d.m0, d.d1, d.m1);
        d.d0 *= 256.0f, d.d1 *= 256.0f;
        const uint32_t w[4] = {r.qs.x, r.qs.y, r.qs.z, r.qs.w};
        const uint32_t hh[4] = {r.qh.x, r.qh.y, r.qh.z, r.qh.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t lo = w[i] & 0x0F0F0F0Fu, hi = (w[i] >> 4) & 0x0F0F0F0Fu;
            if (Q5) {
                lo |= ((hh[i] >> (2 * c)) & 0x01010101u) << 4;
                hi |= ((hh[i] >> (2 * c + 1)) & 0x01010101u) << 4;
            }
            fh4(lo, d.q + 4 * i);
            fh4(hi, d.q + 16 + 4 * i);
        }
    }
    static __device__ __forceinline__ float dot(const Dec &d, const XV &xv, float acc) {
        float s[4];
#pragma unroll
        for (int k = 0; k < 2; k++) s[k] = d.q[k] * xv.x[k], s[2 + k] = d.q[16 + k] * xv.x[16 + k];
#pragma unroll
        for (int i = 2; i < 16; i++) {
            s[i & 1] = fmaf(d.q[i], xv.x[i], s[i & 1]);
            s[2 + (i & 1)] = fmaf(d.q[16 + i], xv.x[16 + i], s[2 + (i & 1)]);
        }
        acc = fmaf(d.d0, fmaf(-0.5f, xv.s0, s[0] + s[1]), acc);
        acc = fmaf(d.d1, fmaf(-0.5f, xv.s1, s[2] + s[3]), acc);
        acc = fmaf(-d.m0, xv.s0, acc);
        return fmaf(-d.m1, xv.s1, acc);
    }
    /* half units: h = 0 the lane's lo columns (sub-block 2c), 1 its hi ones */
    struct DecH {
        float q[16];
        float d, m;
    };
    struct XVH {
        float x[16];
        float s;
    };
    static __device__ __forceinline__ void split(const Dec &f, int h, DecH &o) {
#pragma unroll
        for (int i = 0; i < 16; i++) o.q[i] = f.q[16 * h + i];
        o.d = h ? f.d1 : f.d0, o.m = h ? f.m1 : f.m0;
    }
    static __device__ __forceinline__ void loadx_h(const float4 *xs, const float *xsum, int ul,
                                                   int h, XVH &xv) {
        const int t = ul & 7, c = t >> 1, hh = t & 1;
        const int base = 64 * (ul >> 3) + 16 * c + 4 * hh + 8 * h;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float4 a = xs[swz(base + i)];
            xv.x[4 * i] = a.x, xv.x[4 * i + 1] = a.y, xv.x[4 * i + 2] = a.z, xv.x[4 * i + 3] = a.w;
        }
        xv.s = xsum[16 * (ul >> 3) + 4 * c + hh + 2 * h];
    }
    static __device__ __forceinline__ float dot_h(const DecH &d, const XVH &xv, float acc) {
        float s0 = d.q[0] * xv.x[0], s1 = d.q[1] * xv.x[1];
#pragma unroll
        for (int i = 2; i < 16; i += 2) {
            s0 = fmaf(d.q[i], xv.x[i], s0);
            s1 = fmaf(d.q[i + 1], xv.x[i + 1], s1);
        }
        acc = fmaf(d.d, fmaf(-0.5f, xv.s, s0 + s1), acc);
        return fmaf(-d.m, xv.s, acc);
    }
};
/* Q4_K for mv_dp (a workbench variant only: measured no faster than the
 * FP32 UK kernel on the H200, bench/matvec_notes.md v9): the lane layout of UK (lane t of a
 * superblock: chunk c = t / 2, half h = t % 2, one 16-byte vector of quants); its lo nibbles are
 * columns 16h..16h+15 of 32-column block 2c (sub-block 2c), its hi nibbles the same columns of
 * block 2c+1. x slots: 4 b + ((k + (b / 4)) & 3) for chunk k of block b; lanes of odd c read their
 * hi block first, so the 8 lanes of a superblock always hit 8 different bank groups. */
struct DpXK {
    uint32_t lo[8], hi[8]; /* 16 int16 each */
    int slo, shi;          /* their int sums */
    float clo, chi;        /* their blocks' scales */
};
struct DQ4_K {
    static constexpr int UC = 32, QKB = 256, BYTES = 144, KS = 1;
    using Regs = UK<false>::Regs;
    using XV = DpXK;
    static __device__ __forceinline__ void load(const uint8_t *row, int u, Regs &r) {
        UK<false>::load(row, u, r);
    }
    static __device__ __forceinline__ int slot(int b, int k) {
        return 4 * b + ((k + (b >> 2)) & 3);
    }
    static __device__ __forceinline__ void loadx(const uint4 *xq, const float *sc, const int *sm,
                                                 int ul, DpXK &x) {
        const int t = ul & 7, c = t >> 1, h = t & 1, sb = ul >> 3;
        const int b0 = 8 * sb + 2 * c, b1 = b0 + 1;
        uint4 q[4];
        if (c & 1) { /* hi block first (bank groups) */
            q[2] = xq[slot(b1, 2 * h)], q[3] = xq[slot(b1, 2 * h + 1)];
            q[0] = xq[slot(b0, 2 * h)], q[1] = xq[slot(b0, 2 * h + 1)];
        } else {
            q[0] = xq[slot(b0, 2 * h)], q[1] = xq[slot(b0, 2 * h + 1)];
            q[2] = xq[slot(b1, 2 * h)], q[3] = xq[slot(b1, 2 * h + 1)];
        }
        x.lo[0] = q[0].x, x.lo[1] = q[0].y, x.lo[2] = q[0].z, x.lo[3] = q[0].w;
        x.lo[4] = q[1].x, x.lo[5] = q[1].y, x.lo[6] = q[1].z, x.lo[7] = q[1].w;
        x.hi[0] = q[2].x, x.hi[1] = q[2].y, x.hi[2] = q[2].z, x.hi[3] = q[2].w;
        x.hi[4] = q[3].x, x.hi[5] = q[3].y, x.hi[6] = q[3].z, x.hi[7] = q[3].w;
        x.slo = sm[2 * b0 + h], x.shi = sm[2 * b1 + h];
        x.clo = sc[b0], x.chi = sc[b1];
    }
    /* w = d_j q - m_j: sum = d_j s sum(q x') - m_j s sum(x') per half */
    static __device__ __forceinline__ float dot(const Regs &r, const DpXK &x, int ul, float acc) {
        float d0, m0, d1, m1;
        k4_sm(r.hd, (ul & 7) >> 1, d0, m0, d1, m1);
        int lo, hi;
        dp_nib(r.qs, x.lo, x.hi, lo, hi);
        acc = fmaf(d0 * x.clo, (float)lo, acc);
        acc = fmaf(-m0 * x.clo, (float)x.slo, acc);
        acc = fmaf(d1 * x.chi, (float)(hi >> 4), acc);
        return fmaf(-m1 * x.chi, (float)x.shi, acc);
    }
};
} // namespace m40f

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
