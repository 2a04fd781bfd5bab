/* PLACEHOLDER: replaced by the implementation of 'm40llm chat'. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_chat(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "m40llm chat: not implemented yet\n");
    return 1;
}
