/* bpe.c - byte-level BPE as llama.cpp's llm_tokenizer_bpe_session: each
 * pre-tokenized word is mapped byte -> GPT-2 code point, split into
 * characters, and the adjacent pair with the lowest merge rank (ties:
 * leftmost) is merged until no pair has a rank. Symbols that are not tokens
 * fall back to the tokens of their single bytes (when those exist). */
#include <string.h>

#include "base/util.h"
#include "tokenizer/tok_internal.h"

typedef struct BpeSym {
    int prev, next;
    size_t off, n;
} BpeSym;

typedef struct BpeBigram { /* 16 bytes: the heap is the hot data */
    int32_t left, right;
    int32_t rank;
    uint32_t size;
} BpeBigram;

static int bpe_above(const BpeBigram *a, const BpeBigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

TOK_HEAP_DEFINE(BpeHeap, BpeBigram, bpe_above)

typedef struct BpeCtx {
    const Tokenizer *t;
    IdVec *out;
    char *word; /* byte-encoded word */
    size_t word_cap;
    char *key; /* "left right" scratch */
    size_t key_cap;
    BpeSym *sym;
    size_t sym_cap;
    BpeHeap heap;
} BpeCtx;

static void add_bigram(BpeCtx *c, int left, int right) {
    if (left == -1 || right == -1) return;
    const BpeSym *l = &c->sym[left], *r = &c->sym[right];
    size_t need = l->n + r->n + 1;
    if (need > c->key_cap) {
        c->key_cap = need * 2;
        c->key = xrealloc(c->key, c->key_cap);
    }
    memcpy(c->key, c->word + l->off, l->n);
    c->key[l->n] = ' ';
    memcpy(c->key + l->n + 1, c->word + r->off, r->n);
    int32_t rank = strmap_get(&c->t->merge_map, c->key, need);
    if (rank < 0) return;
    BpeBigram b = {left, right, rank, (uint32_t)(l->n + r->n)};
    heap_push(&c->heap, b);
}

static int bpe_word(const char *w, size_t n, void *ud) {
    BpeCtx *c = ud;
    const Tokenizer *t = c->t;
    /* byte-encode */
    if (n * 4 > c->word_cap) {
        c->word_cap = n * 4 + 16;
        c->word = xrealloc(c->word, c->word_cap);
    }
    size_t wl = 0;
    for (size_t i = 0; i < n; i++) wl += utf8_encode(bpe_byte_to_cpt((uint8_t)w[i]), c->word + wl);
    if (t->ignore_merges) {
        int32_t id = strmap_get(&t->tok_map, c->word, wl);
        if (id >= 0) {
            idvec_push(c->out, id);
            return 0;
        }
    }
    if (wl > c->sym_cap) {
        c->sym_cap = wl + 16;
        c->sym = xrealloc(c->sym, c->sym_cap * sizeof *c->sym);
    }
    int ns = 0;
    for (size_t off = 0; off < wl;) {
        size_t cl = utf8_len_lead((unsigned char)c->word[off]);
        if (cl > wl - off) cl = wl - off;
        c->sym[ns].off = off;
        c->sym[ns].n = cl;
        off += cl;
        c->sym[ns].prev = ns - 1;
        c->sym[ns].next = off == wl ? -1 : ns + 1;
        ns++;
    }
    c->heap.n = 0;
    for (int i = 1; i < ns; i++) add_bigram(c, i - 1, i);
    while (c->heap.n) {
        BpeBigram b = heap_pop(&c->heap);
        BpeSym *l = &c->sym[b.left], *r = &c->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) c->sym[r->next].prev = b.left;
        add_bigram(c, l->prev, b.left);
        add_bigram(c, b.left, l->next);
    }
    for (int i = 0; i != -1 && ns > 0; i = c->sym[i].next) {
        const BpeSym *s = &c->sym[i];
        if (s->n == 0) continue;
        int32_t id = strmap_get(&t->tok_map, c->word + s->off, s->n);
        if (id >= 0) {
            idvec_push(c->out, id);
            continue;
        }
        /* llama.cpp: look up each byte of the encoded text as a 1-byte token */
        for (size_t k = 0; k < s->n; k++) {
            int32_t bid = strmap_get(&t->tok_map, c->word + s->off + k, 1);
            if (bid >= 0) idvec_push(c->out, bid);
        }
    }
    return 0;
}

int bpe_tokenize(const Tokenizer *t, const char *text, size_t len, IdVec *out, Err *e) {
    BpeCtx c = {0};
    c.t = t;
    c.out = out;
    int rc = tokpre_split(t->pre, text, len, bpe_word, &c, e);
    free(c.word);
    free(c.key);
    free(c.sym);
    free(c.heap.v);
    return rc;
}
