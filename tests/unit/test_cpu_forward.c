/* test_cpu_forward.c - CPU forward pass against llama.cpp references, and
 * internal consistency (batched vs token-by-token vs chunked prefill, batched
 * decode of several sequences, KV cache contents). */
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

/* Tests use one thread (the CI cores are shared) except where the threaded
 * paths are the point (consistency: 2 threads). */
static int g_threads = 1;

static Backend *make_backend(const Model *m, int n_ctx, int n_seq) {
    BackendParams p;
    memset(&p, 0, sizeof p);
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.n_threads = g_threads;
    p.device = "cpu";
    Err e = {0};
    Backend *b = backend_cpu_create(m, &p, &e);
    if (!b) fail_msg("backend_cpu_create: %s", e.msg);
    return b;
}

static size_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ------------------------------------------------- reference models */

/* Every reference/<model>.p<N>.json: last-position logits vs logits_exact. */
static void test_reference_models(void **state) {
    (void)state;
    char dir[2048];
    if (testdata_file(dir, sizeof dir, "reference") != 0) TEST_SKIP("no reference dir");
    size_t n_names;
    char **names = testdata_names("reference", ".json", &n_names);
    assert_non_null(names);
    int n_run = 0, n_skip = 0;
    double worst[2] = {0, 0};
    for (size_t i = 0; i < n_names; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_error_t je;
        json_t *js = json_load_file(path, 0, &je);
        if (!js) fail_msg("%s: %s", path, je.text);
        const char *model_name = json_string_value(json_object_get(js, "model"));
        json_t *toks = json_object_get(js, "prompt_tokens");
        json_t *exact = json_object_get(js, "logits_exact");
        assert_non_null(model_name);
        assert_true(json_is_array(toks));
        assert_non_null(exact);

        char mpath[4096], rel[512];
        snprintf(rel, sizeof rel, "models/%s", model_name);
        if (testdata_file(mpath, sizeof mpath, rel) != 0) {
            fprintf(stderr, "  %-28s skipped (model file missing)\n", names[i]);
            n_skip++;
            json_decref(js);
            continue;
        }
        Err e = {0};
        Model *m = model_load(mpath, &e);
        if (!m) {
            if (strstr(e.msg, "cannot run yet")) {
                fprintf(stderr, "  %-28s skipped (%s)\n", names[i], e.msg);
                n_skip++;
                json_decref(js);
                continue;
            }
            fail_msg("model_load %s: %s", mpath, e.msg);
        }
        const int V = m->cfg.n_vocab;
        float *ref = NULL;
        size_t n_ref = 0;
        if (json_is_string(exact)) {
            char fpath[8192];
            snprintf(fpath, sizeof fpath, "%s/%.2000s", dir, json_string_value(exact));
            ref = read_f32(fpath, &n_ref);
            assert_non_null(ref);
        } else {
            assert_true(json_is_array(exact));
            n_ref = json_array_size(exact);
            ref = xmalloc(n_ref * sizeof(float));
            for (size_t k = 0; k < n_ref; k++)
                ref[k] = (float)json_number_value(json_array_get(exact, k));
        }
        assert_int_equal(n_ref, (size_t)V);

        const int n = (int)json_array_size(toks);
        int32_t *tk = xmalloc((size_t)n * sizeof *tk);
        for (int k = 0; k < n; k++) tk[k] = (int32_t)json_integer_value(json_array_get(toks, k));
        Backend *b = make_backend(m, 64, 1);
        float *lg = xmalloc((size_t)V * sizeof(float));
        double err[2];
        for (int mode = 0; mode < 2; mode++) {
            cpu_backend_set_llamacpp_attention(b, mode);
            assert_int_equal(b->prefill(b, 0, tk, n, 0, lg, 0, &e), 0);
            err[mode] = rel_l2(lg, ref, (size_t)V);
            assert_int_equal(argmax(lg, (size_t)V), argmax(ref, (size_t)V));
            if (err[mode] > worst[mode]) worst[mode] = err[mode];
        }
        fprintf(
            stderr,
            "  %-28s rel L2 vs logits_exact: %.3g (fp32 attention), %.3g (llama.cpp-compatible)\n",
            names[i], err[0], err[1]);
        n_run++;
        b->free(b);
        model_free(m);
        free(lg);
        free(tk);
        free(ref);
        json_decref(js);
    }
    free_names(names, n_names);
    fprintf(stderr,
            "  %d references compared (worst %.3g fp32 attention, %.3g llama.cpp-compatible), %d "
            "skipped\n",
            n_run, worst[0], worst[1], n_skip);
    /* The references carry llama.cpp's FP16 KV cache and FP16 attention
     * rounding (docs/kv_layout.md, "Attention numerics"): the exact FP32 path
     * differs from them by that much (it is ~1e-6 from float64 math:
     * test_cpu_exact), the llama.cpp-compatible mode reproduces them. */
    assert_true(worst[0] <= 1e-3); /* observed <= 5.4e-4 */
    assert_true(worst[1] <= 1e-4); /* observed <= 1.7e-5 (most ~2e-7) */
    if (n_run == 0) TEST_SKIP("no reference model could be run");
}

/* ------------------------------------------------- stories260K */

/* Appends the text of SentencePiece token `id` (U+2581 -> space, <0xXX>
 * byte tokens -> the byte); returns bytes written. */
static size_t detok(const Model *m, int32_t id, char *out, size_t cap) {
    const GgufKV *kv = gguf_find_kv(m->gguf, "tokenizer.ggml.tokens");
    const GgufString *str = (const GgufString *)kv->val.arr.data + id;
    size_t o = 0;
    unsigned byte;
    if (str->len == 6 && sscanf(str->s, "<0x%2X>", &byte) == 1) {
        if (cap > 1) out[o++] = (char)byte;
        return o;
    }
    if (id < 3) return 0; /* unk, bos, eos */
    for (size_t i = 0; i < str->len && o + 1 < cap; i++) {
        if (i + 2 < str->len && (unsigned char)str->s[i] == 0xe2 &&
            (unsigned char)str->s[i + 1] == 0x96 && (unsigned char)str->s[i + 2] == 0x81) {
            out[o++] = ' ';
            i += 2;
        } else {
            out[o++] = str->s[i];
        }
    }
    return o;
}

static void stories_prompt(const char *p) {
    Model *m = testdata_model("stories/stories260K.gguf");
    if (!m) TEST_SKIP("stories260K.gguf missing");
    char path[4096], rel[256];
    snprintf(rel, sizeof rel, "stories/stories260K.%s.tokens.txt", p);
    int32_t tk[256];
    const int n = testdata_tokens(rel, tk, 256);
    assert_true(n > 1);
    assert_int_equal(tk[0], 1);

    snprintf(rel, sizeof rel, "stories/stories260K.%s.llamacpp.f32", p);
    assert_int_equal(testdata_file(path, sizeof path, rel), 0);
    size_t n_ref;
    float *ref = read_f32(path, &n_ref);
    assert_non_null(ref);
    const int V = m->cfg.n_vocab;
    assert_int_equal(n_ref, (size_t)V);

    Backend *b = make_backend(m, 128, 1);
    float *lg = xmalloc((size_t)V * sizeof(float));
    Err e = {0};
    double err[2][2];
    for (int mode = 0; mode < 2; mode++)
        for (int gm = 0; gm < 2; gm++) {
            cpu_backend_set_llamacpp_attention(b, mode);
            cpu_backend_set_gemm_min_tokens(b, gm ? 1 : 0);
            assert_int_equal(b->prefill(b, 0, tk, n, 0, lg, 0, &e), 0);
            err[mode][gm] = rel_l2(lg, ref, (size_t)V);
            fprintf(stderr, "  stories260K %s: rel L2 vs llama.cpp %.3g (%s attention, %s)\n", p,
                    err[mode][gm], mode ? "llama.cpp-compatible" : "fp32",
                    gm ? "sgemm" : "blocked");
        }
    for (int gm = 0; gm < 2; gm++) {
        assert_true(err[0][gm] <= 1e-3); /* observed 1.8e-4 .. 2.9e-4 */
        assert_true(err[1][gm] <= 1e-4); /* observed 7.7e-8 .. 1.3e-7 */
    }
    /* portable C attention kernels agree with the SIMD ones */
    cpu_kernels_force_portable(1);
    for (int mode = 0; mode < 2; mode++) {
        cpu_backend_set_llamacpp_attention(b, mode);
        assert_int_equal(b->prefill(b, 0, tk, n, 0, lg, 0, &e), 0);
        double ep = rel_l2(lg, ref, (size_t)V);
        fprintf(stderr,
                "  stories260K %s: rel L2 vs llama.cpp %.3g (%s attention, portable kernels)\n", p,
                ep, mode ? "llama.cpp-compatible" : "fp32");
        assert_true(ep <= (mode ? 1e-4 : 1e-3));
    }
    cpu_kernels_force_portable(0);
    cpu_backend_set_llamacpp_attention(b, CPU_ATTN_LLAMACPP_DEFAULT);
    cpu_backend_set_gemm_min_tokens(b, 0);
    assert_int_equal(b->prefill(b, 0, tk, n, 0, lg, 0, &e), 0);
    size_t am = argmax(lg, (size_t)V);
    assert_int_equal(am, argmax(ref, (size_t)V));

    /* Greedy continuation, detokenized, against llama.cpp's greedy text. */
    size_t len;
    for (int mode = 0; mode < 2; mode++) {
        snprintf(rel, sizeof rel, "stories/stories260K.%s.greedy200.txt", p);
        if (testdata_file(path, sizeof path, rel) != 0) break;
        char *greedy = read_file(path, &len);
        assert_non_null(greedy);
        Backend *g = make_backend(m, 256, 1);
        cpu_backend_set_llamacpp_attention(g, mode);
        char *out = xcalloc(1, 8192);
        size_t olen = 0;
        assert_int_equal(g->prefill(g, 0, tk, n, 0, lg, 0, &e), 0);
        int pos = n;
        for (int step = 0; step < 200 && pos < 256; step++) {
            int32_t next = (int32_t)argmax(lg, (size_t)V);
            olen += detok(m, next, out + olen, 8192 - olen);
            int sq = 0;
            assert_int_equal(g->decode(g, 1, &sq, &next, &pos, lg, &e), 0);
            pos++;
        }
        size_t same = 0, glen = strlen(greedy);
        while (glen > 0 && (greedy[glen - 1] == '\n' || greedy[glen - 1] == ' ')) glen--;
        while (olen > 0 && (out[olen - 1] == '\n' || out[olen - 1] == ' ')) olen--;
        while (same < olen && same < glen && greedy[same] == out[same]) same++;
        fprintf(stderr, "  stories260K %s greedy 200 (%s attention): %zu of %zu chars match\n", p,
                mode ? "llama.cpp-compatible" : "fp32", same, glen);
        assert_int_equal(same, glen);
        assert_int_equal(olen, glen);
        free(out);
        free(greedy);
        g->free(g);
    }

    /* The first greedy token's text must start llama.cpp's greedy text. */
    snprintf(rel, sizeof rel, "stories/stories260K.%s.greedy200.txt", p);
    if (testdata_file(path, sizeof path, rel) == 0) {
        char *greedy = read_file(path, &len);
        assert_non_null(greedy);
        const GgufKV *kv = gguf_find_kv(m->gguf, "tokenizer.ggml.tokens");
        assert_non_null(kv);
        assert_true(am < kv->val.arr.n);
        const GgufString *str = (const GgufString *)kv->val.arr.data + am;
        char piece[256];
        size_t o = 0;
        for (size_t i = 0; i < str->len && o + 2 < sizeof piece; i++) {
            if (i + 2 < str->len && (unsigned char)str->s[i] == 0xe2 &&
                (unsigned char)str->s[i + 1] == 0x96 && (unsigned char)str->s[i + 2] == 0x81) {
                piece[o++] = ' '; /* U+2581 -> space */
                i += 2;
            } else {
                piece[o++] = str->s[i];
            }
        }
        piece[o] = 0;
        fprintf(stderr, "  first greedy piece '%s'\n", piece);
        assert_true(o > 0 && strncmp(greedy, piece, o) == 0);
        free(greedy);
    }
    b->free(b);
    free(lg);
    free(ref);
    model_free(m);
}

static void test_stories_p1(void **state) {
    (void)state;
    stories_prompt("p1");
}
static void test_stories_p2(void **state) {
    (void)state;
    stories_prompt("p2");
}

/* ------------------------------------------------- consistency */

#define NTOK 21

static void make_tokens(int32_t *tk, int n, int V, uint32_t seed) {
    tk[0] = 1;
    for (int i = 1; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        tk[i] = (int32_t)(3 + (seed >> 8) % (uint32_t)(V - 3));
    }
}

static double worst_rows(const float *a, const float *b, int n, int V) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double err = rel_l2(a + (size_t)i * V, b + (size_t)i * V, (size_t)V);
        if (err > worst) worst = err;
    }
    return worst;
}

/* The prefill/decode invariant: one batched prefill, a two-chunk prefill
 * (9 + 12 tokens) and batched decode give exactly (bit for bit) the logits
 * of feeding the tokens one by one, at every position: the blocked kernel
 * quant_matmul shares each token's arithmetic with the single-token path.
 * The optional SGEMM path (different summation order) stays within 1e-4.
 * compat: also in the llama.cpp-compatible mode. */
static void consistency(const char *rel, int compat) {
    Model *m = testdata_model(rel);
    if (!m) TEST_SKIP("%s missing", rel);
    const int V = m->cfg.n_vocab;
    int32_t tk[NTOK];
    make_tokens(tk, NTOK, V, 7);
    Err e = {0};
    Backend *b = make_backend(m, 32, 1);
    cpu_backend_set_llamacpp_attention(b, compat);
    float *ref = xmalloc((size_t)NTOK * V * sizeof(float));
    float *got = xmalloc((size_t)NTOK * V * sizeof(float));
    const size_t bytes = (size_t)NTOK * V * sizeof(float);

    /* token by token */
    for (int i = 0; i < NTOK; i++) {
        int seq = 0, pos = i;
        assert_int_equal(b->decode(b, 1, &seq, &tk[i], &pos, ref + (size_t)i * V, &e), 0);
    }
    /* one batch (blocked kernel) */
    assert_int_equal(b->prefill(b, 0, tk, NTOK, 0, got, 1, &e), 0);
    const double w_batch = worst_rows(got, ref, NTOK, V);
    assert_true(w_batch <= 1e-5);
    assert_memory_equal(got, ref, bytes);
    /* two chunks */
    memset(got, 0, bytes);
    assert_int_equal(b->prefill(b, 0, tk, 9, 0, got, 1, &e), 0);
    assert_int_equal(b->prefill(b, 0, tk + 9, NTOK - 9, 9, got + (size_t)9 * V, 1, &e), 0);
    const double w_chunks = worst_rows(got, ref, NTOK, V);
    assert_true(w_chunks <= 1e-5);
    assert_memory_equal(got, ref, bytes);
    /* last-only logits equal the last row */
    float *last = xmalloc((size_t)V * sizeof(float));
    assert_int_equal(b->prefill(b, 0, tk, NTOK, 0, last, 0, &e), 0);
    assert_memory_equal(last, ref + (size_t)(NTOK - 1) * V, (size_t)V * sizeof(float));
    /* optional SGEMM prefill (not in compat mode, whose products are its own) */
    double w_sgemm = -1;
    if (!compat) {
        cpu_backend_set_gemm_min_tokens(b, 1);
        assert_int_equal(b->prefill(b, 0, tk, NTOK, 0, got, 1, &e), 0);
        cpu_backend_set_gemm_min_tokens(b, 0);
        w_sgemm = worst_rows(got, ref, NTOK, V);
        /* observed <= 7e-7 with an FP32 cache; with FP16 the storage rounding flips */
        assert_true(w_sgemm <= (CPU_KV_F32_DEFAULT ? 1e-4 : 1e-3));
    }
    fprintf(stderr,
            "  %-28s%s batched vs token-by-token: worst rel L2 %.3g (one batch), %.3g (two "
            "chunks), %.3g (sgemm)\n",
            rel + 7, compat ? " [llama.cpp-compatible]" : "", w_batch, w_chunks, w_sgemm);
    free(last);
    free(ref);
    free(got);
    b->free(b);
    model_free(m);
}

static void test_consistency_all(void **state) {
    (void)state;
    static const char *const MODELS[] = {
        "models/tiny-llama-f32.gguf",    "models/tiny-llama-f16.gguf",
        "models/tiny-llama-bf16.gguf",   "models/tiny-llama-q8_0.gguf",
        "models/tiny-llama-q4_0.gguf",   "models/tiny-llama-q4_1.gguf",
        "models/tiny-llama-q4_k_s.gguf", "models/tiny-llama-q5_k_s.gguf",
        "models/tiny-llama-q6_k.gguf",   "models/tiny-qwen2-f32.gguf",
        "models/tiny-qwen2-q8_0.gguf"};
    char path[4096];
    int n = 0;
    g_threads = 2; /* threaded row split must not change any bit */
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        if (testdata_file(path, sizeof path, MODELS[i]) != 0) continue;
        consistency(MODELS[i], 0);
        n++;
    }
    g_threads = 1;
    if (n == 0) TEST_SKIP("no tiny model present");
}
static void test_consistency_compat(void **state) {
    (void)state;
    consistency("models/tiny-llama-q4_k_s.gguf", 1);
    consistency("models/tiny-qwen2-q8_0.gguf", 1);
}

/* decode() with several sequences at different positions equals running
 * each sequence alone. */
static void test_batched_decode(void **state) {
    (void)state;
    Model *m = testdata_model("models/tiny-llama-q4_0.gguf");
    if (!m) TEST_SKIP("tiny-llama-q4_0.gguf missing");
    const int V = m->cfg.n_vocab, NS = 3;
    const int plen[3] = {5, 9, 2};
    int32_t tk[3][16];
    for (int s = 0; s < NS; s++) make_tokens(tk[s], 16, V, 100 + (uint32_t)s);
    Err e = {0};
    Backend *multi = make_backend(m, 32, NS);
    Backend *single = make_backend(m, 32, 1);
    float *lg = xmalloc((size_t)NS * V * sizeof(float));
    float *one = xmalloc((size_t)V * sizeof(float));
    for (int s = 0; s < NS; s++)
        assert_int_equal(multi->prefill(multi, s, tk[s], plen[s], 0, NULL, 0, &e), 0);
    /* two decode steps; batch order differs from sequence order */
    for (int step = 0; step < 2; step++) {
        int seqs[3] = {2, 0, 1}, pos[3];
        int32_t toks[3];
        for (int i = 0; i < NS; i++) {
            pos[i] = plen[seqs[i]] + step;
            toks[i] = tk[seqs[i]][pos[i]];
        }
        assert_int_equal(multi->decode(multi, NS, seqs, toks, pos, lg, &e), 0);
        for (int i = 0; i < NS; i++) {
            const int s = seqs[i];
            assert_int_equal(single->prefill(single, 0, tk[s], pos[i] + 1, 0, one, 0, &e), 0);
            double err = rel_l2(lg + (size_t)i * V, one, (size_t)V);
            assert_true(err <= 1e-5);
            /* same kernel for every batch size: bit-identical */
            assert_memory_equal(lg + (size_t)i * V, one, (size_t)V * sizeof(float));
        }
    }
    /* errors */
    int seqs[2] = {1, 1}, pos[2] = {3, 4};
    int32_t toks[2] = {5, 6};
    assert_int_equal(multi->decode(multi, 2, seqs, toks, pos, lg, &e), -1);
    assert_non_null(strstr(e.msg, "twice"));
    int s = 0, p = 32;
    assert_int_equal(multi->decode(multi, 1, &s, toks, &p, lg, &e), -1);
    int32_t bad = V;
    p = 0;
    assert_int_equal(multi->decode(multi, 1, &s, &bad, &p, lg, &e), -1);
    assert_non_null(strstr(e.msg, "out of range"));
    assert_int_equal(multi->prefill(multi, 3, toks, 1, 0, lg, 0, &e), -1);
    assert_int_equal(multi->prefill(multi, 0, toks, 2, 31, lg, 0, &e), -1);
    free(lg);
    free(one);
    multi->free(multi);
    single->free(single);
    model_free(m);
}

/* ------------------------------------------------- KV cache layout */

/* K at one position equals an independent computation: embedding ->
 * RMSNorm -> W_k x (+ bias) -> RoPE (in double); V likewise without RoPE. */
static void kv_check(const char *rel, int rope_dim, float rope_scale) {
    Model *m = testdata_model(rel);
    if (!m) TEST_SKIP("%s missing", rel);
    if (rope_dim) m->cfg.rope_dim = rope_dim; /* partial rotary / linear scaling variants */
    if (rope_scale) m->cfg.rope_scale = rope_scale;
    const ModelConfig *c = &m->cfg;
    const int D = c->dim, hd = c->head_dim, kvd = c->n_kv_heads * hd;
    int32_t tk[6];
    make_tokens(tk, 6, c->n_vocab, 3);
    Err e = {0};
    Backend *b = make_backend(m, 16, 2);
    assert_int_equal(b->prefill(b, 1, tk, 6, 0, NULL, 0, &e), 0);
    float *k = xmalloc((size_t)6 * kvd * sizeof(float)),
          *v = xmalloc((size_t)6 * kvd * sizeof(float));
    assert_int_equal(b->kv_read(b, 0, 1, 6, k, v, &e), 0);

    const int P = 4;
    float *x = xmalloc((size_t)D * sizeof(float)), *xn = xmalloc((size_t)D * sizeof(float));
    quant_dequant_row(m->tok_embd.type,
                      (const uint8_t *)m->tok_embd.data +
                          (size_t)tk[P] * ggml_row_size(m->tok_embd.type, (uint64_t)D),
                      x, D);
    double ss = 0;
    for (int i = 0; i < D; i++) ss += (double)x[i] * x[i];
    const float *nw = m->layers[0].attn_norm.data;
    for (int i = 0; i < D; i++) xn[i] = (float)(x[i] / sqrt(ss / D + c->norm_eps) * nw[i]);
    const LayerWeights *L = &m->layers[0];
    const size_t rb = ggml_row_size(L->wk.type, (uint64_t)D);
    double *kr = xmalloc((size_t)kvd * sizeof(double));
    double err_k = 0, err_v = 0, nk = 0, nv = 0;
    for (int r = 0; r < kvd; r++) {
        kr[r] = quant_dot(L->wk.type, (const uint8_t *)L->wk.data + (size_t)r * rb, xn, D);
        if (L->bk.data) kr[r] += ((const float *)L->bk.data)[r];
        double vr = quant_dot(L->wv.type, (const uint8_t *)L->wv.data + (size_t)r * rb, xn, D);
        if (L->bv.data) vr += ((const float *)L->bv.data)[r];
        double d = v[(size_t)P * kvd + r] - vr;
        err_v += d * d;
        nv += vr * vr;
    }
    for (int h = 0; h < c->n_kv_heads; h++) {
        double *kh = kr + (size_t)h * hd;
        for (int i = 0; i < c->rope_dim / 2; i++) {
            int a = c->rope_neox ? i : 2 * i, bb = c->rope_neox ? i + c->rope_dim / 2 : 2 * i + 1;
            double th = P * c->rope_scale * pow(c->rope_base, -2.0 * i / c->rope_dim);
            double x0 = kh[a], x1 = kh[bb];
            kh[a] = x0 * cos(th) - x1 * sin(th);
            kh[bb] = x0 * sin(th) + x1 * cos(th);
        }
    }
    for (int r = 0; r < kvd; r++) {
        double d = k[(size_t)P * kvd + r] - kr[r];
        err_k += d * d;
        nk += kr[r] * kr[r];
    }
    err_k = sqrt(err_k / nk);
    err_v = sqrt(err_v / nv);
    fprintf(stderr, "  %s (rope_dim %d, scale %g): KV cache vs independent K %.3g, V %.3g\n", rel,
            c->rope_dim, (double)c->rope_scale, err_k, err_v);
    /* FP32 cache (default): float vs double rounding only; FP16: storage */
    assert_true(err_k < (CPU_KV_F32_DEFAULT ? 1e-5 : 1e-3));
    assert_true(err_v < (CPU_KV_F32_DEFAULT ? 1e-5 : 1e-3));
    /* sequence 0 was never written: zeros */
    assert_int_equal(b->kv_read(b, 0, 0, 6, k, v, &e), 0);
    for (int i = 0; i < 6 * kvd; i++) assert_true(k[i] == 0 && v[i] == 0);
    assert_int_equal(b->kv_read(b, c->n_layers, 0, 1, k, v, &e), -1);
    free(k);
    free(v);
    free(x);
    free(xn);
    free(kr);
    b->free(b);
    model_free(m);
}

static void test_kv_layout_llama(void **state) {
    (void)state;
    kv_check("models/tiny-llama-f16.gguf", 0, 0);
    kv_check("models/tiny-llama-f16.gguf", 32, 0.25f);
}
static void test_kv_layout_qwen2(void **state) {
    (void)state;
    kv_check("models/tiny-qwen2-q8_0.gguf", 0, 0);
    kv_check("models/tiny-qwen2-q8_0.gguf", 48, 0.5f);
}

/* A prompt longer than the internal batch (256) is split transparently:
 * all_logits rows match token-by-token decoding across the split. */
static void test_long_prefill(void **state) {
    (void)state;
    Model *m = testdata_model("stories/stories260K.gguf");
    if (!m) TEST_SKIP("stories260K.gguf missing");
    const int V = m->cfg.n_vocab, N = 300;
    int32_t *tk = xmalloc(N * sizeof *tk);
    make_tokens(tk, N, V, 11);
    g_threads = 2; /* long enough for the threaded attention path */
    Backend *b = make_backend(m, 320, 1);
    g_threads = 1;
    float *all = xmalloc((size_t)N * V * sizeof(float)), *one = xmalloc((size_t)V * sizeof(float));
    Err e = {0};
    for (int gm = 0; gm < 2; gm++) {
        /* blocked kernel: bit-identical to token-by-token across the 256-token
         * internal chunk boundary; SGEMM: a different summation order */
        cpu_backend_set_gemm_min_tokens(b, gm ? CPU_GEMM_MIN_TOKENS : 0);
        assert_int_equal(b->prefill(b, 0, tk, N, 0, all, 1, &e), 0);
        double worst = 0;
        int differ = 0;
        for (int i = 0; i < N; i++) {
            int s = 0, p = i;
            assert_int_equal(b->decode(b, 1, &s, &tk[i], &p, one, &e), 0);
            double err = rel_l2(all + (size_t)i * V, one, (size_t)V);
            if (err > worst) worst = err;
            differ += memcmp(all + (size_t)i * V, one, (size_t)V * sizeof(float)) != 0;
        }
        fprintf(stderr,
                "  stories260K 300-token prefill (%s) vs token-by-token: worst rel L2 %.3g, %d "
                "positions not bit-identical\n",
                gm ? "sgemm" : "blocked", worst, differ);
        /* the optional SGEMM path is not bit-exact: with the FP16 cache its last-bit
         * differences flip cache roundings (observed 2e-4 over 300 tokens) */
        assert_true(worst <= (gm ? (CPU_KV_F32_DEFAULT ? 1e-4 : 1e-3) : 1e-5));
        if (!gm) assert_int_equal(differ, 0);
    }
    free(all);
    free(one);
    free(tk);
    b->free(b);
    model_free(m);
}

static void test_peak(void **state) {
    (void)state;
    Model *m = testdata_model("stories/stories260K.gguf");
    if (!m) TEST_SKIP("stories260K.gguf missing");
    Backend *b = make_backend(m, 16, 1);
    double bw = 0, gf = 0;
    Err e = {0};
    assert_int_equal(b->peak(b, &bw, &gf, &e), 0);
    fprintf(stderr, "  cpu peak: copy %.1f GB/s, sgemm %.1f GFLOP/s\n", bw, gf);
    assert_true(bw > 0 && gf > 0);
    b->free(b);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_models),   cmocka_unit_test(test_stories_p1),
        cmocka_unit_test(test_stories_p2),         cmocka_unit_test(test_consistency_all),
        cmocka_unit_test(test_consistency_compat), cmocka_unit_test(test_batched_decode),
        cmocka_unit_test(test_kv_layout_llama),    cmocka_unit_test(test_kv_layout_qwen2),
        cmocka_unit_test(test_long_prefill),       cmocka_unit_test(test_peak),
    };
    return TEST_MAIN(tests);
}
