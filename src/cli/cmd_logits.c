/* PLACEHOLDER: replaced by the implementation of 'm40llm logits'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_logits(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm logits: not implemented yet\n");
    return 1;
}
