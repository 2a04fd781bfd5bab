/* cpu_features.h - runtime CPU feature detection for the SIMD kernels
 * (src/quant, src/cpu). Kernels compiled with
 * __attribute__((target("avx2,fma,f16c"))) may only be called when
 * cpu_simd_avx2() is non-zero; the portable C kernels are the fallback. */
#ifndef M40_CPU_FEATURES_H
#define M40_CPU_FEATURES_H

/* Non-zero when the CPU has AVX2, FMA and F16C and the OS saves the YMM
 * state (cpuid + xgetbv). Cached after the first call; thread-safe. */
int cpu_has_avx2_fma_f16c(void);

/* Non-zero when the AVX2/FMA/F16C kernels should be used: the CPU has them
 * and neither cpu_force_portable(1) nor the environment variable
 * M40LLM_CPU_PORTABLE=1 asked for the portable C kernels. */
int cpu_simd_avx2(void);

/* Tests: 1 = use the portable C kernels everywhere (process-wide; call
 * while no computation is running), 0 = back to auto-detection. */
void cpu_force_portable(int on);

#endif
