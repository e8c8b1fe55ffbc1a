/* test_vector_text.c - "[0.1, 0.2]" parsing, formatting and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vector_text.h"

static vl_status parse_str(const char *s, float *out, uint32_t cap, uint32_t *dim, vl_error *err)
{
    return vl_vector_parse_text(s, strlen(s), out, cap, dim, err);
}

static void test_parse_ok(void **state)
{
    (void)state;
    float v[8];
    uint32_t dim = 0;
    vl_error err;
    assert_int_equal(parse_str("[0.1, 0.2]", v, 8, &dim, &err), VL_OK);
    assert_int_equal(dim, 2);
    assert_true(v[0] == 0.1f && v[1] == 0.2f);

    assert_int_equal(parse_str(" \t\n[\n\t0.5 ,\t-2e3\r\n,3,\n  -0 ]\n\t ", v, 8, &dim, &err),
                     VL_OK);
    assert_int_equal(dim, 4);
    assert_true(v[0] == 0.5f && v[1] == -2000.0f && v[2] == 3.0f && v[3] == 0.0f);
    assert_true(signbit(v[3]));

    assert_int_equal(parse_str("[42]", v, 8, &dim, &err), VL_OK);
    assert_int_equal(dim, 1);
    assert_true(v[0] == 42.0f);

    /* Exactly cap elements is fine. */
    assert_int_equal(parse_str("[1,2,3]", v, 3, &dim, &err), VL_OK);
    assert_int_equal(dim, 3);
    assert_true(v[2] == 3.0f);

    /* Not NUL terminated: only len bytes count. */
    const char s[] = "[7, 8]garbage";
    assert_int_equal(vl_vector_parse_text(s, 6, v, 8, &dim, &err), VL_OK);
    assert_int_equal(dim, 2);
    assert_true(v[1] == 8.0f);

    /* Underflow to a subnormal keeps the tiny value. */
    assert_int_equal(parse_str("[1e-45, 1e-40]", v, 8, &dim, &err), VL_OK);
    assert_true(v[0] > 0 && v[0] < FLT_MIN);
    assert_true(v[1] > 0 && v[1] < FLT_MIN);
    assert_int_equal(parse_str("[3.4028235e38, -3.4028235e38]", v, 8, &dim, &err), VL_OK);
    assert_true(v[0] == FLT_MAX && v[1] == -FLT_MAX);
}

static void expect_parse_error(const char *s, vl_status want, const char *needle)
{
    float v[4];
    uint32_t dim = 12345;
    vl_error err;
    memset(&err, 0, sizeof err);
    vl_status st = vl_vector_parse_text(s, strlen(s), v, 4, &dim, &err);
    if (st != want)
        fail_msg("'%s': status %d, want %d (%s)", s, (int)st, (int)want, err.msg);
    if (!strstr(err.msg, needle))
        fail_msg("'%s': message '%s' lacks '%s'", s, err.msg, needle);
    assert_int_equal(dim, 12345); /* untouched on failure */
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("", VL_ERR_ARG, "expected '['");
    expect_parse_error("   ", VL_ERR_ARG, "expected '['");
    expect_parse_error("0.1, 0.2]", VL_ERR_ARG, "expected '['");
    expect_parse_error("abc", VL_ERR_ARG, "expected '['");
    expect_parse_error("[]", VL_ERR_ARG, "empty vector");
    expect_parse_error("[ \t\n ]", VL_ERR_ARG, "empty vector");
    expect_parse_error("[1, 2,]", VL_ERR_ARG, "missing number at element 2");
    expect_parse_error("[1,,2]", VL_ERR_ARG, "missing number at element 1");
    expect_parse_error("[,1]", VL_ERR_ARG, "missing number at element 0");
    expect_parse_error("[abc]", VL_ERR_ARG, "element 0 ('abc') is not a number");
    expect_parse_error("[1, 2x]", VL_ERR_ARG, "element 1 ('2x') is not a number");
    expect_parse_error("[nan]", VL_ERR_ARG, "NaN or Inf");
    expect_parse_error("[1, NaN]", VL_ERR_ARG, "element 1 is NaN or Inf");
    expect_parse_error("[inf]", VL_ERR_ARG, "NaN or Inf");
    expect_parse_error("[-Infinity]", VL_ERR_ARG, "NaN or Inf");
    expect_parse_error("[1e39]", VL_ERR_ARG, "element 0 ('1e39') is out of float32 range");
    expect_parse_error("[1, -1e39]", VL_ERR_ARG, "out of float32 range");
    expect_parse_error("[1, 2] x", VL_ERR_ARG, "unexpected text after ']'");
    expect_parse_error("[1, 2]]", VL_ERR_ARG, "unexpected text after ']'");
    expect_parse_error("[1 2]", VL_ERR_ARG, "expected ',' or ']' after element 0");
    expect_parse_error("[1, 2", VL_ERR_ARG, "expected ',' or ']' after element 1");
    expect_parse_error("[", VL_ERR_ARG, "missing number");
    expect_parse_error("[1,2,3,4,5]", VL_ERR_LIMIT, "more than 4 elements");
    char longnum[100];
    memset(longnum, '1', sizeof longnum);
    longnum[0] = '[';
    longnum[98] = ']';
    longnum[99] = '\0';
    expect_parse_error(longnum, VL_ERR_ARG, "too long");

    /* An embedded NUL is not a number terminator. */
    float v[4];
    uint32_t dim;
    vl_error err;
    assert_int_equal(vl_vector_parse_text("[1\0002]", 6, v, 4, &dim, &err), VL_ERR_ARG);
    /* err may be NULL. */
    assert_int_equal(vl_vector_parse_text("[]", 2, v, 4, &dim, NULL), VL_ERR_ARG);
}

/* The text form is decimal: C99 hex floats, which strtof would read, are
 * refused with a message saying so. */
static void test_hex_floats_refused(void **state)
{
    (void)state;
    expect_parse_error("[0x1p3]", VL_ERR_ARG, "element 0 ('0x1p3') is a hexadecimal number");
    expect_parse_error("[1, 0X10]", VL_ERR_ARG, "element 1 ('0X10') is a hexadecimal number");
    expect_parse_error("[-0x1.8p1, 2]", VL_ERR_ARG, "is a hexadecimal number");
    expect_parse_error("[+0x1P-2]", VL_ERR_ARG, "is a hexadecimal number");
    expect_parse_error("[0x]", VL_ERR_ARG, "('0x') is not a number");
    expect_parse_error("[0xnan]", VL_ERR_ARG, "is not a number");
}

static void test_format(void **state)
{
    (void)state;
    char buf[512];
    float a[] = {0.1f};
    size_t n = vl_vector_format_text(a, 1, buf);
    assert_string_equal(buf, "[0.100000]");
    assert_int_equal(n, strlen(buf));

    float b[] = {1.0f, -2.5f, 0.0f, 100.0f};
    n = vl_vector_format_text(b, 4, buf);
    assert_string_equal(buf, "[1.000000, -2.500000, 0.000000, 100.000000]");
    assert_int_equal(n, strlen(buf));

    /* Values six decimals cannot carry use the shortest exact %g. */
    float c[] = {0.1234567f, 1e-10f};
    vl_vector_format_text(c, 2, buf);
    assert_string_equal(buf, "[0.1234567, 1e-10]");

    float z[] = {-0.0f};
    vl_vector_format_text(z, 1, buf);
    assert_string_equal(buf, "[-0.000000]");

    /* The biggest elements fit the advertised size. */
    float big[] = {-FLT_MAX, -FLT_MAX, -FLT_MAX};
    size_t max = vl_vector_text_max(3);
    n = vl_vector_format_text(big, 3, buf);
    assert_true(n + 1 <= max);
    assert_int_equal(n, strlen(buf));
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static float random_float(uint64_t i)
{
    uint32_t bits;
    float f;
    switch (i % 6) {
    case 0: /* any finite bit pattern */
        do {
            bits = (uint32_t)rnd();
            memcpy(&f, &bits, 4);
        } while (!isfinite(f));
        return f;
    case 1: /* denormal */
        bits = (uint32_t)(rnd() & 0x807FFFFFu);
        memcpy(&f, &bits, 4);
        return f;
    case 2: /* "nice" decimals such as 0.1234567 */
        return (float)((double)(int64_t)(rnd() % 20000001) / 1e7 - 1.0);
    case 3:
        /* huge */
        return (float)((rnd() & 1) ? 1 : -1) * FLT_MAX / (float)(1 + rnd() % 1000);
    case 4: return (rnd() & 1) ? -0.0f : 0.0f;
    default:
        /* around 1 */
        return (float)((double)rnd() / (double)UINT64_MAX * 4.0 - 2.0);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    enum { DIM = 64, ROUNDS = 400 };
    float v[DIM], w[DIM];
    char *buf = malloc(vl_vector_text_max(DIM));
    assert_non_null(buf);
    uint64_t i = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int d = 0; d < DIM; d++)
            v[d] = random_float(i++);
        size_t n = vl_vector_format_text(v, DIM, buf);
        assert_true(n < vl_vector_text_max(DIM));
        assert_int_equal(n, strlen(buf));
        uint32_t dim = 0;
        vl_error err;
        vl_status st = vl_vector_parse_text(buf, n, w, DIM, &dim, &err);
        if (st != VL_OK)
            fail_msg("parse of formatted text failed: %s", err.msg);
        assert_int_equal(dim, DIM);
        for (int d = 0; d < DIM; d++)
            if (memcmp(&v[d], &w[d], sizeof(float)) != 0)
                fail_msg("element %d: %a formatted and parsed back as %a", d, (double)v[d],
                         (double)w[d]);
    }
    /* Specific tricky values. */
    const float special[] = {0.1f,     0.1234567f, 1.0e-45f, FLT_MIN,   FLT_MAX, -FLT_MAX,
                             16777217, 1e-7f,      0.3f,     123456.7f, -0.0f,   2.5e-39f};
    const uint32_t ns = sizeof special / sizeof special[0];
    size_t n = vl_vector_format_text(special, ns, buf);
    uint32_t dim;
    assert_int_equal(vl_vector_parse_text(buf, n, w, DIM, &dim, NULL), VL_OK);
    assert_int_equal(dim, ns);
    assert_memory_equal(special, w, sizeof special);
    free(buf);
}

/* Random decimal spellings (short and long mantissas, leading/trailing
 * zeros, exponents) must parse to exactly what strtof gives: the parser's
 * fast path and its strtof fallback have to agree bit for bit. */
static void test_parse_matches_strtof(void **state)
{
    (void)state;
    enum { PER = 32, ROUNDS = 1500 };
    char text[PER * 40 + 8], tok[PER][40];
    float got[PER];
    for (int r = 0; r < ROUNDS; r++) {
        size_t n = 0;
        text[n++] = '[';
        for (int k = 0; k < PER; k++) {
            char *t = tok[k];
            size_t m = 0;
            uint64_t x = rnd();
            if (x & 1)
                t[m++] = '-';
            else if (x & 2)
                t[m++] = '+';
            int idig = (int)((x >> 2) % 9), fdig = (int)((x >> 6) % 10);
            if (idig == 0 && fdig == 0)
                idig = 1;
            for (int i = 0; i < idig; i++)
                t[m++] = (char)('0' + (i == 0 && (x >> 10) % 3 == 0 ? 0 : rnd() % 10));
            if (fdig || (x >> 12) % 4 == 0)
                t[m++] = '.';
            for (int i = 0; i < fdig; i++)
                t[m++] = (char)('0' + ((x >> 14) % 3 == 0 && i < 3 ? 0 : rnd() % 10));
            if ((x >> 16) % 3 == 0) {
                int e = (int)((x >> 18) % 27) - 13;
                m += (size_t)snprintf(t + m, 12, "%s%s%d", (x >> 24) & 1 ? "e" : "E",
                                      (e >= 0 && (x >> 25) & 1) ? "+" : "", e);
            }
            t[m] = '\0';
            if (k)
                text[n++] = ',';
            memcpy(text + n, t, m);
            n += m;
        }
        text[n++] = ']';
        uint32_t dim = 0;
        vl_error err;
        vl_status st = vl_vector_parse_text(text, n, got, PER, &dim, &err);
        if (st != VL_OK)
            fail_msg("parse of %.*s failed: %s", (int)n, text, err.msg);
        assert_int_equal(dim, PER);
        for (int k = 0; k < PER; k++) {
            float want = strtof(tok[k], NULL);
            if (memcmp(&want, &got[k], sizeof want) != 0)
                fail_msg("'%s' parsed as %a, strtof gives %a", tok[k], (double)got[k],
                         (double)want);
        }
    }
    /* Hand-picked edges of a 7-digit / 10^10 fast path. */
    const char *edge[] = {"9999999",    "16777217",    "0.1",          "1e10",     "1e-10",
                          "9999999e10", "9999999e-10", "1234567e-11",  "99999999", "0.0000001",
                          "-0",         "+0.0",        "5.",           ".5",       "1e+00",
                          "0000000001", "1.0000000",   "3.4028235e38", "1e-45",    "7e-46"};
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++) {
        char buf[64];
        int len = snprintf(buf, sizeof buf, "[%s]", edge[k]);
        uint32_t dim;
        assert_int_equal(vl_vector_parse_text(buf, (size_t)len, got, 1, &dim, NULL), VL_OK);
        float want = strtof(edge[k], NULL);
        if (memcmp(&want, &got[0], sizeof want) != 0)
            fail_msg("'%s' parsed as %a, strtof gives %a", edge[k], (double)got[0], (double)want);
    }
}

static void test_check_finite(void **state)
{
    (void)state;
    float v[] = {1, 2, 3, 4};
    vl_error err;
    assert_int_equal(vl_vector_check_finite(v, 4, &err), VL_OK);
    v[2] = NAN;
    memset(&err, 0, sizeof err);
    assert_int_equal(vl_vector_check_finite(v, 4, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "element 2"));
    v[2] = 3;
    v[3] = -INFINITY;
    assert_int_equal(vl_vector_check_finite(v, 4, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "element 3"));
    assert_int_equal(vl_vector_check_finite(v, 3, &err), VL_OK);
    assert_int_equal(vl_vector_check_finite(v, 4, NULL), VL_ERR_ARG);
    float tiny[] = {1e-45f, FLT_MAX, -0.0f};
    assert_int_equal(vl_vector_check_finite(tiny, 3, NULL), VL_OK);
}

/* The formatting rule spelled with printf: six decimals if they parse
 * back, else the shortest %.{6..9}g that does. */
static void reference_format(float v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.6f", (double)v);
    float back = strtof(buf, NULL);
    if (memcmp(&back, &v, 4) == 0)
        return;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        back = strtof(buf, NULL);
        if (memcmp(&back, &v, 4) == 0)
            return;
    }
}

static void test_format_matches_printf(void **state)
{
    (void)state;
    srand(11);
    for (int i = 0; i < 300000; i++) {
        float v;
        if (i % 3 == 0) {
            uint32_t bits = ((uint32_t)rand() << 16) ^ (uint32_t)rand();
            memcpy(&v, &bits, 4);
            if (!isfinite(v))
                continue;
        } else if (i % 3 == 1) {
            v = (float)((rand() / (double)RAND_MAX - 0.5) * 2000);
        } else {
            v = (float)(rand() % 2000000 - 1000000) / 1000.0f;
        }
        char ref[64], want[sizeof ref + 2], got[64];
        reference_format(v, ref, sizeof ref);
        snprintf(want, sizeof want, "[%s]", ref);
        vl_vector_format_text(&v, 1, got);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),           cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_hex_floats_refused), cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),         cmocka_unit_test(test_parse_matches_strtof),
        cmocka_unit_test(test_check_finite),       cmocka_unit_test(test_format_matches_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
