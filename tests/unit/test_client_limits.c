/* test_client_limits.c - limits on clients, with real sockets and loop.
 *  - Out of file descriptors: the waiting client is refused with the
 *    max-clients error (not left hanging while the listener stays readable
 *    forever), and the loop keeps serving once descriptors are back.
 *  - --timeout: an idle client is closed, an active one is not, bytes of a
 *    trickled request do not count as activity, and a client blocked on
 *    async work is not idle.
 *  - A blocked client stays watched but unread (client.c): input that
 *    comes meanwhile runs after the unblock, in order, and a hang-up
 *    meanwhile still gets the blocked request's reply. */
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

/* ---- --timeout: what counts as idle ---- */

static vl_client *blocked_client;

/* "BLOCK" parks the client as a search does; anything else answers. */
static vl_dispatch_result block_or_pong(vl_client *c, int argc, const char **argv,
                                        const size_t *lens)
{
    if (lens[0] == 5 && memcmp(argv[0], "BLOCK", 5) == 0) {
        c->flags |= VL_CLIENT_BLOCKED;
        blocked_client = c;
        return VL_DISPATCH_BLOCKED;
    }
    return pong(c, argc, argv, lens);
}

typedef struct {
    vl_loop *loop;
    vl_clients cs;
    int lfd, sock;
} fx;

static fx *fx_new(void)
{
    fx *f = calloc(1, sizeof *f);
    char err[128];
    f->loop = vl_loop_new();
    f->lfd = vl_listen_tcp("127.0.0.1", 0, err, sizeof err);
    assert_true(f->loop && f->lfd >= 0);
    vl_durability dur = {no_barrier, no_barrier, NULL};
    vl_clients_init(&f->cs, f->loop, block_or_pong, 16, &dur);
    f->cs.timeout_ms = 300; /* generous: a loaded machine must not close an active client */
    vl_loop_watch(f->loop, f->lfd, VL_EV_READ, vl_clients_on_accept, &f->cs);
    vl_loop_set_before_sleep(f->loop, flush_hook, &f->cs);
    vl_loop_set_cron(f->loop, 10, stop_cron, NULL);
    f->sock = connect_to(f->lfd);
    vl_loop_run(f->loop); /* accept */
    assert_int_equal(f->cs.connected, 1);
    return f;
}

static void fx_free(fx *f)
{
    close(f->sock);
    vl_clients_close_all(&f->cs);
    close(f->lfd);
    vl_loop_free(f->loop);
    free(f);
}

/* Run the loop and the idle check for about ms milliseconds. */
static void run_for(fx *f, int ms)
{
    for (int t = 0; t < ms; t += 10) {
        vl_loop_run(f->loop);
        vl_clients_close_idle(&f->cs);
    }
}

static void send_str(fx *f, const char *s)
{
    assert_int_equal(send(f->sock, s, strlen(s), 0), (ssize_t)strlen(s));
}

static void idle_client_is_closed_active_one_is_not(void **state)
{
    (void)state;
    fx *f = fx_new();
    for (int i = 0; i < 30; i++) { /* a request every ~20 ms for 600 ms */
        send_str(f, "PING\r\n");
        run_for(f, 20);
        assert_int_equal(f->cs.connected, 1);
    }
    run_for(f, 1000);
    assert_int_equal(f->cs.connected, 0);
    fx_free(f);
}

static void trickled_request_does_not_keep_a_client(void **state)
{
    (void)state;
    fx *f = fx_new();
    const char *req = "*2\r\n$4\r\nECHO\r\n$40\r\n0123456789012345678901234567890123456789\r\n";
    for (size_t i = 0; req[i] && f->cs.connected; i++) { /* a byte every ~20 ms: 1.2 s */
        char b[2] = {req[i], 0};
        send_str(f, b);
        run_for(f, 20);
    }
    assert_int_equal(f->cs.connected, 0);
    fx_free(f);
}

static void blocked_client_is_not_idle(void **state)
{
    (void)state;
    fx *f = fx_new();
    send_str(f, "BLOCK\r\n");
    run_for(f, 800);
    assert_int_equal(f->cs.connected, 1); /* waiting for the server, not idle */
    vl_client_unblock(&f->cs, blocked_client);
    run_for(f, 1000);
    assert_int_equal(f->cs.connected, 0); /* idle once the wait is over */
    fx_free(f);
}

/* Exactly n bytes from s (2 s at most for each part). */
static void read_n(int s, char *buf, size_t n)
{
    size_t got = 0;
    struct pollfd p = {s, POLLIN, 0};
    while (got < n && poll(&p, 1, 2000) > 0) {
        ssize_t r = recv(s, buf + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
}

static void input_while_blocked_runs_after_it_in_order(void **state)
{
    (void)state;
    fx *f = fx_new();
    blocked_client = NULL;
    send_str(f, "BLOCK\r\n");
    run_for(f, 20);
    assert_non_null(blocked_client);
    send_str(f, "PING\r\nPING\r\n");
    run_for(f, 50);
    struct pollfd p = {f->sock, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0); /* nothing answered while blocked */
    vl_reply_simple(&blocked_client->out, "DONE");
    vl_client_unblock(&f->cs, blocked_client);
    run_for(f, 50);
    char buf[64];
    read_n(f->sock, buf, 21);
    assert_string_equal(buf, "+DONE\r\n+PONG\r\n+PONG\r\n");
    fx_free(f);
}

static void hang_up_while_blocked_still_gets_the_reply(void **state)
{
    (void)state;
    fx *f = fx_new();
    blocked_client = NULL;
    send_str(f, "BLOCK\r\n");
    assert_int_equal(shutdown(f->sock, SHUT_WR), 0);
    run_for(f, 50);
    assert_non_null(blocked_client);
    assert_int_equal(f->cs.connected, 1); /* the hang-up is not read while blocked */
    vl_reply_simple(&blocked_client->out, "DONE");
    vl_client_unblock(&f->cs, blocked_client);
    run_for(f, 50);
    char buf[64];
    read_all(f->sock, buf, sizeof buf); /* up to the server's close */
    assert_string_equal(buf, "+DONE\r\n");
    assert_int_equal(f->cs.connected, 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_descriptors_refuses_instead_of_hanging),
        cmocka_unit_test(idle_client_is_closed_active_one_is_not),
        cmocka_unit_test(trickled_request_does_not_keep_a_client),
        cmocka_unit_test(blocked_client_is_not_idle),
        cmocka_unit_test(input_while_blocked_runs_after_it_in_order),
        cmocka_unit_test(hang_up_while_blocked_still_gets_the_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
