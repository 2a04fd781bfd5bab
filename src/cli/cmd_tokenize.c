/* PLACEHOLDER: replaced by the implementation of 'm40llm tokenize'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm tokenize: not implemented yet\n");
    return 1;
}
