/* test_quant.c - block dequantizers on handcrafted blocks (expected values
 * worked out by hand from the ggml layouts), dot/matvec against a double
 * reference, quantize -> dequantize error bounds per type. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/cpu_features.h"
#include "quant/quant.h"

#define H_1 0x3C00u    /* fp16 1.0 */
#define H_2 0x4000u    /* 2.0 */
#define H_HALF 0x3800u /* 0.5 */
#define H_QUAR 0x3400u /* 0.25 */
#define H_M1 0xBC00u   /* -1.0 */

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static float *dq(uint32_t type, const void *blk, int64_t n) {
    float *y = xmalloc((size_t)n * sizeof(float));
    quant_dequant_row(type, blk, y, n);
    return y;
}

static void test_plain(void **state) {
    (void)state;
    uint16_t h[8] = {0x3C00, 0xC000, 0x3555, 0x0001, 0x7BFF, 0x7C00, 0xFC00, 0x8000};
    float *y = dq(GGML_TYPE_F16, h, 8);
    assert_true(y[0] == 1.0f);
    assert_true(y[1] == -2.0f);
    assert_true(y[2] == 0.333251953125f);
    assert_true(y[3] == 0x1p-24f); /* smallest subnormal */
    assert_true(y[4] == 65504.0f);
    assert_true(isinf(y[5]) && y[5] > 0);
    assert_true(isinf(y[6]) && y[6] < 0);
    assert_true(y[7] == 0.0f && signbit(y[7]));
    free(y);
    uint16_t nanh = 0x7E00;
    y = dq(GGML_TYPE_F16, &nanh, 1);
    assert_true(isnan(y[0]));
    free(y);
    /* every half converts like the scalar util.h reference */
    uint16_t *all = xmalloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    y = dq(GGML_TYPE_F16, all, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        float r = fp16_to_f32((uint16_t)i);
        if (isnan(r))
            assert_true(isnan(y[i]));
        else
            assert_memory_equal(&y[i], &r, 4);
    }
    free(y);
    free(all);

    uint16_t b[3] = {0x3F80, 0xC040, 0x4049};
    y = dq(GGML_TYPE_BF16, b, 3);
    assert_true(y[0] == 1.0f && y[1] == -3.0f && y[2] == 3.140625f);
    free(y);

    float f[2] = {1.5f, -7.25f};
    y = dq(GGML_TYPE_F32, f, 2);
    assert_true(y[0] == 1.5f && y[1] == -7.25f);
    free(y);
}

static void test_q8_0(void **state) {
    (void)state;
    uint8_t blk[34] = {0};
    put16(blk, H_HALF);
    int8_t *qs = (int8_t *)(blk + 2);
    qs[0] = 1, qs[1] = -2, qs[2] = 127, qs[3] = -128, qs[31] = 10;
    float *y = dq(GGML_TYPE_Q8_0, blk, 32);
    assert_true(y[0] == 0.5f && y[1] == -1.0f && y[2] == 63.5f && y[3] == -64.0f);
    assert_true(y[4] == 0.0f && y[31] == 5.0f);
    free(y);
}

static void test_q4_0_q4_1(void **state) {
    (void)state;
    uint8_t b0[18];
    memset(b0, 0x88, sizeof b0); /* nibble 8 -> 0 */
    put16(b0, H_2);
    b0[2] = 0x9F; /* w0 = (15-8)*2 = 14, w16 = (9-8)*2 = 2 */
    b0[3] = 0x08; /* w1 = 0, w17 = (0-8)*2 = -16 */
    float *y = dq(GGML_TYPE_Q4_0, b0, 32);
    assert_true(y[0] == 14.0f && y[16] == 2.0f && y[1] == 0.0f && y[17] == -16.0f);
    assert_true(y[5] == 0.0f && y[31] == 0.0f);
    free(y);

    uint8_t b1[20] = {0};
    put16(b1, H_HALF);
    put16(b1 + 2, H_M1);
    b1[4] = 0x3A;  /* w0 = 10*0.5 - 1 = 4, w16 = 3*0.5 - 1 = 0.5 */
    b1[19] = 0xF0; /* w15 = -1, w31 = 15*0.5 - 1 = 6.5 */
    y = dq(GGML_TYPE_Q4_1, b1, 32);
    assert_true(y[0] == 4.0f && y[16] == 0.5f && y[15] == -1.0f && y[31] == 6.5f);
    assert_true(y[7] == -1.0f);
    free(y);
}

static void test_q5(void **state) {
    (void)state;
    uint8_t b0[22] = {0};
    put16(b0, H_1);
    b0[2] = 0x01; /* qh bit 0: w0 high bit */
    b0[4] = 0x01; /* qh bit 16: w16 high bit */
    b0[6] = 0x21; /* qs[0]: w0 low 1, w16 low 2 */
    /* w0 = (1|16)-16 = 1, w16 = (2|16)-16 = 2, w3 = 0-16 = -16 */
    float *y = dq(GGML_TYPE_Q5_0, b0, 32);
    assert_true(y[0] == 1.0f && y[16] == 2.0f && y[3] == -16.0f && y[19] == -16.0f);
    free(y);

    uint8_t b1[24] = {0};
    put16(b1, H_QUAR);
    put16(b1 + 2, H_1);
    b1[6] = 0x20;  /* qh byte 2 bit 5 = qh bit 21: w21 high bit */
    b1[13] = 0xF0; /* qs[5]: w5 low 0, w21 low 15 */
    /* w21 = 31 * 0.25 + 1 = 8.75, w5 = 1 */
    y = dq(GGML_TYPE_Q5_1, b1, 32);
    assert_true(y[21] == 8.75f && y[5] == 1.0f && y[0] == 1.0f);
    free(y);
}

static void test_q2_k(void **state) {
    (void)state;
    uint8_t b[84] = {0};
    uint8_t *scales = b, *qs = b + 16;
    put16(b + 80, H_1);    /* d */
    put16(b + 82, H_HALF); /* dmin */
    scales[0] = 0x21;      /* sub 0: scale 1, min 2 */
    scales[1] = 0x03;      /* sub 1: scale 3, min 0 */
    scales[2] = 0x01;      /* sub 2: scale 1 */
    scales[4] = 0x12;      /* sub 4: scale 2, min 1 */
    scales[8] = 0xF1;      /* sub 8: scale 1, min 15 */
    qs[0] = 0xE4;          /* w0: 0, w32: 1, w64: 2, w96: 3 */
    qs[16] = 0x03;         /* w16: 3 */
    qs[32] = 0x02;         /* w128: 2 */
    float *y = dq(GGML_TYPE_Q2_K, b, 256);
    assert_true(y[0] == -1.0f);   /* 1*0 - 0.5*2 */
    assert_true(y[1] == -1.0f);   /* q 0 in sub 0 */
    assert_true(y[32] == 1.0f);   /* sub 2: 1*1 */
    assert_true(y[64] == 3.5f);   /* sub 4: 2*2 - 0.5*1 */
    assert_true(y[96] == 0.0f);   /* sub 6: scale 0 */
    assert_true(y[16] == 9.0f);   /* sub 1: 3*3 */
    assert_true(y[128] == -5.5f); /* sub 8: 1*2 - 0.5*15 */
    assert_true(y[129] == -7.5f);
    assert_true(y[255] == 0.0f);
    free(y);
}

static void test_q3_k(void **state) {
    (void)state;
    uint8_t b[110] = {0};
    uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    put16(b + 108, H_1);
    /* 6-bit scales stored +32: sub 0 = 34 (-> 2), sub 9 = 29 (-> -3), others 32 (-> 0) */
    sc[0] = 0x02;                    /* sub 0 low nibble 2, sub 8 low 0 */
    sc[1] = 0xD0;                    /* sub 1 low 0, sub 9 low 13 */
    sc[8] = sc[10] = sc[11] = 0xAA;  /* high bits 2 for every sub */
    sc[9] = 0x9A;                    /* sub 9 (byte 9, bits 4-5) high bits 1 */
    qs[0] = 0x03, hmask[0] = 0x01;   /* w0: q 3, high bit set -> 3 */
    qs[48] = 0x01, hmask[16] = 0x10; /* w144 (half 1, l 16): q 1, bit 4 set -> 1 */
    float *y = dq(GGML_TYPE_Q3_K, b, 256);
    assert_true(y[0] == 6.0f);  /* 2 * 3 */
    assert_true(y[1] == -8.0f); /* 2 * (0 - 4) */
    assert_true(y[15] == -8.0f);
    assert_true(y[16] == 0.0f);   /* sub 1 scale 0 */
    assert_true(y[144] == -3.0f); /* -3 * 1 */
    assert_true(y[145] == 12.0f); /* -3 * -4 */
    assert_true(y[128] == 0.0f);  /* sub 8 scale 0 */
    free(y);
}

/* Q4_K / Q5_K scales: sub 0 (scale 3, min 4), sub 5 (scale 37, min 17). */
static void k4_scales(uint8_t *s) {
    s[0] = 3;
    s[4] = 4;
    s[1] = 0x80; /* sub 5 scale bits 4-5 (37 >> 4 = 2) in bits 6-7 */
    s[5] = 0x40; /* sub 5 min bits 4-5 (17 >> 4 = 1) */
    s[9] = 0x15; /* sub 5: scale low 5, min low 1 */
}

static void test_q4_k_q5_k(void **state) {
    (void)state;
    uint8_t b[144] = {0};
    put16(b, H_1);
    put16(b + 2, H_HALF);
    k4_scales(b + 4);
    uint8_t *qs = b + 16;
    qs[0] = 0x07;  /* w0 (sub 0) = 7, w32 (sub 1) = 0 */
    qs[64] = 0xA0; /* w128 (sub 4) = 0, w160 (sub 5) = 10 */
    float *y = dq(GGML_TYPE_Q4_K, b, 256);
    assert_true(y[0] == 19.0f); /* 3*7 - 0.5*4 */
    assert_true(y[1] == -2.0f);
    assert_true(y[32] == 0.0f);
    assert_true(y[128] == 0.0f);
    assert_true(y[160] == 361.5f); /* 37*10 - 0.5*17 */
    assert_true(y[161] == -8.5f);
    free(y);

    uint8_t c[176] = {0};
    put16(c, H_1);
    put16(c + 2, H_HALF);
    k4_scales(c + 4);
    uint8_t *qh = c + 16, *ql = c + 48;
    qh[0] = 0x21; /* w0 bit 4 (qh bit 0), w160 bit 4 (chunk 2 high half: bit 5) */
    ql[0] = 0x07;
    ql[64] = 0xA0;
    y = dq(GGML_TYPE_Q5_K, c, 256);
    assert_true(y[0] == 67.0f); /* 3*(7+16) - 2 */
    assert_true(y[32] == 0.0f);
    assert_true(y[160] == 953.5f); /* 37*(10+16) - 8.5 */
    assert_true(y[161] == -8.5f);
    free(y);
}

static void test_q6_k(void **state) {
    (void)state;
    uint8_t b[210] = {0};
    uint8_t *ql = b, *qh = b + 128;
    int8_t *sc = (int8_t *)(b + 192);
    put16(b + 208, H_HALF);
    sc[0] = 2, sc[1] = -1, sc[13] = 4;
    ql[0] = 0x05, qh[0] = 0x02;   /* w0: 5 | 2<<4 = 37 -> 5 */
    ql[80] = 0xF0, qh[48] = 0x30; /* w208 (half 1, group 2, l 16): 15 | 3<<4 = 63 -> 31 */
    float *y = dq(GGML_TYPE_Q6_K, b, 256);
    assert_true(y[0] == 5.0f);    /* 0.5 * 2 * 5 */
    assert_true(y[1] == -32.0f);  /* 0.5 * 2 * -32 */
    assert_true(y[16] == 16.0f);  /* 0.5 * -1 * -32 */
    assert_true(y[64] == 0.0f);   /* sub 4: scale 0 */
    assert_true(y[208] == 62.0f); /* 0.5 * 4 * 31 */
    assert_true(y[209] == -64.0f);
    free(y);
}

static const uint32_t ALL_TYPES[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                                     GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                                     GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                     GGML_TYPE_Q6_K};
#define N_TYPES (int)(sizeof ALL_TYPES / sizeof ALL_TYPES[0])

/* dot and matvec equal the double-precision dot of the dequantized row. */
static void test_dot_matvec(void **state) {
    (void)state;
    const int64_t cols = 512, rows = 7;
    float *src = xmalloc((size_t)(cols * rows) * sizeof(float));
    float *x = xmalloc((size_t)cols * sizeof(float));
    float *w = xmalloc((size_t)cols * sizeof(float));
    float *y = xmalloc((size_t)rows * sizeof(float));
    fill_random(src, (size_t)(cols * rows), 11, 1.0f);
    fill_random(x, (size_t)cols, 12, 2.0f);
    for (int t = 0; t < N_TYPES; t++) {
        uint32_t type = ALL_TYPES[t];
        size_t rb = quant_row_bytes(type, cols);
        assert_true(rb > 0);
        uint8_t *q = xmalloc(rb * (size_t)rows);
        for (int64_t r = 0; r < rows; r++)
            quant_quantize_row(type, src + r * cols, q + (size_t)r * rb, cols);
        for (int64_t r = 0; r < rows; r++) y[r] = NAN;
        quant_matvec(type, q, cols, 1, rows, x, y);
        assert_true(isnan(y[0])); /* r0 = 1: row 0 untouched */
        for (int64_t r = 1; r < rows; r++) {
            quant_dequant_row(type, q + (size_t)r * rb, w, cols);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < cols; i++) {
                ref += (double)w[i] * x[i];
                mag += fabs((double)w[i] * x[i]);
            }
            float d = quant_dot(type, q + (size_t)r * rb, x, cols);
            assert_true(fabs(d - ref) <= 1e-5 * mag + 1e-6);
            assert_true(y[r] == d);
        }
        free(q);
    }
    free(src), free(x), free(w), free(y);
}

/* quant_matmul (the batched kernel) equals quant_matvec / quant_dot bit for
 * bit for every token count and row range, in both dispatches (AVX2 when the
 * CPU has it, and the portable C kernels); the two dispatches agree with
 * each other and with double precision to FP32 rounding. Shapes cover rows
 * shorter than, equal to and longer than the 256-weight segment, and plain
 * types with lengths that are not multiples of 32 or 8. */
static void test_matmul_exact(void **state) {
    (void)state;
    static const int64_t COLS[] = {256, 288, 1024 + 512, 77};
    const int64_t rows = 5;
    const int NT = 11; /* > one 8-token tile, odd */
    for (int ci = 0; ci < 4; ci++) {
        const int64_t cols = COLS[ci];
        float *src = xmalloc((size_t)(cols * rows) * sizeof(float));
        float *X = xmalloc((size_t)(cols * NT) * sizeof(float));
        float *w = xmalloc((size_t)cols * sizeof(float));
        float *Y = xmalloc((size_t)(NT * rows) * sizeof(float));
        float *Yp = xmalloc((size_t)(NT * rows) * sizeof(float));
        fill_random(src, (size_t)(cols * rows), 21 + (uint64_t)ci, 1.0f);
        fill_random(X, (size_t)(cols * NT), 22 + (uint64_t)ci, 2.0f);
        for (int ti = 0; ti < N_TYPES; ti++) {
            const uint32_t type = ALL_TYPES[ti];
            const size_t rb = quant_row_bytes(type, cols);
            if (rb == 0) continue; /* cols not a block multiple */
            uint8_t *q = xmalloc(rb * (size_t)rows);
            for (int64_t r = 0; r < rows; r++)
                quant_quantize_row(type, src + r * cols, q + (size_t)r * rb, cols);
            for (int portable = 0; portable < 2; portable++) {
                cpu_force_portable(portable);
                float *out = portable ? Yp : Y;
                for (int i = 0; i < NT * rows; i++) out[i] = NAN;
                /* rows [1, rows) for all tokens; row 0 must stay untouched */
                quant_matmul(type, q, cols, 1, rows, X, cols, NT, out, rows);
                for (int t = 0; t < NT; t++) {
                    assert_true(isnan(out[(size_t)t * rows]));
                    for (int64_t r = 1; r < rows; r++) {
                        const float d =
                            quant_dot(type, q + (size_t)r * rb, X + (size_t)t * cols, cols);
                        float mv[5] = {NAN, NAN, NAN, NAN, NAN};
                        quant_matvec(type, q, cols, r, r + 1, X + (size_t)t * cols, mv);
                        assert_true(out[(size_t)t * rows + r] == d);
                        assert_true(mv[r] == d);
                    }
                }
                /* any token count gives the same bits */
                for (int nt = 1; nt <= 3; nt++) {
                    float y3[3 * 5];
                    quant_matmul(type, q, cols, 0, rows, X + (size_t)(NT - nt) * cols, cols, nt, y3,
                                 rows);
                    for (int t = 0; t < nt; t++)
                        for (int64_t r = 1; r < rows; r++)
                            assert_true(y3[t * rows + r] == out[(size_t)(NT - nt + t) * rows + r]);
                }
            }
            cpu_force_portable(0);
            for (int t = 0; t < NT; t++)
                for (int64_t r = 1; r < rows; r++) {
                    quant_dequant_row(type, q + (size_t)r * rb, w, cols);
                    double ref = 0, mag = 0;
                    for (int64_t i = 0; i < cols; i++) {
                        ref += (double)w[i] * X[(size_t)t * cols + i];
                        mag += fabs((double)w[i] * X[(size_t)t * cols + i]);
                    }
                    const size_t k = (size_t)t * rows + r;
                    assert_true(fabs(Y[k] - ref) <= 1e-5 * mag + 1e-6);
                    assert_true(fabs(Yp[k] - ref) <= 1e-5 * mag + 1e-6);
                    assert_true(fabs(Y[k] - Yp[k]) <= 2e-5 * mag + 1e-6);
                }
            free(q);
        }
        free(src), free(X), free(w), free(Y), free(Yp);
    }
}

/* quantize -> dequantize relative RMS error per type on Gaussian-ish data. */
static void test_roundtrip(void **state) {
    (void)state;
    const int64_t n = 256 * 64;
    float *src = xmalloc((size_t)n * sizeof(float));
    float *back = xmalloc((size_t)n * sizeof(float));
    /* sum of 4 uniforms: bell-shaped, like trained weights */
    float *tmp = xmalloc((size_t)n * sizeof(float));
    memset(src, 0, (size_t)n * sizeof(float));
    for (int k = 0; k < 4; k++) {
        fill_random(tmp, (size_t)n, 100 + (uint64_t)k, 0.05f);
        for (int64_t i = 0; i < n; i++) src[i] += tmp[i];
    }
    free(tmp);
    static const struct {
        uint32_t type;
        double bound;
    } B[] = {{GGML_TYPE_F32, 0.0},    {GGML_TYPE_F16, 1e-3},  {GGML_TYPE_BF16, 5e-3},
             {GGML_TYPE_Q8_0, 0.008}, {GGML_TYPE_Q6_K, 0.02}, {GGML_TYPE_Q5_0, 0.06},
             {GGML_TYPE_Q5_1, 0.05},  {GGML_TYPE_Q5_K, 0.04}, {GGML_TYPE_Q4_0, 0.12},
             {GGML_TYPE_Q4_1, 0.10},  {GGML_TYPE_Q4_K, 0.08}, {GGML_TYPE_Q3_K, 0.20},
             {GGML_TYPE_Q2_K, 0.35}};
    double prev = 0;
    (void)prev;
    for (size_t t = 0; t < sizeof B / sizeof B[0]; t++) {
        size_t rb = quant_row_bytes(B[t].type, n);
        uint8_t *q = xmalloc(rb);
        quant_quantize_row(B[t].type, src, q, n);
        quant_dequant_row(B[t].type, q, back, n);
        double e = rel_l2(back, src, (size_t)n);
        print_message("quant %-5s rel rms err %.5f (bound %.3f)\n", ggml_type_name(B[t].type), e,
                      B[t].bound);
        assert_true(e <= B[t].bound);
        free(q);
    }
    free(src);
    free(back);
}

/* The scale searches of the K-quants beat plain round-to-nearest from the
 * block max (same format), and zero blocks quantize to zeros. */
static void test_kquant_vs_rtn(void **state) {
    (void)state;
    const int64_t n = 256 * 32;
    float *src = xmalloc((size_t)n * sizeof(float));
    float *back = xmalloc((size_t)n * sizeof(float));
    fill_random(src, (size_t)n, 7, 1.0f);
    for (int64_t i = 0; i < n; i++) src[i] = src[i] * src[i] * src[i]; /* heavy tails */
    static const uint32_t K[] = {GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                 GGML_TYPE_Q6_K};
    for (size_t t = 0; t < sizeof K / sizeof K[0]; t++) {
        size_t rb = quant_row_bytes(K[t], n);
        uint8_t *q = xmalloc(rb);
        quant_quantize_row(K[t], src, q, n);
        quant_dequant_row(K[t], q, back, n);
        double e_search = rel_l2(back, src, (size_t)n);
        quant_quantize_row_rtn(K[t], src, q, n);
        quant_dequant_row(K[t], q, back, n);
        double e_rtn = rel_l2(back, src, (size_t)n);
        print_message("quant %-5s search %.5f rtn %.5f\n", ggml_type_name(K[t]), e_search, e_rtn);
        assert_true(e_search < e_rtn);
        free(q);
    }
    /* all-zero input */
    memset(src, 0, 256 * sizeof(float));
    for (int t = 0; t < N_TYPES; t++) {
        uint8_t q[1024];
        quant_quantize_row(ALL_TYPES[t], src, q, 256);
        quant_dequant_row(ALL_TYPES[t], q, back, 256);
        for (int i = 0; i < 256; i++) assert_true(back[i] == 0.0f);
    }
    free(src);
    free(back);
}

/* Legacy quantizers are exact on values already on their grid. */
static void test_legacy_exact(void **state) {
    (void)state;
    float src[32], back[32];
    uint8_t q[64];
    for (int i = 0; i < 32; i++) src[i] = (float)((i * 7) % 16 - 8) * 0.25f; /* -2 .. 1.75 */
    src[3] = -2.0f;
    quant_quantize_row(GGML_TYPE_Q4_0, src, q, 32);
    quant_dequant_row(GGML_TYPE_Q4_0, q, back, 32);
    assert_memory_equal(src, back, sizeof src);
    quant_quantize_row(GGML_TYPE_Q8_0, src, q, 32);
    quant_dequant_row(GGML_TYPE_Q8_0, q, back, 32);
    for (int i = 0; i < 32; i++) assert_true(fabsf(back[i] - src[i]) <= 2.0f / 127 / 2 + 1e-6f);
    for (int i = 0; i < 32; i++) src[i] = 1.0f + (float)(i % 32) * 0.5f; /* 1 .. 16.5 */
    quant_quantize_row(GGML_TYPE_Q5_1, src, q, 32);
    quant_dequant_row(GGML_TYPE_Q5_1, q, back, 32);
    assert_memory_equal(src, back, sizeof src);
    for (int i = 0; i < 32; i++) src[i] = 1.0f + (float)(i % 16) * 0.5f;
    quant_quantize_row(GGML_TYPE_Q4_1, src, q, 32);
    quant_dequant_row(GGML_TYPE_Q4_1, q, back, 32);
    assert_memory_equal(src, back, sizeof src);
}

/* Random block bytes dequantized by gguf-py (tests/data/quant/gen.py): ours
 * must match bit for bit. */
static void test_gguf_py_vectors(void **state) {
    (void)state;
    static const struct {
        const char *name;
        uint32_t type;
    } V[] = {{"Q4_0", GGML_TYPE_Q4_0}, {"Q4_1", GGML_TYPE_Q4_1}, {"Q5_0", GGML_TYPE_Q5_0},
             {"Q5_1", GGML_TYPE_Q5_1}, {"Q8_0", GGML_TYPE_Q8_0}, {"Q2_K", GGML_TYPE_Q2_K},
             {"Q3_K", GGML_TYPE_Q3_K}, {"Q4_K", GGML_TYPE_Q4_K}, {"Q5_K", GGML_TYPE_Q5_K},
             {"Q6_K", GGML_TYPE_Q6_K}};
    const char *src = getenv("M40LLM_SOURCE_DIR");
    if (!src) src = ".";
    int found = 0;
    for (size_t k = 0; k < sizeof V / sizeof V[0]; k++) {
        char p[1024];
        size_t nraw = 0, nref = 0;
        snprintf(p, sizeof p, "%s/tests/data/quant/%s.bin", src, V[k].name);
        char *raw = read_file(p, &nraw);
        snprintf(p, sizeof p, "%s/tests/data/quant/%s.f32", src, V[k].name);
        float *ref = read_f32(p, &nref);
        if (!raw || !ref) {
            free(raw);
            free(ref);
            continue;
        }
        found++;
        const int64_t n = (int64_t)nref;
        assert_int_equal(quant_row_bytes(V[k].type, n), nraw);
        float *y = dq(V[k].type, raw, n);
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&y[i], &ref[i], 4) != 0)
                fail_msg("%s[%ld]: %g, gguf-py %g", V[k].name, (long)i, y[i], ref[i]);
        float *x = xmalloc((size_t)n * sizeof(float));
        fill_random(x, (size_t)n, 3, 1.0f);
        double d = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) d += (double)ref[i] * x[i], mag += fabs(ref[i] * x[i]);
        assert_true(fabs(quant_dot(V[k].type, raw, x, n) - d) <= 1e-5 * mag);
        free(x), free(y), free(raw), free(ref);
    }
    if (!found) TEST_SKIP("tests/data/quant vectors not found under %s", src);
}

static void test_traits(void **state) {
    (void)state;
    assert_int_equal(quant_row_bytes(GGML_TYPE_Q4_0, 64), 36);
    assert_int_equal(quant_row_bytes(GGML_TYPE_Q6_K, 512), 420);
    assert_int_equal(quant_row_bytes(GGML_TYPE_Q4_K, 100), 0);
    assert_int_equal(quant_row_bytes(GGML_TYPE_F16, 3), 6);
    assert_int_equal(quant_block_size(GGML_TYPE_Q3_K), 256);
    assert_false(quant_supported(GGML_TYPE_IQ2_XS));
    assert_false(quant_supported(GGML_TYPE_Q8_1));
    for (int t = 0; t < N_TYPES; t++) assert_true(quant_can_quantize(ALL_TYPES[t]));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0_q4_1),
        cmocka_unit_test(test_q5),
        cmocka_unit_test(test_q2_k),
        cmocka_unit_test(test_q3_k),
        cmocka_unit_test(test_q4_k_q5_k),
        cmocka_unit_test(test_q6_k),
        cmocka_unit_test(test_dot_matvec),
        cmocka_unit_test(test_matmul_exact),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_kquant_vs_rtn),
        cmocka_unit_test(test_legacy_exact),
        cmocka_unit_test(test_traits),
        cmocka_unit_test(test_gguf_py_vectors),
    };
    return TEST_MAIN(tests);
}
