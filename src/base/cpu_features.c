/* cpu_features.c - see cpu_features.h. */
#include "base/cpu_features.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static int g_has_avx2;
static int g_env_portable;
static int g_force_portable;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* clang 14 lacks __builtin_cpu_supports("f16c"): cpuid directly. */
static void detect(void) {
    const char *env = getenv("M40LLM_CPU_PORTABLE");
    g_env_portable = env && strcmp(env, "") && strcmp(env, "0");
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
              f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 6) != 6) return; /* XMM and YMM state enabled */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    g_has_avx2 = (b >> 5) & 1;
#endif
}

int cpu_has_avx2_fma_f16c(void) {
    pthread_once(&g_once, detect);
    return g_has_avx2;
}

int cpu_simd_avx2(void) {
    pthread_once(&g_once, detect);
    return g_has_avx2 && !g_env_portable && !__atomic_load_n(&g_force_portable, __ATOMIC_RELAXED);
}

void cpu_force_portable(int on) {
    pthread_once(&g_once, detect);
    __atomic_store_n(&g_force_portable, on ? 1 : 0, __ATOMIC_RELAXED);
}
