/* log.h - one-line timestamped log messages on stderr, like Redis'. */
#ifndef VL_UTIL_LOG_H
#define VL_UTIL_LOG_H

#include "util/error.h"

typedef enum { VL_LOG_DEBUG, VL_LOG_INFO, VL_LOG_WARNING, VL_LOG_ERROR } vl_log_level;

void vl_log_set_level(vl_log_level level);
void vl_log(vl_log_level level, const char *fmt, ...) VL_PRINTF(2, 3);

#endif
