/* nocuda.c - the CUDA entry points when m40llm is built without CUDA. */
#include <stdio.h>

#include "engine/backend.h"

int backend_cuda_available(char *why, int why_len) {
    if (why && why_len > 0)
        snprintf(why, (size_t)why_len, "this m40llm was built without CUDA (no nvcc at build time)");
    return 0;
}

Backend *backend_cuda_create(const Model *m, const BackendParams *p, Err *e) {
    (void)m;
    (void)p;
    err_set(e, "--device cuda: this m40llm was built without CUDA; rebuild with a CUDA toolkit "
               "(scripts/setup.sh --m40) or use --device cpu");
    return NULL;
}
