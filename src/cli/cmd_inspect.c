/* PLACEHOLDER: replaced by the implementation of 'm40llm inspect'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm inspect: not implemented yet\n");
    return 1;
}
