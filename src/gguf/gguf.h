/* gguf.h - GGUF v2/v3 reader and writer.
 *
 * File format (little-endian throughout; v1 is refused):
 *   u32 magic "GGUF" (0x46554747) | u32 version (2 or 3)
 *   u64 n_tensors | u64 n_kv
 *   n_kv x { gguf_string key | u32 value_type | value }
 *   n_tensors x { gguf_string name | u32 n_dims (1..4) | u64 ne[n_dims] |
 *                 u32 ggml_type | u64 offset (relative to the data section) }
 *   padding to `general.alignment` (u32 metadata, default 32, power of two)
 *   data section: tensor data, each tensor at its offset, offsets aligned.
 *   gguf_string = u64 length | bytes (not NUL-terminated)
 *   value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte,
 *   0 or 1), 8 string, 9 array (u32 elem_type | u64 n | n x elem), 10 u64,
 *   11 i64, 12 f64. Arrays of arrays are allowed by the spec; we accept one
 *   level of nesting (elements of type array) and refuse deeper.
 *   Tensor shape: ne[0] is the innermost (contiguous) dimension, so a weight
 *   matrix of `rows x cols` has ne[0] = cols, ne[1] = rows.
 *
 * Ownership: GgufFile owns every metadata string/array (copied out of the
 * input, NUL-terminated) and the tensor-info table. Tensor data is borrowed:
 * `GgufTensor.data` points into the caller's buffer (gguf_parse) or into the
 * mmap (gguf_open), which lives until gguf_close. Anything that borrows
 * tensor data (Model) must not outlive the GgufFile.
 *
 * Every parse error is one line: "<name>: offset <N>: <problem>".
 * Refused besides truncation/overflow (docs/robustness.md lists every case):
 * duplicate keys or tensor names; keys that are empty, contain NUL or are
 * not valid UTF-8; empty tensor names; bool values other than 0/1; arrays
 * nested more than one level; n_dims outside 1..4; a zero dimension (ggml
 * cannot load those either); unknown ggml types; ne[0] not a multiple of the
 * block size; misaligned, out-of-bounds or overlapping tensor data; a
 * general.alignment that is not a non-zero power-of-two uint32. Accepted:
 * v2; metadata string values that are not valid UTF-8; a file without
 * tensors that ends right after its metadata (vocabulary-only files); a
 * missing padding after the last tensor. */
#ifndef M40_GGUF_H
#define M40_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

#define GGUF_MAGIC 0x46554747u
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* ggml tensor types (ids as in ggml.h; gaps are removed types). */
typedef enum GgmlType {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_COUNT = 40,
} GgmlType;

typedef struct GgmlTypeInfo {
    const char *name;    /* "q4_K" style, as ggml names them */
    uint32_t block_size; /* elements per block (1 for plain types) */
    uint32_t type_size;  /* bytes per block */
} GgmlTypeInfo;

/* Traits of a type id; NULL for an id that is not a known ggml type. */
const GgmlTypeInfo *ggml_type_info(uint32_t type);
/* Name of a type id, or "unknown(<id>)" (static buffer per thread). */
const char *ggml_type_name(uint32_t type);
/* Parses a name ("q4_0", "Q4_K", "f16", case-insensitive); -1 if unknown. */
int ggml_type_from_name(const char *name);
/* Bytes for a row of n elements; 0 if n is not a multiple of the block size,
 * the type is unknown or the size overflows. */
size_t ggml_row_size(uint32_t type, uint64_t n);

typedef enum GgufValueType {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13,
} GgufValueType;

const char *gguf_value_type_name(uint32_t t);
/* Bytes of one fixed-size value of type t as stored in a file (1/2/4/8);
 * 0 for STRING, ARRAY and unknown types. Shared by reader, writer and
 * `inspect` so all three agree on the element layout. */
size_t gguf_value_type_size(uint32_t t);

typedef struct GgufString {
    char *s;      /* NUL-terminated copy (may contain inner NULs; use len) */
    uint64_t len; /* bytes, without the terminator */
} GgufString;

typedef struct GgufValue GgufValue;

typedef struct GgufArray {
    GgufValueType type; /* element type */
    uint64_t n;
    /* Elements, owned: numbers packed in native layout (uint8_t[], float[],
     * bool as uint8_t, ...), strings as GgufString[], nested arrays as
     * GgufArray[]. */
    void *data;
} GgufArray;

struct GgufValue {
    GgufValueType type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        GgufString str;
        GgufArray arr;
    };
};

typedef struct GgufKV {
    char *key;
    GgufValue val;
} GgufKV;

typedef struct GgufTensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint32_t type;              /* GgmlType */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;            /* computed from type and shape */
    uint64_t n_elements;
    const void *data; /* borrowed: base + data_offset + offset */
} GgufTensor;

typedef struct GgufFile {
    uint32_t version;
    uint64_t n_kv;
    GgufKV *kv;
    uint64_t n_tensors;
    GgufTensor *tensors;
    uint64_t alignment;
    uint64_t data_offset; /* absolute byte offset of the data section */
    const uint8_t *base;  /* start of the bytes parsed (borrowed or mmap) */
    uint64_t size;        /* bytes available at base */
    char *name;           /* file name used in messages */
    /* mmap owner (gguf_open only) */
    void *map;
    size_t map_size;
    void *index; /* private: key/tensor lookup hash tables */
} GgufFile;

/* Parses GGUF bytes. `name` is used in error messages. Tensor data is
 * borrowed from `data`. Returns NULL with e->msg = "<name>: offset N: ..." on
 * any malformed input; never reads outside [data, data+size). */
GgufFile *gguf_parse(const void *data, size_t size, const char *name, Err *e);
/* mmap()s and parses a file; the GgufFile owns the mapping. */
GgufFile *gguf_open(const char *path, Err *e);
/* Frees everything (unmaps for gguf_open). NULL-safe. */
void gguf_close(GgufFile *f);

/* Metadata lookup (O(1) average). NULL when absent. */
const GgufKV *gguf_find_kv(const GgufFile *f, const char *key);

/* Typed getters. Return 0 and store the value; -1 with an error naming the
 * key when missing or of another type. Integer getters accept any integer
 * type whose value fits the target (u8..u64, i8..i64); float getters accept
 * f32/f64. The *_opt variants return `def` when the key is absent, but still
 * fail (-1) on a present key of the wrong type. */
int gguf_get_u32(const GgufFile *f, const char *key, uint32_t *out, Err *e);
int gguf_get_u32_opt(const GgufFile *f, const char *key, uint32_t def, uint32_t *out, Err *e);
int gguf_get_i64(const GgufFile *f, const char *key, int64_t *out, Err *e);
int gguf_get_f32(const GgufFile *f, const char *key, float *out, Err *e);
int gguf_get_f32_opt(const GgufFile *f, const char *key, float def, float *out, Err *e);
int gguf_get_bool_opt(const GgufFile *f, const char *key, bool def, bool *out, Err *e);
/* String value (borrowed from f); NULL-able *out for _opt when absent. */
int gguf_get_str(const GgufFile *f, const char *key, const char **out, Err *e);
int gguf_get_str_opt(const GgufFile *f, const char *key, const char **out, Err *e);
/* Array value of the given element type (GGUF_TYPE_COUNT = any). */
int gguf_get_arr(const GgufFile *f, const char *key, GgufValueType elem, const GgufArray **out,
                 Err *e);

/* Tensor lookup by name; NULL when absent. */
const GgufTensor *gguf_find_tensor(const GgufFile *f, const char *name);
/* Looks up a tensor and checks its shape: n_dims must equal `n_dims` and
 * ne[i] == shape[i] for each i (shape[i] < 0 = any). `types` is a list of
 * accepted ggml types (n_types 0 = any). Errors name the tensor, the expected
 * and the found shape/type. */
const GgufTensor *gguf_expect_tensor(const GgufFile *f, const char *name, uint32_t n_dims,
                                     const int64_t *shape, const uint32_t *types, int n_types,
                                     Err *e);

/* ---- writer ----
 * Builds a GGUF file in memory for the header and streams tensor data to
 * disk. Usage: w = gguf_writer_new(); set keys; add tensor infos (name, type,
 * shape) in order; gguf_writer_write_header(w, fp); then write each tensor's
 * data in the same order with gguf_writer_write_tensor_data (it pads to the
 * alignment); gguf_writer_free. Version 3, alignment 32 unless
 * general.alignment is set. */
typedef struct GgufWriter GgufWriter;
GgufWriter *gguf_writer_new(void);
void gguf_writer_free(GgufWriter *w);
void gguf_writer_set_u32(GgufWriter *w, const char *key, uint32_t v);
void gguf_writer_set_i32(GgufWriter *w, const char *key, int32_t v);
void gguf_writer_set_u64(GgufWriter *w, const char *key, uint64_t v);
void gguf_writer_set_f32(GgufWriter *w, const char *key, float v);
void gguf_writer_set_bool(GgufWriter *w, const char *key, bool v);
void gguf_writer_set_str(GgufWriter *w, const char *key, const char *v);
/* Array of numbers (elem type u8..f64, bool) copied from `data`. */
void gguf_writer_set_arr(GgufWriter *w, const char *key, GgufValueType elem, const void *data,
                         uint64_t n);
void gguf_writer_set_arr_str(GgufWriter *w, const char *key, const char *const *strs, uint64_t n);
/* Copies a KV (any type) from a parsed file, e.g. when re-writing a model. */
void gguf_writer_set_kv(GgufWriter *w, const GgufKV *kv);
/* Adds a tensor info; returns its index. ne[0] innermost. */
int gguf_writer_add_tensor(GgufWriter *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne);
/* Writes header + tensor infos + padding. Returns 0, or -1 on I/O error. */
int gguf_writer_write_header(GgufWriter *w, FILE *fp, Err *e);
/* Writes tensor `idx`'s bytes (exactly its nbytes) followed by alignment
 * padding; tensors must be written in index order. */
int gguf_writer_write_tensor_data(GgufWriter *w, FILE *fp, int idx, const void *data, Err *e);
/* Bytes of tensor idx as the writer computed them. */
uint64_t gguf_writer_tensor_nbytes(const GgufWriter *w, int idx);
/* Addition: streams part of tensor `idx` (chunks of any size, in order);
 * once the chunks add up to its nbytes, the alignment padding follows.
 * For tensors too large to hold in memory at once. Do not mix with
 * gguf_writer_write_tensor_data for the same tensor. */
int gguf_writer_write_tensor_part(GgufWriter *w, FILE *fp, int idx, const void *data,
                                  uint64_t nbytes, Err *e);

#endif
