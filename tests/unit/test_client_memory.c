/* test_client_memory.c - client memory limits in the network layer, with
 * real sockets and loop (network/client_memory.c):
 *  - past the total, the client using the most is evicted, others live;
 *  - a reply past the output limit is refused before it is built, and the
 *    client is closed without it;
 *  - evicting a client blocked on async work frees its buffers at once and
 *    the client itself when the work ends (ASan checks the lifetimes);
 *  - drained buffers are released, so the totals go back down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "network/client.h"
#include "network/event_loop.h"
#include "network/listener.h"

static uint64_t last_lsn, durable_lsn;
static vl_client *blocked;

static uint64_t barrier(void *ctx)
{
    (void)ctx;
    return last_lsn > durable_lsn ? last_lsn : 0;
}

static uint64_t durable(void *ctx)
{
    (void)ctx;
    return durable_lsn;
}

/* BIG n: a reply of n bytes, admitted first; SET: a write (its reply and
 * every later one wait for durability); BLOCK: async work; else +PONG. */
static vl_dispatch_result dispatch(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    if (lens[0] == 3 && memcmp(argv[0], "BIG", 3) == 0 && argc == 2) {
        size_t n = strtoul(argv[1], NULL, 10);
        if (vl_client_reserve_output(c, n) == 0) {
            char *bytes = malloc(n);
            memset(bytes, 'b', n);
            vl_reply_raw(&c->out, bytes, n);
            free(bytes);
        }
    } else if (lens[0] == 3 && memcmp(argv[0], "SET", 3) == 0) {
        last_lsn++;
        vl_reply_simple(&c->out, "OK");
    } else if (lens[0] == 5 && memcmp(argv[0], "BLOCK", 5) == 0) {
        c->flags |= VL_CLIENT_BLOCKED;
        blocked = c;
        return VL_DISPATCH_BLOCKED;
    } else {
        vl_reply_simple(&c->out, "PONG");
    }
    return VL_DISPATCH_DONE;
}

typedef struct {
    vl_loop *loop;
    vl_clients cs;
    int lfd;
    struct sockaddr_in addr;
    int turns;
} fx;

static int sleep_hook(vl_loop *l, void *data)
{
    fx *f = data;
    vl_clients_release(&f->cs);
    int more = vl_clients_flush(&f->cs);
    if (++f->turns >= 20)
        vl_loop_stop(l);
    return more;
}

static void stop_cron(vl_loop *l, void *data)
{
    (void)data;
    vl_loop_stop(l);
}

static void pump(fx *f)
{
    f->turns = 0;
    vl_loop_run(f->loop);
}

static int setup(void **state)
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
    socklen_t len = sizeof f->addr;
    getsockname(f->lfd, (struct sockaddr *)&f->addr, &len);
    last_lsn = durable_lsn = 0;
    blocked = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vl_clients_close_all(&f->cs);
    close(f->lfd);
    vl_loop_free(f->loop);
    free(f);
    return 0;
}

static int connect_client(fx *f)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096; /* keep what the kernel absorbs of unread replies small */
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(connect(s, (struct sockaddr *)&f->addr, sizeof f->addr), 0);
    pump(f);
    return s;
}

static void send_all(fx *f, int s, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(s, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN)
            return; /* closed by the server */
        pump(f);
    }
}

static void send_str(fx *f, int s, const char *str)
{
    send_all(f, s, str, strlen(str));
    pump(f);
}

/* Read until want bytes arrived or the peer closed; returns the count. */
static size_t receive(fx *f, int s, size_t want, int *closed)
{
    static char buf[1 << 16];
    size_t got = 0;
    *closed = 0;
    for (int round = 0; round < 400 && got < want && !*closed; round++) {
        pump(f);
        struct pollfd p = {s, POLLIN, 0};
        while (poll(&p, 1, 0) > 0) {
            ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) {
                *closed = n == 0 || errno != EAGAIN;
                break;
            }
            got += (size_t)n;
        }
    }
    return got;
}

/* An unfinished request of about n bytes (one argument never completes). */
static char *unfinished(size_t n, size_t *len)
{
    char *r = malloc(n + 64);
    int h = snprintf(r, 64, "*2\r\n$4\r\nPING\r\n$%zu\r\n", n + 100);
    memset(r + h, 'x', n);
    *len = (size_t)h + n;
    return r;
}

static void test_total_evicts_the_largest_client(void **state)
{
    fx *f = *state;
    vl_clients_set_limits(&f->cs, &(vl_client_limits){0, 0, 1u << 20});
    int small = connect_client(f), big = connect_client(f);
    size_t len;
    char *req = unfinished(1200 * 1024, &len);
    send_all(f, small, req, 100 * 1024);
    send_all(f, big, req, len); /* past 1 MiB on its own */
    free(req);
    int closed;
    receive(f, big, 1, &closed);
    assert_true(closed);
    assert_int_equal(f->cs.evicted_clients, 1);
    assert_true(f->cs.query_bytes + f->cs.output_bytes <= 1u << 20);
    assert_int_equal(f->cs.connected, 1); /* the small one lives */
    close(big);
    close(small);
}

static void test_output_limit_refuses_before_building(void **state)
{
    fx *f = *state;
    vl_clients_set_limits(&f->cs, &(vl_client_limits){0, 100000, 0});
    int s = connect_client(f);
    send_str(f, s, "BIG 200000\r\n");
    int closed;
    assert_int_equal(receive(f, s, 1, &closed), 0); /* not a byte of it */
    assert_true(closed);
    assert_int_equal(f->cs.output_limit_disconnections, 1);
    close(s);

    s = connect_client(f);
    send_str(f, s, "BIG 90000\r\n");
    assert_int_equal(receive(f, s, 90000, &closed), 90000);
    assert_false(closed);
    pump(f);
    /* the drained 128 KiB reply buffer was released */
    assert_true(f->cs.output_bytes < 64 * 1024);
    close(s);
}

static void test_evicting_a_blocked_client(void **state)
{
    fx *f = *state;
    vl_clients_set_limits(&f->cs, &(vl_client_limits){0, 0, 6u << 20});
    int a = connect_client(f), b = connect_client(f);
    /* a's reply waits for durability, then a blocks on async work */
    send_str(f, a, "SET\r\nBIG 3000000\r\nBLOCK\r\n");
    assert_non_null(blocked);
    vl_client *victim = blocked;
    assert_true(f->cs.output_bytes >= 3000000);
    send_str(f, b, "BIG 2000000\r\n"); /* a is the largest: a goes */
    assert_int_equal(f->cs.evicted_clients, 1);
    pump(f);
    assert_true(victim->flags & VL_CLIENT_CLOSED);
    assert_int_equal(victim->out.cap, 0); /* its buffers are gone already */
    vl_client_unblock(&f->cs, victim);    /* the work ends: now it is freed */
    durable_lsn = last_lsn;
    int closed;
    assert_int_equal(receive(f, b, 2000000, &closed), 2000000);
    assert_false(closed);
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_total_evicts_the_largest_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_limit_refuses_before_building, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evicting_a_blocked_client, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
