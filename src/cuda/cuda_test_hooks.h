/* cuda_test_hooks.h - C-callable wrappers around internal CUDA ops, for the
 * GPU tests (tests/gpu) only. Each copies host inputs to the device, runs
 * the op on the default stream, copies the result back and frees
 * everything. Outputs are poisoned with NaN on the device before the op, so
 * an element the kernel did not write comes back as NaN. Every function
 * returns 0 on success and -1 on any CUDA error (message on stderr). Only
 * built with CUDA (M40LLM_HAVE_CUDA). */
#ifndef M40_CUDA_TEST_HOOKS_H
#define M40_CUDA_TEST_HOOKS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is none or the driver fails. */
int cuda_test_device_count(void);

/* Y = W x X (+ bias) (+ Y when accumulate) through cuda_matvec.
 * W_host: rows x ggml_row_size(type, cols) bytes; X: n x cols; bias: rows or
 * NULL; Y_inout: n x rows (read when accumulate, always written).
 * w_misalign: byte offset (even, < 16) of W in its device allocation, to
 * exercise the unaligned-row path. */
int cuda_test_matvec(uint32_t type, int64_t rows, int64_t cols, int n, const void *W_host,
                     int w_misalign, const float *X, const float *bias, int accumulate,
                     float *Y_inout);

/* One token through a stacked gate|up matrix (W_host: 2*ffn rows):
 * H_fused = cuda_matvec_glu, H_ref = cuda_matvec then cuda_swiglu (the
 * unfused device path). Returns 1 when the fused kernel ran, 0 when it
 * does not take this type (H_fused untouched), -1 on a CUDA error. */
int cuda_test_matvec_glu(uint32_t type, int64_t ffn, int64_t cols, const void *W_host,
                         const float *X, float *H_fused, float *H_ref);

/* The integer-dot-product matvec path (sm_61+): on = 0 off, -1 default.
 * Returns whether it is in use afterwards. */
int cuda_test_set_dp(int on);

/* out ((r1-r0) x cols) = cuda_dequant_rows(W rows [r0, r1)). */
int cuda_test_dequant_rows(uint32_t type, int64_t rows, int64_t cols, const void *W_host,
                           int64_t r0, int64_t r1, float *out);

/* out (n x cols) = cuda_get_rows(W, ids[0..n)). */
int cuda_test_get_rows(uint32_t type, int64_t rows, int64_t cols, const void *W_host,
                       const int32_t *ids, int n, float *out);

#ifdef __cplusplus
}
#endif

#endif
