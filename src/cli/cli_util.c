#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "cli/cli.h"

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno) {
        fprintf(stderr, "m40llm %s: %s: '%s' is not an integer\n", cmd, opt, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "m40llm %s: %s: %ld is out of range [%ld, %ld]\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi,
                    double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "m40llm %s: %s: '%s' is not a number\n", cmd, opt, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "m40llm %s: %s: %g is out of range [%g, %g]\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') {
        fprintf(stderr, "m40llm %s: %s: '%s' is not a non-negative integer\n", cmd, opt,
                s ? s : "");
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) {
        fprintf(stderr, "m40llm %s: %s: '%s' is not a non-negative integer\n", cmd, opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

const char *cli_option_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "m40llm %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_common_option(const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        log_set_level(LOG_LEVEL_DEBUG);
        return 1;
    }
    if (!strcmp(a, "--log-level")) {
        const char *v = cli_option_value(cmd, argc, argv, i);
        LogLevel l;
        if (!v) return -1;
        if (log_parse_level(v, &l) != 0) {
            fprintf(stderr, "m40llm %s: --log-level: '%s' is not one of error, warn, info, debug\n",
                    cmd, v);
            return -1;
        }
        log_set_level(l);
        return 1;
    }
    return 0;
}

const char *const CLI_MODEL_OPTS_HELP =
    "  -m, --model FILE        GGUF model file (required)\n"
    "  -c, --ctx-size N        context length in tokens (default: min(train ctx, 4096))\n"
    "  -t, --threads N         CPU threads (default: all cores)\n"
    "  --device D              auto (default), cpu, cuda or cuda:N\n"
    "  --require-sm52          refuse any GPU that is not a Tesla M40-class sm_52\n";
const char *const CLI_SAMPLING_OPTS_HELP =
    "  --temp T                temperature (default 0.8; 0 = greedy)\n"
    "  --top-k K               top-k (default 40; 0 = off)\n"
    "  --top-p P               top-p (default 0.95; 1 = off)\n"
    "  --min-p P               min-p (default 0.05; 0 = off)\n"
    "  --repeat-penalty R      repetition penalty (default 1.0 = off)\n"
    "  --repeat-last-n N       penalty window (default 64)\n"
    "  --presence-penalty P    (default 0)\n"
    "  --frequency-penalty P   (default 0)\n"
    "  --seed S                RNG seed (default: random; printed at debug level)\n";

void cli_model_opts_init(CliModelOpts *o) {
    memset(o, 0, sizeof *o);
    backend_params_default(&o->bp);
    sampler_params_default(&o->sp);
}

int cli_model_option(const char *cmd, CliModelOpts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long n;
    double d;
#define ARG()                                                                                      \
    do {                                                                                           \
        if (!(v = cli_option_value(cmd, argc, argv, i))) return -1;                                \
    } while (0)
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        ARG();
        o->model = v;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        ARG();
        if (cli_parse_int(cmd, a, v, 1, 1 << 20, &n)) return -1;
        o->bp.n_ctx = (int)n;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        ARG();
        if (cli_parse_int(cmd, a, v, 1, 1024, &n)) return -1;
        o->bp.n_threads = (int)n;
    } else if (!strcmp(a, "--device")) {
        ARG();
        if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda") && strncmp(v, "cuda:", 5)) {
            fprintf(stderr, "m40llm %s: --device: '%s' is not auto, cpu, cuda or cuda:N\n", cmd, v);
            return -1;
        }
        if (!strncmp(v, "cuda:", 5) && cli_parse_int(cmd, a, v + 5, 0, 63, &n)) return -1;
        o->bp.device = v;
    } else if (!strcmp(a, "--require-sm52")) {
        o->bp.require_sm52 = 1;
    } else if (!strcmp(a, "--temp")) {
        ARG();
        if (cli_parse_float(cmd, a, v, 0, 100, &d)) return -1;
        o->sp.temperature = (float)d;
    } else if (!strcmp(a, "--top-k")) {
        ARG();
        if (cli_parse_int(cmd, a, v, 0, 1 << 24, &n)) return -1;
        o->sp.top_k = (int)n;
    } else if (!strcmp(a, "--top-p")) {
        ARG();
        if (cli_parse_float(cmd, a, v, 0, 1, &d)) return -1;
        o->sp.top_p = (float)d;
    } else if (!strcmp(a, "--min-p")) {
        ARG();
        if (cli_parse_float(cmd, a, v, 0, 1, &d)) return -1;
        o->sp.min_p = (float)d;
    } else if (!strcmp(a, "--repeat-penalty")) {
        ARG();
        if (cli_parse_float(cmd, a, v, 0, 10, &d)) return -1;
        o->sp.repeat_penalty = (float)d;
    } else if (!strcmp(a, "--repeat-last-n")) {
        ARG();
        if (cli_parse_int(cmd, a, v, 0, 1 << 20, &n)) return -1;
        o->sp.penalty_last_n = (int)n;
    } else if (!strcmp(a, "--presence-penalty")) {
        ARG();
        if (cli_parse_float(cmd, a, v, -10, 10, &d)) return -1;
        o->sp.presence_penalty = (float)d;
    } else if (!strcmp(a, "--frequency-penalty")) {
        ARG();
        if (cli_parse_float(cmd, a, v, -10, 10, &d)) return -1;
        o->sp.frequency_penalty = (float)d;
    } else if (!strcmp(a, "--seed")) {
        ARG();
        uint64_t s;
        if (cli_parse_u64(cmd, a, v, &s)) return -1;
        o->sp.seed = s;
        o->seed_set = 1;
    } else {
        return 0;
    }
#undef ARG
    return 1;
}

int cli_unknown_option(const char *cmd, const char *opt) {
    fprintf(stderr, "m40llm %s: unknown option '%s' (m40llm %s --help lists them)\n", cmd, opt,
            cmd);
    return 2;
}

int cli_require_model(const char *cmd, const CliModelOpts *o) {
    if (o->model) return 0;
    fprintf(stderr, "m40llm %s: -m MODEL is required (m40llm %s --help)\n", cmd, cmd);
    return -1;
}

int cli_chat_template(const char *cmd, const char *name, ChatTemplate *out) {
    *out = CHAT_TMPL_UNKNOWN;
    if (!name) return 0;
    *out = chat_template_from_name(name);
    if (*out != CHAT_TMPL_UNKNOWN) return 0;
    fprintf(stderr,
            "m40llm %s: --chat-template: unknown template '%s' (chatml, llama2, llama3, "
            "mistral, zephyr, gemma, phi3)\n",
            cmd, name);
    return -1;
}

uint64_t cli_time_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000003ULL ^ (uint64_t)ts.tv_nsec;
}

int cli_model_cmd_option(const char *cmd, CliModelOpts *o, int argc, char **argv, int *i) {
    int r = cli_common_option(cmd, argc, argv, i);
    if (r == 0) r = cli_model_option(cmd, o, argc, argv, i);
    return r;
}
