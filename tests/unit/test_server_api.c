/* test_server_api.c - request validation of the generation endpoints
 * (src/server/api.c) without a model: every field's type and range, model
 * names, stop strings, chat messages, and the error JSON shape. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"
#include "testutil.h"

static SamplerParams g_sp;

static SrvParseCtx ctx(void) {
    sampler_params_default(&g_sp);
    g_sp.seed = 7;
    SrvParseCtx c = {.model_id = "tiny.gguf",
                     .model_path = "/models/tiny.gguf",
                     .n_ctx = 512,
                     .sp_default = &g_sp,
                     .seed_set = 1,
                     .tmpl = CHAT_TMPL_CHATML,
                     .bos_text = "<s>"};
    return c;
}

static int parse(SrvKind k, const char *body, SrvGenReq *r, SrvError *err) {
    SrvParseCtx c = ctx();
    return srv_parse_gen(&c, k, body, strlen(body), r, err);
}

/* Expects a parse failure with `status` and a message containing `needle`. */
static void expect_fail(SrvKind k, const char *body, int status, const char *needle) {
    SrvGenReq r;
    SrvError err;
    memset(&err, 0, sizeof err);
    int rc = parse(k, body, &r, &err);
    if (rc == 0) srv_gen_req_free(&r);
    if (rc != -1 || err.status != status || !strstr(err.msg, needle))
        fail_msg("body %s: rc %d status %d msg '%s' (wanted %d, '%s')", body, rc, err.status,
                 err.msg, status, needle);
}

static void test_generate_defaults(void **st) {
    (void)st;
    SrvGenReq r;
    SrvError err;
    assert_int_equal(parse(SRV_GENERATE, "{\"prompt\": \"Once upon\"}", &r, &err), 0);
    assert_string_equal(r.prompt_text, "Once upon");
    assert_int_equal(r.max_tokens, 128);
    assert_true(r.sp.temperature == g_sp.temperature);
    assert_int_equal(r.sp.top_k, g_sp.top_k);
    assert_int_equal((int)r.sp.seed, 7);
    assert_int_equal(r.stream, 0);
    assert_int_equal(r.n_stop, 0);
    assert_int_equal(r.parse_special, 0);
    srv_gen_req_free(&r);
}

static void test_fields(void **st) {
    (void)st;
    SrvGenReq r;
    SrvError err;
    const char *b = "{\"model\": \"/models/tiny.gguf\", \"prompt\": \"x\", \"max_tokens\": 33, "
                    "\"temperature\": 0, \"top_p\": 0.5, \"top_k\": 3, \"min_p\": 0.2, "
                    "\"repeat_penalty\": 1.3, \"seed\": 99, \"stop\": [\"a\", \"\", \"bc\"], "
                    "\"stream\": true, \"stream_options\": {\"include_usage\": true}, "
                    "\"logprobs\": 2, \"n\": 1, \"user\": \"ignored\", \"suffix\": null}";
    assert_int_equal(parse(SRV_COMPLETION, b, &r, &err), 0);
    assert_int_equal(r.max_tokens, 33);
    assert_true(r.sp.temperature == 0.0f && r.sp.top_p == 0.5f && r.sp.top_k == 3);
    assert_true(r.sp.min_p == 0.2f && r.sp.repeat_penalty == 1.3f);
    assert_int_equal((int)r.sp.seed, 99);
    assert_int_equal(r.n_stop, 2);
    assert_string_equal(r.stop[0], "a");
    assert_string_equal(r.stop[1], "bc");
    assert_int_equal(r.stream, 1);
    assert_int_equal(r.include_usage, 1);
    assert_int_equal(r.logprobs, 1);
    srv_gen_req_free(&r);

    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\": [1, 2, 3], \"stop\": \"\\n\"}", &r, &err),
                     0);
    assert_int_equal(r.n_prompt_ids, 3);
    assert_int_equal(r.prompt_ids[2], 3);
    assert_null(r.prompt_text);
    assert_int_equal(r.max_tokens, 16); /* OpenAI's default for completions */
    assert_string_equal(r.stop[0], "\n");
    srv_gen_req_free(&r);

    assert_int_equal(parse(SRV_GENERATE,
                           "{\"prompt\": \"x\", \"max_completion_tokens\": 5, "
                           "\"temperature\": null, \"stop\": null}",
                           &r, &err),
                     0);
    assert_int_equal(r.max_tokens, 5);
    assert_true(r.sp.temperature == g_sp.temperature); /* null = not given */
    srv_gen_req_free(&r);
}

static void test_chat(void **st) {
    (void)st;
    SrvGenReq r;
    SrvError err;
    const char *b = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice.\"}, "
                    "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi \"}, "
                    "{\"type\": \"text\", \"text\": \"there\"}]}], \"logprobs\": true}";
    assert_int_equal(parse(SRV_CHAT, b, &r, &err), 0);
    assert_int_equal(r.parse_special, 1);
    assert_int_equal(r.max_tokens, 0); /* until the context is full */
    assert_int_equal(r.logprobs, 1);
    assert_non_null(strstr(r.prompt_text, "Be nice."));
    assert_non_null(strstr(r.prompt_text, "Hi there"));
    assert_non_null(strstr(r.prompt_text, "<|im_start|>assistant"));
    srv_gen_req_free(&r);
}

static void test_errors(void **st) {
    (void)st;
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\"", 400, "invalid JSON");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"prompt\": \"y\"}", 400, "invalid JSON");
    expect_fail(SRV_GENERATE, "[1]", 400, "JSON object");
    expect_fail(SRV_GENERATE, "", 400, "empty");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"\xc3\x28\"}", 400, "invalid JSON");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"a\\u0000b\"}", 400, "invalid JSON");
    expect_fail(SRV_GENERATE, "{}", 400, "'prompt' is required");
    expect_fail(SRV_GENERATE, "{\"prompt\": 3}", 400, "'prompt' must be a string");
    expect_fail(SRV_GENERATE, "{\"prompt\": [1]}", 400, "'prompt' must be a string");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"max_tokens\": 0}", 400, "'max_tokens'");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"max_tokens\": -1}", 400, "'max_tokens'");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"max_tokens\": 513}", 400, "'max_tokens'");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"max_tokens\": 1e300}", 400, "'max_tokens'");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"max_tokens\": \"5\"}", 400, "integer");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"temperature\": \"hot\"}", 400,
                "'temperature' must be a number");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"temperature\": -0.5}", 400, "temperature");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"top_p\": 1.5}", 400, "top_p");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"top_k\": -2}", 400, "top_k");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"seed\": -2}", 400, "seed");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"seed\": 1.5}", 400, "seed");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"stream\": 1}", 400, "'stream'");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"stop\": 5}", 400, "'stop'");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"stop\": [\"a\", 5]}", 400, "'stop[1]'");
    expect_fail(SRV_GENERATE,
                "{\"prompt\": \"x\", \"stop\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
                "\"9\"]}",
                400, "at most 8");
    expect_fail(SRV_GENERATE, "{\"prompt\": \"x\", \"stream_options\": 3}", 400, "stream_options");
    expect_fail(SRV_COMPLETION, "{\"prompt\": \"x\", \"n\": 3}", 400, "'n' must be 1");
    expect_fail(SRV_COMPLETION, "{\"prompt\": [1, -3]}", 400, "'prompt[1]'");
    expect_fail(SRV_COMPLETION, "{\"prompt\": [\"a\", \"b\"]}", 400, "one prompt");
    expect_fail(SRV_COMPLETION, "{\"prompt\": \"x\", \"echo\": true}", 400, "echo");
    expect_fail(SRV_COMPLETION, "{\"prompt\": \"x\", \"model\": \"gpt-4\"}", 404, "gpt-4");
    expect_fail(SRV_COMPLETION, "{\"prompt\": \"x\", \"model\": 4}", 400, "'model'");
    expect_fail(SRV_CHAT, "{\"prompt\": \"x\"}", 400, "'messages' is required");
    expect_fail(SRV_CHAT, "{\"messages\": []}", 400, "non-empty");
    expect_fail(SRV_CHAT, "{\"messages\": {}}", 400, "non-empty");
    expect_fail(SRV_CHAT, "{\"messages\": [{\"content\": \"x\"}]}", 400, "messages[0]");
    expect_fail(SRV_CHAT, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", 400,
                "role");
    expect_fail(SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 400, "content");
    expect_fail(SRV_CHAT,
                "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
                400, "text parts");
    expect_fail(SRV_CHAT,
                "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": 1}", 400,
                "'logprobs'");
}

static void test_error_json(void **st) {
    (void)st;
    SrvError err;
    srv_err(&err, 404, "invalid_request_error", "model_not_found", "no model '%s'", "m\"x");
    char *s = srv_error_json(&err);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    assert_non_null(o);
    json_t *e = json_object_get(o, "error");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "no model 'm\"x'");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "model_not_found");
    json_decref(o);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_defaults),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_json),
    };
    return TEST_MAIN(tests);
}
