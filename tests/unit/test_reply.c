/* test_reply.c - RESP2 and RESP3 encodings of every reply type, and a
 * large reply drained in small sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network/reply.h"

static void assert_reply(const vl_reply *r, const char *want, size_t n)
{
    if (r->len != n || memcmp(r->data, want, n) != 0)
        fail_msg("reply is '%.*s' (%zu bytes), want '%.*s' (%zu bytes)", (int)r->len, r->data,
                 r->len, (int)n, want, n);
}

#define ASSERT_REPLY(r, lit) assert_reply((r), (lit), sizeof(lit) - 1)

static vl_reply make(int proto)
{
    vl_reply r;
    vl_reply_init(&r);
    r.proto = proto;
    return r;
}

static void test_defaults_to_resp2(void **state)
{
    (void)state;
    vl_reply r;
    vl_reply_init(&r);
    assert_int_equal(r.proto, 2);
    assert_int_equal(r.len, 0);
    vl_reply_null(&r);
    ASSERT_REPLY(&r, "$-1\r\n");
    vl_reply_free(&r);
    assert_null(r.data);
}

static void test_common_types(void **state)
{
    (void)state;
    for (int proto = 2; proto <= 3; proto++) {
        vl_reply r = make(proto);
        vl_reply_simple(&r, "OK");
        vl_reply_simple_n(&r, "PONGxx", 4);
        vl_reply_int(&r, -42);
        vl_reply_int(&r, 9223372036854775807LL);
        vl_reply_int(&r, -9223372036854775807LL - 1);
        vl_reply_int(&r, 0);
        vl_reply_bulk(&r, "a\0\r\nb", 5);
        vl_reply_bulk_str(&r, "");
        vl_reply_array(&r, 3);
        vl_reply_array(&r, 0);
        vl_reply_raw(&r, "+raw\r\n", 6);
        ASSERT_REPLY(&r, "+OK\r\n+PONG\r\n:-42\r\n:9223372036854775807\r\n"
                         ":-9223372036854775808\r\n:0\r\n"
                         "$5\r\na\0\r\nb\r\n$0\r\n\r\n*3\r\n*0\r\n+raw\r\n");
        vl_reply_free(&r);
    }
}

static void test_map_null_double(void **state)
{
    (void)state;
    vl_reply r2 = make(2), r3 = make(3);
    vl_reply_map(&r2, 2);
    vl_reply_map(&r3, 2);
    ASSERT_REPLY(&r2, "*4\r\n");
    ASSERT_REPLY(&r3, "%2\r\n");
    vl_reply_consume(&r2, r2.len);
    vl_reply_consume(&r3, r3.len);

    vl_reply_null(&r2);
    vl_reply_null(&r3);
    ASSERT_REPLY(&r2, "$-1\r\n");
    ASSERT_REPLY(&r3, "_\r\n");
    vl_reply_consume(&r2, r2.len);
    vl_reply_consume(&r3, r3.len);

    vl_reply_double(&r2, 1.5);
    vl_reply_double(&r3, 1.5);
    ASSERT_REPLY(&r2, "$3\r\n1.5\r\n");
    ASSERT_REPLY(&r3, ",1.5\r\n");
    vl_reply_consume(&r2, r2.len);
    vl_reply_consume(&r3, r3.len);

    /* Doubles keep full precision: the text parses back to the same value. */
    double v = 0.1 + 0.2;
    vl_reply_double(&r3, v);
    assert_true(r3.len > 3 && r3.data[0] == ',');
    char buf[64];
    memcpy(buf, r3.data + 1, r3.len - 3);
    buf[r3.len - 3] = '\0';
    assert_true(strtod(buf, NULL) == v);
    vl_reply_consume(&r3, r3.len);
    vl_reply_double(&r2, -0.25);
    ASSERT_REPLY(&r2, "$5\r\n-0.25\r\n");
    vl_reply_double(&r3, 0.0);
    ASSERT_REPLY(&r3, ",0\r\n");

    vl_reply_free(&r2);
    vl_reply_free(&r3);
}

static void test_error_is_one_line(void **state)
{
    (void)state;
    for (int proto = 2; proto <= 3; proto++) {
        vl_reply r = make(proto);
        vl_reply_error(&r, "ERR bad %s at %d", "thing", 7);
        ASSERT_REPLY(&r, "-ERR bad thing at 7\r\n");
        vl_reply_consume(&r, r.len);

        vl_reply_error(&r, "ERR injected\r\n+OK\r\nand\nmore\r");
        ASSERT_REPLY(&r, "-ERR injected  +OK  and more \r\n");
        vl_reply_consume(&r, r.len);

        /* A message from user input carrying CRLF via %s. */
        vl_reply_error(&r, "ERR unknown command '%s'", "x\r\n:1");
        ASSERT_REPLY(&r, "-ERR unknown command 'x  :1'\r\n");
        vl_reply_consume(&r, r.len);

        /* Over-long messages are cut, still one line. */
        char big[2000];
        memset(big, 'z', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        vl_reply_error(&r, "ERR %s", big);
        assert_true(r.len > 100 && r.len < 600);
        assert_int_equal(r.data[0], '-');
        assert_memory_equal(r.data + r.len - 2, "\r\n", 2);
        for (size_t i = 0; i + 2 < r.len; i++)
            assert_true(r.data[i] != '\r' && r.data[i] != '\n');
        vl_reply_free(&r);
    }
}

static void test_growth_and_consume(void **state)
{
    (void)state;
    vl_reply r = make(2);
    /* Many replies force several reallocations; content must survive. */
    for (int i = 0; i < 5000; i++)
        vl_reply_int(&r, i);
    size_t total = r.len;
    char want[32];
    int n = snprintf(want, sizeof want, ":%d\r\n", 0);
    assert_memory_equal(r.data, want, (size_t)n);
    n = snprintf(want, sizeof want, ":%d\r\n", 4999);
    assert_memory_equal(r.data + r.len - (size_t)n, want, (size_t)n);
    /* Consume the first reply: the second is now the first unsent. */
    vl_reply_consume(&r, 4);
    assert_int_equal(r.len, total - 4);
    assert_memory_equal(r.data, ":1\r\n", 4);
    vl_reply_consume(&r, r.len + 100);
    assert_int_equal(r.len, 0);

    /* A bulk reply larger than the initial buffer. */
    size_t big = 100000;
    char *payload = malloc(big);
    assert_non_null(payload);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char)(i * 31);
    vl_reply_bulk(&r, payload, big);
    assert_int_equal(r.len, big + 11); /* "$100000\r\n" + payload + "\r\n" */
    assert_memory_equal(r.data, "$100000\r\n", 9);
    assert_memory_equal(r.data + 9, payload, big);
    free(payload);
    vl_reply_free(&r);
}

static char pattern(size_t i)
{
    return (char)(i * 131 + (i >> 9));
}

static void append_pattern(vl_reply *r, size_t from, size_t n)
{
    char chunk[4096];
    assert_true(n <= sizeof chunk);
    for (size_t i = 0; i < n; i++)
        chunk[i] = pattern(from + i);
    vl_reply_raw(r, chunk, n);
}

/* A slow reader drains a 4 MiB reply in small, uneven steps while more
 * replies are appended: every byte comes out once and in order, and the
 * bytes copied to compact the buffer never exceed the bytes sent (the old
 * consume moved the whole remainder on every step: quadratic). */
static void test_slow_reader_drains_large_reply(void **state)
{
    (void)state;
    const size_t total = 4u << 20, more = 1u << 20;
    vl_reply r = make(2);
    size_t end = 0; /* stream position one past the last appended byte */
    for (; end < total; end += 4096)
        append_pattern(&r, end, 4096);
    size_t pos = 0, moved = 0;
    for (size_t k = 0; r.len; k++) {
        size_t step = 1 + (k * 7919) % 4096;
        if (step > r.len)
            step = r.len;
        for (size_t i = 0; i < step; i++)
            if (r.data[i] != pattern(pos + i))
                fail_msg("byte %zu of the stream is wrong", pos + i);
        const char *before = r.data;
        vl_reply_consume(&r, step);
        pos += step;
        if (r.len && r.data != before + step)
            moved += r.len; /* compacted */
        if (k % 3 == 0 && end < total + more) {
            size_t room = vl_reply_room(&r), cap = r.cap, len = r.len;
            before = r.data;
            append_pattern(&r, end, 4096);
            end += 4096;
            if (room >= 4096)
                assert_int_equal(r.cap, cap); /* room means no allocation */
            else
                assert_true(r.cap > cap);
            if (r.cap == cap && r.data != before)
                moved += len;
        }
    }
    assert_int_equal(pos, end);
    assert_int_equal(end, total + more);
    if (moved > pos)
        fail_msg("compaction copied %zu bytes to send %zu", moved, pos);
    assert_null(r.base); /* a large drained buffer is released */
    vl_reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_to_resp2),
        cmocka_unit_test(test_common_types),
        cmocka_unit_test(test_map_null_double),
        cmocka_unit_test(test_error_is_one_line),
        cmocka_unit_test(test_growth_and_consume),
        cmocka_unit_test(test_slow_reader_drains_large_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
