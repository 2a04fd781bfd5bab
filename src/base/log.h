/* log.h - leveled logging to stderr with timestamps. Thread-safe (one
 * fprintf per line). Level set once at startup by the CLI (--log-level, -v). */
#ifndef M40_BASE_LOG_H
#define M40_BASE_LOG_H

#include "base/err.h"

typedef enum LogLevel {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} LogLevel;

void log_set_level(LogLevel level);
LogLevel log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 on anything else. */
int log_parse_level(const char *s, LogLevel *out);
void log_msg(LogLevel level, const char *fmt, ...) M40_PRINTF(2, 3);

#define LOG_ERROR(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
