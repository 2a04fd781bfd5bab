/* quant_impl.h - private to src/quant: ggml block structs (layouts are
 * documented beside each dequantizer in quant.c). Sizes match ggml. */
#ifndef M40_QUANT_IMPL_H
#define M40_QUANT_IMPL_H

#include <stdint.h>

#define QK_K 256

typedef struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[16];
} BlockQ4_0;
typedef struct BlockQ4_1 {
    uint16_t d, m;
    uint8_t qs[16];
} BlockQ4_1;
typedef struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} BlockQ5_0;
typedef struct BlockQ5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} BlockQ5_1;
typedef struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[32];
} BlockQ8_0;
typedef struct BlockQ2K {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d, dmin;
} BlockQ2K;
typedef struct BlockQ3K {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
} BlockQ3K;
typedef struct BlockQ4K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
} BlockQ4K;
typedef struct BlockQ5K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} BlockQ5K;
typedef struct BlockQ6K {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} BlockQ6K;

_Static_assert(sizeof(BlockQ4_0) == 18, "q4_0");
_Static_assert(sizeof(BlockQ4_1) == 20, "q4_1");
_Static_assert(sizeof(BlockQ5_0) == 22, "q5_0");
_Static_assert(sizeof(BlockQ5_1) == 24, "q5_1");
_Static_assert(sizeof(BlockQ8_0) == 34, "q8_0");
_Static_assert(sizeof(BlockQ2K) == 84, "q2_K");
_Static_assert(sizeof(BlockQ3K) == 110, "q3_K");
_Static_assert(sizeof(BlockQ4K) == 144, "q4_K");
_Static_assert(sizeof(BlockQ5K) == 176, "q5_K");
_Static_assert(sizeof(BlockQ6K) == 210, "q6_K");

/* Vectorizable fp16 -> f32 (same results as fp16_to_f32). */
float quant_h2f(uint16_t h);

#endif
