/* tok_util.c - UTF-8 helpers, the byte-level BPE byte<->code point map and
 * a small string hash map used by the tokenizers. */
#include <string.h>

#include "base/util.h"
#include "tokenizer/tok_internal.h"

size_t utf8_len_lead(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *adv) {
    size_t len = utf8_len_lead(s[0]);
    if (len > n) len = n;
    uint32_t cpt;
    switch (len) {
    case 1:
        cpt = s[0];
        break;
    case 2:
        cpt = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        break;
    case 3:
        cpt = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        break;
    default:
        cpt = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
              ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        break;
    }
    *adv = len;
    return cpt;
}

size_t utf8_encode(uint32_t cpt, char *out) {
    if (cpt < 0x80) {
        out[0] = (char)cpt;
        return 1;
    }
    if (cpt < 0x800) {
        out[0] = (char)(0xC0 | (cpt >> 6));
        out[1] = (char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt < 0x10000) {
        out[0] = (char)(0xE0 | (cpt >> 12));
        out[1] = (char)(0x80 | ((cpt >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cpt >> 18));
    out[1] = (char)(0x80 | ((cpt >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cpt >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cpt & 0x3F));
    return 4;
}

/* GPT-2 bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
 * others to 256, 257, ... in byte order. */
static int bpe_printable(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The non-printable bytes, in order, are 0x00-0x20 (33), 0x7F-0xA0 (34) and
 * 0xAD: they map to 256 + their rank. */
uint32_t bpe_byte_to_cpt(uint8_t b) {
    if (bpe_printable(b)) return b;
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F);
    return 256u + 67u; /* 0xAD */
}

int bpe_cpt_to_byte(uint32_t cpt) {
    if (cpt < 256) return bpe_printable((int)cpt) ? (int)cpt : -1;
    uint32_t n = cpt - 256;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(0x7F + n - 33);
    if (n == 67) return 0xAD;
    return -1;
}

/* ---- StrMap ---- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

void strmap_init(StrMap *m, uint32_t expected) {
    uint32_t cap = 16;
    while (cap < expected * 2 + 1) cap <<= 1;
    m->cap = cap;
    m->n = 0;
    m->keys = xcalloc(cap, sizeof *m->keys);
    m->lens = xcalloc(cap, sizeof *m->lens);
    m->vals = xcalloc(cap, sizeof *m->vals);
}

void strmap_free(StrMap *m) {
    if (!m) return;
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int32_t strmap_put(StrMap *m, const char *key, uint32_t len, int32_t val) {
    M40_ASSERT(m->n * 2 < m->cap);
    uint32_t i = hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->lens[i] == len && !memcmp(m->keys[i], key, len)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->lens[i] = len;
    m->vals[i] = val;
    m->n++;
    return -1;
}

int32_t strmap_get(const StrMap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint32_t i = hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->lens[i] == len && !memcmp(m->keys[i], key, len)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void idvec_push(IdVec *iv, int32_t id) {
    if (iv->n == iv->cap) {
        iv->cap = iv->cap ? iv->cap * 2 : 64;
        iv->v = xrealloc(iv->v, iv->cap * sizeof *iv->v);
    }
    iv->v[iv->n++] = id;
}
