/* test_cpu_exact.c - the CPU backend against an independent float64 forward
 * pass written from the math (no KV cache, full causal attention matrices),
 * computed from the dequantized weights of each test model.
 *
 * This is the accuracy gate of the CPU path's FP32 arithmetic: with an FP32
 * KV cache its logits must be within 1e-4 relative L2 of exact math at every
 * prompt position. The only deliberate approximation of the default path is
 * the FP16 KV cache; the reference can emulate that rounding too (round K
 * after RoPE and V to FP16), which then agrees closer (docs/numerics.md). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "testutil.h"

#include "base/util.h"
#include "cpu/cpu.h"
#include "engine/backend.h"
#include "model/model.h"
#include "quant/quant.h"

/* A weight matrix dequantized to double: (rows, cols) row-major. */
static double *deq(const WTensor *w) {
    const int64_t cols = w->ne[0], rows = w->ne[1];
    double *out = xmalloc((size_t)(rows * cols) * sizeof(double));
    float *tmp = xmalloc((size_t)cols * sizeof(float));
    const size_t rb = ggml_row_size(w->type, (uint64_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        quant_dequant_row(w->type, (const uint8_t *)w->data + (size_t)r * rb, tmp, cols);
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = tmp[c];
    }
    free(tmp);
    return out;
}

static double *vec(const WTensor *w, int64_t n) {
    if (!w->data) return NULL;
    double *out = xmalloc((size_t)n * sizeof(double));
    const float *f = w->data;
    for (int64_t i = 0; i < n; i++) out[i] = f[i];
    return out;
}

/* y (rows) = W (rows, cols) x (+ b) */
static void mv(double *y, const double *W, const double *x, const double *b, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = b ? b[r] : 0.0;
        const double *w = W + (size_t)r * cols;
        for (int c = 0; c < cols; c++) s += w[c] * x[c];
        y[r] = s;
    }
}

static void rmsnorm(double *out, const double *x, const double *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * s * w[i];
}

static double fp16_round(double v) { return fp16_to_f32(f32_to_fp16((float)v)); }

/* Logits (n, n_vocab) of every position of tokens[0..n) from position 0.
 * kv_f16: round K (after RoPE) and V to FP16 as the backend's cache does. */
static double *forward64(const Model *m, const int32_t *tok, int n, int kv_f16) {
    const ModelConfig *c = &m->cfg;
    const int D = c->dim, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    const int qd = nh * hd, kvd = nkv * hd, F = c->ffn_dim, V = c->n_vocab;
    double *x = xcalloc((size_t)n * D, sizeof(double));
    double *xn = xmalloc((size_t)D * sizeof(double));
    double *q = xmalloc((size_t)n * qd * sizeof(double));
    double *k = xmalloc((size_t)n * kvd * sizeof(double));
    double *v = xmalloc((size_t)n * kvd * sizeof(double));
    double *ao = xmalloc((size_t)qd * sizeof(double));
    double *o = xmalloc((size_t)D * sizeof(double));
    double *g = xmalloc((size_t)F * sizeof(double)), *u = xmalloc((size_t)F * sizeof(double));
    double *att = xmalloc((size_t)n * sizeof(double));

    double *E = deq(&m->tok_embd);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < D; i++) x[(size_t)t * D + i] = E[(size_t)tok[t] * D + i];
    free(E);

    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        double *Wq = deq(&L->wq), *Wk = deq(&L->wk), *Wv = deq(&L->wv), *Wo = deq(&L->wo);
        double *bq = vec(&L->bq, qd), *bk = vec(&L->bk, kvd), *bv = vec(&L->bv, kvd);
        double *an = vec(&L->attn_norm, D), *fn = vec(&L->ffn_norm, D);
        for (int t = 0; t < n; t++) {
            rmsnorm(xn, x + (size_t)t * D, an, D, c->norm_eps);
            mv(q + (size_t)t * qd, Wq, xn, bq, qd, D);
            mv(k + (size_t)t * kvd, Wk, xn, bk, kvd, D);
            mv(v + (size_t)t * kvd, Wv, xn, bv, kvd, D);
            /* RoPE: pair (a, b) of each head rotated by pos * scale * base^(-2i/rope_dim) */
            for (int h = 0; h < nh + nkv; h++) {
                double *p = h < nh ? q + (size_t)t * qd + (size_t)h * hd
                                   : k + (size_t)t * kvd + (size_t)(h - nh) * hd;
                for (int i = 0; i < c->rope_dim / 2; i++) {
                    const int a = c->rope_neox ? i : 2 * i;
                    const int b = c->rope_neox ? i + c->rope_dim / 2 : 2 * i + 1;
                    const double th = (double)t * c->rope_scale *
                                      pow((double)c->rope_base, -2.0 * i / c->rope_dim);
                    const double x0 = p[a], x1 = p[b];
                    p[a] = x0 * cos(th) - x1 * sin(th);
                    p[b] = x0 * sin(th) + x1 * cos(th);
                }
            }
            if (kv_f16)
                for (int i = 0; i < kvd; i++) {
                    k[(size_t)t * kvd + i] = fp16_round(k[(size_t)t * kvd + i]);
                    v[(size_t)t * kvd + i] = fp16_round(v[(size_t)t * kvd + i]);
                }
        }
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < nh; h++) {
                const int kh = h / (nh / nkv);
                const double *qh = q + (size_t)t * qd + (size_t)h * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = k + (size_t)j * kvd + (size_t)kh * hd;
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += qh[i] * kj[i];
                    att[j] = s / sqrt((double)hd);
                    if (att[j] > mx) mx = att[j];
                }
                for (int j = 0; j <= t; j++) {
                    att[j] = exp(att[j] - mx);
                    sum += att[j];
                }
                for (int i = 0; i < hd; i++) {
                    double s = 0;
                    for (int j = 0; j <= t; j++)
                        s += att[j] * v[(size_t)j * kvd + (size_t)kh * hd + i];
                    ao[(size_t)h * hd + i] = s / sum;
                }
            }
            mv(o, Wo, ao, NULL, D, qd);
            for (int i = 0; i < D; i++) x[(size_t)t * D + i] += o[i];
        }
        free(Wq);
        free(Wk);
        free(Wv);
        free(Wo);
        double *Wg = deq(&L->w_gate), *Wu = deq(&L->w_up), *Wd = deq(&L->w_down);
        for (int t = 0; t < n; t++) {
            rmsnorm(xn, x + (size_t)t * D, fn, D, c->norm_eps);
            mv(g, Wg, xn, NULL, F, D);
            mv(u, Wu, xn, NULL, F, D);
            for (int i = 0; i < F; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            mv(o, Wd, g, NULL, D, F);
            for (int i = 0; i < D; i++) x[(size_t)t * D + i] += o[i];
        }
        free(Wg);
        free(Wu);
        free(Wd);
        free(bq);
        free(bk);
        free(bv);
        free(an);
        free(fn);
    }
    double *Wout = deq(&m->output), *on = vec(&m->output_norm, D);
    double *logits = xmalloc((size_t)n * V * sizeof(double));
    for (int t = 0; t < n; t++) {
        rmsnorm(xn, x + (size_t)t * D, on, D, c->norm_eps);
        mv(logits + (size_t)t * V, Wout, xn, NULL, V, D);
    }
    free(Wout);
    free(on);
    free(x);
    free(xn);
    free(q);
    free(k);
    free(v);
    free(ao);
    free(o);
    free(g);
    free(u);
    free(att);
    return logits;
}

static double rel_l2_d(const float *a, const double *ref, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        const double d = a[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

typedef struct Worst {
    double plain, kv16, compat, kv32;
} Worst;

/* Compares all-position logits of one prompt; prints and accumulates. */
static void check_prompt(const char *label, const Model *m, const int32_t *tk, int n, Worst *w) {
    const int V = m->cfg.n_vocab;
    double *ref = forward64(m, tk, n, 0);
    double *ref16 = forward64(m, tk, n, 1);
    BackendParams p;
    memset(&p, 0, sizeof p);
    p.n_ctx = n + 1;
    p.n_seq = 1;
    p.n_threads = 1;
    p.device = "cpu";
    Err e = {0};
    Backend *b = backend_cpu_create(m, &p, &e);
    if (!b) fail_msg("backend_cpu_create: %s", e.msg);
    float *lg = xmalloc((size_t)n * V * sizeof(float));
    /* mode 0: FP32 KV cache, FP32 attention; 1: FP16 KV cache (the default),
     * FP32 attention; 2: llama.cpp-compatible (FP16 KV, FP16 attention rounding) */
    double e_kv32 = 0, e_plain = 0, e_kv16 = 0, e_compat = 0;
    for (int mode = 0; mode < 3; mode++) {
        if (mode == 0) assert_int_equal(cpu_backend_set_kv_f32(b, 1, &e), 0);
        if (mode == 1) assert_int_equal(cpu_backend_set_kv_f32(b, 0, &e), 0);
        if (mode == 2) cpu_backend_set_llamacpp_attention(b, 1);
        assert_int_equal(b->prefill(b, 0, tk, n, 0, lg, 1, &e), 0);
        for (int t = 0; t < n; t++) {
            const float *row = lg + (size_t)t * V;
            const double a = rel_l2_d(row, ref + (size_t)t * V, V);
            if (mode == 0) {
                e_kv32 = a > e_kv32 ? a : e_kv32;
            } else if (mode == 1) {
                const double c = rel_l2_d(row, ref16 + (size_t)t * V, V);
                e_plain = a > e_plain ? a : e_plain;
                e_kv16 = c > e_kv16 ? c : e_kv16;
            } else {
                e_compat = a > e_compat ? a : e_compat;
            }
        }
    }
    fprintf(stderr,
            "  %-26s %3d pos: rel L2 vs float64: FP32 KV %.3g | FP16 KV (default) %.3g (vs float64 "
            "with "
            "FP16 KV %.3g) | llama.cpp-compatible %.3g\n",
            label, n, e_kv32, e_plain, e_kv16, e_compat);
    if (e_plain > w->plain) w->plain = e_plain;
    if (e_kv16 > w->kv16) w->kv16 = e_kv16;
    if (e_compat > w->compat) w->compat = e_compat;
    if (e_kv32 > w->kv32) w->kv32 = e_kv32;
    free(lg);
    b->free(b);
    free(ref);
    free(ref16);
}

/* The gate: FP32 arithmetic with an FP32 KV cache is within 1e-4 of exact
 * math (observed <= 9e-7, so 1e-5 is asserted). The FP16 cache alone costs ~2-4e-4 on these
 * models (one FP16 ulp of a K/V element, amplified); emulating that rounding
 * in the reference recovers most of it, but not all: FP32-level differences
 * flip individual roundings, which these random-weight models amplify. */
static void check_bounds(const Worst *w) {
    assert_true(w->kv32 <= 1e-5);   /* observed <= 8.9e-7 */
    assert_true(w->plain <= 1e-3);  /* observed <= 3.8e-4 */
    assert_true(w->kv16 <= 2e-4);   /* observed <= 9.9e-5 */
    assert_true(w->compat <= 2e-3); /* observed <= 1.1e-3 */
}

/* Every reference/<model>.p<N>.json prompt, all positions. */
static void test_exact_reference_prompts(void **state) {
    (void)state;
    char dir[2048];
    if (testdata_file(dir, sizeof dir, "reference") != 0) TEST_SKIP("no reference dir");
    size_t n_names;
    char **names = testdata_names("reference", ".json", &n_names);
    assert_non_null(names);
    Worst w = {0, 0, 0, 0};
    int n_run = 0;
    for (size_t i = 0; i < n_names; i++) {
        char path[8192], rel[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_error_t je;
        json_t *js = json_load_file(path, 0, &je);
        if (!js) fail_msg("%s: %s", path, je.text);
        const char *model_name = json_string_value(json_object_get(js, "model"));
        json_t *toks = json_object_get(js, "prompt_tokens");
        assert_non_null(model_name);
        assert_true(json_is_array(toks));
        snprintf(rel, sizeof rel, "models/%s", model_name);
        Model *m = testdata_model(rel);
        if (m) {
            const int n = (int)json_array_size(toks);
            int32_t *tk = xmalloc((size_t)n * sizeof *tk);
            for (int k = 0; k < n; k++)
                tk[k] = (int32_t)json_integer_value(json_array_get(toks, k));
            check_prompt(names[i], m, tk, n, &w);
            n_run++;
            free(tk);
            model_free(m);
        }
        json_decref(js);
    }
    free_names(names, n_names);
    fprintf(stderr,
            "  %d prompts, worst rel L2 vs float64: FP32 KV %.3g, FP16 KV (default) %.3g (%.3g vs "
            "float64 "
            "with FP16 KV), llama.cpp-compatible %.3g\n",
            n_run, w.kv32, w.plain, w.kv16, w.compat);
    if (n_run == 0) TEST_SKIP("no reference model present");
    check_bounds(&w);
}

static void stories(const char *p) {
    Model *m = testdata_model("stories/stories260K.gguf");
    if (!m) TEST_SKIP("stories260K.gguf missing");
    char rel[256];
    snprintf(rel, sizeof rel, "stories/stories260K.%s.tokens.txt", p);
    int32_t tk[256];
    const int n = testdata_tokens(rel, tk, 256);
    assert_true(n >= 0);
    Worst w = {0, 0, 0, 0};
    snprintf(rel, sizeof rel, "stories260K %s", p);
    check_prompt(rel, m, tk, n, &w);
    check_bounds(&w);
    model_free(m);
}

static void test_exact_stories_p1(void **state) {
    (void)state;
    stories("p1");
}
static void test_exact_stories_p2(void **state) {
    (void)state;
    stories("p2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_reference_prompts),
        cmocka_unit_test(test_exact_stories_p1),
        cmocka_unit_test(test_exact_stories_p2),
    };
    return TEST_MAIN(tests);
}
