/* quant.c - CPU dequantization, FP32 dot products and matvec for the ggml
 * weight block formats (see quant.h). Quantizers live in quant_quantize.c.
 *
 * Every block layout below is ggml's (ggml-common.h), little-endian, halves
 * are IEEE fp16. The dot products dequantize one block at a time into a small
 * float buffer (with the block scale applied) and accumulate into 16
 * independent FP32 lanes, which gcc vectorizes without -ffast-math. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include "quant/quant.h"
#include "quant/quant_impl.h"

#include <string.h>

#include "base/err.h"
#include "base/util.h"

/* ---------------------------------------------------------------- helpers */

/* Branch-free fp16 -> f32 that auto-vectorizes: the half is sign-extended
 * and shifted left by 13, which puts its sign in bit 31 and its 15
 * exponent+mantissa bits in a float's exponent/mantissa (bits 13..27);
 * multiplying by 2^112 rebiases the exponent (exact for normals and
 * subnormals, sign kept); exponent 31 (inf/nan, the only values whose scaled
 * magnitude reaches 2^16) gets the float exponent 255. */
static inline float h2f(uint16_t h) {
    uint32_t bits = ((uint32_t)(int32_t)(int16_t)h << 13) & 0x8fffe000u;
    float f;
    memcpy(&f, &bits, 4);
    f *= 0x1p112f;
    uint32_t r;
    memcpy(&r, &f, 4);
    r |= (0u - (uint32_t)((bits & 0x0f800000u) == 0x0f800000u)) & 0x7f800000u;
    memcpy(&f, &r, 4);
    return f;
}

float quant_h2f(uint16_t h) { return h2f(h); }

static inline float b2f(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Q4_K / Q5_K packing of 8 six-bit scales and 8 six-bit mins in 12 bytes:
 * bytes 0..3: scale[0..3] in bits 0..5, bits 6..7 = scale[4..7] bits 4..5
 * bytes 4..7: min[0..3] in bits 0..5, bits 6..7 = min[4..7] bits 4..5
 * bytes 8..11: low nibble = scale[4..7] bits 0..3, high nibble = min[4..7]
 * bits 0..3. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ------------------------------------------------------ block dequantizers
 * Each writes one block of floats with every scale applied. */

/* Q4_0 (32 weights, 18 bytes): half d | u8 qs[16].
 * w[j] = d * ((qs[j] & 15) - 8), w[j+16] = d * ((qs[j] >> 4) - 8). */
static inline void dq_q4_0(const BlockQ4_0 *restrict b, float *restrict y) {
    const float d = h2f(b->d);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((int)(b->qs[j] & 15) - 8) * d;
        y[j + 16] = (float)((int)(b->qs[j] >> 4) - 8) * d;
    }
}

/* Q4_1 (32 weights, 20 bytes): half d | half m | u8 qs[16].
 * w[j] = d * (qs[j] & 15) + m, w[j+16] = d * (qs[j] >> 4) + m. */
static inline void dq_q4_1(const BlockQ4_1 *restrict b, float *restrict y) {
    const float d = h2f(b->d), m = h2f(b->m);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b->qs[j] & 15) * d + m;
        y[j + 16] = (float)(b->qs[j] >> 4) * d + m;
    }
}

/* Q5_0 (32 weights, 22 bytes): half d | u8 qh[4] | u8 qs[16].
 * qh is a little-endian u32 holding bit 4 of each 5-bit quant: bit j for
 * weight j, bit j+16 for weight j+16. w = d * (q5 - 16). */
/* qh bit masks (a table instead of per-lane variable shifts, which SSE2
 * lacks, so the loops vectorize) */
static const uint32_t BIT32[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

static inline void dq_q5_0(const BlockQ5_0 *restrict b, float *restrict y) {
    const float d = h2f(b->d);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < 16; j++) {
        int x0 = (int)((b->qs[j] & 15) | ((qh & BIT32[j]) ? 16u : 0u)) - 16;
        int x1 = (int)((b->qs[j] >> 4) | ((qh & BIT32[j + 16]) ? 16u : 0u)) - 16;
        y[j] = (float)x0 * d;
        y[j + 16] = (float)x1 * d;
    }
}

/* Q5_1 (32 weights, 24 bytes): half d | half m | u8 qh[4] | u8 qs[16].
 * As Q5_0 with unsigned quants: w = d * q5 + m. */
static inline void dq_q5_1(const BlockQ5_1 *restrict b, float *restrict y) {
    const float d = h2f(b->d), m = h2f(b->m);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < 16; j++) {
        uint32_t x0 = (b->qs[j] & 15u) | ((qh & BIT32[j]) ? 16u : 0u);
        uint32_t x1 = (b->qs[j] >> 4u) | ((qh & BIT32[j + 16]) ? 16u : 0u);
        y[j] = (float)x0 * d + m;
        y[j + 16] = (float)x1 * d + m;
    }
}

/* Q8_0 (32 weights, 34 bytes): half d | i8 qs[32]. w[j] = d * qs[j]. */
static inline void dq_q8_0(const BlockQ8_0 *restrict b, float *restrict y) {
    const float d = h2f(b->d);
    for (int j = 0; j < 32; j++) y[j] = (float)b->qs[j] * d;
}

/* Q2_K (256 weights, 84 bytes): u8 scales[16] | u8 qs[64] | half d | half dmin.
 * 16 sub-blocks of 16 weights; scales[s] low nibble = scale, high = min:
 * w = d * (scales[s] & 15) * q - dmin * (scales[s] >> 4).
 * The 2-bit quants: for half h (0,1: weights 128h..128h+127) and shift
 * group g (0..3, bits 2g..2g+1), qs[32h + l] (l in 0..31) holds weight
 * 128h + 32g + l. Sub-block s = 8h + 2g + (l >= 16). */
/* 16 weights of a Q2_K / Q3_K sub-block: y = d * ((q >> shift) & 3) - m,
 * minus 4 where the hmask bit is clear (Q3_K: hm != NULL). */
static inline void dq16_2bit(const uint8_t *restrict q, const uint8_t *restrict hm, uint8_t hbit,
                             int shift, float d, float m, float *restrict y) {
    if (hm) {
#pragma omp simd
        for (int l = 0; l < 16; l++)
            y[l] = d * (float)((int)((q[l] >> shift) & 3) - ((hm[l] & hbit) ? 0 : 4)) - m;
    } else {
#pragma omp simd
        for (int l = 0; l < 16; l++) y[l] = d * (float)(int)((q[l] >> shift) & 3) - m;
    }
}

static inline void dq_q2_k(const BlockQ2K *restrict b, float *restrict y) {
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 4; g++)
            for (int s = 0; s < 2; s++) {
                const uint8_t sc = b->scales[8 * h + 2 * g + s];
                dq16_2bit(b->qs + 32 * h + 16 * s, NULL, 0, 2 * g, d * (float)(sc & 15),
                          dmin * (float)(sc >> 4), y + 128 * h + 32 * g + 16 * s);
            }
}

/* Q3_K (256 weights, 110 bytes): u8 hmask[32] | u8 qs[64] | u8 scales[12] |
 * half d. 16 sub-blocks of 16 with 6-bit signed scales (stored +32):
 * scales[0..7] low nibbles = scale[0..7] bits 0..3, high nibbles =
 * scale[8..15] bits 0..3; scales[8..11] hold bits 4..5: byte 8+i bits
 * 2k..2k+1 = scale[i + 4k] bits 4..5.
 * Low 2 bits of weight 128h + 32g + l in qs[32h + l] bits 2g..2g+1 (as
 * Q2_K); the high bit in hmask[l] bit (4h + g); a CLEAR high bit means -4:
 * w = d * (scale - 32) * (q2 - (hbit ? 0 : 4)). */
static inline void q3k_scales(const uint8_t *s, int8_t *out) {
    for (int i = 0; i < 16; i++) {
        int lo = (i < 8) ? (s[i] & 15) : (s[i - 8] >> 4);
        int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        out[i] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static inline void dq_q3_k(const BlockQ3K *restrict b, float *restrict y) {
    const float d = h2f(b->d);
    int8_t sc[16];
    q3k_scales(b->scales, sc);
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 4; g++)
            for (int s = 0; s < 2; s++)
                dq16_2bit(b->qs + 32 * h + 16 * s, b->hmask + 16 * s, (uint8_t)(1u << (4 * h + g)),
                          2 * g, d * (float)sc[8 * h + 2 * g + s], 0.0f,
                          y + 128 * h + 32 * g + 16 * s);
}

/* Q4_K (256 weights, 144 bytes): half d | half dmin | u8 scales[12] |
 * u8 qs[128]. 8 sub-blocks of 32, 6-bit scale/min packed as scale_min_k4.
 * For chunk c (0..3, weights 64c..64c+63): qs[32c + l] low nibble = weight
 * 64c + l (sub-block 2c), high nibble = weight 64c + 32 + l (sub-block 2c+1).
 * w = d * sc * q - dmin * m. */
static inline void dq_q4_k(const BlockQ4K *restrict b, float *restrict y) {
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    const uint8_t *q = b->qs;
    for (int c = 0; c < 4; c++) {
        uint8_t sc, mn;
        scale_min_k4(2 * c, b->scales, &sc, &mn);
        const float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(2 * c + 1, b->scales, &sc, &mn);
        const float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 15) - m1;
        for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)(q[l] >> 4) - m2;
        y += 64;
        q += 32;
    }
}

/* Q5_K (256 weights, 176 bytes): half d | half dmin | u8 scales[12] |
 * u8 qh[32] | u8 qs[128]. As Q4_K, plus the 5th bit of weight 64c + l in
 * qh[l] bit 2c and of weight 64c + 32 + l in qh[l] bit 2c+1. */
static inline void dq_q5_k(const BlockQ5K *restrict b, float *restrict y) {
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    const uint8_t *q = b->qs;
    for (int c = 0; c < 4; c++) {
        uint8_t sc, mn;
        scale_min_k4(2 * c, b->scales, &sc, &mn);
        const float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(2 * c + 1, b->scales, &sc, &mn);
        const float d2 = d * (float)sc, m2 = dmin * (float)mn;
        const int s1 = 2 * c, s2 = 2 * c + 1;
        for (int l = 0; l < 32; l++)
            y[l] = d1 * (float)((q[l] & 15) | (((b->qh[l] >> s1) & 1) << 4)) - m1;
        for (int l = 0; l < 32; l++)
            y[32 + l] = d2 * (float)((q[l] >> 4) | (((b->qh[l] >> s2) & 1) << 4)) - m2;
        y += 64;
        q += 32;
    }
}

/* Q6_K (256 weights, 210 bytes): u8 ql[128] | u8 qh[64] | i8 scales[16] |
 * half d. 16 sub-blocks of 16 with signed 8-bit scales; quants are 6-bit
 * minus 32. For half h (weights 128h..) and l in 0..31, with
 * ql' = ql + 64h, qh' = qh + 32h:
 *   weight 128h +  0 + l: ql'[l] low nibble,     qh'[l] bits 0..1
 *   weight 128h + 32 + l: ql'[l+32] low nibble,  qh'[l] bits 2..3
 *   weight 128h + 64 + l: ql'[l] high nibble,    qh'[l] bits 4..5
 *   weight 128h + 96 + l: ql'[l+32] high nibble, qh'[l] bits 6..7
 * sub-block of weight i = i / 16. w = d * scales[i/16] * (q6 - 32). */
static inline void dq_q6_k(const BlockQ6K *restrict b, float *restrict y) {
    const float d = h2f(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        float *yh = y + 128 * h;
        for (int s = 0; s < 2; s++) { /* l in [16s, 16s + 16): sub-blocks s, s+2, s+4, s+6 */
            const float d1 = d * (float)sc[s], d2 = d * (float)sc[s + 2];
            const float d3 = d * (float)sc[s + 4], d4 = d * (float)sc[s + 6];
            for (int k = 0; k < 16; k++) {
                const int l = 16 * s + k;
                const int q1 = (int)((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                yh[l] = d1 * (float)q1;
                yh[l + 32] = d2 * (float)q2;
                yh[l + 64] = d3 * (float)q3;
                yh[l + 96] = d4 * (float)q4;
            }
        }
    }
}

/* ---------------------------------------------------------------- traits */

typedef struct QTraits {
    uint32_t bs;    /* weights per block */
    uint32_t bytes; /* bytes per block */
} QTraits;

static int traits(uint32_t type, QTraits *t) {
    switch (type) {
    case GGML_TYPE_F32:
        *t = (QTraits){1, 4};
        return 1;
    case GGML_TYPE_F16:
        *t = (QTraits){1, 2};
        return 1;
    case GGML_TYPE_BF16:
        *t = (QTraits){1, 2};
        return 1;
    case GGML_TYPE_Q4_0:
        *t = (QTraits){32, sizeof(BlockQ4_0)};
        return 1;
    case GGML_TYPE_Q4_1:
        *t = (QTraits){32, sizeof(BlockQ4_1)};
        return 1;
    case GGML_TYPE_Q5_0:
        *t = (QTraits){32, sizeof(BlockQ5_0)};
        return 1;
    case GGML_TYPE_Q5_1:
        *t = (QTraits){32, sizeof(BlockQ5_1)};
        return 1;
    case GGML_TYPE_Q8_0:
        *t = (QTraits){32, sizeof(BlockQ8_0)};
        return 1;
    case GGML_TYPE_Q2_K:
        *t = (QTraits){256, sizeof(BlockQ2K)};
        return 1;
    case GGML_TYPE_Q3_K:
        *t = (QTraits){256, sizeof(BlockQ3K)};
        return 1;
    case GGML_TYPE_Q4_K:
        *t = (QTraits){256, sizeof(BlockQ4K)};
        return 1;
    case GGML_TYPE_Q5_K:
        *t = (QTraits){256, sizeof(BlockQ5K)};
        return 1;
    case GGML_TYPE_Q6_K:
        *t = (QTraits){256, sizeof(BlockQ6K)};
        return 1;
    default:
        return 0;
    }
}

int quant_supported(uint32_t type) {
    QTraits t;
    return traits(type, &t);
}

int quant_can_quantize(uint32_t type) { return quant_supported(type); }

int64_t quant_block_size(uint32_t type) {
    QTraits t;
    return traits(type, &t) ? (int64_t)t.bs : 0;
}

size_t quant_row_bytes(uint32_t type, int64_t n) {
    QTraits t;
    if (!traits(type, &t) || n < 0 || n % t.bs) return 0;
    return (size_t)(n / t.bs) * t.bytes;
}

/* ------------------------------------------------------------ dequantize */

void quant_dequant_row(uint32_t type, const void *src, float *dst, int64_t n) {
    QTraits t;
    M40_ASSERT(traits(type, &t) && n >= 0 && n % t.bs == 0);
    const int64_t nb = n / t.bs;
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(dst, src, (size_t)n * 4);
        break;
    case GGML_TYPE_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = h2f(s[i]);
        break;
    }
    case GGML_TYPE_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = b2f(s[i]);
        break;
    }
#define DQ_CASE(T, BT, fn)                                                                         \
    case T: {                                                                                      \
        const BT *b = src;                                                                         \
        for (int64_t i = 0; i < nb; i++) fn(b + i, dst + i * t.bs);                                \
        break;                                                                                     \
    }
        DQ_CASE(GGML_TYPE_Q4_0, BlockQ4_0, dq_q4_0)
        DQ_CASE(GGML_TYPE_Q4_1, BlockQ4_1, dq_q4_1)
        DQ_CASE(GGML_TYPE_Q5_0, BlockQ5_0, dq_q5_0)
        DQ_CASE(GGML_TYPE_Q5_1, BlockQ5_1, dq_q5_1)
        DQ_CASE(GGML_TYPE_Q8_0, BlockQ8_0, dq_q8_0)
        DQ_CASE(GGML_TYPE_Q2_K, BlockQ2K, dq_q2_k)
        DQ_CASE(GGML_TYPE_Q3_K, BlockQ3K, dq_q3_k)
        DQ_CASE(GGML_TYPE_Q4_K, BlockQ4K, dq_q4_k)
        DQ_CASE(GGML_TYPE_Q5_K, BlockQ5K, dq_q5_k)
        DQ_CASE(GGML_TYPE_Q6_K, BlockQ6K, dq_q6_k)
#undef DQ_CASE
    default:
        M40_ASSERT(0 && "unsupported type");
    }
}

/* ------------------------------------------------------- dots and matmul
 *
 * Every dot product (quant_dot, quant_matvec, quant_matmul) runs the same
 * code: a row is dequantized SEG weights at a time into a small float buffer
 * (block scales applied), and each token vector accumulates buffer * x into
 * a fixed set of FP32 lanes, which are summed in a fixed order at the end.
 * A token's accumulation never depends on how many tokens share the
 * dequantized buffer, so quant_matmul is bit-identical to quant_matvec per
 * output (within one dispatch: portable C or AVX2/FMA/F16C, chosen at run
 * time by cpu_simd_avx2()).
 *
 * Portable: 16 scalar lanes (lane k takes elements i with i % 16 == k, in
 * order; mul then add), leftovers (n % 16) in a 17th accumulator.
 * AVX2: four 8-lane FMA accumulators (vector k of each 32-element group),
 * leftover groups of 8 into the first, leftovers < 8 into a scalar fmaf. */
#include "base/cpu_features.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define SEG 256 /* weights dequantized at a time: a multiple of every block size */
#define TT 8    /* tokens sharing one dequantized segment */
#define ACCN 40 /* floats of accumulator state per token (32 lanes + tail, padded) */

/* Dequantizes weights [off, off + n) of one row (off, n block multiples);
 * returns where the floats are (the row itself for F32, else buf). */
static const float *seg_portable(uint32_t type, const uint8_t *row, int64_t off, int n,
                                 float *restrict buf) {
    switch (type) {
    case GGML_TYPE_F32:
        return (const float *)row + off;
    case GGML_TYPE_F16: {
        const uint16_t *s = (const uint16_t *)row + off;
        for (int i = 0; i < n; i++) buf[i] = h2f(s[i]);
        return buf;
    }
    case GGML_TYPE_BF16: {
        const uint16_t *s = (const uint16_t *)row + off;
        for (int i = 0; i < n; i++) buf[i] = b2f(s[i]);
        return buf;
    }
#define SEG_CASE(T, BT, BS, fn)                                                                    \
    case T: {                                                                                      \
        const BT *b = (const BT *)row + off / (BS);                                                \
        for (int i = 0; i < n / (BS); i++) fn(b + i, buf + i * (BS));                              \
        return buf;                                                                                \
    }
        SEG_CASE(GGML_TYPE_Q4_0, BlockQ4_0, 32, dq_q4_0)
        SEG_CASE(GGML_TYPE_Q4_1, BlockQ4_1, 32, dq_q4_1)
        SEG_CASE(GGML_TYPE_Q5_0, BlockQ5_0, 32, dq_q5_0)
        SEG_CASE(GGML_TYPE_Q5_1, BlockQ5_1, 32, dq_q5_1)
        SEG_CASE(GGML_TYPE_Q8_0, BlockQ8_0, 32, dq_q8_0)
        SEG_CASE(GGML_TYPE_Q2_K, BlockQ2K, 256, dq_q2_k)
        SEG_CASE(GGML_TYPE_Q3_K, BlockQ3K, 256, dq_q3_k)
        SEG_CASE(GGML_TYPE_Q4_K, BlockQ4K, 256, dq_q4_k)
        SEG_CASE(GGML_TYPE_Q5_K, BlockQ5K, 256, dq_q5_k)
        SEG_CASE(GGML_TYPE_Q6_K, BlockQ6K, 256, dq_q6_k)
    default:
        M40_ASSERT(0 && "unsupported type");
        return buf;
    }
}

/* acc (ACCN): lanes 0..15, leftovers in acc[16]. */
static inline void acc_portable(float *restrict acc, const float *restrict w,
                                const float *restrict x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += w[i + k] * x[i + k];
    for (; i < n; i++) acc[16] += w[i] * x[i];
}

static inline float reduce_portable(const float *acc) {
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += acc[k];
    return s + acc[16];
}

static void matmul_portable(uint32_t type, const uint8_t *W, size_t rb, int64_t cols, int64_t r0,
                            int64_t r1, const float *X, int64_t ldx, int n_tok, float *Y,
                            int64_t ldy) {
    float buf[SEG];
    float acc[TT][ACCN];
    for (int t0 = 0; t0 < n_tok; t0 += TT) {
        const int nt = n_tok - t0 < TT ? n_tok - t0 : TT;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = W + (size_t)r * rb;
            memset(acc, 0, sizeof acc);
            for (int64_t off = 0; off < cols; off += SEG) {
                const int n = cols - off < SEG ? (int)(cols - off) : SEG;
                const float *w = seg_portable(type, row, off, n, buf);
                for (int t = 0; t < nt; t++)
                    acc_portable(acc[t], w, X + (size_t)(t0 + t) * ldx + off, n);
            }
            for (int t = 0; t < nt; t++) Y[(size_t)(t0 + t) * ldy + r] = reduce_portable(acc[t]);
        }
    }
}

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* F16C conversion of one half (same value as h2f). */
AVX2 static inline float h2f_hw(uint16_t h) { return _cvtsh_ss(h); }

AVX2 static inline __m256 i8x8_to_ps(__m128i v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

/* The block dequantizers below compute exactly what the portable ones do
 * (separate multiply and add, no contraction). */
AVX2 static inline void dq_q8_0_avx(const BlockQ8_0 *b, float *y) {
    const __m256 d = _mm256_set1_ps(h2f_hw(b->d));
    for (int k = 0; k < 4; k++) {
        const __m128i q = _mm_loadl_epi64((const __m128i *)(b->qs + 8 * k));
        _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(i8x8_to_ps(q), d));
    }
}

AVX2 static inline void dq_q4_0_avx(const BlockQ4_0 *b, float *y) {
    const __m256 d = _mm256_set1_ps(h2f_hw(b->d));
    const __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    const __m128i m = _mm_set1_epi8(15), e = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m), e);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), e);
    _mm256_storeu_ps(y, _mm256_mul_ps(i8x8_to_ps(lo), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(lo, 8)), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(i8x8_to_ps(hi), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(hi, 8)), d));
}

AVX2 static inline void dq_q4_1_avx(const BlockQ4_1 *b, float *y) {
    const __m256 d = _mm256_set1_ps(h2f_hw(b->d)), mn = _mm256_set1_ps(h2f_hw(b->m));
    const __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    const __m128i m = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(q, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(lo), d), mn));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(lo, 8)), d), mn));
    _mm256_storeu_ps(y + 16, _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(hi), d), mn));
    _mm256_storeu_ps(y + 24,
                     _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(hi, 8)), d), mn));
}

AVX2 static inline void dq_q4_k_avx(const BlockQ4K *b, float *y) {
    const float d = h2f_hw(b->d), dmin = h2f_hw(b->dmin);
    const uint8_t *q = b->qs;
    const __m128i m = _mm_set1_epi8(15);
    for (int c = 0; c < 4; c++) {
        uint8_t sc, mn;
        scale_min_k4(2 * c, b->scales, &sc, &mn);
        const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(dmin * (float)mn);
        scale_min_k4(2 * c + 1, b->scales, &sc, &mn);
        const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(dmin * (float)mn);
        for (int k = 0; k < 4; k++) {
            const __m128i v = _mm_loadl_epi64((const __m128i *)(q + 8 * k));
            const __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
            _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d1, i8x8_to_ps(lo)), m1));
            _mm256_storeu_ps(y + 32 + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d2, i8x8_to_ps(hi)), m2));
        }
        y += 64;
        q += 32;
    }
}

AVX2 static inline void dq_q6_k_avx(const BlockQ6K *b, float *y) {
    const float d = h2f_hw(b->d);
    const __m128i m4 = _mm_set1_epi8(15), m2 = _mm_set1_epi8(3), e = _mm_set1_epi8(32);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        float *yh = y + 128 * h;
        for (int l = 0; l < 32; l += 8) {
            const int s = l / 16;
            const __m256 d1 = _mm256_set1_ps(d * (float)sc[s]),
                         d2 = _mm256_set1_ps(d * (float)sc[s + 2]);
            const __m256 d3 = _mm256_set1_ps(d * (float)sc[s + 4]),
                         d4 = _mm256_set1_ps(d * (float)sc[s + 6]);
            const __m128i A = _mm_loadl_epi64((const __m128i *)(ql + l));
            const __m128i B = _mm_loadl_epi64((const __m128i *)(ql + l + 32));
            const __m128i H = _mm_loadl_epi64((const __m128i *)(qh + l));
            const __m128i q1 = _mm_sub_epi8(
                _mm_or_si128(_mm_and_si128(A, m4), _mm_slli_epi16(_mm_and_si128(H, m2), 4)), e);
            const __m128i q2 = _mm_sub_epi8(
                _mm_or_si128(_mm_and_si128(B, m4),
                             _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(H, 2), m2), 4)),
                e);
            const __m128i q3 = _mm_sub_epi8(
                _mm_or_si128(_mm_and_si128(_mm_srli_epi16(A, 4), m4),
                             _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(H, 4), m2), 4)),
                e);
            const __m128i q4 = _mm_sub_epi8(
                _mm_or_si128(_mm_and_si128(_mm_srli_epi16(B, 4), m4),
                             _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(H, 6), m2), 4)),
                e);
            _mm256_storeu_ps(yh + l, _mm256_mul_ps(d1, i8x8_to_ps(q1)));
            _mm256_storeu_ps(yh + l + 32, _mm256_mul_ps(d2, i8x8_to_ps(q2)));
            _mm256_storeu_ps(yh + l + 64, _mm256_mul_ps(d3, i8x8_to_ps(q3)));
            _mm256_storeu_ps(yh + l + 96, _mm256_mul_ps(d4, i8x8_to_ps(q4)));
        }
    }
}

AVX2 static const float *seg_avx2(uint32_t type, const uint8_t *row, int64_t off, int n,
                                  float *restrict buf) {
    switch (type) {
    case GGML_TYPE_F32:
        return (const float *)row + off;
    case GGML_TYPE_F16: {
        const uint16_t *s = (const uint16_t *)row + off;
        int i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
        for (; i < n; i++) buf[i] = h2f(s[i]);
        return buf;
    }
    case GGML_TYPE_BF16: {
        const uint16_t *s = (const uint16_t *)row + off;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
            _mm256_storeu_ps(buf + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
        for (; i < n; i++) buf[i] = b2f(s[i]);
        return buf;
    }
        SEG_CASE(GGML_TYPE_Q4_0, BlockQ4_0, 32, dq_q4_0_avx)
        SEG_CASE(GGML_TYPE_Q4_1, BlockQ4_1, 32, dq_q4_1_avx)
        SEG_CASE(GGML_TYPE_Q5_0, BlockQ5_0, 32, dq_q5_0)
        SEG_CASE(GGML_TYPE_Q5_1, BlockQ5_1, 32, dq_q5_1)
        SEG_CASE(GGML_TYPE_Q8_0, BlockQ8_0, 32, dq_q8_0_avx)
        SEG_CASE(GGML_TYPE_Q2_K, BlockQ2K, 256, dq_q2_k)
        SEG_CASE(GGML_TYPE_Q3_K, BlockQ3K, 256, dq_q3_k)
        SEG_CASE(GGML_TYPE_Q4_K, BlockQ4K, 256, dq_q4_k_avx)
        SEG_CASE(GGML_TYPE_Q5_K, BlockQ5K, 256, dq_q5_k)
        SEG_CASE(GGML_TYPE_Q6_K, BlockQ6K, 256, dq_q6_k_avx)
    default:
        M40_ASSERT(0 && "unsupported type");
        return buf;
    }
}

/* acc (ACCN): four 8-lane accumulators in acc[0..31], scalar leftovers in
 * acc[32]. One token, or two tokens sharing the weight loads (the same
 * operations per token). */
AVX2 static inline void acc_avx2(float *restrict acc, const float *restrict w,
                                 const float *restrict x, int n) {
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8);
    __m256 a2 = _mm256_loadu_ps(acc + 16), a3 = _mm256_loadu_ps(acc + 24);
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = acc[32];
    for (; i < n; i++) s = fmaf(w[i], x[i], s);
    acc[32] = s;
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2);
    _mm256_storeu_ps(acc + 24, a3);
}

AVX2 static inline void acc2_avx2(float *restrict acc, float *restrict acd, const float *restrict w,
                                  const float *restrict x, const float *restrict z, int n) {
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8);
    __m256 a2 = _mm256_loadu_ps(acc + 16), a3 = _mm256_loadu_ps(acc + 24);
    __m256 b0 = _mm256_loadu_ps(acd), b1 = _mm256_loadu_ps(acd + 8);
    __m256 b2 = _mm256_loadu_ps(acd + 16), b3 = _mm256_loadu_ps(acd + 24);
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 w0 = _mm256_loadu_ps(w + i), w1 = _mm256_loadu_ps(w + i + 8);
        const __m256 w2 = _mm256_loadu_ps(w + i + 16), w3 = _mm256_loadu_ps(w + i + 24);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        b0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(z + i), b0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
        b1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(z + i + 8), b1);
        a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + i + 16), a2);
        b2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(z + i + 16), b2);
        a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + i + 24), a3);
        b3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(z + i + 24), b3);
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 w0 = _mm256_loadu_ps(w + i);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        b0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(z + i), b0);
    }
    float s = acc[32], u = acd[32];
    for (; i < n; i++) {
        s = fmaf(w[i], x[i], s);
        u = fmaf(w[i], z[i], u);
    }
    acc[32] = s;
    acd[32] = u;
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2);
    _mm256_storeu_ps(acc + 24, a3);
    _mm256_storeu_ps(acd, b0);
    _mm256_storeu_ps(acd + 8, b1);
    _mm256_storeu_ps(acd + 16, b2);
    _mm256_storeu_ps(acd + 24, b3);
}

AVX2 static inline float reduce_avx2(const float *acc) {
    const __m256 a =
        _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(acc), _mm256_loadu_ps(acc + 8)),
                      _mm256_add_ps(_mm256_loadu_ps(acc + 16), _mm256_loadu_ps(acc + 24)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h) + acc[32];
}

/* Single-token rows with the dequantization fused into the FMA loop: the
 * same weight vectors and the same FMA sequence per accumulator as
 * seg_avx2 + acc_avx2 (so the same bits), without the buffer round trip. */
#define FMA4(w0, w1, w2, w3, xp)                                                                   \
    do {                                                                                           \
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps((xp)), a0);                                       \
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps((xp) + 8), a1);                                   \
        a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps((xp) + 16), a2);                                  \
        a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps((xp) + 24), a3);                                  \
    } while (0)
#define FUSED_END()                                                                                \
    do {                                                                                           \
        _mm256_storeu_ps(acc, a0);                                                                 \
        _mm256_storeu_ps(acc + 8, a1);                                                             \
        _mm256_storeu_ps(acc + 16, a2);                                                            \
        _mm256_storeu_ps(acc + 24, a3);                                                            \
    } while (0)

/* acc (ACCN) zeroed on entry; returns 1 when the type has a fused kernel. */
AVX2 static int row_fused_avx2(uint32_t type, const uint8_t *row, const float *x, int64_t n,
                               float *acc) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    switch (type) {
    case GGML_TYPE_F16: {
        const uint16_t *h = (const uint16_t *)row;
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
            const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8)));
            const __m256 w2 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 16)));
            const __m256 w3 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 24)));
            FMA4(w0, w1, w2, w3, x + i);
        }
        for (; i + 8 <= n; i += 8)
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))),
                                 _mm256_loadu_ps(x + i), a0);
        float t = 0.0f;
        for (; i < n; i++) t = fmaf(h2f(h[i]), x[i], t);
        acc[32] = t;
        FUSED_END();
        return 1;
    }
    case GGML_TYPE_Q8_0: {
        const BlockQ8_0 *b = (const BlockQ8_0 *)row;
        for (int64_t i = 0; i < n / 32; i++, x += 32) {
            const __m256 d = _mm256_set1_ps(h2f_hw(b[i].d));
            const int8_t *q = b[i].qs;
            const __m256 w0 = _mm256_mul_ps(i8x8_to_ps(_mm_loadl_epi64((const __m128i *)q)), d);
            const __m256 w1 =
                _mm256_mul_ps(i8x8_to_ps(_mm_loadl_epi64((const __m128i *)(q + 8))), d);
            const __m256 w2 =
                _mm256_mul_ps(i8x8_to_ps(_mm_loadl_epi64((const __m128i *)(q + 16))), d);
            const __m256 w3 =
                _mm256_mul_ps(i8x8_to_ps(_mm_loadl_epi64((const __m128i *)(q + 24))), d);
            FMA4(w0, w1, w2, w3, x);
        }
        FUSED_END();
        return 1;
    }
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q4_1: {
        const int q41 = type == GGML_TYPE_Q4_1;
        const size_t bsz = q41 ? sizeof(BlockQ4_1) : sizeof(BlockQ4_0);
        const __m128i m = _mm_set1_epi8(15), e = _mm_set1_epi8(q41 ? 0 : 8);
        for (int64_t i = 0; i < n / 32; i++, x += 32) {
            const uint8_t *bp = row + (size_t)i * bsz;
            uint16_t dh, mh = 0;
            memcpy(&dh, bp, 2);
            if (q41) memcpy(&mh, bp + 2, 2);
            const __m128i q = _mm_loadu_si128((const __m128i *)(bp + (q41 ? 4 : 2)));
            const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m), e);
            const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), e);
            const __m256 d = _mm256_set1_ps(h2f_hw(dh));
            __m256 w0 = _mm256_mul_ps(i8x8_to_ps(lo), d);
            __m256 w1 = _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(lo, 8)), d);
            __m256 w2 = _mm256_mul_ps(i8x8_to_ps(hi), d);
            __m256 w3 = _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(hi, 8)), d);
            if (q41) {
                const __m256 mn = _mm256_set1_ps(h2f_hw(mh));
                w0 = _mm256_add_ps(w0, mn);
                w1 = _mm256_add_ps(w1, mn);
                w2 = _mm256_add_ps(w2, mn);
                w3 = _mm256_add_ps(w3, mn);
            }
            FMA4(w0, w1, w2, w3, x);
        }
        FUSED_END();
        return 1;
    }
    case GGML_TYPE_Q4_K: {
        const BlockQ4K *b = (const BlockQ4K *)row;
        const __m128i m = _mm_set1_epi8(15);
        for (int64_t i = 0; i < n / 256; i++) {
            const float d = h2f_hw(b[i].d), dmin = h2f_hw(b[i].dmin);
            const uint8_t *q = b[i].qs;
            for (int c = 0; c < 4; c++, q += 32, x += 64) {
                uint8_t sc, mn;
                scale_min_k4(2 * c, b[i].scales, &sc, &mn);
                const __m256 d1 = _mm256_set1_ps(d * (float)sc),
                             m1 = _mm256_set1_ps(dmin * (float)mn);
                scale_min_k4(2 * c + 1, b[i].scales, &sc, &mn);
                const __m256 d2 = _mm256_set1_ps(d * (float)sc),
                             m2 = _mm256_set1_ps(dmin * (float)mn);
                const __m128i v0 = _mm_loadu_si128((const __m128i *)q);
                const __m128i v1 = _mm_loadu_si128((const __m128i *)(q + 16));
                const __m128i l0 = _mm_and_si128(v0, m), l1 = _mm_and_si128(v1, m);
                const __m128i h0 = _mm_and_si128(_mm_srli_epi16(v0, 4), m);
                const __m128i h1 = _mm_and_si128(_mm_srli_epi16(v1, 4), m);
#define Q4KW(dd, mm, v) _mm256_sub_ps(_mm256_mul_ps(dd, i8x8_to_ps(v)), mm)
                FMA4(Q4KW(d1, m1, l0), Q4KW(d1, m1, _mm_srli_si128(l0, 8)), Q4KW(d1, m1, l1),
                     Q4KW(d1, m1, _mm_srli_si128(l1, 8)), x);
                FMA4(Q4KW(d2, m2, h0), Q4KW(d2, m2, _mm_srli_si128(h0, 8)), Q4KW(d2, m2, h1),
                     Q4KW(d2, m2, _mm_srli_si128(h1, 8)), x + 32);
#undef Q4KW
            }
        }
        FUSED_END();
        return 1;
    }
    case GGML_TYPE_Q6_K: {
        float buf[256] __attribute__((aligned(32)));
        const BlockQ6K *b = (const BlockQ6K *)row;
        for (int64_t i = 0; i < n / 256; i++, x += 256) {
            dq_q6_k_avx(b + i, buf);
            for (int g = 0; g < 8; g++)
                FMA4(_mm256_load_ps(buf + 32 * g), _mm256_load_ps(buf + 32 * g + 8),
                     _mm256_load_ps(buf + 32 * g + 16), _mm256_load_ps(buf + 32 * g + 24),
                     x + 32 * g);
        }
        FUSED_END();
        return 1;
    }
    default:
        return 0;
    }
}
#undef FMA4
#undef FUSED_END

AVX2 static void matmul_avx2(uint32_t type, const uint8_t *W, size_t rb, int64_t cols, int64_t r0,
                             int64_t r1, const float *X, int64_t ldx, int n_tok, float *Y,
                             int64_t ldy) {
    float buf[SEG] __attribute__((aligned(32)));
    float acc[TT][ACCN] __attribute__((aligned(32)));
    for (int t0 = 0; t0 < n_tok; t0 += TT) {
        const int nt = n_tok - t0 < TT ? n_tok - t0 : TT;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = W + (size_t)r * rb;
            memset(acc, 0, sizeof acc);
            if (nt == 1 && row_fused_avx2(type, row, X + (size_t)t0 * ldx, cols, acc[0])) {
                Y[(size_t)t0 * ldy + r] = reduce_avx2(acc[0]);
                continue;
            }
            for (int64_t off = 0; off < cols; off += SEG) {
                const int n = cols - off < SEG ? (int)(cols - off) : SEG;
                const float *w = seg_avx2(type, row, off, n, buf);
                const float *xo = X + (size_t)t0 * ldx + off;
                int t = 0;
                for (; t + 2 <= nt; t += 2)
                    acc2_avx2(acc[t], acc[t + 1], w, xo + (size_t)t * ldx,
                              xo + (size_t)(t + 1) * ldx, n);
                for (; t < nt; t++) acc_avx2(acc[t], w, xo + (size_t)t * ldx, n);
            }
            for (int t = 0; t < nt; t++) Y[(size_t)(t0 + t) * ldy + r] = reduce_avx2(acc[t]);
        }
    }
}
#endif
#undef SEG_CASE

void quant_matmul(uint32_t type, const void *W, int64_t cols, int64_t r0, int64_t r1,
                  const float *X, int64_t ldx, int n_tok, float *Y, int64_t ldy) {
    QTraits t;
    M40_ASSERT(traits(type, &t) && cols >= 0 && cols % t.bs == 0 && r0 >= 0 && r1 >= r0 &&
               n_tok >= 0);
    const size_t rb = (size_t)(cols / t.bs) * t.bytes;
#if defined(__x86_64__)
    if (cpu_simd_avx2()) {
        matmul_avx2(type, W, rb, cols, r0, r1, X, ldx, n_tok, Y, ldy);
        return;
    }
#endif
    matmul_portable(type, W, rb, cols, r0, r1, X, ldx, n_tok, Y, ldy);
}

float quant_dot(uint32_t type, const void *row, const float *x, int64_t n) {
    float y = 0.0f;
    quant_matmul(type, row, n, 0, 1, x, n, 1, &y, 0);
    return y;
}

void quant_matvec(uint32_t type, const void *W, int64_t cols, int64_t r0, int64_t r1,
                  const float *x, float *y) {
    quant_matmul(type, W, cols, r0, r1, x, cols, 1, y, 0);
}
