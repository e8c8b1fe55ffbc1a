/* test_snapshot_durable.c - vl_snapshot_open_durable() through
 * include/vexlake.h: a search of it never shows a change newer than
 * vl_durable_lsn() (a new row, an overwrite, a delete), shows the rows
 * as they were durable instead, and falls back to the newest state, with
 * that state's LSN, where it cannot show the older one (CLEAR).
 *
 * Durability is held back without timing: the engine runs with deferred
 * sync (changes wait for vl_sync()) and fsync "no", so vl_durable_lsn()
 * is what vl_sync() last wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include "testutil_index.h"
#include <stdlib.h>
#include <string.h>

#include "vexlake.h"

static int setup_dir(void **state)
{
    return vl_test_dir_setup(state, "snapdur");
}

static int teardown_dir(void **state)
{
    return vl_test_dir_teardown(state);
}

static vl_engine *open_deferred(const char *dir)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.default_metric = VL_METRIC_L2;
    opt.fsync = VL_FSYNC_NO;
    opt.deferred_sync = 1;
    vl_engine *e = NULL;
    vl_error err = {{0}};
    if (vl_open(dir, &opt, &e, &err) != VL_OK)
        fail_msg("vl_open(%s): %s", dir, err.msg);
    return e;
}

static void put_at(vl_engine *e, const char *key, float x)
{
    const float v[2] = {x, 0};
    vl_error err = {{0}};
    if (vl_put(e, "c", key, strlen(key), v, 2, &err) != VL_OK)
        fail_msg("vl_put(%s): %s", key, err.msg);
}

static void sync_ok(vl_engine *e)
{
    vl_error err = {{0}};
    if (vl_sync(e, &err) != VL_OK)
        fail_msg("vl_sync: %s", err.msg);
}

/* The keys and scores a search of s from (0, 0) finds, as "key=score ...". */
static void search_text(const vl_snapshot *s, char *out, size_t cap)
{
    const float q[2] = {0, 0};
    vl_hit hits[8];
    uint32_t n = 0;
    vl_error err = {{0}};
    assert_int_equal(vl_snapshot_search(s, q, 2, 8, hits, &n, &err), VL_OK);
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%.*s=%g", i ? " " : "",
                                (int)hits[i].keylen, hits[i].key, hits[i].score);
}

static void expect_durable(vl_engine *e, const char *want, uint64_t want_lsn)
{
    char got[256];
    vl_snapshot *s = vl_snapshot_open_durable(e, "c");
    assert_non_null(s);
    search_text(s, got, sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(vl_snapshot_lsn(s), want_lsn);
    vl_snapshot_close(s);
}

static void expect_newest(vl_engine *e, const char *want)
{
    char got[256];
    vl_snapshot *s = vl_snapshot_open(e, "c");
    search_text(s, got, sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(vl_snapshot_lsn(s), vl_last_lsn(e));
    vl_snapshot_close(s);
}

static void test_shows_only_durable_changes(void **state)
{
    vl_test_dir *t = *state;
    vl_engine *e = open_deferred(t->dir);
    put_at(e, "a", 5);
    put_at(e, "b", 9);
    sync_ok(e);
    uint64_t durable = vl_durable_lsn(e);
    assert_int_equal(durable, vl_last_lsn(e));
    expect_durable(e, "a=5 b=9", durable);

    put_at(e, "new", 1); /* a new row, an overwrite and a delete, none durable */
    put_at(e, "b", 2);
    int deleted = 0;
    vl_error err = {{0}};
    assert_int_equal(vl_delete(e, "c", "a", 1, &deleted, &err), VL_OK);
    assert_int_equal(deleted, 1);
    assert_true(vl_last_lsn(e) > vl_durable_lsn(e));
    expect_durable(e, "a=5 b=9", durable);
    expect_newest(e, "new=1 b=2");

    sync_ok(e);
    expect_durable(e, "new=1 b=2", vl_last_lsn(e));
    vl_close(e);
}

/* Past one chunk of rows the count of durable rows is found by a search
 * over the rows' LSNs, not at the end of the last chunk. */
static void test_many_rows_cut_at_the_durable_one(void **state)
{
    vl_test_dir *t = *state;
    vl_engine *e = open_deferred(t->dir);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put_at(e, key, 100.0f + (float)i);
    }
    sync_ok(e);
    uint64_t durable = vl_durable_lsn(e);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "n%d", i);
        put_at(e, key, 1.0f + (float)i / 8192.0f);
    }
    vl_snapshot *s = vl_snapshot_open_durable(e, "c");
    const float q[2] = {0, 0};
    vl_hit hits[3];
    uint32_t n = 0;
    vl_error err = {{0}};
    assert_int_equal(vl_snapshot_search(s, q, 2, 3, hits, &n, &err), VL_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(hits[0].key, "k0", 2);
    assert_memory_equal(hits[2].key, "k2", 2);
    assert_int_equal(vl_snapshot_lsn(s), durable);
    vl_snapshot_close(s);
    vl_close(e);
}

/* The generation a CLEAR starts holds none of the rows before it: a
 * durable view cannot be built from it, so the snapshot is the newest
 * state and says so by its LSN (a server then waits for that LSN). */
static void test_clear_not_durable_falls_back_to_newest(void **state)
{
    vl_test_dir *t = *state;
    vl_engine *e = open_deferred(t->dir);
    put_at(e, "a", 5);
    sync_ok(e);
    vl_error err = {{0}};
    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    put_at(e, "z", 3);
    assert_true(vl_last_lsn(e) > vl_durable_lsn(e));
    expect_durable(e, "z=3", vl_last_lsn(e));
    sync_ok(e);
    expect_durable(e, "z=3", vl_last_lsn(e));
    vl_close(e);
}

/* With an index set published while rows were not durable (an index build
 * finished): the set's exact-scan ranges reach past the durable rows, and
 * the durable view still cuts them off, through the index and the scan. */
static void test_index_set_cut_at_the_durable_rows(void **state)
{
    vl_test_dir *t = *state;
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    o.deferred_sync = 1;
    vl_engine *e = ix_open(t->dir, &o);
    ix_put_range(e, 0, 50, 0);
    ix_save(e); /* a flush syncs first: these are durable */
    uint64_t durable = vl_durable_lsn(e);
    ix_put_range(e, 50, 53, 0); /* not durable: in the memtable */
    ix_index(e);                /* the build's set covers rows up to now */
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    assert_true(info.indexed_rows >= 49);
    assert_true(vl_last_lsn(e) > vl_durable_lsn(e));
    vl_snapshot *s = vl_snapshot_open_durable(e, IX_COLL);
    assert_int_equal(vl_snapshot_lsn(s), durable);
    for (int q = 0; q < 55; q++) {
        float v[IX_DIM];
        ix_vector(q, 0, v);
        vl_hit hits[60];
        uint32_t n = 0;
        vl_error err;
        assert_int_equal(vl_snapshot_search(s, v, IX_DIM, 60, hits, &n, &err), VL_OK);
        assert_int_equal(n, 50);
        for (uint32_t i = 0; i < n; i++)
            assert_true(ix_key_num(&hits[i]) < 50);
        if (q < 50) { /* row q itself */
            assert_int_equal(ix_key_num(&hits[0]), q);
            assert_true(hits[0].score == 0);
        }
    }
    vl_snapshot_close(s);
    vl_close(e);
}

/* A set built after a delete that is not durable leaves the deleted row
 * out: a durable view cannot use it, so the snapshot is the newest state. */
static void test_set_without_a_row_durable_views_need_falls_back(void **state)
{
    vl_test_dir *t = *state;
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    o.deferred_sync = 1;
    vl_engine *e = ix_open(t->dir, &o);
    ix_put_range(e, 0, 50, 0);
    ix_save(e);
    ix_delete_range(e, 10, 11);
    ix_index(e);
    assert_true(vl_last_lsn(e) > vl_durable_lsn(e));
    vl_snapshot *s = vl_snapshot_open_durable(e, IX_COLL);
    assert_int_equal(vl_snapshot_lsn(s), vl_last_lsn(e));
    vl_snapshot_close(s);
    vl_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shows_only_durable_changes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_many_rows_cut_at_the_durable_one, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_clear_not_durable_falls_back_to_newest, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_index_set_cut_at_the_durable_rows, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_set_without_a_row_durable_views_need_falls_back,
                                        setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
