/* test_engine.c - the embedded engine through include/vexlake.h only:
 * CRUD, validation, persistence, exact search, snapshots, group commit and
 * recall on real data. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vexlake.h"

/* ---- fixtures ---- */

typedef vl_test_dir tmp;

static int setup_dir(void **state)
{
    return vl_test_dir_setup(state, "engine");
}

static int teardown_dir(void **state)
{
    return vl_test_dir_teardown(state);
}

static vl_engine *open_with(const char *dir, vl_metric metric, int deferred)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.default_metric = metric;
    opt.fsync = VL_FSYNC_NO; /* speed; durability is the WAL tests' business */
    opt.deferred_sync = deferred;
    vl_engine *e = NULL;
    vl_error err = {{0}};
    vl_status st = vl_open(dir, &opt, &e, &err);
    if (st != VL_OK)
        fail_msg("vl_open(%s): %d %s", dir, (int)st, err.msg);
    assert_non_null(e);
    return e;
}

static void put_ok(vl_engine *e, const char *coll, const char *key, const float *v, uint32_t dim)
{
    vl_error err = {{0}};
    vl_status st = vl_put(e, coll, key, strlen(key), v, dim, &err);
    if (st != VL_OK)
        fail_msg("vl_put(%s, %s): %d %s", coll, key, (int)st, err.msg);
}

static uint64_t rng = 0x243F6A8885A308D3ull;

static float rnd_float(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int hit_is(const vl_hit *h, const char *key)
{
    return h->keylen == strlen(key) && memcmp(h->key, key, h->keylen) == 0;
}

#define ASSERT_HIT(h, k)                                                                           \
    do {                                                                                           \
        if (!hit_is((h), (k)))                                                                     \
            fail_msg("hit is '%.*s', want '%s'", (int)(h)->keylen, (h)->key, (k));                 \
    } while (0)

/* ---- basic operations ---- */

static void test_put_get_delete_clear(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 0);
    const float a[4] = {1, 2, 3, 4}, b[4] = {-1, 0.5f, 1e-30f, 7};
    float out[8];
    uint32_t dim = 0;
    vl_error err;

    assert_int_equal(vl_get(e, "c", "a", 1, out, 8, &dim), VL_ERR_NOTFOUND);
    put_ok(e, "c", "a", a, 4);
    assert_int_equal(vl_get(e, "c", "a", 1, out, 8, &dim), VL_OK);
    assert_int_equal(dim, 4);
    assert_memory_equal(out, a, sizeof a);
    /* cap too small: LIMIT, but dim still says what is needed */
    dim = 0;
    assert_int_equal(vl_get(e, "c", "a", 1, out, 3, &dim), VL_ERR_LIMIT);
    assert_int_equal(dim, 4);
    assert_int_equal(vl_get(e, "c", "A", 1, out, 8, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_get(e, "other", "a", 1, out, 8, &dim), VL_ERR_NOTFOUND);

    /* binary keys: "k\0x" and "k" are different keys */
    assert_int_equal(vl_put(e, "c", "k\0x", 3, b, 4, &err), VL_OK);
    assert_int_equal(vl_get(e, "c", "k", 1, out, 8, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_get(e, "c", "k\0x", 3, out, 8, &dim), VL_OK);
    assert_memory_equal(out, b, sizeof b);

    /* overwrite */
    put_ok(e, "c", "a", b, 4);
    assert_int_equal(vl_get(e, "c", "a", 1, out, 8, &dim), VL_OK);
    assert_memory_equal(out, b, sizeof b);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.dim, 4);
    assert_int_equal(info.count, 2);
    assert_int_equal(info.metric, VL_METRIC_L2);

    int deleted = -1;
    assert_int_equal(vl_delete(e, "c", "a", 1, &deleted, &err), VL_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(vl_get(e, "c", "a", 1, out, 8, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_delete(e, "c", "a", 1, &deleted, &err), VL_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(vl_delete(e, "nosuch", "a", 1, &deleted, &err), VL_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.count, 1);

    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    assert_int_equal(st.vectors, 1);
    assert_int_equal(st.collections, 1);
    assert_true(st.wal_lsn >= 4);

    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.dim, 0);
    assert_int_equal(info.count, 0);
    assert_int_equal(info.metric, VL_METRIC_L2);
    assert_int_equal(vl_get(e, "c", "k\0x", 3, out, 8, &dim), VL_ERR_NOTFOUND);
    /* clear unfixed the dimension */
    put_ok(e, "c", "a", a, 3);
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.dim, 3);
    assert_int_equal(info.count, 1);
    /* clearing a missing collection is fine */
    assert_int_equal(vl_clear(e, "nosuch", &err), VL_OK);
    assert_int_equal(vl_collection_describe(e, "nosuch", &info), VL_ERR_NOTFOUND);
    vl_close(e);
}

static void expect_put_error(vl_engine *e, const char *coll, const void *key, size_t keylen,
                             const float *v, uint32_t dim, vl_status want, const char *needle)
{
    vl_error err;
    memset(&err, 0, sizeof err);
    vl_status st = vl_put(e, coll, key, keylen, v, dim, &err);
    if (st != want)
        fail_msg("vl_put: status %d, want %d (%s)", (int)st, (int)want, err.msg);
    if (needle && !strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_validation(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_with(t->dir, VL_METRIC_COSINE, 0);
    const float v4[4] = {1, 2, 3, 4}, v3[3] = {1, 2, 3};
    float bad[4] = {1, NAN, 3, 4}, zero[4] = {0, -0.0f, 0, 0};
    vl_error err;
    memset(&err, 0, sizeof err);

    put_ok(e, "c", "a", v4, 4);
    assert_int_equal(vl_put(e, "c", "b", 1, v3, 3, &err), VL_ERR_DIM);
    assert_string_equal(err.msg, "dimension mismatch: expected 4, got 3");
    expect_put_error(e, "c", "b", 1, bad, 4, VL_ERR_ARG, "NaN");
    bad[1] = INFINITY;
    expect_put_error(e, "c", "b", 1, bad, 4, VL_ERR_ARG, "element 1");
    expect_put_error(e, "c", "b", 1, zero, 4, VL_ERR_ARG, "zero vector");
    expect_put_error(e, "c", "b", 1, v4, 0, VL_ERR_ARG, NULL);
    expect_put_error(e, "c", "", 0, v4, 4, VL_ERR_ARG, "empty key");
    expect_put_error(e, "bad name", "b", 1, v4, 4, VL_ERR_ARG, "collection name");
    expect_put_error(e, "..", "b", 1, v4, 4, VL_ERR_ARG, "collection name");
    expect_put_error(e, "a/b", "b", 1, v4, 4, VL_ERR_ARG, "collection name");
    /* a failed put changes nothing */
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.count, 1);
    assert_int_equal(info.metric, VL_METRIC_COSINE);
    /* a zero vector is refused even when it would create the collection */
    expect_put_error(e, "fresh", "z", 1, zero, 4, VL_ERR_ARG, "zero vector");
    assert_int_equal(vl_collection_describe(e, "fresh", &info), VL_ERR_NOTFOUND);

    char *bigkey = calloc(1, VL_MAX_KEY_LEN + 1);
    assert_non_null(bigkey);
    expect_put_error(e, "c", bigkey, VL_MAX_KEY_LEN + 1, v4, 4, VL_ERR_LIMIT, NULL);
    memset(bigkey, 'k', VL_MAX_KEY_LEN);
    put_ok(e, "c", "x", v4, 4);
    assert_int_equal(vl_put(e, "c", bigkey, VL_MAX_KEY_LEN, v4, 4, &err), VL_OK);
    free(bigkey);

    /* search-side checks */
    vl_snapshot *s = vl_snapshot_open(e, "c");
    assert_non_null(s);
    vl_hit hits[4];
    uint32_t n = 99;
    assert_int_equal(vl_snapshot_search(s, v3, 3, 4, hits, &n, &err), VL_ERR_DIM);
    assert_string_equal(err.msg, "dimension mismatch: expected 4, got 3");
    assert_int_equal(n, 0);
    assert_int_equal(vl_snapshot_search(s, zero, 4, 4, hits, &n, &err), VL_ERR_ARG);
    bad[1] = NAN;
    assert_int_equal(vl_snapshot_search(s, bad, 4, 4, hits, &n, &err), VL_ERR_ARG);
    assert_int_equal(vl_snapshot_search(s, v4, 4, 0, hits, &n, &err), VL_ERR_LIMIT);
    assert_int_equal(vl_snapshot_search(s, v4, 4, VL_MAX_K + 1, hits, &n, &err), VL_ERR_LIMIT);
    vl_snapshot_close(s);
    vl_close(e);

    /* l2 accepts the zero vector, as data and as a query */
    char sub[96];
    snprintf(sub, sizeof sub, "%s/l2", t->dir);
    e = open_with(sub, VL_METRIC_L2, 0);
    put_ok(e, "c", "z", zero, 4);
    put_ok(e, "c", "a", v4, 4);
    s = vl_snapshot_open(e, "c");
    assert_int_equal(vl_snapshot_search(s, zero, 4, 4, hits, &n, &err), VL_OK);
    assert_int_equal(n, 2);
    ASSERT_HIT(&hits[0], "z");
    assert_true(hits[0].score == 0.0);
    ASSERT_HIT(&hits[1], "a");
    assert_true(fabs(hits[1].score - sqrt(30.0)) < 1e-12);
    vl_snapshot_close(s);
    vl_close(e);
}

static void test_options_and_names(void **state)
{
    (void)state;
    vl_options opt;
    memset(&opt, 0x5A, sizeof opt);
    vl_options_init(&opt);
    assert_int_equal(opt.default_metric, VL_METRIC_COSINE);
    assert_int_equal(opt.fsync, VL_FSYNC_ALWAYS);
    assert_int_equal(opt.deferred_sync, 0);
    vl_metric m;
    assert_int_equal(vl_metric_parse("ip", &m), VL_OK);
    assert_int_equal(m, VL_METRIC_IP);
    assert_int_equal(vl_metric_parse("L2", &m), VL_ERR_ARG);
    assert_string_equal(vl_metric_name(VL_METRIC_COSINE), "cosine");
    vl_fsync f;
    assert_int_equal(vl_fsync_parse("everysec", &f), VL_OK);
    assert_int_equal(f, VL_FSYNC_EVERYSEC);
    assert_string_equal(vl_fsync_name(VL_FSYNC_NO), "no");
}

/* ---- persistence ---- */

static void test_reopen_restores(void **state)
{
    tmp *t = *state;
    enum { N = 300, DIM = 19 };
    static float vecs[N][DIM];
    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 0);
    char key[32];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < DIM; d++)
            vecs[i][d] = rnd_float() * 100;
        snprintf(key, sizeof key, "key:%d", i);
        put_ok(e, "items", key, vecs[i], DIM);
    }
    /* overwrite every 7th, delete every 5th */
    for (int i = 0; i < N; i += 7) {
        vecs[i][0] += 1000;
        snprintf(key, sizeof key, "key:%d", i);
        put_ok(e, "items", key, vecs[i], DIM);
    }
    int deleted, live = N;
    for (int i = 0; i < N; i += 5) {
        snprintf(key, sizeof key, "key:%d", i);
        assert_int_equal(vl_delete(e, "items", key, strlen(key), &deleted, NULL), VL_OK);
        assert_int_equal(deleted, 1);
        live--;
    }
    const float one[2] = {0, 1};
    put_ok(e, "other", "x", one, 2);
    vl_close(e);

    /* Open with a different default metric: the stored one wins. */
    e = open_with(t->dir, VL_METRIC_COSINE, 0);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, "items", &info), VL_OK);
    assert_int_equal(info.metric, VL_METRIC_L2);
    assert_int_equal(info.dim, DIM);
    assert_int_equal(info.count, live);
    assert_int_equal(vl_collection_describe(e, "other", &info), VL_OK);
    assert_int_equal(info.metric, VL_METRIC_L2);
    assert_int_equal(info.dim, 2);
    float out[DIM];
    uint32_t dim;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        vl_status st = vl_get(e, "items", key, strlen(key), out, DIM, &dim);
        if (i % 5 == 0) {
            assert_int_equal(st, VL_ERR_NOTFOUND);
        } else {
            assert_int_equal(st, VL_OK);
            assert_int_equal(dim, DIM);
            assert_memory_equal(out, vecs[i], sizeof vecs[i]);
        }
    }
    /* The dimension is still fixed after the reopen. */
    vl_error err;
    assert_int_equal(vl_put(e, "items", "n", 1, one, 2, &err), VL_ERR_DIM);
    /* A new collection takes this engine's default. */
    put_ok(e, "fresh", "x", one, 2);
    assert_int_equal(vl_collection_describe(e, "fresh", &info), VL_OK);
    assert_int_equal(info.metric, VL_METRIC_COSINE);
    /* Search after reopen: the nearest to vecs[1] is key:1 at distance 0. */
    vl_snapshot *s = vl_snapshot_open(e, "items");
    assert_int_equal(vl_snapshot_count(s), live);
    vl_hit hits[3];
    uint32_t n;
    assert_int_equal(vl_snapshot_search(s, vecs[1], DIM, 3, hits, &n, &err), VL_OK);
    assert_int_equal(n, 3);
    ASSERT_HIT(&hits[0], "key:1");
    assert_true(hits[0].score == 0.0);
    vl_snapshot_close(s);
    vl_close(e);

    e = open_with(t->dir, VL_METRIC_IP, 0);
    assert_int_equal(vl_collection_describe(e, "fresh", &info), VL_OK);
    assert_int_equal(info.metric, VL_METRIC_COSINE);
    assert_int_equal(vl_collection_describe(e, "items", &info), VL_OK);
    assert_int_equal(info.count, live);
    vl_close(e);
}

static void test_clear_then_reopen(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_with(t->dir, VL_METRIC_IP, 0);
    const float v4[4] = {1, 2, 3, 4}, v2[2] = {5, 6};
    put_ok(e, "c", "a", v4, 4);
    put_ok(e, "c", "b", v4, 4);
    vl_error err;
    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    vl_close(e);

    e = open_with(t->dir, VL_METRIC_L2, 0);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.count, 0);
    assert_int_equal(info.dim, 0);
    assert_int_equal(info.metric, VL_METRIC_IP);
    float out[4];
    uint32_t dim;
    assert_int_equal(vl_get(e, "c", "a", 1, out, 4, &dim), VL_ERR_NOTFOUND);
    /* dimension unfixed: a 2-d vector is welcome */
    put_ok(e, "c", "a", v2, 2);
    vl_close(e);

    e = open_with(t->dir, VL_METRIC_L2, 0);
    assert_int_equal(vl_collection_describe(e, "c", &info), VL_OK);
    assert_int_equal(info.count, 1);
    assert_int_equal(info.dim, 2);
    assert_int_equal(vl_get(e, "c", "a", 1, out, 4, &dim), VL_OK);
    assert_int_equal(dim, 2);
    assert_true(out[0] == 5 && out[1] == 6);
    assert_int_equal(vl_get(e, "c", "b", 1, out, 4, &dim), VL_ERR_NOTFOUND);
    vl_close(e);
}

/* ---- exact search against brute force ---- */

typedef struct {
    int id;
    double score;
} ref_hit;

static vl_metric cmp_metric;

static int cmp_ref(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    if (x->score != y->score) {
        int asc = x->score < y->score ? -1 : 1;
        return cmp_metric == VL_METRIC_IP ? -asc : asc;
    }
    return x->id - y->id;
}

static double ref_score(vl_metric m, const float *q, const float *v, uint32_t dim)
{
    double dot = 0, l2 = 0, nq = 0, nv = 0;
    for (uint32_t i = 0; i < dim; i++) {
        double a = q[i], b = v[i];
        dot += a * b;
        l2 += (a - b) * (a - b);
        nq += a * a;
        nv += b * b;
    }
    switch (m) {
    case VL_METRIC_L2: return sqrt(l2);
    case VL_METRIC_COSINE: return 1.0 - dot / (sqrt(nq) * sqrt(nv));
    case VL_METRIC_IP: return dot;
    }
    return 0;
}

static void search_vs_brute_force(const char *dir, vl_metric metric)
{
    enum { N = 700, DIM = 37, NQ = 25, K = 12 };
    static float vecs[N][DIM];
    static int alive[N];
    static ref_hit ref[N];
    vl_engine *e = open_with(dir, metric, 1);
    char key[32];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < DIM; d++)
            vecs[i][d] = rnd_float();
        snprintf(key, sizeof key, "%d", i);
        put_ok(e, "s", key, vecs[i], DIM);
        alive[i] = 1;
    }
    for (int i = 3; i < N; i += 11) { /* overwrites */
        for (int d = 0; d < DIM; d++)
            vecs[i][d] = rnd_float() * 2;
        snprintf(key, sizeof key, "%d", i);
        put_ok(e, "s", key, vecs[i], DIM);
    }
    int deleted;
    for (int i = 0; i < N; i += 9) {
        snprintf(key, sizeof key, "%d", i);
        assert_int_equal(vl_delete(e, "s", key, strlen(key), &deleted, NULL), VL_OK);
        alive[i] = 0;
    }
    vl_error err;
    assert_int_equal(vl_sync(e, &err), VL_OK);
    vl_snapshot *s = vl_snapshot_open(e, "s");
    int live = 0;
    for (int i = 0; i < N; i++)
        live += alive[i];
    assert_int_equal(vl_snapshot_count(s), live);

    vl_hit hits[K];
    float q[DIM];
    for (int qi = 0; qi < NQ; qi++) {
        for (int d = 0; d < DIM; d++)
            q[d] = rnd_float();
        int n = 0;
        for (int i = 0; i < N; i++)
            if (alive[i])
                ref[n++] = (ref_hit){i, ref_score(metric, q, vecs[i], DIM)};
        cmp_metric = metric;
        qsort(ref, (size_t)n, sizeof *ref, cmp_ref);
        uint32_t nh = 0;
        assert_int_equal(vl_snapshot_search(s, q, DIM, K, hits, &nh, &err), VL_OK);
        assert_int_equal(nh, K);
        for (int i = 0; i < K; i++) {
            snprintf(key, sizeof key, "%d", ref[i].id);
            if (!hit_is(&hits[i], key))
                fail_msg("%s query %d rank %d: got '%.*s' (%.9g), want %s (%.9g)",
                         vl_metric_name(metric), qi, i, (int)hits[i].keylen, hits[i].key,
                         hits[i].score, key, ref[i].score);
            double tol = 1e-9 * (1 + fabs(ref[i].score));
            if (fabs(hits[i].score - ref[i].score) > tol)
                fail_msg("%s query %d rank %d: score %.17g, want %.17g", vl_metric_name(metric), qi,
                         i, hits[i].score, ref[i].score);
        }
    }
    /* k larger than the collection: everything, still in order. */
    vl_hit *all = malloc((size_t)(N + 10) * sizeof *all);
    assert_non_null(all);
    uint32_t nh = 0;
    assert_int_equal(vl_snapshot_search(s, q, DIM, N + 10, all, &nh, &err), VL_OK);
    assert_int_equal(nh, live);
    for (uint32_t i = 1; i < nh; i++) {
        if (metric == VL_METRIC_IP)
            assert_true(all[i - 1].score >= all[i].score);
        else
            assert_true(all[i - 1].score <= all[i].score);
    }
    free(all);
    vl_snapshot_close(s);
    vl_close(e);
}

static void test_search_l2(void **state)
{
    search_vs_brute_force(((tmp *)*state)->dir, VL_METRIC_L2);
}

static void test_search_cosine(void **state)
{
    search_vs_brute_force(((tmp *)*state)->dir, VL_METRIC_COSINE);
}

static void test_search_ip(void **state)
{
    search_vs_brute_force(((tmp *)*state)->dir, VL_METRIC_IP);
}

/* Equal scores come back in insertion order, for every metric. */
static void test_search_ties(void **state)
{
    tmp *t = *state;
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    const char *colls[] = {"l2", "cos", "ip"};
    for (int m = 0; m < 3; m++) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s/%s", t->dir, colls[m]);
        vl_engine *e = open_with(sub, metrics[m], 0);
        const float same[5] = {0.3f, -1, 2, 0.7f, 5}, other[5] = {-3, 1, 0, 0, -1};
        /* insertion order z, y, x, w, v: deliberately not key order */
        const char *keys[] = {"z", "y", "x", "w", "v"};
        put_ok(e, "c", "far", other, 5);
        for (int i = 0; i < 5; i++)
            put_ok(e, "c", keys[i], same, 5);
        vl_snapshot *s = vl_snapshot_open(e, "c");
        vl_hit hits[4];
        uint32_t n;
        vl_error err;
        assert_int_equal(vl_snapshot_search(s, same, 5, 4, hits, &n, &err), VL_OK);
        assert_int_equal(n, 4);
        for (int i = 0; i < 4; i++) {
            ASSERT_HIT(&hits[i], keys[i]);
            assert_true(hits[i].score == hits[0].score);
        }
        if (metrics[m] != VL_METRIC_IP)
            assert_true(hits[0].score == 0.0); /* identical vector: exactly 0 */
        vl_snapshot_close(s);
        vl_close(e);
    }
}

/* ---- snapshots ---- */

static void search_keys(const vl_snapshot *s, const float *q, uint32_t dim, uint32_t k,
                        const char *const *want, uint32_t nwant)
{
    vl_hit hits[16];
    uint32_t n = 99;
    vl_error err = {{0}};
    vl_status st = vl_snapshot_search(s, q, dim, k, hits, &n, &err);
    if (st != VL_OK)
        fail_msg("search: %d %s", (int)st, err.msg);
    if (n != nwant)
        fail_msg("search gave %u hits, want %u", n, nwant);
    for (uint32_t i = 0; i < n; i++)
        ASSERT_HIT(&hits[i], want[i]);
}

static void test_snapshot_isolation(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 0);
    const float a[2] = {1, 0}, b[2] = {2, 0}, c[2] = {3, 0}, d[2] = {0.5f, 0}, far[2] = {100, 0};
    const float q[2] = {0, 0};
    put_ok(e, "c", "a", a, 2);
    put_ok(e, "c", "b", b, 2);
    put_ok(e, "c", "c", c, 2);

    vl_snapshot *s1 = vl_snapshot_open(e, "c");
    assert_int_equal(vl_snapshot_count(s1), 3);
    const char *old[] = {"a", "b", "c"};
    search_keys(s1, q, 2, 10, old, 3);

    /* The very first change after the snapshot is an overwrite (its LSN
     * is the snapshot's + 1), then a new key and a delete. */
    put_ok(e, "c", "a", far, 2); /* overwrite: a moves far away */
    put_ok(e, "c", "d", d, 2);   /* new key, nearest of all */
    int deleted;
    assert_int_equal(vl_delete(e, "c", "b", 1, &deleted, NULL), VL_OK);
    assert_int_equal(deleted, 1);

    /* the old snapshot still sees a, b, c as they were */
    search_keys(s1, q, 2, 10, old, 3);
    assert_int_equal(vl_snapshot_count(s1), 3);
    vl_hit hits[4];
    uint32_t n;
    vl_error err;
    assert_int_equal(vl_snapshot_search(s1, q, 2, 1, hits, &n, &err), VL_OK);
    assert_int_equal(n, 1);
    ASSERT_HIT(&hits[0], "a");
    assert_true(hits[0].score == 1.0);

    vl_snapshot *s2 = vl_snapshot_open(e, "c");
    assert_int_equal(vl_snapshot_count(s2), 3);
    const char *mid[] = {"d", "c", "a"};
    search_keys(s2, q, 2, 10, mid, 3);
    assert_int_equal(vl_snapshot_search(s2, q, 2, 3, hits, &n, &err), VL_OK);
    assert_true(hits[2].score == 100.0);

    /* a delete right after a snapshot is invisible to it */
    assert_int_equal(vl_delete(e, "c", "c", 1, &deleted, NULL), VL_OK);
    assert_int_equal(deleted, 1);
    search_keys(s2, q, 2, 10, mid, 3);
    assert_int_equal(vl_snapshot_count(s2), 3);

    /* clear, then refill with another dimension */
    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    const float v3[3] = {1, 1, 1};
    put_ok(e, "c", "new", v3, 3);
    search_keys(s1, q, 2, 10, old, 3);
    assert_int_equal(vl_snapshot_count(s1), 3);
    search_keys(s2, q, 2, 10, mid, 3);
    assert_int_equal(vl_snapshot_count(s2), 3);

    vl_snapshot *s3 = vl_snapshot_open(e, "c");
    assert_int_equal(vl_snapshot_count(s3), 1);
    const char *now[] = {"new"};
    search_keys(s3, v3, 3, 5, now, 1);
    assert_int_equal(vl_snapshot_search(s3, q, 2, 5, hits, &n, &err), VL_ERR_DIM);

    /* a snapshot taken between clear and the next put is empty */
    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    vl_snapshot *s4 = vl_snapshot_open(e, "c");
    assert_int_equal(vl_snapshot_count(s4), 0);
    assert_int_equal(vl_snapshot_search(s4, q, 2, 5, hits, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    put_ok(e, "c", "after", a, 2);
    assert_int_equal(vl_snapshot_search(s4, q, 2, 5, hits, &n, &err), VL_OK);
    assert_int_equal(n, 0);

    /* a missing collection gives an empty snapshot */
    vl_snapshot *s5 = vl_snapshot_open(e, "missing");
    assert_non_null(s5);
    assert_int_equal(vl_snapshot_count(s5), 0);
    assert_int_equal(vl_snapshot_search(s5, q, 2, 5, hits, &n, &err), VL_OK);
    assert_int_equal(n, 0);

    vl_snapshot_close(s3);
    vl_snapshot_close(s1);
    vl_snapshot_close(s5);
    vl_snapshot_close(s4);
    vl_snapshot_close(s2);
    vl_snapshot_close(NULL);
    vl_close(e);
}

/* Many puts after a snapshot: chunks fill and the chunk directory is
 * replaced; the old snapshot must still read its rows. */
static void test_snapshot_across_growth(void **state)
{
    tmp *t = *state;
    enum { FIRST = 1000, MORE = 70000 };
    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 1);
    char key[32];
    float v[2];
    for (int i = 0; i < FIRST; i++) {
        v[0] = (float)i;
        v[1] = 0;
        snprintf(key, sizeof key, "%d", i);
        put_ok(e, "g", key, v, 2);
    }
    vl_snapshot *s = vl_snapshot_open(e, "g");
    for (int i = 0; i < MORE; i++) {
        v[0] = (float)(FIRST + i);
        v[1] = 0;
        snprintf(key, sizeof key, "%d", FIRST + i);
        put_ok(e, "g", key, v, 2);
        if (i == 20000) { /* overwrite 500 with a vector at the query */
            v[0] = 200000.0f;
            put_ok(e, "g", "500", v, 2);
        }
    }
    vl_error err;
    assert_int_equal(vl_sync(e, &err), VL_OK);
    const float q[2] = {200000.0f, 0};
    const char *old_want[] = {"999", "998"};
    search_keys(s, q, 2, 2, old_want, 2);
    assert_int_equal(vl_snapshot_count(s), FIRST);
    vl_snapshot *s2 = vl_snapshot_open(e, "g");
    assert_int_equal(vl_snapshot_count(s2), FIRST + MORE);
    const char *new_want[] = {"500", "70999", "70998"};
    search_keys(s2, q, 2, 3, new_want, 3);
    vl_close(e);
    /* both snapshots outlive the engine */
    search_keys(s, q, 2, 2, old_want, 2);
    search_keys(s2, q, 2, 3, new_want, 3);
    vl_snapshot_close(s);
    vl_snapshot_close(s2);
}

static void test_snapshot_outlives_close(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_with(t->dir, VL_METRIC_COSINE, 0);
    const float a[3] = {1, 0, 0}, b[3] = {0, 1, 0}, c[3] = {1, 1, 0};
    put_ok(e, "c", "a", a, 3);
    put_ok(e, "c", "b", b, 3);
    put_ok(e, "c", "c", c, 3);
    vl_snapshot *s = vl_snapshot_open(e, "c");
    vl_error err;
    assert_int_equal(vl_clear(e, "c", &err), VL_OK); /* the engine drops its reference too */
    vl_close(e);

    vl_hit hits[3];
    uint32_t n;
    assert_int_equal(vl_snapshot_search(s, a, 3, 3, hits, &n, &err), VL_OK);
    assert_int_equal(n, 3);
    ASSERT_HIT(&hits[0], "a");
    ASSERT_HIT(&hits[1], "c");
    ASSERT_HIT(&hits[2], "b");
    assert_true(hits[0].score == 0.0);
    assert_true(fabs(hits[1].score - (1.0 - 1.0 / sqrt(2.0))) < 1e-9);
    assert_true(fabs(hits[2].score - 1.0) < 1e-12);
    assert_int_equal(vl_snapshot_count(s), 3);
    vl_snapshot_close(s);
}

/* ---- split (multi-part) search ---- */

typedef struct {
    vl_search *x;
    uint32_t part;
} part_job;

static void *run_part_thread(void *arg)
{
    part_job *j = arg;
    vl_search_run_part(j->x, j->part);
    return NULL;
}

/* Any number of parts, run in any order or on threads, gives exactly the
 * hits of vl_snapshot_search (ties by insertion order included). */
static void test_split_search_matches(void **state)
{
    tmp *t = *state;
    enum { N = 9000, DIM = 8, K = 25 };
    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 1);
    char key[32];
    float v[DIM];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < DIM; d++) /* coarse values: many exact ties */
            v[d] = (float)((int)(rnd_float() * 3));
        snprintf(key, sizeof key, "%d", i);
        put_ok(e, "p", key, v, DIM);
    }
    int deleted;
    for (int i = 0; i < N; i += 4) {
        snprintf(key, sizeof key, "%d", i);
        assert_int_equal(vl_delete(e, "p", key, strlen(key), &deleted, NULL), VL_OK);
    }
    vl_snapshot *s = vl_snapshot_open(e, "p");
    assert_true(vl_search_suggest_parts(s, 4) >= 1 && vl_search_suggest_parts(s, 4) <= 4);
    float q[DIM];
    vl_hit want[K], got[K];
    vl_error err;
    for (int qi = 0; qi < 4; qi++) {
        for (int d = 0; d < DIM; d++)
            q[d] = (float)((int)(rnd_float() * 3));
        uint32_t nwant, ngot;
        assert_int_equal(vl_snapshot_search(s, q, DIM, K, want, &nwant, &err), VL_OK);
        assert_int_equal(nwant, K);
        const uint32_t parts[] = {1, 2, 3, 7, 16};
        for (size_t pi = 0; pi < sizeof parts / sizeof parts[0]; pi++) {
            vl_search *x = NULL;
            assert_int_equal(vl_search_new(s, q, DIM, K, parts[pi], &x, &err), VL_OK);
            uint32_t np = vl_search_parts(x);
            assert_true(np >= 1);
            if (pi % 2 == 0) {
                for (uint32_t p = np; p-- > 0;) /* reverse order */
                    vl_search_run_part(x, p);
            } else {
                pthread_t th[64];
                part_job jobs[64];
                assert_true(np <= 64);
                for (uint32_t p = 0; p < np; p++) {
                    jobs[p] = (part_job){x, p};
                    assert_int_equal(pthread_create(&th[p], NULL, run_part_thread, &jobs[p]), 0);
                }
                for (uint32_t p = 0; p < np; p++)
                    pthread_join(th[p], NULL);
            }
            assert_int_equal(vl_search_finish(x, got, &ngot), VL_OK);
            vl_search_free(x);
            assert_int_equal(ngot, nwant);
            for (uint32_t i = 0; i < ngot; i++) {
                if (got[i].keylen != want[i].keylen ||
                    memcmp(got[i].key, want[i].key, got[i].keylen) != 0 ||
                    got[i].score != want[i].score)
                    fail_msg("%u parts, rank %u: got '%.*s' %.17g, want '%.*s' %.17g", parts[pi], i,
                             (int)got[i].keylen, got[i].key, got[i].score, (int)want[i].keylen,
                             want[i].key, want[i].score);
            }
        }
    }
    /* the same validation as vl_snapshot_search */
    vl_search *x = NULL;
    assert_int_equal(vl_search_new(s, q, DIM - 1, K, 2, &x, &err), VL_ERR_DIM);
    assert_int_equal(vl_search_new(s, q, DIM, 0, 2, &x, &err), VL_ERR_LIMIT);
    vl_snapshot_close(s);
    vl_close(e);
}

/* ---- group commit ---- */

static void test_deferred_sync(void **state)
{
    tmp *t = *state;
    const float v[2] = {1, 2};
    vl_error err;
    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 1);
    assert_int_equal(vl_sync_pending(e), 0);
    put_ok(e, "c", "a", v, 2);
    assert_int_equal(vl_sync_pending(e), 1);
    put_ok(e, "c", "b", v, 2);
    assert_int_equal(vl_sync_pending(e), 1);
    /* reads see unsynced writes */
    float out[2];
    uint32_t dim;
    assert_int_equal(vl_get(e, "c", "b", 1, out, 2, &dim), VL_OK);
    assert_int_equal(vl_sync(e, &err), VL_OK);
    assert_int_equal(vl_sync_pending(e), 0);
    assert_int_equal(vl_sync(e, &err), VL_OK); /* nothing to do */
    int deleted;
    assert_int_equal(vl_delete(e, "c", "a", 1, &deleted, &err), VL_OK);
    assert_int_equal(vl_sync_pending(e), 1);
    assert_int_equal(vl_sync(e, &err), VL_OK);
    assert_int_equal(vl_sync_pending(e), 0);
    /* a no-op delete logs nothing */
    assert_int_equal(vl_delete(e, "c", "a", 1, &deleted, &err), VL_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(vl_sync_pending(e), 0);
    put_ok(e, "c", "z", v, 2);
    vl_close(e); /* close syncs what is pending */

    e = open_with(t->dir, VL_METRIC_L2, 0);
    assert_int_equal(vl_get(e, "c", "a", 1, out, 2, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_get(e, "c", "b", 1, out, 2, &dim), VL_OK);
    assert_int_equal(vl_get(e, "c", "z", 1, out, 2, &dim), VL_OK);
    /* without deferred sync nothing is ever left pending */
    put_ok(e, "c", "y", v, 2);
    assert_int_equal(vl_sync_pending(e), 0);
    vl_close(e);
}

/* ---- recall on SIFT ---- */

/* Read an .fvecs/.ivecs file: records of int32 d then d 4-byte values. */
static void *read_vecs(const char *path, uint32_t *n, uint32_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    int32_t dim = 0;
    if (size <= 4 || fread(&dim, 4, 1, f) != 1 || dim <= 0 || size % (4 + 4 * (long)dim) != 0) {
        fclose(f);
        return NULL;
    }
    fseek(f, 0, SEEK_SET);
    size_t recs = (size_t)(size / (4 + 4 * (long)dim));
    char *data = malloc((size_t)size), *out = malloc(recs * (size_t)dim * 4);
    assert_non_null(data);
    assert_non_null(out);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    for (size_t r = 0; r < recs; r++) {
        int32_t rd;
        memcpy(&rd, data + r * (4 + 4 * (size_t)dim), 4);
        assert_int_equal(rd, dim);
        memcpy(out + r * (size_t)dim * 4, data + r * (4 + 4 * (size_t)dim) + 4, (size_t)dim * 4);
    }
    free(data);
    *n = (uint32_t)recs;
    *d = (uint32_t)dim;
    return out;
}

static void test_sift_recall(void **state)
{
    tmp *t = *state;
    uint32_t nb, db, nq, dq, ng, dg, ngd, dgd;
    char path[4][512];
    const char *names[4] = {"base.fvecs", "query.fvecs", "groundtruth.ivecs",
                            "groundtruth_dist.fvecs"};
    for (int i = 0; i < 4; i++)
        snprintf(path[i], sizeof path[i], "%s/sift-128-euclidean-ngt5k/%s", vl_test_datasets(),
                 names[i]);
    float *base = read_vecs(path[0], &nb, &db);
    float *queries = read_vecs(path[1], &nq, &dq);
    int32_t *gt = read_vecs(path[2], &ng, &dg);
    float *gtd = read_vecs(path[3], &ngd, &dgd);
    if (!base || !queries || !gt || !gtd) {
        free(base);
        free(queries);
        free(gt);
        free(gtd);
        skip();
    }
    enum { K = 10, NQ = 50 };
    assert_int_equal(db, dq);
    assert_true(nq >= NQ && ng >= NQ && ngd >= NQ && dg >= K && dgd >= K);

    vl_engine *e = open_with(t->dir, VL_METRIC_L2, 1);
    char key[16];
    for (uint32_t i = 0; i < nb; i++) {
        snprintf(key, sizeof key, "%u", i);
        put_ok(e, "sift", key, base + (size_t)i * db, db);
    }
    vl_error err;
    assert_int_equal(vl_sync(e, &err), VL_OK);
    vl_snapshot *s = vl_snapshot_open(e, "sift");
    assert_int_equal(vl_snapshot_count(s), nb);

    int found = 0;
    vl_hit hits[K];
    for (uint32_t qi = 0; qi < NQ; qi++) {
        const float *q = queries + (size_t)qi * dq;
        uint32_t n;
        assert_int_equal(vl_snapshot_search(s, q, dq, K, hits, &n, &err), VL_OK);
        assert_int_equal(n, K);
        double kth = gtd[(size_t)qi * dgd + K - 1];
        for (uint32_t i = 0; i < K; i++) {
            char buf[16];
            assert_true(hits[i].keylen < sizeof buf);
            memcpy(buf, hits[i].key, hits[i].keylen);
            buf[hits[i].keylen] = '\0';
            uint32_t id = (uint32_t)strtoul(buf, NULL, 10);
            assert_true(id < nb);
            /* the true distance of the returned id */
            double l2 = 0;
            for (uint32_t d = 0; d < db; d++) {
                double diff = (double)q[d] - base[(size_t)id * db + d];
                l2 += diff * diff;
            }
            double dist = sqrt(l2);
            assert_true(fabs(dist - hits[i].score) <= 1e-9 * (1 + dist));
            if (i > 0)
                assert_true(hits[i - 1].score <= hits[i].score);
            int in_gt = 0;
            for (uint32_t g = 0; g < K; g++)
                in_gt |= gt[(size_t)qi * dg + g] == (int32_t)id;
            if (in_gt || dist <= kth * (1 + 1e-6))
                found++;
        }
        /* The nearest returned has exactly the ground truth's best distance. */
        assert_true(fabs(hits[0].score - gtd[(size_t)qi * dgd]) <= 1e-5 * (1 + hits[0].score));
    }
    double recall = (double)found / (NQ * K);
    if (recall != 1.0)
        fail_msg("recall@%d over %d queries is %.4f, want 1.0", K, NQ, recall);
    vl_snapshot_close(s);
    vl_close(e);
    free(base);
    free(queries);
    free(gt);
    free(gtd);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)
    const struct CMUnitTest tests[] = {
        T(test_put_get_delete_clear),
        T(test_validation),
        cmocka_unit_test(test_options_and_names),
        T(test_reopen_restores),
        T(test_clear_then_reopen),
        T(test_search_l2),
        T(test_search_cosine),
        T(test_search_ip),
        T(test_search_ties),
        T(test_snapshot_isolation),
        T(test_snapshot_across_growth),
        T(test_snapshot_outlives_close),
        T(test_split_search_matches),
        T(test_deferred_sync),
        T(test_sift_recall),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
