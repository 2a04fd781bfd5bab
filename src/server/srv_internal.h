/* srv_internal.h - pieces shared by the server's files: jobs and the
 * scheduler (sched.c), request parsing and response building (api.c), the
 * HTTP layer (server.c) and the chat page (page.c). */
#ifndef M40_SRV_INTERNAL_H
#define M40_SRV_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/engine.h"
#include "server/server.h"

/* ------------------------------------------------------------ request parsing */

typedef enum SrvKind {
    SRV_GENERATE = 0,   /* POST /generate */
    SRV_COMPLETION = 1, /* POST /v1/completions */
    SRV_CHAT = 2,       /* POST /v1/chat/completions */
} SrvKind;

/* A validated generation request (api.c). */
typedef struct SrvGenReq {
    SrvKind kind;
    char *prompt_text;   /* owned; NULL when prompt_ids is given */
    int32_t *prompt_ids; /* owned; prompt given as token ids (completions) */
    int n_prompt_ids;
    int parse_special; /* chat prompts carry template tokens as text */
    int max_tokens;    /* 0 = until the context is full */
    SamplerParams sp;
    char *stop[ENGINE_MAX_STOP]; /* owned */
    int n_stop;
    int stream, include_usage;
    int logprobs; /* return the chosen token's logprob */
    int ignore_eos;
} SrvGenReq;

/* HTTP status + OpenAI-style error type/code for a failed parse. */
typedef struct SrvError {
    int status;
    const char *type; /* "invalid_request_error", ... */
    const char *code; /* NULL or e.g. "model_not_found" */
    char msg[512];
} SrvError;

/* What the parser needs from the server. */
typedef struct SrvParseCtx {
    const char *model_id, *model_path;
    int n_ctx;
    const SamplerParams *sp_default;
    int seed_set;
    ChatTemplate tmpl;    /* for chat requests */
    const char *bos_text; /* may be NULL */
} SrvParseCtx;

/* Parses a request body (bytes, not NUL-terminated) of the given kind into
 * r. Returns 0, or -1 with err filled (status 400/404). */
int srv_parse_gen(const SrvParseCtx *c, SrvKind kind, const char *body, size_t n, SrvGenReq *r,
                  SrvError *err);
void srv_gen_req_free(SrvGenReq *r);
/* Loads a JSON object body strictly (duplicate keys, invalid UTF-8 and
 * trailing garbage rejected). NULL with err (400) on failure. */
json_t *srv_load_object(const char *body, size_t n, SrvError *err);
/* {"error": {"message", "type", "code"}} as a malloc'd string. */
char *srv_error_json(const SrvError *err);
int srv_err(SrvError *err, int status, const char *type, const char *code, const char *fmt, ...)
    M40_PRINTF(5, 6);

/* ------------------------------------------------------------ jobs */

typedef enum JobState { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE } JobState;

typedef struct SrvPiece { /* one on_text call: text[off, off+len) came with token/logprob */
    size_t off, len;
    int32_t token;
    float logprob;
} SrvPiece;

/* One generation shared by an HTTP thread and the scheduler. Reference
 * counted (job_unref frees); every field below `mu` is guarded by mu. */
typedef struct SrvJob {
    /* immutable after submission */
    int32_t *prompt; /* n_prompt */
    int n_prompt;
    GenParams gp;
    char *stop[ENGINE_MAX_STOP];
    int want_logprobs;
    atomic_int cancelled; /* set by HTTP side (client gone); scheduler drops the job */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    JobState state;
    char *text; /* all generated text, NUL-terminated */
    size_t n_text, cap_text;
    SrvPiece *pieces;
    int n_pieces, cap_pieces;
    FinishReason finish;
    int n_gen;
    char err[256]; /* non-empty on FINISH_ERROR */
    double t_submit, t_start, t_first, t_done;
} SrvJob;

/* Takes ownership of prompt and stop strings (the job frees them). */
SrvJob *job_new(int32_t *prompt, int n_prompt, const GenParams *gp, char **stop, int n_stop,
                int want_logprobs);
void job_ref(SrvJob *j);
void job_unref(SrvJob *j);
/* Blocks until the job is done. */
void job_wait_done(SrvJob *j);

/* ------------------------------------------------------------ scheduler */

typedef struct SrvMetrics {
    uint64_t n_jobs, n_jobs_rejected, tok_prompt, tok_gen;
    uint64_t n_steps, n_step_seqs, n_prefills; /* decode steps, sequences in them, prefill calls */
    double t_prompt, t_decode;                 /* seconds spent in prefill / decode steps */
    double tps_recent;                         /* generated tokens per second over recent steps */
    int queue_depth, slots_busy, slots_total;
} SrvMetrics;

typedef struct Sched Sched;

Sched *sched_start(Engine *en, int n_queue, int prefill_chunk, Err *e);
/* Queues a job (takes a reference). Returns 0, or -1 when the queue is full
 * or the scheduler is stopping (the caller answers 503). */
int sched_submit(Sched *s, SrvJob *j);
void sched_metrics(Sched *s, SrvMetrics *m);
/* Finishes every job as cancelled and joins the thread; later submissions
 * fail. NULL-safe, idempotent. */
void sched_stop(Sched *s);
/* Frees a stopped scheduler. NULL-safe. */
void sched_free(Sched *s);

/* ------------------------------------------------------------ page */

extern const char SRV_CHAT_PAGE[];

#endif
