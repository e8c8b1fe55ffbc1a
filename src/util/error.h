/*
 * error.h - filling a vl_error with a formatted message.
 *
 * Every layer reports failures the same way: a vl_status plus one line of
 * context in a caller-provided vl_error (which may be NULL).
 */
#ifndef VL_UTIL_ERROR_H
#define VL_UTIL_ERROR_H

#include "vexlake.h"

#if defined(__GNUC__)
#define VL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VL_PRINTF(a, b)
#endif

/** Format a message into err (if not NULL) and return status, so callers
 *  can write: return vl_fail(err, VL_ERR_IO, "open %s: %s", path, strerror(errno)); */
vl_status vl_fail(vl_error *err, vl_status status, const char *fmt, ...) VL_PRINTF(3, 4);

#endif
