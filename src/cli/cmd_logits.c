/* cmd_logits.c - 'm40llm logits': the last prompt position's logits as raw
 * little-endian float32 (n_vocab values) to a file; nothing on stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "engine/engine.h"

static const char *const LOGITS_HELP =
    "usage: m40llm logits -m MODEL (-p PROMPT | --tokens 1,2,3) -o OUT.f32 [options]\n\n"
    "Runs the prompt and writes the logits of its last position to OUT.f32 as raw\n"
    "little-endian float32 (n_vocab values). Prints nothing on stdout.\n\n"
    "  -p, --prompt TEXT       prompt text (BOS added per the model; special tokens parsed)\n"
    "  --tokens LIST           comma-separated token ids, used as given\n"
    "  -o, --output FILE       output file (required)\n"
    "  --no-bos                do not prepend BOS to -p\n"
    "  -v, --verbose           debug log; --log-level error|warn|info|debug\n";

/* "1,2, 3" -> ids; -1 on a malformed list (message printed). */
static int parse_tokens(const char *s, int32_t **out, int *n) {
    int cap = 16, k = 0;
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)cap);
    const char *p = s;
    for (;;) {
        while (*p == ' ') p++;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr,
                    "m40llm logits: --tokens: '%s' is not a comma-separated list of token ids\n",
                    s);
            free(ids);
            return -1;
        }
        if (k == cap) ids = xrealloc(ids, sizeof(int32_t) * (size_t)(cap *= 2));
        ids[k++] = (int32_t)v;
        p = end;
        while (*p == ' ') p++;
        if (!*p) break;
        if (*p != ',') {
            fprintf(stderr, "m40llm logits: --tokens: unexpected '%c' in '%s'\n", *p, s);
            free(ids);
            return -1;
        }
        p++;
    }
    *out = ids;
    *n = k;
    return 0;
}

int cmd_logits(int argc, char **argv) {
    const char *cmd = "logits";
    CliModelOpts mo;
    cli_model_opts_init(&mo);
    const char *prompt = NULL, *tokens = NULL, *out_path = NULL;
    int no_bos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_cmd_option(cmd, &mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\nmodel and device:\n%s", LOGITS_HELP, CLI_MODEL_OPTS_HELP);
            return 0;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "--tokens") ||
                   !strcmp(a, "-o") || !strcmp(a, "--output")) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "--tokens"))
                tokens = v;
            else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
                out_path = v;
            else
                prompt = v;
        } else {
            return cli_unknown_option(cmd, a);
        }
    }
    if (cli_require_model(cmd, &mo)) return 2;
    if (!prompt == !tokens) {
        fprintf(stderr, "m40llm logits: give exactly one of -p PROMPT or --tokens LIST\n");
        return 2;
    }
    if (!out_path) {
        fprintf(stderr, "m40llm logits: -o OUT.f32 is required\n");
        return 2;
    }
    int32_t *ids = NULL;
    int n = 0, rc = 1;
    if (tokens && parse_tokens(tokens, &ids, &n) != 0) return 2;

    float *logits = NULL;
    FILE *f = NULL;
    Err e = {{0}};
    mo.bp.quiet = 1;
    Engine *en = engine_open(mo.model, &mo.bp, &e);
    if (!en) {
        fprintf(stderr, "m40llm logits: %s\n", e.msg);
        goto out;
    }
    int n_vocab = en->model->cfg.n_vocab;
    if (prompt) {
        ids = engine_tokenize(en, prompt, no_bos ? 0 : -1, 1, &n, &e);
        if (!ids) {
            fprintf(stderr, "m40llm logits: prompt: %s\n", e.msg);
            goto out;
        }
    }
    if (n == 0) {
        fprintf(stderr, "m40llm logits: the prompt has no tokens\n");
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) {
            fprintf(stderr, "m40llm logits: --tokens: token %d is out of range [0, %d)\n", ids[i],
                    n_vocab);
            goto out;
        }
    if (n > en->backend->n_ctx) {
        fprintf(stderr,
                "m40llm logits: the prompt is %d tokens, longer than the context of %d (use -c)\n",
                n, en->backend->n_ctx);
        goto out;
    }
    logits = xmalloc(sizeof(float) * (size_t)n_vocab);
    Backend *b = en->backend;
    if (b->prefill(b, 0, ids, n, 0, logits, 0, &e) != 0) {
        fprintf(stderr, "m40llm logits: %s\n", e.msg);
        goto out;
    }
    f = fopen(out_path, "wb");
    if (!f) {
        fprintf(stderr, "m40llm logits: %s: cannot write: %s\n", out_path, strerror(errno));
        goto out;
    }
    if (fwrite(logits, sizeof(float), (size_t)n_vocab, f) != (size_t)n_vocab || fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "m40llm logits: %s: write failed: %s\n", out_path, strerror(errno));
        goto out;
    }
    f = NULL;
    LOG_DEBUG("wrote %d logits for %d tokens to %s", n_vocab, n, out_path);
    rc = 0;
out:
    if (f) fclose(f);
    free(logits);
    free(ids);
    engine_close(en);
    return rc;
}
