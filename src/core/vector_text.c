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
    /* strtof also reads C99 hex floats ("0x1p3" is 8); the text form is
     * decimal, as in JSON, so they are refused rather than half-supported. */
    if (strpbrk(tok, "xX"))
        return vl_fail(err, VL_ERR_ARG,
                       "invalid vector: element %u ('%s') is a hexadecimal number; write it "
                       "in decimal",
                       index, tok);
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

/*
 * "%.6f" without printf, for |v| < 1000: v * 1e6 is exact in double (a
 * 24-bit mantissa times a 20-bit constant), so rounding it to an integer
 * with the default round-half-even mode gives the digits printf prints.
 * Returns 0 when v is out of that range.
 */
static size_t six_decimals(float v, char *buf)
{
    double scaled = (double)v * 1e6;
    if (!(scaled > -1e9 && scaled < 1e9))
        return 0;
    long long r = llrint(scaled);
    size_t n = 0;
    if (r < 0 || (r == 0 && signbit(v)))
        buf[n++] = '-';
    unsigned long long a = (unsigned long long)(r < 0 ? -r : r);
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + a % 10);
        a /= 10;
    } while (a || nd < 7); /* at least "0" + six decimals */
    for (int i = nd - 1; i >= 6; i--)
        buf[n++] = digits[i];
    buf[n++] = '.';
    for (int i = 5; i >= 0; i--)
        buf[n++] = digits[i];
    buf[n] = '\0';
    return n;
}

/* Does text (n bytes) parse back to exactly v? */
static int round_trips(const char *text, size_t n, float v)
{
    float back;
    if (!parse_fast(text, n, &back))
        back = strtof(text, NULL);
    return same_float(back, v);
}

#define EXACT_DIGITS 25 /* exact digits of a float printed to pick from */

/* Write the p significant digits d[0..p) with decimal exponent e (value
 * d.ddd x 10^e) in %g style: fixed notation when -4 <= e < p, else
 * scientific; trailing zeros dropped.  Returns the length. */
static size_t g_style(int neg, const char *d, int p, int e, char *buf)
{
    size_t n = 0;
    int scientific = e < -4 || e >= p; /* decided on the precision, as %g does */
    while (p > 1 && d[p - 1] == '0')
        p--;
    if (neg)
        buf[n++] = '-';
    if (scientific) {
        buf[n++] = d[0];
        if (p > 1)
            buf[n++] = '.';
        for (int i = 1; i < p; i++)
            buf[n++] = d[i];
        n += (size_t)sprintf(buf + n, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return n;
    }
    if (e < 0) {
        buf[n++] = '0';
        buf[n++] = '.';
        for (int i = -1; i > e; i--)
            buf[n++] = '0';
        for (int i = 0; i < p; i++)
            buf[n++] = d[i];
    } else {
        for (int i = 0; i <= e; i++)
            buf[n++] = i < p ? d[i] : '0';
        if (p > e + 1)
            buf[n++] = '.';
        for (int i = e + 1; i < p; i++)
            buf[n++] = d[i];
    }
    buf[n] = '\0';
    return n;
}

/* Round the digit string dx to p digits into d (ties, which need every
 * later digit zero, go to even as printf does); may bump e. */
static void round_digits(const char *dx, int p, char *d, int *e)
{
    memcpy(d, dx, EXACT_DIGITS);
    int up = dx[p] > '5';
    if (dx[p] == '5') {
        int tail = 0;
        for (int i = p + 1; i < EXACT_DIGITS; i++)
            tail |= dx[i] != '0';
        up = tail || ((dx[p - 1] - '0') & 1);
    }
    if (up) {
        int i = p - 1;
        while (i >= 0 && d[i] == '9')
            d[i--] = '0';
        if (i >= 0) {
            d[i]++;
        } else { /* 9.99.. rounds to 10.0..: one more digit of exponent */
            memmove(d + 1, d, (size_t)p - 1);
            d[0] = '1';
            (*e)++;
        }
    }
}

/*
 * Shortest of 6..9 significant digits that parses back to v (9 always
 * does for a float), each rounded the way printf("%.*g") would.  One printf
 * gives 25 exact digits; the candidates are rounded from those, which
 * matches rounding v itself unless digits 10..25 are exactly 5000..0 with
 * more digits after them -- then the output may end one unit higher but
 * still parses back to v, which the check below makes sure of.
 */
static size_t shortest_digits(float v, char *buf)
{
    char sci[48];
    snprintf(sci, sizeof sci, "%.*e", EXACT_DIGITS - 1, (double)v);
    int neg = sci[0] == '-';
    const char *m = sci + neg; /* "d.ddd...de+XX" */
    char dx[EXACT_DIGITS + 1], d[EXACT_DIGITS + 1];
    dx[0] = m[0];
    memcpy(dx + 1, m + 2, EXACT_DIGITS - 1);
    dx[EXACT_DIGITS] = '\0';
    int ex = atoi(m + EXACT_DIGITS + 2);
    size_t n = 0;
    for (int p = 6; p <= 9; p++) {
        int e = ex;
        round_digits(dx, p, d, &e);
        n = g_style(neg, d, p, e, buf);
        if (round_trips(buf, n, v))
            break;
    }
    return n;
}

static size_t format_element(float v, char *buf)
{
    size_t fast = six_decimals(v, buf);
    if (fast && round_trips(buf, fast, v))
        return fast;
    if (!fast) {
        int n = snprintf(buf, MAX_ELEMENT_CHARS + 1, "%.6f", (double)v);
        if (same_float(strtof(buf, NULL), v))
            return (size_t)n;
    }
    return shortest_digits(v, buf);
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
