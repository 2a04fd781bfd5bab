/* fuzz_gguf.c - libFuzzer target for gguf_parse.
 *
 * For every input: gguf_parse must either fail with a one-line
 * "<name>: offset N: ..." message or succeed; on success every key and
 * tensor must be found by lookup, every tensor's bytes must be readable
 * (ASan checks the bounds), and re-writing the file with the writer must
 * give a file that parses to the same keys and tensors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_gguf: check failed: %s (line %d)\n", #c, __LINE__);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static volatile uint8_t g_sink;

static void roundtrip(const GgufFile *f) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    CHECK(fp);
    GgufWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) gguf_writer_set_kv(w, &f->kv[i]);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GgufTensor *t = &f->tensors[i];
        CHECK(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne) == (int)i);
        CHECK(gguf_writer_tensor_nbytes(w, (int)i) == t->nbytes);
    }
    Err e;
    CHECK(gguf_writer_write_header(w, fp, &e) == 0);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        CHECK(gguf_writer_write_tensor_data(w, fp, (int)i, f->tensors[i].data, &e) == 0);
    gguf_writer_free(w);
    fclose(fp);
    GgufFile *g = gguf_parse(buf, len, "rewritten", &e);
    if (!g) fprintf(stderr, "fuzz_gguf: re-parse failed: %s\n", e.msg);
    CHECK(g);
    CHECK(g->n_kv == f->n_kv && g->n_tensors == f->n_tensors);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const GgufKV *kv = gguf_find_kv(g, f->kv[i].key);
        CHECK(kv && kv->val.type == f->kv[i].val.type);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GgufTensor *a = &f->tensors[i], *b = gguf_find_tensor(g, a->name);
        CHECK(b && b->type == a->type && b->nbytes == a->nbytes && b->n_dims == a->n_dims);
        CHECK(memcmp(a->data, b->data, (size_t)a->nbytes) == 0);
    }
    gguf_close(g);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Err e;
    e.msg[0] = 0;
    GgufFile *f = gguf_parse(data, size, "fuzz", &e);
    if (!f) {
        CHECK(strncmp(e.msg, "fuzz: offset ", 13) == 0);
        CHECK(!strchr(e.msg, '\n'));
        return 0;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) CHECK(gguf_find_kv(f, f->kv[i].key) == &f->kv[i]);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GgufTensor *t = &f->tensors[i];
        CHECK(gguf_find_tensor(f, t->name) == t);
        const uint8_t *p = t->data;
        g_sink = p[0];
        g_sink = p[t->nbytes - 1];
    }
    uint32_t u;
    float x;
    const char *s;
    const GgufArray *a;
    int64_t i64;
    bool b;
    (void)gguf_get_u32(f, "general.alignment", &u, &e);
    (void)gguf_get_f32(f, "a", &x, &e);
    (void)gguf_get_i64(f, "a", &i64, &e);
    (void)gguf_get_str(f, "general.architecture", &s, &e);
    (void)gguf_get_bool_opt(f, "a", false, &b, &e);
    (void)gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &a, &e);
    /* A valid but huge alignment (up to 2^31) would make the rewritten
     * file gigabytes of padding: skip the round trip for those. */
    if (f->alignment <= 4096) roundtrip(f);
    gguf_close(f);
    return 0;
}
