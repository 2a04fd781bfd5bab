/* test_engine.c - stop-string scanning (pure) and the generation loop over a
 * scripted fake backend with the stories260K tokenizer: stop strings split
 * across tokens, holdback that turns out not to be a stop, EOG, max_tokens,
 * context full, cancellation, and batched steps over two slots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/engine.h"
#include "testutil.h"

static void test_stop_scan(void **st) {
    (void)st;
    const char *stops[] = {"STOP", "\n\n", ""};
    size_t safe = 99;
    assert_int_equal(engine_stop_scan("hello", 5, stops, 3, &safe), -1);
    assert_int_equal(safe, 5);
    assert_int_equal(engine_stop_scan("hello ST", 8, stops, 3, &safe), -1);
    assert_int_equal(safe, 6); /* "ST" may still become "STOP" */
    assert_int_equal(engine_stop_scan("hello STO", 9, stops, 3, &safe), -1);
    assert_int_equal(safe, 6);
    assert_int_equal(engine_stop_scan("a\n", 2, stops, 3, &safe), -1);
    assert_int_equal(safe, 1);
    assert_int_equal(engine_stop_scan("hi STOP there", 13, stops, 3, &safe), 3);
    /* earliest occurrence of any stop wins */
    assert_int_equal(engine_stop_scan("x\n\ny STOP", 9, stops, 3, &safe), 1);
    assert_int_equal(engine_stop_scan("STOPSTOP", 8, stops, 3, &safe), 0);
    /* a complete stop string is not a proper prefix: "STOP" alone is found */
    assert_int_equal(engine_stop_scan("STOP", 4, stops, 3, &safe), 0);
    /* no stops: everything is safe */
    assert_int_equal(engine_stop_scan("abc", 3, NULL, 0, &safe), -1);
    assert_int_equal(safe, 3);
    /* overlapping prefixes: "aab" with stop "aabx" and "ab" */
    const char *s2[] = {"aabx", "abz"};
    assert_int_equal(engine_stop_scan("xaab", 4, s2, 2, &safe), -1);
    assert_int_equal(safe, 1);
    assert_int_equal(engine_stop_scan("", 0, s2, 2, &safe), -1);
    assert_int_equal(safe, 0);
}

/* ---- a scripted backend: sequence `seq` produces script[seq][k] as the
 * argmax for its k-th generated token */
#define NSLOT 2
typedef struct FakeBackend {
    Backend b;
    int32_t script[NSLOT][64];
    int n_script[NSLOT];
    int n_prompt[NSLOT];
    int max_batch;
    int fail_decode;
} FakeBackend;

static void put_logits(FakeBackend *fb, int seq, int pos, float *logits) {
    int n_vocab = fb->b.model->cfg.n_vocab;
    for (int v = 0; v < n_vocab; v++) logits[v] = (float)(v % 7) * 0.01f;
    int k = pos + 1 - fb->n_prompt[seq];
    assert_true(k >= 0);
    int32_t t = k < fb->n_script[seq] ? fb->script[seq][k] : 3;
    logits[t] = 10.0f;
}

static int fake_prefill(Backend *b, int seq, const int32_t *tokens, int n, int pos, float *logits,
                        int all_logits, Err *e) {
    (void)tokens;
    (void)all_logits;
    (void)e;
    FakeBackend *fb = (FakeBackend *)b;
    assert_true(seq >= 0 && seq < NSLOT && n > 0 && pos + n <= b->n_ctx);
    if (logits) put_logits(fb, seq, pos + n - 1, logits);
    return 0;
}

static int fake_decode(Backend *b, int n_batch, const int *seq, const int32_t *tokens,
                       const int *pos, float *logits, Err *e) {
    (void)tokens;
    FakeBackend *fb = (FakeBackend *)b;
    if (fb->fail_decode) return err_set(e, "fake decode failure");
    if (n_batch > fb->max_batch) fb->max_batch = n_batch;
    for (int i = 0; i < n_batch; i++) {
        assert_true(pos[i] < b->n_ctx);
        put_logits(fb, seq[i], pos[i], logits + (size_t)i * b->model->cfg.n_vocab);
    }
    return 0;
}

typedef struct Sink {
    char text[4096];
    size_t len;
    int calls;
    int cancel_after;
} Sink;

static int on_text(void *ud, const char *text, size_t len, int32_t token, float logprob) {
    (void)token;
    (void)logprob;
    Sink *k = ud;
    assert_true(k->len + len < sizeof k->text);
    memcpy(k->text + k->len, text, len);
    k->len += len;
    k->text[k->len] = 0;
    k->calls++;
    return k->cancel_after && k->calls >= k->cancel_after;
}

typedef struct Fixture {
    GgufFile *gguf;
    Tokenizer *tok;
    Model model;
    FakeBackend fb;
    Engine en;
} Fixture;

static Fixture *fixture(int n_ctx) {
    char path[1024];
    if (testdata_file(path, sizeof path, "stories/stories260K.gguf") != 0) return NULL;
    Fixture *f = calloc(1, sizeof *f);
    Err e = {{0}};
    f->gguf = gguf_open(path, &e);
    assert_non_null(f->gguf);
    f->tok = tok_load(f->gguf, &e);
    assert_non_null(f->tok);
    f->model.cfg.n_vocab = tok_n_vocab(f->tok);
    f->model.cfg.n_layers = 1;
    f->model.cfg.n_kv_heads = 1;
    f->model.cfg.head_dim = 8;
    f->fb.b.model = &f->model;
    f->fb.b.n_ctx = n_ctx;
    f->fb.b.n_seq = NSLOT;
    f->fb.b.prefill = fake_prefill;
    f->fb.b.decode = fake_decode;
    strcpy(f->fb.b.name, "fake");
    f->en.model = &f->model;
    f->en.tok = f->tok;
    f->en.backend = &f->fb.b;
    f->en.chat_tmpl = CHAT_TMPL_UNKNOWN;
    return f;
}

static void fixture_free(Fixture *f) {
    if (!f) return;
    tok_free(f->tok);
    gguf_close(f->gguf);
    free(f);
}

/* Scripts slot `seq` to generate the tokens of `text` (no BOS). */
static void script_text(Fixture *f, int seq, const char *text, int n_prompt) {
    Err e = {{0}};
    int n = tok_encode(f->tok, text, strlen(text), 0, 0, f->fb.script[seq], 64, &e);
    assert_true(n > 0 && n <= 64);
    f->fb.n_script[seq] = n;
    f->fb.n_prompt[seq] = n_prompt;
}

static GenParams greedy(int max_tokens) {
    GenParams gp;
    gen_params_default(&gp);
    gp.max_tokens = max_tokens;
    gp.sampling.temperature = 0;
    gp.sampling.seed = 1;
    return gp;
}

static void run_one(Fixture *f, EngineSeq *s) {
    Err e = {{0}};
    assert_int_equal(engine_seq_prefill(&f->en, s, 0, &e), 0);
    int guard = 0;
    while (!s->done) {
        assert_int_equal(engine_step(&f->en, &s, 1, &e), 0);
        assert_true(++guard < 1000);
    }
}

static void test_stop_across_tokens(void **st) {
    (void)st;
    Fixture *f = fixture(128);
    if (!f) TEST_SKIP("stories260K.gguf not found");
    int32_t prompt[1] = {tok_bos(f->tok)};
    script_text(f, 0, "Once upon a time STOP there was", 1);
    GenParams gp = greedy(50);
    gp.stop[0] = "STOP";
    gp.stop[1] = "never";
    gp.n_stop = 2;
    Sink k = {0};
    Err e = {{0}};
    EngineSeq *s = engine_seq_new(&f->en, 0, prompt, 1, &gp, on_text, &k, &e);
    assert_non_null(s);
    run_one(f, s);
    assert_string_equal(k.text, "Once upon a time ");
    assert_int_equal(s->finish, FINISH_STOP);
    engine_seq_free(s);

    /* held text that does not become a stop string is emitted; the text of
     * a partial stop at the very end is emitted at the final flush */
    script_text(f, 0, "Once upon a STORY ST", 1);
    memset(&k, 0, sizeof k);
    gp.max_tokens = f->fb.n_script[0];
    s = engine_seq_new(&f->en, 0, prompt, 1, &gp, on_text, &k, &e);
    run_one(f, s);
    assert_string_equal(k.text, "Once upon a STORY ST");
    assert_int_equal(s->finish, FINISH_LENGTH);
    assert_int_equal(s->n_gen, f->fb.n_script[0]);
    engine_seq_free(s);
    fixture_free(f);
}

static void test_eog_length_ctx_cancel(void **st) {
    (void)st;
    Fixture *f = fixture(12);
    if (!f) TEST_SKIP("stories260K.gguf not found");
    Err e = {{0}};
    int32_t prompt[2] = {tok_bos(f->tok), 403};
    /* EOG: the EOS token ends with FINISH_STOP and produces no text */
    script_text(f, 0, "a b", 2);
    f->fb.script[0][f->fb.n_script[0]++] = tok_eos(f->tok);
    GenParams gp = greedy(50);
    Sink k = {0};
    EngineSeq *s = engine_seq_new(&f->en, 0, prompt, 2, &gp, on_text, &k, &e);
    run_one(f, s);
    assert_int_equal(s->finish, FINISH_STOP);
    assert_int_equal(s->n_gen, f->fb.n_script[0]);
    assert_string_equal(k.text, " a b");
    engine_seq_free(s);

    /* max_tokens */
    gp = greedy(2);
    memset(&k, 0, sizeof k);
    s = engine_seq_new(&f->en, 0, prompt, 2, &gp, on_text, &k, &e);
    run_one(f, s);
    assert_int_equal(s->finish, FINISH_LENGTH);
    assert_int_equal(s->n_gen, 2);
    engine_seq_free(s);

    /* context full: 12 slots, 2 prompt tokens -> 10 generated */
    script_text(f, 0, "a a a a a a a a a a a a a a a a a a a a", 2);
    gp = greedy(100);
    memset(&k, 0, sizeof k);
    s = engine_seq_new(&f->en, 0, prompt, 2, &gp, on_text, &k, &e);
    run_one(f, s);
    assert_int_equal(s->finish, FINISH_LENGTH);
    assert_int_equal(s->n_tokens, 12);
    engine_seq_free(s);

    /* cancellation from the callback */
    memset(&k, 0, sizeof k);
    k.cancel_after = 3;
    s = engine_seq_new(&f->en, 0, prompt, 2, &gp, on_text, &k, &e);
    run_one(f, s);
    assert_int_equal(s->finish, FINISH_CANCELLED);
    assert_int_equal(k.calls, 3);
    engine_seq_free(s);

    /* errors: prompt too long, empty prompt, bad slot, max_tokens 0 */
    int32_t big[12] = {0};
    assert_null(engine_seq_new(&f->en, 0, big, 12, &gp, on_text, &k, &e));
    assert_non_null(strstr(e.msg, "context"));
    assert_null(engine_seq_new(&f->en, 0, big, 0, &gp, on_text, &k, &e));
    assert_null(engine_seq_new(&f->en, 5, prompt, 2, &gp, on_text, &k, &e));
    gp.max_tokens = 0;
    assert_null(engine_seq_new(&f->en, 0, prompt, 2, &gp, on_text, &k, &e));

    /* a failing decode marks the sequence as errored */
    gp = greedy(5);
    memset(&k, 0, sizeof k);
    s = engine_seq_new(&f->en, 0, prompt, 2, &gp, on_text, &k, &e);
    assert_int_equal(engine_seq_prefill(&f->en, s, 0, &e), 0);
    f->fb.fail_decode = 1;
    assert_int_equal(engine_step(&f->en, &s, 1, &e), -1);
    assert_int_equal(s->finish, FINISH_ERROR);
    assert_true(s->done);
    engine_seq_free(s);
    fixture_free(f);
}

static void test_batched(void **st) {
    (void)st;
    Fixture *f = fixture(64);
    if (!f) TEST_SKIP("stories260K.gguf not found");
    Err e = {{0}};
    int32_t p0[1] = {tok_bos(f->tok)};
    int32_t p1[3] = {tok_bos(f->tok), 403, 407};
    script_text(f, 0, "Lily saw a dog. END of it", 1);
    script_text(f, 1, "Tom ran fast and far away", 3);
    GenParams g0 = greedy(40), g1 = greedy(4);
    g0.stop[0] = "END";
    g0.n_stop = 1;
    Sink k0 = {0}, k1 = {0};
    EngineSeq *s[2];
    s[0] = engine_seq_new(&f->en, 0, p0, 1, &g0, on_text, &k0, &e);
    s[1] = engine_seq_new(&f->en, 1, p1, 3, &g1, on_text, &k1, &e);
    assert_non_null(s[0]);
    assert_non_null(s[1]);
    assert_int_equal(engine_seq_prefill(&f->en, s[0], 0, &e), 0);
    assert_int_equal(engine_seq_prefill(&f->en, s[1], 2, &e), 0); /* chunked */
    int guard = 0;
    while (!s[0]->done || !s[1]->done) {
        assert_int_equal(engine_step(&f->en, s, 2, &e), 0);
        assert_true(++guard < 100);
    }
    assert_int_equal(f->fb.max_batch, 2);
    assert_string_equal(k0.text, "Lily saw a dog. ");
    assert_int_equal(s[0]->finish, FINISH_STOP);
    assert_int_equal(s[1]->finish, FINISH_LENGTH);
    assert_int_equal(s[1]->n_gen, 4);
    /* the prompt precedes the generated text: its leading space stays */
    char *want = tok_decode_all(f->tok, f->fb.script[1], 4, 0);
    assert_non_null(want);
    assert_true(k1.len > 1 && k1.text[0] == ' ');
    assert_string_equal(k1.text + 1, want + (want[0] == ' '));
    free(want);
    /* two sequences on one slot are refused */
    EngineSeq *dup[2];
    g1.max_tokens = 5;
    dup[0] = engine_seq_new(&f->en, 1, p1, 3, &g1, on_text, &k1, &e);
    dup[1] = engine_seq_new(&f->en, 1, p1, 3, &g1, on_text, &k1, &e);
    assert_int_equal(engine_seq_prefill(&f->en, dup[0], 0, &e), 0);
    assert_int_equal(engine_seq_prefill(&f->en, dup[1], 0, &e), 0);
    assert_int_equal(engine_step(&f->en, dup, 2, &e), -1);
    engine_seq_free(dup[0]);
    engine_seq_free(dup[1]);
    engine_seq_free(s[0]);
    engine_seq_free(s[1]);
    fixture_free(f);
}

/* The real CPU backend: two prompts decoded together (batched steps on two
 * slots, the second prefilled in chunks) give llama.cpp's greedy texts. */
static void test_real_batched(void **st) {
    (void)st;
    char path[1024], r1[1024], r2[1024];
    if (testdata_file(path, sizeof path, "stories/stories260K.gguf") != 0 ||
        testdata_file(r1, sizeof r1, "stories/stories260K.p1.greedy200.txt") != 0 ||
        testdata_file(r2, sizeof r2, "stories/stories260K.p2.greedy200.txt") != 0)
        TEST_SKIP("stories260K not found");
    BackendParams bp;
    backend_params_default(&bp);
    bp.device = "cpu";
    bp.n_seq = 2;
    bp.n_ctx = 128;
    bp.n_threads = 1;
    bp.quiet = 1;
    Err e = {{0}};
    Engine *en = engine_open(path, &bp, &e);
    assert_non_null(en);
    size_t n1, n2;
    char *ref1 = read_file(r1, &n1), *ref2 = read_file(r2, &n2);
    assert_non_null(ref1);
    assert_non_null(ref2);
    int k1 = 0, k2 = 0;
    int32_t *t1 = engine_tokenize(en, "Once upon a time", -1, 0, &k1, &e);
    int32_t *t2 = engine_tokenize(en, "Tom and his dog", -1, 0, &k2, &e);
    assert_int_equal(k1, 5); /* testdata stories260K.p1.tokens.txt: 1, 403, 407, 261, 378 */
    assert_int_equal(t1[0], 1);
    assert_int_equal(t1[4], 378);
    GenParams gp = greedy(40);
    Sink a = {0}, b = {0};
    EngineSeq *s[2];
    s[0] = engine_seq_new(en, 0, t1, k1, &gp, on_text, &a, &e);
    gp.max_tokens = 30;
    s[1] = engine_seq_new(en, 1, t2, k2, &gp, on_text, &b, &e);
    assert_int_equal(engine_seq_prefill(en, s[0], 0, &e), 0);
    assert_int_equal(engine_seq_prefill(en, s[1], 3, &e), 0);
    while (!s[0]->done || !s[1]->done) assert_int_equal(engine_step(en, s, 2, &e), 0);
    assert_int_equal(s[0]->n_gen, 40);
    assert_int_equal(s[1]->n_gen, 30);
    assert_true(a.len > 60 && b.len > 60);
    assert_memory_equal(a.text, ref1, a.len);
    assert_memory_equal(b.text, ref2, b.len);
    engine_seq_free(s[0]);
    engine_seq_free(s[1]);

    /* engine_generate: the same text on slot 0 */
    Sink c = {0};
    GenStats gs;
    gp.max_tokens = 40;
    assert_int_equal(engine_generate(en, "Once upon a time", 0, &gp, on_text, &c, &gs, &e), 0);
    assert_int_equal(gs.n_prompt, 5);
    assert_int_equal(gs.n_gen, 40);
    assert_int_equal(gs.finish, FINISH_LENGTH);
    assert_int_equal(c.len, a.len);
    assert_memory_equal(c.text, a.text, a.len);
    free(t1);
    free(t2);
    free(ref1);
    free(ref2);
    engine_close(en);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_scan),
        cmocka_unit_test(test_stop_across_tokens),
        cmocka_unit_test(test_eog_length_ctx_cancel),
        cmocka_unit_test(test_batched),
        cmocka_unit_test(test_real_batched),
    };
    return TEST_MAIN(tests);
}
