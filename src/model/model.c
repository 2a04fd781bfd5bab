/* model.c - GGUF -> ModelConfig + weight views, with validation.
 *
 * Tensor names (ggml/llama.cpp convention):
 *   token_embd.weight (dim, n_vocab)        output_norm.weight (dim)
 *   output.weight (dim, n_vocab), optional (absent: tied to token_embd)
 *   blk.N.attn_norm.weight (dim)            blk.N.ffn_norm.weight (dim)
 *   blk.N.attn_q.weight (dim, n_heads*hd)   blk.N.attn_q.bias (n_heads*hd)    [qwen2]
 *   blk.N.attn_k.weight (dim, n_kv*hd)      blk.N.attn_k.bias (n_kv*hd)       [qwen2]
 *   blk.N.attn_v.weight (dim, n_kv*hd)      blk.N.attn_v.bias (n_kv*hd)       [qwen2]
 *   blk.N.attn_output.weight (n_heads*hd, dim)
 *   blk.N.ffn_gate.weight (dim, ffn)  blk.N.ffn_up.weight (dim, ffn)  blk.N.ffn_down.weight (ffn,
 * dim) (shapes written as ggml ne = [cols, rows]). Every tensor of the file must be one of these;
 * q/k/v biases are required for qwen2 and optional for llama. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "quant/quant.h"

/* ------------------------------------------------------------ config */

static int get_u32_key(const GgufFile *f, const char *arch, const char *suffix, int required,
                       uint32_t def, uint32_t *out, Err *e) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = required ? gguf_get_u32(f, key, out, e) : gguf_get_u32_opt(f, key, def, out, e);
    return rc;
}

static int get_f32_key(const GgufFile *f, const char *arch, const char *suffix, float def,
                       float *out, Err *e) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_f32_opt(f, key, def, out, e);
}

static int read_rope_scaling(const GgufFile *f, const char *arch, ModelConfig *c, Err *e) {
    char key[128];
    const char *type = NULL;
    c->rope_scale = 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (gguf_get_str_opt(f, key, &type, e) != 0) return -1;
    if (type && strcmp(type, "none") != 0) {
        if (strcmp(type, "linear") != 0)
            return err_set(e, "rope scaling type \"%s\" is not supported (only linear)", type);
        float factor = 0;
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        if (gguf_get_f32(f, key, &factor, e) != 0) return -1;
        if (!(factor > 0)) return err_set(e, "%s: invalid factor %g", key, (double)factor);
        c->rope_scale = 1.0f / factor;
        return 0;
    }
    float legacy = 0;
    snprintf(key, sizeof key, "%s.rope.scale_linear", arch);
    if (gguf_get_f32_opt(f, key, 0.0f, &legacy, e) != 0) return -1;
    if (legacy != 0 && legacy != 1) {
        if (!(legacy > 0)) return err_set(e, "%s: invalid factor %g", key, (double)legacy);
        c->rope_scale = 1.0f / legacy;
    }
    return 0;
}

static int read_config(const GgufFile *f, ModelConfig *c, Err *e) {
    memset(c, 0, sizeof *c);
    const char *arch = NULL;
    if (gguf_get_str(f, "general.architecture", &arch, e) != 0) return -1;
    if (strcmp(arch, "llama") == 0) {
        c->arch = ARCH_LLAMA;
        c->rope_neox = 0;
    } else if (strcmp(arch, "qwen2") == 0) {
        c->arch = ARCH_QWEN2;
        c->rope_neox = 1;
    } else {
        return err_set(e, "architecture \"%s\" is not supported (llama, qwen2)", arch);
    }
    snprintf(c->arch_name, sizeof c->arch_name, "%s", arch);

    uint32_t dim, n_layers, ffn, n_heads, n_kv, ctx, head_dim, v_dim, rope_dim;
    if (get_u32_key(f, arch, "embedding_length", 1, 0, &dim, e) ||
        get_u32_key(f, arch, "block_count", 1, 0, &n_layers, e) ||
        get_u32_key(f, arch, "feed_forward_length", 1, 0, &ffn, e) ||
        get_u32_key(f, arch, "attention.head_count", 1, 0, &n_heads, e))
        return -1;
    if (get_u32_key(f, arch, "attention.head_count_kv", 0, n_heads, &n_kv, e) ||
        get_u32_key(f, arch, "context_length", 0, 2048, &ctx, e))
        return -1;
    if (dim == 0 || n_layers == 0 || ffn == 0 || n_heads == 0 || n_kv == 0)
        return err_set(e,
                       "%s: zero dimension (embedding %u, blocks %u, ffn %u, heads %u, kv heads "
                       "%u)",
                       arch, dim, n_layers, ffn, n_heads, n_kv);
    if (dim > (1u << 20) || ffn > (1u << 22) || n_layers > 4096 || n_heads > 4096)
        return err_set(e, "%s: implausible dimensions (embedding %u, blocks %u, ffn %u, heads %u)",
                       arch, dim, n_layers, ffn, n_heads);
    if (n_heads % n_kv != 0)
        return err_set(e, "%s.attention.head_count %u is not a multiple of head_count_kv %u", arch,
                       n_heads, n_kv);
    uint32_t def_hd = dim % n_heads == 0 ? dim / n_heads : 0;
    if (get_u32_key(f, arch, "attention.key_length", 0, def_hd, &head_dim, e) ||
        get_u32_key(f, arch, "attention.value_length", 0, head_dim, &v_dim, e))
        return -1;
    if (head_dim == 0 || head_dim % 2 != 0 || head_dim > 1024)
        return err_set(e, "%s: invalid head dimension %u (embedding %u, heads %u)", arch, head_dim,
                       dim, n_heads);
    if (v_dim != head_dim)
        return err_set(e, "%s.attention.value_length %u differs from key_length %u (unsupported)",
                       arch, v_dim, head_dim);
    if (get_u32_key(f, arch, "rope.dimension_count", 0, head_dim, &rope_dim, e)) return -1;
    if (rope_dim > head_dim || rope_dim % 2 != 0)
        return err_set(e, "%s.rope.dimension_count %u is invalid (head dim %u)", arch, rope_dim,
                       head_dim);
    if (get_f32_key(f, arch, "rope.freq_base", 10000.0f, &c->rope_base, e) ||
        get_f32_key(f, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps, e))
        return -1;
    if (!(c->rope_base > 0)) return err_set(e, "%s.rope.freq_base must be > 0", arch);
    if (!(c->norm_eps >= 0)) return err_set(e, "%s.attention.layer_norm_rms_epsilon < 0", arch);
    if (read_rope_scaling(f, arch, c, e) != 0) return -1;

    c->dim = (int)dim;
    c->n_layers = (int)n_layers;
    c->ffn_dim = (int)ffn;
    c->n_heads = (int)n_heads;
    c->n_kv_heads = (int)n_kv;
    c->head_dim = (int)head_dim;
    c->rope_dim = (int)rope_dim;
    c->n_ctx_train = (int)(ctx > (1u << 30) ? (1u << 30) : ctx);
    return 0;
}

/* ------------------------------------------------------------ tensors */

static void fmt_shape(char *buf, size_t n, const uint64_t *ne, uint32_t n_dims) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (uint32_t i = 0; i < n_dims && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%llu", i ? ", " : "", (unsigned long long)ne[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

typedef enum TKind { TK_MATRIX, TK_VECTOR, TK_EMBD } TKind;

/* Binds tensor `name` of shape [ne0] (vector) or [ne0, ne1] (matrix) to *w.
 * optional: absence is fine (w->data stays NULL). */
static int bind(Model *m, const char *name, TKind kind, int64_t ne0, int64_t ne1, int optional,
                WTensor *w, Err *e) {
    const GgufFile *f = m->gguf;
    memset(w, 0, sizeof *w);
    const GgufTensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (optional) return 0;
        return err_set(e, "tensor %s is missing", name);
    }
    uint32_t want_dims = kind == TK_VECTOR ? 1 : 2;
    uint64_t want[2] = {(uint64_t)ne0, (uint64_t)ne1};
    int ok = t->n_dims == want_dims;
    for (uint32_t i = 0; ok && i < want_dims; i++) ok = t->ne[i] == want[i];
    if (!ok) {
        char sw[96], sf[96];
        fmt_shape(sw, sizeof sw, want, want_dims);
        fmt_shape(sf, sizeof sf, t->ne, t->n_dims);
        return err_set(e, "tensor %s: expected shape %s, found %s", name, sw, sf);
    }
    if (kind == TK_VECTOR) {
        if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16)
            return err_set(e, "tensor %s has type %s; norms and biases must be f32 or f16", name,
                           ggml_type_name(t->type));
    } else {
        if (!ggml_type_info(t->type) || !quant_supported(t->type))
            return err_set(e, "tensor %s has type %s, which m40-llm cannot run yet", name,
                           ggml_type_name(t->type));
        if (ggml_row_size(t->type, t->ne[0]) == 0)
            return err_set(e, "tensor %s: row length %llu is not a multiple of the %s block size",
                           name, (unsigned long long)t->ne[0], ggml_type_name(t->type));
    }
    w->data = t->data;
    w->type = t->type;
    for (int i = 0; i < 4; i++) w->ne[i] = (int64_t)t->ne[i];
    w->nbytes = t->nbytes;
    w->name = t->name;
    if (kind == TK_VECTOR && t->type == GGML_TYPE_F16) { /* convert once to F32 */
        float *c = xmalloc((size_t)ne0 * sizeof(float));
        const uint16_t *h = t->data;
        for (int64_t i = 0; i < ne0; i++) {
            uint16_t v;
            memcpy(&v, h + i, 2);
            c[i] = fp16_to_f32(v);
        }
        m->owned = xrealloc(m->owned, (size_t)(m->n_owned + 1) * sizeof(void *));
        m->owned[m->n_owned++] = c;
        w->data = c;
        w->type = GGML_TYPE_F32;
        w->nbytes = (uint64_t)ne0 * 4;
    }
    return 0;
}

static const char *const k_layer_names[] = {
    "attn_norm.weight",   "attn_q.weight",   "attn_k.weight", "attn_v.weight",
    "attn_output.weight", "attn_q.bias",     "attn_k.bias",   "attn_v.bias",
    "ffn_norm.weight",    "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
};

/* Every tensor in the file must be a known name for this config. */
static int check_names(const GgufFile *f, const ModelConfig *c, Err *e) {
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const char *n = f->tensors[i].name;
        if (!strcmp(n, "token_embd.weight") || !strcmp(n, "output_norm.weight") ||
            !strcmp(n, "output.weight"))
            continue;
        if (!strcmp(n, "rope_freqs.weight"))
            return err_set(e,
                           "tensor %s (per-dimension RoPE frequency factors, Llama 3.1 style) "
                           "is not supported",
                           n);
        int layer = -1, len = 0;
        if (sscanf(n, "blk.%d.%n", &layer, &len) == 1 && len > 0 && layer >= 0) {
            if (layer >= c->n_layers)
                return err_set(e, "tensor %s: layer %d is beyond block_count %d", n, layer,
                               c->n_layers);
            int known = 0;
            for (size_t k = 0; k < sizeof k_layer_names / sizeof *k_layer_names; k++)
                if (!strcmp(n + len, k_layer_names[k])) known = 1;
            if (known) continue;
        }
        return err_set(e, "unexpected tensor %s (not part of a %s model)", n, c->arch_name);
    }
    return 0;
}

static int bind_all(Model *m, Err *e) {
    const ModelConfig *c = &m->cfg;
    const GgufTensor *te = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) return err_set(e, "tensor token_embd.weight is missing");
    if (te->n_dims != 2 || te->ne[0] != (uint64_t)c->dim || te->ne[1] == 0 ||
        te->ne[1] > (1u << 24)) {
        char sf[96];
        fmt_shape(sf, sizeof sf, te->ne, te->n_dims);
        return err_set(e, "tensor token_embd.weight: expected shape [%d, n_vocab], found %s",
                       c->dim, sf);
    }
    m->cfg.n_vocab = (int)te->ne[1];
    int64_t V = m->cfg.n_vocab, D = c->dim, F = c->ffn_dim;
    int64_t QD = (int64_t)c->n_heads * c->head_dim, KD = (int64_t)c->n_kv_heads * c->head_dim;
    if (bind(m, "token_embd.weight", TK_EMBD, D, V, 0, &m->tok_embd, e) ||
        bind(m, "output_norm.weight", TK_VECTOR, D, 0, 0, &m->output_norm, e) ||
        bind(m, "output.weight", TK_MATRIX, D, V, 1, &m->output, e))
        return -1;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->cfg.tied_output = 1;
    }
    m->layers = xcalloc((size_t)c->n_layers, sizeof(LayerWeights));
    int bias_opt = c->arch != ARCH_QWEN2;
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        char n[64];
#define B(field, suffix, kind, a, b, opt)                                                          \
    do {                                                                                           \
        snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                                             \
        if (bind(m, n, kind, a, b, opt, &L->field, e)) return -1;                                  \
    } while (0)
        B(attn_norm, "attn_norm.weight", TK_VECTOR, D, 0, 0);
        B(wq, "attn_q.weight", TK_MATRIX, D, QD, 0);
        B(wk, "attn_k.weight", TK_MATRIX, D, KD, 0);
        B(wv, "attn_v.weight", TK_MATRIX, D, KD, 0);
        B(wo, "attn_output.weight", TK_MATRIX, QD, D, 0);
        B(bq, "attn_q.bias", TK_VECTOR, QD, 0, bias_opt);
        B(bk, "attn_k.bias", TK_VECTOR, KD, 0, bias_opt);
        B(bv, "attn_v.bias", TK_VECTOR, KD, 0, bias_opt);
        B(ffn_norm, "ffn_norm.weight", TK_VECTOR, D, 0, 0);
        B(w_gate, "ffn_gate.weight", TK_MATRIX, D, F, 0);
        B(w_up, "ffn_up.weight", TK_MATRIX, D, F, 0);
        B(w_down, "ffn_down.weight", TK_MATRIX, F, D, 0);
#undef B
        const WTensor *all[] = {&L->attn_norm, &L->wq,     &L->wk,   &L->wv,
                                &L->wo,        &L->bq,     &L->bk,   &L->bv,
                                &L->ffn_norm,  &L->w_gate, &L->w_up, &L->w_down};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++) m->weight_bytes += all[k]->nbytes;
    }
    m->weight_bytes += m->output.nbytes + m->output_norm.nbytes;
    return 0;
}

static int check_vocab(const Model *m, Err *e) {
    const GgufKV *kv = gguf_find_kv(m->gguf, "tokenizer.ggml.tokens");
    if (!kv) return 0;
    if (kv->val.type != GGUF_TYPE_ARRAY) return err_set(e, "tokenizer.ggml.tokens is not an array");
    if (kv->val.arr.n > (uint64_t)m->cfg.n_vocab)
        return err_set(e,
                       "tokenizer.ggml.tokens has %llu entries but token_embd.weight has %d rows",
                       (unsigned long long)kv->val.arr.n, m->cfg.n_vocab);
    if (kv->val.arr.n < (uint64_t)m->cfg.n_vocab)
        LOG_DEBUG("%s: %d embedding rows, %llu tokenizer tokens (padded vocabulary)", m->gguf->name,
                  m->cfg.n_vocab, (unsigned long long)kv->val.arr.n);
    return 0;
}

Model *model_from_gguf(GgufFile *f, Err *e) {
    Model *m = xcalloc(1, sizeof *m);
    m->gguf = f;
    if (read_config(f, &m->cfg, e) != 0 || check_names(f, &m->cfg, e) != 0 || bind_all(m, e) != 0 ||
        check_vocab(m, e) != 0)
        goto fail;
    return m;
fail:
    if (e) { /* getter errors already start with "<file>: " */
        const char *fn = f->name ? f->name : "model";
        size_t n = strlen(fn);
        if (strncmp(e->msg, fn, n) != 0 || e->msg[n] != ':') err_prefix(e, "%s", fn);
    }
    m->gguf = NULL; /* not taken on failure */
    model_free(m);
    return NULL;
}

Model *model_load(const char *path, Err *e) {
    GgufFile *f = gguf_open(path, e);
    if (!f) return NULL;
    Model *m = model_from_gguf(f, e);
    if (!m) gguf_close(f);
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    gguf_close(m->gguf);
    free(m);
}

uint64_t model_kv_bytes_per_token(const ModelConfig *c, int pos) {
    uint64_t per_pos = 2ull * (uint64_t)c->n_layers * (uint64_t)c->n_kv_heads *
                       (uint64_t)c->head_dim * sizeof(uint16_t);
    return per_pos * (uint64_t)(pos + 1);
}
