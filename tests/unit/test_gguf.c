/* test_gguf.c - GGUF parser, getters, lookup and writer.
 *
 * Every failure case is a handcrafted file built byte by byte here (no
 * binary files in the repo); each must return NULL with a one-line message
 * "<name>: offset N: ..." containing the expected fragment. A valid file
 * truncated at every byte offset must fail cleanly (run under ASan). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "base/util.h"
#include "gguf/gguf.h"

/* ------------------------------------------------------------ builder */

typedef struct B {
    uint8_t *p;
    size_t n, cap;
} B;

static void b_put(B *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void b_u8(B *b, uint8_t v) { b_put(b, &v, 1); }
static void b_u32(B *b, uint32_t v) { b_put(b, &v, 4); }
static void b_u64(B *b, uint64_t v) { b_put(b, &v, 8); }
static void b_str(B *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_hdr(B *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_u32(b, GGUF_MAGIC);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(B *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, GGUF_TYPE_UINT32);
    b_u32(b, v);
}
static void b_tensor(B *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t off) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) b_u64(b, ne[i]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(B *b, size_t align) {
    while (b->n % align) b_u8(b, 0);
}
static void b_zeros(B *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}

/* Parses b and expects failure with `frag` in the message. */
static void expect_fail_at(B *b, const char *frag, long offset) {
    Err e = {{0}};
    GgufFile *f = gguf_parse(b->p, b->n, "case.gguf", &e);
    if (f) {
        gguf_close(f);
        fail_msg("parse unexpectedly succeeded (expected '%s')", frag);
    }
    if (!strstr(e.msg, frag)) fail_msg("message '%s' lacks '%s'", e.msg, frag);
    if (strncmp(e.msg, "case.gguf: offset ", 18) != 0) fail_msg("bad format: '%s'", e.msg);
    if (strchr(e.msg, '\n')) fail_msg("multi-line message: '%s'", e.msg);
    if (offset >= 0) {
        char want[64];
        snprintf(want, sizeof want, "case.gguf: offset %ld: ", offset);
        if (strncmp(e.msg, want, strlen(want)) != 0)
            fail_msg("message '%s' does not start with '%s'", e.msg, want);
    }
    free(b->p);
    memset(b, 0, sizeof *b);
}
#define expect_fail(b, frag) expect_fail_at(b, frag, -1)

static GgufFile *expect_ok(B *b) {
    Err e = {{0}};
    GgufFile *f = gguf_parse(b->p, b->n, "ok.gguf", &e);
    if (!f) fail_msg("parse failed: %s", e.msg);
    return f;
}

/* ------------------------------------------------------------ type table */

static void test_types(void **state) {
    (void)state;
    struct {
        uint32_t id;
        const char *name;
        uint32_t bs, ts;
    } want[] = {
        {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},
        {3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
        {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},      {10, "q2_K", 256, 84},
        {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
        {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66},
        {17, "iq2_xs", 256, 74},  {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},
        {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},
        {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
        {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},
        {29, "iq1_m", 256, 56},   {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},
        {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const GgmlTypeInfo *ti = ggml_type_info(want[i].id);
        assert_non_null(ti);
        assert_string_equal(ti->name, want[i].name);
        assert_int_equal(ti->block_size, want[i].bs);
        assert_int_equal(ti->type_size, want[i].ts);
        assert_int_equal(ggml_type_from_name(want[i].name), (int)want[i].id);
    }
    uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 1000, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_null(ggml_type_info(unknown[i]));
        char buf[32];
        snprintf(buf, sizeof buf, "unknown(%u)", unknown[i]);
        assert_string_equal(ggml_type_name(unknown[i]), buf);
    }
    assert_int_equal(ggml_type_from_name("Q4_K"), GGML_TYPE_Q4_K);
    assert_int_equal(ggml_type_from_name("BF16"), GGML_TYPE_BF16);
    assert_int_equal(ggml_type_from_name("q4_2"), -1);
    assert_int_equal(ggml_row_size(GGML_TYPE_Q4_0, 64), 36);
    assert_int_equal(ggml_row_size(GGML_TYPE_Q4_0, 33), 0);
    assert_int_equal(ggml_row_size(GGML_TYPE_F16, 7), 14);
    assert_int_equal(ggml_row_size(4, 32), 0);
    assert_string_equal(gguf_value_type_name(GGUF_TYPE_STRING), "string");
}

/* ------------------------------------------------------------ writer round trip */

static void write_sample(const char *path, uint32_t alignment) {
    GgufWriter *w = gguf_writer_new();
    if (alignment) gguf_writer_set_u32(w, "general.alignment", alignment);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 2);
    gguf_writer_set_i32(w, "test.i32", -7);
    gguf_writer_set_u64(w, "test.u64", 1ull << 40);
    gguf_writer_set_f32(w, "test.f32", 1e-5f);
    gguf_writer_set_bool(w, "test.bool", true);
    float fa[3] = {1.5f, -2.0f, 3.25f};
    gguf_writer_set_arr(w, "test.farr", GGUF_TYPE_FLOAT32, fa, 3);
    int32_t ia[4] = {1, -2, 3, -4};
    gguf_writer_set_arr(w, "test.iarr", GGUF_TYPE_INT32, ia, 4);
    uint8_t ba[3] = {1, 0, 1};
    gguf_writer_set_arr(w, "test.barr", GGUF_TYPE_BOOL, ba, 3);
    const char *toks[] = {"<s>", "</s>", "hello", ""};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    gguf_writer_set_u32(w, "test.replaced", 1);
    gguf_writer_set_u32(w, "test.replaced", 2);
    uint64_t ne1[2] = {64, 3}, ne2[1] = {5}, ne3[2] = {32, 2};
    int a = gguf_writer_add_tensor(w, "tok_embd.weight", GGML_TYPE_F32, 2, ne1);
    int b = gguf_writer_add_tensor(w, "norm.weight", GGML_TYPE_F16, 1, ne2);
    int c = gguf_writer_add_tensor(w, "q.weight", GGML_TYPE_Q8_0, 2, ne3);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(c, 2);
    assert_int_equal(gguf_writer_tensor_nbytes(w, 0), 64 * 3 * 4);
    assert_int_equal(gguf_writer_tensor_nbytes(w, 1), 10);
    assert_int_equal(gguf_writer_tensor_nbytes(w, 2), 2 * 34);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    Err e = {{0}};
    assert_int_equal(gguf_writer_write_header(w, fp, &e), 0);
    float d0[192];
    for (int i = 0; i < 192; i++) d0[i] = (float)i * 0.5f;
    /* tensor 0 streamed in two parts */
    assert_int_equal(gguf_writer_write_tensor_part(w, fp, 0, d0, 100 * 4, &e), 0);
    assert_int_equal(gguf_writer_write_tensor_part(w, fp, 0, d0 + 100, 92 * 4, &e), 0);
    uint16_t d1[5];
    for (int i = 0; i < 5; i++) d1[i] = f32_to_fp16((float)i);
    /* out of order is refused */
    uint8_t d2[68];
    for (int i = 0; i < 68; i++) d2[i] = (uint8_t)i;
    assert_int_equal(gguf_writer_write_tensor_data(w, fp, 2, d2, &e), -1);
    assert_non_null(strstr(e.msg, "out of order"));
    assert_int_equal(gguf_writer_write_tensor_data(w, fp, 1, d1, &e), 0);
    assert_int_equal(gguf_writer_write_tensor_data(w, fp, 2, d2, &e), 0);
    fclose(fp);
    gguf_writer_free(w);
}

static void test_roundtrip(void **state) {
    (void)state;
    uint32_t aligns[2] = {0, 64};
    for (int k = 0; k < 2; k++) {
        char *path = test_tmp_path(".gguf");
        write_sample(path, aligns[k]);
        Err e = {{0}};
        GgufFile *f = gguf_open(path, &e);
        if (!f) fail_msg("open: %s", e.msg);
        assert_int_equal(f->version, 3);
        assert_int_equal(f->alignment, aligns[k] ? aligns[k] : 32);
        assert_int_equal(f->data_offset % f->alignment, 0);
        assert_int_equal(f->n_tensors, 3);
        const char *s;
        assert_int_equal(gguf_get_str(f, "general.architecture", &s, &e), 0);
        assert_string_equal(s, "llama");
        uint32_t u;
        assert_int_equal(gguf_get_u32(f, "llama.block_count", &u, &e), 0);
        assert_int_equal(u, 2);
        assert_int_equal(gguf_get_u32(f, "test.replaced", &u, &e), 0);
        assert_int_equal(u, 2);
        /* i32 -7 doesn't fit u32 */
        assert_int_equal(gguf_get_u32(f, "test.i32", &u, &e), -1);
        assert_non_null(strstr(e.msg, "test.i32"));
        assert_non_null(strstr(e.msg, "does not fit"));
        int64_t i64;
        assert_int_equal(gguf_get_i64(f, "test.i32", &i64, &e), 0);
        assert_int_equal(i64, -7);
        assert_int_equal(gguf_get_i64(f, "test.u64", &i64, &e), 0);
        assert_int_equal(i64, 1ll << 40);
        assert_int_equal(gguf_get_u32(f, "test.u64", &u, &e), -1);
        float fl;
        assert_int_equal(gguf_get_f32(f, "test.f32", &fl, &e), 0);
        assert_true(fl == 1e-5f);
        assert_int_equal(gguf_get_f32(f, "general.architecture", &fl, &e), -1);
        assert_non_null(strstr(e.msg, "general.architecture"));
        assert_non_null(strstr(e.msg, "expected a float, found string"));
        assert_int_equal(gguf_get_f32_opt(f, "absent", 2.5f, &fl, &e), 0);
        assert_true(fl == 2.5f);
        assert_int_equal(gguf_get_f32_opt(f, "test.bool", 2.5f, &fl, &e), -1);
        bool bo = false;
        assert_int_equal(gguf_get_bool_opt(f, "test.bool", false, &bo, &e), 0);
        assert_true(bo);
        assert_int_equal(gguf_get_bool_opt(f, "absent", true, &bo, &e), 0);
        assert_true(bo);
        assert_int_equal(gguf_get_u32_opt(f, "absent", 9, &u, &e), 0);
        assert_int_equal(u, 9);
        assert_int_equal(gguf_get_u32_opt(f, "test.f32", 9, &u, &e), -1);
        assert_int_equal(gguf_get_u32(f, "absent", &u, &e), -1);
        assert_non_null(strstr(e.msg, "'absent': missing"));
        assert_int_equal(gguf_get_str_opt(f, "absent", &s, &e), 0);
        assert_null(s);
        assert_int_equal(gguf_get_str(f, "test.u64", &s, &e), -1);
        const GgufArray *arr;
        assert_int_equal(gguf_get_arr(f, "test.farr", GGUF_TYPE_FLOAT32, &arr, &e), 0);
        assert_int_equal(arr->n, 3);
        assert_true(((float *)arr->data)[2] == 3.25f);
        assert_int_equal(gguf_get_arr(f, "test.farr", GGUF_TYPE_INT32, &arr, &e), -1);
        assert_non_null(strstr(e.msg, "array of float32"));
        assert_int_equal(gguf_get_arr(f, "test.iarr", GGUF_TYPE_COUNT, &arr, &e), 0);
        assert_int_equal(((int32_t *)arr->data)[3], -4);
        assert_int_equal(gguf_get_arr(f, "test.barr", GGUF_TYPE_BOOL, &arr, &e), 0);
        assert_int_equal(((uint8_t *)arr->data)[1], 0);
        assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &arr, &e), 0);
        assert_int_equal(arr->n, 4);
        assert_string_equal(((GgufString *)arr->data)[2].s, "hello");
        assert_int_equal(((GgufString *)arr->data)[3].len, 0);

        const GgufTensor *t = gguf_find_tensor(f, "tok_embd.weight");
        assert_non_null(t);
        assert_int_equal(t->n_dims, 2);
        assert_int_equal(t->ne[0], 64);
        assert_int_equal(t->ne[1], 3);
        assert_int_equal(t->ne[2], 1);
        assert_int_equal(t->n_elements, 192);
        assert_int_equal(t->offset, 0);
        assert_true(((const float *)t->data)[191] == 95.5f);
        t = gguf_find_tensor(f, "norm.weight");
        assert_non_null(t);
        assert_int_equal(t->offset % f->alignment, 0);
        assert_true(fp16_to_f32(((const uint16_t *)t->data)[4]) == 4.0f);
        t = gguf_find_tensor(f, "q.weight");
        assert_int_equal(((const uint8_t *)t->data)[67], 67);
        assert_null(gguf_find_tensor(f, "nope"));
        assert_null(gguf_find_kv(f, "nope"));

        int64_t shape[2] = {64, -1};
        uint32_t types[2] = {GGML_TYPE_F16, GGML_TYPE_F32};
        assert_non_null(gguf_expect_tensor(f, "tok_embd.weight", 2, shape, types, 2, &e));
        assert_null(gguf_expect_tensor(f, "tok_embd.weight", 2, shape, types, 1, &e));
        assert_non_null(strstr(e.msg, "expected type f16, found f32"));
        int64_t bad[2] = {32, 3};
        assert_null(gguf_expect_tensor(f, "tok_embd.weight", 2, bad, NULL, 0, &e));
        assert_non_null(strstr(e.msg, "expected shape [32, 3], found [64, 3]"));
        assert_null(gguf_expect_tensor(f, "tok_embd.weight", 1, bad, NULL, 0, &e));
        assert_null(gguf_expect_tensor(f, "absent.weight", 1, NULL, NULL, 0, &e));
        assert_non_null(strstr(e.msg, "'absent.weight': missing"));

        /* re-write every KV through gguf_writer_set_kv and compare */
        GgufWriter *w = gguf_writer_new();
        for (uint64_t i = 0; i < f->n_kv; i++) gguf_writer_set_kv(w, &f->kv[i]);
        char *p2 = test_tmp_path(".gguf");
        FILE *fp = fopen(p2, "wb");
        assert_int_equal(gguf_writer_write_header(w, fp, &e), 0);
        fclose(fp);
        gguf_writer_free(w);
        GgufFile *g = gguf_open(p2, &e);
        if (!g) fail_msg("reopen: %s", e.msg);
        assert_int_equal(g->n_kv, f->n_kv);
        assert_int_equal(g->data_offset, g->size); /* no tensors */
        const GgufKV *kv = gguf_find_kv(g, "tokenizer.ggml.tokens");
        assert_non_null(kv);
        assert_int_equal(kv->val.arr.n, 4);
        gguf_close(g);
        remove(p2);
        free(p2);

        /* truncation at every byte offset before the end of the last
         * tensor's data fails cleanly; the final padding may be missing */
        size_t n = (size_t)f->size, data_end = 0;
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            size_t end = (size_t)(f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes);
            if (end > data_end) data_end = end;
        }
        assert_true(data_end < n); /* the sample ends with padding */
        uint8_t *copy = malloc(n);
        memcpy(copy, f->base, n);
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *buf = malloc(cut ? cut : 1);
            memcpy(buf, copy, cut);
            GgufFile *h = gguf_parse(buf, cut, "cut.gguf", &e);
            if (cut < data_end) {
                if (h) fail_msg("truncated at %zu of %zu parsed", cut, n);
                assert_non_null(strstr(e.msg, "cut.gguf: offset "));
            } else {
                if (!h) fail_msg("cut in the final padding (%zu) failed: %s", cut, e.msg);
                gguf_close(h);
            }
            free(buf);
        }
        free(copy);
        gguf_close(f);
        remove(path);
        free(path);
    }
}

/* ------------------------------------------------------------ failure cases */

static void test_bad_header(void **state) {
    (void)state;
    B b = {0};
    expect_fail_at(&b, "truncated: magic", 0);
    b_u32(&b, 0x12345678);
    b_u32(&b, 3);
    expect_fail_at(&b, "bad magic", 0);
    b_u32(&b, GGUF_MAGIC);
    b_u32(&b, 1);
    b_u64(&b, 0);
    b_u64(&b, 0);
    expect_fail_at(&b, "unsupported GGUF version 1", 4);
    b_hdr(&b, 4, 0, 0);
    expect_fail_at(&b, "unsupported GGUF version 4", 4);
    b_hdr(&b, 0x03000000u, 0, 0);
    expect_fail_at(&b, "big-endian", 4);
    b_u32(&b, GGUF_MAGIC);
    b_u32(&b, 3);
    b_u32(&b, 0);
    expect_fail_at(&b, "truncated: tensor count", 8);
    b_hdr(&b, 3, 0, 1ull << 60);
    expect_fail_at(&b, "metadata count 1152921504606846976 exceeds", 16);
    b_hdr(&b, 3, 1ull << 60, 0);
    expect_fail_at(&b, "tensor count", 8);
    b_hdr(&b, 3, UINT64_MAX, UINT64_MAX);
    expect_fail(&b, "count");
}

static void test_bad_metadata(void **state) {
    (void)state;
    B b = {0};
    /* key length 2^63 */
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 1ull << 63);
    b_zeros(&b, 16);
    expect_fail_at(&b, "key length 9223372036854775808 exceeds", 24);
    /* string value length huge */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, UINT64_MAX);
    b_zeros(&b, 4);
    expect_fail(&b, "key 'a.b': string value length 18446744073709551615 exceeds");
    /* unknown value type */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, 13);
    b_u32(&b, 0);
    expect_fail_at(&b, "unknown value type 13", 35);
    /* unknown array element type */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, 99);
    b_u64(&b, 0);
    expect_fail(&b, "unknown array element type 99");
    /* arrays nested two levels */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u64(&b, 1);
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u64(&b, 1);
    b_u32(&b, GGUF_TYPE_UINT8);
    b_u64(&b, 0);
    expect_fail(&b, "nested more than one level");
    /* array count exceeding the file */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_UINT32);
    b_u64(&b, 1ull << 62);
    b_zeros(&b, 16);
    expect_fail(&b, "array of 4611686018427387904 uint32");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 3);
    b_str(&b, "x");
    b_str(&b, "y");
    expect_fail(&b, "array of 3 string");
    /* a string element whose length exceeds the file */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 2);
    b_str(&b, "x");
    b_u64(&b, 1000);
    b_zeros(&b, 8);
    expect_fail(&b, "key 'a.b': element 1: string length 1000 exceeds");
    /* invalid bool */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_BOOL);
    b_u8(&b, 2);
    expect_fail_at(&b, "invalid bool value 2", 39);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_BOOL);
    b_u64(&b, 3);
    b_u8(&b, 1);
    b_u8(&b, 0);
    b_u8(&b, 255);
    expect_fail(&b, "element 2: invalid bool value 255");
    /* duplicate key */
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "a.b", 1);
    b_kv_u32(&b, "a.b", 2);
    expect_fail_at(&b, "duplicate key 'a.b'", 24 + 8 + 3 + 4 + 4);
    /* names from the file are escaped in messages (one line) */
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "a\nb\\", 1);
    b_kv_u32(&b, "a\nb\\", 2);
    expect_fail(&b, "duplicate key 'a\\x0ab\\x5c'");
    /* empty key, key with NUL, invalid UTF-8 key */
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "", 1);
    expect_fail(&b, "empty key");
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 3);
    b_put(&b, "a\0b", 3);
    b_u32(&b, GGUF_TYPE_UINT8);
    b_u8(&b, 0);
    expect_fail(&b, "key contains a NUL byte");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "a\xff", 1);
    expect_fail(&b, "not valid UTF-8");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "a\xc0\x80", 1); /* overlong NUL */
    expect_fail(&b, "not valid UTF-8");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "a\xed\xa0\x80", 1); /* surrogate */
    expect_fail(&b, "not valid UTF-8");
    /* alignment: wrong type, zero, not a power of two */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, GGUF_TYPE_INT32);
    b_u32(&b, 32);
    expect_fail(&b, "key 'general.alignment': must be uint32, found int32");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, "alignment 0 is not a non-zero power of two");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 48);
    expect_fail(&b, "alignment 48 is not a non-zero power of two");
    /* truncated in the middle of a value */
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "a.b");
    b_u32(&b, GGUF_TYPE_UINT64);
    b_u32(&b, 0);
    expect_fail_at(&b, "truncated: uint64 needs 8 bytes, 4 left", 39);
}

static void test_bad_tensors(void **state) {
    (void)state;
    B b = {0};
    uint64_t ne[4] = {32, 2, 1, 1};
    /* n_dims 0 and 5 */
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 0, ne, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail_at(&b, "tensor 0 't': n_dims 0 out of range", 33);
    b_hdr(&b, 3, 1, 0);
    b_str(&b, "t");
    b_u32(&b, 5);
    b_zeros(&b, 64);
    expect_fail(&b, "n_dims 5 out of range");
    /* zero-sized dimension */
    uint64_t z[2] = {32, 0};
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, z, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail_at(&b, "zero-sized dimension 1", 45);
    /* dimension > INT64_MAX, element count overflow */
    uint64_t big[2] = {32, 1ull << 63};
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, big, GGML_TYPE_F32, 0);
    b_zeros(&b, 64);
    expect_fail(&b, "exceeds INT64_MAX");
    uint64_t ovf[3] = {1ull << 32, 1ull << 32, 2};
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 3, ovf, GGML_TYPE_F32, 0);
    b_zeros(&b, 64);
    expect_fail(&b, "element count overflows");
    uint64_t ovf2[2] = {1ull << 31, 1ull << 32}; /* fits int64, 4 bytes each overflow? no: 2^63 */
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, ovf2, GGML_TYPE_F32, 0);
    b_zeros(&b, 64);
    expect_fail(&b, "element count overflows");
    uint64_t ovf3[2] = {1ull << 31, 1ull << 31}; /* 2^62 elements * 8 bytes overflows */
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, ovf3, GGML_TYPE_F64, 0);
    b_zeros(&b, 64);
    expect_fail(&b, "byte size overflows");
    /* unknown / removed types */
    uint32_t bad_types[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 1000};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        char frag[64];
        snprintf(frag, sizeof frag, "unknown ggml type id %u", bad_types[i]);
        b_hdr(&b, 3, 1, 0);
        b_tensor(&b, "t", 2, ne, bad_types[i], 0);
        b_pad(&b, 32);
        b_zeros(&b, 256);
        expect_fail(&b, frag);
    }
    /* row not a multiple of the block size */
    uint64_t odd[2] = {48, 2};
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, odd, GGML_TYPE_Q4_0, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "row of 48 elements is not a multiple of the q4_0 block size 32");
    /* data out of bounds */
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, ne, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 255);
    expect_fail(&b, "lies outside the 255-byte data section");
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 2, ne, GGML_TYPE_F32, UINT64_MAX - 31);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "lies outside");
    /* misaligned offset */
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 1, ne, GGML_TYPE_F32, 16);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "offset 16 is not a multiple of the alignment 32");
    /* overlapping tensors (listed out of offset order) */
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "b", 2, ne, GGML_TYPE_F32, 224);
    b_tensor(&b, "a", 2, ne, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_fail(&b, "tensor 0 'b': data at 224 overlaps tensor 'a'");
    /* duplicate and empty tensor names */
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "a", 1, ne, GGML_TYPE_F32, 0);
    b_tensor(&b, "a", 1, ne, GGML_TYPE_F32, 128);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "tensor 1 'a': duplicate tensor name");
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "\xff\n", 1, ne, GGML_TYPE_F32, 0);
    b_tensor(&b, "\xff\n", 1, ne, GGML_TYPE_F32, 128);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "tensor 1 '\\xff\\x0a': duplicate tensor name");
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "", 1, ne, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_fail(&b, "empty tensor name");
    /* file ends before the padding to the data section */
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 1, ne, GGML_TYPE_F32, 0);
    expect_fail(&b, "padding to the data section");
}

static void test_valid_edge_cases(void **state) {
    (void)state;
    B b = {0};
    /* v2, no tensors, no final padding */
    b_hdr(&b, 2, 0, 1);
    b_kv_u32(&b, "a.b", 7);
    GgufFile *f = expect_ok(&b);
    assert_int_equal(f->version, 2);
    assert_int_equal(f->data_offset, b.n);
    gguf_close(f);
    free(b.p);
    memset(&b, 0, sizeof b);
    /* nested arrays one level deep, empty arrays, every scalar type */
    b_hdr(&b, 3, 1, 3);
    b_str(&b, "n.arr");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u64(&b, 2);
    b_u32(&b, GGUF_TYPE_INT16);
    b_u64(&b, 2);
    uint16_t v1 = 5, v2 = 0xFFFF;
    b_put(&b, &v1, 2);
    b_put(&b, &v2, 2);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 1);
    b_str(&b, "zz");
    b_str(&b, "e.arr");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 0);
    b_kv_u32(&b, "general.alignment", 64);
    uint64_t ne[1] = {256};
    b_tensor(&b, "q", 1, ne, GGML_TYPE_Q4_K, 0);
    b_pad(&b, 64);
    b_zeros(&b, 144);
    f = expect_ok(&b);
    assert_int_equal(f->alignment, 64);
    assert_int_equal(f->data_offset % 64, 0);
    const GgufArray *a;
    Err e;
    assert_int_equal(gguf_get_arr(f, "n.arr", GGUF_TYPE_ARRAY, &a, &e), 0);
    assert_int_equal(a->n, 2);
    const GgufArray *inner = a->data;
    assert_int_equal(inner[0].type, GGUF_TYPE_INT16);
    assert_int_equal(((int16_t *)inner[0].data)[1], -1);
    assert_string_equal(((GgufString *)inner[1].data)[0].s, "zz");
    assert_int_equal(gguf_get_arr(f, "e.arr", GGUF_TYPE_STRING, &a, &e), 0);
    assert_int_equal(a->n, 0);
    assert_int_equal(gguf_find_tensor(f, "q")->nbytes, 144);
    gguf_close(f);
    free(b.p);
}

/* A 150k-entry vocabulary: parses (quickly; no timing assertion) with
 * O(1) lookups, and every token is intact. */
static void test_big_vocab(void **state) {
    (void)state;
    enum { N = 150000 };
    B b = {0};
    b_hdr(&b, 3, 0, 3);
    b_str(&b, "tokenizer.ggml.tokens");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, N);
    char tok[32];
    for (int i = 0; i < N; i++) {
        snprintf(tok, sizeof tok, "tok%d", i);
        b_str(&b, tok);
    }
    b_str(&b, "tokenizer.ggml.scores");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_FLOAT32);
    b_u64(&b, N);
    for (int i = 0; i < N; i++) {
        float s = -(float)i;
        b_put(&b, &s, 4);
    }
    b_kv_u32(&b, "a.b", 1);
    double t0 = time_now();
    GgufFile *f = expect_ok(&b);
    double dt = time_now() - t0;
    fprintf(stderr, "150k vocab parse: %.1f ms\n", dt * 1e3);
    const GgufArray *a;
    Err e;
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &a, &e), 0);
    assert_int_equal(a->n, N);
    assert_string_equal(((GgufString *)a->data)[N - 1].s, "tok149999");
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &a, &e), 0);
    assert_true(((float *)a->data)[N - 1] == -149999.0f);
    gguf_close(f);
    free(b.p);
}

/* Many tensors: lookup by name finds each one. */
static void test_many_tensors(void **state) {
    (void)state;
    enum { N = 1200 };
    GgufWriter *w = gguf_writer_new();
    char name[64];
    uint64_t ne[1] = {8};
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "blk.%d.weight", i);
        assert_int_equal(gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 1, ne), i);
    }
    /* misuse is reported by write_header */
    assert_int_equal(gguf_writer_add_tensor(w, "blk.0.weight", GGML_TYPE_F32, 1, ne), -1);
    char *path = test_tmp_path(".gguf");
    FILE *fp = fopen(path, "wb");
    Err e;
    assert_int_equal(gguf_writer_write_header(w, fp, &e), -1);
    assert_non_null(strstr(e.msg, "duplicate tensor name 'blk.0.weight'"));
    fclose(fp);
    gguf_writer_free(w);

    w = gguf_writer_new();
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "blk.%d.weight", i);
        gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 1, ne);
    }
    fp = fopen(path, "wb");
    assert_int_equal(gguf_writer_write_header(w, fp, &e), 0);
    for (int i = 0; i < N; i++) {
        float d[8];
        for (int k = 0; k < 8; k++) d[k] = (float)(i * 8 + k);
        assert_int_equal(gguf_writer_write_tensor_data(w, fp, i, d, &e), 0);
    }
    fclose(fp);
    gguf_writer_free(w);
    GgufFile *f = gguf_open(path, &e);
    if (!f) fail_msg("%s", e.msg);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "blk.%d.weight", i);
        const GgufTensor *t = gguf_find_tensor(f, name);
        assert_non_null(t);
        assert_true(((const float *)t->data)[7] == (float)(i * 8 + 7));
    }
    gguf_close(f);
    remove(path);
    free(path);

    /* writer misuse: unknown type, bad block multiple, bad alignment */
    w = gguf_writer_new();
    uint64_t ne2[1] = {33};
    assert_int_equal(gguf_writer_add_tensor(w, "x", GGML_TYPE_Q8_0, 1, ne2), -1);
    fp = fopen("/dev/null", "wb");
    assert_int_equal(gguf_writer_write_header(w, fp, &e), -1);
    assert_non_null(strstr(e.msg, "not a multiple"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_add_tensor(w, "x", 4, 1, ne), -1);
    assert_int_equal(gguf_writer_write_header(w, fp, &e), -1);
    assert_non_null(strstr(e.msg, "unknown ggml type id 4"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    gguf_writer_set_u32(w, "general.alignment", 24);
    assert_int_equal(gguf_writer_write_header(w, fp, &e), -1);
    assert_non_null(strstr(e.msg, "general.alignment"));
    gguf_writer_free(w);
    fclose(fp);
}

/* Every test-data GGUF parses; a few known facts. */
static void test_testdata(void **state) {
    (void)state;
    char path[4096];
    if (testdata_file(path, sizeof path, "stories/stories260K.gguf") != 0)
        TEST_SKIP("test data missing (%s)", path);
    Err e;
    GgufFile *f = gguf_open(path, &e);
    if (!f) fail_msg("%s", e.msg);
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "llama.block_count", &u, &e), 0);
    assert_int_equal(u, 5);
    assert_int_equal(gguf_get_u32(f, "llama.embedding_length", &u, &e), 0);
    assert_int_equal(u, 64);
    const GgufArray *a;
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &a, &e), 0);
    assert_int_equal(a->n, 512);
    int64_t shape[2] = {64, 512};
    uint32_t ty = GGML_TYPE_F32;
    assert_non_null(gguf_expect_tensor(f, "token_embd.weight", 2, shape, &ty, 1, &e));
    /* a real file cut anywhere in its header (every byte) or its data
     * (every 4 KiB) fails cleanly */
    size_t hdr = (size_t)f->data_offset, n = (size_t)f->size;
    for (size_t cut = 0; cut < n; cut += cut < hdr ? 1 : 4096) {
        uint8_t *buf = malloc(cut ? cut : 1);
        memcpy(buf, f->base, cut);
        GgufFile *h = gguf_parse(buf, cut, "cut.gguf", &e);
        if (h) fail_msg("stories260K cut at %zu of %zu parsed", cut, n);
        free(buf);
    }
    gguf_close(f);
    const char *more[] = {"models/tiny-llama-q4_k_s.gguf", "models/tiny-qwen2-q8_0.gguf",
                          "models/tiny-llama-bf16.gguf", "tokenizer/ggml-vocab-gpt-2.gguf",
                          "tokenizer/ggml-vocab-llama-spm.gguf"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        if (testdata_file(path, sizeof path, more[i]) != 0) continue;
        f = gguf_open(path, &e);
        if (!f) fail_msg("%s", e.msg);
        gguf_close(f);
    }
    f = gguf_open("/nonexistent/x.gguf", &e);
    assert_null(f);
    assert_non_null(strstr(e.msg, "/nonexistent/x.gguf: "));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),       cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_header),  cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_tensors), cmocka_unit_test(test_valid_edge_cases),
        cmocka_unit_test(test_big_vocab),   cmocka_unit_test(test_many_tensors),
        cmocka_unit_test(test_testdata),
    };
    return TEST_MAIN(tests);
}
