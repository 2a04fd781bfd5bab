/* test_gpu_batch.c - batched decode on the CUDA backend: one decode of n
 * sequences (in any order, more than one matvec batch of 16) equals n
 * single decodes, and equals the CPU backend. */
#include "gpu_testmodel.h"

#define NSEQ 20

static void test_batched_decode(void **state) {
    (void)state;
    if (!tm_have_gpu()) TEST_SKIP("no GPU");
    TestShape s = {"llama", 512, 2, 8, 2, 64, 256, 300, 512, GGML_TYPE_F16, 0, 0};
    char *path = tm_write_model(&s, 99);
    Model *m = test_model_load(path);
    Err e = {{0}};
    const int V = m->cfg.n_vocab;
    /* batched (> 4 sequences: dequant + custom GEMM, cuBLAS off; <= 4: matvec) */
    Backend *A = tm_backend(m, 1, 256, NSEQ, 0);
    Backend *B = tm_backend(m, 1, 256, NSEQ, 1); /* one at a time */
    Backend *C = tm_backend(m, 0, 256, NSEQ, 1); /* CPU, batched */
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C);
    int pos[NSEQ], seq[NSEQ];
    int32_t tok[NSEQ];
    for (int q = 0; q < NSEQ; q++) {
        int n = 3 + q * 5;
        int32_t pr[128];
        for (int i = 0; i < n; i++) pr[i] = (int32_t)((q * 131 + i * 17) % V);
        assert_int_equal(A->prefill(A, q, pr, n, 0, NULL, 0, &e), 0);
        assert_int_equal(B->prefill(B, q, pr, n, 0, NULL, 0, &e), 0);
        assert_int_equal(C->prefill(C, q, pr, n, 0, NULL, 0, &e), 0);
        pos[q] = n;
    }
    float *la = (float *)malloc(sizeof(float) * NSEQ * V);
    float *lc = (float *)malloc(sizeof(float) * NSEQ * V);
    float *lb = (float *)malloc(sizeof(float) * V);
    double worst = 0, worst_cpu = 0;
    for (int step = 0; step < 4; step++) {
        /* all sequences in reverse order (batches of 16 + 4); a subset of 5; of 3 */
        int nb = step == 1 ? 5 : step == 2 ? 3 : NSEQ;
        for (int i = 0; i < nb; i++) {
            seq[i] = step == 1 ? (i * 3 + 1) : NSEQ - 1 - i;
            tok[i] = (int32_t)((seq[i] * 7 + step * 11) % V);
        }
        int p[NSEQ];
        for (int i = 0; i < nb; i++) p[i] = pos[seq[i]];
        for (size_t i = 0; i < (size_t)NSEQ * V; i++) la[i] = NAN;
        assert_int_equal(A->decode(A, nb, seq, tok, p, la, &e), 0);
        assert_int_equal(C->decode(C, nb, seq, tok, p, lc, &e), 0);
        for (int i = 0; i < nb; i++) {
            assert_int_equal(B->decode(B, 1, &seq[i], &tok[i], &p[i], lb, &e), 0);
            double err = rel_max(la + (size_t)i * V, lb, (size_t)V);
            double errc = rel_max(la + (size_t)i * V, lc + (size_t)i * V, (size_t)V);
            worst = fmax(worst, err);
            worst_cpu = fmax(worst_cpu, errc);
            assert_true(err <= 1e-3);
            assert_true(errc <= 1e-3);
        }
        for (int i = 0; i < nb; i++) pos[seq[i]]++;
    }
    printf("  batched vs single decode: max rel error %.2e; vs CPU batched %.2e\n", worst,
           worst_cpu);
    free(la);
    free(lb);
    free(lc);
    backend_free(A);
    backend_free(B);
    backend_free(C);
    model_free(m);
    remove(path);
    free(path);
}

static void test_errors(void **state) {
    (void)state;
    if (!tm_have_gpu()) TEST_SKIP("no GPU");
    TestShape s = {"llama", 128, 1, 2, 1, 64, 128, 64, 64, GGML_TYPE_F16, 0, 0};
    char *path = tm_write_model(&s, 5);
    Model *m = test_model_load(path);
    Err e = {{0}};
    Backend *g = tm_backend(m, 1, 32, 2, 1);
    assert_non_null(g);
    float lg[64];
    int32_t t[2] = {1, 2};
    int sq[2] = {0, 0}, ps[2] = {0, 1};
    assert_int_equal(g->decode(g, 2, sq, t, ps, lg, &e), -1); /* same sequence twice */
    printf("  %s\n", e.msg);
    ps[0] = 32;
    assert_int_equal(g->decode(g, 1, sq, t, ps, lg, &e), -1); /* past n_ctx */
    printf("  %s\n", e.msg);
    assert_int_equal(g->prefill(g, 2, t, 1, 0, lg, 0, &e), -1); /* no such sequence */
    printf("  %s\n", e.msg);
    t[0] = 64;
    assert_int_equal(g->prefill(g, 0, t, 1, 0, lg, 0, &e), -1); /* token out of range */
    printf("  %s\n", e.msg);
    double bw = 0, gf = 0;
    assert_int_equal(g->peak(g, &bw, &gf, &e), 0);
    printf("  peak: copy %.0f GB/s, SGEMM %.0f GFLOP/s; desc: %s\n", bw, gf, g->desc);
    assert_true(bw > 0 && gf > 0);
    backend_free(g);
    /* a context that cannot fit: the error names the sizes */
    BackendParams p;
    backend_params_default(&p);
    p.device = "cuda";
    p.n_ctx = 1 << 30;
    p.n_seq = 64;
    p.quiet = 1;
    assert_null(backend_cuda_create(m, &p, &e));
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "not enough device memory"));
    p.n_ctx = 32;
    p.n_seq = 1;
    p.device = "cuda:99";
    assert_null(backend_cuda_create(m, &p, &e));
    printf("  %s\n", e.msg);
    model_free(m);
    remove(path);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_decode),
        cmocka_unit_test(test_errors),
    };
    return TEST_MAIN(tests);
}
