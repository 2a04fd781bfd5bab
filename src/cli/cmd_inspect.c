/* cmd_inspect.c - `m40llm inspect FILE.gguf [--json]`: a GGUF file's header,
 * metadata and tensor table.
 *
 * Text output follows gguf-dump: one line per key (type, element count,
 * value; arrays abbreviated to their first items) and one line per tensor
 * (name, type, shape ne[0..n_dims), offset relative to the data section,
 * bytes). --json prints every key with its full value and every tensor;
 * representation choices (docs/robustness.md):
 *   - uint64 values above INT64_MAX: a JSON string of decimal digits;
 *   - float NaN / Inf: the strings "nan", "inf", "-inf";
 *   - strings that are not valid UTF-8: {"invalid_utf8_hex": "<hex bytes>"};
 *   - keys are valid UTF-8 (the parser refuses others). */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "gguf/gguf.h"

#define INSPECT_ARRAY_ITEMS 6 /* items shown per array in text mode */

static void usage(FILE *out) {
    fprintf(out, "usage: m40llm inspect FILE.gguf [--json]\n\n"
                 "Shows a GGUF file's header, metadata and tensor table.\n\n"
                 "options:\n"
                 "  --json                  machine-readable output: every key with its full\n"
                 "                          value, every tensor (name, type, shape, offset\n"
                 "                          relative to the data section, nbytes)\n"
                 "  -v, --verbose           debug log\n"
                 "  --log-level LEVEL       error, warn, info or debug\n"
                 "  -h, --help              this help\n");
}

/* ------------------------------------------------------------ JSON */

static bool utf8_ok(const char *s, uint64_t n) {
    return utf8_validate((const unsigned char *)s, (size_t)n) == (size_t)-1;
}

static json_t *j_str(const char *s, uint64_t n) {
    if (utf8_ok(s, n)) {
        json_t *j = json_stringn(s, (size_t)n);
        if (j) return j;
    }
    static const char hexd[] = "0123456789abcdef";
    char *hex = malloc((size_t)n * 2 + 1);
    for (uint64_t i = 0; i < n; i++) {
        hex[2 * i] = hexd[(uint8_t)s[i] >> 4];
        hex[2 * i + 1] = hexd[(uint8_t)s[i] & 15];
    }
    hex[2 * n] = 0;
    json_t *o = json_pack("{s:s}", "invalid_utf8_hex", hex);
    free(hex);
    return o;
}

static json_t *j_real(double d) {
    if (isnan(d)) return json_string("nan");
    if (isinf(d)) return json_string(d > 0 ? "inf" : "-inf");
    return json_real(d);
}

static json_t *j_u64(uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

static json_t *j_array(const GgufArray *a);

/* Element i of a packed array of scalar type t. */
static json_t *j_scalar(uint32_t t, const void *p) {
    switch (t) {
    case GGUF_TYPE_UINT8:
        return json_integer(*(const uint8_t *)p);
    case GGUF_TYPE_INT8:
        return json_integer(*(const int8_t *)p);
    case GGUF_TYPE_UINT16:
        return json_integer(*(const uint16_t *)p);
    case GGUF_TYPE_INT16:
        return json_integer(*(const int16_t *)p);
    case GGUF_TYPE_UINT32:
        return json_integer(*(const uint32_t *)p);
    case GGUF_TYPE_INT32:
        return json_integer(*(const int32_t *)p);
    case GGUF_TYPE_FLOAT32:
        return j_real(*(const float *)p);
    case GGUF_TYPE_BOOL:
        return json_boolean(*(const uint8_t *)p);
    case GGUF_TYPE_UINT64:
        return j_u64(*(const uint64_t *)p);
    case GGUF_TYPE_INT64:
        return json_integer(*(const int64_t *)p);
    case GGUF_TYPE_FLOAT64:
        return j_real(*(const double *)p);
    case GGUF_TYPE_STRING: {
        const GgufString *s = p;
        return j_str(s->s, s->len);
    }
    case GGUF_TYPE_ARRAY:
        return j_array(p);
    default:
        return json_null();
    }
}

/* Bytes per element of a parsed array's data: the file size for fixed-size
 * types, else the in-memory GgufString / GgufArray. */
static size_t elem_stride(uint32_t t) {
    if (t == GGUF_TYPE_STRING) return sizeof(GgufString);
    if (t == GGUF_TYPE_ARRAY) return sizeof(GgufArray);
    return gguf_value_type_size(t);
}

static json_t *j_array(const GgufArray *a) {
    json_t *arr = json_array();
    size_t st = elem_stride(a->type);
    for (uint64_t i = 0; i < a->n; i++)
        json_array_append_new(arr, j_scalar(a->type, (const char *)a->data + i * st));
    return arr;
}

static json_t *j_value(const GgufValue *v) {
    switch (v->type) {
    case GGUF_TYPE_STRING:
        return j_str(v->str.s, v->str.len);
    case GGUF_TYPE_ARRAY:
        return j_array(&v->arr);
    case GGUF_TYPE_BOOL:
        return json_boolean(v->b);
    default:
        return j_scalar(v->type, &v->u8); /* union members share the start */
    }
}

static int print_json(const GgufFile *f) {
    json_t *root = json_object();
    json_object_set_new(root, "file", j_str(f->name, strlen(f->name)));
    json_object_set_new(root, "version", json_integer(f->version));
    json_object_set_new(root, "alignment", j_u64(f->alignment));
    json_object_set_new(root, "data_offset", j_u64(f->data_offset));
    json_object_set_new(root, "file_size", j_u64(f->size));
    json_object_set_new(root, "n_kv", j_u64(f->n_kv));
    json_object_set_new(root, "n_tensors", j_u64(f->n_tensors));
    json_t *md = json_object();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const GgufKV *kv = &f->kv[i];
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(gguf_value_type_name(kv->val.type)));
        if (kv->val.type == GGUF_TYPE_ARRAY) {
            json_object_set_new(o, "elem_type",
                                json_string(gguf_value_type_name(kv->val.arr.type)));
            json_object_set_new(o, "n", j_u64(kv->val.arr.n));
        }
        json_object_set_new(o, "value", j_value(&kv->val));
        json_object_set_new(md, kv->key, o);
    }
    json_object_set_new(root, "metadata", md);
    json_t *ts = json_array();
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GgufTensor *t = &f->tensors[i];
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(shape, j_u64(t->ne[d]));
        json_t *o = json_object();
        json_object_set_new(o, "name", j_str(t->name, strlen(t->name)));
        json_object_set_new(o, "type", json_string(ggml_type_name(t->type)));
        json_object_set_new(o, "type_id", json_integer(t->type));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "offset", j_u64(t->offset));
        json_object_set_new(o, "nbytes", j_u64(t->nbytes));
        json_array_append_new(ts, o);
    }
    json_object_set_new(root, "tensors", ts);
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!s) {
        fprintf(stderr, "m40llm inspect: JSON encoding failed\n");
        return 1;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return 0;
}

/* ------------------------------------------------------------ text */

/* Prints a string escaping quotes, backslashes and control bytes; at most
 * `max` bytes (0 = all). Returns the number of columns printed. */
static int put_escaped(const char *s, uint64_t n, uint64_t max) {
    uint64_t lim = max && n > max ? max : n;
    int cols = 0;
    for (uint64_t i = 0; i < lim; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '\'' || c == '\\') {
            cols += printf("\\%c", c);
        } else if (c == '\n') {
            cols += printf("\\n");
        } else if (c == '\t') {
            cols += printf("\\t");
        } else if (c < 0x20 || c == 0x7f) {
            cols += printf("\\x%02x", c);
        } else {
            putchar(c);
            if ((c & 0xC0) != 0x80) cols++;
        }
    }
    if (lim < n) cols += printf("...");
    return cols;
}

/* The same between single quotes. */
static void put_quoted(const char *s, uint64_t n, uint64_t max) {
    uint64_t lim = max && n > max ? max : n;
    putchar('\'');
    put_escaped(s, lim, 0);
    putchar('\'');
    if (lim < n) fputs("...", stdout);
}

static void put_scalar(uint32_t t, const void *p) {
    switch (t) {
    case GGUF_TYPE_UINT8:
        printf("%u", *(const uint8_t *)p);
        break;
    case GGUF_TYPE_INT8:
        printf("%d", *(const int8_t *)p);
        break;
    case GGUF_TYPE_UINT16:
        printf("%u", *(const uint16_t *)p);
        break;
    case GGUF_TYPE_INT16:
        printf("%d", *(const int16_t *)p);
        break;
    case GGUF_TYPE_UINT32:
        printf("%" PRIu32, *(const uint32_t *)p);
        break;
    case GGUF_TYPE_INT32:
        printf("%" PRId32, *(const int32_t *)p);
        break;
    case GGUF_TYPE_FLOAT32:
        printf("%.9g", *(const float *)p);
        break;
    case GGUF_TYPE_BOOL:
        fputs(*(const uint8_t *)p ? "True" : "False", stdout);
        break;
    case GGUF_TYPE_UINT64:
        printf("%" PRIu64, *(const uint64_t *)p);
        break;
    case GGUF_TYPE_INT64:
        printf("%" PRId64, *(const int64_t *)p);
        break;
    case GGUF_TYPE_FLOAT64:
        printf("%.17g", *(const double *)p);
        break;
    case GGUF_TYPE_STRING: {
        const GgufString *s = p;
        put_quoted(s->s, s->len, 200);
        break;
    }
    case GGUF_TYPE_ARRAY: {
        const GgufArray *a = p;
        printf("[%s x %" PRIu64 "]", gguf_value_type_name(a->type), a->n);
        break;
    }
    default:
        break;
    }
}

static void print_text(const GgufFile *f) {
    printf("* File: %s\n", f->name);
    printf("* GGUF version %" PRIu32 ", alignment %" PRIu64 ", data section at %" PRIu64
           ", file size %" PRIu64 "\n",
           f->version, f->alignment, f->data_offset, f->size);
    printf("* Dumping %" PRIu64 " key/value pair(s)\n", f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const GgufKV *kv = &f->kv[i];
        char tname[32];
        uint64_t n = 1;
        if (kv->val.type == GGUF_TYPE_ARRAY) {
            snprintf(tname, sizeof tname, "[%s]", gguf_value_type_name(kv->val.arr.type));
            n = kv->val.arr.n;
        } else {
            snprintf(tname, sizeof tname, "%s", gguf_value_type_name(kv->val.type));
        }
        printf("  %5" PRIu64 ": %-10s | %8" PRIu64 " | ", i + 1, tname, n);
        put_escaped(kv->key, strlen(kv->key), 0);
        fputs(" = ", stdout);
        if (kv->val.type == GGUF_TYPE_ARRAY) {
            const GgufArray *a = &kv->val.arr;
            size_t st = elem_stride(a->type);
            putchar('[');
            for (uint64_t k = 0; k < a->n && k < INSPECT_ARRAY_ITEMS; k++) {
                if (k) fputs(", ", stdout);
                put_scalar(a->type, (const char *)a->data + k * st);
            }
            if (a->n > INSPECT_ARRAY_ITEMS) fputs(", ...", stdout);
            putchar(']');
        } else if (kv->val.type == GGUF_TYPE_STRING) {
            put_quoted(kv->val.str.s, kv->val.str.len, 0);
        } else if (kv->val.type == GGUF_TYPE_BOOL) {
            fputs(kv->val.b ? "True" : "False", stdout);
        } else {
            put_scalar(kv->val.type, &kv->val.u8);
        }
        putchar('\n');
    }
    printf("* Dumping %" PRIu64 " tensor(s)\n", f->n_tensors);
    printf("  %5s  %-32s %-8s %-26s %12s %12s\n", "#", "name", "type", "shape (ne0, ne1, ...)",
           "offset", "bytes");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GgufTensor *t = &f->tensors[i];
        char shape[128];
        size_t o = 0;
        for (uint32_t d = 0; d < t->n_dims && o < sizeof shape; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%" PRIu64, d ? ", " : "",
                                  t->ne[d]);
        printf("  %5" PRIu64 ": ", i + 1);
        int pad = 32 - put_escaped(t->name, strlen(t->name), 0);
        printf("%*s %-8s %-26s %12" PRIu64 " %12" PRIu64 "\n", pad > 0 ? pad : 0, "",
               ggml_type_name(t->type), shape, t->offset, t->nbytes);
    }
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_option("inspect", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "m40llm inspect: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "m40llm inspect: more than one file given ('%s')\n", a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "m40llm inspect: no file given\n");
        usage(stderr);
        return 2;
    }
    Err e = {{0}};
    GgufFile *f = gguf_open(path, &e);
    if (!f) {
        fprintf(stderr, "m40llm inspect: %s\n", e.msg);
        return 1;
    }
    int rc = 0;
    if (json)
        rc = print_json(f);
    else
        print_text(f);
    if (fflush(stdout) != 0) rc = 1;
    gguf_close(f);
    return rc;
}
