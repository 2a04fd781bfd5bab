/* test_quant_models.c - quantizers and dequantizers against llama.cpp's
 * files: every tiny-llama-<type>.gguf of the test data was made by
 * llama-quantize --pure from tiny-llama-f32.gguf, so quantizing the F32
 * tensors here must give the same bytes (legacy types and F16/BF16 exactly;
 * K-quants up to float summation-order ties, >= 99.9% of bytes), and the
 * dequantized file tensors must be close to the F32 source. Also checks
 * matvec on a real tensor against a double-precision reference. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

static const struct {
    const char *file;
    uint32_t type;
    int exact;      /* bytes must match exactly */
    double max_rel; /* dequant vs F32 source, relative L2 per tensor */
} MODELS[] = {
    {"f16", GGML_TYPE_F16, 1, 1e-3},     {"bf16", GGML_TYPE_BF16, 1, 5e-3},
    {"q8_0", GGML_TYPE_Q8_0, 1, 0.01},   {"q4_0", GGML_TYPE_Q4_0, 1, 0.12},
    {"q4_1", GGML_TYPE_Q4_1, 1, 0.10},   {"q4_k_s", GGML_TYPE_Q4_K, 0, 0.09},
    {"q5_k_s", GGML_TYPE_Q5_K, 0, 0.05}, {"q6_k", GGML_TYPE_Q6_K, 0, 0.025},
};

static void test_models(void **state) {
    (void)state;
    char path[1024];
    if (testdata_file(path, sizeof path, "models/tiny-llama-f32.gguf") != 0)
        TEST_SKIP("%s missing", path);
    Err e;
    GgufFile *ref = gguf_open(path, &e);
    assert_non_null(ref);
    for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/tiny-llama-%s.gguf", MODELS[m].file);
        if (testdata_file(path, sizeof path, rel) != 0) {
            print_message("missing %s: not checked\n", path);
            continue;
        }
        GgufFile *g = gguf_open(path, &e);
        assert_non_null(g);
        size_t same = 0, total = 0;
        double worst = 0;
        int n_typed = 0;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const GgufTensor *t = &g->tensors[i];
            const GgufTensor *r = gguf_find_tensor(ref, t->name);
            assert_non_null(r);
            assert_int_equal(r->type, GGML_TYPE_F32);
            assert_int_equal(r->n_elements, t->n_elements);
            if (t->type == GGML_TYPE_F32) continue;
            assert_int_equal(t->type, MODELS[m].type);
            n_typed++;
            const int64_t cols = (int64_t)t->ne[0], rows = (int64_t)(t->n_elements / t->ne[0]);
            const size_t rb = quant_row_bytes(t->type, cols);
            assert_int_equal(rb * (size_t)rows, t->nbytes);
            uint8_t *q = xmalloc(t->nbytes);
            float *back = xmalloc((size_t)t->n_elements * sizeof(float));
            const float *src = r->data;
            for (int64_t j = 0; j < rows; j++) {
                quant_quantize_row(t->type, src + j * cols, q + (size_t)j * rb, cols);
                quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)j * rb,
                                  back + j * cols, cols);
            }
            for (size_t b = 0; b < t->nbytes; b++) same += q[b] == ((const uint8_t *)t->data)[b];
            total += t->nbytes;
            double err = rel_l2(back, src, (size_t)t->n_elements);
            if (err > worst) worst = err;
            free(q);
            free(back);
        }
        print_message("%-7s %zu/%zu bytes as llama-quantize, worst rel err %.4f\n", MODELS[m].file,
                      same, total, worst);
        assert_true(n_typed > 0);
        if (MODELS[m].exact)
            assert_int_equal(same, total);
        else
            assert_true((double)same >= 0.999 * (double)total);
        assert_true(worst <= MODELS[m].max_rel);
        gguf_close(g);
    }
    gguf_close(ref);
}

/* matvec over a whole quantized tensor vs double dot of dequantized rows. */
static void test_matvec_real(void **state) {
    (void)state;
    char path[1024];
    if (testdata_file(path, sizeof path, "models/tiny-llama-q4_k_s.gguf") != 0)
        TEST_SKIP("%s missing", path);
    Err e;
    GgufFile *g = gguf_open(path, &e);
    assert_non_null(g);
    const GgufTensor *t = gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    const int64_t cols = (int64_t)t->ne[0], rows = (int64_t)t->ne[1];
    float *x = xmalloc((size_t)cols * sizeof(float)), *y = xmalloc((size_t)rows * sizeof(float));
    float *w = xmalloc((size_t)cols * sizeof(float));
    fill_random(x, (size_t)cols, 5, 1.0f);
    quant_matvec(t->type, t->data, cols, 0, rows, x, y);
    const size_t rb = quant_row_bytes(t->type, cols);
    for (int64_t r = 0; r < rows; r++) {
        quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, w, cols);
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < cols; i++) {
            ref += (double)w[i] * x[i];
            mag += fabs((double)w[i] * x[i]);
        }
        assert_true(fabs(y[r] - ref) <= 1e-5 * mag);
    }
    free(x), free(y), free(w);
    gguf_close(g);
}

/* `m40llm quantize` end to end: every converted tensor dequantizes close to
 * the F32 source and the q4_k_m mix picks llama.cpp's types. */
static void test_quantize_cli(void **state) {
    (void)state;
    char path[1024];
    const char *bin = test_bin();
    if (!bin) TEST_SKIP("M40LLM_BIN not set");
    if (testdata_file(path, sizeof path, "models/tiny-llama-f32.gguf") != 0)
        TEST_SKIP("%s missing", path);
    static const char *const TYPES[] = {"q4_k_m", "q2_k", "q5_1", "q3_k_l"};
    Err e;
    GgufFile *ref = gguf_open(path, &e);
    assert_non_null(ref);
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
        char *out = test_tmp_path(".gguf");
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "'%s' quantize '%s' '%s' %s --log-level error", bin, path, out,
                 TYPES[k]);
        assert_int_equal(system(cmd), 0);
        GgufFile *g = gguf_open(out, &e);
        assert_non_null(g);
        assert_int_equal(g->n_tensors, ref->n_tensors);
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const GgufTensor *t = &g->tensors[i];
            const GgufTensor *r = gguf_find_tensor(ref, t->name);
            assert_non_null(r);
            float *back = xmalloc((size_t)t->n_elements * sizeof(float));
            quant_dequant_row(t->type, t->data, back, (int64_t)t->n_elements);
            double err = rel_l2(back, r->data, (size_t)t->n_elements);
            double bound = 0.0;
            switch (t->type) {
            case GGML_TYPE_F32:
                bound = 0;
                break;
            case GGML_TYPE_Q6_K:
                bound = 0.025;
                break;
            case GGML_TYPE_Q5_K:
            case GGML_TYPE_Q5_1:
                bound = 0.05;
                break;
            case GGML_TYPE_Q4_K:
                bound = 0.09;
                break;
            case GGML_TYPE_Q3_K:
                bound = 0.2;
                break;
            case GGML_TYPE_Q2_K:
                bound = 0.35;
                break;
            default:
                fail_msg("%s: unexpected type %s", t->name, ggml_type_name(t->type));
            }
            if (err > bound) fail_msg("%s %s: rel err %.4f > %.4f", TYPES[k], t->name, err, bound);
            free(back);
        }
        if (k == 0) {
            assert_int_equal(gguf_find_tensor(g, "output.weight")->type, GGML_TYPE_Q6_K);
            assert_int_equal(gguf_find_tensor(g, "blk.1.ffn_down.weight")->type, GGML_TYPE_Q6_K);
            assert_int_equal(gguf_find_tensor(g, "blk.0.ffn_down.weight")->type, GGML_TYPE_Q4_K);
            uint32_t ft = 0;
            assert_int_equal(gguf_get_u32(g, "general.file_type", &ft, &e), 0);
            assert_int_equal(ft, 15);
            /* metadata copied */
            const char *tok = NULL;
            assert_int_equal(gguf_get_str(g, "tokenizer.ggml.model", &tok, &e), 0);
            assert_string_equal(tok, "llama");
        }
        gguf_close(g);
        remove(out);
        free(out);
    }
    gguf_close(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_matvec_real),
        cmocka_unit_test(test_quantize_cli),
    };
    return TEST_MAIN(tests);
}
