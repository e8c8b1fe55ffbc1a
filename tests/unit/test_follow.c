/* test_follow.c - a read-only engine applying the writer's WAL objects
 * (core/follow.c) on top of the versions it serves, with a writer engine
 * and a follower engine sharing one local object store (the WAL in the
 * store, as in S3 mode).  The follower's store is a thin spy around the
 * real one: it counts writes (a follower must make none), can hide the
 * manifests (a version the follower has not seen yet) and can run a hook
 * right after the follower lists the WAL (a writer acting between the
 * follower's list and its reads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/engine_internal.h"
#include "storage/crc32c.h"
#include "storage/objstore.h"
#include "storage/wal.h"
#include "testutil.h"
#include "testutil_forward.h"
#include "util/error.h"
#include "vexlake.h"

#define DIM 4
#define COLL "default"

/* ---- the follower's spy store -------------------------------------------- */

typedef struct {
    vl_test_forward fw;
    int writes;         /* put, put_if_absent and del calls */
    int hide_manifests; /* list of tables/<coll>/manifests/ returns nothing */
    int fail_manifests; /* get of a manifest fails (a version that cannot load) */
    void (*after_wal_list)(void *ctx);
    void *ctx;
} spy;

static spy *as_spy(vl_objstore *s)
{
    return (spy *)(void *)s;
}

static vl_status s_put(vl_objstore *s, const char *n, const void *d, size_t l, vl_error *e)
{
    as_spy(s)->writes++;
    return fwd_put(s, n, d, l, e);
}

static vl_status s_put_if_absent(vl_objstore *s, const char *n, const void *d, size_t l,
                                 vl_error *e)
{
    as_spy(s)->writes++;
    return fwd_put_if_absent(s, n, d, l, e);
}

static vl_status s_get(vl_objstore *s, const char *n, void **d, size_t *l, vl_error *e)
{
    if (as_spy(s)->fail_manifests && strstr(n, "/manifests/"))
        return vl_fail(e, VL_ERR_IO, "get %s: injected failure", n);
    return fwd_get(s, n, d, l, e);
}

static vl_status s_list(vl_objstore *s, const char *p, vl_objinfo **o, size_t *n, vl_error *e)
{
    spy *sp = as_spy(s);
    if (sp->hide_manifests && strstr(p, "/manifests/")) {
        *o = NULL;
        *n = 0;
        return VL_OK;
    }
    vl_status st = fwd_list(s, p, o, n, e);
    if (st == VL_OK && strcmp(p, "wal/") == 0 && sp->after_wal_list) {
        void (*hook)(void *) = sp->after_wal_list;
        sp->after_wal_list = NULL; /* once */
        hook(sp->ctx);
    }
    return st;
}

static vl_status s_del(vl_objstore *s, const char *n, vl_error *e)
{
    as_spy(s)->writes++;
    return fwd_del(s, n, e);
}

static const vl_objstore_ops spy_ops = {s_put, s_put_if_absent, s_get, fwd_get_range, s_list,
                                        s_del, fwd_close_all,   NULL,  NULL};

/* ---- fixture: a bucket directory, a writer and a follower ---------------- */

typedef struct {
    char root[64];
    char bucket[128], wdir[128], w2dir[128], fdir[128];
    vl_engine *w, *f;
    spy *fs; /* the follower's store (owned by its engine) */
} fixture;

static int setup(void **state)
{
    fixture *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_non_null(vl_test_tmpdir(x->root, sizeof x->root, "follow"));
    snprintf(x->bucket, sizeof x->bucket, "%s/bucket", x->root);
    snprintf(x->wdir, sizeof x->wdir, "%s/writer", x->root);
    snprintf(x->w2dir, sizeof x->w2dir, "%s/writer2", x->root);
    snprintf(x->fdir, sizeof x->fdir, "%s/follower", x->root);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture *x = *state;
    vl_close(x->f);
    vl_close(x->w);
    vl_test_rmtree(x->root);
    free(x);
    return 0;
}

static vl_engine *open_writer(fixture *x, const char *dir)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.default_metric = VL_METRIC_L2;
    vl_error err;
    assert_int_equal(vl_objstore_local_open(x->bucket, &opt.store, &err), VL_OK);
    vl_engine *e = NULL;
    vl_status st = vl_open(dir, &opt, &e, &err);
    if (st != VL_OK)
        fail_msg("writer open: %s", err.msg);
    return e;
}

static void open_follower(fixture *x)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.default_metric = VL_METRIC_L2;
    opt.read_only = 1;
    x->fs = calloc(1, sizeof *x->fs);
    assert_non_null(x->fs);
    x->fs->fw.base.ops = &spy_ops;
    vl_error err;
    assert_int_equal(vl_objstore_local_open(x->bucket, &x->fs->fw.real, &err), VL_OK);
    opt.store = &x->fs->fw.base;
    vl_status st = vl_open(x->fdir, &opt, &x->f, &err);
    if (st != VL_OK)
        fail_msg("follower open: %s", err.msg);
}

static void vec(float v[DIM], float base)
{
    for (int i = 0; i < DIM; i++)
        v[i] = base + (float)i;
}

static void put(vl_engine *e, const char *key, float base)
{
    float v[DIM];
    vec(v, base);
    vl_error err;
    vl_status st = vl_put(e, COLL, key, strlen(key), v, DIM, &err);
    if (st != VL_OK)
        fail_msg("put %s: %s", key, err.msg);
}

/* One follow run; returns its status, *caught_up as vl_follow_end says. */
static vl_status follow(fixture *x, int *caught_up, vl_error *err)
{
    int changed;
    vl_follow *f = vl_follow_begin(x->f);
    vl_follow_run(f);
    return vl_follow_end(x->f, f, &changed, caught_up, err);
}

static void follow_ok(fixture *x)
{
    int caught_up;
    vl_error err;
    vl_status st = follow(x, &caught_up, &err);
    if (st != VL_OK)
        fail_msg("follow: %s", err.msg);
    assert_true(caught_up);
}

/* key's vector on the follower starts at base (its first element). */
static void assert_follower_has(fixture *x, const char *key, float base)
{
    float got[DIM];
    uint32_t dim = 0;
    vl_status st = vl_get(x->f, COLL, key, strlen(key), got, DIM, &dim);
    if (st != VL_OK)
        fail_msg("follower: %s is missing", key);
    assert_int_equal(dim, DIM);
    float want[DIM];
    vec(want, base);
    assert_memory_equal(got, want, sizeof want);
}

static void assert_follower_lacks(fixture *x, const char *key)
{
    float got[DIM];
    uint32_t dim;
    assert_int_equal(vl_get(x->f, COLL, key, strlen(key), got, DIM, &dim), VL_ERR_NOTFOUND);
}

/* ---- tests --------------------------------------------------------------- */

static void test_acknowledged_writes_visible_without_a_flush(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    put(x->w, "b", 2);
    put(x->w, "c", 3);
    put(x->w, "a", 10); /* overwrite */
    int deleted;
    vl_error err;
    assert_int_equal(vl_delete(x->w, COLL, "b", 1, &deleted, &err), VL_OK);
    assert_true(deleted);

    follow_ok(x);
    assert_int_equal(vl_current_version(x->f, COLL), 0); /* nothing committed: all WAL */
    assert_follower_has(x, "a", 10);
    assert_follower_lacks(x, "b");
    assert_follower_has(x, "c", 3);
    vl_snapshot *s = vl_snapshot_open(x->f, COLL);
    assert_int_equal(vl_snapshot_count(s), 2);
    vl_snapshot_close(s);
    vl_follow_stats fw;
    vl_follow_stats_get(x->f, &fw);
    assert_int_equal(fw.wal_lsn, vl_last_lsn(x->w));
    assert_true(fw.wal_object >= 5); /* the writer's claim, then one per acknowledged write */
    assert_true(fw.log_bytes > 0);   /* no version covers them */
    assert_int_equal(x->fs->writes, 0);
}

static void test_a_snapshot_sees_all_of_a_run_or_none(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    put(x->w, "b", 2);
    int changed, caught_up;
    vl_error err;
    vl_follow *f = vl_follow_begin(x->f);
    vl_follow_run(f); /* read and checked, not applied yet */
    vl_snapshot *before = vl_snapshot_open(x->f, COLL);
    assert_int_equal(vl_snapshot_count(before), 0);
    assert_int_equal(vl_follow_end(x->f, f, &changed, &caught_up, &err), VL_OK);
    assert_true(changed && caught_up);
    vl_snapshot *after = vl_snapshot_open(x->f, COLL);
    assert_int_equal(vl_snapshot_count(before), 0); /* pinned */
    assert_int_equal(vl_snapshot_count(after), 2);
    float got[DIM];
    uint32_t dim;
    assert_int_equal(vl_snapshot_get(before, "a", 1, got, DIM, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_snapshot_get(after, "a", 1, got, DIM, &dim), VL_OK);
    vl_snapshot_close(before);
    vl_snapshot_close(after);
}

static void test_a_newer_version_keeps_the_wal_writes_above_it(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    put(x->w, "b", 2);
    follow_ok(x); /* a, b from the WAL */
    vl_error err;
    assert_int_equal(vl_save(x->w, COLL, &err), VL_OK); /* version 1 covers a, b */
    put(x->w, "c", 3);
    put(x->w, "a", 11);
    x->fs->hide_manifests = 1; /* the follower does not see version 1 yet */
    follow_ok(x);
    assert_int_equal(vl_current_version(x->f, COLL), 0);
    assert_follower_has(x, "a", 11);
    x->fs->hide_manifests = 0;
    follow_ok(x); /* loads version 1; c and a=11 were read in the run before */
    assert_int_equal(vl_current_version(x->f, COLL), 1);
    assert_follower_has(x, "a", 11);
    assert_follower_has(x, "b", 2);
    assert_follower_has(x, "c", 3);
    vl_snapshot *s = vl_snapshot_open(x->f, COLL);
    assert_int_equal(vl_snapshot_count(s), 3);
    vl_snapshot_close(s);
    put(x->w, "d", 4);
    follow_ok(x);
    assert_follower_has(x, "d", 4);
    assert_int_equal(x->fs->writes, 0);
}

/* The newest object holding records, of the ones in raw. */
static uint64_t newest_object(vl_objstore *raw)
{
    vl_wal_object *objs = NULL;
    size_t n = 0;
    vl_error err;
    assert_int_equal(vl_wal_store_list(raw, 0, &objs, &n, &err), VL_OK);
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++)
        if (objs[i].size)
            seq = objs[i].seq;
    free(objs);
    assert_true(seq > 0);
    return seq;
}

/* Object seq's one record, renumbered to the next LSN with its vector
 * set to vec(base), stored as object seq + 1 (its CRC recomputed,
 * or left stale when corrupt). */
static void put_next_object(vl_objstore *raw, uint64_t seq, float base, int corrupt)
{
    vl_error err;
    void *data;
    size_t len;
    uint64_t last;
    assert_int_equal(vl_wal_store_read(raw, seq, 0, NULL, NULL, &data, &len, &last, &err), VL_OK);
    unsigned char *p = data;
    uint32_t body_len;
    memcpy(&body_len, p, 4);
    assert_int_equal(len, 8 + body_len); /* one record */
    uint64_t lsn = last + 1;
    memcpy(p + 12, &lsn, 8);
    float v[DIM];
    vec(v, base);
    memcpy(p + len - sizeof v, v, sizeof v);
    uint32_t crc = vl_crc32c(0, p + 8, body_len);
    if (corrupt)
        p[len - 1] ^= 0x40; /* after the checksum: a flipped bit in the vector */
    memcpy(p + 4, &crc, 4);
    char name[64];
    snprintf(name, sizeof name, "wal/%020llu.log", (unsigned long long)seq + 1);
    assert_int_equal(vl_obj_put(raw, name, p, len, &err), VL_OK);
    free(data);
}

static void test_a_corrupt_object_is_never_applied(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    vl_close(x->w); /* the writer is gone; the objects stay */
    x->w = NULL;
    vl_objstore *raw;
    vl_error err;
    assert_int_equal(vl_objstore_local_open(x->bucket, &raw, &err), VL_OK);

    uint64_t seq = newest_object(raw) + 1;
    put_next_object(raw, seq - 1, 50, 1);
    int caught_up = 1;
    assert_int_equal(follow(x, &caught_up, &err), VL_ERR_CORRUPT);
    assert_false(caught_up);
    char name[64];
    snprintf(name, sizeof name, "wal/%020llu.log", (unsigned long long)seq);
    assert_non_null(strstr(err.msg, name));
    assert_non_null(strstr(err.msg, "checksum"));
    assert_follower_has(x, "a", 1); /* the objects before it are applied */
    vl_follow_stats fw;
    vl_follow_stats_get(x->f, &fw);
    assert_int_equal(fw.wal_object, seq - 1);

    /* The same bytes with a good checksum are applied: the check is what
     * kept the corrupt copy out. */
    put_next_object(raw, seq - 1, 50, 0);
    follow_ok(x);
    assert_follower_has(x, "a", 50);
    vl_obj_close(raw);
}

static void test_a_fenced_writers_refused_batch_is_never_applied(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    vl_engine *w2 = open_writer(x, x->w2dir); /* takes over: fences x->w */
    float v[DIM];
    vec(v, 2);
    vl_error err;
    assert_int_equal(vl_put(x->w, COLL, "b", 1, v, DIM, &err), VL_ERR_CONFLICT);
    put(w2, "c", 3);
    follow_ok(x);
    assert_follower_has(x, "a", 1);
    assert_follower_lacks(x, "b"); /* w2's replay does not have it either */
    assert_int_equal(vl_get(w2, COLL, "b", 1, v, DIM, &(uint32_t){0}), VL_ERR_NOTFOUND);
    assert_follower_has(x, "c", 3);
    vl_close(w2);
}

/* The writer flushes between the follower's WAL list and its reads, so
 * the objects listed are removed before they are read. */
static void flush_and_wait_for_removal(void *ctx)
{
    fixture *x = ctx;
    vl_error err;
    assert_int_equal(vl_save(x->w, COLL, &err), VL_OK);
    for (int i = 0; i < 500; i++) { /* the WAL thread removes covered objects */
        vl_wal_object *objs = NULL;
        size_t n = 0;
        assert_int_equal(vl_wal_store_list(x->fs->fw.real, 0, &objs, &n, &err), VL_OK);
        int nonempty = 0;
        for (size_t k = 0; k < n; k++)
            nonempty += objs[k].size > 0;
        free(objs);
        if (!nonempty)
            return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    fail_msg("the writer did not remove its covered WAL objects");
}

static void test_objects_removed_under_a_run_end_it_early(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    follow_ok(x);
    put(x->w, "b", 2);
    put(x->w, "c", 3);
    x->fs->after_wal_list = flush_and_wait_for_removal;
    x->fs->ctx = x;
    int caught_up = 1;
    vl_error err;
    assert_int_equal(follow(x, &caught_up, &err), VL_OK); /* not an error ... */
    assert_false(caught_up);                              /* ... but not caught up */
    assert_int_equal(vl_current_version(x->f, COLL), 1);  /* the flush's version */
    assert_follower_has(x, "b", 2);
    assert_follower_has(x, "c", 3);
    put(x->w, "d", 4);
    follow_ok(x);
    assert_follower_has(x, "a", 1);
    assert_follower_has(x, "d", 4);
    assert_int_equal(x->fs->writes, 0);
}

/* Objects removed between two runs leave a gap only the newest versions
 * cover: while one of them cannot load, nothing after the gap is applied
 * (the follower would show d without b and c). */
static void test_no_object_after_a_gap_without_the_versions(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    put(x->w, "a", 1);
    follow_ok(x);
    put(x->w, "b", 2);
    put(x->w, "c", 3);
    x->fs->ctx = x;
    flush_and_wait_for_removal(x); /* b's and c's objects are gone */
    put(x->w, "d", 4);
    x->fs->fail_manifests = 1;
    int caught_up = 1;
    vl_error err;
    assert_int_equal(follow(x, &caught_up, &err), VL_ERR_IO);
    assert_false(caught_up);
    assert_follower_has(x, "a", 1);
    assert_follower_lacks(x, "b");
    assert_follower_lacks(x, "d");
    x->fs->fail_manifests = 0;
    follow_ok(x);
    assert_follower_has(x, "b", 2);
    assert_follower_has(x, "c", 3);
    assert_follower_has(x, "d", 4);
}

/* The follow log (what a reload would need again) stays within its
 * limit: a run reads no further once it is full (the first object always
 * fits), and goes on once a version covers what it holds. */
static void test_the_follow_log_stays_within_its_limit(void **state)
{
    fixture *x = *state;
    x->w = open_writer(x, x->wdir);
    open_follower(x);
    vl_follow_set_log_limit_for_test(x->f, 1);
    put(x->w, "a", 1);
    put(x->w, "b", 2);
    put(x->w, "c", 3);
    for (int run = 0; run < 2; run++) {
        int caught_up = 1;
        vl_error err;
        assert_int_equal(follow(x, &caught_up, &err), VL_OK);
        assert_false(caught_up);
        assert_follower_has(x, "a", 1);
        assert_follower_lacks(x, "b"); /* the log is full with a's object */
        vl_follow_stats fw;
        vl_follow_stats_get(x->f, &fw);
        assert_int_equal(fw.log_objects, 1);
    }
    /* The save covers a, b and c; wait until the writer's WAL thread has
     * removed their objects, so no run below races that removal (a run
     * whose object vanishes under it ends early, not caught up: under ASan
     * ten quick runs could all lose that race). */
    flush_and_wait_for_removal(x);
    vl_error err;
    put(x->w, "d", 4);
    int caught_up = 0;
    for (int run = 0; run < 10 && !caught_up; run++)
        assert_int_equal(follow(x, &caught_up, &err), VL_OK);
    assert_true(caught_up);
    assert_follower_has(x, "b", 2);
    assert_follower_has(x, "c", 3);
    assert_follower_has(x, "d", 4);
    vl_follow_stats fw;
    vl_follow_stats_get(x->f, &fw);
    assert_int_equal(fw.log_objects, 1); /* d's: no version covers it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acknowledged_writes_visible_without_a_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_snapshot_sees_all_of_a_run_or_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_newer_version_keeps_the_wal_writes_above_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_corrupt_object_is_never_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_fenced_writers_refused_batch_is_never_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_objects_removed_under_a_run_end_it_early, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_object_after_a_gap_without_the_versions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_follow_log_stays_within_its_limit, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
