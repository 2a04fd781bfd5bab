/* test_model.c - GGUF -> Model mapping and validation errors.
 *
 * Broken models are built by rewriting a test model with the GGUF writer
 * (one tensor dropped, reshaped, retyped or added, or one key changed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "base/util.h"
#include "gguf/gguf.h"
#include "model/model.h"

typedef struct Mod {
    const char *drop;    /* tensor left out */
    const char *reshape; /* tensor given shape [ne0, ne1] (zero data) */
    uint64_t ne0, ne1;
    const char *retype; /* tensor given type `type` (F16 from F32: converted; else zeros) */
    uint32_t type;
    const char *extra; /* extra F32 tensor of shape [16] */
    const char *skey;  /* string key set to sval */
    const char *sval;
    const char *fkey; /* float key set to fval */
    float fval;
} Mod;

static char *rewrite(const char *rel, const Mod *mod) {
    char src[4096];
    if (testdata_file(src, sizeof src, rel) != 0) return NULL;
    Err e = {0};
    GgufFile *f = gguf_open(src, &e);
    if (!f) fail_msg("gguf_open: %s", e.msg);
    GgufWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) gguf_writer_set_kv(w, &f->kv[i]);
    if (mod->skey) gguf_writer_set_str(w, mod->skey, mod->sval);
    if (mod->fkey) gguf_writer_set_f32(w, mod->fkey, mod->fval);
    int *map = xmalloc((f->n_tensors + 1) * sizeof(int));
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GgufTensor *t = &f->tensors[i];
        map[i] = -1;
        if (mod->drop && !strcmp(t->name, mod->drop)) continue;
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint32_t type = t->type, nd = t->n_dims;
        if (mod->reshape && !strcmp(t->name, mod->reshape)) {
            ne[0] = mod->ne0;
            ne[1] = mod->ne1;
            nd = mod->ne1 ? 2 : 1;
        }
        if (mod->retype && !strcmp(t->name, mod->retype)) type = mod->type;
        map[i] = gguf_writer_add_tensor(w, t->name, type, nd, ne);
    }
    int extra = -1;
    if (mod->extra) {
        uint64_t ne[1] = {16};
        extra = gguf_writer_add_tensor(w, mod->extra, GGML_TYPE_F32, 1, ne);
    }
    char *path = test_tmp_path(".gguf");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(gguf_writer_write_header(w, fp, &e), 0);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (map[i] < 0) continue;
        const GgufTensor *t = &f->tensors[i];
        uint64_t nb = gguf_writer_tensor_nbytes(w, map[i]);
        const void *data = t->data;
        void *tmp = NULL;
        if (mod->retype && !strcmp(t->name, mod->retype)) {
            tmp = xcalloc(1, nb);
            if (t->type == GGML_TYPE_F32 && mod->type == GGML_TYPE_F16)
                for (uint64_t k = 0; k < t->n_elements; k++)
                    ((uint16_t *)tmp)[k] = f32_to_fp16(((const float *)t->data)[k]);
            data = tmp;
        } else if (nb != t->nbytes) {
            tmp = xcalloc(1, nb);
            data = tmp;
        }
        assert_int_equal(gguf_writer_write_tensor_data(w, fp, map[i], data, &e), 0);
        free(tmp);
    }
    if (extra >= 0) {
        float z[16] = {0};
        assert_int_equal(gguf_writer_write_tensor_data(w, fp, extra, z, &e), 0);
    }
    fclose(fp);
    free(map);
    gguf_writer_free(w);
    gguf_close(f);
    return path;
}

/* Loads a rewritten model and expects failure with every needle in e.msg. */
static void expect_error(const char *rel, const Mod *mod, const char *n1, const char *n2) {
    char *path = rewrite(rel, mod);
    if (!path) TEST_SKIP("%s missing", rel);
    Err e = {0};
    Model *m = model_load(path, &e);
    fprintf(stderr, "  error: %s\n", e.msg);
    assert_null(m);
    assert_non_null(strstr(e.msg, n1));
    if (n2) assert_non_null(strstr(e.msg, n2));
    unlink(path);
    free(path);
}

static Model *load_rel(const char *rel) {
    char path[4096];
    if (testdata_file(path, sizeof path, rel) != 0) return NULL;
    Err e = {0};
    Model *m = model_load(path, &e);
    if (!m) fail_msg("model_load %s: %s", rel, e.msg);
    return m;
}

static uint64_t tensor_bytes_except(const GgufFile *f, const char *skip) {
    uint64_t s = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (!skip || strcmp(f->tensors[i].name, skip)) s += f->tensors[i].nbytes;
    return s;
}

static void test_tiny_llama(void **state) {
    (void)state;
    Model *m = load_rel("models/tiny-llama-q4_0.gguf");
    if (!m) TEST_SKIP("tiny-llama-q4_0.gguf missing");
    const ModelConfig *c = &m->cfg;
    assert_int_equal(c->arch, ARCH_LLAMA);
    assert_string_equal(c->arch_name, "llama");
    assert_int_equal(c->n_vocab, 512);
    assert_int_equal(c->dim, 256);
    assert_int_equal(c->n_layers, 2);
    assert_int_equal(c->n_heads, 4);
    assert_int_equal(c->n_kv_heads, 2);
    assert_int_equal(c->head_dim, 64);
    assert_int_equal(c->ffn_dim, 768);
    assert_int_equal(c->rope_dim, 64);
    assert_int_equal(c->rope_neox, 0);
    assert_true(c->rope_base == 10000.0f);
    assert_true(c->rope_scale == 1.0f);
    assert_true(fabsf(c->norm_eps - 1e-5f) < 1e-9f);
    assert_int_equal(c->tied_output, 0);
    assert_true(c->n_ctx_train > 0);
    assert_int_equal(m->layers[1].wq.type, GGML_TYPE_Q4_0);
    assert_int_equal(m->layers[1].wk.ne[1], 128);
    assert_null(m->layers[0].bq.data);
    assert_ptr_not_equal(m->output.data, m->tok_embd.data);
    /* every tensor but the embedding table is read per token */
    assert_int_equal(m->weight_bytes, tensor_bytes_except(m->gguf, "token_embd.weight"));
    assert_int_equal(model_kv_bytes_per_token(c, 0), 2ull * 2 * 2 * 64 * 2);
    assert_int_equal(model_kv_bytes_per_token(c, 9), 10ull * 2 * 2 * 2 * 64 * 2);
    model_free(m);
}

static void test_tiny_qwen2(void **state) {
    (void)state;
    Model *m = load_rel("models/tiny-qwen2-q8_0.gguf");
    if (!m) TEST_SKIP("tiny-qwen2-q8_0.gguf missing");
    assert_int_equal(m->cfg.arch, ARCH_QWEN2);
    assert_int_equal(m->cfg.rope_neox, 1);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        assert_non_null(m->layers[l].bq.data);
        assert_non_null(m->layers[l].bk.data);
        assert_non_null(m->layers[l].bv.data);
        assert_int_equal(m->layers[l].bk.ne[0], 128);
        assert_int_equal(m->layers[l].bq.type, GGML_TYPE_F32);
    }
    assert_int_equal(m->weight_bytes, tensor_bytes_except(m->gguf, "token_embd.weight"));
    model_free(m);
}

static void test_stories(void **state) {
    (void)state;
    Model *m = load_rel("stories/stories260K.gguf");
    if (!m) TEST_SKIP("stories260K.gguf missing");
    assert_int_equal(m->cfg.n_vocab, 512);
    assert_int_equal(m->cfg.dim, 64);
    assert_int_equal(m->cfg.n_layers, 5);
    assert_int_equal(m->cfg.n_heads, 8);
    assert_int_equal(m->cfg.n_kv_heads, 4);
    assert_int_equal(m->cfg.head_dim, 8);
    assert_int_equal(m->cfg.tied_output, 0);
    model_free(m);
}

static void test_tied_output(void **state) {
    (void)state;
    Mod mod = {.drop = "output.weight"};
    char *path = rewrite("models/tiny-llama-f16.gguf", &mod);
    if (!path) TEST_SKIP("tiny-llama-f16.gguf missing");
    Err e = {0};
    Model *m = model_load(path, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_int_equal(m->cfg.tied_output, 1);
    assert_ptr_equal(m->output.data, m->tok_embd.data);
    assert_int_equal(m->output.ne[1], 512);
    /* tied: the output product reads the embedding table */
    assert_int_equal(m->weight_bytes, tensor_bytes_except(m->gguf, NULL));
    model_free(m);
    unlink(path);
    free(path);
}

static void test_f16_norm_converted(void **state) {
    (void)state;
    Mod mod = {.retype = "blk.1.ffn_norm.weight", .type = GGML_TYPE_F16};
    char *path = rewrite("models/tiny-llama-f32.gguf", &mod);
    if (!path) TEST_SKIP("tiny-llama-f32.gguf missing");
    Model *ref = load_rel("models/tiny-llama-f32.gguf");
    Err e = {0};
    Model *m = model_load(path, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_int_equal(m->layers[1].ffn_norm.type, GGML_TYPE_F32);
    const float *a = m->layers[1].ffn_norm.data, *b = ref->layers[1].ffn_norm.data;
    for (int i = 0; i < m->cfg.dim; i++) assert_true(fabsf(a[i] - b[i]) <= 1e-3f * fabsf(b[i]));
    model_free(m);
    model_free(ref);
    unlink(path);
    free(path);
}

static void test_missing_tensor(void **state) {
    (void)state;
    Mod mod = {.drop = "blk.1.ffn_up.weight"};
    expect_error("models/tiny-llama-q8_0.gguf", &mod, "blk.1.ffn_up.weight", "missing");
    Mod mod2 = {.drop = "blk.0.attn_k.bias"};
    expect_error("models/tiny-qwen2-q8_0.gguf", &mod2, "blk.0.attn_k.bias", "missing");
    Mod mod3 = {.drop = "output_norm.weight"};
    expect_error("models/tiny-llama-q8_0.gguf", &mod3, "output_norm.weight", "missing");
}

static void test_misshaped_tensor(void **state) {
    (void)state;
    Mod mod = {.reshape = "blk.0.attn_q.weight", .ne0 = 256, .ne1 = 128};
    expect_error("models/tiny-llama-f32.gguf", &mod, "blk.0.attn_q.weight",
                 "expected shape [256, 256], found [256, 128]");
    Mod mod2 = {.reshape = "blk.1.attn_norm.weight", .ne0 = 128, .ne1 = 0};
    expect_error("models/tiny-llama-f32.gguf", &mod2, "blk.1.attn_norm.weight",
                 "expected shape [256], found [128]");
    Mod mod3 = {.reshape = "output.weight", .ne0 = 256, .ne1 = 500};
    expect_error("models/tiny-llama-f32.gguf", &mod3, "output.weight", "[256, 512]");
}

static void test_extra_tensor(void **state) {
    (void)state;
    Mod mod = {.extra = "blk.0.attn_rot.weight"};
    expect_error("models/tiny-llama-q4_0.gguf", &mod, "unexpected tensor blk.0.attn_rot.weight",
                 NULL);
    Mod mod2 = {.extra = "blk.2.attn_norm.weight"};
    expect_error("models/tiny-llama-q4_0.gguf", &mod2, "blk.2.attn_norm.weight", "block_count");
    Mod mod3 = {.extra = "rope_freqs.weight"};
    expect_error("models/tiny-llama-q4_0.gguf", &mod3, "rope_freqs.weight", "not supported");
}

static void test_unsupported_type(void **state) {
    (void)state;
    Mod mod = {.retype = "blk.0.attn_k.weight", .type = GGML_TYPE_IQ2_XXS};
    expect_error("models/tiny-llama-f32.gguf", &mod,
                 "tensor blk.0.attn_k.weight has type iq2_xxs, which m40-llm cannot run yet", NULL);
    Mod mod2 = {.retype = "output_norm.weight", .type = GGML_TYPE_Q8_0};
    expect_error("models/tiny-llama-f32.gguf", &mod2, "output_norm.weight", "f32 or f16");
}

static void test_rope_scaling(void **state) {
    (void)state;
    Mod yarn = {.skey = "llama.rope.scaling.type", .sval = "yarn"};
    expect_error("models/tiny-llama-q4_0.gguf", &yarn, "yarn", "not supported");

    Mod lin = {.skey = "llama.rope.scaling.type",
               .sval = "linear",
               .fkey = "llama.rope.scaling.factor",
               .fval = 4.0f};
    char *path = rewrite("models/tiny-llama-q4_0.gguf", &lin);
    if (!path) TEST_SKIP("tiny-llama-q4_0.gguf missing");
    Err e = {0};
    Model *m = model_load(path, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_true(m->cfg.rope_scale == 0.25f);
    model_free(m);
    unlink(path);
    free(path);

    Mod legacy = {.fkey = "llama.rope.scale_linear", .fval = 2.0f};
    path = rewrite("models/tiny-llama-q4_0.gguf", &legacy);
    m = model_load(path, &e);
    if (!m) fail_msg("%s", e.msg);
    assert_true(m->cfg.rope_scale == 0.5f);
    model_free(m);
    unlink(path);
    free(path);

    Mod nofactor = {.skey = "llama.rope.scaling.type", .sval = "linear"};
    expect_error("models/tiny-llama-q4_0.gguf", &nofactor, "llama.rope.scaling.factor", NULL);
}

static void test_bad_arch_and_file(void **state) {
    (void)state;
    Mod mod = {.skey = "general.architecture", .sval = "gpt2"};
    expect_error("models/tiny-llama-q4_0.gguf", &mod, "gpt2", "not supported");
    Err e = {0};
    assert_null(model_load("/nonexistent/dir/model.gguf", &e));
    assert_non_null(strstr(e.msg, "/nonexistent/dir/model.gguf"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_llama),
        cmocka_unit_test(test_tiny_qwen2),
        cmocka_unit_test(test_stories),
        cmocka_unit_test(test_tied_output),
        cmocka_unit_test(test_f16_norm_converted),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_misshaped_tensor),
        cmocka_unit_test(test_extra_tensor),
        cmocka_unit_test(test_unsupported_type),
        cmocka_unit_test(test_rope_scaling),
        cmocka_unit_test(test_bad_arch_and_file),
    };
    return TEST_MAIN(tests);
}
