/*
 * log.c - stderr log lines: "2024-05-01T12:00:00Z mqlite notice: text".
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static const char *level_name(int level)
{
    switch (level) {
    case MQLITE_LOG_ERROR:
        return "error";
    case MQLITE_LOG_WARNING:
        return "warning";
    case MQLITE_LOG_NOTICE:
        return "notice";
    case MQLITE_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void mq_blog(const mqlite_broker *b, int level, const char *fmt, ...)
{
    if (!mq_blog_on(b, level))
        return;
    char line[512], stamp[32] = "";
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line, so lines of two brokers never interleave. */
    fprintf(stderr, "%s mqlite %s: %s\n", stamp, level_name(level), line);
}
