/* bench_cuda.c - CUDA backend timing driver (no model file needed): builds a
 * Llama-shaped model with random weights in host memory (F16, Q8_0 or Q4_0),
 * uploads it, and measures the device ceilings (Backend.peak), pp (one
 * prefill of P tokens) and tg (N single-sequence decode steps, with and
 * without CUDA graphs), plus batched decode of B sequences. Median of R
 * runs after a warm-up. Built by scripts/test-gpu.sh.
 *
 * usage: bench_cuda [--type f16|q8_0|q4_0] [--dim 4096] [--layers 32] [--heads 32]
 *                   [--kv-heads 32] [--ffn 11008] [--vocab 32000] [-p 512] [-n 128]
 *                   [-r 3] [-b 16] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cuda/cuda_test_hooks_core.h"
#include "engine/backend.h"
#include "gguf/gguf.h"
#include "model/model.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static void fill_weights(uint8_t *p, size_t nbytes, uint32_t type, int64_t cols) {
    /* random bits everywhere, then sane scales / values */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < (int64_t)(nbytes / 8); c++) {
        uint64_t x = (uint64_t)c * 0x9E3779B97F4A7C15ull ^ g_rng;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        memcpy(p + c * 8, &x, 8);
    }
    const float sc = 1.0f / sqrtf((float)cols);
    if (type == GGML_TYPE_F16) {
        uint16_t *h = (uint16_t *)p;
        const size_t n = nbytes / 2;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < (int64_t)n; i++) {
            float f = ((float)(h[i] & 0x3ff) / 512.0f - 1.0f) * sc;
            h[i] = f32_to_fp16(f);
        }
    } else {
        const size_t bs = type == GGML_TYPE_Q8_0 ? 34 : 18;
        const uint16_t d = f32_to_fp16(type == GGML_TYPE_Q8_0 ? sc / 64 : sc / 4);
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < (int64_t)(nbytes / bs); b++) memcpy(p + b * bs, &d, 2);
    }
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
}

static WTensor mk(uint32_t type, int64_t rows, int64_t cols, uint8_t **cursor) {
    WTensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = cols;
    t.ne[1] = rows;
    t.ne[2] = t.ne[3] = 1;
    t.nbytes = ggml_row_size(type, (uint64_t)cols) * (uint64_t)rows;
    t.data = *cursor;
    if (type == GGML_TYPE_F32) {
        float *f = (float *)*cursor;
        for (int64_t i = 0; i < rows * cols; i++) f[i] = 1.0f;
    } else {
        fill_weights(*cursor, t.nbytes, type, cols);
    }
    t.name = "bench";
    *cursor += (t.nbytes + 63) / 64 * 64;
    return t;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double med(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return v[n / 2];
}

int main(int argc, char **argv) {
    const char *tname = "f16";
    int dim = 4096, layers = 32, heads = 32, kvh = 32, ffn = 11008, vocab = 32000;
    int P = 512, N = 128, R = 3, B = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--type"))
            tname = v;
        else if (!strcmp(a, "--dim"))
            dim = atoi(v);
        else if (!strcmp(a, "--layers"))
            layers = atoi(v);
        else if (!strcmp(a, "--heads"))
            heads = atoi(v);
        else if (!strcmp(a, "--kv-heads"))
            kvh = atoi(v);
        else if (!strcmp(a, "--ffn"))
            ffn = atoi(v);
        else if (!strcmp(a, "--vocab"))
            vocab = atoi(v);
        else if (!strcmp(a, "-p"))
            P = atoi(v);
        else if (!strcmp(a, "-n"))
            N = atoi(v);
        else if (!strcmp(a, "-r"))
            R = atoi(v);
        else if (!strcmp(a, "-b"))
            B = atoi(v);
        else {
            fprintf(stderr, "bench_cuda: unknown option %s\n", a);
            return 2;
        }
    }
    const int type = ggml_type_from_name(tname);
    if (type != GGML_TYPE_F16 && type != GGML_TYPE_Q8_0 && type != GGML_TYPE_Q4_0) {
        fprintf(stderr, "bench_cuda: --type must be f16, q8_0 or q4_0\n");
        return 2;
    }
    log_set_level(LOG_LEVEL_INFO);
    const int hd = dim / heads, qd = dim, kvd = kvh * hd;
    Model m;
    memset(&m, 0, sizeof m);
    ModelConfig *c = &m.cfg;
    c->arch = ARCH_LLAMA;
    snprintf(c->arch_name, sizeof c->arch_name, "llama");
    c->n_vocab = vocab;
    c->dim = dim;
    c->n_layers = layers;
    c->n_heads = heads;
    c->n_kv_heads = kvh;
    c->head_dim = hd;
    c->ffn_dim = ffn;
    c->n_ctx_train = 4096;
    c->rope_dim = hd;
    c->rope_base = 10000.0f;
    c->rope_scale = 1.0f;
    c->norm_eps = 1e-5f;
    size_t per_layer = ggml_row_size(type, dim) * (size_t)(qd + 2 * kvd + 2 * ffn) +
                       ggml_row_size(type, qd) * dim + ggml_row_size(type, ffn) * dim +
                       2 * (size_t)dim * 4 + 64 * 12;
    size_t total = per_layer * layers + 2 * ggml_row_size(type, dim) * vocab + dim * 4 + 256;
    uint8_t *buf = (uint8_t *)malloc(total), *cur = buf;
    if (!buf) return 1;
    double t0 = time_now();
    m.tok_embd = mk(type, vocab, dim, &cur);
    m.output = mk(type, vocab, dim, &cur);
    m.output_norm = mk(GGML_TYPE_F32, 1, dim, &cur);
    m.layers = (LayerWeights *)calloc((size_t)layers, sizeof(LayerWeights));
    uint64_t wbytes = m.output.nbytes;
    for (int l = 0; l < layers; l++) {
        LayerWeights *L = &m.layers[l];
        L->attn_norm = mk(GGML_TYPE_F32, 1, dim, &cur);
        L->ffn_norm = mk(GGML_TYPE_F32, 1, dim, &cur);
        L->wq = mk(type, qd, dim, &cur);
        L->wk = mk(type, kvd, dim, &cur);
        L->wv = mk(type, kvd, dim, &cur);
        L->wo = mk(type, dim, qd, &cur);
        L->w_gate = mk(type, ffn, dim, &cur);
        L->w_up = mk(type, ffn, dim, &cur);
        L->w_down = mk(type, dim, ffn, &cur);
        wbytes += L->wq.nbytes + L->wk.nbytes + L->wv.nbytes + L->wo.nbytes + L->w_gate.nbytes +
                  L->w_up.nbytes + L->w_down.nbytes;
    }
    m.weight_bytes = wbytes;
    fprintf(stderr, "bench_cuda: random %s model (%.2f GB per token) built in %.1f s\n", tname,
            wbytes / 1e9, time_now() - t0);

    BackendParams p;
    backend_params_default(&p);
    p.device = "cuda";
    p.n_ctx = 2048;
    p.n_seq = B;
    p.quiet = 1;
    Err e = {{0}};
    t0 = time_now();
    Backend *b = backend_cuda_create(&m, &p, &e);
    if (!b) {
        fprintf(stderr, "bench_cuda: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "bench_cuda: %s, upload %.1f s\n", b->desc, time_now() - t0);
    double bw = 0, gf = 0;
    if (b->peak(b, &bw, &gf, &e) != 0) fprintf(stderr, "peak: %s\n", e.msg);

    int32_t *tok = (int32_t *)malloc(sizeof(int32_t) * (size_t)(P > B ? P : B));
    for (int i = 0; i < (P > B ? P : B); i++) tok[i] = (i * 7919 + 1) % vocab;
    float *logits = (float *)malloc(sizeof(float) * (size_t)vocab * B);
    double *t = (double *)malloc(sizeof(double) * (size_t)(R + 1));
    /* pp */
    double pp = 0;
    if (P > 0) {
        for (int r = 0; r <= R; r++) {
            double s = time_now();
            if (b->prefill(b, 0, tok, P, 0, logits, 0, &e) != 0) {
                fprintf(stderr, "prefill: %s\n", e.msg);
                return 1;
            }
            if (r > 0) t[r - 1] = time_now() - s;
        }
        pp = P / med(t, R);
    }
    double params = 0;
    params += (double)vocab * dim;
    params += (double)layers * ((double)dim * (qd + 2 * kvd) + (double)qd * dim + 3.0 * dim * ffn);
    /* tg, with and without graphs */
    double tg[2] = {0, 0};
    for (int g = 1; g >= 0; g--) {
        cuda_backend_set_graphs(b, g);
        for (int r = 0; r <= R; r++) {
            int seq = 0;
            int32_t tk = 1;
            double s = time_now();
            for (int i = 0; i < N; i++) {
                int pos = i;
                if (b->decode(b, 1, &seq, &tk, &pos, logits, &e) != 0) {
                    fprintf(stderr, "decode: %s\n", e.msg);
                    return 1;
                }
                tk = (tk * 31 + 7) % vocab;
            }
            if (r > 0) t[r - 1] = time_now() - s;
        }
        tg[g] = N / med(t, R);
    }
    cuda_backend_set_graphs(b, 1);
    /* batched decode: nb sequences per step (matvec path for small nb, GEMM above) */
    int nbs[3] = {4, 8, B};
    double tgb[3] = {0, 0, 0};
    for (int k = 0; k < 3 && B > 1; k++) {
        if (k == 1 && B <= 8) continue;
        const int nb = nbs[k] < B ? nbs[k] : B;
        int *seq = (int *)malloc(sizeof(int) * nb), *pos = (int *)malloc(sizeof(int) * nb);
        for (int r = 0; r <= R; r++) {
            double s = time_now();
            for (int i = 0; i < N / 2; i++) {
                for (int j = 0; j < nb; j++) {
                    seq[j] = j;
                    pos[j] = i;
                }
                if (b->decode(b, nb, seq, tok, pos, logits, &e) != 0) {
                    fprintf(stderr, "decode: %s\n", e.msg);
                    return 1;
                }
            }
            if (r > 0) t[r - 1] = time_now() - s;
        }
        tgb[k] = (double)nb * (N / 2) / med(t, R);
        free(seq);
        free(pos);
    }
    /* decode deep in the context: prefill `depth` tokens, then N/4 steps */
    const int depth = 1536;
    double tgd = 0;
    {
        int32_t *pt = (int32_t *)malloc(sizeof(int32_t) * depth);
        for (int i = 0; i < depth; i++) pt[i] = (i * 31 + 5) % vocab;
        if (b->prefill(b, 0, pt, depth, 0, NULL, 0, &e) != 0) {
            fprintf(stderr, "prefill: %s\n", e.msg);
            return 1;
        }
        free(pt);
        for (int r = 0; r <= R; r++) {
            int seq = 0;
            int32_t tk = 1;
            double s = time_now();
            for (int i = 0; i < N / 4; i++) {
                int pos = depth + i;
                if (b->decode(b, 1, &seq, &tk, &pos, logits, &e) != 0) {
                    fprintf(stderr, "decode: %s\n", e.msg);
                    return 1;
                }
            }
            if (r > 0) t[r - 1] = time_now() - s;
        }
        tgd = (N / 4) / med(t, R);
    }
    /* bytes per decoded token: weights + KV (read up to N/2 positions on average) */
    const double kv_tok = (double)layers * 2 * kvd * 2 * (N / 2.0);
    const double bytes_tok = (double)wbytes + kv_tok;
    printf("\n| %s | model | value | of ceiling |\n|---|---|---|---|\n", b->desc);
    printf("| copy bandwidth (D2D, r+w) | | %.0f GB/s | |\n", bw);
    printf("| FP32 SGEMM | | %.0f GFLOP/s | |\n", gf);
    printf("| pp%d | %s %.2f GB | %.1f t/s | %.1f%% of SGEMM |\n", P, tname, wbytes / 1e9, pp,
           100.0 * pp * 2.0 * params / (gf * 1e9));
    printf("| tg%d (graphs) | %s | %.1f t/s | %.1f%% of copy bw |\n", N, tname, tg[1],
           100.0 * tg[1] * bytes_tok / (bw * 1e9));
    printf("| tg%d (no graphs) | %s | %.1f t/s | %.1f%% of copy bw |\n", N, tname, tg[0],
           100.0 * tg[0] * bytes_tok / (bw * 1e9));
    printf("| tg at depth %d | %s | %.1f t/s | %.1f%% of copy bw |\n", depth, tname, tgd,
           100.0 * tgd * ((double)wbytes + (double)layers * 2 * kvd * 2 * depth) / (bw * 1e9));
    for (int k = 0; k < 3 && B > 1; k++)
        if (tgb[k] > 0)
            printf("| batched decode x%d | %s | %.1f t/s total | %.2fx tg |\n",
                   nbs[k] < B ? nbs[k] : B, tname, tgb[k], tgb[k] / tg[1]);
    backend_free(b);
    free(m.layers);
    free(buf);
    free(tok);
    free(logits);
    free(t);
    return 0;
}
