/* test_index_engine.c - segment indexes inside the engine, through
 * include/vexlake.h: indexed search equals EXACT across indexed segments,
 * unindexed rows, deletes and overwrites; recall floors on the shared
 * datasets; searches on other threads while flushes, compactions and
 * index builds run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "testutil_fvecs.h"
#include "testutil_index.h"
#include "vexlake.h"

/* ---- indexed search returns what EXACT returns ---------------------------- */

/* Segments of 60 rows: with the default beam (64) an HNSW walk reaches
 * every row, and an IVF search probing every list scans every row, so the
 * indexed answer must be the exact one, row for row and score for score. */
static void exact_equivalence(vl_index_kind kind, vl_quant quant, uint32_t nprobe)
{
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixeq") != NULL);
    vl_options o = ix_options(kind, quant);
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 60, 0);
    ix_save(e);
    ix_index(e);
    ix_put_range(e, 60, 120, 0);
    ix_save(e);
    ix_index(e);
    ix_put_range(e, 0, 10, 1);  /* overwrite rows of the first segment */
    ix_delete_range(e, 60, 70); /* delete rows of the second */
    ix_save(e);                 /* those become deletion files */
    ix_index(e);
    ix_put_range(e, 120, 180, 0); /* a third segment ... */
    ix_save(e);
    ix_index(e);
    ix_put_range(e, 120, 125, 2); /* ... overwritten and deleted, not yet saved */
    ix_delete_range(e, 130, 135);
    ix_delete_range(e, 20, 25);
    ix_put_range(e, 200, 230, 0); /* the memtable */
    ix_delete_range(e, 200, 203);
    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    assert_true(st.index_builds >= 3);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    assert_true(info.indexed_rows >= 180);
    assert_true(info.unindexed_rows >= 30);
    vl_search_opts def = {.nprobe = nprobe};
    for (int q = 0; q < 40; q++) {
        float v[IX_DIM];
        ix_vector(5000 + q, 0, v);
        for (uint32_t parts = 1; parts <= 3; parts += 2)
            ix_assert_same(e, v, 10, &def, parts);
    }
    vl_close(e);
    vl_test_rmtree(t.dir);
}

static void test_hnsw_search_equals_exact(void **state)
{
    (void)state;
    exact_equivalence(VL_INDEX_HNSW, VL_QUANT_SQ8, 0);
    exact_equivalence(VL_INDEX_HNSW, VL_QUANT_NONE, 0);
}

static void test_ivf_search_equals_exact(void **state)
{
    (void)state;
    exact_equivalence(VL_INDEX_IVF, VL_QUANT_NONE, VL_MAX_NPROBE);
}

/* A row deleted or overwritten after its segment was indexed never comes
 * back through the index, whatever the snapshot order. */
static void test_snapshot_sees_its_rows_only(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixmvcc") != NULL);
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 50, 0);
    ix_save(e);
    ix_index(e);
    vl_snapshot *before = vl_snapshot_open(e, IX_COLL);
    ix_delete_range(e, 0, 25);
    vl_snapshot *after = vl_snapshot_open(e, IX_COLL);
    float q[IX_DIM];
    ix_vector(3, 0, q); /* row 3 itself: nearest in before, gone in after */
    vl_hit hits[50];
    uint32_t n;
    vl_error err;
    assert_int_equal(vl_snapshot_search(before, q, IX_DIM, 50, hits, &n, &err), VL_OK);
    assert_int_equal(n, 50);
    assert_true(hits[0].keylen == 4 && memcmp(hits[0].key, "k003", 4) == 0);
    assert_int_equal(vl_snapshot_search(after, q, IX_DIM, 50, hits, &n, &err), VL_OK);
    assert_int_equal(n, 25);
    for (uint32_t i = 0; i < n; i++)
        assert_true(ix_key_num(&hits[i]) >= 25);
    vl_snapshot_close(before);
    vl_snapshot_close(after);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* ---- recall floors on the shared datasets --------------------------------- */

/* Recall@10 of a default search against EXACT, with the engine's default
 * index (hnsw + sq8) over one segment of the dataset's base. */
static int dataset_recall(const vl_dataset *ds, vl_index_kind kind, vl_quant quant, double *recall)
{
    char path[2][512];
    snprintf(path[0], sizeof path[0], "%s/%s/base.fvecs", vl_test_datasets(), ds->name);
    snprintf(path[1], sizeof path[1], "%s/%s/query.fvecs", vl_test_datasets(), ds->name);
    uint32_t nb, db, nq, dq;
    float *base = vl_read_vecs(path[0], &nb, &db);
    float *queries = vl_read_vecs(path[1], &nq, &dq);
    if (!base || !queries) {
        print_message("index: dataset %s not found under %s, skipped\n", ds->name,
                      vl_test_datasets());
        free(base);
        free(queries);
        return 0;
    }
    if (VL_SANITIZED) {
        nb = nb < IX_ASAN_BASE ? nb : IX_ASAN_BASE;
        nq = nq < IX_ASAN_QUERIES ? nq : IX_ASAN_QUERIES;
    }
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixds") != NULL);
    vl_options o = ix_options(kind, quant);
    o.default_metric = ds->metric;
    o.index_min_rows = 1024;
    vl_engine *e = ix_open(t.dir, &o);
    vl_error err;
    for (uint32_t i = 0; i < nb; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "r%u", i);
        assert_int_equal(vl_put(e, IX_COLL, key, (size_t)kl, base + (size_t)i * db, db, &err),
                         VL_OK);
    }
    ix_save(e);
    ix_index(e);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    assert_int_equal(info.indexed_rows, nb);
    uint64_t hits = 0;
    for (uint32_t qi = 0; qi < nq; qi++)
        hits += ix_recall_hits(e, queries + (size_t)qi * dq, dq, 10, NULL);
    *recall = (double)hits / ((double)nq * 10);
    print_message("index: %s %s+%s recall@10 %.4f (%u rows, %u queries)\n", ds->name,
                  vl_index_kind_name(kind), vl_quant_name(quant), *recall, nb, nq);
    vl_close(e);
    vl_test_rmtree(t.dir);
    free(base);
    free(queries);
    return 1;
}

static void recall_floor(vl_index_kind kind, vl_quant quant)
{
    int ran = 0;
    for (size_t i = 0; i < VL_NDATASETS; i++) {
        double r;
        if (!dataset_recall(&vl_datasets[i], kind, quant, &r))
            continue;
        ran++;
        if (r < 0.95)
            fail_msg("%s: recall@10 %.4f < 0.95 with default %s+%s", vl_datasets[i].name, r,
                     vl_index_kind_name(kind), vl_quant_name(quant));
    }
    if (!ran)
        skip();
}

static void test_dataset_recall_hnsw_defaults(void **state)
{
    (void)state;
    recall_floor(VL_INDEX_HNSW, VL_QUANT_SQ8);
}

/* ---- searches while background jobs run ----------------------------------- */

typedef struct {
    vl_engine *e;
    vl_snapshot *snap;
    uint32_t expect; /* rows the snapshot holds */
    int bad;
} searcher;

static void *search_thread(void *arg)
{
    searcher *s = arg;
    vl_hit hits[IX_MAX_ROWS];
    for (int i = 0; i < 30 && !s->bad; i++) {
        float q[IX_DIM];
        ix_vector(7000 + i, 0, q);
        uint32_t n;
        vl_error err;
        if (vl_snapshot_search(s->snap, q, IX_DIM, s->expect, hits, &n, &err) != VL_OK ||
            n != s->expect)
            s->bad = 1;
    }
    return NULL;
}

/* Two threads search pinned snapshots while the owner runs a flush, a
 * compaction and an index build in the background; a search asking for
 * every row must get every row of its snapshot, each once. */
static void test_searches_during_background_jobs(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixbg") != NULL);
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    o.compact_segments = 3;
    vl_engine *e = ix_open(t.dir, &o);
    uint32_t rows = 0;
    for (int round = 0; round < 4; round++) {
        ix_put_range(e, rows, rows + 100, 0);
        rows += 100;
        ix_delete_range(e, rows - 10, rows - 5);
        searcher s[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            s[i] = (searcher){e, vl_snapshot_open(e, IX_COLL), rows - 5 * (round + 1), 0};
            assert_int_equal(pthread_create(&th[i], NULL, search_thread, &s[i]), 0);
        }
        vl_error err;
        assert_int_equal(vl_bgsave(e, IX_COLL, &err), VL_OK);
        ix_index(e); /* the flush, index builds, a compaction (3 segments) */
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            assert_false(s[i].bad);
            vl_snapshot_close(s[i].snap);
        }
    }
    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    assert_true(st.compactions >= 1);
    /* How many builds ran depends on how the compaction raced them (a
     * segment merged away before its build starts is never built); what
     * must hold is that every row ends up indexed. */
    assert_true(st.index_builds >= 1);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    assert_int_equal(info.unindexed_rows, 0);
    float q[IX_DIM];
    ix_vector(9, 0, q);
    ix_assert_same(e, q, 10, NULL, 2);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hnsw_search_equals_exact),
        cmocka_unit_test(test_ivf_search_equals_exact),
        cmocka_unit_test(test_snapshot_sees_its_rows_only),
        cmocka_unit_test(test_searches_during_background_jobs),
        cmocka_unit_test(test_dataset_recall_hnsw_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
