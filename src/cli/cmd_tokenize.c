/* cmd_tokenize.c - `m40llm tokenize`: text -> token ids with a model's
 * tokenizer. Loads only the GGUF metadata and the tokenizer (works on
 * vocabulary-only files). Prints the ids comma-separated on one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static const char *const HELP =
    "usage: m40llm tokenize -m MODEL (-p TEXT | -f FILE) [--no-bos] [--special]\n"
    "\n"
    "Tokenizes TEXT (or the contents of FILE, '-' = stdin) with the model's tokenizer\n"
    "and prints the token ids comma-separated on one line.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE    GGUF model or vocabulary-only file\n"
    "  -p, --prompt TEXT   text to tokenize\n"
    "  -f, --file FILE     read the text from FILE ('-' for stdin)\n"
    "  --no-bos            do not prepend BOS (default: as the model says)\n"
    "  --special           recognize special tokens written in the text (e.g. <|im_start|>)\n"
    "  --pieces            also print each token's text, one per line, on stderr\n"
    "  -h, --help          this help\n"
    "  -v, --log-level L   logging\n";

static char *read_stream(FILE *fp, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = xmalloc(cap + 1);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, fp)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            b = xrealloc(b, cap + 1);
        }
    }
    b[n] = 0;
    *len = n;
    return b;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL;
    int no_bos = 0, special = 0, pieces = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int c = cli_common_option("tokenize", argc, argv, &i);
        if (c < 0) return 2;
        if (c > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-p") ||
                   !strcmp(a, "--prompt") || !strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "m40llm tokenize: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (a[1] == 'm' || a[2] == 'm')
                model = v;
            else if (a[1] == 'p' || a[2] == 'p')
                prompt = v;
            else
                file = v;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else if (!strcmp(a, "--pieces")) {
            pieces = 1;
        } else {
            fprintf(stderr, "m40llm tokenize: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "m40llm tokenize: -m MODEL is required (see --help)\n");
        return 2;
    }
    if (!prompt == !file) {
        fprintf(stderr, "m40llm tokenize: give exactly one of -p TEXT or -f FILE\n");
        return 2;
    }

    int rc = 1;
    Err e = {{0}};
    GgufFile *f = NULL;
    Tokenizer *t = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len;
    if (file) {
        if (!strcmp(file, "-")) {
            text = read_stream(stdin, &len);
        } else {
            text = read_file(file, &len);
            if (!text) {
                fprintf(stderr, "m40llm tokenize: %s: cannot read file\n", file);
                goto done;
            }
        }
    } else {
        text = xstrdup(prompt);
        len = strlen(prompt);
    }
    f = gguf_open(model, &e);
    if (!f) {
        fprintf(stderr, "m40llm tokenize: %s\n", e.msg);
        goto done;
    }
    t = tok_load(f, &e);
    if (!t) {
        fprintf(stderr, "m40llm tokenize: %s: %s\n", model, e.msg);
        goto done;
    }
    int add_bos = !no_bos && tok_add_bos(t);
    int n = tok_encode(t, text, len, add_bos, special, NULL, 0, &e);
    if (n < 0) {
        fprintf(stderr, "m40llm tokenize: %s\n", e.msg);
        goto done;
    }
    ids = xmalloc(((size_t)n + 1) * sizeof *ids);
    tok_encode(t, text, len, add_bos, special, ids, n, &e);
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    printf("\n");
    if (pieces)
        for (int i = 0; i < n; i++) fprintf(stderr, "%6d -> '%s'\n", ids[i], tok_piece(t, ids[i]));
    rc = fflush(stdout) ? 1 : 0;
done:
    free(ids);
    free(text);
    tok_free(t);
    gguf_close(f);
    return rc;
}
