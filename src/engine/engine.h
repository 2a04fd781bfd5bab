/* engine.h - the generation loop, written once for the CLI, the server and
 * the benchmarks.
 *
 * An Engine bundles Model + Tokenizer + Backend. A generation is an
 * EngineSeq bound to one backend sequence slot. The loop is:
 *   seq = engine_seq_new(...)      tokenized prompt, sampler, stop strings
 *   engine_seq_prefill(...)        runs the prompt through the backend
 *   while (!seq->done) engine_step(e, &seq, 1)   (or many seqs: batched)
 * engine_step does one batched backend decode for all given sequences,
 * samples each one's next token on the host, detokenizes it, holds back
 * text that may be the start of a stop string, and calls on_text with the
 * text that is final. Stop conditions: EOG token, max_tokens, a stop string
 * (its text is not emitted), context full, or on_text returning non-zero. */
#ifndef M40_ENGINE_H
#define M40_ENGINE_H

#include <stdint.h>

#include "base/err.h"
#include "engine/backend.h"
#include "model/model.h"
#include "sampler/sampler.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

typedef struct Engine {
    Model *model;
    Tokenizer *tok;
    Backend *backend;
    ChatTemplate chat_tmpl; /* detected or forced; CHAT_TMPL_UNKNOWN if none */
    double t_load;          /* seconds to load model + backend */
} Engine;

/* Loads the model, its tokenizer and a backend (bp->device decides). */
Engine *engine_open(const char *model_path, const BackendParams *bp, Err *e);
void engine_close(Engine *en);

typedef enum FinishReason {
    FINISH_NONE = 0,  /* still running */
    FINISH_STOP,      /* EOG token or stop string */
    FINISH_LENGTH,    /* max_tokens or context full */
    FINISH_CANCELLED, /* on_text returned non-zero */
    FINISH_ERROR,
} FinishReason;

const char *finish_reason_name(FinishReason r); /* "stop", "length", ... */

/* Receives final text (never half a UTF-8 character, never part of a stop
 * string). `token` is the token that completed it (-1 at the final flush),
 * `logprob` its log-probability. Return non-zero to cancel. */
typedef int (*EngineTextFn)(void *ud, const char *text, size_t len, int32_t token, float logprob);

#define ENGINE_MAX_STOP 8

typedef struct GenParams {
    int max_tokens; /* > 0 */
    SamplerParams sampling;
    const char *stop[ENGINE_MAX_STOP]; /* stop strings (borrowed), n_stop of them */
    int n_stop;
    int ignore_eos;
    int render_special; /* detokenize control tokens (BOS, <|im_end|>, ...) as text */
} GenParams;

/* max_tokens 128, sampler_params_default, no stop strings, flags 0. */
void gen_params_default(GenParams *gp);

typedef struct EngineSeq {
    int slot;               /* backend sequence index */
    int32_t *tokens;        /* prompt + generated, capacity n_ctx */
    int n_prompt, n_tokens; /* n_tokens = prompt + generated so far */
    int n_past;             /* tokens already in the KV cache */
    int n_gen;
    GenParams gp;
    Sampler *sampler;
    TokDecoder dec;
    char *held; /* text held back for stop-string matching */
    size_t n_held, cap_held;
    EngineTextFn on_text;
    void *ud;
    FinishReason finish;
    int done;
    double t_start, t_prefill_done, t_end;
    int32_t last_token;
} EngineSeq;

/* Creates a generation on backend slot `slot` for an already tokenized
 * prompt (copied). Errors: empty prompt, prompt + 1 > n_ctx, bad params. */
EngineSeq *engine_seq_new(Engine *en, int slot, const int32_t *prompt, int n_prompt,
                          const GenParams *gp, EngineTextFn on_text, void *ud, Err *e);
void engine_seq_free(EngineSeq *s);
/* Runs the prompt tokens [n_past, n_prompt) (in chunks of at most `chunk`
 * tokens; <= 0 = all) and samples the first token. n_past is 0 after
 * engine_seq_new; a caller that knows the slot's KV cache already holds
 * the first P prompt tokens (multi-turn chat) may set s->n_past = P before
 * this call (at least one token is always run, for the logits). */
int engine_seq_prefill(Engine *en, EngineSeq *s, int chunk, Err *e);
/* One batched decode step over n running sequences (distinct slots). */
int engine_step(Engine *en, EngineSeq **seqs, int n, Err *e);

typedef struct GenStats {
    int n_prompt, n_gen;
    double t_prompt, t_gen; /* seconds */
    FinishReason finish;
} GenStats;

/* Convenience: prompt text -> streamed text, single sequence on slot 0. */
int engine_generate(Engine *en, const char *prompt, int parse_special, const GenParams *gp,
                    EngineTextFn on_text, void *ud, GenStats *st, Err *e);

/* Prints the stats line to stderr: load time, prompt tokens and t/s,
 * generated tokens and t/s, weight GB/s, device description. */
void engine_print_stats(const Engine *en, const GenStats *st);

/* Runs a new sequence to the end: prefill (from s->n_past) then steps
 * until done; fills st (may be NULL). Returns 0, or -1 on a backend error. */
int engine_run_seq(Engine *en, EngineSeq *s, GenStats *st, Err *e);

/* Tokenizes text into a malloc'd id array (*n ids). add_bos: -1 = the
 * model's default (tokenizer.ggml.add_bos_token), 0 no, 1 yes. NULL + e
 * on invalid input. */
int32_t *engine_tokenize(const Engine *en, const char *text, int add_bos, int parse_special, int *n,
                         Err *e);

/* Renders messages with template t (CHAT_TMPL_UNKNOWN: the model's
 * detected one; an error when there is none) plus the assistant header,
 * and tokenizes the result with special tokens parsed; BOS is added unless
 * the template already wrote it. Returns malloc'd ids (*n) or NULL + e. */
int32_t *engine_chat_tokens(const Engine *en, ChatTemplate t, const ChatMessage *msgs, int n_msgs,
                            int *n, Err *e);

/* Stop-string scan over held text (pure; engine_step uses it, tests call
 * it). Returns the byte offset of the earliest complete occurrence of any
 * non-empty stop string in text[0, len), or -1 when none. When none,
 * *safe gets the number of leading bytes that can be emitted now: all but
 * the longest suffix that is a proper prefix of some stop string. */
long engine_stop_scan(const char *text, size_t len, const char *const *stops, int n_stop,
                      size_t *safe);

#endif
