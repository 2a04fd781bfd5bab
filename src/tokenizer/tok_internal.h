/* tok_internal.h - private state of the tokenizer module (not a public
 * contract: only the tokenizer sources include it). */
#ifndef M40_TOK_INTERNAL_H
#define M40_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/util.h"
#include "tokenizer/tokenizer.h"

/* Token attributes (bit flags, as llama.cpp's llama_token_attr). */
enum {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 6, /* strip whitespace left of it when partitioning */
    TOK_ATTR_RSTRIP = 1 << 7, /* strip whitespace right of it */
};

typedef enum TokType { TOK_TYPE_SPM = 0, TOK_TYPE_BPE = 1 } TokType;

/* Open-addressing string -> int32 map (keys borrowed, never removed). */
typedef struct StrMap {
    const char **keys; /* [cap] key pointers (NULL = empty slot) */
    uint32_t *lens;    /* [cap] */
    int32_t *vals;     /* [cap] */
    uint32_t cap;      /* power of two */
    uint32_t n;
} StrMap;

void strmap_init(StrMap *m, uint32_t expected);
void strmap_free(StrMap *m);
/* Inserts unless present; returns the existing value or -1 when inserted. */
int32_t strmap_put(StrMap *m, const char *key, uint32_t len, int32_t val);
int32_t strmap_get(const StrMap *m, const char *key, size_t len); /* -1 if absent */

typedef struct TokPre TokPre; /* compiled pre-tokenizer regexes (pretok.c) */

struct Tokenizer {
    TokType type;
    int n_vocab;
    char **text;   /* [n_vocab] NUL-terminated token texts */
    uint32_t *len; /* [n_vocab] */
    float *score;  /* [n_vocab] */
    uint8_t *attr; /* [n_vocab] TOK_ATTR_* */
    StrMap tok_map;
    /* BPE merges: "left right" -> rank */
    char **merges;
    int n_merges;
    StrMap merge_map;
    TokPre *pre;
    char pre_name[64];

    int32_t bos, eos, eot, eom, unk;
    int add_bos, add_space_prefix, escape_whitespaces, ignore_merges;
    int spm_chunkable;     /* no token has U+2581 after another character */
    uint8_t *eog;          /* [n_vocab] */
    int32_t byte_tok[256]; /* SPM: <0xNN> ids (-1 absent); BPE: single-char byte ids */
    int32_t *special;      /* ids of CONTROL/USER_DEFINED/UNKNOWN tokens, longest text first */
    int n_special;
};

/* Growable id buffer. */
typedef struct IdVec {
    int32_t *v;
    size_t n, cap;
} IdVec;
void idvec_push(IdVec *iv, int32_t id);

/* SPM: tokenizes `text` (spaces already escaped as U+2581) appending ids. */
void spm_tokenize(const Tokenizer *t, const char *text, size_t len, IdVec *out);
int spm_vocab_chunkable(const Tokenizer *t);
/* BPE: pre-tokenizes and merges one raw-text fragment. */
int bpe_tokenize(const Tokenizer *t, const char *text, size_t len, IdVec *out, Err *e);

/* Pre-tokenizer by tokenizer.ggml.pre name (NULL/"" -> default). */
TokPre *tokpre_new(const char *pre_name, Err *e);
void tokpre_free(TokPre *p);
/* Splits text into words: calls fn(word, len, ud) for each. Returns -1 on a
 * regex engine error. */
int tokpre_split(const TokPre *p, const char *text, size_t len,
                 int (*fn)(const char *w, size_t n, void *ud), void *ud, Err *e);

/* TOK_HEAP_DEFINE(Heap, Elem, above) defines a 4-ary min-heap (4-ary: fewer
 * cache misses) of Elem values, shared by the BPE and SPM merge loops:
 *   typedef struct Heap { Elem *v; size_t n, cap; } Heap;   (zero-init = empty)
 *   static void heap_push(Heap *h, Elem b);   grows by doubling (64 first)
 *   static Elem heap_pop(Heap *h);            requires h->n > 0
 * `above(const Elem *a, const Elem *b)` is nonzero when a must pop before b;
 * it must be a strict total order for the merge order to be deterministic.
 * The caller frees h->v. A macro rather than a void * heap so the comparator
 * inlines in the tokenizers' hot loop. */
#define TOK_HEAP_DEFINE(Heap, Elem, above)                                                         \
    typedef struct Heap {                                                                          \
        Elem *v;                                                                                   \
        size_t n, cap;                                                                             \
    } Heap;                                                                                        \
    static void heap_push(Heap *h, Elem b) {                                                       \
        if (h->n == h->cap) {                                                                      \
            h->cap = h->cap ? h->cap * 2 : 64;                                                     \
            h->v = xrealloc(h->v, h->cap * sizeof *h->v);                                          \
        }                                                                                          \
        size_t i = h->n++;                                                                         \
        while (i > 0) {                                                                            \
            size_t p = (i - 1) / 4;                                                                \
            if (!above(&b, &h->v[p])) break;                                                       \
            h->v[i] = h->v[p];                                                                     \
            i = p;                                                                                 \
        }                                                                                          \
        h->v[i] = b;                                                                               \
    }                                                                                              \
    static Elem heap_pop(Heap *h) {                                                                \
        Elem top = h->v[0];                                                                        \
        Elem last = h->v[--h->n];                                                                  \
        size_t i = 0;                                                                              \
        for (;;) {                                                                                 \
            size_t c = 4 * i + 1, best = i;                                                        \
            const Elem *bv = &last;                                                                \
            for (size_t k = c; k < c + 4 && k < h->n; k++)                                         \
                if (above(&h->v[k], bv)) best = k, bv = &h->v[k];                                  \
            if (best == i) break;                                                                  \
            h->v[i] = h->v[best];                                                                  \
            i = best;                                                                              \
        }                                                                                          \
        if (h->n) h->v[i] = last;                                                                  \
        return top;                                                                                \
    }

/* UTF-8 helpers. */
size_t utf8_len_lead(unsigned char c); /* 1..4 by the lead byte (1 for invalid) */
/* utf8_validate (strict UTF-8 check) lives in base/util.h. */
/* Byte-level BPE map: byte -> code point, and its inverse (-1 if none). */
uint32_t bpe_byte_to_cpt(uint8_t b);
int bpe_cpt_to_byte(uint32_t cpt);
size_t utf8_encode(uint32_t cpt, char *out); /* out needs 4 bytes */
/* Decodes one code point from s[0..n), storing its byte length; assumes valid. */
uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *adv);

#endif
