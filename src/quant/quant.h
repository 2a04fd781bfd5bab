/* quant.h - weight block formats on the CPU: dequantization, FP32 dot
 * products and quantization. This is the reference that every GPU kernel is
 * checked against.
 *
 * Block layouts follow ggml (ggml-common.h); each type's layout is written
 * beside its code in quant.c. All arithmetic is FP32 (activations are never
 * quantized: unlike llama.cpp's CPU path there is no Q8 activation rounding,
 * so results match `logits_exact` references). */
#ifndef M40_QUANT_H
#define M40_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

/* Non-zero when the CPU can dequantize / dot / quantize this type:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. */
int quant_supported(uint32_t type);
/* Non-zero when quant_quantize_row can write this type. */
int quant_can_quantize(uint32_t type);

/* dst[0..n) = dequantize(src row of n elements). n must be a multiple of the
 * type's block size (checked by the model loader; asserted here). */
void quant_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);

/* sum_i dequant(row)[i] * x[i], FP32 accumulation, n a block multiple. */
float quant_dot(uint32_t type, const void *row, const float *x, int64_t n);

/* y[r] = dot(W row r, x) for r in [r0, r1). W has `cols` elements per row,
 * rows of ggml_row_size(type, cols) bytes. Single-threaded; callers split
 * the row range across threads. */
void quant_matvec(uint32_t type, const void *W, int64_t cols, int64_t r0, int64_t r1,
                  const float *x, float *y);

/* Y[t * ldy + r] = dot(W row r, X + t * ldx) for r in [r0, r1) and
 * t in [0, n_tok): a blocked multi-token product that dequantizes each
 * weight block once for up to 8 tokens. Every output is bit-identical to
 * quant_matvec / quant_dot of the same row and vector (the batched and
 * single-token paths of one dispatch share the per-token arithmetic).
 * Kernels: AVX2/FMA/F16C when the CPU has them (base/cpu_features.h), else
 * portable C; the two agree to FP32 rounding, not bit for bit.
 * Single-threaded; callers split the row range across threads. */
void quant_matmul(uint32_t type, const void *W, int64_t cols, int64_t r0, int64_t r1,
                  const float *X, int64_t ldx, int n_tok, float *Y, int64_t ldy);

/* Quantizes n floats into dst (ggml_row_size(type, n) bytes). Legacy types
 * use round-to-nearest with the standard per-block scale; K-quants use a
 * scale/min search like ggml's reference quantizers. `imatrix` may be NULL. */
void quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Weights per block of a supported type (1 for F32/F16/BF16), 0 otherwise. */
int64_t quant_block_size(uint32_t type);
/* Bytes of a row of n weights; 0 when the type is unsupported or n is not a
 * multiple of its block size. Same as ggml_row_size for supported types. */
size_t quant_row_bytes(uint32_t type, int64_t n);
/* As quant_quantize_row but without the K-quant scale searches (plain
 * round-to-nearest from each sub-block's max / min-max); same format. For
 * tests and comparisons; legacy and plain types are identical to
 * quant_quantize_row. */
void quant_quantize_row_rtn(uint32_t type, const float *src, void *dst, int64_t n);

#endif
