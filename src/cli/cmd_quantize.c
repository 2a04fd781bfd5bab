/* cmd_quantize.c - `m40llm quantize IN.gguf OUT.gguf TYPE`: converts a GGUF
 * model's weight matrices to another type, copying every metadata key
 * (general.file_type set to llama.cpp's ftype value).
 *
 * Per-tensor types follow llama.cpp's llama_tensor_get_type for the
 * llama-family tensors (no imatrix, no MoE):
 *   - only 2-D tensors named *.weight are converted; 1-D tensors (norms,
 *     biases) are written as F32;
 *   - quantized ftypes: output.weight (token_embd.weight when the output is
 *     tied) -> Q6_K (Q8_0 when its row length is not a multiple of 256);
 *   - Q2_K: attn_v -> Q4_K if n_head/n_head_kv >= 4 else Q3_K; ffn_down and
 *     attn_output -> Q3_K;
 *   - Q3_K_M: attn_v -> Q5_K for the first 2 layers, else Q4_K; ffn_down ->
 *     Q5_K for layers < n/16, else Q4_K; attn_output -> Q4_K;
 *   - Q3_K_L: attn_v, ffn_down, attn_output -> Q5_K;
 *   - Q4_K_M / Q5_K_M: attn_v and ffn_down -> Q6_K on the use_more_bits
 *     layers (first and last eighth, and every third in between);
 *   - Q4_K_S: attn_v -> Q5_K for layers < 4; ffn_down -> Q5_K for layers <
 *     n/8;
 *   - a K-quant choice for a tensor whose row length is not a multiple of
 *     256 falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K ->
 *     Q4_0 (llama.cpp now uses IQ4_NL there, which m40llm does not support).
 * --pure gives every 2-D weight the base type. */
#include <errno.h>
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#define CMD "quantize"

typedef enum {
    MIX_NONE, /* plain types: every 2-D weight gets the base type */
    MIX_LEGACY,
    MIX_Q2_K,
    MIX_Q3_K_S,
    MIX_Q3_K_M,
    MIX_Q3_K_L,
    MIX_Q4_K_S,
    MIX_Q4_K_M,
    MIX_Q5_K_S,
    MIX_Q5_K_M,
    MIX_Q6_K,
} Mix;

typedef struct FType {
    const char *name;
    uint32_t ftype; /* llama_ftype */
    uint32_t base;  /* GgmlType */
    Mix mix;
} FType;

static const FType FTYPES[] = {
    {"f32", 0, GGML_TYPE_F32, MIX_NONE},        {"f16", 1, GGML_TYPE_F16, MIX_NONE},
    {"bf16", 32, GGML_TYPE_BF16, MIX_NONE},     {"q4_0", 2, GGML_TYPE_Q4_0, MIX_LEGACY},
    {"q4_1", 3, GGML_TYPE_Q4_1, MIX_LEGACY},    {"q8_0", 7, GGML_TYPE_Q8_0, MIX_LEGACY},
    {"q5_0", 8, GGML_TYPE_Q5_0, MIX_LEGACY},    {"q5_1", 9, GGML_TYPE_Q5_1, MIX_LEGACY},
    {"q2_k", 10, GGML_TYPE_Q2_K, MIX_Q2_K},     {"q3_k_s", 11, GGML_TYPE_Q3_K, MIX_Q3_K_S},
    {"q3_k_m", 12, GGML_TYPE_Q3_K, MIX_Q3_K_M}, {"q3_k", 12, GGML_TYPE_Q3_K, MIX_Q3_K_M},
    {"q3_k_l", 13, GGML_TYPE_Q3_K, MIX_Q3_K_L}, {"q4_k_s", 14, GGML_TYPE_Q4_K, MIX_Q4_K_S},
    {"q4_k_m", 15, GGML_TYPE_Q4_K, MIX_Q4_K_M}, {"q4_k", 15, GGML_TYPE_Q4_K, MIX_Q4_K_M},
    {"q5_k_s", 16, GGML_TYPE_Q5_K, MIX_Q5_K_S}, {"q5_k_m", 17, GGML_TYPE_Q5_K, MIX_Q5_K_M},
    {"q5_k", 17, GGML_TYPE_Q5_K, MIX_Q5_K_M},   {"q6_k", 18, GGML_TYPE_Q6_K, MIX_Q6_K},
};
#define N_FTYPES (int)(sizeof FTYPES / sizeof FTYPES[0])

static void usage(FILE *out) {
    fprintf(out,
            "usage: m40llm quantize IN.gguf OUT.gguf TYPE [--allow-requantize] [--pure] [-t N]\n\n"
            "Converts a GGUF model's weight matrices to TYPE, copying all metadata.\n"
            "TYPE: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l q4_k_s\n"
            "      q4_k_m q5_k_s q5_k_m q6_k (q3_k, q4_k, q5_k = the _m mixes, as in\n"
            "      llama-quantize). The mixes choose per-tensor types like llama.cpp\n"
            "      (e.g. q4_k_m: output.weight and some attn_v/ffn_down layers Q6_K).\n"
            "1-D tensors (norms, biases) are kept F32. Sources: F32, F16, BF16, Q8_0;\n"
            "other quantized sources only with --allow-requantize (quality loss).\n\n"
            "options:\n"
            "  --allow-requantize      accept 2-6 bit quantized input tensors\n"
            "  --pure                  every weight matrix gets the base type (no mix rules)\n"
            "  -t, --threads N         threads (default: all cores)\n"
            "  -v, --log-level L       logging (info lists every tensor)\n"
            "  -h, --help              this help\n");
}

/* llama.cpp's use_more_bits: first and last eighth, and every third layer
 * in between. */
static int use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Target type of a 2-D weight tensor. */
static uint32_t pick_type(const FType *ft, int pure, const char *name, int64_t ne0, int has_output,
                          int n_layer, int n_gqa) {
    uint32_t t = ft->base;
    if (ft->mix == MIX_NONE || pure) goto check;
    int layer = -1;
    if (sscanf(name, "blk.%d.", &layer) != 1) layer = -1;
    if (!strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight"))) {
        if (ne0 % 256)
            t = GGML_TYPE_Q8_0;
        else if (t != GGML_TYPE_Q8_0)
            t = GGML_TYPE_Q6_K;
    } else if (ends_with(name, "attn_v.weight") && layer >= 0) {
        switch (ft->mix) {
        case MIX_Q2_K:
            t = n_gqa >= 4 ? GGML_TYPE_Q4_K : GGML_TYPE_Q3_K;
            break;
        case MIX_Q3_K_M:
            t = layer < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
            break;
        case MIX_Q3_K_L:
            t = GGML_TYPE_Q5_K;
            break;
        case MIX_Q4_K_M:
        case MIX_Q5_K_M:
            if (use_more_bits(layer, n_layer)) t = GGML_TYPE_Q6_K;
            break;
        case MIX_Q4_K_S:
            if (layer < 4) t = GGML_TYPE_Q5_K;
            break;
        default:
            break;
        }
    } else if (ends_with(name, "ffn_down.weight") && layer >= 0) {
        switch (ft->mix) {
        case MIX_Q2_K:
            t = GGML_TYPE_Q3_K;
            break;
        case MIX_Q3_K_M:
            t = layer < n_layer / 16 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
            break;
        case MIX_Q3_K_L:
            t = GGML_TYPE_Q5_K;
            break;
        case MIX_Q4_K_M:
        case MIX_Q5_K_M:
            if (use_more_bits(layer, n_layer)) t = GGML_TYPE_Q6_K;
            break;
        case MIX_Q4_K_S:
            if (layer < n_layer / 8) t = GGML_TYPE_Q5_K;
            break;
        default:
            break;
        }
    } else if (ends_with(name, "attn_output.weight") && layer >= 0) {
        switch (ft->mix) {
        case MIX_Q2_K:
            t = GGML_TYPE_Q3_K;
            break;
        case MIX_Q3_K_M:
            t = GGML_TYPE_Q4_K;
            break;
        case MIX_Q3_K_L:
            t = GGML_TYPE_Q5_K;
            break;
        default:
            break;
        }
    }
check:
    if (ne0 % quant_block_size(t)) {
        switch (t) {
        case GGML_TYPE_Q2_K:
        case GGML_TYPE_Q3_K:
            t = GGML_TYPE_Q4_0;
            break;
        case GGML_TYPE_Q4_K:
            t = GGML_TYPE_Q5_0;
            break;
        case GGML_TYPE_Q5_K:
            t = GGML_TYPE_Q5_1;
            break;
        case GGML_TYPE_Q6_K:
            t = GGML_TYPE_Q8_0;
            break;
        default:
            break;
        }
        if (ne0 % quant_block_size(t)) t = GGML_TYPE_F16; /* not even a 32 multiple */
    }
    return t;
}

typedef struct Plan {
    const GgufTensor *src;
    uint32_t type;
} Plan;

static int run(const char *in, const char *out, const FType *ft, int pure, int allow_requant,
               int threads) {
    Err e;
    GgufFile *g = gguf_open(in, &e);
    if (!g) {
        fprintf(stderr, "m40llm quantize: %s\n", e.msg);
        return 1;
    }
    int rc = 1;
    FILE *fp = NULL;
    GgufWriter *w = NULL;
    uint8_t *buf = NULL;
    float *scratch = NULL;
    Plan *plan = xcalloc(g->n_tensors ? g->n_tensors : 1, sizeof *plan);

    const char *arch = NULL;
    uint32_t n_layer = 0, n_head = 1, n_head_kv = 0;
    char key[160];
    if (gguf_get_str_opt(g, "general.architecture", &arch, &e) == 0 && arch) {
        snprintf(key, sizeof key, "%s.block_count", arch);
        gguf_get_u32_opt(g, key, 0, &n_layer, &e);
        snprintf(key, sizeof key, "%s.attention.head_count", arch);
        gguf_get_u32_opt(g, key, 1, &n_head, &e);
        snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
        gguf_get_u32_opt(g, key, n_head, &n_head_kv, &e);
    }
    const int n_gqa = n_head_kv ? (int)(n_head / n_head_kv) : 1;
    const int has_output = gguf_find_tensor(g, "output.weight") != NULL;

    int any_quant = 0, warned = 0;
    int64_t max_cols = 1;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GgufTensor *t = &g->tensors[i];
        plan[i].src = t;
        if ((int64_t)t->ne[0] > max_cols) max_cols = (int64_t)t->ne[0];
        if (!quant_supported(t->type)) {
            fprintf(stderr,
                    "m40llm quantize: %s: tensor '%s' has type %s, which m40llm cannot read\n", in,
                    t->name, ggml_type_name(t->type));
            goto done;
        }
        const int is_matrix = t->n_dims >= 2 && ends_with(t->name, "weight");
        if (!is_matrix) {
            plan[i].type = GGML_TYPE_F32;
            continue;
        }
        plan[i].type =
            pick_type(ft, pure, t->name, (int64_t)t->ne[0], has_output, (int)n_layer, n_gqa);
        if (quant_block_size(plan[i].type) > 1) any_quant = 1;
        const int ok_src = t->type == GGML_TYPE_F32 || t->type == GGML_TYPE_F16 ||
                           t->type == GGML_TYPE_BF16 || t->type == GGML_TYPE_Q8_0 ||
                           t->type == plan[i].type;
        if (!ok_src) {
            if (!allow_requant) {
                fprintf(stderr,
                        "m40llm quantize: %s: tensor '%s' is already quantized (%s); "
                        "requantizing loses quality: pass --allow-requantize to do it anyway\n",
                        in, t->name, ggml_type_name(t->type));
                goto done;
            }
            if (!warned++)
                log_msg(LOG_LEVEL_WARN,
                        "quantize: requantizing %s tensors (e.g. '%s'): expect extra quality loss",
                        ggml_type_name(t->type), t->name);
        }
    }

    w = gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const GgufKV *kv = &g->kv[i];
        if (!strcmp(kv->key, "general.file_type") ||
            !strcmp(kv->key, "general.quantization_version"))
            continue;
        gguf_writer_set_kv(w, kv);
    }
    gguf_writer_set_u32(w, "general.file_type", ft->ftype);
    if (any_quant) gguf_writer_set_u32(w, "general.quantization_version", 2);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        gguf_writer_add_tensor(w, plan[i].src->name, plan[i].type, plan[i].src->n_dims,
                               plan[i].src->ne);
    fp = fopen(out, "wb");
    if (!fp) {
        fprintf(stderr, "m40llm quantize: %s: cannot create: %s\n", out, strerror(errno));
        goto done;
    }
    if (gguf_writer_write_header(w, fp, &e)) goto io_fail;

    const int nthr = threads > 0 ? threads : omp_get_max_threads();
    scratch = xmalloc((size_t)nthr * (size_t)max_cols * sizeof(float));
    size_t buf_cap = 0;
    const size_t CHUNK = 32u << 20;
    double t0 = time_now();
    uint64_t in_bytes = 0, out_bytes = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GgufTensor *t = plan[i].src;
        const uint32_t ty = plan[i].type;
        const int64_t cols = (int64_t)t->ne[0], rows = (int64_t)(t->n_elements / t->ne[0]);
        const size_t srb = quant_row_bytes(t->type, cols), drb = quant_row_bytes(ty, cols);
        log_msg(LOG_LEVEL_INFO, "quantize: [%3" PRIu64 "/%3" PRIu64 "] %-32s %-5s -> %s", i + 1,
                g->n_tensors, t->name, ggml_type_name(t->type), ggml_type_name(ty));
        in_bytes += t->nbytes;
        out_bytes += (uint64_t)drb * (uint64_t)rows;
        if (ty == t->type) { /* same type: copy */
            if (gguf_writer_write_tensor_data(w, fp, (int)i, t->data, &e)) goto io_fail;
            continue;
        }
        int64_t rows_per = (int64_t)(CHUNK / (drb ? drb : 1));
        if (rows_per < 1) rows_per = 1;
        if (rows_per > rows) rows_per = rows;
        if ((size_t)rows_per * drb > buf_cap) {
            free(buf);
            buf_cap = (size_t)rows_per * drb;
            buf = xmalloc(buf_cap);
        }
        const uint8_t *src = t->data;
        for (int64_t r0 = 0; r0 < rows; r0 += rows_per) {
            const int64_t r1 = r0 + rows_per < rows ? r0 + rows_per : rows;
#pragma omp parallel for num_threads(nthr) schedule(static)
            for (int64_t r = r0; r < r1; r++) {
                float *x = scratch + (size_t)omp_get_thread_num() * (size_t)max_cols;
                quant_dequant_row(t->type, src + (size_t)r * srb, x, cols);
                quant_quantize_row(ty, x, buf + (size_t)(r - r0) * drb, cols);
            }
            if (gguf_writer_write_tensor_part(w, fp, (int)i, buf, (uint64_t)(r1 - r0) * drb, &e))
                goto io_fail;
        }
    }
    if (fflush(fp) != 0 || ferror(fp)) {
        err_set(&e, "%s: write failed: %s", out, strerror(errno));
        goto io_fail;
    }
    int cr = fclose(fp);
    fp = NULL;
    if (cr != 0) {
        err_set(&e, "%s: write failed: %s", out, strerror(errno));
        goto io_fail;
    }
    fprintf(stderr, "m40llm quantize: %s (%.1f MB) -> %s %s (%.1f MB) in %.2f s\n", in,
            (double)in_bytes / 1e6, out, ft->name, (double)out_bytes / 1e6, time_now() - t0);
    rc = 0;
    goto done;
io_fail:
    fprintf(stderr, "m40llm quantize: %s\n", e.msg);
    if (fp) fclose(fp);
    fp = NULL;
    remove(out);
done:
    if (fp) fclose(fp);
    free(buf);
    free(scratch);
    free(plan);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0, allow = 0, pure = 0;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int c = cli_common_option(CMD, argc, argv, &i);
        if (c < 0) return 2;
        if (c > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--allow-requantize")) {
            allow = 1;
        } else if (!strcmp(a, "--pure")) {
            pure = 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            const char *v = cli_option_value(CMD, argc, argv, &i);
            if (!v || cli_parse_int(CMD, a, v, 1, 1024, &threads)) return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "m40llm quantize: unknown option '%s' (m40llm quantize --help)\n", a);
            return 2;
        } else {
            if (npos == 3) {
                fprintf(stderr, "m40llm quantize: unexpected argument '%s'\n", a);
                return 2;
            }
            pos[npos++] = a;
        }
    }
    if (npos != 3) {
        fprintf(stderr,
                "m40llm quantize: expected IN.gguf OUT.gguf TYPE (m40llm quantize --help)\n");
        return 2;
    }
    const FType *ft = NULL;
    for (int k = 0; k < N_FTYPES; k++)
        if (!strcasecmp(pos[2], FTYPES[k].name)) ft = &FTYPES[k];
    if (!ft) {
        fprintf(stderr,
                "m40llm quantize: TYPE '%s' is not one of f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 "
                "q2_k q3_k q3_k_s q3_k_m q3_k_l q4_k q4_k_s q4_k_m q5_k q5_k_s q5_k_m q6_k\n",
                pos[2]);
        return 2;
    }
    if (!strcmp(pos[0], pos[1])) {
        fprintf(stderr, "m40llm quantize: IN and OUT are the same file\n");
        return 2;
    }
    return run(pos[0], pos[1], ft, pure, allow, (int)threads);
}
