/* test_client_durability.c - the network layer never sends a reply before
 * the change it may show is durable: real sockets, a real event loop, and
 * a durability position the test moves by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "network/client.h"
#include "network/event_loop.h"
#include "network/listener.h"

typedef struct {
    uint64_t last;    /* LSN of the newest "write" */
    uint64_t durable; /* how far the test says writes are durable */
} lsns;

static lsns state;

static uint64_t barrier(void *ctx)
{
    (void)ctx;
    return state.last > state.durable ? state.last : 0;
}

static uint64_t durable(void *ctx)
{
    (void)ctx;
    return state.durable;
}

/* SET makes a write (a new LSN); GET reads. */
static vl_dispatch_result dispatch(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    if (lens[0] == 3 && memcmp(argv[0], "SET", 3) == 0) {
        state.last++;
        vl_reply_simple(&c->out, "OK");
    } else {
        vl_reply_bulk(&c->out, "x", 1);
    }
    return VL_DISPATCH_DONE;
}

typedef struct {
    vl_loop *loop;
    vl_clients cs;
    int lfd, sock;
    int turns;
} fx;

static int sleep_hook(vl_loop *l, void *data)
{
    fx *f = data;
    vl_clients_release(&f->cs);
    vl_clients_flush(&f->cs);
    if (++f->turns >= 20)
        vl_loop_stop(l);
    return 0;
}

static void stop_cron(vl_loop *l, void *data)
{
    (void)data;
    vl_loop_stop(l);
}

/* Run the loop for a little while (a few turns, or 20 ms). */
static void pump(fx *f)
{
    f->turns = 0;
    vl_loop_run(f->loop);
}

static int setup(void **state_)
{
    fx *f = calloc(1, sizeof *f);
    char err[128];
    f->loop = vl_loop_new();
    f->lfd = vl_listen_tcp("127.0.0.1", 0, err, sizeof err);
    assert_true(f->lfd >= 0);
    vl_durability dur = {barrier, durable, NULL};
    vl_clients_init(&f->cs, f->loop, dispatch, 16, &dur);
    vl_loop_watch(f->loop, f->lfd, VL_EV_READ, vl_clients_on_accept, &f->cs);
    vl_loop_set_before_sleep(f->loop, sleep_hook, f);
    vl_loop_set_cron(f->loop, 20, stop_cron, NULL);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(f->lfd, (struct sockaddr *)&sa, &len);
    f->sock = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(f->sock, (struct sockaddr *)&sa, len), 0);
    memset(&state, 0, sizeof state);
    *state_ = f;
    return 0;
}

static int teardown(void **state_)
{
    fx *f = *state_;
    close(f->sock);
    vl_clients_close_all(&f->cs);
    close(f->lfd);
    vl_loop_free(f->loop);
    free(f);
    return 0;
}

/* Bytes the client can read right now (non-blocking). */
static size_t readable(fx *f, char *buf, size_t cap)
{
    struct pollfd p = {f->sock, POLLIN, 0};
    buf[0] = '\0';
    if (poll(&p, 1, 0) <= 0)
        return 0;
    buf[0] = '\0';
    ssize_t n = recv(f->sock, buf, cap - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void send_str(fx *f, const char *s)
{
    assert_int_equal(send(f->sock, s, strlen(s), 0), (ssize_t)strlen(s));
}

/* Send request; after one pump the client must have read exactly `now`;
 * once every write so far is durable, exactly `later`. */
static void expect(fx *f, const char *request, const char *now, const char *later)
{
    char buf[256];
    send_str(f, request);
    pump(f);
    readable(f, buf, sizeof buf);
    assert_string_equal(buf, now);
    state.durable = state.last;
    pump(f);
    readable(f, buf, sizeof buf);
    assert_string_equal(buf, later);
}

#define SET "*1\r\n$3\r\nSET\r\n"
#define GET "*1\r\n$3\r\nGET\r\n"

static void test_ack_waits_for_durability(void **state_)
{
    expect(*state_, SET, "", "+OK\r\n"); /* not durable: no +OK yet */
    assert_int_equal(state.last, 1);
}

static void test_read_after_unsynced_write_waits_too(void **state_)
{
    expect(*state_, SET GET, "", "+OK\r\n$1\r\nx\r\n"); /* the GET could show the write */
}

static void test_replies_before_a_write_go_out_first(void **state_)
{
    /* the GET was answered while everything was durable */
    expect(*state_, GET SET, "$1\r\nx\r\n", "+OK\r\n");
}

static void test_reads_alone_are_not_held(void **state_)
{
    expect(*state_, GET, "$1\r\nx\r\n", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_waits_for_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_after_unsynced_write_waits_too, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_before_a_write_go_out_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_alone_are_not_held, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
