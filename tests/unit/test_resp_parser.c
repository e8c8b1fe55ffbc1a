/* test_resp_parser.c - RESP multibulk and inline parsing, driven the way
 * src/network/client.c process_input() drives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network/resp_parser.h"

/* Assert that argument i of the parsed request equals (s, n). */
static void assert_arg(const vl_resp_parser *p, const char *buf, size_t i, const char *s, size_t n)
{
    assert_true(i < p->argc);
    assert_int_equal(p->lens[i], n);
    assert_memory_equal(buf + p->offs[i], s, n);
}

#define ASSERT_ARG(p, buf, i, lit) assert_arg((p), (buf), (i), (lit), sizeof(lit) - 1)

static vl_resp_result parse_all(vl_resp_parser *p, const char *buf, size_t len)
{
    vl_resp_parser_reset(p);
    return vl_resp_parse(p, buf, len);
}

static void test_simple_multibulk(void **state)
{
    (void)state;
    vl_resp_parser p;
    vl_resp_parser_init(&p);
    const char req[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    assert_int_equal(vl_resp_parse(&p, req, sizeof req - 1), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 3);
    assert_int_equal(p.pos, sizeof req - 1);
    ASSERT_ARG(&p, req, 0, "SET");
    ASSERT_ARG(&p, req, 1, "key");
    ASSERT_ARG(&p, req, 2, "value");

    /* Empty bulk string and a zero-length array. */
    const char req2[] = "*2\r\n$4\r\nPING\r\n$0\r\n\r\n";
    assert_int_equal(parse_all(&p, req2, sizeof req2 - 1), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 2);
    ASSERT_ARG(&p, req2, 1, "");
    assert_int_equal(p.pos, sizeof req2 - 1);

    const char req3[] = "*0\r\n";
    assert_int_equal(parse_all(&p, req3, 4), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.pos, 4);
    vl_resp_parser_free(&p);
}

static void test_binary_safe(void **state)
{
    (void)state;
    vl_resp_parser p;
    vl_resp_parser_init(&p);
    /* An argument containing NUL, CR, LF and "\r\n" itself, plus a '*' and
     * '$' that must not be taken for headers. */
    const char arg[] = "a\0b\r\nc\r*2\r\n$1\n";
    size_t alen = sizeof arg - 1;
    char req[128];
    int n = snprintf(req, sizeof req, "*2\r\n$3\r\nSET\r\n$%zu\r\n", alen);
    memcpy(req + n, arg, alen);
    size_t len = (size_t)n + alen;
    memcpy(req + len, "\r\n", 2);
    len += 2;
    assert_int_equal(vl_resp_parse(&p, req, len), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 2);
    assert_arg(&p, req, 1, arg, alen);
    assert_int_equal(p.pos, len);

    /* A float32 blob with every byte value. */
    char blob[256];
    for (int i = 0; i < 256; i++)
        blob[i] = (char)i;
    char big[400];
    n = snprintf(big, sizeof big, "*1\r\n$256\r\n");
    memcpy(big + n, blob, 256);
    memcpy(big + n + 256, "\r\n", 2);
    assert_int_equal(parse_all(&p, big, (size_t)n + 258), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 1);
    assert_arg(&p, big, 0, blob, 256);
    vl_resp_parser_free(&p);
}

/* Feed every prefix of req as the server does: the parser state survives
 * between calls and the buffer (here a fresh copy each time, as a realloc
 * would move it) always starts at the request. */
static void check_split_everywhere(const char *req, size_t len, size_t want_argc,
                                   const char *const *want, const size_t *want_lens)
{
    vl_resp_parser p;
    vl_resp_parser_init(&p);
    for (size_t cut = 1; cut <= len; cut++) {
        char *copy = malloc(cut);
        assert_non_null(copy);
        memcpy(copy, req, cut);
        vl_resp_result r = vl_resp_parse(&p, copy, cut);
        if (cut < len) {
            if (r != VL_RESP_INCOMPLETE)
                fail_msg("prefix %zu of %zu gave %d (%s)", cut, len, (int)r, p.error);
        } else {
            assert_int_equal(r, VL_RESP_COMMAND);
            assert_int_equal(p.argc, want_argc);
            assert_int_equal(p.pos, len);
            for (size_t i = 0; i < want_argc; i++)
                assert_arg(&p, copy, i, want[i], want_lens[i]);
        }
        free(copy);
    }
    vl_resp_parser_free(&p);
}

static void test_split_at_every_byte(void **state)
{
    (void)state;
    const char req[] = "*4\r\n$5\r\nVPUT\r\r\n$3\r\nk\0y\r\n$0\r\n\r\n$12\r\n[1.5, 2, 3]\n\r\n";
    /* Note: the first argument is "VPUT\r" (5 bytes) on purpose. */
    const char *want[] = {"VPUT\r", "k\0y", "", "[1.5, 2, 3]\n"};
    const size_t lens[] = {5, 3, 0, 12};
    check_split_everywhere(req, sizeof req - 1, 4, want, lens);

    const char inl[] = "VSEARCH docs \"a b\" 'c'  10\r\n";
    const char *want2[] = {"VSEARCH", "docs", "a b", "c", "10"};
    const size_t lens2[] = {7, 4, 3, 1, 2};
    check_split_everywhere(inl, sizeof inl - 1, 5, want2, lens2);

    /* A long bulk argument (multi-digit length), split everywhere too. */
    char big[1200];
    char payload[1000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (char)("\r\n*$x"[i % 5]);
    int n = snprintf(big, sizeof big, "*2\r\n$2\r\nGO\r\n$1000\r\n");
    memcpy(big + n, payload, sizeof payload);
    memcpy(big + n + sizeof payload, "\r\n", 2);
    const char *want3[] = {"GO", payload};
    const size_t lens3[] = {2, sizeof payload};
    check_split_everywhere(big, (size_t)n + sizeof payload + 2, 2, want3, lens3);
}

static void test_pipelining(void **state)
{
    (void)state;
    const char buf[] = "*1\r\n$4\r\nPING\r\n"
                       "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
                       "PING inline\r\n"
                       "\r\n"
                       "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
                       "*2\r\n$3\r\nGET"; /* incomplete tail */
    size_t len = sizeof buf - 1, used = 0;
    vl_resp_parser p;
    vl_resp_parser_init(&p);

    const size_t want_argc[] = {1, 2, 2, 0, 3};
    const char *first[] = {"PING", "ECHO", "PING", NULL, "a"};
    for (int req = 0; req < 5; req++) {
        assert_int_equal(vl_resp_parse(&p, buf + used, len - used), VL_RESP_COMMAND);
        assert_int_equal(p.argc, want_argc[req]);
        if (first[req])
            assert_arg(&p, buf + used, 0, first[req], strlen(first[req]));
        if (req == 1)
            ASSERT_ARG(&p, buf + used, 1, "hi");
        if (req == 2)
            ASSERT_ARG(&p, buf + used, 1, "inline");
        if (req == 4)
            ASSERT_ARG(&p, buf + used, 2, "c");
        used += p.pos;
        vl_resp_parser_reset(&p);
    }
    assert_int_equal(vl_resp_parse(&p, buf + used, len - used), VL_RESP_INCOMPLETE);
    assert_int_equal(len - used, strlen("*2\r\n$3\r\nGET"));

    /* The rest of the request arrives: the parser resumes. */
    char more[64];
    memcpy(more, buf + used, len - used);
    memcpy(more + (len - used), "\r\n$1\r\nk\r\n", 9);
    assert_int_equal(vl_resp_parse(&p, more, len - used + 9), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 2);
    ASSERT_ARG(&p, more, 0, "GET");
    ASSERT_ARG(&p, more, 1, "k");
    assert_int_equal(p.pos, len - used + 9);
    vl_resp_parser_free(&p);
}

static void test_inline(void **state)
{
    (void)state;
    vl_resp_parser p;
    vl_resp_parser_init(&p);

    const char a[] = "  set\tkey   \"hello world\" '' \"\" x\r\n";
    assert_int_equal(vl_resp_parse(&p, a, sizeof a - 1), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 6);
    ASSERT_ARG(&p, a, 0, "set");
    ASSERT_ARG(&p, a, 1, "key");
    ASSERT_ARG(&p, a, 2, "hello world");
    ASSERT_ARG(&p, a, 3, "");
    ASSERT_ARG(&p, a, 4, "");
    ASSERT_ARG(&p, a, 5, "x");
    assert_int_equal(p.pos, sizeof a - 1);

    /* A bare "\n" ends a line too. */
    const char b[] = "PING\nPING\r\n";
    assert_int_equal(parse_all(&p, b, sizeof b - 1), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 1);
    ASSERT_ARG(&p, b, 0, "PING");
    assert_int_equal(p.pos, 5);

    /* Empty lines: argc 0, consumed. */
    assert_int_equal(parse_all(&p, "\r\n", 2), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.pos, 2);
    assert_int_equal(parse_all(&p, "\n", 1), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.pos, 1);
    assert_int_equal(parse_all(&p, " \t \r\n", 5), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 0);
    assert_int_equal(p.pos, 5);

    /* No newline yet. */
    assert_int_equal(parse_all(&p, "PING", 4), VL_RESP_INCOMPLETE);
    assert_int_equal(parse_all(&p, "PING\r", 5), VL_RESP_INCOMPLETE);
    vl_resp_parser_free(&p);
}

static void expect_error(const char *buf, size_t len, const char *needle)
{
    vl_resp_parser p;
    vl_resp_parser_init(&p);
    vl_resp_result r = vl_resp_parse(&p, buf, len);
    if (r != VL_RESP_PROTOCOL_ERROR)
        fail_msg("expected a protocol error for %.*s, got %d", (int)(len > 40 ? 40 : len), buf,
                 (int)r);
    if (!strstr(p.error, needle))
        fail_msg("error '%s' lacks '%s'", p.error, needle);
    assert_non_null(strstr(p.error, "Protocol error"));
    vl_resp_parser_free(&p);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    expect_error("*abc\r\n", 6, "invalid multibulk length");
    expect_error("*1x\r\n", 5, "invalid multibulk length");
    expect_error("*\r\n", 3, "invalid multibulk length");
    expect_error("*1\r\n$-5\r\n", 9, "invalid bulk length");
    expect_error("*1\r\n$abc\r\n", 10, "invalid bulk length");
    expect_error("*1\r\nfoo\r\n", 9, "expected '$'");

    char buf[128];
    int n = snprintf(buf, sizeof buf, "*1\r\n$%u\r\n", VL_RESP_MAX_BULK + 1);
    expect_error(buf, (size_t)n, "invalid bulk length");
    n = snprintf(buf, sizeof buf, "*%d\r\n", VL_RESP_MAX_ARGS + 1);
    expect_error(buf, (size_t)n, "too many arguments");

    expect_error("*1\r\n$3\r\nabcXY", 13, "not terminated by CRLF");
    expect_error("*1\r\n$3\r\nabc\rX", 13, "not terminated by CRLF");
    expect_error("*1\r\n$3\r\nabcd\r\n", 14, "not terminated by CRLF");

    /* A header line that never ends. */
    memset(buf, '9', sizeof buf);
    buf[0] = '*';
    expect_error(buf, 64, "invalid multibulk length");
    buf[0] = '*';
    buf[1] = '1';
    buf[2] = '\r';
    buf[3] = '\n';
    buf[4] = '$';
    expect_error(buf, 64, "invalid bulk length");

    expect_error("GET \"abc\r\n", 10, "unbalanced quotes");
    expect_error("GET 'abc\r\n", 10, "unbalanced quotes");
    expect_error("GET \"a\"b\r\n", 10, "closing quote");

    /* Inline lines over the limit, with and without their newline. */
    size_t big = (size_t)VL_RESP_MAX_INLINE + 10;
    char *line = malloc(big + 2);
    assert_non_null(line);
    memset(line, 'a', big);
    expect_error(line, big, "too big inline request");
    line[big] = '\r';
    line[big + 1] = '\n';
    expect_error(line, big + 2, "too big inline request");
    /* Exactly at the limit is fine... */
    vl_resp_parser p;
    vl_resp_parser_init(&p);
    line[VL_RESP_MAX_INLINE - 1] = '\r';
    line[VL_RESP_MAX_INLINE] = '\n';
    assert_int_equal(vl_resp_parse(&p, line, VL_RESP_MAX_INLINE + 1), VL_RESP_COMMAND);
    assert_int_equal(p.argc, 1);
    assert_int_equal(p.lens[0], VL_RESP_MAX_INLINE - 1);
    /* ...and an incomplete line under the limit just waits. */
    vl_resp_parser_reset(&p);
    assert_int_equal(vl_resp_parse(&p, line, 1000), VL_RESP_INCOMPLETE);
    vl_resp_parser_free(&p);
    free(line);

    /* Limits themselves are accepted (the header is, at least). */
    vl_resp_parser_init(&p);
    n = snprintf(buf, sizeof buf, "*1\r\n$%u\r\n", VL_RESP_MAX_BULK);
    assert_int_equal(vl_resp_parse(&p, buf, (size_t)n), VL_RESP_INCOMPLETE);
    vl_resp_parser_reset(&p);
    n = snprintf(buf, sizeof buf, "*%d\r\n", VL_RESP_MAX_ARGS);
    assert_int_equal(vl_resp_parse(&p, buf, (size_t)n), VL_RESP_INCOMPLETE);
    vl_resp_parser_free(&p);
}

/* Many arguments: the offset arrays grow and stay right. */
static void test_many_args(void **state)
{
    (void)state;
    enum { N = 3000 };
    size_t cap = N * 16 + 32, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    len += (size_t)snprintf(buf + len, cap - len, "*%d\r\n", N);
    for (int i = 0; i < N; i++) {
        char a[16];
        int n = snprintf(a, sizeof a, "%d", i);
        len += (size_t)snprintf(buf + len, cap - len, "$%d\r\n%s\r\n", n, a);
    }
    vl_resp_parser p;
    vl_resp_parser_init(&p);
    /* Arrive in 7-byte reads. */
    vl_resp_result r = VL_RESP_INCOMPLETE;
    for (size_t have = 7; r == VL_RESP_INCOMPLETE; have += 7)
        r = vl_resp_parse(&p, buf, have < len ? have : len);
    assert_int_equal(r, VL_RESP_COMMAND);
    assert_int_equal(p.argc, N);
    assert_int_equal(p.pos, len);
    for (int i = 0; i < N; i += 1) {
        char a[16];
        int n = snprintf(a, sizeof a, "%d", i);
        assert_arg(&p, buf, (size_t)i, a, (size_t)n);
    }
    vl_resp_parser_free(&p);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_multibulk),
        cmocka_unit_test(test_binary_safe),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_many_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
