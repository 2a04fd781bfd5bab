/* tokenizer.c - vocabulary loading from GGUF metadata, special-token
 * partitioning, encode dispatch (SPM / BPE) and the streaming decoder.
 * Mirrors llama.cpp's llama_vocab (load, tokenize, token_to_piece). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

/* GGUF token_type values */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

void tok_free(Tokenizer *t) {
    if (!t) return;
    if (t->text)
        for (int i = 0; i < t->n_vocab; i++) free(t->text[i]);
    free(t->text);
    free(t->len);
    free(t->score);
    free(t->attr);
    free(t->eog);
    free(t->special);
    strmap_free(&t->tok_map);
    if (t->merges)
        for (int i = 0; i < t->n_merges; i++) free(t->merges[i]);
    free(t->merges);
    strmap_free(&t->merge_map);
    tokpre_free(t->pre);
    free(t);
}

/* Reads an optional integer id key; keeps *id when absent or out of range. */
static int read_id(const GgufFile *f, const char *key, int n_vocab, int32_t *id, Err *e) {
    if (*id >= n_vocab) *id = -1;
    if (!gguf_find_kv(f, key)) return 0;
    uint32_t v;
    if (gguf_get_u32(f, key, &v, e)) return -1;
    if (v >= (uint32_t)n_vocab) {
        LOG_WARN("%s = %u is out of the vocabulary (%d tokens); ignored", key, v, n_vocab);
        return 0;
    }
    *id = (int32_t)v;
    return 0;
}

static int read_flag(const GgufFile *f, const char *key, int *flag, Err *e) {
    bool b;
    if (gguf_get_bool_opt(f, key, *flag != 0, &b, e)) return -1;
    *flag = b;
    return 0;
}

static const char *const EOT_TEXTS[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "<end_of_utterance>",
                                        NULL};
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",   "<|endoftext|>",      "</s>",
    "<|eom_id|>", "<EOT>",      "_<EOT>",  "<|end_of_text|>", "<end_of_utterance>", NULL};

static int in_list(const char *const *list, const char *s) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], s)) return 1;
    return 0;
}

typedef struct LenId {
    uint32_t len;
    int32_t id;
} LenId;

/* longest text first, then by id */
static int cmp_lenid(const void *a, const void *b) {
    const LenId *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

Tokenizer *tok_load(const GgufFile *f, Err *e) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    const char *model = NULL, *pre = NULL;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, e)) goto fail;
    if (!strcmp(model, "llama")) {
        t->type = TOK_TYPE_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_bos = 1, t->add_space_prefix = 1, t->escape_whitespaces = 1;
    } else if (!strcmp(model, "gpt2")) {
        t->type = TOK_TYPE_BPE;
        t->bos = 11, t->eos = 11, t->unk = -1; /* llama.cpp's defaults */
        t->add_bos = 0, t->add_space_prefix = 0, t->escape_whitespaces = 0;
    } else {
        err_set(e, "tokenizer.ggml.model: unsupported tokenizer '%s' (supported: llama, gpt2)",
                model);
        goto fail;
    }
    t->eot = t->eom = -1;
    if (gguf_get_str_opt(f, "tokenizer.ggml.pre", &pre, e)) goto fail;
    snprintf(t->pre_name, sizeof t->pre_name, "%s", pre ? pre : "default");
    if (t->type == TOK_TYPE_BPE) {
        static const char *const L3 =
            "|llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|tekken|";
        char pat[80];
        snprintf(pat, sizeof pat, "|%s|", t->pre_name);
        if (strstr(L3, pat)) t->ignore_merges = 1, t->add_bos = 1;
        if (!strcmp(t->pre_name, "glm4") || !strcmp(t->pre_name, "chatglm-bpe")) t->bos = -1;
        t->pre = tokpre_new(t->pre_name, e);
        if (!t->pre) goto fail;
    }
    if (read_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, e)) goto fail;

    const GgufArray *toks, *scores = NULL, *types = NULL;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, e)) goto fail;
    if (toks->n == 0 || toks->n > 0x7fffffff) {
        err_set(e, "tokenizer.ggml.tokens: bad vocabulary size %llu", (unsigned long long)toks->n);
        goto fail;
    }
    int n = t->n_vocab = (int)toks->n;
    if (gguf_find_kv(f, "tokenizer.ggml.scores")) {
        if (gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_TYPE_COUNT, &scores, e)) goto fail;
        if ((scores->type != GGUF_TYPE_FLOAT32 && scores->type != GGUF_TYPE_INT32) ||
            scores->n < toks->n) {
            err_set(e, "tokenizer.ggml.scores: expected %d f32/i32 values", n);
            goto fail;
        }
    }
    if (gguf_find_kv(f, "tokenizer.ggml.token_type")) {
        if (gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &types, e)) goto fail;
        if (types->n < toks->n) {
            err_set(e, "tokenizer.ggml.token_type: %llu entries for %d tokens",
                    (unsigned long long)types->n, n);
            goto fail;
        }
    }
    t->text = xcalloc((size_t)n, sizeof *t->text);
    t->len = xcalloc((size_t)n, sizeof *t->len);
    t->score = xcalloc((size_t)n, sizeof *t->score);
    t->attr = xcalloc((size_t)n, 1);
    t->eog = xcalloc((size_t)n, 1);
    strmap_init(&t->tok_map, (uint32_t)n);
    const GgufString *strs = toks->data;
    for (int i = 0; i < n; i++) {
        if (strs[i].len == 0) {
            char buf[32];
            snprintf(buf, sizeof buf, "[EMPTY_%d]", i);
            t->text[i] = xstrdup(buf);
            t->len[i] = (uint32_t)strlen(buf);
        } else {
            t->text[i] = xstrndup(strs[i].s, strs[i].len);
            t->len[i] = (uint32_t)strs[i].len;
        }
        if (strmap_put(&t->tok_map, t->text[i], t->len[i], i) >= 0)
            LOG_WARN("tokenizer: duplicate token '%s' at id %d ignored for lookup", t->text[i], i);
        if (scores)
            t->score[i] = scores->type == GGUF_TYPE_FLOAT32
                              ? ((const float *)scores->data)[i]
                              : (float)((const int32_t *)scores->data)[i];
        uint8_t a = TOK_ATTR_NORMAL;
        if (types) {
            switch (((const int32_t *)types->data)[i]) {
            case TT_NORMAL:
                a = TOK_ATTR_NORMAL;
                break;
            case TT_UNKNOWN:
                a = TOK_ATTR_UNKNOWN;
                break;
            case TT_CONTROL:
                a = TOK_ATTR_CONTROL;
                break;
            case TT_USER:
                a = TOK_ATTR_USER_DEFINED;
                break;
            case TT_UNUSED:
                a = TOK_ATTR_UNUSED;
                break;
            case TT_BYTE:
                a = TOK_ATTR_BYTE;
                break;
            default:
                a = TOK_ATTR_UNDEFINED;
                break;
            }
        }
        t->attr[i] = a;
    }

    if (t->type == TOK_TYPE_BPE) {
        const GgufArray *m;
        if (gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &m, e)) goto fail;
        if (m->n > 0x7fffffff) {
            err_set(e, "tokenizer.ggml.merges: too many merges");
            goto fail;
        }
        t->n_merges = (int)m->n;
        t->merges = xcalloc(m->n ? m->n : 1, sizeof *t->merges);
        strmap_init(&t->merge_map, (uint32_t)m->n);
        const GgufString *ms = m->data;
        for (int i = 0; i < t->n_merges; i++) {
            t->merges[i] = xstrndup(ms[i].s, ms[i].len);
            strmap_put(&t->merge_map, t->merges[i], (uint32_t)ms[i].len, i);
        }
    }

    /* special token ids */
    static const char *const ID_KEYS[] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id", "tokenizer.ggml.unknown_token_id"};
    int32_t *ID_PTRS[] = {&t->bos, &t->eos, &t->eot, &t->eom, &t->unk};
    for (int k = 0; k < 5; k++)
        if (read_id(f, ID_KEYS[k], n, ID_PTRS[k], e)) goto fail;
    if (read_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, e)) goto fail;
    if (t->add_bos && t->bos < 0) {
        err_set(e,
                "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
        goto fail;
    }

    /* EOT/EOM/EOG by token text, as llama.cpp (these become CONTROL) */
    for (int i = 0; i < n; i++) {
        if (t->eot < 0 && in_list(EOT_TEXTS, t->text[i])) {
            t->eot = i;
            t->attr[i] |= TOK_ATTR_CONTROL;
        }
        if (t->eom < 0 && !strcmp(t->text[i], "<|eom_id|>")) {
            t->eom = i;
            t->attr[i] |= TOK_ATTR_CONTROL;
        }
        if (in_list(EOG_TEXTS, t->text[i])) {
            t->eog[i] = 1;
            t->attr[i] |= TOK_ATTR_CONTROL;
        }
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;

    /* special-token cache, longest text first */
    LenId *li = xmalloc((size_t)n * sizeof *li);
    for (int i = 0; i < n; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) {
            li[t->n_special].len = t->len[i];
            li[t->n_special].id = i;
            t->n_special++;
        }
    qsort(li, (size_t)t->n_special, sizeof *li, cmp_lenid);
    t->special = xmalloc(((size_t)t->n_special + 1) * sizeof *t->special);
    for (int i = 0; i < t->n_special; i++) t->special[i] = li[i].id;
    free(li);

    /* llama.cpp per-model attributes: Phi-3 strips whitespace after its
     * special tokens (except <unk>, <s>, <|endoftext|>) and after </s>. */
    const char *gname = NULL;
    if (gguf_get_str_opt(f, "general.name", &gname, NULL) == 0 && gname) {
        char low[256];
        size_t k = 0;
        for (; gname[k] && k + 1 < sizeof low; k++) low[k] = (char)tolower((unsigned char)gname[k]);
        low[k] = 0;
        if (strstr(low, "phi-3") || strstr(low, "phi3")) {
            for (int i = 0; i < t->n_special; i++) t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
            int32_t id = tok_find(t, "</s>");
            if (id >= 0) t->attr[id] |= TOK_ATTR_RSTRIP;
            static const char *const KEEP[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (int i = 0; i < 3; i++)
                if ((id = tok_find(t, KEEP[i])) >= 0) t->attr[id] &= (uint8_t)~TOK_ATTR_RSTRIP;
        }
    }

    if (t->type == TOK_TYPE_SPM) t->spm_chunkable = spm_vocab_chunkable(t);

    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t id = -1;
        if (t->type == TOK_TYPE_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = strmap_get(&t->tok_map, buf, 6);
            if (id < 0) {
                buf[0] = (char)b;
                id = strmap_get(&t->tok_map, buf, 1);
            }
        } else {
            size_t l = utf8_encode(bpe_byte_to_cpt((uint8_t)b), buf);
            id = strmap_get(&t->tok_map, buf, l);
        }
        t->byte_tok[b] = id;
    }
    return t;
fail:
    tok_free(t);
    return NULL;
}

int tok_n_vocab(const Tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const Tokenizer *t) { return t->bos; }
int32_t tok_eos(const Tokenizer *t) { return t->eos; }
int tok_add_bos(const Tokenizer *t) { return t->add_bos; }
int tok_is_eog(const Tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }
int32_t tok_find(const Tokenizer *t, const char *text) {
    return strmap_get(&t->tok_map, text, strlen(text));
}
const char *tok_piece(const Tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->text[id] : NULL;
}

/* ---- encode ---- */

typedef struct Frag {
    int32_t id; /* >= 0: a special token; -1: raw text [off, off+len) */
    size_t off, len;
} Frag;

typedef struct FragList {
    Frag *v;
    size_t n, cap;
} FragList;

static void fl_push(FragList *l, int32_t id, size_t off, size_t len) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].id = id;
    l->v[l->n].off = off;
    l->v[l->n].len = len;
    l->n++;
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    const char *end = h + hn - nn;
    for (const char *p = h; p <= end;) {
        p = memchr(p, nd[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (!memcmp(p, nd, nn)) return p;
        p++;
    }
    return NULL;
}

/* llama.cpp tokenizer_st_partition: split raw text on special-token texts,
 * longest first; control/unknown tokens only when parse_special. */
static void st_partition(const Tokenizer *t, const char *text, size_t len, int parse_special,
                         FragList *out) {
    FragList cur = {0}, nxt = {0};
    fl_push(&cur, -1, 0, len);
    for (int s = 0; s < t->n_special; s++) {
        int32_t id = t->special[s];
        if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
        const char *st = t->text[id];
        size_t sl = t->len[id];
        int found = 0;
        nxt.n = 0;
        for (size_t i = 0; i < cur.n; i++) {
            Frag fr = cur.v[i];
            if (fr.id >= 0) {
                fl_push(&nxt, fr.id, 0, 0);
                continue;
            }
            size_t off = fr.off, end = fr.off + fr.len;
            const char *p;
            while (off < end && (p = find_bytes(text + off, end - off, st, sl))) {
                size_t m = (size_t)(p - text), lend = m;
                if (t->attr[id] & TOK_ATTR_LSTRIP)
                    while (lend > off && isspace((unsigned char)text[lend - 1])) lend--;
                if (lend > off) fl_push(&nxt, -1, off, lend - off);
                fl_push(&nxt, id, 0, 0);
                off = m + sl;
                if (t->attr[id] & TOK_ATTR_RSTRIP)
                    while (off < end && isspace((unsigned char)text[off])) off++;
                found = 1;
            }
            if (off < end) fl_push(&nxt, -1, off, end - off);
        }
        if (found) {
            FragList tmp = cur;
            cur = nxt;
            nxt = tmp;
        }
    }
    free(nxt.v);
    *out = cur;
}

static char *escape_spaces(const char *s, size_t n, int prefix, size_t *out_len) {
    size_t cap = (n + 1) * 3 + 1, k = 0;
    char *o = xmalloc(cap);
    if (prefix) memcpy(o, "\xe2\x96\x81", 3), k = 3;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(o + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            o[k++] = s[i];
        }
    }
    *out_len = k;
    return o;
}

int tok_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
               int32_t *ids, int cap, Err *e) {
    size_t bad = utf8_validate((const unsigned char *)text, len);
    if (bad != (size_t)-1) {
        err_set(e, "text: invalid UTF-8 at byte offset %zu (byte 0x%02x)", bad,
                (unsigned)(unsigned char)text[bad]);
        return -1;
    }
    IdVec out = {0};
    FragList fl = {0};
    if (add_bos && t->bos >= 0) idvec_push(&out, t->bos);
    if (len > 0) st_partition(t, text, len, parse_special, &fl);
    int prev_special = 1;
    for (size_t i = 0; i < fl.n; i++) {
        const Frag *fr = &fl.v[i];
        if (fr->id >= 0) {
            idvec_push(&out, fr->id);
            prev_special = 1;
            continue;
        }
        if (t->type == TOK_TYPE_SPM) {
            size_t el;
            char *esc =
                escape_spaces(text + fr->off, fr->len, t->add_space_prefix && prev_special, &el);
            spm_tokenize(t, esc, el, &out);
            free(esc);
        } else if (t->escape_whitespaces) {
            size_t el;
            char *esc = escape_spaces(text + fr->off, fr->len, 0, &el);
            int rc = bpe_tokenize(t, esc, el, &out, e);
            free(esc);
            if (rc) goto fail;
        } else {
            if (bpe_tokenize(t, text + fr->off, fr->len, &out, e)) goto fail;
        }
        prev_special = 0;
    }
    free(fl.v);
    if (out.n > 0x7fffffff) {
        free(out.v);
        err_set(e, "tokenize: too many tokens");
        return -1;
    }
    int total = (int)out.n;
    if (ids && cap > 0) memcpy(ids, out.v, (size_t)(total < cap ? total : cap) * sizeof *ids);
    free(out.v);
    return total;
fail:
    free(fl.v);
    free(out.v);
    return -1;
}

/* ---- decode ---- */

/* Raw bytes of a token's text (llama.cpp token_to_piece without lstrip).
 * Writes to buf (cap >= t->len[id] + 4); returns the byte count. */
static size_t token_bytes(const Tokenizer *t, int32_t id, int special, char *buf) {
    if (id < 0 || id >= t->n_vocab) return 0;
    uint8_t a = t->attr[id];
    if (!special && (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) return 0;
    const char *s = t->text[id];
    size_t n = t->len[id];
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        memcpy(buf, s, n);
        return n;
    }
    if (a & TOK_ATTR_NORMAL) {
        size_t k = 0;
        if (t->type == TOK_TYPE_SPM || t->escape_whitespaces) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                    buf[k++] = ' ';
                    i += 3;
                } else {
                    buf[k++] = s[i++];
                }
            }
            return k;
        }
        for (size_t i = 0; i < n;) {
            size_t adv;
            uint32_t c = utf8_decode((const unsigned char *)s + i, n - i, &adv);
            int b = bpe_cpt_to_byte(c);
            if (b >= 0) {
                buf[k++] = (char)b;
            } else {
                memcpy(buf + k, s + i, adv);
                k += adv;
            }
            i += adv;
        }
        return k;
    }
    if (a & TOK_ATTR_BYTE) {
        if (n >= 6 && !memcmp(s, "<0x", 3)) {
            buf[0] = (char)strtol((char[3]){s[3], s[4], 0}, NULL, 16);
            return 1;
        }
        memcpy(buf, s, n);
        return n;
    }
    return 0;
}

void tok_decoder_init(TokDecoder *d, const Tokenizer *t, int render_special) {
    memset(d, 0, sizeof *d);
    d->t = t;
    d->render_special = render_special;
    d->lstrip = t->add_space_prefix;
}

typedef struct OutBuf {
    char *p;
    size_t n, cap; /* cap includes the NUL */
} OutBuf;

/* noinline: gcc -O3 inlines calls with 1-byte sources and then misreports the
 * (only shrinking) truncation loop as out of bounds. */
__attribute__((noinline)) static void ob_put(OutBuf *o, const char *s, size_t n) {
    if (o->cap == 0) return;
    if (o->n + n + 1 > o->cap) { /* truncate at a character boundary */
        n = o->cap - 1 - o->n;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = 0;
}

static void emit_fffd(OutBuf *o) { ob_put(o, "\xef\xbf\xbd", 3); }

size_t tok_decoder_feed(TokDecoder *d, int32_t id, char *out, size_t cap) {
    OutBuf o = {out, 0, cap};
    if (cap) out[0] = 0;
    const Tokenizer *t = d->t;
    size_t need = (id >= 0 && id < t->n_vocab ? t->len[id] : 0) + 8;
    char stack[512];
    char *buf = need <= sizeof stack ? stack : xmalloc(need);
    size_t n = token_bytes(t, id, d->render_special, buf);
    const char *s = buf;
    if (d->lstrip && !(d->n_tokens == 0 && id == t->bos)) {
        if (n > 0 && s[0] == ' ') s++, n--;
        d->lstrip = 0;
    }
    d->n_tokens++;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (d->n_pending > 0) {
            if ((b & 0xC0) == 0x80) {
                d->pending[d->n_pending++] = b;
                if ((size_t)d->n_pending == utf8_len_lead(d->pending[0])) {
                    ob_put(&o, (const char *)d->pending, (size_t)d->n_pending);
                    d->n_pending = 0;
                }
                continue;
            }
            emit_fffd(&o);
            d->n_pending = 0;
        }
        if (b < 0x80) {
            ob_put(&o, (const char *)&b, 1);
        } else if (utf8_len_lead(b) > 1) {
            d->pending[0] = b;
            d->n_pending = 1;
        } else {
            emit_fffd(&o);
        }
    }
    if (buf != stack) free(buf);
    return o.n;
}

size_t tok_decoder_flush(TokDecoder *d, char *out, size_t cap) {
    OutBuf o = {out, 0, cap};
    if (cap) out[0] = 0;
    if (d->n_pending > 0) emit_fffd(&o);
    d->n_pending = 0;
    return o.n;
}

char *tok_decode_all(const Tokenizer *t, const int32_t *ids, int n, int render_special) {
    TokDecoder d;
    tok_decoder_init(&d, t, render_special);
    size_t cap = 256, len = 0;
    char *res = xmalloc(cap);
    res[0] = 0;
    for (int i = 0; i <= n; i++) {
        size_t need = (i < n && ids[i] >= 0 && ids[i] < t->n_vocab ? t->len[ids[i]] : 0) * 3 + 16;
        if (len + need + 1 > cap) {
            cap = (len + need + 1) * 2;
            res = xrealloc(res, cap);
        }
        len += i < n ? tok_decoder_feed(&d, ids[i], res + len, cap - len)
                     : tok_decoder_flush(&d, res + len, cap - len);
    }
    return res;
}
