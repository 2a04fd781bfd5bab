/* gguf_writer.c - GGUF v3 writer: metadata and tensor infos are serialized
 * in memory by gguf_writer_write_header; tensor data is streamed by the
 * caller, one tensor (or one chunk) at a time, never buffered here.
 *
 * Misuse that the void setters cannot report (unknown tensor type, a row not
 * a multiple of the block size, a bad alignment, an array of unsupported
 * element type) is remembered and reported by gguf_writer_write_header. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "gguf/gguf.h"

typedef struct WTensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset;
} WTensor;

struct GgufWriter {
    GgufKV *kv;
    uint64_t n_kv, cap_kv;
    WTensor *t;
    uint64_t n_t, cap_t;
    uint64_t alignment;
    char err[256]; /* first deferred error, "" if none */
    bool header_done;
    int next;           /* next tensor to write */
    uint64_t part_done; /* bytes of tensor `next` written so far */
    uint64_t pos;       /* bytes written since the header start */
};

static void wr_defer(GgufWriter *w, const char *fmt, ...) M40_PRINTF(2, 3);
static void wr_defer(GgufWriter *w, const char *fmt, ...) {
    if (w->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

GgufWriter *gguf_writer_new(void) {
    GgufWriter *w = xcalloc(1, sizeof *w);
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

static void arr_free(GgufArray *a);
static void val_free(GgufValue *v) {
    if (v->type == GGUF_TYPE_STRING)
        free(v->str.s);
    else if (v->type == GGUF_TYPE_ARRAY)
        arr_free(&v->arr);
}
static void arr_free(GgufArray *a) {
    if (!a->data) return;
    if (a->type == GGUF_TYPE_STRING)
        for (uint64_t i = 0; i < a->n; i++) free(((GgufString *)a->data)[i].s);
    else if (a->type == GGUF_TYPE_ARRAY)
        for (uint64_t i = 0; i < a->n; i++) arr_free(&((GgufArray *)a->data)[i]);
    free(a->data);
    a->data = NULL;
}

void gguf_writer_free(GgufWriter *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        val_free(&w->kv[i].val);
    }
    free(w->kv);
    for (uint64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

/* Slot for `key`: replaces an existing value (keeps its position). */
static GgufValue *wr_slot(GgufWriter *w, const char *key) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            val_free(&w->kv[i].val);
            memset(&w->kv[i].val, 0, sizeof w->kv[i].val);
            return &w->kv[i].val;
        }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 16;
        w->kv = xrealloc(w->kv, (size_t)w->cap_kv * sizeof *w->kv);
    }
    GgufKV *kv = &w->kv[w->n_kv++];
    kv->key = xstrdup(key);
    memset(&kv->val, 0, sizeof kv->val);
    return &kv->val;
}

void gguf_writer_set_u32(GgufWriter *w, const char *key, uint32_t v) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_UINT32;
    s->u32 = v;
}
void gguf_writer_set_i32(GgufWriter *w, const char *key, int32_t v) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_INT32;
    s->i32 = v;
}
void gguf_writer_set_u64(GgufWriter *w, const char *key, uint64_t v) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_UINT64;
    s->u64 = v;
}
void gguf_writer_set_f32(GgufWriter *w, const char *key, float v) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_FLOAT32;
    s->f32 = v;
}
void gguf_writer_set_bool(GgufWriter *w, const char *key, bool v) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_BOOL;
    s->b = v;
}
void gguf_writer_set_str(GgufWriter *w, const char *key, const char *v) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_STRING;
    s->str.len = strlen(v);
    s->str.s = xstrndup(v, (size_t)s->str.len);
}

void gguf_writer_set_arr(GgufWriter *w, const char *key, GgufValueType elem, const void *data,
                         uint64_t n) {
    size_t es = gguf_value_type_size(elem);
    if (!es) {
        wr_defer(w, "gguf writer: key '%s': array element type %s is not a number type", key,
                 gguf_value_type_name(elem));
        return;
    }
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_ARRAY;
    s->arr.type = elem;
    s->arr.n = n;
    s->arr.data = NULL;
    if (n) {
        s->arr.data = xmalloc((size_t)(n * es));
        memcpy(s->arr.data, data, (size_t)(n * es));
    }
}

void gguf_writer_set_arr_str(GgufWriter *w, const char *key, const char *const *strs, uint64_t n) {
    GgufValue *s = wr_slot(w, key);
    s->type = GGUF_TYPE_ARRAY;
    s->arr.type = GGUF_TYPE_STRING;
    s->arr.n = n;
    s->arr.data = NULL;
    if (n) {
        GgufString *a = xcalloc((size_t)n, sizeof *a);
        for (uint64_t i = 0; i < n; i++) {
            a[i].len = strlen(strs[i]);
            a[i].s = xstrndup(strs[i], (size_t)a[i].len);
        }
        s->arr.data = a;
    }
}

static void copy_array(GgufArray *dst, const GgufArray *src) {
    dst->type = src->type;
    dst->n = src->n;
    dst->data = NULL;
    if (!src->n) return;
    if (src->type == GGUF_TYPE_STRING) {
        GgufString *d = xcalloc((size_t)src->n, sizeof *d);
        const GgufString *s = src->data;
        for (uint64_t i = 0; i < src->n; i++) {
            d[i].len = s[i].len;
            d[i].s = xmalloc((size_t)s[i].len + 1);
            memcpy(d[i].s, s[i].s, (size_t)s[i].len + 1);
        }
        dst->data = d;
    } else if (src->type == GGUF_TYPE_ARRAY) {
        GgufArray *d = xcalloc((size_t)src->n, sizeof *d);
        const GgufArray *s = src->data;
        for (uint64_t i = 0; i < src->n; i++) copy_array(&d[i], &s[i]);
        dst->data = d;
    } else {
        size_t es = gguf_value_type_size(src->type);
        dst->data = xmalloc((size_t)(src->n * es));
        memcpy(dst->data, src->data, (size_t)(src->n * es));
    }
}

void gguf_writer_set_kv(GgufWriter *w, const GgufKV *kv) {
    GgufValue *s = wr_slot(w, kv->key);
    s->type = kv->val.type;
    if (kv->val.type == GGUF_TYPE_STRING) {
        s->str.len = kv->val.str.len;
        s->str.s = xmalloc((size_t)s->str.len + 1);
        memcpy(s->str.s, kv->val.str.s, (size_t)s->str.len + 1);
    } else if (kv->val.type == GGUF_TYPE_ARRAY) {
        copy_array(&s->arr, &kv->val.arr);
    } else {
        *s = kv->val;
    }
}

int gguf_writer_add_tensor(GgufWriter *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne) {
    const GgmlTypeInfo *ti = ggml_type_info(type);
    if (!ti) {
        wr_defer(w, "gguf writer: tensor '%s': unknown ggml type id %u", name, type);
        return -1;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        wr_defer(w, "gguf writer: tensor '%s': n_dims %u out of range 1..4", name, n_dims);
        return -1;
    }
    for (uint64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            wr_defer(w, "gguf writer: duplicate tensor name '%s'", name);
            return -1;
        }
    WTensor t = {.type = type, .n_dims = n_dims};
    uint64_t nel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        t.ne[d] = ne[d];
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX || mul_u64(nel, ne[d], &nel)) {
            wr_defer(w, "gguf writer: tensor '%s': invalid dimension %u = %" PRIu64, name, d,
                     ne[d]);
            return -1;
        }
    }
    if (t.ne[0] % ti->block_size != 0) {
        wr_defer(w, "gguf writer: tensor '%s': row of %" PRIu64 " not a multiple of %s block %u",
                 name, t.ne[0], ti->name, ti->block_size);
        return -1;
    }
    if (mul_u64(nel / ti->block_size, ti->type_size, &t.nbytes)) {
        wr_defer(w, "gguf writer: tensor '%s': byte size overflows", name);
        return -1;
    }
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
        w->t = xrealloc(w->t, (size_t)w->cap_t * sizeof *w->t);
    }
    t.name = xstrdup(name);
    w->t[w->n_t] = t;
    return (int)w->n_t++;
}

uint64_t gguf_writer_tensor_nbytes(const GgufWriter *w, int idx) {
    if (!w || idx < 0 || (uint64_t)idx >= w->n_t) return 0;
    return w->t[idx].nbytes;
}

/* ---- serialization */

typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void buf_u32(Buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(Buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(Buf *b, const char *s, uint64_t len) {
    buf_u64(b, len);
    buf_put(b, s, (size_t)len);
}

static void buf_array(Buf *b, const GgufArray *a) {
    buf_u32(b, a->type);
    buf_u64(b, a->n);
    if (a->type == GGUF_TYPE_STRING) {
        const GgufString *s = a->data;
        for (uint64_t i = 0; i < a->n; i++) buf_str(b, s[i].s, s[i].len);
    } else if (a->type == GGUF_TYPE_ARRAY) {
        const GgufArray *s = a->data;
        for (uint64_t i = 0; i < a->n; i++) buf_array(b, &s[i]);
    } else if (a->n) {
        buf_put(b, a->data, (size_t)(a->n * gguf_value_type_size(a->type)));
    }
}

static void buf_value(Buf *b, const GgufValue *v) {
    buf_u32(b, v->type);
    switch (v->type) {
    case GGUF_TYPE_STRING:
        buf_str(b, v->str.s, v->str.len);
        break;
    case GGUF_TYPE_ARRAY:
        buf_array(b, &v->arr);
        break;
    case GGUF_TYPE_BOOL: {
        uint8_t x = v->b ? 1 : 0;
        buf_put(b, &x, 1);
        break;
    }
    default:
        buf_put(b, &v->u64, gguf_value_type_size(v->type));
        break; /* union: low bytes (LE) */
    }
}

static int wr_pad(GgufWriter *w, FILE *fp, Err *e) {
    static const uint8_t zeros[4096];
    uint64_t pad = (w->alignment - w->pos % w->alignment) % w->alignment;
    while (pad > 0) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        if (fwrite(zeros, 1, k, fp) != k) return err_set(e, "gguf writer: write failed");
        pad -= k;
        w->pos += k;
    }
    return 0;
}

int gguf_writer_write_header(GgufWriter *w, FILE *fp, Err *e) {
    if (w->err[0]) return err_set(e, "%s", w->err);
    if (w->header_done) return err_set(e, "gguf writer: header already written");
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = w->kv[i].val.u32;
        if (w->kv[i].val.type != GGUF_TYPE_UINT32 || a == 0 || (a & (a - 1)) != 0)
            return err_set(e, "gguf writer: general.alignment must be a uint32 power of two");
        w->alignment = a;
    }
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        uint64_t padded = (w->t[i].nbytes + w->alignment - 1) / w->alignment * w->alignment;
        if (add_u64(off, padded, &off)) return err_set(e, "gguf writer: data size overflows");
    }
    Buf b = {0};
    buf_u32(&b, GGUF_MAGIC);
    buf_u32(&b, 3);
    buf_u64(&b, w->n_t);
    buf_u64(&b, w->n_kv);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        buf_str(&b, w->kv[i].key, strlen(w->kv[i].key));
        buf_value(&b, &w->kv[i].val);
    }
    for (uint64_t i = 0; i < w->n_t; i++) {
        const WTensor *t = &w->t[i];
        buf_str(&b, t->name, strlen(t->name));
        buf_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(&b, t->ne[d]);
        buf_u32(&b, t->type);
        buf_u64(&b, t->offset);
    }
    size_t n = b.n;
    size_t wrote = fwrite(b.p, 1, n, fp);
    free(b.p);
    if (wrote != n) return err_set(e, "gguf writer: write failed");
    w->pos = n;
    if (wr_pad(w, fp, e)) return -1;
    w->header_done = true;
    w->next = 0;
    w->part_done = 0;
    return 0;
}

int gguf_writer_write_tensor_part(GgufWriter *w, FILE *fp, int idx, const void *data,
                                  uint64_t nbytes, Err *e) {
    if (!w->header_done) return err_set(e, "gguf writer: header not written yet");
    if (idx < 0 || (uint64_t)idx >= w->n_t)
        return err_set(e, "gguf writer: tensor index %d out of range", idx);
    if (idx != w->next)
        return err_set(e, "gguf writer: tensor '%s' written out of order (expected index %d)",
                       w->t[idx].name, w->next);
    const WTensor *t = &w->t[idx];
    if (nbytes > t->nbytes - w->part_done)
        return err_set(e, "gguf writer: tensor '%s': %" PRIu64 " bytes exceed its size %" PRIu64,
                       t->name, w->part_done + nbytes, t->nbytes);
    if (nbytes && fwrite(data, 1, (size_t)nbytes, fp) != nbytes)
        return err_set(e, "gguf writer: tensor '%s': write failed", t->name);
    w->pos += nbytes;
    w->part_done += nbytes;
    if (w->part_done == t->nbytes) {
        if (wr_pad(w, fp, e)) return -1;
        w->next++;
        w->part_done = 0;
    }
    return 0;
}

int gguf_writer_write_tensor_data(GgufWriter *w, FILE *fp, int idx, const void *data, Err *e) {
    if (idx >= 0 && (uint64_t)idx < w->n_t && idx == w->next && w->part_done != 0)
        return err_set(e, "gguf writer: tensor '%s' partly written already", w->t[idx].name);
    if (idx < 0 || (uint64_t)idx >= w->n_t)
        return err_set(e, "gguf writer: tensor index %d out of range", idx);
    return gguf_writer_write_tensor_part(w, fp, idx, data, w->t[idx].nbytes, e);
}
