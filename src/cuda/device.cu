/* device.cu - CUDA device enumeration, selection and the startup probe. */
#include <cstring>

#include "cuda/cuda_common.cuh"

extern "C" {
#include "engine/backend.h"
}

#ifndef M40LLM_CUDA_ARCH_LIST
#define M40LLM_CUDA_ARCH_LIST "unknown"
#endif

static __global__ void probe_kernel(int *out) {
    if (threadIdx.x == 0 && blockIdx.x == 0) *out = 0x4d3430; /* "M40" */
}

/* Device count or -1 with a reason (no driver, old driver, no device). */
static int device_count(char *why, int why_len) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        int rt = 0;
        cudaRuntimeGetVersion(&rt);
        const char *reason;
        switch (err) {
        case cudaErrorNoDevice:
            reason = "no CUDA device found";
            break;
        case cudaErrorInsufficientDriver:
            reason = "no NVIDIA driver, or one too old for this CUDA runtime";
            break;
        default:
            reason = "CUDA initialization failed";
            break;
        }
        snprintf(why, (size_t)why_len, "%s (%s, runtime %d.%d)", reason, cudaGetErrorName(err),
                 rt / 1000, (rt % 1000) / 10);
        cudaGetLastError();
        return -1;
    }
    if (n <= 0) {
        snprintf(why, (size_t)why_len, "no CUDA device found");
        return -1;
    }
    return n;
}

int cuda_select_device(const char *device, int require_sm52, char *why, int why_len) {
    int n = device_count(why, why_len);
    if (n < 0) return -1;
    int want = -1;
    if (device && !strncmp(device, "cuda:", 5)) {
        char *end = NULL;
        long v = strtol(device + 5, &end, 10);
        if (!device[5] || *end || v < 0) {
            snprintf(why, (size_t)why_len, "device \"%s\": expected cuda:N", device);
            return -1;
        }
        if (v >= n) {
            snprintf(why, (size_t)why_len, "device \"%s\": only %d CUDA device%s (cuda:0..cuda:%d)",
                     device, n, n == 1 ? "" : "s", n - 1);
            return -1;
        }
        want = (int)v;
    }
    if (want < 0) {
        /* auto: a Tesla M40 (sm_52) first, else the device with the most memory */
        size_t best_mem = 0;
        int best_m40 = 0;
        for (int i = 0; i < n; i++) {
            cudaDeviceProp pr;
            if (cudaGetDeviceProperties(&pr, i) != cudaSuccess) continue;
            int m40 = pr.major == 5 && pr.minor == 2;
            if (require_sm52 && !m40) continue;
            if (want < 0 || (m40 && !best_m40) ||
                (m40 == best_m40 && pr.totalGlobalMem > best_mem)) {
                want = i;
                best_mem = pr.totalGlobalMem;
                best_m40 = m40;
            }
        }
        if (want < 0) {
            if (require_sm52)
                snprintf(why, (size_t)why_len,
                         "require_sm52: none of the %d CUDA device%s is a Tesla M40 (sm_52)", n,
                         n == 1 ? "" : "s");
            else
                snprintf(why, (size_t)why_len, "no usable CUDA device");
            return -1;
        }
    }
    cudaDeviceProp pr;
    CUDA_CHECK(cudaGetDeviceProperties(&pr, want));
    if (require_sm52 && !(pr.major == 5 && pr.minor == 2)) {
        snprintf(why, (size_t)why_len, "require_sm52: cuda:%d (%s) is sm_%d%d, not sm_52", want,
                 pr.name, pr.major, pr.minor);
        return -1;
    }
    return want;
}

int cuda_probe_device(int dev, char *why, int why_len) {
    cudaDeviceProp pr;
    if (cudaSetDevice(dev) != cudaSuccess || cudaGetDeviceProperties(&pr, dev) != cudaSuccess) {
        snprintf(why, (size_t)why_len, "cuda:%d: cannot be opened (%s)", dev,
                 cudaGetErrorName(cudaGetLastError()));
        return -1;
    }
    int *d = NULL;
    cudaError_t err = cudaMalloc(&d, sizeof(int));
    if (err == cudaSuccess) {
        probe_kernel<<<1, 32>>>(d);
        err = cudaGetLastError();
        if (err == cudaSuccess) err = cudaDeviceSynchronize();
        cudaFree(d);
    }
    if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction) {
        snprintf(why, (size_t)why_len,
                 "cuda:%d (%s) is sm_%d%d but this m40llm has GPU code only for CUDA archs "
                 "\"%s\"; rebuild with -DM40LLM_CUDA_ARCHS=%d%d (sm_52 needs CUDA 11.x-12.x)",
                 dev, pr.name, pr.major, pr.minor, M40LLM_CUDA_ARCH_LIST, pr.major, pr.minor);
        cudaGetLastError();
        return -1;
    }
    if (err != cudaSuccess) {
        snprintf(why, (size_t)why_len, "cuda:%d (%s): test kernel failed: %s (%s)", dev, pr.name,
                 cudaGetErrorName(err), cudaGetErrorString(err));
        cudaGetLastError();
        return -1;
    }
    return 0;
}

extern "C" int backend_cuda_available(char *why, int why_len) {
    char tmp[256];
    if (!why || why_len <= 0) {
        why = tmp;
        why_len = (int)sizeof tmp;
    }
    why[0] = 0;
    int dev = cuda_select_device("auto", 0, why, why_len);
    if (dev < 0) return 0;
    if (cuda_probe_device(dev, why, why_len) != 0) return 0;
    return 1;
}
