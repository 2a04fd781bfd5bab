/* cmd_chat.c - 'm40llm chat': multi-turn chat on stdin/stdout with the
 * model's chat template. One input line is one user message; EOF ends.
 * The KV cache is kept across turns: each turn renders the whole
 * conversation, and only the tokens after the longest prefix already in
 * the cache are run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "engine/engine.h"

static const char *const CHAT_HELP =
    "usage: m40llm chat -m MODEL [--chat-template NAME] [--system TEXT] [options]\n\n"
    "Interactive chat: each line on stdin is a user message; the reply is streamed\n"
    "to stdout. EOF (Ctrl-D) ends. The prompt marker \"> \" is shown on a terminal.\n\n"
    "  --chat-template NAME    chatml, llama2, llama3, mistral, zephyr, gemma, phi3\n"
    "                          (default: detected from tokenizer.chat_template)\n"
    "  --system TEXT           system message\n"
    "  -n, --n-predict N       max tokens per reply (default -1: until end of turn or\n"
    "                          the context is full)\n"
    "  -v, --verbose           debug log; --log-level error|warn|info|debug\n";

typedef struct Reply {
    char *text;
    size_t len, cap;
} Reply;

static int on_reply(void *ud, const char *text, size_t len, int32_t token, float logprob) {
    (void)token;
    (void)logprob;
    Reply *r = ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (r->len + len + 1 > r->cap) {
        r->cap = 2 * (r->len + len + 1);
        r->text = xrealloc(r->text, r->cap);
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = 0;
    return 0;
}

int cmd_chat(int argc, char **argv) {
    const char *cmd = "chat";
    CliModelOpts mo;
    cli_model_opts_init(&mo);
    const char *tmpl_name = NULL, *system = NULL;
    long n_predict = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_cmd_option(cmd, &mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\nmodel and device:\n%s\nsampling:\n%s", CHAT_HELP, CLI_MODEL_OPTS_HELP,
                   CLI_SAMPLING_OPTS_HELP);
            return 0;
        } else if (!strcmp(a, "--chat-template") || !strcmp(a, "--system") || !strcmp(a, "-n") ||
                   !strcmp(a, "--n-predict")) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--chat-template"))
                tmpl_name = v;
            else if (!strcmp(a, "--system"))
                system = v;
            else {
                if (cli_parse_int(cmd, a, v, -1, 1 << 30, &n_predict)) return 2;
                if (n_predict == 0) {
                    fprintf(stderr, "m40llm chat: %s: must be > 0, or -1 for no limit\n", a);
                    return 2;
                }
            }
        } else {
            return cli_unknown_option(cmd, a);
        }
    }
    if (cli_require_model(cmd, &mo)) return 2;
    ChatTemplate tmpl;
    if (cli_chat_template(cmd, tmpl_name, &tmpl)) return 2;
    if (!mo.seed_set) mo.sp.seed = cli_time_seed();

    int rc = 1;
    Err e = {{0}};
    ChatMessage *msgs = NULL;
    int n_msgs = 0, cap_msgs = 0;
    int32_t *kv = NULL; /* (n_ctx) tokens whose K/V are in slot 0 */
    int n_kv = 0;
    char *line = NULL;
    size_t line_cap = 0;
    Engine *en = engine_open(mo.model, &mo.bp, &e);
    if (!en) {
        fprintf(stderr, "m40llm chat: %s\n", e.msg);
        goto out;
    }
    if (tmpl == CHAT_TMPL_UNKNOWN && en->chat_tmpl == CHAT_TMPL_UNKNOWN) {
        fprintf(stderr,
                "m40llm chat: %s: no chat template could be determined from the model; choose "
                "one with --chat-template (chatml, llama2, llama3, mistral, zephyr, gemma, phi3)\n",
                mo.model);
        goto out;
    }
    LOG_INFO("chat template: %s",
             chat_template_name(tmpl != CHAT_TMPL_UNKNOWN ? tmpl : en->chat_tmpl));
    int n_ctx = en->backend->n_ctx;
    kv = xmalloc(sizeof(int32_t) * (size_t)n_ctx);
    cap_msgs = 16;
    msgs = xmalloc(sizeof(ChatMessage) * (size_t)cap_msgs);
    if (system) msgs[n_msgs++] = (ChatMessage){"system", xstrdup(system)};
    int tty = isatty(fileno(stdin));
    for (;;) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (n_msgs + 2 > cap_msgs)
            msgs = xrealloc(msgs, sizeof(ChatMessage) * (size_t)(cap_msgs *= 2));
        msgs[n_msgs++] = (ChatMessage){"user", xstrdup(line)};
        int n_ids = 0;
        int32_t *ids = engine_chat_tokens(en, tmpl, msgs, n_msgs, &n_ids, &e);
        if (!ids) {
            fprintf(stderr, "m40llm chat: %s\n", e.msg);
            goto out;
        }
        GenParams gp;
        gen_params_default(&gp);
        gp.sampling = mo.sp;
        gp.sampling.seed = mo.sp.seed + (uint64_t)n_msgs;
        int room = n_ctx - n_ids;
        gp.max_tokens = n_predict < 0 ? (room > 0 ? room : 1) : (int)n_predict;
        Reply rep = {0};
        EngineSeq *s = engine_seq_new(en, 0, ids, n_ids, &gp, on_reply, &rep, &e);
        free(ids);
        if (!s) {
            fprintf(stderr, "m40llm chat: the conversation no longer fits the context: %s\n",
                    e.msg);
            free(rep.text);
            goto out;
        }
        int same = 0; /* reuse the cached prefix */
        while (same < n_kv && same < s->n_prompt && kv[same] == s->tokens[same]) same++;
        s->n_past = same;
        GenStats st;
        int r = engine_run_seq(en, s, &st, &e);
        printf("\n");
        fflush(stdout);
        if (r != 0) {
            fprintf(stderr, "m40llm chat: %s\n", e.msg);
            engine_seq_free(s);
            free(rep.text);
            goto out;
        }
        if (log_get_level() >= LOG_LEVEL_DEBUG) {
            LOG_DEBUG("reused %d cached tokens of %d", same, s->n_prompt);
            engine_print_stats(en, &st);
        }
        /* every token but the last sampled one has been run */
        n_kv = s->n_tokens - 1;
        memcpy(kv, s->tokens, sizeof(int32_t) * (size_t)n_kv);
        if (st.finish == FINISH_LENGTH && s->n_tokens >= n_ctx)
            LOG_WARN("the context (%d tokens) is full; the next turn will not fit", n_ctx);
        engine_seq_free(s);
        msgs[n_msgs++] = (ChatMessage){"assistant", rep.text ? rep.text : xstrdup("")};
    }
    rc = 0;
out:
    for (int i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
    free(msgs);
    free(kv);
    free(line);
    engine_close(en);
    return rc;
}
