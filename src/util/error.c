/* error.c - see error.h. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

vl_status vl_fail(vl_error *err, vl_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}
