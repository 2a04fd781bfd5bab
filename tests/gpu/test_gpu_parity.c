/* test_gpu_parity.c - CUDA backend vs the CPU backend on random models of
 * many shapes: head_dim 64/80/96/128, GQA ratios 1..8, llama and qwen2
 * (NeoX RoPE, biases), linear RoPE scaling and partial RoPE, prompt lengths
 * 1..1000 (prefill in one call and in chunks), decode steps past the 256-
 * position attention span, cuBLAS on and off. Metric: max |gpu - cpu| /
 * max |cpu| over all logits <= 1e-3; the KV caches agree to FP16 rounding. */
#include "gpu_testmodel.h"

typedef struct ParityCase {
    TestShape s;
    int prompt; /* tokens prefilled */
    int decode; /* decode steps after the prompt */
    int use_cublas;
    int chunks; /* > 1: the GPU also prefills the prompt in this many calls */
} ParityCase;

#define LL(hd, h, kv, dim_) "llama", (dim_), 2, (h), (kv), (hd)
#define QW(hd, h, kv, dim_) "qwen2", (dim_), 2, (h), (kv), (hd)

static ParityCase g_cases[] = {
    {{LL(64, 4, 1, 256), 192, 300, 128, GGML_TYPE_F16, 0, 0}, 33, 4, 1, 3},
    {{LL(64, 4, 4, 256), 192, 300, 64, GGML_TYPE_F16, 0, 0}, 1, 3, 0, 1},
    {{QW(80, 4, 2, 320), 256, 300, 64, GGML_TYPE_F16, 0, 0}, 20, 3, 1, 2},
    {{LL(96, 6, 2, 576), 256, 300, 512, GGML_TYPE_F16, 0, 0}, 300, 3, 1, 4},
    {{LL(128, 8, 8, 1024), 256, 300, 256, GGML_TYPE_F16, 0, 0}, 100, 2, 0, 1},
    {{QW(128, 8, 1, 1024), 256, 300, 1024, GGML_TYPE_F16, 0, 0}, 1000, 4, 1, 2},
    {{LL(128, 8, 2, 1024), 256, 300, 128, GGML_TYPE_Q8_0, 4.0f, 64}, 40, 3, 1, 1},
    {{LL(64, 8, 2, 512), 256, 300, 128, GGML_TYPE_Q4_0, 0, 0}, 64, 3, 0, 2},
    {{QW(64, 4, 2, 256), 256, 300, 128, GGML_TYPE_BF16, 0, 0}, 17, 3, 0, 1},
};

static void check_close(const char *what, const float *gpu, const float *cpu, size_t n,
                        double tol) {
    for (size_t i = 0; i < n; i++) assert_false(isnan(gpu[i]));
    double err = rel_max(gpu, cpu, n);
    printf("    %-28s rel_max %.2e  rel_l2 %.2e\n", what, err, rel_l2(gpu, cpu, n));
    assert_true(err <= tol);
}

static void run_case(void **state) {
    const ParityCase *pc = (const ParityCase *)*state;
    if (!tm_have_gpu()) TEST_SKIP("no GPU");
    const TestShape *s = &pc->s;
    printf("  %s hd %d heads %d kv %d type %s prompt %d cuBLAS %s chunks %d\n", s->arch,
           s->head_dim, s->n_heads, s->n_kv_heads, ggml_type_name(s->wtype), pc->prompt,
           pc->use_cublas ? "on" : "off", pc->chunks);
    char *path = tm_write_model(s, 7 + (uint64_t)s->head_dim);
    Model *m = test_model_load(path);
    Err e = {{0}};
    const int V = m->cfg.n_vocab, L = pc->prompt;
    Backend *cpu = tm_backend(m, 0, s->ctx, 1, 1);
    Backend *gpu = tm_backend(m, 1, s->ctx, 1, pc->use_cublas);
    assert_non_null(cpu);
    assert_non_null(gpu);

    int32_t *tok = (int32_t *)malloc(sizeof(int32_t) * (size_t)(L + pc->decode));
    for (int i = 0; i < L; i++) tok[i] = (int32_t)((i * 7919 + 13) % V);
    float *lc = (float *)malloc(sizeof(float) * (size_t)L * V);
    float *lg = (float *)malloc(sizeof(float) * (size_t)L * V);
    for (size_t i = 0; i < (size_t)L * V; i++) lg[i] = NAN; /* poison */
    assert_int_equal(cpu->prefill(cpu, 0, tok, L, 0, lc, 1, &e), 0);
    assert_int_equal(gpu->prefill(gpu, 0, tok, L, 0, lg, 1, &e), 0);
    check_close("prefill all_logits", lg, lc, (size_t)L * V, 1e-3);

    /* KV cache of the last layer after the prompt */
    const size_t kvn = (size_t)L * m->cfg.n_kv_heads * m->cfg.head_dim;
    float *kc = (float *)malloc(kvn * 4), *vc = (float *)malloc(kvn * 4);
    float *kg = (float *)malloc(kvn * 4), *vg = (float *)malloc(kvn * 4);
    const int ll = m->cfg.n_layers - 1;
    assert_int_equal(cpu->kv_read(cpu, ll, 0, L, kc, vc, &e), 0);
    assert_int_equal(gpu->kv_read(gpu, ll, 0, L, kg, vg, &e), 0);
    check_close("kv cache K", kg, kc, kvn, 2e-3);
    check_close("kv cache V", vg, vc, kvn, 2e-3);

    if (pc->chunks > 1) {
        /* the same prompt in chunks, on the GPU only: last logits must agree */
        int pos = 0;
        float *last = (float *)malloc(sizeof(float) * V);
        for (int c = 0; c < pc->chunks; c++) {
            int n = c == pc->chunks - 1 ? L - pos : (L / pc->chunks) + c;
            if (n <= 0) continue;
            assert_int_equal(gpu->prefill(gpu, 0, tok + pos, n, pos, last, 0, &e), 0);
            pos += n;
        }
        check_close("chunked prefill (last)", last, lc + (size_t)(L - 1) * V, (size_t)V, 1e-3);
        free(last);
    }

    /* decode: both take the CPU's greedy token */
    float *dc = (float *)malloc(sizeof(float) * V), *dg = (float *)malloc(sizeof(float) * V);
    int32_t next = (int32_t)tm_argmax(lc + (size_t)(L - 1) * V, V);
    for (int st = 0; st < pc->decode && L + st < s->ctx; st++) {
        int seq = 0, pos = L + st;
        for (int i = 0; i < V; i++) dg[i] = NAN;
        assert_int_equal(cpu->decode(cpu, 1, &seq, &next, &pos, dc, &e), 0);
        assert_int_equal(gpu->decode(gpu, 1, &seq, &next, &pos, dg, &e), 0);
        char what[64];
        snprintf(what, sizeof what, "decode pos %d", pos);
        check_close(what, dg, dc, (size_t)V, 1e-3);
        next = (int32_t)tm_argmax(dc, V);
    }
    free(dc);
    free(dg);
    free(kc);
    free(vc);
    free(kg);
    free(vg);
    free(lc);
    free(lg);
    free(tok);
    backend_free(gpu);
    backend_free(cpu);
    model_free(m);
    remove(path);
    free(path);
}

int main(void) {
    struct CMUnitTest tests[sizeof g_cases / sizeof g_cases[0]];
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        static char names[sizeof g_cases / sizeof g_cases[0]][64];
        snprintf(names[i], sizeof names[i], "parity_case_%zu", i);
        tests[i] = (struct CMUnitTest){names[i], run_case, NULL, NULL, &g_cases[i]};
    }
    return test_finish(
        _cmocka_run_group_tests("gpu_parity", tests, sizeof tests / sizeof *tests, NULL, NULL),
        (int)(sizeof tests / sizeof *tests));
}
