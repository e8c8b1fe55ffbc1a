/* test_number.c - vl_parse_ll accepts exactly what Redis' string2ll does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <string.h>

#include "util/number.h"

static void expect_ok(const char *s, long long want)
{
    long long v = 12345;
    if (vl_parse_ll(s, strlen(s), &v) != 0)
        fail_msg("'%s' refused", s);
    assert_true(v == want);
}

static void expect_refused(const char *s, size_t len)
{
    long long v = 12345;
    if (vl_parse_ll(s, len, &v) == 0)
        fail_msg("'%.*s' accepted as %lld", (int)len, s, v);
    assert_true(v == 12345); /* untouched */
}

static void test_accepts_plain_decimals(void **state)
{
    (void)state;
    expect_ok("0", 0);
    expect_ok("7", 7);
    expect_ok("-7", -7);
    expect_ok("10000", 10000);
    expect_ok("9223372036854775807", LLONG_MAX);
    expect_ok("-9223372036854775808", LLONG_MIN);
}

static void test_refuses_what_redis_refuses(void **state)
{
    (void)state;
    static const char *bad[] = {"",
                                "-",
                                "+1",
                                " 1",
                                "1 ",
                                "01",
                                "00",
                                "-0",
                                "-01",
                                "1.0",
                                "1e3",
                                "0x10",
                                "1a",
                                "--1",
                                "1-",
                                "\t1",
                                "9223372036854775808",
                                "-9223372036854775809",
                                "18446744073709551615",
                                "18446744073709551616",
                                "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i], strlen(bad[i]));
}

static void test_only_len_bytes_count(void **state)
{
    (void)state;
    long long v = 0;
    assert_int_equal(vl_parse_ll("12xyz", 2, &v), 0);
    assert_true(v == 12);
    expect_refused("1\0"
                   "2",
                   3); /* an embedded NUL is not a digit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_plain_decimals),
        cmocka_unit_test(test_refuses_what_redis_refuses),
        cmocka_unit_test(test_only_len_bytes_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
