/* PLACEHOLDER: replaced by the implementation of 'm40llm bench'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm bench: not implemented yet\n");
    return 1;
}
