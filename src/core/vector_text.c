/* vector_text.c - see vector_text.h. */
#include "core/vector_text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define MAX_NUMBER_CHARS 64

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && is_space(s[i]))
        i++;
    return i;
}

/*
 * Clinger's fast path, for float32: a decimal with at most 7 significant
 * digits has an exact float mantissa (< 2^24), and 10^e is exact in float
 * for e <= 10, so one IEEE multiply or divide gives the correctly rounded
 * result, the same float strtof returns.  Anything else ("1e-30", more
 * digits, "nan", hex) returns 0 and goes to strtof.  Typical vectors
 * ("0.1234") parse several times faster this way.
 */
static int parse_fast(const char *t, size_t n, float *out)
{
    static const float pow10[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                  1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
    size_t i = 0;
    int neg = 0, digits = 0, exp10 = 0, seen_digit = 0;
    uint32_t m = 0;
    if (i < n && (t[i] == '-' || t[i] == '+'))
        neg = t[i++] == '-';
    for (; i < n && t[i] >= '0' && t[i] <= '9'; i++, seen_digit = 1)
        if (m || t[i] != '0') {
            if (++digits > 7)
                return 0;
            m = m * 10 + (uint32_t)(t[i] - '0');
        }
    if (i < n && t[i] == '.')
        for (i++; i < n && t[i] >= '0' && t[i] <= '9'; i++, seen_digit = 1) {
            exp10--;
            if (m || t[i] != '0') {
                if (++digits > 7)
                    return 0;
                m = m * 10 + (uint32_t)(t[i] - '0');
            }
        }
    if (!seen_digit)
        return 0;
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        int eneg = 0, e = 0, edigits = 0;
        if (++i < n && (t[i] == '-' || t[i] == '+'))
            eneg = t[i++] == '-';
        for (; i < n && t[i] >= '0' && t[i] <= '9' && edigits < 4; i++, edigits++)
            e = e * 10 + (t[i] - '0');
        if (!edigits)
            return 0;
        exp10 += eneg ? -e : e;
    }
    if (i != n || exp10 < -10 || exp10 > 10)
        return 0;
    float v = exp10 >= 0 ? (float)m * pow10[exp10] : (float)m / pow10[-exp10];
    *out = neg ? -v : v;
    return 1;
}

/* Parse one element starting at s[*pos]; the token ends at ',', ']' or
 * white space. */
static vl_status parse_element(const char *s, size_t len, size_t *pos, uint32_t index, float *out,
                               vl_error *err)
{
    char tok[MAX_NUMBER_CHARS + 1];
    size_t start = *pos, n = 0;
    while (*pos < len && s[*pos] != ',' && s[*pos] != ']' && !is_space(s[*pos]))
        (*pos)++;
    n = *pos - start;
    if (n == 0)
        return vl_fail(err, VL_ERR_ARG, "invalid vector: missing number at element %u", index);
    if (n > MAX_NUMBER_CHARS)
        return vl_fail(err, VL_ERR_ARG, "invalid vector: element %u is too long", index);
    if (parse_fast(s + start, n, out))
        return VL_OK;
    memcpy(tok, s + start, n);
    tok[n] = '\0';
    errno = 0;
    char *end;
    float v = strtof(tok, &end);
    if (end != tok + n)
        return vl_fail(err, VL_ERR_ARG, "invalid vector: element %u ('%s') is not a number", index,
                       tok);
    if (isnan(v) || (isinf(v) && errno != ERANGE))
        return vl_fail(err, VL_ERR_ARG, "invalid vector: element %u is NaN or Inf", index);
    if (isinf(v))
        return vl_fail(err, VL_ERR_ARG, "invalid vector: element %u ('%s') is out of float32 range",
                       index, tok);
    *out = v; /* ERANGE with a finite result is underflow: keep the tiny value */
    return VL_OK;
}

vl_status vl_vector_parse_text(const char *s, size_t len, float *out, uint32_t cap, uint32_t *dim,
                               vl_error *err)
{
    size_t i = skip_space(s, len, 0);
    uint32_t n = 0;
    if (i >= len || s[i] != '[')
        return vl_fail(err, VL_ERR_ARG,
                       "invalid vector: expected '[' (format: \"[1.0, 2.0, ...]\")");
    i = skip_space(s, len, i + 1);
    if (i < len && s[i] == ']')
        return vl_fail(err, VL_ERR_ARG, "invalid vector: empty vector");
    for (;;) {
        if (n >= cap)
            return vl_fail(err, VL_ERR_LIMIT, "vector has more than %u elements (the maximum)",
                           cap);
        vl_status st = parse_element(s, len, &i, n, &out[n], err);
        if (st != VL_OK)
            return st;
        n++;
        i = skip_space(s, len, i);
        if (i < len && s[i] == ',') {
            i = skip_space(s, len, i + 1);
            continue;
        }
        if (i < len && s[i] == ']')
            break;
        return vl_fail(err, VL_ERR_ARG, "invalid vector: expected ',' or ']' after element %u",
                       n - 1);
    }
    if (skip_space(s, len, i + 1) != len)
        return vl_fail(err, VL_ERR_ARG, "invalid vector: unexpected text after ']'");
    *dim = n;
    return VL_OK;
}

/* "-" + up to 39 integer digits of FLT_MAX + "." + 6 decimals, or a %.9g. */
#define MAX_ELEMENT_CHARS 48

size_t vl_vector_text_max(uint32_t dim)
{
    return (size_t)dim * (MAX_ELEMENT_CHARS + 2) + 3;
}

static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static size_t format_element(float v, char *buf)
{
    int n = snprintf(buf, MAX_ELEMENT_CHARS + 1, "%.6f", (double)v);
    if (same_float(strtof(buf, NULL), v))
        return (size_t)n;
    for (int prec = 6; prec <= 9; prec++) {
        n = snprintf(buf, MAX_ELEMENT_CHARS + 1, "%.*g", prec, (double)v);
        if (same_float(strtof(buf, NULL), v))
            break;
    }
    return (size_t)n;
}

size_t vl_vector_format_text(const float *v, uint32_t dim, char *buf)
{
    size_t n = 0;
    buf[n++] = '[';
    for (uint32_t i = 0; i < dim; i++) {
        if (i) {
            buf[n++] = ',';
            buf[n++] = ' ';
        }
        n += format_element(v[i], buf + n);
    }
    buf[n++] = ']';
    buf[n] = '\0';
    return n;
}

vl_status vl_vector_check_finite(const float *v, uint32_t dim, vl_error *err)
{
    for (uint32_t i = 0; i < dim; i++)
        if (!isfinite(v[i]))
            return vl_fail(err, VL_ERR_ARG, "invalid vector: element %u is NaN or Inf", i);
    return VL_OK;
}
