/* ggml_types.c - names, block sizes and block byte sizes of the ggml tensor
 * types, and the GGUF metadata value type names.
 *
 * Block sizes and bytes per block are those of ggml's type_traits (ggml.c)
 * and the block structs in ggml-common.h; they are cross-checked against the
 * gguf Python package's GGML_QUANT_SIZES by tests/scripts/gguf_crosscheck.py. */
#include <stdio.h>
#include <strings.h>

#include "gguf/gguf.h"

/* Indexed by type id; name NULL = removed / unknown id. */
static const GgmlTypeInfo TYPES[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"f32", 1, 4},
    [GGML_TYPE_F16] = {"f16", 1, 2},
    [GGML_TYPE_Q4_0] = {"q4_0", 32, 18},        /* half d; u8 qs[16] */
    [GGML_TYPE_Q4_1] = {"q4_1", 32, 20},        /* half d, m; u8 qs[16] */
    [GGML_TYPE_Q5_0] = {"q5_0", 32, 22},        /* half d; u8 qh[4]; u8 qs[16] */
    [GGML_TYPE_Q5_1] = {"q5_1", 32, 24},        /* half d, m; u8 qh[4]; u8 qs[16] */
    [GGML_TYPE_Q8_0] = {"q8_0", 32, 34},        /* half d; i8 qs[32] */
    [GGML_TYPE_Q8_1] = {"q8_1", 32, 36},        /* half d, s; i8 qs[32] */
    [GGML_TYPE_Q2_K] = {"q2_K", 256, 84},       /* scales[16] qs[64] d dmin */
    [GGML_TYPE_Q3_K] = {"q3_K", 256, 110},      /* hmask[32] qs[64] scales[12] d */
    [GGML_TYPE_Q4_K] = {"q4_K", 256, 144},      /* d dmin scales[12] qs[128] */
    [GGML_TYPE_Q5_K] = {"q5_K", 256, 176},      /* d dmin scales[12] qh[32] qs[128] */
    [GGML_TYPE_Q6_K] = {"q6_K", 256, 210},      /* ql[128] qh[64] scales[16] d */
    [GGML_TYPE_Q8_K] = {"q8_K", 256, 292},      /* float d; qs[256]; i16 bsums[16] */
    [GGML_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66}, /* d; u16 qs[32] */
    [GGML_TYPE_IQ2_XS] = {"iq2_xs", 256, 74},   /* d; u16 qs[32]; scales[8] */
    [GGML_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98}, /* d; qs[96] */
    [GGML_TYPE_IQ1_S] = {"iq1_s", 256, 50},     /* d; qs[32]; u16 qh[8] */
    [GGML_TYPE_IQ4_NL] = {"iq4_nl", 32, 18},    /* d; qs[16] */
    [GGML_TYPE_IQ3_S] = {"iq3_s", 256, 110},    /* d; qs[64] qh[8] signs[32] scales[4] */
    [GGML_TYPE_IQ2_S] = {"iq2_s", 256, 82},     /* d; qs[64] qh[8] scales[8] */
    [GGML_TYPE_IQ4_XS] = {"iq4_xs", 256, 136},  /* d; u16 scales_h; scales_l[4]; qs[128] */
    [GGML_TYPE_I8] = {"i8", 1, 1},
    [GGML_TYPE_I16] = {"i16", 1, 2},
    [GGML_TYPE_I32] = {"i32", 1, 4},
    [GGML_TYPE_I64] = {"i64", 1, 8},
    [GGML_TYPE_F64] = {"f64", 1, 8},
    [GGML_TYPE_IQ1_M] = {"iq1_m", 256, 56}, /* qs[32] qh[16] scales[8] */
    [GGML_TYPE_BF16] = {"bf16", 1, 2},
    [GGML_TYPE_TQ1_0] = {"tq1_0", 256, 54}, /* qs[48] qh[4] d */
    [GGML_TYPE_TQ2_0] = {"tq2_0", 256, 66}, /* qs[64] d */
    [GGML_TYPE_MXFP4] = {"mxfp4", 32, 17},  /* u8 e; qs[16] */
};

const GgmlTypeInfo *ggml_type_info(uint32_t type) {
    if (type >= GGML_TYPE_COUNT || !TYPES[type].name) return NULL;
    return &TYPES[type];
}

const char *ggml_type_name(uint32_t type) {
    const GgmlTypeInfo *ti = ggml_type_info(type);
    if (ti) return ti->name;
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "unknown(%u)", type);
    return buf;
}

int ggml_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < GGML_TYPE_COUNT; i++)
        if (TYPES[i].name && strcasecmp(TYPES[i].name, name) == 0) return i;
    return -1;
}

size_t ggml_row_size(uint32_t type, uint64_t n) {
    const GgmlTypeInfo *ti = ggml_type_info(type);
    if (!ti || n % ti->block_size != 0) return 0;
    uint64_t bytes;
    if (__builtin_mul_overflow(n / ti->block_size, (uint64_t)ti->type_size, &bytes)) return 0;
    if (bytes > SIZE_MAX) return 0;
    return (size_t)bytes;
}

static const char *const VALUE_TYPE_NAMES[GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",   "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64",
};

const char *gguf_value_type_name(uint32_t t) {
    if (t < GGUF_TYPE_COUNT) return VALUE_TYPE_NAMES[t];
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "unknown(%u)", t);
    return buf;
}

size_t gguf_value_type_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}
