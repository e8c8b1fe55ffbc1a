/*
 * vector_text.h - the text form of a vector, "[0.1, 0.2, 0.3]".
 *
 * Parsing is strict (a clear message for every malformed input, NaN and
 * Inf refused).  Formatting uses six decimals, the style users first saw,
 * unless that would not parse back to the identical float32: then it
 * prints the shortest %g form that does (at most 9 significant digits,
 * which always round-trips a float32).
 */
#ifndef VL_CORE_VECTOR_TEXT_H
#define VL_CORE_VECTOR_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/** Parse len bytes of s (not NUL terminated) into out (room for cap
 *  floats); *dim receives the element count. VL_ERR_LIMIT past cap. */
vl_status vl_vector_parse_text(const char *s, size_t len, float *out, uint32_t cap, uint32_t *dim,
                               vl_error *err);

/** Bytes needed to format a dim-element vector, NUL included. */
size_t vl_vector_text_max(uint32_t dim);

/** Format v into buf (room for vl_vector_text_max(dim)); returns length. */
size_t vl_vector_format_text(const float *v, uint32_t dim, char *buf);

/** VL_OK when every element is finite, else VL_ERR_ARG naming the first
 *  bad element. */
vl_status vl_vector_check_finite(const float *v, uint32_t dim, vl_error *err);

#endif
