/* backend.c - backend parameters and the device choice (see backend.h). */
#include "engine/backend.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void backend_params_default(BackendParams *p) {
    memset(p, 0, sizeof *p);
    p->n_ctx = 0;
    p->n_seq = 1;
    p->n_threads = 0;
    p->device = "auto";
    p->require_sm52 = 0;
    const char *cb = getenv("M40LLM_ENABLE_CUBLAS");
    p->use_cublas = (cb && !strcmp(cb, "0")) ? 0 : 1;
    p->quiet = 0;
    p->batch_invariant = 0;
}

Backend *backend_create(const Model *m, const BackendParams *p, Err *e) {
    BackendParams q = *p;
    const char *dev = q.device && *q.device ? q.device : "auto";
    if (q.n_seq < 1) q.n_seq = 1;
    if (q.n_ctx <= 0) {
        int t = m->cfg.n_ctx_train;
        q.n_ctx = (t > 0 && t < 4096) ? t : 4096;
    }
    q.device = dev;
    Backend *b = NULL;
    if (!strcmp(dev, "cpu")) {
        b = backend_cpu_create(m, &q, e);
    } else if (!strcmp(dev, "cuda") || !strncmp(dev, "cuda:", 5)) {
        b = backend_cuda_create(m, &q, e);
    } else if (!strcmp(dev, "auto")) {
        char why[256] = "";
        if (backend_cuda_available(why, sizeof why)) {
            q.device = "cuda";
            b = backend_cuda_create(m, &q, e);
        } else {
            LOG_WARN("no usable CUDA device (%s): running on the CPU", why);
            q.device = "cpu";
            b = backend_cpu_create(m, &q, e);
        }
    } else {
        err_set(e, "device '%s' is not auto, cpu, cuda or cuda:N", dev);
        return NULL;
    }
    if (!b) return NULL;
    LOG_INFO("backend: %s", b->desc[0] ? b->desc : b->name);
    return b;
}

void backend_free(Backend *b) {
    if (b && b->free) b->free(b);
}
