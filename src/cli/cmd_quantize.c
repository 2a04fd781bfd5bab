/* PLACEHOLDER: replaced by the implementation of 'm40llm quantize'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_quantize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm quantize: not implemented yet\n");
    return 1;
}
