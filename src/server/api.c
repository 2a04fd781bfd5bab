/* api.c - request validation for the generation endpoints (/generate,
 * /v1/completions, /v1/chat/completions). Unknown fields are ignored (as
 * OpenAI clients send many); known fields must have the right type and
 * range, and JSON null means "not given". */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "server/srv_internal.h"

int srv_err(SrvError *err, int status, const char *type, const char *code, const char *fmt, ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(...) srv_err(err, 400, "invalid_request_error", NULL, __VA_ARGS__)

char *srv_error_json(const SrvError *err) {
    json_t *o = json_pack("{s:{s:s, s:s, s:o}}", "error", "message", err->msg, "type",
                          err->type ? err->type : "invalid_request_error", "code",
                          err->code ? json_string(err->code) : json_integer(err->status));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s ? s
             : xstrdup("{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\"}}");
}

json_t *srv_load_object(const char *body, size_t n, SrvError *err) {
    json_error_t je;
    if (n == 0) {
        BAD("request body is empty; expected a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        BAD("invalid JSON in request body at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        BAD("request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Typed optional getters: 0 = absent or null (out untouched), 1 = set,
 * -1 = wrong type or range (err filled). */
static int get_num(json_t *o, const char *key, double lo, double hi, double *out, SrvError *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return BAD("'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return BAD("'%s' must be between %g and %g (got %g)", key, lo, hi, d);
    *out = d;
    return 1;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out,
                   SrvError *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        x = (long long)json_real_value(v);
    } else {
        return BAD("'%s' must be an integer", key);
    }
    if (x < lo || x > hi)
        return BAD("'%s' must be between %lld and %lld (got %lld)", key, lo, hi, x);
    *out = x;
    return 1;
}

static int get_bool(json_t *o, const char *key, int *out, SrvError *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD("'%s' must be true or false", key);
    *out = json_is_true(v);
    return 1;
}

static int check_model(const SrvParseCtx *c, json_t *o, SrvError *err) {
    json_t *v = json_object_get(o, "model");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return BAD("'model' must be a string");
    const char *m = json_string_value(v);
    if (!strcmp(m, c->model_id) || (c->model_path && !strcmp(m, c->model_path))) return 0;
    return srv_err(err, 404, "invalid_request_error", "model_not_found",
                   "The model '%s' does not exist; this server serves '%s'", m, c->model_id);
}

static int parse_stop(json_t *o, SrvGenReq *r, SrvError *err) {
    json_t *v = json_object_get(o, "stop");
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return 0;
        r->stop[r->n_stop++] = xstrndup(json_string_value(v), json_string_length(v));
        return 0;
    }
    if (!json_is_array(v)) return BAD("'stop' must be a string or an array of strings");
    if (json_array_size(v) > ENGINE_MAX_STOP)
        return BAD("'stop' has %zu strings; at most %d are allowed", json_array_size(v),
                   ENGINE_MAX_STOP);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s)) return BAD("'stop[%zu]' must be a string", i);
        if (json_string_length(s) == 0) continue;
        if (json_string_length(s) > 1024) return BAD("'stop[%zu]' is longer than 1024 bytes", i);
        r->stop[r->n_stop++] = xstrndup(json_string_value(s), json_string_length(s));
    }
    return 0;
}

/* Text of a chat message's "content": a string, null, or an array of
 * {"type": "text", "text": ...} parts (concatenated). */
static int message_text(json_t *content, size_t idx, char **out, SrvError *err) {
    if (!content || json_is_null(content)) {
        *out = xstrdup("");
        return 0;
    }
    if (json_is_string(content)) {
        *out = xstrndup(json_string_value(content), json_string_length(content));
        return 0;
    }
    if (!json_is_array(content))
        return BAD("'messages[%zu].content' must be a string or an array of text parts", idx);
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(content, i, p) {
        const char *type = NULL, *text = NULL;
        json_error_t je;
        if (json_unpack_ex(p, &je, 0, "{s:s, s?s}", "type", &type, "text", &text) != 0)
            return BAD("'messages[%zu].content[%zu]': %s", idx, i, je.text);
        if (strcmp(type, "text") || !text)
            return BAD("'messages[%zu].content[%zu]': only text parts are supported", idx, i);
        n += strlen(text);
    }
    char *s = xmalloc(n + 1);
    size_t k = 0;
    json_array_foreach(content, i, p) {
        const char *text = json_string_value(json_object_get(p, "text"));
        size_t l = strlen(text);
        memcpy(s + k, text, l);
        k += l;
    }
    s[k] = 0;
    *out = s;
    return 0;
}

static int parse_messages(const SrvParseCtx *c, json_t *o, SrvGenReq *r, SrvError *err) {
    json_t *v = json_object_get(o, "messages");
    if (!v) return BAD("'messages' is required");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return BAD("'messages' must be a non-empty array");
    size_t n = json_array_size(v);
    if (n > 4096) return BAD("'messages' has more than 4096 entries");
    ChatMessage *msgs = xcalloc(n, sizeof *msgs);
    char **texts = xcalloc(n, sizeof *texts);
    int rc = -1;
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
        const char *role = NULL;
        json_t *content = NULL;
        json_error_t je;
        if (json_unpack_ex(m, &je, 0, "{s:s, s?o}", "role", &role, "content", &content) != 0) {
            BAD("'messages[%zu]': %s", i, je.text);
            goto done;
        }
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
            BAD("'messages[%zu].role' must be system, user or assistant (got '%s')", i, role);
            goto done;
        }
        if (message_text(content, i, &texts[i], err) != 0) goto done;
        if (strlen(texts[i]) != json_string_length(json_object_get(m, "content")) &&
            json_is_string(json_object_get(m, "content"))) {
            BAD("'messages[%zu].content' contains a NUL character", i);
            goto done;
        }
        msgs[i].role = role;
        msgs[i].content = texts[i];
    }
    Err e = {{0}};
    r->prompt_text = chat_render(c->tmpl, msgs, (int)n, 1, c->bos_text, &e);
    if (!r->prompt_text) {
        BAD("'messages': %s", e.msg);
        goto done;
    }
    r->parse_special = 1;
    rc = 0;
done:
    for (i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(msgs);
    return rc;
}

static int parse_prompt(json_t *o, SrvGenReq *r, SrvError *err) {
    json_t *v = json_object_get(o, "prompt");
    if (!v || json_is_null(v)) return BAD("'prompt' is required");
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return BAD("'prompt' contains a NUL character");
        r->prompt_text = xstrndup(json_string_value(v), json_string_length(v));
        return 0;
    }
    if (r->kind == SRV_COMPLETION && json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n == 0) return BAD("'prompt' must not be empty");
        json_t *first = json_array_get(v, 0);
        if (json_is_string(first)) { /* ["text"]: one prompt only */
            if (n != 1) return BAD("'prompt': only one prompt per request is supported");
            r->prompt_text = xstrndup(json_string_value(first), json_string_length(first));
            return 0;
        }
        if (n > (1u << 20)) return BAD("'prompt' has too many tokens");
        r->prompt_ids = xmalloc(n * sizeof *r->prompt_ids);
        r->n_prompt_ids = (int)n;
        size_t i;
        json_t *t;
        json_array_foreach(v, i, t) {
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > INT32_MAX)
                return BAD("'prompt[%zu]' must be a token id (a non-negative integer)", i);
            r->prompt_ids[i] = (int32_t)json_integer_value(t);
        }
        return 0;
    }
    return BAD(r->kind == SRV_COMPLETION
                   ? "'prompt' must be a string, an array of token ids or an array of one string"
                   : "'prompt' must be a string");
}

int srv_parse_gen(const SrvParseCtx *c, SrvKind kind, const char *body, size_t n, SrvGenReq *r,
                  SrvError *err) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->sp = *c->sp_default;
    json_t *o = srv_load_object(body, n, err);
    if (!o) return -1;
    int rc = -1;
    long long ll;
    double d;
    int b;

    if (check_model(c, o, err)) goto done;
    if (kind == SRV_CHAT ? parse_messages(c, o, r, err) : parse_prompt(o, r, err)) goto done;

    /* max_tokens: 1..n_ctx; omitted = 16 for completions (as OpenAI), the
     * rest of the context for chat, 128 for /generate */
    r->max_tokens = kind == SRV_COMPLETION ? 16 : kind == SRV_GENERATE ? 128 : 0;
    int got = get_int(o, "max_tokens", 1, c->n_ctx, &ll, err);
    if (got < 0) goto done;
    if (got) r->max_tokens = (int)ll;
    if ((got = get_int(o, "max_completion_tokens", 1, c->n_ctx, &ll, err)) < 0) goto done;
    if (got) r->max_tokens = (int)ll;
    if ((got = get_int(o, "n_predict", -1, c->n_ctx, &ll, err)) < 0) goto done; /* llama.cpp */
    if (got) r->max_tokens = ll <= 0 ? 0 : (int)ll;

    if ((got = get_num(o, "temperature", 0, 100, &d, err)) < 0) goto done;
    if (got) r->sp.temperature = (float)d;
    if ((got = get_num(o, "top_p", 0, 1, &d, err)) < 0) goto done;
    if (got) r->sp.top_p = (float)d;
    if ((got = get_int(o, "top_k", 0, 1 << 24, &ll, err)) < 0) goto done;
    if (got) r->sp.top_k = (int)ll;
    if ((got = get_num(o, "min_p", 0, 1, &d, err)) < 0) goto done;
    if (got) r->sp.min_p = (float)d;
    if ((got = get_num(o, "repeat_penalty", 0, 10, &d, err)) < 0) goto done;
    if (got) r->sp.repeat_penalty = (float)d;
    if ((got = get_int(o, "repeat_last_n", 0, 1 << 20, &ll, err)) < 0) goto done;
    if (got) r->sp.penalty_last_n = (int)ll;
    if ((got = get_num(o, "presence_penalty", -2, 2, &d, err)) < 0) goto done;
    if (got) r->sp.presence_penalty = (float)d;
    if ((got = get_num(o, "frequency_penalty", -2, 2, &d, err)) < 0) goto done;
    if (got) r->sp.frequency_penalty = (float)d;

    if ((got = get_int(o, "seed", -1, INT64_MAX, &ll, err)) < 0) goto done;
    if (got && ll >= 0) {
        r->sp.seed = (uint64_t)ll;
    } else if (!c->seed_set) { /* a fresh seed per request */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static _Atomic uint64_t counter;
        r->sp.seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
                     (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
    }

    if ((got = get_int(o, "n", 1, 1, &ll, err)) < 0) {
        BAD("'n' must be 1 (one choice per request is supported)");
        goto done;
    }
    if (parse_stop(o, r, err)) goto done;
    if (get_bool(o, "stream", &r->stream, err) < 0) goto done;
    if (get_bool(o, "ignore_eos", &r->ignore_eos, err) < 0) goto done;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            BAD("'stream_options' must be an object");
            goto done;
        }
        if (get_bool(so, "include_usage", &r->include_usage, err) < 0) goto done;
    }
    if (kind == SRV_COMPLETION) { /* logprobs: integer 0..5 */
        if ((got = get_int(o, "logprobs", 0, 5, &ll, err)) < 0) goto done;
        r->logprobs = got;
        if ((got = get_bool(o, "echo", &b, err)) < 0) goto done;
        if (got && b) {
            BAD("'echo' is not supported");
            goto done;
        }
    } else if (kind == SRV_CHAT) {
        if (get_bool(o, "logprobs", &r->logprobs, err) < 0) goto done;
        if (get_int(o, "top_logprobs", 0, 20, &ll, err) < 0) goto done;
        json_t *tools = json_object_get(o, "tools");
        if (tools && !json_is_null(tools) && json_array_size(tools) > 0) {
            BAD("'tools' is not supported");
            goto done;
        }
    }
    rc = 0;
done:
    json_decref(o);
    if (rc != 0) srv_gen_req_free(r);
    return rc;
}

void srv_gen_req_free(SrvGenReq *r) {
    if (!r) return;
    free(r->prompt_text);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}
