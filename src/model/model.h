/* model.h - a GGUF mapped to a transformer config plus weight views.
 *
 * Supported architectures (general.architecture): "llama" (Llama 1/2/3,
 * Mistral, TinyLlama, SmolLM) and "qwen2" (q/k/v biases, NeoX RoPE).
 *
 * Ownership: Model owns its GgufFile (model_load) and borrows every weight
 * from that file's mmap; weights stay valid until model_free. Backends copy
 * (GPU) or read in place (CPU) but never outlive the Model.
 *
 * Shapes follow ggml: a matrix `rows x cols` has ne[0] = cols (contiguous),
 * ne[1] = rows, and y = W x is y[r] = sum_c W[r][c] x[c]. */
#ifndef M40_MODEL_H
#define M40_MODEL_H

#include <stdint.h>

#include "base/err.h"
#include "gguf/gguf.h"

typedef enum ModelArch {
    ARCH_LLAMA = 0,
    ARCH_QWEN2 = 1,
} ModelArch;

typedef struct ModelConfig {
    ModelArch arch;
    char arch_name[32];
    int n_vocab;
    int dim; /* embedding length */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim; /* dim / n_heads unless attention.key_length says otherwise */
    int ffn_dim;
    int n_ctx_train;
    int rope_dim;  /* rope.dimension_count (<= head_dim) */
    int rope_neox; /* 1: NeoX pairing (i, i+rope_dim/2); 0: adjacent (2i, 2i+1) */
    float rope_base;
    float rope_scale; /* linear scaling multiplier: RoPE uses pos * rope_scale, i.e. 1/factor of
                         rope.scaling.factor (or legacy rope.scale_linear); 1 = none */
    float norm_eps;
    int tied_output; /* no output.weight: logits use token_embd.weight */
} ModelConfig;

/* A weight tensor view. data == NULL means absent (optional biases). */
typedef struct WTensor {
    const void *data; /* borrowed from the GGUF mmap */
    uint32_t type;    /* GgmlType */
    int64_t ne[4];    /* ne[0] = cols (contiguous), ne[1] = rows */
    uint64_t nbytes;
    const char *name; /* borrowed */
} WTensor;

typedef struct LayerWeights {
    WTensor attn_norm;      /* (dim) F32 */
    WTensor wq, wk, wv, wo; /* wq: (n_heads*head_dim, dim) rows x cols; wk/wv: (n_kv*hd, dim);
                               wo: (dim, n_heads*head_dim) */
    WTensor bq, bk, bv;     /* qwen2 only, F32 */
    WTensor ffn_norm;       /* (dim) F32 */
    WTensor w_gate, w_up;   /* (ffn, dim) */
    WTensor w_down;         /* (dim, ffn) */
} LayerWeights;

typedef struct Model {
    ModelConfig cfg;
    GgufFile *gguf;        /* owned */
    WTensor tok_embd;      /* (n_vocab, dim) rows x cols */
    WTensor output_norm;   /* (dim) */
    WTensor output;        /* (n_vocab, dim); == tok_embd when tied */
    LayerWeights *layers;  /* n_layers */
    uint64_t weight_bytes; /* all matrices read per token (excl. tok_embd unless tied) */
    void **owned; /* F32 copies of F16 norms/biases (WTensor.data points here); model_free */
    int n_owned;
} Model;

/* Opens, parses and validates a model file. Errors name the file and the
 * tensor or key at fault ("tiny.gguf: tensor blk.0.attn_q.weight: expected
 * shape [256, 256], found [256, 128]"). Types the CPU cannot run are refused
 * by name. */
Model *model_load(const char *path, Err *e);
/* Same from an already parsed file; takes ownership of f on success only. */
Model *model_from_gguf(GgufFile *f, Err *e);
void model_free(Model *m);

/* Bytes of KV cache read per decoded token at context position `pos`
 * (FP16 K and V, all layers; the token at `pos` attends pos+1 positions). */
uint64_t model_kv_bytes_per_token(const ModelConfig *c, int pos);

#endif
