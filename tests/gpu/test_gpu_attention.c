/* test_gpu_attention.c - the CUDA attention kernels alone (flash-decoding
 * spans, merged by the last block to finish) vs a double-precision CPU
 * attention over the same FP16 cache: head_dim 8/64/80/96/128/256, GQA ratios 1..8, lengths
 * 1..1024, spans that cut the sequence into 1..64 pieces; the prefill path (fixed spans) and the
 * decode path (one sequence per item, the new K/V row stored by the kernel, adaptive spans of one
 * or more staged chunks) with and without its early start. Every output element is checked (the
 * output is NaN-poisoned before the run), and the decode path's stored rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "engine/backend.h"
#include "testutil.h"
#ifdef M40LLM_HAVE_CUDA
#include "cuda/cuda_test_hooks_core.h"
#endif

#ifdef M40LLM_HAVE_CUDA
typedef struct AttnCase {
    int hd, n_heads, n_kv, n_ctx, span;
} AttnCase;

static const AttnCase g_cases[] = {
    {64, 4, 4, 40, 256},   {64, 8, 1, 300, 64},    {80, 4, 2, 257, 256},
    {96, 6, 2, 513, 128},  {128, 8, 8, 1024, 256}, {128, 8, 1, 1024, 16},
    {128, 32, 4, 200, 32}, {256, 4, 2, 100, 50},   {64, 32, 32, 7, 256},
};

static void ref_attention(const float *q, const float *k, const float *v, int pos, int n_heads,
                          int n_kv, int hd, float *out) {
    const int G = n_heads / n_kv, kvd = n_kv * hd;
    double *sc = (double *)malloc(sizeof(double) * (size_t)(pos + 1));
    for (int h = 0; h < n_heads; h++) {
        const int kh = h / G;
        double mx = -INFINITY;
        for (int p = 0; p <= pos; p++) {
            double d = 0;
            for (int i = 0; i < hd; i++)
                d += (double)q[h * hd + i] * k[(size_t)p * kvd + kh * hd + i];
            sc[p] = d / sqrt((double)hd);
            mx = fmax(mx, sc[p]);
        }
        double sum = 0;
        for (int p = 0; p <= pos; p++) sum += (sc[p] = exp(sc[p] - mx));
        for (int i = 0; i < hd; i++) {
            double o = 0;
            for (int p = 0; p <= pos; p++) o += sc[p] * v[(size_t)p * kvd + kh * hd + i];
            out[h * hd + i] = (float)(o / sum);
        }
    }
    free(sc);
}

#endif

static void test_attention_grid(void **state) {
    (void)state;
#ifndef M40LLM_HAVE_CUDA
    TEST_SKIP("built without CUDA");
#else
    char why[256];
    if (!backend_cuda_available(why, sizeof why)) TEST_SKIP("no GPU: %s", why);
    for (size_t ci = 0; ci < sizeof g_cases / sizeof g_cases[0]; ci++) {
        const AttnCase *c = &g_cases[ci];
        const int kvd = c->n_kv * c->hd, qd = c->n_heads * c->hd;
        const size_t nkv = (size_t)c->n_ctx * kvd;
        float *kf = (float *)malloc(nkv * 4), *vf = (float *)malloc(nkv * 4);
        uint16_t *kh = (uint16_t *)malloc(nkv * 2), *vh = (uint16_t *)malloc(nkv * 2);
        fill_random(kf, nkv, 11 + ci, 2.0f);
        fill_random(vf, nkv, 23 + ci, 1.0f);
        for (size_t i = 0; i < nkv; i++) {
            kh[i] = f32_to_fp16(kf[i]);
            vh[i] = f32_to_fp16(vf[i]);
            kf[i] = fp16_to_f32(kh[i]);
            vf[i] = fp16_to_f32(vh[i]);
        }
        /* items: lengths 1, 2, a span boundary, ..., n_ctx */
        int pos[8] = {0, 1, c->span - 1, c->span, c->n_ctx / 2, c->n_ctx - 2, c->n_ctx - 1, 3};
        const int n_items = 8;
        for (int i = 0; i < n_items; i++) {
            if (pos[i] < 0) pos[i] = 0;
            if (pos[i] >= c->n_ctx) pos[i] = c->n_ctx - 1;
        }
        float *q = (float *)malloc(sizeof(float) * n_items * qd);
        float *out = (float *)malloc(sizeof(float) * n_items * qd);
        float *ref = (float *)malloc(sizeof(float) * n_items * qd);
        fill_random(q, (size_t)n_items * qd, 37 + ci, 1.5f);
        for (int i = 0; i < n_items; i++)
            ref_attention(q + (size_t)i * qd, kf, vf, pos[i], c->n_heads, c->n_kv, c->hd,
                          ref + (size_t)i * qd);
        static const char *const mode[3] = {"prefill", "decode", "decode, no early start"};
        for (int dec = 0; dec < 3; dec++) {
            assert_int_equal(cuda_test_attention(q, kh, vh, pos, n_items, c->n_ctx, c->n_heads,
                                                 c->n_kv, c->hd, c->span, dec, out),
                             0);
            for (size_t i = 0; i < (size_t)n_items * qd; i++) assert_false(isnan(out[i]));
            double err = rel_max(out, ref, (size_t)n_items * qd);
            printf("  hd %3d heads %2d kv %2d ctx %4d span %3d %s: rel_max %.2e\n", c->hd,
                   c->n_heads, c->n_kv, c->n_ctx, c->span, mode[dec], err);
            assert_true(err <= 1e-4);
        }
        free(kf);
        free(vf);
        free(kh);
        free(vh);
        free(q);
        free(out);
        free(ref);
    }
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attention_grid)};
    return TEST_MAIN(tests);
}
