/* test_last_save.c - LASTSAVE is the newest committed manifest's own
 * created_ms / 1000, the same second while running and after a reopen.
 *
 * The clock is injected at link time: this file defines time(), so every
 * call to it in the library returns the wall clock one second ahead,
 * i.e. the second has turned between a manifest's stamp and whatever
 * reads time() afterwards (the flake seen as LASTSAVE 1796148256 before a
 * restart and 1796148257 after it).  Anything that takes LASTSAVE from a
 * clock instead of from the committed manifest disagrees on every commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vexlake.h"

#define DIM 4

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec + 1;
    if (out)
        *out = t;
    return t;
}

typedef struct {
    char dir[64];
    vl_engine *e;
    vl_options o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f || !vl_test_tmpdir(f->dir, sizeof f->dir, "lastsave"))
        return -1;
    vl_options_init(&f->o);
    f->o.default_metric = VL_METRIC_L2;
    f->o.flush_rows = 0;
    f->o.flush_wal_bytes = 0;
    f->o.flush_seconds = 0;
    f->o.compact_segments = 3;
    vl_error err;
    if (vl_open(f->dir, &f->o, &f->e, &err) != VL_OK)
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

static void put(vl_engine *e, const char *coll, int i)
{
    char key[32];
    float v[DIM] = {(float)i, 1, 2, 3};
    snprintf(key, sizeof key, "k%d", i);
    vl_error err;
    assert_int_equal(vl_put(e, coll, key, strlen(key), v, DIM, &err), VL_OK);
}

/* created_ms / 1000 of coll's newest version (0 when none). */
static int64_t newest_commit_s(vl_engine *e, const char *coll)
{
    vl_version_info *v = NULL;
    size_t n = 0;
    assert_int_equal(vl_versions(e, coll, &v, &n), VL_OK);
    int64_t s = n ? v[n - 1].created_ms / 1000 : 0;
    free(v);
    return s;
}

static void wait_background(vl_engine *e)
{
    for (int i = 0; i < 500; i++) {
        if (!vl_background_busy(e))
            return;
        struct pollfd p = {vl_background_fd(e), POLLIN, 0};
        poll(&p, 1, 20);
        vl_background_poll(e);
    }
    fail_msg("background job did not finish");
}

static void reopen(fx *f)
{
    vl_error err;
    vl_close(f->e);
    f->e = NULL;
    assert_int_equal(vl_open(f->dir, &f->o, &f->e, &err), VL_OK);
}

/* LASTSAVE equals the newest commit of the two collections, and a reopen
 * reports the very same second. */
static void check_last_save(fx *f)
{
    int64_t a = newest_commit_s(f->e, "default"), b = newest_commit_s(f->e, "other");
    int64_t running = vl_last_save(f->e);
    assert_int_equal(running, a > b ? a : b);
    reopen(f);
    assert_int_equal(vl_last_save(f->e), running);
}

/* Every kind of commit: SAVE, BGSAVE, a compaction, a CLEAR's save, in two
 * collections, each followed by a reopen. */
static void test_last_save_is_the_committed_manifest_time(void **state)
{
    fx *f = *state;
    vl_error err;
    assert_int_equal(vl_last_save(f->e), 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++)
            put(f->e, "default", round * 10 + i);
        assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
        check_last_save(f);
        put(f->e, "other", round);
        assert_int_equal(vl_bgsave(f->e, "other", &err), VL_OK);
        wait_background(f->e);
        check_last_save(f);
    }
    vl_maintenance(f->e); /* three segments in each: a compaction */
    wait_background(f->e);
    vl_engine_stats st;
    vl_engine_stats_get(f->e, &st);
    assert_int_equal(st.compactions, 1);
    check_last_save(f);
    assert_int_equal(vl_clear(f->e, "default", &err), VL_OK);
    assert_int_equal(vl_save(f->e, "default", &err), VL_OK);
    check_last_save(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_last_save_is_the_committed_manifest_time, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
