#include "base/err.h"

#include <string.h>

int err_set(Err *e, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(Err *e, const char *fmt, ...) {
    if (!e) return -1;
    char pre[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* pre + ": " + old, truncated to the buffer (messages are one line) */
    size_t np = strnlen(pre, sizeof pre), no = strnlen(old, sizeof old);
    memcpy(e->msg, pre, np);
    e->msg[np] = ':';
    e->msg[np + 1] = ' ';
    size_t room = sizeof e->msg - np - 3;
    if (no > room) no = room;
    memcpy(e->msg + np + 2, old, no);
    e->msg[np + 2 + no] = 0;
    return -1;
}
