/* server.h - the HTTP server behind `m40llm serve`.
 *
 * libmicrohttpd (one thread per connection) parses HTTP; jansson validates
 * request bodies and builds responses. One scheduler thread owns the Engine
 * and decodes up to n_seq sequences together (continuous batching: requests
 * join and leave between steps, prompt prefill runs in chunks between decode
 * steps). HTTP threads hand jobs to the scheduler through a bounded FIFO
 * queue and read streamed text back from a per-job buffer.
 *
 * Endpoints (docs/api.md): POST /generate, /v1/completions,
 * /v1/chat/completions, /tokenize, /detokenize; GET /, /health, /metrics,
 * /v1/models; OPTIONS (CORS preflight) on every path. */
#ifndef M40_SERVER_H
#define M40_SERVER_H

#include <stddef.h>

#include "base/err.h"
#include "engine/engine.h"
#include "sampler/sampler.h"

typedef struct ServerParams {
    const char *host;       /* "127.0.0.1" (default) or any IPv4/IPv6 literal */
    int port;               /* 0: pick a free port (see server_port) */
    const char *api_key;    /* NULL: no authentication */
    const char *model_id;   /* name in /v1/models and responses */
    const char *model_path; /* also accepted as "model" in requests (may be NULL) */
    int n_queue;            /* requests waiting beyond the busy slots; past it -> 503 */
    int prefill_chunk;      /* prompt tokens prefilled between two decode steps */
    size_t max_body;        /* request body limit in bytes (413 beyond) */
    int max_conn;           /* concurrent connections */
    int timeout_s;          /* idle connection timeout */
    SamplerParams sp;       /* default sampling for requests that omit a field */
    int seed_set;           /* sp.seed is fixed; otherwise a random seed per request */
} ServerParams;

void server_params_default(ServerParams *p);

typedef struct Server Server;

/* Starts the scheduler and the HTTP daemon on an Engine opened with
 * bp.n_seq parallel slots. The Engine must outlive the Server. Logs
 * "listening on http://HOST:PORT". NULL with e set when binding fails. */
Server *server_start(Engine *en, const ServerParams *p, Err *e);
/* The bound port (useful with port 0). */
int server_port(const Server *s);
/* Cancels running and queued requests, stops the daemon and the scheduler,
 * frees everything. NULL-safe. */
void server_stop(Server *s);

#endif
