/* test_client_durability.c - the network layer never sends a reply before
 * the change it may show is durable: real sockets, a real event loop, and
 * a durability position the test moves by hand.
 *
 * No step waits a fixed time: the loop runs until the state a check needs
 * is reached (the server has run every command sent and flushed after the
 * last one; the expected bytes have arrived), bounded by a generous
 * deadline that fails the test instead of hanging it.  Load only makes
 * it slower. */
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
#include <time.h>
#include <unistd.h>

#include "network/client.h"
#include "network/event_loop.h"
#include "network/listener.h"

typedef struct {
    uint64_t last;     /* LSN of the newest "write" */
    uint64_t durable;  /* how far the test says writes are durable */
    size_t dispatched; /* commands run */
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

/* SET makes a write (a new LSN); GET reads; RD reads a snapshot at the
 * durable position (as VSEARCH does) and tags its reply with that LSN. */
static vl_dispatch_result dispatch(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    state.dispatched++;
    if (lens[0] == 3 && memcmp(argv[0], "SET", 3) == 0) {
        state.last++;
        vl_reply_simple(&c->out, "OK");
    } else if (lens[0] == 2 && memcmp(argv[0], "RD", 2) == 0) {
        vl_reply_bulk(&c->out, "r", 1);
        c->read_lsn = state.durable;
        c->flags |= VL_CLIENT_READ_AT;
    } else {
        vl_reply_bulk(&c->out, "x", 1);
    }
    return VL_DISPATCH_DONE;
}

typedef struct {
    vl_loop *loop;
    vl_clients cs;
    int lfd, sock;
    size_t flushes;      /* flushes run */
    size_t flushed_upto; /* commands run before the last flush started */
    char got[256];       /* bytes the client received in this step */
    size_t ngot, want;
} fx;

static int sleep_hook(vl_loop *l, void *data)
{
    fx *f = data;
    (void)l;
    size_t seen = state.dispatched; /* replies of later commands wait for the next flush */
    vl_clients_release(&f->cs);
    vl_clients_flush(&f->cs);
    f->flushed_upto = seen;
    f->flushes++;
    return 0;
}

static void stop_cron(vl_loop *l, void *data)
{
    (void)data;
    vl_loop_stop(l);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Take what the client can read right now (non-blocking). */
static void receive(fx *f)
{
    ssize_t n = recv(f->sock, f->got + f->ngot, sizeof f->got - 1 - f->ngot, MSG_DONTWAIT);
    if (n > 0)
        f->ngot += (size_t)n;
    f->got[f->ngot] = '\0';
}

/* Run the loop (a turn is at most a millisecond or so) until done(f, arg)
 * holds; fail after a deadline no loaded machine should reach. */
static void pump_until(fx *f, int (*done)(fx *, size_t), size_t arg, const char *what)
{
    double deadline = now_s() + 30;
    while (receive(f), !done(f, arg)) {
        if (now_s() > deadline)
            fail_msg("timed out waiting until %s (received '%s')", what, f->got);
        vl_loop_run(f->loop);
    }
}

/* The server ran `n` commands and a flush started after the last of them. */
static int served(fx *f, size_t n)
{
    return state.dispatched == n && f->flushed_upto == n;
}

/* At least `n` bytes have arrived. */
static int received(fx *f, size_t n)
{
    return f->ngot >= n;
}

/* A flush ran after flush number `since` and what it sent has arrived. */
static int flushed_since(fx *f, size_t since)
{
    return f->flushes > since && f->ngot >= f->want;
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
    vl_loop_set_cron(f->loop, 1, stop_cron, NULL); /* a vl_loop_run is one short turn */
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

static void send_str(fx *f, const char *s)
{
    assert_int_equal(send(f->sock, s, strlen(s), 0), (ssize_t)strlen(s));
}

/* The bytes of output the server still holds for the (only) client. */
static size_t held_bytes(fx *f)
{
    return f->cs.head ? f->cs.head->out.len : 0;
}

/* Send request; once the server has run it and flushed, the client must
 * have received exactly `now` and the server still hold exactly `later`;
 * once every write so far is durable, the client receives `later`. */
static void expect(fx *f, const char *request, const char *now, const char *later)
{
    size_t commands = 0;
    for (const char *p = request; (p = strstr(p, "*1\r\n")) != NULL; p += 4)
        commands++;
    send_str(f, request);
    pump_until(f, served, commands, "the server ran the request and flushed");
    pump_until(f, received, strlen(now), "the replies not held arrived");
    assert_string_equal(f->got, now);
    assert_int_equal(held_bytes(f), strlen(later)); /* held back, not lost or sent */

    state.durable = state.last;
    f->ngot = 0;
    f->got[0] = '\0';
    f->want = strlen(later);
    pump_until(f, flushed_since, f->flushes, "the held replies arrived");
    assert_string_equal(f->got, later);
    assert_int_equal(held_bytes(f), 0);
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

#define RD "*1\r\n$2\r\nRD\r\n"

/* Another client's write waits for its fsync: a read of the durable state
 * goes out at once, where GET (tagged with the newest write) waits. */
static void test_read_at_durable_not_held_by_others_writes(void **state_)
{
    state.last = 5; /* written by someone else, not durable */
    expect(*state_, RD GET, "$1\r\nr\r\n", "$1\r\nx\r\n");
}

/* Replies keep their order: a read tagged with an older LSN after this
 * client's own unsynced write waits behind the write's acknowledgement. */
static void test_read_at_durable_stays_behind_own_write(void **state_)
{
    expect(*state_, SET RD, "", "+OK\r\n$1\r\nr\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_waits_for_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_after_unsynced_write_waits_too, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_before_a_write_go_out_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_alone_are_not_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_at_durable_not_held_by_others_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_at_durable_stays_behind_own_write, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
