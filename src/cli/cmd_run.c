/* PLACEHOLDER: replaced by the implementation of 'm40llm run'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm run: not implemented yet\n");
    return 1;
}
