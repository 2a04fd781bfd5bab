/* gguf.c - GGUF v2/v3 parser (gguf_parse), file wrapper (gguf_open), lookup
 * hash tables and typed getters.
 *
 * The parser never reads outside [data, data+size): every read goes through
 * rd_need(), and every count or length is checked against the bytes left
 * before anything is allocated for it. Errors are one line:
 * "<name>: offset <N>: <problem>". */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "gguf/gguf.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "GGUF reader assumes a little-endian host");

/* ------------------------------------------------------------ hash index */

typedef struct HashTab {
    uint64_t *slots; /* index + 1; 0 = empty */
    uint64_t mask;
    uint64_t seed; /* random per table: names come from the file, and a
                      fixed hash would let a crafted file force every key
                      into one probe chain (quadratic parse time) */
} HashTab;

typedef struct GgufIndex {
    HashTab kv;
    HashTab tensors;
} GgufIndex;

static uint64_t fmix64(uint64_t h) { /* MurmurHash3 finalizer */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const HashTab *t, const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull ^ t->seed; /* FNV-1a, seeded */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return fmix64(h ^ t->seed);
}

static uint64_t random_seed(const void *salt) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)salt;
    }
    return fmix64(seed);
}

static void hash_init(HashTab *t, uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    t->slots = xcalloc((size_t)cap, sizeof(uint64_t));
    t->mask = cap - 1;
    t->seed = random_seed(t);
}

/* Inserts name -> idx; returns the existing index if the name is already
 * present (nothing inserted), else -1. */
static int64_t hash_insert(HashTab *t, const char *name, uint64_t idx, const char *const *names,
                           size_t stride) {
    size_t n = strlen(name);
    uint64_t h = hash_bytes(t, name, n) & t->mask;
    for (;;) {
        uint64_t s = t->slots[h];
        if (!s) {
            t->slots[h] = idx + 1;
            return -1;
        }
        const char *other = *(const char *const *)((const char *)names + (s - 1) * stride);
        if (strcmp(other, name) == 0) return (int64_t)(s - 1);
        h = (h + 1) & t->mask;
    }
}

static int64_t hash_find(const HashTab *t, const char *name, const char *const *names,
                         size_t stride) {
    if (!t->slots || !name) return -1;
    size_t n = strlen(name);
    uint64_t h = hash_bytes(t, name, n) & t->mask;
    for (;;) {
        uint64_t s = t->slots[h];
        if (!s) return -1;
        const char *other = *(const char *const *)((const char *)names + (s - 1) * stride);
        if (strcmp(other, name) == 0) return (int64_t)(s - 1);
        h = (h + 1) & t->mask;
    }
}

/* ------------------------------------------------------------ reader */

typedef struct Rd {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    const char *name;
    Err *e;
    /* context for messages */
    const char *key;   /* metadata key being parsed */
    int64_t elem;      /* array element index or -1 */
    int64_t tensor;    /* tensor info index or -1 */
    const char *tname; /* tensor name once known */
} Rd;

/* Strict UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
static bool utf8_valid(const uint8_t *s, uint64_t n) {
    return utf8_validate(s, (size_t)n) == (size_t)-1;
}

/* Copies a name from the file into dst for a message: at most ~120 bytes,
 * control characters, backslashes (and every byte >= 0x80 when the name is
 * not valid UTF-8) escaped as \xNN, so a message is one printable line. */
static const char *msg_name(char *dst, size_t n, const char *s) {
    size_t len = strlen(s), o = 0;
    bool utf8 = utf8_valid((const uint8_t *)s, len);
    for (size_t i = 0; i < len && o + 5 < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (o >= 120) {
            /* never cut a UTF-8 sequence in the middle */
            while (o > 0 && ((uint8_t)dst[o - 1] & 0xC0) == 0x80) o--;
            if (o > 0 && ((uint8_t)dst[o - 1] & 0x80)) o--;
            dst[o] = 0;
            o += (size_t)snprintf(dst + o, n - o, "...");
            break;
        }
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8) || c == '\\')
            o += (size_t)snprintf(dst + o, n - o, "\\x%02x", c);
        else
            dst[o++] = (char)c;
    }
    dst[o < n ? o : n - 1] = 0;
    return dst;
}

static int rd_fail(Rd *r, uint64_t off, const char *fmt, ...) M40_PRINTF(3, 4);
static int rd_fail(Rd *r, uint64_t off, const char *fmt, ...) {
    char msg[320], ctx[200] = "", nm[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->key) {
        if (r->elem >= 0)
            snprintf(ctx, sizeof ctx, "key '%s': element %" PRId64 ": ",
                     msg_name(nm, sizeof nm, r->key), r->elem);
        else
            snprintf(ctx, sizeof ctx, "key '%s': ", msg_name(nm, sizeof nm, r->key));
    } else if (r->tensor >= 0) {
        if (r->tname)
            snprintf(ctx, sizeof ctx, "tensor %" PRId64 " '%s': ", r->tensor,
                     msg_name(nm, sizeof nm, r->tname));
        else
            snprintf(ctx, sizeof ctx, "tensor %" PRId64 ": ", r->tensor);
    }
    return err_set(r->e, "%s: offset %" PRIu64 ": %s%s", r->name, off, ctx, msg);
}

static inline uint64_t rd_left(const Rd *r) { return r->size - r->pos; }

static int rd_need(Rd *r, uint64_t n, const char *what) {
    if (n > rd_left(r))
        return rd_fail(r, r->pos, "truncated: %s needs %" PRIu64 " bytes, %" PRIu64 " left", what,
                       n, rd_left(r));
    return 0;
}

static int rd_u32(Rd *r, uint32_t *out, const char *what) {
    if (rd_need(r, 4, what)) return -1;
    memcpy(out, r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(Rd *r, uint64_t *out, const char *what) {
    if (rd_need(r, 8, what)) return -1;
    memcpy(out, r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}

/* Reads a gguf_string into a NUL-terminated heap copy. */
static int rd_str(Rd *r, GgufString *out, const char *what) {
    uint64_t at = r->pos, len;
    if (rd_u64(r, &len, what)) return -1;
    if (len > rd_left(r))
        return rd_fail(r, at, "%s length %" PRIu64 " exceeds the %" PRIu64 " bytes left", what, len,
                       rd_left(r));
    out->s = xmalloc((size_t)len + 1);
    memcpy(out->s, r->p + r->pos, (size_t)len);
    out->s[len] = 0;
    out->len = len;
    r->pos += len;
    return 0;
}

static void free_array(GgufArray *a);

static void free_value(GgufValue *v) {
    if (v->type == GGUF_TYPE_STRING)
        free(v->str.s);
    else if (v->type == GGUF_TYPE_ARRAY)
        free_array(&v->arr);
}

static void free_array(GgufArray *a) {
    if (!a->data) return;
    if (a->type == GGUF_TYPE_STRING) {
        GgufString *s = a->data;
        for (uint64_t i = 0; i < a->n; i++) free(s[i].s);
    } else if (a->type == GGUF_TYPE_ARRAY) {
        GgufArray *s = a->data;
        for (uint64_t i = 0; i < a->n; i++) free_array(&s[i]);
    }
    free(a->data);
    a->data = NULL;
}

/* Reads "u32 elem_type | u64 n | elements" into *a. depth 0 = top-level. */
static int rd_array(Rd *r, GgufArray *a, int depth) {
    uint64_t at = r->pos;
    uint32_t et;
    uint64_t n;
    a->data = NULL;
    a->n = 0;
    if (rd_u32(r, &et, "array element type")) return -1;
    if (et >= GGUF_TYPE_COUNT) return rd_fail(r, at, "unknown array element type %" PRIu32, et);
    if (et == GGUF_TYPE_ARRAY && depth >= 1)
        return rd_fail(r, at, "arrays nested more than one level deep are not supported");
    a->type = (GgufValueType)et;
    uint64_t at_n = r->pos;
    if (rd_u64(r, &n, "array length")) return -1;
    size_t es = gguf_value_type_size(et);
    uint64_t min_elem = es ? es : (et == GGUF_TYPE_STRING ? 8 : 12);
    if (n > rd_left(r) / min_elem)
        return rd_fail(r, at_n,
                       "array of %" PRIu64 " %s needs at least %" PRIu64 " bytes per element, "
                       "only %" PRIu64 " bytes left",
                       n, gguf_value_type_name(et), min_elem, rd_left(r));
    if (n == 0) return 0;
    if (es) {
        a->data = xmalloc((size_t)(n * es));
        a->n = n;
        memcpy(a->data, r->p + r->pos, (size_t)(n * es));
        if (et == GGUF_TYPE_BOOL) {
            const uint8_t *b = a->data;
            for (uint64_t i = 0; i < n; i++)
                if (b[i] > 1) {
                    r->elem = (int64_t)i;
                    return rd_fail(r, r->pos + i, "invalid bool value %u (must be 0 or 1)", b[i]);
                }
        }
        r->pos += n * es;
        return 0;
    }
    if (et == GGUF_TYPE_STRING) {
        GgufString *s = xcalloc((size_t)n, sizeof *s);
        a->data = s;
        a->n = n;
        int64_t saved = r->elem;
        for (uint64_t i = 0; i < n; i++) {
            r->elem = (int64_t)i;
            if (rd_str(r, &s[i], "string")) return -1;
        }
        r->elem = saved;
        return 0;
    }
    /* nested arrays */
    GgufArray *s = xcalloc((size_t)n, sizeof *s);
    a->data = s;
    a->n = n;
    for (uint64_t i = 0; i < n; i++) {
        int64_t saved = r->elem;
        r->elem = (int64_t)i;
        if (rd_array(r, &s[i], depth + 1)) return -1;
        r->elem = saved;
    }
    return 0;
}

static int rd_value(Rd *r, uint32_t type, GgufValue *v) {
    uint64_t at = r->pos;
    v->type = (GgufValueType)type;
    switch (type) {
    case GGUF_TYPE_STRING:
        v->str.s = NULL;
        return rd_str(r, &v->str, "string value");
    case GGUF_TYPE_ARRAY:
        return rd_array(r, &v->arr, 0);
    default:
        break;
    }
    size_t es = gguf_value_type_size(type);
    if (!es) return rd_fail(r, at, "unknown value type %" PRIu32, type);
    if (rd_need(r, es, gguf_value_type_name(type))) return -1;
    switch (type) {
    case GGUF_TYPE_BOOL: {
        uint8_t b = r->p[r->pos];
        if (b > 1) return rd_fail(r, at, "invalid bool value %u (must be 0 or 1)", b);
        v->b = b;
        break;
    }
    case GGUF_TYPE_UINT8:
        memcpy(&v->u8, r->p + r->pos, 1);
        break;
    case GGUF_TYPE_INT8:
        memcpy(&v->i8, r->p + r->pos, 1);
        break;
    case GGUF_TYPE_UINT16:
        memcpy(&v->u16, r->p + r->pos, 2);
        break;
    case GGUF_TYPE_INT16:
        memcpy(&v->i16, r->p + r->pos, 2);
        break;
    case GGUF_TYPE_UINT32:
        memcpy(&v->u32, r->p + r->pos, 4);
        break;
    case GGUF_TYPE_INT32:
        memcpy(&v->i32, r->p + r->pos, 4);
        break;
    case GGUF_TYPE_FLOAT32:
        memcpy(&v->f32, r->p + r->pos, 4);
        break;
    case GGUF_TYPE_UINT64:
        memcpy(&v->u64, r->p + r->pos, 8);
        break;
    case GGUF_TYPE_INT64:
        memcpy(&v->i64, r->p + r->pos, 8);
        break;
    case GGUF_TYPE_FLOAT64:
        memcpy(&v->f64, r->p + r->pos, 8);
        break;
    default:
        break;
    }
    r->pos += es;
    return 0;
}

/* ------------------------------------------------------------ parse */

static const char *const *kv_names(const GgufFile *f) { return (const char *const *)&f->kv[0].key; }
static const char *const *tensor_names(const GgufFile *f) {
    return (const char *const *)&f->tensors[0].name;
}

typedef struct TOrder {
    uint64_t offset;
    uint64_t idx;
} TOrder;

static int cmp_torder(const void *a, const void *b) {
    const TOrder *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

GgufFile *gguf_parse(const void *data, size_t size, const char *name, Err *e) {
    Rd r = {.p = data,
            .size = data ? size : 0,
            .name = name ? name : "gguf",
            .e = e,
            .elem = -1,
            .tensor = -1};
    GgufFile *f = xcalloc(1, sizeof *f);
    GgufIndex *ix = xcalloc(1, sizeof *ix);
    uint64_t *info_pos = NULL; /* byte offset of each tensor info's offset field */
    TOrder *order = NULL;
    f->index = ix;
    f->name = xstrdup(r.name);
    f->base = data;
    f->size = r.size;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;

    uint32_t magic;
    if (rd_u32(&r, &magic, "magic")) goto fail;
    if (magic != GGUF_MAGIC) {
        rd_fail(&r, 0, "bad magic 0x%08" PRIx32 " (not a GGUF file)", magic);
        goto fail;
    }
    if (rd_u32(&r, &f->version, "version")) goto fail;
    if (f->version != 2 && f->version != 3) {
        if (f->version == 1)
            rd_fail(&r, 4, "unsupported GGUF version 1 (only v2 and v3 are supported)");
        else if ((f->version & 0xFFFF) == 0)
            rd_fail(&r, 4, "unsupported GGUF version %" PRIu32 " (big-endian file?)", f->version);
        else
            rd_fail(&r, 4, "unsupported GGUF version %" PRIu32, f->version);
        goto fail;
    }
    uint64_t n_tensors, n_kv;
    uint64_t at_nt = r.pos;
    if (rd_u64(&r, &n_tensors, "tensor count")) goto fail;
    uint64_t at_nkv = r.pos;
    if (rd_u64(&r, &n_kv, "metadata count")) goto fail;
    /* each KV is at least 8 (key length) + 1 (key) + 4 (type) + 1 (value) */
    if (n_kv > rd_left(&r) / 14) {
        rd_fail(&r, at_nkv,
                "metadata count %" PRIu64 " exceeds what the %" PRIu64 " bytes left can hold", n_kv,
                rd_left(&r));
        goto fail;
    }
    /* each tensor info is at least 8 + 1 + 4 + 8 + 4 + 8 bytes */
    if (n_tensors > rd_left(&r) / 33) {
        rd_fail(&r, at_nt,
                "tensor count %" PRIu64 " exceeds what the %" PRIu64 " bytes left can hold",
                n_tensors, rd_left(&r));
        goto fail;
    }

    /* metadata */
    f->kv = xcalloc((size_t)(n_kv ? n_kv : 1), sizeof *f->kv);
    hash_init(&ix->kv, n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t at_key = r.pos;
        GgufString key = {0};
        if (rd_str(&r, &key, "key")) goto fail;
        GgufKV *kv = &f->kv[i];
        kv->key = key.s;
        kv->val.type = GGUF_TYPE_UINT8;
        f->n_kv = i + 1; /* owned from here on */
        if (key.len == 0) {
            rd_fail(&r, at_key, "metadata %" PRIu64 ": empty key", i);
            goto fail;
        }
        if (memchr(key.s, 0, (size_t)key.len)) {
            rd_fail(&r, at_key, "metadata %" PRIu64 ": key contains a NUL byte", i);
            goto fail;
        }
        if (!utf8_valid((const uint8_t *)key.s, key.len)) {
            rd_fail(&r, at_key, "metadata %" PRIu64 ": key is not valid UTF-8", i);
            goto fail;
        }
        int64_t dup = hash_insert(&ix->kv, key.s, i, kv_names(f), sizeof(GgufKV));
        if (dup >= 0) {
            char nm[160];
            rd_fail(&r, at_key, "duplicate key '%s' (first at metadata %" PRId64 ")",
                    msg_name(nm, sizeof nm, key.s), dup);
            goto fail;
        }
        r.key = key.s;
        uint64_t at_type = r.pos;
        uint32_t vt;
        if (rd_u32(&r, &vt, "value type")) goto fail;
        if (vt >= GGUF_TYPE_COUNT) {
            rd_fail(&r, at_type, "unknown value type %" PRIu32, vt);
            goto fail;
        }
        uint64_t at_val = r.pos;
        if (rd_value(&r, vt, &kv->val)) goto fail;
        if (strcmp(key.s, "general.alignment") == 0) {
            if (vt != GGUF_TYPE_UINT32) {
                rd_fail(&r, at_type, "must be uint32, found %s", gguf_value_type_name(vt));
                goto fail;
            }
            uint32_t a = kv->val.u32;
            if (a == 0 || (a & (a - 1)) != 0) {
                rd_fail(&r, at_val, "alignment %" PRIu32 " is not a non-zero power of two", a);
                goto fail;
            }
            f->alignment = a;
        }
        r.key = NULL;
        r.elem = -1;
    }

    /* tensor infos */
    f->tensors = xcalloc((size_t)(n_tensors ? n_tensors : 1), sizeof *f->tensors);
    info_pos = xcalloc((size_t)(n_tensors ? n_tensors : 1), sizeof *info_pos);
    hash_init(&ix->tensors, n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        GgufTensor *t = &f->tensors[i];
        r.tensor = (int64_t)i;
        r.tname = NULL;
        uint64_t at_name = r.pos;
        GgufString nm = {0};
        if (rd_str(&r, &nm, "tensor name")) goto fail;
        t->name = nm.s;
        f->n_tensors = i + 1;
        if (nm.len == 0) {
            rd_fail(&r, at_name, "empty tensor name");
            goto fail;
        }
        if (memchr(nm.s, 0, (size_t)nm.len)) {
            rd_fail(&r, at_name, "tensor name contains a NUL byte");
            goto fail;
        }
        r.tname = nm.s;
        int64_t dup = hash_insert(&ix->tensors, nm.s, i, tensor_names(f), sizeof(GgufTensor));
        if (dup >= 0) {
            rd_fail(&r, at_name, "duplicate tensor name (first at tensor %" PRId64 ")", dup);
            goto fail;
        }
        uint64_t at_dims = r.pos;
        if (rd_u32(&r, &t->n_dims, "n_dims")) goto fail;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
            rd_fail(&r, at_dims, "n_dims %" PRIu32 " out of range 1..%d", t->n_dims, GGUF_MAX_DIMS);
            goto fail;
        }
        uint64_t nel = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t at_ne = r.pos;
            if (rd_u64(&r, &t->ne[d], "dimension")) goto fail;
            if (t->ne[d] == 0) {
                rd_fail(&r, at_ne, "zero-sized dimension %" PRIu32, d);
                goto fail;
            }
            if (t->ne[d] > (uint64_t)INT64_MAX) {
                rd_fail(&r, at_ne, "dimension %" PRIu32 " = %" PRIu64 " exceeds INT64_MAX", d,
                        t->ne[d]);
                goto fail;
            }
            if (mul_u64(nel, t->ne[d], &nel) || nel > (uint64_t)INT64_MAX) {
                rd_fail(&r, at_ne, "element count overflows (dimension %" PRIu32 ")", d);
                goto fail;
            }
        }
        t->n_elements = nel;
        uint64_t at_type = r.pos;
        if (rd_u32(&r, &t->type, "tensor type")) goto fail;
        const GgmlTypeInfo *ti = ggml_type_info(t->type);
        if (!ti) {
            rd_fail(&r, at_type, "unknown ggml type id %" PRIu32, t->type);
            goto fail;
        }
        if (t->ne[0] % ti->block_size != 0) {
            rd_fail(&r, at_type,
                    "row of %" PRIu64 " elements is not a multiple of the %s block size %" PRIu32,
                    t->ne[0], ti->name, ti->block_size);
            goto fail;
        }
        uint64_t nb = (nel / ti->block_size), bytes;
        if (mul_u64(nb, ti->type_size, &bytes)) {
            rd_fail(&r, at_type, "byte size overflows");
            goto fail;
        }
        t->nbytes = bytes;
        info_pos[i] = r.pos;
        if (rd_u64(&r, &t->offset, "tensor offset")) goto fail;
    }
    r.tensor = -1;
    r.tname = NULL;

    /* data section */
    uint64_t end_infos = r.pos, data_off;
    if (add_u64(end_infos, f->alignment - 1, &data_off)) {
        rd_fail(&r, end_infos, "data offset overflows");
        goto fail;
    }
    data_off &= ~(f->alignment - 1);
    if (data_off > r.size) {
        if (n_tensors > 0) {
            rd_fail(&r, end_infos,
                    "truncated: padding to the data section at %" PRIu64 " (alignment %" PRIu64
                    ") extends past the end of the file (%" PRIu64 " bytes)",
                    data_off, f->alignment, r.size);
            goto fail;
        }
        data_off = r.size; /* no tensors: a missing final padding is harmless */
    }
    f->data_offset = data_off;
    uint64_t data_size = r.size - data_off;
    order = xmalloc((size_t)(n_tensors ? n_tensors : 1) * sizeof *order);
    for (uint64_t i = 0; i < n_tensors; i++) {
        GgufTensor *t = &f->tensors[i];
        r.tensor = (int64_t)i;
        r.tname = t->name;
        if (t->offset % f->alignment != 0) {
            rd_fail(&r, info_pos[i],
                    "offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, t->offset,
                    f->alignment);
            goto fail;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            rd_fail(&r, info_pos[i],
                    "data [%" PRIu64 ", +%" PRIu64 ") lies outside the %" PRIu64
                    "-byte data section",
                    t->offset, t->nbytes, data_size);
            goto fail;
        }
        t->data = f->base + data_off + t->offset;
        order[i].offset = t->offset;
        order[i].idx = i;
    }
    if (n_tensors > 1) {
        qsort(order, (size_t)n_tensors, sizeof *order, cmp_torder);
        for (uint64_t k = 1; k < n_tensors; k++) {
            const GgufTensor *a = &f->tensors[order[k - 1].idx], *b = &f->tensors[order[k].idx];
            if (a->offset + a->nbytes > b->offset) {
                r.tensor = (int64_t)order[k].idx;
                r.tname = b->name;
                char nm[160];
                rd_fail(&r, info_pos[order[k].idx],
                        "data at %" PRIu64 " overlaps tensor '%s' [%" PRIu64 ", +%" PRIu64 ")",
                        b->offset, msg_name(nm, sizeof nm, a->name), a->offset, a->nbytes);
                goto fail;
            }
        }
    }
    free(order);
    free(info_pos);
    return f;

fail:
    free(order);
    free(info_pos);
    gguf_close(f);
    return NULL;
}

GgufFile *gguf_open(const char *path, Err *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err_set(e, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(e, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            err_set(e, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
    }
    close(fd);
    GgufFile *f = gguf_parse(map, size, path, e);
    if (!f) {
        if (map) munmap(map, size);
        return NULL;
    }
    f->map = map;
    f->map_size = size;
    return f;
}

void gguf_close(GgufFile *f) {
    if (!f) return;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        free(f->kv[i].key);
        free_value(&f->kv[i].val);
    }
    free(f->kv);
    for (uint64_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    GgufIndex *ix = f->index;
    if (ix) {
        free(ix->kv.slots);
        free(ix->tensors.slots);
        free(ix);
    }
    if (f->map) munmap(f->map, f->map_size);
    free(f->name);
    free(f);
}

/* ------------------------------------------------------------ lookup */

const GgufKV *gguf_find_kv(const GgufFile *f, const char *key) {
    if (!f || !f->index || f->n_kv == 0) return NULL;
    const GgufIndex *ix = f->index;
    int64_t i = hash_find(&ix->kv, key, kv_names(f), sizeof(GgufKV));
    return i < 0 ? NULL : &f->kv[i];
}

const GgufTensor *gguf_find_tensor(const GgufFile *f, const char *name) {
    if (!f || !f->index || f->n_tensors == 0) return NULL;
    const GgufIndex *ix = f->index;
    int64_t i = hash_find(&ix->tensors, name, tensor_names(f), sizeof(GgufTensor));
    return i < 0 ? NULL : &f->tensors[i];
}

/* ------------------------------------------------------------ getters */

static const char *fname(const GgufFile *f) { return f && f->name ? f->name : "gguf"; }

static int missing(const GgufFile *f, const char *key, Err *e) {
    return err_set(e, "%s: key '%s': missing", fname(f), key);
}

static int wrong_type(const GgufFile *f, const GgufKV *kv, const char *want, Err *e) {
    return err_set(e, "%s: key '%s': expected %s, found %s", fname(f), kv->key, want,
                   gguf_value_type_name(kv->val.type));
}

/* Integer value as (negative?, magnitude); -1 if not an integer type. */
static int int_value(const GgufValue *v, bool *neg, uint64_t *mag) {
    int64_t s;
    switch (v->type) {
    case GGUF_TYPE_UINT8:
        *neg = false, *mag = v->u8;
        return 0;
    case GGUF_TYPE_UINT16:
        *neg = false, *mag = v->u16;
        return 0;
    case GGUF_TYPE_UINT32:
        *neg = false, *mag = v->u32;
        return 0;
    case GGUF_TYPE_UINT64:
        *neg = false, *mag = v->u64;
        return 0;
    case GGUF_TYPE_INT8:
        s = v->i8;
        break;
    case GGUF_TYPE_INT16:
        s = v->i16;
        break;
    case GGUF_TYPE_INT32:
        s = v->i32;
        break;
    case GGUF_TYPE_INT64:
        s = v->i64;
        break;
    default:
        return -1;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 0;
}

static int get_u32_kv(const GgufFile *f, const GgufKV *kv, uint32_t *out, Err *e) {
    bool neg;
    uint64_t mag;
    if (int_value(&kv->val, &neg, &mag)) return wrong_type(f, kv, "an integer", e);
    if (neg || mag > UINT32_MAX)
        return err_set(e, "%s: key '%s': value %s%" PRIu64 " does not fit uint32", fname(f),
                       kv->key, neg ? "-" : "", mag);
    *out = (uint32_t)mag;
    return 0;
}

int gguf_get_u32(const GgufFile *f, const char *key, uint32_t *out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) return missing(f, key, e);
    return get_u32_kv(f, kv, out, e);
}

int gguf_get_u32_opt(const GgufFile *f, const char *key, uint32_t def, uint32_t *out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    return get_u32_kv(f, kv, out, e);
}

int gguf_get_i64(const GgufFile *f, const char *key, int64_t *out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) return missing(f, key, e);
    bool neg;
    uint64_t mag;
    if (int_value(&kv->val, &neg, &mag)) return wrong_type(f, kv, "an integer", e);
    if (!neg && mag > (uint64_t)INT64_MAX)
        return err_set(e, "%s: key '%s': value %" PRIu64 " does not fit int64", fname(f), key, mag);
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int get_f32_kv(const GgufFile *f, const GgufKV *kv, float *out, Err *e) {
    if (kv->val.type == GGUF_TYPE_FLOAT32)
        *out = kv->val.f32;
    else if (kv->val.type == GGUF_TYPE_FLOAT64)
        *out = (float)kv->val.f64;
    else
        return wrong_type(f, kv, "a float", e);
    return 0;
}

int gguf_get_f32(const GgufFile *f, const char *key, float *out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) return missing(f, key, e);
    return get_f32_kv(f, kv, out, e);
}

int gguf_get_f32_opt(const GgufFile *f, const char *key, float def, float *out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    return get_f32_kv(f, kv, out, e);
}

int gguf_get_bool_opt(const GgufFile *f, const char *key, bool def, bool *out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->val.type != GGUF_TYPE_BOOL) return wrong_type(f, kv, "bool", e);
    *out = kv->val.b;
    return 0;
}

int gguf_get_str(const GgufFile *f, const char *key, const char **out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) return missing(f, key, e);
    if (kv->val.type != GGUF_TYPE_STRING) return wrong_type(f, kv, "string", e);
    *out = kv->val.str.s;
    return 0;
}

int gguf_get_str_opt(const GgufFile *f, const char *key, const char **out, Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) {
        *out = NULL;
        return 0;
    }
    if (kv->val.type != GGUF_TYPE_STRING) return wrong_type(f, kv, "string", e);
    *out = kv->val.str.s;
    return 0;
}

int gguf_get_arr(const GgufFile *f, const char *key, GgufValueType elem, const GgufArray **out,
                 Err *e) {
    const GgufKV *kv = gguf_find_kv(f, key);
    if (!kv) return missing(f, key, e);
    if (kv->val.type != GGUF_TYPE_ARRAY) return wrong_type(f, kv, "array", e);
    if (elem != GGUF_TYPE_COUNT && kv->val.arr.type != elem)
        return err_set(e, "%s: key '%s': expected array of %s, found array of %s", fname(f), key,
                       gguf_value_type_name(elem), gguf_value_type_name(kv->val.arr.type));
    *out = &kv->val.arr;
    return 0;
}

/* "[a, b, c]" with '?' for negative (= any) entries. */
static void fmt_shape(char *buf, size_t n, uint32_t nd, const uint64_t *ne, const int64_t *want) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (uint32_t i = 0; i < nd && o < n; i++) {
        if (want && want[i] < 0)
            o += (size_t)snprintf(buf + o, n - o, "%s?", i ? ", " : "");
        else
            o += (size_t)snprintf(buf + o, n - o, "%s%" PRIu64, i ? ", " : "",
                                  want ? (uint64_t)want[i] : ne[i]);
    }
    if (o < n) snprintf(buf + o, n - o, "]");
}

const GgufTensor *gguf_expect_tensor(const GgufFile *f, const char *name, uint32_t n_dims,
                                     const int64_t *shape, const uint32_t *types, int n_types,
                                     Err *e) {
    const GgufTensor *t = gguf_find_tensor(f, name);
    if (!t) {
        err_set(e, "%s: tensor '%s': missing", fname(f), name);
        return NULL;
    }
    bool ok = t->n_dims == n_dims;
    for (uint32_t i = 0; ok && i < n_dims && i < GGUF_MAX_DIMS; i++)
        if (shape && shape[i] >= 0 && (uint64_t)shape[i] != t->ne[i]) ok = false;
    if (!ok) {
        char want[128], got[128];
        if (shape)
            fmt_shape(want, sizeof want, n_dims, NULL, shape);
        else
            snprintf(want, sizeof want, "%" PRIu32 " dims", n_dims);
        fmt_shape(got, sizeof got, t->n_dims, t->ne, NULL);
        err_set(e, "%s: tensor '%s': expected shape %s, found %s", fname(f), name, want, got);
        return NULL;
    }
    if (n_types > 0) {
        for (int i = 0; i < n_types; i++)
            if (types[i] == t->type) return t;
        char want[256];
        size_t o = 0;
        want[0] = 0;
        for (int i = 0; i < n_types && o < sizeof want; i++)
            o += (size_t)snprintf(want + o, sizeof want - o, "%s%s", i ? "|" : "",
                                  ggml_type_name(types[i]));
        err_set(e, "%s: tensor '%s': expected type %s, found %s", fname(f), name, want,
                ggml_type_name(t->type));
        return NULL;
    }
    return t;
}
