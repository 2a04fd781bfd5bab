/* PLACEHOLDER: replaced by the implementation of 'm40llm mkmodel'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_mkmodel(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm mkmodel: not implemented yet\n");
    return 1;
}
