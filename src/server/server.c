/* server.c - the HTTP layer: libmicrohttpd daemon, routing, CORS, API key,
 * body limits, JSON errors, per-request log lines, and the endpoints.
 *
 * Threading: MHD runs one thread per connection. Handlers for generation
 * endpoints tokenize on their own thread, submit a job to the scheduler and
 * either block until it is done (non-streaming) or return a chunked
 * response whose content reader blocks on the job's condition variable
 * and turns new text into SSE events (streaming). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "server/srv_internal.h"

struct Server {
    Engine *en;
    ServerParams p;
    char *model_id, *model_path;
    char host[64];
    int port;
    time_t created;
    Sched *sched;
    struct MHD_Daemon *d;
    const char *bos_text;
    atomic_ulong n_http, n_http_err;
    atomic_ulong id_counter;
};

void server_params_default(ServerParams *p) {
    memset(p, 0, sizeof *p);
    p->host = "127.0.0.1";
    p->port = 8080;
    p->model_id = "model";
    p->n_queue = 64;
    p->prefill_chunk = 128;
    p->max_body = 4u << 20;
    p->max_conn = 256;
    p->timeout_s = 600;
    sampler_params_default(&p->sp);
}

int server_port(const Server *s) { return s ? s->port : -1; }

/* ------------------------------------------------------------ connection state */

typedef enum Method { M_GET = 1, M_POST = 2 } Method;

typedef struct Conn {
    double t0;
    char method[16];
    char path[160];
    int status;
    int responded;
    char *body; /* n_body bytes (+NUL) */
    size_t n_body, cap_body;
    int too_big;
    SrvJob *job; /* for the log line (tokens) */
} Conn;

typedef struct Route {
    const char *path;
    Method method;
    int auth; /* needs the API key */
    enum MHD_Result (*fn)(Server *s, Conn *cn, struct MHD_Connection *c);
} Route;

static void add_common_headers(struct MHD_Response *r) {
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Cache-Control", "no-store");
}

/* Queues r (common headers already added) as the connection's response,
 * drops our reference and records the status for the request log. */
static enum MHD_Result queue(Conn *cn, struct MHD_Connection *c, int status,
                             struct MHD_Response *r) {
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    cn->status = status;
    cn->responded = 1;
    return rc;
}

static enum MHD_Result send_buf(Conn *cn, struct MHD_Connection *c, int status, const char *ctype,
                                char *body, size_t n, int must_free) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        n, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (must_free) free(body);
        return MHD_NO;
    }
    add_common_headers(r);
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    if (status == 405) MHD_add_response_header(r, "Allow", "GET, POST, OPTIONS");
    return queue(cn, c, status, r);
}

static enum MHD_Result send_json(Conn *cn, struct MHD_Connection *c, int status, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return send_buf(cn, c, 500, "text/plain", "internal error\n", 15, 0);
    return send_buf(cn, c, status, "application/json", s, strlen(s), 1);
}

static enum MHD_Result send_error(Server *s, Conn *cn, struct MHD_Connection *c,
                                  const SrvError *err) {
    atomic_fetch_add(&s->n_http_err, 1);
    char *j = srv_error_json(err);
    return send_buf(cn, c, err->status, "application/json", j, strlen(j), 1);
}

static enum MHD_Result send_errorf(Server *s, Conn *cn, struct MHD_Connection *c, int status,
                                   const char *type, const char *code, const char *msg) {
    SrvError err;
    srv_err(&err, status, type, code, "%s", msg);
    return send_error(s, cn, c, &err);
}

/* ------------------------------------------------------------ text helpers */

/* Copies s replacing invalid UTF-8 with U+FFFD (json_string needs UTF-8). */
static char *utf8_sanitize(const char *s, size_t n) {
    char *o = xmalloc(3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + (size_t)len <= n && c != 0;
        for (int j = 1; ok && j < len; j++) ok = ((unsigned char)s[i + j] >> 6) == 2;
        if (ok && len == 2 && c < 0xC2) ok = 0;
        if (ok && len == 3) {
            unsigned cp = ((c & 15u) << 12) | (((unsigned char)s[i + 1] & 63u) << 6) |
                          ((unsigned char)s[i + 2] & 63u);
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) ok = 0;
        }
        if (ok && len == 4) {
            unsigned cp = ((c & 7u) << 18) | (((unsigned char)s[i + 1] & 63u) << 12) |
                          (((unsigned char)s[i + 2] & 63u) << 6) | ((unsigned char)s[i + 3] & 63u);
            if (cp < 0x10000 || cp > 0x10FFFF) ok = 0;
        }
        if (ok) {
            memcpy(o + k, s + i, (size_t)len);
            k += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    o[k] = 0;
    return o;
}

static json_t *jstr(const char *s, size_t n) {
    json_t *v = json_stringn(s, n);
    if (v) return v;
    char *t = utf8_sanitize(s, n);
    v = json_string(t);
    free(t);
    return v;
}

static double finite_lp(float lp) { return isfinite(lp) ? lp : -9999.0; }

/* ------------------------------------------------------------ simple endpoints */

static enum MHD_Result ep_page(Server *s, Conn *cn, struct MHD_Connection *c) {
    (void)s;
    return send_buf(cn, c, 200, "text/html; charset=utf-8", (char *)SRV_CHAT_PAGE,
                    strlen(SRV_CHAT_PAGE), 0);
}

static enum MHD_Result ep_health(Server *s, Conn *cn, struct MHD_Connection *c) {
    SrvMetrics m;
    sched_metrics(s->sched, &m);
    return send_json(cn, c, 200,
                     json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "status", "ok", "model",
                               s->model_id, "slots_idle", m.slots_total - m.slots_busy,
                               "slots_processing", m.slots_busy, "slots_total", m.slots_total,
                               "queue", m.queue_depth));
}

static json_t *model_object(Server *s) {
    const ModelConfig *cfg = &s->en->model->cfg;
    return json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:i, s:i, s:i, s:i, s:s}}", "id", s->model_id,
                     "object", "model", "created", (json_int_t)s->created, "owned_by", "m40llm",
                     "meta", "arch", cfg->arch_name, "n_vocab", cfg->n_vocab, "n_ctx",
                     s->en->backend->n_ctx, "n_ctx_train", cfg->n_ctx_train, "n_parallel",
                     s->en->backend->n_seq, "device", s->en->backend->name);
}

static enum MHD_Result ep_models(Server *s, Conn *cn, struct MHD_Connection *c) {
    return send_json(cn, c, 200,
                     json_pack("{s:s, s:[o]}", "object", "list", "data", model_object(s)));
}

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* GPU memory of the backend's device in bytes (used, total) via nvidia-smi
 * (the backend interface has no memory query); cached for 5 s. 0 when
 * unknown. */
static void gpu_memory(Server *s, double *used, double *total) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static double t_last = -1e9, c_used, c_total;
    *used = *total = 0;
    if (!s->en->backend->is_gpu) return;
    pthread_mutex_lock(&mu);
    if (time_now() - t_last > 5) {
        t_last = time_now();
        c_used = c_total = 0;
        int dev = 0;
        sscanf(s->en->backend->name, "cuda:%d", &dev);
        char cmd[160];
        snprintf(cmd, sizeof cmd,
                 "nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits "
                 "-i %d 2>/dev/null",
                 dev);
        FILE *f = popen(cmd, "r");
        if (f) {
            double u, t;
            if (fscanf(f, "%lf , %lf", &u, &t) == 2) {
                c_used = u * 1048576.0;
                c_total = t * 1048576.0;
            }
            pclose(f);
        }
    }
    *used = c_used;
    *total = c_total;
    pthread_mutex_unlock(&mu);
}

static enum MHD_Result ep_metrics(Server *s, Conn *cn, struct MHD_Connection *c) {
    SrvMetrics m;
    sched_metrics(s->sched, &m);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return MHD_NO;
#define METRIC(name, type, help, fmt, val)                                                         \
    fprintf(f,                                                                                     \
            "# HELP m40llm_" name " " help "\n# TYPE m40llm_" name " " type "\nm40llm_" name       \
            " " fmt "\n",                                                                          \
            val)
    METRIC("http_requests_total", "counter", "HTTP requests answered.", "%lu",
           (unsigned long)atomic_load(&s->n_http));
    METRIC("http_errors_total", "counter", "HTTP requests answered with an error status.", "%lu",
           (unsigned long)atomic_load(&s->n_http_err));
    METRIC("requests_total", "counter", "Generation requests accepted by the scheduler.",
           "%" PRIu64, m.n_jobs);
    METRIC("requests_rejected_total", "counter", "Generation requests refused (queue full).",
           "%" PRIu64, m.n_jobs_rejected);
    METRIC("prompt_tokens_total", "counter", "Prompt tokens processed.", "%" PRIu64, m.tok_prompt);
    METRIC("tokens_generated_total", "counter", "Tokens generated.", "%" PRIu64, m.tok_gen);
    METRIC("prompt_seconds_total", "counter", "Seconds spent in prompt prefill.", "%.6f",
           m.t_prompt);
    METRIC("decode_seconds_total", "counter", "Seconds spent in batched decode steps.", "%.6f",
           m.t_decode);
    METRIC("decode_steps_total", "counter", "Batched decode steps.", "%" PRIu64, m.n_steps);
    METRIC("decode_step_sequences_total", "counter",
           "Sequences summed over decode steps (divided by steps: the mean batch).", "%" PRIu64,
           m.n_step_seqs);
    METRIC("prefill_calls_total", "counter", "Prompt prefill slices run.", "%" PRIu64,
           m.n_prefills);
    METRIC("prompt_tokens_per_second", "gauge", "Average prefill throughput.", "%.3f",
           m.t_prompt > 0 ? (double)m.tok_prompt / m.t_prompt : 0.0);
    METRIC("decode_tokens_per_second", "gauge",
           "Recent aggregate decode throughput (tokens per second over all slots).", "%.3f",
           m.tps_recent);
    METRIC("queue_depth", "gauge", "Requests waiting for a slot.", "%d", m.queue_depth);
    METRIC("slots_busy", "gauge", "Slots generating.", "%d", m.slots_busy);
    METRIC("slots_total", "gauge", "Parallel slots.", "%d", m.slots_total);
    METRIC("process_resident_memory_bytes", "gauge", "Resident memory of the server.", "%ld",
           rss_bytes());
    METRIC("model_weight_bytes", "gauge", "Bytes of weights read per token.", "%" PRIu64,
           (uint64_t)s->en->model->weight_bytes);
    METRIC("backend_is_gpu", "gauge", "1 when the backend runs on a GPU.", "%d",
           s->en->backend->is_gpu);
    double gpu_used, gpu_total;
    gpu_memory(s, &gpu_used, &gpu_total);
    if (gpu_total > 0) {
        METRIC("gpu_memory_used_bytes", "gauge",
               "Memory in use on the backend's GPU (all processes).", "%.0f", gpu_used);
        METRIC("gpu_memory_total_bytes", "gauge", "Memory of the backend's GPU.", "%.0f",
               gpu_total);
    }
#undef METRIC
    fclose(f);
    return send_buf(cn, c, 200, "text/plain; version=0.0.4", buf, n, 1);
}

static enum MHD_Result ep_tokenize(Server *s, Conn *cn, struct MHD_Connection *c) {
    SrvError err;
    json_t *o = srv_load_object(cn->body, cn->n_body, &err);
    if (!o) return send_error(s, cn, c, &err);
    const char *text = NULL;
    size_t n_text = 0;
    int add_special = 0, parse_special = 1, with_pieces = 0;
    json_error_t je;
    if (json_unpack_ex(o, &je, 0, "{s:s%, s?b, s?b, s?b}", "content", &text, &n_text, "add_special",
                       &add_special, "parse_special", &parse_special, "with_pieces",
                       &with_pieces) != 0) {
        srv_err(&err, 400, "invalid_request_error", NULL, "/tokenize: %s", je.text);
        json_decref(o);
        return send_error(s, cn, c, &err);
    }
    Err e = {{0}};
    int n = tok_encode(s->en->tok, text, n_text, add_special, parse_special, NULL, 0, &e);
    int32_t *ids = NULL;
    if (n >= 0) {
        ids = xmalloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
        n = tok_encode(s->en->tok, text, n_text, add_special, parse_special, ids, n, &e);
    }
    json_decref(o);
    if (n < 0) {
        free(ids);
        srv_err(&err, 400, "invalid_request_error", NULL, "'content': %s", e.msg);
        return send_error(s, cn, c, &err);
    }
    json_t *arr = json_array();
    TokDecoder dec; /* pieces as a streamed decode shows them (leading spaces kept) */
    tok_decoder_init(&dec, s->en->tok, 1);
    for (int i = 0; i < n; i++) {
        if (with_pieces) {
            char p[512];
            size_t k = tok_decoder_feed(&dec, ids[i], p, sizeof p);
            json_array_append_new(arr, json_pack("{s:i, s:o}", "id", ids[i], "piece", jstr(p, k)));
        } else {
            json_array_append_new(arr, json_integer(ids[i]));
        }
    }
    free(ids);
    return send_json(cn, c, 200, json_pack("{s:o}", "tokens", arr));
}

static enum MHD_Result ep_detokenize(Server *s, Conn *cn, struct MHD_Connection *c) {
    SrvError err;
    json_t *o = srv_load_object(cn->body, cn->n_body, &err);
    if (!o) return send_error(s, cn, c, &err);
    json_t *toks = json_object_get(o, "tokens");
    if (!json_is_array(toks)) {
        json_decref(o);
        return send_errorf(s, cn, c, 400, "invalid_request_error", NULL,
                           "'tokens' is required and must be an array of token ids");
    }
    size_t n = json_array_size(toks), i;
    int32_t *ids = xmalloc(sizeof(int32_t) * (n ? n : 1));
    int n_vocab = tok_n_vocab(s->en->tok);
    json_t *t;
    json_array_foreach(toks, i, t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= n_vocab) {
            free(ids);
            json_decref(o);
            srv_err(&err, 400, "invalid_request_error", NULL,
                    "'tokens[%zu]' must be a token id in [0, %d)", i, n_vocab);
            return send_error(s, cn, c, &err);
        }
        ids[i] = (int32_t)json_integer_value(t);
    }
    json_decref(o);
    char *text = tok_decode_all(s->en->tok, ids, (int)n, 0);
    free(ids);
    json_t *r = json_pack("{s:o}", "content", jstr(text ? text : "", text ? strlen(text) : 0));
    free(text);
    return send_json(cn, c, 200, r);
}

/* ------------------------------------------------------------ generation responses */

typedef struct GenMeta {
    SrvKind kind;
    char id[48];
    time_t created;
    const char *model;
    int logprobs, include_usage;
    int n_prompt;
} GenMeta;

static json_t *usage_json(int n_prompt, int n_gen) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", n_prompt, "completion_tokens", n_gen,
                     "total_tokens", n_prompt + n_gen);
}

/* Logprobs for pieces [p0, p1) of text (OpenAI chat or completions shape). */
static json_t *logprobs_json(const GenMeta *g, const char *text, const SrvPiece *pc, int n,
                             size_t base_off) {
    if (!g->logprobs || g->kind == SRV_GENERATE) return json_null();
    if (g->kind == SRV_CHAT) {
        json_t *content = json_array();
        for (int i = 0; i < n; i++) {
            json_t *bytes = json_array();
            for (size_t k = 0; k < pc[i].len; k++)
                json_array_append_new(bytes,
                                      json_integer((unsigned char)text[pc[i].off - base_off + k]));
            json_array_append_new(content, json_pack("{s:o, s:f, s:o, s:[]}", "token",
                                                     jstr(text + pc[i].off - base_off, pc[i].len),
                                                     "logprob", finite_lp(pc[i].logprob), "bytes",
                                                     bytes, "top_logprobs"));
        }
        return json_pack("{s:o}", "content", content);
    }
    json_t *toks = json_array(), *lps = json_array(), *offs = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(toks, jstr(text + pc[i].off - base_off, pc[i].len));
        json_array_append_new(lps, json_real(finite_lp(pc[i].logprob)));
        json_array_append_new(offs, json_integer((json_int_t)pc[i].off));
    }
    return json_pack("{s:o, s:o, s:n, s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs",
                     "text_offset", offs);
}

static const char *finish_name(FinishReason r) {
    return r == FINISH_LENGTH ? "length" : r == FINISH_CANCELLED ? "cancelled" : "stop";
}

/* The whole (non-streamed) response. Job must be done. */
static json_t *full_response(const GenMeta *g, SrvJob *j) {
    json_t *text = jstr(j->text, j->n_text);
    json_t *usage = usage_json(g->n_prompt, j->n_gen);
    const char *fin = finish_name(j->finish);
    double t_prompt = j->t_first > 0 ? j->t_first - j->t_start : 0;
    double t_gen = j->t_first > 0 ? j->t_done - j->t_first : 0;
    json_t *timings = json_pack("{s:f, s:f, s:f}", "queue_ms", 1e3 * (j->t_start - j->t_submit),
                                "prompt_ms", 1e3 * t_prompt, "predicted_ms", 1e3 * t_gen);
    switch (g->kind) {
    case SRV_GENERATE:
        json_decref(timings);
        return json_pack("{s:o, s:s, s:o}", "text", text, "finish_reason", fin, "usage", usage);
    case SRV_COMPLETION:
        return json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:o, s:s}], s:o, s:o}", "id",
                         g->id, "object", "text_completion", "created", (json_int_t)g->created,
                         "model", g->model, "system_fingerprint", "m40llm-" M40LLM_VERSION,
                         "choices", "index", 0, "text", text, "logprobs",
                         logprobs_json(g, j->text, j->pieces, j->n_pieces, 0), "finish_reason", fin,
                         "usage", usage, "timings", timings);
    case SRV_CHAT:
        return json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:{s:s, s:o}, s:o, s:s}], s:o, s:o}",
                         "id", g->id, "object", "chat.completion", "created",
                         (json_int_t)g->created, "model", g->model, "system_fingerprint",
                         "m40llm-" M40LLM_VERSION, "choices", "index", 0, "message", "role",
                         "assistant", "content", text, "logprobs",
                         logprobs_json(g, j->text, j->pieces, j->n_pieces, 0), "finish_reason", fin,
                         "usage", usage, "timings", timings);
    }
    return NULL;
}

/* One streamed chunk. text/pieces: new text (NULL with fin for the last
 * chunk, role for the chat opener). */
static json_t *chunk_json(const GenMeta *g, const char *text, size_t n, const SrvPiece *pc,
                          int n_pc, size_t base_off, const char *fin, int role) {
    json_t *lp = pc ? logprobs_json(g, text, pc, n_pc, base_off) : json_null();
    json_t *o;
    if (g->kind == SRV_GENERATE) {
        json_decref(lp);
        return json_pack("{s:o}", "text", jstr(text ? text : "", text ? n : 0));
    }
    if (g->kind == SRV_COMPLETION) {
        o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:o, s:o}]}", "id", g->id, "object",
                      "text_completion", "created", (json_int_t)g->created, "model", g->model,
                      "system_fingerprint", "m40llm-" M40LLM_VERSION, "choices", "index", 0, "text",
                      jstr(text ? text : "", text ? n : 0), "logprobs", lp, "finish_reason",
                      fin ? json_string(fin) : json_null());
    } else {
        json_t *delta = role   ? json_pack("{s:s, s:s}", "role", "assistant", "content", "")
                        : text ? json_pack("{s:o}", "content", jstr(text, n))
                               : json_object();
        o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:o, s:o}]}", "id", g->id, "object",
                      "chat.completion.chunk", "created", (json_int_t)g->created, "model", g->model,
                      "system_fingerprint", "m40llm-" M40LLM_VERSION, "choices", "index", 0,
                      "delta", delta, "logprobs", lp, "finish_reason",
                      fin ? json_string(fin) : json_null());
    }
    if (o && g->include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

/* ------------------------------------------------------------ streaming */

typedef struct Stream {
    Server *srv;
    SrvJob *job;
    GenMeta g;
    int phase; /* 0 opener, 1 body, 2 finished */
    int next_piece;
    char *buf; /* pending bytes [off, n) */
    size_t n, off, cap;
} Stream;

static void st_append(Stream *st, const char *s, size_t n) {
    if (st->n + n > st->cap) {
        st->cap = 2 * (st->n + n);
        st->buf = xrealloc(st->buf, st->cap);
    }
    memcpy(st->buf + st->n, s, n);
    st->n += n;
}

static void st_event(Stream *st, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return;
    st_append(st, "data: ", 6);
    st_append(st, s, strlen(s));
    st_append(st, "\n\n", 2);
    free(s);
}

/* Fills st->buf with the next events; blocks until there is something. */
static void st_produce(Stream *st) {
    SrvJob *j = st->job;
    if (st->phase == 0) {
        st->phase = 1;
        if (st->g.kind == SRV_CHAT) {
            st_event(st, chunk_json(&st->g, NULL, 0, NULL, 0, 0, NULL, 1));
            return;
        }
    }
    pthread_mutex_lock(&j->mu);
    if (j->n_pieces == st->next_piece && j->state != JOB_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        while (j->n_pieces == st->next_piece && j->state != JOB_DONE)
            if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) != 0) break;
    }
    int p0 = st->next_piece, p1 = j->n_pieces;
    int done = j->state == JOB_DONE;
    char *text = NULL;
    SrvPiece *pc = NULL;
    size_t base = 0, len = 0;
    if (p1 > p0) {
        base = j->pieces[p0].off;
        len = j->n_text - base;
        text = xstrndup(j->text + base, len);
        pc = xmalloc(sizeof *pc * (size_t)(p1 - p0));
        memcpy(pc, j->pieces + p0, sizeof *pc * (size_t)(p1 - p0));
        len = pc[p1 - p0 - 1].off + pc[p1 - p0 - 1].len - base;
    }
    FinishReason fin = j->finish;
    int n_gen = j->n_gen;
    char err[256];
    snprintf(err, sizeof err, "%s", j->err);
    pthread_mutex_unlock(&j->mu);

    if (p1 > p0) {
        st->next_piece = p1;
        st_event(st, chunk_json(&st->g, text, len, pc, p1 - p0, base, NULL, 0));
        free(text);
        free(pc);
        return;
    }
    if (!done) {
        st_append(st, ": keep-alive\n\n", 14); /* also detects a client that left */
        return;
    }
    if (fin == FINISH_ERROR || (fin == FINISH_CANCELLED && err[0])) {
        SrvError e;
        srv_err(&e, fin == FINISH_ERROR ? 500 : 503, "server_error", NULL, "%s", err);
        char *s = srv_error_json(&e);
        st_append(st, "data: ", 6);
        st_append(st, s, strlen(s));
        st_append(st, "\n\n", 2);
        free(s);
    } else if (st->g.kind == SRV_GENERATE) {
        st_event(st, json_pack("{s:s, s:b, s:s, s:o}", "text", "", "done", 1, "finish_reason",
                               finish_name(fin), "usage", usage_json(st->g.n_prompt, n_gen)));
    } else {
        st_event(st, chunk_json(&st->g, NULL, 0, NULL, 0, 0, finish_name(fin), 0));
        if (st->g.include_usage) {
            json_t *o = chunk_json(&st->g, NULL, 0, NULL, 0, 0, "stop", 0);
            json_object_set_new(o, "choices", json_array());
            json_object_set_new(o, "usage", usage_json(st->g.n_prompt, n_gen));
            st_event(st, o);
        }
    }
    st_append(st, "data: [DONE]\n\n", 14);
    st->phase = 2;
}

static ssize_t st_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    Stream *st = cls;
    for (;;) {
        if (st->off < st->n) {
            size_t k = st->n - st->off < max ? st->n - st->off : max;
            memcpy(buf, st->buf + st->off, k);
            st->off += k;
            return (ssize_t)k;
        }
        st->n = st->off = 0;
        if (st->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        st_produce(st);
    }
}

static void st_free(void *cls) {
    Stream *st = cls;
    atomic_store(&st->job->cancelled, 1); /* no-op when done; frees the slot if not */
    job_unref(st->job);
    free(st->buf);
    free(st);
}

/* ------------------------------------------------------------ generation endpoints */

/* Waits for a non-streamed job; cancels it when the client closes its end
 * (a read on the socket would return EOF). */
static void wait_done_or_gone(SrvJob *j, int fd) {
    pthread_mutex_lock(&j->mu);
    while (j->state != JOB_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        char b;
        if (j->state != JOB_DONE && fd >= 0 && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            atomic_store(&j->cancelled, 1);
    }
    pthread_mutex_unlock(&j->mu);
}

static enum MHD_Result ep_gen(Server *s, Conn *cn, struct MHD_Connection *c, SrvKind kind) {
    SrvError err;
    SrvGenReq r;
    SrvParseCtx pc = {.model_id = s->model_id,
                      .model_path = s->model_path,
                      .n_ctx = s->en->backend->n_ctx,
                      .sp_default = &s->p.sp,
                      .seed_set = s->p.seed_set,
                      .tmpl = s->en->chat_tmpl,
                      .bos_text = s->bos_text};
    if (srv_parse_gen(&pc, kind, cn->body, cn->n_body, &r, &err) != 0)
        return send_error(s, cn, c, &err);

    const Tokenizer *tok = s->en->tok;
    int n_ctx = s->en->backend->n_ctx, n_vocab = tok_n_vocab(tok);
    int32_t *ids = NULL;
    int n = 0;
    if (r.prompt_ids) {
        ids = r.prompt_ids;
        n = r.n_prompt_ids;
        r.prompt_ids = NULL;
        for (int i = 0; i < n; i++)
            if (ids[i] >= n_vocab) {
                srv_err(&err, 400, "invalid_request_error", NULL,
                        "'prompt[%d]': token id %d is out of range [0, %d)", i, ids[i], n_vocab);
                goto fail;
            }
    } else {
        Err e = {{0}};
        size_t len = strlen(r.prompt_text);
        int add_bos = tok_add_bos(tok);
        if (r.parse_special && s->bos_text && *s->bos_text &&
            !strncmp(r.prompt_text, s->bos_text, strlen(s->bos_text)))
            add_bos = 0; /* the chat template wrote BOS (as engine_chat_tokens) */
        n = tok_encode(tok, r.prompt_text, len, add_bos, r.parse_special, NULL, 0, &e);
        if (n >= 0 && n <= n_ctx + 1) {
            ids = xmalloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
            n = tok_encode(tok, r.prompt_text, len, add_bos, r.parse_special, ids, n, &e);
        }
        if (n < 0) {
            srv_err(&err, 400, "invalid_request_error", NULL, "'%s': %s",
                    kind == SRV_CHAT ? "messages" : "prompt", e.msg);
            goto fail;
        }
    }
    if (n == 0) {
        srv_err(&err, 400, "invalid_request_error", NULL, "the prompt is empty (no tokens)");
        goto fail;
    }
    if (n + 1 > n_ctx) {
        srv_err(&err, 400, "invalid_request_error", "context_length_exceeded",
                "the prompt is %d tokens, which does not fit the context of %d tokens (the "
                "prompt plus at least one generated token must fit)",
                n, n_ctx);
        goto fail;
    }

    GenParams gp;
    gen_params_default(&gp);
    gp.max_tokens = r.max_tokens > 0 ? r.max_tokens : n_ctx;
    gp.sampling = r.sp;
    gp.ignore_eos = r.ignore_eos;
    SrvJob *j = job_new(ids, n, &gp, r.stop, r.n_stop, r.logprobs);
    ids = NULL;
    r.n_stop = 0; /* the job owns the stop strings now */
    cn->job = j;
    if (sched_submit(s->sched, j) != 0) {
        srv_err(&err, 503, "server_error", "server_busy",
                "the server is busy (%d requests queued); retry later", s->p.n_queue);
        srv_gen_req_free(&r);
        return send_error(s, cn, c, &err);
    }

    GenMeta g = {.kind = kind,
                 .created = time(NULL),
                 .model = s->model_id,
                 .logprobs = r.logprobs,
                 .include_usage = r.include_usage,
                 .n_prompt = n};
    snprintf(g.id, sizeof g.id, "%s-%lx%08lx", kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long)atomic_fetch_add(&s->id_counter, 1), (unsigned long)random());
    int stream = r.stream;
    srv_gen_req_free(&r);

    if (!stream) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        wait_done_or_gone(j, ci ? ci->connect_fd : -1);
        if (j->finish == FINISH_ERROR || (j->finish == FINISH_CANCELLED && j->err[0])) {
            int st = j->finish == FINISH_CANCELLED ? 503 : j->n_gen == 0 ? 400 : 500;
            return send_errorf(s, cn, c, st, st == 400 ? "invalid_request_error" : "server_error",
                               NULL, j->err);
        }
        return send_json(cn, c, 200, full_response(&g, j));
    }

    Stream *st = xcalloc(1, sizeof *st);
    st->srv = s;
    st->job = j;
    job_ref(j);
    st->g = g;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, st_reader, st, st_free);
    if (!resp) {
        st_free(st);
        return MHD_NO;
    }
    add_common_headers(resp);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return queue(cn, c, 200, resp);
fail:
    free(ids);
    srv_gen_req_free(&r);
    return send_error(s, cn, c, &err);
}

static enum MHD_Result ep_generate(Server *s, Conn *cn, struct MHD_Connection *c) {
    return ep_gen(s, cn, c, SRV_GENERATE);
}
static enum MHD_Result ep_completions(Server *s, Conn *cn, struct MHD_Connection *c) {
    return ep_gen(s, cn, c, SRV_COMPLETION);
}
static enum MHD_Result ep_chat(Server *s, Conn *cn, struct MHD_Connection *c) {
    return ep_gen(s, cn, c, SRV_CHAT);
}

/* ------------------------------------------------------------ routing */

static const Route ROUTES[] = {
    {"/", M_GET, 0, ep_page},
    {"/index.html", M_GET, 0, ep_page},
    {"/health", M_GET, 0, ep_health},
    {"/v1/health", M_GET, 0, ep_health},
    {"/metrics", M_GET, 1, ep_metrics},
    {"/v1/models", M_GET, 1, ep_models},
    {"/models", M_GET, 1, ep_models},
    {"/generate", M_POST, 1, ep_generate},
    {"/v1/completions", M_POST, 1, ep_completions},
    {"/completions", M_POST, 1, ep_completions},
    {"/v1/chat/completions", M_POST, 1, ep_chat},
    {"/chat/completions", M_POST, 1, ep_chat},
    {"/tokenize", M_POST, 1, ep_tokenize},
    {"/detokenize", M_POST, 1, ep_detokenize},
};
#define N_ROUTES (int)(sizeof ROUTES / sizeof ROUTES[0])

static int auth_ok(Server *s, struct MHD_Connection *c) {
    if (!s->p.api_key || !s->p.api_key[0]) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    while (*h == ' ') h++;
    size_t a = strlen(h), b = strlen(s->p.api_key);
    unsigned diff = a != b;
    for (size_t i = 0; i < a && i < b; i++)
        diff |= (unsigned char)h[i] ^ (unsigned char)s->p.api_key[i];
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    Server *s = cls;
    Conn *cn = *con_cls;
    if (!cn) { /* headers received: everything that needs no body is answered now */
        cn = xcalloc(1, sizeof *cn);
        *con_cls = cn;
        cn->t0 = time_now();
        snprintf(cn->method, sizeof cn->method, "%s", method);
        snprintf(cn->path, sizeof cn->path, "%s", url);
        for (char *q = cn->path; *q; q++) /* the log and error texts show it */
            if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) *q = '?';
        for (char *q = cn->method; *q; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) *q = '?';
        atomic_fetch_add(&s->n_http, 1);
        if (!strcmp(method, "OPTIONS")) {
            struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            add_common_headers(r);
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                    "Content-Type, Authorization, X-Requested-With");
            MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
            return queue(cn, c, 204, r);
        }
        const Route *rt = NULL;
        for (int i = 0; i < N_ROUTES; i++)
            if (!strcmp(url, ROUTES[i].path)) rt = &ROUTES[i];
        if (!rt) {
            char msg[256];
            snprintf(msg, sizeof msg, "no endpoint %.160s (see docs/api.md)", cn->path);
            return send_errorf(s, cn, c, 404, "invalid_request_error", "not_found", msg);
        }
        Method m = !strcmp(method, "GET") || !strcmp(method, "HEAD") ? M_GET
                   : !strcmp(method, "POST")                         ? M_POST
                                                                     : 0;
        if (m != rt->method) {
            char msg[256];
            snprintf(msg, sizeof msg, "%.16s is not allowed on %.160s (use %s)", cn->method,
                     cn->path, rt->method == M_GET ? "GET" : "POST");
            return send_errorf(s, cn, c, 405, "invalid_request_error", "method_not_allowed", msg);
        }
        if (rt->auth && !auth_ok(s, c))
            return send_errorf(s, cn, c, 401, "invalid_request_error", "invalid_api_key",
                               "missing or wrong API key (send 'Authorization: Bearer KEY')");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->p.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes",
                     s->p.max_body);
            return send_errorf(s, cn, c, 413, "invalid_request_error", "request_too_large", msg);
        }
        return MHD_YES;
    }
    if (cn->responded) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        size_t k = *upload_size;
        *upload_size = 0;
        if (cn->too_big || cn->n_body + k > s->p.max_body) {
            cn->too_big = 1;
            return MHD_YES;
        }
        if (cn->n_body + k + 1 > cn->cap_body) {
            cn->cap_body = 2 * (cn->n_body + k + 1);
            cn->body = xrealloc(cn->body, cn->cap_body);
        }
        memcpy(cn->body + cn->n_body, upload, k);
        cn->n_body += k;
        cn->body[cn->n_body] = 0;
        return MHD_YES;
    }
    if (cn->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes",
                 s->p.max_body);
        return send_errorf(s, cn, c, 413, "invalid_request_error", "request_too_large", msg);
    }
    for (int i = 0; i < N_ROUTES; i++)
        if (!strcmp(url, ROUTES[i].path)) return ROUTES[i].fn(s, cn, c);
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    Conn *cn = *con_cls;
    if (!cn) return;
    *con_cls = NULL;
    int n_prompt = 0, n_gen = 0;
    if (cn->job) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) atomic_store(&cn->job->cancelled, 1);
        pthread_mutex_lock(&cn->job->mu);
        n_prompt = cn->job->n_prompt;
        n_gen = cn->job->n_gen;
        pthread_mutex_unlock(&cn->job->mu);
        job_unref(cn->job);
    }
    LOG_INFO("%s %s %d tokens %d+%d %.1f ms%s", cn->method, cn->path, cn->status, n_prompt, n_gen,
             1e3 * (time_now() - cn->t0),
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client gone)");
    free(cn->body);
    free(cn);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n') buf[--n] = 0;
    LOG_DEBUG("http: %s", buf);
}

Server *server_start(Engine *en, const ServerParams *p, Err *e) {
    Server *s = xcalloc(1, sizeof *s);
    s->en = en;
    s->p = *p;
    s->model_id = xstrdup(p->model_id ? p->model_id : "model");
    s->model_path = p->model_path ? xstrdup(p->model_path) : NULL;
    s->p.model_id = s->model_id;
    s->p.model_path = s->model_path;
    s->created = time(NULL);
    int32_t bos = tok_bos(en->tok);
    s->bos_text = bos >= 0 ? tok_piece(en->tok, bos) : NULL;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());

    const char *host = p->host ? p->host : "127.0.0.1";
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    int v6 = 0;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p->port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p->port);
        flags |= MHD_USE_IPv6;
        v6 = 1;
    } else {
        err_set(e, "--host: '%s' is not an IPv4 or IPv6 address", host);
        goto fail;
    }
    snprintf(s->host, sizeof s->host, v6 ? "[%s]" : "%s", host);

    s->sched = sched_start(en, p->n_queue, p->prefill_chunk, e);
    if (!s->sched) goto fail;
    s->d = MHD_start_daemon(
        flags, (uint16_t)p->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->max_conn,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(256 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!s->d) {
        err_set(e, "cannot listen on %s:%d (address in use or not permitted)", s->host, p->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    LOG_INFO("listening on http://%s:%d (model '%s', %d slots, context %d, queue %d)", s->host,
             s->port, s->model_id, en->backend->n_seq, en->backend->n_ctx, p->n_queue);
    return s;
fail:
    sched_stop(s->sched);
    sched_free(s->sched);
    free(s->model_id);
    free(s->model_path);
    free(s);
    return NULL;
}

void server_stop(Server *s) {
    if (!s) return;
    sched_stop(s->sched); /* every job finishes: blocked handlers and streams return */
    MHD_stop_daemon(s->d);
    sched_free(s->sched);
    free(s->model_id);
    free(s->model_path);
    free(s);
}
