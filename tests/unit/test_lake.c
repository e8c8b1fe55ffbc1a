/* test_lake.c - the lake through include/vexlake.h: SAVE, reopen, deletion
 * files, time travel, compaction, retention/GC, snapshot isolation across
 * commits, damaged files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vexlake.h"

#define DIM 8

typedef struct {
    char dir[64];
    vl_engine *e;
} fx;

static vl_options options(void)
{
    vl_options o;
    vl_options_init(&o);
    o.default_metric = VL_METRIC_L2;
    o.flush_rows = 0;
    o.flush_wal_bytes = 0;
    o.flush_seconds = 0;
    o.compact_segments = 1000;
    return o;
}

static void reopen(fx *f, const vl_options *o)
{
    vl_error err;
    vl_close(f->e);
    f->e = NULL;
    assert_int_equal(vl_open(f->dir, o, &f->e, &err), VL_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f || !vl_test_tmpdir(f->dir, sizeof f->dir, "lake"))
        return -1;
    vl_options o = options();
    vl_error err;
    if (vl_open(f->dir, &o, &f->e, &err) != VL_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vl_close(f->e);
    vl_test_rmtree(f->dir);
    free(f);
    return 0;
}

static void vec_of(int i, float *v)
{
    for (int d = 0; d < DIM; d++)
        v[d] = (float)(i * 10 + d);
}

static void put(vl_engine *e, int i, int variant)
{
    char key[32];
    float v[DIM];
    vec_of(i + variant * 1000, v);
    snprintf(key, sizeof key, "k%d", i);
    vl_error err;
    assert_int_equal(vl_put(e, "default", key, strlen(key), v, DIM, &err), VL_OK);
}

static void del(vl_engine *e, int i)
{
    char key[32];
    int deleted;
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(vl_delete(e, "default", key, strlen(key), &deleted, NULL), VL_OK);
    assert_int_equal(deleted, 1);
}

/* 1 if key k<i> holds the vector of (i, variant), 0 if absent. */
static int has(vl_engine *e, int i, int variant)
{
    char key[32];
    float v[DIM], want[DIM];
    uint32_t dim;
    snprintf(key, sizeof key, "k%d", i);
    if (vl_get(e, "default", key, strlen(key), v, DIM, &dim) != VL_OK)
        return 0;
    vec_of(i + variant * 1000, want);
    assert_memory_equal(v, want, sizeof v);
    return 1;
}

static uint64_t count(vl_engine *e)
{
    vl_collection_info info;
    return vl_collection_describe(e, "default", &info) == VL_OK ? info.count : 0;
}

static int files_in(const char *dir, const char *sub)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_save_reopen_deletes(void **state)
{
    fx *f = *state;
    vl_options o = options();
    vl_error err;
    for (int i = 0; i < 100; i++)
        put(f->e, i, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    assert_int_equal(vl_current_version(f->e, "default"), 1);
    del(f->e, 5);
    put(f->e, 6, 1); /* overwrite a row that lives in segment 1 */
    put(f->e, 200, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    assert_int_equal(files_in(f->dir, "tables/default/deletes"), 1);
    reopen(f, &o);
    assert_int_equal(count(f->e), 100);
    assert_false(has(f->e, 5, 0));
    assert_true(has(f->e, 6, 1));
    assert_true(has(f->e, 200, 0));
    assert_true(has(f->e, 7, 0));
    /* A change after the last SAVE comes back from the WAL. */
    del(f->e, 7);
    reopen(f, &o);
    assert_false(has(f->e, 7, 0));
    assert_int_equal(count(f->e), 99);
    vl_engine_stats st;
    vl_engine_stats_get(f->e, &st);
    assert_true(st.last_save > 0);
}

static void test_wal_removed_after_save(void **state)
{
    fx *f = *state;
    vl_error err;
    for (int i = 0; i < 50; i++)
        put(f->e, i, 0);
    vl_engine_stats before, after;
    vl_engine_stats_get(f->e, &before);
    assert_true(before.wal_bytes > 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    vl_engine_stats_get(f->e, &after);
    assert_int_equal(after.wal_bytes, 0);
    vl_options o = options();
    reopen(f, &o);
    put(f->e, 60, 0); /* numbering continues above the committed LSN */
    reopen(f, &o);
    assert_int_equal(count(f->e), 51);
}

static void search_keys(const vl_snapshot *s, char out[][16], uint32_t *n)
{
    float q[DIM];
    vec_of(0, q);
    vl_hit hits[200];
    vl_error err;
    assert_int_equal(vl_snapshot_search(s, q, DIM, 200, hits, n, &err), VL_OK);
    for (uint32_t i = 0; i < *n; i++)
        snprintf(out[i], 16, "%.*s", (int)hits[i].keylen, hits[i].key);
}

static void test_time_travel(void **state)
{
    fx *f = *state;
    vl_error err;
    for (int i = 0; i < 10; i++)
        put(f->e, i, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK); /* v1: 10 rows */
    del(f->e, 0);
    put(f->e, 1, 1);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK); /* v2: 9 rows */
    assert_int_equal(vl_clear(f->e, "default", &err), VL_OK);
    put(f->e, 50, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK); /* v3: 1 row */
    vl_version_info *v;
    size_t n;
    vl_versions(f->e, "default", &v, &n);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].rows, 10);
    assert_int_equal(v[1].rows, 9);
    assert_int_equal(v[2].rows, 1);
    free(v);
    vl_snapshot *s;
    assert_int_equal(vl_snapshot_open_version(f->e, "default", 1, &s, &err), VL_OK);
    assert_int_equal(vl_snapshot_count(s), 10);
    float out[DIM], want[DIM];
    uint32_t dim;
    assert_int_equal(vl_snapshot_get(s, "k1", 2, out, DIM, &dim), VL_OK);
    vec_of(1, want);
    assert_memory_equal(out, want, sizeof out);
    vl_snapshot_close(s);
    assert_int_equal(vl_snapshot_open_version(f->e, "default", 2, &s, &err), VL_OK);
    assert_int_equal(vl_snapshot_count(s), 9);
    assert_int_equal(vl_snapshot_get(s, "k0", 2, out, DIM, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_snapshot_get(s, "k1", 2, out, DIM, &dim), VL_OK);
    vec_of(1001, want);
    assert_memory_equal(out, want, sizeof out);
    vl_snapshot_close(s);
    assert_int_equal(vl_snapshot_open_version(f->e, "default", 9, &s, &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "retained versions: 1..3"));
    /* Still answers after a restart. */
    vl_options o = options();
    reopen(f, &o);
    assert_int_equal(vl_snapshot_open_version(f->e, "default", 1, &s, &err), VL_OK);
    assert_int_equal(vl_snapshot_count(s), 10);
    vl_snapshot_close(s);
}

static void test_retention_and_gc(void **state)
{
    fx *f = *state;
    vl_options o = options();
    o.retain_versions = 2;
    reopen(f, &o);
    vl_error err;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 20; i++)
            put(f->e, i, round); /* overwrites: every old segment dies */
        assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    }
    vl_version_info *v;
    size_t n;
    vl_versions(f->e, "default", &v, &n);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].version, 4);
    free(v);
    assert_int_equal(files_in(f->dir, "tables/default/manifests"), 2);
    /* v4 and v5 reference at most segments 4 and 5 */
    assert_true(files_in(f->dir, "tables/default/segments") <= 2);
    vl_snapshot *s;
    assert_int_equal(vl_snapshot_open_version(f->e, "default", 3, &s, &err), VL_ERR_NOTFOUND);
    for (int i = 0; i < 20; i++)
        assert_true(has(f->e, i, 4));
}

static void wait_background(vl_engine *e)
{
    for (int i = 0; i < 500; i++) {
        vl_engine_stats st;
        vl_engine_stats_get(e, &st);
        if (!st.background_job)
            return;
        struct pollfd p = {vl_background_fd(e), POLLIN, 0};
        poll(&p, 1, 20);
        vl_background_poll(e);
    }
    fail_msg("background job did not finish");
}

static void test_compaction_keeps_content_and_snapshots(void **state)
{
    fx *f = *state;
    vl_options o = options();
    o.compact_segments = 3;
    reopen(f, &o);
    vl_error err;
    for (int seg = 0; seg < 3; seg++) {
        for (int i = 0; i < 30; i++)
            put(f->e, seg * 30 + i, 0);
        assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    }
    del(f->e, 3);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    vl_snapshot *before = vl_snapshot_open(f->e, "default");
    char keys_before[200][16], keys_after[200][16];
    uint32_t nb, na;
    search_keys(before, keys_before, &nb);
    del(f->e, 4); /* pending deletion on a segment about to be merged */
    vl_maintenance(f->e);
    wait_background(f->e);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(f->e, "default", &info), VL_OK);
    assert_int_equal(info.segments, 1);
    search_keys(before, keys_after, &na); /* the pinned snapshot is unchanged */
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < nb; i++)
        assert_string_equal(keys_after[i], keys_before[i]);
    vl_snapshot_close(before);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK); /* commits the pending delete */
    reopen(f, &o);
    assert_int_equal(count(f->e), 88);
    assert_false(has(f->e, 3, 0));
    assert_false(has(f->e, 4, 0));
    assert_true(has(f->e, 89, 0));
}

static void flip_byte(const char *path, long at)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    long pos = at < 0 ? size / 2 : at;
    fseek(fp, pos, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, pos, SEEK_SET);
    fputc(c ^ 0x55, fp);
    fclose(fp);
}

static void newest_file(const char *dir, const char *sub, char *out, size_t cap)
{
    char path[256], best[256] = "";
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.' && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    snprintf(out, cap, "%s/%s", path, best);
}

static void test_damaged_segment(void **state)
{
    fx *f = *state;
    vl_error err;
    for (int i = 0; i < 10; i++)
        put(f->e, i, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    for (int i = 10; i < 20; i++)
        put(f->e, i, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    char seg[512];
    newest_file(f->dir, "tables/default/segments", seg, sizeof seg);
    vl_close(f->e);
    f->e = NULL;
    flip_byte(seg, -1);
    vl_options o = options();
    assert_int_equal(vl_open(f->dir, &o, &f->e, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, strrchr(seg, '/') + 1));
    o.open_previous_on_damage = 1;
    assert_int_equal(vl_open(f->dir, &o, &f->e, &err), VL_OK);
    assert_int_equal(vl_current_version(f->e, "default"), 1);
    assert_int_equal(count(f->e), 10);
    vl_engine_stats st;
    vl_engine_stats_get(f->e, &st);
    assert_non_null(strstr(st.warning, "damaged"));
    /* The next commit skips past the damaged version number. */
    put(f->e, 30, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    assert_int_equal(vl_current_version(f->e, "default"), 3);
}

static void test_damaged_manifest(void **state)
{
    fx *f = *state;
    vl_error err;
    put(f->e, 1, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    char man[512];
    newest_file(f->dir, "tables/default/manifests", man, sizeof man);
    vl_close(f->e);
    f->e = NULL;
    flip_byte(man, 20);
    vl_options o = options();
    assert_int_equal(vl_open(f->dir, &o, &f->e, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "manifests/00000000000000000001.json"));
}

static void test_orphans_removed_at_open(void **state)
{
    fx *f = *state;
    vl_error err;
    put(f->e, 1, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    vl_close(f->e);
    f->e = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/tables/default/segments/00000000000000000099-deadbeef.parquet",
             f->dir);
    FILE *fp = fopen(path, "wb"); /* as if a crash hit between write and commit */
    assert_non_null(fp);
    fputs("PAR1 half a file", fp);
    fclose(fp);
    vl_options o = options();
    assert_int_equal(vl_open(f->dir, &o, &f->e, &err), VL_OK);
    assert_null(fopen(path, "rb"));
    assert_int_equal(count(f->e), 1);
}

static void test_dead_rows_reclaimed(void **state)
{
    fx *f = *state;
    vl_error err;
    for (int i = 0; i < 50; i++)
        put(f->e, i, 0);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    for (int round = 1; round <= 1400; round++) /* 70000 overwrites */
        for (int i = 0; i < 50; i++)
            put(f->e, i, round % 3);
    vl_snapshot *old = vl_snapshot_open(f->e, "default");
    vl_collection_info info;
    vl_collection_describe(f->e, "default", &info);
    assert_int_equal(info.rows_in_memory, 70050);
    vl_maintenance(f->e);
    vl_collection_describe(f->e, "default", &info);
    assert_int_equal(info.rows_in_memory, 50);
    assert_int_equal(vl_snapshot_count(old), 50); /* the pinned generation lives on */
    vl_snapshot_close(old);
    for (int i = 0; i < 50; i++)
        assert_true(has(f->e, i, 1400 % 3));
    /* Locations survived the rebuild: the overwrites of segment rows commit. */
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    vl_options o = options();
    reopen(f, &o);
    assert_int_equal(count(f->e), 50);
    for (int i = 0; i < 50; i++)
        assert_true(has(f->e, i, 1400 % 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_reopen_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_removed_after_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_travel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_and_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_content_and_snapshots, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphans_removed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_rows_reclaimed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
