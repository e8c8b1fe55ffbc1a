/*
 * test_hnsw.c - the HNSW graph index: recall floors with default parameters
 * on every shared dataset, filters, determinism, serialisation (round trip,
 * every byte flip, every truncation, forged but checksummed bodies) and the
 * edge cases (empty, k > count, dim 1, bad arguments).
 *
 * Under AddressSanitizer the dataset test builds on the first ASAN_BASE rows
 * with ASAN_QUERIES queries and computes their ground truth by brute force,
 * so the sanitised run stays short; the release run uses every row and
 * query with the shipped ground truth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/hnsw.h"
#include "storage/crc32c.h"
#include "testutil.h"
#include "testutil_fvecs.h"

enum { K = 10, ASAN_BASE = 3000, ASAN_QUERIES = 40 };

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 1;

static double frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* n x dim uniform values in [-1, 1), seeded. */
static float *random_vectors(uint32_t n, uint32_t dim, uint64_t seed)
{
    rng_state = seed;
    float *v = malloc((size_t)n * dim * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < (size_t)n * dim; i++)
        v[i] = (float)(2 * frand() - 1);
    return v;
}

static vl_hnsw *build(const float *v, uint32_t n, uint32_t dim, vl_metric metric, uint32_t m,
                      uint32_t efc, uint64_t seed)
{
    vl_hnsw *h;
    vl_error err;
    assert_int_equal(vl_hnsw_create(dim, metric, m, efc, seed, &h, &err), VL_OK);
    for (uint32_t r = 0; r < n; r++)
        if (vl_hnsw_add(h, r, v + (size_t)r * dim, &err) != VL_OK)
            fail_msg("add row %u: %s", r, err.msg);
    assert_int_equal(vl_hnsw_count(h), n);
    return h;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The k-th smallest true distance from q over the allowed rows of base. */
static double brute_kth(vl_metric m, const float *q, const float *base, uint32_t n, uint32_t dim,
                        uint32_t k, const uint64_t *excluded)
{
    double *d = malloc((size_t)n * sizeof(double));
    assert_non_null(d);
    uint32_t c = 0;
    for (uint32_t r = 0; r < n; r++)
        if (!excluded || !((excluded[r / 64] >> (r % 64)) & 1))
            d[c++] = vl_true_dist(m, q, base + (size_t)r * dim, dim);
    qsort(d, c, sizeof(double), cmp_double);
    double kth = d[(k < c ? k : c) - 1];
    free(d);
    return kth;
}

/* Mean tie-aware recall@K of nq queries against brute force. */
static double recall_brute(const vl_hnsw *h, vl_metric m, const float *base, uint32_t n,
                           const float *queries, uint32_t nq, uint32_t dim, uint32_t ef,
                           const vl_hnsw_filter *f, const uint64_t *excluded)
{
    vl_hnsw_scratch *s = vl_hnsw_scratch_new();
    vl_hnsw_hit hits[K];
    uint32_t rows[K], got, total = 0;
    vl_error err;
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = queries + (size_t)qi * dim;
        assert_int_equal(vl_hnsw_search(h, q, K, ef, f, s, hits, &got, &err), VL_OK);
        for (uint32_t i = 0; i < got; i++)
            rows[i] = hits[i].row;
        total +=
            vl_tie_hits(m, q, base, dim, rows, got, brute_kth(m, q, base, n, dim, K, excluded));
    }
    vl_hnsw_scratch_free(s);
    return (double)total / ((double)nq * K);
}

static vl_hnsw *roundtrip(const vl_hnsw *h, const float *v, uint32_t n, uint32_t dim)
{
    uint8_t *buf;
    size_t len;
    vl_error err;
    assert_int_equal(vl_hnsw_save(h, &buf, &len, &err), VL_OK);
    vl_hnsw *back;
    if (vl_hnsw_load(buf, len, v, n, dim, &back, &err) != VL_OK)
        fail_msg("load: %s", err.msg);
    free(buf);
    return back;
}

/* ---- recall on the shared datasets -------------------------------------- */

/* recall[0]: float32 walk, recall[1]: SQ8 walk with float32 re-rank. */
static void dataset_recall(const vl_dataset *ds, double recall[2], int *skipped)
{
    char path[4][512];
    const char *files[4] = {"base.fvecs", "query.fvecs", "groundtruth.ivecs",
                            "groundtruth_dist.fvecs"};
    for (int i = 0; i < 4; i++)
        snprintf(path[i], sizeof path[i], "%s/%s/%s", vl_test_datasets(), ds->name, files[i]);
    uint32_t nb, db, nq, dq, ng, dg;
    float *base = vl_read_vecs(path[0], &nb, &db);
    float *queries = vl_read_vecs(path[1], &nq, &dq);
    float *gtd = vl_read_vecs(path[3], &ng, &dg);
    if (!base || !queries || !gtd) {
        print_message("hnsw: dataset %s not found under %s, skipped\n", ds->name,
                      vl_test_datasets());
        free(base);
        free(queries);
        free(gtd);
        *skipped = 1;
        return;
    }
    assert_int_equal(db, dq);
    assert_true(ng == nq && dg >= K);
    if (VL_SANITIZED) {
        nb = nb < ASAN_BASE ? nb : ASAN_BASE;
        nq = nq < ASAN_QUERIES ? nq : ASAN_QUERIES;
    }
    vl_hnsw *h = build(base, nb, db, ds->metric, 0, 0, 42);
    vl_hnsw_scratch *s = vl_hnsw_scratch_new();
    vl_hnsw_hit hits[K];
    uint32_t rows[K], got;
    vl_error err;
    /* The same graph walked on float32, then on SQ8 codes. */
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1)
            assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
        uint32_t total = 0;
        for (uint32_t qi = 0; qi < nq; qi++) {
            const float *q = queries + (size_t)qi * dq;
            assert_int_equal(vl_hnsw_search(h, q, K, 0, NULL, s, hits, &got, &err), VL_OK);
            assert_int_equal(got, K);
            for (uint32_t i = 0; i < got; i++) {
                rows[i] = hits[i].row;
                assert_true(rows[i] < nb);
                if (i > 0)
                    assert_true(hits[i - 1].dist <= hits[i].dist);
            }
            double kth = VL_SANITIZED ? brute_kth(ds->metric, q, base, nb, db, K, NULL)
                                      : gtd[(size_t)qi * dg + K - 1];
            total += vl_tie_hits(ds->metric, q, base, db, rows, got, kth);
        }
        recall[mode] = (double)total / ((double)nq * K);
        print_message("hnsw: %s %s: recall@10 %.4f (%u rows, %u queries, ef %u, %.1f MB)\n",
                      ds->name, mode ? "sq8" : "float32", recall[mode], nb, nq, VL_HNSW_DEFAULT_EF,
                      vl_hnsw_memory_bytes(h) / 1e6);
    }
    vl_hnsw_scratch_free(s);
    vl_hnsw_free(h);
    free(base);
    free(queries);
    free(gtd);
}

static void test_dataset_recall_defaults(void **state)
{
    (void)state;
    int skipped = 0, ran = 0;
    for (size_t i = 0; i < VL_NDATASETS; i++) {
        int sk = 0;
        double r[2];
        dataset_recall(&vl_datasets[i], r, &sk);
        if (sk) {
            skipped = 1;
            continue;
        }
        ran++;
        for (int mode = 0; mode < 2; mode++)
            if (r[mode] < 0.95)
                fail_msg("%s: recall@10 %.4f < 0.95 with default parameters (%s)",
                         vl_datasets[i].name, r[mode], mode ? "sq8" : "float32");
    }
    if (skipped && !ran)
        skip();
}

/* ---- synthetic recall, every metric ------------------------------------- */

static void test_recall_every_metric(void **state)
{
    (void)state;
    enum { N = 3000, NQ = 50, D = 12 };
    float *v = random_vectors(N, D, 7), *q = random_vectors(NQ, D, 8);
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    for (int i = 0; i < 3; i++) {
        vl_hnsw *h = build(v, N, D, metrics[i], 0, 100, 1);
        double r = recall_brute(h, metrics[i], v, N, q, NQ, D, 0, NULL, NULL);
        print_message("hnsw: random %u x %u %s: recall@10 %.4f\n", N, D, vl_metric_name(metrics[i]),
                      r);
        assert_true(r >= (metrics[i] == VL_METRIC_IP ? 0.85 : 0.95));
        vl_hnsw_free(h);
    }
    free(v);
    free(q);
}

/* ---- filters ------------------------------------------------------------ */

static int allow_multiple_of_3(void *ctx, uint32_t row)
{
    (*(unsigned *)ctx)++;
    return row % 3 == 0;
}

static void test_filter_excludes_rows(void **state)
{
    (void)state;
    enum { N = 4000, NQ = 50, D = 16 };
    float *v = random_vectors(N, D, 11), *q = random_vectors(NQ, D, 12);
    vl_hnsw *h = build(v, N, D, VL_METRIC_L2, 0, 100, 3);
    uint64_t excluded[(N + 63) / 64] = {0};
    for (uint32_t r = 0; r < N; r += 2)
        excluded[r / 64] |= 1ull << (r % 64); /* even rows are deleted */
    vl_hnsw_filter f = {excluded, NULL, NULL};
    vl_hnsw_hit hits[K];
    uint32_t got;
    vl_error err;
    for (uint32_t qi = 0; qi < NQ; qi++) {
        assert_int_equal(vl_hnsw_search(h, q + (size_t)qi * D, K, 0, &f, NULL, hits, &got, &err),
                         VL_OK);
        assert_int_equal(got, K);
        for (uint32_t i = 0; i < got; i++)
            assert_true(hits[i].row % 2 == 1);
    }
    double r = recall_brute(h, VL_METRIC_L2, v, N, q, NQ, D, 0, &f, excluded);
    print_message("hnsw: half the rows excluded: recall@10 %.4f\n", r);
    assert_true(r >= 0.9);

    /* A callback filter, with every row but row 0 also excluded by bitmap
     * except multiples of 3: a row must pass both. */
    unsigned calls = 0;
    vl_hnsw_filter g = {NULL, allow_multiple_of_3, &calls};
    for (uint32_t qi = 0; qi < NQ; qi++) {
        assert_int_equal(vl_hnsw_search(h, q + (size_t)qi * D, K, 0, &g, NULL, hits, &got, &err),
                         VL_OK);
        assert_int_equal(got, K);
        for (uint32_t i = 0; i < got; i++)
            assert_true(hits[i].row % 3 == 0);
    }
    assert_true(calls > 0);
    g.excluded = excluded; /* both: odd multiples of 3 only */
    assert_int_equal(vl_hnsw_search(h, q, K, 0, &g, NULL, hits, &got, &err), VL_OK);
    assert_int_equal(got, K);
    for (uint32_t i = 0; i < got; i++)
        assert_true(hits[i].row % 6 == 3);

    /* Everything excluded: no results, no error. */
    memset(excluded, 0xff, sizeof excluded);
    assert_int_equal(vl_hnsw_search(h, q, K, 0, &f, NULL, hits, &got, &err), VL_OK);
    assert_int_equal(got, 0);
    vl_hnsw_free(h);
    free(v);
    free(q);
}

static int allow_all(void *ctx, uint32_t row)
{
    (void)ctx, (void)row;
    return 1;
}

/* Unfiltered searches walk one sorted pool, filtered ones two heaps (see
 * hnsw.c); with a filter that allows every row both must return the same. */
static void test_pool_equals_heaps(void **state)
{
    (void)state;
    enum { N = 3000, NQ = 80, D = 10 };
    float *v = random_vectors(N, D, 91), *q = random_vectors(NQ, D, 92);
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE};
    vl_hnsw_filter f = {NULL, allow_all, NULL};
    for (int mi = 0; mi < 2; mi++) {
        vl_hnsw *h = build(v, N, D, metrics[mi], 0, 60, 13);
        vl_error err;
        for (int quant = 0; quant < 2; quant++) {
            if (quant)
                assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
            const uint32_t efs[] = {10, 17, 64, 200};
            for (int e = 0; e < 4; e++)
                for (uint32_t qi = 0; qi < NQ; qi++) {
                    vl_hnsw_hit a[K], b[K];
                    uint32_t na, nb;
                    const float *qq = q + (size_t)qi * D;
                    assert_int_equal(vl_hnsw_search(h, qq, K, efs[e], NULL, NULL, a, &na, &err),
                                     VL_OK);
                    assert_int_equal(vl_hnsw_search(h, qq, K, efs[e], &f, NULL, b, &nb, &err),
                                     VL_OK);
                    assert_int_equal(na, nb);
                    assert_memory_equal(a, b, na * sizeof a[0]);
                }
        }
        vl_hnsw_free(h);
    }
    free(v);
    free(q);
}

/* The bench's cost measure: a scratch counts the distances of its
 * searches, the same for the same search, more for a wider beam. */
static void test_distances_counted(void **state)
{
    (void)state;
    enum { N = 2000, D = 8 };
    float *v = random_vectors(N, D, 31), *q = random_vectors(1, D, 32);
    vl_hnsw *h = build(v, N, D, VL_METRIC_L2, 0, 60, 5);
    vl_hnsw_scratch *s = vl_hnsw_scratch_new();
    assert_non_null(s);
    assert_int_equal(vl_hnsw_scratch_distances(s), 0);
    vl_hnsw_hit hits[K];
    uint32_t got;
    vl_error err;
    assert_int_equal(vl_hnsw_search(h, q, K, 10, NULL, s, hits, &got, &err), VL_OK);
    uint64_t one = vl_hnsw_scratch_distances(s);
    assert_true(one >= K && one < N);
    assert_int_equal(vl_hnsw_search(h, q, K, 10, NULL, s, hits, &got, &err), VL_OK);
    assert_int_equal(vl_hnsw_scratch_distances(s), 2 * one);
    assert_int_equal(vl_hnsw_search(h, q, K, 400, NULL, s, hits, &got, &err), VL_OK);
    assert_true(vl_hnsw_scratch_distances(s) - 2 * one > one);
    vl_hnsw_scratch_free(s);
    vl_hnsw_free(h);
    free(v);
    free(q);
}

/* ---- determinism and serialisation -------------------------------------- */

static void save(const vl_hnsw *h, uint8_t **buf, size_t *len)
{
    vl_error err;
    assert_int_equal(vl_hnsw_save(h, buf, len, &err), VL_OK);
}

static void test_same_seed_same_graph(void **state)
{
    (void)state;
    enum { N = 1500, D = 8 };
    float *v = random_vectors(N, D, 21);
    vl_hnsw *a = build(v, N, D, VL_METRIC_L2, 8, 64, 99),
            *b = build(v, N, D, VL_METRIC_L2, 8, 64, 99);
    vl_hnsw *c = build(v, N, D, VL_METRIC_L2, 8, 64, 100);
    uint8_t *ba, *bb, *bc;
    size_t la, lb, lc;
    save(a, &ba, &la);
    save(b, &bb, &lb);
    save(c, &bc, &lc);
    assert_true(la == lb && memcmp(ba, bb, la) == 0);
    assert_true(la != lc || memcmp(ba, bc, la) != 0);

    /* Saving half way, loading and adding the rest gives the same graph as
     * building in one go (the level generator's state is kept). */
    vl_hnsw *half = build(v, N / 2, D, VL_METRIC_L2, 8, 64, 99);
    vl_hnsw *resumed = roundtrip(half, v, N / 2, D);
    vl_error err;
    for (uint32_t r = N / 2; r < N; r++)
        assert_int_equal(vl_hnsw_add(resumed, r, v + (size_t)r * D, &err), VL_OK);
    uint8_t *br;
    size_t lr;
    save(resumed, &br, &lr);
    assert_true(la == lr && memcmp(ba, br, la) == 0);
    free(ba);
    free(bb);
    free(bc);
    free(br);
    vl_hnsw_free(a);
    vl_hnsw_free(b);
    vl_hnsw_free(c);
    vl_hnsw_free(half);
    vl_hnsw_free(resumed);
    free(v);
}

static void test_roundtrip_same_results(void **state)
{
    (void)state;
    enum { N = 2000, NQ = 100, D = 10 };
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    float *v = random_vectors(N, D, 31), *q = random_vectors(NQ, D, 32);
    for (int mi = 0; mi < 3; mi++) {
        vl_hnsw *h = build(v, N, D, metrics[mi], 0, 80, 5);
        vl_hnsw *back = roundtrip(h, v, N, D);
        assert_int_equal(vl_hnsw_count(back), N);
        assert_int_equal(vl_hnsw_dim(back), D);
        vl_hnsw_hit x[K], y[K];
        uint32_t nx, ny;
        vl_error err;
        for (uint32_t qi = 0; qi < NQ; qi++) {
            const float *qq = q + (size_t)qi * D;
            assert_int_equal(vl_hnsw_search(h, qq, K, 40, NULL, NULL, x, &nx, &err), VL_OK);
            assert_int_equal(vl_hnsw_search(back, qq, K, 40, NULL, NULL, y, &ny, &err), VL_OK);
            assert_int_equal(nx, ny);
            assert_memory_equal(x, y, nx * sizeof x[0]);
        }
        vl_hnsw_free(h);
        vl_hnsw_free(back);
    }
    free(v);
    free(q);
}

/* A small index whose body is a few hundred bytes. */
static vl_hnsw *small_index(float **v, uint32_t *n, uint32_t *dim)
{
    *n = 40;
    *dim = 3;
    *v = random_vectors(*n, *dim, 41);
    return build(*v, *n, *dim, VL_METRIC_L2, 4, 16, 6);
}

static void test_every_byte_flip_detected(void **state)
{
    (void)state;
    float *v;
    uint32_t n, dim;
    vl_hnsw *h = small_index(&v, &n, &dim);
    uint8_t *buf;
    size_t len;
    save(h, &buf, &len);
    print_message("hnsw: small body %zu bytes\n", len);
    vl_error err;
    vl_hnsw *back;
    for (size_t i = 0; i < len; i++) {
        uint8_t orig = buf[i];
        for (unsigned x = 1; x < 256; x++) {
            buf[i] = (uint8_t)(orig ^ x);
            vl_status st = vl_hnsw_load(buf, len, v, n, dim, &back, &err);
            if (st != VL_ERR_CORRUPT)
                fail_msg("byte %zu ^ %02x: status %d", i, x, (int)st);
            assert_null(back);
        }
        buf[i] = orig;
    }
    assert_int_equal(vl_hnsw_load(buf, len, v, n, dim, &back, &err), VL_OK);
    vl_hnsw_free(back);
    free(buf);
    vl_hnsw_free(h);
    free(v);
}

static void test_every_truncation_rejected(void **state)
{
    (void)state;
    float *v;
    uint32_t n, dim;
    vl_hnsw *h = small_index(&v, &n, &dim);
    uint8_t *buf;
    size_t len;
    save(h, &buf, &len);
    vl_error err;
    vl_hnsw *back;
    for (size_t l = 0; l < len; l++) {
        /* A copy of exactly l bytes, so ASan sees any read past it. */
        uint8_t *cut = malloc(l ? l : 1);
        memcpy(cut, buf, l);
        assert_int_equal(vl_hnsw_load(cut, l, v, n, dim, &back, &err), VL_ERR_CORRUPT);
        assert_null(back);
        free(cut);
    }
    assert_non_null(strstr(err.msg, "truncated"));
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(vl_hnsw_load(longer, len + 1, v, n, dim, &back, &err), VL_ERR_CORRUPT);
    free(longer);
    free(buf);
    vl_hnsw_free(h);
    free(v);
}

static void put32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

/* Rewrite the trailing CRC so only the structural checks stand guard. */
static void reseal(uint8_t *buf, size_t len)
{
    put32(buf + len - 4, vl_crc32c(0, buf, len - 4));
}

static void expect_corrupt(uint8_t *buf, size_t len, const float *v, uint32_t n, uint32_t dim,
                           const char *needle)
{
    vl_error err;
    vl_hnsw *back;
    reseal(buf, len);
    assert_int_equal(vl_hnsw_load(buf, len, v, n, dim, &back, &err), VL_ERR_CORRUPT);
    assert_null(back);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_forged_bodies_rejected(void **state)
{
    (void)state;
    float *v;
    uint32_t n, dim;
    vl_hnsw *h = small_index(&v, &n, &dim);
    uint8_t *buf, *work;
    size_t len;
    save(h, &buf, &len);
    work = malloc(len);
    const size_t levels = 88, lists = levels + n;

    /* Row 0's first layer-0 link points past the last row. */
    memcpy(work, buf, len);
    assert_true(work[lists] > 0);
    put32(work + lists + 4, n);
    expect_corrupt(work, len, v, n, dim, "links to row");
    /* ... or to itself. */
    memcpy(work, buf, len);
    put32(work + lists + 4, 0);
    expect_corrupt(work, len, v, n, dim, "links to row 0");
    /* Row 0 claims more links than a list holds. */
    memcpy(work, buf, len);
    put32(work + lists, 9);
    expect_corrupt(work, len, v, n, dim, "links (at most 8");
    /* A level above the cap. */
    memcpy(work, buf, len);
    work[levels] = 200;
    expect_corrupt(work, len, v, n, dim, "level 200");
    /* The entry point is not on the top level. */
    memcpy(work, buf, len);
    put32(work + 56, 7);
    expect_corrupt(work, len, v, n, dim, "entry");
    /* An unknown quantiser, or SQ8 with a zero step. */
    memcpy(work, buf, len);
    put32(work + 72, 2);
    expect_corrupt(work, len, v, n, dim, "bad quantiser 2");
    memcpy(work, buf, len);
    put32(work + 72, 1);
    expect_corrupt(work, len, v, n, dim, "bad quantiser 1");
    /* A format version this build does not read (1 and 2 it does). */
    memcpy(work, buf, len);
    put32(work + 8, 3);
    expect_corrupt(work, len, v, n, dim, "version 3");
    /* Vectors other than the ones it was built from. */
    vl_error err;
    vl_hnsw *back;
    v[5] += 1.0f;
    assert_int_equal(vl_hnsw_load(buf, len, v, n, dim, &back, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "other vectors"));
    /* Another row count or dimension than the segment's. */
    assert_int_equal(vl_hnsw_load(buf, len, v, n - 1, dim, &back, &err), VL_ERR_CORRUPT);
    assert_int_equal(vl_hnsw_load(buf, len, v, n, dim + 1, &back, &err), VL_ERR_CORRUPT);
    free(work);
    free(buf);
    vl_hnsw_free(h);
    free(v);
}

/* ---- SQ8 traversal ------------------------------------------------------ */

static void search_all(const vl_hnsw *h, const float *q, uint32_t nq, uint32_t dim,
                       vl_hnsw_hit *out, uint32_t *got)
{
    vl_error err;
    for (uint32_t qi = 0; qi < nq; qi++)
        assert_int_equal(vl_hnsw_search(h, q + (size_t)qi * dim, K, 32, NULL, NULL,
                                        out + (size_t)qi * K, &got[qi], &err),
                         VL_OK);
}

/* Byte-valued L2 data is coded losslessly: the SQ8 walk finds exactly what
 * the float32 walk finds. */
static void test_sq8_exact_on_byte_data(void **state)
{
    (void)state;
    enum { N = 2000, NQ = 50, D = 16 };
    float *v = random_vectors(N, D, 71), *q = random_vectors(NQ, D, 72);
    for (size_t i = 0; i < (size_t)N * D; i++)
        v[i] = floorf((v[i] + 1) * 100); /* integers 0..199 */
    for (size_t i = 0; i < (size_t)NQ * D; i++)
        q[i] = floorf((q[i] + 1) * 100);
    vl_hnsw *h = build(v, N, D, VL_METRIC_L2, 0, 80, 4);
    vl_hnsw_hit a[NQ * K], b[NQ * K];
    uint32_t na[NQ], nb[NQ];
    vl_error err;
    search_all(h, q, NQ, D, a, na);
    assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
    search_all(h, q, NQ, D, b, nb);
    assert_memory_equal(na, nb, sizeof na);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(vl_hnsw_set_quant(h, (vl_hnsw_quant)7, &err), VL_ERR_ARG);
    vl_hnsw_free(h);
    free(v);
    free(q);
}

static double l2_double(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

/* On byte-valued L2 data the SQ8 walk skips the float32 re-rank, but only
 * while its distances are the true ones: a query that does not code
 * exactly, and every query once a row that does not code exactly was added
 * after vl_hnsw_set_quant, are still re-ranked (the distances returned are
 * float32 ones, not code ones). */
static void test_sq8_exact_only_when_codes_are(void **state)
{
    (void)state;
    enum { N = 300, D = 8 };
    float *v = random_vectors(N + 1, D, 73);
    for (size_t i = 0; i < (size_t)N * D; i++)
        v[i] = floorf((v[i] + 1) * 100); /* integers 0..199 */
    vl_hnsw *h = build(v, N, D, VL_METRIC_L2, 0, 80, 4);
    vl_error err;
    assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
    vl_hnsw_hit hit;
    uint32_t got;
    /* A query between byte values: its code rounds, so it is re-ranked. */
    float q[D];
    for (uint32_t i = 0; i < D; i++)
        q[i] = v[i] + 0.4f;
    assert_int_equal(vl_hnsw_search(h, q, 1, 0, NULL, NULL, &hit, &got, &err), VL_OK);
    assert_int_equal(got, 1);
    assert_int_equal(hit.row, 0);
    assert_float_equal(hit.dist, l2_double(q, v, D), 1e-4);
    /* A later row of 10.4s codes as 10s; an integer query of 10s is exact,
     * but its distance to that row must not be the codes' 0. */
    float *late = v + (size_t)N * D;
    for (uint32_t i = 0; i < D; i++) {
        late[i] = 10.4f;
        q[i] = 10;
    }
    assert_int_equal(vl_hnsw_add(h, N, late, &err), VL_OK);
    assert_int_equal(vl_hnsw_search(h, q, 1, 0, NULL, NULL, &hit, &got, &err), VL_OK);
    assert_int_equal(got, 1);
    assert_int_equal(hit.row, N);
    assert_float_equal(hit.dist, l2_double(q, late, D), 1e-4);
    vl_hnsw_free(h);
    free(v);
}

/* Quantised indexes survive a save and load (map and codes included), and
 * rows added after vl_hnsw_set_quant are coded too. */
static void test_sq8_roundtrip_and_later_rows(void **state)
{
    (void)state;
    enum { N = 2000, NQ = 60, D = 12 };
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    float *v = random_vectors(N, D, 81), *q = random_vectors(NQ, D, 82);
    for (int mi = 0; mi < 3; mi++) {
        vl_hnsw *h = build(v, N / 2, D, metrics[mi], 0, 80, 9);
        vl_error err;
        assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
        for (uint32_t r = N / 2; r < N; r++)
            assert_int_equal(vl_hnsw_add(h, r, v + (size_t)r * D, &err), VL_OK);
        double r = recall_brute(h, metrics[mi], v, N, q, NQ, D, 0, NULL, NULL);
        print_message("hnsw: sq8 random %s: recall@10 %.4f\n", vl_metric_name(metrics[mi]), r);
        assert_true(r >= (metrics[mi] == VL_METRIC_IP ? 0.85 : 0.95));
        vl_hnsw *back = roundtrip(h, v, N, D);
        vl_hnsw_hit a[NQ * K], b[NQ * K];
        uint32_t na[NQ], nb[NQ];
        search_all(h, q, NQ, D, a, na);
        search_all(back, q, NQ, D, b, nb);
        assert_memory_equal(na, nb, sizeof na);
        assert_memory_equal(a, b, sizeof a);
        assert_true(vl_hnsw_memory_bytes(h) >= vl_hnsw_graph_bytes(h) + (size_t)N * D * 5);
        vl_hnsw_free(h);
        vl_hnsw_free(back);
    }
    free(v);
    free(q);
}

/* ---- vector source ------------------------------------------------------ */

typedef struct {
    const float *rows;
    uint32_t dim;
} vec_table;

static const float *table_vector(void *ctx, uint32_t row)
{
    const vec_table *t = ctx;
    return t->rows + (size_t)row * t->dim;
}

static void save_body(const vl_hnsw *h, uint8_t **buf, size_t *len)
{
    vl_error err;
    assert_int_equal(vl_hnsw_save(h, buf, len, &err), VL_OK);
}

/* An index reading the caller's vectors: set on an empty index it builds
 * the same graph as with its own copy (byte for byte under l2 and ip, whose
 * distances do not normalise), with the same recall; set on a built one it
 * returns the same rows (plain and SQ8 walks) and holds dim x 4 bytes less
 * per row; a source whose vectors differ from the ones added is refused and
 * changes nothing. */
static void test_vector_source(void **state)
{
    (void)state;
    enum { N = 2000, NQ = 50, D = 12 };
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    float *v = random_vectors(N, D, 91), *q = random_vectors(NQ, D, 92);
    vec_table table = {v, D};
    vl_hnsw_vectors src = {table_vector, &table};
    for (int mi = 0; mi < 3; mi++) {
        vl_metric m = metrics[mi];
        vl_error err;
        vl_hnsw *own = build(v, N, D, m, 0, 80, 5), *ext;
        assert_int_equal(vl_hnsw_create(D, m, 0, 80, 5, &ext, &err), VL_OK);
        assert_int_equal(vl_hnsw_set_vector_source(ext, &src, &err), VL_OK);
        for (uint32_t r = 0; r < N; r++)
            assert_int_equal(vl_hnsw_add(ext, r, v + (size_t)r * D, &err), VL_OK);
        double re = recall_brute(ext, m, v, N, q, NQ, D, 0, NULL, NULL);
        double ro = recall_brute(own, m, v, N, q, NQ, D, 0, NULL, NULL);
        print_message("hnsw: source %s: recall@10 %.4f (own copy %.4f)\n", vl_metric_name(m), re,
                      ro);
        assert_true(re >= (m == VL_METRIC_IP ? 0.85 : 0.95) && re >= ro - 0.02);
        if (m != VL_METRIC_COSINE) {
            uint8_t *a, *b;
            size_t la, lb;
            save_body(own, &a, &la);
            save_body(ext, &b, &lb);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
            free(a);
            free(b);
        }
        /* Switching a built index: same rows, fewer bytes. */
        for (int quant = 0; quant < 2; quant++) {
            vl_hnsw *h = build(v, N, D, m, 0, 80, 5);
            if (quant) {
                assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
                assert_int_equal(vl_hnsw_set_quant(own, VL_HNSW_QUANT_SQ8, &err), VL_OK);
            }
            size_t before = vl_hnsw_memory_bytes(h);
            float wrong[D];
            memcpy(wrong, v, sizeof wrong);
            wrong[3] += 1;
            vec_table bad_table = {wrong, D}; /* row 0 differs, rows >= 1 out of range */
            vl_hnsw_vectors bad = {table_vector, &bad_table};
            vl_hnsw_hit one;
            uint32_t got;
            vl_hnsw *tiny = build(v, 1, D, m, 0, 80, 5);
            assert_int_equal(vl_hnsw_set_vector_source(tiny, &bad, &err), VL_ERR_ARG);
            assert_non_null(strstr(err.msg, "differ"));
            assert_int_equal(vl_hnsw_search(tiny, wrong, 1, 0, NULL, NULL, &one, &got, &err),
                             VL_OK);
            assert_true(got == 1 && one.row == 0 && one.dist != 0); /* still its own row 0 */
            vl_hnsw_free(tiny);
            assert_int_equal(vl_hnsw_set_vector_source(h, NULL, &err), VL_ERR_ARG);
            assert_int_equal(vl_hnsw_set_vector_source(h, &src, &err), VL_OK);
            size_t after = vl_hnsw_memory_bytes(h);
            size_t saved = (size_t)N * D * sizeof(float) - (m == VL_METRIC_COSINE ? N * 4 : 0);
            assert_true(before - after >= saved);
            vl_hnsw_hit a[NQ * K], b[NQ * K];
            uint32_t na[NQ], nb[NQ];
            search_all(own, q, NQ, D, a, na);
            search_all(h, q, NQ, D, b, nb);
            assert_memory_equal(na, nb, sizeof na);
            for (uint32_t i = 0; i < NQ * K; i++) {
                assert_int_equal(a[i].row, b[i].row);
                assert_float_equal(a[i].dist, b[i].dist, 1e-5);
            }
            vl_hnsw_free(h);
        }
        vl_hnsw_free(own);
        vl_hnsw_free(ext);
    }
    free(v);
    free(q);
}

/* ---- edge cases --------------------------------------------------------- */

static void test_empty_index(void **state)
{
    (void)state;
    vl_hnsw *h;
    vl_error err;
    assert_int_equal(vl_hnsw_create(4, VL_METRIC_COSINE, 0, 0, 1, &h, &err), VL_OK);
    const float q[4] = {1, 2, 3, 4};
    vl_hnsw_hit hits[K];
    uint32_t got = 99;
    assert_int_equal(vl_hnsw_search(h, q, K, 0, NULL, NULL, hits, &got, &err), VL_OK);
    assert_int_equal(got, 0);
    vl_hnsw *back = roundtrip(h, NULL, 0, 4);
    assert_int_equal(vl_hnsw_count(back), 0);
    assert_int_equal(vl_hnsw_search(back, q, K, 0, NULL, NULL, hits, &got, &err), VL_OK);
    assert_int_equal(got, 0);
    assert_int_equal(vl_hnsw_add(back, 0, q, &err), VL_OK);
    assert_int_equal(vl_hnsw_search(back, q, K, 0, NULL, NULL, hits, &got, &err), VL_OK);
    assert_int_equal(got, 1);
    assert_true(hits[0].row == 0 && fabsf(hits[0].dist) < 1e-6f);
    vl_hnsw_free(h);
    vl_hnsw_free(back);
}

static void test_k_above_count(void **state)
{
    (void)state;
    enum { N = 7, D = 5 };
    float *v = random_vectors(N, D, 51);
    vl_hnsw *h = build(v, N, D, VL_METRIC_L2, 0, 0, 2);
    vl_hnsw_hit hits[20];
    uint32_t got;
    vl_error err;
    assert_int_equal(vl_hnsw_search(h, v, 20, 0, NULL, NULL, hits, &got, &err), VL_OK);
    assert_int_equal(got, N);
    assert_int_equal(hits[0].row, 0);
    unsigned seen = 0;
    for (uint32_t i = 0; i < got; i++) {
        seen |= 1u << hits[i].row;
        if (i > 0)
            assert_true(hits[i - 1].dist <= hits[i].dist);
    }
    assert_int_equal(seen, (1u << N) - 1);
    vl_hnsw_free(h);
    free(v);
}

static void test_dim_one(void **state)
{
    (void)state;
    enum { N = 2000, NQ = 50 };
    float *v = random_vectors(N, 1, 61), *q = random_vectors(NQ, 1, 62);
    vl_hnsw *h = build(v, N, 1, VL_METRIC_L2, 0, 0, 3);
    double r = recall_brute(h, VL_METRIC_L2, v, N, q, NQ, 1, 0, NULL, NULL);
    print_message("hnsw: dim 1: recall@10 %.4f\n", r);
    assert_true(r >= 0.99);
    vl_hnsw *back = roundtrip(h, v, N, 1);
    assert_true(recall_brute(back, VL_METRIC_L2, v, N, q, NQ, 1, 0, NULL, NULL) == r);
    vl_hnsw_free(h);
    vl_hnsw_free(back);
    free(v);
    free(q);
}

static void test_duplicates_and_zero_vectors(void **state)
{
    (void)state;
    enum { N = 300, D = 4 };
    float *v = calloc((size_t)N * D, sizeof(float));
    for (uint32_t r = 100; r < N; r++)
        for (uint32_t d = 0; d < D; d++)
            v[(size_t)r * D + d] = (float)(r % 3 + d); /* rows 0..99 zero, the rest 3 vectors */
    const vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    for (int mi = 0; mi < 3; mi++) {
        vl_hnsw *h = build(v, N, D, metrics[mi], 4, 20, 1);
        vl_hnsw_hit hits[K];
        uint32_t got;
        vl_error err;
        assert_int_equal(vl_hnsw_search(h, v + 150 * D, K, 0, NULL, NULL, hits, &got, &err), VL_OK);
        if (got != K)
            fail_msg("%s: %u results", vl_metric_name(metrics[mi]), got);
        /* Row 150 has 66 bytewise twins: the ten nearest are all at 0. */
        for (uint32_t i = 0; i < got; i++)
            if (metrics[mi] != VL_METRIC_IP && !(fabsf(hits[i].dist) < 1e-6f))
                fail_msg("%s: hit %u at %g", vl_metric_name(metrics[mi]), i, hits[i].dist);
        vl_hnsw_free(h);
    }
    free(v);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    vl_hnsw *h;
    vl_error err;
    assert_int_equal(vl_hnsw_create(0, VL_METRIC_L2, 0, 0, 1, &h, &err), VL_ERR_ARG);
    assert_null(h);
    assert_int_equal(vl_hnsw_create(VL_MAX_DIM + 1, VL_METRIC_L2, 0, 0, 1, &h, &err), VL_ERR_ARG);
    assert_int_equal(vl_hnsw_create(4, (vl_metric)9, 0, 0, 1, &h, &err), VL_ERR_ARG);
    assert_int_equal(vl_hnsw_create(4, VL_METRIC_L2, 1, 0, 1, &h, &err), VL_ERR_ARG);
    assert_int_equal(vl_hnsw_create(4, VL_METRIC_L2, VL_HNSW_MAX_M + 1, 0, 1, &h, &err),
                     VL_ERR_ARG);
    assert_int_equal(vl_hnsw_create(4, VL_METRIC_L2, 0, 0, 1, &h, &err), VL_OK);
    const float x[4] = {0};
    assert_int_equal(vl_hnsw_add(h, 1, x, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "out of order"));
    assert_int_equal(vl_hnsw_add(h, 0, x, &err), VL_OK);
    assert_int_equal(vl_hnsw_add(h, 0, x, &err), VL_ERR_ARG);
    vl_hnsw_hit hits[1];
    uint32_t got;
    assert_int_equal(vl_hnsw_search(h, x, 0, 0, NULL, NULL, hits, &got, &err), VL_ERR_ARG);
    assert_int_equal(vl_hnsw_search(h, x, VL_MAX_K + 1, 0, NULL, NULL, hits, &got, &err),
                     VL_ERR_ARG);
    assert_true(vl_hnsw_memory_bytes(h) > vl_hnsw_graph_bytes(h));
    vl_hnsw_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_recall_defaults),
        cmocka_unit_test(test_recall_every_metric),
        cmocka_unit_test(test_filter_excludes_rows),
        cmocka_unit_test(test_pool_equals_heaps),
        cmocka_unit_test(test_distances_counted),
        cmocka_unit_test(test_same_seed_same_graph),
        cmocka_unit_test(test_roundtrip_same_results),
        cmocka_unit_test(test_every_byte_flip_detected),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_forged_bodies_rejected),
        cmocka_unit_test(test_sq8_exact_on_byte_data),
        cmocka_unit_test(test_sq8_exact_only_when_codes_are),
        cmocka_unit_test(test_sq8_roundtrip_and_later_rows),
        cmocka_unit_test(test_vector_source),
        cmocka_unit_test(test_empty_index),
        cmocka_unit_test(test_k_above_count),
        cmocka_unit_test(test_dim_one),
        cmocka_unit_test(test_duplicates_and_zero_vectors),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
