/* log.c - see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static vl_log_level min_level = VL_LOG_INFO;

void vl_log_set_level(vl_log_level level)
{
    min_level = level;
}

void vl_log(vl_log_level level, const char *fmt, ...)
{
    static const char marks[] = ".-#!";
    if (level < min_level)
        return;
    struct timeval tv;
    struct tm tm;
    char when[32];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof when, "%d %b %Y %H:%M:%S", &tm);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%d:M %s.%03d %c %s\n", (int)getpid(), when, (int)(tv.tv_usec / 1000),
            marks[level], msg);
}
