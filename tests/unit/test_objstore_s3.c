/* test_objstore_s3.c - the S3 object store against a real SeaweedFS
 * (scripts/seaweedfs.sh start; scripts/run-tests.sh starts it).  Never
 * mocked and never skipped: without SeaweedFS on VL_S3_ENDPOINT (default
 * http://127.0.0.1:8333, bucket vexlake-test) every test fails.
 *
 * Each test works under its own fresh key prefix, so runs can share the
 * bucket.  The conformance suite is objstore_conformance.h; then range
 * reads, pagination, a put-if-absent race, a multipart round trip, 4xx
 * errors, and through a loopback proxy: a retry past a reset connection,
 * retries past 503s, pooled connections, a bounded timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "storage/objstore_s3.h"
#include "testutil_s3.h"

typedef struct {
    char prefix[64];
    vl_objstore *s;
} fixture;

#include "objstore_conformance.h"

static int upstream_port(void)
{
    const char *colon = strrchr(vl_test_s3_endpoint(), ':');
    return colon ? atoi(colon + 1) : 8333;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->s = vl_test_s3_open("unit", f->prefix, sizeof f->prefix);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vl_obj_close(f->s);
    free(f);
    return 0;
}

static void fill(unsigned char *buf, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (unsigned char)(seed >> 56);
    }
}

static void test_range_reads(void **state)
{
    fixture *f = *state;
    size_t n = 1 << 20;
    unsigned char *data = malloc(n), buf[4096];
    fill(data, n, 7);
    vl_error err;
    assert_int_equal(vl_obj_put(f->s, "blob", data, n, &err), VL_OK);
    const struct {
        uint64_t off;
        size_t len, want;
    } cases[] = {{0, 1, 1},     {0, 4096, 4096}, {n - 10, 4096, 10}, {n / 2 + 3, 777, 777},
                 {n - 1, 1, 1}, {n, 10, 0},      {n + 5000, 10, 0},  {12345, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = 99999;
        assert_int_equal(
            vl_obj_get_range(f->s, "blob", cases[i].off, cases[i].len, buf, &got, &err), VL_OK);
        assert_int_equal(got, cases[i].want);
        if (got)
            assert_memory_equal(buf, data + cases[i].off, got);
    }
    size_t got;
    assert_int_equal(vl_obj_get_range(f->s, "missing", 0, 0, buf, &got, &err), VL_ERR_NOTFOUND);
    free(data);
}

typedef struct {
    vl_objstore *s;
    int from, to;
    int ok;
} put_job;

static void *put_range(void *arg)
{
    put_job *j = arg;
    j->ok = 1;
    for (int i = j->from; i < j->to; i++) {
        char name[32], body[16];
        snprintf(name, sizeof name, "p/k%05d", i);
        int len = snprintf(body, sizeof body, "%d", i);
        vl_error err;
        if (vl_obj_put(j->s, name, body, (size_t)len, &err) != VL_OK)
            j->ok = 0;
    }
    return NULL;
}

/* More than one ListObjectsV2 page (1000 keys a page). */
static void test_list_pagination(void **state)
{
    fixture *f = *state;
    enum { N = 1050, T = 4 };
    pthread_t th[T];
    put_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (put_job){f->s, t * N / T, (t + 1) * N / T, 0};
        assert_int_equal(pthread_create(&th[t], NULL, put_range, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        assert_true(jobs[t].ok);
    }
    put_str(f->s, "q/other", "x");
    vl_objinfo *l;
    size_t n;
    vl_error err;
    assert_int_equal(vl_obj_list(f->s, "p/", &l, &n, &err), VL_OK);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "p/k%05zu", i);
        assert_string_equal(l[i].name, name);
        assert_int_equal(l[i].size, (uint64_t)snprintf(name, sizeof name, "%zu", i));
    }
    vl_objinfo_free(l, n);
    assert_int_equal(vl_obj_list(f->s, "p/k0100", &l, &n, &err), VL_OK);
    assert_int_equal(n, 10);
    vl_objinfo_free(l, n);
    assert_int_equal(vl_obj_list(f->s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, N + 1);
    assert_string_equal(l[N].name, "q/other");
    vl_objinfo_free(l, n);
}

typedef struct {
    vl_objstore *s;
    const char *name;
    int id;
    pthread_barrier_t *go;
    vl_status st;
    char msg[256];
} race_job;

static void *race(void *arg)
{
    race_job *j = arg;
    char body[32];
    int len = snprintf(body, sizeof body, "writer %d", j->id);
    vl_error err = {{0}};
    pthread_barrier_wait(j->go);
    j->st = vl_obj_put_if_absent(j->s, j->name, body, (size_t)len, &err);
    snprintf(j->msg, sizeof j->msg, "%s", err.msg);
    return NULL;
}

/* N writers race for one key: exactly one wins, the rest get CONFLICT. */
static void test_put_if_absent_race(void **state)
{
    fixture *f = *state;
    enum { N = 10, ROUNDS = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof name, "race/%d", round);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        pthread_t th[N];
        race_job jobs[N];
        for (int i = 0; i < N; i++) {
            jobs[i] = (race_job){.s = f->s, .name = name, .id = i, .go = &go};
            assert_int_equal(pthread_create(&th[i], NULL, race, &jobs[i]), 0);
        }
        int winners = 0, winner = -1;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (jobs[i].st == VL_OK) {
                winners++;
                winner = i;
            } else {
                if (jobs[i].st != VL_ERR_CONFLICT)
                    fail_msg("writer %d: status %d: %s", i, jobs[i].st, jobs[i].msg);
                assert_non_null(strstr(jobs[i].msg, "exists"));
            }
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(winners, 1);
        char want[32];
        snprintf(want, sizeof want, "writer %d", winner);
        assert_content(f->s, name, want);
    }
}

static void test_multipart_round_trip(void **state)
{
    fixture *f = *state;
    size_t n = (size_t)40 << 20;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    fill(data, n, 40);
    vl_error err = {{0}};
    if (vl_obj_put(f->s, "big/40m", data, n, &err) != VL_OK)
        fail_msg("multipart put: %s", err.msg);
    void *back;
    size_t len;
    if (vl_obj_get(f->s, "big/40m", &back, &len, &err) != VL_OK)
        fail_msg("get: %s", err.msg);
    assert_int_equal(len, n);
    assert_true(memcmp(back, data, n) == 0);
    free(back);
    unsigned char buf[64];
    size_t got;
    uint64_t edge = VL_S3_PART_SIZE - 20; /* across the first part boundary */
    assert_int_equal(vl_obj_get_range(f->s, "big/40m", edge, 40, buf, &got, &err), VL_OK);
    assert_int_equal(got, 40);
    assert_memory_equal(buf, data + edge, 40);
    vl_objinfo *l;
    size_t cnt;
    assert_int_equal(vl_obj_list(f->s, "big/", &l, &cnt, &err), VL_OK);
    assert_int_equal(cnt, 1);
    assert_int_equal(l[0].size, n);
    vl_objinfo_free(l, cnt);
    /* Overwriting a multipart object with a small one replaces it whole. */
    put_str(f->s, "big/40m", "small now");
    assert_content(f->s, "big/40m", "small now");
    free(data);
}

static void test_errors_are_clear(void **state)
{
    fixture *f = *state;
    vl_error err = {{0}};
    vl_objstore *s2 = NULL;
    vl_s3_config c = vl_test_s3_config(vl_test_s3_endpoint(), "vexlake-no-such-bucket", NULL);
    assert_int_equal(vl_objstore_s3_open(&c, "", &s2, &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "vexlake-no-such-bucket"));
    assert_non_null(strstr(err.msg, "does not exist"));

    c = vl_test_s3_config(vl_test_s3_endpoint(), VL_TEST_S3_BUCKET, "not-the-secret");
    assert_int_equal(vl_objstore_s3_open(&c, "", &s2, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "credentials refused"));
    assert_non_null(strstr(err.msg, "SignatureDoesNotMatch"));
    assert_null(strstr(err.msg, "not-the-secret"));

    c = vl_test_s3_config(vl_test_s3_endpoint(), VL_TEST_S3_BUCKET, NULL);
    c.access_key = "nobody";
    assert_int_equal(vl_objstore_s3_open(&c, "", &s2, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "credentials refused"));
    assert_non_null(strstr(err.msg, "InvalidAccessKeyId"));

    c = vl_test_s3_config(vl_test_s3_endpoint(), VL_TEST_S3_BUCKET, NULL);
    c.secret_key = "";
    assert_int_equal(vl_objstore_s3_open(&c, "", &s2, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "AWS_SECRET_ACCESS_KEY"));

    /* A missing key names the bucket and the full key. */
    void *data;
    size_t len;
    char want[128];
    snprintf(want, sizeof want, VL_TEST_S3_BUCKET "/%snope/x", f->prefix);
    assert_int_equal(vl_obj_get(f->s, "nope/x", &data, &len, &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, want));
    assert_int_equal(vl_obj_put(f->s, "a/../b", "x", 1, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "a/../b"));
}

/* ---- a loopback TCP proxy that resets its first connection ------------- */

typedef struct {
    int lfd, port, stop;
    int accepted, reset_first, silent;
    int busy_first; /* this many first connections answer 503 SlowDown and close */
    pthread_t thread, pumps[32];
    int npumps, held[32], nheld;
} proxy;

static void *pump(void *arg)
{
    int *fds = arg, a = fds[0], b = fds[1];
    free(fds);
    struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[65536];
    for (;;) {
        if (poll(p, 2, 10000) <= 0)
            break;
        int from = (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 0 : 1;
        ssize_t r = read(p[from].fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(p[1 - from].fd, buf + off, (size_t)(r - off));
            if (w <= 0)
                goto done;
            off += w;
        }
    }
done:
    close(a);
    close(b);
    return NULL;
}

static void *proxy_main(void *arg)
{
    proxy *px = arg;
    while (!__atomic_load_n(&px->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {px->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(px->lfd, NULL, NULL);
        if (c < 0)
            continue;
        int n = __atomic_add_fetch(&px->accepted, 1, __ATOMIC_SEQ_CST);
        if (px->silent) { /* hold it open, never answer */
            if (px->nheld < 32)
                px->held[px->nheld++] = c;
            else
                close(c);
            continue;
        }
        if (n <= px->busy_first) {
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                       "Content-Type: application/xml\r\nContent-Length: 47\r\n"
                                       "Connection: close\r\n\r\n"
                                       "<Error><Code>SlowDown</Code><Message/></Error>\n";
            char buf[4096];
            (void)!read(c, buf, sizeof buf);
            (void)!write(c, busy, sizeof busy - 1);
            close(c);
            continue;
        }
        if (n == 1 && px->reset_first) {
            struct linger lg = {1, 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            char buf[1024];
            (void)!read(c, buf, sizeof buf); /* let the request arrive, then RST */
            close(c);
            continue;
        }
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)upstream_port())};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int *fds = malloc(2 * sizeof *fds);
        if (u < 0 || !fds || connect(u, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            px->npumps == 32) {
            close(c);
            if (u >= 0)
                close(u);
            free(fds);
            continue;
        }
        fds[0] = c;
        fds[1] = u;
        pthread_create(&px->pumps[px->npumps++], NULL, pump, fds);
    }
    return NULL;
}

static void proxy_start(proxy *px)
{
    px->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(px->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(px->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(px->lfd, 16), 0);
    socklen_t sl = sizeof sa;
    getsockname(px->lfd, (struct sockaddr *)&sa, &sl);
    px->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&px->thread, NULL, proxy_main, px), 0);
}

static void proxy_stop(proxy *px)
{
    __atomic_store_n(&px->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(px->thread, NULL);
    for (int i = 0; i < px->npumps; i++)
        pthread_join(px->pumps[i], NULL);
    for (int i = 0; i < px->nheld; i++)
        close(px->held[i]);
    close(px->lfd);
}

/* The first connection is reset mid-request; the client retries on a new
 * one and every call succeeds. */
static void test_retry_after_reset(void **state)
{
    fixture *f = *state;
    proxy px = {.reset_first = 1};
    proxy_start(&px);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", px.port);
    vl_s3_config c = vl_test_s3_config(ep, VL_TEST_S3_BUCKET, NULL);
    vl_objstore *s2;
    vl_error err = {{0}};
    vl_status st = vl_objstore_s3_open(&c, f->prefix, &s2, &err);
    if (st != VL_OK)
        fail_msg("open through proxy: %s", err.msg);
    put_str(s2, "via/proxy", "made it");
    assert_content(s2, "via/proxy", "made it");
    assert_content(f->s, "via/proxy", "made it");
    vl_obj_close(s2);
    proxy_stop(&px);
    assert_true(px.accepted >= 2); /* the reset one and its retry */
}

/* 503 SlowDown (any 5xx) is retried, after a jittered backoff, until the
 * store answers: the call succeeds and the retries are counted. */
static void test_retry_after_5xx(void **state)
{
    fixture *f = *state;
    proxy px = {.busy_first = 3};
    proxy_start(&px);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", px.port);
    vl_s3_config c = vl_test_s3_config(ep, VL_TEST_S3_BUCKET, NULL);
    vl_objstore *s2;
    vl_error err = {{0}};
    vl_status st = vl_objstore_s3_open(&c, f->prefix, &s2, &err); /* its listing meets the 503s */
    if (st != VL_OK)
        fail_msg("open through a busy store: %s", err.msg);
    vl_s3_stats stats;
    vl_objstore_s3_stats(s2, &stats);
    assert_int_equal(stats.retries, 3);
    assert_int_equal(stats.failures, 0);
    put_str(s2, "via/busy", "made it");
    assert_content(f->s, "via/busy", "made it");
    vl_obj_close(s2);
    proxy_stop(&px);
}

/* Requests reuse pooled keep-alive connections: many calls, one at a
 * time, open one connection; four threads at once open at most four. */
typedef struct {
    vl_objstore *s;
    int t;
} pool_arg;

static void *pool_worker(void *arg)
{
    pool_arg *a = arg;
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "pool/%d-%d", a->t, i);
        vl_error err;
        if (vl_obj_put(a->s, name, "x", 1, &err) != VL_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_connections_are_pooled(void **state)
{
    fixture *f = *state;
    proxy px = {0};
    proxy_start(&px);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", px.port);
    vl_s3_config c = vl_test_s3_config(ep, VL_TEST_S3_BUCKET, NULL);
    vl_objstore *s2;
    vl_error err = {{0}};
    assert_int_equal(vl_objstore_s3_open(&c, f->prefix, &s2, &err), VL_OK);
    for (int i = 0; i < 20; i++) {
        put_str(s2, "pool/seq", "again");
        assert_content(s2, "pool/seq", "again");
    }
    assert_int_equal(__atomic_load_n(&px.accepted, __ATOMIC_SEQ_CST), 1);
    pthread_t th[4];
    pool_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (pool_arg){s2, t};
        pthread_create(&th[t], NULL, pool_worker, &args[t]);
    }
    for (int t = 0; t < 4; t++) {
        void *rc;
        pthread_join(th[t], &rc);
        assert_null(rc);
    }
    int n = __atomic_load_n(&px.accepted, __ATOMIC_SEQ_CST);
    assert_true(n >= 1 && n <= 4);
    vl_obj_close(s2);
    proxy_stop(&px);
}

/* A store that accepts connections and never answers: the call fails
 * within its timeout instead of hanging, naming the bucket. */
static void test_timeout_is_bounded(void **state)
{
    (void)state;
    proxy px = {.silent = 1};
    proxy_start(&px);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", px.port);
    vl_s3_config c = vl_test_s3_config(ep, VL_TEST_S3_BUCKET, NULL);
    c.timeout_ms = 600;
    vl_objstore *s2 = NULL;
    vl_error err = {{0}};
    assert_int_equal(vl_objstore_s3_open(&c, "", &s2, &err), VL_ERR_IO);
    assert_non_null(strstr(err.msg, VL_TEST_S3_BUCKET));
    assert_non_null(strstr(err.msg, "attempts"));
    proxy_stop(&px);
}

/* The counters INFO shows: one count per request however often it was
 * sent, bytes as received and sent. */
static void test_request_counters(void **state)
{
    fixture *f = *state;
    vl_s3_stats a, b;
    vl_objstore_s3_stats(f->s, &a);
    assert_int_equal(a.lists, 1); /* the bucket check at open */
    put_str(f->s, "count/me", "twelve bytes");
    assert_content(f->s, "count/me", "twelve bytes");
    char buf[4];
    size_t got;
    vl_error err;
    assert_int_equal(vl_obj_get_range(f->s, "count/me", 2, 4, buf, &got, &err), VL_OK);
    vl_objinfo *objs;
    size_t n;
    assert_int_equal(vl_obj_list(f->s, "count/", &objs, &n, &err), VL_OK);
    vl_objinfo_free(objs, n);
    assert_int_equal(vl_obj_del(f->s, "count/me", &err), VL_OK);
    vl_objstore_s3_stats(f->s, &b);
    assert_int_equal(b.puts - a.puts, 1);
    assert_int_equal(b.put_bytes - a.put_bytes, 12);
    assert_int_equal(b.gets - a.gets, 2);
    assert_int_equal(b.get_bytes - a.get_bytes, 12 + 4);
    assert_int_equal(b.lists - a.lists, 1);
    assert_int_equal(b.other - a.other, 2); /* del: HEAD, DELETE */
    assert_int_equal(b.failures, 0);
    vl_objstore *local;
    assert_int_equal(vl_objstore_local_open("/tmp", &local, &err), VL_OK);
    vl_objstore_s3_stats(local, &b); /* not an S3 store: zeros */
    assert_int_equal(b.gets + b.lists + b.puts, 0);
    vl_obj_close(local);
}

static void test_parse_url(void **state)
{
    (void)state;
    char *b, *p;
    vl_error err;
    assert_int_equal(vl_objstore_s3_parse_url("s3://my-bucket/a/b", &b, &p, &err), VL_OK);
    assert_string_equal(b, "my-bucket");
    assert_string_equal(p, "a/b");
    free(b);
    free(p);
    assert_int_equal(vl_objstore_s3_parse_url("s3://bkt", &b, &p, &err), VL_OK);
    assert_string_equal(b, "bkt");
    assert_string_equal(p, "");
    free(b);
    free(p);
    const char *bad[] = {"bucket/x", "s3://", "s3://AB/x", "s3://a/x", "http://b/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(vl_objstore_s3_parse_url(bad[i], &b, &p, &err), VL_ERR_ARG);
}

static vl_objstore *fixture_store(void **state)
{
    return ((fixture *)*state)->s;
}

int main(void)
{
    store_of = fixture_store;
    const struct CMUnitTest tests[] = {
        VL_OBJSTORE_CONFORMANCE_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_if_absent_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_are_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_5xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_are_pooled, setup, teardown),
        cmocka_unit_test(test_timeout_is_bounded),
        cmocka_unit_test_setup_teardown(test_request_counters, setup, teardown),
        cmocka_unit_test(test_parse_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
