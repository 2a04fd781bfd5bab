/* cmd_run.c - 'm40llm run': prompt -> generated text on stdout (streamed,
 * the prompt not echoed), logs and one stats line on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "engine/engine.h"

static const char *const RUN_HELP =
    "usage: m40llm run -m MODEL (-p PROMPT | -f PROMPT_FILE) [options]\n\n"
    "Generates text after the prompt and streams it to stdout (the prompt is not\n"
    "echoed); logs and a stats line go to stderr.\n\n"
    "  -p, --prompt TEXT       the prompt (\"\" = BOS only)\n"
    "  -f, --file FILE         read the prompt from FILE\n"
    "  -n, --n-predict N       tokens to generate (default 128; -1 = until EOS or\n"
    "                          the context is full)\n"
    "  --chat                  wrap the prompt as a user message in the model's chat\n"
    "                          template (see --chat-template, --system)\n"
    "  --chat-template NAME    chatml, llama2, llama3, mistral, zephyr, gemma, phi3\n"
    "  --system TEXT           system message (with --chat)\n"
    "  --stop TEXT             stop string (repeatable, up to 8); not printed\n"
    "  --special               print special tokens (BOS, EOS, <|im_end|>, ...) as text\n"
    "  --ignore-eos            keep generating after end-of-generation tokens\n"
    "  --no-bos                do not prepend BOS to the prompt\n"
    "  -v, --verbose           debug log; --log-level error|warn|info|debug\n";

typedef struct RunOut {
    size_t bytes;
    int ends_nl; /* the last byte written was '\n' */
} RunOut;

static int write_text(void *ud, const char *text, size_t len, int32_t token, float logprob) {
    (void)token;
    (void)logprob;
    RunOut *o = ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    o->bytes += len;
    if (len) o->ends_nl = text[len - 1] == '\n';
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    CliModelOpts mo;
    cli_model_opts_init(&mo);
    const char *prompt = NULL, *prompt_file = NULL, *tmpl_name = NULL, *system = NULL;
    long n_predict = 128;
    int chat = 0, special = 0, ignore_eos = 0, no_bos = 0;
    const char *stops[ENGINE_MAX_STOP];
    int n_stop = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_cmd_option(cmd, &mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\nmodel and device:\n%s\nsampling:\n%s", RUN_HELP, CLI_MODEL_OPTS_HELP,
                   CLI_SAMPLING_OPTS_HELP);
            return 0;
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = 1;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "-f") ||
                   !strcmp(a, "--file") || !strcmp(a, "-n") || !strcmp(a, "--n-predict") ||
                   !strcmp(a, "--chat-template") || !strcmp(a, "--system") ||
                   !strcmp(a, "--stop")) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
                prompt = v;
            } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
                prompt_file = v;
            } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
                if (cli_parse_int(cmd, a, v, -1, 1 << 30, &n_predict)) return 2;
                if (n_predict == 0) {
                    fprintf(stderr, "m40llm run: %s: must be > 0, or -1 for no limit\n", a);
                    return 2;
                }
            } else if (!strcmp(a, "--chat-template")) {
                tmpl_name = v;
            } else if (!strcmp(a, "--system")) {
                system = v;
            } else {
                if (n_stop >= ENGINE_MAX_STOP) {
                    fprintf(stderr, "m40llm run: --stop: at most %d stop strings\n",
                            ENGINE_MAX_STOP);
                    return 2;
                }
                if (!*v) {
                    fprintf(stderr, "m40llm run: --stop: the stop string is empty\n");
                    return 2;
                }
                stops[n_stop++] = v;
            }
        } else {
            return cli_unknown_option(cmd, a);
        }
    }
    if (cli_require_model(cmd, &mo)) return 2;
    if (!prompt == !prompt_file) {
        fprintf(stderr, "m40llm run: give exactly one of -p PROMPT or -f PROMPT_FILE\n");
        return 2;
    }
    ChatTemplate tmpl;
    if (cli_chat_template(cmd, tmpl_name, &tmpl)) return 2;
    if (tmpl_name) chat = 1;
    if (system && !chat) {
        fprintf(stderr, "m40llm run: --system needs --chat\n");
        return 2;
    }

    char *file_text = NULL;
    if (prompt_file) {
        size_t len;
        file_text = read_file(prompt_file, &len);
        if (!file_text) {
            fprintf(stderr, "m40llm run: %s: cannot read: %s\n", prompt_file, strerror(errno));
            return 1;
        }
        if (strlen(file_text) != len) {
            fprintf(stderr, "m40llm run: %s: contains a NUL byte\n", prompt_file);
            free(file_text);
            return 1;
        }
        prompt = file_text;
    }
    if (!mo.seed_set) mo.sp.seed = cli_time_seed();
    LOG_DEBUG("seed %llu", (unsigned long long)mo.sp.seed);

    int rc = 1, n_ids = 0;
    int32_t *ids = NULL;
    EngineSeq *s = NULL;
    Err e = {{0}};
    Engine *en = engine_open(mo.model, &mo.bp, &e);
    if (!en) {
        fprintf(stderr, "m40llm run: %s\n", e.msg);
        goto out;
    }
    if (chat) {
        ChatMessage msgs[2];
        int nm = 0;
        if (system) msgs[nm++] = (ChatMessage){"system", system};
        msgs[nm++] = (ChatMessage){"user", prompt};
        ids = engine_chat_tokens(en, tmpl, msgs, nm, &n_ids, &e);
    } else {
        ids = engine_tokenize(en, prompt, no_bos ? 0 : -1, 1, &n_ids, &e);
    }
    if (!ids) {
        fprintf(stderr, "m40llm run: prompt: %s\n", e.msg);
        goto out;
    }
    if (n_ids == 0) {
        fprintf(stderr, "m40llm run: the prompt is empty and the model adds no BOS token\n");
        goto out;
    }
    LOG_DEBUG("prompt: %d tokens", n_ids);
    GenParams gp;
    gen_params_default(&gp);
    gp.sampling = mo.sp;
    gp.ignore_eos = ignore_eos;
    gp.render_special = special;
    for (int i = 0; i < n_stop; i++) gp.stop[i] = stops[i];
    gp.n_stop = n_stop;
    int room = en->backend->n_ctx - n_ids;
    gp.max_tokens = n_predict < 0 ? (room > 0 ? room : 1) : (int)n_predict;
    RunOut o = {0};
    s = engine_seq_new(en, 0, ids, n_ids, &gp, write_text, &o, &e);
    if (!s) {
        fprintf(stderr, "m40llm run: %s (use -c to enlarge the context)\n", e.msg);
        goto out;
    }
    GenStats st;
    if (engine_run_seq(en, s, &st, &e) != 0) {
        fflush(stdout);
        fprintf(stderr, "\nm40llm run: %s\n", e.msg);
        goto out;
    }
    /* end the text's line where a person reads it, so the stats line starts
     * its own (stdout itself stays exactly the generated text when redirected) */
    if (o.bytes && !o.ends_nl) {
        if (isatty(fileno(stdout)))
            printf("\n");
        else if (isatty(fileno(stderr)))
            fputc('\n', stderr);
    }
    fflush(stdout);
    engine_print_stats(en, &st);
    rc = 0;
out:
    engine_seq_free(s);
    free(ids);
    engine_close(en);
    free(file_text);
    return rc;
}
