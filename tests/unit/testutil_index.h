/*
 * testutil_index.h - helpers for the engine index tests: a small engine
 * with manual flushes, numbered rows with seeded vectors, waiting for
 * background jobs, and comparing a default (indexed) search with EXACT.
 */
#ifndef VL_TESTUTIL_INDEX_H
#define VL_TESTUTIL_INDEX_H

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vexlake.h"

#define IX_COLL "c"
enum { IX_DIM = 8, IX_MAX_ROWS = 1000, IX_ASAN_BASE = 3000, IX_ASAN_QUERIES = 40 };

/* Manual flushes only, no compaction, every segment indexed. */
static inline vl_options ix_options(vl_index_kind kind, vl_quant quant)
{
    vl_options o;
    vl_options_init(&o);
    o.default_metric = VL_METRIC_L2;
    o.fsync = VL_FSYNC_NO; /* a restart reopens a closed engine: nothing is lost */
    o.flush_rows = 0;
    o.flush_wal_bytes = 0;
    o.flush_seconds = 0;
    o.compact_segments = 1000;
    o.index.kind = kind;
    o.index.quant = quant;
    o.index_min_rows = 1;
    return o;
}

static inline vl_engine *ix_open(const char *dir, const vl_options *o)
{
    vl_engine *e = NULL;
    vl_error err;
    if (vl_open(dir, o, &e, &err) != VL_OK)
        fail_msg("vl_open(%s): %s", dir, err.msg);
    return e;
}

/* Row i's vector in variant v: seeded uniform values in [-1, 1). */
static inline void ix_vector(int i, int variant, float *out)
{
    uint64_t s =
        (uint64_t)i * 0x9E3779B97F4A7C15ull ^ (uint64_t)(variant + 1) * 0xD1B54A32D192ED03ull;
    for (int d = 0; d < IX_DIM; d++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[d] = (float)((double)(s >> 11) * 0x1p-53 * 2 - 1);
    }
}

static inline int ix_key(int i, char *key)
{
    return snprintf(key, 16, "k%03d", i);
}

/* The row number of a hit's key "k<nnn>". */
static inline int ix_key_num(const vl_hit *h)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%.*s", (int)h->keylen, h->key);
    return atoi(buf + 1);
}

static inline void ix_put_range(vl_engine *e, int lo, int hi, int variant)
{
    vl_error err;
    for (int i = lo; i < hi; i++) {
        char key[16];
        float v[IX_DIM];
        ix_vector(i, variant, v);
        int n = ix_key(i, key);
        if (vl_put(e, IX_COLL, key, (size_t)n, v, IX_DIM, &err) != VL_OK)
            fail_msg("put %s: %s", key, err.msg);
    }
}

static inline void ix_delete_range(vl_engine *e, int lo, int hi)
{
    vl_error err;
    for (int i = lo; i < hi; i++) {
        char key[16];
        int n = ix_key(i, key), deleted;
        if (vl_delete(e, IX_COLL, key, (size_t)n, &deleted, &err) != VL_OK)
            fail_msg("delete %s: %s", key, err.msg);
    }
}

static inline void ix_save(vl_engine *e)
{
    vl_error err;
    if (vl_save(e, IX_COLL, &err) != VL_OK)
        fail_msg("save: %s", err.msg);
}

/* Run maintenance until no lake job and no index build is in flight:
 * every segment that wants an index has one, listed when the collection
 * has nothing else to commit. */
static inline void ix_index(vl_engine *e)
{
    for (;;) {
        vl_maintenance(e);
        vl_engine_stats st;
        vl_engine_stats_get(e, &st);
        if (!vl_background_busy(e) && !st.index_build_running)
            return;
        struct pollfd p = {vl_background_fd(e), POLLIN, 0};
        poll(&p, 1, 100);
        vl_background_poll(e);
    }
}

/* Search with o in parts parts (run one after the other). */
static inline uint32_t ix_search(vl_engine *e, const float *q, uint32_t k, const vl_search_opts *o,
                                 uint32_t parts, vl_hit *hits)
{
    vl_snapshot *s = vl_snapshot_open(e, IX_COLL);
    vl_search *x;
    vl_error err;
    if (vl_search_new_opts(s, q, IX_DIM, k, parts, o, &x, &err) != VL_OK)
        fail_msg("search: %s", err.msg);
    for (uint32_t p = 0; p < vl_search_parts(x); p++)
        vl_search_run_part(x, p);
    uint32_t n = 0;
    if (vl_search_finish(x, hits, &n) != VL_OK)
        fail_msg("search finish failed");
    vl_search_free(x);
    vl_snapshot_close(s);
    return n;
}

/* The default search with o gives exactly EXACT's hits (keys, order, scores). */
static inline void ix_assert_same(vl_engine *e, const float *q, uint32_t k, const vl_search_opts *o,
                                  uint32_t parts)
{
    vl_hit a[64], b[64];
    vl_search_opts exact = {.exact = 1};
    uint32_t na = ix_search(e, q, k, o, parts, a), nb = ix_search(e, q, k, &exact, 1, b);
    if (na != nb)
        fail_msg("indexed search: %u hits, exact: %u", na, nb);
    for (uint32_t i = 0; i < na; i++)
        if (a[i].keylen != b[i].keylen || memcmp(a[i].key, b[i].key, a[i].keylen) != 0 ||
            a[i].score != b[i].score)
            fail_msg("hit %u: indexed %.*s %.9g, exact %.*s %.9g", i, (int)a[i].keylen, a[i].key,
                     a[i].score, (int)b[i].keylen, b[i].key, b[i].score);
}

/* Hits of the default search with o that are as near as EXACT's k-th
 * (tie-aware recall numerator); q has dim floats. */
static inline uint32_t ix_recall_hits(vl_engine *e, const float *q, uint32_t dim, uint32_t k,
                                      const vl_search_opts *o)
{
    vl_hit a[64], b[64];
    vl_search_opts exact = {.exact = 1};
    uint32_t n[2] = {0, 0}, hits = 0;
    vl_snapshot *s = vl_snapshot_open(e, IX_COLL);
    for (int pass = 0; pass < 2; pass++) {
        vl_search *x;
        vl_error err;
        if (vl_search_new_opts(s, q, dim, k, 1, pass ? &exact : o, &x, &err) != VL_OK)
            fail_msg("search: %s", err.msg);
        vl_search_run_part(x, 0);
        vl_search_finish(x, pass ? b : a, &n[pass]);
        vl_search_free(x);
    }
    double kth = n[1] ? b[n[1] - 1].score : 0;
    for (uint32_t i = 0; i < n[0]; i++)
        hits += a[i].score <= kth + 1e-9 * (1 + (kth < 0 ? -kth : kth));
    vl_snapshot_close(s);
    return hits;
}

#endif
