/* test_index_engine.c - segment indexes inside the engine, through
 * include/vexlake.h: indexed search equals EXACT across indexed segments,
 * unindexed rows, deletes and overwrites; recall floors on the shared
 * datasets; searches on other threads while flushes, compactions, index
 * builds and row store generation swaps run; the float32 rows held once
 * (indexes with codes keep no copy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

/* One indexed segment and nothing else: search.c keys its hits with the
 * index's own distances then (code distances with SQ8) and relies on the
 * finish to re-score and re-sort them; the answer is still EXACT's, hits
 * and scores, under L2 and cosine, with and without SQ8 codes, for K below
 * and above the segment's rows.  (Segments beside scanned rows, where keys
 * must be the scan's: exact_equivalence.) */
static void lone_segment_equivalence(vl_metric metric, vl_quant quant)
{
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixlone") != NULL);
    vl_options o = ix_options(VL_INDEX_HNSW, quant);
    o.default_metric = metric;
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 60, 0);
    ix_save(e);
    ix_index(e);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    assert_int_equal(info.indexed_rows, 60);
    assert_int_equal(info.unindexed_rows, 0);
    vl_search_opts def = {0};
    for (int q = 0; q < 40; q++) {
        float v[IX_DIM];
        ix_vector(7000 + q, 0, v);
        ix_assert_same(e, v, 10, &def, 1);
        ix_assert_same(e, v, 64, &def, 1);
    }
    vl_close(e);
    vl_test_rmtree(t.dir);
}

static void test_hnsw_lone_segment_equals_exact(void **state)
{
    (void)state;
    lone_segment_equivalence(VL_METRIC_L2, VL_QUANT_SQ8);
    lone_segment_equivalence(VL_METRIC_L2, VL_QUANT_NONE);
    lone_segment_equivalence(VL_METRIC_COSINE, VL_QUANT_SQ8);
    lone_segment_equivalence(VL_METRIC_COSINE, VL_QUANT_NONE);
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

/* ---- the float32 rows exist once: in the row store ------------------------ */

static vl_collection_info ix_info(vl_engine *e)
{
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    return info;
}

/* One indexed segment of rows rows under kind+quant and metric; the
 * collection's facts once it is built, and again after a restart that
 * loads the index file (the decode path). */
static void index_facts(vl_index_kind kind, vl_quant quant, vl_metric metric, uint32_t rows,
                        vl_collection_info *built, vl_collection_info *loaded)
{
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixmem") != NULL);
    vl_options o = ix_options(kind, quant);
    o.default_metric = metric;
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, (int)rows, 0);
    ix_save(e);
    ix_index(e);
    *built = ix_info(e);
    vl_close(e);
    e = ix_open(t.dir, &o);
    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    assert_int_equal(st.index_loads, 1);
    assert_int_equal(st.index_builds, 0);
    *loaded = ix_info(e);
    float q[IX_DIM];
    ix_vector(11, 0, q);
    ix_assert_same(e, q, 10, NULL, 1); /* 300 rows, beam 64: every row reached */
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* HNSW with SQ8 (the default) re-ranks from the row store's rows, so its
 * memory is codes and links: the same graph walked in float32 (hnsw none
 * keeps that copy; its walk reads deleted rows too) less the copy, plus
 * dim bytes of code per row and, under cosine, a float scale and a float
 * inverse norm per row (L2 codes share one map).  Before the engine set
 * the vector source, the SQ8 index held the copy beside its codes. */
static void no_float_copy(vl_metric metric)
{
    enum { ROWS = 300 };
    vl_collection_info sq[2], none[2];
    index_facts(VL_INDEX_HNSW, VL_QUANT_SQ8, metric, ROWS, &sq[0], &sq[1]);
    index_facts(VL_INDEX_HNSW, VL_QUANT_NONE, metric, ROWS, &none[0], &none[1]);
    uint64_t copy = (uint64_t)ROWS * IX_DIM * sizeof(float);
    uint64_t codes = (uint64_t)ROWS * (IX_DIM + (metric == VL_METRIC_L2 ? 0 : 2 * sizeof(float)));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sq[i].indexed_rows, ROWS);
        assert_int_equal(sq[i].index_vector_bytes, 0);
        assert_int_equal(none[i].index_vector_bytes, copy);
        if (sq[i].index_bytes > none[i].index_bytes - copy + codes)
            fail_msg("%s: hnsw+sq8 holds %llu bytes, hnsw+none %llu: more than codes (%llu) "
                     "beside the graph",
                     i ? "loaded" : "built", (unsigned long long)sq[i].index_bytes,
                     (unsigned long long)none[i].index_bytes, (unsigned long long)codes);
    }
}

static void test_hnsw_sq8_holds_no_float_copy(void **state)
{
    (void)state;
    no_float_copy(VL_METRIC_L2);
    no_float_copy(VL_METRIC_COSINE);
}

/* IVF with compressed codes never held a copy; without codes its lists are
 * float32 (the file's layout), which the counter reports. */
static void test_ivf_vector_bytes(void **state)
{
    (void)state;
    vl_collection_info built, loaded;
    index_facts(VL_INDEX_IVF, VL_QUANT_SQ8, VL_METRIC_L2, 300, &built, &loaded);
    assert_int_equal(built.index_vector_bytes, 0);
    assert_int_equal(loaded.index_vector_bytes, 0);
    assert_true(built.index_bytes > 0 && built.index_bytes == loaded.index_bytes);
    index_facts(VL_INDEX_IVF, VL_QUANT_NONE, VL_METRIC_L2, 300, &built, &loaded);
    assert_int_equal(built.index_vector_bytes, 300 * IX_DIM * sizeof(float));
    assert_int_equal(loaded.index_vector_bytes, 300 * IX_DIM * sizeof(float));
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

/* Overwrite keys [lo, hi) until dead rows outnumber the live ones past the
 * reclaim threshold (65,536), then run maintenance: the collection's rows
 * move to a new generation that holds live rows only. */
static void ix_swap_generation(vl_engine *e, int lo, int hi)
{
    for (int round = 1; round <= 70000 / (hi - lo); round++)
        ix_put_range(e, lo, hi, 1 + round % 3);
    vl_maintenance(e);
    vl_collection_info info = ix_info(e);
    if (info.rows_in_memory != info.count)
        fail_msg("no generation swap: %llu rows in memory, %llu live",
                 (unsigned long long)info.rows_in_memory, (unsigned long long)info.count);
}

/* A searcher that keeps searching its snapshot until told to stop,
 * counting its searches. */
typedef struct {
    searcher base;
    atomic_int stop, searches;
} long_searcher;

static void *long_search_thread(void *arg)
{
    long_searcher *l = arg;
    vl_hit hits[IX_MAX_ROWS];
    for (int i = 0; !atomic_load(&l->stop) && !l->base.bad; i++) {
        float q[IX_DIM];
        ix_vector(7000 + i % 50, 0, q);
        uint32_t n;
        vl_error err;
        if (vl_snapshot_search(l->base.snap, q, IX_DIM, l->base.expect, hits, &n, &err) != VL_OK ||
            n != l->base.expect)
            l->base.bad = 1;
        atomic_fetch_add(&l->searches, 1);
    }
    return NULL;
}

/* Searches on other threads keep their snapshot's generation while the
 * owner swaps generations twice under an indexed segment whose deleted
 * rows the new generations no longer hold.  The index keeps no pointer
 * into any generation: each search re-ranks from its own snapshot's rows
 * (under ASan, a read of a freed generation or of a row the new one lacks
 * is caught), and every search still returns exactly its snapshot's rows. */
static void test_searches_across_generation_swaps(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixgen") != NULL);
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    o.default_metric = VL_METRIC_COSINE;
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 300, 0);
    ix_save(e);
    ix_index(e);
    ix_delete_range(e, 0, 50); /* dead in the segment (under the 20% that rewrites it), gone
                                  from the row store after a swap */
    ix_save(e);
    ix_index(e);
    for (int swap = 0; swap < 2; swap++) {
        long_searcher s[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            s[i].base = (searcher){e, vl_snapshot_open(e, IX_COLL), 250 + 20 * swap, 0};
            atomic_init(&s[i].stop, 0);
            atomic_init(&s[i].searches, 0);
            assert_int_equal(pthread_create(&th[i], NULL, long_search_thread, &s[i]), 0);
        }
        ix_swap_generation(e, 300 + 20 * swap, 320 + 20 * swap);
        for (int i = 0; i < 2; i++) { /* a few more searches on the old generation */
            int seen = atomic_load(&s[i].searches);
            while (atomic_load(&s[i].searches) < seen + 3 && !s[i].base.bad)
                sched_yield();
            atomic_store(&s[i].stop, 1);
            pthread_join(th[i], NULL);
            assert_false(s[i].base.bad);
            vl_snapshot_close(s[i].base.snap); /* the last reference to the old generation */
        }
        vl_collection_info info = ix_info(e);
        assert_int_equal(info.indexed_rows, 300);
        assert_int_equal(info.index_vector_bytes, 0);
        for (int q = 0; q < 10; q++) {
            float v[IX_DIM];
            ix_vector(6000 + q, 0, v);
            ix_assert_same(e, v, 10, NULL, 1);
        }
    }
    vl_close(e);
    vl_test_rmtree(t.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hnsw_search_equals_exact),
        cmocka_unit_test(test_ivf_search_equals_exact),
        cmocka_unit_test(test_hnsw_lone_segment_equals_exact),
        cmocka_unit_test(test_snapshot_sees_its_rows_only),
        cmocka_unit_test(test_searches_during_background_jobs),
        cmocka_unit_test(test_searches_across_generation_swaps),
        cmocka_unit_test(test_hnsw_sq8_holds_no_float_copy),
        cmocka_unit_test(test_ivf_vector_bytes),
        cmocka_unit_test(test_dataset_recall_hnsw_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
