/* spm.c - SentencePiece BPE as llama.cpp's llm_tokenizer_spm: split into
 * UTF-8 characters, repeatedly merge the adjacent pair whose concatenation
 * is the vocabulary token with the highest score (ties: leftmost), then emit
 * each symbol's token or, when absent, its bytes as <0xNN> tokens. */
#include <string.h>

#include "base/util.h"
#include "tokenizer/tok_internal.h"

typedef struct SpmSym {
    int prev, next;
    size_t off, n;
} SpmSym;

typedef struct SpmBigram { /* 16 bytes: the heap is the hot data */
    int32_t left, right;
    float score;
    uint32_t size;
} SpmBigram;

/* a ranks above b: higher score, then smaller left index. */
static int spm_above(const SpmBigram *a, const SpmBigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

TOK_HEAP_DEFINE(SpmHeap, SpmBigram, spm_above)

static void try_add(const Tokenizer *t, const char *text, SpmSym *sym, SpmHeap *h, int left,
                    int right) {
    if (left == -1 || right == -1) return;
    size_t n = sym[left].n + sym[right].n;
    int32_t id = strmap_get(&t->tok_map, text + sym[left].off, n);
    if (id < 0) return;
    SpmBigram b = {left, right, t->score[id], (uint32_t)n};
    heap_push(h, b);
}

static void spm_tokenize_run(const Tokenizer *t, const char *text, size_t len, IdVec *out) {
    if (len == 0) return;
    SpmSym *sym = xmalloc(len * sizeof *sym);
    int ns = 0;
    for (size_t off = 0; off < len;) {
        size_t n = utf8_len_lead((unsigned char)text[off]);
        if (n > len - off) n = len - off;
        sym[ns].off = off;
        sym[ns].n = n;
        off += n;
        sym[ns].prev = ns - 1;
        sym[ns].next = off == len ? -1 : ns + 1;
        ns++;
    }
    SpmHeap h = {0};
    for (int i = 1; i < ns; i++) try_add(t, text, sym, &h, i - 1, i);
    while (h.n) {
        SpmBigram b = heap_pop(&h);
        SpmSym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        try_add(t, text, sym, &h, l->prev, b.left);
        try_add(t, text, sym, &h, b.left, l->next);
    }
    for (int i = 0; i != -1; i = sym[i].next) {
        int32_t id = strmap_get(&t->tok_map, text + sym[i].off, sym[i].n);
        if (id >= 0) {
            idvec_push(out, id);
            continue;
        }
        for (size_t k = 0; k < sym[i].n; k++) {
            int32_t bid = t->byte_tok[(unsigned char)text[sym[i].off + k]];
            if (bid >= 0)
                idvec_push(out, bid);
            else if (t->unk >= 0)
                idvec_push(out, t->unk);
        }
    }
    free(h.v);
    free(sym);
}

#define SPACE_ESC "\xe2\x96\x81"

int spm_vocab_chunkable(const Tokenizer *t) {
    for (int i = 0; i < t->n_vocab; i++) {
        const char *s = t->text[i];
        size_t n = t->len[i];
        for (size_t p = 1; p + 3 <= n; p++) {
            if (memcmp(s + p, SPACE_ESC, 3)) continue;
            if (p < 3 || memcmp(s + p - 3, SPACE_ESC, 3)) return 0;
        }
    }
    return 1;
}

/* When no token has a U+2581 right after another character (the usual SPM
 * vocabulary), no merge can cross the start of a "▁" run, so the text is
 * merged chunk by chunk with the same result and a small heap. */
void spm_tokenize(const Tokenizer *t, const char *text, size_t len, IdVec *out) {
    if (!t->spm_chunkable) {
        spm_tokenize_run(t, text, len, out);
        return;
    }
    size_t start = 0;
    for (size_t p = 3; p + 3 <= len; p++) {
        if (memcmp(text + p, SPACE_ESC, 3)) continue;
        if (!memcmp(text + p - 3, SPACE_ESC, 3)) continue;
        spm_tokenize_run(t, text + start, p - start, out);
        start = p;
    }
    spm_tokenize_run(t, text + start, len - start, out);
}
