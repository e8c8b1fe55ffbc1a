/* test_client_limits.c - accepting when the process is out of file
 * descriptors: the waiting client is refused with the max-clients error
 * (not left hanging while the listener stays readable forever), and the
 * loop keeps serving once descriptors are back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "network/client.h"
#include "network/event_loop.h"
#include "network/listener.h"

static uint64_t no_barrier(void *ctx)
{
    (void)ctx;
    return 0;
}

static vl_dispatch_result pong(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_reply_simple(&c->out, "PONG");
    return VL_DISPATCH_DONE;
}

static int flush_hook(vl_loop *l, void *data)
{
    (void)l;
    vl_clients_flush(data);
    return 0;
}

static void stop_cron(vl_loop *l, void *data)
{
    (void)data;
    vl_loop_stop(l);
}

static int connect_to(int lfd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, len), 0);
    return s;
}

/* What s receives within 2 s, up to EOF. */
static void read_all(int s, char *buf, size_t cap)
{
    size_t got = 0;
    struct pollfd p = {s, POLLIN, 0};
    while (got < cap - 1 && poll(&p, 1, 2000) > 0) {
        ssize_t n = recv(s, buf + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
}

static void out_of_descriptors_refuses_instead_of_hanging(void **state)
{
    (void)state;
    char err[128], buf[128];
    vl_loop *loop = vl_loop_new();
    int lfd = vl_listen_tcp("127.0.0.1", 0, err, sizeof err);
    assert_true(loop && lfd >= 0);
    vl_clients cs;
    vl_durability dur = {no_barrier, no_barrier, NULL};
    vl_clients_init(&cs, loop, pong, 16, &dur);
    vl_loop_watch(loop, lfd, VL_EV_READ, vl_clients_on_accept, &cs);
    vl_loop_set_before_sleep(loop, flush_hook, &cs);
    vl_loop_set_cron(loop, 50, stop_cron, NULL);
    int s = connect_to(lfd); /* waits in the backlog */

    /* Use up every descriptor the (lowered) limit leaves. */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)s + 16;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[64], nfill = 0;
    while (nfill < 64 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        nfill++;
    assert_true(nfill < 64); /* the limit was reached */

    vl_loop_run(loop);
    read_all(s, buf, sizeof buf);
    assert_string_equal(buf, "-ERR max number of clients reached\r\n");
    assert_int_equal(cs.rejected_connections, 1);
    close(s);

    /* Descriptors back: the next client is served. */
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    s = connect_to(lfd);
    assert_int_equal(send(s, "PING\r\n", 6, 0), 6);
    vl_loop_run(loop); /* accept and read; the reply goes out on the next turn's flush */
    vl_loop_run(loop);
    struct pollfd p = {s, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    assert_string_equal(buf, "+PONG\r\n");
    close(s);
    vl_clients_close_all(&cs);
    close(lfd);
    vl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_descriptors_refuses_instead_of_hanging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
