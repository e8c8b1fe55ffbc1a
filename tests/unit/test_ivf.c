/*
 * test_ivf.c - the IVF index (src/core/index/ivf.*): recall floors with
 * default settings on the shared datasets, exactness when every list is
 * probed and every candidate re-ranked, visibility filters, the serialised
 * format (round trip, every byte flip, every truncation, inconsistent
 * content under a valid checksum) and edge cases.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/index/ivf.h"
#include "core/kernels/kernels.h"
#include "storage/crc32c.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static const vl_ivf_quant QUANTS[] = {VL_IVF_QUANT_NONE, VL_IVF_QUANT_SQ8, VL_IVF_QUANT_RABITQ};

/* ---- helpers -------------------------------------------------------- */

static uint64_t rng_state = 1;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* n x dim small integers (exact float distances) or uniform floats. */
static float *make_data(uint32_t n, uint32_t dim, int integers, uint64_t seed)
{
    rng_state = seed;
    float *v = malloc((size_t)n * dim * sizeof *v);
    for (size_t i = 0; i < (size_t)n * dim; i++)
        v[i] = integers ? (float)(rnd() % 16) : (float)(rnd() % 100000) / 50000.0f - 1.0f;
    return v;
}

static double key_of(vl_metric m, const float *q, const float *x, uint32_t dim)
{
    if (m == VL_METRIC_L2)
        return vl_l2sq_f64(q, x, dim);
    if (m == VL_METRIC_IP)
        return -vl_dot_f64(q, x, dim);
    double nq = vl_dot_f64(q, q, dim), nx = vl_dot_f64(x, x, dim);
    return nq > 0 && nx > 0 ? 1 - vl_dot_f64(q, x, dim) / sqrt(nq * nx) : 1;
}

typedef struct {
    double key;
    uint32_t row;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Exact top k of the rows for which keep(row) (NULL: all); returns count. */
static uint32_t brute(vl_metric m, const float *rows, uint32_t n, uint32_t dim, const float *q,
                      uint32_t k, int (*keep)(void *, uint32_t), uint32_t *out)
{
    ranked *r = malloc((size_t)n * sizeof *r);
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!keep || keep(NULL, i))
            r[c++] = (ranked){key_of(m, q, rows + (size_t)i * dim, dim), i};
    qsort(r, c, sizeof *r, cmp_ranked);
    uint32_t got = c < k ? c : k;
    for (uint32_t i = 0; i < got; i++)
        out[i] = r[i].row;
    free(r);
    return got;
}

static vl_ivf *build(vl_metric m, vl_ivf_quant q, const float *v, uint32_t n, uint32_t dim,
                     uint32_t nlist, uint64_t seed)
{
    vl_ivf_params p = {.dim = dim, .metric = m, .nlist = nlist, .quant = q, .seed = seed};
    vl_ivf *ix = NULL;
    vl_error err;
    vl_status st = vl_ivf_build(&p, v, n, &ix, &err);
    if (st != VL_OK)
        fail_msg("build: %s", err.msg);
    return ix;
}

/* Every list probed, every candidate re-ranked: the index must be exact. */
static vl_ivf_search_opts full_opts(const vl_ivf *ix, const float *rows, uint32_t k)
{
    vl_ivf_search_opts o = {.nprobe = vl_ivf_nlist(ix), .rows = rows};
    o.rerank = (vl_ivf_count(ix) + k - 1) / k + 1;
    return o;
}

static void expect_exact(vl_ivf *ix, vl_metric m, const float *rows, uint32_t n, uint32_t dim,
                         const float *queries, uint32_t nq, uint32_t k,
                         int (*keep)(void *, uint32_t), const uint64_t *bits)
{
    vl_ivf_hit *hits = malloc(k * sizeof *hits);
    uint32_t *want = malloc(k * sizeof *want);
    vl_ivf_search_opts o = full_opts(ix, rows, k);
    o.filter = keep;
    o.visible = bits;
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = queries + (size_t)qi * dim;
        uint32_t got, nw = brute(m, rows, n, dim, q, k, keep, want);
        vl_error err;
        assert_int_equal(vl_ivf_search(ix, q, k, &o, hits, &got, &err), VL_OK);
        assert_int_equal(got, nw);
        for (uint32_t i = 0; i < got; i++) {
            /* Equal true distances may rank either way (float rounding). */
            double kh = key_of(m, q, rows + (size_t)hits[i].row * dim, dim);
            double kw = key_of(m, q, rows + (size_t)want[i] * dim, dim);
            if (hits[i].row != want[i] && fabs(kh - kw) > 1e-6 * (1 + fabs(kw)))
                fail_msg("%s %s query %u rank %u: row %u, exact %u", vl_metric_name(m),
                         vl_ivf_quant_name(vl_ivf_quant_of(ix)), qi, i, hits[i].row, want[i]);
        }
    }
    free(want);
    free(hits);
}

/* ---- recall floors on the shared datasets --------------------------- */

typedef struct {
    float *v;
    uint32_t n, dim;
} vecs;

static int read_vecs(const char *dir, const char *name, const char *file, vecs *out)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", dir, name, file);
    FILE *f = fopen(p, "rb");
    int32_t d;
    if (!f)
        return -1;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || fseek(f, 0, SEEK_END)) {
        fclose(f);
        return -1;
    }
    long sz = ftell(f);
    rewind(f);
    out->dim = (uint32_t)d;
    out->n = (uint32_t)((size_t)sz / (4 + 4 * (size_t)d));
    out->v = malloc((size_t)out->n * out->dim * 4);
    for (uint32_t i = 0; i < out->n; i++)
        if (fread(&d, 4, 1, f) != 1 ||
            fread(out->v + (size_t)i * out->dim, 4, out->dim, f) != out->dim) {
            fclose(f);
            free(out->v);
            return -1;
        }
    fclose(f);
    return 0;
}

/* Tie-aware recall@10: a hit counts when its true distance (L2, or
 * 1 - cos) is within the 10th ground-truth distance. */
static double dataset_recall(const char *dir, const char *name, vl_ivf_quant quant)
{
    vecs base, query, gtd;
    if (read_vecs(dir, name, "base.fvecs", &base))
        return -1;
    if (read_vecs(dir, name, "query.fvecs", &query) ||
        read_vecs(dir, name, "groundtruth_dist.fvecs", &gtd))
        fail_msg("%s: base.fvecs present but query or groundtruth_dist unreadable", name);
    int cosine = strstr(name, "cosine") != NULL;
    vl_metric m = cosine ? VL_METRIC_COSINE : VL_METRIC_L2;
    vl_ivf *ix = build(m, quant, base.v, base.n, base.dim, 0, 7);
    uint32_t nq = UNDER_ASAN ? (query.n < 50 ? query.n : 50) : query.n, ok = 0;
    uint32_t scanned = 0;
    uint64_t lists = 0;
    vl_ivf_search_opts o = {.rows = base.v, .lists_scanned = &scanned};
    for (uint32_t qi = 0; qi < nq; qi++) {
        vl_ivf_hit hits[10];
        uint32_t got;
        const float *q = query.v + (size_t)qi * query.dim;
        assert_int_equal(vl_ivf_search(ix, q, 10, &o, hits, &got, NULL), VL_OK);
        lists += scanned;
        double t = gtd.v[(size_t)qi * gtd.dim + 9];
        for (uint32_t i = 0; i < got; i++) {
            const float *x = base.v + (size_t)hits[i].row * base.dim;
            double d = key_of(m, q, x, base.dim);
            d = cosine ? d : sqrt(d);
            ok += d <= t + 1e-6 * (1 + fabs(t));
        }
    }
    double r = (double)ok / (10.0 * nq);
    print_message("  %s %s nlist=%u lists scanned %.1f recall@10=%.4f (%u queries)\n", name,
                  vl_ivf_quant_name(quant), vl_ivf_nlist(ix), (double)lists / nq, r, nq);
    vl_ivf_free(ix);
    free(base.v);
    free(query.v);
    free(gtd.v);
    return r;
}

static void test_recall_defaults(void **state)
{
    (void)state;
    const char *dir = vl_test_datasets();
    DIR *d = opendir(dir);
    if (!d) {
        print_message("  no datasets at %s: skipped\n", dir);
        skip();
    }
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        for (size_t q = 0; q < sizeof QUANTS / sizeof *QUANTS; q++) {
            double r = dataset_recall(dir, e->d_name, QUANTS[q]);
            if (r < 0)
                break; /* not a dataset folder */
            seen++;
            if (r < 0.95)
                fail_msg("%s %s: recall@10 %.4f below 0.95 with defaults", e->d_name,
                         vl_ivf_quant_name(QUANTS[q]), r);
        }
    }
    closedir(d);
    if (!seen)
        skip();
}

/* ---- defaults on small, clustered sets ------------------------------ */

/* n rows around `centres` random centres (spread 3 per coordinate, noise
 * 0.15): the shape of the engine's small-collection tests. */
static float *clustered(uint32_t n, uint32_t dim, uint32_t centres, uint64_t seed)
{
    float *c = make_data(centres, dim, 0, seed);
    float *v = make_data(n, dim, 0, seed + 1);
    rng_state = seed + 2;
    for (uint32_t i = 0; i < n; i++) {
        const float *m = c + (size_t)(rnd() % centres) * dim;
        for (uint32_t j = 0; j < dim; j++)
            v[(size_t)i * dim + j] = 3 * m[j] + 0.15f * v[(size_t)i * dim + j];
    }
    free(c);
    return v;
}

/* Mean overlap of the k results with the exact top k (tie-aware), and the
 * mean number of lists scanned. */
static double overlap_with_exact(const vl_ivf *ix, vl_metric m, const float *rows, uint32_t n,
                                 uint32_t dim, const float *qs, uint32_t nq, uint32_t k,
                                 const vl_ivf_search_opts *base, double *lists)
{
    vl_ivf_hit *hits = malloc(k * sizeof *hits);
    uint32_t *want = malloc(k * sizeof *want), scanned = 0;
    vl_ivf_search_opts o = *base;
    o.lists_scanned = &scanned;
    uint64_t ok = 0, total = 0;
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = qs + (size_t)qi * dim;
        uint32_t got, nw = brute(m, rows, n, dim, q, k, NULL, want);
        assert_int_equal(vl_ivf_search(ix, q, k, &o, hits, &got, NULL), VL_OK);
        assert_int_equal(got, nw);
        double kth = key_of(m, q, rows + (size_t)want[nw - 1] * dim, dim);
        for (uint32_t i = 0; i < got; i++)
            ok += key_of(m, q, rows + (size_t)hits[i].row * dim, dim) <= kth + 1e-9 * (1 + kth);
        total += scanned;
    }
    free(want);
    free(hits);
    *lists = (double)total / nq;
    return (double)ok / ((double)nq * k);
}

/* The 1-bit code of a low-dimensional row says little about it; the
 * default re-rank follows RaBitQ's error bound, so with every list
 * probed it finds what an exact scan finds in any dimension (a fixed
 * depth of 10 k candidates reached 0.65-0.75 here). */
static void test_rabitq_default_rerank_follows_error_bound(void **state)
{
    (void)state;
    static const uint32_t dims[] = {8, 16, 64};
    const uint32_t n = 2000, nq = 50;
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        uint32_t dim = dims[d];
        float *rows = clustered(n, dim, 12, 40 + d), *qs = clustered(nq, dim, 12, 40 + d);
        for (vl_metric m = VL_METRIC_L2; m <= VL_METRIC_COSINE; m++) {
            vl_ivf *ix = build(m, VL_IVF_QUANT_RABITQ, rows, n, dim, 0, 1);
            vl_ivf_search_opts o = {.nprobe = vl_ivf_nlist(ix), .rows = rows};
            double lists, r = overlap_with_exact(ix, m, rows, n, dim, qs, nq, 10, &o, &lists);
            print_message("  rabitq dim %u %s, every list: overlap %.4f\n", dim, vl_metric_name(m),
                          r);
            if (r < 0.99)
                fail_msg("rabitq dim %u %s: overlap %.4f with every list probed", dim,
                         vl_metric_name(m), r);
            vl_ivf_free(ix);
        }
        free(rows);
        free(qs);
    }
}

/* Small sets get sqrt(n) lists and the default search scans a few of
 * them, not all, at recall >= 0.95 for every code. */
static void test_small_sets_scan_few_lists(void **state)
{
    (void)state;
    assert_int_equal(vl_ivf_default_nlist(1), 1);
    assert_int_equal(vl_ivf_default_nlist(2000), 45);
    assert_int_equal(vl_ivf_default_nlist(1000000), 1000);
    assert_int_equal(vl_ivf_default_nlist(1ull << 40), 4096);
    const uint32_t n = 2000, dim = 8, nq = 50;
    float *rows = clustered(n, dim, 12, 60), *qs = clustered(nq, dim, 12, 60);
    for (size_t q = 0; q < 3; q++) {
        vl_ivf *ix = build(VL_METRIC_L2, QUANTS[q], rows, n, dim, 0, 1);
        assert_int_equal(vl_ivf_nlist(ix), 45);
        vl_ivf_search_opts o = {.rows = rows};
        double lists,
            r = overlap_with_exact(ix, VL_METRIC_L2, rows, n, dim, qs, nq, 10, &o, &lists);
        print_message("  %s n %u: %u lists, %.1f scanned, recall@10 %.4f\n",
                      vl_ivf_quant_name(QUANTS[q]), n, vl_ivf_nlist(ix), lists, r);
        if (r < 0.95 || lists > vl_ivf_nlist(ix) / 2.0)
            fail_msg("%s: recall %.4f scanning %.1f of %u lists", vl_ivf_quant_name(QUANTS[q]), r,
                     lists, vl_ivf_nlist(ix));
        /* a given nprobe is scanned exactly */
        o.nprobe = 7;
        overlap_with_exact(ix, VL_METRIC_L2, rows, n, dim, qs, 1, 10, &o, &lists);
        assert_true(lists == 7);
        vl_ivf_free(ix);
    }
    free(rows);
    free(qs);
}

/* ---- exactness, filters, edge cases --------------------------------- */

static void test_exact_when_everything_probed(void **state)
{
    (void)state;
    const uint32_t n = 600, dim = 12;
    float *rows = make_data(n, dim, 1, 3), *qs = make_data(20, dim, 1, 4);
    float *frows = make_data(n, dim, 0, 5), *fqs = make_data(20, dim, 0, 6);
    for (size_t q = 0; q < 3; q++) {
        vl_ivf *ix = build(VL_METRIC_L2, QUANTS[q], rows, n, dim, 16, 1);
        expect_exact(ix, VL_METRIC_L2, rows, n, dim, qs, 20, 10, NULL, NULL);
        vl_ivf_free(ix);
        for (vl_metric m = VL_METRIC_COSINE; m <= VL_METRIC_IP; m++) {
            ix = build(m, QUANTS[q], frows, n, dim, 16, 1);
            expect_exact(ix, m, frows, n, dim, fqs, 20, 10, NULL, NULL);
            vl_ivf_free(ix);
        }
    }
    free(rows);
    free(qs);
    free(frows);
    free(fqs);
}

static int odd_rows(void *ctx, uint32_t row)
{
    (void)ctx;
    return row % 2 == 1;
}

static int odd_and_not_3(void *ctx, uint32_t row)
{
    (void)ctx;
    return row % 2 == 1 && row % 3 != 0;
}

static void test_filters(void **state)
{
    (void)state;
    const uint32_t n = 700, dim = 8;
    float *rows = make_data(n, dim, 1, 11), *qs = make_data(10, dim, 1, 12);
    uint64_t bits[(700 + 63) / 64];
    memset(bits, 0, sizeof bits);
    for (uint32_t r = 0; r < n; r++)
        if (r % 3 != 0)
            bits[r / 64] |= 1ull << (r % 64);
    for (size_t q = 0; q < 3; q++) {
        vl_ivf *ix = build(VL_METRIC_L2, QUANTS[q], rows, n, dim, 10, 2);
        /* callback alone, then callback and bitmap together */
        expect_exact(ix, VL_METRIC_L2, rows, n, dim, qs, 10, 10, odd_rows, NULL);
        vl_ivf_search_opts o = full_opts(ix, rows, 10);
        o.visible = bits;
        o.filter = odd_rows;
        for (uint32_t qi = 0; qi < 10; qi++) {
            vl_ivf_hit hits[10];
            uint32_t want[10], got, nw;
            nw = brute(VL_METRIC_L2, rows, n, dim, qs + qi * dim, 10, odd_and_not_3, want);
            assert_int_equal(vl_ivf_search(ix, qs + qi * dim, 10, &o, hits, &got, NULL), VL_OK);
            assert_int_equal(got, nw);
            for (uint32_t i = 0; i < got; i++)
                assert_int_equal(hits[i].row, want[i]);
        }
        /* A filter that hides every row leaves nothing, with default nprobe too. */
        memset(bits, 0, sizeof bits);
        vl_ivf_search_opts none = {.visible = bits, .rows = rows};
        vl_ivf_hit h[5];
        uint32_t got = 99;
        assert_int_equal(vl_ivf_search(ix, qs, 5, &none, h, &got, NULL), VL_OK);
        assert_int_equal(got, 0);
        for (uint32_t r = 0; r < n; r++)
            if (r % 3 != 0)
                bits[r / 64] |= 1ull << (r % 64);
        vl_ivf_free(ix);
    }
    free(rows);
    free(qs);
}

static const float *vector_cb(void *ctx, uint32_t row)
{
    return (const float *)ctx + (size_t)row * 8;
}

static void test_vector_callback_and_add(void **state)
{
    (void)state;
    const uint32_t n = 500, dim = 8;
    float *rows = make_data(n, dim, 1, 21), *qs = make_data(10, dim, 1, 22);
    for (size_t q = 0; q < 3; q++) {
        /* Trained on the first 200, then added in two batches. */
        vl_ivf_params p = {.dim = dim, .metric = VL_METRIC_L2, .nlist = 8, .quant = QUANTS[q]};
        vl_ivf *ix;
        assert_int_equal(vl_ivf_train(&p, rows, 200, &ix, NULL), VL_OK);
        assert_int_equal(vl_ivf_count(ix), 0);
        assert_int_equal(vl_ivf_add(ix, rows, 300, NULL), VL_OK);
        assert_int_equal(vl_ivf_add(ix, rows + 300 * dim, n - 300, NULL), VL_OK);
        assert_int_equal(vl_ivf_count(ix), n);
        expect_exact(ix, VL_METRIC_L2, rows, n, dim, qs, 10, 10, NULL, NULL);
        vl_ivf_search_opts o = full_opts(ix, NULL, 10);
        o.vector = vector_cb;
        o.vector_ctx = rows;
        vl_ivf_hit a[10], b[10];
        uint32_t na, nb;
        assert_int_equal(vl_ivf_search(ix, qs, 10, &o, a, &na, NULL), VL_OK);
        o.vector = NULL;
        o.rows = rows;
        assert_int_equal(vl_ivf_search(ix, qs, 10, &o, b, &nb, NULL), VL_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        vl_ivf_free(ix);
    }
    free(rows);
    free(qs);
}

static void test_edge_cases(void **state)
{
    (void)state;
    for (size_t q = 0; q < 3; q++) {
        /* k > n, and n < nlist (nlist is clamped to n). */
        float *rows = make_data(5, 4, 1, 31);
        vl_ivf *ix = build(VL_METRIC_L2, QUANTS[q], rows, 5, 4, 10, 1);
        assert_int_equal(vl_ivf_nlist(ix), 5);
        expect_exact(ix, VL_METRIC_L2, rows, 5, 4, rows, 5, 10, NULL, NULL);
        vl_ivf_hit h[10];
        uint32_t got;
        vl_ivf_search_opts o = {.nprobe = 1000, .rerank = 1000, .rows = rows};
        assert_int_equal(vl_ivf_search(ix, rows, 10, &o, h, &got, NULL), VL_OK);
        assert_int_equal(got, 5);
        assert_int_equal(h[0].row, 0);
        assert_true(h[0].dist == 0);
        vl_ivf_free(ix);
        free(rows);
        /* dim 1, every metric */
        rows = make_data(50, 1, 0, 32);
        for (vl_metric m = VL_METRIC_L2; m <= VL_METRIC_IP; m++) {
            ix = build(m, QUANTS[q], rows, 50, 1, 4, 1);
            expect_exact(ix, m, rows, 50, 1, rows, 50, 3, NULL, NULL);
            vl_ivf_free(ix);
        }
        free(rows);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float rows[8] = {1, 2, 3, 4, 5, 6, 7, 8}, q[2] = {1, NAN};
    vl_ivf_params p = {.dim = 2, .quant = VL_IVF_QUANT_SQ8};
    vl_ivf *ix;
    vl_error err;
    assert_int_equal(vl_ivf_train(&p, rows, 0, &ix, &err), VL_ERR_ARG);
    p.dim = 0;
    assert_int_equal(vl_ivf_train(&p, rows, 4, &ix, &err), VL_ERR_ARG);
    p.dim = 2;
    rows[3] = INFINITY;
    assert_int_equal(vl_ivf_train(&p, rows, 4, &ix, &err), VL_ERR_ARG);
    rows[3] = 4;
    assert_int_equal(vl_ivf_build(&p, rows, 4, &ix, &err), VL_OK);
    vl_ivf_hit h[2];
    uint32_t got;
    vl_ivf_search_opts o = {.rows = rows};
    assert_int_equal(vl_ivf_search(ix, rows, 0, &o, h, &got, &err), VL_ERR_ARG);
    assert_int_equal(vl_ivf_search(ix, q, 1, &o, h, &got, &err), VL_ERR_ARG);
    assert_int_equal(vl_ivf_search(ix, rows, 1, NULL, h, &got, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "re-rank"));
    vl_ivf_quant qq;
    assert_int_equal(vl_ivf_quant_parse("rabitq", &qq), VL_OK);
    assert_int_equal(qq, VL_IVF_QUANT_RABITQ);
    assert_int_equal(vl_ivf_quant_parse("pq", &qq), VL_ERR_ARG);
    vl_ivf_free(ix);
}

/* ---- serialised format ---------------------------------------------- */

static void test_round_trip_identical(void **state)
{
    (void)state;
    const uint32_t n = 800, dim = 20;
    float *rows = make_data(n, dim, 0, 41), *qs = make_data(30, dim, 0, 42);
    for (size_t q = 0; q < 3; q++)
        for (vl_metric m = VL_METRIC_L2; m <= VL_METRIC_IP; m++) {
            vl_ivf *a = build(m, QUANTS[q], rows, n, dim, 0, 9), *b;
            uint8_t *buf, *buf2;
            size_t len, len2;
            vl_error err;
            assert_int_equal(vl_ivf_serialize(a, &buf, &len, &err), VL_OK);
            if (vl_ivf_load(buf, len, &b, &err) != VL_OK)
                fail_msg("load: %s", err.msg);
            assert_int_equal(vl_ivf_serialize(b, &buf2, &len2, &err), VL_OK);
            assert_int_equal(len, len2);
            assert_memory_equal(buf, buf2, len);
            assert_int_equal(vl_ivf_memory_bytes(a), vl_ivf_memory_bytes(b));
            for (uint32_t qi = 0; qi < 30; qi++) {
                vl_ivf_hit ha[10], hb[10];
                uint32_t na, nb;
                vl_ivf_search_opts o = {.nprobe = 3, .rows = rows};
                assert_int_equal(vl_ivf_search(a, qs + qi * dim, 10, &o, ha, &na, NULL), VL_OK);
                assert_int_equal(vl_ivf_search(b, qs + qi * dim, 10, &o, hb, &nb, NULL), VL_OK);
                assert_int_equal(na, nb);
                assert_memory_equal(ha, hb, na * sizeof *ha);
            }
            /* Each list is one contiguous range of the body, in list order. */
            uint64_t end = 0;
            for (uint32_t l = 0; l < vl_ivf_nlist(a); l++) {
                vl_ivf_list_info li = vl_ivf_list(a, l);
                assert_true(li.offset >= end && li.offset % 64 == 0);
                end = li.offset + li.len;
            }
            free(buf);
            free(buf2);
            vl_ivf_free(a);
            vl_ivf_free(b);
        }
    free(rows);
    free(qs);
}

static void test_deterministic_seed(void **state)
{
    (void)state;
    const uint32_t n = 900, dim = 16;
    float *rows = make_data(n, dim, 0, 51);
    for (size_t q = 0; q < 3; q++) {
        uint8_t *b1, *b2, *b3;
        size_t l1, l2, l3;
        vl_ivf *x = build(VL_METRIC_L2, QUANTS[q], rows, n, dim, 12, 5);
        vl_ivf *y = build(VL_METRIC_L2, QUANTS[q], rows, n, dim, 12, 5);
        vl_ivf *z = build(VL_METRIC_L2, QUANTS[q], rows, n, dim, 12, 6);
        assert_int_equal(vl_ivf_serialize(x, &b1, &l1, NULL), VL_OK);
        assert_int_equal(vl_ivf_serialize(y, &b2, &l2, NULL), VL_OK);
        assert_int_equal(vl_ivf_serialize(z, &b3, &l3, NULL), VL_OK);
        assert_int_equal(l1, l2);
        assert_memory_equal(b1, b2, l1);
        assert_true(l1 != l3 || memcmp(b1, b3, l1) != 0);
        free(b1);
        free(b2);
        free(b3);
        vl_ivf_free(x);
        vl_ivf_free(y);
        vl_ivf_free(z);
    }
    free(rows);
}

static void small_buffer(vl_ivf_quant q, uint8_t **buf, size_t *len, float **rows)
{
    *rows = make_data(40, 3, 1, 61);
    vl_ivf *ix = build(VL_METRIC_L2, q, *rows, 40, 3, 4, 1);
    assert_int_equal(vl_ivf_serialize(ix, buf, len, NULL), VL_OK);
    vl_ivf_free(ix);
}

static void test_every_byte_flip_detected(void **state)
{
    (void)state;
    for (size_t q = 0; q < 3; q++) {
        uint8_t *buf;
        size_t len;
        float *rows;
        small_buffer(QUANTS[q], &buf, &len, &rows);
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit++) {
                vl_ivf *ix = NULL;
                vl_error err;
                buf[i] ^= (uint8_t)(1u << bit);
                if (vl_ivf_load(buf, len, &ix, &err) != VL_ERR_CORRUPT)
                    fail_msg("%s: flip of bit %d of byte %zu of %zu not detected",
                             vl_ivf_quant_name(QUANTS[q]), bit, i, len);
                buf[i] ^= (uint8_t)(1u << bit);
            }
        vl_ivf *ok;
        assert_int_equal(vl_ivf_load(buf, len, &ok, NULL), VL_OK);
        vl_ivf_free(ok);
        free(buf);
        free(rows);
    }
}

static void test_every_truncation_rejected(void **state)
{
    (void)state;
    for (size_t q = 0; q < 3; q++) {
        uint8_t *buf;
        size_t len;
        float *rows;
        small_buffer(QUANTS[q], &buf, &len, &rows);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *t = malloc(cut ? cut : 1); /* exact size, so ASan sees overreads */
            memcpy(t, buf, cut);
            vl_ivf *ix = NULL;
            vl_error err;
            assert_int_equal(vl_ivf_load(t, cut, &ix, &err), VL_ERR_CORRUPT);
            assert_null(ix);
            free(t);
        }
        free(buf);
        free(rows);
    }
}

/* Rewrite the checksum so only the structural checks can catch a change. */
static void reseal(uint8_t *buf, size_t len)
{
    uint32_t c = vl_crc32c(0, buf, len - 4);
    memcpy(buf + len - 4, &c, 4);
}

static void expect_corrupt(uint8_t *buf, size_t len, const char *what)
{
    vl_ivf *ix = NULL;
    vl_error err;
    reseal(buf, len);
    assert_int_equal(vl_ivf_load(buf, len, &ix, &err), VL_ERR_CORRUPT);
    if (!strstr(err.msg, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
}

/* Found by fuzz_ivf (tests/fuzz/regressions/ivf/rabitq-lut-nan): a RaBitQ
 * index whose floats are all finite but so large that the rotated query
 * overflows gave the fast-scan table NaN entries, and converting NaN to an
 * integer is undefined behaviour (UBSan's float-cast-overflow: clang's
 * -fsanitize=undefined, the fuzz build).  The table now clamps NaN to 0;
 * the search returns without UB.  The input is the fuzzer's: control byte
 * (bit 0: rewrite the trailing CRC), then the file. */
static void test_overflowing_floats_search_without_ub(void **state)
{
    (void)state;
    FILE *f = fopen("tests/fuzz/regressions/ivf/rabitq-lut-nan", "rb");
    assert_non_null(f);
    uint8_t in[4096];
    size_t n = fread(in, 1, sizeof in, f);
    fclose(f);
    assert_true(n > 5 && n < sizeof in);
    uint8_t *file = in + 1;
    size_t len = n - 1;
    if (in[0] & 1) {
        uint32_t crc = vl_crc32c(0, file, len - 4);
        memcpy(file + len - 4, &crc, 4);
    }
    vl_ivf *ix;
    vl_error err;
    assert_int_equal(vl_ivf_load(file, len, &ix, &err), VL_OK);
    uint32_t dim = vl_ivf_dim(ix), count = vl_ivf_count(ix);
    float *rows = calloc((size_t)dim * count + 1, sizeof *rows), *q = calloc(dim, sizeof *q);
    for (uint32_t j = 0; j < dim; j++)
        q[j] = 0.5f + (float)j;
    vl_ivf_search_opts opt = {0};
    opt.rows = rows;
    vl_ivf_hit hits[8];
    uint32_t got = 0;
    vl_status st = vl_ivf_search(ix, q, 8, &opt, hits, &got, &err);
    assert_true(st == VL_OK || st == VL_ERR_ARG);
    for (uint32_t i = 0; st == VL_OK && i < got; i++)
        assert_true(hits[i].row < count);
    free(q);
    free(rows);
    vl_ivf_free(ix);
}

static void test_inconsistent_content_rejected(void **state)
{
    (void)state;
    uint8_t *buf, *t;
    size_t len;
    float *rows;
    small_buffer(VL_IVF_QUANT_SQ8, &buf, &len, &rows);
    t = malloc(len);
    uint32_t nlist, dim, count, v;
    memcpy(&dim, buf + 16, 4);
    memcpy(&nlist, buf + 28, 4);
    memcpy(&count, buf + 32, 4);
    uint64_t dir = 64 + (uint64_t)nlist * dim * 4 + 2 * (uint64_t)dim * 4;
    uint64_t body = (dir + nlist * 24 + 63) & ~63ull;
    /* first list's first row id -> count (out of range) */
    uint64_t off0, len0;
    memcpy(&off0, buf + dir, 8);
    memcpy(&len0, buf + dir + 8, 8);
    memcpy(t, buf, len);
    memcpy(t + body + off0, &count, 4);
    expect_corrupt(t, len, "row id");
    /* a row id repeated: second id of list 0 = its first */
    memcpy(t, buf, len);
    memcpy(t + body + off0 + 4, t + body + off0, 4);
    expect_corrupt(t, len, "row id");
    /* a list count that does not match its length */
    memcpy(t, buf, len);
    memcpy(&v, t + dir + 16, 4);
    v++;
    memcpy(t + dir + 16, &v, 4);
    expect_corrupt(t, len, "list 0");
    /* an offset beyond the body */
    memcpy(t, buf, len);
    uint64_t big = 1ull << 40;
    memcpy(t + dir + 24, &big, 8);
    expect_corrupt(t, len, "list 1");
    /* a step of zero */
    memcpy(t, buf, len);
    float zero = 0;
    memcpy(t + 64 + (uint64_t)nlist * dim * 4 + dim * 4, &zero, 4);
    expect_corrupt(t, len, "SQ8");
    /* a probe reach of zero, an SQ8 re-rank depth of zero */
    memcpy(t, buf, len);
    memcpy(t + 56, &zero, 4);
    expect_corrupt(t, len, "probe reach");
    memcpy(t, buf, len);
    memset(t + 60, 0, 4);
    expect_corrupt(t, len, "re-rank depth");
    /* another version (1: before the RaBitQ error factor) */
    memcpy(t, buf, len);
    t[8] = 1;
    expect_corrupt(t, len, "version");
    free(t);
    free(buf);
    free(rows);
    /* rabitq: a rotation sign that is not +-1 */
    small_buffer(VL_IVF_QUANT_RABITQ, &buf, &len, &rows);
    float half = 0.5f;
    memcpy(buf + 64 + (uint64_t)nlist * dim * 4 + 8, &half, 4);
    expect_corrupt(buf, len, "rotation sign");
    free(buf);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_when_everything_probed),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_vector_callback_and_add),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_round_trip_identical),
        cmocka_unit_test(test_deterministic_seed),
        cmocka_unit_test(test_every_byte_flip_detected),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_inconsistent_content_rejected),
        cmocka_unit_test(test_overflowing_floats_search_without_ub),
        cmocka_unit_test(test_rabitq_default_rerank_follows_error_bound),
        cmocka_unit_test(test_small_sets_scan_few_lists),
        cmocka_unit_test(test_recall_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
