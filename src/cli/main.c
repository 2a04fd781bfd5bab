/* main.c - the m40llm command: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"

typedef struct Command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} Command;

static const Command COMMANDS[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "interactive chat on stdin/stdout using the model's chat template"},
    {"serve", cmd_serve, "HTTP server: /generate and OpenAI-compatible endpoints"},
    {"bench", cmd_bench, "prompt-processing and generation speed, with % of bandwidth"},
    {"inspect", cmd_inspect, "show a GGUF file's metadata and tensor table"},
    {"tokenize", cmd_tokenize, "text -> token ids with the model's tokenizer"},
    {"logits", cmd_logits, "write the last position's logits as raw float32"},
    {"mkmodel", cmd_mkmodel, "write a llama-family GGUF with seeded random weights"},
    {"quantize", cmd_quantize, "convert a GGUF model to another weight type"},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *out) {
    fprintf(out,
            "m40llm %s - LLM inference for the NVIDIA Tesla M40 and newer GPUs\n\n"
            "usage: m40llm <command> [options]   (m40llm <command> --help for its options)\n\n"
            "commands:\n",
            M40LLM_VERSION);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out,
            "\noptions every command takes: -v (debug log), --log-level error|warn|info|debug\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("m40llm %s\n", M40LLM_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "m40llm: unknown command '%s' (m40llm --help lists them)\n", name);
    return 2;
}
