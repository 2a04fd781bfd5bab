/* cli.h - subcommands of the m40llm binary. Each takes the arguments after
 * its name (argv[0] = the subcommand) and returns the process exit code:
 * 0 success, 1 runtime/input error (one line on stderr), 2 usage error. */
#ifndef M40_CLI_H
#define M40_CLI_H

#include "engine/backend.h"
#include "sampler/sampler.h"
#include "tokenizer/chat.h"

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

/* Strict number parsing for options: the whole string must be a number in
 * [lo, hi]; otherwise prints "m40llm <cmd>: <opt>: ..." and returns -1. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi,
                    double *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);

/* Handles options every subcommand accepts: -v/--verbose (debug log level),
 * --log-level LEVEL. Returns 1 if argv[*i] was one of them (advancing *i
 * past its argument), 0 if not, -1 on a bad value (message printed). */
int cli_common_option(const char *cmd, int argc, char **argv, int *i);

/* Shared model/backend/sampling options for run, chat, logits, bench, serve:
 * -m/--model, -c/--ctx-size, -t/--threads, --device, --require-sm52,
 * --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n,
 * --presence-penalty, --frequency-penalty, --seed.
 * Returns 1 if consumed, 0 if not one of them, -1 on a bad value. */
typedef struct CliModelOpts {
    const char *model;
    BackendParams bp;
    SamplerParams sp;
    int seed_set;
} CliModelOpts;
void cli_model_opts_init(CliModelOpts *o);
int cli_model_option(const char *cmd, CliModelOpts *o, int argc, char **argv, int *i);
/* cli_common_option, then cli_model_option: every option a model-loading
 * command (run, chat, logits, bench, serve) shares. Same return convention. */
int cli_model_cmd_option(const char *cmd, CliModelOpts *o, int argc, char **argv, int *i);
/* The value of option argv[*i], advancing *i past it; NULL (after printing
 * "m40llm <cmd>: option <opt> needs a value") when it is the last argument. */
const char *cli_option_value(const char *cmd, int argc, char **argv, int *i);
/* Prints "m40llm <cmd>: unknown option '<opt>' (m40llm <cmd> --help lists
 * them)" and returns 2 (the usage exit code). */
int cli_unknown_option(const char *cmd, const char *opt);
/* Returns 0 when o->model is set; else prints "m40llm <cmd>: -m MODEL is
 * required (m40llm <cmd> --help)" and returns -1. */
int cli_require_model(const char *cmd, const CliModelOpts *o);
/* --chat-template NAME: *out = CHAT_TMPL_UNKNOWN when name is NULL (not
 * given), else the named template; -1 (message printed, listing the known
 * names) when the name is not one. */
int cli_chat_template(const char *cmd, const char *name, ChatTemplate *out);
/* A sampling seed from the wall clock, for when --seed is not given. */
uint64_t cli_time_seed(void);
/* Help text for the options above (for --help output). */
extern const char *const CLI_MODEL_OPTS_HELP;
extern const char *const CLI_SAMPLING_OPTS_HELP;

#endif
