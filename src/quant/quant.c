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

/* ------------------------------------------------------------------ dots
 * 16 independent accumulator lanes (vectorizable), summed at the end in a
 * fixed order. */
#define LANES 16

static inline float lanes_sum(const float *acc) {
    float s = 0.0f;
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

static inline void acc_block(float *restrict acc, const float *restrict w, const float *restrict x,
                             int n) {
    for (int i = 0; i < n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += w[i + k] * x[i + k];
}

static float dot_f32(const float *restrict w, const float *restrict x, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_f16(const uint16_t *restrict w, const float *restrict x, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += h2f(w[i]) * x[i];
    return s;
}

static float dot_bf16(const uint16_t *restrict w, const float *restrict x, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += b2f(w[i]) * x[i];
    return s;
}

#define DEF_DOT(name, BT, BS, fn)                                                                  \
    static float name(const BT *restrict b, const float *restrict x, int64_t nb) {                 \
        float acc[LANES] = {0};                                                                    \
        float tmp[BS];                                                                             \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            fn(b + i, tmp);                                                                        \
            acc_block(acc, tmp, x + i * (BS), BS);                                                 \
        }                                                                                          \
        return lanes_sum(acc);                                                                     \
    }
DEF_DOT(dot_q4_0, BlockQ4_0, 32, dq_q4_0)
DEF_DOT(dot_q4_1, BlockQ4_1, 32, dq_q4_1)
DEF_DOT(dot_q5_0, BlockQ5_0, 32, dq_q5_0)
DEF_DOT(dot_q5_1, BlockQ5_1, 32, dq_q5_1)
DEF_DOT(dot_q8_0, BlockQ8_0, 32, dq_q8_0)
DEF_DOT(dot_q2_k, BlockQ2K, 256, dq_q2_k)
DEF_DOT(dot_q3_k, BlockQ3K, 256, dq_q3_k)
DEF_DOT(dot_q4_k, BlockQ4K, 256, dq_q4_k)
DEF_DOT(dot_q5_k, BlockQ5K, 256, dq_q5_k)
DEF_DOT(dot_q6_k, BlockQ6K, 256, dq_q6_k)
#undef DEF_DOT

float quant_dot(uint32_t type, const void *row, const float *x, int64_t n) {
    QTraits t;
    M40_ASSERT(traits(type, &t) && n >= 0 && n % t.bs == 0);
    const int64_t nb = n / t.bs;
    switch (type) {
    case GGML_TYPE_F32:
        return dot_f32(row, x, n);
    case GGML_TYPE_F16:
        return dot_f16(row, x, n);
    case GGML_TYPE_BF16:
        return dot_bf16(row, x, n);
    case GGML_TYPE_Q4_0:
        return dot_q4_0(row, x, nb);
    case GGML_TYPE_Q4_1:
        return dot_q4_1(row, x, nb);
    case GGML_TYPE_Q5_0:
        return dot_q5_0(row, x, nb);
    case GGML_TYPE_Q5_1:
        return dot_q5_1(row, x, nb);
    case GGML_TYPE_Q8_0:
        return dot_q8_0(row, x, nb);
    case GGML_TYPE_Q2_K:
        return dot_q2_k(row, x, nb);
    case GGML_TYPE_Q3_K:
        return dot_q3_k(row, x, nb);
    case GGML_TYPE_Q4_K:
        return dot_q4_k(row, x, nb);
    case GGML_TYPE_Q5_K:
        return dot_q5_k(row, x, nb);
    case GGML_TYPE_Q6_K:
        return dot_q6_k(row, x, nb);
    default:
        M40_ASSERT(0 && "unsupported type");
        return 0.0f;
    }
}

void quant_matvec(uint32_t type, const void *W, int64_t cols, int64_t r0, int64_t r1,
                  const float *x, float *y) {
    QTraits t;
    M40_ASSERT(traits(type, &t) && cols >= 0 && cols % t.bs == 0 && r0 >= 0 && r1 >= r0);
    const size_t rb = (size_t)(cols / t.bs) * t.bytes;
    const uint8_t *w = W;
    for (int64_t r = r0; r < r1; r++) y[r] = quant_dot(type, w + (size_t)r * rb, x, cols);
}
