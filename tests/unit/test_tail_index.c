/* test_tail_index.c - tail indexes (src/core/tail_index.h) inside the
 * engine, through include/vexlake.h: with pieces of 16 rows (an HNSW walk
 * at the default beam then reaches every row of a piece), a default search
 * across indexed segments, tail pieces, rows still waiting for a piece,
 * deletes and overwrites returns exactly what EXACT returns; snapshots
 * keep seeing their rows while pieces are built, adopted and renumbered by
 * a reclaim of dead rows; a durable snapshot right after a piece; no build
 * for a segment a fifth deleted; time travel next to pieces; searches on other
 * threads while pieces are built (under ASan in make test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "testutil_index.h"
#include "vexlake.h"

enum { PIECE = 16 };

static vl_options tail_options(void)
{
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    o.tail_index_rows = PIECE;
    return o;
}

static vl_collection_info info_of(vl_engine *e)
{
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    return info;
}

/* Maintenance until no lake job, index build or tail build is in flight
 * and no further piece starts. */
static void settle(vl_engine *e)
{
    for (;;) {
        vl_maintenance(e);
        vl_engine_stats st;
        vl_engine_stats_get(e, &st);
        if (!vl_background_busy(e) && !st.index_build_running && !st.tail_index_build_running)
            return;
        struct pollfd p = {vl_background_fd(e), POLLIN, 0};
        poll(&p, 1, 100);
        vl_background_poll(e);
    }
}

static void assert_same_queries(vl_engine *e, int first, int n)
{
    for (int q = 0; q < n; q++) {
        float v[IX_DIM];
        ix_vector(first + q, 0, v);
        for (uint32_t parts = 1; parts <= 3; parts += 2)
            ix_assert_same(e, v, 10, NULL, parts);
    }
}

static void test_search_equals_exact_with_pieces(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "tailq") != NULL);
    vl_options o = tail_options();
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 100, 0);
    settle(e); /* memtable pieces: 96 rows in 6 pieces, 4 waiting */
    vl_collection_info info = info_of(e);
    assert_int_equal(info.tail_indexes, 6);
    assert_int_equal(info.tail_indexed_rows, 96);
    assert_int_equal(info.unindexed_rows, 4);
    assert_int_equal(info.indexed_rows, 0);
    assert_same_queries(e, 5000, 20);
    ix_save(e);
    settle(e); /* the segment's index takes the rows over; the pieces go */
    info = info_of(e);
    assert_int_equal(info.indexed_rows, 100);
    assert_int_equal(info.tail_indexes, 0);
    assert_int_equal(info.unindexed_rows, 0);
    ix_put_range(e, 100, 200, 0);
    ix_put_range(e, 0, 10, 1);    /* overwrites of segment rows: into the tail */
    ix_delete_range(e, 150, 160); /* deletes of tail rows */
    settle(e);
    ix_delete_range(e, 105, 110); /* ... of rows already in pieces */
    ix_put_range(e, 120, 125, 2); /* ... overwritten */
    ix_put_range(e, 300, 307, 0); /* waiting for a piece */
    info = info_of(e);
    assert_true(info.tail_indexes >= 5);
    assert_true(info.unindexed_rows < 2 * PIECE);
    assert_same_queries(e, 6000, 30);
    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    assert_true(st.tail_index_builds >= 11);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* A snapshot opened before a piece is adopted, or before rows of a piece
 * are deleted, keeps its rows; one opened after sees the change. */
static void test_snapshots_around_pieces(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "tailmvcc") != NULL);
    vl_options o = tail_options();
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 64, 0);
    vl_snapshot *before = vl_snapshot_open(e, IX_COLL); /* no pieces yet */
    settle(e);
    assert_int_equal(info_of(e).tail_indexes, 4);
    vl_snapshot *built = vl_snapshot_open(e, IX_COLL);
    ix_delete_range(e, 0, 32);
    ix_put_range(e, 40, 48, 1);
    vl_snapshot *after = vl_snapshot_open(e, IX_COLL);
    float q[IX_DIM];
    ix_vector(3, 0, q); /* row 3: nearest in before and built, gone in after */
    vl_hit hits[64];
    uint32_t n;
    vl_error err;
    vl_snapshot *olds[2] = {before, built};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(vl_snapshot_search(olds[i], q, IX_DIM, 64, hits, &n, &err), VL_OK);
        assert_int_equal(n, 64);
        assert_true(hits[0].keylen == 4 && memcmp(hits[0].key, "k003", 4) == 0);
    }
    assert_int_equal(vl_snapshot_search(after, q, IX_DIM, 64, hits, &n, &err), VL_OK);
    assert_int_equal(n, 32);
    for (uint32_t i = 0; i < n; i++)
        assert_true(ix_key_num(&hits[i]) >= 32);
    vl_snapshot_close(before);
    vl_snapshot_close(built);
    vl_snapshot_close(after);
    assert_same_queries(e, 5000, 10);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* A piece published while deletions are not durable yet keeps their rows
 * for a durable snapshot: the snapshot stays at the durable LSN (it does
 * not fall back to the newest change, whose reader would wait for the
 * fsync) and still sees the deleted rows. */
static void test_durable_snapshot_after_a_piece(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "taildur") != NULL);
    vl_options o = tail_options();
    o.deferred_sync = 1;
    vl_engine *e = ix_open(t.dir, &o);
    vl_error err;
    ix_put_range(e, 0, 40, 0);
    assert_int_equal(vl_sync(e, &err), VL_OK);
    uint64_t durable = vl_durable_lsn(e);
    ix_delete_range(e, 0, 10); /* not durable */
    settle(e);                 /* pieces (rows 10..41) publish a set */
    assert_true(info_of(e).tail_indexes >= 1);
    assert_int_equal(vl_durable_lsn(e), durable);
    vl_snapshot *s = vl_snapshot_open_durable(e, IX_COLL);
    assert_int_equal(vl_snapshot_lsn(s), durable);
    float q[IX_DIM];
    ix_vector(3, 0, q);
    vl_hit hits[64];
    uint32_t n;
    assert_int_equal(vl_snapshot_search(s, q, IX_DIM, 64, hits, &n, &err), VL_OK);
    assert_int_equal(n, 40);
    assert_true(hits[0].keylen == 4 && memcmp(hits[0].key, "k003", 4) == 0);
    vl_snapshot_close(s);
    assert_int_equal(vl_sync(e, &err), VL_OK);
    s = vl_snapshot_open_durable(e, IX_COLL);
    assert_int_equal(vl_snapshot_search(s, q, IX_DIM, 64, hits, &n, &err), VL_OK);
    assert_int_equal(n, 30);
    vl_snapshot_close(s);
    assert_same_queries(e, 5000, 10);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* Time travel beside pieces: VERSION n searches that version's rows,
 * while the newest rows are reached through pieces. */
static void test_time_travel_beside_pieces(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "tailtt") != NULL);
    vl_options o = tail_options();
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 40, 0);
    ix_save(e);
    settle(e);
    uint64_t v1 = vl_current_version(e, IX_COLL);
    ix_delete_range(e, 0, 20);
    ix_put_range(e, 100, 180, 0);
    settle(e);
    assert_true(info_of(e).tail_indexes >= 4);
    vl_snapshot *old;
    vl_error err;
    assert_int_equal(vl_snapshot_open_version(e, IX_COLL, v1, &old, &err), VL_OK);
    float q[IX_DIM];
    ix_vector(100, 0, q); /* a tail row: not in v1 */
    vl_hit hits[64];
    uint32_t n;
    assert_int_equal(vl_snapshot_search(old, q, IX_DIM, 64, hits, &n, &err), VL_OK);
    assert_int_equal(n, 40);
    for (uint32_t i = 0; i < n; i++)
        assert_true(ix_key_num(&hits[i]) < 40);
    vl_snapshot_close(old);
    ix_assert_same(e, q, 10, NULL, 1);
    vl_hit top[1];
    assert_int_equal(ix_search(e, q, 1, NULL, 1, top), 1);
    assert_int_equal(ix_key_num(&top[0]), 100);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* Pieces survive the reclaim of dead rows (their rows renumbered), also
 * one being built while the reclaim runs. */
static void test_pieces_survive_reclaim(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "tailrc") != NULL);
    vl_options o = tail_options();
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 200, 0);
    settle(e);
    assert_int_equal(info_of(e).tail_indexes, 12);
    /* Dead rows past the reclaim threshold (65,536) and the live ones:
     * rewrite keys 200..220 (the last rewrite leaves 20 live rows that
     * wait for a piece, so maintenance starts one before it reclaims). */
    for (int round = 1; round <= 3300; round++)
        ix_put_range(e, 200, 220, 1 + round % 3);
    ix_delete_range(e, 50, 60);
    vl_maintenance(e); /* starts a piece, then reclaims under it */
    vl_collection_info info = info_of(e);
    assert_int_equal(info.rows_in_memory, info.count);
    settle(e);
    info = info_of(e);
    assert_int_equal(info.count, 210);
    assert_true(info.tail_indexes >= 12);
    assert_true(info.tail_indexed_rows >= 190);
    assert_same_queries(e, 7000, 30);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* A segment a fifth deleted before its build starts gets none while tail
 * indexes are on (its live rows are in pieces; compaction rewrites it),
 * and gets one with them off. */
static void test_no_build_for_a_doomed_segment(void **state)
{
    (void)state;
    for (int tails = 1; tails >= 0; tails--) {
        vl_test_dir t;
        assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "taildoom") != NULL);
        vl_options o = tail_options();
        o.tail_index_rows = tails ? PIECE : 0;
        vl_engine *e = ix_open(t.dir, &o);
        ix_put_range(e, 0, 100, 0);
        ix_save(e);
        ix_delete_range(e, 10, 30);
        settle(e);
        vl_engine_stats st;
        vl_engine_stats_get(e, &st);
        vl_collection_info info = info_of(e);
        assert_int_equal(st.index_builds, tails ? 0 : 1);
        assert_int_equal(info.tail_indexed_rows, tails ? 80 : 0);
        assert_int_equal(info.unindexed_rows, 0);
        assert_same_queries(e, 5000, 10);
        vl_close(e);
        vl_test_rmtree(t.dir);
    }
}

/* ---- searches on other threads while pieces are built --------------------- */

typedef struct {
    vl_snapshot *snap;
    uint32_t expect;
    atomic_int stop;
    int bad, searches;
} searcher;

static void *search_thread(void *arg)
{
    searcher *s = arg;
    vl_hit hits[IX_MAX_ROWS];
    for (int i = 0; !atomic_load(&s->stop) && !s->bad; i++) {
        float q[IX_DIM];
        ix_vector(7000 + i % 50, 0, q);
        uint32_t n;
        vl_error err;
        if (vl_snapshot_search(s->snap, q, IX_DIM, s->expect, hits, &n, &err) != VL_OK ||
            n != s->expect)
            s->bad = 1;
        s->searches++;
    }
    return NULL;
}

/* Each round two threads search snapshots (asking for every row: each must
 * come back once) while the owner writes, deletes and builds pieces. */
static void test_searches_during_piece_builds(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "tailbg") != NULL);
    vl_options o = tail_options();
    vl_engine *e = ix_open(t.dir, &o);
    uint32_t live = 0;
    for (int round = 0; round < 6; round++) {
        ix_put_range(e, round * 100, round * 100 + 100, 0);
        ix_delete_range(e, round * 100 + 90, round * 100 + 95);
        if (round > 0)
            ix_put_range(e, round * 100 - 100, round * 100 - 80, 1); /* rows in pieces */
        live += 95;
        searcher s[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            s[i] = (searcher){.snap = vl_snapshot_open(e, IX_COLL), .expect = live};
            atomic_init(&s[i].stop, 0);
            assert_int_equal(pthread_create(&th[i], NULL, search_thread, &s[i]), 0);
        }
        if (round == 3)
            ix_save(e); /* a segment, indexed in the background, takes rows over */
        settle(e);
        for (int i = 0; i < 2; i++) {
            atomic_store(&s[i].stop, 1);
            pthread_join(th[i], NULL);
            assert_false(s[i].bad);
            vl_snapshot_close(s[i].snap);
        }
        float q[IX_DIM];
        ix_vector(round, 0, q);
        ix_assert_same(e, q, 10, NULL, 2);
    }
    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    assert_true(st.tail_index_builds >= 20);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_equals_exact_with_pieces),
        cmocka_unit_test(test_snapshots_around_pieces),
        cmocka_unit_test(test_durable_snapshot_after_a_piece),
        cmocka_unit_test(test_time_travel_beside_pieces),
        cmocka_unit_test(test_pieces_survive_reclaim),
        cmocka_unit_test(test_no_build_for_a_doomed_segment),
        cmocka_unit_test(test_searches_during_piece_builds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
