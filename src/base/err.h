/* err.h - input-error reporting shared by every module.
 *
 * Input errors (files, GGUF, HTTP, JSON, user options) are returned, never
 * aborted on: a function that can fail takes an `Err *` (which may be NULL),
 * returns non-zero / NULL on failure and fills `e->msg` with one line that
 * names the thing and the problem. Invariant violations use M40_ASSERT. */
#ifndef M40_BASE_ERR_H
#define M40_BASE_ERR_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct Err {
    char msg[512];
} Err;

#if defined(__GNUC__)
#define M40_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define M40_PRINTF(a, b)
#endif

/* Sets e->msg (printf-style). NULL-safe. Always returns -1 so callers can
 * write `return err_set(e, "...")`. */
int err_set(Err *e, const char *fmt, ...) M40_PRINTF(2, 3);
/* Prepends "prefix: " to an existing message. NULL-safe. Returns -1. */
int err_prefix(Err *e, const char *fmt, ...) M40_PRINTF(2, 3);

/* Aborts with file:line on a violated invariant (never for user input). */
#define M40_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "m40llm: internal error: %s failed at %s:%d (%s)\n", #cond, __FILE__,  \
                    __LINE__, __func__);                                                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
