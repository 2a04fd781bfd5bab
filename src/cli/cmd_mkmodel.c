/* cmd_mkmodel.c - `m40llm mkmodel OUT.gguf ...`: writes a llama-family GGUF
 * (llama or qwen2) with seeded random weights and a byte-level
 * SentencePiece vocabulary, named and laid out as llama.cpp writes models.
 *
 * Weights: uniform with standard deviation 1/sqrt(ne[0]) (the input
 * dimension); norm weights 1.0 (F32); qwen2 q/k/v biases uniform in
 * [-0.02, 0.02] (F32). Every row is generated from a counter-based hash of
 * (seed, tensor index, row, column), so the file is identical for any
 * thread count. Rows are generated and quantized in parallel (OpenMP) in
 * chunks of about 32 MB and streamed to disk. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
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

#define CMD "mkmodel"

typedef struct MkModelSpec {
    const char *out;
    const char *arch;
    const char *name;
    int qwen2, tied, threads;
    uint32_t type;
    int64_t dim, layers, heads, kv_heads, ffn, vocab, ctx;
    float rope_base, eps;
    uint64_t seed;
} MkModelSpec;

static void mkmodel_spec_default(MkModelSpec *s) {
    memset(s, 0, sizeof *s);
    s->seed = 1;
}

/* llama_ftype of a model whose matrices are all of one type. */
static uint32_t ftype_of(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32:
        return 0;
    case GGML_TYPE_F16:
        return 1;
    case GGML_TYPE_Q4_0:
        return 2;
    case GGML_TYPE_Q4_1:
        return 3;
    case GGML_TYPE_Q8_0:
        return 7;
    case GGML_TYPE_Q5_0:
        return 8;
    case GGML_TYPE_Q5_1:
        return 9;
    case GGML_TYPE_Q2_K:
        return 10;
    case GGML_TYPE_Q3_K:
        return 11; /* Q3_K_S: all Q3_K */
    case GGML_TYPE_Q4_K:
        return 14; /* Q4_K_S */
    case GGML_TYPE_Q5_K:
        return 16; /* Q5_K_S */
    case GGML_TYPE_Q6_K:
        return 18;
    case GGML_TYPE_BF16:
        return 32;
    default:
        return 0;
    }
}

static int mkmodel_validate(const MkModelSpec *s, Err *e) {
    if (s->dim % s->heads)
        return err_set(e, "--dim %" PRId64 " is not a multiple of --heads %" PRId64, s->dim,
                       s->heads);
    if ((s->dim / s->heads) % 2)
        return err_set(e, "head dimension %" PRId64 " (--dim / --heads) must be even for RoPE",
                       s->dim / s->heads);
    if (s->heads % s->kv_heads)
        return err_set(e, "--heads %" PRId64 " is not a multiple of --kv-heads %" PRId64, s->heads,
                       s->kv_heads);
    if (s->vocab < 259)
        return err_set(e,
                       "--vocab %" PRId64 " is too small: the byte vocabulary needs >= 259 "
                       "(<unk> <s> </s> + 256 byte tokens)",
                       s->vocab);
    const int64_t bs = quant_block_size(s->type);
    if (s->dim % bs)
        return err_set(e,
                       "--dim %" PRId64 " is not a multiple of %" PRId64 ", the block size of %s",
                       s->dim, bs, ggml_type_name(s->type));
    if (s->ffn % bs)
        return err_set(e,
                       "--ffn %" PRId64 " is not a multiple of %" PRId64 ", the block size of %s",
                       s->ffn, bs, ggml_type_name(s->type));
    return 0;
}

/* ---- deterministic generation: counter-based splitmix64 hashing */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Row r of tensor t: n floats uniform in [-a, a). */
static void gen_row(uint64_t seed, uint64_t t, uint64_t r, float a, float *dst, int64_t n) {
    const uint64_t key = mix64(mix64(seed ^ 0x9e3779b97f4a7c15ULL) + mix64(t + 1) * 31 + r);
    const float scale = 2.0f * a * 0x1p-24f;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
        uint64_t h = mix64(key + (uint64_t)i * 0x9e3779b97f4a7c15ULL);
        dst[i] = (float)(uint32_t)(h >> 40) * scale - a;
        dst[i + 1] = (float)(uint32_t)((h >> 8) & 0xffffffu) * scale - a;
    }
    if (i < n)
        dst[i] =
            (float)(uint32_t)(mix64(key + (uint64_t)i * 0x9e3779b97f4a7c15ULL) >> 40) * scale - a;
}

typedef enum { GEN_RANDOM, GEN_ONES } GenKind;

typedef struct TSpec {
    char name[96];
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[2];
    GenKind kind;
    float amp; /* uniform amplitude */
} TSpec;

static void add_t(TSpec *ts, int *n, const char *name, uint32_t type, uint32_t n_dims, int64_t ne0,
                  int64_t ne1, GenKind kind, float amp) {
    TSpec *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = (uint64_t)ne0;
    t->ne[1] = (uint64_t)ne1;
    t->kind = kind;
    t->amp = amp;
}

/* uniform amplitude for standard deviation 1/sqrt(fan_in) */
static float amp_for(int64_t fan_in) { return sqrtf(3.0f / (float)fan_in); }

/* Filler vocabulary pieces: "▁", then for length 1, 2, 3, ... every string
 * over a frequency-ordered alphabet, each with the "▁" prefix and without. */
static void vocab_piece(int64_t k, char *buf, size_t cap) {
    static const char ALPHA[] = "etaoinshrdlcumwfgypbvkjxqz";
    if (k == 0) {
        snprintf(buf, cap, "\xe2\x96\x81");
        return;
    }
    k -= 1;
    int64_t len = 1, count = 26;
    while (k >= 2 * count) {
        k -= 2 * count;
        len++;
        count *= 26;
    }
    const int space = k < count; /* first the "▁x" half, then plain */
    int64_t idx = space ? k : k - count;
    size_t o = 0;
    if (space) o += (size_t)snprintf(buf, cap, "\xe2\x96\x81");
    char tmp[16];
    for (int64_t j = len - 1; j >= 0; j--) {
        tmp[j] = ALPHA[idx % 26];
        idx /= 26;
    }
    memcpy(buf + o, tmp, (size_t)len);
    buf[o + (size_t)len] = 0;
}

static void set_vocab(GgufWriter *w, int64_t V) {
    char **tok = xmalloc((size_t)V * sizeof *tok);
    float *score = xmalloc((size_t)V * sizeof *score);
    int32_t *tt = xmalloc((size_t)V * sizeof *tt);
    tok[0] = xstrdup("<unk>"), tt[0] = 2;
    tok[1] = xstrdup("<s>"), tt[1] = 3;
    tok[2] = xstrdup("</s>"), tt[2] = 3;
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        tok[3 + b] = xstrdup(s);
        tt[3 + b] = 6;
    }
    for (int64_t i = 0; i < 259; i++) score[i] = 0.0f;
    for (int64_t i = 259; i < V; i++) {
        char s[64];
        vocab_piece(i - 259, s, sizeof s);
        tok[i] = xstrdup(s);
        tt[i] = 1;
        score[i] = -(float)(i - 259); /* earlier (shorter, commoner) pieces score higher */
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)V);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, score, (uint64_t)V);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, tt, (uint64_t)V);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    for (int64_t i = 0; i < V; i++) free(tok[i]);
    free(tok), free(score), free(tt);
}

static int mkmodel_write(const MkModelSpec *s, uint64_t *bytes_out, Err *e) {
    const char *A = s->arch;
    const int64_t hd = s->dim / s->heads, kvd = hd * s->kv_heads;
    const int n_max = 3 + (int)s->layers * 12;
    TSpec *ts = xcalloc((size_t)n_max, sizeof *ts);
    int nt = 0;
    char nm[96];
    const uint32_t T = s->type, F32 = GGML_TYPE_F32;
    add_t(ts, &nt, "token_embd.weight", T, 2, s->dim, s->vocab, GEN_RANDOM, amp_for(s->dim));
    add_t(ts, &nt, "output_norm.weight", F32, 1, s->dim, 1, GEN_ONES, 0);
    if (!s->tied)
        add_t(ts, &nt, "output.weight", T, 2, s->dim, s->vocab, GEN_RANDOM, amp_for(s->dim));
    for (int64_t l = 0; l < s->layers; l++) {
#define BLK(suffix) (snprintf(nm, sizeof nm, "blk.%" PRId64 ".%s", l, suffix), nm)
        add_t(ts, &nt, BLK("attn_norm.weight"), F32, 1, s->dim, 1, GEN_ONES, 0);
        add_t(ts, &nt, BLK("attn_q.weight"), T, 2, s->dim, s->dim, GEN_RANDOM, amp_for(s->dim));
        if (s->qwen2) add_t(ts, &nt, BLK("attn_q.bias"), F32, 1, s->dim, 1, GEN_RANDOM, 0.02f);
        add_t(ts, &nt, BLK("attn_k.weight"), T, 2, s->dim, kvd, GEN_RANDOM, amp_for(s->dim));
        if (s->qwen2) add_t(ts, &nt, BLK("attn_k.bias"), F32, 1, kvd, 1, GEN_RANDOM, 0.02f);
        add_t(ts, &nt, BLK("attn_v.weight"), T, 2, s->dim, kvd, GEN_RANDOM, amp_for(s->dim));
        if (s->qwen2) add_t(ts, &nt, BLK("attn_v.bias"), F32, 1, kvd, 1, GEN_RANDOM, 0.02f);
        add_t(ts, &nt, BLK("attn_output.weight"), T, 2, s->dim, s->dim, GEN_RANDOM,
              amp_for(s->dim));
        add_t(ts, &nt, BLK("ffn_norm.weight"), F32, 1, s->dim, 1, GEN_ONES, 0);
        add_t(ts, &nt, BLK("ffn_gate.weight"), T, 2, s->dim, s->ffn, GEN_RANDOM, amp_for(s->dim));
        add_t(ts, &nt, BLK("ffn_up.weight"), T, 2, s->dim, s->ffn, GEN_RANDOM, amp_for(s->dim));
        add_t(ts, &nt, BLK("ffn_down.weight"), T, 2, s->ffn, s->dim, GEN_RANDOM, amp_for(s->ffn));
#undef BLK
    }

    GgufWriter *w = gguf_writer_new();
    char key[128], defname[64];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", A, suffix), key)
    gguf_writer_set_str(w, "general.architecture", A);
    snprintf(defname, sizeof defname, "mkmodel-%s", A);
    gguf_writer_set_str(w, "general.name", s->name ? s->name : defname);
    gguf_writer_set_u32(w, K("context_length"), (uint32_t)s->ctx);
    gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)s->dim);
    gguf_writer_set_u32(w, K("block_count"), (uint32_t)s->layers);
    gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)s->ffn);
    gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)s->heads);
    gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)s->kv_heads);
    gguf_writer_set_u32(w, K("rope.dimension_count"), (uint32_t)hd);
    gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), s->eps);
    gguf_writer_set_f32(w, K("rope.freq_base"), s->rope_base);
#undef K
    gguf_writer_set_u32(w, "general.file_type", ftype_of(T));
    if (quant_block_size(T) > 1) gguf_writer_set_u32(w, "general.quantization_version", 2);
    set_vocab(w, s->vocab);
    for (int i = 0; i < nt; i++)
        gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne);

    int rc = -1;
    uint8_t *buf = NULL;
    float *scratch = NULL;
    FILE *fp = fopen(s->out, "wb");
    if (!fp) {
        err_set(e, "%s: cannot create: %s", s->out, strerror(errno));
        goto done;
    }
    if (gguf_writer_write_header(w, fp, e)) goto fail;
    const int nthr = s->threads > 0 ? s->threads : omp_get_max_threads();
    const size_t CHUNK = 32u << 20;
    int64_t max_cols = s->dim > s->ffn ? s->dim : s->ffn;
    if (kvd > max_cols) max_cols = kvd;
    scratch = xmalloc((size_t)nthr * (size_t)max_cols * sizeof(float));
    size_t buf_cap = 0;
    for (int ti = 0; ti < nt; ti++) {
        const TSpec *t = &ts[ti];
        const int64_t cols = (int64_t)t->ne[0], rows = t->n_dims > 1 ? (int64_t)t->ne[1] : 1;
        const size_t rb = quant_row_bytes(t->type, cols);
        int64_t rows_per = (int64_t)(CHUNK / rb);
        if (rows_per < 1) rows_per = 1;
        if (rows_per > rows) rows_per = rows;
        if ((size_t)rows_per * rb > buf_cap) {
            free(buf);
            buf_cap = (size_t)rows_per * rb;
            buf = xmalloc(buf_cap);
        }
        for (int64_t r0 = 0; r0 < rows; r0 += rows_per) {
            const int64_t r1 = r0 + rows_per < rows ? r0 + rows_per : rows;
#pragma omp parallel for num_threads(nthr) schedule(static)
            for (int64_t r = r0; r < r1; r++) {
                float *x = scratch + (size_t)omp_get_thread_num() * (size_t)max_cols;
                if (t->kind == GEN_ONES)
                    for (int64_t i = 0; i < cols; i++) x[i] = 1.0f;
                else
                    gen_row(s->seed, (uint64_t)ti, (uint64_t)r, t->amp, x, cols);
                quant_quantize_row(t->type, x, buf + (size_t)(r - r0) * rb, cols);
            }
            if (gguf_writer_write_tensor_part(w, fp, ti, buf, (uint64_t)(r1 - r0) * rb, e))
                goto fail;
        }
    }
    if (fflush(fp) != 0 || ferror(fp)) {
        err_set(e, "%s: write failed: %s", s->out, strerror(errno));
        goto fail;
    }
    *bytes_out = (uint64_t)ftell(fp);
    if (fclose(fp) != 0) {
        fp = NULL;
        err_set(e, "%s: write failed: %s", s->out, strerror(errno));
        goto fail;
    }
    fp = NULL;
    rc = 0;
    goto done;
fail:
    if (fp) fclose(fp);
    remove(s->out);
done:
    free(buf);
    free(scratch);
    free(ts);
    gguf_writer_free(w);
    return rc;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: m40llm mkmodel OUT.gguf --dim D --layers L --heads H --ffn F --vocab V\n"
            "                      [--arch llama|qwen2] [--kv-heads K] [--type TYPE] [--tied]\n"
            "                      [--seed S] [--ctx N] [--name NAME] [--rope-base B]\n"
            "                      [--eps E] [-t N]\n\n"
            "Writes a llama-family GGUF model with seeded random weights (uniform, std\n"
            "1/sqrt(fan_in)), norm weights 1.0 and a byte-level SentencePiece vocabulary\n"
            "(<unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF>, then filler pieces),\n"
            "so any text tokenizes. Output is identical for any thread count.\n\n"
            "options:\n"
            "  --arch A                llama (default) or qwen2 (adds F32 q/k/v biases)\n"
            "  --dim D                 embedding length (required)\n"
            "  --layers L              transformer blocks (required)\n"
            "  --heads H               attention heads (required; D %% H == 0, even head dim)\n"
            "  --kv-heads K            key/value heads (default H; H %% K == 0)\n"
            "  --ffn F                 feed-forward length (required)\n"
            "  --vocab V               vocabulary size (required, >= 259)\n"
            "  --tied                  no output.weight (the output reuses token_embd)\n"
            "  --type T                weight type of the matrices: f32 (default), f16, bf16,\n"
            "                          q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k,\n"
            "                          q6_k; D and F must be multiples of its block size\n"
            "  --seed S                RNG seed (default 1)\n"
            "  --ctx N                 context_length metadata (default 2048)\n"
            "  --name NAME             general.name (default mkmodel-<arch>)\n"
            "  --rope-base B           rope.freq_base (default 10000 llama, 1000000 qwen2)\n"
            "  --eps E                 RMSNorm epsilon (default 1e-5 llama, 1e-6 qwen2)\n"
            "  -t, --threads N         threads (default: all cores)\n"
            "  -v, --log-level L       logging\n"
            "  -h, --help              this help\n");
}

int cmd_mkmodel(int argc, char **argv) {
    MkModelSpec s;
    mkmodel_spec_default(&s);
    long dim = -1, layers = -1, heads = -1, kv = -1, ffn = -1, vocab = -1, ctx = 2048;
    long threads = 0;
    double rope = -1, eps = -1;
    const char *type_s = "f32";
    const char *arch = "llama";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int c = cli_common_option(CMD, argc, argv, &i);
        if (c < 0) return 2;
        if (c > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--tied")) {
            s.tied = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (s.out) {
                fprintf(stderr, "m40llm mkmodel: unexpected argument '%s' (one OUT.gguf)\n", a);
                return 2;
            }
            s.out = a;
            continue;
        }
        static const char *const WITH_ARG[] = {"--arch",     "--dim", "--layers", "--heads",
                                               "--kv-heads", "--ffn", "--vocab",  "--type",
                                               "--seed",     "--ctx", "--name",   "--rope-base",
                                               "--eps",      "-t",    "--threads"};
        int known = 0;
        for (size_t k = 0; k < sizeof WITH_ARG / sizeof WITH_ARG[0]; k++)
            known |= !strcmp(a, WITH_ARG[k]);
        if (!known) {
            fprintf(stderr, "m40llm mkmodel: unknown option '%s' (m40llm mkmodel --help)\n", a);
            return 2;
        }
        const char *v = cli_option_value(CMD, argc, argv, &i);
        if (!v) return 2;
        const long BIG = 1L << 30;
        if (!strcmp(a, "--arch")) {
            arch = v;
        } else if (!strcmp(a, "--dim")) {
            if (cli_parse_int(CMD, a, v, 1, BIG, &dim)) return 2;
        } else if (!strcmp(a, "--layers")) {
            if (cli_parse_int(CMD, a, v, 1, 100000, &layers)) return 2;
        } else if (!strcmp(a, "--heads")) {
            if (cli_parse_int(CMD, a, v, 1, 1 << 20, &heads)) return 2;
        } else if (!strcmp(a, "--kv-heads")) {
            if (cli_parse_int(CMD, a, v, 1, 1 << 20, &kv)) return 2;
        } else if (!strcmp(a, "--ffn")) {
            if (cli_parse_int(CMD, a, v, 1, BIG, &ffn)) return 2;
        } else if (!strcmp(a, "--vocab")) {
            if (cli_parse_int(CMD, a, v, 1, 1L << 24, &vocab)) return 2;
        } else if (!strcmp(a, "--type")) {
            type_s = v;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_u64(CMD, a, v, &s.seed)) return 2;
        } else if (!strcmp(a, "--ctx")) {
            if (cli_parse_int(CMD, a, v, 1, 1L << 24, &ctx)) return 2;
        } else if (!strcmp(a, "--name")) {
            s.name = v;
        } else if (!strcmp(a, "--rope-base")) {
            if (cli_parse_float(CMD, a, v, 1e-3, 1e12, &rope)) return 2;
        } else if (!strcmp(a, "--eps")) {
            if (cli_parse_float(CMD, a, v, 1e-12, 1.0, &eps)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (cli_parse_int(CMD, a, v, 1, 1024, &threads)) return 2;
        }
    }
    if (!s.out) {
        fprintf(stderr, "m40llm mkmodel: missing OUT.gguf (m40llm mkmodel --help)\n");
        return 2;
    }
    struct {
        const char *opt;
        long v;
    } req[] = {{"--dim", dim},
               {"--layers", layers},
               {"--heads", heads},
               {"--ffn", ffn},
               {"--vocab", vocab}};
    for (size_t k = 0; k < sizeof req / sizeof req[0]; k++)
        if (req[k].v < 0) {
            fprintf(stderr, "m40llm mkmodel: %s is required\n", req[k].opt);
            return 2;
        }
    if (!strcmp(arch, "llama"))
        s.qwen2 = 0;
    else if (!strcmp(arch, "qwen2"))
        s.qwen2 = 1;
    else {
        fprintf(stderr, "m40llm mkmodel: --arch: '%s' is not llama or qwen2\n", arch);
        return 2;
    }
    s.arch = arch;
    s.type = (uint32_t)ggml_type_from_name(type_s);
    if (ggml_type_from_name(type_s) < 0 || !quant_can_quantize(s.type) ||
        !strcasecmp(type_s, "q8_1") || !strcasecmp(type_s, "q8_k")) {
        fprintf(stderr,
                "m40llm mkmodel: --type: '%s' is not one of f32, f16, bf16, q8_0, q4_0, q4_1, "
                "q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k\n",
                type_s);
        return 2;
    }
    s.dim = dim, s.layers = layers, s.heads = heads, s.kv_heads = kv < 0 ? heads : kv;
    s.ffn = ffn, s.vocab = vocab, s.ctx = ctx;
    s.rope_base = rope > 0 ? (float)rope : (s.qwen2 ? 1000000.0f : 10000.0f);
    s.eps = eps > 0 ? (float)eps : (s.qwen2 ? 1e-6f : 1e-5f);
    s.threads = (int)threads;
    Err e;
    if (mkmodel_validate(&s, &e)) {
        fprintf(stderr, "m40llm mkmodel: %s\n", e.msg);
        return 2;
    }
    double t0 = time_now();
    uint64_t bytes = 0;
    if (mkmodel_write(&s, &bytes, &e)) {
        fprintf(stderr, "m40llm mkmodel: %s\n", e.msg);
        return 1;
    }
    double dt = time_now() - t0;
    fprintf(stderr, "m40llm mkmodel: wrote %s: %.1f MB in %.2f s (%.0f MB/s)\n", s.out,
            (double)bytes / 1e6, dt, dt > 0 ? (double)bytes / 1e6 / dt : 0.0);
    return 0;
}
