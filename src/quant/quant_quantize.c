/* quant_quantize.c - float -> ggml block quantizers (see quant.h).
 *
 * Legacy types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): one scale (and min) per
 * 32-weight block from the block's absolute max (or min/max), round to
 * nearest, like ggml's quantize_row_*_ref, so files are bit-compatible with
 * llama-quantize output for the same input.
 * K-quants: per sub-block a scale (and min) search that minimizes a weighted
 * squared or absolute error over a few candidate scales, then the sub-block
 * scales are themselves quantized to 4/6/8 bits against one fp16 super-scale
 * and the weights are re-rounded against the final scales. The search
 * strategies follow ggml's reference quantizers (make_qx_quants,
 * make_q3_quants, make_qkx2_quants); block layouts are in quant.c. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include "quant/quant.h"
#include "quant/quant_impl.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"

#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest, ties to even (|f| < 2^22): adding 1.5 * 2^23 leaves the
 * rounded integer in the low mantissa bits. */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* nearest_int(v) clamped to the symmetric quant range [-nmax, nmax - 1] */
static inline int qclamp(int nmax, float v) { return imax(-nmax, imin(nmax - 1, nearest_int(v))); }

/* The first of x[0..n) with the largest |x| (sign kept), 0 when all are 0:
 * the scale source of Q4_0 / Q5_0 and the symmetric K-quant searches, as
 * ggml's reference quantizers. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

/* Smallest and largest of x[0..32): the range of Q4_1 / Q5_1 blocks. */
static void minmax32(const float *x, float *mn, float *mx) {
    *mn = FLT_MAX, *mx = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < *mn) *mn = x[j];
        if (x[j] > *mx) *mx = x[j];
    }
}

/* ------------------------------------------------------------ legacy types */

static void q_q4_0(const float *x, BlockQ4_0 *y) {
    const float max = signed_absmax(x, 32);
    /* the extreme value maps to -8 (the asymmetric end of the range) */
    const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    for (int j = 0; j < 16; j++) {
        int a = imin(15, (int)(int8_t)(x[j] * id + 8.5f));
        int b = imin(15, (int)(int8_t)(x[j + 16] * id + 8.5f));
        y->qs[j] = (uint8_t)(a | (b << 4));
    }
}

static void q_q4_1(const float *x, BlockQ4_1 *y) {
    float mn, mx;
    minmax32(x, &mn, &mx);
    const float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    y->m = f32_to_fp16(mn);
    for (int j = 0; j < 16; j++) {
        int a = imin(15, (int)(int8_t)((x[j] - mn) * id + 0.5f));
        int b = imin(15, (int)(int8_t)((x[j + 16] - mn) * id + 0.5f));
        y->qs[j] = (uint8_t)(a | (b << 4));
    }
}

static void q_q5_0(const float *x, BlockQ5_0 *y) {
    const float max = signed_absmax(x, 32);
    const float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int a = imin(31, (int)(int8_t)(x[j] * id + 16.5f));
        int b = imin(31, (int)(int8_t)(x[j + 16] * id + 16.5f));
        y->qs[j] = (uint8_t)((a & 15) | ((b & 15) << 4));
        qh |= (uint32_t)((a >> 4) & 1) << j;
        qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
    }
    memcpy(y->qh, &qh, 4);
}

static void q_q5_1(const float *x, BlockQ5_1 *y) {
    float mn, mx;
    minmax32(x, &mn, &mx);
    const float d = (mx - mn) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    y->m = f32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int a = imin(31, (int)(int8_t)((x[j] - mn) * id + 0.5f));
        int b = imin(31, (int)(int8_t)((x[j + 16] - mn) * id + 0.5f));
        y->qs[j] = (uint8_t)((a & 15) | ((b & 15) << 4));
        qh |= (uint32_t)((a >> 4) & 1) << j;
        qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
    }
    memcpy(y->qh, &qh, 4);
}

static void q_q8_0(const float *x, BlockQ8_0 *y) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = f32_to_fp16(d);
    for (int j = 0; j < 32; j++) y->qs[j] = (int8_t)roundf(x[j] * id);
}

/* -------------------------------------------------- K-quant scale searches */

/* Symmetric quants in [-nmax, nmax-1] (stored + nmax in L) for n values:
 * starts from the scale mapping the largest |x| to -nmax, then tries 18
 * nearby scales and keeps the one maximizing (sum w x l)^2 / sum w l^2 (the
 * least-squares optimum for fixed l), weights w = x^2. Returns the scale. */
static float qx_quants(int n, int nmax, const float *x, int8_t *L, int search) {
    const float max = signed_absmax(x, n);
    if (fabsf(max) < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -(float)nmax / max;
    if (!search) {
        for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + qclamp(nmax, iscale * x[i]));
        return 1.0f / iscale;
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = qclamp(nmax, iscale * x[i]);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)(l * l);
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = qclamp(nmax, iscale * x[i]);
            float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)(l * l);
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + qclamp(nmax, iscale * x[i]));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric 3-bit search (Q3_K sub-blocks): RTN from the max, then up to 5
 * passes of coordinate descent moving single quants when that increases
 * (sum w x l)^2 / sum w l^2 (w = x^2). L gets l + nmax. Returns the scale. */
static float q3_quants(int n, int nmax, const float *x, int8_t *L, int search) {
    const float max = signed_absmax(x, n);
    if (fabsf(max) < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -(float)nmax / max;
    if (!search) {
        for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + qclamp(nmax, iscale * x[i]));
        return 1.0f / iscale;
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = qclamp(nmax, iscale * x[i]);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)(l * l);
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx <= 0.0f) continue;
            float sl2 = suml2 - w * (float)(L[i] * L[i]);
            int nl = qclamp(nmax, x[i] * sl2 / slx);
            if (nl == L[i]) continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)(nl * nl);
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric quants in [0, nmax] with x ~ scale * l - min (min >= 0
 * returned in *the_min): starts from the min/max range, then for nstep+1
 * candidate inverse scales (nmax + rmin + rdelta*k) / range solves the
 * weighted least-squares (scale, offset) for the rounded l and keeps the
 * candidate with the lowest weighted error (|.| if use_mad, else ^2). */
static float qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                         float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                         int use_mad) {
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0.0f) mn = 0.0f;
    if (mx == mn) {
        memset(L, 0, (size_t)n);
        *the_min = -mn;
        return 0.0f;
    }
    float iscale = (float)nmax / (mx - mn);
    float scale = 1.0f / iscale;
    float best = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - mn))));
        L[i] = (uint8_t)l;
        float diff = scale * (float)l + mn - x[i];
        best += w[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (mx - mn);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - mn))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)(l * l);
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0.0f) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0.0f) {
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)Laux[i] + this_min - x[i];
            err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
        }
        if (err < best) {
            memcpy(L, Laux, (size_t)n);
            best = err;
            scale = this_scale;
            mn = this_min;
        }
    }
    *the_min = -mn;
    return scale;
}

/* ---------------------------------------------------------------- K-quants */

static void q_q2_k(const float *x, BlockQ2K *y, int search) {
    uint8_t L[QK_K], Laux[16];
    float w[16], mins[16], scales[16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
        scales[j] = qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f,
                                search ? 15 : -1, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    memset(y->scales, 0, 16);
    if (max_scale > 0.0f) {
        const float is = 15.0f / max_scale;
        for (int j = 0; j < 16; j++) y->scales[j] = (uint8_t)imin(15, nearest_int(is * scales[j]));
        y->d = f32_to_fp16(max_scale / 15.0f);
    } else {
        y->d = 0;
    }
    if (max_min > 0.0f) {
        const float is = 15.0f / max_min;
        for (int j = 0; j < 16; j++)
            y->scales[j] |= (uint8_t)(imin(15, nearest_int(is * mins[j])) << 4);
        y->dmin = f32_to_fp16(max_min / 15.0f);
    } else {
        y->dmin = 0;
    }
    const float D = fp16_to_f32(y->d), DM = fp16_to_f32(y->dmin);
    for (int j = 0; j < 16; j++) {
        const float d = D * (float)(y->scales[j] & 15);
        if (d == 0.0f) continue;
        const float m = DM * (float)(y->scales[j] >> 4);
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (uint8_t)imax(0, imin(3, nearest_int((x[16 * j + i] + m) / d)));
    }
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *Lh = L + 128 * h;
            y->qs[32 * h + l] =
                (uint8_t)(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
        }
}

static void q_q3_k(const float *x, BlockQ3K *y, int search) {
    int8_t L[QK_K];
    float scales[16];
    for (int j = 0; j < 16; j++) scales[j] = q3_quants(16, 4, x + 16 * j, L + 16 * j, search);
    const float max_scale = signed_absmax(scales, 16);
    memset(y->scales, 0, 12);
    if (max_scale != 0.0f) {
        const float iscale = -32.0f / max_scale;
        for (int j = 0; j < 16; j++) {
            int l = qclamp(32, iscale * scales[j]) + 32;
            if (j < 8)
                y->scales[j] = (uint8_t)(l & 15);
            else
                y->scales[j - 8] |= (uint8_t)((l & 15) << 4);
            y->scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        y->d = f32_to_fp16(1.0f / iscale);
    } else {
        y->d = 0;
    }
    const float D = fp16_to_f32(y->d);
    for (int j = 0; j < 16; j++) {
        int sc = j < 8 ? (y->scales[j] & 15) : (y->scales[j - 8] >> 4);
        sc = (sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
        const float d = D * (float)sc;
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(qclamp(4, x[16 * j + i] / d) + 4);
    }
    /* high bit of weight j -> hmask[j % 32] bit j / 32 */
    memset(y->hmask, 0, 32);
    for (int j = 0; j < QK_K; j++)
        if (L[j] > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            L[j] = (int8_t)(L[j] - 4);
        }
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int8_t *Lh = L + 128 * h;
            y->qs[32 * h + l] =
                (uint8_t)(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
        }
}

/* Shared by Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins
 * (packed as in quant.c's scale_min_k4). Fills y's d, dmin, scales and L
 * (quants 0..nmax). */
static void k4_scales(const float *x, int nmax, float rmin, float rdelta, int nstep, uint16_t *dd,
                      uint16_t *dmin, uint8_t *sc12, uint8_t *L) {
    uint8_t Laux[32];
    float w[32], mins[8], scales[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        float sx2 = 0.0f;
        for (int l = 0; l < 32; l++) sx2 += x[32 * j + l] * x[32 * j + l];
        const float av = sqrtf(sx2 / 32.0f);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(x[32 * j + l]);
        scales[j] = qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, rdelta,
                                nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_s = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_m = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(sc12, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)imin(63, nearest_int(inv_s * scales[j]));
        uint8_t lm = (uint8_t)imin(63, nearest_int(inv_m * mins[j]));
        if (j < 4) {
            sc12[j] = ls;
            sc12[j + 4] = lm;
        } else {
            sc12[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
            sc12[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc12[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dd = f32_to_fp16(max_scale / 63.0f);
    *dmin = f32_to_fp16(max_min / 63.0f);
    const float D = fp16_to_f32(*dd), DM = fp16_to_f32(*dmin);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        if (j < 4) {
            s = sc12[j] & 63;
            m = sc12[j + 4] & 63;
        } else {
            s = (uint8_t)((sc12[j + 4] & 15) | ((sc12[j - 4] >> 6) << 4));
            m = (uint8_t)((sc12[j + 4] >> 4) | ((sc12[j] >> 6) << 4));
        }
        const float d = D * (float)s;
        if (d == 0.0f) continue;
        const float dm = DM * (float)m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, nearest_int((x[32 * j + i] + dm) / d)));
    }
}

static void q_q4_k(const float *x, BlockQ4K *y, int search) {
    uint8_t L[QK_K];
    k4_scales(x, 15, -1.0f, 0.1f, search ? 20 : -1, &y->d, &y->dmin, y->scales, L);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            y->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

static void q_q5_k(const float *x, BlockQ5K *y, int search) {
    uint8_t L[QK_K];
    k4_scales(x, 31, -0.5f, 0.1f, search ? 15 : -1, &y->d, &y->dmin, y->scales, L);
    memset(y->qh, 0, 32);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int a = L[64 * c + l], b = L[64 * c + 32 + l];
            if (a > 15) {
                a -= 16;
                y->qh[l] |= (uint8_t)(1u << (2 * c));
            }
            if (b > 15) {
                b -= 16;
                y->qh[l] |= (uint8_t)(1u << (2 * c + 1));
            }
            y->qs[32 * c + l] = (uint8_t)(a | (b << 4));
        }
}

static void q_q6_k(const float *x, BlockQ6K *y, int search) {
    int8_t L[QK_K];
    float scales[16];
    for (int j = 0; j < 16; j++) scales[j] = qx_quants(16, 32, x + 16 * j, L + 16 * j, search);
    const float max_scale = signed_absmax(scales, 16);
    memset(y, 0, sizeof *y);
    if (fabsf(max_scale) < GROUP_MAX_EPS) return;
    const float iscale = -128.0f / max_scale;
    y->d = f32_to_fp16(1.0f / iscale);
    for (int j = 0; j < 16; j++) y->scales[j] = (int8_t)imin(127, nearest_int(iscale * scales[j]));
    const float D = fp16_to_f32(y->d);
    for (int j = 0; j < 16; j++) {
        const float d = D * (float)y->scales[j];
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(qclamp(32, x[16 * j + i] / d) + 32);
    }
    for (int h = 0; h < 2; h++) {
        const int8_t *Lh = L + 128 * h;
        uint8_t *ql = y->ql + 64 * h, *qh = y->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((Lh[l] & 15) | ((Lh[l + 64] & 15) << 4));
            ql[l + 32] = (uint8_t)((Lh[l + 32] & 15) | ((Lh[l + 96] & 15) << 4));
            qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                              ((Lh[l + 96] >> 4) << 6));
        }
    }
}

/* ------------------------------------------------------------------ entry */

static void quantize_row(uint32_t type, const float *src, void *dst, int64_t n, int search) {
    const int64_t bs = quant_block_size(type);
    M40_ASSERT(bs > 0 && n >= 0 && n % bs == 0);
    const int64_t nb = n / bs;
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(dst, src, (size_t)n * 4);
        break;
    case GGML_TYPE_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f32_to_fp16(src[i]);
        break;
    }
    case GGML_TYPE_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f32_to_bf16(src[i]);
        break;
    }
#define Q_CASE(T, BT, fn)                                                                          \
    case T: {                                                                                      \
        BT *b = dst;                                                                               \
        for (int64_t i = 0; i < nb; i++) fn(src + i * bs, b + i);                                  \
        break;                                                                                     \
    }
        Q_CASE(GGML_TYPE_Q4_0, BlockQ4_0, q_q4_0)
        Q_CASE(GGML_TYPE_Q4_1, BlockQ4_1, q_q4_1)
        Q_CASE(GGML_TYPE_Q5_0, BlockQ5_0, q_q5_0)
        Q_CASE(GGML_TYPE_Q5_1, BlockQ5_1, q_q5_1)
        Q_CASE(GGML_TYPE_Q8_0, BlockQ8_0, q_q8_0)
#undef Q_CASE
#define K_CASE(T, BT, fn)                                                                          \
    case T: {                                                                                      \
        BT *b = dst;                                                                               \
        for (int64_t i = 0; i < nb; i++) fn(src + i * bs, b + i, search);                          \
        break;                                                                                     \
    }
        K_CASE(GGML_TYPE_Q2_K, BlockQ2K, q_q2_k)
        K_CASE(GGML_TYPE_Q3_K, BlockQ3K, q_q3_k)
        K_CASE(GGML_TYPE_Q4_K, BlockQ4K, q_q4_k)
        K_CASE(GGML_TYPE_Q5_K, BlockQ5K, q_q5_k)
        K_CASE(GGML_TYPE_Q6_K, BlockQ6K, q_q6_k)
#undef K_CASE
    default:
        M40_ASSERT(0 && "unsupported type");
    }
}

void quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    quantize_row(type, src, dst, n, 1);
}

void quant_quantize_row_rtn(uint32_t type, const float *src, void *dst, int64_t n) {
    quantize_row(type, src, dst, n, 0);
}
