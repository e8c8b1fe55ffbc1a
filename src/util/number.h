/*
 * number.h - the one strict integer parser for outside input.
 *
 * Every integer a client, a flag or the RESP framing supplies goes through
 * vl_parse_ll, which accepts exactly what Redis' string2ll accepts, so an
 * integer means the same thing here as in Redis.
 */
#ifndef VL_UTIL_NUMBER_H
#define VL_UTIL_NUMBER_H

#include <stddef.h>

/**
 * Parse s[0..len) (not NUL terminated) as a decimal long long: an optional
 * '-' then digits, nothing else.  Refused: empty, '+', white space,
 * leading zeros (except "0" itself), "-0", and values outside long long.
 * Returns 0 and sets *out, or -1 leaving *out alone.
 */
int vl_parse_ll(const char *s, size_t len, long long *out);

#endif
