/* test_gpu_e2e.c - the CUDA backend on the reference models: last-position
 * logits of every reference/<model>.p<N>.json whose model the CUDA backend
 * loads vs logits_exact (relative L2 <= 1e-3), and stories260K greedy 200
 * tokens identical between the CPU and CUDA backends. */
#include <jansson.h>

#include "gpu_testmodel.h"

static void test_reference_logits(void **state) {
    (void)state;
    if (!tm_have_gpu()) TEST_SKIP("no GPU");
    char dir[4096];
    if (testdata_file(dir, sizeof dir, "reference") != 0) TEST_SKIP("no test data (%s)", dir);
    int n_checked = 0, n_failed = 0;
    size_t n_names = 0;
    char **names = testdata_names("reference", ".json", &n_names);
    for (size_t i = 0; i < n_names; i++) {
        char path[8192], mpath[4096], lpath[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_error_t je;
        json_t *j = json_load_file(path, 0, &je);
        assert_non_null(j);
        const char *model = json_string_value(json_object_get(j, "model"));
        const char *exact = json_string_value(json_object_get(j, "logits_exact"));
        json_t *toks = json_object_get(j, "prompt_tokens");
        assert_non_null(model);
        assert_non_null(exact);
        char rel[512];
        snprintf(rel, sizeof rel, "models/%s", model);
        if (testdata_file(mpath, sizeof mpath, rel) != 0) {
            json_decref(j);
            continue;
        }
        snprintf(lpath, sizeof lpath, "%s/%s", dir, exact);
        /* not testdata_model: a model this build cannot load is reported, not failed */
        Err e = {{0}};
        Model *m = model_load(mpath, &e);
        if (!m) {
            printf("  %-28s model not loadable here: %s\n", names[i], e.msg);
            json_decref(j);
            continue;
        }
        Backend *gpu = tm_backend(m, 1, 256, 1, 1);
        if (!gpu) {
            printf("  %-28s CUDA backend refuses the model (skipped)\n", names[i]);
            model_free(m);
            json_decref(j);
            continue;
        }
        const int n = (int)json_array_size(toks), V = m->cfg.n_vocab;
        int32_t *tk = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
        for (int t = 0; t < n; t++) tk[t] = (int32_t)json_integer_value(json_array_get(toks, t));
        float *lg = (float *)malloc(sizeof(float) * (size_t)V);
        assert_int_equal(gpu->prefill(gpu, 0, tk, n, 0, lg, 0, &e), 0);
        size_t nref = 0;
        float *ref = read_f32(lpath, &nref);
        assert_non_null(ref);
        assert_int_equal((int)nref, V);
        double err = rel_l2(lg, ref, (size_t)V);
        /* the same prompt token by token (decode path) */
        float *ld = (float *)malloc(sizeof(float) * (size_t)V);
        for (int t = 0; t < n; t++) {
            int seq = 0, pos = t;
            assert_int_equal(gpu->decode(gpu, 1, &seq, &tk[t], &pos, ld, &e), 0);
        }
        double err_d = rel_l2(ld, ref, (size_t)V);
        printf("  %-28s prefill rel_l2 %.2e  decode rel_l2 %.2e %s\n", names[i], err, err_d,
               err <= 1e-3 && err_d <= 1e-3 ? "ok" : "FAIL");
        if (!(err <= 1e-3 && err_d <= 1e-3)) n_failed++;
        n_checked++;
        free(ld);
        free(ref);
        free(lg);
        free(tk);
        backend_free(gpu);
        model_free(m);
        json_decref(j);
    }
    free_names(names, n_names);
    printf("  %d reference prompts checked, %d failed\n", n_checked, n_failed);
    assert_true(n_checked > 0);
    assert_int_equal(n_failed, 0);
}

static void test_stories_greedy(void **state) {
    (void)state;
    if (!tm_have_gpu()) TEST_SKIP("no GPU");
    int32_t prompt[64];
    const int n = testdata_tokens("stories/stories260K.p1.tokens.txt", prompt, 64);
    Model *m = n < 0 ? NULL : testdata_model("stories/stories260K.gguf");
    if (!m) TEST_SKIP("no stories260K test data");
    assert_true(n > 0);
    Err e = {{0}};
    const int V = m->cfg.n_vocab, steps = 200;
    int32_t out[2][200];
    float *lg = (float *)malloc(sizeof(float) * (size_t)V);
    double max_l2 = 0;
    float *first[2] = {(float *)malloc(sizeof(float) * (size_t)V),
                       (float *)malloc(sizeof(float) * (size_t)V)};
    for (int g = 0; g < 2; g++) {
        Backend *b = tm_backend(m, g, 512, 1, 1);
        assert_non_null(b);
        assert_int_equal(b->prefill(b, 0, prompt, n, 0, lg, 0, &e), 0);
        memcpy(first[g], lg, sizeof(float) * (size_t)V);
        int32_t t = (int32_t)tm_argmax(lg, V);
        for (int i = 0; i < steps; i++) {
            out[g][i] = t;
            int seq = 0, pos = n + i;
            assert_int_equal(b->decode(b, 1, &seq, &t, &pos, lg, &e), 0);
            t = (int32_t)tm_argmax(lg, V);
        }
        backend_free(b);
    }
    max_l2 = rel_l2(first[1], first[0], (size_t)V);
    int same = 0;
    while (same < steps && out[0][same] == out[1][same]) same++;
    printf("  stories260K p1: first logits GPU vs CPU rel_l2 %.2e; %d/%d greedy tokens identical\n",
           max_l2, same, steps);
    char lref[4096];
    if (testdata_file(lref, sizeof lref, "stories/stories260K.p1.llamacpp.f32") == 0) {
        size_t nr = 0;
        float *r = read_f32(lref, &nr);
        if (r && (int)nr == V)
            printf("  GPU vs llama.cpp logits rel_l2 %.2e (informative)\n",
                   rel_l2(first[1], r, (size_t)V));
        free(r);
    }
    assert_int_equal(same, steps);
    free(first[0]);
    free(first[1]);
    free(lg);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_logits),
        cmocka_unit_test(test_stories_greedy),
    };
    return TEST_MAIN(tests);
}
