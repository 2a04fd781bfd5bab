/* cmd_bench.c - 'm40llm bench': prompt processing (pp: one prefill of p
 * random tokens) and generation (tg: n single-token decode steps) speed,
 * median of r runs after a warm-up, with the achieved fraction of the
 * device's measured copy bandwidth and FP32 GEMM rate. Table on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "engine/engine.h"

static const char *const BENCH_HELP =
    "usage: m40llm bench -m MODEL [-p 512] [-n 128] [-r 5] [--device D] [options]\n\n"
    "  -p, --n-prompt N        prompt tokens for the pp test (default 512; 0 = skip)\n"
    "  -n, --n-gen N           generated tokens for the tg test (default 128; 0 = skip)\n"
    "  -r, --repetitions N     runs per test after one warm-up; the median is reported\n"
    "                          (default 5)\n"
    "  -v, --verbose           debug log; --log-level error|warn|info|debug\n";

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t tensor_params(const WTensor *t) {
    return t->data ? (uint64_t)t->ne[0] * (uint64_t)(t->ne[1] > 0 ? t->ne[1] : 1) : 0;
}

/* Parameters multiplied per token: every layer matrix plus the output
 * matrix (the embedding table is a lookup). */
static uint64_t matmul_params(const Model *m) {
    uint64_t n = tensor_params(&m->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const LayerWeights *w = &m->layers[l];
        n += tensor_params(&w->wq) + tensor_params(&w->wk) + tensor_params(&w->wv) +
             tensor_params(&w->wo) + tensor_params(&w->w_gate) + tensor_params(&w->w_up) +
             tensor_params(&w->w_down);
    }
    return n;
}

/* One pp run: prefill of `n` tokens from position 0. Seconds or < 0. */
static double run_pp(Backend *b, const int32_t *toks, int n, float *logits, Err *e) {
    double t0 = time_now();
    if (b->prefill(b, 0, toks, n, 0, logits, 0, e) != 0) return -1;
    return time_now() - t0;
}

/* One tg run: one token of prefill, then `n` decode steps. Seconds or < 0. */
static double run_tg(Backend *b, const int32_t *toks, int n, float *logits, Err *e) {
    if (b->prefill(b, 0, toks, 1, 0, logits, 0, e) != 0) return -1;
    double t0 = time_now();
    for (int i = 0; i < n; i++) {
        int seq = 0, pos = i + 1;
        if (b->decode(b, 1, &seq, &toks[i + 1], &pos, logits, e) != 0) return -1;
    }
    return time_now() - t0;
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    CliModelOpts mo;
    cli_model_opts_init(&mo);
    long n_pp = 512, n_tg = 128, reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_cmd_option(cmd, &mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\nmodel and device:\n%s", BENCH_HELP, CLI_MODEL_OPTS_HELP);
            return 0;
        }
        long *dst = NULL, lo = 0;
        if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt"))
            dst = &n_pp;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen"))
            dst = &n_tg;
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions"))
            dst = &reps, lo = 1;
        if (!dst) return cli_unknown_option(cmd, a);
        const char *v = cli_option_value(cmd, argc, argv, &i);
        if (!v || cli_parse_int(cmd, a, v, lo, 1 << 20, dst)) return 2;
    }
    if (cli_require_model(cmd, &mo)) return 2;
    if (n_pp == 0 && n_tg == 0) {
        fprintf(stderr, "m40llm bench: nothing to do (-p 0 and -n 0)\n");
        return 2;
    }
    int need = (int)(n_pp > n_tg + 1 ? n_pp : n_tg + 1);
    if (mo.bp.n_ctx <= 0) mo.bp.n_ctx = need;
    if (mo.bp.n_ctx < need) {
        fprintf(stderr, "m40llm bench: -c %d is smaller than the %d tokens the tests need\n",
                mo.bp.n_ctx, need);
        return 2;
    }
    mo.bp.quiet = 1;

    int rc = 1;
    Err e = {{0}};
    int32_t *toks = NULL;
    float *logits = NULL;
    double *times = xmalloc(sizeof(double) * (size_t)reps);
    Engine *en = engine_open(mo.model, &mo.bp, &e);
    if (!en) {
        fprintf(stderr, "m40llm bench: %s\n", e.msg);
        goto out;
    }
    Backend *b = en->backend;
    const Model *m = en->model;
    int n_vocab = m->cfg.n_vocab;
    toks = xmalloc(sizeof(int32_t) * (size_t)need);
    Rng rng;
    rng_seed(&rng, 42);
    for (int i = 0; i < need; i++) toks[i] = (int32_t)(rng_next(&rng) % (uint64_t)n_vocab);
    logits = xmalloc(sizeof(float) * (size_t)n_vocab);

    double copy_gbs = 0, gemm_gflops = 0;
    if (b->peak && b->peak(b, &copy_gbs, &gemm_gflops, &e) != 0) {
        LOG_WARN("could not measure the device's peak rates: %s", e.msg);
        copy_gbs = gemm_gflops = 0;
    }
    uint64_t params = matmul_params(m);
    printf("model: %s (%s, %d layers, dim %d, vocab %d, %.1f M matmul params, %.1f MB weights "
           "per token)\n",
           mo.model, m->cfg.arch_name, m->cfg.n_layers, m->cfg.dim, n_vocab, params / 1e6,
           m->weight_bytes / 1e6);
    printf("backend: %s\n", b->desc[0] ? b->desc : b->name);
    if (copy_gbs > 0)
        printf("measured ceilings: copy %.1f GB/s, FP32 GEMM %.1f GFLOP/s\n", copy_gbs,
               gemm_gflops);
    else
        printf("measured ceilings: n/a\n");
    printf("\n| test | t/s | GB/s | %% of copy BW | GFLOP/s | %% of GEMM |\n");
    printf("| ---- | ---: | ---: | ---: | ---: | ---: |\n");
    fflush(stdout);

    for (int test = 0; test < 2; test++) {
        int n = (int)(test == 0 ? n_pp : n_tg);
        if (n == 0) continue;
        /* warm-up, then reps runs */
        for (int r = -1; r < reps; r++) {
            double t = test == 0 ? run_pp(b, toks, n, logits, &e) : run_tg(b, toks, n, logits, &e);
            if (t < 0) {
                fprintf(stderr, "m40llm bench: %s\n", e.msg);
                goto out;
            }
            if (r >= 0) times[r] = t;
        }
        qsort(times, (size_t)reps, sizeof(double), cmp_dbl);
        double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
        double tps = med > 0 ? n / med : 0;
        /* bytes read per token: all weights + the KV cache up to the mean position */
        int mid = test == 0 ? n / 2 : 1 + n / 2;
        double bytes = (double)m->weight_bytes + (double)model_kv_bytes_per_token(&m->cfg, mid);
        double gbs = bytes * tps / 1e9;
        double gflops = 2.0 * (double)params * tps / 1e9;
        char name[32], bw[32], fl[32];
        snprintf(name, sizeof name, "%s%d", test == 0 ? "pp" : "tg", n);
        if (copy_gbs > 0)
            snprintf(bw, sizeof bw, "%.1f%%", 100 * gbs / copy_gbs);
        else
            snprintf(bw, sizeof bw, "n/a");
        if (gemm_gflops > 0)
            snprintf(fl, sizeof fl, "%.1f%%", 100 * gflops / gemm_gflops);
        else
            snprintf(fl, sizeof fl, "n/a");
        /* pp reads the weights once per ubatch, not per token: no bandwidth figure */
        if (test == 0)
            printf("| %s | %.1f | - | - | %.1f | %s |\n", name, tps, gflops, fl);
        else
            printf("| %s | %.1f | %.2f | %s | %.1f | - |\n", name, tps, gbs, bw, gflops);
        fflush(stdout);
    }
    rc = 0;
out:
    free(times);
    free(toks);
    free(logits);
    engine_close(en);
    return rc;
}
