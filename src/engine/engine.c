/* engine.c - the generation loop shared by the CLI, the server and the
 * benchmarks (see engine.h). */
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

Engine *engine_open(const char *model_path, const BackendParams *bp, Err *e) {
    double t0 = time_now();
    Engine *en = xcalloc(1, sizeof *en);
    en->chat_tmpl = CHAT_TMPL_UNKNOWN;
    en->model = model_load(model_path, e);
    if (!en->model) goto fail;
    en->tok = tok_load(en->model->gguf, e);
    if (!en->tok) {
        err_prefix(e, "%s", model_path);
        goto fail;
    }
    const char *jinja = NULL;
    if (gguf_get_str_opt(en->model->gguf, "tokenizer.chat_template", &jinja, NULL) == 0 && jinja)
        en->chat_tmpl = chat_template_detect(jinja);
    en->backend = backend_create(en->model, bp, e);
    if (!en->backend) goto fail;
    en->t_load = time_now() - t0;
    return en;
fail:
    engine_close(en);
    return NULL;
}

void engine_close(Engine *en) {
    if (!en) return;
    backend_free(en->backend);
    tok_free(en->tok);
    model_free(en->model);
    free(en);
}

const char *finish_reason_name(FinishReason r) {
    switch (r) {
    case FINISH_NONE:
        return "none";
    case FINISH_STOP:
        return "stop";
    case FINISH_LENGTH:
        return "length";
    case FINISH_CANCELLED:
        return "cancelled";
    case FINISH_ERROR:
        return "error";
    }
    return "?";
}

void gen_params_default(GenParams *gp) {
    memset(gp, 0, sizeof *gp);
    gp->max_tokens = 128;
    sampler_params_default(&gp->sampling);
}

long engine_stop_scan(const char *text, size_t len, const char *const *stops, int n_stop,
                      size_t *safe) {
    long best = -1;
    for (int i = 0; i < n_stop; i++) {
        size_t sl = stops[i] ? strlen(stops[i]) : 0;
        if (!sl || sl > len) continue;
        const char *hit = memmem(text, len, stops[i], sl);
        if (hit && (best < 0 || hit - text < best)) best = (long)(hit - text);
    }
    if (best >= 0) return best;
    size_t hold = 0; /* longest suffix of text that is a proper prefix of a stop string */
    for (int i = 0; i < n_stop; i++) {
        size_t sl = stops[i] ? strlen(stops[i]) : 0;
        size_t maxk = sl - (sl > 0); /* proper prefix */
        if (maxk > len) maxk = len;
        for (size_t k = maxk; k > hold; k--)
            if (!memcmp(text + len - k, stops[i], k)) {
                hold = k;
                break;
            }
    }
    if (safe) *safe = len - hold;
    return -1;
}

EngineSeq *engine_seq_new(Engine *en, int slot, const int32_t *prompt, int n_prompt,
                          const GenParams *gp, EngineTextFn on_text, void *ud, Err *e) {
    const Backend *b = en->backend;
    if (slot < 0 || slot >= b->n_seq) {
        err_set(e, "sequence slot %d is out of range [0, %d)", slot, b->n_seq);
        return NULL;
    }
    if (n_prompt <= 0) {
        err_set(e, "the prompt is empty (no tokens)");
        return NULL;
    }
    if (n_prompt + 1 > b->n_ctx) {
        err_set(e, "the prompt is %d tokens, which does not fit the context of %d tokens", n_prompt,
                b->n_ctx);
        return NULL;
    }
    if (gp->max_tokens <= 0) {
        err_set(e, "max_tokens must be > 0 (got %d)", gp->max_tokens);
        return NULL;
    }
    if (gp->n_stop < 0 || gp->n_stop > ENGINE_MAX_STOP) {
        err_set(e, "at most %d stop strings (got %d)", ENGINE_MAX_STOP, gp->n_stop);
        return NULL;
    }
    int n_vocab = en->model->cfg.n_vocab;
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= n_vocab) {
            err_set(e, "prompt token %d (at %d) is out of range [0, %d)", prompt[i], i, n_vocab);
            return NULL;
        }
    EngineSeq *s = xcalloc(1, sizeof *s);
    s->slot = slot;
    s->tokens = xmalloc(sizeof(int32_t) * (size_t)b->n_ctx);
    memcpy(s->tokens, prompt, sizeof(int32_t) * (size_t)n_prompt);
    s->n_prompt = s->n_tokens = n_prompt;
    s->gp = *gp;
    s->sampler = sampler_create(&gp->sampling, n_vocab);
    for (int i = 0; i < n_prompt; i++) sampler_accept(s->sampler, prompt[i]);
    /* The decoder sees the prompt (so the first generated piece keeps or
     * loses its leading space as in a whole-text decode), except a leading
     * BOS: like llama.cpp's detokenize, the piece after BOS is stripped. */
    tok_decoder_init(&s->dec, en->tok, gp->render_special);
    char scratch[512];
    int i0 = (prompt[0] == tok_bos(en->tok)) ? 1 : 0;
    for (int i = i0; i < n_prompt; i++)
        tok_decoder_feed(&s->dec, prompt[i], scratch, sizeof scratch);
    s->cap_held = 256;
    s->held = xmalloc(s->cap_held);
    s->on_text = on_text;
    s->ud = ud;
    s->last_token = prompt[n_prompt - 1];
    s->t_start = time_now();
    return s;
}

void engine_seq_free(EngineSeq *s) {
    if (!s) return;
    sampler_free(s->sampler);
    free(s->tokens);
    free(s->held);
    free(s);
}

static void emit(EngineSeq *s, const char *text, size_t len, int32_t token, float logprob) {
    if (!len || !s->on_text || s->finish == FINISH_CANCELLED) return;
    if (s->on_text(s->ud, text, len, token, logprob)) s->finish = FINISH_CANCELLED;
}

static void held_append(EngineSeq *s, const char *text, size_t n) {
    if (s->n_held + n + 1 > s->cap_held) {
        s->cap_held = 2 * (s->n_held + n + 1);
        s->held = xrealloc(s->held, s->cap_held);
    }
    memcpy(s->held + s->n_held, text, n);
    s->n_held += n;
}

/* Ends the sequence: emits the text held back as a possible stop-string
 * start plus the decoder's incomplete bytes (up to a stop string, if the
 * flush completed one). */
static void finish(EngineSeq *s, FinishReason r) {
    char buf[64];
    size_t n = tok_decoder_flush(&s->dec, buf, sizeof buf);
    if (s->finish == FINISH_NONE) s->finish = r;
    if (r != FINISH_ERROR) {
        held_append(s, buf, n);
        long at = engine_stop_scan(s->held, s->n_held, s->gp.stop, s->gp.n_stop, NULL);
        emit(s, s->held, at >= 0 ? (size_t)at : s->n_held, -1, 0.0f);
        if (at >= 0 && s->finish == FINISH_LENGTH) s->finish = FINISH_STOP;
    }
    s->n_held = 0;
    s->done = 1;
    s->t_end = time_now();
}

/* Samples from `logits` (n_vocab, modified), appends the token, streams its
 * text and decides whether the sequence is finished. */
static void process_logits(Engine *en, EngineSeq *s, float *logits) {
    int32_t t = sampler_sample(s->sampler, logits);
    float p = sampler_last_prob(s->sampler);
    float lp = p > 0 ? logf(p) : -INFINITY;
    sampler_accept(s->sampler, t);
    s->tokens[s->n_tokens++] = t;
    s->n_gen++;
    s->last_token = t;
    if (!s->gp.ignore_eos && tok_is_eog(en->tok, t)) {
        finish(s, FINISH_STOP);
        return;
    }
    char piece[512];
    size_t n = tok_decoder_feed(&s->dec, t, piece, sizeof piece);
    if (n) {
        held_append(s, piece, n);
        size_t safe = s->n_held;
        long at = engine_stop_scan(s->held, s->n_held, s->gp.stop, s->gp.n_stop, &safe);
        if (at >= 0) {
            emit(s, s->held, (size_t)at, t, lp);
            s->n_held = 0;
            if (s->finish == FINISH_NONE) s->finish = FINISH_STOP;
            s->done = 1;
            s->t_end = time_now();
            return;
        }
        if (safe) {
            emit(s, s->held, safe, t, lp);
            memmove(s->held, s->held + safe, s->n_held - safe);
            s->n_held -= safe;
        }
    }
    if (s->finish == FINISH_CANCELLED) {
        s->n_held = 0;
        s->done = 1;
        s->t_end = time_now();
        return;
    }
    if (s->n_gen >= s->gp.max_tokens || s->n_tokens >= en->backend->n_ctx) finish(s, FINISH_LENGTH);
}

int engine_seq_prefill(Engine *en, EngineSeq *s, int chunk, Err *e) {
    Backend *b = en->backend;
    int n_vocab = en->model->cfg.n_vocab;
    if (s->n_past < 0) s->n_past = 0;
    if (s->n_past >= s->n_prompt) s->n_past = s->n_prompt - 1;
    float *logits = xmalloc(sizeof(float) * (size_t)n_vocab);
    int rc = 0;
    while (s->n_past < s->n_prompt) {
        int n = s->n_prompt - s->n_past;
        if (chunk > 0 && n > chunk) n = chunk;
        int last = s->n_past + n == s->n_prompt;
        if (b->prefill(b, s->slot, s->tokens + s->n_past, n, s->n_past, last ? logits : NULL, 0,
                       e) != 0) {
            s->finish = FINISH_ERROR;
            s->done = 1;
            s->t_end = time_now();
            rc = -1;
            goto out;
        }
        s->n_past += n;
    }
    s->t_prefill_done = time_now();
    process_logits(en, s, logits);
out:
    free(logits);
    return rc;
}

int engine_step(Engine *en, EngineSeq **seqs, int n, Err *e) {
    Backend *b = en->backend;
    int n_vocab = en->model->cfg.n_vocab;
    int *slot = xmalloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int *pos = xmalloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    EngineSeq **run = xmalloc(sizeof(EngineSeq *) * (size_t)(n > 0 ? n : 1));
    float *logits = NULL;
    int m = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        EngineSeq *s = seqs[i];
        if (!s || s->done) continue;
        for (int j = 0; j < m; j++)
            if (run[j]->slot == s->slot) {
                rc = err_set(e, "engine_step: two sequences share slot %d", s->slot);
                goto out;
            }
        run[m] = s;
        slot[m] = s->slot;
        tok[m] = s->last_token;
        pos[m] = s->n_tokens - 1;
        m++;
    }
    if (m == 0) goto out;
    logits = xmalloc(sizeof(float) * (size_t)n_vocab * (size_t)m);
    if (b->decode(b, m, slot, tok, pos, logits, e) != 0) {
        for (int j = 0; j < m; j++) {
            run[j]->finish = FINISH_ERROR;
            run[j]->done = 1;
            run[j]->t_end = time_now();
        }
        rc = -1;
        goto out;
    }
    for (int j = 0; j < m; j++) {
        run[j]->n_past = run[j]->n_tokens;
        process_logits(en, run[j], logits + (size_t)j * (size_t)n_vocab);
    }
out:
    free(logits);
    free(slot);
    free(pos);
    free(tok);
    free(run);
    return rc;
}

int engine_generate(Engine *en, const char *prompt, int parse_special, const GenParams *gp,
                    EngineTextFn on_text, void *ud, GenStats *st, Err *e) {
    int n = 0, rc = -1;
    EngineSeq *s = NULL;
    if (st) {
        memset(st, 0, sizeof *st);
        st->finish = FINISH_ERROR;
    }
    int32_t *ids = engine_tokenize(en, prompt, -1, parse_special, &n, e);
    if (!ids) {
        err_prefix(e, "prompt");
        return -1;
    }
    s = engine_seq_new(en, 0, ids, n, gp, on_text, ud, e);
    if (s) rc = engine_run_seq(en, s, st, e);
    engine_seq_free(s);
    free(ids);
    return rc;
}

void engine_print_stats(const Engine *en, const GenStats *st) {
    double pp = st->t_prompt > 0 ? st->n_prompt / st->t_prompt : 0;
    /* the first token comes from the prefill; each later one from a decode step */
    int n_dec = st->n_gen > 1 ? st->n_gen - 1 : 0;
    double tg = st->t_gen > 0 && n_dec > 0 ? n_dec / st->t_gen : 0;
    int mid = st->n_prompt + st->n_gen / 2;
    double bytes =
        (double)en->model->weight_bytes + (double)model_kv_bytes_per_token(&en->model->cfg, mid);
    fprintf(stderr,
            "stats: load %.2f s | prompt %d tok, %.1f t/s | gen %d tok, %.1f t/s | %.2f GB/s "
            "weights+KV | %s | finish %s\n",
            en->t_load, st->n_prompt, pp, st->n_gen, tg, bytes * tg / 1e9,
            en->backend->desc[0] ? en->backend->desc : en->backend->name,
            finish_reason_name(st->finish));
}

int engine_run_seq(Engine *en, EngineSeq *s, GenStats *st, Err *e) {
    int rc = engine_seq_prefill(en, s, 0, e);
    while (rc == 0 && !s->done) rc = engine_step(en, &s, 1, e);
    if (st) {
        memset(st, 0, sizeof *st);
        st->n_prompt = s->n_prompt;
        st->n_gen = s->n_gen;
        st->t_prompt = s->t_prefill_done > 0 ? s->t_prefill_done - s->t_start : 0;
        st->t_gen = s->t_prefill_done > 0 && s->t_end > 0 ? s->t_end - s->t_prefill_done : 0;
        st->finish = s->finish;
    }
    return rc;
}

int32_t *engine_tokenize(const Engine *en, const char *text, int add_bos, int parse_special, int *n,
                         Err *e) {
    size_t len = strlen(text);
    if (add_bos < 0) add_bos = tok_add_bos(en->tok);
    if (tok_bos(en->tok) < 0) add_bos = 0;
    int cap = (int)(len < (1u << 30) ? len : (1u << 30)) + 8;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)cap);
    int k = tok_encode(en->tok, text, len, add_bos, parse_special, ids, cap, e);
    if (k > cap) {
        cap = k;
        ids = xrealloc(ids, sizeof(int32_t) * (size_t)cap);
        k = tok_encode(en->tok, text, len, add_bos, parse_special, ids, cap, e);
    }
    if (k < 0) {
        free(ids);
        return NULL;
    }
    *n = k;
    return ids;
}

int32_t *engine_chat_tokens(const Engine *en, ChatTemplate t, const ChatMessage *msgs, int n_msgs,
                            int *n, Err *e) {
    if (t == CHAT_TMPL_UNKNOWN) t = en->chat_tmpl;
    if (t == CHAT_TMPL_UNKNOWN) {
        err_set(e, "the model has no chat template that m40llm recognizes; choose one with "
                   "--chat-template (chatml, llama2, llama3, mistral, zephyr, gemma, phi3)");
        return NULL;
    }
    int32_t bos = tok_bos(en->tok);
    const char *bos_text = bos >= 0 ? tok_piece(en->tok, bos) : NULL;
    char *text = chat_render(t, msgs, n_msgs, 1, bos_text, e);
    if (!text) return NULL;
    int add_bos = tok_add_bos(en->tok);
    if (bos_text && *bos_text && !strncmp(text, bos_text, strlen(bos_text))) add_bos = 0;
    int32_t *ids = engine_tokenize(en, text, add_bos, 1, n, e);
    free(text);
    return ids;
}
