/* test_tokenizer.c - tokenizers against llama.cpp's test vectors
 * (testdata/tokenizer/ggml-vocab-*.gguf + .inp/.out), the stories260K prompt
 * tokens, special-token parsing, streaming decode, UTF-8 errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "testutil.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

static Tokenizer *load_tok(const char *rel, GgufFile **fout) {
    char path[1024];
    if (testdata_file(path, sizeof path, rel)) return NULL;
    Err e = {{0}};
    GgufFile *f = gguf_open(path, &e);
    if (!f) fail_msg("gguf_open %s: %s", path, e.msg);
    Tokenizer *t = tok_load(f, &e);
    if (!t) fail_msg("tok_load %s: %s", path, e.msg);
    if (fout)
        *fout = f;
    else
        gguf_close(f);
    return t;
}

static int32_t *encode(const Tokenizer *t, const char *s, size_t n, int bos, int special,
                       int *nout) {
    Err e = {{0}};
    int cnt = tok_encode(t, s, n, bos, special, NULL, 0, &e);
    if (cnt < 0) fail_msg("tok_encode: %s", e.msg);
    int32_t *ids = xmalloc(((size_t)cnt + 1) * sizeof *ids);
    int cnt2 = tok_encode(t, s, n, bos, special, ids, cnt, &e);
    assert_int_equal(cnt, cnt2);
    *nout = cnt;
    return ids;
}

static const char *const VOCABS[] = {"llama-spm", "gpt-2",  "falcon",   "deepseek-llm",
                                     "mpt",       "refact", "starcoder"};

static void print_str(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fprintf(stderr, "\\n");
        else if (c == '\t')
            fprintf(stderr, "\\t");
        else if (c < 0x20)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
}

static void test_vocab_vectors(void **state) {
    (void)state;
    int any = 0, total_fail = 0;
    for (size_t v = 0; v < sizeof VOCABS / sizeof VOCABS[0]; v++) {
        char rel[256], inp[1024], outp[1024];
        snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf", VOCABS[v]);
        char r1[300], r2[300];
        snprintf(r1, sizeof r1, "%s.inp", rel);
        snprintf(r2, sizeof r2, "%s.out", rel);
        if (testdata_file(inp, sizeof inp, r1) || testdata_file(outp, sizeof outp, r2)) continue;
        Tokenizer *t = load_tok(rel, NULL);
        if (!t) continue;
        any = 1;
        size_t il, ol;
        char *itxt = read_file(inp, &il), *otxt = read_file(outp, &ol);
        assert_non_null(itxt);
        assert_non_null(otxt);
        const char *sep = "\n__ggml_vocab_test__\n";
        size_t sl = strlen(sep);
        char *ip = itxt, *op = otxt;
        int n_case = 0, n_pass = 0, n_rt = 0, n_rt_ok = 0, shown = 0;
        for (;;) {
            char *end = strstr(ip, sep);
            if (!end) break;
            char *oend = strchr(op, '\n');
            assert_non_null(oend);
            *oend = 0;
            /* expected ids */
            int32_t exp[512];
            int ne = 0;
            for (char *q = op; *q;) {
                char *nx;
                long x = strtol(q, &nx, 10);
                if (nx == q) break;
                assert_true(ne < 512);
                exp[ne++] = (int32_t)x;
                q = nx;
            }
            size_t slen = (size_t)(end - ip);
            int n;
            int32_t *ids = encode(t, ip, slen, 0, 0, &n);
            int ok = n == ne && !memcmp(ids, exp, (size_t)n * sizeof *ids);
            n_case++;
            n_pass += ok;
            if (!ok && shown < 5) {
                shown++;
                fprintf(stderr, "MISMATCH %s: '", VOCABS[v]);
                print_str(ip, slen);
                fprintf(stderr, "'\n  got:");
                for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
                fprintf(stderr, "\n  exp:");
                for (int i = 0; i < ne; i++) fprintf(stderr, " %d", exp[i]);
                fprintf(stderr, "\n");
            }
            /* round trip */
            char *dec = tok_decode_all(t, ids, n, 0);
            n_rt++;
            if (strlen(dec) == slen && !memcmp(dec, ip, slen)) {
                n_rt_ok++;
            } else if (shown < 8) {
                shown++;
                fprintf(stderr, "ROUNDTRIP %s: '", VOCABS[v]);
                print_str(ip, slen);
                fprintf(stderr, "' -> '");
                print_str(dec, strlen(dec));
                fprintf(stderr, "'\n");
            }
            free(dec);
            free(ids);
            ip = end + sl;
            op = oend + 1;
        }
        fprintf(stderr, "vocab %-13s: %d/%d vectors pass, round-trip %d/%d\n", VOCABS[v], n_pass,
                n_case, n_rt_ok, n_rt);
        total_fail += n_case - n_pass;
        assert_true(n_case >= 40);
        free(itxt);
        free(otxt);
        tok_free(t);
    }
    if (!any) TEST_SKIP("no tokenizer test vectors");
    assert_int_equal(total_fail, 0);
}

static void check_stories_prompt(const Tokenizer *t, const char *prompt, const char *rel) {
    char path[1024];
    if (testdata_file(path, sizeof path, rel)) return;
    size_t l;
    char *txt = read_file(path, &l);
    assert_non_null(txt);
    int32_t exp[64];
    int ne = 0;
    for (char *q = txt; *q;) {
        while (*q == ',' || *q == ' ' || *q == '\n') q++;
        if (!*q) break;
        char *nx;
        exp[ne++] = (int32_t)strtol(q, &nx, 10);
        assert_true(nx != q);
        q = nx;
    }
    int n;
    int32_t *ids = encode(t, prompt, strlen(prompt), tok_add_bos(t), 0, &n);
    assert_int_equal(n, ne);
    assert_memory_equal(ids, exp, (size_t)n * sizeof *ids);
    char *dec = tok_decode_all(t, ids, n, 0);
    assert_string_equal(dec, prompt);
    free(dec);
    free(ids);
    free(txt);
}

static void test_stories(void **state) {
    (void)state;
    Tokenizer *t = load_tok("stories/stories260K.gguf", NULL);
    if (!t) TEST_SKIP("stories260K.gguf missing");
    assert_int_equal(tok_n_vocab(t), 512);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_eos(t), 2);
    assert_true(tok_add_bos(t));
    assert_true(tok_is_eog(t, 2));
    assert_false(tok_is_eog(t, 1));
    check_stories_prompt(t, "Once upon a time", "stories/stories260K.p1.tokens.txt");
    check_stories_prompt(t, "Tom and his dog", "stories/stories260K.p2.tokens.txt");
    tok_free(t);
}

static void test_special_and_errors(void **state) {
    (void)state;
    Tokenizer *t = load_tok("tokenizer/ggml-vocab-llama-spm.gguf", NULL);
    if (!t) TEST_SKIP("llama-spm vocab missing");
    assert_int_equal(tok_find(t, "<s>"), 1);
    assert_string_equal(tok_piece(t, 2), "</s>");
    const char *s = "<s>Hello</s>";
    int n;
    int32_t *ids = encode(t, s, strlen(s), 0, 1, &n);
    /* <s> ▁Hello </s> (dummy prefix only at the start of text after special) */
    assert_true(n >= 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[n - 1], 2);
    for (int i = 1; i < n - 1; i++) assert_true(ids[i] > 2);
    char *dec = tok_decode_all(t, ids, n, 0);
    assert_string_equal(dec, "Hello");
    free(dec);
    dec = tok_decode_all(t, ids, n, 1);
    assert_string_equal(dec, "<s>Hello</s>");
    free(dec);
    free(ids);
    ids = encode(t, s, strlen(s), 0, 0, &n);
    for (int i = 0; i < n; i++) assert_true(ids[i] > 2);
    dec = tok_decode_all(t, ids, n, 0);
    assert_string_equal(dec, s);
    free(dec);
    free(ids);

    /* cap semantics */
    Err e = {{0}};
    int32_t small[2];
    int need = tok_encode(t, "Hello world, how are you?", 25, 1, 0, small, 2, &e);
    assert_true(need > 2);
    assert_int_equal(small[0], 1);

    /* invalid UTF-8 names the offset */
    assert_int_equal(tok_encode(t,
                                "ab\xff"
                                "cd",
                                5, 0, 0, NULL, 0, &e),
                     -1);
    assert_non_null(strstr(e.msg, "offset 2"));
    assert_int_equal(tok_encode(t, "abc\xe2\x96", 5, 0, 0, NULL, 0, &e), -1);
    assert_non_null(strstr(e.msg, "offset 3"));
    /* empty */
    assert_int_equal(tok_encode(t, "", 0, 0, 0, NULL, 0, &e), 0);
    assert_int_equal(tok_encode(t, "", 0, 1, 0, small, 2, &e), 1);

    /* streaming: the llama emoji arrives as 4 byte tokens */
    const char *ll = " this is \xf0\x9f\xa6\x99.cpp";
    ids = encode(t, ll, strlen(ll), 0, 0, &n);
    TokDecoder d;
    tok_decoder_init(&d, t, 0);
    char out[256], acc[256] = "";
    for (int i = 0; i < n; i++) {
        size_t k = tok_decoder_feed(&d, ids[i], out, sizeof out);
        assert_int_equal(strlen(out), k);
        /* never a partial character */
        if (k) assert_int_equal(0, (unsigned char)out[0] >= 0x80 && (unsigned char)out[0] < 0xC0);
        strcat(acc, out);
    }
    tok_decoder_flush(&d, out, sizeof out);
    strcat(acc, out);
    assert_string_equal(acc, ll);
    free(ids);
    /* incomplete sequence flushed as U+FFFD */
    tok_decoder_init(&d, t, 0);
    int32_t b0 = tok_find(t, "<0xF0>");
    assert_true(b0 >= 0);
    assert_int_equal(tok_decoder_feed(&d, b0, out, sizeof out), 0);
    assert_int_equal(tok_decoder_flush(&d, out, sizeof out), 3);
    assert_string_equal(out, "\xef\xbf\xbd");
    tok_free(t);
}

static void test_bpe_special_and_speed(void **state) {
    (void)state;
    Tokenizer *t = load_tok("tokenizer/ggml-vocab-gpt-2.gguf", NULL);
    if (!t) TEST_SKIP("gpt-2 vocab missing");
    int32_t eot = tok_find(t, "<|endoftext|>");
    assert_true(eot >= 0);
    assert_true(tok_is_eog(t, eot));
    assert_false(tok_add_bos(t));
    const char *s = "Hi<|endoftext|>there";
    int n;
    int32_t *ids = encode(t, s, strlen(s), 0, 1, &n);
    int found = 0;
    for (int i = 0; i < n; i++) found += ids[i] == eot;
    assert_int_equal(found, 1);
    free(ids);
    ids = encode(t, s, strlen(s), 0, 0, &n);
    for (int i = 0; i < n; i++) assert_int_not_equal(ids[i], eot);
    char *dec = tok_decode_all(t, ids, n, 0);
    assert_string_equal(dec, s);
    free(dec);
    free(ids);
    /* a larger text: no quadratic behaviour (no timing assertion) */
    size_t big = 200000;
    char *txt = xmalloc(big + 1);
    const char *pat = "The quick brown fox, 12345 jumps!\n  \tover  the lazy dog's back. ";
    size_t pl = strlen(pat);
    for (size_t i = 0; i < big; i++) txt[i] = pat[i % pl];
    txt[big] = 0;
    double t0 = time_now();
    ids = encode(t, txt, big, 0, 0, &n);
    double dt = time_now() - t0;
    fprintf(stderr, "gpt-2: encoded %zu bytes -> %d tokens in %.3f s\n", big, n, dt);
    dec = tok_decode_all(t, ids, n, 0);
    assert_string_equal(dec, txt);
    free(dec);
    free(ids);
    free(txt);
    tok_free(t);
}

/* ---- pre-tokenizer splits (families without vocab test vectors); the
 * expected words follow the regexes' semantics in llama.cpp ---- */
typedef struct Words {
    char buf[1024];
    size_t n;
} Words;

static int collect(const char *w, size_t n, void *ud) {
    Words *ws = ud;
    assert_true(ws->n + n + 2 < sizeof ws->buf);
    memcpy(ws->buf + ws->n, w, n);
    ws->n += n;
    ws->buf[ws->n++] = '|';
    ws->buf[ws->n] = 0;
    return 0;
}

static void check_split(const char *pre, const char *text, const char *expected) {
    Err e = {{0}};
    TokPre *p = tokpre_new(pre, &e);
    if (!p) fail_msg("tokpre_new %s: %s", pre, e.msg);
    Words ws = {{0}, 0};
    assert_int_equal(tokpre_split(p, text, strlen(text), collect, &ws, &e), 0);
    if (strcmp(ws.buf, expected))
        fprintf(stderr, "pre %s: got '%s' exp '%s'\n", pre, ws.buf, expected);
    assert_string_equal(ws.buf, expected);
    tokpre_free(p);
}

static void test_pretok(void **state) {
    (void)state;
    const char *s = "Hello world's  123456\n\n  x";
    check_split("llama-bpe", s, "Hello| world|'s| | |123|456|\n\n| | x|");
    check_split("qwen2", s, "Hello| world|'s| | |1|2|3|4|5|6|\n\n| | x|");
    check_split("gpt-2", s, "Hello| world|'s| | 123456|\n\n | x|");
    check_split("smollm", s, "Hello| world|'s|  |1|2|3|4|5|6|\n\n | x|");
    check_split("deepseek-coder", s, "Hello| world|'|s|  |1|2|3|4|5|6|\n|\n| | x|");
    check_split("llama-bpe", "I'LL DO IT", "I|'LL| DO| IT|");
    /* llama.cpp's whitespace set includes U+0085 (PCRE2's \s does not) */
    check_split("gpt-2", "!\xc2\x85", "!|\xc2\x85|");
    check_split("gpt-2",
                "a\xc2\xa0"
                "b",
                "a|\xc2\xa0|b|");
    Err e = {{0}};
    assert_null(tokpre_new("no-such-pre", &e));
    assert_non_null(strstr(e.msg, "no-such-pre"));
}

/* SPM chunked merging (per U+2581 run) must equal merging the whole text. */
static void test_spm_chunking(void **state) {
    (void)state;
    Tokenizer *t = load_tok("tokenizer/ggml-vocab-llama-spm.gguf", NULL);
    if (!t) TEST_SKIP("llama-spm vocab missing");
    assert_true(t->spm_chunkable);
    char path[1024];
    assert_int_equal(testdata_file(path, sizeof path, "tokenizer/ggml-vocab-llama-spm.gguf.inp"),
                     0);
    size_t len;
    char *txt = read_file(path, &len);
    int na, nb;
    int32_t *a = encode(t, txt, len, 1, 0, &na);
    t->spm_chunkable = 0;
    int32_t *b = encode(t, txt, len, 1, 0, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    free(a);
    free(b);
    free(txt);
    tok_free(t);
}

/* GPT-2 bytes_to_unicode() reference: printable Latin-1 bytes map to
 * themselves, the rest to 256 + their rank. */
static void test_byte_map(void **state) {
    (void)state;
    unsigned n = 0;
    for (int b = 0; b < 256; b++) {
        int pr = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned exp = pr ? (unsigned)b : 256u + n++;
        assert_int_equal(bpe_byte_to_cpt((uint8_t)b), exp);
        assert_int_equal(bpe_cpt_to_byte(exp), b);
    }
    assert_int_equal(n, 68);
    assert_int_equal(bpe_cpt_to_byte(256 + 68), -1);
    assert_int_equal(bpe_cpt_to_byte(0x20), -1);
    /* every byte round-trips through the gpt-2 vocabulary (bytes >= 0x80 as
     * parts of valid UTF-8) */
    Tokenizer *t = load_tok("tokenizer/ggml-vocab-gpt-2.gguf", NULL);
    if (!t) return;
    char txt[300];
    size_t k = 0;
    for (int b = 1; b < 0x80; b++) txt[k++] = (char)b;
    memcpy(txt + k, "\xc3\xa9\xe2\x82\xac\xf0\x9f\xa6\x99", 9);
    k += 9;
    int nid;
    int32_t *ids = encode(t, txt, k, 0, 0, &nid);
    char *dec = tok_decode_all(t, ids, nid, 0);
    assert_int_equal(strlen(dec), k);
    assert_memory_equal(dec, txt, k);
    free(dec);
    free(ids);
    tok_free(t);
}

/* reference/<model>.p2.json "prompt_tokens" (llama.cpp, BOS included) */
static void test_reference_prompt(void **state) {
    (void)state;
    char path[1024];
    if (testdata_file(path, sizeof path, "reference/tiny-llama-f32.p2.json"))
        TEST_SKIP("reference json missing");
    Tokenizer *t = load_tok("models/tiny-llama-f32.gguf", NULL);
    if (!t) TEST_SKIP("tiny-llama-f32.gguf missing");
    size_t l;
    char *js = read_file(path, &l);
    assert_non_null(js);
    char *q = strstr(js, "\"prompt_tokens\"");
    assert_non_null(q);
    q = strchr(q, '[');
    assert_non_null(q);
    int32_t exp[128];
    int ne = 0;
    for (q++; *q && *q != ']';) {
        char *nx;
        long v = strtol(q, &nx, 10);
        if (nx == q) {
            q++;
            continue;
        }
        assert_true(ne < 128);
        exp[ne++] = (int32_t)v;
        q = nx;
    }
    const char *prompt = "Lily and Tom went to the park. They saw a big dog";
    int n;
    int32_t *ids = encode(t, prompt, strlen(prompt), tok_add_bos(t), 0, &n);
    assert_int_equal(n, ne);
    assert_memory_equal(ids, exp, (size_t)n * sizeof *ids);
    free(ids);
    free(js);
    tok_free(t);
}

/* A synthetic SPM vocabulary written with the GGUF writer: no scores
 * (all 0), Phi-3's whitespace stripping after special tokens (by
 * general.name, as llama.cpp), byte fallback. */
static Tokenizer *synth_vocab(const char *name, int add_scores) {
    static const char *const toks[] = {"<unk>",   "<s>",           "</s>",         "<|user|>",
                                       "<|end|>", "<|assistant|>", "\xe2\x96\x81", "H",
                                       "i",       "\xe2\x96\x81H", "<0x0A>"};
    static const int32_t types[] = {2, 3, 3, 3, 3, 3, 1, 1, 1, 1, 6};
    static const float scores[] = {0, 0, 0, 0, 0, 0, -1, -2, -3, -4, 0};
    GgufWriter *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 11);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 11);
    if (add_scores) gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 11);
    char *path = test_tmp_path(".gguf");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    Err e = {{0}};
    assert_int_equal(gguf_writer_write_header(w, fp, &e), 0);
    fclose(fp);
    gguf_writer_free(w);
    GgufFile *f = gguf_open(path, &e);
    if (!f) fail_msg("gguf_open: %s", e.msg);
    Tokenizer *t = tok_load(f, &e);
    if (!t) fail_msg("tok_load: %s", e.msg);
    gguf_close(f);
    remove(path);
    free(path);
    return t;
}

static void test_synthetic_vocab(void **state) {
    (void)state;
    const char *s = "<|user|>\nHi<|end|>\n<|assistant|>\n";
    int n;
    Tokenizer *t = synth_vocab("Phi-3 mini", 0);
    int32_t *ids = encode(t, s, strlen(s), 0, 1, &n);
    const int32_t exp_phi[] = {3, 9, 8, 4, 5};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, exp_phi, sizeof exp_phi);
    free(ids);
    assert_true(tok_is_eog(t, 4)); /* <|end|> */
    assert_true(tok_is_eog(t, 2)); /* </s> = eos by default */
    tok_free(t);

    t = synth_vocab("some model", 1);
    ids = encode(t, s, strlen(s), 1, 1, &n);
    /* <s> <|user|> ▁ <0x0A> H i <|end|> ▁ <0x0A> <|assistant|> ▁ <0x0A>:
     * the dummy prefix follows each special token; "\n" is a byte token;
     * with scores, "H"+"i" has no token and "▁"+"H" is not adjacent */
    const int32_t exp[] = {1, 3, 6, 10, 7, 8, 4, 6, 10, 5, 6, 10};
    assert_int_equal(n, 12);
    assert_memory_equal(ids, exp, sizeof exp);
    char *dec = tok_decode_all(t, ids, n, 0);
    /* only a leading BOS keeps the first-token space strip pending */
    assert_string_equal(dec, " \nHi \n \n");
    free(dec);
    dec = tok_decode_all(t, ids, n, 1);
    assert_string_equal(dec, "<s><|user|> \nHi<|end|> \n<|assistant|> \n");
    free(dec);
    free(ids);
    tok_free(t);
}

/* decode(encode(s)) == s on every vocabulary (gpt-neox has no vectors). */
static void test_roundtrip_all(void **state) {
    (void)state;
    static const char *const ALL[] = {"llama-spm", "gpt-2",  "falcon",    "deepseek-llm",
                                      "mpt",       "refact", "starcoder", "gpt-neox"};
    const char *s = "  Hello, World! It's 2024-01-01\n\tcaf\xc3\xa9 \xd0\xbf\xd1\x80\xd0\xb8"
                    "\xd0\xb2\xd0\xb5\xd1\x82 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                    "\xf0\x9f\xa6\x99\xf0\x9f\x98\x80  x\xe2\x80\x83y\r\n\n   ";
    int any = 0;
    for (size_t v = 0; v < sizeof ALL / sizeof ALL[0]; v++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf", ALL[v]);
        Tokenizer *t = load_tok(rel, NULL);
        if (!t) continue;
        any = 1;
        int n;
        int32_t *ids = encode(t, s, strlen(s), 0, 0, &n);
        char *dec = tok_decode_all(t, ids, n, 0);
        if (strcmp(dec, s)) fprintf(stderr, "roundtrip %s: '%s'\n", ALL[v], dec);
        assert_string_equal(dec, s);
        free(dec);
        free(ids);
        tok_free(t);
    }
    if (!any) TEST_SKIP("no vocab files");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_vectors),
        cmocka_unit_test(test_stories),
        cmocka_unit_test(test_reference_prompt),
        cmocka_unit_test(test_special_and_errors),
        cmocka_unit_test(test_bpe_special_and_speed),
        cmocka_unit_test(test_pretok),
        cmocka_unit_test(test_byte_map),
        cmocka_unit_test(test_spm_chunking),
        cmocka_unit_test(test_synthetic_vocab),
        cmocka_unit_test(test_roundtrip_all),
    };
    return TEST_MAIN(tests);
}
