/* gpu_testmodel.h - small random llama/qwen2 models written with the GGUF
 * writer, and helpers shared by the GPU parity tests (header-only: every
 * tests/gpu/test_*.c is its own executable). */
#ifndef M40_GPU_TESTMODEL_H
#define M40_GPU_TESTMODEL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/backend.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/quant.h"
#include "testutil.h"

typedef struct TestShape {
    const char *arch; /* "llama" or "qwen2" (q/k/v biases, NeoX RoPE) */
    int dim, n_layers, n_heads, n_kv_heads, head_dim, ffn, vocab, ctx;
    uint32_t wtype;    /* type of the weight matrices */
    float rope_factor; /* linear scaling factor, 0 = none */
    int rope_dim;      /* 0 = head_dim */
} TestShape;

static inline void tm_set_u32(GgufWriter *w, const char *arch, const char *k, uint32_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    gguf_writer_set_u32(w, key, v);
}

/* Writes a random model to a fresh temp file; returns its path (malloc'd). */
static inline char *tm_write_model(const TestShape *s, uint64_t seed) {
    char *path = test_tmp_path(".gguf");
    GgufWriter *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", s->arch);
    tm_set_u32(w, s->arch, "embedding_length", (uint32_t)s->dim);
    tm_set_u32(w, s->arch, "block_count", (uint32_t)s->n_layers);
    tm_set_u32(w, s->arch, "feed_forward_length", (uint32_t)s->ffn);
    tm_set_u32(w, s->arch, "attention.head_count", (uint32_t)s->n_heads);
    tm_set_u32(w, s->arch, "attention.head_count_kv", (uint32_t)s->n_kv_heads);
    tm_set_u32(w, s->arch, "attention.key_length", (uint32_t)s->head_dim);
    tm_set_u32(w, s->arch, "attention.value_length", (uint32_t)s->head_dim);
    tm_set_u32(w, s->arch, "context_length", (uint32_t)s->ctx);
    tm_set_u32(w, s->arch, "rope.dimension_count",
               (uint32_t)(s->rope_dim ? s->rope_dim : s->head_dim));
    char key[128];
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", s->arch);
    gguf_writer_set_f32(w, key, 1e-5f);
    snprintf(key, sizeof key, "%s.rope.freq_base", s->arch);
    gguf_writer_set_f32(w, key, 10000.0f);
    if (s->rope_factor > 0) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", s->arch);
        gguf_writer_set_str(w, key, "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", s->arch);
        gguf_writer_set_f32(w, key, s->rope_factor);
    }
    const int qd = s->n_heads * s->head_dim, kvd = s->n_kv_heads * s->head_dim;
    const int qwen = !strcmp(s->arch, "qwen2");
    /* name, rows, cols (cols = ne[0]), is_matrix, scale */
    typedef struct {
        char name[64];
        int rows, cols, matrix;
        float scale, offset;
    } T;
    int cap = 3 + s->n_layers * 12, n = 0;
    T *ts = (T *)calloc((size_t)cap, sizeof(T));
#define ADD(nm, r, c, mat, sc, off)                                                                \
    do {                                                                                           \
        snprintf(ts[n].name, sizeof ts[n].name, "%s", nm);                                         \
        ts[n].rows = (r), ts[n].cols = (c), ts[n].matrix = (mat), ts[n].scale = (sc),              \
        ts[n].offset = (off);                                                                      \
        n++;                                                                                       \
    } while (0)
    ADD("token_embd.weight", s->vocab, s->dim, 1, 1.0f, 0);
    ADD("output_norm.weight", 1, s->dim, 0, 0.2f, 1.0f);
    ADD("output.weight", s->vocab, s->dim, 1, 1.5f / sqrtf((float)s->dim), 0);
    for (int l = 0; l < s->n_layers; l++) {
        char nm[64];
#define LADD(suf, r, c, mat, sc, off)                                                              \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "blk.%d.%s", l, suf);                                              \
        ADD(nm, r, c, mat, sc, off);                                                               \
    } while (0)
        LADD("attn_norm.weight", 1, s->dim, 0, 0.2f, 1.0f);
        LADD("attn_q.weight", qd, s->dim, 1, 2.0f / sqrtf((float)s->dim), 0);
        LADD("attn_k.weight", kvd, s->dim, 1, 2.0f / sqrtf((float)s->dim), 0);
        LADD("attn_v.weight", kvd, s->dim, 1, 1.7f / sqrtf((float)s->dim), 0);
        if (qwen) {
            LADD("attn_q.bias", 1, qd, 0, 0.3f, 0);
            LADD("attn_k.bias", 1, kvd, 0, 0.3f, 0);
            LADD("attn_v.bias", 1, kvd, 0, 0.3f, 0);
        }
        LADD("attn_output.weight", s->dim, qd, 1, 1.7f / sqrtf((float)qd), 0);
        LADD("ffn_norm.weight", 1, s->dim, 0, 0.2f, 1.0f);
        LADD("ffn_gate.weight", s->ffn, s->dim, 1, 1.7f / sqrtf((float)s->dim), 0);
        LADD("ffn_up.weight", s->ffn, s->dim, 1, 1.7f / sqrtf((float)s->dim), 0);
        LADD("ffn_down.weight", s->dim, s->ffn, 1, 1.7f / sqrtf((float)s->ffn), 0);
#undef LADD
    }
#undef ADD
    for (int i = 0; i < n; i++) {
        uint64_t ne[2] = {(uint64_t)ts[i].cols, (uint64_t)ts[i].rows};
        gguf_writer_add_tensor(w, ts[i].name, ts[i].matrix ? s->wtype : GGML_TYPE_F32,
                               ts[i].matrix ? 2 : 1, ne);
    }
    FILE *fp = fopen(path, "wb");
    Err e = {{0}};
    assert_non_null(fp);
    assert_int_equal(gguf_writer_write_header(w, fp, &e), 0);
    for (int i = 0; i < n; i++) {
        const size_t cnt = (size_t)ts[i].rows * ts[i].cols;
        float *f = (float *)malloc(cnt * sizeof(float));
        fill_random(f, cnt, seed * 1000 + (uint64_t)i, ts[i].scale);
        for (size_t j = 0; j < cnt; j++) f[j] += ts[i].offset;
        const uint32_t type = ts[i].matrix ? s->wtype : GGML_TYPE_F32;
        const size_t rb = quant_row_bytes(type, ts[i].cols);
        assert_true(rb > 0);
        uint8_t *buf = (uint8_t *)malloc(rb * (size_t)ts[i].rows);
        for (int r = 0; r < ts[i].rows; r++)
            quant_quantize_row(type, f + (size_t)r * ts[i].cols, buf + (size_t)r * rb, ts[i].cols);
        assert_int_equal(gguf_writer_write_tensor_data(w, fp, i, buf, &e), 0);
        free(buf);
        free(f);
    }
    fclose(fp);
    gguf_writer_free(w);
    free(ts);
    return path;
}

/* 1 when a CUDA device is usable; otherwise prints why (the caller skips). */
static inline int tm_have_gpu(void) {
#ifdef M40LLM_HAVE_CUDA
    char why[256];
    if (backend_cuda_available(why, sizeof why)) return 1;
    fprintf(stderr, "no usable GPU: %s\n", why);
    return 0;
#else
    fprintf(stderr, "built without CUDA\n");
    return 0;
#endif
}

static inline Backend *tm_backend(const Model *m, int gpu, int n_ctx, int n_seq, int use_cublas) {
    BackendParams p;
    backend_params_default(&p);
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.quiet = 1;
    p.use_cublas = use_cublas;
    p.n_threads = 2;
    p.device = gpu ? "cuda" : "cpu";
    Err e = {{0}};
    /* the CPU reference with the same FP16 KV cache as the GPU (docs/kv_layout.md) */
    if (!gpu) setenv("M40LLM_CPU_KV", "f16", 1);
    Backend *b = gpu ? backend_cuda_create(m, &p, &e) : backend_cpu_create(m, &p, &e);
    if (!b) fprintf(stderr, "backend (%s): %s\n", gpu ? "cuda" : "cpu", e.msg);
    return b;
}

static inline int tm_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

#endif
