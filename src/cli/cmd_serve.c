/* cmd_serve.c - `m40llm serve`: loads a model and runs the HTTP server until
 * SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "server/server.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: m40llm serve -m MODEL [options]\n\n"
            "HTTP server with /generate and OpenAI-compatible endpoints (docs/api.md).\n\n"
            "server options:\n"
            "  --host ADDR             address to bind (default 127.0.0.1; 0.0.0.0 = all)\n"
            "  --port N                TCP port (default 8080; 0 = any free port, logged)\n"
            "  --api-key KEY           require 'Authorization: Bearer KEY' (default: env\n"
            "                          M40LLM_API_KEY, else none)\n"
            "  -np, --parallel N       sequences decoded together (default 4)\n"
            "  --queue N               requests that may wait for a slot (default 64; 503 beyond)\n"
            "  --chat-template NAME    chatml, llama2, llama3, mistral, zephyr, gemma, phi3\n"
            "                          (default: detected from the model; chatml if none)\n"
            "  --alias NAME            model id in /v1/models (default: the file name)\n"
            "  --prefill-chunk N       prompt tokens per prefill slice between decode steps "
            "(default 128)\n"
            "  --max-body BYTES        request body limit (default 4194304; 413 beyond)\n"
            "  --timeout S             idle connection timeout in seconds (default 600)\n"
            "\nmodel options:\n%s\ndefault sampling (requests may override):\n%s",
            CLI_MODEL_OPTS_HELP, CLI_SAMPLING_OPTS_HELP);
}

int cmd_serve(int argc, char **argv) {
    CliModelOpts mo;
    cli_model_opts_init(&mo);
    ServerParams sp;
    server_params_default(&sp);
    int parallel = 4;
    const char *tmpl_name = NULL, *alias = NULL;
    sp.api_key = getenv("M40LLM_API_KEY");
    long n;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_cmd_option("serve", &mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            if (!strncmp(a, "-", 1))
                fprintf(stderr, "m40llm serve: unknown option %s or it needs a value\n", a);
            else
                fprintf(stderr, "m40llm serve: unexpected argument '%s'\n", a);
            return 2;
        }
        const char *v = argv[i + 1];
        if (!strcmp(a, "--host")) {
            sp.host = v;
        } else if (!strcmp(a, "--port")) {
            if (cli_parse_int("serve", a, v, 0, 65535, &n)) return 2;
            sp.port = (int)n;
        } else if (!strcmp(a, "--api-key")) {
            sp.api_key = v;
        } else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) {
            if (cli_parse_int("serve", a, v, 1, 256, &n)) return 2;
            parallel = (int)n;
        } else if (!strcmp(a, "--queue")) {
            if (cli_parse_int("serve", a, v, 1, 1 << 20, &n)) return 2;
            sp.n_queue = (int)n;
        } else if (!strcmp(a, "--chat-template")) {
            tmpl_name = v;
        } else if (!strcmp(a, "--alias")) {
            alias = v;
        } else if (!strcmp(a, "--prefill-chunk")) {
            if (cli_parse_int("serve", a, v, 1, 1 << 20, &n)) return 2;
            sp.prefill_chunk = (int)n;
        } else if (!strcmp(a, "--max-body")) {
            if (cli_parse_int("serve", a, v, 1024, 1L << 30, &n)) return 2;
            sp.max_body = (size_t)n;
        } else if (!strcmp(a, "--timeout")) {
            if (cli_parse_int("serve", a, v, 1, 86400, &n)) return 2;
            sp.timeout_s = (int)n;
        } else {
            fprintf(stderr, "m40llm serve: unknown option %s (m40llm serve --help)\n", a);
            return 2;
        }
        i++;
    }
    if (cli_require_model("serve", &mo)) return 2;
    unsigned char addr[16];
    if (strcmp(sp.host, "localhost") && inet_pton(AF_INET, sp.host, addr) != 1 &&
        inet_pton(AF_INET6, sp.host, addr) != 1) {
        fprintf(stderr, "m40llm serve: --host: '%s' is not an IPv4 or IPv6 address\n", sp.host);
        return 2;
    }
    ChatTemplate forced;
    if (cli_chat_template("serve", tmpl_name, &forced)) return 2;

    /* SIGINT/SIGTERM are taken by sigwait below; every thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    mo.bp.n_seq = parallel;
    /* concurrent requests: each seed's reply independent of the load */
    mo.bp.batch_invariant = parallel > 1;
    Err e = {{0}};
    Engine *en = engine_open(mo.model, &mo.bp, &e);
    if (!en) {
        fprintf(stderr, "m40llm serve: %s\n", e.msg);
        return 1;
    }
    if (forced != CHAT_TMPL_UNKNOWN) {
        en->chat_tmpl = forced;
    } else if (en->chat_tmpl == CHAT_TMPL_UNKNOWN) {
        LOG_WARN("serve: the model has no recognized chat template; chat requests use chatml "
                 "(--chat-template NAME to choose)");
        en->chat_tmpl = CHAT_TMPL_CHATML;
    }
    const char *base = strrchr(mo.model, '/');
    sp.model_id = alias ? alias : base ? base + 1 : mo.model;
    sp.model_path = mo.model;
    sp.sp = mo.sp;
    sp.seed_set = mo.seed_set;

    Server *srv = server_start(en, &sp, &e);
    if (!srv) {
        fprintf(stderr, "m40llm serve: %s\n", e.msg);
        engine_close(en);
        return 1;
    }
    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_INFO("serve: %s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(srv);
    engine_close(en);
    return 0;
}
