/* test_gpu_matvec.c - the CUDA matvec family (cuda_matvec, cuda_dequant_rows,
 * cuda_get_rows) against the CPU reference in src/quant, for every weight
 * type. Skipped (exit 77) when built without CUDA or when no GPU is present. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

#ifdef M40LLM_HAVE_CUDA
#include "cuda/cuda_test_hooks.h"

static const uint32_t k_types[] = {
    GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
    GGML_TYPE_Q5_1, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
};
#define N_TYPES (sizeof(k_types) / sizeof(k_types[0]))

/* rows x cols shapes: odd row counts (partial blocks of warps), rows that
 * are and are not 16-byte aligned, several tiles per row and partial tiles. */
typedef struct Shape {
    int rows, cols;
} Shape;
static const Shape k_shapes[] = {{67, 512}, {33, 2304}, {130, 1280}, {9, 4352}};
#define N_SHAPES (sizeof(k_shapes) / sizeof(k_shapes[0]))

static int gpu_present(void) { return cuda_test_device_count() > 0; }

/* Random weights quantized to `type` (rows of ggml_row_size bytes). */
static uint8_t *make_weights(uint32_t type, int rows, int cols, uint64_t seed) {
    const size_t rb = ggml_row_size(type, (uint64_t)cols);
    assert_true(rb > 0);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *f = malloc(sizeof(float) * (size_t)cols);
    assert_non_null(w);
    assert_non_null(f);
    for (int r = 0; r < rows; r++) {
        fill_random(f, (size_t)cols, seed * 7919u + (uint64_t)r, 1.0f);
        /* a few rows with a larger scale, so blocks differ in magnitude */
        if (r % 5 == 1)
            for (int c = 0; c < cols; c++) f[c] *= 3.0f;
        quant_quantize_row(type, f, w + rb * (size_t)r, cols);
    }
    free(f);
    return w;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* Checks one matvec call against quant_matvec; returns the max error
 * relative to max |ref|. */
static double check_matvec(uint32_t type, int rows, int cols, int n, const uint8_t *W, int misalign,
                           int with_bias, int accumulate, uint64_t seed) {
    float *X = malloc(sizeof(float) * (size_t)n * (size_t)cols);
    float *Y = malloc(sizeof(float) * (size_t)n * (size_t)rows);
    float *ref = malloc(sizeof(float) * (size_t)n * (size_t)rows);
    float *bias = with_bias ? malloc(sizeof(float) * (size_t)rows) : NULL;
    assert_non_null(X);
    assert_non_null(Y);
    assert_non_null(ref);
    fill_random(X, (size_t)n * (size_t)cols, seed, 1.0f);
    if (bias) fill_random(bias, (size_t)rows, seed + 1, 2.0f);
    if (accumulate) fill_random(Y, (size_t)n * (size_t)rows, seed + 2, 2.0f);
    for (int i = 0; i < n; i++) {
        float *yr = ref + (size_t)i * (size_t)rows;
        quant_matvec(type, W, cols, 0, rows, X + (size_t)i * (size_t)cols, yr);
        for (int r = 0; r < rows; r++) {
            if (bias) yr[r] += bias[r];
            if (accumulate) yr[r] += Y[(size_t)i * (size_t)rows + (size_t)r];
        }
    }
    assert_int_equal(cuda_test_matvec(type, rows, cols, n, W, misalign, X, bias, accumulate, Y), 0);
    const size_t total = (size_t)n * (size_t)rows;
    const double scale = fmax(max_abs(ref, total), 1e-6);
    double err = 0;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(Y[i])) {
            fprintf(stderr, "%s %dx%d n=%d: Y[%zu] = %g (not written?)\n", ggml_type_name(type),
                    rows, cols, n, i, Y[i]);
            fail();
        }
        err = fmax(err, fabs((double)Y[i] - (double)ref[i]) / scale);
    }
    free(X);
    free(Y);
    free(ref);
    free(bias);
    return err;
}

static void matvec_all(const char *path) {
    static const int ns[] = {1, 2, 3, 4, 8, 16};
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        double worst = 0;
        for (size_t s = 0; s < N_SHAPES; s++) {
            const Shape sh = k_shapes[s];
            uint8_t *W = make_weights(type, sh.rows, sh.cols, 100 + t * 10 + s);
            for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
                const double e = check_matvec(type, sh.rows, sh.cols, ns[k], W, 0, 0, 0,
                                              1000 + t * 100 + s * 10 + k);
                if (e > 1e-3)
                    fprintf(stderr, "%s %dx%d n=%d: max rel error %.3g\n", ggml_type_name(type),
                            sh.rows, sh.cols, ns[k], e);
                assert_true(e <= 1e-3);
                worst = fmax(worst, e);
            }
            /* unaligned rows (2-byte offset), bias and accumulate */
            const double e1 = check_matvec(type, sh.rows, sh.cols, 1, W, 2, 1, 1, 77 + s);
            const double e2 = check_matvec(type, sh.rows, sh.cols, 5, W, 6, 1, 0, 78 + s);
            const double e3 = check_matvec(type, sh.rows, sh.cols, 16, W, 0, 0, 1, 79 + s);
            assert_true(e1 <= 1e-3);
            assert_true(e2 <= 1e-3);
            assert_true(e3 <= 1e-3);
            worst = fmax(worst, fmax(e1, fmax(e2, e3)));
            free(W);
        }
        fprintf(stderr, "matvec %-5s %s worst max-rel error %.3g\n", ggml_type_name(type), path,
                worst);
    }
}

/* The default kernels: on sm_61+ one vector through split Q8_0/Q4_0 takes
 * the integer dot products (also the gate/up), everything else the FP32
 * kernels. */
static void test_matvec_all(void **state) {
    (void)state;
    if (!gpu_present()) TEST_SKIP("no CUDA device");
    const int dp = cuda_test_set_dp(-1);
    matvec_all(dp ? "(int dp)" : "(fp32)");
}

/* The FP32 kernels only (the M40's path) where the default used dp2a. */
static void test_matvec_all_fp32(void **state) {
    (void)state;
    if (!gpu_present()) TEST_SKIP("no CUDA device");
    if (!cuda_test_set_dp(-1))
        TEST_SKIP("no integer dot product path here: test_matvec_all ran FP32");
    assert_int_equal(cuda_test_set_dp(0), 0);
    matvec_all("(fp32)");
    cuda_test_set_dp(-1);
}

/* F16 / BF16 rows whose length is not a multiple of 8 (scalar path), and
 * a tall matrix through the batched kernels. */
static void test_matvec_half_odd(void **state) {
    (void)state;
    if (!gpu_present()) TEST_SKIP("no CUDA device");
    const uint32_t types[] = {GGML_TYPE_F16, GGML_TYPE_BF16};
    for (int t = 0; t < 2; t++) {
        uint8_t *W = make_weights(types[t], 37, 20, 5 + t);
        for (int n = 1; n <= 16; n *= 2) {
            assert_true(check_matvec(types[t], 37, 20, n, W, 0, 1, 0, 300 + n) <= 1e-3);
            assert_true(check_matvec(types[t], 37, 20, n, W, 2, 0, 1, 400 + n) <= 1e-3);
        }
        free(W);
        /* >= 8192 rows (the batched kernels' 32-row CTAs) and 129 units per
         * row (the column splits end in a partial tile), n = 3..8 */
        W = make_weights(types[t], 8200, 1032, 7 + t);
        static const int ns[] = {3, 4, 5, 8};
        for (int k = 0; k < 4; k++)
            assert_true(check_matvec(types[t], 8200, 1032, ns[k], W, 0, k & 1, k >> 1, 500 + k) <=
                        1e-3);
        free(W);
    }
}

/* Gate|up matvec with SwiGLU in the epilogue (one decode token): bit-equal
 * to cuda_matvec + cuda_swiglu on the device, and close to the CPU
 * reference. The fused kernel must take at least the 8 fast-path types. */
static void glu_all(void) {
    int fused = 0;
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        for (size_t s = 0; s < N_SHAPES; s++) {
            const int ffn = k_shapes[s].rows, cols = k_shapes[s].cols;
            uint8_t *W = make_weights(type, 2 * ffn, cols, 500 + t * 10 + s);
            float *X = malloc(sizeof(float) * (size_t)cols);
            float *gu = malloc(sizeof(float) * (size_t)(2 * ffn));
            float *hf = malloc(sizeof(float) * (size_t)ffn);
            float *hr = malloc(sizeof(float) * (size_t)ffn);
            assert_non_null(X);
            assert_non_null(gu);
            assert_non_null(hf);
            assert_non_null(hr);
            fill_random(X, (size_t)cols, 600 + s, 1.0f);
            const int rc = cuda_test_matvec_glu(type, ffn, cols, W, X, hf, hr);
            assert_true(rc >= 0);
            if (rc == 1) {
                fused++;
                if (memcmp(hf, hr, sizeof(float) * (size_t)ffn) != 0) {
                    for (int i = 0; i < ffn; i++)
                        if (memcmp(&hf[i], &hr[i], 4) != 0) {
                            fprintf(stderr, "glu %s %dx%d: h[%d] fused %.9g vs unfused %.9g\n",
                                    ggml_type_name(type), ffn, cols, i, hf[i], hr[i]);
                            break;
                        }
                    fail();
                }
            }
            quant_matvec(type, W, cols, 0, 2 * ffn, X, gu);
            double m = 1e-6, err = 0;
            for (int i = 0; i < ffn; i++) {
                const double g = gu[i], h = g / (1.0 + exp(-g)) * gu[ffn + i];
                m = fmax(m, fabs(h));
                err = fmax(err, isfinite(hr[i]) ? fabs(hr[i] - h) : 1e30);
            }
            if (err / m > 1e-3)
                fprintf(stderr, "glu %s %dx%d: max rel error %.3g\n", ggml_type_name(type), ffn,
                        cols, err / m);
            assert_true(err / m <= 1e-3);
            free(W);
            free(X);
            free(gu);
            free(hf);
            free(hr);
        }
    }
    fprintf(stderr, "glu: fused kernel ran for %d of %zu type/shape cases\n", fused,
            N_TYPES * N_SHAPES);
    assert_true(fused >= 8 * (int)N_SHAPES);
}

static void test_matvec_glu(void **state) {
    (void)state;
    if (!gpu_present()) TEST_SKIP("no CUDA device");
    if (cuda_test_set_dp(-1)) { /* integer dot products, then the FP32 kernels */
        glu_all();
        cuda_test_set_dp(0);
    }
    glu_all();
    cuda_test_set_dp(-1);
}

static void test_dequant_and_get_rows(void **state) {
    (void)state;
    if (!gpu_present()) TEST_SKIP("no CUDA device");
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        for (size_t s = 0; s < N_SHAPES; s++) {
            const Shape sh = k_shapes[s];
            const size_t rb = ggml_row_size(type, (uint64_t)sh.cols);
            uint8_t *W = make_weights(type, sh.rows, sh.cols, 900 + t * 10 + s);
            float *ref = malloc(sizeof(float) * (size_t)sh.rows * (size_t)sh.cols);
            float *out = malloc(sizeof(float) * (size_t)sh.rows * (size_t)sh.cols);
            assert_non_null(ref);
            assert_non_null(out);
            for (int r = 0; r < sh.rows; r++)
                quant_dequant_row(type, W + rb * (size_t)r, ref + (size_t)r * (size_t)sh.cols,
                                  sh.cols);
            /* rows [r0, r1): a middle slice */
            const int r0 = sh.rows / 3, r1 = sh.rows - 1;
            assert_int_equal(cuda_test_dequant_rows(type, sh.rows, sh.cols, W, r0, r1, out), 0);
            const size_t cnt = (size_t)(r1 - r0) * (size_t)sh.cols;
            for (size_t i = 0; i < cnt; i++) {
                if (memcmp(&out[i], &ref[(size_t)r0 * (size_t)sh.cols + i], 4) != 0) {
                    fprintf(stderr, "dequant_rows %s %dx%d: element %zu: %.9g vs %.9g\n",
                            ggml_type_name(type), sh.rows, sh.cols, i, out[i],
                            ref[(size_t)r0 * (size_t)sh.cols + i]);
                    fail();
                }
            }
            /* get_rows: repeated and out-of-order ids */
            int32_t ids[7];
            for (int i = 0; i < 7; i++) ids[i] = (int32_t)((i * 5 + 3) % sh.rows);
            ids[6] = ids[1];
            assert_int_equal(cuda_test_get_rows(type, sh.rows, sh.cols, W, ids, 7, out), 0);
            for (int i = 0; i < 7; i++) {
                const float *a = out + (size_t)i * (size_t)sh.cols;
                const float *b = ref + (size_t)ids[i] * (size_t)sh.cols;
                if (memcmp(a, b, sizeof(float) * (size_t)sh.cols) != 0) {
                    fprintf(stderr, "get_rows %s: row %d (id %d) differs\n", ggml_type_name(type),
                            i, ids[i]);
                    fail();
                }
            }
            free(W);
            free(ref);
            free(out);
        }
    }
    /* F16 with an odd row length */
    {
        uint8_t *W = make_weights(GGML_TYPE_F16, 11, 20, 3);
        float ref[11 * 20], out[11 * 20];
        for (int r = 0; r < 11; r++) quant_dequant_row(GGML_TYPE_F16, W + 40 * r, ref + 20 * r, 20);
        assert_int_equal(cuda_test_dequant_rows(GGML_TYPE_F16, 11, 20, W, 0, 11, out), 0);
        assert_memory_equal(out, ref, sizeof(ref));
        free(W);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matvec_all),           cmocka_unit_test(test_matvec_all_fp32),
        cmocka_unit_test(test_matvec_half_odd),      cmocka_unit_test(test_matvec_glu),
        cmocka_unit_test(test_dequant_and_get_rows),
    };
    return TEST_MAIN(tests);
}

#else /* built without CUDA */

static void test_no_cuda(void **state) {
    (void)state;
    TEST_SKIP("m40llm was built without CUDA");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_cuda)};
    return TEST_MAIN(tests);
}

#endif
