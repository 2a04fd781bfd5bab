/* PLACEHOLDER: replaced by the implementation of 'm40llm serve'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm serve: not implemented yet\n");
    return 1;
}
