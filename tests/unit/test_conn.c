/* test_conn.c - the connection interface: the plain socket's read/write
 * results (bytes, 0 for "nothing now", -1 for finished) and the identity
 * event mapping; the --tls-auth-clients names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "network/conn.h"
#include "network/conn_tls.h"
#include "network/event_loop.h"

static void test_plain_read_write_eof(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    vl_conn *c = vl_conn_plain_new(sv[0]);
    assert_int_equal(vl_conn_fd(c), sv[0]);
    char buf[16];
    assert_int_equal(vl_conn_read(c, buf, sizeof buf), 0); /* nothing yet: wait */
    assert_int_equal(write(sv[1], "PING\r\n", 6), 6);
    assert_int_equal(vl_conn_read(c, buf, sizeof buf), 6);
    assert_memory_equal(buf, "PING\r\n", 6);
    assert_int_equal(vl_conn_has_pending(c), 0);
    assert_int_equal(vl_conn_write(c, "+PONG\r\n", 7), 7);
    assert_int_equal(read(sv[1], buf, sizeof buf), 7);
    assert_int_equal(vl_conn_interest(c, VL_EV_READ | VL_EV_WRITE), VL_EV_READ | VL_EV_WRITE);
    assert_int_equal(vl_conn_ready(c, VL_EV_WRITE), VL_EV_WRITE);
    close(sv[1]);
    assert_int_equal(vl_conn_read(c, buf, sizeof buf), -1); /* end of stream finishes */
    vl_conn_close(c);
}

static void test_plain_write_to_closed_peer(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    vl_conn *c = vl_conn_plain_new(sv[0]);
    close(sv[1]);
    signal(SIGPIPE, SIG_IGN); /* as the server does: EPIPE, not a signal */
    assert_int_equal(vl_conn_write(c, "x", 1), -1);
    vl_conn_close(c);
}

static void test_tls_auth_names(void **state)
{
    (void)state;
    vl_tls_auth a = VL_TLS_AUTH_NO;
    assert_int_equal(vl_tls_auth_parse("yes", &a), 0);
    assert_int_equal(a, VL_TLS_AUTH_YES);
    assert_int_equal(vl_tls_auth_parse("optional", &a), 0);
    assert_int_equal(a, VL_TLS_AUTH_OPTIONAL);
    assert_int_equal(vl_tls_auth_parse("no", &a), 0);
    assert_int_equal(a, VL_TLS_AUTH_NO);
    assert_int_equal(vl_tls_auth_parse("YES", &a), -1);
    assert_int_equal(vl_tls_auth_parse("", &a), -1);
    assert_int_equal(vl_tls_auth_parse("yess", &a), -1);
    assert_int_equal(a, VL_TLS_AUTH_NO); /* untouched on error */
    assert_string_equal(vl_tls_auth_name(VL_TLS_AUTH_YES), "yes");
    assert_string_equal(vl_tls_auth_name(VL_TLS_AUTH_OPTIONAL), "optional");
    assert_string_equal(vl_tls_auth_name(VL_TLS_AUTH_NO), "no");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_read_write_eof),
        cmocka_unit_test(test_plain_write_to_closed_peer),
        cmocka_unit_test(test_tls_auth_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
